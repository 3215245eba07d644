//! The receiver's single call: SPF, DKIM and DMARC for one message, with the
//! Authentication-Results field (RFC 8601) and the action to take.
//!
//! [`verify_message`] takes what the SMTP session knows ([`SmtpFacts`]: client IP, HELO,
//! MAIL FROM) and the message, and returns every verdict in [`Verdicts`]. Independent DNS
//! work runs concurrently, so a message costs the longest chain of dependent lookups, not
//! their sum:
//!
//! * SPF for the MAIL FROM identity and for the HELO identity start at once;
//! * the DMARC record of the Author Domain is asked for as soon as the From field is
//!   read (before SPF and DKIM have finished), through a per-message memo so the
//!   evaluation reuses the answer (a tree walk's further steps, when the record is not at
//!   the Author Domain, follow in the evaluation);
//! * every DKIM key is asked for as soon as the signatures are parsed, while the body is
//!   hashed.
//!
//! The DMARC evaluation then runs on the results (RFC 9989 §5.3), with the SPF identity
//! being the MAIL FROM domain, or the HELO name for a null reverse-path (RFC 9989 §4.4.2,
//! RFC 7208 §2.4). Nothing here spawns or blocks: the futures are joined with
//! `futures_util::future::join5`, and any executor can drive them.
//!
//! ```
//! use dmarc_proto::receiver::{verify_message, FixedDraw, ReceiverConfig, SmtpFacts};
//! use dmarc_proto::{FixedClock, dns::{DnsError, DnsResult, Lookup, MxRecord}};
//! use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
//!
//! struct NoDns;
//! impl Lookup for NoDns {
//!     async fn txt(&self, _: &str) -> DnsResult<Vec<u8>> { Err(DnsError::NxDomain) }
//!     async fn a(&self, _: &str) -> DnsResult<Ipv4Addr> { Err(DnsError::NxDomain) }
//!     async fn aaaa(&self, _: &str) -> DnsResult<Ipv6Addr> { Err(DnsError::NxDomain) }
//!     async fn mx(&self, _: &str) -> DnsResult<MxRecord> { Err(DnsError::NxDomain) }
//!     async fn ptr(&self, _: IpAddr) -> DnsResult<String> { Err(DnsError::NxDomain) }
//! }
//!
//! let config = ReceiverConfig::new("mx.receiver.example");
//! let facts = SmtpFacts::new("192.0.2.1".parse().unwrap(), "mail.example.org")
//!     .with_mail_from("alice@example.org");
//! let message = b"From: alice@example.org\r\nSubject: hi\r\n\r\nHello\r\n";
//! let clock = FixedClock::from_unix_seconds(1_700_000_000);
//! let v = futures_executor::block_on(verify_message(
//!     &NoDns, &clock, &FixedDraw(0), &config, &facts, message,
//! ));
//! assert_eq!(v.dmarc.result.as_str(), "none");
//! assert!(v.authentication_results().to_string().starts_with("mx.receiver.example; spf=none"));
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use smallvec::SmallVec;

use crate::auth_results::{
    self, AuthenticationResults, HeaderWriter, ParseError, ParsedAuthenticationResults, ResultSink,
};
use crate::clock::Clock;
use crate::dkim::{DkimResult, KeyCache, SignatureResult, Verifier, VerifyConfig, fetch_keys};
use crate::dmarc::{
    AlignmentMode, AuthResult, AuthorDomains, DkimIdentity, DmarcOptions, DmarcOutput,
    DmarcRecordCache, DmarcResult, DnsFailureMode, Policy, Spec, SpfIdentity, evaluate_authors,
    read_authors,
};
use crate::dns::{DnsResult, Lookup, MxRecord};
use crate::message::Message;
use crate::spf::{self, SpfOptions, SpfOutput, SpfRecordCache, SpfRequest, SpfResult};

/// A source of uniformly distributed random numbers, injected so that every verdict can be
/// reproduced. Used for the RFC 7489 `pct` draw (§6.6.4 of RFC 7489).
pub trait Randomness: Send + Sync {
    /// A uniformly random number from 0 to 99 inclusive.
    fn percent(&self) -> u8;
}

/// A "random" source that always draws the same number (tests, reproducing a verdict).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedDraw(pub u8);

impl Randomness for FixedDraw {
    fn percent(&self) -> u8 {
        self.0.min(99)
    }
}

impl<R: Randomness + ?Sized> Randomness for &R {
    fn percent(&self) -> u8 {
        (**self).percent()
    }
}

impl<R: Randomness + ?Sized> Randomness for Arc<R> {
    fn percent(&self) -> u8 {
        (**self).percent()
    }
}

/// What the SMTP session knows about the message's arrival.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpFacts {
    /// The SMTP client's IP address.
    pub ip: IpAddr,
    /// The HELO/EHLO name the client gave.
    pub helo: String,
    /// The MAIL FROM reverse-path without angle brackets; `None` or `""` is the null
    /// reverse-path (bounces), for which SPF checks `postmaster@<helo>` (RFC 7208 §2.4).
    pub mail_from: Option<String>,
}

impl SmtpFacts {
    /// Facts with a null reverse-path.
    pub fn new(ip: IpAddr, helo: impl Into<String>) -> Self {
        SmtpFacts {
            ip,
            helo: helo.into(),
            mail_from: None,
        }
    }

    /// Sets the MAIL FROM address (builder style); `""` or `<>` is the null reverse-path.
    pub fn with_mail_from(mut self, mail_from: impl Into<String>) -> Self {
        let m: String = mail_from.into();
        let m = m.trim();
        let m = m
            .strip_prefix('<')
            .and_then(|s| s.strip_suffix('>'))
            .unwrap_or(m);
        self.mail_from = (!m.is_empty()).then(|| m.to_owned());
        self
    }

    /// True for the null reverse-path.
    pub fn is_null_reverse_path(&self) -> bool {
        self.mail_from.as_deref().is_none_or(str::is_empty)
    }
}

/// Settings of the receiver. Every field states its default.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    /// The authserv-id written in Authentication-Results (RFC 8601 §2.5): normally this
    /// host's or this administrative domain's name. No default: [`ReceiverConfig::new`]
    /// takes it.
    pub authserv_id: Arc<str>,
    /// Authserv-ids of upstream verifiers inside our trust boundary whose
    /// Authentication-Results fields are read and reported in [`Verdicts::upstream`] (for
    /// ARC or a later hop). Compared without regard to case. Default: none.
    pub trusted_authserv_ids: Vec<String>,
    /// SPF settings. Default [`SpfOptions::default`] with `receiver` set to the
    /// authserv-id, a shared cache of 1024 parsed records ([`SpfRecordCache`]) and no
    /// step-by-step trace (`trace: false`: [`Verdicts::spf`]`.trace` is empty; result,
    /// reason, deciding term and counters are kept; set it to `true` for every record,
    /// query and term evaluated).
    pub spf: SpfOptions,
    /// Also check the HELO identity (RFC 7208 §2.3) when the reverse-path is not null; for
    /// a null reverse-path the MAIL FROM check already is the HELO check. Default `true`.
    pub check_helo: bool,
    /// DKIM verifier settings. Default [`VerifyConfig::default`].
    pub dkim: VerifyConfig,
    /// A cache of parsed DKIM keys shared between messages. Default: a cache of 1024 keys.
    pub key_cache: Option<Arc<KeyCache>>,
    /// DMARC settings: the specification (RFC 9989 by default, or RFC 7489), what a DNS
    /// failure does (temperror by default, or fail open) and how the Author Domain is taken
    /// from the From field. Default [`DmarcOptions::default`] with a shared cache of 1024
    /// parsed `_dmarc` answers ([`DmarcRecordCache`]).
    pub dmarc: DmarcOptions,
}

impl ReceiverConfig {
    /// The defaults, with `authserv_id`.
    pub fn new(authserv_id: impl Into<String>) -> Self {
        let authserv_id: Arc<str> = authserv_id.into().into();
        ReceiverConfig {
            spf: SpfOptions {
                receiver: authserv_id.to_string(),
                record_cache: Some(Arc::new(SpfRecordCache::new(1024))),
                trace: false,
                ..SpfOptions::default()
            },
            authserv_id,
            trusted_authserv_ids: Vec::new(),
            check_helo: true,
            dkim: VerifyConfig::default(),
            key_cache: Some(Arc::new(KeyCache::new(1024))),
            dmarc: DmarcOptions {
                record_cache: Some(Arc::new(DmarcRecordCache::new(1024))),
                ..DmarcOptions::default()
            },
        }
    }

    /// Follows RFC 7489 instead of RFC 9989 (builder style).
    pub fn rfc7489(mut self) -> Self {
        self.dmarc.spec = Spec::Rfc7489;
        self
    }

    /// Sets what a temporary DNS failure during the DMARC evaluation does (builder style).
    pub fn with_dns_failure(mut self, mode: DnsFailureMode) -> Self {
        self.dmarc.dns_failure = mode;
        self
    }

    /// Trusts the Authentication-Results of these upstream authserv-ids (builder style).
    pub fn trusting(mut self, ids: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.trusted_authserv_ids = ids.into_iter().map(Into::into).collect();
        self
    }
}

/// What a receiver does with the message, from the DMARC verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Deliver normally: DMARC passed, does not apply, or the policy is `none`.
    Accept,
    /// Deliver to spam / quarantine (`p=quarantine`).
    Quarantine,
    /// Refuse the message (`p=reject`, SMTP 550).
    Reject,
    /// Ask the sender to retry later (SMTP 451): the DMARC verdict is `temperror`.
    TempFail,
}

impl Action {
    /// `accept`, `quarantine`, `reject` or `tempfail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Accept => "accept",
            Action::Quarantine => "quarantine",
            Action::Reject => "reject",
            Action::TempFail => "tempfail",
        }
    }

    /// The action for a DMARC verdict: the applied policy when DMARC fails, `tempfail` for
    /// `temperror`, otherwise `accept`.
    pub fn for_dmarc(dmarc: &DmarcOutput) -> Action {
        match dmarc.result {
            DmarcResult::TempError => Action::TempFail,
            _ => match dmarc.disposition() {
                Some(Policy::Reject) => Action::Reject,
                Some(Policy::Quarantine) => Action::Quarantine,
                _ => Action::Accept,
            },
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An Authentication-Results field of the incoming message from a trusted upstream
/// authserv-id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamResults {
    /// The position of the field in the header block (0 = top).
    pub field_index: usize,
    /// The parsed field, or why it could not be parsed.
    pub parsed: Result<ParsedAuthenticationResults, ParseError>,
}

/// Every verdict on one message.
#[derive(Debug, Clone)]
pub struct Verdicts {
    /// SPF for the MAIL FROM identity (`postmaster@<helo>` for a null reverse-path).
    pub spf: SpfOutput,
    /// SPF for the HELO identity, when checked separately (see
    /// [`ReceiverConfig::check_helo`]).
    pub helo_spf: Option<SpfOutput>,
    /// DKIM: one result per `DKIM-Signature`, in header order; empty when unsigned.
    pub dkim: Vec<SignatureResult>,
    /// DMARC.
    pub dmarc: DmarcOutput,
    /// What to do with the message.
    pub action: Action,
    /// Our authserv-id, as configured ([`ReceiverConfig::authserv_id`]): the one
    /// [`Verdicts::authentication_results`] names (shared with the configuration, not
    /// copied).
    pub authserv_id: Arc<str>,
    /// Authentication-Results fields from trusted upstream authserv-ids, top first.
    pub upstream: Vec<UpstreamResults>,
    /// Header indexes (0 = top, as [`crate::message::HeaderField::index`]) of
    /// Authentication-Results fields that claim our own authserv-id: forgeries (or stale
    /// copies) to delete before adding ours (RFC 8601 §5).
    pub forged_fields: Vec<usize>,
}

impl Verdicts {
    /// The Authentication-Results field to add, built from these verdicts (it borrows
    /// them; render it with [`AuthenticationResults::to_header`]): `spf` (MAIL FROM, then
    /// HELO when checked), one `dkim` per signature (`dkim=none` when unsigned), then
    /// `dmarc`.
    pub fn authentication_results(&self) -> AuthenticationResults<'_> {
        build_authentication_results(
            &self.authserv_id,
            &self.spf,
            self.helo_spf.as_ref(),
            &self.dkim,
            &self.dmarc,
        )
    }

    /// The Authentication-Results header field to add, rendered straight from the verdicts:
    /// the same text as `authentication_results().to_header()` (`Authentication-Results: `,
    /// one result per folded line, final CRLF) without building the values first. This is
    /// what a milter adds to every message.
    pub fn authentication_results_header(&self) -> String {
        let mut w = HeaderWriter::header(&self.authserv_id, 96 * (3 + self.dkim.len()));
        write_authentication_results(
            &mut w,
            &self.spf,
            self.helo_spf.as_ref(),
            &self.dkim,
            &self.dmarc,
        );
        w.finish()
    }

    /// The verdict in words, for a person: what SPF and DKIM authenticated, whether that
    /// is aligned with the Author Domain, and the DMARC result.
    ///
    /// "SPF passed for bounces.esp.example, but that is not aligned with brand.example
    /// (relaxed: brand.example is its own Organizational Domain, and this domain is not
    /// under it); DKIM passed for brand.example and is aligned: DMARC pass."
    pub fn explain(&self) -> String {
        let author = self.dmarc.author_domain.as_deref().unwrap_or("(unknown)");
        let mut parts = Vec::new();
        // SPF.
        let spf_dom = if self.spf.domain.is_empty() {
            "(no domain)"
        } else {
            self.spf.domain.as_str()
        };
        let spf_row = self.dmarc.spf.first();
        parts.push(describe(
            "SPF",
            spf_past(self.spf.result),
            spf_dom,
            self.spf.result == SpfResult::Pass,
            spf_row
                .map(|r| (r.aligned, r.reason.to_string()))
                .as_ref()
                .map(|(a, why)| (*a, why.as_str())),
            author,
            self.dmarc.spf_mode,
        ));
        // DKIM.
        if self.dkim.is_empty() {
            parts.push("the message has no DKIM signature".to_owned());
        }
        for sig in &self.dkim {
            let d = sig.info.domain.as_deref().unwrap_or("(no d=)");
            let row = self.dmarc.dkim.iter().find(|r| {
                r.domain.eq_ignore_ascii_case(d)
                    && r.selector.as_deref() == sig.info.selector.as_deref()
            });
            let mut s = describe(
                "DKIM",
                dkim_past(sig.result),
                d,
                sig.result == DkimResult::Pass,
                row.map(|r| (r.aligned, r.reason.to_string()))
                    .as_ref()
                    .map(|(a, why)| (*a, why.as_str())),
                author,
                self.dmarc.dkim_mode,
            );
            if let Some(why) = sig.reason().filter(|_| sig.result != DkimResult::Pass) {
                s.push_str(&format!(" ({why})"));
            }
            parts.push(s);
        }
        let mut out = parts.join("; ");
        out.push_str(&format!(": DMARC {}", self.dmarc.result));
        if !matches!(self.dmarc.result, DmarcResult::Pass | DmarcResult::Fail) {
            out.push_str(&format!(" ({})", self.dmarc.reason));
        }
        out.push('.');
        out
    }
}

fn describe(
    mech: &str,
    verb: &str,
    domain: &str,
    passed: bool,
    row: Option<(bool, &str)>,
    author: &str,
    mode: AlignmentMode,
) -> String {
    match (passed, row) {
        (true, Some((true, _))) => format!("{mech} {verb} for {domain} and is aligned"),
        (true, Some((false, why))) => format!(
            "{mech} {verb} for {domain}, but that is not aligned with {author} ({}: {})",
            mode.as_str(),
            why.strip_prefix("not aligned: ").unwrap_or(why)
        ),
        _ => format!("{mech} {verb} for {domain}"),
    }
}

fn spf_past(r: SpfResult) -> &'static str {
    match r {
        SpfResult::Pass => "passed",
        SpfResult::Fail => "failed",
        SpfResult::SoftFail => "soft-failed",
        SpfResult::Neutral => "was neutral",
        SpfResult::None => "found no policy",
        SpfResult::TempError => "had a temporary error",
        SpfResult::PermError => "had a permanent error",
    }
}

fn dkim_past(r: DkimResult) -> &'static str {
    match r {
        DkimResult::Pass => "passed",
        DkimResult::Fail => "failed",
        DkimResult::Neutral => "was neutral",
        DkimResult::Policy => "was refused by policy",
        DkimResult::TempError => "had a temporary error",
        DkimResult::PermError => "had a permanent error",
    }
}

/// SPF's result as a DMARC input (RFC 9989 §4.4.2: only `pass` can align).
pub fn spf_auth_result(r: SpfResult) -> AuthResult {
    match r {
        SpfResult::Pass => AuthResult::Pass,
        SpfResult::Fail => AuthResult::Fail,
        SpfResult::SoftFail => AuthResult::SoftFail,
        SpfResult::Neutral => AuthResult::Neutral,
        SpfResult::None => AuthResult::None,
        SpfResult::TempError => AuthResult::TempError,
        SpfResult::PermError => AuthResult::PermError,
    }
}

/// A DKIM signature's result as a DMARC input (RFC 9989 §4.4.1).
pub fn dkim_auth_result(r: DkimResult) -> AuthResult {
    match r {
        DkimResult::Pass => AuthResult::Pass,
        DkimResult::Fail => AuthResult::Fail,
        DkimResult::Neutral => AuthResult::Neutral,
        DkimResult::Policy => AuthResult::Policy,
        DkimResult::TempError => AuthResult::TempError,
        DkimResult::PermError => AuthResult::PermError,
    }
}

/// Verifies one message: SPF (MAIL FROM and HELO), every DKIM signature and DMARC, and
/// builds the Authentication-Results field. Never fails: every problem is a verdict with
/// a reason.
///
/// `rng` is asked for the RFC 7489 `pct` draw (only in RFC 7489 mode).
pub async fn verify_message<L, C, R>(
    lookup: &L,
    clock: &C,
    rng: &R,
    config: &ReceiverConfig,
    facts: &SmtpFacts,
    message: &[u8],
) -> Verdicts
where
    L: Lookup,
    C: Clock,
    R: Randomness + ?Sized,
{
    let msg = Message::parse(message);
    let dyn_clock: &dyn Clock = clock;

    // SPF: both identities at once.
    let request = SpfRequest::with_identities(
        facts.ip,
        &facts.helo,
        facts.mail_from.as_deref().filter(|m| !m.is_empty()),
    );
    let null_path = facts.is_null_reverse_path();
    let spf_mail_from = spf::verify_mail_from(lookup, dyn_clock, &config.spf, &request);
    let spf_helo = async {
        if config.check_helo && !null_path {
            Some(spf::verify_helo(lookup, dyn_clock, &config.spf, &request).await)
        } else {
            None
        }
    };

    // DMARC: the From field is known now; look for the policy while SPF and DKIM run.
    let from_fields: SmallVec<[&[u8]; 2]> = msg.fields("From").map(|f| f.value()).collect();
    let authors = read_authors(&from_fields, &config.dmarc.author);
    let memo = Memo::new(lookup, authors.as_ref().is_ok_and(|a| a.domains.len() <= 1));
    let dmarc_prefetch = prefetch_policy(&memo, authors.as_ref().ok());

    // DKIM: parse the signatures, ask for every key, hash the body meanwhile.
    let mut verifier = Verifier::new(config.dkim.clone());
    if let Some(cache) = &config.key_cache {
        verifier = verifier.with_key_cache(cache.clone());
    }
    let mut streaming = verifier.start_message(&msg);
    let key_names = streaming.key_names();
    let keys = fetch_keys(lookup, &key_names);
    let body = msg.body();
    let hash_body = async {
        streaming.whole_body(body);
    };

    let (spf_out, helo_out, _, keys, ()) =
        futures_util::future::join5(spf_mail_from, spf_helo, dmarc_prefetch, keys, hash_body).await;
    let dkim = streaming.finish_with_keys(&keys, clock);

    // DMARC on the results.
    let spf_ids = [SpfIdentity::new(
        spf_out.domain.clone(),
        spf_auth_result(spf_out.result),
    )];
    let dkim_ids: Vec<DkimIdentity> = dkim
        .iter()
        .filter_map(|s| {
            let d = s.info.domain.as_deref().filter(|d| !d.is_empty())?;
            let mut id = DkimIdentity::new(d, dkim_auth_result(s.result));
            if let Some(sel) = &s.info.selector {
                id = id.with_selector(sel.clone());
            }
            Some(id)
        })
        .collect();
    let pct_draw = (config.dmarc.spec == Spec::Rfc7489).then(|| rng.percent());
    let dmarc =
        evaluate_authors(&memo, authors, &spf_ids, &dkim_ids, pct_draw, &config.dmarc).await;

    // Incoming Authentication-Results: ours are forged, trusted ones are reported.
    let mut upstream = Vec::new();
    let mut forged_fields = Vec::new();
    for field in msg.fields("Authentication-Results") {
        let value = String::from_utf8_lossy(field.value());
        let Some(id) = auth_results::authserv_id(&value) else {
            continue;
        };
        if id.eq_ignore_ascii_case(&config.authserv_id) {
            forged_fields.push(field.index());
        } else if config
            .trusted_authserv_ids
            .iter()
            .any(|t| t.eq_ignore_ascii_case(&id))
        {
            upstream.push(UpstreamResults {
                field_index: field.index(),
                parsed: auth_results::parse(&value),
            });
        }
    }

    Verdicts {
        action: Action::for_dmarc(&dmarc),
        spf: spf_out,
        helo_spf: helo_out,
        dkim,
        dmarc,
        authserv_id: config.authserv_id.clone(),
        upstream,
        forged_fields,
    }
}

/// Asks for the DMARC record of every Author Domain (the first question of policy
/// discovery, RFC 9989 §4.10) through the per-message memo, so that the answer is there
/// when the evaluation runs after SPF and DKIM. Later steps of a tree walk, when the
/// record is not at the Author Domain, are asked by the evaluation itself.
async fn prefetch_policy<L: Lookup>(memo: &Memo<'_, L>, authors: Option<&AuthorDomains>) {
    let Some(authors) = authors else {
        return;
    };
    let name = |d: &crate::dmarc::DomainName| {
        let mut n = NameBuf::new();
        n.extend_from_slice(b"_dmarc.");
        n.extend_from_slice(d.as_str().as_bytes());
        n
    };
    match authors.domains.as_slice() {
        [] => {}
        [one] => memo.preload_txt(name(one)).await,
        many => {
            futures_util::future::join_all(many.iter().take(8).map(|d| memo.preload_txt(name(d))))
                .await;
        }
    }
}

/// The Authentication-Results field for these verdicts: `spf` (MAIL FROM, then HELO when
/// checked), one `dkim` per signature (`dkim=none` when unsigned), then `dmarc` with
/// `header.from` and `policy.dmarc`.
pub fn build_authentication_results<'a>(
    authserv_id: &'a str,
    spf: &'a SpfOutput,
    helo_spf: Option<&'a SpfOutput>,
    dkim: &'a [SignatureResult],
    dmarc: &'a DmarcOutput,
) -> AuthenticationResults<'a> {
    let mut ar = AuthenticationResults {
        authserv_id: authserv_id.into(),
        results: Vec::with_capacity(3 + dkim.len().max(1)),
    };
    write_authentication_results(&mut ar, spf, helo_spf, dkim, dmarc);
    ar
}

/// Writes the results of [`build_authentication_results`], in its order, into `sink`.
pub fn write_authentication_results<'a>(
    sink: &mut impl ResultSink<'a>,
    spf: &'a SpfOutput,
    helo_spf: Option<&'a SpfOutput>,
    dkim: &'a [SignatureResult],
    dmarc: &'a DmarcOutput,
) {
    spf.write_auth_result(sink);
    if let Some(h) = helo_spf {
        h.write_auth_result(sink);
    }
    if dkim.is_empty() {
        sink.result("dkim", "none");
        sink.comment("message not signed".into());
    }
    for sig in dkim {
        sig.write_method_result(sink);
    }
    dmarc.write_method_result(sink);
}

/// The name of a TXT question, kept inline: `_dmarc.<domain>` fits for nearly every domain.
type NameBuf = SmallVec<[u8; 64]>;

/// The memo's TXT answers: one inline (the Author Domain's), more on the heap.
type TxtAnswers = SmallVec<[(NameBuf, DnsResult<Vec<u8>>); 1]>;

/// A per-message memo in front of the lookup for the DMARC evaluation: the prefetch and the
/// evaluation ask the same questions, and the second time they are answered from here. A
/// message asks a handful of questions, so each kind is a short list searched in order
/// (names compared without case or a trailing dot), not a hash map.
///
/// With one Author Domain (`hand_over`), the one evaluation asks each name at most once
/// (its resolver keeps its own answers), so a prefetched answer is handed over, moved
/// rather than copied, and the evaluation's further questions are not kept. With several
/// Author Domains the evaluations can ask the same names (a shared parent's record), so
/// every answer is kept and copied out.
struct Memo<'a, L> {
    inner: &'a L,
    hand_over: bool,
    txt: Mutex<TxtAnswers>,
    a: Mutex<Vec<(String, DnsResult<Ipv4Addr>)>>,
    aaaa: Mutex<Vec<(String, DnsResult<Ipv6Addr>)>>,
    mx: Mutex<Vec<(String, DnsResult<MxRecord>)>>,
    ptr: Mutex<Vec<(IpAddr, DnsResult<String>)>>,
}

impl<'a, L: Lookup> Memo<'a, L> {
    fn new(inner: &'a L, hand_over: bool) -> Self {
        Memo {
            inner,
            hand_over,
            txt: Mutex::default(),
            a: Mutex::default(),
            aaaa: Mutex::default(),
            mx: Mutex::default(),
            ptr: Mutex::default(),
        }
    }

    /// Asks for `name`'s TXT records and keeps the answer for the evaluation, without
    /// handing a copy back.
    async fn preload_txt(&self, name: NameBuf) {
        let Ok(text) = std::str::from_utf8(&name) else {
            return;
        };
        if self
            .txt
            .lock()
            .is_ok_and(|l| l.iter().any(|(k, _)| same_name_bytes(k, text)))
        {
            return;
        }
        let v = self.inner.txt(text).await;
        if let Ok(mut l) = self.txt.lock() {
            l.push((name, v));
        }
    }
}

fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

fn same_name_bytes(a: &[u8], b: &str) -> bool {
    a.strip_suffix(b".")
        .unwrap_or(a)
        .eq_ignore_ascii_case(b.strip_suffix('.').unwrap_or(b).as_bytes())
}

fn recall<K, V: Clone>(list: &Mutex<Vec<(K, V)>>, hit: impl Fn(&K) -> bool) -> Option<V> {
    list.lock()
        .ok()
        .and_then(|l| l.iter().find(|(k, _)| hit(k)).map(|(_, v)| v.clone()))
}

fn remember<K, V>(list: &Mutex<Vec<(K, V)>>, key: K, value: V) {
    if let Ok(mut l) = list.lock() {
        l.push((key, value));
    }
}

impl<L: Lookup> Lookup for Memo<'_, L> {
    async fn txt(&self, name: &str) -> DnsResult<Vec<u8>> {
        if let Ok(mut l) = self.txt.lock()
            && let Some(at) = l.iter().position(|(k, _)| same_name_bytes(k, name))
        {
            if self.hand_over {
                return l.swap_remove(at).1;
            }
            if let Some((_, v)) = l.get(at) {
                return v.clone();
            }
        }
        let v = self.inner.txt(name).await;
        if !self.hand_over
            && let Ok(mut l) = self.txt.lock()
        {
            l.push((NameBuf::from_slice(name.as_bytes()), v.clone()));
        }
        v
    }
    async fn a(&self, name: &str) -> DnsResult<Ipv4Addr> {
        if let Some(v) = recall(&self.a, |k| same_name(k, name)) {
            return v;
        }
        let v = self.inner.a(name).await;
        remember(&self.a, name.to_owned(), v.clone());
        v
    }
    async fn aaaa(&self, name: &str) -> DnsResult<Ipv6Addr> {
        if let Some(v) = recall(&self.aaaa, |k| same_name(k, name)) {
            return v;
        }
        let v = self.inner.aaaa(name).await;
        remember(&self.aaaa, name.to_owned(), v.clone());
        v
    }
    async fn mx(&self, name: &str) -> DnsResult<MxRecord> {
        if let Some(v) = recall(&self.mx, |k| same_name(k, name)) {
            return v;
        }
        let v = self.inner.mx(name).await;
        remember(&self.mx, name.to_owned(), v.clone());
        v
    }
    async fn ptr(&self, ip: IpAddr) -> DnsResult<String> {
        if let Some(v) = recall(&self.ptr, |k| *k == ip) {
            return v;
        }
        let v = self.inner.ptr(ip).await;
        remember(&self.ptr, ip, v.clone());
        v
    }
}
