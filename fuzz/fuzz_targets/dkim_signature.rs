//! The DKIM-Signature field parser (RFC 6376 §3.5).
#![no_main]

use dmarc_proto::dkim::parse_signature;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_signature(data);
});
