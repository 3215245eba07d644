//! `dmarc report`: read DMARC aggregate, failure and SMTP TLS reports.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use dmarc_report::aggregate::{
    AggregateReport, DkimAuthResult, Extension, OverrideReason, Record, SpfAuthResult,
};
use dmarc_report::{FailureReport, Limits, Parsed, ParsedReport, TlsReport};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// Arguments of `dmarc report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    command: ReportCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ReportCommand {
    /// Parse report files (XML, JSON, gzip, zip, email, mbox) and print what they contain.
    ///
    /// One line per report found; an unreadable input gives an error line and exit status
    /// 1, and the other inputs are still read.
    Parse(ParseArgs),
    /// List the inputs the report store kept because they could not be read.
    Rejected(super::rejected::RejectedArgs),
    /// Make the aggregate reports of closed periods from the stored observations (and,
    /// with `[failure] enabled`, the failure reports of the queued candidates) and send them
    /// to the rua= (ruf=) destinations published now (or write them, with --dry-run).
    ///
    /// Each destination's attempt is recorded in the store: a report is never sent twice
    /// to one destination, and a run stopped anywhere resumes where it stopped. The exit
    /// status is 1 when a delivery failed for good in this run (a 5xx answer, or the last
    /// attempt of a temporary failure).
    Send(super::report_send::SendArgs),
    /// Read bounces of report mail (delivery status notifications, RFC 3464, from files,
    /// directories or maildirs that the envelope sender's mail lands in): each permanent
    /// failure marks its delivery failed and counts towards suppressing the address.
    Bounces(super::report_send::BouncesArgs),
}

#[derive(Debug, clap::Args)]
struct ParseArgs {
    /// Report files.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Print one JSON object per line instead of a summary.
    #[arg(long)]
    json: bool,
}

/// Runs `dmarc report ...`.
pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ReportCommand::Parse(p) => parse(p),
        ReportCommand::Rejected(r) => super::rejected::run(r),
        ReportCommand::Send(s) => super::report_send::run(s),
        ReportCommand::Bounces(b) => super::report_send::bounces(b),
    }
}

fn parse(args: ParseArgs) -> anyhow::Result<ExitCode> {
    let limits = Limits::default();
    // One buffer over standard output: a report's JSON line is written in pieces as it
    // is serialised (never built in memory first).
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut failed = false;
    for path in &args.files {
        let file = path.display().to_string();
        let results = match dmarc_ingest::read_bounded(path, "report file", limits.max_input_size) {
            Ok(bytes) => dmarc_report::parse_named(&file, &bytes, &limits),
            Err(e) => {
                failed = true;
                let msg = e.to_string();
                if args.json {
                    serde_json::to_writer(
                        &mut out,
                        &ErrorLine {
                            error: &msg,
                            file: &file,
                            source: None,
                        },
                    )?;
                    out.write_all(b"\n")?;
                } else {
                    writeln!(out, "{file}: error: {msg}")?;
                }
                continue;
            }
        };
        for r in results {
            match r {
                Ok(p) => {
                    if args.json {
                        write_json_line(&mut out, &file, &p)?;
                    } else {
                        writeln!(out, "{}", summary(&p))?;
                    }
                }
                Err(e) => {
                    failed = true;
                    if args.json {
                        let line = ErrorLine {
                            error: &e.to_string(),
                            file: &file,
                            source: Some(&e.path().to_string()),
                        };
                        serde_json::to_writer(&mut out, &line)?;
                        out.write_all(b"\n")?;
                    } else {
                        writeln!(out, "error: {e}")?;
                    }
                }
            }
        }
    }
    out.flush().context("writing to stdout")?;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// An error line of `dmarc report parse --json` (keys sorted, like the report lines).
#[derive(serde::Serialize)]
struct ErrorLine<'a> {
    error: &'a str,
    file: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
}

/// Writes one report as a JSON line, streamed from the parsed model (an aggregate report
/// can hold a million records). Every map's keys come out sorted, the order the output
/// has always had.
fn write_json_line(out: &mut impl Write, file: &str, p: &Parsed) -> anyhow::Result<()> {
    let source = p.source.to_string();
    let source = source.as_str();
    match &p.report {
        ParsedReport::Aggregate(a) => {
            serde_json::to_writer(&mut *out, &AggregateJson { a, file, source })?
        }
        ParsedReport::Failure(f) => {
            serde_json::to_writer(&mut *out, &FailureJson { f, file, source })?
        }
        ParsedReport::SmtpTls(t) => serde_json::to_writer(&mut *out, &TlsJson { t, file, source })?,
    }
    out.write_all(b"\n")?;
    Ok(())
}

/// An optional word (`pass`, `reject`, ...) as its text, or `null`.
struct Word<'a, T>(&'a Option<T>);

impl<T: std::fmt::Display> Serialize for Word<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(w) => s.collect_str(w),
            None => s.serialize_none(),
        }
    }
}

/// A list whose items are serialised through `f` (borrowed, nothing collected).
struct ListOf<'a, T, F>(&'a [T], F);

impl<'a, T, F, J> Serialize for ListOf<'a, T, F>
where
    F: Fn(&'a T) -> J,
    J: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for item in self.0 {
            seq.serialize_element(&(self.1)(item))?;
        }
        seq.end()
    }
}

/// The text of an optional word (the human summary).
fn word<T: std::fmt::Display>(v: &Option<T>) -> Option<String> {
    v.as_ref().map(ToString::to_string)
}

/// `dmarc report parse --json` of an aggregate report, straight from the model. Every map
/// is written with its keys sorted, as for the other kinds.
struct AggregateJson<'a> {
    a: &'a AggregateReport,
    file: &'a str,
    source: &'a str,
}

impl Serialize for AggregateJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let a = self.a;
        let m = &a.metadata;
        let mut map = s.serialize_map(Some(16))?;
        map.serialize_entry("begin", &m.date_range.begin)?;
        map.serialize_entry("email", &m.email)?;
        map.serialize_entry("end", &m.date_range.end)?;
        map.serialize_entry("errors", &m.errors)?;
        map.serialize_entry("extensions", &ListOf(&a.extensions, ExtJson))?;
        map.serialize_entry("extra_contact_info", &m.extra_contact_info)?;
        map.serialize_entry("file", self.file)?;
        map.serialize_entry("generator", &m.generator)?;
        map.serialize_entry("kind", "aggregate")?;
        map.serialize_entry("org_name", &m.org_name)?;
        map.serialize_entry("policy_published", &PolicyJson(a))?;
        map.serialize_entry("records", &ListOf(&a.records, RecordJson))?;
        map.serialize_entry("report_id", &m.report_id)?;
        map.serialize_entry("source", self.source)?;
        map.serialize_entry("version", &a.version)?;
        map.serialize_entry("warnings", &a.warnings)?;
        map.end()
    }
}

struct PolicyJson<'a>(&'a AggregateReport);

impl Serialize for PolicyJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let p = &self.0.policy_published;
        let mut map = s.serialize_map(Some(10))?;
        map.serialize_entry("adkim", &Word(&p.adkim))?;
        map.serialize_entry("aspf", &Word(&p.aspf))?;
        map.serialize_entry("discovery_method", &Word(&p.discovery_method))?;
        map.serialize_entry("domain", &p.domain)?;
        map.serialize_entry("fo", &p.fo)?;
        map.serialize_entry("np", &Word(&p.np))?;
        map.serialize_entry("p", &Word(&p.p))?;
        map.serialize_entry("pct", &p.pct)?;
        map.serialize_entry("sp", &Word(&p.sp))?;
        map.serialize_entry("testing", &p.testing.map(|t| if t { "y" } else { "n" }))?;
        map.end()
    }
}

struct RecordJson<'a>(&'a Record);

impl Serialize for RecordJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let pe = &r.policy_evaluated;
        let mut map = s.serialize_map(Some(11))?;
        map.serialize_entry("auth_results", &AuthResultsJson(r))?;
        map.serialize_entry("count", &r.count)?;
        map.serialize_entry("disposition", &Word(&pe.disposition))?;
        map.serialize_entry("dkim", &Word(&pe.dkim))?;
        map.serialize_entry("envelope_from", &r.identifiers.envelope_from)?;
        map.serialize_entry("envelope_to", &r.identifiers.envelope_to)?;
        map.serialize_entry("extensions", &ListOf(&r.extensions, ExtJson))?;
        map.serialize_entry("header_from", &r.identifiers.header_from)?;
        map.serialize_entry("reasons", &ListOf(&pe.reasons, ReasonJson))?;
        map.serialize_entry("source_ip", &Word(&Some(r.source_ip)))?;
        map.serialize_entry("spf", &Word(&pe.spf))?;
        map.end()
    }
}

struct ReasonJson<'a>(&'a OverrideReason);

impl Serialize for ReasonJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("comment", &self.0.comment)?;
        map.serialize_entry("type", &Word(&Some(&self.0.kind)))?;
        map.end()
    }
}

struct AuthResultsJson<'a>(&'a Record);

impl Serialize for AuthResultsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ar = &self.0.auth_results;
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("dkim", &ListOf(&ar.dkim, DkimJson))?;
        map.serialize_entry("spf", &ListOf(&ar.spf, SpfJson))?;
        map.end()
    }
}

struct DkimJson<'a>(&'a DkimAuthResult);

impl Serialize for DkimJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let d = self.0;
        let mut map = s.serialize_map(Some(4))?;
        map.serialize_entry("domain", &d.domain)?;
        map.serialize_entry("human_result", &d.human_result)?;
        map.serialize_entry("result", &Word(&Some(&d.result)))?;
        map.serialize_entry("selector", &d.selector)?;
        map.end()
    }
}

struct SpfJson<'a>(&'a SpfAuthResult);

impl Serialize for SpfJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let x = self.0;
        let mut map = s.serialize_map(Some(4))?;
        map.serialize_entry("domain", &x.domain)?;
        map.serialize_entry("human_result", &x.human_result)?;
        map.serialize_entry("result", &Word(&Some(&x.result)))?;
        map.serialize_entry("scope", &Word(&x.scope))?;
        map.end()
    }
}

/// An extension, keys sorted (`content`, `definition`, `name`).
struct ExtJson<'a>(&'a Extension);

impl Serialize for ExtJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("content", &self.0.content)?;
        map.serialize_entry("definition", &self.0.definition)?;
        map.serialize_entry("name", &self.0.name)?;
        map.end()
    }
}

/// `dmarc report parse --json` of a failure report, straight from the model, keys sorted.
struct FailureJson<'a> {
    f: &'a FailureReport,
    file: &'a str,
    source: &'a str,
}

impl Serialize for FailureJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = self.f;
        let mut map = s.serialize_map(Some(35))?;
        map.serialize_entry("arrival_date", &f.arrival_date)?;
        map.serialize_entry("arrival_timestamp", &f.arrival_timestamp)?;
        map.serialize_entry("auth_failure", &f.auth_failure)?;
        map.serialize_entry("authentication_results", &f.authentication_results)?;
        map.serialize_entry("delivery_result", &f.delivery_result)?;
        map.serialize_entry("dkim_adsp_dns", &f.dkim_adsp_dns)?;
        map.serialize_entry("dkim_canonicalized_body", &f.dkim_canonicalized_body)?;
        map.serialize_entry("dkim_canonicalized_header", &f.dkim_canonicalized_header)?;
        map.serialize_entry("dkim_domain", &f.dkim_domain)?;
        map.serialize_entry("dkim_identity", &f.dkim_identity)?;
        map.serialize_entry("dkim_selector", &f.dkim_selector)?;
        map.serialize_entry("dkim_selector_dns", &f.dkim_selector_dns)?;
        map.serialize_entry("feedback_type", &f.feedback_type)?;
        map.serialize_entry("file", self.file)?;
        map.serialize_entry("human_readable", &f.human_readable)?;
        map.serialize_entry(
            "identity_alignment",
            &f.identity_alignment.as_ref().map(|a| a.as_str()),
        )?;
        map.serialize_entry("incidents", &f.incidents)?;
        map.serialize_entry("kind", "failure")?;
        map.serialize_entry("original_body_included", &f.original_body_included)?;
        map.serialize_entry("original_envelope_id", &f.original_envelope_id)?;
        map.serialize_entry("original_headers", &f.original_headers)?;
        map.serialize_entry("original_mail_from", &f.original_mail_from)?;
        map.serialize_entry("original_rcpt_to", &f.original_rcpt_to)?;
        map.serialize_entry("other_fields", &f.other_fields)?;
        map.serialize_entry("reported_domain", &f.reported_domain)?;
        map.serialize_entry("reported_uri", &f.reported_uri)?;
        map.serialize_entry("reporting_mta", &f.reporting_mta)?;
        map.serialize_entry("source", self.source)?;
        map.serialize_entry("source_ip", &f.source_ip)?;
        map.serialize_entry("source_port", &f.source_port)?;
        map.serialize_entry("spf_dns", &f.spf_dns)?;
        map.serialize_entry("subject", &f.subject)?;
        map.serialize_entry("user_agent", &f.user_agent)?;
        map.serialize_entry("version", &f.version)?;
        map.serialize_entry("warnings", &f.warnings)?;
        map.end()
    }
}

/// `dmarc report parse --json` of an SMTP TLS report: the model's own `Serialize` (its
/// fields are declared in key order) with `file`, `kind` and `source` in their sorted places.
struct TlsJson<'a> {
    t: &'a TlsReport,
    file: &'a str,
    source: &'a str,
}

impl Serialize for TlsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.t;
        let mut map = s.serialize_map(Some(9))?;
        map.serialize_entry("contact_info", &t.contact_info)?;
        map.serialize_entry("date_range", &t.date_range)?;
        map.serialize_entry("file", self.file)?;
        map.serialize_entry("kind", "smtp_tls")?;
        map.serialize_entry("organization_name", &t.organization_name)?;
        map.serialize_entry("policies", &t.policies)?;
        map.serialize_entry("report_id", &t.report_id)?;
        map.serialize_entry("source", self.source)?;
        map.serialize_entry("warnings", &t.warnings)?;
        map.end()
    }
}

fn summary(p: &Parsed) -> String {
    let src = &p.source;
    let warn = |w: &[String]| {
        if w.is_empty() {
            String::new()
        } else {
            format!("; {} warning(s), first: {}", w.len(), w[0])
        }
    };
    match &p.report {
        ParsedReport::Aggregate(a) => {
            let pass = a
                .records
                .iter()
                .filter(|r| {
                    use dmarc_report::aggregate::DmarcResult::Pass;
                    r.policy_evaluated.dkim == Some(Pass) || r.policy_evaluated.spf == Some(Pass)
                })
                .fold(0u64, |n, r| n.saturating_add(r.count));
            let total = a.message_count();
            format!(
                "{src}: aggregate report from {} (id {}) for {} (p={}), {} to {} UTC: {} record(s), \
                 {total} message(s), {pass} passing DMARC, {} failing{}",
                a.metadata.org_name,
                a.metadata.report_id,
                a.policy_published.domain,
                word(&a.policy_published.p).as_deref().unwrap_or("?"),
                dmarc_store::time::format_utc(a.metadata.date_range.begin),
                dmarc_store::time::format_utc(a.metadata.date_range.end),
                a.records.len(),
                total - pass,
                warn(&a.warnings)
            )
        }
        ParsedReport::Failure(f) => format!(
            "{src}: failure report ({}) for {}: source {}, auth failure {}, identity alignment {}, \
             arrived {}{}",
            word(&f.feedback_type).as_deref().unwrap_or("unknown type"),
            if f.reported_domain.is_empty() {
                "unknown domain".to_string()
            } else {
                f.reported_domain.join(", ")
            },
            f.source_ip
                .map_or("unknown".to_string(), |ip| ip.to_string()),
            word(&f.auth_failure).as_deref().unwrap_or("unstated"),
            f.identity_alignment.map_or("unstated", |a| a.as_str()),
            f.arrival_date.as_deref().unwrap_or("unknown"),
            warn(&f.warnings)
        ),
        ParsedReport::SmtpTls(t) => {
            let ok: u64 = t
                .policies
                .iter()
                .map(|p| p.summary.total_successful_session_count)
                .sum();
            let bad: u64 = t
                .policies
                .iter()
                .map(|p| p.summary.total_failure_session_count)
                .sum();
            let domains: Vec<&str> = t
                .policies
                .iter()
                .filter_map(|p| p.policy.policy_domain.as_deref())
                .collect();
            format!(
                "{src}: SMTP TLS report from {} (id {}) for {}, {} to {}: {} policies, {ok} \
                 successful and {bad} failed session(s){}",
                t.organization_name,
                t.report_id,
                if domains.is_empty() {
                    "no named domain".to_string()
                } else {
                    domains.join(", ")
                },
                t.date_range.start_datetime,
                t.date_range.end_datetime,
                t.policies.len(),
                warn(&t.warnings)
            )
        }
    }
}
