//! `dmarc ingest`: read report files, directories, mbox files, maildirs and IMAP mailboxes
//! into the store; and the `--db` option every store command shares.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use dmarc_ingest::{ItemOutcome, ingest_paths, plan};
use dmarc_report::Limits;
use dmarc_store::Store;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// Where the report store is (`--db`).
#[derive(Debug, Clone, clap::Args)]
pub struct DbArgs {
    /// The report store: an SQLite file, a path or sqlite:PATH (created if missing), or a
    /// PostgreSQL URL (postgres:// or postgresql://user:password@host:port/database);
    /// any other URL is refused. Default: an SQLite file in the
    /// user's data directory ($XDG_DATA_HOME/dmarc/dmarc.sqlite3, or
    /// ~/.local/share/dmarc/dmarc.sqlite3).
    #[arg(long, value_name = "PATH|URL", env = "DMARC_DB")]
    pub db: Option<String>,
}

impl DbArgs {
    /// Opens the store, creating and migrating it as needed.
    pub fn open(&self) -> anyhow::Result<Store> {
        let target = match &self.db {
            Some(t) => t.clone(),
            None => dmarc_store::default_sqlite_path()
                .context(
                    "no --db given and neither XDG_DATA_HOME nor HOME is set to find the \
                     default database",
                )?
                .display()
                .to_string(),
        };
        Store::open(&target).with_context(|| {
            let shown = if target.contains("://") {
                "the PostgreSQL database".to_string()
            } else {
                target.clone()
            };
            format!("opening the report store {shown}")
        })
    }
}

/// Arguments of `dmarc ingest`.
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Report files, directories (walked recursively), mbox files or maildirs.
    ///
    /// Files may be XML, JSON, gzip, zip or email messages. A directory with `cur` and
    /// `new` subdirectories is read as a maildir; a file starting with a `From ` line as
    /// an mbox, one message at a time. Hidden files are skipped. `-` reads one input
    /// (e.g. a report email piped from the mail server) from standard input.
    #[arg(required_unless_present = "imap", value_name = "PATH")]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    imap: crate::cmd::imap_args::ImapArgs,
    #[command(flatten)]
    db: DbArgs,
    /// Print the counts as one JSON object.
    #[arg(long)]
    json: bool,
    /// List every report stored or found again, not only the rejected ones.
    #[arg(long, short)]
    verbose: bool,
}

/// Runs `dmarc ingest`.
///
/// Exit status 0 when every input was read (rejected reports are kept in the store and
/// listed by `dmarc report rejected`, they are not a failure of the command).
pub fn run(args: IngestArgs) -> anyhow::Result<ExitCode> {
    let password = std::env::var(dmarc_ingest::imap::PASSWORD_ENV).ok();
    if let Some(config) = args.imap.to_config(password)? {
        anyhow::ensure!(
            args.paths.is_empty(),
            "give either --imap or paths, not both (run dmarc ingest twice)"
        );
        return run_imap(&config, &args);
    }
    let stdin_too = args.paths.iter().any(|p| p.as_os_str() == "-");
    let paths: Vec<PathBuf> = args
        .paths
        .iter()
        .filter(|p| p.as_os_str() != "-")
        .cloned()
        .collect();
    let inputs = plan(&paths)?;
    let mut store = args.db.open()?;
    let limits = Limits::default();
    let mut stdin_counts = dmarc_ingest::Counts::default();
    if stdin_too {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(std::io::stdin().lock(), limits.max_input_size + 1),
            &mut bytes,
        )
        .context("reading standard input")?;
        if bytes.len() as u64 > limits.max_input_size {
            anyhow::bail!(
                "standard input is larger than {} bytes (max_input_size)",
                limits.max_input_size
            );
        }
        let outcome = dmarc_ingest::ingest_bytes(
            &mut store,
            &dmarc_ingest::Source::stdin(),
            &bytes,
            &limits,
        )?;
        for item in &outcome.items {
            if let ItemOutcome::Rejected { id, error, .. } = item
                && !args.json
            {
                eprintln!("rejected #{id}: {}", super::summary::clean(error));
            }
        }
        stdin_counts = outcome.counts();
    }
    let total: u64 = inputs.iter().map(|i| i.size).sum();

    let pb = if std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({eta}) {msg}",
        )
        .context("progress bar template")?
        .progress_chars("=> "),
    );

    let verbose = args.verbose;
    let json_out = args.json;
    let counts = ingest_paths(&mut store, &inputs, &limits, &mut |p, source, outcome| {
        pb.set_position(p.done_bytes);
        pb.set_message(format!(
            "{} new, {} dup, {} rejected",
            p.counts.new, p.counts.duplicate, p.counts.rejected
        ));
        for item in &outcome.items {
            let line = match item {
                ItemOutcome::Rejected {
                    id,
                    error,
                    first_time,
                    ..
                } => {
                    let error = super::summary::clean(error);
                    if *first_time {
                        format!("rejected #{id}: {error}")
                    } else {
                        format!("rejected again #{id}: {error}")
                    }
                }
                ItemOutcome::New { kind, part, .. } if verbose => {
                    let (part, at) = (
                        super::summary::clean(part),
                        super::summary::clean(&source.location),
                    );
                    format!("new {kind} report: {part} ({at})")
                }
                ItemOutcome::Duplicate { kind, part, .. } if verbose => {
                    let (part, at) = (
                        super::summary::clean(part),
                        super::summary::clean(&source.location),
                    );
                    format!("duplicate {kind} report: {part} ({at})")
                }
                _ => continue,
            };
            if !json_out {
                pb.suspend(|| eprintln!("{line}"));
            }
        }
    })?;
    pb.finish_and_clear();
    let mut counts = counts;
    counts += stdin_counts;
    let read = inputs.len() + usize::from(stdin_too);

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        writeln!(
            out,
            "{}",
            serde_json::to_string(&IngestJson {
                bytes: Some(total),
                inputs: Some(read),
                ..IngestJson::new(counts, store.location())
            })?
        )?;
    } else {
        writeln!(
            out,
            "{read} input(s) read into {}: {counts}",
            store.location()
        )?;
        if counts.rejected > 0 {
            writeln!(
                out,
                "rejected inputs are kept with their error: see `dmarc report rejected`"
            )?;
        }
    }
    out.flush().context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// `dmarc ingest --imap URL`: every message of the mailbox goes through the same ingestion
/// as a file; the IMAP layer then moves or flags it (see `dmarc_ingest::imap`).
fn run_imap(
    config: &dmarc_ingest::imap::ImapConfig,
    args: &IngestArgs,
) -> anyhow::Result<ExitCode> {
    use dmarc_ingest::imap::{Disposition, MessageRef};

    let mut store = args.db.open()?;
    let limits = Limits::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let on_signal = shutdown.clone();
    let mut counts = dmarc_ingest::Counts::default();
    let (json_out, verbose) = (args.json, args.verbose);
    let summary = runtime.block_on(async {
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            on_signal.cancel();
        });
        dmarc_ingest::imap::run_imap(config, shutdown, |bytes: &[u8], msg: &MessageRef| {
            let source = dmarc_ingest::Source::imap(msg.source(), format!("UID {}", msg.uid));
            let outcome = dmarc_ingest::ingest_bytes(&mut store, &source, bytes, &limits)?;
            let mut rejected = false;
            for item in &outcome.items {
                match item {
                    ItemOutcome::Rejected { id, error, .. } => {
                        rejected = true;
                        if !json_out {
                            eprintln!(
                                "rejected #{id} (UID {}): {}",
                                msg.uid,
                                super::summary::clean(error)
                            );
                        }
                    }
                    ItemOutcome::New { kind, part, .. } if verbose && !json_out => {
                        eprintln!(
                            "new {kind} report: {} (UID {})",
                            super::summary::clean(part),
                            msg.uid
                        );
                    }
                    _ => {}
                }
            }
            counts += outcome.counts();
            Ok::<_, dmarc_ingest::IngestError>(if rejected {
                Disposition::Rejected
            } else {
                Disposition::Processed
            })
        })
        .await
    });
    let summary = summary.context("reading the IMAP mailbox")?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if json_out {
        writeln!(
            out,
            "{}",
            serde_json::to_string(&IngestJson {
                messages: Some(summary.processed + summary.rejected),
                oversized: Some(summary.oversized),
                ..IngestJson::new(counts, store.location())
            })?
        )?;
    } else {
        writeln!(out, "{summary}")?;
        writeln!(out, "stored into {}: {counts}", store.location())?;
    }
    out.flush().context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// The `--json` line of `dmarc ingest` (paths, or an IMAP mailbox): the keys in sorted order,
/// as in the other JSON outputs; `bytes` and `inputs` for paths, `messages` and `oversized`
/// for a mailbox.
#[derive(Serialize)]
struct IngestJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
    db: &'a str,
    duplicate: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    inputs: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<u64>,
    new: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    oversized: Option<u64>,
    rejected: u64,
    rejected_new: u64,
}

impl<'a> IngestJson<'a> {
    fn new(c: dmarc_ingest::Counts, db: &'a str) -> Self {
        IngestJson {
            bytes: None,
            db,
            duplicate: c.duplicate,
            inputs: None,
            messages: None,
            new: c.new,
            oversized: None,
            rejected: c.rejected,
            rejected_new: c.rejected_new,
        }
    }
}
