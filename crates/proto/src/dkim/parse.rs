//! Parsing of `DKIM-Signature` fields (§3.5) and key records (§3.6.1).

use std::borrow::Cow;
use std::ops::Range;

use smallvec::SmallVec;

use super::key::KeyRecord;
use super::{Algorithm, Canonicalization, HashAlgorithm, KeyType, Problem};
use crate::tag_list::{Strictness, Tag, TagList, same_name};

/// Parses a tag-list (§3.2) with [`Strictness::SkipEmpty`] (skipping empty tag-specs such
/// as `;;`, as mature verifiers do).
fn tag_list(input: &[u8]) -> Result<TagList<'_>, String> {
    TagList::parse_with(input, Strictness::SkipEmpty).map_err(|e| e.to_string())
}

fn is_fws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn trim_fws(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !is_fws(*b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !is_fws(*b)).map_or(start, |p| p + 1);
    s.get(start..end).unwrap_or_default()
}

fn get<'a>(tags: &[Tag<'a>], name: &str) -> Option<&'a [u8]> {
    tags.iter()
        .find(|t| same_name(t.name, name))
        .map(|t| t.value)
}

/// The tags of a signature with the known names found once, for the dozen lookups.
struct TagIndex<'t, 'a> {
    tags: &'t [Tag<'a>],
    /// Where each [`known_slot`] name first occurs in `tags`, or `usize::MAX`.
    pos: [usize; KNOWN_NAMES],
}

const KNOWN_NAMES: usize = 14;

/// The signature tags of §3.5, numbered.
fn known_slot(name: &str) -> Option<usize> {
    Some(match name {
        "v" => 0,
        "a" => 1,
        "b" => 2,
        "bh" => 3,
        "c" => 4,
        "d" => 5,
        "h" => 6,
        "i" => 7,
        "l" => 8,
        "q" => 9,
        "s" => 10,
        "t" => 11,
        "x" => 12,
        "z" => 13,
        _ => return None,
    })
}

impl<'t, 'a> TagIndex<'t, 'a> {
    fn new(tags: &'t [Tag<'a>]) -> Self {
        let mut pos = [usize::MAX; KNOWN_NAMES];
        for (i, t) in tags.iter().enumerate() {
            if let Some(p) = known_slot(t.name).and_then(|k| pos.get_mut(k))
                && *p == usize::MAX
            {
                *p = i;
            }
        }
        TagIndex { tags, pos }
    }

    /// The first tag called `name`.
    fn tag(&self, name: &str) -> Option<&'t Tag<'a>> {
        match known_slot(name) {
            Some(k) => self.pos.get(k).and_then(|&i| self.tags.get(i)),
            None => self.tags.iter().find(|t| same_name(t.name, name)),
        }
    }

    /// The value of the first tag called `name`.
    fn get(&self, name: &str) -> Option<&'a [u8]> {
        self.tag(name).map(|t| t.value)
    }
}

/// [`String::from_utf8_lossy`], quicker for the usual short ASCII values.
fn lossy(v: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(v) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(v),
    }
}

pub(crate) fn text(v: &[u8]) -> String {
    lossy(v).into_owned()
}

/// Removes folding whitespace (base64 values may be folded anywhere, §3.5 b=).
fn strip_fws(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    out.extend(v.iter().copied().filter(|b| !is_fws(*b)));
    out
}

/// The most field names accepted in `h=`.
const MAX_SIGNED_FIELDS: usize = 512;

pub(crate) fn decode_base64(v: &[u8]) -> Result<Vec<u8>, String> {
    // WHATWG "forgiving" base64 is what DKIM needs: white space skipped (folded values;
    // the tag parser has already refused every control byte that is not folding white
    // space), padding optional, trailing bits ignored. base64-simd does it with SIMD, the
    // white space removal included.
    base64_simd::forgiving_decode_to_vec(v).map_err(|_| invalid_base64(v))
}

/// [`decode_base64`] for values that are usually short (`bh=`): decoded on the stack.
fn decode_base64_short(v: &[u8]) -> Result<SmallVec<[u8; 64]>, String> {
    let mut room = [0u8; 64];
    match room.get_mut(..v.len()) {
        Some(dst) => base64_simd::forgiving_decode(v, base64_simd::Out::from_slice(dst))
            .map(|d| SmallVec::from_slice(d))
            .map_err(|_| invalid_base64(v)),
        None => decode_base64(v).map(SmallVec::from_vec),
    }
}

/// Says where a base64 value goes wrong, for the error message.
fn invalid_base64(v: &[u8]) -> String {
    let stripped = strip_fws(v);
    match stripped
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')))
    {
        Some(i) => format!(
            "invalid base64: byte {:?} at offset {i}",
            char::from(stripped.get(i).copied().unwrap_or_default())
        ),
        None => format!(
            "invalid base64: {} characters, or padding in the wrong place",
            stripped.len()
        ),
    }
}

/// What could be read from a signature field, even a broken one: for results and
/// Authentication-Results.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignatureInfo {
    /// `d=`, as written.
    pub domain: Option<String>,
    /// `s=`, as written.
    pub selector: Option<String>,
    /// `a=`, as written.
    pub algorithm: Option<String>,
    /// `i=`, as written.
    pub identity: Option<String>,
    /// The first 8 characters of `b=` (RFC 6008 `header.b`).
    pub b_prefix: Option<String>,
}

impl SignatureInfo {
    fn from_tags(tags: &TagIndex<'_, '_>) -> Self {
        let s = |n: &str| tags.get(n).map(text);
        SignatureInfo {
            domain: s("d"),
            selector: s("s"),
            algorithm: s("a"),
            identity: s("i"),
            b_prefix: tags.get("b").map(|b| {
                b.iter()
                    .filter(|b| !is_fws(**b))
                    .take(8)
                    .map(|&b| char::from(b))
                    .collect()
            }),
        }
    }

    /// Best effort for a field whose tag-list does not even parse.
    fn salvage(value: &[u8]) -> Self {
        let mut info = SignatureInfo::default();
        for part in value.split(|b| *b == b';') {
            if let Some(eq) = memchr::memchr(b'=', part) {
                let name = trim_fws(part.get(..eq).unwrap_or_default());
                let v = trim_fws(part.get(eq + 1..).unwrap_or_default());
                let slot = match name {
                    b"d" => &mut info.domain,
                    b"s" => &mut info.selector,
                    b"a" => &mut info.algorithm,
                    b"i" => &mut info.identity,
                    _ => continue,
                };
                if slot.is_none() {
                    *slot = Some(text(v));
                }
            }
        }
        info
    }
}

/// A parsed, checked `DKIM-Signature` (§3.5), or the signature part of an
/// `ARC-Message-Signature`. Names are kept as written (see [`domain`](Self::domain)); the
/// `h=` list is read from the field value on demand ([`signed_names`](Self::signed_names)),
/// so that parsing a signature copies only the decoded `b=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// `a=`.
    pub algorithm: Algorithm,
    /// `b=`, decoded.
    pub signature: Vec<u8>,
    /// `bh=`, decoded (on the stack: at most 64 bytes for SHA-512-sized hashes).
    pub(crate) body_hash: SmallVec<[u8; 64]>,
    /// `c=`.
    pub canonicalization: Canonicalization,
    /// `l=`.
    pub body_length: Option<u64>,
    /// `t=`.
    pub timestamp: Option<u64>,
    /// `x=`.
    pub expiration: Option<u64>,
    /// The trimmed `h=` value within the field value.
    pub(crate) h_range: Range<usize>,
    /// The range of the raw `b=` value within the field value (for removing it, §3.7).
    pub(crate) b_range: Range<usize>,
    /// `d=`, `s=`, `a=`, `i=` as written: always there for a checked signature.
    pub info: SignatureInfo,
}

impl Signature {
    /// `bh=`, decoded.
    pub fn body_hash(&self) -> &[u8] {
        &self.body_hash
    }

    /// `d=` as written (checked: ASCII letters, digits, `-`, `_`, `.`; compare it without
    /// case).
    pub fn domain(&self) -> &str {
        self.info.domain.as_deref().unwrap_or_default()
    }

    /// `s=` as written (checked like `d=`).
    pub fn selector(&self) -> &str {
        self.info.selector.as_deref().unwrap_or_default()
    }

    /// `i=` as written, if present (the default is `@` and `d=`, §3.5).
    pub fn identity(&self) -> Option<&str> {
        self.info.identity.as_deref()
    }

    /// The DNS name of the key, lower-cased: `selector._domainkey.domain` (§3.6.2.1).
    pub fn key_name(&self) -> String {
        const MIDDLE: &str = "._domainkey.";
        let mut name =
            String::with_capacity(self.selector().len() + MIDDLE.len() + self.domain().len());
        name.push_str(self.selector());
        name.push_str(MIDDLE);
        name.push_str(self.domain());
        name.make_ascii_lowercase();
        name
    }

    /// The domain part of `i=` (or `d=` when there is no `i=`), lower-cased.
    pub fn identity_domain(&self) -> String {
        self.identity()
            .map_or(self.domain(), |i| i.rsplit_once('@').map_or(i, |(_, d)| d))
            .to_ascii_lowercase()
    }

    /// Whether the domain of `i=` (or `d=` when there is no `i=`) equals `d=`, without
    /// case (for a key's `t=s`, §3.6.1).
    pub fn identity_is_domain(&self) -> bool {
        let Some(i) = self.identity() else {
            return true;
        };
        let idom = i.rsplit_once('@').map_or(i, |(_, d)| d);
        idom.eq_ignore_ascii_case(self.domain())
    }

    /// The names of `h=`, in order, as written (checked: printable ASCII), from `value`,
    /// the field value this signature was parsed from.
    pub fn signed_names<'v>(&self, value: &'v [u8]) -> impl Iterator<Item = &'v str> + use<'v> {
        value
            .get(self.h_range.clone())
            .unwrap_or_default()
            .split(|b| *b == b':')
            .map(trim_fws)
            .filter(|n| !n.is_empty())
            .filter_map(|n| std::str::from_utf8(n).ok())
    }
}

/// Parses and checks the value of a `DKIM-Signature` field (the bytes after the colon),
/// performing every check of §3.5 and §6.1.1 that needs neither the clock nor the key.
///
/// On error, returns the problem and whatever could be read from the field.
pub fn parse_signature(value: &[u8]) -> Result<Signature, Box<InvalidSignature>> {
    let tags = tag_list(value).map_err(|e| {
        Box::new(InvalidSignature {
            problem: Problem::SignatureSyntax(e),
            info: SignatureInfo::salvage(value),
        })
    })?;
    checked_signature(value, tags.tags(), SigKind::Dkim)
}

/// A signature field that cannot be used: why, and what could be read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSignature {
    /// What is wrong.
    pub problem: Problem,
    /// The tags that could be read.
    pub info: SignatureInfo,
}

/// Which kind of signature a tag-list is: the two share every tag but `v=` and `i=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SigKind {
    /// A `DKIM-Signature` (RFC 6376 §3.5).
    Dkim,
    /// An `ARC-Message-Signature` (RFC 8617 §4.1.2): no `v=`, `i=` is the instance
    /// number (checked by the ARC parser), `h=` need not name From and must not name
    /// ARC-Seal.
    Ams,
}

/// Checks an `ARC-Message-Signature` value already split into `tags` by the tag-list
/// parser, as [`parse_signature`] checks a DKIM signature.
pub(crate) fn parse_ams_tags(
    value: &[u8],
    tags: &[Tag<'_>],
) -> Result<Signature, Box<InvalidSignature>> {
    checked_signature(value, tags, SigKind::Ams)
}

fn checked_signature(
    value: &[u8],
    tags: &[Tag<'_>],
    kind: SigKind,
) -> Result<Signature, Box<InvalidSignature>> {
    let tags = TagIndex::new(tags);
    let info = SignatureInfo::from_tags(&tags);
    match signature_from_tags(value, &tags, kind) {
        Ok(mut sig) => {
            sig.info = info;
            Ok(sig)
        }
        Err(problem) => Err(Box::new(InvalidSignature { problem, info })),
    }
}

fn signature_from_tags(
    input: &[u8],
    tags: &TagIndex<'_, '_>,
    kind: SigKind,
) -> Result<Signature, Problem> {
    let req = |n: &'static str| tags.get(n).ok_or(Problem::MissingTag(n));
    if kind == SigKind::Dkim {
        let v = req("v")?;
        if v != b"1" {
            return Err(Problem::UnsupportedVersion(text(v)));
        }
    }
    let a = req("a")?;
    let algorithm =
        Algorithm::parse(&lossy(a)).ok_or_else(|| Problem::UnknownAlgorithm(text(a)))?;
    let b_tag = tags.tag("b").ok_or(Problem::MissingTag("b"))?;
    let signature = decode_base64(b_tag.value).map_err(|e| Problem::BadTagValue("b", e))?;
    if signature.is_empty() {
        return Err(Problem::BadTagValue("b", "empty".into()));
    }
    let body_hash = decode_base64_short(req("bh")?).map_err(|e| Problem::BadTagValue("bh", e))?;
    let canonicalization = match tags.get("c") {
        None => Canonicalization::default(),
        Some(c) => Canonicalization::parse(&lossy(c))
            .ok_or_else(|| Problem::UnknownCanonicalization(text(c)))?,
    };
    let d = req("d")?;
    // Case does not matter to the checks, and a valid name is ASCII.
    let domain = lossy(d);
    if !is_domain_name(&domain) {
        return Err(Problem::InvalidDomain(text(d)));
    }
    let h_tag = tags.tag("h").ok_or(Problem::MissingTag("h"))?;
    let h = h_tag.value;
    // One pass over the names: counted, `from` looked for, the first invalid name kept;
    // the checks then run in the order the errors are reported.
    let mut names = 0usize;
    let mut from_signed = false;
    let mut seal_signed = false;
    let mut first_bad: Option<&[u8]> = None;
    for name in h
        .split(|b| *b == b':')
        .map(trim_fws)
        .filter(|n| !n.is_empty())
    {
        names += 1;
        if name.iter().all(|b| (33..=126).contains(b)) {
            from_signed |= name.eq_ignore_ascii_case(b"from");
            seal_signed |= name.eq_ignore_ascii_case(b"arc-seal");
        } else {
            first_bad.get_or_insert(name);
        }
    }
    // Selecting each name's instance is linear in the header; bound the work a hostile
    // signature can ask for.
    if names > MAX_SIGNED_FIELDS {
        return Err(Problem::BadTagValue(
            "h",
            format!("more than {MAX_SIGNED_FIELDS} field names"),
        ));
    }
    if kind == SigKind::Dkim && !from_signed {
        return Err(Problem::FromNotSigned);
    }
    if kind == SigKind::Ams && seal_signed {
        return Err(Problem::BadTagValue(
            "h",
            "an ARC-Message-Signature must not sign ARC-Seal (RFC 8617 §4.1.2)".into(),
        ));
    }
    if let Some(bad) = first_bad {
        return Err(Problem::BadTagValue(
            "h",
            format!("invalid field name {:?}", String::from_utf8_lossy(bad)),
        ));
    }
    let s = req("s")?;
    if !is_domain_name(&lossy(s)) {
        return Err(Problem::InvalidSelector(text(s)));
    }
    if let Some(i) = tags.get("i").filter(|_| kind == SigKind::Dkim) {
        let i = lossy(i);
        let Some((_, idom)) = i.rsplit_once('@') else {
            return Err(Problem::BadTagValue("i", "no \"@\"".into()));
        };
        // The i= domain is d= or a subdomain of it (compared without case).
        let same_or_sub = idom.len() >= domain.len()
            && idom
                .get(idom.len() - domain.len()..)
                .is_some_and(|tail| tail.eq_ignore_ascii_case(&domain))
            && (idom.len() == domain.len()
                || idom.as_bytes().get(idom.len() - domain.len() - 1) == Some(&b'.'));
        if !same_or_sub {
            return Err(Problem::IdentityMismatch);
        }
    }
    let number = |n: &'static str, max_digits: usize| -> Result<Option<u64>, Problem> {
        match tags.get(n) {
            None => Ok(None),
            Some(v)
                if v.is_empty() || v.len() > max_digits || !v.iter().all(u8::is_ascii_digit) =>
            {
                Err(Problem::BadTagValue(
                    n,
                    format!("not a number: {:?}", text(v)),
                ))
            }
            Some(v) => Ok(Some(v.iter().fold(0u64, |acc, d| {
                acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
            }))),
        }
    };
    let body_length = number("l", 76)?;
    let timestamp = number("t", 12)?;
    let expiration = number("x", 12)?;
    if let (Some(t), Some(x)) = (timestamp, expiration)
        && x < t
    {
        return Err(Problem::ExpiresBeforeSigned);
    }
    if let Some(q) = tags.get("q") {
        let ok = q
            .split(|b| *b == b':')
            .any(|m| trim_fws(m).eq_ignore_ascii_case(b"dns/txt"));
        if !ok {
            return Err(Problem::UnsupportedQueryMethod(text(q)));
        }
    }
    Ok(Signature {
        algorithm,
        signature,
        body_hash,
        canonicalization,
        h_range: h_tag.value_range.clone(),
        body_length,
        timestamp,
        expiration,
        b_range: b_tag.raw_value_range(input),
        info: SignatureInfo::default(),
    })
}

/// A domain name or a selector (which may also be several labels), with or without one
/// trailing dot: labels of letters, digits, `-` and `_`, 1 to 63 octets, at most 253 in all
/// ([`NameRules::DKIM`](crate::name::NameRules::DKIM)).
pub(crate) fn is_domain_name(name: &str) -> bool {
    crate::name::is_valid(name, crate::name::NameRules::DKIM)
}

/// Parses a key record (§3.6.1). An empty `p=` gives a record whose key is revoked
/// ([`KeyRecord::is_revoked`]); the caller decides what that means.
pub fn parse_key_record(txt: &[u8]) -> Result<KeyRecord, Problem> {
    let list = tag_list(txt).map_err(Problem::KeyRecordSyntax)?;
    let tags = list.tags();
    if let Some(pos) = tags.iter().position(|t| t.name == "v") {
        let v = tags.get(pos).map(|t| t.value).unwrap_or_default();
        if pos != 0 {
            return Err(Problem::KeyRecordSyntax("v= is not the first tag".into()));
        }
        if v != b"DKIM1" {
            return Err(Problem::KeyRecordSyntax(format!(
                "unsupported version v={}",
                text(v)
            )));
        }
    }
    let key_type = match get(tags, "k") {
        None => KeyType::Rsa,
        Some(k) if k.eq_ignore_ascii_case(b"rsa") => KeyType::Rsa,
        Some(k) if k.eq_ignore_ascii_case(b"ed25519") => KeyType::Ed25519,
        Some(k) => {
            return Err(Problem::KeyRecordSyntax(format!(
                "unknown key type k={}",
                text(k)
            )));
        }
    };
    let hashes = get(tags, "h").map(|h| {
        h.split(|b| *b == b':')
            .filter_map(|x| {
                let x = trim_fws(x);
                if x.eq_ignore_ascii_case(b"sha256") {
                    Some(HashAlgorithm::Sha256)
                } else if x.eq_ignore_ascii_case(b"sha1") {
                    Some(HashAlgorithm::Sha1)
                } else {
                    None
                }
            })
            .collect::<Vec<_>>()
    });
    let for_email = get(tags, "s").is_none_or(|s| {
        s.split(|b| *b == b':').any(|x| {
            let x = trim_fws(x);
            x == b"*" || x.eq_ignore_ascii_case(b"email")
        })
    });
    let (mut testing, mut strict) = (false, false);
    if let Some(t) = get(tags, "t") {
        for flag in t.split(|b| *b == b':') {
            match trim_fws(flag) {
                b"y" | b"Y" => testing = true,
                b"s" | b"S" => strict = true,
                _ => {}
            }
        }
    }
    let p = get(tags, "p").ok_or_else(|| Problem::KeyRecordSyntax("no p= tag".into()))?;
    let public_key = decode_base64(p).map_err(|e| Problem::KeyRecordSyntax(format!("p=: {e}")))?;
    Ok(KeyRecord {
        key_type,
        hashes,
        for_email,
        testing,
        strict,
        public_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_values_as_dkim_writes_them() {
        // Folded anywhere, padded or not, trailing bits ignored.
        assert_eq!(decode_base64(b"aGVs\r\n\tbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64(b"aGVsbG8").unwrap(), b"hello");
        assert_eq!(decode_base64(b"aGVsbG9=").unwrap(), b"hello");
        assert_eq!(decode_base64(b" aGVs bG8 = ").unwrap(), b"hello");
        assert_eq!(decode_base64(b"").unwrap(), b"");
        // Padding in the wrong place, a stray character, an impossible length.
        assert!(decode_base64(b"aGVsbG8==").is_err());
        let e = decode_base64(b"aGV*bG8=").unwrap_err();
        assert!(e.contains("'*' at offset 3"), "{e}");
        assert!(decode_base64(b"aGVsb").is_err());
        // The stack variant agrees, short or long, valid or not.
        let long = "QUJD".repeat(30);
        for v in [
            &b"aGVs\r\n\tbG8="[..],
            b"aGVsbG8",
            b" aGVs bG8 = ",
            b"",
            b"aGVsbG8==",
            b"aGV*bG8=",
            b"aGVsb",
            long.as_bytes(),
        ] {
            assert_eq!(
                decode_base64_short(v).map(|d| d.into_vec()),
                decode_base64(v),
                "{v:?}"
            );
        }
    }

    #[test]
    fn signature_checks() {
        let base = "v=1; a=rsa-sha256; d=example.com; s=sel; h=From:To; bh=AAAA; b=AAAA";
        let sig = parse_signature(base.as_bytes()).unwrap();
        assert_eq!(sig.identity_domain(), "example.com");
        assert_eq!(sig.key_name(), "sel._domainkey.example.com");
        let bad = |s: &str| parse_signature(s.as_bytes()).unwrap_err().problem;
        assert_eq!(
            bad(&base.replace("v=1", "v=2")),
            Problem::UnsupportedVersion("2".into())
        );
        assert_eq!(
            bad(&base.replace("h=From:To", "h=To")),
            Problem::FromNotSigned
        );
        assert_eq!(bad(&base.replace("; s=sel", "")), Problem::MissingTag("s"));
        assert_eq!(
            bad(&format!("{base}; i=a@other.com")),
            Problem::IdentityMismatch
        );
        assert!(parse_signature(format!("{base}; i=a@sub.example.com").as_bytes()).is_ok());
        assert_eq!(
            bad(&format!("{base}; t=10; x=5")),
            Problem::ExpiresBeforeSigned
        );
        assert!(matches!(
            bad(&base.replace("d=example.com", "d=legitimate.com(.attacker.com")),
            Problem::InvalidDomain(_)
        ));
    }

    /// Names are read from the field as written; the key name and identity domain are
    /// lower-cased.
    #[test]
    fn names_of_a_signature() {
        for (value, names, identity_domain, identity_is_domain) in [
            (
                "v=1; a=rsa-sha256; d=Example.COM; s=Sel; h= From : To :\r\n\tSubject; bh=AAAA; b=AAAA",
                "From:To:Subject",
                "example.com",
                true,
            ),
            (
                "v=1; a=rsa-sha256; d=example.com; s=sel; h=from; i=Joe@Mail.EXAMPLE.com; bh=AAAA; b=AAAA",
                "from",
                "mail.example.com",
                false,
            ),
            (
                "v=1; a=rsa-sha256; d=example.com; s=sel; h=from; i=@EXAMPLE.com; bh=AAAA; b=AAAA",
                "from",
                "example.com",
                true,
            ),
            (
                "v=1; a=rsa-sha256; d=example.com; s=a.b; h=From::To; i=a@b@EXAMPLE.com; bh=AAAA; b=AAAA",
                "From:To",
                "example.com",
                true,
            ),
        ] {
            let v = value.as_bytes();
            let sig = parse_signature(v).unwrap();
            assert_eq!(sig.signed_names(v).collect::<Vec<_>>().join(":"), names);
            assert_eq!(sig.identity_domain(), identity_domain, "{value}");
            assert_eq!(sig.identity_is_domain(), identity_is_domain, "{value}");
            assert_eq!(sig.body_hash(), [0, 0, 0]);
        }
        let sig = parse_signature(
            b"v=1; a=rsa-sha256; d=Example.COM; s=Sel; h=From : To; bh=AAAA; b=AAAA",
        )
        .unwrap();
        assert_eq!(sig.domain(), "Example.COM");
        assert_eq!(sig.identity(), None);
        assert_eq!(sig.key_name(), "sel._domainkey.example.com");
    }

    #[test]
    fn tag_index_finds_what_a_scan_finds() {
        let input = b"v=1; bh=x; b=y; foo=z; d=e; i=j";
        let list = tag_list(input).unwrap();
        let tags = list.tags();
        let index = TagIndex::new(tags);
        for name in [
            "v", "a", "b", "bh", "c", "d", "h", "i", "foo", "bar", "s", "z",
        ] {
            assert_eq!(index.get(name), get(tags, name), "{name}");
        }
        assert_eq!(index.tag("b").map(|t| t.name_start), Some(11));
    }

    #[test]
    fn domain_names() {
        let long = "a".repeat(63);
        for (name, selector, ok) in [
            ("example.com", false, true),
            ("example.com.", false, true),
            ("Ex-am_ple.c0m", false, true),
            ("localhost", false, true),
            ("sel", true, true),
            ("a.b.sel", true, true),
            ("", false, false),
            (".", false, false),
            (".example.com", false, false),
            ("example..com", false, false),
            ("example.com..", false, false),
            ("exa mple.com", false, false),
            ("legitimate.com(.attacker.com", false, false),
            ("é.com", false, false),
        ] {
            assert_eq!(is_domain_name(name), ok, "{name:?} (selector: {selector})");
        }
        assert!(is_domain_name(&format!("{long}.com")));
        assert!(!is_domain_name(&format!("{long}a.com")));
        assert!(is_domain_name(&long));
        assert!(!is_domain_name(&format!("{long}a")));
        let many = vec!["abc"; 64].join(".");
        assert!(is_domain_name(&many[..253]));
        assert!(!is_domain_name(&many[..255]));
        assert!(!is_domain_name(&many));
    }

    #[test]
    fn key_records() {
        let k = parse_key_record(b"v=DKIM1; k=ed25519; t=y:s; p=AAAA").unwrap();
        assert_eq!(k.key_type, KeyType::Ed25519);
        assert!(k.testing && k.strict);
        assert!(parse_key_record(b"k=rsa; v=DKIM1; p=").is_err());
        assert!(parse_key_record(b"v=DKIM1: g=*; k=rsa; p=AAAA").is_err());
        assert!(parse_key_record(b"v=DKIM1; k=ed25519-sha256; p=AAAA").is_err());
        assert!(parse_key_record(b"v=DKIM1; p=").unwrap().is_revoked());
        assert!(!parse_key_record(b"s=tlsrpt; p=AAAA").unwrap().for_email);
    }
}
