//! `dmarc summary`: what the stored reports say, per domain and period.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use dmarc_store::{Granularity, Store, Summary, SummaryQuery};

use super::ingest::DbArgs;

/// How to split time in the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum By {
    /// One row per domain and UTC day.
    Day,
    /// One row per domain and month.
    Month,
    /// One row per domain for the whole range.
    Total,
}

/// Which table `--csv` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CsvTable {
    /// Per domain and period.
    Domains,
    /// Top sources.
    Sources,
    /// Failing sources.
    Failing,
    /// Reporters.
    Reporters,
    /// SMTP TLS results per policy domain.
    Tls,
}

/// Arguments of `dmarc summary`.
#[derive(Debug, clap::Args)]
pub struct SummaryArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Only this policy domain.
    #[arg(long, value_name = "DOMAIN")]
    domain: Option<String>,
    /// Only reports whose period's middle falls on or after this day (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    since: Option<i64>,
    /// Only reports whose period's middle falls on or before this day (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    until: Option<i64>,
    /// How to split time.
    #[arg(long, value_enum, default_value_t = By::Month)]
    by: By,
    /// How many sources to list.
    #[arg(long, default_value_t = 10, value_name = "N")]
    top: usize,
    /// Print the summary as one JSON object.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print one table as CSV (see --csv-table).
    #[arg(long)]
    csv: bool,
    /// The table --csv prints.
    #[arg(long, value_enum, default_value_t = CsvTable::Domains, requires = "csv")]
    csv_table: CsvTable,
    /// Do not look up reverse-DNS names of sources (cached names are still shown).
    #[arg(long)]
    no_rdns: bool,
    /// Where reverse-DNS answers come from.
    #[command(flatten)]
    dns: crate::dns_args::DnsArgs,
}

pub(crate) use dmarc_store::time::{format_utc, now, parse_date};

fn day(ts: i64) -> String {
    format_utc(ts).chars().take(10).collect()
}

/// Looks up the reverse-DNS names the summary lists and are not cached yet.
fn fill_rdns(args: &SummaryArgs, store: &mut Store, summary: &Summary) -> anyhow::Result<()> {
    let ips = Store::summary_ips(summary);
    if ips.is_empty() {
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the DNS runtime")?;
    // The store is not used inside the runtime: PostgreSQL's client runs its own.
    let missing = store.rdns_needing_lookup(&ips, now())?;
    let found = runtime.block_on(async {
        let lookup = args.dns.lookup()?;
        Ok::<_, anyhow::Error>(dmarc_owner::rdns::lookup_all(&lookup, &missing).await)
    })?;
    store.cache_rdns_all(&found, now())?;
    Ok(())
}

/// Runs `dmarc summary`.
pub fn run(args: SummaryArgs) -> anyhow::Result<ExitCode> {
    if let (Some(s), Some(u)) = (args.since, args.until)
        && u < s
    {
        bail!("--until is before --since");
    }
    let mut store = args.db.open()?;
    let query = SummaryQuery {
        domain: args.domain.clone(),
        since: args.since,
        until: args.until.map(|u| u + 86_400),
        granularity: match args.by {
            By::Day => Granularity::Day,
            By::Month => Granularity::Month,
            By::Total => Granularity::Total,
        },
        top: args.top.max(1),
    };
    let mut summary = store.summary(&query)?;
    if !args.no_rdns {
        match fill_rdns(&args, &mut store, &summary) {
            Ok(()) => summary = store.summary(&query)?,
            Err(e) => eprintln!("dmarc: reverse DNS unavailable ({e:#}); use --no-rdns to skip it"),
        }
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &summary)?;
        writeln!(out)?;
    } else if args.csv {
        write_csv(&mut out, &summary, args.csv_table)?;
    } else {
        write_human(&mut out, &summary, store.location())?;
    }
    out.flush().context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}

fn pct(part: i64, whole: i64) -> String {
    if whole <= 0 {
        "-".to_string()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

/// A plain-text table: left-aligned text, right-aligned numbers.
struct Table {
    header: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(cols: &[(&'static str, bool)]) -> Table {
        Table {
            header: cols.iter().map(|c| c.0).collect(),
            right: cols.iter().map(|c| c.1).collect(),
            rows: Vec::new(),
        }
    }

    fn write(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let n = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: Vec<&str>| {
            let mut s = String::new();
            for (i, c) in cells.iter().enumerate() {
                let w = widths.get(i).copied().unwrap_or(0);
                let pad = w.saturating_sub(c.chars().count());
                if self.right.get(i).copied().unwrap_or(false) {
                    s.push_str(&" ".repeat(pad));
                    s.push_str(c);
                } else {
                    s.push_str(c);
                    if i + 1 < n {
                        s.push_str(&" ".repeat(pad));
                    }
                }
                if i + 1 < n {
                    s.push_str("  ");
                }
            }
            s.trim_end().to_string()
        };
        writeln!(out, "{}", line(self.header.clone()))?;
        for r in &self.rows {
            writeln!(out, "{}", line(r.iter().map(String::as_str).collect()))?;
        }
        Ok(())
    }
}

/// Replaces control characters so a hostile name cannot rewrite the terminal.
pub(crate) fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

fn write_human(out: &mut dyn Write, s: &Summary, location: &str) -> std::io::Result<()> {
    let t = &s.totals;
    writeln!(
        out,
        "Report store {location}: {} aggregate report(s) with {} record(s), {} failure \
         report(s), {} SMTP TLS report(s), {} rejected input(s)",
        t.aggregate_reports, t.aggregate_records, t.failure_reports, t.tls_reports, t.rejected
    )?;
    if s.domains.is_empty() {
        writeln!(out, "\nNo aggregate reports match.")?;
    } else {
        writeln!(out, "\nDomains")?;
        // RFC 9990's "pass" disposition and missing or unknown ones get a column only
        // when some report has them.
        let has_pass = s.domains.iter().any(|d| d.disposition_pass > 0);
        let has_other = s.domains.iter().any(|d| d.disposition_other > 0);
        let mut cols = vec![
            ("DOMAIN", false),
            ("PERIOD", false),
            ("REPORTS", true),
            ("MESSAGES", true),
            ("DMARC PASS", true),
            ("SPF ALIGNED", true),
            ("DKIM ALIGNED", true),
            ("NONE", true),
            ("QUARANTINE", true),
            ("REJECT", true),
        ];
        if has_pass {
            cols.push(("PASS", true));
        }
        if has_other {
            cols.push(("OTHER", true));
        }
        let mut tb = Table::new(&cols);
        for d in &s.domains {
            let mut row = vec![
                clean(&d.domain),
                d.period.clone(),
                d.reports.to_string(),
                d.messages.to_string(),
                pct(d.dmarc_pass, d.messages),
                pct(d.spf_aligned_pass, d.messages),
                pct(d.dkim_aligned_pass, d.messages),
                d.disposition_none.to_string(),
                d.disposition_quarantine.to_string(),
                d.disposition_reject.to_string(),
            ];
            if has_pass {
                row.push(d.disposition_pass.to_string());
            }
            if has_other {
                row.push(d.disposition_other.to_string());
            }
            tb.rows.push(row);
        }
        tb.write(out)?;

        writeln!(out, "\nTop sources by volume")?;
        let mut tb = Table::new(&[
            ("SOURCE", false),
            ("REVERSE DNS", false),
            ("MESSAGES", true),
            ("DMARC PASS", true),
            ("SPF ALIGNED", true),
            ("DKIM ALIGNED", true),
            ("REPORTERS", true),
        ]);
        for x in &s.top_sources {
            tb.rows.push(vec![
                clean(&x.ip),
                x.rdns.as_deref().map_or("-".into(), clean),
                x.messages.to_string(),
                pct(x.dmarc_pass, x.messages),
                pct(x.spf_aligned_pass, x.messages),
                pct(x.dkim_aligned_pass, x.messages),
                x.reporters.to_string(),
            ]);
        }
        tb.write(out)?;

        writeln!(out, "\nSources failing DMARC")?;
        if s.failing_sources.is_empty() {
            writeln!(out, "none")?;
        } else {
            let mut tb = Table::new(&[
                ("SOURCE", false),
                ("REVERSE DNS", false),
                ("FAILING", true),
                ("REJECTED", true),
                ("QUARANTINED", true),
                ("HEADER FROM", false),
                ("ENVELOPE FROM", false),
            ]);
            for x in &s.failing_sources {
                let from = if x.header_from_count > 1 {
                    format!(
                        "{} (+{} more)",
                        clean(&x.header_from),
                        x.header_from_count - 1
                    )
                } else {
                    clean(&x.header_from)
                };
                tb.rows.push(vec![
                    clean(&x.ip),
                    x.rdns.as_deref().map_or("-".into(), clean),
                    x.failing.to_string(),
                    x.rejected.to_string(),
                    x.quarantined.to_string(),
                    from,
                    x.envelope_from.as_deref().map_or("-".into(), clean),
                ]);
            }
            tb.write(out)?;
        }

        writeln!(out, "\nReporters")?;
        let mut tb = Table::new(&[
            ("REPORTER", false),
            ("REPORTS", true),
            ("MESSAGES", true),
            ("FIRST", false),
            ("LAST", false),
        ]);
        for r in &s.reporters {
            tb.rows.push(vec![
                clean(&r.org_name),
                r.reports.to_string(),
                r.messages.to_string(),
                day(r.first),
                day(r.last),
            ]);
        }
        tb.write(out)?;
    }
    if !s.failure_reports.is_empty() {
        writeln!(out, "\nFailure reports")?;
        let mut tb = Table::new(&[("REPORTED DOMAIN", false), ("REPORTS", true)]);
        for (d, n) in &s.failure_reports {
            let d = if d.is_empty() { "(unnamed)" } else { d };
            tb.rows.push(vec![clean(d), n.to_string()]);
        }
        tb.write(out)?;
    }
    if !s.tls.is_empty() {
        writeln!(out, "\nSMTP TLS reports")?;
        let mut tb = Table::new(&[
            ("POLICY DOMAIN", false),
            ("REPORTS", true),
            ("SUCCESSFUL", true),
            ("FAILED", true),
            ("FAILURE RATE", true),
        ]);
        for x in &s.tls {
            let d = if x.domain.is_empty() {
                "(unnamed)"
            } else {
                &x.domain
            };
            tb.rows.push(vec![
                clean(d),
                x.reports.to_string(),
                x.successful_sessions.to_string(),
                x.failed_sessions.to_string(),
                pct(
                    x.failed_sessions,
                    x.successful_sessions.saturating_add(x.failed_sessions),
                ),
            ]);
        }
        tb.write(out)?;
    }
    if t.rejected > 0 {
        writeln!(
            out,
            "\n{} input(s) could not be read: see `dmarc report rejected`",
            t.rejected
        )?;
    }
    Ok(())
}

/// One CSV field (RFC 4180 quoting; text that a spreadsheet would run as a formula is
/// prefixed with `'`).
fn csv_field(s: &str, text: bool) -> String {
    let s = if text && s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn write_csv(out: &mut dyn Write, s: &Summary, table: CsvTable) -> std::io::Result<()> {
    let mut row = |cells: &[(&str, bool)]| -> std::io::Result<()> {
        let line: Vec<String> = cells.iter().map(|(c, t)| csv_field(c, *t)).collect();
        writeln!(out, "{}", line.join(","))
    };
    let n = |v: i64| v.to_string();
    let r = |p: i64, w: i64| format!("{:.4}", if w > 0 { p as f64 / w as f64 } else { 0.0 });
    match table {
        CsvTable::Domains => {
            row(&[
                ("domain", false),
                ("period", false),
                ("reports", false),
                ("messages", false),
                ("dmarc_pass", false),
                ("dmarc_pass_rate", false),
                ("spf_aligned_pass", false),
                ("spf_aligned_rate", false),
                ("dkim_aligned_pass", false),
                ("dkim_aligned_rate", false),
                ("disposition_none", false),
                ("disposition_quarantine", false),
                ("disposition_reject", false),
                ("disposition_pass", false),
                ("disposition_other", false),
            ])?;
            for d in &s.domains {
                row(&[
                    (&d.domain, true),
                    (&d.period, true),
                    (&n(d.reports), false),
                    (&n(d.messages), false),
                    (&n(d.dmarc_pass), false),
                    (&r(d.dmarc_pass, d.messages), false),
                    (&n(d.spf_aligned_pass), false),
                    (&r(d.spf_aligned_pass, d.messages), false),
                    (&n(d.dkim_aligned_pass), false),
                    (&r(d.dkim_aligned_pass, d.messages), false),
                    (&n(d.disposition_none), false),
                    (&n(d.disposition_quarantine), false),
                    (&n(d.disposition_reject), false),
                    (&n(d.disposition_pass), false),
                    (&n(d.disposition_other), false),
                ])?;
            }
        }
        CsvTable::Sources => {
            row(&[
                ("source_ip", false),
                ("rdns", false),
                ("messages", false),
                ("dmarc_pass", false),
                ("dmarc_pass_rate", false),
                ("spf_aligned_pass", false),
                ("dkim_aligned_pass", false),
                ("reporters", false),
            ])?;
            for x in &s.top_sources {
                row(&[
                    (&x.ip, true),
                    (x.rdns.as_deref().unwrap_or(""), true),
                    (&n(x.messages), false),
                    (&n(x.dmarc_pass), false),
                    (&r(x.dmarc_pass, x.messages), false),
                    (&n(x.spf_aligned_pass), false),
                    (&n(x.dkim_aligned_pass), false),
                    (&n(x.reporters), false),
                ])?;
            }
        }
        CsvTable::Failing => {
            row(&[
                ("source_ip", false),
                ("rdns", false),
                ("failing", false),
                ("rejected", false),
                ("quarantined", false),
                ("header_from", false),
                ("header_from_count", false),
                ("envelope_from", false),
            ])?;
            for x in &s.failing_sources {
                row(&[
                    (&x.ip, true),
                    (x.rdns.as_deref().unwrap_or(""), true),
                    (&n(x.failing), false),
                    (&n(x.rejected), false),
                    (&n(x.quarantined), false),
                    (&x.header_from, true),
                    (&n(x.header_from_count), false),
                    (x.envelope_from.as_deref().unwrap_or(""), true),
                ])?;
            }
        }
        CsvTable::Reporters => {
            row(&[
                ("reporter", false),
                ("reports", false),
                ("messages", false),
                ("first", false),
                ("last", false),
            ])?;
            for x in &s.reporters {
                row(&[
                    (&x.org_name, true),
                    (&n(x.reports), false),
                    (&n(x.messages), false),
                    (&format_utc(x.first), false),
                    (&format_utc(x.last), false),
                ])?;
            }
        }
        CsvTable::Tls => {
            row(&[
                ("policy_domain", false),
                ("reports", false),
                ("successful_sessions", false),
                ("failed_sessions", false),
            ])?;
            for x in &s.tls {
                row(&[
                    (&x.domain, true),
                    (&n(x.reports), false),
                    (&n(x.successful_sessions), false),
                    (&n(x.failed_sessions), false),
                ])?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting() {
        assert_eq!(csv_field("a,b", true), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\"", true), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()", true), "'=cmd()");
        assert_eq!(csv_field("-5", false), "-5");
    }
}
