//! Domain names: the one syntax check every protocol uses ([`check`], with the rules of
//! each: [`NameRules`]), the shared text names are held in ([`SharedStr`]) and the
//! validated, normalised name ([`DomainName`]) built on it.
//!
//! The protocols differ in what a name may hold, not in how it is checked: DMARC and DKIM
//! take labels of letters, digits, `-` and `_` (DMARC also refuses an all-digit last label,
//! an address written without brackets), SPF's initial check (RFC 7208 §4.3) takes any
//! printable ASCII in two or more labels, and a name built by SPF's macros only has to fit
//! in DNS. Every check is one pass over the bytes.

use std::borrow::{Borrow, Cow};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use serde::Serialize;
use smallvec::SmallVec;

/// What the labels of a name may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelBytes {
    /// Letters, digits, `-` and `_` (the host names of DNS, with `_` for service names).
    Ldh,
    /// Printable ASCII other than `.` (RFC 7208 §4.3 asks no more of SPF's domain).
    Printable,
    /// Any byte other than `.` (a name DNS can carry, as SPF's macros build them).
    Any,
}

/// The rules a protocol checks a name by; see the constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameRules {
    /// What a label may contain.
    pub bytes: LabelBytes,
    /// Two labels or more.
    pub multi_label: bool,
    /// The last label may not be all digits (RFC 3696 §2: no top-level domain is, so
    /// `192.0.2.1` is an address).
    pub no_numeric_tld: bool,
}

impl NameRules {
    /// DMARC's Author and policy domains.
    pub const DMARC: NameRules = NameRules {
        bytes: LabelBytes::Ldh,
        multi_label: false,
        no_numeric_tld: true,
    };
    /// DKIM's (and ARC's) `d=` and `s=`, and the names a signer is given.
    pub const DKIM: NameRules = NameRules {
        bytes: LabelBytes::Ldh,
        multi_label: false,
        no_numeric_tld: false,
    };
    /// SPF's initial domain (RFC 7208 §4.3): a multi-label name of printable ASCII.
    pub const SPF: NameRules = NameRules {
        bytes: LabelBytes::Printable,
        multi_label: true,
        no_numeric_tld: false,
    };
    /// A name to ask DNS about: any bytes, in labels of 1 to 63 octets.
    pub const QUERY: NameRules = NameRules {
        bytes: LabelBytes::Any,
        multi_label: false,
        no_numeric_tld: false,
    };
}

/// What is wrong with a name, the first fault found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameFault {
    /// No text at all.
    Empty,
    /// An address literal (`[192.0.2.1]`), not a name.
    AddressLiteral,
    /// Longer than 253 octets.
    TooLong,
    /// An empty label: a leading dot or two dots in a row.
    EmptyLabel,
    /// A label longer than 63 octets (its length).
    LongLabel(usize),
    /// A byte the rules do not allow in a label.
    Byte(u8),
    /// A single label where the rules ask for two or more.
    SingleLabel,
    /// The last label is all digits.
    NumericTld,
    /// A name with U-labels that has no A-label form (UTS #46).
    Idna,
}

impl fmt::Display for NameFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameFault::Empty => f.write_str("empty"),
            NameFault::AddressLiteral => f.write_str("an address literal, not a domain name"),
            NameFault::TooLong => f.write_str("longer than 253 octets"),
            NameFault::EmptyLabel => f.write_str("empty label"),
            NameFault::LongLabel(n) => write!(f, "a label is longer than 63 octets ({n} octets)"),
            NameFault::Byte(_) => {
                f.write_str("a label has characters other than letters, digits, '-' and '_'")
            }
            NameFault::SingleLabel => f.write_str("not a fully qualified (multi-label) name"),
            NameFault::NumericTld => {
                f.write_str("the last label is all digits (an IP address, not a domain)")
            }
            NameFault::Idna => f.write_str("IDNA conversion to A-labels failed"),
        }
    }
}

/// Byte classes for [`check`].
const OTHER: u8 = 0;
const LOWER: u8 = 1;
const DIGIT: u8 = 2;
const UPPER: u8 = 3;
const DOT: u8 = 4;
const PRINTABLE: u8 = 5;

/// The class of each byte: letters, digits, `-` and `_` are LDH label bytes.
static CLASS: [u8; 256] = {
    let mut t = [OTHER; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = if c.is_ascii_lowercase() || c == b'-' || c == b'_' {
            LOWER
        } else if c.is_ascii_digit() {
            DIGIT
        } else if c.is_ascii_uppercase() {
            UPPER
        } else if c == b'.' {
            DOT
        } else if c.is_ascii_graphic() {
            PRINTABLE
        } else {
            OTHER
        };
        b += 1;
    }
    t
};

/// Checks `name` (without a trailing dot; case does not matter) by `rules`, in one pass;
/// `Ok` says whether it is already lower-case.
pub fn check(name: &str, rules: NameRules) -> Result<bool, NameFault> {
    if name.is_empty() {
        return Err(NameFault::Empty);
    }
    if name.len() > 253 {
        return Err(NameFault::TooLong);
    }
    if name.starts_with('[') && rules.bytes != LabelBytes::Any {
        return Err(NameFault::AddressLiteral);
    }
    let mut labels = 1usize;
    let mut label_len = 0usize;
    let mut lower = true;
    // Whether the current label is all digits so far.
    let mut numeric = true;
    for &b in name.as_bytes() {
        match CLASS[usize::from(b)] {
            LOWER => numeric = false,
            DIGIT => {}
            UPPER => {
                lower = false;
                numeric = false;
            }
            DOT => {
                if label_len == 0 {
                    return Err(NameFault::EmptyLabel);
                }
                labels += 1;
                label_len = 0;
                numeric = true;
                continue;
            }
            PRINTABLE if rules.bytes != LabelBytes::Ldh => numeric = false,
            _ if rules.bytes == LabelBytes::Any => numeric = false,
            _ => return Err(NameFault::Byte(b)),
        }
        label_len += 1;
        if label_len > 63 {
            return Err(NameFault::LongLabel(long_label(name)));
        }
    }
    if label_len == 0 {
        return Err(NameFault::EmptyLabel);
    }
    if rules.multi_label && labels < 2 {
        return Err(NameFault::SingleLabel);
    }
    if rules.no_numeric_tld && numeric {
        return Err(NameFault::NumericTld);
    }
    Ok(lower)
}

/// The length of the first label of `name` longer than 63 octets (for the message).
fn long_label(name: &str) -> usize {
    name.as_bytes()
        .split(|&b| b == b'.')
        .map(<[u8]>::len)
        .find(|&l| l > 63)
        .unwrap_or(64)
}

/// True when `name`, with or without one trailing dot, passes [`check`] by `rules`.
pub fn is_valid(name: &str, rules: NameRules) -> bool {
    check(name.strip_suffix('.').unwrap_or(name), rules).is_ok()
}

/// An immutable string that is shared, not copied, when cloned, and that can be a part of
/// another one: the domain of `alice@example.com` is a view into the address. It
/// dereferences to `str`, compares, hashes, displays and serializes as its text, and
/// converts into a `String`.
///
/// [`SpfRequest`](crate::spf::SpfRequest) and [`SpfOutput`](crate::spf::SpfOutput) hold their names
/// this way, so that the two evaluations of a message (MAIL FROM and HELO) and their
/// outputs share one copy of each name.
#[derive(Clone)]
pub struct SharedStr {
    buf: Arc<str>,
    /// The byte range of `buf` this string is; always on character boundaries.
    start: usize,
    end: usize,
}

impl SharedStr {
    /// The text.
    pub fn as_str(&self) -> &str {
        if self.start == 0 && self.end == self.buf.len() {
            return &self.buf;
        }
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// `sub` as a view into this string when it is a part of it (a slice of
    /// [`SharedStr::as_str`]), else as a copy.
    pub fn slice(&self, sub: &str) -> SharedStr {
        let whole = self.as_str();
        if sub.len() == whole.len() && sub.as_ptr() == whole.as_ptr() {
            return self.clone();
        }
        let base = whole.as_ptr() as usize;
        let at = sub.as_ptr() as usize;
        if at >= base && at + sub.len() <= base + whole.len() {
            let start = self.start + (at - base);
            return SharedStr {
                buf: self.buf.clone(),
                start,
                end: start + sub.len(),
            };
        }
        SharedStr::from(sub)
    }

    /// True when both are views into the same buffer (tests of the sharing).
    #[cfg(test)]
    pub(crate) fn same_buffer(&self, other: &SharedStr) -> bool {
        Arc::ptr_eq(&self.buf, &other.buf)
    }

    /// This string with `prefix` in front, as a view into the same buffer when the buffer
    /// holds `prefix` right before it (no copy), else `None`.
    pub(crate) fn with_prefix(&self, prefix: &str) -> Option<SharedStr> {
        let start = self.start.checked_sub(prefix.len())?;
        (self.buf.get(start..self.start)? == prefix).then(|| SharedStr {
            buf: self.buf.clone(),
            start,
            end: self.end,
        })
    }

    /// The parts joined, in one allocation.
    pub fn concat(parts: &[&str]) -> SharedStr {
        let mut buf: SmallVec<[u8; 256]> = SmallVec::new();
        for p in parts {
            buf.extend_from_slice(p.as_bytes());
        }
        match std::str::from_utf8(&buf) {
            Ok(s) => SharedStr::from(s),
            // The parts are `str`s, so their concatenation is UTF-8.
            Err(_) => SharedStr::from(parts.concat()),
        }
    }
}

impl From<&str> for SharedStr {
    fn from(s: &str) -> Self {
        SharedStr {
            buf: Arc::from(s),
            start: 0,
            end: s.len(),
        }
    }
}

impl From<String> for SharedStr {
    fn from(s: String) -> Self {
        let end = s.len();
        SharedStr {
            buf: Arc::from(s),
            start: 0,
            end,
        }
    }
}

impl From<&String> for SharedStr {
    fn from(s: &String) -> Self {
        SharedStr::from(s.as_str())
    }
}

impl From<Cow<'_, str>> for SharedStr {
    fn from(s: Cow<'_, str>) -> Self {
        SharedStr::from(&*s)
    }
}

impl From<SharedStr> for String {
    fn from(s: SharedStr) -> Self {
        s.as_str().to_owned()
    }
}

impl From<&SharedStr> for String {
    fn from(s: &SharedStr) -> Self {
        s.as_str().to_owned()
    }
}

impl From<SharedStr> for Cow<'static, str> {
    fn from(s: SharedStr) -> Self {
        Cow::Owned(s.into())
    }
}

impl Deref for SharedStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for SharedStr {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for SharedStr {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SharedStr {}

impl PartialOrd for SharedStr {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SharedStr {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for SharedStr {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SharedStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for SharedStr {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<SharedStr> for str {
    fn eq(&self, other: &SharedStr) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<SharedStr> for &str {
    fn eq(&self, other: &SharedStr) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<SharedStr> for String {
    fn eq(&self, other: &SharedStr) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Serialize for SharedStr {
    /// As the text.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A validated domain name: lower-case A-labels separated by dots, no trailing dot, each
/// label 1 to 63 octets, 253 octets at most. Comparisons are therefore plain string
/// comparisons (RFC 4343 case-insensitivity is applied on construction).
///
/// The text is shared: cloning, [`DomainName::suffix`] and [`DomainName::parent`] never
/// copy it (a suffix is the same text seen from a later offset).
#[derive(Clone)]
pub struct DomainName {
    /// The name: the whole name it was cut from, or a suffix of it.
    text: SharedStr,
}

/// Why a string is not a usable domain name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainError {
    /// The input, for the message.
    pub input: String,
    /// What was wrong.
    pub reason: NameFault,
}

impl fmt::Display for DomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a usable domain name: {}",
            self.input, self.reason
        )
    }
}

impl std::error::Error for DomainError {}

impl DomainName {
    /// Validates and normalises `input`: one trailing dot is removed, ASCII is lower-cased,
    /// U-labels are converted to A-labels (RFC 5890 §2.3.2.1, UTS #46 mapping). Empty labels
    /// (a leading dot, `a..b`), over-long labels or names, characters other than letters,
    /// digits, `-` and `_`, and an all-numeric last label (an IP address) are rejected.
    pub fn new(input: &str) -> Result<DomainName, DomainError> {
        DomainName::normalize(input).map(|n| DomainName::from_valid(&n))
    }

    /// The validation and normalisation of [`DomainName::new`] without building a name:
    /// the input itself (without a trailing dot) when it is already a lower-case, valid
    /// name, else the normalised text.
    pub fn normalize(input: &str) -> Result<Cow<'_, str>, DomainError> {
        let err = |reason: NameFault| DomainError {
            input: input.chars().take(300).collect(),
            reason,
        };
        let trimmed = input.strip_suffix('.').unwrap_or(input);
        if trimmed.is_empty() {
            return Err(err(NameFault::Empty));
        }
        if trimmed.len() > 1024 {
            return Err(err(NameFault::TooLong));
        }
        if !trimmed.is_ascii() {
            let ascii = idna::domain_to_ascii(trimmed).map_err(|_| DomainError {
                input: input.chars().take(300).collect(),
                reason: NameFault::Idna,
            })?;
            check(&ascii, NameRules::DMARC).map_err(err)?;
            return Ok(Cow::Owned(ascii.to_ascii_lowercase()));
        }
        if check(trimmed, NameRules::DMARC).map_err(err)? {
            Ok(Cow::Borrowed(trimmed))
        } else {
            Ok(Cow::Owned(trimmed.to_ascii_lowercase()))
        }
    }

    /// A name already validated and lower-cased (as [`DomainName::normalize`] returns it).
    pub(crate) fn from_valid(text: &str) -> DomainName {
        DomainName {
            text: SharedStr::from(text),
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        self.text.as_str()
    }

    /// The name as the shared text it is held in (not copied).
    pub fn as_shared(&self) -> &SharedStr {
        &self.text
    }

    /// The number of labels.
    pub fn label_count(&self) -> usize {
        self.as_str().bytes().filter(|&b| b == b'.').count() + 1
    }

    /// This name from byte offset `pos` of [`DomainName::as_str`] on (the start of a label).
    fn tail_at(&self, pos: usize) -> DomainName {
        DomainName {
            text: self
                .text
                .slice(self.as_str().get(pos..).unwrap_or_default()),
        }
    }

    /// The last `n` labels (the whole name when `n` is at least the label count).
    pub fn suffix(&self, n: usize) -> DomainName {
        let s = self.as_str();
        if n == 0 {
            return self.clone();
        }
        let mut seen = 0;
        for (idx, b) in s.bytes().enumerate().rev() {
            if b == b'.' {
                seen += 1;
                if seen == n {
                    return self.tail_at(idx + 1);
                }
            }
        }
        self.clone()
    }

    /// The parent: the name without its left-most label; `None` for a single label.
    pub fn parent(&self) -> Option<DomainName> {
        let s = self.as_str();
        s.find('.').map(|idx| self.tail_at(idx + 1))
    }

    /// True if `self` equals `other` or lies below it.
    pub fn is_within(&self, other: &DomainName) -> bool {
        within(self.as_str(), other.as_str())
    }

    /// The `_dmarc.` name for this domain.
    pub fn dmarc_name(&self) -> String {
        format!("_dmarc.{}", self.as_str())
    }
}

/// True if the normalised name `me` equals `them` or lies below it.
pub(crate) fn within(me: &str, them: &str) -> bool {
    me == them
        || (me.len() > them.len()
            && me.ends_with(them)
            && me.as_bytes().get(me.len() - them.len() - 1) == Some(&b'.'))
}

impl std::ops::Deref for DomainName {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl serde::Serialize for DomainName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl PartialEq for DomainName {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for DomainName {}

impl PartialEq<str> for DomainName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl std::hash::Hash for DomainName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialOrd for DomainName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for DomainName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl fmt::Debug for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DomainName").field(&self.as_str()).finish()
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for DomainName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<&DomainName> for String {
    fn from(d: &DomainName) -> String {
        d.as_str().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_share_and_copies_do_not() {
        let addr = SharedStr::from("alice@example.com");
        let (_, d) = addr.split_once('@').unwrap();
        let domain = addr.slice(d);
        assert_eq!(domain, "example.com");
        assert!(std::sync::Arc::ptr_eq(&domain.buf, &addr.buf));
        let other = addr.slice("example.com");
        assert_eq!(other, domain);
        assert!(!std::sync::Arc::ptr_eq(&other.buf, &addr.buf));
        let sub = domain.slice(&domain[8..]);
        assert_eq!(sub, "com");
        assert_eq!(
            SharedStr::concat(&["postmaster@", &domain]),
            "postmaster@example.com"
        );
        let long = "x".repeat(300);
        assert_eq!(SharedStr::concat(&[&long, "é"]).len(), 302);
        assert_eq!(String::from(domain.clone()), "example.com");
        assert_eq!(
            format!("{domain} {domain:?}"),
            "example.com \"example.com\""
        );
    }

    #[test]
    fn one_check_with_each_protocols_rules() {
        use NameFault::*;
        for (name, dmarc, dkim, spf, query) in [
            ("example.com", Ok(true), Ok(true), Ok(true), Ok(true)),
            ("Example.COM", Ok(false), Ok(false), Ok(false), Ok(false)),
            ("localhost", Ok(true), Ok(true), Err(SingleLabel), Ok(true)),
            ("192.0.2.1", Err(NumericTld), Ok(true), Ok(true), Ok(true)),
            (
                "[192.0.2.1]",
                Err(AddressLiteral),
                Err(AddressLiteral),
                Err(AddressLiteral),
                Ok(true),
            ),
            (
                "a+b.example",
                Err(Byte(b'+')),
                Err(Byte(b'+')),
                Ok(true),
                Ok(true),
            ),
            (
                "a b.example",
                Err(Byte(b' ')),
                Err(Byte(b' ')),
                Err(Byte(b' ')),
                Ok(true),
            ),
            (
                "a..example",
                Err(EmptyLabel),
                Err(EmptyLabel),
                Err(EmptyLabel),
                Err(EmptyLabel),
            ),
            ("", Err(Empty), Err(Empty), Err(Empty), Err(Empty)),
        ] {
            assert_eq!(check(name, NameRules::DMARC), dmarc, "{name:?} DMARC");
            assert_eq!(check(name, NameRules::DKIM), dkim, "{name:?} DKIM");
            assert_eq!(check(name, NameRules::SPF), spf, "{name:?} SPF");
            assert_eq!(check(name, NameRules::QUERY), query, "{name:?} QUERY");
        }
        let long = format!("{}.example", "a".repeat(64));
        assert_eq!(check(&long, NameRules::SPF), Err(LongLabel(64)));
        assert_eq!(check(&"a.".repeat(127), NameRules::QUERY), Err(TooLong));
        assert!(is_valid("example.com.", NameRules::DKIM));
    }

    #[test]
    fn normalises_and_rejects() {
        assert_eq!(
            DomainName::new("Example.COM.").unwrap().as_str(),
            "example.com"
        );
        assert_eq!(
            DomainName::new("пример.рф").unwrap().as_str(),
            "xn--e1afmkfd.xn--p1ai"
        );
        for bad in [
            "",
            ".",
            ".mac.com",
            "a..b",
            "a b.com",
            "[1.2.3.4]",
            &"a".repeat(64),
        ] {
            assert!(DomainName::new(bad).is_err(), "{bad:?}");
        }
    }

    /// The label rules as first written (split per label), for ASCII input.
    fn reference(input: &str) -> Option<String> {
        let trimmed = input.strip_suffix('.').unwrap_or(input);
        if trimmed.is_empty() || trimmed.len() > 253 {
            return None;
        }
        let ascii = trimmed.to_ascii_lowercase();
        let labels: Vec<&str> = ascii.split('.').collect();
        let ok = labels.len() <= 127
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
            && !labels
                .last()
                .is_some_and(|t| t.bytes().all(|b| b.is_ascii_digit()));
        ok.then_some(ascii)
    }

    proptest::proptest! {
        #[test]
        fn one_pass_check_agrees_with_the_label_rules(s in "[a-cA-C0-9._ -]{0,12}") {
            let got = DomainName::new(&s).ok().map(|d| d.as_str().to_owned());
            proptest::prop_assert_eq!(got, reference(&s));
            if let Ok(d) = DomainName::new(&s) {
                // Suffixes and parents share the text and are names of their own.
                let mut p = Some(d.clone());
                let mut n = d.label_count();
                while let Some(x) = p {
                    proptest::prop_assert_eq!(&x, &d.suffix(n));
                    proptest::prop_assert_eq!(DomainName::new(x.as_str()).ok(), Some(x.clone()).filter(|_| reference(x.as_str()).is_some()));
                    p = x.parent();
                    n -= 1;
                }
            }
        }
    }

    #[test]
    fn suffixes() {
        let d = DomainName::new("a.b.c.example.com").unwrap();
        assert_eq!(d.label_count(), 5);
        assert_eq!(d.suffix(2).as_str(), "example.com");
        assert_eq!(d.suffix(9).as_str(), "a.b.c.example.com");
        assert_eq!(d.parent().unwrap().as_str(), "b.c.example.com");
        assert!(d.is_within(&DomainName::new("example.com").unwrap()));
        assert!(!d.is_within(&DomainName::new("le.com").unwrap()));
        assert_eq!(d.suffix(0), d);
        assert_eq!(d.suffix(1).as_str(), "com");
        assert_eq!(d.suffix(2).parent().unwrap().as_str(), "com");
        assert_eq!(d.suffix(1).parent(), None);
        assert_eq!(d.suffix(2), DomainName::new("EXAMPLE.com.").unwrap());
        assert_eq!(format!("{:?}", d.suffix(2)), "DomainName(\"example.com\")");
        assert_eq!(
            DomainName::new("Ab_C-1.Example").unwrap().as_str(),
            "ab_c-1.example"
        );
    }
}
