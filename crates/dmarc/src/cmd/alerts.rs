//! `dmarc alerts check`: evaluates the alert rules of the configuration once (for cron).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use dmarc_web::alerts::{Alerts, check};

/// Arguments of `dmarc alerts`.
#[derive(Debug, clap::Args)]
pub struct AlertsArgs {
    #[command(subcommand)]
    command: AlertsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AlertsCommand {
    /// Evaluate the rules once, record which conditions hold, deliver those that fired or
    /// cleared (webhook, email); exit status 1 when a condition is active.
    Check(CheckArgs),
}

#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// The configuration: its `[alerts]` section (and `[transport]` for email).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    #[command(flatten)]
    db: super::ingest::DbArgs,
    /// Say what would fire or clear; record and deliver nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// Evaluate as at this time (YYYY-MM-DD, UTC midnight) instead of now.
    #[arg(long, value_name = "DATE", value_parser = super::summary::parse_date)]
    now: Option<i64>,
    /// Where the DNS rule's answers (`[alerts.dns_records]`) come from.
    #[command(flatten)]
    dns: crate::dns_args::DnsArgs,
}

/// Runs `dmarc alerts`.
pub fn run(args: AlertsArgs) -> anyhow::Result<ExitCode> {
    let AlertsCommand::Check(args) = args.command;
    let alerts = Alerts::load(&args.config)?
        .with_context(|| format!("{} has no [alerts] section", args.config.display()))?;
    let mut store = args.db.open()?;
    let now = args.now.unwrap_or_else(super::summary::now);
    let targets = alerts.dns_targets(&mut store, now)?;
    let dns = if targets.is_empty() {
        Vec::new()
    } else {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        runtime.block_on(async {
            let lookup = args.dns.lookup()?;
            anyhow::Ok(dmarc_web::alerts::dns::observe(&lookup, &targets).await)
        })?
    };
    let r = check(&alerts, &mut store, now, args.dry_run, dns)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &r)?;
        writeln!(out)?;
    } else {
        for (what, list) in [
            ("fired", &r.changes.fired),
            ("still active", &r.changes.ongoing),
            ("cleared", &r.changes.cleared),
        ] {
            for c in list {
                writeln!(
                    out,
                    "{what}: {} {}: {}",
                    c.rule,
                    super::summary::clean(&c.subject),
                    c.detail
                        .lines()
                        .map(super::summary::clean)
                        .collect::<Vec<_>>()
                        .join("\n    ")
                )?;
            }
        }
        for d in &r.deliveries {
            writeln!(out, "delivered: {}", super::summary::clean(d))?;
        }
        if !r.dns.is_empty() {
            let failed = r
                .dns
                .iter()
                .filter(|o| matches!(o.answer, dmarc_web::alerts::dns::Answer::Temporary { .. }))
                .count();
            writeln!(
                out,
                "DNS: {} record(s) looked at, {failed} lookup(s) failed temporarily (no conclusion drawn from those)",
                r.dns.len()
            )?;
        }
        if r.changes.fired.is_empty() && r.changes.ongoing.is_empty() {
            writeln!(
                out,
                "no alert condition holds ({} rule(s) evaluated)",
                r.rules.len()
            )?;
        }
    }
    out.flush().context("writing to stdout")?;
    let active = !r.changes.fired.is_empty() || !r.changes.ongoing.is_empty();
    Ok(if active {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
