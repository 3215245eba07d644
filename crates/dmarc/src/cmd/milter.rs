//! `dmarc milter`: the milter daemon for Postfix and Sendmail.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use dmarc_milter::config::{DnsSettings, Override, Settings};
use dmarc_milter::daemon::{self, DaemonOptions};

use crate::cmd::verify::StdRandom;
use crate::dns_args::build_lookup;

/// Arguments of `dmarc milter`. Every option of the configuration file can also be given
/// here: the common ones have their own flags, the others `-o KEY=VALUE`.
#[derive(Debug, Args)]
pub struct MilterArgs {
    /// The configuration file (TOML; see examples/milter.toml for every option and its
    /// default). Without it, the defaults and the flags.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Check the configuration (file and flags), print the settings, and exit.
    #[arg(long = "check-config")]
    pub check_config: bool,

    /// Where to listen: Postfix's inet:HOST:PORT or unix:PATH, Sendmail's
    /// inet:PORT@HOST or inet6:PORT@HOST. Repeatable. Default inet:127.0.0.1:8893.
    #[arg(long, value_name = "ADDR")]
    pub listen: Vec<String>,

    /// The authserv-id of the Authentication-Results field. Default: this host's name.
    #[arg(long = "authserv-id", value_name = "ID")]
    pub authserv_id: Option<String>,

    /// The report store the counts of observations are written to: an SQLite file
    /// (PATH or sqlite:PATH) or a postgres:// URL. Default: not counted.
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,

    /// Answer every DNS question from this RFC 1035 zone file.
    #[arg(long = "dns-zone", value_name = "FILE", conflicts_with = "nameserver")]
    pub dns_zone: Option<PathBuf>,

    /// Ask this recursive name server (repeatable) instead of those in /etc/resolv.conf.
    #[arg(long = "nameserver", value_name = "IP[:PORT]")]
    pub nameserver: Vec<String>,

    /// Threads serving the connections and running the checks (server.workers); 0: one
    /// per CPU. Default 1. Read at start only (a reload keeps the running number).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,

    /// Seconds to wait for one DNS answer. Default 2.
    #[arg(long = "dns-timeout", value_name = "SECS")]
    pub dns_timeout: Option<f64>,

    /// Trust this ARC sealer (the d= of the newest ARC-Seal) as a forwarder: a DMARC
    /// failure it vouches for with an aligned pass is accepted (trusted_forwarder).
    /// Repeatable; replaces arc.trusted_sealers of the file.
    #[arg(long = "arc-trusted-sealer", value_name = "DOMAIN")]
    pub arc_trusted_sealer: Vec<String>,

    /// Do not verify ARC chains (no arc= result, no ARC keys asked, no trusted-forwarder
    /// override): arc.enabled = false, and no trusted sealers.
    #[arg(long = "no-arc", conflicts_with = "arc_trusted_sealer")]
    pub no_arc: bool,

    /// Any other option of the configuration file, as KEY=VALUE with dotted keys
    /// (mode=monitor, exempt.authenticated=false, metrics.listen=127.0.0.1:9477).
    /// Repeatable; applied after the file and the flags above.
    #[arg(short = 'o', long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

impl MilterArgs {
    /// The flags as settings over the file.
    fn overrides(&self) -> anyhow::Result<Vec<Override>> {
        let mut o = Vec::new();
        if !self.listen.is_empty() {
            o.push(Override::new("listen", self.listen.clone()));
        }
        if let Some(id) = &self.authserv_id {
            o.push(Override::new("authserv_id", id.as_str()));
        }
        if let Some(db) = &self.db {
            o.push(Override::new("db", db.as_str()));
        }
        if let Some(zone) = &self.dns_zone {
            o.push(Override::new("dns.zone", zone.display().to_string()));
        }
        if !self.nameserver.is_empty() {
            o.push(Override::new("dns.nameservers", self.nameserver.clone()));
        }
        if let Some(n) = self.workers {
            o.push(Override::new(
                "server.workers",
                i64::try_from(n).unwrap_or(i64::MAX),
            ));
        }
        if let Some(t) = self.dns_timeout {
            o.push(Override::new("dns.timeout", t));
        }
        if !self.arc_trusted_sealer.is_empty() {
            o.push(Override::new(
                "arc.trusted_sealers",
                self.arc_trusted_sealer.clone(),
            ));
        }
        if self.no_arc {
            o.push(Override::new("arc.enabled", false));
            o.push(Override::new("arc.trusted_sealers", Vec::<String>::new()));
        }
        for s in &self.set {
            o.push(Override::parse(s)?);
        }
        Ok(o)
    }
}

fn lookup(dns: &DnsSettings) -> anyhow::Result<dmarc_dns::AnyLookup> {
    build_lookup(dns.zone.as_deref(), false, &dns.nameservers, dns.timeout)
}

/// Runs the daemon, or checks the configuration.
pub fn run(args: MilterArgs) -> anyhow::Result<ExitCode> {
    let overrides = args.overrides()?;
    let hostname = daemon::hostname();
    // The runtime's threads are a setting: the configuration is read first.
    let settings = daemon::load_settings(args.config.as_deref(), &overrides, &hostname)?;
    let runtime = daemon::runtime(&settings).context("cannot start the async runtime")?;
    if args.check_config {
        {
            let _guard = runtime.enter();
            lookup(&settings.dns)?;
        }
        print_settings(&settings, args.config.as_deref());
        return Ok(ExitCode::SUCCESS);
    }
    let options = DaemonOptions {
        config: args.config,
        overrides,
        hostname,
        build_lookup: |dns: &DnsSettings| lookup(dns).map_err(|e| format!("{e:#}")),
        rng: Arc::new(StdRandom::new()),
    };
    runtime.block_on(daemon::run(settings, options))?;
    Ok(ExitCode::SUCCESS)
}

fn print_settings(s: &Settings, file: Option<&std::path::Path>) {
    let p = &s.policy;
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.join(", ")
        }
    };
    println!(
        "configuration OK ({})",
        file.map_or_else(
            || "defaults and flags".to_owned(),
            |f| f.display().to_string()
        )
    );
    println!(
        "  listen: {}",
        s.listen
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("  authserv-id: {}", p.authserv_id);
    println!("  workers: {}", s.workers);
    println!("  mode: {}, spec: {}", p.mode, p.spec);
    println!(
        "  quarantine: {}, dns_failure: {}, bad_from: {}, oversize: {} (max {} bytes)",
        p.quarantine, p.dns_failure, p.bad_from, p.oversize, p.max_message_size
    );
    println!(
        "  exempt: clients {}; authenticated {}; sender domains {}; recipient domains {}; trusted authserv-ids {}",
        p.exempt
            .client_ips
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        p.exempt.authenticated,
        list(&p.exempt.sender_domains),
        list(&p.exempt.recipient_domains),
        list(&p.exempt.trusted_authserv_ids)
    );
    println!(
        "  arc: {}",
        match (p.arc.enabled, p.arc.trusted_sealers.is_empty()) {
            (false, _) => "off".to_owned(),
            (true, true) => "verified; no trusted sealers".to_owned(),
            (true, false) => format!(
                "verified; trusted sealers {}",
                p.arc.trusted_sealers.join(", ")
            ),
        }
    );
    let dns = match (&s.dns.zone, s.dns.nameservers.is_empty()) {
        (Some(z), _) => format!("zone file {}", z.display()),
        (None, true) => "the system's name servers".to_owned(),
        (None, false) => s.dns.nameservers.join(", "),
    };
    println!("  dns: {dns}, timeout {} s", s.dns.timeout.as_secs_f64());
    println!(
        "  metrics: {}",
        s.metrics_listen
            .as_deref()
            .map_or_else(|| "off".to_owned(), |m| format!("http://{m}/metrics"))
    );
    match &s.db {
        Some(db) => println!(
            "  db: {db}, counts written every {} s or at {} rows",
            s.counting.flush_interval.as_secs_f64(),
            s.counting.max_rows
        ),
        None => println!("  db: none (messages are not counted)"),
    }
}
