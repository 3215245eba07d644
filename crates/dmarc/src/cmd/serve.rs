//! `dmarc serve`: the dashboard over the report store (crate `dmarc-web`).

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use dmarc_web::{FileSettings, Settings};

/// Arguments of `dmarc serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The address to listen on. Any address other than a loopback one (0.0.0.0
    /// included) needs authentication configured in --config; port 0 picks a free port.
    /// Default: the configuration's `listen`, else 127.0.0.1:8080.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
    /// The report store (as for `dmarc ingest`); default: the configuration's `db`, else
    /// $DMARC_DB, else the SQLite file in the user's data directory.
    #[command(flatten)]
    db: super::ingest::DbArgs,
    /// A TOML file whose `[serve]` section sets listen, db, password_hash, token or
    /// token_file, and session_hours; its `[alerts]` section (with `[transport]`) the alert
    /// rules evaluated every interval_minutes.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Read a password from standard input, print its Argon2id hash for password_hash, and
    /// exit.
    #[arg(long)]
    hash_password: bool,
    /// Where DNS answers (the live records behind sources and rollout advice, reverse DNS)
    /// come from.
    #[command(flatten)]
    dns: crate::dns_args::DnsArgs,
}

/// Runs `dmarc serve`.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    if args.hash_password {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        let password = line.trim_end_matches(['\r', '\n']);
        anyhow::ensure!(!password.is_empty(), "the password is empty");
        println!(
            "{}",
            dmarc_web::hash_password(password).map_err(anyhow::Error::msg)?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let (file, credentials, alerts) = match &args.config {
        Some(path) => {
            let f = FileSettings::load(path)?;
            let c = f.credentials(path)?;
            (f, c, dmarc_web::alerts::Alerts::load(path)?)
        }
        None => (
            FileSettings::default(),
            dmarc_web::Credentials::default(),
            None,
        ),
    };
    let db = super::ingest::DbArgs {
        db: args.db.db.clone().or(file.db.clone()),
    };
    // Opened here first: the error says which store, as every command's does.
    drop(db.open()?);
    let db = match db.db {
        Some(d) => d,
        None => dmarc_store::default_sqlite_path()
            .context("no --db given and no default database location")?
            .display()
            .to_string(),
    };
    let listen = match (args.listen, file.listen) {
        (Some(l), _) | (None, Some(l)) => l,
        (None, None) => dmarc_web::DEFAULT_LISTEN
            .parse()
            .context("default address")?,
    };
    let settings = Settings {
        listen,
        db,
        credentials,
        alerts,
    };
    settings.check()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        let lookup = args.dns.lookup()?;
        dmarc_web::serve(settings, lookup, shutdown()).await?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Completes at SIGINT or SIGTERM.
async fn shutdown() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
