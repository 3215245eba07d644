//! `dmarc`: email authentication end to end.
//!
//! This is a thin layer: it parses arguments, builds the DNS and store adapters, and calls
//! the library crates. It is the only place where `anyhow` is used.

mod cmd;
mod dns_args;
mod input;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "dmarc", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// DKIM (RFC 6376): verify, sign, generate keys.
    Dkim(cmd::dkim::DkimArgs),
    /// ARC (RFC 8617): validate chains, seal messages.
    Arc(cmd::arc::ArcArgs),
    /// Read DMARC aggregate, failure and SMTP TLS reports.
    Report(cmd::report::ReportArgs),
    /// Read report files, directories, mbox files, maildirs and IMAP mailboxes into the report store.
    Ingest(cmd::ingest::IngestArgs),
    /// Summarise the stored reports: per domain and period, sources, reporters.
    Summary(cmd::summary::SummaryArgs),
    /// Evaluate SPF (RFC 7208) for a client IP, HELO name and MAIL FROM, and show why.
    Spf(cmd::spf::SpfArgs),
    /// Verify a message as a receiver: SPF, DKIM and DMARC, the action and the
    /// Authentication-Results field. With --batch, many messages on every core.
    Verify(cmd::verify::VerifyArgs),
    /// Run the milter for Postfix and Sendmail: SPF, DKIM and DMARC on every message,
    /// Authentication-Results added, the domain owner's policy applied.
    Milter(cmd::milter::MilterArgs),
    /// Check a domain's DMARC, SPF, DKIM, MX, MTA-STS, TLS-RPT and BIMI records, and whether mail sent through a service would pass DMARC.
    Check(cmd::check::CheckArgs),
    /// Build a DMARC or SPF record to publish, valid by construction.
    Record(cmd::record::RecordArgs),
    /// Who sends as a domain: every source of the stored reports named and classified (own, service, forwarder, unknown), with the fix.
    Sources(cmd::sources::SourcesArgs),
    /// Simulate the next DMARC policy stages on the stored reports and advise the record to publish next.
    Rollout(cmd::rollout::RolloutArgs),
    /// Serve the dashboard over the report store: pages, a JSON API, CSV exports.
    Serve(cmd::serve::ServeArgs),
    /// Alerts: evaluate the rules of the configuration once (for cron), deliver by webhook and email.
    Alerts(cmd::alerts::AlertsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        // The reader of standard output went away (`dmarc summary | head`): what it wanted
        // was written; end quietly, as `cat` and `grep` do.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("dmarc: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Whether `err` comes from writing to a closed pipe (`EPIPE`: Rust ignores `SIGPIPE`, so
/// the write fails instead of ending the process), directly or through serde_json.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        let kind = e
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
            .or_else(|| {
                e.downcast_ref::<serde_json::Error>()
                    .and_then(serde_json::Error::io_error_kind)
            });
        kind == Some(std::io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Dkim(args) => cmd::dkim::run(args),
        Command::Arc(args) => cmd::arc::run(args),
        Command::Report(args) => cmd::report::run(args),
        Command::Ingest(args) => cmd::ingest::run(args),
        Command::Summary(args) => cmd::summary::run(args),
        Command::Spf(args) => cmd::spf::run(args),
        Command::Verify(args) => cmd::verify::run(args),
        Command::Milter(args) => cmd::milter::run(args),
        Command::Check(args) => cmd::check::run(args),
        Command::Record(args) => cmd::record::run(args),
        Command::Sources(args) => cmd::sources::run(args),
        Command::Rollout(args) => cmd::rollout::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Alerts(args) => cmd::alerts::run(args),
    }
}
