//! `dmarc check`: the domain owner's DNS check, and the sender setup check.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use dmarc_owner::check::{CheckOptions, DomainReport, PolicySource, SenderSpec, check_domain};
use dmarc_owner::services::Catalogue;
use dmarc_proto::dmarc::DomainName;

use crate::dns_args::{DnsArgs, seconds};

/// Arguments of `dmarc check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The domains to check (checked concurrently; output in the order given).
    #[arg(value_name = "DOMAIN", required_unless_present = "list_services")]
    pub domains: Vec<String>,

    /// A DKIM selector to check (repeat for more). Common selector names are tried too.
    #[arg(long = "selector", value_name = "S")]
    pub selectors: Vec<String>,

    /// Do not try the common selector names.
    #[arg(long = "no-common-selectors")]
    pub no_common_selectors: bool,

    /// Also check the DKIM selectors that the aggregate reports in this store show for
    /// the domain (an SQLite file or a postgres:// URL).
    #[arg(long, value_name = "PATH|URL")]
    pub db: Option<String>,

    /// The sender setup check: would mail sent through this service pass DMARC? (see
    /// --list-services).
    #[arg(long, value_name = "SERVICE")]
    pub sender: Option<String>,

    /// The sender setup check for the MAIL FROM (Return-Path) domain the service uses.
    #[arg(long = "mail-from", value_name = "DOMAIN")]
    pub mail_from: Option<String>,

    /// The sender setup check for the DKIM selector the service signs with (repeat for
    /// more).
    #[arg(long = "dkim-selector", value_name = "S")]
    pub dkim_selectors: Vec<String>,

    /// The sender setup check for the DKIM signing domain (d=); default the domain, else
    /// the MAIL FROM domain.
    #[arg(long = "dkim-domain", value_name = "DOMAIN")]
    pub dkim_domain: Option<String>,

    /// Read the MTA-STS policy from this file instead of fetching it over HTTPS (to check
    /// a policy before publishing it).
    #[arg(
        long = "mta-sts-policy",
        value_name = "FILE",
        conflicts_with = "no_fetch"
    )]
    pub mta_sts_policy: Option<PathBuf>,

    /// Do not fetch the MTA-STS policy over HTTPS.
    #[arg(long = "no-fetch")]
    pub no_fetch: bool,

    /// How long the HTTPS fetch of the MTA-STS policy may take, in seconds.
    #[arg(long = "http-timeout", value_name = "SECS", default_value = "10")]
    pub http_timeout: f64,

    /// The BIMI selector.
    #[arg(long = "bimi-selector", value_name = "S", default_value = "default")]
    pub bimi_selector: String,

    /// Check at most this many domains at once.
    #[arg(long, value_name = "N", default_value = "16")]
    pub jobs: usize,

    /// Print one JSON object per domain (one per line) instead of text.
    #[arg(long)]
    pub json: bool,

    /// List the services --sender knows, with their sources, and exit.
    #[arg(long = "list-services")]
    pub list_services: bool,

    #[command(flatten)]
    pub dns: DnsArgs,
}

/// Checks every domain; exit status 1 when any has an error finding.
pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let catalogue = Catalogue::builtin();
    if args.list_services {
        let mut out = std::io::stdout().lock();
        if args.json {
            writeln!(out, "{}", serde_json::to_string(catalogue.services())?)?;
        } else {
            for s in catalogue.services() {
                writeln!(out, "{:<18} {} ({})", s.id, s.name, s.source)?;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut domains = Vec::new();
    for d in &args.domains {
        let name = DomainName::new(d).with_context(|| format!("{d:?} is not a domain name"))?;
        domains.push(name);
    }
    if args.jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    let sender = if args.sender.is_some()
        || args.mail_from.is_some()
        || !args.dkim_selectors.is_empty()
    {
        let service = match &args.sender {
            Some(name) => Some(catalogue.get(name).cloned().with_context(|| {
                format!("--sender {name:?}: unknown service; dmarc check --list-services lists them, or give --mail-from and --dkim-selector")
            })?),
            None => None,
        };
        if let Some(m) = &args.mail_from {
            let d = m.rsplit_once('@').map_or(m.as_str(), |(_, d)| d);
            DomainName::new(d).with_context(|| format!("--mail-from {m:?} is not a domain"))?;
        }
        Some(SenderSpec {
            service,
            mail_from: args.mail_from.clone(),
            dkim_selectors: args.dkim_selectors.clone(),
            dkim_domain: args.dkim_domain.clone(),
        })
    } else {
        None
    };
    let mta_sts_policy = match (&args.mta_sts_policy, args.no_fetch) {
        (Some(path), _) => PolicySource::Text(
            crate::input::read_text(path, "MTA-STS policy file", crate::input::MAX_SMALL_TEXT)
                .context("--mta-sts-policy")?,
        ),
        (None, true) => PolicySource::Skip,
        (None, false) => PolicySource::Fetch,
    };
    let base = CheckOptions {
        selectors: args.selectors.clone(),
        common_selectors: !args.no_common_selectors,
        mta_sts_policy,
        http_timeout: seconds("--http-timeout", args.http_timeout)?,
        bimi_selector: args.bimi_selector.clone(),
        sender,
        ..CheckOptions::default()
    };
    // What the stored reports say about each domain's signers.
    let mut per_domain: Vec<CheckOptions> = Vec::with_capacity(domains.len());
    let mut store = match &args.db {
        Some(db) => Some(
            dmarc_store::Store::open(db).with_context(|| format!("cannot open the store {db}"))?,
        ),
        None => None,
    };
    for d in &domains {
        let mut o = base.clone();
        if let Some(store) = store.as_mut() {
            for (signer, selector, _) in store
                .dkim_selectors(d)
                .with_context(|| format!("cannot read DKIM selectors for {d} from the store"))?
            {
                if signer == d.as_str() {
                    o.report_selectors.push(selector);
                } else if !o.report_dkim_domains.contains(&signer) {
                    o.report_dkim_domains.push(signer);
                }
            }
        }
        per_domain.push(o);
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let reports: Vec<DomainReport> = runtime.block_on(async {
        let lookup = Arc::new(args.dns.lookup()?);
        let permits = Arc::new(tokio::sync::Semaphore::new(args.jobs));
        let mut tasks = Vec::with_capacity(domains.len());
        for (domain, options) in domains.into_iter().zip(per_domain) {
            let lookup = Arc::clone(&lookup);
            let permits = Arc::clone(&permits);
            tasks.push(tokio::spawn(async move {
                let _permit = permits.acquire_owned().await;
                check_domain(&*lookup, &domain, &options).await
            }));
        }
        let mut out = Vec::with_capacity(tasks.len());
        for t in tasks {
            out.push(t.await.context("a check failed")?);
        }
        anyhow::Ok(out)
    })?;

    let mut out = std::io::stdout().lock();
    for r in &reports {
        if args.json {
            writeln!(out, "{}", serde_json::to_string(r)?)?;
        } else {
            write!(out, "{}", r.to_text())?;
        }
    }
    out.flush()?;
    Ok(if reports.iter().any(DomainReport::has_errors) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
