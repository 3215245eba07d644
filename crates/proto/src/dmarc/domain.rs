//! Domain names as DMARC handles them: lower-case A-labels, no trailing dot, validated.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// Most labels a name may have (a 253-octet name has at most 127).
const MAX_LABELS: usize = 127;

/// A validated domain name: lower-case A-labels separated by dots, no trailing dot, each
/// label 1 to 63 octets, 253 octets at most. Comparisons are therefore plain string
/// comparisons (RFC 4343 case-insensitivity is applied on construction).
///
/// The text is shared: cloning, [`DomainName::suffix`] and [`DomainName::parent`] never
/// copy it (a suffix is the same text seen from a later offset).
#[derive(Clone)]
pub struct DomainName {
    /// The whole name this one was cut from.
    text: Arc<str>,
    /// Where this name starts in `text` (the start of a label).
    start: u16,
}

/// Why a string is not a usable domain name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainError {
    /// The input, for the message.
    pub input: String,
    /// What was wrong.
    pub reason: &'static str,
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

/// Byte classes for [`check_ascii`].
const INVALID: u8 = 0;
const LOWER: u8 = 1;
const DIGIT: u8 = 2;
const UPPER: u8 = 3;
const DOT: u8 = 4;

/// The class of each byte: letters, digits, `-` and `_` are label characters.
static CLASS: [u8; 256] = {
    let mut t = [INVALID; 256];
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
        } else {
            INVALID
        };
        b += 1;
    }
    t
};

/// Checks the label syntax of an ASCII name (case does not matter) and says whether it is
/// already lower-case. One pass over the bytes.
fn check_ascii(ascii: &str) -> Result<bool, &'static str> {
    if ascii.len() > 253 {
        return Err("longer than 253 octets");
    }
    let mut labels = 1usize;
    let mut label_len = 0usize;
    let mut lower = true;
    // Whether the current label is all digits so far.
    let mut numeric = true;
    for &b in ascii.as_bytes() {
        match CLASS[usize::from(b)] {
            LOWER => numeric = false,
            DIGIT => {}
            UPPER => {
                lower = false;
                numeric = false;
            }
            DOT => {
                if label_len == 0 {
                    return Err("empty label");
                }
                labels += 1;
                label_len = 0;
                numeric = true;
                continue;
            }
            _ => return Err("a label has characters other than letters, digits, '-' and '_'"),
        }
        label_len += 1;
        if label_len > 63 {
            return Err("a label is longer than 63 octets");
        }
    }
    if label_len == 0 {
        return Err("empty label");
    }
    if labels > MAX_LABELS {
        return Err("too many labels");
    }
    if numeric {
        // RFC 3696 §2: no top-level domain is all-numeric, so `192.0.2.1` is an
        // address written without brackets, not a domain name.
        return Err("the last label is all digits (an IP address, not a domain)");
    }
    Ok(lower)
}

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
        let err = |reason| DomainError {
            input: input.chars().take(300).collect(),
            reason,
        };
        let trimmed = input.strip_suffix('.').unwrap_or(input);
        if trimmed.is_empty() {
            return Err(err("empty"));
        }
        if trimmed.len() > 1024 {
            return Err(err("longer than 253 octets"));
        }
        if !trimmed.is_ascii() {
            let ascii = idna::domain_to_ascii(trimmed)
                .map_err(|_| err("IDNA conversion to A-labels failed"))?;
            check_ascii(&ascii).map_err(err)?;
            return Ok(Cow::Owned(ascii.to_ascii_lowercase()));
        }
        if check_ascii(trimmed).map_err(err)? {
            Ok(Cow::Borrowed(trimmed))
        } else {
            Ok(Cow::Owned(trimmed.to_ascii_lowercase()))
        }
    }

    /// A name already validated and lower-cased (as [`DomainName::normalize`] returns it).
    pub(crate) fn from_valid(text: &str) -> DomainName {
        DomainName {
            text: Arc::from(text),
            start: 0,
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        self.text.get(usize::from(self.start)..).unwrap_or_default()
    }

    /// The number of labels.
    pub fn label_count(&self) -> usize {
        self.as_str().bytes().filter(|&b| b == b'.').count() + 1
    }

    /// This name from byte offset `pos` of [`DomainName::as_str`] on (the start of a label).
    fn tail_at(&self, pos: usize) -> DomainName {
        DomainName {
            text: self.text.clone(),
            // Names are at most 253 octets, so the offset always fits.
            start: self.start + u16::try_from(pos).unwrap_or(0),
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
        let ok = labels.len() <= MAX_LABELS
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
