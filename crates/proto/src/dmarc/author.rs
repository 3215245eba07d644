//! The Author Domain (§3.2.2, §5.3.1): the domain of the RFC 5322 From field.
//!
//! The From field is read leniently, the way receivers must: display names (quoted, with
//! commas, RFC 2047 encoded words), comments, group syntax (`Team: a@x, b@y;`), angle
//! addresses with stray brackets, and folded lines are all understood. What cannot give a
//! single Author Domain has a defined outcome, chosen by [`AuthorOptions`]:
//!
//! | Situation | Outcome |
//! |---|---|
//! | no From field | [`AuthorError::NoFromField`] (`permerror`, or `none` without `required_headers`) |
//! | several From fields | [`AuthorError::MultipleFromFields`] with `required_headers`; otherwise their addresses are pooled |
//! | no address, unparsable field | [`AuthorError::NoAddress`] / [`AuthorError::Unparsable`] |
//! | an address literal or invalid domain | [`AuthorError::InvalidDomain`] |
//! | several addresses | see [`MultipleAddresses`] |
//! | group syntax (`Team: a@x, b@y;`) | the group's mailboxes are the addresses; an empty group gives [`AuthorError::NoAddress`] |
//! | U-labels (`user@пример.рф`) | converted to A-labels (`xn--e1afmkfd.xn--p1ai`) |
//!
//! U-labels are converted to A-labels (§5.3.1, RFC 5890 §2.3.2.1).

use std::fmt;

use smallvec::SmallVec;

use super::{DomainError, DomainName};

/// Longest From field value looked at.
const MAX_FIELD_LEN: usize = 16 * 1024;
/// Most mailboxes read from the From field(s).
const MAX_MAILBOXES: usize = 64;

/// What to do with a From field holding more than one address (§5.3.1, §11.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MultipleAddresses {
    /// Evaluate when every address has the same domain (there is then exactly one Author
    /// Domain, as §5.3.1 requires); decline when the domains differ. The default.
    #[default]
    SameDomainOnly,
    /// Decline whenever there is more than one address, even in one domain (OpenDMARC's
    /// `RejectMultiValueFrom`, mailauth).
    Decline,
    /// Evaluate each distinct domain and report the worst verdict, the strictest policy
    /// first (the MAY of §5.3.1; authheaders does this).
    EvaluateEach,
}

/// How the Author Domain is extracted. Every field states its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuthorOptions {
    /// Several addresses: see [`MultipleAddresses`]. Default
    /// [`MultipleAddresses::SameDomainOnly`].
    pub multiple_addresses: MultipleAddresses,
    /// Messages without exactly one usable From field are malformed (RFC 5322 §3.6) and get
    /// `permerror` (like OpenDMARC's `RequiredHeaders`). When false, they get `none` and
    /// several From fields are pooled. Default true.
    pub required_headers: bool,
}

impl Default for AuthorOptions {
    fn default() -> Self {
        AuthorOptions {
            multiple_addresses: MultipleAddresses::SameDomainOnly,
            required_headers: true,
        }
    }
}

/// The Author Domain(s) found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorDomains {
    /// Every mailbox address, in order (as written, without display names).
    pub addresses: Vec<String>,
    /// The distinct domains of those addresses, A-labels, in order of first appearance.
    pub domains: Vec<DomainName>,
}

/// Why no Author Domain could be determined.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthorError {
    /// The message has no From field.
    NoFromField,
    /// The message has several From fields (RFC 5322 §3.6 allows exactly one).
    MultipleFromFields(usize),
    /// The From field holds no address (only a display name, an empty group, ...).
    NoAddress,
    /// The From field could not be read; the text says where it went wrong.
    Unparsable(String),
    /// An address has an address literal or an invalid domain.
    InvalidDomain(DomainError),
}

impl fmt::Display for AuthorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthorError::NoFromField => f.write_str("the message has no From field"),
            AuthorError::MultipleFromFields(n) => {
                write!(f, "the message has {n} From fields (RFC 5322 allows one)")
            }
            AuthorError::NoAddress => f.write_str("the From field holds no address"),
            AuthorError::Unparsable(why) => write!(f, "the From field cannot be read: {why}"),
            AuthorError::InvalidDomain(e) => {
                write!(f, "the From address has no usable domain: {e}")
            }
        }
    }
}

impl std::error::Error for AuthorError {}

/// Reads the Author Domain(s) from the raw values of the message's From fields (everything
/// after `From:`, possibly folded).
///
/// | Situation | Outcome |
/// |---|---|
/// | no From field | [`AuthorError::NoFromField`] (`permerror`, or `none` without `required_headers`) |
/// | several From fields | [`AuthorError::MultipleFromFields`] with `required_headers`; otherwise their addresses are pooled |
/// | no address, unparsable field | [`AuthorError::NoAddress`] / [`AuthorError::Unparsable`] |
/// | an address literal or invalid domain | [`AuthorError::InvalidDomain`] |
/// | several addresses | see [`MultipleAddresses`] |
/// | group syntax (`Team: a@x, b@y;`) | the group's mailboxes are the addresses; an empty group gives [`AuthorError::NoAddress`] |
/// | U-labels (`user@пример.рф`) | converted to A-labels (`xn--e1afmkfd.xn--p1ai`) |
///
/// U-labels are converted to A-labels (§5.3.1, RFC 5890 §2.3.2.1).
pub fn author_domains(
    from_fields: &[&[u8]],
    options: &AuthorOptions,
) -> Result<AuthorDomains, AuthorError> {
    match from_fields.len() {
        0 => return Err(AuthorError::NoFromField),
        1 => {}
        n if options.required_headers => return Err(AuthorError::MultipleFromFields(n)),
        _ => {}
    }
    // One address is the rule.
    let mut addresses = Vec::with_capacity(1);
    for field in from_fields {
        push_mailbox_addresses(field, &mut addresses, MAX_MAILBOXES)?;
    }
    if addresses.is_empty() {
        return Err(AuthorError::NoAddress);
    }
    let mut domains: Vec<DomainName> = Vec::with_capacity(1);
    for addr in &addresses {
        let d = address_domain(addr)?;
        if !domains.contains(&d) {
            domains.push(d);
        }
    }
    Ok(AuthorDomains { addresses, domains })
}

/// The domain of an `addr-spec` (after the last `@`), validated and in A-labels.
pub fn address_domain(addr: &str) -> Result<DomainName, AuthorError> {
    let Some(domain) = memchr::memrchr(b'@', addr.as_bytes()).and_then(|at| addr.get(at + 1..))
    else {
        return Err(AuthorError::Unparsable(format!("{addr:?} has no '@'")));
    };
    if domain.starts_with('[') {
        return Err(AuthorError::InvalidDomain(DomainError {
            input: domain.into(),
            reason: "an address literal, not a domain name",
        }));
    }
    DomainName::new(domain).map_err(AuthorError::InvalidDomain)
}

/// One lexical token of a From field, borrowed from the field's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    /// A run of characters that are not specials, quotes, brackets or white space.
    Atom(&'a str),
    /// The content of a quoted string, escapes still in place.
    Quoted(&'a str),
    /// `[...]` with its brackets (the closing one may be missing).
    Literal(&'a str),
    /// `<`, `>`, `@`, and `,` `;` `:` inside angle brackets.
    Special(char),
}

/// The tokens of one mailbox segment: a handful, kept on the stack.
type Segment<'a> = SmallVec<[Token<'a>; 24]>;

/// The addresses (`local@domain`) of the mailboxes in one From field value, in order.
/// Display names, comments and group names are dropped.
pub fn mailbox_addresses(value: &[u8]) -> Result<Vec<String>, AuthorError> {
    let mut out = Vec::new();
    push_mailbox_addresses(value, &mut out, usize::MAX)?;
    Ok(out)
}

/// [`mailbox_addresses`], appended to `out` while it holds fewer than `limit` (the rest of
/// the field is still read, so that an error in it is reported).
fn push_mailbox_addresses(
    value: &[u8],
    out: &mut Vec<String>,
    limit: usize,
) -> Result<(), AuthorError> {
    if value.len() > MAX_FIELD_LEN {
        return Err(AuthorError::Unparsable(format!(
            "the field is longer than {MAX_FIELD_LEN} bytes"
        )));
    }
    // Valid UTF-8 is the rule (and is checked faster than it is repaired).
    let text = match std::str::from_utf8(value) {
        Ok(t) => std::borrow::Cow::Borrowed(t),
        Err(_) => String::from_utf8_lossy(value),
    };
    // The first segment that has an '@' but no address; reported after a tokenizer error.
    let mut bad: Option<AuthorError> = None;
    tokenize(&text, |seg| {
        if let Some(addr) = segment_address(seg) {
            if out.len() < limit {
                out.push(addr);
            }
        } else if bad.is_none()
            && seg.iter().any(|t| !matches!(t, Token::Special(';' | ':')))
            && seg.iter().any(|t| matches!(t, Token::Special('@')))
        {
            bad = Some(AuthorError::Unparsable(format!(
                "cannot find the address in {:?}",
                render(seg)
            )));
        }
    })?;
    match bad {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Splits the field into mailbox segments (at top-level commas, group colons and
/// semicolons), dropping comments, and hands each to `segment` in order. Works on bytes:
/// every delimiter is ASCII, and a non-ASCII character is decoded only to ask whether it
/// is white space.
fn tokenize<'a>(text: &'a str, mut segment: impl FnMut(&[Token<'a>])) -> Result<(), AuthorError> {
    let bytes = text.as_bytes();
    let mut seg: Segment<'a> = SmallVec::new();
    let mut angle_depth = 0usize;
    // Where the atom being read started.
    let mut atom: Option<usize> = None;
    let flush = |atom: &mut Option<usize>, end: usize, seg: &mut Segment<'a>| {
        if let Some(start) = atom.take()
            && let Some(a) = text.get(start..end)
        {
            seg.push(Token::Atom(a));
        }
    };
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => {
                flush(&mut atom, i, &mut seg);
                let start = i + 1;
                let mut j = start;
                loop {
                    match bytes.get(j) {
                        None => {
                            return Err(AuthorError::Unparsable(
                                "a quoted string is not closed".into(),
                            ));
                        }
                        Some(b'"') => break,
                        // The escaped character is skipped (a multi-byte one partly: its
                        // other bytes are never a quote or a backslash).
                        Some(b'\\') => j += 2,
                        Some(_) => j += 1,
                    }
                }
                seg.push(Token::Quoted(text.get(start..j).unwrap_or_default()));
                i = j + 1;
                continue;
            }
            b'(' => {
                flush(&mut atom, i, &mut seg);
                let mut depth = 1usize;
                let mut j = i + 1;
                while depth > 0 {
                    match bytes.get(j) {
                        None => {
                            return Err(AuthorError::Unparsable("a comment is not closed".into()));
                        }
                        Some(b'\\') => j += 1,
                        Some(b'(') => depth += 1,
                        Some(b')') => depth -= 1,
                        Some(_) => {}
                    }
                    j += 1;
                }
                i = j;
                continue;
            }
            b'[' => {
                flush(&mut atom, i, &mut seg);
                let end = memchr::memchr(b']', bytes.get(i..).unwrap_or_default())
                    .map_or(bytes.len(), |k| i + k + 1);
                seg.push(Token::Literal(text.get(i..end).unwrap_or_default()));
                i = end;
                continue;
            }
            b',' | b';' if angle_depth == 0 => {
                flush(&mut atom, i, &mut seg);
                segment(&seg);
                seg.clear();
            }
            b':' if angle_depth == 0 => {
                // A group name ends here: what came before is not a mailbox.
                atom = None;
                seg.clear();
            }
            b'<' | b'>' | b'@' | b',' | b';' | b':' => {
                flush(&mut atom, i, &mut seg);
                if b == b'<' {
                    angle_depth += 1;
                } else if b == b'>' {
                    angle_depth = angle_depth.saturating_sub(1);
                }
                seg.push(Token::Special(char::from(b)));
            }
            b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c => flush(&mut atom, i, &mut seg),
            0x80.. => {
                // A non-ASCII character: white space ends an atom, anything else is in one.
                let c = text
                    .get(i..)
                    .and_then(|t| t.chars().next())
                    .unwrap_or('\u{fffd}');
                if c.is_whitespace() {
                    flush(&mut atom, i, &mut seg);
                } else if atom.is_none() {
                    atom = Some(i);
                }
                i += c.len_utf8();
                continue;
            }
            _ => {
                if atom.is_none() {
                    atom = Some(i);
                }
            }
        }
        i += 1;
    }
    flush(&mut atom, text.len(), &mut seg);
    segment(&seg);
    Ok(())
}

/// The address of one mailbox segment: the content of an innermost `<...>` holding an `@`,
/// else the bare `local@domain` outside any brackets.
fn segment_address(seg: &[Token<'_>]) -> Option<String> {
    let mut open: Option<usize> = None;
    for (i, t) in seg.iter().enumerate() {
        match t {
            Token::Special('<') => open = Some(i),
            Token::Special('>') => {
                if let Some(o) = open.take()
                    && let Some(inner) = seg.get(o + 1..i)
                    && let Some(addr) = addr_spec(inner)
                {
                    return Some(addr);
                }
            }
            _ => {}
        }
    }
    if seg.iter().any(|t| matches!(t, Token::Special('<'))) {
        return None;
    }
    addr_spec(seg)
}

/// `local@domain` from the tokens around the last `@`.
fn addr_spec(tokens: &[Token<'_>]) -> Option<String> {
    let at = tokens.iter().rposition(|t| *t == Token::Special('@'))?;
    let local = tokens.get(at.checked_sub(1)?)?;
    let domain = match tokens.get(at + 1)? {
        Token::Atom(a) | Token::Literal(a) => *a,
        _ => return None,
    };
    if domain.is_empty() {
        return None;
    }
    match local {
        Token::Atom(a) => {
            // An obsolete route (`@a,@b:`) may precede the local part.
            let local = a.rsplit(':').next().unwrap_or(a);
            if local.is_empty() {
                return None;
            }
            let mut addr = String::with_capacity(local.len() + 1 + domain.len());
            addr.push_str(local);
            addr.push('@');
            addr.push_str(domain);
            Some(addr)
        }
        Token::Quoted(q) => {
            let mut addr = String::with_capacity(q.len() + 3 + domain.len());
            addr.push('"');
            push_unescaped(&mut addr, q);
            addr.push('"');
            addr.push('@');
            addr.push_str(domain);
            Some(addr)
        }
        _ => None,
    }
}

/// Appends quoted-string content with its backslash escapes removed.
fn push_unescaped(out: &mut String, q: &str) {
    let mut escaped = false;
    for ch in q.chars() {
        if ch == '\\' && !escaped {
            escaped = true;
            continue;
        }
        escaped = false;
        out.push(ch);
    }
}

fn render(seg: &[Token<'_>]) -> String {
    let mut s = String::new();
    for t in seg {
        match t {
            Token::Atom(a) | Token::Literal(a) => s.push_str(a),
            Token::Quoted(q) => {
                s.push('"');
                push_unescaped(&mut s, q);
                s.push('"');
            }
            Token::Special(c) => s.push(*c),
        }
        s.push(' ');
    }
    s.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domains(v: &str) -> Vec<String> {
        author_domains(&[v.as_bytes()], &AuthorOptions::default())
            .map(|a| a.domains.iter().map(|d| d.to_string()).collect())
            .unwrap_or_else(|e| vec![format!("error: {e}")])
    }

    #[test]
    fn common_forms() {
        assert_eq!(domains("joe@joe.com"), ["joe.com"]);
        assert_eq!(domains("Joe <joe@Joe.COM>"), ["joe.com"]);
        assert_eq!(domains("\"a, b\" <x@example.com>"), ["example.com"]);
        assert_eq!(
            domains("Team: a@x.example, b@y.example;"),
            ["x.example", "y.example"]
        );
        assert_eq!(domains("\"j@x\"@example.com"), ["example.com"]);
        assert_eq!(domains("Joe\r\n <joe@example.com>"), ["example.com"]);
        assert_eq!(domains("<@route.example:joe@example.com>"), ["example.com"]);
        assert_eq!(domains("user@пример.рф"), ["xn--e1afmkfd.xn--p1ai"]);
    }

    #[test]
    fn addresses_as_written() {
        assert_eq!(
            mailbox_addresses(b"\"a\\\"b\"@x.example, Joe (c) <joe@Y.example>, [z]").unwrap(),
            [
                "\"a\\\"b\"@x.example".replace("\\\"", "\""),
                "joe@Y.example".into()
            ]
        );
        assert_eq!(
            mailbox_addresses("Jos\u{e9}\u{a0}<j@x.example>".as_bytes()).unwrap(),
            ["j@x.example"]
        );
        // A tokenizer error wins over an earlier segment without an address.
        assert_eq!(
            mailbox_addresses(b"a@ <b>, \"open"),
            Err(AuthorError::Unparsable(
                "a quoted string is not closed".into()
            ))
        );
        assert!(matches!(
            mailbox_addresses(b"a@ <b>, c@d.example"),
            Err(AuthorError::Unparsable(m)) if m.contains("a @ < b >")
        ));
    }

    #[test]
    fn failures_have_outcomes() {
        let opts = AuthorOptions::default();
        assert_eq!(author_domains(&[], &opts), Err(AuthorError::NoFromField));
        assert_eq!(
            author_domains(&[b"a@x.com", b"b@x.com"], &opts),
            Err(AuthorError::MultipleFromFields(2))
        );
        assert_eq!(
            author_domains(&[b"\"Test User\""], &opts),
            Err(AuthorError::NoAddress)
        );
        assert_eq!(
            author_domains(&[b"undisclosed:;"], &opts),
            Err(AuthorError::NoAddress)
        );
        assert!(matches!(
            author_domains(&[b"a@[192.0.2.1]"], &opts),
            Err(AuthorError::InvalidDomain(_))
        ));
        assert!(matches!(
            author_domains(&[b"\"unterminated <a@x.com>"], &opts),
            Err(AuthorError::Unparsable(_))
        ));
        assert!(matches!(
            author_domains(&[b"a@.x.com"], &opts),
            Err(AuthorError::InvalidDomain(_))
        ));
        let lenient = AuthorOptions {
            required_headers: false,
            ..opts
        };
        assert_eq!(
            author_domains(&[b"a@x.com", b"b@y.com"], &lenient)
                .unwrap()
                .domains
                .len(),
            2
        );
    }

    #[test]
    fn hostile_input_does_not_panic() {
        for v in [
            &b"<<<<>>>>"[..],
            b"@@@",
            b"(((",
            b"a@",
            b"@b",
            b"\xff\xfe@\x80.com",
            b":;:;,,,<>@<>",
            b"\"\\",
        ] {
            let _ = author_domains(&[v], &AuthorOptions::default());
        }
    }
}
