//! DKIM (RFC 6376), with the algorithm updates of RFC 8301 (no rsa-sha1, RSA keys of at least
//! 1024 bits) and RFC 8463 (ed25519-sha256). `§` references are to RFC 6376.
//!
//! # Verifying
//!
//! [`Verifier::verify`] evaluates every `DKIM-Signature` of a message: it parses each
//! signature (§3.5, §6.1.1), fetches the keys concurrently through the [`Lookup`] seam,
//! hashes the body once per (canonicalisation, hash, `l=`) and checks each signature. Each
//! [`SignatureResult`] carries the RFC 8601 result name and a [`Problem`] saying, for a
//! person, what went wrong.
//!
//! For a message that arrives in pieces (a milter), [`Verifier::start`] takes the header
//! block and returns a [`StreamingVerifier`] that hashes body chunks as they come, without
//! holding the body.
//!
//! ```
//! # use dmarc_proto::{dkim::{Verifier, VerifyConfig}, FixedClock};
//! # use dmarc_proto::dns::{DnsResult, Lookup, MxRecord, DnsError};
//! # use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
//! # struct NoDns;
//! # impl Lookup for NoDns {
//! #   async fn txt(&self, _: &str) -> DnsResult<Vec<u8>> { Err(DnsError::NxDomain) }
//! #   async fn a(&self, _: &str) -> DnsResult<Ipv4Addr> { Err(DnsError::NxDomain) }
//! #   async fn aaaa(&self, _: &str) -> DnsResult<Ipv6Addr> { Err(DnsError::NxDomain) }
//! #   async fn mx(&self, _: &str) -> DnsResult<MxRecord> { Err(DnsError::NxDomain) }
//! #   async fn ptr(&self, _: IpAddr) -> DnsResult<String> { Err(DnsError::NxDomain) }
//! # }
//! let verifier = Verifier::new(VerifyConfig::default());
//! let message = b"From: a@example.com\r\nSubject: hi\r\n\r\nHello\r\n";
//! let clock = FixedClock::from_unix_seconds(1_700_000_000);
//! let results = futures_util::FutureExt::now_or_never(verifier.verify(message, &NoDns, &clock))
//!     .expect("no real I/O");
//! assert!(results.is_empty()); // no signature: DKIM result "none"
//! ```
//!
//! # Signing
//!
//! [`sign::sign`] produces a `DKIM-Signature` field with rsa-sha256 or ed25519-sha256, a
//! chosen header list (with oversigning), `c=`, `x=` and `i=`. Keys are [`SigningKey`]s;
//! any other implementation of [`DkimSigner`] (an HSM, a remote signer) plugs in the same way.

mod canon;
pub(crate) mod key;
pub(crate) mod parse;
pub mod sign;
pub(crate) mod verify;

use std::fmt;

use crate::auth_results::{MethodResult, ResultSink};

pub use canon::{BodyCanonicalizer, BodySink, canonicalize_body, canonicalize_header};
pub use key::{KeyCache, KeyError, KeyRecord, PublicKey, SigningKey};
pub use parse::{InvalidSignature, Signature, SignatureInfo, parse_key_record, parse_signature};
pub use sign::{DkimSigner, SignError, SignOptions};
pub use verify::{KeyAnswers, StreamingVerifier, Verifier, fetch_keys, signed_header_data_of};

#[cfg(doc)]
use crate::dns::Lookup;

/// A canonicalisation algorithm (§3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Canon {
    /// `simple`: almost no change.
    Simple,
    /// `relaxed`: whitespace and case normalised.
    Relaxed,
}

impl Canon {
    /// The name used in `c=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Canon::Simple => "simple",
            Canon::Relaxed => "relaxed",
        }
    }
}

/// The `c=` pair: header and body canonicalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Canonicalization {
    /// For the header fields.
    pub header: Canon,
    /// For the body.
    pub body: Canon,
}

impl Canonicalization {
    /// Parses a `c=` value (§3.5): `simple`, `relaxed`, or `header/body`. A single name
    /// applies to the header, and the body is `simple`.
    pub fn parse(value: &str) -> Option<Self> {
        // The usual spellings first.
        let (relaxed, simple) = (Canon::Relaxed, Canon::Simple);
        let exact = |header, body| Some(Canonicalization { header, body });
        match value {
            "relaxed/relaxed" => return exact(relaxed, relaxed),
            "relaxed/simple" => return exact(relaxed, simple),
            "simple/simple" | "simple" => return exact(simple, simple),
            "simple/relaxed" => return exact(simple, relaxed),
            "relaxed" => return exact(relaxed, simple),
            _ => {}
        }
        let one = |s: &str| match s.trim() {
            s if s.eq_ignore_ascii_case("simple") => Some(Canon::Simple),
            s if s.eq_ignore_ascii_case("relaxed") => Some(Canon::Relaxed),
            _ => None,
        };
        match value.split_once('/') {
            Some((h, b)) => Some(Canonicalization {
                header: one(h)?,
                body: one(b)?,
            }),
            None => Some(Canonicalization {
                header: one(value)?,
                body: Canon::Simple,
            }),
        }
    }
}

impl Default for Canonicalization {
    /// `simple/simple`, the default when `c=` is absent (§3.5).
    fn default() -> Self {
        Canonicalization {
            header: Canon::Simple,
            body: Canon::Simple,
        }
    }
}

impl fmt::Display for Canonicalization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.header.as_str(), self.body.as_str())
    }
}

/// A hash algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HashAlgorithm {
    /// SHA-256.
    Sha256,
    /// SHA-1: only with `rsa-sha1`, which RFC 8301 §3.1 retires.
    Sha1,
}

impl HashAlgorithm {
    /// The name used in key records' `h=` (`sha256`, `sha1`).
    pub fn as_str(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha1 => "sha1",
        }
    }

    pub(crate) fn digest_algorithm(self) -> &'static aws_lc_rs::digest::Algorithm {
        match self {
            HashAlgorithm::Sha256 => &aws_lc_rs::digest::SHA256,
            HashAlgorithm::Sha1 => &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        }
    }
}

/// A key type (`k=` of the key record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// RSA.
    Rsa,
    /// Ed25519 (RFC 8463).
    Ed25519,
}

impl KeyType {
    /// The name used in `k=`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Rsa => "rsa",
            KeyType::Ed25519 => "ed25519",
        }
    }
}

/// A signing algorithm (`a=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `rsa-sha256`.
    RsaSha256,
    /// `rsa-sha1`: refused unless [`VerifyConfig::allow_rsa_sha1`] (RFC 8301 §3.1).
    RsaSha1,
    /// `ed25519-sha256` (RFC 8463).
    Ed25519Sha256,
}

impl Algorithm {
    /// Parses an `a=` value (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        if s == "rsa-sha256" {
            return Some(Algorithm::RsaSha256);
        }
        match s.trim() {
            s if s.eq_ignore_ascii_case("rsa-sha256") => Some(Algorithm::RsaSha256),
            s if s.eq_ignore_ascii_case("rsa-sha1") => Some(Algorithm::RsaSha1),
            s if s.eq_ignore_ascii_case("ed25519-sha256") => Some(Algorithm::Ed25519Sha256),
            _ => None,
        }
    }

    /// The name used in `a=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RsaSha256 => "rsa-sha256",
            Algorithm::RsaSha1 => "rsa-sha1",
            Algorithm::Ed25519Sha256 => "ed25519-sha256",
        }
    }

    /// The key type the algorithm needs.
    pub fn key_type(self) -> KeyType {
        match self {
            Algorithm::RsaSha256 | Algorithm::RsaSha1 => KeyType::Rsa,
            Algorithm::Ed25519Sha256 => KeyType::Ed25519,
        }
    }

    /// The hash algorithm.
    pub fn hash(self) -> HashAlgorithm {
        match self {
            Algorithm::RsaSha256 | Algorithm::Ed25519Sha256 => HashAlgorithm::Sha256,
            Algorithm::RsaSha1 => HashAlgorithm::Sha1,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The DKIM result of one signature, named as RFC 8601 §2.7.1 names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DkimResult {
    /// The signature verified.
    Pass,
    /// The signature was usable but did not verify (body or header hash mismatch).
    Fail,
    /// The signature could not be processed (for example it has expired).
    Neutral,
    /// The signature is not acceptable by local policy (rsa-sha1, a key that is too small).
    Policy,
    /// A temporary failure, such as a DNS time-out: a later attempt may succeed.
    TempError,
    /// A permanent error: a malformed signature or key record, no key.
    PermError,
}

impl DkimResult {
    /// The RFC 8601 name: `pass`, `fail`, `neutral`, `policy`, `temperror`, `permerror`.
    pub fn as_str(self) -> &'static str {
        match self {
            DkimResult::Pass => "pass",
            DkimResult::Fail => "fail",
            DkimResult::Neutral => "neutral",
            DkimResult::Policy => "policy",
            DkimResult::TempError => "temperror",
            DkimResult::PermError => "permerror",
        }
    }
}

impl fmt::Display for DkimResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a signature did not pass. [`Problem::result`] is the one place that maps a problem
/// to a [`DkimResult`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The tag-list of the signature is malformed (§3.2).
    SignatureSyntax(String),
    /// A tag that §3.5 requires is missing.
    MissingTag(&'static str),
    /// `v=` is not `1`.
    UnsupportedVersion(String),
    /// `a=` names an algorithm this verifier does not know.
    UnknownAlgorithm(String),
    /// `c=` names an unknown canonicalisation.
    UnknownCanonicalization(String),
    /// `q=` does not offer `dns/txt`.
    UnsupportedQueryMethod(String),
    /// A tag value is malformed: the tag and what is wrong.
    BadTagValue(&'static str, String),
    /// `d=` is not a valid domain name.
    InvalidDomain(String),
    /// `s=` is not a valid selector.
    InvalidSelector(String),
    /// The domain of `i=` is neither `d=` nor a subdomain of it (§3.5, §6.1.1).
    IdentityMismatch,
    /// `h=` does not include From (§6.1.1).
    FromNotSigned,
    /// `x=` is earlier than `t=` (§3.5).
    ExpiresBeforeSigned,
    /// `x=` is in the past (§3.5, §6.1.1).
    Expired,
    /// `rsa-sha1` is refused (RFC 8301 §3.1).
    Sha1NotAllowed,
    /// More signatures than the configured limit; this one was not evaluated.
    TooManySignatures,
    /// No key record at the selector (NXDOMAIN or no TXT record).
    NoKey,
    /// The key lookup failed temporarily.
    KeyLookupFailed(String),
    /// The key record is malformed (§3.6.1).
    KeyRecordSyntax(String),
    /// The key has been revoked (`p=` empty, §3.6.1).
    KeyRevoked,
    /// The key type (`k=`) does not match the signature's algorithm.
    KeyTypeMismatch {
        /// The key record's type.
        key: KeyType,
        /// The algorithm of the signature.
        algorithm: Algorithm,
    },
    /// The key record's `h=` does not allow the signature's hash.
    HashNotAllowedByKey(HashAlgorithm),
    /// The key record's `s=` does not include `email` or `*`.
    KeyNotForEmail,
    /// The key has `t=s`, and the `i=` domain is not exactly `d=` (§3.6.1).
    StrictIdentityMismatch,
    /// The public key could not be parsed.
    BadPublicKey(String),
    /// The RSA key is smaller than allowed (RFC 8301 §3.2).
    KeyTooSmall {
        /// The size of the key.
        bits: usize,
        /// The configured minimum.
        minimum: usize,
    },
    /// `l=` is larger than the canonical body.
    BodyLengthExceeded {
        /// The `l=` value.
        signed: u64,
        /// The canonical body length.
        actual: u64,
    },
    /// The body hash does not match `bh=` (the body was changed).
    BodyHashMismatch,
    /// The signature does not verify over the signed header fields.
    SignatureMismatch,
}

impl Problem {
    /// The RFC 8601 result this problem gives.
    pub fn result(&self) -> DkimResult {
        use Problem::*;
        match self {
            BodyHashMismatch | SignatureMismatch | BodyLengthExceeded { .. } => DkimResult::Fail,
            KeyLookupFailed(_) => DkimResult::TempError,
            Sha1NotAllowed | KeyTooSmall { .. } => DkimResult::Policy,
            Expired | TooManySignatures => DkimResult::Neutral,
            SignatureSyntax(_)
            | MissingTag(_)
            | UnsupportedVersion(_)
            | UnknownAlgorithm(_)
            | UnknownCanonicalization(_)
            | UnsupportedQueryMethod(_)
            | BadTagValue(..)
            | InvalidDomain(_)
            | InvalidSelector(_)
            | IdentityMismatch
            | FromNotSigned
            | ExpiresBeforeSigned
            | NoKey
            | KeyRecordSyntax(_)
            | KeyRevoked
            | KeyTypeMismatch { .. }
            | HashNotAllowedByKey(_)
            | KeyNotForEmail
            | StrictIdentityMismatch
            | BadPublicKey(_) => DkimResult::PermError,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Problem::*;
        match self {
            SignatureSyntax(why) => write!(f, "malformed signature: {why}"),
            MissingTag(t) => write!(f, "required tag missing: {t}="),
            UnsupportedVersion(v) => write!(f, "unsupported signature version v={v}"),
            UnknownAlgorithm(a) => write!(f, "unknown signing algorithm a={a}"),
            UnknownCanonicalization(c) => write!(f, "unknown canonicalization c={c}"),
            UnsupportedQueryMethod(q) => write!(f, "unsupported query method q={q}"),
            BadTagValue(t, why) => write!(f, "bad {t}= value: {why}"),
            InvalidDomain(d) => write!(f, "invalid signing domain d={d}"),
            InvalidSelector(s) => write!(f, "invalid selector s={s}"),
            IdentityMismatch => f.write_str("i= is not in the signing domain d="),
            FromNotSigned => f.write_str("From is not among the signed header fields"),
            ExpiresBeforeSigned => f.write_str("x= is earlier than t="),
            Expired => f.write_str("signature expired"),
            Sha1NotAllowed => f.write_str("rsa-sha1 is not accepted (RFC 8301)"),
            TooManySignatures => f.write_str("too many signatures; not evaluated"),
            NoKey => f.write_str("no key for signature"),
            KeyLookupFailed(why) => write!(f, "key lookup failed: {why}"),
            KeyRecordSyntax(why) => write!(f, "malformed key record: {why}"),
            KeyRevoked => f.write_str("key revoked"),
            KeyTypeMismatch { key, algorithm } => write!(
                f,
                "key type {} does not match algorithm {}",
                key.as_str(),
                algorithm
            ),
            HashNotAllowedByKey(h) => write!(f, "key record does not allow hash {}", h.as_str()),
            KeyNotForEmail => f.write_str("key is not for email (s= service type)"),
            StrictIdentityMismatch => {
                f.write_str("key requires i= domain to equal d= (t=s), and it does not")
            }
            BadPublicKey(why) => write!(f, "unusable public key: {why}"),
            KeyTooSmall { bits, minimum } => {
                write!(f, "key too small ({bits} bits, minimum {minimum})")
            }
            BodyLengthExceeded { signed, actual } => write!(
                f,
                "l={signed} is longer than the body ({actual} canonical bytes)"
            ),
            BodyHashMismatch => f.write_str("body hash mismatch"),
            SignatureMismatch => f.write_str("signature mismatch"),
        }
    }
}

impl std::error::Error for Problem {}

/// The verdict on one `DKIM-Signature` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureResult {
    /// The RFC 8601 result.
    pub result: DkimResult,
    /// What went wrong, when the result is not `pass`.
    pub problem: Option<Problem>,
    /// What could be read from the signature (even a broken one): `d=`, `s=`, `a=`, ...
    pub info: SignatureInfo,
    /// The position of the field in the header block (0 = top).
    pub field_index: usize,
    /// Set when `l=` made the signature cover only part of the body: `(signed, total)`
    /// canonical body octets.
    pub partial_body: Option<(u64, u64)>,
    /// The key record is in testing mode (`t=y`): verifiers must not treat the message
    /// differently from an unsigned one (§3.6.1).
    pub testing: bool,
}

impl From<DkimResult> for crate::dmarc::AuthResult {
    /// A signature's result as a DMARC input (RFC 9989 §4.4.1).
    fn from(r: DkimResult) -> Self {
        use crate::dmarc::AuthResult;
        match r {
            DkimResult::Pass => AuthResult::Pass,
            DkimResult::Fail => AuthResult::Fail,
            DkimResult::Neutral => AuthResult::Neutral,
            DkimResult::Policy => AuthResult::Policy,
            DkimResult::TempError => AuthResult::TempError,
            DkimResult::PermError => AuthResult::PermError,
        }
    }
}

impl SignatureResult {
    /// The DKIM-authenticated identifier DMARC looks at: `d=` (with `s=`) and the result;
    /// `None` for a signature without a readable `d=`.
    pub fn dmarc_identity(&self) -> Option<crate::dmarc::DkimIdentity> {
        let d = self.info.domain.as_deref().filter(|d| !d.is_empty())?;
        let id = crate::dmarc::DkimIdentity::new(d, self.result.into());
        Some(match &self.info.selector {
            Some(sel) => id.with_selector(sel.clone()),
            None => id,
        })
    }

    /// A person-readable reason: the problem, or notes on a pass (`l=`, `t=y`).
    pub fn reason(&self) -> Option<String> {
        if let Some(p) = &self.problem {
            return Some(p.to_string());
        }
        let mut notes = Vec::new();
        if let Some((signed, total)) = self.partial_body {
            notes.push(format!(
                "signature covers only {signed} of {total} body octets (l=)"
            ));
        }
        if self.testing {
            notes.push("key is in testing mode (t=y)".to_string());
        }
        (!notes.is_empty()).then(|| notes.join("; "))
    }

    /// The `dkim` method result for an Authentication-Results field (RFC 8601 §2.7.1):
    /// the result, `reason=` when there is one, and `header.d`, `header.i`, `header.s`,
    /// `header.a` and `header.b` (the first 8 characters of `b=`, RFC 6008).
    pub fn method_result(&self) -> MethodResult<'_> {
        MethodResult::collect(|m| self.write_method_result(m))
    }

    /// Writes the `dkim` result (as [`method_result`](Self::method_result) describes it)
    /// into `sink`.
    pub fn write_method_result<'a>(&'a self, sink: &mut impl ResultSink<'a>) {
        sink.result("dkim", self.result.as_str());
        if let Some(r) = self.reason() {
            sink.reason(r.into());
        }
        let props: [(&'static str, &Option<String>); 5] = [
            ("d", &self.info.domain),
            ("i", &self.info.identity),
            ("s", &self.info.selector),
            ("a", &self.info.algorithm),
            ("b", &self.info.b_prefix),
        ];
        for (name, value) in props {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                sink.property("header", name, v.into());
            }
        }
    }
}

/// Verifier settings. Every field states its default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyConfig {
    /// Accept `rsa-sha1` signatures. Default `false` (RFC 8301 §3.1).
    pub allow_rsa_sha1: bool,
    /// The smallest RSA key accepted, in bits. Default 1024 (RFC 8301 §3.2).
    pub min_rsa_bits: usize,
    /// The most signatures evaluated per message; later ones get
    /// [`Problem::TooManySignatures`]. Default 16.
    pub max_signatures: usize,
    /// Check `x=` against the clock. Default `true`.
    pub check_expiration: bool,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        VerifyConfig {
            allow_rsa_sha1: false,
            min_rsa_bits: 1024,
            max_signatures: 16,
            check_expiration: true,
        }
    }
}
