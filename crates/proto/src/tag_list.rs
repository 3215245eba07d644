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
//!
//! This is the only tag-list parser, and it runs on every DKIM-Signature and ARC field of
//! every message: `;` and `=` are found with `memchr` (SIMD), value bytes are checked
//! without early exit (so that the check vectorises), the usual tag names are static
//! strings, and the tags of a list (about a dozen) stay on the stack. What went wrong is
//! worked out only when something did.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;

use smallvec::SmallVec;

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

    /// The extent of the raw value in `input` (the list this tag was parsed from): from
    /// just after `=` to just before the `;` that ends the tag-spec (or the end), the
    /// surrounding whitespace included (RFC 6376 §3.7: the `b=` value is removed
    /// "including all surrounding whitespace").
    pub fn raw_value_range(&self, input: &[u8]) -> Range<usize> {
        let mut start = self.value_range.start;
        while start > 0 && input.get(start - 1).is_some_and(|b| is_wsp_or_eol(*b)) {
            start -= 1;
        }
        let mut end = self.value_range.end;
        while input.get(end).is_some_and(|b| is_wsp_or_eol(*b)) {
            end += 1;
        }
        start..end
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
    /// hand-written DNS records and as mature DKIM verifiers do for signatures.
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

/// The tags of a list, kept on the stack up to this many (a DKIM-Signature has about a
/// dozen).
const INLINE_TAGS: usize = 16;

/// Beyond this many tags, repeated names are found with a set rather than by comparing
/// each new name with every earlier one (a hostile field may hold thousands of tags).
const LINEAR_DUPLICATE_CHECK: usize = 32;

/// A parsed tag-list: the tags in the order written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TagList<'a> {
    tags: SmallVec<[Tag<'a>; INLINE_TAGS]>,
}

impl<'a> TagList<'a> {
    /// Parses `input` strictly (RFC 6376 §3.2).
    pub fn parse(input: &'a [u8]) -> Result<Self, TagListError> {
        Self::parse_with(input, Strictness::Strict)
    }

    /// Parses `input` with the given strictness.
    pub fn parse_with(input: &'a [u8], strictness: Strictness) -> Result<Self, TagListError> {
        let mut tags: SmallVec<[Tag<'a>; INLINE_TAGS]> = SmallVec::new();
        let mut seen: Option<HashSet<&'a str>> = None;
        let len = input.len();
        let mut start = 0usize;
        loop {
            let rest = input.get(start..).unwrap_or_default();
            let end = memchr::memchr(b';', rest).map_or(len, |p| start + p);
            let spec = input.get(start..end).unwrap_or_default();
            let first = first_non_ws(spec);
            if first == spec.len() {
                // An empty tag-spec: allowed at the very end (trailing ';' or empty input).
                if end < len && strictness == Strictness::Strict {
                    return Err(TagListError {
                        kind: TagListErrorKind::EmptyTagSpec,
                        offset: start,
                    });
                }
            } else {
                let tag = parse_spec(input, start, first, end)?;
                let repeated = match &mut seen {
                    Some(set) => !set.insert(tag.name),
                    None => tags.iter().any(|t| same_name(t.name, tag.name)),
                };
                if repeated {
                    return Err(TagListError {
                        kind: TagListErrorKind::DuplicateTag(tag.name.to_owned()),
                        offset: tag.name_start,
                    });
                }
                tags.push(tag);
                if seen.is_none() && tags.len() > LINEAR_DUPLICATE_CHECK {
                    seen = Some(tags.iter().map(|t| t.name).collect());
                }
            }
            if end >= len {
                return Ok(TagList { tags });
            }
            start = end + 1;
        }
    }

    /// The tags in the order written.
    pub fn tags(&self) -> &[Tag<'a>] {
        &self.tags
    }

    /// The tag called `name` (case-sensitive), if present.
    pub fn get(&self, name: &str) -> Option<&Tag<'a>> {
        self.tags.iter().find(|t| same_name(t.name, name))
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

/// The tag-spec `input[start..end]`, whose first non-whitespace byte is at `start + first`.
#[inline]
fn parse_spec(
    input: &[u8],
    start: usize,
    first: usize,
    end: usize,
) -> Result<Tag<'_>, TagListError> {
    let spec = input.get(start..end).unwrap_or_default();
    let Some(eq) = memchr::memchr(b'=', spec).map(|p| start + p) else {
        return Err(TagListError {
            kind: TagListErrorKind::MissingEquals,
            offset: start + first,
        });
    };
    let name_start = (start + first).min(eq);
    let name_bytes = input.get(name_start..eq).unwrap_or_default();
    let name_bytes = name_bytes
        .get(..last_non_ws_end(name_bytes))
        .unwrap_or_default();
    let name = match valid_name(name_bytes) {
        Some(n) => n,
        None => {
            return Err(TagListError {
                kind: TagListErrorKind::InvalidName(String::from_utf8_lossy(name_bytes).into()),
                offset: name_start,
            });
        }
    };
    let after = input.get(eq + 1..end).unwrap_or_default();
    let value_start = eq + 1 + first_non_ws(after);
    let value_end = (eq + 1 + last_non_ws_end(after)).max(value_start);
    let value = input.get(value_start..value_end).unwrap_or_default();
    if has_bad_value_byte(value) {
        let pos = value
            .iter()
            .position(|&b| is_bad_value_byte(b))
            .unwrap_or_default();
        return Err(TagListError {
            kind: TagListErrorKind::InvalidValueByte {
                tag: name.to_owned(),
                byte: value.get(pos).copied().unwrap_or_default(),
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

/// `name` as a string when it is `ALPHA *(ALPHA / DIGIT / "_")`; the usual names of
/// DKIM, ARC and DMARC are static strings (cheaper than checking UTF-8 for each).
#[inline]
fn valid_name(name: &[u8]) -> Option<&str> {
    let ok = name.first().is_some_and(u8::is_ascii_alphabetic)
        && name.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_');
    if !ok {
        return None;
    }
    Some(match name {
        b"v" => "v",
        b"a" => "a",
        b"b" => "b",
        b"bh" => "bh",
        b"c" => "c",
        b"d" => "d",
        b"h" => "h",
        b"i" => "i",
        b"l" => "l",
        b"q" => "q",
        b"s" => "s",
        b"t" => "t",
        b"x" => "x",
        b"z" => "z",
        b"k" => "k",
        b"n" => "n",
        b"p" => "p",
        b"cv" => "cv",
        _ => std::str::from_utf8(name).ok()?,
    })
}

/// Tag names are one or two letters: compared inline rather than through `memcmp`.
#[inline]
pub(crate) fn same_name(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

/// A byte not allowed in a tag value: not VALCHAR (%x21-3A / %x3C-7E), folding whitespace
/// or an 8-bit byte. (`;` cannot occur inside a tag-spec.)
#[inline]
fn is_bad_value_byte(b: u8) -> bool {
    (b < 0x21 && !is_wsp_or_eol(b)) | (b == 0x7f) | (b == b';')
}

/// Whether `value` holds a byte [`is_bad_value_byte`] refuses. Written without early exit
/// so that it vectorises.
#[inline]
fn has_bad_value_byte(value: &[u8]) -> bool {
    value
        .iter()
        .fold(false, |acc, &b| acc | is_bad_value_byte(b))
}

#[inline]
fn is_wsp_or_eol(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

#[inline]
fn first_non_ws(s: &[u8]) -> usize {
    s.iter().position(|&b| !is_wsp_or_eol(b)).unwrap_or(s.len())
}

#[inline]
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

    #[test]
    fn raw_value_extent_includes_surrounding_whitespace() {
        let input = b"v=1; b= ab\r\n cd ;x=1";
        let list = TagList::parse(input).unwrap();
        let b = list.get("b").unwrap();
        assert_eq!(&input[b.raw_value_range(input)], b" ab\r\n cd ");
        let input = b"v=1; b=";
        let list = TagList::parse(input).unwrap();
        assert_eq!(list.get("b").unwrap().raw_value_range(input), 7..7);
    }

    #[test]
    fn repeated_names_found_in_long_lists() {
        let mut long: Vec<u8> = (0..200)
            .flat_map(|i| format!("t{i}=x;").into_bytes())
            .collect();
        assert_eq!(TagList::parse(&long).unwrap().len(), 200);
        let at = long.len();
        long.extend_from_slice(b" t7=y");
        let e = TagList::parse(&long).unwrap_err();
        assert_eq!(e.kind, TagListErrorKind::DuplicateTag("t7".into()));
        assert_eq!(e.offset, at + 1);
    }

    #[test]
    fn bad_value_bytes_found_anywhere() {
        for len in 0..40 {
            let alphabet = b"Ab+/= \t\r\n\xc3~!";
            let clean: Vec<u8> = (0..len).map(|i| alphabet[i % alphabet.len()]).collect();
            assert!(!has_bad_value_byte(&clean));
            for at in 0..len {
                for bad in [0u8, 0x01, 0x0b, 0x1f, 0x7f] {
                    let mut v = clean.clone();
                    v[at] = bad;
                    assert!(has_bad_value_byte(&v), "{v:?}");
                }
                for good in [0x20u8, 0x21, 0x7e, 0x80, 0xff, b'\t'] {
                    let mut v = clean.clone();
                    v[at] = good;
                    assert!(!has_bad_value_byte(&v), "{v:?}");
                }
            }
        }
    }

    /// The grammar of §3.2 written plainly, one tag-spec at a time: what the parser must
    /// agree with, errors included.
    fn reference(input: &[u8], strictness: Strictness) -> Result<Vec<Tag<'_>>, TagListError> {
        let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
        let mut tags: Vec<Tag<'_>> = Vec::new();
        let mut start = 0;
        for spec in input.split(|b| *b == b';') {
            let end = start + spec.len();
            let is_last = end == input.len();
            if spec.iter().all(ws) {
                if !is_last && strictness == Strictness::Strict {
                    return Err(TagListError {
                        kind: TagListErrorKind::EmptyTagSpec,
                        offset: start,
                    });
                }
            } else {
                let skip = |s: &[u8]| s.iter().position(|b| !ws(b)).unwrap_or(s.len());
                let Some(eq) = spec.iter().position(|&b| b == b'=') else {
                    return Err(TagListError {
                        kind: TagListErrorKind::MissingEquals,
                        offset: start + skip(spec),
                    });
                };
                let name_start = start + skip(&spec[..eq]);
                let name = &input[name_start..start + eq];
                let name = &name[..name.iter().rposition(|b| !ws(b)).map_or(0, |p| p + 1)];
                let good = name.first().is_some_and(u8::is_ascii_alphabetic)
                    && name.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_');
                if !good {
                    return Err(TagListError {
                        kind: TagListErrorKind::InvalidName(String::from_utf8_lossy(name).into()),
                        offset: name_start,
                    });
                }
                let name = std::str::from_utf8(name).unwrap();
                let rest = &spec[eq + 1..];
                let vs = start + eq + 1 + skip(rest);
                let ve = (start + eq + 1 + rest.iter().rposition(|b| !ws(b)).map_or(0, |p| p + 1))
                    .max(vs);
                let value = &input[vs..ve];
                let allowed = |b: u8| matches!(b, 0x21..=0x3a | 0x3c..=0x7e) || ws(&b) || b >= 0x80;
                if let Some(p) = value.iter().position(|&b| !allowed(b)) {
                    return Err(TagListError {
                        kind: TagListErrorKind::InvalidValueByte {
                            tag: name.into(),
                            byte: value[p],
                        },
                        offset: vs + p,
                    });
                }
                if tags.iter().any(|t| t.name == name) {
                    return Err(TagListError {
                        kind: TagListErrorKind::DuplicateTag(name.into()),
                        offset: name_start,
                    });
                }
                tags.push(Tag {
                    name,
                    value,
                    name_start,
                    value_range: vs..ve,
                });
            }
            start = end + 1;
        }
        Ok(tags)
    }

    fn agrees_with_reference(input: &[u8]) -> Result<(), String> {
        for strictness in [Strictness::Strict, Strictness::SkipEmpty] {
            let ours = TagList::parse_with(input, strictness).map(|l| l.tags().to_vec());
            let expected = reference(input, strictness);
            if ours != expected {
                return Err(format!(
                    "{input:?} {strictness:?}: {ours:?}, expected {expected:?}"
                ));
            }
        }
        Ok(())
    }

    #[test]
    fn agrees_with_the_grammar() {
        for case in [
            &b""[..],
            b";",
            b";;",
            b" ; ",
            b"v=1",
            b"v=1;",
            b"v=1;;a=2",
            b"v=1; v=2",
            b"v=",
            b" v = 1 ;\r\n b = a b\r\n c ;",
            b"=1",
            b" =1",
            b"1v=1",
            b"v_1=x",
            b"v-1=x",
            b"v 1=x",
            b"v",
            b"v=a\x7f",
            b"v=a\x00",
            b"v=\xc3\xa9",
            b"\xc3=1",
            b"v=1;\tb=\t",
            b"a=b=c",
            b"cv=pass; i=1",
        ] {
            agrees_with_reference(case).unwrap();
        }
    }

    proptest::proptest! {
        #[test]
        fn prop_agrees_with_the_grammar(
            s in proptest::collection::vec(proptest::sample::select(
                vec![b'a', b'B', b'1', b'_', b'-', b'=', b';', b' ', b'\t', b'\r', b'\n', 0x7f, 0x01, 0xc3]
            ), 0..40),
        ) {
            if let Err(e) = agrees_with_reference(&s) {
                proptest::prop_assert!(false, "{}", e);
            }
        }
    }
}
