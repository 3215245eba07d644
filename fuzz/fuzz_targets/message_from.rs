//! The message splitter (header fields and body) and the From field reader that gives the
//! DMARC Author Domain (RFC 9989 §5.3.1).
#![no_main]

use dmarc_proto::dmarc::{
    AuthorOptions, MultipleAddresses, MultipleFields, Unreadable, author_domains, read_authors,
};
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
        MultipleAddresses::Reject,
    ] {
        for multiple_fields in [
            MultipleFields::Fail,
            MultipleFields::Evaluate,
            MultipleFields::Reject,
            MultipleFields::Accept,
        ] {
            for unreadable in [Unreadable::Fail, Unreadable::Reject, Unreadable::Accept] {
                let options = AuthorOptions {
                    multiple_addresses,
                    multiple_fields,
                    unreadable,
                };
                let _ = read_authors(&from, &options);
            }
        }
    }
    // A whole input as one field value, too: the From reader sees raw bytes.
    let _ = author_domains(&[data], &AuthorOptions::default());
});
