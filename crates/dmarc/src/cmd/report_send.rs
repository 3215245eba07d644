//! `dmarc report send`: make the aggregate reports of closed periods from the stored
//! observations, and (with `[failure] enabled`) the failure reports of the queued
//! candidates, and send them (or, with `--dry-run`, write them).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use dmarc_dns::SystemClock;
use dmarc_proto::clock::{Clock, FixedClock};
use dmarc_reporter::config::XmlFormat;
use dmarc_reporter::mail::Signer;
use dmarc_reporter::transport::{Configured, Outcome, Transport};
use dmarc_reporter::{Config, Run, RunOptions};

use super::ingest::DbArgs;
use crate::dns_args::DnsArgs;

/// Arguments of `dmarc report send`.
#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// Only the reports of this UTC day (YYYY-MM-DD). Default: every closed period not
    /// sent yet, and every earlier report with a destination due for another attempt.
    #[arg(long, value_name = "YYYY-MM-DD")]
    period: Option<String>,
    /// Send nothing and change nothing in the store: write each report (.xml.gz) and one
    /// message per destination (.eml), exactly as they would be sent, into --out.
    #[arg(long, requires = "out")]
    dry_run: bool,
    /// The directory --dry-run writes into (created if missing).
    #[arg(long, value_name = "DIR", requires = "dry_run")]
    out: Option<PathBuf>,
    /// The reporting configuration (TOML; see examples/reports.toml).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["org_name", "org_email"])]
    config: Option<PathBuf>,
    /// <org_name> of the reports (instead of --config; sending then uses the local
    /// sendmail command and no DKIM signature).
    #[arg(long, value_name = "NAME", requires = "org_email")]
    org_name: Option<String>,
    /// `<email>` of the reports and From of their messages (with --org-name).
    #[arg(long, value_name = "ADDR", requires = "org_name")]
    org_email: Option<String>,
    /// Write the RFC 7489 format instead of RFC 9990.
    #[arg(long)]
    rfc7489: bool,
    /// Take this as the current time (Unix seconds), to reproduce a run.
    #[arg(long, value_name = "UNIX_SECONDS")]
    now: Option<u64>,
    #[command(flatten)]
    db: DbArgs,
    #[command(flatten)]
    dns: DnsArgs,
}

/// A transport for dry runs: never called (the run writes files instead).
struct Nowhere;

impl Transport for Nowhere {
    fn send(&mut self, _: &str, _: &str, _: &[u8]) -> Outcome {
        Outcome::Temporary("dry run: nothing is sent".to_owned())
    }
}

/// Runs `dmarc report send`.
pub fn run(a: SendArgs) -> anyhow::Result<ExitCode> {
    let mut config = match (&a.config, &a.org_name, &a.org_email) {
        (Some(path), _, _) => Config::load(path)?,
        (None, Some(name), Some(email)) => {
            let c = Config::new(name, email);
            c.check()?;
            c
        }
        _ => anyhow::bail!("give --config FILE, or --org-name NAME and --org-email ADDR"),
    };
    if a.rfc7489 {
        config.aggregate.format = XmlFormat::Rfc7489;
    }
    let clock: Box<dyn Clock> = match a.now {
        Some(t) => Box::new(FixedClock::from_unix_seconds(t)),
        None => Box::new(SystemClock),
    };
    let now = i64::try_from(clock.unix_seconds()).unwrap_or(i64::MAX);
    let day = a
        .period
        .as_deref()
        .map(dmarc_store::time::parse_date)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--period: {e}"))?;
    let signer = config.dkim.as_ref().map(Signer::load).transpose()?;
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating --out {}", dir.display()))?;
    }
    let mut store = a.db.open()?;
    let mut nowhere = Nowhere;
    let mut configured;
    let transport: &mut dyn Transport = if a.dry_run {
        &mut nowhere
    } else {
        configured = Configured::new(&config.transport)?;
        &mut configured
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let events = rt.block_on(async {
        let lookup = a.dns.lookup()?;
        let options = RunOptions {
            day,
            dry_run: if a.dry_run { a.out.clone() } else { None },
            now,
        };
        let mut run = Run::new(
            &mut store,
            &lookup,
            &config,
            signer.as_ref(),
            transport,
            &*clock,
            options,
        );
        run.aggregate().await?;
        run.failure().await?;
        anyhow::Ok(run.events)
    })?;
    let mut failed = false;
    for e in &events {
        failed |= e.status == "failed";
        println!("{e}");
    }
    if events.is_empty() {
        println!(
            "nothing to report: no closed period with observations is waiting{}",
            if config.failure.enabled {
                ", and no failure-report candidate"
            } else {
                ""
            }
        );
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Arguments of `dmarc report bounces`.
#[derive(Debug, clap::Args)]
pub struct BouncesArgs {
    /// Bounce messages: files, directories (read recursively) or maildirs.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// The reporting configuration (its `[delivery]` bounces_to_suppress and suppress_for);
    /// default: the defaults.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Take this as the current time (Unix seconds).
    #[arg(long, value_name = "UNIX_SECONDS")]
    now: Option<u64>,
    #[command(flatten)]
    db: DbArgs,
}

/// At most this many files are read from one directory tree.
const MAX_BOUNCE_FILES: usize = 100_000;

fn collect(path: &std::path::Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            if out.len() >= MAX_BOUNCE_FILES {
                anyhow::bail!(
                    "more than {MAX_BOUNCE_FILES} files under {}",
                    path.display()
                );
            }
            // A maildir's tmp/ holds messages still being written.
            if e.file_name().is_some_and(|n| n == "tmp") && e.is_dir() {
                continue;
            }
            collect(&e, out)?;
        }
    } else {
        out.push(path.to_owned());
    }
    Ok(())
}

/// Runs `dmarc report bounces`.
pub fn bounces(a: BouncesArgs) -> anyhow::Result<ExitCode> {
    use dmarc_reporter::bounces::{Applied, apply};
    let delivery = match &a.config {
        Some(path) => Config::load(path)?.delivery,
        None => dmarc_reporter::config::DeliveryOptions::default(),
    };
    let now = match a.now {
        Some(t) => i64::try_from(t).unwrap_or(i64::MAX),
        None => i64::try_from(SystemClock.unix_seconds()).unwrap_or(i64::MAX),
    };
    let mut files = Vec::new();
    for p in &a.paths {
        collect(p, &mut files)?;
    }
    let mut store = a.db.open()?;
    let (mut recorded, mut other) = (0usize, 0usize);
    for f in &files {
        let raw = crate::input::read(f, "bounce", crate::input::MAX_MESSAGE)?;
        match apply(&mut store, &raw, &delivery, now)? {
            None => {
                other += 1;
                println!("{}: not a delivery status notification", f.display());
            }
            Some(list) => {
                for x in list {
                    match x {
                        Applied::Recorded {
                            address,
                            consecutive,
                            suppressed_until,
                        } => {
                            recorded += 1;
                            print!(
                                "{}: {address} bounced ({consecutive} in a row)",
                                f.display()
                            );
                            match suppressed_until {
                                Some(u) => println!(
                                    "; suppressed until {} UTC",
                                    dmarc_store::time::format_utc(u)
                                ),
                                None => println!(),
                            }
                        }
                        Applied::NotOurs(why) => println!("{}: {why}", f.display()),
                    }
                }
            }
        }
    }
    println!(
        "{} files: {recorded} bounces of report mail recorded, {other} not bounces",
        files.len()
    );
    Ok(ExitCode::SUCCESS)
}
