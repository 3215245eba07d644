//! The Author Domain (§3.2.2, §5.3.1): the domain of the RFC 5322 From field.
//!
//! The From field is read leniently, the way receivers must: display names (quoted, with
//! commas, RFC 2047 encoded words), comments, group syntax (`Team: a@x, b@y;`), angle
//! addresses with stray brackets, and folded lines are all understood. What cannot give a
//! single Author Domain has a defined outcome, chosen by [`AuthorOptions`]; the defaults
//! never let the shape of From decide that a policy is not applied (RFC 9989 §11.5):
//!
//! | Situation | Error | Default outcome (option) |
//! |---|---|---|
//! | several addresses, different domains | — | each domain evaluated, the strictest verdict applies ([`MultipleAddresses`]) |
//! | several From fields | [`AuthorError::MultipleFromFields`] | a DMARC `fail` of the domains they name ([`MultipleFields`]) |
//! | a field longer than [`MAX_FIELD_LEN`], broken syntax | [`AuthorError::Unparsable`] | a `fail` of the domains it names ([`Unreadable`]) |
//! | no From field, no address | [`AuthorError::NoFromField`] / [`AuthorError::NoAddress`] | `permerror`, reject ([`Unreadable`]) |
//! | an address literal or invalid domain | [`AuthorError::InvalidDomain`] | a `fail` of the other domains named, else reject ([`Unreadable`]) |
//! | group syntax (`Team: a@x, b@y;`) | the group's mailboxes are the addresses; an empty group gives [`AuthorError::NoAddress`] |
//! | U-labels (`user@пример.рф`) | converted to A-labels (`xn--e1afmkfd.xn--p1ai`) |
//!
//! U-labels are converted to A-labels (§5.3.1, RFC 5890 §2.3.2.1).

use std::fmt;

use smallvec::SmallVec;

use super::{DomainError, DomainName};

/// Longest From field value read as mailboxes (a longer one is [`AuthorError::Unparsable`];
/// the domains it names are still found, see [`FromFault::named`]).
pub const MAX_FIELD_LEN: usize = 16 * 1024;
/// Most mailbox addresses kept in [`AuthorDomains::addresses`] (every address is still
/// read for its domain).
const MAX_MAILBOXES: usize = 64;
/// Most distinct Author Domains evaluated for one message (a bound on the DNS work: each
/// costs at most one policy discovery). A From field naming more is refused.
pub const MAX_AUTHOR_DOMAINS: usize = 8;

/// What to do with a From field holding more than one address (§5.3.1, §11.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MultipleAddresses {
    /// Evaluate each distinct domain and apply the strictest verdict (the MAY of §5.3.1;
    /// what §11.5 asks of a receiver facing a From field shaped to dodge the evaluation).
    /// More than [`MAX_AUTHOR_DOMAINS`] domains: `permerror` and reject. The default.
    #[default]
    EvaluateEach,
    /// Reject any From field with more than one address (OpenDMARC's
    /// `RejectMultiValueFrom`): `permerror` and the action reject.
    Reject,
    /// Evaluate when every address has the same domain; decline (`none`, nothing enforced)
    /// when the domains differ. Explicit opt-in: a sender can shape a From field to dodge
    /// the Author Domain's policy.
    SameDomainOnly,
    /// Decline (`none`, nothing enforced) whenever there is more than one address, even in
    /// one domain (mailauth). Explicit opt-in, as [`MultipleAddresses::SameDomainOnly`].
    Decline,
}

impl MultipleAddresses {
    /// `evaluate`, `reject`, `same-domain-only` or `decline`.
    pub fn as_str(self) -> &'static str {
        match self {
            MultipleAddresses::EvaluateEach => "evaluate",
            MultipleAddresses::Reject => "reject",
            MultipleAddresses::SameDomainOnly => "same-domain-only",
            MultipleAddresses::Decline => "decline",
        }
    }
}

/// What to do with a message that has several From fields (RFC 5322 §3.6 allows one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MultipleFields {
    /// A DMARC `fail` of every domain the fields name (their policies are looked up, no
    /// identifier counts as aligned), the strictest applying; `permerror` and reject when
    /// they name no domain or more than [`MAX_AUTHOR_DOMAINS`]. The default.
    #[default]
    Fail,
    /// Pool the addresses of every field and go on as for one field with those addresses
    /// (see [`MultipleAddresses`]).
    Evaluate,
    /// `permerror` and the action reject (OpenDMARC's `RequiredHeaders`).
    Reject,
    /// `permerror`, nothing enforced. Explicit opt-in: a sender can add a From field to
    /// dodge the Author Domain's policy.
    Accept,
}

impl MultipleFields {
    /// `fail`, `evaluate`, `reject` or `accept`.
    pub fn as_str(self) -> &'static str {
        match self {
            MultipleFields::Fail => "fail",
            MultipleFields::Evaluate => "evaluate",
            MultipleFields::Reject => "reject",
            MultipleFields::Accept => "accept",
        }
    }
}

/// What to do with a message whose From field gives no Author Domain: none at all, one
/// that cannot be read (longer than [`MAX_FIELD_LEN`], broken syntax), no address, or an
/// address without a usable domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Unreadable {
    /// A DMARC `fail` of every domain the field names (each `@domain` in it, read
    /// leniently), the strictest policy applying; `permerror` and reject when it names none
    /// or more than [`MAX_AUTHOR_DOMAINS`]. The default.
    #[default]
    Fail,
    /// `permerror` and the action reject (OpenDMARC's `RequiredHeaders`).
    Reject,
    /// `permerror`, nothing enforced. Explicit opt-in: a sender can pad or break a From
    /// field to dodge the Author Domain's policy.
    Accept,
}

impl Unreadable {
    /// `fail`, `reject` or `accept`.
    pub fn as_str(self) -> &'static str {
        match self {
            Unreadable::Fail => "fail",
            Unreadable::Reject => "reject",
            Unreadable::Accept => "accept",
        }
    }
}

/// How the Author Domain is taken from the From field(s), and what a From field of an
/// unusual shape leads to. Every field states its default; the defaults never let a
/// sender escape the Author Domain's policy by the shape of From (RFC 9989 §11.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AuthorOptions {
    /// Several addresses: see [`MultipleAddresses`]. Default
    /// [`MultipleAddresses::EvaluateEach`].
    pub multiple_addresses: MultipleAddresses,
    /// Several From fields: see [`MultipleFields`]. Default [`MultipleFields::Fail`].
    pub multiple_fields: MultipleFields,
    /// No From field, or none that gives an Author Domain: see [`Unreadable`]. Default
    /// [`Unreadable::Fail`].
    pub unreadable: Unreadable,
}

/// What [`read_authors`] found when the From field(s) give no Author Domain to evaluate
/// normally: the error, the domains the fields name all the same, and what the options
/// say to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromFault {
    /// What is wrong.
    pub error: AuthorError,
    /// Every distinct domain the fields name (each `@domain`, read leniently), in order,
    /// at most [`MAX_AUTHOR_DOMAINS`] + 1 (more means too many to evaluate).
    pub named: Vec<DomainName>,
    /// What to do: `Fail` (a failure of the named domains), `Reject` or `Accept`.
    pub outcome: Unreadable,
}

impl fmt::Display for FromFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for FromFault {}

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
/// | no From field | [`AuthorError::NoFromField`] |
/// | several From fields | [`AuthorError::MultipleFromFields`], unless [`MultipleFields::Evaluate`] pools their addresses |
/// | no address, unparsable field (longer than [`MAX_FIELD_LEN`] included) | [`AuthorError::NoAddress`] / [`AuthorError::Unparsable`] |
/// | an address literal or invalid domain | [`AuthorError::InvalidDomain`] |
/// | several addresses | every distinct domain, at most [`MAX_AUTHOR_DOMAINS`] + 1 (more means too many) |
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
        n if options.multiple_fields != MultipleFields::Evaluate => {
            return Err(AuthorError::MultipleFromFields(n));
        }
        _ => {}
    }
    // One address is the rule.
    let mut authors = AuthorDomains {
        addresses: Vec::with_capacity(1),
        domains: Vec::with_capacity(1),
    };
    let mut bad_domain: Option<AuthorError> = None;
    for field in from_fields {
        push_mailbox_addresses(field, |addr| {
            // Every address counts for its domain; only the first ones are kept.
            match address_domain(&addr) {
                Ok(d) => {
                    if !authors.domains.contains(&d) && authors.domains.len() <= MAX_AUTHOR_DOMAINS
                    {
                        authors.domains.push(d);
                    }
                }
                Err(e) => {
                    bad_domain.get_or_insert(e);
                }
            }
            if authors.addresses.len() < MAX_MAILBOXES {
                authors.addresses.push(addr);
            }
        })?;
    }
    if let Some(e) = bad_domain {
        return Err(e);
    }
    if authors.addresses.is_empty() {
        return Err(AuthorError::NoAddress);
    }
    Ok(authors)
}

/// [`author_domains`], and when the fields give no Author Domain, the domains they name
/// all the same and what `options` say to do (see [`FromFault`]). What the DMARC
/// evaluation ([`super::evaluate_authors`]) takes.
pub fn read_authors(
    from_fields: &[&[u8]],
    options: &AuthorOptions,
) -> Result<AuthorDomains, FromFault> {
    author_domains(from_fields, options).map_err(|error| {
        let outcome = match (&error, options.multiple_fields) {
            (AuthorError::MultipleFromFields(_), MultipleFields::Fail) => Unreadable::Fail,
            (AuthorError::MultipleFromFields(_), MultipleFields::Reject) => Unreadable::Reject,
            (AuthorError::MultipleFromFields(_), MultipleFields::Accept) => Unreadable::Accept,
            _ => options.unreadable,
        };
        let mut named = Vec::new();
        if outcome == Unreadable::Fail {
            for field in from_fields {
                named_domains(field, &mut named);
            }
        }
        FromFault {
            error,
            named,
            outcome,
        }
    })
}

/// Appends to `out` the distinct domains `value` names, read leniently for a field that
/// could not be read as mailboxes: the name after each `@` (letters, digits, `-`, `_`,
/// `.`, non-ASCII), when it is a valid domain name. Stops at [`MAX_AUTHOR_DOMAINS`] + 1.
/// Linear in the field's length, whatever its length.
fn named_domains(value: &[u8], out: &mut Vec<DomainName>) {
    for at in memchr::memchr_iter(b'@', value) {
        if out.len() > MAX_AUTHOR_DOMAINS {
            return;
        }
        let rest = value.get(at + 1..).unwrap_or_default();
        let len = rest
            .iter()
            .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | 0x80..)))
            .unwrap_or(rest.len())
            // No name is longer than 253 octets (in U-labels, a few times that).
            .min(1024);
        let Some(name) = rest.get(..len) else {
            continue;
        };
        let name = String::from_utf8_lossy(name);
        let name = name.trim_end_matches('.');
        if let Ok(d) = DomainName::new(name)
            && !out.contains(&d)
        {
            out.push(d);
        }
    }
}

/// The domain of an `addr-spec` (after the last `@`), validated and in A-labels.
pub fn address_domain(addr: &str) -> Result<DomainName, AuthorError> {
    let Some(domain) = memchr::memrchr(b'@', addr.as_bytes()).and_then(|at| addr.get(at + 1..))
    else {
        return Err(AuthorError::Unparsable(format!("{addr:?} has no '@'")));
    };
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
    push_mailbox_addresses(value, |a| out.push(a))?;
    Ok(out)
}

/// [`mailbox_addresses`], each handed to `address` in order (the whole field is read, so
/// that an error in it is reported).
fn push_mailbox_addresses(
    value: &[u8],
    mut address: impl FnMut(String),
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
            address(addr);
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
            multiple_fields: MultipleFields::Evaluate,
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
