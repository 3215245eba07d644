//! DMARC aggregate (RFC 7489 Appendix C, RFC 9990), failure (RFC 5965, RFC 6591, RFC 9991)
//! and SMTP TLS (RFC 8460) reports: parse from whatever they arrive in, and generate.
//!
//! Bytes in, values out: [`parse`] takes one input (a file's bytes) and returns one result
//! per report found inside it. The input may be raw XML or JSON, gzip, zip, an email message
//! (report attached or inline, any transfer encoding) or an mbox; formats are detected by
//! their content, never by declared types, and unpacked under hard [`Limits`].
//!
//! ```
//! let xml = br#"<feedback>
//!   <report_metadata><org_name>example.net</org_name><email>d@example.net</email>
//!     <report_id>42</report_id><date_range><begin>0</begin><end>86399</end></date_range>
//!   </report_metadata>
//!   <policy_published><domain>example.com</domain><p>reject</p></policy_published>
//!   <record><row><source_ip>192.0.2.1</source_ip><count>3</count>
//!     <policy_evaluated><disposition>reject</disposition><dkim>fail</dkim><spf>fail</spf>
//!     </policy_evaluated></row>
//!     <identifiers><header_from>example.com</header_from></identifiers>
//!     <auth_results><spf><domain>example.com</domain><result>fail</result></spf></auth_results>
//!   </record></feedback>"#;
//! let results = dmarc_report::parse(xml, &dmarc_report::Limits::default());
//! let Ok(found) = &results[0] else { panic!() };
//! let dmarc_report::ParsedReport::Aggregate(report) = &found.report else { panic!() };
//! assert_eq!(report.records[0].count, 3);
//! assert_eq!(report.report_key().policy_domain, "example.com");
//! ```
#![warn(clippy::unwrap_used)]
#![warn(missing_docs)]

pub mod aggregate;
pub mod container;
mod error;
pub mod failure;
mod limits;
pub mod time;
pub mod tls;
mod words;

use serde::{Deserialize, Serialize};

pub use aggregate::{AggregateReport, ReportKey};
pub use error::{LimitKind, ReportError, SourcePath};
pub use failure::FailureReport;
pub use limits::Limits;
pub use tls::TlsReport;
pub use words::UnknownWord;

/// A report of any kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)]
pub enum ParsedReport {
    /// A DMARC aggregate report.
    Aggregate(AggregateReport),
    /// A DMARC failure report (ARF) or failure notice.
    Failure(FailureReport),
    /// An SMTP TLS report.
    SmtpTls(TlsReport),
}

impl ParsedReport {
    /// `"aggregate"`, `"failure"` or `"smtp_tls"`.
    pub fn kind(&self) -> &'static str {
        match self {
            ParsedReport::Aggregate(_) => "aggregate",
            ParsedReport::Failure(_) => "failure",
            ParsedReport::SmtpTls(_) => "smtp_tls",
        }
    }

    /// What the parser tolerated while reading this report.
    pub fn warnings(&self) -> &[String] {
        match self {
            ParsedReport::Aggregate(r) => &r.warnings,
            ParsedReport::Failure(r) => &r.warnings,
            ParsedReport::SmtpTls(r) => &r.warnings,
        }
    }

    pub(crate) fn warnings_mut(&mut self) -> &mut Vec<String> {
        match self {
            ParsedReport::Aggregate(r) => &mut r.warnings,
            ParsedReport::Failure(r) => &mut r.warnings,
            ParsedReport::SmtpTls(r) => &mut r.warnings,
        }
    }
}

/// A report and where it was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parsed {
    /// The container path, e.g. `message.eml > attachment report.zip > report.xml`.
    pub source: SourcePath,
    /// The report.
    pub report: ParsedReport,
}

/// Parses every report in one input; the container paths start empty.
///
/// One result per report found (an mbox or a multi-entry zip gives several), or per part
/// that could not be read. Never empty: an input with no report gives one error.
pub fn parse(bytes: &[u8], limits: &Limits) -> Vec<Result<Parsed, ReportError>> {
    parse_at(bytes, limits, SourcePath::default())
}

/// Like [`parse`], with the input's name (typically its file name) as the root of every
/// container path.
pub fn parse_named(name: &str, bytes: &[u8], limits: &Limits) -> Vec<Result<Parsed, ReportError>> {
    parse_at(bytes, limits, SourcePath::root(name))
}

fn parse_at(bytes: &[u8], limits: &Limits, path: SourcePath) -> Vec<Result<Parsed, ReportError>> {
    let mut walk = container::Walk::new(limits);
    walk.any(bytes, &path);
    walk.out
}

/// Parses one email message (e.g. one maildir file) whatever its first bytes look like.
pub fn parse_message(
    name: &str,
    bytes: &[u8],
    limits: &Limits,
) -> Vec<Result<Parsed, ReportError>> {
    let mut walk = container::Walk::new(limits);
    walk.message(bytes, &SourcePath::root(name));
    walk.out
}

/// Parses one aggregate report from its XML (not compressed, not in a message).
pub fn parse_aggregate_xml(xml: &[u8], limits: &Limits) -> Result<AggregateReport, ReportError> {
    aggregate::parse::parse_xml(xml, limits, &SourcePath::default())
}
