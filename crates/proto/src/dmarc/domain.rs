//! Domain names as DMARC handles them: lower-case A-labels, no trailing dot, validated.

use std::fmt;

/// Most labels a name may have (a 253-octet name has at most 127).
const MAX_LABELS: usize = 127;

/// A validated domain name: lower-case A-labels separated by dots, no trailing dot, each
/// label 1 to 63 octets, 253 octets at most. Comparisons are therefore plain string
/// comparisons (RFC 4343 case-insensitivity is applied on construction).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainName(String);

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

impl DomainName {
    /// Validates and normalises `input`: one trailing dot is removed, ASCII is lower-cased,
    /// U-labels are converted to A-labels (RFC 5890 §2.3.2.1, UTS #46 mapping). Empty labels
    /// (a leading dot, `a..b`), over-long labels or names, characters other than letters,
    /// digits, `-` and `_`, and an all-numeric last label (an IP address) are rejected.
    pub fn new(input: &str) -> Result<DomainName, DomainError> {
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
        let ascii = if trimmed.is_ascii() {
            trimmed.to_ascii_lowercase()
        } else {
            idna::domain_to_ascii(trimmed).map_err(|_| err("IDNA conversion to A-labels failed"))?
        };
        if ascii.len() > 253 {
            return Err(err("longer than 253 octets"));
        }
        let mut labels = 0;
        for label in ascii.split('.') {
            labels += 1;
            if label.is_empty() {
                return Err(err("empty label"));
            }
            if label.len() > 63 {
                return Err(err("a label is longer than 63 octets"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(err(
                    "a label has characters other than letters, digits, '-' and '_'",
                ));
            }
        }
        if labels > MAX_LABELS {
            return Err(err("too many labels"));
        }
        if ascii
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            // RFC 3696 §2: no top-level domain is all-numeric, so `192.0.2.1` is an
            // address written without brackets, not a domain name.
            return Err(err(
                "the last label is all digits (an IP address, not a domain)",
            ));
        }
        Ok(DomainName(ascii))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number of labels.
    pub fn label_count(&self) -> usize {
        self.0.split('.').count()
    }

    /// The last `n` labels (the whole name when `n` is at least the label count).
    pub fn suffix(&self, n: usize) -> DomainName {
        let count = self.label_count();
        if n >= count {
            return self.clone();
        }
        let skip = count - n;
        let mut pos = 0;
        for (i, (idx, _)) in self.0.match_indices('.').enumerate() {
            if i + 1 == skip {
                pos = idx + 1;
                break;
            }
        }
        DomainName(self.0[pos..].to_owned())
    }

    /// The parent: the name without its left-most label; `None` for a single label.
    pub fn parent(&self) -> Option<DomainName> {
        self.0
            .split_once('.')
            .map(|(_, rest)| DomainName(rest.to_owned()))
    }

    /// True if `self` equals `other` or lies below it.
    pub fn is_within(&self, other: &DomainName) -> bool {
        self.0 == other.0
            || (self.0.len() > other.0.len()
                && self.0.ends_with(other.0.as_str())
                && self.0.as_bytes()[self.0.len() - other.0.len() - 1] == b'.')
    }

    /// The `_dmarc.` name for this domain.
    pub fn dmarc_name(&self) -> String {
        format!("_dmarc.{}", self.0)
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for DomainName {
    fn as_ref(&self) -> &str {
        &self.0
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

    #[test]
    fn suffixes() {
        let d = DomainName::new("a.b.c.example.com").unwrap();
        assert_eq!(d.label_count(), 5);
        assert_eq!(d.suffix(2).as_str(), "example.com");
        assert_eq!(d.suffix(9).as_str(), "a.b.c.example.com");
        assert_eq!(d.parent().unwrap().as_str(), "b.c.example.com");
        assert!(d.is_within(&DomainName::new("example.com").unwrap()));
        assert!(!d.is_within(&DomainName::new("le.com").unwrap()));
    }
}
