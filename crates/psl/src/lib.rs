//! The [Public Suffix List](https://publicsuffix.org/), embedded and parsed once.
//!
//! RFC 7489 §3.2 defines a domain's Organizational Domain as its registrable domain: the
//! public suffix plus one label. RFC 9989 replaced that with a DNS tree walk, but the RFC 7489
//! mode of `dmarc-proto` still needs the list, so it lives here behind a small, non-generic
//! API: this crate compiles once and edits elsewhere never rebuild the list.
//!
//! The copy in `data/public_suffix_list.dat` is compiled in with `include_str!` and parsed
//! lazily at first use ([`Psl::builtin`]); there is no I/O. [`Psl::parse`] loads any other
//! copy from text (an older list, a fresher one a caller fetched itself).
//!
//! Matching follows the algorithm on publicsuffix.org: rules are lower-case A-labels
//! (U-label rules are converted when the list is parsed), `*.` is a wildcard for one label,
//! `!` marks an exception; an exception beats every other rule, otherwise the rule with the
//! most labels wins, and an unlisted top-level domain is its own public suffix (the implicit
//! `*` rule). Each rule remembers its section (`===BEGIN ICANN DOMAINS===` or the PRIVATE
//! section), and every query says which sections to use.
//!
//! ```
//! use dmarc_psl::{Psl, Sections};
//! let psl = Psl::builtin();
//! assert_eq!(psl.registrable_domain("a.b.Example.CO.UK", Sections::Icann).as_deref(), Some("example.co.uk"));
//! assert_eq!(psl.registrable_domain("co.uk", Sections::Icann), None);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::OnceLock;

/// The list shipped with this crate (MPL-2.0, see `data/LICENSE-MPL-2.0`).
pub const BUILTIN_LIST: &str = include_str!("../data/public_suffix_list.dat");

/// Which sections of the list a query uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Sections {
    /// Only the ICANN section: the suffixes under which registrars sell names. This is what
    /// an Organizational Domain usually means for DMARC (RFC 7489 §3.2 speaks of "the domain
    /// that was registered with a domain name registrar").
    #[default]
    Icann,
    /// The ICANN and the PRIVATE sections (suffixes run by companies, such as
    /// `blogspot.com`). The publicsuffix.org test cases assume this.
    All,
}

impl Sections {
    fn mask(self) -> u8 {
        match self {
            Sections::Icann => ICANN,
            Sections::All => ICANN | PRIVATE,
        }
    }
}

const ICANN: u8 = 1;
const PRIVATE: u8 = 2;

/// The rules known for one name, each as a bit set of the sections that list it.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    /// `name` itself is a rule.
    normal: u8,
    /// `*.name` is a rule.
    wildcard: u8,
    /// `!name` is a rule.
    exception: u8,
}

/// A parsed Public Suffix List.
#[derive(Debug, Clone, Default)]
pub struct Psl {
    rules: HashMap<Box<str>, Entry>,
    count: usize,
}

impl Psl {
    /// The list shipped with this crate, parsed on first use and shared afterwards.
    pub fn builtin() -> &'static Psl {
        static BUILTIN: OnceLock<Psl> = OnceLock::new();
        BUILTIN.get_or_init(|| Psl::parse(BUILTIN_LIST))
    }

    /// Parses a list in the publicsuffix.org format: one rule per line, read up to the first
    /// whitespace; `//` starts a comment line; blank lines are skipped. Rules before any
    /// section marker, or in a list without markers, count as ICANN rules. A rule that cannot
    /// be converted to A-labels is skipped (the list is data from outside, never a reason to
    /// fail).
    pub fn parse(text: &str) -> Psl {
        let mut psl = Psl::default();
        let mut section = ICANN;
        for line in text.lines() {
            let line = line.trim();
            if let Some(comment) = line.strip_prefix("//") {
                if comment.contains("===BEGIN PRIVATE DOMAINS===") {
                    section = PRIVATE;
                } else if comment.contains("===BEGIN ICANN DOMAINS===")
                    || comment.contains("===END PRIVATE DOMAINS===")
                {
                    section = ICANN;
                }
                continue;
            }
            let Some(rule) = line.split_whitespace().next() else {
                continue;
            };
            let (kind, name) = if let Some(rest) = rule.strip_prefix('!') {
                (Kind::Exception, rest)
            } else if let Some(rest) = rule.strip_prefix("*.") {
                (Kind::Wildcard, rest)
            } else if rule == "*" {
                // The implicit rule, written out; it changes nothing.
                continue;
            } else {
                (Kind::Normal, rule)
            };
            let Some(name) = to_ascii_name(name) else {
                continue;
            };
            let entry = psl.rules.entry(name.into_boxed_str()).or_default();
            match kind {
                Kind::Normal => entry.normal |= section,
                Kind::Wildcard => entry.wildcard |= section,
                Kind::Exception => entry.exception |= section,
            }
            psl.count += 1;
        }
        psl
    }

    /// The number of rules read (all sections).
    pub fn rule_count(&self) -> usize {
        self.count
    }

    /// The public suffix of `domain`, lower-case, in the form the input used (U-labels stay
    /// U-labels). `None` when the input is not a usable domain name: empty, a leading dot or
    /// an empty label, a label IDNA cannot convert. One trailing dot is allowed.
    pub fn public_suffix(&self, domain: &str, sections: Sections) -> Option<String> {
        let name = Name::new(domain)?;
        let n = self.suffix_labels(&name, sections.mask());
        Some(name.tail(n))
    }

    /// The registrable domain of `domain`: its public suffix plus one label, lower-case and
    /// in the form the input used. This is the RFC 7489 §3.2 Organizational Domain. `None`
    /// when `domain` is itself a public suffix or not a usable domain name.
    pub fn registrable_domain(&self, domain: &str, sections: Sections) -> Option<String> {
        let name = Name::new(domain)?;
        let n = self.suffix_labels(&name, sections.mask());
        (name.len() > n).then(|| name.tail(n + 1))
    }

    /// How many labels of `name` form its public suffix.
    fn suffix_labels(&self, name: &Name, mask: u8) -> usize {
        let n = name.len();
        // An exception rule wins over everything; its public suffix is the rule minus its
        // left-most label.
        for i in 0..n {
            if self
                .rules
                .get(name.ascii_suffix(i))
                .is_some_and(|e| e.exception & mask != 0)
            {
                return n - i - 1;
            }
        }
        // Otherwise the longest matching rule, counting `*.parent` as matching any label.
        for i in 0..n {
            if self
                .rules
                .get(name.ascii_suffix(i))
                .is_some_and(|e| e.normal & mask != 0)
            {
                return n - i;
            }
            if i + 1 < n
                && self
                    .rules
                    .get(name.ascii_suffix(i + 1))
                    .is_some_and(|e| e.wildcard & mask != 0)
            {
                return n - i;
            }
        }
        // The implicit "*" rule.
        1
    }
}

/// Shortcut for [`Psl::builtin`]`().registrable_domain(domain, sections)`.
pub fn registrable_domain(domain: &str, sections: Sections) -> Option<String> {
    Psl::builtin().registrable_domain(domain, sections)
}

#[derive(Clone, Copy)]
enum Kind {
    Normal,
    Wildcard,
    Exception,
}

/// A domain name split into labels, kept both as the caller wrote them (lower-cased) and as
/// lower-case A-labels for matching.
struct Name {
    ascii: String,
    /// Byte offset of each label in `ascii`.
    ascii_starts: Vec<usize>,
    /// The labels as given, lower-cased.
    original: Vec<String>,
}

impl Name {
    fn new(domain: &str) -> Option<Name> {
        let domain = domain.strip_suffix('.').unwrap_or(domain);
        if domain.is_empty() || domain.len() > 1024 {
            return None;
        }
        let mut ascii = String::with_capacity(domain.len());
        let mut ascii_starts = Vec::new();
        let mut original = Vec::new();
        for label in domain.split('.') {
            if label.is_empty() {
                return None;
            }
            if !ascii.is_empty() {
                ascii.push('.');
            }
            ascii_starts.push(ascii.len());
            if label.is_ascii() {
                let lower = label.to_ascii_lowercase();
                ascii.push_str(&lower);
                original.push(lower);
            } else {
                let a = to_ascii_name(label)?;
                if a.contains('.') {
                    return None;
                }
                ascii.push_str(&a);
                original.push(label.to_lowercase());
            }
        }
        Some(Name {
            ascii,
            ascii_starts,
            original,
        })
    }

    fn len(&self) -> usize {
        self.original.len()
    }

    /// The A-label suffix starting at label `i` (0 = the whole name).
    fn ascii_suffix(&self, i: usize) -> &str {
        let start = self
            .ascii_starts
            .get(i)
            .copied()
            .unwrap_or(self.ascii.len());
        self.ascii.get(start..).unwrap_or_default()
    }

    /// The last `n` labels as given.
    fn tail(&self, n: usize) -> String {
        let from = self.original.len().saturating_sub(n);
        self.original[from..].join(".")
    }
}

/// Lower-case A-label form of a rule or label; `None` if IDNA rejects it.
fn to_ascii_name(s: &str) -> Option<String> {
    if s.is_ascii() {
        return Some(s.to_ascii_lowercase());
    }
    idna::domain_to_ascii(s).ok().filter(|a| !a.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_has_both_sections() {
        let psl = Psl::builtin();
        assert!(psl.rule_count() > 9000);
        // blogspot.com is a PRIVATE rule.
        assert_eq!(
            psl.registrable_domain("a.b.blogspot.com", Sections::Icann)
                .as_deref(),
            Some("blogspot.com")
        );
        assert_eq!(
            psl.registrable_domain("a.b.blogspot.com", Sections::All)
                .as_deref(),
            Some("b.blogspot.com")
        );
    }

    #[test]
    fn rejects_unusable_names() {
        let psl = Psl::builtin();
        for bad in ["", ".", ".com", "a..com", "example.com.."] {
            assert_eq!(psl.registrable_domain(bad, Sections::All), None, "{bad:?}");
        }
        assert_eq!(
            psl.registrable_domain("Example.COM.", Sections::All)
                .as_deref(),
            Some("example.com")
        );
    }

    #[test]
    fn list_without_markers_is_icann() {
        let psl = Psl::parse("com\n*.ck\n!www.ck\n// comment\n\nfoo.com extra words\n");
        assert_eq!(psl.rule_count(), 4);
        assert_eq!(
            psl.registrable_domain("x.y.foo.com", Sections::Icann)
                .as_deref(),
            Some("y.foo.com")
        );
        assert_eq!(
            psl.registrable_domain("a.www.ck", Sections::Icann)
                .as_deref(),
            Some("www.ck")
        );
        assert_eq!(
            psl.public_suffix("a.b.ck", Sections::Icann).as_deref(),
            Some("b.ck")
        );
    }
}
