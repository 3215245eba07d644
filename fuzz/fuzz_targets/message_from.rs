//! The message splitter (header fields and body) and the From field reader that gives the
//! DMARC Author Domain (RFC 9989 §5.3.1).
#![no_main]

use dmarc_proto::dmarc::{AuthorOptions, MultipleAddresses, author_domains};
use dmarc_proto::message::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let msg = Message::parse(data);
    let _ = msg.body();
    let from: Vec<&[u8]> = msg.fields("From").map(|f| f.value()).collect();
    for multiple_addresses in [
        MultipleAddresses::SameDomainOnly,
        MultipleAddresses::Decline,
        MultipleAddresses::EvaluateEach,
    ] {
        for required_headers in [true, false] {
            let options = AuthorOptions {
                multiple_addresses,
                required_headers,
            };
            let _ = author_domains(&from, &options);
        }
    }
    // A whole input as one field value, too: the From reader sees raw bytes.
    let _ = author_domains(&[data], &AuthorOptions::default());
});
