//! `dmarc spf`: evaluate SPF (RFC 7208) for a client IP, HELO name and MAIL FROM.

use std::io::Write as _;
use std::net::IpAddr;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use dmarc_dns::SystemClock;
use dmarc_proto::auth_results::AuthenticationResults;
use dmarc_proto::spf::{self, SpfOptions, SpfOutput, SpfRequest};
use serde::Serialize;

use crate::dns_args::{DnsArgs, seconds};

/// Arguments of `dmarc spf`.
#[derive(Debug, Args)]
pub struct SpfArgs {
    /// The SMTP client's IP address (IPv4 or IPv6; ::ffff:a.b.c.d counts as IPv4).
    #[arg(long, value_name = "IP")]
    pub ip: String,

    /// The HELO/EHLO name the client gave.
    #[arg(long, value_name = "NAME")]
    pub helo: String,

    /// The MAIL FROM address (angle brackets optional). Without it, or with "" or "<>",
    /// the reverse-path is null and postmaster@HELO is checked (RFC 7208 §2.4).
    #[arg(long = "mail-from", value_name = "ADDR")]
    pub mail_from: Option<String>,

    /// Which identity to check.
    #[arg(long, value_enum, default_value_t = IdentityArg::Mailfrom)]
    pub identity: IdentityArg,

    /// This host's name: %{r} in explanations, and the receiver / authserv-id in the
    /// headers printed.
    #[arg(long, value_name = "NAME", default_value = "unknown")]
    pub receiver: String,

    /// The longest the evaluation may take, in seconds; past it the result is temperror.
    #[arg(long = "time-budget", value_name = "SECS", default_value = "20")]
    pub time_budget: f64,

    /// The explanation (an RFC 7208 macro string) to give for fail when the domain
    /// publishes none.
    #[arg(long = "default-explanation", value_name = "TEXT")]
    pub default_explanation: Option<String>,

    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,

    /// Also print every term and DNS query, as an indented tree.
    #[arg(long)]
    pub trace: bool,

    #[command(flatten)]
    pub dns: DnsArgs,
}

/// The identity `dmarc spf` checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IdentityArg {
    /// The MAIL FROM address (postmaster@HELO for a null reverse-path).
    Mailfrom,
    /// The HELO/EHLO name.
    Helo,
}

/// Checks the arguments, evaluates, prints. Exit status 0 whatever the SPF result.
pub fn run(args: SpfArgs) -> anyhow::Result<ExitCode> {
    let ip: IpAddr = args
        .ip
        .trim()
        .parse()
        .with_context(|| format!("--ip {:?} is not an IPv4 or IPv6 address", args.ip))?;
    if args.helo.is_empty() {
        bail!("--helo must not be empty");
    }
    if let Some(c) = args.helo.chars().find(|c| c.is_control()) {
        bail!(
            "--helo {:?} contains the control character {c:?}",
            args.helo
        );
    }
    let mut request = SpfRequest::new(ip, args.helo.clone());
    if let Some(m) = &args.mail_from {
        check_mail_from(m)?;
        request = request.with_mail_from(m.clone());
    }
    let options = SpfOptions {
        receiver: args.receiver.clone(),
        default_explanation: args.default_explanation.clone(),
        time_budget: Some(seconds("--time-budget", args.time_budget)?),
        ..SpfOptions::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let out = runtime.block_on(async {
        let lookup = args.dns.lookup()?;
        let out = match args.identity {
            IdentityArg::Mailfrom => {
                spf::verify_mail_from(&lookup, &SystemClock, &options, &request).await
            }
            IdentityArg::Helo => spf::verify_helo(&lookup, &SystemClock, &options, &request).await,
        };
        anyhow::Ok(out)
    })?;
    let mut stdout = std::io::stdout().lock();
    if args.json {
        writeln!(stdout, "{}", to_json(&out, &args.receiver)?)?;
    } else {
        write!(stdout, "{}", to_text(&out, &args.receiver, args.trace))?;
    }
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// A MAIL FROM must have an `@` with a domain after it and no control characters.
fn check_mail_from(m: &str) -> anyhow::Result<()> {
    let inner = m
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(m);
    if inner.is_empty() {
        return Ok(());
    }
    if let Some(c) = inner.chars().find(|c| c.is_control()) {
        bail!("--mail-from {m:?} is malformed: it contains the control character {c:?}");
    }
    match inner.rsplit_once('@') {
        None => bail!("--mail-from {m:?} is malformed: an address needs local-part@domain"),
        Some((_, "")) => bail!("--mail-from {m:?} is malformed: nothing after the '@'"),
        Some(_) => Ok(()),
    }
}

fn authentication_results(out: &SpfOutput, receiver: &str) -> String {
    let ar = AuthenticationResults::new(receiver).with(out.auth_result());
    format!("Authentication-Results: {ar}")
}

/// The JSON object: every field of the output, then the two header fields.
#[derive(Serialize)]
struct JsonOutput<'a> {
    #[serde(flatten)]
    out: &'a SpfOutput,
    received_spf: String,
    authentication_results: String,
}

fn to_json(out: &SpfOutput, receiver: &str) -> anyhow::Result<String> {
    let value = JsonOutput {
        out,
        received_spf: out.received_spf(receiver),
        authentication_results: authentication_results(out, receiver),
    };
    Ok(serde_json::to_string_pretty(&value)?)
}

fn to_text(out: &SpfOutput, receiver: &str, trace: bool) -> String {
    let mut s = String::new();
    s.push_str(&format!("spf: {}\n", out.result));
    s.push_str(&format!(
        "identity: {} {} (domain {})\n",
        out.identity.as_str(),
        out.sender,
        out.domain
    ));
    s.push_str(&format!("reason: {}\n", out.reason));
    if let Some(t) = &out.deciding_term {
        s.push_str(&format!("deciding term: {t}\n"));
    }
    if let Some(e) = &out.explanation {
        s.push_str(&format!("explanation: {e}\n"));
    }
    s.push_str(&format!(
        "DNS: {} of 10 lookup terms, {} of 2 void lookups, {} queries sent\n",
        out.lookups, out.void_lookups, out.dns_queries
    ));
    s.push('\n');
    s.push_str(&out.received_spf(receiver));
    s.push('\n');
    s.push_str(&authentication_results(out, receiver));
    s.push('\n');
    if trace {
        s.push_str("\ntrace:\n");
        for line in out.trace.to_text().lines() {
            s.push_str("  ");
            s.push_str(line);
            s.push('\n');
        }
    }
    s
}
