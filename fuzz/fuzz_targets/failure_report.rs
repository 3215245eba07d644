//! Failure reports (ARF, RFC 5965 / RFC 6591 / RFC 9991) and every other report an email
//! message can carry, read as one message.
#![no_main]

use dmarc_report::{Limits, parse_message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_decompressed_size: 64 << 20,
        ..Limits::default()
    };
    let _ = parse_message("fuzz.eml", data, &limits);
});
