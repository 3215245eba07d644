//! The DKIM key record parser (RFC 6376 §3.6.1), including the key bytes (RSA SPKI or
//! PKCS#1, Ed25519).
#![no_main]

use dmarc_proto::dkim::parse_key_record;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_key_record(data);
});
