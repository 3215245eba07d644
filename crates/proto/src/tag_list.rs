//! The tag-list syntax of RFC 6376 §3.2, shared by DKIM-Signature fields, DKIM key records,
//! ARC headers and DMARC policy records (RFC 9989 §4.7).
//!
//! ```text
//! tag-list  =  tag-spec *( ";" tag-spec ) [ ";" ]
//! tag-spec  =  [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
//! tag-name  =  ALPHA *ALNUMPUNC
//! tag-value =  [ tval *( 1*(WSP / FWS) tval ) ]
//! tval      =  1*VALCHAR          ; VALCHAR = %x21-3A / %x3C-7E
//! ```
//!
//! The parser works on bytes, keeps the position of every tag (the DKIM verifier needs the
//! exact extent of `b=` to blank it), and reports what was wrong and where. Bytes of 0x80
//! and above are accepted in values (RFC 8616 allows UTF-8 there); other control characters
//! are not. Tag names are case-sensitive; a repeated tag name makes the whole list invalid
//! (§3.2). Callers ignore tags they do not know.

use std::fmt;
use std::ops::Range;

/// One `name=value` pair of a tag-list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag<'a> {
    /// The tag name (ASCII, case as written).
    pub name: &'a str,
    /// The value with surrounding whitespace removed; inner folding whitespace is kept.
    pub value: &'a [u8],
    /// Where the name starts in the input.
    pub name_start: usize,
    /// Where the (trimmed) value lies in the input. Empty values have an empty range just
    /// after the `=` and any whitespace.
    pub value_range: Range<usize>,
}

impl<'a> Tag<'a> {
    /// The value as text, if it is valid UTF-8.
    pub fn value_str(&self) -> Option<&'a str> {
        std::str::from_utf8(self.value).ok()
    }

    /// The value with every whitespace byte (SP, HTAB, CR, LF) removed, as used for base64
    /// values such as `b=`, `bh=` and `p=`.
    pub fn value_without_whitespace(&self) -> Vec<u8> {
        self.value
            .iter()
            .copied()
            .filter(|b| !is_wsp_or_eol(*b))
            .collect()
    }
}

/// How forgiving the parser is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strictness {
    /// Exactly the grammar of RFC 6376 §3.2 (a trailing `;` is allowed, an empty tag-spec
    /// in the middle such as `a=1;;b=2` is not).
    #[default]
    Strict,
    /// Also skips empty tag-specs anywhere (`v=DMARC1;; p=none`), as most receivers do for
    /// hand-written DNS records.
    SkipEmpty,
}

/// What was wrong with a tag-list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagListErrorKind {
    /// A tag-spec had no `=`.
    MissingEquals,
    /// A tag-spec was empty (`;;`).
    EmptyTagSpec,
    /// The tag name was empty or not `ALPHA *(ALPHA / DIGIT / "_")`.
    InvalidName(String),
    /// A byte not allowed in a tag value.
    InvalidValueByte { tag: String, byte: u8 },
    /// The same tag name appeared twice.
    DuplicateTag(String),
}

/// A tag-list syntax error and the byte offset where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagListError {
    /// What was wrong.
    pub kind: TagListErrorKind,
    /// Byte offset in the input.
    pub offset: usize,
}

impl fmt::Display for TagListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            TagListErrorKind::MissingEquals => write!(f, "tag without '='"),
            TagListErrorKind::EmptyTagSpec => write!(f, "empty tag (';;')"),
            TagListErrorKind::InvalidName(n) => write!(f, "invalid tag name {n:?}"),
            TagListErrorKind::InvalidValueByte { tag, byte } => {
                write!(
                    f,
                    "byte 0x{byte:02x} not allowed in the value of tag {tag:?}"
                )
            }
            TagListErrorKind::DuplicateTag(n) => write!(f, "tag {n:?} appears more than once"),
        }?;
        write!(f, " at byte {}", self.offset)
    }
}

impl std::error::Error for TagListError {}

/// A parsed tag-list: the tags in the order written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TagList<'a> {
    tags: Vec<Tag<'a>>,
}

impl<'a> TagList<'a> {
    /// Parses `input` strictly (RFC 6376 §3.2).
    pub fn parse(input: &'a [u8]) -> Result<Self, TagListError> {
        Self::parse_with(input, Strictness::Strict)
    }

    /// Parses `input` with the given strictness.
    pub fn parse_with(input: &'a [u8], strictness: Strictness) -> Result<Self, TagListError> {
        let mut tags: Vec<Tag<'a>> = Vec::new();
        let mut start = 0usize;
        let len = input.len();
        while start <= len {
            let end = input[start..]
                .iter()
                .position(|&b| b == b';')
                .map_or(len, |p| start + p);
            let spec = &input[start..end];
            let is_last = end == len;
            if spec.iter().all(|&b| is_wsp_or_eol(b)) {
                // An empty tag-spec: allowed at the very end (trailing ';' or empty input).
                if !is_last && strictness == Strictness::Strict {
                    return Err(TagListError {
                        kind: TagListErrorKind::EmptyTagSpec,
                        offset: start,
                    });
                }
            } else {
                let tag = parse_spec(input, start, end)?;
                if tags.iter().any(|t| t.name == tag.name) {
                    return Err(TagListError {
                        kind: TagListErrorKind::DuplicateTag(tag.name.to_owned()),
                        offset: tag.name_start,
                    });
                }
                tags.push(tag);
            }
            start = end + 1;
        }
        Ok(TagList { tags })
    }

    /// The tags in the order written.
    pub fn tags(&self) -> &[Tag<'a>] {
        &self.tags
    }

    /// The tag called `name` (case-sensitive), if present.
    pub fn get(&self, name: &str) -> Option<&Tag<'a>> {
        self.tags.iter().find(|t| t.name == name)
    }

    /// The value of tag `name`, if present.
    pub fn value(&self, name: &str) -> Option<&'a [u8]> {
        self.get(name).map(|t| t.value)
    }

    /// Number of tags.
    pub fn len(&self) -> usize {
        self.tags.len()
    }

    /// True when the list has no tags.
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }
}

fn parse_spec(input: &[u8], start: usize, end: usize) -> Result<Tag<'_>, TagListError> {
    let spec = &input[start..end];
    let Some(eq) = spec.iter().position(|&b| b == b'=') else {
        return Err(TagListError {
            kind: TagListErrorKind::MissingEquals,
            offset: start + first_non_ws(spec),
        });
    };
    let name_start = start + first_non_ws(&spec[..eq]);
    let name_end = start + last_non_ws_end(&spec[..eq]);
    let name_bytes = input.get(name_start..name_end).unwrap_or_default();
    let name_ok = name_bytes.first().is_some_and(|b| b.is_ascii_alphabetic())
        && name_bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_');
    let name = match std::str::from_utf8(name_bytes) {
        Ok(n) if name_ok => n,
        _ => {
            return Err(TagListError {
                kind: TagListErrorKind::InvalidName(String::from_utf8_lossy(name_bytes).into()),
                offset: name_start,
            });
        }
    };
    let after_eq = start + eq + 1;
    let rest = &input[after_eq..end];
    let value_start = after_eq + first_non_ws(rest);
    let value_end = (after_eq + last_non_ws_end(rest)).max(value_start);
    let value = &input[value_start..value_end];
    if let Some(pos) = value
        .iter()
        .position(|&b| !(is_valchar(b) || is_wsp_or_eol(b) || b >= 0x80))
    {
        return Err(TagListError {
            kind: TagListErrorKind::InvalidValueByte {
                tag: name.to_owned(),
                byte: value[pos],
            },
            offset: value_start + pos,
        });
    }
    Ok(Tag {
        name,
        value,
        name_start,
        value_range: value_start..value_end,
    })
}

fn is_valchar(b: u8) -> bool {
    matches!(b, 0x21..=0x3a | 0x3c..=0x7e)
}

fn is_wsp_or_eol(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn first_non_ws(s: &[u8]) -> usize {
    s.iter().position(|&b| !is_wsp_or_eol(b)).unwrap_or(s.len())
}

fn last_non_ws_end(s: &[u8]) -> usize {
    s.iter()
        .rposition(|&b| !is_wsp_or_eol(b))
        .map_or(0, |p| p + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dkim_signature_tags() {
        let input = b"v=1; a=rsa-sha256; d=example.net; s=brisbane;\r\n c=simple; q=dns/txt; i=@eng.example.net;\r\n h=from:to; bh=MTIz\r\n NDU=; b=dzdV\r\n  yOfA";
        let list = TagList::parse(input).unwrap();
        assert_eq!(list.len(), 10);
        assert_eq!(list.value("d"), Some(&b"example.net"[..]));
        let b = list.get("b").unwrap();
        assert_eq!(&input[b.value_range.clone()], b"dzdV\r\n  yOfA");
        assert_eq!(b.value_without_whitespace(), b"dzdVyOfA");
        assert_eq!(
            list.get("bh").unwrap().value_without_whitespace(),
            b"MTIzNDU="
        );
    }

    #[test]
    fn trailing_semicolon_and_empty_values() {
        let list = TagList::parse(b"v=DKIM1; p=; ").unwrap();
        assert_eq!(list.value("p"), Some(&b""[..]));
        assert!(TagList::parse(b"").unwrap().is_empty());
        assert!(TagList::parse(b"  ").unwrap().is_empty());
    }

    #[test]
    fn errors_say_what_and_where() {
        let e = TagList::parse(b"v=1; a").unwrap_err();
        assert_eq!(e.kind, TagListErrorKind::MissingEquals);
        assert_eq!(e.offset, 5);
        let e = TagList::parse(b"v=1; v=2").unwrap_err();
        assert_eq!(e.kind, TagListErrorKind::DuplicateTag("v".into()));
        let e = TagList::parse(b"v=1;; p=x").unwrap_err();
        assert_eq!(e.kind, TagListErrorKind::EmptyTagSpec);
        assert!(TagList::parse_with(b"v=1;; p=x", Strictness::SkipEmpty).is_ok());
        let e = TagList::parse(b"1v=1").unwrap_err();
        assert!(matches!(e.kind, TagListErrorKind::InvalidName(_)));
        let e = TagList::parse(b"v=a\x01b").unwrap_err();
        assert_eq!(e.offset, 3);
        assert_eq!(
            e.to_string(),
            "byte 0x01 not allowed in the value of tag \"v\" at byte 3"
        );
    }

    #[test]
    fn names_are_case_sensitive_and_utf8_values_allowed() {
        let list = TagList::parse("S=x; s=y; i=j\u{f6}rg@example.com".as_bytes()).unwrap();
        assert_eq!(list.value("s"), Some(&b"y"[..]));
        assert_eq!(list.value("S"), Some(&b"x"[..]));
        assert_eq!(
            list.get("i").unwrap().value_str(),
            Some("j\u{f6}rg@example.com")
        );
    }
}
