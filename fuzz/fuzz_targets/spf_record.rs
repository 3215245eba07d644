//! The SPF record parser (RFC 7208 §4.6, §12).
#![no_main]

use dmarc_proto::spf::Record;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Record::parse(data);
});
