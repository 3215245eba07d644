//! Any input a report can arrive in: gzip, zip, MIME messages, mbox, XML, JSON, with the
//! decompression limits (size, ratio, entries, nesting).
#![no_main]

use dmarc_report::{Limits, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_decompressed_size: 64 << 20,
        ..Limits::default()
    };
    let _ = parse(data, &limits);
});
