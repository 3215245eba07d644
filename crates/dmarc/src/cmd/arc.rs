//! `dmarc arc`: validate ARC chains (RFC 8617 §5.2) and seal messages (§5.1).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use dmarc_proto::arc::seal::{SealError, SealOptions, own_results, seal};
use dmarc_proto::arc::{ArcConfig, ArcOutput, ArcVerifier, ChainStatus};
use dmarc_proto::auth_results::split_resinfo;
use dmarc_proto::dkim::SigningKey;

use super::verify_files::{self, VerifyFilesArgs, clock};
use crate::dns_args::DnsArgs;

/// ARC (RFC 8617): validate chains, seal messages.
#[derive(Debug, Args)]
pub struct ArcArgs {
    #[command(subcommand)]
    command: ArcCommand,
}

#[derive(Debug, Subcommand)]
enum ArcCommand {
    /// Validate the ARC chain of messages: one line (or JSON object) per file with the chain
    /// status none, pass or fail, the number of ARC sets, oldest-pass and the reason. Exit 0
    /// when every chain passes, 1 otherwise, 2 on error.
    Verify(ArcVerifyArgs),
    /// Add the next ARC set (ARC-Authentication-Results, ARC-Message-Signature, ARC-Seal)
    /// and write the sealed message to standard output. The chain that arrived is
    /// validated first; its status is the new seal's cv=.
    Seal(SealArgs),
}

#[derive(Debug, Args)]
struct ArcVerifyArgs {
    #[command(flatten)]
    files: VerifyFilesArgs,
    /// Check only what the chain status needs (the newest ARC-Message-Signature and every
    /// ARC-Seal, RFC 8617 §5.2 steps 4 and 6), not the older ARC-Message-Signatures:
    /// no oldest-pass (null in --json). Saves one signature check per older ARC set.
    #[arg(long)]
    no_oldest_pass: bool,
}

#[derive(Debug, Args)]
struct SealArgs {
    /// The message to seal.
    file: PathBuf,
    /// The sealing domain (d= of the ARC-Message-Signature and ARC-Seal).
    #[arg(long)]
    domain: String,
    /// The selector (s=).
    #[arg(long)]
    selector: String,
    /// The private key: PEM (PKCS#8 or PKCS#1 RSA), or a base64 Ed25519 seed.
    #[arg(long, value_name = "KEYFILE")]
    key: PathBuf,
    /// This hop's authserv-id, written in the ARC-Authentication-Results.
    #[arg(long, value_name = "ID")]
    authserv_id: String,
    /// This hop's results, as an Authentication-Results value (`ID; spf=pass ...; dkim=...`)
    /// or only its results (`spf=pass ...; dkim=...`). Default: the results of the
    /// message's Authentication-Results fields with this authserv-id, in order.
    #[arg(long, value_name = "TEXT")]
    auth_results: Option<String>,
    /// Header fields the ARC-Message-Signature signs, separated by colons or commas
    /// (default: From, To, Cc, Subject, Date, Message-ID, threading, MIME, DKIM-Signature
    /// and list fields).
    #[arg(long, value_name = "NAMES")]
    headers: Option<String>,
    #[command(flatten)]
    dns: DnsArgs,
    /// Seal (t=) and validate with this time instead of the clock.
    #[arg(long, value_name = "UNIX_TIME")]
    now: Option<u64>,
}

/// Runs `dmarc arc ...`.
pub fn run(args: ArcArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ArcCommand::Verify(a) => verify(&a),
        ArcCommand::Seal(a) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?
            .block_on(seal_cmd(a)),
    }
}

fn verify(a: &ArcVerifyArgs) -> anyhow::Result<ExitCode> {
    let config = ArcConfig {
        oldest_pass: !a.no_oldest_pass,
        ..ArcConfig::default()
    };
    // Keys parsed once per process, not once per file: many files share a sealer's key.
    let verifier = ArcVerifier::new(config)
        .with_key_cache(std::sync::Arc::new(dmarc_proto::dkim::KeyCache::default()));
    verify_files::run(
        &a.files,
        async |message, lookup, clock| verifier.verify(message, lookup, clock).await,
        |w, name, out: &ArcOutput, json| {
            if json {
                serde_json::to_writer(&mut *w, &JsonLine::new(name, out))?;
                writeln!(w)?;
            } else {
                writeln!(w, "{}", text_line(name, out))?;
            }
            Ok(out.status == ChainStatus::Pass)
        },
    )
}

/// `FILE: arc=pass instances=3 oldest-pass=1 (reason)`.
fn text_line(name: &str, out: &ArcOutput) -> String {
    let oldest = out
        .oldest_pass
        .map_or_else(String::new, |o| format!(" oldest-pass={o}"));
    format!(
        "{name}: arc={} instances={}{oldest} ({})",
        out.status,
        out.instances,
        out.reason()
    )
}

/// One line of `dmarc arc verify --json`: `{"file", "hops": [...], "instances",
/// "oldest_pass", "reason", "result"}`; each hop says its instance, sealer, cv, the AAR's
/// authserv-id and results, and whether its AMS and seal verified (null: not checked).
/// Keys in alphabetical order, as the output has always had them.
#[derive(serde::Serialize)]
struct JsonLine<'a> {
    file: &'a str,
    hops: Vec<JsonHop<'a>>,
    instances: usize,
    oldest_pass: Option<u32>,
    reason: String,
    result: &'static str,
}

#[derive(serde::Serialize)]
struct JsonHop<'a> {
    authserv_id: Option<&'a str>,
    cv: Option<&'static str>,
    instance: u32,
    message_signature: Option<String>,
    results: Vec<String>,
    seal: Option<String>,
    sealer: Option<&'a str>,
}

impl<'a> JsonLine<'a> {
    fn new(file: &'a str, out: &'a ArcOutput) -> Self {
        let checked = |r: &Option<Result<(), dmarc_proto::dkim::Problem>>| {
            r.as_ref().map(|r| match r {
                Ok(()) => "pass".to_string(),
                Err(p) => p.to_string(),
            })
        };
        let hops = out
            .hops
            .iter()
            .map(|h| {
                let (authserv_id, results) = match &h.authentication_results {
                    Some(Ok(ar)) => (
                        Some(ar.authserv_id.as_str()),
                        ar.results
                            .iter()
                            .map(|r| format!("{}={}", r.method, r.result))
                            .collect(),
                    ),
                    _ => (None, Vec::new()),
                };
                JsonHop {
                    authserv_id,
                    cv: h.cv.map(|c| c.as_str()),
                    instance: h.instance,
                    message_signature: checked(&h.message_signature),
                    results,
                    seal: checked(&h.seal),
                    sealer: h.sealer.as_deref(),
                }
            })
            .collect();
        JsonLine {
            file,
            hops,
            instances: out.instances,
            oldest_pass: out.oldest_pass,
            reason: out.reason(),
            result: out.status.as_str(),
        }
    }
}

/// This hop's results from `--auth-results` (a whole field value whose authserv-id is
/// ours, or only results).
fn given_results(text: &str, authserv_id: &str) -> anyhow::Result<Vec<String>> {
    if let Some((id, results)) = split_resinfo(text)
        && id.eq_ignore_ascii_case(authserv_id)
    {
        return Ok(results);
    }
    match split_resinfo(&format!("x; {text}")) {
        Some((_, results)) => Ok(results),
        None => bail!("--auth-results: cannot read {text:?}"),
    }
}

async fn seal_cmd(a: SealArgs) -> anyhow::Result<ExitCode> {
    let message = crate::input::read(&a.file, "message", crate::input::MAX_MESSAGE)?;
    let key_text = crate::input::read(&a.key, "key file", crate::input::MAX_KEY)?;
    let key = SigningKey::from_pem(&key_text)
        .with_context(|| format!("loading key {}", a.key.display()))?;
    let lookup = a.dns.lookup()?;
    let clock = clock(a.now);
    let arrived = ArcVerifier::default()
        .verify(&message, &lookup, &*clock)
        .await;
    if let Some(p) = &arrived.problem
        && p.is_temporary()
    {
        bail!("the chain could not be validated ({p}); not sealed, try again later");
    }
    let mut results = match &a.auth_results {
        Some(text) => given_results(text, &a.authserv_id)?,
        None => own_results(&message, &a.authserv_id),
    };
    // The AAR records this hop's ARC result: ours, unless the text has one that agrees.
    match results.iter().find(|r| r.trim_start().starts_with("arc=")) {
        Some(r) => {
            let said = r
                .trim_start()
                .strip_prefix("arc=")
                .and_then(|s| s.split([' ', '\t', '\r', '\n', '(']).next())
                .and_then(ChainStatus::parse);
            if said != Some(arrived.status) {
                bail!(
                    "the results say {r:?}, but the chain that arrived is {} ({})",
                    arrived.status,
                    arrived.reason()
                );
            }
        }
        None => results.insert(0, arrived.method_result(None).to_string()),
    }
    let mut opts = SealOptions::new(a.domain, a.selector, a.authserv_id);
    if let Some(h) = &a.headers {
        opts.headers = h
            .split([':', ','])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
    }
    let mut out = std::io::stdout().lock();
    let set = match seal(&message, &key, &opts, &results, arrived.status, &*clock) {
        Ok(set) => set,
        Err(e @ SealError::ChainAlreadyFailed(_)) => {
            // Pass the message on unchanged: a failed chain gets no more sets.
            eprintln!("dmarc: {}: {e}", a.file.display());
            out.write_all(&message)?;
            out.flush()?;
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e).context(format!("sealing {}", a.file.display())),
    };
    // Keep the message's own line endings: CRLF when its first line ends with CRLF.
    let crlf = match message.iter().position(|&b| b == b'\n') {
        Some(p) => p > 0 && message.get(p - 1) == Some(&b'\r'),
        None => true,
    };
    let head = set.to_prepend();
    let head = if crlf {
        head
    } else {
        head.replace("\r\n", "\n")
    };
    out.write_all(head.as_bytes())?;
    out.write_all(&message)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_from_a_field_or_a_list() {
        let r = given_results(
            "mx.example; spf=pass smtp.mailfrom=a.example; dkim=pass (ok) header.d=a.example",
            "MX.example",
        )
        .unwrap();
        assert_eq!(
            r,
            [
                "spf=pass smtp.mailfrom=a.example",
                "dkim=pass (ok) header.d=a.example"
            ]
        );
        let r =
            given_results("spf=pass smtp.mailfrom=a.example; dmarc=pass", "mx.example").unwrap();
        assert_eq!(r, ["spf=pass smtp.mailfrom=a.example", "dmarc=pass"]);
    }
}
