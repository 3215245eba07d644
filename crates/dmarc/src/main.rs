//! `dmarc`: email authentication end to end.
//!
//! This is a thin layer: it parses arguments, builds the DNS and store adapters, and calls
//! the library crates. It is the only place where `anyhow` is used.

mod cmd;
mod dns_args;

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
    /// Evaluate SPF (RFC 7208) for a client IP, HELO name and MAIL FROM, and show why.
    Spf(cmd::spf::SpfArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("dmarc: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Dkim(args) => cmd::dkim::run(args),
        Command::Spf(args) => cmd::spf::run(args),
    }
}
