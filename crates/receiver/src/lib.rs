//! The receiver: SPF, DKIM and DMARC for a message as it arrives, with the
//! Authentication-Results field (RFC 8601), the action to take and an [`Observation`]
//! (what an aggregate-report row and a failure report need).
//!
//! A message is verified through a staged session ([`session`]), one state per SMTP
//! stage, each consuming the one before and starting its DNS work as soon as its inputs
//! are known:
//!
//! * [`Receiver::connect`] (client IP, HELO) gives a [`Connection`];
//! * [`Connection::mail_from`] starts SPF for the MAIL FROM identity and, unless the
//!   reverse-path is null, for the HELO identity; it gives a [`Transaction`], which takes
//!   the recipients and the header fields;
//! * [`Transaction::end_of_headers`] reads the From field, asks for the DMARC record of
//!   the Author Domain and for every DKIM key and every ARC key (seals and message
//!   signatures, RFC 8617) in one round; it gives a [`Body`], which hashes body chunks as
//!   they come;
//! * [`Body::finish`] waits for the DNS work, verifies the signatures and the ARC chain,
//!   evaluates DMARC (RFC 9989 §5.3, or RFC 7489), applies the local trusted-forwarder
//!   policy ([`ArcSettings::trusted_sealers`], off by default) and gives the [`Verdicts`].
//!
//! Between steps a driver (the milter, between frames) lets the DNS work progress with
//! `drive()` or `poll_work()`. Nothing here spawns, blocks or does I/O: DNS answers come
//! through [`dmarc_proto::Lookup`], time through [`dmarc_proto::Clock`], and any executor
//! can drive the futures.
//!
//! [`verify_message`] is the whole session for a message held in memory.
//!
//! ```
//! use dmarc_receiver::{verify_message, FixedDraw, ReceiverConfig, SmtpFacts};
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
#![warn(clippy::unwrap_used)]

pub mod failure;
mod json;
pub mod observation;
pub mod session;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use dmarc_proto::arc::forwarder::{ForwarderOverride, NoOverride, TrustedSealers};
use dmarc_proto::arc::{ArcConfig, ArcOutput, ChainStatus};
use dmarc_proto::auth_results::{
    AuthenticationResults, HeaderWriter, ParseError, ParsedAuthenticationResults, ResultSink,
};
use dmarc_proto::dkim::{DkimResult, KeyCache, SignatureResult, VerifyConfig};
use dmarc_proto::dmarc::{
    AlignmentMode, DmarcOptions, DmarcOutput, DmarcRecordCache, DmarcResult, DnsFailureMode,
    Policy, Spec,
};
use dmarc_proto::spf::{SpfOptions, SpfOutput, SpfRecordCache, SpfResult};

pub use observation::Observation;
pub use session::{Body, Connection, Env, Receiver, Transaction, verify_message};

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
    /// ARC (RFC 8617): whether chains are verified, the verifier's settings and the
    /// trusted sealers. Default [`ArcSettings::default`]: verified, no sealer trusted.
    pub arc: ArcSettings,
}

/// The receiver's ARC settings (RFC 8617). ARC is one module the receiver can turn off:
/// with `enabled: false` nothing of it runs (no ARC key is asked for, no `arc=` result,
/// no override).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArcSettings {
    /// Verify the ARC chain of each message, report it in [`Verdicts::arc`] and as `arc=`
    /// in Authentication-Results. Default `true`.
    pub enabled: bool,
    /// The chain verifier's settings. Default [`ArcConfig::default`] (RSA keys of 1024
    /// bits or more, `x=` checked, oldest-pass reported).
    pub verifier: ArcConfig,
    /// Local policy: the ARC sealers (the `d=` of the ARC-Seal) whose word is taken when
    /// DMARC fails (see [`Verdicts::trusted_forwarder`]). Default empty: no override.
    pub trusted_sealers: TrustedSealers,
}

impl Default for ArcSettings {
    fn default() -> Self {
        ArcSettings {
            enabled: true,
            verifier: ArcConfig::default(),
            trusted_sealers: TrustedSealers::default(),
        }
    }
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
            arc: ArcSettings::default(),
        }
    }

    /// Trusts these ARC sealers (builder style; see [`ArcSettings::trusted_sealers`]).
    pub fn with_trusted_sealers(
        mut self,
        sealers: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Self {
        self.arc.trusted_sealers = TrustedSealers::new(sealers);
        self
    }

    /// Turns ARC off (builder style; see [`ArcSettings::enabled`]).
    pub fn without_arc(mut self) -> Self {
        self.arc.enabled = false;
        self
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
    /// Deliver normally: DMARC passed, does not apply, the policy is `none`, or a trusted
    /// ARC sealer vouches for a failed message ([`Verdicts::trusted_forwarder`]).
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
    /// The ARC chain (RFC 8617 §5.2): status, instances, oldest-pass, why, and what each
    /// hop's seal and ARC-Authentication-Results say. `None` when ARC is turned off
    /// ([`ArcSettings::enabled`]).
    pub arc: Option<ArcOutput>,
    /// The trusted-forwarder decision, when it was made: DMARC failed with a policy to
    /// enforce and trusted sealers are configured. `Ok`: the message is accepted because a
    /// trusted sealer vouches for an aligned pass before it forwarded the message
    /// ([`Action::Accept`], and the [`Observation`] records the RFC 9990 override
    /// `trusted_forwarder`); `Err`: why not.
    pub trusted_forwarder: Option<Result<ForwarderOverride, NoOverride>>,
    /// What to do with the message.
    pub action: Action,
    /// Our authserv-id, as configured ([`ReceiverConfig::authserv_id`]): the one
    /// [`Verdicts::authentication_results`] names (shared with the configuration, not
    /// copied).
    pub authserv_id: Arc<str>,
    /// Authentication-Results fields from trusted upstream authserv-ids, top first.
    pub upstream: Vec<UpstreamResults>,
    /// Header indexes (0 = top, as [`dmarc_proto::message::HeaderField::index`]) of
    /// Authentication-Results fields that claim our own authserv-id: forgeries (or stale
    /// copies) to delete before adding ours (RFC 8601 §5).
    pub forged_fields: Vec<usize>,
    /// What the SMTP session said: client IP, HELO, MAIL FROM.
    pub facts: SmtpFacts,
    /// The RCPT TO addresses, in order (at most [`session::MAX_RECIPIENTS`]; more are
    /// counted in [`Verdicts::recipients_not_kept`]).
    pub recipients: Vec<String>,
    /// Recipients beyond [`session::MAX_RECIPIENTS`], counted, not kept.
    pub recipients_not_kept: usize,
}

impl Verdicts {
    /// What an aggregate-report row and a failure report need from this message (see
    /// [`Observation`]).
    pub fn observation(&self) -> Observation {
        Observation::of(self)
    }

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
            self.arc.as_ref().map(|a| (a, self.facts.ip)),
        )
    }

    /// The Authentication-Results header field to add, rendered straight from the verdicts:
    /// the same text as `authentication_results().to_header()` (`Authentication-Results: `,
    /// one result per folded line, final CRLF) without building the values first. This is
    /// what a milter adds to every message.
    pub fn authentication_results_header(&self) -> String {
        let mut w = HeaderWriter::header(&self.authserv_id, 96 * (4 + self.dkim.len()));
        write_authentication_results(
            &mut w,
            &self.spf,
            self.helo_spf.as_ref(),
            &self.dkim,
            &self.dmarc,
            self.arc.as_ref().map(|a| (a, self.facts.ip)),
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
        if let Some(arc) = self.arc.as_ref().filter(|a| a.status != ChainStatus::None) {
            out.push_str(" ARC: ");
            out.push_str(&arc.explain());
            out.push('.');
        }
        match &self.trusted_forwarder {
            Some(Ok(o)) => out.push_str(&format!(
                " Accepted although DMARC failed ({}): {}.",
                o.kind, o.comment
            )),
            Some(Err(why)) => {
                out.push_str(&format!(" Not accepted as forwarded mail: {why}."));
            }
            None => {}
        }
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

/// The Authentication-Results field for these verdicts: `spf` (MAIL FROM, then HELO when
/// checked), one `dkim` per signature (`dkim=none` when unsigned), `dmarc` with
/// `header.from` and `policy.dmarc`, then, when ARC was verified, `arc` with
/// `header.oldest-pass` and `smtp.remote-ip` (the SMTP client's address given with it).
pub fn build_authentication_results<'a>(
    authserv_id: &'a str,
    spf: &'a SpfOutput,
    helo_spf: Option<&'a SpfOutput>,
    dkim: &'a [SignatureResult],
    dmarc: &'a DmarcOutput,
    arc: Option<(&'a ArcOutput, IpAddr)>,
) -> AuthenticationResults<'a> {
    let mut ar = AuthenticationResults {
        authserv_id: authserv_id.into(),
        results: Vec::with_capacity(4 + dkim.len().max(1)),
    };
    write_authentication_results(&mut ar, spf, helo_spf, dkim, dmarc, arc);
    ar
}

/// Writes the results of [`build_authentication_results`], in its order, into `sink`.
pub fn write_authentication_results<'a>(
    sink: &mut impl ResultSink<'a>,
    spf: &'a SpfOutput,
    helo_spf: Option<&'a SpfOutput>,
    dkim: &'a [SignatureResult],
    dmarc: &'a DmarcOutput,
    arc: Option<(&'a ArcOutput, IpAddr)>,
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
    if let Some((arc, ip)) = arc {
        arc.write_method_result(Some(ip), sink);
    }
}
