//! `dmarc report rejected`: list the inputs the store kept because they could not be read.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use super::ingest::DbArgs;
use super::summary::{clean, format_utc};

/// Arguments of `dmarc report rejected`.
#[derive(Debug, clap::Args)]
pub struct RejectedArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Print one JSON object per line.
    #[arg(long, conflicts_with = "content")]
    json: bool,
    /// Write the kept bytes of rejected input ID to standard output instead.
    #[arg(long, value_name = "ID")]
    content: Option<i64>,
}

/// Runs `dmarc report rejected`.
pub fn run(args: RejectedArgs) -> anyhow::Result<ExitCode> {
    let mut store = args.db.open()?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if let Some(id) = args.content {
        let bytes = store
            .rejected_content(id)?
            .with_context(|| format!("no kept input for rejected entry #{id}"))?;
        out.write_all(&bytes)?;
        out.flush().context("writing to stdout")?;
        return Ok(ExitCode::SUCCESS);
    }
    let list = store.rejected()?;
    if args.json {
        for r in &list {
            serde_json::to_writer(&mut out, r)?;
            writeln!(out)?;
        }
    } else if list.is_empty() {
        writeln!(out, "no rejected inputs in {}", store.location())?;
    } else {
        for r in &list {
            let seen = if r.times_seen > 1 {
                format!(
                    ", seen {} times since {}",
                    r.times_seen,
                    format_utc(r.first_seen)
                )
            } else {
                String::new()
            };
            let kept = if r.size > 0 {
                format!("{} bytes kept", r.size)
            } else {
                "bytes not kept".to_string()
            };
            writeln!(
                out,
                "#{} {} UTC  {} {} ({kept}{seen})\n    {}: {}",
                r.id,
                format_utc(r.last_seen),
                r.source_kind,
                clean(&r.source),
                r.error_kind,
                clean(&r.error)
            )?;
        }
        writeln!(
            out,
            "{} rejected input(s); `dmarc report rejected --content ID` writes one's bytes",
            list.len()
        )?;
    }
    out.flush().context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}
