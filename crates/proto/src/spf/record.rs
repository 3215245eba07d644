//! SPF records: selection (§4.5) and parsing (§4.6.1, §5, §6, §12).
//!
//! ```text
//! record           = version terms *SP
//! version          = "v=spf1"
//! terms            = *( 1*SP ( directive / modifier ) )
//! directive        = [ qualifier ] mechanism
//! qualifier        = "+" / "-" / "?" / "~"
//! mechanism        = ( all / include / a / mx / ptr / ip4 / ip6 / exists )
//! modifier         = redirect / explanation / unknown-modifier
//! unknown-modifier = name "=" macro-string
//! name             = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )
//! ```

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use super::SpfResult;
use super::macros::{MacroContext, MacroString, show_byte};

/// A parsed SPF record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The directives, in order.
    pub directives: Vec<Directive>,
    /// `redirect=` (§6.1), at most one.
    pub redirect: Option<MacroString>,
    /// `exp=` (§6.2), at most one.
    pub exp: Option<MacroString>,
    /// Unknown modifiers, kept for display; they have no effect (§6).
    pub unknown: Vec<(String, MacroString)>,
}

/// A qualifier (§4.6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Qualifier {
    /// `+`: pass (the default).
    Pass,
    /// `-`: fail.
    Fail,
    /// `~`: softfail.
    SoftFail,
    /// `?`: neutral.
    Neutral,
}

impl Qualifier {
    /// The result a match produces.
    pub fn result(self) -> SpfResult {
        match self {
            Qualifier::Pass => SpfResult::Pass,
            Qualifier::Fail => SpfResult::Fail,
            Qualifier::SoftFail => SpfResult::SoftFail,
            Qualifier::Neutral => SpfResult::Neutral,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Qualifier::Pass => "",
            Qualifier::Fail => "-",
            Qualifier::SoftFail => "~",
            Qualifier::Neutral => "?",
        }
    }
}

/// A directive: a qualifier and a mechanism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The qualifier (`+` when none was written).
    pub qualifier: Qualifier,
    /// The mechanism.
    pub mechanism: Mechanism,
}

/// A mechanism (§5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    /// `all` (§5.1).
    All,
    /// `include:<domain-spec>` (§5.2).
    Include(MacroString),
    /// `a[:<domain-spec>][/<cidr4>][//<cidr6>]` (§5.3).
    A {
        /// The target; `None` means the current domain.
        domain: Option<MacroString>,
        /// IPv4 prefix length (32 when not written).
        cidr4: u8,
        /// IPv6 prefix length (128 when not written).
        cidr6: u8,
    },
    /// `mx[:<domain-spec>][/<cidr4>][//<cidr6>]` (§5.4).
    Mx {
        /// The target; `None` means the current domain.
        domain: Option<MacroString>,
        /// IPv4 prefix length.
        cidr4: u8,
        /// IPv6 prefix length.
        cidr6: u8,
    },
    /// `ptr[:<domain-spec>]` (§5.5), discouraged.
    Ptr(Option<MacroString>),
    /// `ip4:<network>[/<cidr>]` (§5.6).
    Ip4 {
        /// The network address as written.
        addr: Ipv4Addr,
        /// Prefix length (32 when not written).
        prefix: u8,
    },
    /// `ip6:<network>[/<cidr>]` (§5.6).
    Ip6 {
        /// The network address as written.
        addr: Ipv6Addr,
        /// Prefix length (128 when not written).
        prefix: u8,
    },
    /// `exists:<domain-spec>` (§5.7).
    Exists(MacroString),
}

impl Mechanism {
    /// True for the mechanisms that count towards the limit of 10 DNS-querying terms
    /// (§4.6.4).
    pub fn queries_dns(&self) -> bool {
        !matches!(
            self,
            Mechanism::All | Mechanism::Ip4 { .. } | Mechanism::Ip6 { .. }
        )
    }
}

/// Why a record could not be parsed. Always a permerror (§4.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// The offending term as written (lossily decoded), if the error is in one term.
    pub term: Option<String>,
    /// Byte offset of the error in the record.
    pub offset: usize,
    /// What is wrong, for a person.
    pub message: String,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.term {
            Some(t) => write!(f, "term {t:?} (offset {}): {}", self.offset, self.message),
            None => write!(f, "offset {}: {}", self.offset, self.message),
        }
    }
}

impl std::error::Error for RecordError {}

/// True when a TXT record is an SPF record: it starts with `v=spf1` (case-insensitively,
/// ABNF strings are case-insensitive) followed by a space or the end (§4.5).
pub fn is_spf_record(txt: &[u8]) -> bool {
    txt.len() >= 6
        && txt[..6].eq_ignore_ascii_case(b"v=spf1")
        && matches!(txt.get(6), None | Some(b' '))
}

impl Record {
    /// Parses a whole record, `v=spf1` included. Checks the syntax of every term before
    /// anything is evaluated, as §4.6 requires, so an error anywhere is a permerror.
    pub fn parse(txt: &[u8]) -> Result<Record, RecordError> {
        if !is_spf_record(txt) {
            return Err(RecordError {
                term: None,
                offset: 0,
                message: "the record does not start with \"v=spf1\" followed by a space".into(),
            });
        }
        // §3.1 / §4.6.1: records are 7-bit ASCII and terms are separated by spaces only.
        if let Some(pos) = txt.iter().position(|&b| b >= 0x80) {
            return Err(RecordError {
                term: Some(term_at(txt, pos)),
                offset: pos,
                message: format!(
                    "non-ASCII byte {} (SPF records are 7-bit ASCII, RFC 7208 §3)",
                    show_byte(txt[pos])
                ),
            });
        }
        if let Some(pos) = txt.iter().position(|&b| b < 0x20 || b == 0x7f) {
            return Err(RecordError {
                term: Some(term_at(txt, pos)),
                offset: pos,
                message: format!(
                    "control character {} (terms are separated by spaces only, §4.6.1)",
                    show_byte(txt[pos])
                ),
            });
        }
        // Now plain ASCII.
        let text = String::from_utf8_lossy(txt);
        let mut record = Record {
            directives: Vec::new(),
            redirect: None,
            exp: None,
            unknown: Vec::new(),
        };
        let mut offset = 6;
        for term in text[6..].split(' ') {
            let here = offset;
            offset += term.len() + 1;
            if term.is_empty() {
                continue;
            }
            let fail = |message: String| RecordError {
                term: Some(term.to_owned()),
                offset: here,
                message,
            };
            match parse_term(term).map_err(fail)? {
                Term::Directive(d) => record.directives.push(d),
                Term::Redirect(m) => {
                    if record.redirect.is_some() {
                        return Err(fail("a second redirect= modifier (§6)".into()));
                    }
                    record.redirect = Some(m);
                }
                Term::Exp(m) => {
                    if record.exp.is_some() {
                        return Err(fail("a second exp= modifier (§6)".into()));
                    }
                    record.exp = Some(m);
                }
                Term::Unknown(name, value) => record.unknown.push((name, value)),
            }
        }
        Ok(record)
    }

    /// True when the record has an `all` mechanism; `redirect=` is then ignored (§6.1).
    pub fn has_all(&self) -> bool {
        self.directives
            .iter()
            .any(|d| d.mechanism == Mechanism::All)
    }
}

fn term_at(txt: &[u8], pos: usize) -> String {
    let start = txt[..pos]
        .iter()
        .rposition(|&b| b == b' ')
        .map_or(0, |p| p + 1);
    let end = txt[pos..]
        .iter()
        .position(|&b| b == b' ')
        .map_or(txt.len(), |p| p + pos);
    String::from_utf8_lossy(&txt[start..end]).into_owned()
}

enum Term {
    Directive(Directive),
    Redirect(MacroString),
    Exp(MacroString),
    Unknown(String, MacroString),
}

fn is_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic())
        && b.all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c))
}

fn parse_term(term: &str) -> Result<Term, String> {
    // A modifier is `name "=" ...`; anything else must be a directive.
    if let Some((name, value)) = term.split_once('=')
        && is_name(name)
    {
        let known = ["redirect", "exp"]
            .into_iter()
            .find(|k| name.eq_ignore_ascii_case(k));
        return match known {
            Some(lname) => {
                let m = domain_spec(value).map_err(|e| format!("{lname}=: {e}"))?;
                Ok(if lname == "redirect" {
                    Term::Redirect(m)
                } else {
                    Term::Exp(m)
                })
            }
            None => {
                let m = MacroString::parse(value, MacroContext::ModifierValue)
                    .map_err(|e| format!("modifier {name}=: {e}"))?;
                Ok(Term::Unknown(name.to_owned(), m))
            }
        };
    }
    let (qualifier, rest) = match term.as_bytes().first() {
        Some(b'+') => (Qualifier::Pass, &term[1..]),
        Some(b'-') => (Qualifier::Fail, &term[1..]),
        Some(b'~') => (Qualifier::SoftFail, &term[1..]),
        Some(b'?') => (Qualifier::Neutral, &term[1..]),
        _ => (Qualifier::Pass, term),
    };
    let name_len = rest
        .bytes()
        .position(|c| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    let (name, arg) = rest.split_at(name_len);
    let lname = ["all", "include", "exists", "a", "mx", "ptr", "ip4", "ip6"]
        .into_iter()
        .find(|k| name.eq_ignore_ascii_case(k))
        .unwrap_or("");
    let mechanism = match lname {
        "all" => {
            if !arg.is_empty() {
                return Err(format!(
                    "unexpected {arg:?} after all (all takes no argument)"
                ));
            }
            Mechanism::All
        }
        "include" | "exists" => {
            let spec = arg
                .strip_prefix(':')
                .ok_or_else(|| format!("{lname} needs \":domain\""))?;
            let m = domain_spec(spec).map_err(|e| format!("{lname}: {e}"))?;
            if lname == "include" {
                Mechanism::Include(m)
            } else {
                Mechanism::Exists(m)
            }
        }
        "a" | "mx" => {
            let (domain, cidr4, cidr6) =
                domain_and_cidr(arg).map_err(|e| format!("{lname}: {e}"))?;
            if lname == "a" {
                Mechanism::A {
                    domain,
                    cidr4,
                    cidr6,
                }
            } else {
                Mechanism::Mx {
                    domain,
                    cidr4,
                    cidr6,
                }
            }
        }
        "ptr" => {
            if arg.is_empty() {
                Mechanism::Ptr(None)
            } else {
                let spec = arg.strip_prefix(':').ok_or_else(|| {
                    format!("unexpected {arg:?} after ptr (ptr takes no CIDR length)")
                })?;
                Mechanism::Ptr(Some(domain_spec(spec).map_err(|e| format!("ptr: {e}"))?))
            }
        }
        "ip4" => {
            let spec = arg
                .strip_prefix(':')
                .ok_or_else(|| "ip4 needs \":address\"".to_owned())?;
            let (addr, cidr) = match spec.split_once('/') {
                Some((a, c)) => (a, Some(c)),
                None => (spec, None),
            };
            let addr: Ipv4Addr = addr.parse().map_err(|_| {
                format!(
                    "{addr:?} is not an IPv4 address (four decimal numbers without leading zeros)"
                )
            })?;
            let prefix = match cidr {
                Some(c) => cidr_len(c, 32)?,
                None => 32,
            };
            Mechanism::Ip4 { addr, prefix }
        }
        "ip6" => {
            let spec = arg
                .strip_prefix(':')
                .ok_or_else(|| "ip6 needs \":address\"".to_owned())?;
            let (addr, cidr) = match spec.split_once('/') {
                Some((a, c)) => (a, Some(c)),
                None => (spec, None),
            };
            let addr: Ipv6Addr = addr
                .parse()
                .map_err(|_| format!("{addr:?} is not an IPv6 address"))?;
            let prefix = match cidr {
                Some(c) => cidr_len(c, 128)?,
                None => 128,
            };
            Mechanism::Ip6 { addr, prefix }
        }
        _ if name.is_empty() => return Err("not a mechanism or modifier".into()),
        _ => {
            return Err(if term.contains('=') {
                format!("{name:?} is not a valid modifier name")
            } else {
                format!("unknown mechanism {name:?}")
            });
        }
    };
    Ok(Term::Directive(Directive {
        qualifier,
        mechanism,
    }))
}

/// Parses a `domain-spec` (§7.1): a macro string whose end is a macro or a top label.
fn domain_spec(s: &str) -> Result<MacroString, String> {
    if s.is_empty() {
        return Err("the domain is empty".into());
    }
    let m = MacroString::parse(s, MacroContext::DomainSpec).map_err(|e| e.to_string())?;
    m.check_domain_end()?;
    Ok(m)
}

/// `ip4-cidr-length = "/" ("0" / %x31-39 0*1DIGIT)`, `ip6-cidr-length = "/" ("0" / %x31-39 0*2DIGIT)`;
/// `c` is the part after the slash.
fn cidr_len(c: &str, max: u8) -> Result<u8, String> {
    let ok = !c.is_empty()
        && c.len() <= 3
        && c.bytes().all(|b| b.is_ascii_digit())
        && !(c.len() > 1 && c.starts_with('0'));
    let n: u8 = if ok {
        c.parse().unwrap_or(u8::MAX)
    } else {
        u8::MAX
    };
    if !ok || n > max {
        return Err(format!(
            "invalid CIDR prefix length \"/{c}\" (0 to {max}, no leading zeros)"
        ));
    }
    Ok(n)
}

/// Splits `[":" domain-spec] [dual-cidr-length]`.
fn domain_and_cidr(arg: &str) -> Result<(Option<MacroString>, u8, u8), String> {
    let (spec, mut cidr) = match arg.strip_prefix(':') {
        Some(rest) => {
            // The CIDR suffix is the trailing `/digits` and/or `//digits`.
            let mut end = rest.len();
            let mut suffix_start = end;
            for _ in 0..2 {
                let head = &rest[..end];
                match head.rfind('/') {
                    Some(p)
                        if p + 1 < head.len()
                            && head[p + 1..].bytes().all(|b| b.is_ascii_digit()) =>
                    {
                        let p = if p > 0 && head.as_bytes()[p - 1] == b'/' {
                            p - 1
                        } else {
                            p
                        };
                        suffix_start = p;
                        end = p;
                    }
                    _ => break,
                }
            }
            (Some(&rest[..suffix_start]), &rest[suffix_start..])
        }
        None => (None, arg),
    };
    if !cidr.is_empty() && !cidr.starts_with('/') {
        return Err(format!(
            "unexpected {cidr:?} (expected \":domain\" or \"/prefix\")"
        ));
    }
    let mut cidr4 = 32;
    let mut cidr6 = 128;
    if let Some(rest) = cidr.strip_prefix("//") {
        cidr6 = cidr_len(rest, 128)?;
        cidr = "";
    } else if let Some(rest) = cidr.strip_prefix('/') {
        match rest.split_once("//") {
            Some((c4, c6)) => {
                cidr4 = cidr_len(c4, 32)?;
                cidr6 = cidr_len(c6, 128)?;
            }
            None => cidr4 = cidr_len(rest, 32)?,
        }
        cidr = "";
    }
    debug_assert!(cidr.is_empty());
    let domain = match spec {
        Some(s) => Some(domain_spec(s)?),
        None => None,
    };
    Ok((domain, cidr4, cidr6))
}

impl fmt::Display for Directive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.qualifier.prefix())?;
        write!(f, "{}", self.mechanism)
    }
}

fn write_dual(f: &mut fmt::Formatter<'_>, c4: u8, c6: u8) -> fmt::Result {
    if c4 != 32 {
        write!(f, "/{c4}")?;
    }
    if c6 != 128 {
        write!(f, "//{c6}")?;
    }
    Ok(())
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mechanism::All => f.write_str("all"),
            Mechanism::Include(d) => write!(f, "include:{d}"),
            Mechanism::A {
                domain,
                cidr4,
                cidr6,
            }
            | Mechanism::Mx {
                domain,
                cidr4,
                cidr6,
            } => {
                f.write_str(if matches!(self, Mechanism::A { .. }) {
                    "a"
                } else {
                    "mx"
                })?;
                if let Some(d) = domain {
                    write!(f, ":{d}")?;
                }
                write_dual(f, *cidr4, *cidr6)
            }
            Mechanism::Ptr(None) => f.write_str("ptr"),
            Mechanism::Ptr(Some(d)) => write!(f, "ptr:{d}"),
            Mechanism::Ip4 { addr, prefix } => {
                write!(f, "ip4:{addr}")?;
                if *prefix != 32 {
                    write!(f, "/{prefix}")?;
                }
                Ok(())
            }
            Mechanism::Ip6 { addr, prefix } => {
                write!(f, "ip6:{addr}")?;
                if *prefix != 128 {
                    write!(f, "/{prefix}")?;
                }
                Ok(())
            }
            Mechanism::Exists(d) => write!(f, "exists:{d}"),
        }
    }
}

impl fmt::Display for Record {
    /// The record in canonical form: `v=spf1`, the directives, then the modifiers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("v=spf1")?;
        for d in &self.directives {
            write!(f, " {d}")?;
        }
        if let Some(r) = &self.redirect {
            write!(f, " redirect={r}")?;
        }
        if let Some(e) = &self.exp {
            write!(f, " exp={e}")?;
        }
        for (n, v) in &self.unknown {
            write!(f, " {n}={v}")?;
        }
        Ok(())
    }
}

/// A record parsed once, with what an evaluation shows of it: the record as published
/// (escaped for display) and each directive in canonical form.
#[derive(Debug)]
pub(crate) struct ParsedSpf {
    pub(crate) text: String,
    pub(crate) record: Record,
    pub(crate) terms: Vec<String>,
}

impl ParsedSpf {
    pub(crate) fn parse(txt: &[u8]) -> Result<ParsedSpf, RecordError> {
        let record = Record::parse(txt)?;
        Ok(ParsedSpf {
            text: super::trace::escape_txt(txt),
            terms: record.directives.iter().map(ToString::to_string).collect(),
            record,
        })
    }
}

/// A bounded cache of parsed SPF records shared between evaluations, keyed by the
/// record's bytes as published, like the DKIM key cache: a receiver sees the same few
/// thousand records over and over, and parses each once. The key is the record itself, so
/// a changed record is a different key and never served stale; when the cache is full it
/// is emptied and fills again. Records with syntax errors are not kept.
#[derive(Debug)]
pub struct SpfRecordCache {
    capacity: usize,
    map: std::sync::Mutex<
        std::collections::HashMap<Vec<u8>, std::sync::Arc<ParsedSpf>, foldhash::fast::RandomState>,
    >,
}

impl SpfRecordCache {
    /// A cache holding at most `capacity` records (at least 1).
    pub fn new(capacity: usize) -> Self {
        SpfRecordCache {
            capacity: capacity.max(1),
            map: std::sync::Mutex::default(),
        }
    }

    /// The number of records held.
    pub fn len(&self) -> usize {
        self.map.lock().map_or(0, |m| m.len())
    }

    /// True when no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn get_or_parse(
        &self,
        txt: &[u8],
    ) -> Result<std::sync::Arc<ParsedSpf>, RecordError> {
        if let Some(hit) = self.map.lock().ok().and_then(|m| m.get(txt).cloned()) {
            return Ok(hit);
        }
        let parsed = std::sync::Arc::new(ParsedSpf::parse(txt)?);
        if let Ok(mut m) = self.map.lock() {
            if m.len() >= self.capacity {
                m.clear();
            }
            m.insert(txt.to_vec(), parsed.clone());
        }
        Ok(parsed)
    }
}

/// Caches compare by identity: two options are equal when they share the same cache.
impl PartialEq for SpfRecordCache {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for SpfRecordCache {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_cache_parses_once_and_keeps_no_errors() {
        let cache = SpfRecordCache::new(2);
        let a = cache.get_or_parse(b"v=spf1 ip4:192.0.2.0/24 -all").unwrap();
        let again = cache.get_or_parse(b"v=spf1 ip4:192.0.2.0/24 -all").unwrap();
        assert!(std::sync::Arc::ptr_eq(&a, &again));
        assert_eq!(a.terms, ["ip4:192.0.2.0/24", "-all"]);
        assert_eq!(
            a.record,
            Record::parse(b"v=spf1 ip4:192.0.2.0/24 -all").unwrap()
        );
        assert!(cache.get_or_parse(b"v=spf1 ip4:300.0.0.1 -all").is_err());
        assert_eq!(cache.len(), 1);
        // A different record is a different key; a full cache empties and refills.
        cache.get_or_parse(b"v=spf1 -all").unwrap();
        cache.get_or_parse(b"v=spf1 ~all").unwrap();
        assert_eq!(cache.len(), 1);
    }

    fn parse(s: &str) -> Result<Record, RecordError> {
        Record::parse(s.as_bytes())
    }

    #[test]
    fn selection() {
        assert!(is_spf_record(b"v=spf1"));
        assert!(is_spf_record(b"V=SpF1 -all"));
        assert!(!is_spf_record(b"v=spf10"));
        assert!(!is_spf_record(b"v=spf1mx"));
        assert!(!is_spf_record(b"v=spf"));
    }

    #[test]
    fn round_trip() {
        for s in [
            "v=spf1 a mx/24 -a:example.com/24//64 ~ptr:example.org ?ip4:192.0.2.0/24 \
             ip6:2001:db8::/32 include:_spf.example.com exists:%{ir}.%{l1r+-}._spf.%{d} -all \
             redirect=_spf.example.net exp=exp.%{d} foo=bar",
            "v=spf1 mx//64 a:foo:bar/baz.example.com",
        ] {
            let r = parse(s).unwrap();
            assert_eq!(r.to_string(), s);
            assert_eq!(parse(&r.to_string()).unwrap(), r);
        }
    }

    #[test]
    fn cidr_forms() {
        let r = parse("v=spf1 a:foo.example.com/24//64 mx/0 a//0").unwrap();
        assert_eq!(
            r.directives[0].mechanism,
            Mechanism::A {
                domain: Some(
                    MacroString::parse("foo.example.com", MacroContext::DomainSpec).unwrap()
                ),
                cidr4: 24,
                cidr6: 64
            }
        );
        for bad in [
            "v=spf1 a/33",
            "v=spf1 a//129",
            "v=spf1 a/24/64",
            "v=spf1 ip4:1.2.3.4/032",
            "v=spf1 ip4:1.2.3.4//32",
            "v=spf1 ip4:1.2.3",
            "v=spf1 ip4:1.2.3.4:8080",
            "v=spf1 ip6::CAFE::BABE",
            "v=spf1 ip6:::1.1.1.1//33",
            "v=spf1 include:ip5.example.com/24",
            "v=spf1 ptr/0",
            "v=spf1 exists",
            "v=spf1 -all.",
            "v=spf1 -all:foobar",
            "v=spf1 redirect:t2.example.com",
            "v=spf1 1up=foo",
            "v=spf1 =all",
            "v=spf1 moo.cow/far_out=man:dog/cat",
            "v=spf1 a:foo.example.com\0",
            "v=spf1 exp= -all",
            "v=spf1 exp=a.example.com exp=b.example.com",
            "v=spf1 foo=%abc",
            "v=spf1 a:\u{FEFF}garbage.example.net",
        ] {
            let e = parse(bad);
            assert!(e.is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn errors_name_the_term() {
        let e = parse("v=spf1 ip4:1.2.3.4 a:\u{EF}x.example.com -all").unwrap_err();
        assert!(e.message.contains("non-ASCII"), "{e}");
        assert_eq!(e.term.as_deref(), Some("a:\u{EF}x.example.com"));
        let e = parse("v=spf1 a:ctrl.example.com\rptr -all").unwrap_err();
        assert!(e.message.contains("control character 0x0D"), "{e}");
        let e = parse("v=spf1 a:111.222.33.44").unwrap_err();
        assert!(e.to_string().contains("ip4:"), "{e}");
    }
}
