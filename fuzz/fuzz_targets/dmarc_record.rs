//! The DMARC record parser (RFC 9989 §4.7, and the RFC 7489 grammar), and the report
//! URI parser it uses.
#![no_main]

use dmarc_proto::dmarc::record::parse_report_uri;
use dmarc_proto::dmarc::{Record, Spec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Record::parse(data);
    let _ = Record::parse_for(data, Spec::Rfc7489);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_report_uri(text);
    }
});
