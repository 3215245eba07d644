//! The RFC 1035 master-file parser behind `--dns-zone`.
#![no_main]

use dmarc_dns::zone::ZoneFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ZoneFile::parse_bytes(data, Some("example.com."));
});
