//! DMARC (RFC 9989, and RFC 7489 as a configured mode): policy records, policy discovery by
//! the DNS tree walk, the Organizational Domain, identifier alignment and the verdict.
//!
//! Section numbers (`§4.10`) refer to RFC 9989 unless another RFC is named.
//!
//! This module decides DMARC from identifiers that were **already authenticated**: the SPF
//! result for the MAIL FROM domain and the DKIM result for each signature's `d=`, as
//! [`SpfIdentity`] and [`DkimIdentity`]. Only a `pass` can align (§4.4).
//!
//! ```no_run
//! # async fn demo(lookup: &impl dmarc_proto::Lookup) {
//! use dmarc_proto::dmarc::{self, AuthResult, DkimIdentity, DmarcInput, DmarcOptions};
//! let input = DmarcInput {
//!     author_domain: "example.com".into(),
//!     spf: vec![],
//!     dkim: vec![DkimIdentity::new("example.com", AuthResult::Pass)],
//!     pct_draw: None,
//! };
//! let out = dmarc::evaluate(lookup, &input, &DmarcOptions::default()).await;
//! println!("dmarc={} ({})", out.result, out.reason);
//! # }
//! ```
//!
//! The pieces are public too: [`Record::parse`] for one TXT record, [`discover_policy`] for
//! §4.10.1, [`organizational_domain`] for §4.10.2, [`author_domains`] for §5.3.1 and
//! [`evaluate_message`] to go from raw `From` field values to a verdict.

mod author;
mod discovery;
mod evaluate;
mod external;
pub mod record;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

pub use crate::name::{DomainError, DomainName};
pub use author::{
    AuthorDomains, AuthorError, AuthorOptions, FromFault, MAX_AUTHOR_DOMAINS, MAX_FIELD_LEN,
    MultipleAddresses, MultipleFields, Unreadable, address_domain, author_domains,
    mailbox_addresses, read_authors,
};
pub use discovery::{
    DiscoveredPolicy, DmarcRecordCache, PolicySource, TreeWalk, WalkStep, discover_policy,
    organizational_domain, psl_aligned, psl_organizational_domain, tree_walk, tree_walk_targets,
};
pub use evaluate::{evaluate, evaluate_authors, evaluate_message};
pub use external::{
    ExternalCheck, ReportKind, verify_external_destination, verify_external_destinations,
};
pub use record::{
    Diagnostic, FailureOption, ParsedRecord, Psd, Record, RecordError, RecordErrorKind, RecordSet,
    ReportUri, Severity,
};

pub use dmarc_psl::{Psl, Sections as PslSections};

/// Which DMARC specification drives the evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Spec {
    /// RFC 9989: DNS tree walk, `psd`, `np`, `t`; `pct`, `rf`, `ri` ignored. The default.
    #[default]
    Rfc9989,
    /// RFC 7489: Organizational Domain from the Public Suffix List, `pct` sampling; `np`,
    /// `psd` and `t` are unknown tags.
    Rfc7489,
}

impl Spec {
    /// `"RFC 9989"` or `"RFC 7489"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Spec::Rfc9989 => "RFC 9989",
            Spec::Rfc7489 => "RFC 7489",
        }
    }
}

impl Spec {
    /// The RFC 9990 aggregate report `discovery_method`: `treewalk` or `psl`.
    pub fn discovery_method(self) -> &'static str {
        match self {
            Spec::Rfc9989 => "treewalk",
            Spec::Rfc7489 => "psl",
        }
    }
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Domain Owner Assessment Policy (`p`, `sp`, `np`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Policy {
    /// `none`: no preference expressed (monitoring).
    None,
    /// `quarantine`: treat failing mail as suspicious.
    Quarantine,
    /// `reject`: failing mail is not valid use of the domain.
    Reject,
}

impl Policy {
    /// The tag value: `none`, `quarantine` or `reject`.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::None => "none",
            Policy::Quarantine => "quarantine",
            Policy::Reject => "reject",
        }
    }

    /// One step milder: reject → quarantine → none (`t=y`, §4.7; unsampled `pct`,
    /// RFC 7489 §6.6.4).
    pub fn one_step_down(self) -> Policy {
        match self {
            Policy::Reject => Policy::Quarantine,
            Policy::Quarantine | Policy::None => Policy::None,
        }
    }
}

impl FromStr for Policy {
    type Err = ();
    /// Case-insensitive `none`, `quarantine` or `reject`.
    fn from_str(s: &str) -> Result<Self, ()> {
        if s.eq_ignore_ascii_case("none") {
            Ok(Policy::None)
        } else if s.eq_ignore_ascii_case("quarantine") {
            Ok(Policy::Quarantine)
        } else if s.eq_ignore_ascii_case("reject") {
            Ok(Policy::Reject)
        } else {
            Err(())
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identifier alignment mode (`adkim`, `aspf`; §3.2.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AlignmentMode {
    /// Same Organizational Domain. The default.
    #[default]
    Relaxed,
    /// Identical domains.
    Strict,
}

impl AlignmentMode {
    /// `relaxed` or `strict`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlignmentMode::Relaxed => "relaxed",
            AlignmentMode::Strict => "strict",
        }
    }
}

impl fmt::Display for AlignmentMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The DMARC verdict, named as in RFC 8601 `dmarc=` and §9.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DmarcResult {
    /// A policy record exists and an authenticated identifier is aligned.
    Pass,
    /// A policy record exists and no authenticated identifier is aligned.
    Fail,
    /// No usable policy record: DMARC does not apply (or the evaluator declined, or DNS
    /// failed and the options say to fail open).
    None,
    /// A transient error, usually DNS; a later attempt might decide.
    TempError,
    /// A permanent error, such as a message whose From field gives no Author Domain.
    PermError,
}

impl DmarcResult {
    /// `pass`, `fail`, `none`, `temperror` or `permerror`.
    pub fn as_str(self) -> &'static str {
        match self {
            DmarcResult::Pass => "pass",
            DmarcResult::Fail => "fail",
            DmarcResult::None => "none",
            DmarcResult::TempError => "temperror",
            DmarcResult::PermError => "permerror",
        }
    }
}

impl fmt::Display for DmarcResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result a mechanism gave for one identifier. SPF and DKIM result types map onto it;
/// only [`AuthResult::Pass`] can produce alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthResult {
    /// `pass`.
    Pass,
    /// `fail` (SPF `fail`, or a DKIM signature that did not verify).
    Fail,
    /// SPF `softfail`.
    SoftFail,
    /// `neutral`.
    Neutral,
    /// DKIM `policy`.
    Policy,
    /// `none`.
    None,
    /// `temperror`.
    TempError,
    /// `permerror`.
    PermError,
}

impl AuthResult {
    /// The RFC 8601 name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthResult::Pass => "pass",
            AuthResult::Fail => "fail",
            AuthResult::SoftFail => "softfail",
            AuthResult::Neutral => "neutral",
            AuthResult::Policy => "policy",
            AuthResult::None => "none",
            AuthResult::TempError => "temperror",
            AuthResult::PermError => "permerror",
        }
    }
}

impl FromStr for AuthResult {
    type Err = String;
    /// Case-insensitive RFC 8601 names; the legacy `hardfail` is `fail`.
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "pass" => AuthResult::Pass,
            "fail" | "hardfail" => AuthResult::Fail,
            "softfail" => AuthResult::SoftFail,
            "neutral" => AuthResult::Neutral,
            "policy" => AuthResult::Policy,
            "none" => AuthResult::None,
            "temperror" => AuthResult::TempError,
            "permerror" => AuthResult::PermError,
            _ => return Err(format!("unknown authentication result {s:?}")),
        })
    }
}

impl fmt::Display for AuthResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The SPF-authenticated identity: the MAIL FROM domain (or the HELO domain for a null
/// reverse-path, RFC 7208 §2.4) and SPF's result for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpfIdentity {
    /// The domain SPF checked.
    pub domain: String,
    /// SPF's result.
    pub result: AuthResult,
}

impl SpfIdentity {
    /// Builds an identity.
    pub fn new(domain: impl Into<String>, result: AuthResult) -> Self {
        SpfIdentity {
            domain: domain.into(),
            result,
        }
    }
}

/// One DKIM signature's signing domain (`d=`) and its verification result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimIdentity {
    /// The `d=` domain.
    pub domain: String,
    /// The `s=` selector, if known (reports carry it).
    pub selector: Option<String>,
    /// The verification result of that signature.
    pub result: AuthResult,
}

impl DkimIdentity {
    /// Builds an identity without a selector.
    pub fn new(domain: impl Into<String>, result: AuthResult) -> Self {
        DkimIdentity {
            domain: domain.into(),
            selector: None,
            result,
        }
    }

    /// Adds the `s=` selector (builder style).
    pub fn with_selector(mut self, selector: impl Into<String>) -> Self {
        self.selector = Some(selector.into());
        self
    }
}

/// What [`evaluate`] decides from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DmarcInput {
    /// The Author Domain (§3.2.2), as extracted by [`author_domains`] or given directly.
    /// U-labels are converted to A-labels.
    pub author_domain: String,
    /// SPF results; normally one (the MAIL FROM identity).
    pub spf: Vec<SpfIdentity>,
    /// DKIM results, one per signature.
    pub dkim: Vec<DkimIdentity>,
    /// RFC 7489 mode only: a uniformly random number from 0 to 99 drawn for this message,
    /// for `pct` sampling (§6.6.4 of RFC 7489). The message is "selected" when the draw is
    /// below `pct`. Without a draw a message is selected when `pct` is above 0.
    pub pct_draw: Option<u8>,
}

/// What to do when DNS fails temporarily while looking for the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DnsFailureMode {
    /// Report `temperror` (the receiver can answer 4xx and let the sender retry). The
    /// default.
    #[default]
    TempError,
    /// Fail open: report `none`, as if there were no policy, and say why in the reason.
    FailOpen,
}

/// Configuration of the evaluation. Every field states its default.
#[derive(Debug, Clone, Default)]
pub struct DmarcOptions {
    /// The specification to follow. Default [`Spec::Rfc9989`].
    pub spec: Spec,
    /// RFC 7489 mode: the Public Suffix List sections used for the Organizational Domain.
    /// Default [`PslSections::Icann`].
    pub psl_sections: PslSections,
    /// RFC 7489 mode: a list to use instead of the one built into `dmarc-psl`. Default
    /// `None` (the built-in list).
    pub psl: Option<Arc<Psl>>,
    /// Temporary DNS failures: `temperror` or fail open. Default
    /// [`DnsFailureMode::TempError`].
    pub dns_failure: DnsFailureMode,
    /// How the Author Domain is taken from the From field(s) by [`evaluate_message`].
    pub author: AuthorOptions,
    /// At most this many DKIM identities, and this many SPF identities, are checked for
    /// alignment (a bound on the DNS work one message can cause: each costs at most one
    /// tree walk of eight queries, and shared names are asked once). Default 0, meaning 16.
    pub max_identities: usize,
    /// A cache of parsed `_dmarc` records shared between evaluations, keyed by the DNS
    /// answer's bytes. Default `None` (every answer parsed); the receiver's
    /// `ReceiverConfig::new` (crate dmarc-receiver) sets one.
    pub record_cache: Option<Arc<DmarcRecordCache>>,
}

impl DmarcOptions {
    /// RFC 7489 mode with the ICANN section of the built-in list.
    pub fn rfc7489() -> Self {
        DmarcOptions {
            spec: Spec::Rfc7489,
            ..DmarcOptions::default()
        }
    }

    fn psl(&self) -> &Psl {
        self.psl.as_deref().unwrap_or_else(|| Psl::builtin())
    }

    fn identity_limit(&self) -> usize {
        if self.max_identities == 0 {
            16
        } else {
            self.max_identities
        }
    }
}

/// How one authenticated identifier fared against the Author Domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifierAlignment {
    /// The identifier's domain (SPF domain or DKIM `d=`), normalised when it was valid.
    pub domain: String,
    /// The DKIM selector, if known.
    pub selector: Option<String>,
    /// The mechanism's own result for it.
    pub result: AuthResult,
    /// True if it passed and is aligned.
    pub aligned: bool,
    /// The domain on which it agrees with the Author Domain, when aligned: the identifier
    /// itself under strict alignment (or when identical), the shared Organizational Domain
    /// under relaxed alignment.
    pub alignment_domain: Option<DomainName>,
    /// Why it is or is not aligned; its [`Display`](fmt::Display) is the text for a person.
    pub reason: AlignmentReason,
}

/// Why an identifier is or is not aligned with the Author Domain. Kept as a value and
/// written out only when displayed (`to_string()` gives the sentence).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AlignmentReason {
    /// Not yet decided (never left in a finished evaluation).
    Pending,
    /// The identifier is not a usable domain name.
    InvalidDomain(DomainError),
    /// The mechanism's result is not `pass`; only `pass` can align (§4.4).
    NotPass(AuthResult),
    /// The identifier is the Author Domain.
    Identical,
    /// Strict alignment needs the identifier to be this Author Domain.
    StrictNeeds(DomainName),
    /// The names have no common label, so no common Organizational Domain.
    NoCommonLabel,
    /// The Organizational Domain of this Author Domain could not be determined (DNS).
    AuthorOrgUnknown(DomainName),
    /// The identifier lies outside `author_org`, the Organizational Domain of `author`,
    /// so its own Organizational Domain (one of its suffixes) cannot be that one; it is
    /// not looked up (that would cost a DNS tree walk and decide nothing).
    OutsideAuthorOrg {
        /// The Author Domain.
        author: DomainName,
        /// Its Organizational Domain.
        author_org: DomainName,
    },
    /// The identifier's Organizational Domain could not be determined.
    OrgUnknown(crate::dns::DnsError),
    /// Relaxed alignment: both have this Organizational Domain.
    SameOrg(DomainName),
    /// Relaxed alignment failed: the identifier's Organizational Domain `org` differs
    /// from the Author Domain's `author_org`.
    DifferentOrg {
        /// The identifier's Organizational Domain.
        org: DomainName,
        /// The Author Domain's.
        author_org: DomainName,
    },
}

impl AlignmentReason {
    /// True for the reasons of an aligned identifier.
    pub fn is_aligned(&self) -> bool {
        matches!(
            self,
            AlignmentReason::Identical | AlignmentReason::SameOrg(_)
        )
    }
}

impl fmt::Display for AlignmentReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AlignmentReason::Pending => f.write_str("undecided"),
            AlignmentReason::InvalidDomain(e) => write!(f, "not aligned: {e}"),
            AlignmentReason::NotPass(result) => {
                write!(
                    f,
                    "not aligned: the result is {result}, only pass can align"
                )
            }
            AlignmentReason::Identical => f.write_str("aligned: identical to the Author Domain"),
            AlignmentReason::StrictNeeds(author) => {
                write!(f, "not aligned: strict alignment needs {author}")
            }
            AlignmentReason::NoCommonLabel => {
                f.write_str("not aligned: no common Organizational Domain")
            }
            AlignmentReason::AuthorOrgUnknown(author) => write!(
                f,
                "undecided: the Organizational Domain of {author} is unknown (DNS)"
            ),
            AlignmentReason::OutsideAuthorOrg { author, author_org } if author == author_org => {
                write!(
                    f,
                    "not aligned: {author} is its own Organizational Domain, and this domain is not under it"
                )
            }
            AlignmentReason::OutsideAuthorOrg { author, author_org } => write!(
                f,
                "not aligned: this domain is not under {author_org}, the Organizational Domain of {author}"
            ),
            AlignmentReason::OrgUnknown(e) => write!(f, "undecided: {e}"),
            AlignmentReason::SameOrg(org) => {
                write!(
                    f,
                    "aligned (relaxed): both have the Organizational Domain {org}"
                )
            }
            AlignmentReason::DifferentOrg { org, author_org } => write!(
                f,
                "not aligned: Organizational Domain {org}, the Author Domain's is {author_org}"
            ),
        }
    }
}

impl serde::Serialize for AlignmentReason {
    /// As its sentence.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Everything [`evaluate`] found out. The fields needed for the `dmarc=` result of
/// Authentication-Results are [`DmarcOutput::result`], [`DmarcOutput::author_domain`]
/// (`header.from`), [`DmarcOutput::applied_policy`] (`policy.dmarc`) and
/// [`DmarcOutput::requested_policy`] / the record's `p` and `sp`
/// (`policy.published-domain-policy`, `policy.published-subdomain-policy`); see
/// [`DmarcOutput::to_method_result`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcOutput {
    /// The verdict.
    pub result: DmarcResult,
    /// The specification that decided.
    pub spec: Spec,
    /// True when the evaluator declined to evaluate (several Author Domains under
    /// [`MultipleAddresses::Decline`] or [`MultipleAddresses::SameDomainOnly`]); the result
    /// is then `none`.
    pub declined: bool,
    /// True when the From field(s) give no Author Domain to evaluate and the options say
    /// to refuse the message ([`AuthorOptions`]: no domain named, too many, or a `Reject`
    /// choice); the result is then `permerror` and [`DmarcOutput::disposition`] is
    /// `reject`.
    pub from_refused: bool,
    /// The Author Domain (`header.from`), A-labels, when one was found.
    pub author_domain: Option<String>,
    /// Where the policy record was found (the DMARC Policy Domain, §3.2.5).
    pub policy_domain: Option<DomainName>,
    /// The Author Domain's Organizational Domain, when it was determined (RFC 9989 mode
    /// determines it only when needed: a tree walk, or relaxed alignment of a different
    /// domain; RFC 7489 mode always).
    pub org_domain: Option<DomainName>,
    /// The record that applies.
    pub record: Option<Arc<Record>>,
    /// Diagnostics of that record.
    pub record_diagnostics: Vec<Diagnostic>,
    /// Which tag the requested policy came from.
    pub policy_source: Option<PolicySource>,
    /// The policy the Domain Owner asks for this message: `p`, `sp` or `np` (§4.10.1).
    pub requested_policy: Option<Policy>,
    /// The policy to apply to this message if it fails: the requested one made one step
    /// milder by `t=y` (RFC 9989) or by not being selected by `pct` (RFC 7489).
    pub applied_policy: Option<Policy>,
    /// `t=y` was in effect (RFC 9989).
    pub testing: bool,
    /// RFC 7489: whether `pct` sampling selected the message (`None` when `pct` is 100 or
    /// absent, or in RFC 9989 mode).
    pub sampled: Option<bool>,
    /// Whether the Author Domain exists (§3.2.13), when that had to be known for `np`.
    pub author_domain_exists: Option<bool>,
    /// The DKIM alignment mode in effect.
    pub dkim_mode: AlignmentMode,
    /// The SPF alignment mode in effect.
    pub spf_mode: AlignmentMode,
    /// Each SPF identity checked.
    pub spf: Vec<IdentifierAlignment>,
    /// Each DKIM identity checked.
    pub dkim: Vec<IdentifierAlignment>,
    /// Why, for a person.
    pub reason: String,
}

impl DmarcOutput {
    fn new(spec: Spec, result: DmarcResult, reason: impl Into<String>) -> Self {
        DmarcOutput {
            result,
            spec,
            declined: false,
            from_refused: false,
            author_domain: None,
            policy_domain: None,
            org_domain: None,
            record: None,
            record_diagnostics: Vec::new(),
            policy_source: None,
            requested_policy: None,
            applied_policy: None,
            testing: false,
            sampled: None,
            author_domain_exists: None,
            dkim_mode: AlignmentMode::Relaxed,
            spf_mode: AlignmentMode::Relaxed,
            spf: Vec::new(),
            dkim: Vec::new(),
            reason: reason.into(),
        }
    }

    /// True if any DKIM identity is aligned.
    pub fn dkim_aligned(&self) -> bool {
        self.dkim.iter().any(|d| d.aligned)
    }

    /// True if any SPF identity is aligned.
    pub fn spf_aligned(&self) -> bool {
        self.spf.iter().any(|d| d.aligned)
    }

    /// The policy to enforce on this message: the applied policy when the result is `fail`,
    /// `reject` for a From field refused ([`DmarcOutput::from_refused`]), otherwise `None`
    /// (nothing to enforce).
    pub fn disposition(&self) -> Option<Policy> {
        match self.result {
            DmarcResult::Fail => self.applied_policy,
            _ if self.from_refused => Some(Policy::Reject),
            _ => None,
        }
    }

    /// The `dmarc=` result for an Authentication-Results field: the result, a comment with
    /// the reason, `header.from`, `policy.dmarc` (the applied policy) and
    /// `policy.published-domain-policy` / `policy.published-subdomain-policy` when a record
    /// was used.
    pub fn to_method_result(&self) -> crate::auth_results::MethodResult<'_> {
        crate::auth_results::MethodResult::collect(|m| self.write_method_result(m))
    }

    /// Writes the `dmarc=` result (as [`to_method_result`](Self::to_method_result)
    /// describes it) into `sink`.
    pub fn write_method_result<'a>(&'a self, sink: &mut impl crate::auth_results::ResultSink<'a>) {
        sink.result("dmarc", self.result.as_str());
        sink.comment(self.reason.as_str().into());
        if let Some(from) = &self.author_domain {
            sink.property("header", "from", from.as_str().into());
        }
        if let Some(p) = self.applied_policy {
            sink.property("policy", "dmarc", p.as_str().into());
        }
        if let Some(rec) = &self.record {
            sink.property("policy", "published-domain-policy", rec.p.as_str().into());
            if let Some(sp) = rec.sp {
                sink.property("policy", "published-subdomain-policy", sp.as_str().into());
            }
        }
    }
}
