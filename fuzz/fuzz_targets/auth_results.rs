//! The Authentication-Results parser (RFC 8601 §2.2) and the authserv-id scan the
//! receiver runs on every incoming field.
#![no_main]

use dmarc_proto::auth_results;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = auth_results::authserv_id(&text);
    let _ = auth_results::parse(&text);
});
