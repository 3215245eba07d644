//! What `dmarc dkim verify` and `dmarc arc verify` share: the arguments (message files,
//! DNS, `--now`, `--json`) and the loop over the files, one line (or JSON object) each,
//! with the exit status both document (0 when every message passes, 1 otherwise, 2 when a
//! file could not be read).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use dmarc_dns::SystemClock;
use dmarc_proto::{Clock, FixedClock};

use crate::dns_args::DnsArgs;
use crate::input;

/// The arguments of a verification over message files.
#[derive(Debug, Args)]
pub struct VerifyFilesArgs {
    /// Message files (RFC 5322; CRLF or LF line endings).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub dns: DnsArgs,
    /// Verify as if the time were this (seconds since the Unix epoch), for t= and x=.
    #[arg(long, value_name = "UNIX_TIME")]
    pub now: Option<u64>,
    /// One JSON object per file, one per line.
    #[arg(long)]
    pub json: bool,
}

/// The clock `--now` asks for, or the system's.
pub fn clock(now: Option<u64>) -> Box<dyn Clock> {
    match now {
        Some(t) => Box::new(FixedClock::from_unix_seconds(t)),
        None => Box::new(SystemClock),
    }
}

/// A file that could not be read, in the JSON output.
#[derive(serde::Serialize)]
struct JsonError<'a> {
    file: &'a str,
    error: String,
}

/// Reads each file of `args`, gives it to `verify` (with the DNS and the clock), and writes
/// what `write` makes of the outcome (`write` says whether the message passed) to a
/// buffered standard output. A file that cannot be read is reported (on standard error, or
/// as `{"file", "error"}` with `--json`) and the loop goes on.
pub fn run<T>(
    args: &VerifyFilesArgs,
    verify: impl AsyncFn(&[u8], &dmarc_dns::AnyLookup, &dyn Clock) -> T,
    write: impl Fn(&mut dyn Write, &str, &T, bool) -> std::io::Result<bool>,
) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let lookup = args.dns.lookup()?;
        let clock = clock(args.now);
        let (mut all_pass, mut had_error) = (true, false);
        let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
        for file in &args.files {
            let name = file.display().to_string();
            let message = match input::read(file, "message", input::MAX_MESSAGE) {
                Ok(m) => m,
                Err(e) => {
                    had_error = true;
                    if args.json {
                        let line = JsonError {
                            file: &name,
                            error: format!("{e:#}"),
                        };
                        serde_json::to_writer(&mut out, &line)?;
                        writeln!(out)?;
                    } else {
                        eprintln!("dmarc: {name}: {e:#}");
                    }
                    continue;
                }
            };
            let outcome = verify(&message, &lookup, &*clock).await;
            all_pass &= write(&mut out, &name, &outcome, args.json)?;
        }
        out.flush()?;
        Ok(if had_error {
            ExitCode::from(2)
        } else if all_pass {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}
