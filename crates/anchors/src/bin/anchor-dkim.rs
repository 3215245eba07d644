//! mail-auth 0.13 doing the work of `dmarc dkim verify --dns-zone ZONE FILES...`: verify
//! every DKIM signature of each file and print one line per signature (`dkim=none` for an
//! unsigned file), in one process.
//!
//! Usage: anchor-dkim ZONE.json FILES...

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use dmarc_anchors::caches;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let Some((zone, files)) = args.get(1..).and_then(|a| a.split_first()) else {
        eprintln!("usage: anchor-dkim ZONE.json FILES...");
        return ExitCode::from(2);
    };
    let c = match caches(Path::new(zone)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("anchor-dkim: {e}");
            return ExitCode::from(2);
        }
    };
    let Ok(authenticator) = mail_auth::MessageAuthenticator::new_cloudflare() else {
        eprintln!("anchor-dkim: cannot build the resolver");
        return ExitCode::from(2);
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut all_pass = true;
    for file in files {
        let Ok(message) = std::fs::read(file) else {
            eprintln!("anchor-dkim: cannot read {file}");
            return ExitCode::from(2);
        };
        let Some(msg) = mail_auth::AuthenticatedMessage::parse(&message) else {
            all_pass = false;
            continue;
        };
        let results = futures::executor::block_on(
            authenticator.verify_dkim(
                mail_auth::Parameters::new(&msg)
                    .with_txt_cache(&c.txt)
                    .with_mx_cache(&c.mx)
                    .with_ipv4_cache(&c.v4)
                    .with_ipv6_cache(&c.v6)
                    .with_ptr_cache(&c.ptr),
            ),
        );
        all_pass &= results
            .iter()
            .any(|r| r.result() == &mail_auth::DkimResult::Pass);
        let w = if results.is_empty() {
            writeln!(out, "{file}: dkim=none")
        } else {
            results
                .iter()
                .try_for_each(|r| writeln!(out, "{file}: {:?}", r.result()))
        };
        if w.is_err() {
            return ExitCode::from(2);
        }
    }
    if out.flush().is_err() {
        return ExitCode::from(2);
    }
    if all_pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
