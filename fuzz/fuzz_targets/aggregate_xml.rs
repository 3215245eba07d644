//! The aggregate report XML parser (RFC 7489 appendix C, RFC 9990), without containers.
#![no_main]

use dmarc_report::{Limits, parse_aggregate_xml};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_aggregate_xml(data, &Limits::default());
});
