//! `dmarc sources`: who sends as a domain, by name, from the stored reports and live DNS.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use dmarc_owner::sources::{SourcesReport, classify, gather, resolve};
use dmarc_proto::dmarc::DomainName;
use dmarc_store::sources::SourceQuery;

use super::ingest::DbArgs;
use super::summary::{clean, parse_date};

/// The window and store flags `dmarc sources` and `dmarc rollout` share.
#[derive(Debug, clap::Args)]
pub struct WindowArgs {
    /// The domain (its subdomains' reports are included).
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    #[command(flatten)]
    pub db: DbArgs,
    /// Only reports whose period's middle falls on or after this day (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub since: Option<i64>,
    /// Only reports whose period's middle falls on or before this day (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub until: Option<i64>,
    /// Where DNS answers (the live SPF and DMARC records, reverse DNS) come from.
    #[command(flatten)]
    pub dns: crate::dns_args::DnsArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

impl WindowArgs {
    /// Reads the store and names the sources; runs `then` with the resolver, inside the
    /// same runtime.
    pub fn load<T>(
        &self,
        then: impl AsyncFnOnce(&dmarc_dns::AnyLookup, &DomainName, SourcesReport) -> T,
    ) -> anyhow::Result<T> {
        if let (Some(s), Some(u)) = (self.since, self.until)
            && u < s
        {
            bail!("--until is before --since");
        }
        let domain = DomainName::new(self.domain.trim().trim_end_matches('.'))
            .with_context(|| format!("{:?} is not a domain name", self.domain))?;
        let mut store = self.db.open()?;
        let query = SourceQuery {
            domain: domain.to_string(),
            since: self.since,
            until: self.until.map(|u| u + 86_400),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("starting the DNS runtime")?;
        // The store is used only outside the runtime: PostgreSQL's client runs its own.
        let gathered = gather(&mut store, &domain, &query).context("reading the report store")?;
        let lookup = runtime.block_on(async { self.dns.lookup() })?;
        let resolved = runtime.block_on(resolve(&lookup, &gathered));
        let report =
            classify(&mut store, gathered, resolved).context("reading the report store")?;
        Ok(runtime.block_on(then(&lookup, &domain, report)))
    }
}

/// Arguments of `dmarc sources`.
#[derive(Debug, clap::Args)]
pub struct SourcesArgs {
    #[command(flatten)]
    window: WindowArgs,
}

/// Runs `dmarc sources`.
pub fn run(args: SourcesArgs) -> anyhow::Result<ExitCode> {
    let report = args.window.load(async |_, _, r| r)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.window.json {
        serde_json::to_writer_pretty(&mut out, &report.sources)?;
        writeln!(out)?;
    } else {
        write_human(&mut out, &report)?;
    }
    out.flush().context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}

fn pct(part: i64, whole: i64) -> String {
    if whole <= 0 {
        "-".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

fn write_human(out: &mut dyn Write, r: &SourcesReport) -> std::io::Result<()> {
    writeln!(
        out,
        "{}: {} message(s) in {} report row(s) from {} source(s)",
        r.domain,
        r.messages,
        r.rows,
        r.sources.len()
    )?;
    if r.sources.is_empty() {
        writeln!(out, "No aggregate reports match.")?;
        return Ok(());
    }
    for s in &r.sources {
        writeln!(
            out,
            "\n{} [{}]: {} message(s), DMARC pass {} ({}), {} address(es)",
            clean(&s.name),
            s.kind.as_str(),
            s.messages,
            s.dmarc_pass,
            pct(s.dmarc_pass, s.messages),
            s.ips.len()
        )?;
        let shown: Vec<String> = s.ips.iter().take(8).map(|i| clean(i)).collect();
        let more = s.ips.len().saturating_sub(shown.len());
        writeln!(
            out,
            "  addresses: {}{}",
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        )?;
        if let Some(a) = s.addresses.first() {
            writeln!(out, "  why: {}", clean(&a.evidence))?;
        }
        for p in &s.passes {
            writeln!(out, "  passes: {p}")?;
        }
        for p in &s.problems {
            writeln!(
                out,
                "  fails: {} ({} message(s))",
                clean(&p.detail),
                p.messages
            )?;
        }
        if !s.selectors.is_empty() {
            writeln!(out, "  DKIM selectors: {}", clean(&s.selectors.join(", ")))?;
        }
        if let Some(f) = &s.fix {
            writeln!(out, "  fix: {}", clean(f))?;
        }
    }
    Ok(())
}
