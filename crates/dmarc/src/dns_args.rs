//! The DNS flags every command that asks DNS questions takes, flattened into its arguments.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use dmarc_dns::{AnyLookup, HickoryLookup, ResolverOptions, ZoneFile, parse_nameserver};

/// Where DNS answers come from: a zone file, given name servers, or the system's.
#[derive(Debug, Clone, Args)]
pub struct DnsArgs {
    /// Answer every DNS question from this RFC 1035 zone file instead of the network (to
    /// try records before publishing them, or to reproduce a verdict offline).
    #[arg(long = "dns-zone", value_name = "FILE", conflicts_with = "nameserver")]
    pub dns_zone: Option<PathBuf>,

    /// Let $INCLUDE in the --dns-zone file name files outside its directory (by default an
    /// $INCLUDE must stay below the including file's directory).
    #[arg(long = "dns-zone-include-anywhere", requires = "dns_zone")]
    pub dns_zone_include_anywhere: bool,

    /// Ask this recursive name server instead of those in /etc/resolv.conf. Repeat for
    /// more than one; they are tried in order. An IPv6 address with a port is written in square brackets.
    #[arg(long = "nameserver", value_name = "IP[:PORT]")]
    pub nameserver: Vec<String>,

    /// How long to wait for one DNS response, in seconds.
    #[arg(long = "dns-timeout", value_name = "SECS", default_value = "2")]
    pub dns_timeout: f64,
}

impl DnsArgs {
    /// Builds the resolver. Must be called inside a Tokio runtime.
    pub fn lookup(&self) -> anyhow::Result<AnyLookup> {
        let timeout = match &self.dns_zone {
            Some(_) => Duration::from_secs(2),
            None => seconds("--dns-timeout", self.dns_timeout)?,
        };
        build_lookup(
            self.dns_zone.as_deref(),
            self.dns_zone_include_anywhere,
            &self.nameserver,
            timeout,
        )
    }
}

/// The resolver for these settings: the zone file, else the given name servers, else the
/// system's, with `timeout` per response; `include_anywhere` lets the zone file's
/// `$INCLUDE` leave its directory. Must be called inside a Tokio runtime.
pub fn build_lookup(
    zone: Option<&Path>,
    include_anywhere: bool,
    nameservers: &[String],
    timeout: Duration,
) -> anyhow::Result<AnyLookup> {
    if let Some(path) = zone {
        let options = dmarc_dns::LoadOptions {
            include_anywhere,
            ..Default::default()
        };
        let zone = ZoneFile::load_with(path, &options)
            .with_context(|| format!("cannot use zone file {}", path.display()))?;
        return Ok(AnyLookup::Zone(zone));
    }
    let defaults = ResolverOptions::default();
    let attempts = u32::try_from(defaults.attempts.max(1)).unwrap_or(u32::MAX);
    let options = ResolverOptions {
        timeout,
        deadline: defaults.deadline.max(timeout.saturating_mul(attempts)),
        ..defaults
    };
    let resolver = if nameservers.is_empty() {
        HickoryLookup::system(options).context("cannot set up the system resolver")?
    } else {
        let servers = nameservers
            .iter()
            .map(|s| parse_nameserver(s).with_context(|| format!("--nameserver {s:?}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        HickoryLookup::with_nameservers(&servers, options).context("cannot set up the resolver")?
    };
    Ok(AnyLookup::Hickory(resolver))
}

/// A positive number of seconds, at most a day.
pub fn seconds(flag: &str, value: f64) -> anyhow::Result<Duration> {
    if !value.is_finite() || value <= 0.0 || value > 86_400.0 {
        bail!("{flag} {value}: expected a number of seconds greater than 0 and at most 86400");
    }
    Ok(Duration::from_secs_f64(value))
}
