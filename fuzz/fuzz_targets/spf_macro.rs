//! SPF macro strings (RFC 7208 §7) in each of their three contexts.
#![no_main]

use dmarc_proto::spf::{MacroContext, MacroString};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for ctx in [
        MacroContext::DomainSpec,
        MacroContext::ModifierValue,
        MacroContext::Explanation,
    ] {
        let _ = MacroString::parse(text, ctx);
    }
});
