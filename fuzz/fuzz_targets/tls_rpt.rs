//! SMTP TLS reports (RFC 8460 JSON).
#![no_main]

use dmarc_report::{SourcePath, tls};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tls::parse_json(data, &SourcePath::default());
});
