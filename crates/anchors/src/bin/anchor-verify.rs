//! mail-auth 0.13 doing the work of `dmarc verify --batch CASES --dns-zone ZONE`: for each
//! case, read the message, verify DKIM, SPF (MAIL FROM; mail-auth checks HELO first) and
//! DMARC, and print the Authentication-Results field, in one process.
//!
//! Usage: anchor-verify CASES.jsonl ZONE.json

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;

use dmarc_anchors::caches;

#[derive(serde::Deserialize)]
struct Case {
    file: String,
    ip: String,
    helo: String,
    #[serde(default)]
    mail_from: String,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, cases_path, zone] = args.as_slice() else {
        eprintln!("usage: anchor-verify CASES.jsonl ZONE.json");
        return ExitCode::from(2);
    };
    let c = match caches(Path::new(zone)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("anchor-verify: {e}");
            return ExitCode::from(2);
        }
    };
    let Ok(text) = std::fs::read_to_string(cases_path) else {
        eprintln!("anchor-verify: cannot read {cases_path}");
        return ExitCode::from(2);
    };
    let dir = Path::new(cases_path).parent().unwrap_or(Path::new("."));
    let Ok(authenticator) = mail_auth::MessageAuthenticator::new_cloudflare() else {
        eprintln!("anchor-verify: cannot build the resolver");
        return ExitCode::from(2);
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut failed = false;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(case) = serde_json::from_str::<Case>(line) else {
            failed = true;
            continue;
        };
        let (Ok(message), Ok(ip)) = (
            std::fs::read(dir.join(&case.file)),
            case.ip.parse::<IpAddr>(),
        ) else {
            failed = true;
            continue;
        };
        let Some(msg) = mail_auth::AuthenticatedMessage::parse(&message) else {
            failed = true;
            continue;
        };
        let dkim = futures::executor::block_on(
            authenticator.verify_dkim(
                mail_auth::Parameters::new(&msg)
                    .with_txt_cache(&c.txt)
                    .with_mx_cache(&c.mx)
                    .with_ipv4_cache(&c.v4)
                    .with_ipv6_cache(&c.v6)
                    .with_ptr_cache(&c.ptr),
            ),
        );
        let sender = if case.mail_from.is_empty() {
            format!("postmaster@{}", case.helo)
        } else {
            case.mail_from.clone()
        };
        let spf = futures::executor::block_on(
            authenticator.verify_spf(
                mail_auth::Parameters::new(
                    mail_auth::spf::verify::SpfParameters::verify_mail_from(
                        ip,
                        &case.helo,
                        "localhost",
                        &sender,
                    ),
                )
                .with_txt_cache(&c.txt)
                .with_mx_cache(&c.mx)
                .with_ipv4_cache(&c.v4)
                .with_ipv6_cache(&c.v6)
                .with_ptr_cache(&c.ptr),
            ),
        );
        let mail_from_domain = sender.rsplit_once('@').map_or("", |(_, d)| d);
        let dmarc = futures::executor::block_on(
            authenticator.verify_dmarc(
                mail_auth::Parameters::new(mail_auth::dmarc::verify::DmarcParameters::new(
                    &msg,
                    &dkim,
                    mail_from_domain,
                    &spf,
                ))
                .with_txt_cache(&c.txt)
                .with_mx_cache(&c.mx)
                .with_ipv4_cache(&c.v4)
                .with_ipv6_cache(&c.v6)
                .with_ptr_cache(&c.ptr),
            ),
        );
        let header = mail_auth::AuthenticationResults::new("localhost")
            .with_dkim_results(&dkim, msg.from())
            .with_spf_mailfrom_result(&spf, ip, &sender, &case.helo)
            .with_dmarc_result(&dmarc);
        if writeln!(out, "{}: {}", case.file, header.to_string().trim_end()).is_err() {
            return ExitCode::from(2);
        }
    }
    if out.flush().is_err() {
        return ExitCode::from(2);
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
