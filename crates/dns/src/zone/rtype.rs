//! Record type mnemonics and numbers (IANA "Resource Record (RR) TYPEs" registry).

/// Type numbers the resolver gives meaning to.
pub(crate) const A: u16 = 1;
pub(crate) const NS: u16 = 2;
pub(crate) const CNAME: u16 = 5;
pub(crate) const SOA: u16 = 6;
pub(crate) const PTR: u16 = 12;
pub(crate) const MX: u16 = 15;
pub(crate) const TXT: u16 = 16;
pub(crate) const AAAA: u16 = 28;
pub(crate) const SRV: u16 = 33;
pub(crate) const DNAME: u16 = 39;
pub(crate) const SPF: u16 = 99;
pub(crate) const CAA: u16 = 257;

/// Mnemonics of the data types of the registry (query-only and obsolete meta types left out).
const TABLE: &[(&str, u16)] = &[
    ("A", 1),
    ("NS", 2),
    ("MD", 3),
    ("MF", 4),
    ("CNAME", 5),
    ("SOA", 6),
    ("MB", 7),
    ("MG", 8),
    ("MR", 9),
    ("NULL", 10),
    ("WKS", 11),
    ("PTR", 12),
    ("HINFO", 13),
    ("MINFO", 14),
    ("MX", 15),
    ("TXT", 16),
    ("RP", 17),
    ("AFSDB", 18),
    ("X25", 19),
    ("ISDN", 20),
    ("RT", 21),
    ("NSAP", 22),
    ("NSAP-PTR", 23),
    ("SIG", 24),
    ("KEY", 25),
    ("PX", 26),
    ("GPOS", 27),
    ("AAAA", 28),
    ("LOC", 29),
    ("NXT", 30),
    ("EID", 31),
    ("NIMLOC", 32),
    ("SRV", 33),
    ("ATMA", 34),
    ("NAPTR", 35),
    ("KX", 36),
    ("CERT", 37),
    ("A6", 38),
    ("DNAME", 39),
    ("SINK", 40),
    ("APL", 42),
    ("DS", 43),
    ("SSHFP", 44),
    ("IPSECKEY", 45),
    ("RRSIG", 46),
    ("NSEC", 47),
    ("DNSKEY", 48),
    ("DHCID", 49),
    ("NSEC3", 50),
    ("NSEC3PARAM", 51),
    ("TLSA", 52),
    ("SMIMEA", 53),
    ("HIP", 55),
    ("NINFO", 56),
    ("RKEY", 57),
    ("TALINK", 58),
    ("CDS", 59),
    ("CDNSKEY", 60),
    ("OPENPGPKEY", 61),
    ("CSYNC", 62),
    ("ZONEMD", 63),
    ("SVCB", 64),
    ("HTTPS", 65),
    ("DSYNC", 66),
    ("SPF", 99),
    ("UINFO", 100),
    ("UID", 101),
    ("GID", 102),
    ("UNSPEC", 103),
    ("NID", 104),
    ("L32", 105),
    ("L64", 106),
    ("LP", 107),
    ("EUI48", 108),
    ("EUI64", 109),
    ("URI", 256),
    ("CAA", 257),
    ("AVC", 258),
    ("DOA", 259),
    ("AMTRELAY", 260),
    ("RESINFO", 261),
    ("WALLET", 262),
    ("TA", 32768),
    ("DLV", 32769),
];

/// Types that exist only in queries or transport (RFC 6895 §3.1: OPT and the QTYPEs), which
/// cannot appear in a zone.
fn is_meta(code: u16) -> bool {
    code == 0 || code == 41 || (128..=255).contains(&code)
}

/// Looks up a type mnemonic or `TYPEnnn` (RFC 3597 §5), ASCII case-insensitive.
pub(crate) fn parse(text: &[u8]) -> Result<u16, String> {
    let shown = super::lexer::quote(text);
    let code = if let Some((_, code)) = TABLE
        .iter()
        .find(|(m, _)| m.as_bytes().eq_ignore_ascii_case(text))
    {
        *code
    } else if let Some(digits) = strip_prefix_ignore_case(text, b"TYPE") {
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Err(format!("unknown record type {shown}"));
        }
        std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse::<u16>().ok())
            .ok_or_else(|| format!("record type number in {shown} is larger than 65535"))?
    } else {
        return Err(format!("unknown record type {shown}"));
    };
    if is_meta(code) {
        return Err(format!(
            "{shown} is a query or transport type, not one a zone can hold"
        ));
    }
    Ok(code)
}

/// `text` without `prefix` (ASCII case-insensitive), if it starts with it.
pub(crate) fn strip_prefix_ignore_case<'a>(text: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let (head, tail) = text.split_at_checked(prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then_some(tail)
}

/// The mnemonic of `code`, or `TYPEnnn`.
pub(crate) fn name(code: u16) -> String {
    TABLE
        .iter()
        .find(|(_, c)| *c == code)
        .map_or_else(|| format!("TYPE{code}"), |(m, _)| (*m).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mnemonics_and_generic() {
        assert_eq!(parse(b"txt").unwrap(), TXT);
        assert_eq!(parse(b"TYPE16").unwrap(), TXT);
        assert_eq!(parse(b"type65280").unwrap(), 65280);
        assert!(parse(b"TYPE65536").is_err());
        assert!(parse(b"TYPE").is_err());
        assert!(parse(b"FOO").is_err());
        assert!(parse(b"ANY").is_err());
        assert!(parse(b"TYPE41").is_err());
        assert_eq!(name(SPF), "SPF");
        assert_eq!(name(65280), "TYPE65280");
    }
}
