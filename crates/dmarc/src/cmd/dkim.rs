//! `dmarc dkim`: verify signatures, sign messages, generate keys.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use dmarc_proto::dkim::sign::{SignOptions, sign};
use dmarc_proto::dkim::{
    Canonicalization, DkimResult, SignatureResult, SigningKey, Verifier, VerifyConfig,
};
use dmarc_proto::dmarc::DomainName;

use super::verify_files::{self, VerifyFilesArgs, clock};
use crate::input;

/// DKIM (RFC 6376): verify, sign, generate keys.
#[derive(Debug, Args)]
pub struct DkimArgs {
    #[command(subcommand)]
    command: DkimCommand,
}

#[derive(Debug, Subcommand)]
enum DkimCommand {
    /// Verify the DKIM signatures of messages (exit 0 when every message has a passing
    /// signature, 1 otherwise, 2 on error).
    Verify(VerifyArgs),
    /// Sign a message and write the signed message to standard output.
    Sign(SignArgs),
    /// Generate a key pair: write the private key (PKCS#8 PEM, mode 0600) and print the DNS
    /// record to publish.
    Keygen(KeygenArgs),
}

#[derive(Debug, Args)]
struct VerifyArgs {
    #[command(flatten)]
    files: VerifyFilesArgs,
    /// Accept rsa-sha1 signatures (refused by default, RFC 8301).
    #[arg(long)]
    allow_rsa_sha1: bool,
}

#[derive(Debug, Args)]
struct SignArgs {
    /// The message to sign.
    file: PathBuf,
    /// The signing domain (d=).
    #[arg(long)]
    domain: String,
    /// The selector (s=).
    #[arg(long)]
    selector: String,
    /// The private key: PEM (PKCS#8 or PKCS#1 RSA), or a base64 Ed25519 seed.
    #[arg(long, value_name = "KEYFILE")]
    key: PathBuf,
    /// Header fields to sign, separated by colons or commas (default: From, Reply-To,
    /// Subject, Date, To, Cc, Message-ID, MIME and list fields).
    #[arg(long, value_name = "NAMES")]
    headers: Option<String>,
    /// Do not oversign (sign one extra, absent, instance of each field).
    #[arg(long)]
    no_oversign: bool,
    /// Canonicalisation, header/body.
    #[arg(long, default_value = "relaxed/relaxed", value_name = "C")]
    canonicalization: String,
    /// The agent or user identifier (i=), in the signing domain.
    #[arg(long)]
    identity: Option<String>,
    /// Make the signature expire this many seconds after signing (x=).
    #[arg(long, value_name = "SECONDS")]
    expire_after: Option<u64>,
    /// Sign with this time (t=) instead of the clock.
    #[arg(long, value_name = "UNIX_TIME")]
    now: Option<u64>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum KeyAlgorithm {
    #[value(name = "rsa-2048")]
    Rsa2048,
    #[value(name = "rsa-3072")]
    Rsa3072,
    #[value(name = "rsa-4096")]
    Rsa4096,
    #[value(name = "ed25519")]
    Ed25519,
}

#[derive(Debug, Args)]
struct KeygenArgs {
    /// The signing domain.
    #[arg(long)]
    domain: String,
    /// The selector.
    #[arg(long)]
    selector: String,
    /// The key algorithm.
    #[arg(long, value_enum, default_value = "rsa-2048")]
    algorithm: KeyAlgorithm,
    /// Where to write the private key (default SELECTOR.DOMAIN.key.pem); never overwritten.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Runs `dmarc dkim ...`.
pub fn run(args: DkimArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        DkimCommand::Verify(a) => verify(a),
        DkimCommand::Sign(a) => sign_cmd(a),
        DkimCommand::Keygen(a) => keygen(a),
    }
}

fn verify(a: VerifyArgs) -> anyhow::Result<ExitCode> {
    // Keys parsed once per process, not once per file: many files share a signer's key.
    let verifier = Verifier::new(VerifyConfig {
        allow_rsa_sha1: a.allow_rsa_sha1,
        ..VerifyConfig::default()
    })
    .with_key_cache(std::sync::Arc::new(dmarc_proto::dkim::KeyCache::default()));
    verify_files::run(
        &a.files,
        async |message, lookup, clock| verifier.verify(message, lookup, clock).await,
        |out, name, results: &Vec<SignatureResult>, json| {
            if json {
                write_json_line(out, name, results)?;
            } else if results.is_empty() {
                writeln!(out, "{name}: dkim=none (no signatures)")?;
            } else {
                for r in results {
                    writeln!(out, "{name}: {}", r.method_result())?;
                }
            }
            Ok(results.iter().any(|r| r.result == DkimResult::Pass))
        },
    )
}

/// One line of `dmarc dkim verify --json`: `{"file": ..., "signatures": [{"d", "s", "a",
/// "result", "reason"}, ...]}`, keys in that order, signatures in header order.
#[derive(serde::Serialize)]
struct JsonLine<'a> {
    file: &'a str,
    signatures: Vec<JsonSignature<'a>>,
}

#[derive(serde::Serialize)]
struct JsonSignature<'a> {
    d: Option<&'a str>,
    s: Option<&'a str>,
    a: Option<&'a str>,
    result: &'a str,
    reason: Option<String>,
}

fn write_json_line(
    out: &mut dyn Write,
    file: &str,
    results: &[SignatureResult],
) -> std::io::Result<()> {
    let line = JsonLine {
        file,
        signatures: results
            .iter()
            .map(|r| JsonSignature {
                d: r.info.domain.as_deref(),
                s: r.info.selector.as_deref(),
                a: r.info.algorithm.as_deref(),
                result: r.result.as_str(),
                reason: r.reason(),
            })
            .collect(),
    };
    serde_json::to_writer(&mut *out, &line)?;
    out.write_all(b"\n")
}

fn sign_cmd(a: SignArgs) -> anyhow::Result<ExitCode> {
    let message = input::read(&a.file, "message", input::MAX_MESSAGE)?;
    let key_text = input::read(&a.key, "key file", input::MAX_KEY)?;
    let key = SigningKey::from_pem(&key_text)
        .with_context(|| format!("loading key {}", a.key.display()))?;
    let mut opts = SignOptions::new(a.domain, a.selector);
    if let Some(h) = &a.headers {
        opts.headers = h
            .split([':', ','])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
    }
    opts.oversign = !a.no_oversign;
    opts.canonicalization = Canonicalization::parse(&a.canonicalization)
        .with_context(|| format!("unknown canonicalization {:?}", a.canonicalization))?;
    opts.identity = a.identity;
    opts.expire_after = a.expire_after;
    let field = sign(&message, &key, &opts, &*clock(a.now))?;
    // Keep the message's own line endings: CRLF when its first line ends with CRLF.
    let crlf = match memchr_lf(&message) {
        Some(p) => p > 0 && message.get(p - 1) == Some(&b'\r'),
        None => true,
    };
    let field = if crlf {
        field
    } else {
        field.replace("\r\n", "\n")
    };
    let mut out = std::io::stdout().lock();
    out.write_all(field.as_bytes())?;
    out.write_all(&message)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn keygen(a: KeygenArgs) -> anyhow::Result<ExitCode> {
    // The names go into a file name and a DNS record: both must be domain names (the
    // selector is one or more labels, RFC 6376 §3.1).
    let domain = DomainName::new(a.domain.trim_end_matches('.'))
        .map_err(|e| anyhow::anyhow!("--domain: {e}"))?;
    let selector = DomainName::new(&a.selector).map_err(|e| anyhow::anyhow!("--selector: {e}"))?;
    let key = match a.algorithm {
        KeyAlgorithm::Rsa2048 => SigningKey::generate_rsa(2048),
        KeyAlgorithm::Rsa3072 => SigningKey::generate_rsa(3072),
        KeyAlgorithm::Rsa4096 => SigningKey::generate_rsa(4096),
        KeyAlgorithm::Ed25519 => SigningKey::generate_ed25519(),
    }?;
    let path = a
        .out
        .unwrap_or_else(|| PathBuf::from(format!("{selector}.{domain}.key.pem")));
    write_private(&path, key.to_pkcs8_pem()?.as_bytes())?;
    let record = key.dns_record()?;
    eprintln!("dmarc: private key written to {}", path.display());
    writeln!(
        std::io::stdout(),
        "{selector}._domainkey.{domain}. IN TXT {}",
        zone_strings(&record)
    )?;
    Ok(ExitCode::SUCCESS)
}

fn memchr_lf(data: &[u8]) -> Option<usize> {
    data.iter().position(|&b| b == b'\n')
}

/// Creates `path` with mode 0600, refusing to overwrite.
fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    Ok(())
}

/// A TXT value as zone-file character-strings of at most 255 bytes each.
fn zone_strings(value: &str) -> String {
    if value.bytes().any(|b| b == b'"' || b == b'\\') {
        // Never produced by key records; refuse to guess an escaping.
        return format!("{value:?}");
    }
    value
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_split_at_255() {
        let v = "x".repeat(600);
        let s = zone_strings(&v);
        assert_eq!(s.matches('"').count(), 6);
        assert!(s.starts_with(&format!("\"{}\" ", "x".repeat(255))));
    }

    #[test]
    fn json_shape() {
        let mut out = Vec::new();
        write_json_line(&mut out, "m\"1.eml", &[]).unwrap();
        let line = String::from_utf8(out).unwrap();
        assert_eq!(line, "{\"file\":\"m\\\"1.eml\",\"signatures\":[]}\n");
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["file"], "m\"1.eml");
    }
}
