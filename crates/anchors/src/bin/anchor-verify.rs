//! mail-auth 0.13 doing the work of `dmarc verify --batch CASES --dns-zone ZONE`: for each
//! case, read the message, verify DKIM, SPF (MAIL FROM; mail-auth checks HELO first) and
//! DMARC, build the Authentication-Results field with mail-auth's own builder, and print one
//! JSON line per case as `dmarc verify --batch` does, with what mail-auth's API gives: the
//! action, the field's value, each signature's `d`, `s`, result and reason (the error's
//! text), the DMARC result, policy, requested policy, header From and policy domain, the DKIM
//! and SPF alignment results with their reasons, and the SPF result, domain and explanation.
//! (What ours writes besides: a sentence of reason per check, an explanation paragraph, the
//! alignment rows per identifier, the HELO SPF verdict, the ARC and upstream fields; mail-auth
//! has no API for these words.)
//!
//! Usage: anchor-verify CASES.jsonl ZONE.json

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;

use dmarc_anchors::caches;

/// One signature's verdict.
#[derive(serde::Serialize)]
struct Dkim<'a> {
    d: Option<&'a str>,
    reason: Option<String>,
    result: &'static str,
    s: Option<&'a str>,
}

/// An alignment result (`pass`, `fail; why`, ...).
#[derive(serde::Serialize)]
struct Alignment {
    dkim: String,
    spf: String,
}

#[derive(serde::Serialize)]
struct Dmarc<'a> {
    alignment: Alignment,
    applied_policy: String,
    header_from: &'a str,
    policy_domain: &'a str,
    requested_policy: Option<String>,
    result: String,
}

#[derive(serde::Serialize)]
struct Spf<'a> {
    domain: &'a str,
    explanation: Option<&'a str>,
    result: &'static str,
}

/// One case's line, keys in the order ours prints them.
#[derive(serde::Serialize)]
struct Line<'a> {
    action: &'static str,
    authentication_results: &'a str,
    dkim: Vec<Dkim<'a>>,
    dmarc: Dmarc<'a>,
    file: &'a str,
    spf: Spf<'a>,
}

fn dkim_word(r: &mail_auth::DkimResult) -> (&'static str, Option<String>) {
    use mail_auth::DkimResult as R;
    match r {
        R::Pass => ("pass", None),
        R::Neutral(e) => ("neutral", Some(e.to_string())),
        R::Fail(e) => ("fail", Some(e.to_string())),
        R::PermError(e) => ("permerror", Some(e.to_string())),
        R::TempError(e) => ("temperror", Some(e.to_string())),
        R::None => ("none", None),
    }
}

fn spf_word(r: mail_auth::SpfResult) -> &'static str {
    use mail_auth::SpfResult as R;
    match r {
        R::Pass => "pass",
        R::Fail => "fail",
        R::SoftFail => "softfail",
        R::Neutral => "neutral",
        R::TempError => "temperror",
        R::PermError => "permerror",
        R::None => "none",
    }
}

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
            .with_dmarc_result(&dmarc)
            .to_string();
        let value = header
            .strip_prefix("Authentication-Results:")
            .unwrap_or(&header)
            .trim();
        let failed_dmarc = matches!(dmarc.result(), mail_auth::DmarcResult::Fail(_));
        let policy = dmarc.policy();
        let action = match policy {
            mail_auth::dmarc::Policy::Reject if failed_dmarc => "reject",
            mail_auth::dmarc::Policy::Quarantine if failed_dmarc => "quarantine",
            _ => "accept",
        };
        let line = Line {
            action,
            authentication_results: value,
            dkim: dkim
                .iter()
                .map(|o| {
                    let (result, reason) = dkim_word(o.result());
                    Dkim {
                        d: o.signature().map(|s| s.d.as_str()),
                        reason,
                        result,
                        s: o.signature().map(|s| s.s.as_str()),
                    }
                })
                .collect(),
            dmarc: Dmarc {
                alignment: Alignment {
                    dkim: dmarc.dkim_result().to_string(),
                    spf: dmarc.spf_result().to_string(),
                },
                applied_policy: policy.to_string(),
                header_from: msg.from().rsplit_once('@').map_or(msg.from(), |(_, d)| d),
                policy_domain: dmarc.domain(),
                requested_policy: dmarc.dmarc_record().map(|r| r.p.to_string()),
                result: dmarc.result().to_string(),
            },
            file: &case.file,
            spf: Spf {
                domain: spf.domain(),
                explanation: spf.explanation(),
                result: spf_word(spf.result()),
            },
        };
        if serde_json::to_writer(&mut out, &line).is_err() || out.write_all(b"\n").is_err() {
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
