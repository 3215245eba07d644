//! Sealing (§5.1): adding the next ARC set to a message, for forwarders and list servers.
//!
//! [`seal`] writes, for instance N+1:
//!
//! 1. the `ARC-Authentication-Results` (AAR): `i=N+1;` and this hop's Authentication-Results
//!    (its authserv-id and results);
//! 2. the `ARC-Message-Signature` (AMS), made by DKIM's signer over the message with the new
//!    AAR on top: relaxed/relaxed, the header fields of [`DEFAULT_HEADERS`] that are present;
//! 3. the `ARC-Seal` (AS) over every ARC set in instance order, the new one last, with the
//!    chain status this hop found: `cv=none` for the first set, else `pass` or `fail`; a
//!    seal with `cv=fail` covers only its own set, the chain before it being broken.
//!
//! A chain whose newest seal already says `cv=fail` gets no further sets (§5.1.2: once
//! failed, a chain stays failed, and sealing it again would only cost the next hop a DNS
//! lookup).

use std::fmt;

use super::ChainStatus;

use super::verify::{SealSets, existing_sets, whole_sets};
use crate::auth_results;
use crate::clock::Clock;
use crate::dkim::sign::{body_hash, push_folded_base64};
use crate::dkim::verify::signed_header_data;
use crate::dkim::{Algorithm, Canon, DkimSigner, SignError, canonicalize_header};
use crate::message::Message;

/// The header fields an AMS signs by default (each instance present, none oversigned: a
/// later hop that adds a field must not break this hop's signature for nothing).
pub const DEFAULT_HEADERS: &[&str] = &[
    "from",
    "to",
    "cc",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "reply-to",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "dkim-signature",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
];

/// How to seal. Every field states its default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealOptions {
    /// The sealing domain (`d=` of AMS and AS). Required.
    pub domain: String,
    /// The selector (`s=`). Required.
    pub selector: String,
    /// This hop's authserv-id, written in the AAR. Required.
    pub authserv_id: String,
    /// The header fields the AMS signs, by name: every instance present is signed.
    /// Default [`DEFAULT_HEADERS`].
    pub headers: Vec<String>,
}

impl SealOptions {
    /// Options with the defaults.
    pub fn new(
        domain: impl Into<String>,
        selector: impl Into<String>,
        authserv_id: impl Into<String>,
    ) -> Self {
        SealOptions {
            domain: domain.into(),
            selector: selector.into(),
            authserv_id: authserv_id.into(),
            headers: DEFAULT_HEADERS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// Why a message could not be sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealError {
    /// The newest seal already says `cv=fail`: no set is added (§5.1.2).
    ChainAlreadyFailed(u32),
    /// The message already has 50 ARC sets.
    TooManySets,
    /// `cv=pass` was asked for, but the chain is not sound (what is wrong).
    NotSound(String),
    /// `cv=none` was asked for, but the message has ARC sets.
    NotFirst(u32),
    /// The Authentication-Results given are unusable.
    AuthenticationResults(String),
    /// Signing failed (a bad option, the key).
    Sign(SignError),
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SealError::ChainAlreadyFailed(i) => write!(
                f,
                "the chain already failed (the seal of instance {i} says cv=fail); no ARC set is added"
            ),
            SealError::TooManySets => f.write_str("the message already has 50 ARC sets"),
            SealError::NotSound(why) => write!(f, "cannot seal with cv=pass: {why}"),
            SealError::NotFirst(n) => write!(
                f,
                "cannot seal with cv=none: the message has {n} ARC set(s) already"
            ),
            SealError::AuthenticationResults(why) => {
                write!(f, "unusable Authentication-Results: {why}")
            }
            SealError::Sign(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SealError {}

impl From<SignError> for SealError {
    fn from(e: SignError) -> Self {
        SealError::Sign(e)
    }
}

/// The three fields of a new ARC set, each folded, with CRLF line endings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArcSet {
    /// The instance number.
    pub instance: u32,
    /// `ARC-Seal: ...\r\n`.
    pub seal: String,
    /// `ARC-Message-Signature: ...\r\n`.
    pub message_signature: String,
    /// `ARC-Authentication-Results: ...\r\n`.
    pub authentication_results: String,
}

impl ArcSet {
    /// The three fields in the order to put them at the top of the message: AS, AMS, AAR.
    pub fn to_prepend(&self) -> String {
        let mut s = String::with_capacity(
            self.seal.len() + self.message_signature.len() + self.authentication_results.len(),
        );
        s.push_str(&self.seal);
        s.push_str(&self.message_signature);
        s.push_str(&self.authentication_results);
        s
    }
}

/// The results of the Authentication-Results fields of `message` whose authserv-id is
/// `authserv_id`, in order, each as written (comments kept), for the AAR: "AR
/// consolidation".
pub fn own_results(message: &[u8], authserv_id: &str) -> Vec<String> {
    let msg = Message::parse(message);
    let mut out = Vec::new();
    for f in msg.fields("Authentication-Results") {
        let value = String::from_utf8_lossy(f.value());
        if let Some((id, results)) = auth_results::split_resinfo(&value)
            && id.eq_ignore_ascii_case(authserv_id)
        {
            out.extend(results);
        }
    }
    out
}

/// Adds the next ARC set to `message`. `results` are this hop's results (each a `resinfo`
/// such as `spf=pass smtp.mailfrom=example.com`; [`own_results`] collects them from the
/// message), `chain` the chain validation status this hop found (`none` when the message
/// has no ARC set).
pub fn seal<S, C>(
    message: &[u8],
    signer: &S,
    opts: &SealOptions,
    results: &[String],
    chain: ChainStatus,
    clock: &C,
) -> Result<ArcSet, SealError>
where
    S: DkimSigner + ?Sized,
    C: Clock + ?Sized,
{
    let algorithm = signer.algorithm();
    if algorithm == Algorithm::RsaSha1 {
        return Err(
            SignError::InvalidOption("rsa-sha1 is not used for ARC (RFC 8301)".into()).into(),
        );
    }
    if opts.authserv_id.trim().is_empty() {
        return Err(SealError::AuthenticationResults("no authserv-id".into()));
    }
    let msg = Message::parse(message);
    let existing = existing_sets(msg.headers());
    let (sets, n) = match existing {
        SealSets::None => (Vec::new(), 0),
        SealSets::Sound(sets) => {
            let n = sets.len() as u32;
            (sets, n)
        }
        SealSets::Failed(i) => return Err(SealError::ChainAlreadyFailed(i)),
        SealSets::Broken(n, why) => {
            if chain != ChainStatus::Fail {
                return Err(SealError::NotSound(why));
            }
            (Vec::new(), n)
        }
    };
    if n >= super::MAX_INSTANCES {
        return Err(SealError::TooManySets);
    }
    match chain {
        ChainStatus::None if n > 0 => return Err(SealError::NotFirst(n)),
        ChainStatus::Pass | ChainStatus::Fail if n == 0 => {
            return Err(SealError::NotSound(
                "the message has no ARC set; the first seal says cv=none".into(),
            ));
        }
        _ => {}
    }
    let i = n + 1;

    // 1. The AAR.
    let mut aar = format!("ARC-Authentication-Results: i={i}; ");
    auth_results::push_value(&mut aar, &opts.authserv_id);
    if results.iter().all(|r| r.trim().is_empty()) {
        aar.push_str("; none");
    }
    for r in results {
        let r = r.trim();
        if r.is_empty() {
            continue;
        }
        aar.push_str(";\r\n ");
        push_folded(&mut aar, r)?;
    }
    aar.push_str("\r\n");

    // 2. The AMS, over the message with the AAR on top.
    let now = clock.unix_seconds();
    let with_aar = [aar.as_bytes(), message].concat();
    let msg2 = Message::parse(&with_aar);
    let mut names: Vec<String> = Vec::new();
    for name in &opts.headers {
        let lower = name.trim().to_ascii_lowercase();
        if lower.is_empty() || names.contains(&lower) {
            continue;
        }
        if !lower.bytes().all(|b| (33..=126).contains(&b) && b != b':') || lower == "arc-seal" {
            return Err(
                SignError::InvalidOption(format!("cannot sign header field {name:?}")).into(),
            );
        }
        let present = msg2.fields(&lower).count();
        names.extend(std::iter::repeat_n(lower, present));
    }
    let (bh, _) = body_hash(Canon::Relaxed, msg2.body());
    check_name("domain", &opts.domain)?;
    check_name("selector", &opts.selector)?;
    // Tags in alphabetical order, b= in its place, as dkimpy writes them (so that the
    // signing suite's b= values come out the same).
    let (template, at) = layout(
        "ARC-Message-Signature",
        &[format!("a={}", algorithm.as_str())],
        &[
            format!("bh={bh}"),
            "c=relaxed/relaxed".to_string(),
            format!("d={}", opts.domain),
            format!("h={}", names.join(":")),
            format!("i={i}"),
            format!("s={}", opts.selector),
            format!("t={now}"),
        ],
    );
    let fields2 = msg2.headers();
    let mut data = Vec::with_capacity(msg2.header_block().len() + template.len());
    let mut used = vec![false; fields2.len()];
    let value = template
        .get("ARC-Message-Signature:".len()..)
        .unwrap_or_default();
    signed_header_data(
        Canon::Relaxed,
        names.iter().map(String::as_str),
        fields2,
        None,
        (b"ARC-Message-Signature", value.as_bytes()),
        &mut data,
        &mut used,
    );
    let ams = with_b(&template, at, &signer.sign(&data)?);

    // 3. The AS, over the existing sets and the new one (§5.1.1).
    let (template, at) = layout(
        "ARC-Seal",
        &[format!("a={}", algorithm.as_str())],
        &[
            format!("cv={}", chain.as_str()),
            format!("d={}", opts.domain),
            format!("i={i}"),
            format!("s={}", opts.selector),
            format!("t={now}"),
        ],
    );
    data.clear();
    // A failed chain is not vouched for: the seal covers only its own set (§5.1.2; what
    // dkimpy does too).
    if chain != ChainStatus::Fail {
        whole_sets(&sets, msg.headers(), &mut data);
    }
    for field in [aar.as_bytes(), ams.as_bytes()] {
        let parsed = Message::parse(field);
        if let Some(f) = parsed.headers().first() {
            canonicalize_header(Canon::Relaxed, f.name(), f.value(), true, &mut data);
        }
    }
    let value = template.get("ARC-Seal:".len()..).unwrap_or_default();
    canonicalize_header(
        Canon::Relaxed,
        b"ARC-Seal",
        value.as_bytes(),
        false,
        &mut data,
    );
    let seal = with_b(&template, at, &signer.sign(&data)?);
    Ok(ArcSet {
        instance: i,
        seal,
        message_signature: ams,
        authentication_results: aar,
    })
}

/// Lays out the field `name: before...; b=; after...` folded (CRLF and a space, so that
/// every tag follows a space: dkimpy looks for `" i=N;"`) to lines of about 76
/// characters, `b=` on a line of its own, and says where the `b=` value goes. Signing
/// covers the field as laid out, with the empty `b=` (which is what a verifier sees once it
/// removes the value, RFC 6376 §3.7).
fn layout(name: &str, before: &[String], after: &[String]) -> (String, usize) {
    let mut out = format!("{name}:");
    let mut line = out.len();
    push_tags(&mut out, &mut line, before, true);
    out.push_str("\r\n b=");
    let at = out.len();
    out.push_str(";\r\n");
    line = 0;
    push_tags(&mut out, &mut line, after, false);
    out.push_str("\r\n");
    (out, at)
}

/// Appends `tags`, each after a space or a fold, each followed by `;` (`last_semicolon`:
/// the last one too). `h=` is folded at its colons when long.
fn push_tags(out: &mut String, line: &mut usize, tags: &[String], last_semicolon: bool) {
    const WIDTH: usize = 76;
    for (k, tag) in tags.iter().enumerate() {
        let semi = last_semicolon || k + 1 < tags.len();
        let pieces: Vec<&str> = if tag.starts_with("h=") && tag.len() > WIDTH - 8 {
            tag.split_inclusive(':').collect()
        } else {
            vec![tag.as_str()]
        };
        for (j, piece) in pieces.iter().enumerate() {
            let room = piece.len() + usize::from(semi && j + 1 == pieces.len()) + 1;
            if *line + room > WIDTH && *line > 1 {
                out.push_str("\r\n ");
                *line = 1;
            } else if j == 0 {
                out.push(' ');
                *line += 1;
            }
            out.push_str(piece);
            *line += piece.len();
        }
        if semi {
            out.push(';');
            *line += 1;
        }
    }
}

/// `template` with the base64 of `signature` at `at` (just after the ` b=` that starts a
/// line), folded into lines of 73 characters as dkimpy folds them. Where the folds fall
/// matters: a later seal covers this field with its folding whitespace reduced to one
/// space.
fn with_b(template: &str, at: usize, signature: &[u8]) -> String {
    let mut out = String::with_capacity(template.len() + signature.len() * 4 / 3 + 16);
    out.push_str(template.get(..at).unwrap_or(template));
    push_folded_base64(&mut out, signature, " b=".len(), 73, ' ');
    out.push_str(template.get(at..).unwrap_or_default());
    out
}

/// Appends a result that may be folded (as copied from a field of a message with CRLF or
/// LF line endings): every line break must be followed by white space, and is written as
/// CRLF. Anything else would end the field and start another: refused.
fn push_folded(out: &mut String, r: &str) -> Result<(), SealError> {
    let r = r.replace("\r\n", "\n");
    if r.contains('\r') {
        return Err(SealError::AuthenticationResults(format!(
            "a bare CR in {r:?}"
        )));
    }
    let mut lines = r.split('\n');
    if let Some(first) = lines.next() {
        out.push_str(first);
    }
    for line in lines {
        if !line.starts_with([' ', '\t']) {
            return Err(SealError::AuthenticationResults(format!(
                "a line break not followed by white space in {r:?}"
            )));
        }
        out.push_str("\r\n");
        out.push_str(line);
    }
    Ok(())
}

fn check_name(what: &str, v: &str) -> Result<(), SealError> {
    if crate::name::check(v, crate::name::NameRules::DKIM).is_ok() {
        Ok(())
    } else {
        Err(SignError::InvalidOption(format!("{what} {v:?} is not a valid name")).into())
    }
}
