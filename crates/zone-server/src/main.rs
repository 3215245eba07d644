//! `zone-server --zone FILE [--listen 127.0.0.1:PORT]`: serves the zone over UDP and TCP
//! until interrupted. The first line on standard output is the address it listens on
//! (`127.0.0.1:PORT`), so scripts can start it with port 0 and read the port chosen.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// An authoritative DNS server answering from an RFC 1035 zone file (for tests and
/// benchmarks on loopback).
#[derive(Debug, Parser)]
#[command(name = "zone-server", version)]
struct Args {
    /// The zone file (RFC 1035 master file, as dmarc --dns-zone reads it).
    #[arg(long, value_name = "FILE")]
    zone: PathBuf,
    /// The address to listen on, UDP and TCP; port 0 picks a free port.
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let zone = match dmarc_dns::ZoneFile::load(&args.zone) {
        Ok(z) => z,
        Err(e) => {
            eprintln!("zone-server: {e}");
            return ExitCode::from(2);
        }
    };
    let names = zone.name_count();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("zone-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let running = match zone_server::serve(zone, args.listen).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("zone-server: cannot listen on {}: {e}", args.listen);
                return ExitCode::FAILURE;
            }
        };
        println!("{}", running.addr);
        let _ = std::io::stdout().flush();
        eprintln!(
            "zone-server: serving {} ({names} names) on {} (UDP and TCP)",
            args.zone.display(),
            running.addr
        );
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("zone-server: {e}");
                    return ExitCode::FAILURE;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        let answered = running.answered();
        let _ = running.shutdown().await;
        eprintln!("zone-server: stopped after {answered} questions");
        ExitCode::SUCCESS
    })
}
