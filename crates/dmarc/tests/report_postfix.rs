//! Reports out through a real Postfix: the private instance of scripts/postfix.sh (which
//! scripts/test.sh starts). The whole mail-bench corpus goes through `dmarc verify
//! --batch --record --queue-failures`; `dmarc report send` sends the failure reports, then (a day later)
//! the aggregate reports over SMTP (`[transport] kind = "smtp"`, `starttls = "required"`
//! trusting the test CA with `ca_file`, SMTP AUTH with `username` and `password_file`) to
//! Postfix's smtpd without milters that demands STARTTLS and then AUTH (checked by the
//! Dovecot of scripts/dovecot.sh), which delivers them into a maildir (a listener without
//! STARTTLS, an untrusted certificate, or a wrong password gets nothing); `dmarc ingest` of that maildir
//! gives back exactly the figures that were sent, and every message passes our DKIM
//! verifier after its trip through Postfix.
//!
//! The destinations that fail are Postfix's own answers: one that Postfix accepts and
//! then bounces (an unknown user: a DSN comes back to the envelope sender's maildir and
//! `dmarc report bounces` reads it), one refused at RCPT with 554 (failed for good), one
//! answered 450 (deferred, retried, then given up).
//!
//! The milter's test (milter_postfix.rs) uses the same Postfix; cargo runs test binaries
//! one after another, and the two use different listeners and maildirs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

mod report_common;
use report_common::{bench, dmarc, expected, org, report_key, summary_figures, unix_now};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: this test needs the private Postfix of scripts/postfix.sh. Run \
             `bash scripts/test.sh`, or `bash scripts/dovecot.sh -- bash scripts/postfix.sh -- cargo test -p dmarc --test report_postfix` (as root)"
        )
    })
}

/// The messages delivered into `maildir` (new/), waiting up to 30 s for `n` of them.
fn wait_for(maildir: &Path, n: usize) -> Vec<PathBuf> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut v: Vec<PathBuf> = std::fs::read_dir(maildir.join("new"))
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        v.sort();
        if v.len() >= n {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{} messages in {}, expected {n}; Postfix log: {}",
            v.len(),
            maildir.display(),
            env("DMARC_TEST_POSTFIX_LOG")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn reports_go_through_postfix_arrive_verify_and_bounce() {
    let plain_relay = env("DMARC_TEST_POSTFIX_RELAY");
    let tls_relay = env("DMARC_TEST_POSTFIX_TLS_RELAY");
    let tls_ca = env("DMARC_TEST_POSTFIX_TLS_CA");
    // The smtpd that demands STARTTLS and SMTP AUTH; its users are Dovecot's.
    let auth_relay = env("DMARC_TEST_POSTFIX_AUTH_RELAY");
    assert!(
        !auth_relay.is_empty(),
        "DMARC_TEST_POSTFIX_AUTH_RELAY is empty: scripts/postfix.sh offers SMTP AUTH only inside \
         scripts/dovecot.sh: `bash scripts/dovecot.sh -- bash scripts/postfix.sh -- cargo test -p dmarc --test report_postfix`"
    );
    let auth_user = env("DMARC_TEST_IMAP_USER");
    let auth_password = env("DMARC_TEST_IMAP_PASSWORD");
    let reports_dir = PathBuf::from(env("DMARC_TEST_POSTFIX_REPORTS_MAILDIR"));
    let bounces_dir = PathBuf::from(env("DMARC_TEST_POSTFIX_BOUNCES_MAILDIR"));
    let already_reports = wait_for(&reports_dir, 0).len();
    let already_bounces = wait_for(&bounces_dir, 0).len();
    assert_eq!(
        (already_reports, already_bounces),
        (0, 0),
        "the Postfix maildirs are not empty: start a fresh scripts/postfix.sh"
    );

    let bench = bench();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // The whole corpus: every policy domain that publishes rua= (all of the corpus's
    // From domains), with ruf= where the corpus publishes it.
    let zone = bench.join("zone.txt");
    let zone_text = std::fs::read_to_string(&zone).unwrap();
    let chosen: Vec<String> = zone_text
        .lines()
        .filter(|l| l.contains("rua=mailto:"))
        .filter_map(|l| {
            l.strip_prefix("_dmarc.")?
                .split_once(". ")
                .map(|(d, _)| d.to_owned())
        })
        .collect();
    let with_ruf: Vec<String> = zone_text
        .lines()
        .filter(|l| l.contains("ruf=mailto:"))
        .filter_map(|l| {
            l.strip_prefix("_dmarc.")?
                .split_once(". ")
                .map(|(d, _)| d.to_owned())
        })
        .collect();
    assert_eq!(
        chosen.len(),
        24,
        "the mail-bench corpus has 24 policy domains with rua="
    );
    let text = std::fs::read_to_string(bench.join("cases.jsonl")).unwrap();
    let mut cases = String::new();
    for line in text.lines() {
        let mut c: Value = serde_json::from_str(line).unwrap();
        let pd = org(c["from_domain"].as_str().unwrap());
        assert!(chosen.contains(&pd), "{pd} publishes no rua=");
        let file = bench.join(c["file"].as_str().unwrap());
        c["file"] = Value::from(file.to_str().unwrap());
        cases.push_str(&format!("{c}\n"));
    }
    // Per policy domain: messages, DMARC passes, dispositions none/quarantine/reject.
    let want = expected();
    assert_eq!(want.len(), chosen.len());
    let cases_path = d.join("cases.jsonl");
    std::fs::write(&cases_path, cases).unwrap();
    let db = d.join("obs.sqlite3");
    let db_s = db.to_str().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dmarc"))
        .args([
            "verify",
            "--batch",
            cases_path.to_str().unwrap(),
            "--record",
            "--queue-failures",
        ])
        .args(["--db", db_s, "--dns-zone", zone.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("failure-report candidates"), "{stderr}");

    // The DNS at sending time: every domain's rua= (and ruf= where there is one) at
    // reports.example, which authorised them; brand0's also at the three failing
    // destinations, authorised too; our own DKIM key.
    let (key, key_line) = report_key(d);
    let mut z = String::new();
    for l in zone_text.lines() {
        let Some(pd) = chosen
            .iter()
            .find(|pd| l.starts_with(&format!("_dmarc.{pd}. ")))
        else {
            z.push_str(l);
            z.push('\n');
            continue;
        };
        let mut rua = "mailto:dmarc@reports.example".to_owned();
        if pd.as_str() == "brand0.example" {
            rua.push_str(
                ",mailto:gone@bounced.example,mailto:no@refused.example,mailto:wait@later.example,\
                 mailto:never@excluded.example",
            );
        }
        let record: Vec<String> = l
            .split_once("\"")
            .unwrap()
            .1
            .trim_end_matches('"')
            .split(';')
            .map(|t| {
                let t = t.trim();
                if t.starts_with("rua=") {
                    format!("rua={rua}")
                } else if t.starts_with("ruf=") {
                    "ruf=mailto:ruf@reports.example".to_owned()
                } else {
                    t.to_owned()
                }
            })
            .collect();
        z.push_str(&format!("_dmarc.{pd}. IN TXT \"{}\"\n", record.join("; ")));
        for dest in [
            "reports.example",
            "bounced.example",
            "refused.example",
            "later.example",
            "excluded.example",
        ] {
            z.push_str(&format!(
                "{pd}._report._dmarc.{dest}. IN TXT \"v=DMARC1\"\n"
            ));
        }
    }
    z.push_str(&key_line);
    z.push('\n');
    let send_zone = d.join("send.zone");
    std::fs::write(&send_zone, z).unwrap();

    // The rate limit per destination: fewer than the 24 reports all for
    // dmarc@reports.example, so some wait an hour.
    const RATE: usize = 20;
    let config_text = |relay: &str, ca_file: Option<&str>, login: Option<(&str, &Path)>| {
        let (host, port) = relay.rsplit_once(':').unwrap();
        let mut ca = ca_file.map_or(String::new(), |f| format!("ca_file = \"{f}\"\n"));
        if let Some((user, password_file)) = login {
            ca.push_str(&format!(
                "username = \"{user}\"\npassword_file = \"{}\"\n",
                password_file.display()
            ));
        }
        format!(
            "[organization]\nname = \"Test Receiver\"\nemail = \"dmarc@receiver.example\"\n\
             envelope_sender = \"bounces@reports.example\"\n\
             [failure]\nenabled = true\nper_domain_per_hour = 3\n\
             [dkim]\ndomain = \"receiver.example\"\nselector = \"rep\"\nkey = \"{}\"\n\
             [transport]\nkind = \"smtp\"\nhost = \"{host}\"\nport = {port}\nstarttls = \"required\"\n{ca}timeout = 20\n\
             [delivery]\nmax_attempts = 2\nretry_after = 60\nbounces_to_suppress = 1\n\
             per_destination_per_hour = {RATE}\nexclude_domains = [\"Excluded.Example.\"]\n",
            key.display()
        )
    };
    // Over STARTTLS, required, to the listener whose certificate the test CA signed and
    // that demands SMTP AUTH.
    let password_file = d.join("smtp-password");
    std::fs::write(&password_file, format!("{auth_password}\n")).unwrap();
    let wrong_password_file = d.join("wrong-password");
    std::fs::write(&wrong_password_file, "not-the-password\n").unwrap();
    let config = d.join("reports.toml");
    std::fs::write(
        &config,
        config_text(
            &auth_relay,
            Some(&tls_ca),
            Some((&auth_user, &password_file)),
        ),
    )
    .unwrap();

    // The store before anything is sent, for the relays that get nothing (at the end).
    let unsent = d.join("unsent.sqlite3");
    std::fs::copy(&db, &unsent).unwrap();
    // `dmarc report send`, with the exit status it must have: 1 when a delivery failed
    // for good in the run.
    let send = |now: u64, failed: bool| {
        let out = Command::new(env!("CARGO_BIN_EXE_dmarc"))
            .args(["report", "send", "--db", db_s, "--dns-zone"])
            .arg(&send_zone)
            .arg("--config")
            .arg(&config)
            .args(["--now", &now.to_string()])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(
            out.status.code(),
            Some(i32::from(failed)),
            "{}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };

    // Failure reports first, within the hour of the arrivals (no aggregate period is
    // closed yet): those of the domains with ruf=, each up to its hourly limit, to
    // ruf@reports.example.
    let t0 = unix_now() + 60;
    let failures = send(t0, false);
    let failure_sent = failures
        .matches("mailto:ruf@reports.example: sent: 250")
        .count();
    assert!(failure_sent >= 1, "{failures}");
    assert_eq!(
        failures.matches(": sent: ").count(),
        failure_sent,
        "{failures}"
    );

    // Two days later the day is closed: one aggregate report per policy domain, the
    // first RATE of them sent to dmarc@reports.example, the rest deferred an hour by
    // the rate limit.
    let t1 = unix_now() + 2 * 86_400;
    let sent = send(t1, true);
    let agg_sent = sent
        .matches("mailto:dmarc@reports.example: sent: 250")
        .count();
    assert_eq!(agg_sent, RATE, "{sent}");
    let limited = format!(
        "mailto:dmarc@reports.example: deferred: rate limit: {RATE} reports sent to \
         dmarc@reports.example in the last hour (at most {RATE})"
    );
    assert_eq!(
        sent.matches(&limited).count(),
        chosen.len() - RATE,
        "{sent}"
    );
    // The excluded destination domain is skipped (matched case-insensitively, without
    // its trailing dot), and nothing goes there.
    assert!(
        sent.contains("mailto:never@excluded.example: skipped: excluded.example is excluded by delivery.exclude_domains"),
        "{sent}"
    );
    assert!(!sent.contains("never@excluded.example: sent"), "{sent}");
    // Postfix accepted the one it bounces later, refused one for good, and one for now.
    assert!(
        sent.contains("mailto:gone@bounced.example: sent: 250"),
        "{sent}"
    );
    assert!(
        sent.contains("mailto:no@refused.example: failed: ")
            && sent.contains("554")
            && sent.contains("<no@refused.example>: Recipient address rejected: refused by policy"),
        "{sent}"
    );
    assert!(
        sent.contains("mailto:wait@later.example: deferred: ")
            && sent.contains("450")
            && sent.contains("try again later")
            && sent.contains("(attempt 1 of 2; next at "),
        "{sent}"
    );
    assert_eq!(sent.matches(": sent: ").count(), agg_sent + 1, "{sent}");

    // Everything Postfix accepted for reports.example arrives; the bounce comes back.
    let delivered = wait_for(&reports_dir, failure_sent + agg_sent);
    assert_eq!(delivered.len(), failure_sent + agg_sent);
    let dsns = wait_for(&bounces_dir, 1);
    assert_eq!(dsns.len(), 1);

    // The retry is due after the backoff: Postfix says 450 again, and the second
    // attempt is the last.
    let retried = send(t1 + 61, true);
    assert!(
        retried.contains("mailto:wait@later.example: failed: ")
            && retried.contains("(attempt 2 of 2: giving up)"),
        "{retried}"
    );
    assert!(!retried.contains(": sent: "), "{retried}");

    // The DSN Postfix sent: `dmarc report bounces` marks the delivery failed and, with
    // bounces_to_suppress = 1, suppresses the address; read again, it counts nothing.
    let b = bounces_dir.to_str().unwrap();
    let now = (t1 + 120).to_string();
    let bounced = dmarc(&[
        "report",
        "bounces",
        b,
        "--db",
        db_s,
        "--config",
        config.to_str().unwrap(),
        "--now",
        &now,
    ]);
    assert!(
        bounced.contains("gone@bounced.example bounced (1 in a row); suppressed until"),
        "{bounced}"
    );
    assert!(
        bounced.contains("1 files: 1 bounces of report mail recorded, 0 not bounces"),
        "{bounced}"
    );
    let again = dmarc(&[
        "report",
        "bounces",
        b,
        "--db",
        db_s,
        "--config",
        config.to_str().unwrap(),
        "--now",
        &now,
    ]);
    assert!(
        again.contains("0 bounces of report mail recorded"),
        "{again}"
    );

    // An hour later the rate limit lets the deferred reports go.
    let caught_up = send(t1 + 3600 + 60, false);
    assert_eq!(
        caught_up
            .matches("mailto:dmarc@reports.example: sent: 250")
            .count(),
        chosen.len() - RATE,
        "{caught_up}"
    );
    assert_eq!(
        caught_up.matches(": sent: ").count(),
        chosen.len() - RATE,
        "{caught_up}"
    );
    let delivered = wait_for(&reports_dir, failure_sent + chosen.len());
    assert_eq!(delivered.len(), failure_sent + chosen.len());

    // Each message passes our DKIM verifier after Postfix added its trace fields.
    for m in &delivered {
        let raw = std::fs::read_to_string(m).unwrap();
        assert!(raw.contains("Received: from "), "{raw}");
        // Postfix's record of the TLS session (smtpd_tls_received_header).
        assert!(raw.contains("(using TLSv1."), "{raw}");
        // And of the SMTP AUTH login (smtpd_sasl_authenticated_header).
        assert!(
            raw.contains(&format!("(Authenticated sender: {auth_user})")),
            "{raw}"
        );
        let v = dmarc(&[
            "dkim",
            "verify",
            "--dns-zone",
            send_zone.to_str().unwrap(),
            m.to_str().unwrap(),
        ]);
        assert!(
            v.contains("dkim=pass header.d=receiver.example"),
            "{}: {v}",
            m.display()
        );
    }

    // Our own ingest of the maildir Postfix wrote: the figures that were counted, and
    // the failure reports; a second ingest adds nothing.
    let back = d.join("back.sqlite3");
    let back_s = back.to_str().unwrap();
    let maildir = reports_dir.to_str().unwrap();
    let first = dmarc(&["ingest", maildir, "--db", back_s]);
    assert!(
        first.contains(&format!("{} new, 0 duplicate, 0 rejected", delivered.len())),
        "{first}"
    );
    let second = dmarc(&["ingest", maildir, "--db", back_s]);
    assert!(
        second.contains(&format!("0 new, {} duplicate, 0 rejected", delivered.len())),
        "{second}"
    );
    let (got, summary) = summary_figures(back_s);
    assert_eq!(got, want);
    let failure_back: u64 = summary["failure_reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert!(with_ruf.contains(&org(p[0].as_str().unwrap())), "{p}");
            p[1].as_u64().unwrap()
        })
        .sum();
    assert_eq!(failure_back, failure_sent as u64, "{summary}");

    // Relays that get nothing, each tried on a copy of the store before anything was sent,
    // two days later (every report is due); tried last, because after a refused login
    // Dovecot delays the next login from this address by seconds (its auth penalty).
    // `starttls = "required"` sends nothing to a relay that does not offer STARTTLS, nor to
    // one whose certificate no trusted CA signed (no ca_file: the system's CAs only); both
    // are deferred (the relay may be fixed), never sent in the clear. The listener that
    // demands SMTP AUTH: a wrong password is our configuration's fault, not the
    // destination's: every report is deferred, nothing suppressed (and the login is tried
    // once, not once per report). Without a login the relay refuses the recipient (554),
    // which is the destination failing: one report fails for good (exit status 1), the
    // others wait behind it.
    let deferred =
        |why: &str| format!("mailto:dmarc@reports.example: deferred: {why} (attempt 1 of 2; ");
    struct Refusal<'a> {
        name: &'a str,
        relay: &'a str,
        ca_file: Option<&'a str>,
        login: Option<(&'a str, &'a Path)>,
        says: String,
        times: usize,
        status: i32,
    }
    let refusals = [
        Refusal {
            name: "plain",
            relay: &plain_relay,
            ca_file: None,
            login: None,
            says: deferred("internal client error: STARTTLS is not supported on this server"),
            times: chosen.len(),
            status: 0,
        },
        Refusal {
            name: "untrusted",
            relay: &tls_relay,
            ca_file: None,
            login: None,
            says: deferred("network error: invalid peer certificate: UnknownIssuer"),
            times: chosen.len(),
            status: 0,
        },
        Refusal {
            name: "wrong-password",
            relay: &auth_relay,
            ca_file: Some(&tls_ca),
            login: Some((&auth_user, &wrong_password_file)),
            says: "mailto:dmarc@reports.example: deferred: the relay refused our SMTP AUTH \
                   login (check [transport] username and password_file): permanent error \
                   (535): 5.7.8 Error: authentication failed"
                .to_owned(),
            times: chosen.len(),
            status: 0,
        },
        Refusal {
            name: "no-login",
            relay: &auth_relay,
            ca_file: Some(&tls_ca),
            login: None,
            says: "mailto:dmarc@reports.example: failed: permanent error (554): 5.7.1 \
                   <unknown[127.0.0.1]>: Client host rejected: Access denied"
                .to_owned(),
            times: 1,
            status: 1,
        },
    ];
    for r in &refusals {
        let name = r.name;
        let copy = d.join(format!("{name}.sqlite3"));
        std::fs::copy(&unsent, &copy).unwrap();
        let conf = d.join(format!("{name}.toml"));
        std::fs::write(&conf, config_text(r.relay, r.ca_file, r.login)).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_dmarc"))
            .args([
                "report",
                "send",
                "--db",
                copy.to_str().unwrap(),
                "--dns-zone",
            ])
            .arg(&send_zone)
            .arg("--config")
            .arg(&conf)
            .args(["--now", &(unix_now() + 2 * 86_400).to_string()])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(r.status),
            "{name}: {stderr}\n{stdout}"
        );
        assert!(!stdout.contains(": sent: "), "{name}: {stdout}");
        assert_eq!(
            stdout.matches(&r.says).count(),
            r.times,
            "{name}: {stderr}\n{stdout}"
        );
    }
}
