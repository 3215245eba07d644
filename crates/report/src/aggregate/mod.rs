//! Aggregate reports: RFC 7489 Appendix C, the dmarc.org drafts (0.1, 0.2) and RFC 9990.
//!
//! All forms parse into the one normalised [`AggregateReport`]; [`generate::to_xml`] writes
//! it back as RFC 9990 XML. Section numbers (`§`) refer to RFC 9990 unless stated.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Short text stored inline (no heap allocation up to 24 bytes): the per-record strings
/// (domains, selectors) of a large report are nearly all that short.
pub use compact_str::CompactString;

/// A list stored inline up to its first items: [`AuthResults::spf`] holds its usual single
/// result inside the record, without a heap allocation per record. Derefs to a slice.
pub use smallvec::SmallVec;

use crate::words::word_enum;

pub mod generate;
pub mod parse;

/// One aggregate ("rua") report, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggregateReport {
    /// The `<version>` element as written (`"1.0"`, `"0.1"` ...); `None` when absent, as in
    /// most RFC 7489 era reports.
    pub version: Option<String>,
    /// `<report_metadata>`.
    pub metadata: ReportMetadata,
    /// `<policy_published>`: the DMARC policy the reporter found.
    pub policy_published: PolicyPublished,
    /// The `<record>` rows.
    pub records: Vec<Record>,
    /// Report-level `<extensions>` (RFC 9990 §3.1.1.3 / Appendix A `extension`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<Extension>,
    /// What the parser had to tolerate or could not read (unknown values, recovered XML
    /// damage, dropped records ...). Empty for a clean report.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// `<report_metadata>` (§3.1.1.1).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReportMetadata {
    /// `<org_name>`: the reporting organisation.
    pub org_name: String,
    /// `<email>`: the reporter's contact address.
    pub email: String,
    /// `<extra_contact_info>`.
    pub extra_contact_info: Option<String>,
    /// `<report_id>`: unique per reporter.
    pub report_id: String,
    /// `<date_range>`.
    pub date_range: DateRange,
    /// `<error>` elements (reporter's errors processing the policy).
    #[serde(default)]
    pub errors: Vec<String>,
    /// `<generator>` (RFC 9990): the reporting software.
    pub generator: Option<String>,
}

/// The reporting period in seconds since the Unix epoch, UTC (`<date_range>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DateRange {
    /// `<begin>`.
    pub begin: i64,
    /// `<end>`.
    pub end: i64,
}

/// `<policy_published>` (§3.1.1.2). Absent optional tags are `None`, not their defaults:
/// the report says what the reporter wrote.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PolicyPublished {
    /// `<domain>`: where the DMARC record was found.
    pub domain: String,
    /// `<p>`.
    pub p: Option<Disposition>,
    /// `<sp>`.
    pub sp: Option<Disposition>,
    /// `<np>` (RFC 9990).
    pub np: Option<Disposition>,
    /// `<adkim>`.
    pub adkim: Option<Alignment>,
    /// `<aspf>`.
    pub aspf: Option<Alignment>,
    /// `<pct>` (RFC 7489 only; removed in RFC 9990).
    pub pct: Option<u8>,
    /// `<fo>`.
    pub fo: Option<String>,
    /// `<testing>` (RFC 9990): `t=y` in the record.
    pub testing: Option<bool>,
    /// `<discovery_method>` (RFC 9990).
    pub discovery_method: Option<DiscoveryMethod>,
}

word_enum! {
    /// A published policy: `p`, `sp`, `np` (RFC 9989 §4.7).
    pub enum Disposition {
        /// `none`.
        None = "none",
        /// `quarantine`.
        Quarantine = "quarantine",
        /// `reject`.
        Reject = "reject",
    }
}

word_enum! {
    /// The disposition applied to the messages of a record (`ActionDispositionType`).
    pub enum ActionDisposition {
        /// `none`: no action taken.
        None = "none",
        /// `pass`: passed DMARC under an enforcing policy (RFC 9990).
        Pass = "pass",
        /// `quarantine`.
        Quarantine = "quarantine",
        /// `reject`.
        Reject = "reject",
    }
}

word_enum! {
    /// Identifier alignment mode (`adkim`, `aspf`).
    pub enum Alignment {
        /// `r`: relaxed.
        Relaxed = "r" | "relaxed",
        /// `s`: strict.
        Strict = "s" | "strict",
    }
}

word_enum! {
    /// How the policy record was found (RFC 9990 `DiscoveryType`).
    pub enum DiscoveryMethod {
        /// `psl`: RFC 7489 Public Suffix List method.
        Psl = "psl",
        /// `treewalk`: RFC 9989 §4.10 tree walk.
        Treewalk = "treewalk",
    }
}

word_enum! {
    /// DMARC-aligned result of one mechanism (`DMARCResultType`).
    pub enum DmarcResult {
        /// `pass`.
        Pass = "pass",
        /// `fail`.
        Fail = "fail",
    }
}

word_enum! {
    /// Why the applied disposition differs from the policy (`PolicyOverrideType`).
    pub enum PolicyOverride {
        /// `local_policy`.
        LocalPolicy = "local_policy",
        /// `mailing_list`.
        MailingList = "mailing_list",
        /// `other`. RFC 7489's `sampled_out` (removed in RFC 9990) is read as this.
        Other = "other" | "sampled_out",
        /// `policy_test_mode` (RFC 9990).
        PolicyTestMode = "policy_test_mode",
        /// `trusted_forwarder`.
        TrustedForwarder = "trusted_forwarder",
        /// `forwarded` (RFC 7489).
        Forwarded = "forwarded",
    }
}

word_enum! {
    /// DKIM verification result (RFC 8601 §2.7.1).
    pub enum DkimResult {
        /// `none`.
        None = "none",
        /// `pass`.
        Pass = "pass",
        /// `fail`.
        Fail = "fail",
        /// `policy`.
        Policy = "policy",
        /// `neutral`.
        Neutral = "neutral",
        /// `temperror`.
        TempError = "temperror",
        /// `permerror`.
        PermError = "permerror",
    }
}

word_enum! {
    /// SPF verification result (RFC 8601 §2.7.2, RFC 7208 §2.6).
    pub enum SpfResult {
        /// `none`.
        None = "none",
        /// `neutral`.
        Neutral = "neutral",
        /// `pass`.
        Pass = "pass",
        /// `fail`.
        Fail = "fail" | "hardfail",
        /// `softfail`.
        SoftFail = "softfail",
        /// `policy`.
        Policy = "policy",
        /// `temperror`.
        TempError = "temperror",
        /// `permerror`.
        PermError = "permerror",
    }
}

word_enum! {
    /// Which identity SPF checked (`SPFDomainScope`).
    pub enum SpfScope {
        /// `mfrom`: RFC5321.MailFrom.
        MailFrom = "mfrom",
        /// `helo` (RFC 7489 only).
        Helo = "helo",
    }
}

/// One `<record>` (§3.1.1.4..): a set of messages sharing source, identifiers and results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// `<row><source_ip>`.
    pub source_ip: IpAddr,
    /// `<row><count>`.
    pub count: u64,
    /// `<row><policy_evaluated>`.
    pub policy_evaluated: PolicyEvaluated,
    /// `<identifiers>` (`<identities>` in early drafts).
    pub identifiers: Identifiers,
    /// `<auth_results>`.
    pub auth_results: AuthResults,
    /// Record-level extensions and unknown elements.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<Extension>,
}

/// `<policy_evaluated>`: what DMARC concluded and did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PolicyEvaluated {
    /// `<disposition>`; `None` when absent or empty.
    pub disposition: Option<ActionDisposition>,
    /// `<dkim>`: the DMARC-aligned DKIM result.
    pub dkim: Option<DmarcResult>,
    /// `<spf>`: the DMARC-aligned SPF result.
    pub spf: Option<DmarcResult>,
    /// `<reason>` elements.
    #[serde(default)]
    pub reasons: Vec<OverrideReason>,
}

/// `<reason>`: a policy override.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverrideReason {
    /// `<type>`.
    #[serde(rename = "type")]
    pub kind: PolicyOverride,
    /// `<comment>`.
    pub comment: Option<CompactString>,
}

/// `<identifiers>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Identifiers {
    /// `<header_from>`: the RFC5322.From domain.
    pub header_from: CompactString,
    /// `<envelope_from>`: the RFC5321.MailFrom domain.
    pub envelope_from: Option<CompactString>,
    /// `<envelope_to>`: the recipient domain.
    pub envelope_to: Option<CompactString>,
}

/// `<auth_results>`: raw DKIM and SPF results, before alignment.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AuthResults {
    /// One per DKIM signature evaluated.
    #[serde(default)]
    pub dkim: Vec<DkimAuthResult>,
    /// SPF results (RFC 9990 allows one; RFC 7489 reports sometimes carry MAIL FROM and HELO).
    /// The first is stored inline in the record; use it as a slice (`iter`, `len`, `[0]`).
    #[serde(default)]
    pub spf: SmallVec<[SpfAuthResult; 1]>,
}

/// `<auth_results><dkim>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DkimAuthResult {
    /// `<domain>`: the `d=` tag.
    pub domain: CompactString,
    /// `<selector>`: the `s=` tag.
    pub selector: Option<CompactString>,
    /// `<result>`.
    pub result: DkimResult,
    /// `<human_result>`.
    pub human_result: Option<CompactString>,
}

/// `<auth_results><spf>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpfAuthResult {
    /// `<domain>`: the checked domain.
    pub domain: CompactString,
    /// `<scope>`; `None` when absent (RFC 9990 default: mfrom).
    pub scope: Option<SpfScope>,
    /// `<result>`.
    pub result: SpfResult,
    /// `<human_result>`.
    pub human_result: Option<CompactString>,
}

/// An extension element (RFC 9990 §3.1.1.3), or an unknown element where the schema
/// allows any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension {
    /// The `name` attribute, or the element's local name when there is none.
    pub name: String,
    /// The `definition` attribute (a URI).
    pub definition: Option<String>,
    /// The element's content as raw XML, trimmed.
    pub content: String,
}

/// The duplicate key of an aggregate report: the same reporter sending the same report
/// (id, domain, period) again is a duplicate, whatever the container.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ReportKey {
    /// `<org_name>`, trimmed.
    pub org_name: String,
    /// `<report_id>`, trimmed.
    pub report_id: String,
    /// `<policy_published><domain>`, lowercased without a trailing dot.
    pub policy_domain: String,
    /// `<date_range><begin>`.
    pub begin: i64,
    /// `<date_range><end>`.
    pub end: i64,
}

impl AggregateReport {
    /// The duplicate key the store uses (reporter, report id, policy domain, period).
    pub fn report_key(&self) -> ReportKey {
        ReportKey {
            org_name: self.metadata.org_name.trim().to_string(),
            report_id: self.metadata.report_id.trim().to_string(),
            policy_domain: self
                .policy_published
                .domain
                .trim()
                .trim_end_matches('.')
                .to_ascii_lowercase(),
            begin: self.metadata.date_range.begin,
            end: self.metadata.date_range.end,
        }
    }

    /// Total number of messages over all records.
    pub fn message_count(&self) -> u64 {
        self.records
            .iter()
            .fold(0u64, |acc, r| acc.saturating_add(r.count))
    }
}
