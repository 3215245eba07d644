//! The tag-list parser shared by DKIM, ARC and DMARC (RFC 6376 §3.2), in both modes.
#![no_main]

use dmarc_proto::tag_list::{Strictness, TagList};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for mode in [Strictness::Strict, Strictness::SkipEmpty] {
        if let Ok(list) = TagList::parse_with(data, mode) {
            for tag in list.tags() {
                let _ = tag.value_str();
                let _ = tag.value_without_whitespace();
            }
        }
    }
});
