//! `dmarc record`: DMARC and SPF records to publish, valid by construction.

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use dmarc_owner::record::{DmarcRecordSpec, PublishRecord, SpfRecordSpec};
use dmarc_owner::services::Catalogue;

/// Arguments of `dmarc record`.
#[derive(Debug, Args)]
pub struct RecordArgs {
    #[command(subcommand)]
    pub kind: RecordKind,
}

/// Which record.
#[derive(Debug, Subcommand)]
pub enum RecordKind {
    /// A DMARC policy record (RFC 9989 §4.7), to publish at _dmarc.DOMAIN.
    Dmarc(DmarcArgs),
    /// An SPF record (RFC 7208), to publish at DOMAIN.
    Spf(SpfArgs),
}

/// Settings of a DMARC record.
#[derive(Debug, Args)]
pub struct DmarcArgs {
    /// The domain the record is for.
    pub domain: String,
    /// The policy for the domain: none, quarantine or reject.
    #[arg(long, value_name = "POLICY", default_value = "none")]
    pub p: String,
    /// The policy for existing subdomains (default: as p).
    #[arg(long, value_name = "POLICY")]
    pub sp: Option<String>,
    /// The policy for non-existent subdomains (default: as sp).
    #[arg(long, value_name = "POLICY")]
    pub np: Option<String>,
    /// DKIM alignment: r (relaxed, the default) or s (strict).
    #[arg(long, value_name = "r|s")]
    pub adkim: Option<String>,
    /// SPF alignment: r (relaxed, the default) or s (strict).
    #[arg(long, value_name = "r|s")]
    pub aspf: Option<String>,
    /// Where aggregate reports go (mailto:ADDR, or a bare address); repeat for two.
    #[arg(long, value_name = "URI")]
    pub rua: Vec<String>,
    /// Where failure reports go; repeat for two.
    #[arg(long, value_name = "URI")]
    pub ruf: Vec<String>,
    /// Failure reporting options: 0, 1, d, s, joined with ':'.
    #[arg(long, value_name = "OPTIONS")]
    pub fo: Option<String>,
    /// t=y: testing, receivers apply the policy one step milder.
    #[arg(long)]
    pub testing: bool,
    /// psd: y, n or u (for public suffix operators).
    #[arg(long, value_name = "y|n|u")]
    pub psd: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Settings of an SPF record.
#[derive(Debug, Args)]
pub struct SpfArgs {
    /// The domain the record is for (a From domain, or a MAIL FROM subdomain).
    pub domain: String,
    /// Authorise the domain's own A/AAAA addresses.
    #[arg(long)]
    pub a: bool,
    /// Authorise the domain's MX hosts.
    #[arg(long)]
    pub mx: bool,
    /// Authorise the addresses of this host (a:HOST); repeat for more.
    #[arg(long = "a-host", value_name = "HOST")]
    pub a_hosts: Vec<String>,
    /// Authorise an IPv4 network (ADDR[/LEN]); repeat for more.
    #[arg(long, value_name = "NET")]
    pub ip4: Vec<String>,
    /// Authorise an IPv6 network; repeat for more.
    #[arg(long, value_name = "NET")]
    pub ip6: Vec<String>,
    /// Include another domain's record; repeat for more.
    #[arg(long, value_name = "DOMAIN")]
    pub include: Vec<String>,
    /// Authorise a known service (its SPF include; see dmarc check --list-services).
    #[arg(long, value_name = "SERVICE")]
    pub service: Vec<String>,
    /// What unlisted hosts get: fail (-all, the default), softfail (~all) or neutral (?all).
    #[arg(long, value_name = "fail|softfail|neutral", default_value = "fail")]
    pub all: String,
    /// Use another domain's record instead of ending with all (redirect=DOMAIN).
    #[arg(long, value_name = "DOMAIN", conflicts_with = "all")]
    pub redirect: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Builds and prints the record. Invalid settings are bad usage (exit status 2).
pub fn run(args: RecordArgs) -> anyhow::Result<ExitCode> {
    let (record, json) = match args.kind {
        RecordKind::Dmarc(a) => (
            DmarcRecordSpec {
                p: a.p,
                sp: a.sp,
                np: a.np,
                adkim: a.adkim,
                aspf: a.aspf,
                rua: a.rua,
                ruf: a.ruf,
                fo: a.fo,
                testing: a.testing,
                psd: a.psd,
            }
            .build(&a.domain)?,
            a.json,
        ),
        RecordKind::Spf(a) => {
            let mut include = a.include;
            for name in &a.service {
                let service = Catalogue::builtin().get(name).ok_or_else(|| {
                    anyhow::anyhow!(
                        "--service {name:?}: unknown (dmarc check --list-services lists them)"
                    )
                })?;
                let i = service.spf_include().ok_or_else(|| {
                    anyhow::anyhow!(
                        "{} has no fixed SPF include; take it from its documentation ({})",
                        service.name,
                        service.source
                    )
                })?;
                include.push(i.to_string());
            }
            let all = match a.all.as_str() {
                "fail" | "-" => '-',
                "softfail" | "~" => '~',
                "neutral" | "?" => '?',
                other => anyhow::bail!("--all {other:?}: expected fail, softfail or neutral"),
            };
            (
                SpfRecordSpec {
                    ip4: a.ip4,
                    ip6: a.ip6,
                    include,
                    a: a.a,
                    mx: a.mx,
                    a_hosts: a.a_hosts,
                    all,
                    redirect: a.redirect,
                }
                .build(&a.domain)?,
                a.json,
            )
        }
    };
    print(&record, json)?;
    Ok(ExitCode::SUCCESS)
}

fn print(r: &PublishRecord, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(r)?)?;
        return Ok(());
    }
    writeln!(out, "Publish a {} record at {}:", r.rtype, r.name)?;
    writeln!(out, "  {}", r.value)?;
    writeln!(out, "In a zone file:")?;
    writeln!(out, "  {}", r.zone_line)?;
    for n in &r.notes {
        writeln!(out, "Note: {n}")?;
    }
    writeln!(
        out,
        "To check it before publishing, add the zone line to a copy of your zone and run: dmarc check DOMAIN --dns-zone FILE"
    )?;
    Ok(())
}
