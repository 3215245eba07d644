//! Signing (§5): rsa-sha256 and ed25519-sha256, a chosen header list with oversigning,
//! `c=`, `x=`, `i=` and optionally `l=`.

use std::fmt;

use aws_lc_rs::digest;
use base64::Engine;

use super::canon::{BodyCanonicalizer, BodySink};
use super::parse::parse_signature;
use super::verify::signed_header_data;
use super::{Algorithm, Canon, Canonicalization, Problem};
use crate::clock::Clock;
use crate::message::{Message, parse_header_block};

/// Something that makes DKIM signatures: a [`SigningKey`](super::SigningKey), or an outside
/// signer (an HSM, a remote service).
pub trait DkimSigner {
    /// The algorithm of the signatures (`a=`).
    fn algorithm(&self) -> Algorithm;

    /// Signs the canonicalised header data (§3.7). RSA signers hash `data` with SHA-256 and
    /// sign with PKCS#1 v1.5; Ed25519 signers sign the SHA-256 digest of `data` (RFC 8463
    /// §3).
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, SignError>;
}

/// Why a message could not be signed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignError {
    /// The message has no From field, which every signature must cover (§5.4).
    NoFrom,
    /// An option is not valid: which and why.
    InvalidOption(String),
    /// A signature field given as a template is malformed.
    Template(Problem),
    /// The cryptographic operation failed.
    Crypto,
}

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignError::NoFrom => f.write_str("the message has no From field to sign"),
            SignError::InvalidOption(why) => write!(f, "invalid signing option: {why}"),
            SignError::Template(p) => write!(f, "unusable signature template: {p}"),
            SignError::Crypto => f.write_str("the signing operation failed"),
        }
    }
}

impl std::error::Error for SignError {}

/// The header fields signed by default: those a mail user sees or that change how the
/// message is shown (RFC 6376 §5.4.1).
pub const DEFAULT_HEADERS: &[&str] = &[
    "from",
    "reply-to",
    "subject",
    "date",
    "to",
    "cc",
    "message-id",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "sender",
];

/// How to sign. Every field states its default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOptions {
    /// `d=`. Required.
    pub domain: String,
    /// `s=`. Required.
    pub selector: String,
    /// The header fields to sign, by name. Default [`DEFAULT_HEADERS`]. Every instance
    /// present is signed; From must be present.
    pub headers: Vec<String>,
    /// Also sign one more, absent, instance of each listed field, so that none can be added
    /// later without breaking the signature (§8.15). Default `true`.
    pub oversign: bool,
    /// `c=`. Default `relaxed/relaxed`.
    pub canonicalization: Canonicalization,
    /// `i=`. Default none (which means `@d`).
    pub identity: Option<String>,
    /// Write `t=` with the clock's time. Default `true`.
    pub timestamp: bool,
    /// Write `x=`, this many seconds after the signing time. Default none.
    pub expire_after: Option<u64>,
    /// Write `l=` with the length of the canonical body. Default `false` (§8.2 explains why
    /// `l=` is dangerous).
    pub body_length: bool,
}

impl SignOptions {
    /// Options with the defaults, for `domain` and `selector`.
    pub fn new(domain: impl Into<String>, selector: impl Into<String>) -> Self {
        SignOptions {
            domain: domain.into(),
            selector: selector.into(),
            headers: DEFAULT_HEADERS.iter().map(|s| s.to_string()).collect(),
            oversign: true,
            canonicalization: Canonicalization {
                header: Canon::Relaxed,
                body: Canon::Relaxed,
            },
            identity: None,
            timestamp: true,
            expire_after: None,
            body_length: false,
        }
    }
}

struct HashSink {
    ctx: digest::Context,
}

impl BodySink for HashSink {
    fn write(&mut self, data: &[u8]) {
        self.ctx.update(data);
    }
}

/// Signs `message`, returning the `DKIM-Signature` field to put at the top of it, folded,
/// with CRLF line endings and a final CRLF.
pub fn sign<S, C>(
    message: &[u8],
    signer: &S,
    opts: &SignOptions,
    clock: &C,
) -> Result<String, SignError>
where
    S: DkimSigner + ?Sized,
    C: Clock + ?Sized,
{
    let check_name = |what: &str, v: &str| {
        if crate::name::check(v, crate::name::NameRules::DKIM).is_ok() {
            Ok(())
        } else {
            Err(SignError::InvalidOption(format!(
                "{what} {v:?} is not a valid name"
            )))
        }
    };
    check_name("domain", &opts.domain)?;
    check_name("selector", &opts.selector)?;
    let algorithm = signer.algorithm();
    if algorithm == Algorithm::RsaSha1 {
        return Err(SignError::InvalidOption(
            "rsa-sha1 signatures are not made (RFC 8301)".into(),
        ));
    }
    let msg = Message::parse(message);
    if let Some(i) = &opts.identity {
        let dom = i.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase());
        let d = opts.domain.to_ascii_lowercase();
        match dom {
            Some(dom) if dom == d || dom.ends_with(&format!(".{d}")) => {}
            _ => {
                return Err(SignError::InvalidOption(format!(
                    "identity {i:?} is not an address in {}",
                    opts.domain
                )));
            }
        }
    }

    // h=: every instance present, plus one for oversigning.
    let mut names: Vec<String> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for name in &opts.headers {
        let lower = name.trim().to_ascii_lowercase();
        if lower.is_empty() || seen.contains(&lower) {
            continue;
        }
        if !lower.bytes().all(|b| (33..=126).contains(&b) && b != b':') {
            return Err(SignError::InvalidOption(format!(
                "invalid header name {name:?}"
            )));
        }
        let present = msg.fields(&lower).count();
        let n = present + usize::from(opts.oversign);
        names.extend(std::iter::repeat_n(lower.clone(), n));
        seen.push(lower);
    }
    if msg.fields("from").next().is_none() {
        return Err(SignError::NoFrom);
    }
    if !names.iter().any(|n| n == "from") {
        names.insert(0, "from".to_string());
    }

    // bh=
    let c = opts.canonicalization;
    let (bh, body_len) = body_hash(c.body, msg.body());

    let now = clock.unix_seconds();
    let mut tags: Vec<String> = vec![
        "v=1".into(),
        format!("a={}", algorithm.as_str()),
        format!("c={c}"),
        format!("d={}", opts.domain),
        format!("s={}", opts.selector),
    ];
    if let Some(i) = &opts.identity {
        tags.push(format!("i={i}"));
    }
    if opts.timestamp {
        tags.push(format!("t={now}"));
    }
    if let Some(x) = opts.expire_after {
        tags.push(format!("x={}", now.saturating_add(x)));
    }
    if opts.body_length {
        tags.push(format!("l={body_len}"));
    }
    tags.push(format!("h={}", names.join(":")));
    tags.push(format!("bh={bh}"));
    fold_and_sign(&msg, signer, c.header, "DKIM-Signature", &tags, &names)
}

/// The SHA-256 body hash (`bh=`, base64) of `body` canonicalised with `canon`, and the
/// canonical length.
pub(crate) fn body_hash(canon: Canon, body: &[u8]) -> (String, u64) {
    let mut sink = HashSink {
        ctx: digest::Context::new(&digest::SHA256),
    };
    let mut canonicalizer = BodyCanonicalizer::new(canon);
    canonicalizer.update(body, &mut sink);
    canonicalizer.finish(&mut sink);
    let len = canonicalizer.written();
    let bh = base64::engine::general_purpose::STANDARD.encode(sink.ctx.finish());
    (bh, len)
}

/// Writes the field `name` with `tags` (each `tag=value`, in order) folded at tag
/// boundaries and inside `h=` at colons, signs it over the header fields `names` of `msg`
/// canonicalised with `canon` (§3.7), and appends `b=`. The field ends with CRLF.
pub(crate) fn fold_and_sign<S: DkimSigner + ?Sized>(
    msg: &Message<'_>,
    signer: &S,
    canon: Canon,
    name: &str,
    tags: &[String],
    names: &[String],
) -> Result<String, SignError> {
    let mut field = fold_tags(name, tags);
    field.push_str("\r\n\tb=");
    let fields = parse_header_block(msg.header_block());
    let mut data = Vec::with_capacity(msg.header_block().len() + field.len());
    let mut used = vec![false; fields.len()];
    let value = field.get(name.len() + 1..).unwrap_or_default();
    signed_header_data(
        canon,
        names.iter().map(String::as_str),
        &fields,
        None,
        (name.as_bytes(), value.as_bytes()),
        &mut data,
        &mut used,
    );
    let signature = signer.sign(&data)?;
    push_folded_b(&mut field, &signature);
    Ok(field)
}

/// Appends the base64 of `signature` to `field` (which ends with `\tb=` at the start of a
/// line), folded to lines of 76 characters, and the final CRLF.
pub(crate) fn push_folded_b(field: &mut String, signature: &[u8]) {
    push_folded_base64(field, signature, "\tb=".len(), 76, '\t');
    field.push_str("\r\n");
}

/// Appends the base64 of `value` to `out`, whose current line already holds `used`
/// characters, folded into lines of `width` characters: each fold is CRLF and `indent` (a
/// space or a tab), which counts in the width. The `b=` values of DKIM-Signature (76, tab)
/// and of the ARC fields (73, space, as dkimpy folds them) are written by it; where the
/// folds fall matters to an ARC seal, which covers the earlier fields with their folding
/// whitespace reduced to one space.
pub(crate) fn push_folded_base64(
    out: &mut String,
    value: &[u8],
    used: usize,
    width: usize,
    indent: char,
) {
    let b = base64::engine::general_purpose::STANDARD.encode(value);
    let mut rest = b.as_str();
    let mut room = width.saturating_sub(used).max(1);
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(room.min(rest.len()));
        out.push_str(line);
        rest = tail;
        if !rest.is_empty() {
            out.push_str("\r\n");
            out.push(indent);
        }
        room = width.saturating_sub(1).max(1);
    }
}

/// `name:` and `tags`, each followed by `;`, folded at tag boundaries (and inside `h=` at
/// colons) to lines of at most about 76 characters.
pub(crate) fn fold_tags(name: &str, tags: &[String]) -> String {
    let mut field = format!("{name}:");
    let mut line_len = field.len();
    for tag in tags {
        let pieces: Vec<String> = if tag.starts_with("h=") && tag.len() > 70 {
            let mut out = Vec::new();
            let mut cur = String::new();
            for (k, part) in tag.split(':').enumerate() {
                let piece = if k == 0 {
                    part.to_string()
                } else {
                    format!(":{part}")
                };
                if cur.len() + piece.len() > 70 && !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                cur.push_str(&piece);
            }
            out.push(cur);
            out
        } else {
            vec![tag.clone()]
        };
        for (k, piece) in pieces.iter().enumerate() {
            let sep = if k == 0 { " " } else { "" };
            let add = sep.len() + piece.len() + 1;
            if line_len + add > 76 && line_len > 1 {
                field.push_str("\r\n\t");
                line_len = 1;
            } else {
                field.push_str(sep);
            }
            field.push_str(piece);
            line_len += piece.len() + sep.len();
        }
        field.push(';');
        line_len += 1;
    }
    field
}

/// Computes the signature (the decoded `b=`) that `signer` makes for `message` under an
/// existing signature field `field` (a complete `DKIM-Signature: ...` field, whose `b=`
/// value is ignored). This reproduces a published signature exactly when the key is
/// deterministic (RSA PKCS#1 v1.5, Ed25519), which is how the RFC 8463 example is checked.
pub fn signature_for_field<S: DkimSigner + ?Sized>(
    message: &[u8],
    field: &[u8],
    signer: &S,
) -> Result<Vec<u8>, SignError> {
    let parsed_field = Message::parse(field);
    let own = parsed_field
        .headers()
        .first()
        .filter(|f| f.is("DKIM-Signature"))
        .ok_or_else(|| {
            SignError::Template(Problem::SignatureSyntax(
                "not a DKIM-Signature field".into(),
            ))
        })?;
    let sig = parse_signature(own.value()).map_err(|e| SignError::Template(e.problem))?;
    if sig.algorithm != signer.algorithm() {
        return Err(SignError::InvalidOption(format!(
            "the field says a={}, the key makes {}",
            sig.algorithm,
            signer.algorithm()
        )));
    }
    let value = own.value();
    let mut stripped = Vec::with_capacity(value.len());
    stripped.extend_from_slice(value.get(..sig.b_range.start).unwrap_or(value));
    stripped.extend_from_slice(value.get(sig.b_range.end..).unwrap_or_default());
    let msg = Message::parse(message);
    let fields = parse_header_block(msg.header_block());
    let mut data = Vec::new();
    let mut used = vec![false; fields.len()];
    signed_header_data(
        sig.canonicalization.header,
        sig.signed_names(value),
        &fields,
        None,
        (own.name(), &stripped),
        &mut data,
        &mut used,
    );
    signer.sign(&data)
}
