//! `dmarc report`: read DMARC aggregate, failure and SMTP TLS reports.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use dmarc_report::aggregate::AggregateReport;
use dmarc_report::{FailureReport, Limits, Parsed, ParsedReport, TlsReport};
use serde_json::{Value, json};

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
    }
}

fn parse(args: ParseArgs) -> anyhow::Result<ExitCode> {
    let limits = Limits::default();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut failed = false;
    for path in &args.files {
        let file = path.display().to_string();
        let results = match dmarc_ingest::read_bounded(path, "report file", limits.max_input_size) {
            Ok(bytes) => dmarc_report::parse_named(&file, &bytes, &limits),
            Err(e) => {
                failed = true;
                let msg = e.to_string();
                if args.json {
                    writeln!(out, "{}", json!({"file": file, "error": msg}))?;
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
                        writeln!(out, "{}", json_line(&file, &p))?;
                    } else {
                        writeln!(out, "{}", summary(&p))?;
                    }
                }
                Err(e) => {
                    failed = true;
                    if args.json {
                        writeln!(
                            out,
                            "{}",
                            json!({"file": file, "source": e.path().to_string(), "error": e.to_string()})
                        )?;
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

fn json_line(file: &str, p: &Parsed) -> Value {
    let mut v = match &p.report {
        ParsedReport::Aggregate(a) => aggregate_json(a),
        ParsedReport::Failure(f) => failure_json(f),
        ParsedReport::SmtpTls(t) => tls_json(t),
    };
    if let Value::Object(m) = &mut v {
        m.insert("kind".into(), p.report.kind().into());
        m.insert("file".into(), file.into());
        m.insert("source".into(), p.source.to_string().into());
    }
    v
}

fn word<T: std::fmt::Display>(v: &Option<T>) -> Value {
    v.as_ref().map_or(Value::Null, |w| w.to_string().into())
}

fn aggregate_json(a: &AggregateReport) -> Value {
    let m = &a.metadata;
    let p = &a.policy_published;
    let records: Vec<Value> = a
        .records
        .iter()
        .map(|r| {
            let pe = &r.policy_evaluated;
            json!({
                "source_ip": r.source_ip.to_string(),
                "count": r.count,
                "disposition": word(&pe.disposition),
                "dkim": word(&pe.dkim),
                "spf": word(&pe.spf),
                "reasons": pe.reasons.iter().map(|x| json!({
                    "type": x.kind.to_string(), "comment": x.comment
                })).collect::<Vec<_>>(),
                "header_from": r.identifiers.header_from,
                "envelope_from": r.identifiers.envelope_from,
                "envelope_to": r.identifiers.envelope_to,
                "auth_results": {
                    "dkim": r.auth_results.dkim.iter().map(|d| json!({
                        "domain": d.domain, "selector": d.selector,
                        "result": d.result.to_string(), "human_result": d.human_result,
                    })).collect::<Vec<_>>(),
                    "spf": r.auth_results.spf.iter().map(|s| json!({
                        "domain": s.domain, "scope": word(&s.scope),
                        "result": s.result.to_string(), "human_result": s.human_result,
                    })).collect::<Vec<_>>(),
                },
                "extensions": r.extensions,
            })
        })
        .collect();
    json!({
        "version": a.version,
        "org_name": m.org_name,
        "email": m.email,
        "extra_contact_info": m.extra_contact_info,
        "report_id": m.report_id,
        "begin": m.date_range.begin,
        "end": m.date_range.end,
        "errors": m.errors,
        "generator": m.generator,
        "policy_published": {
            "domain": p.domain,
            "p": word(&p.p),
            "sp": word(&p.sp),
            "np": word(&p.np),
            "adkim": word(&p.adkim),
            "aspf": word(&p.aspf),
            "pct": p.pct,
            "fo": p.fo,
            "testing": p.testing.map(|t| if t { "y" } else { "n" }),
            "discovery_method": word(&p.discovery_method),
        },
        "records": records,
        "extensions": a.extensions,
        "warnings": a.warnings,
    })
}

fn failure_json(f: &FailureReport) -> Value {
    let mut v = serde_json::to_value(f).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert(
            "identity_alignment".into(),
            f.identity_alignment
                .map_or(Value::Null, |a| a.as_str().into()),
        );
    }
    v
}

fn tls_json(t: &TlsReport) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
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
                word(&a.policy_published.p).as_str().unwrap_or("?"),
                utc(a.metadata.date_range.begin),
                utc(a.metadata.date_range.end),
                a.records.len(),
                total - pass,
                warn(&a.warnings)
            )
        }
        ParsedReport::Failure(f) => format!(
            "{src}: failure report ({}) for {}: source {}, auth failure {}, identity alignment {}, \
             arrived {}{}",
            word(&f.feedback_type).as_str().unwrap_or("unknown type"),
            if f.reported_domain.is_empty() {
                "unknown domain".to_string()
            } else {
                f.reported_domain.join(", ")
            },
            f.source_ip
                .map_or("unknown".to_string(), |ip| ip.to_string()),
            word(&f.auth_failure).as_str().unwrap_or("unstated"),
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

/// `YYYY-MM-DD HH:MM:SS` for Unix seconds (proleptic Gregorian, UTC).
fn utc(ts: i64) -> String {
    dmarc_store::format_utc(ts)
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00");
        assert_eq!(super::utc(1_459_468_800), "2016-04-01 00:00:00");
        assert_eq!(super::utc(951_782_400), "2000-02-29 00:00:00");
    }
}
