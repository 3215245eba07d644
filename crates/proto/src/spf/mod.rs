//! SPF: the Sender Policy Framework (RFC 7208).
//!
//! In this module `§` refers to RFC 7208.
//!
//! The entry points are [`verify_mail_from`] and [`verify_helo`], which do the initial
//! processing of §4.3 and §2.4 for the two identities a receiver checks, and [`check_host`],
//! the function of §4 itself. They are `async` and generic over the [`Lookup`] through which
//! every DNS question is asked; the time comes from an injected [`Clock`].
//!
//! Every evaluation returns an [`SpfOutput`]: the [`SpfResult`] under its RFC name, a reason
//! a person can read, the explanation (§6.2) when the result is `fail`, the counters of
//! §4.6.4, the term that decided, and (when [`SpfOptions::trace`] is on, the default) a
//! [`Trace`] of every term and DNS query. The reason ([`SpfReason`]) is written out only
//! when it is read, and names are [`SharedStr`]s shared between the request, both
//! evaluations and their outputs, so that a receiver that checks MAIL FROM and HELO for
//! every message pays little beyond the DNS. No DNS question is asked twice in one
//! evaluation; the limits of §4.6.4 and a time budget bound
//! the work a hostile record can cause. The address questions for the hosts of an `mx`
//! mechanism (and for the PTR names of `ptr` and `%{p}`) are asked together, so they cost
//! one round trip; everything else follows the order of the record.
//!
//! ```
//! use dmarc_proto::spf::{self, SpfOptions, SpfRequest, SpfResult};
//! use dmarc_proto::{DnsError, FixedClock, Lookup, MxRecord};
//! use dmarc_proto::dns::DnsResult;
//! use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
//!
//! /// One TXT record at example.com, nothing else.
//! struct Zone;
//! impl Lookup for Zone {
//!     async fn txt(&self, name: &str) -> DnsResult<Vec<u8>> {
//!         match name {
//!             "example.com" => Ok(vec![b"v=spf1 ip4:192.0.2.0/24 -all".to_vec()]),
//!             _ => Err(DnsError::NxDomain),
//!         }
//!     }
//!     async fn a(&self, _: &str) -> DnsResult<Ipv4Addr> { Err(DnsError::NxDomain) }
//!     async fn aaaa(&self, _: &str) -> DnsResult<Ipv6Addr> { Err(DnsError::NxDomain) }
//!     async fn mx(&self, _: &str) -> DnsResult<MxRecord> { Err(DnsError::NxDomain) }
//!     async fn ptr(&self, _: IpAddr) -> DnsResult<String> { Err(DnsError::NxDomain) }
//! }
//!
//! let request = SpfRequest::new("192.0.2.10".parse().unwrap(), "mail.example.com")
//!     .with_mail_from("alice@example.com");
//! let clock = FixedClock::from_unix_seconds(1_700_000_000);
//! let out = pollster::block_on(spf::verify_mail_from(&Zone, &clock, &SpfOptions::default(), &request));
//! assert_eq!(out.result, SpfResult::Pass);
//! assert_eq!(out.deciding_term.unwrap().term(), "ip4:192.0.2.0/24");
//! ```

mod eval;
mod header;
mod macros;
mod record;
mod trace;

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Serialize;

pub use crate::name::SharedStr;
pub use eval::{check_host, verify_helo, verify_mail_from};
pub use macros::{
    MAX_EXPANSION, MacroContext, MacroError, MacroLetter, MacroPart, MacroString, MacroValues,
};
use record::ParsedSpf;
pub use record::{
    Directive, Mechanism, Qualifier, Record, RecordError, SpfRecordCache, is_spf_record,
};
pub use trace::{AnswerClass, QueryTrace, RecordTrace, TermOutcome, TermTrace, Trace};

#[cfg(doc)]
use crate::{Clock, Lookup};

/// The result of an SPF check, named as in §2.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SpfResult {
    /// No syntactically valid domain, or no SPF record was found (§2.6.1).
    None,
    /// The domain owner makes no assertion about the client (§2.6.2).
    Neutral,
    /// The client is authorised to use the domain (§2.6.3).
    Pass,
    /// The client is not authorised to use the domain (§2.6.4).
    Fail,
    /// The client is probably not authorised (§2.6.5).
    SoftFail,
    /// A transient (generally DNS) error; a later retry may succeed (§2.6.6).
    TempError,
    /// The published records could not be correctly interpreted (§2.6.7).
    PermError,
}

impl SpfResult {
    /// The lower-case RFC name: `pass`, `fail`, `softfail`, `neutral`, `none`, `temperror`,
    /// `permerror`.
    pub fn as_str(self) -> &'static str {
        match self {
            SpfResult::None => "none",
            SpfResult::Neutral => "neutral",
            SpfResult::Pass => "pass",
            SpfResult::Fail => "fail",
            SpfResult::SoftFail => "softfail",
            SpfResult::TempError => "temperror",
            SpfResult::PermError => "permerror",
        }
    }
}

impl fmt::Display for SpfResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SpfResult {
    type Err = String;
    /// Parses the RFC names case-insensitively, plus the RFC 4408 spellings `unknown`
    /// (permerror) and `error` (temperror).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "none" => SpfResult::None,
            "neutral" => SpfResult::Neutral,
            "pass" => SpfResult::Pass,
            "fail" => SpfResult::Fail,
            "softfail" => SpfResult::SoftFail,
            "temperror" | "error" => SpfResult::TempError,
            "permerror" | "unknown" => SpfResult::PermError,
            _ => return Err(format!("{s:?} is not an SPF result")),
        })
    }
}

/// Which identity was checked (§2.3, §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Identity {
    /// The RFC 5321 MAIL FROM (or `postmaster@HELO` for a null reverse-path).
    MailFrom,
    /// The HELO/EHLO name.
    Helo,
}

impl Identity {
    /// `mailfrom` or `helo`, as in Received-SPF's `identity=` (§9.1).
    pub fn as_str(self) -> &'static str {
        match self {
            Identity::MailFrom => "mailfrom",
            Identity::Helo => "helo",
        }
    }
}

/// The local part checked for the HELO identity and for a null reverse-path (§2.3, §2.4).
pub(crate) const POSTMASTER_AT: &str = "postmaster@";

/// What the SMTP session tells the receiver: the client address and the identities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpfRequest {
    /// The client IP address. An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) is treated
    /// as the IPv4 address (§5).
    pub ip: IpAddr,
    /// The HELO/EHLO name as given by the client (it may be anything). The outputs of
    /// both evaluations share it.
    pub helo: SharedStr,
    /// The MAIL FROM reverse-path without angle brackets; `None` or `""` is the null
    /// reverse-path, for which `postmaster@<helo>` is checked (§2.4). The output shares it.
    pub mail_from: Option<SharedStr>,
}

impl SpfRequest {
    /// A request with a null reverse-path.
    pub fn new(ip: IpAddr, helo: impl Into<SharedStr>) -> Self {
        SpfRequest {
            ip,
            helo: helo.into(),
            mail_from: None,
        }
    }

    /// A request with both identities (`mail_from` `None` or `""` for the null
    /// reverse-path; surrounding `<>` are removed), holding the names in one buffer
    /// together with `postmaster@` in front of the HELO name, so that neither evaluation
    /// copies a name (§2.3, §2.4). The same request as
    /// `SpfRequest::new(ip, helo).with_mail_from(mail_from)`.
    pub fn with_identities(ip: IpAddr, helo: &str, mail_from: Option<&str>) -> Self {
        let m = mail_from.map(|m| {
            m.strip_prefix('<')
                .and_then(|s| s.strip_suffix('>'))
                .unwrap_or(m)
        });
        let buf = SharedStr::concat(&[POSTMASTER_AT, helo, m.unwrap_or_default()]);
        let helo_end = POSTMASTER_AT.len() + helo.len();
        SpfRequest {
            ip,
            helo: buf.slice(buf.get(POSTMASTER_AT.len()..helo_end).unwrap_or(helo)),
            mail_from: m.map(|m| buf.slice(buf.get(helo_end..).unwrap_or(m))),
        }
    }

    /// Sets the MAIL FROM address (builder style). Surrounding `<>` are removed.
    pub fn with_mail_from(mut self, mail_from: impl AsRef<str>) -> Self {
        let m = mail_from.as_ref();
        let m = m
            .strip_prefix('<')
            .and_then(|s| s.strip_suffix('>'))
            .unwrap_or(m);
        self.mail_from = Some(SharedStr::from(m));
        self
    }
}

/// Settings of an evaluation. Every field states its default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpfOptions {
    /// The receiving host's name, `%{r}` in explanations (§7.2). Default `unknown`, as the
    /// RFC asks when the name is not known.
    pub receiver: String,
    /// The explanation (a macro string, §6.2) to give for `fail` when the domain publishes
    /// no usable `exp=`. Default `None`: no explanation then.
    pub default_explanation: Option<String>,
    /// The limit on terms that cause DNS queries (§4.6.4). Default 10, as the RFC requires.
    pub max_dns_terms: u32,
    /// The limit on void lookups (§4.6.4). Default 2, as the RFC recommends.
    pub max_void_lookups: u32,
    /// The limit on MX records per `mx` (more is a permerror) and on PTR names per `ptr` or
    /// `%{p}` (the rest are ignored) (§4.6.4). Default 10, as the RFC requires.
    pub max_mx_ptr_names: usize,
    /// The time an evaluation may take, measured with the injected clock; when it is
    /// exceeded the result is `temperror` (§4.6.4). `None` for no limit. Default 20 seconds,
    /// the minimum the RFC asks for.
    pub time_budget: Option<Duration>,
    /// The longest TXT record accepted as an SPF record, in bytes; a longer one is a
    /// permerror. Default 65 535, the most a DNS message can carry.
    pub max_record_bytes: usize,
    /// A cache of parsed SPF records shared between evaluations, keyed by the record's
    /// bytes. Default `None` (every record parsed); the receiver's
    /// `ReceiverConfig::new` (crate dmarc-receiver) sets one.
    pub record_cache: Option<std::sync::Arc<SpfRecordCache>>,
    /// Record the [`Trace`] of DNS questions and terms. Default `true`; with `false` the
    /// output's trace is empty (no notes, records, queries or terms), which saves work on
    /// a receiver's hot path. The result, reason, explanation, counters and deciding term
    /// are the same either way.
    pub trace: bool,
}

impl Default for SpfOptions {
    fn default() -> Self {
        SpfOptions {
            receiver: "unknown".into(),
            default_explanation: None,
            max_dns_terms: 10,
            max_void_lookups: 2,
            max_mx_ptr_names: 10,
            time_budget: Some(Duration::from_secs(20)),
            max_record_bytes: 65_535,
            record_cache: None,
            trace: true,
        }
    }
}

/// The term that decided the result, and the domain whose record holds it.
///
/// It shares the text of the (cached) parsed record rather than copying it.
#[derive(Clone)]
pub struct DecidingTerm {
    domain: SharedStr,
    term: TermText,
}

/// Where the text of a deciding term is.
#[derive(Clone)]
enum TermText {
    /// Directive `.1` of a parsed record.
    Record(Arc<ParsedSpf>, usize),
    /// Any other term, e.g. `redirect=...`.
    Owned(String),
}

impl DecidingTerm {
    /// A deciding term from its parts.
    pub fn new(domain: impl Into<String>, term: impl Into<String>) -> Self {
        DecidingTerm {
            domain: SharedStr::from(domain.into()),
            term: TermText::Owned(term.into()),
        }
    }

    /// Directive `index` of `record`, in the record of `domain`.
    pub(crate) fn from_record(domain: SharedStr, record: Arc<ParsedSpf>, index: usize) -> Self {
        DecidingTerm {
            domain,
            term: TermText::Record(record, index),
        }
    }

    /// The domain whose record holds the term.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The term as written in canonical form, e.g. `-all`, `include:_spf.example.com`.
    pub fn term(&self) -> &str {
        match &self.term {
            TermText::Record(p, i) => p.terms.get(*i).map_or("", String::as_str),
            TermText::Owned(t) => t,
        }
    }
}

impl fmt::Display for DecidingTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (in the record of {})", self.term(), self.domain())
    }
}

impl fmt::Debug for DecidingTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecidingTerm")
            .field("domain", &self.domain())
            .field("term", &self.term())
            .finish()
    }
}

impl PartialEq for DecidingTerm {
    fn eq(&self, other: &Self) -> bool {
        self.domain() == other.domain() && self.term() == other.term()
    }
}

impl Eq for DecidingTerm {}

impl Serialize for DecidingTerm {
    /// As `{"domain": ..., "term": ...}`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("DecidingTerm", 2)?;
        st.serialize_field("domain", self.domain())?;
        st.serialize_field("term", self.term())?;
        st.end()
    }
}

/// Why an evaluation gave its result, for a person (e.g. `example.com authorises
/// 192.0.2.1 with ip4:192.0.2.0/24`). It dereferences to `str` and displays as the text,
/// which is written only when it is first read: a receiver that never shows the reason
/// of a `pass` never pays for it.
#[derive(Clone)]
pub struct SpfReason {
    repr: ReasonRepr,
    text: OnceLock<String>,
}

#[derive(Clone)]
enum ReasonRepr {
    Text(String),
    /// A mechanism matched.
    Matched {
        result: SpfResult,
        ip: IpAddr,
        term: DecidingTerm,
    },
    /// Nothing matched and there was no redirect (§4.7).
    DefaultNeutral {
        domain: SharedStr,
        ip: IpAddr,
    },
    /// The domain has no SPF record.
    NoRecord {
        domain: SharedStr,
    },
}

impl SpfReason {
    pub(crate) fn matched(result: SpfResult, ip: IpAddr, term: DecidingTerm) -> Self {
        SpfReason::lazy(ReasonRepr::Matched { result, ip, term })
    }

    pub(crate) fn default_neutral(domain: SharedStr, ip: IpAddr) -> Self {
        SpfReason::lazy(ReasonRepr::DefaultNeutral { domain, ip })
    }

    pub(crate) fn no_record(domain: SharedStr) -> Self {
        SpfReason::lazy(ReasonRepr::NoRecord { domain })
    }

    fn lazy(repr: ReasonRepr) -> Self {
        SpfReason {
            repr,
            text: OnceLock::new(),
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        match &self.repr {
            ReasonRepr::Text(t) => t,
            repr => self.text.get_or_init(|| render_reason(repr)),
        }
    }
}

fn render_reason(repr: &ReasonRepr) -> String {
    match repr {
        ReasonRepr::Text(t) => t.clone(),
        ReasonRepr::Matched { result, ip, term } => {
            let (domain, term) = (term.domain(), term.term());
            match result {
                SpfResult::Pass => format!("{domain} authorises {ip} with {term}"),
                SpfResult::Fail => format!("{domain} does not authorise {ip}: it matched {term}"),
                SpfResult::SoftFail => {
                    format!("{domain} probably does not authorise {ip}: it matched {term}")
                }
                _ => format!("{domain} makes no assertion about {ip}: it matched {term}"),
            }
        }
        ReasonRepr::DefaultNeutral { domain, ip } => format!(
            "no mechanism in the record of {domain} matched {ip}, so the default result applies (§4.7)"
        ),
        ReasonRepr::NoRecord { domain } => {
            // The usual reason for `none` (every HELO name without a record): written
            // without the formatting machinery.
            const TAIL: &str = " publishes no SPF record";
            let mut s = String::with_capacity(domain.len() + TAIL.len());
            s.push_str(domain);
            s.push_str(TAIL);
            s
        }
    }
}

impl std::ops::Deref for SpfReason {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SpfReason {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for SpfReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SpfReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for SpfReason {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SpfReason {}

impl PartialEq<str> for SpfReason {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SpfReason {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for SpfReason {
    /// As the text.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl From<String> for SpfReason {
    fn from(text: String) -> Self {
        SpfReason::lazy(ReasonRepr::Text(text))
    }
}

impl From<&str> for SpfReason {
    fn from(text: &str) -> Self {
        SpfReason::from(text.to_owned())
    }
}

impl From<SpfReason> for String {
    fn from(r: SpfReason) -> Self {
        match r.repr {
            ReasonRepr::Text(t) => t,
            repr => r.text.into_inner().unwrap_or_else(|| render_reason(&repr)),
        }
    }
}

impl From<SpfReason> for std::borrow::Cow<'static, str> {
    fn from(r: SpfReason) -> Self {
        std::borrow::Cow::Owned(r.into())
    }
}

/// Everything an SPF evaluation found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpfOutput {
    /// The result.
    pub result: SpfResult,
    /// Why, for a person.
    pub reason: SpfReason,
    /// The explanation (§6.2): given only for `fail`, from the domain's `exp=` or else the
    /// configured default explanation.
    pub explanation: Option<String>,
    /// The identity checked.
    pub identity: Identity,
    /// The domain checked (the `<domain>` of check_host()).
    pub domain: SharedStr,
    /// The sender used for the macros, `local-part@domain` (`postmaster@...` when the
    /// local part was missing or the reverse-path null).
    pub sender: SharedStr,
    /// The HELO name.
    pub helo: SharedStr,
    /// The client IP (IPv4 when it was given IPv4-mapped).
    pub ip: IpAddr,
    /// Terms that caused DNS queries (limit 10, §4.6.4).
    pub lookups: u32,
    /// Void lookups: answers with no records (limit 2, §4.6.4).
    pub void_lookups: u32,
    /// DNS questions actually sent; repeated questions are answered from memory.
    pub dns_queries: u32,
    /// The term that decided, if one did (`None` for `none`, the default `neutral`, and
    /// errors outside any term).
    pub deciding_term: Option<DecidingTerm>,
    /// The evaluation, step by step (empty unless [`SpfOptions::trace`]).
    pub trace: Trace,
}

impl From<SpfResult> for crate::dmarc::AuthResult {
    fn from(r: SpfResult) -> Self {
        use crate::dmarc::AuthResult;
        match r {
            SpfResult::None => AuthResult::None,
            SpfResult::Neutral => AuthResult::Neutral,
            SpfResult::Pass => AuthResult::Pass,
            SpfResult::Fail => AuthResult::Fail,
            SpfResult::SoftFail => AuthResult::SoftFail,
            SpfResult::TempError => AuthResult::TempError,
            SpfResult::PermError => AuthResult::PermError,
        }
    }
}

impl SpfOutput {
    /// The SPF-authenticated identifier DMARC looks at: the domain checked (the MAIL FROM
    /// domain, or the HELO name for a null reverse-path) and the result.
    pub fn dmarc_identity(&self) -> crate::dmarc::SpfIdentity {
        crate::dmarc::SpfIdentity::new(self.domain.clone(), self.result.into())
    }
}
