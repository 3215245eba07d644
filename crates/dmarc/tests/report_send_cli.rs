//! The loop end to end through the binary: the mail-bench corpus through `dmarc verify
//! --batch --record`, then `dmarc report send` (a dry run, then through a sendmail command
//! that delivers into a maildir), then `dmarc ingest` of that maildir: `dmarc summary`
//! shows exactly the messages, DMARC verdicts and dispositions that were counted. Every
//! report validates against the RFC 9990 XSD (`xmllint --schema`, Debian libxml2-utils),
//! every message carries a DKIM signature `dmarc dkim verify` passes, destinations outside
//! the policy domain are used only when authorised, `!size` limits are honoured, and a
//! second run sends nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

mod report_common;
use report_common::{bench, dmarc, expected, report_key, summary_figures, unix_now};

fn xsd() -> PathBuf {
    dmarc_testkit::workspace_root().join("../shared/specs/rfc9990-dmarc-2.0.xsd")
}

fn gunzip(path: &Path) -> Vec<u8> {
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(path)
        .output()
        .expect("gzip");
    assert!(out.status.success());
    out.stdout
}

fn xmllint_validates(xml: &Path) {
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(xsd())
        .arg(xml)
        .output()
        .unwrap_or_else(|e| {
            panic!("xmllint not found ({e}): apt-get install libxml2-utils (scripts/test.sh does)")
        });
    assert!(
        out.status.success(),
        "{} does not validate: {}",
        xml.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

#[test]
fn observations_become_reports_that_arrive_validate_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("obs.sqlite3");
    let db_s = db.to_str().unwrap();
    let cases = bench().join("cases.jsonl");
    let zone = bench().join("zone.txt");
    dmarc(&[
        "verify",
        "--batch",
        cases.to_str().unwrap(),
        "--record",
        "--db",
        db_s,
        "--dns-zone",
        zone.to_str().unwrap(),
    ]);

    // The DNS at sending time: brand0 now also asks for reports at a vendor that
    // authorised them, at one that has a 1 KiB limit, and at one that did not authorise
    // them; our own DKIM key.
    let (key, key_line) = report_key(d);
    let mut z: String = std::fs::read_to_string(&zone)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("_dmarc.brand0.example."))
        .map(|l| format!("{l}\n"))
        .collect();
    z.push_str(
        "_dmarc.brand0.example. IN TXT \"v=DMARC1; p=none; rua=mailto:dmarc@brand0.example,\
         mailto:agg@vendor.example,mailto:small@vendor.example!1k,mailto:x@unauth.example\"\n\
         brand0.example._report._dmarc.vendor.example. IN TXT \"v=DMARC1\"\n",
    );
    z.push_str(&key_line);
    z.push('\n');
    let send_zone = d.join("send.zone");
    std::fs::write(&send_zone, z).unwrap();

    // The sendmail command: one file per message into a maildir, its arguments logged.
    let maildir = d.join("Maildir");
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    let sendmail = d.join("sendmail");
    std::fs::write(
        &sendmail,
        format!(
            "#!/bin/sh\nn=$(date +%s%N)-$$\ncat > '{m}/tmp/'$n && mv '{m}/tmp/'$n '{m}/new/'$n\n\
             echo \"$@\" >> '{m}/../sendmail.log'\n",
            m = maildir.display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&sendmail, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let config = d.join("reports.toml");
    std::fs::write(
        &config,
        format!(
            "[organization]\nname = \"Test Receiver\"\nemail = \"dmarc@receiver.example\"\n\
             envelope_sender = \"bounces@receiver.example\"\n\
             [dkim]\ndomain = \"receiver.example\"\nselector = \"rep\"\nkey = \"{}\"\n\
             [transport]\nkind = \"sendmail\"\ncommand = \"{}\"\n",
            key.display(),
            sendmail.display()
        ),
    )
    .unwrap();
    let now = (unix_now() + 2 * 86_400).to_string();
    let common = [
        "--db",
        db_s,
        "--dns-zone",
        send_zone.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--now",
        &now,
    ];

    // A dry run writes and sends nothing.
    let out = d.join("dry");
    let mut args = vec![
        "report",
        "send",
        "--dry-run",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(common);
    let dry = dmarc(&args);
    let reports = files(&out, ".xml.gz");
    assert_eq!(reports.len(), 24, "{dry}");
    assert_eq!(files(&out, ".eml").len(), 24 + 1, "{dry}");
    assert!(files(&maildir.join("new"), "").is_empty());
    assert!(
        dry.contains("mailto:x@unauth.example: skipped: not authorised: no v=DMARC1 record at brand0.example._report._dmarc.unauth.example"),
        "{dry}"
    );
    assert!(
        dry.contains("mailto:small@vendor.example!1024: skipped: too large"),
        "{dry}"
    );
    for r in &reports {
        let xml = r.with_extension("");
        std::fs::write(&xml, gunzip(r)).unwrap();
        xmllint_validates(&xml);
        std::fs::remove_file(&xml).unwrap();
    }

    // The real run, twice: the second finds nothing to send.
    let mut args = vec!["report", "send"];
    args.extend(common);
    let sent = dmarc(&args);
    assert_eq!(sent.matches(": sent: ").count(), 25, "{sent}");
    let again = dmarc(&args);
    assert!(!again.contains(": sent: "), "{again}");
    let delivered = files(&maildir.join("new"), "");
    assert_eq!(delivered.len(), 25);
    let log = std::fs::read_to_string(d.join("sendmail.log")).unwrap();
    assert!(
        log.lines().all(|l| l.contains("bounces@receiver.example")),
        "{log}"
    );

    // The messages are signed, with the RFC 9990 Subject.
    let first = std::fs::read_to_string(&delivered[0]).unwrap();
    assert!(first.starts_with("DKIM-Signature:"), "{first}");
    assert!(first.contains("Subject: Report Domain: brand"), "{first}");
    let v = dmarc(&[
        "dkim",
        "verify",
        "--dns-zone",
        send_zone.to_str().unwrap(),
        delivered[0].to_str().unwrap(),
    ]);
    assert!(v.contains("dkim=pass header.d=receiver.example"), "{v}");

    // Our own ingest reads what we sent, once.
    let back = d.join("back.sqlite3");
    let back_s = back.to_str().unwrap();
    let first_ingest = dmarc(&["ingest", maildir.to_str().unwrap(), "--db", back_s]);
    assert!(
        first_ingest.contains("24 new, 1 duplicate, 0 rejected"),
        "{first_ingest}"
    );
    let second = dmarc(&["ingest", maildir.to_str().unwrap(), "--db", back_s]);
    assert!(
        second.contains("0 new, 25 duplicate, 0 rejected"),
        "{second}"
    );
    let (got, _) = summary_figures(back_s);
    assert_eq!(got, expected());
}

#[test]
fn the_rfc7489_format_is_written_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("obs.sqlite3");
    let cases = bench().join("cases.jsonl");
    let zone = bench().join("zone.txt");
    let (db_s, zone_s) = (db.to_str().unwrap(), zone.to_str().unwrap());
    dmarc(&[
        "verify",
        "--batch",
        cases.to_str().unwrap(),
        "--record",
        "--db",
        db_s,
        "--dns-zone",
        zone_s,
    ]);
    let out = d.join("dry");
    let now = (unix_now() + 2 * 86_400).to_string();
    dmarc(&[
        "report",
        "send",
        "--dry-run",
        "--out",
        out.to_str().unwrap(),
        "--db",
        db_s,
        "--dns-zone",
        zone_s,
        "--org-name",
        "Test Receiver",
        "--org-email",
        "dmarc@receiver.example",
        "--rfc7489",
        "--now",
        &now,
    ]);
    let reports = files(&out, ".xml.gz");
    assert_eq!(reports.len(), 24);
    let xml = String::from_utf8(gunzip(&reports[0])).unwrap();
    assert!(
        xml.contains("<feedback>") && xml.contains("<pct>100</pct>"),
        "{xml}"
    );
    assert!(
        !xml.contains("discovery_method") && !xml.contains("<generator>"),
        "{xml}"
    );
    let back = d.join("back.sqlite3");
    let ingest = dmarc(&[
        "ingest",
        out.to_str().unwrap(),
        "--db",
        back.to_str().unwrap(),
    ]);
    assert!(ingest.contains("24 new"), "{ingest}");
}

/// Failure reports (RFC 9991) end to end: `verify --batch --record --queue-failures`
/// queues a candidate for every mail-bench message whose policy asks for failure reports (`ruf=` with `fo=1`),
/// `report send` with `[failure] enabled` makes one AFRF report per candidate up to the
/// per-domain hourly limit (the rest dropped, each with its reason), checks the external
/// `ruf` destination like `rua`, sends them through sendmail into a maildir, and `dmarc
/// ingest` of that maildir reads each back as a failure report with the fields we wrote;
/// the local parts of addresses are redacted, and a second run sends nothing.
#[test]
fn failure_reports_are_queued_sent_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("obs.sqlite3");
    let db_s = db.to_str().unwrap();
    let cases = bench().join("cases.jsonl");
    let zone = bench().join("zone.txt");
    let out = Command::new(env!("CARGO_BIN_EXE_dmarc"))
        .args(["verify", "--batch", cases.to_str().unwrap(), "--record"])
        .arg("--queue-failures")
        .args(["--db", db_s, "--dns-zone", zone.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The corpus's own verdicts: messages from ruf= domains (all fo=1) that fail DMARC or
    // have an unaligned mechanism.
    let text = std::fs::read_to_string(&cases).unwrap();
    let zone_text = std::fs::read_to_string(&zone).unwrap();
    let ruf_domains: Vec<String> = zone_text
        .lines()
        .filter(|l| l.starts_with("_dmarc.") && l.contains("ruf=") && l.contains("fo=1"))
        .map(|l| {
            l.split_whitespace().next().unwrap()[7..]
                .trim_end_matches('.')
                .to_owned()
        })
        .collect();
    assert!(ruf_domains.len() >= 2, "{ruf_domains:?}");
    // (policy domain, From domain, source IP, DMARC passed) of each message to report, in
    // case order (the order the candidates are queued and reported in).
    let mut quals: Vec<(String, String, String, bool)> = Vec::new();
    for line in text.lines() {
        let c: Value = serde_json::from_str(line).unwrap();
        let from = c["from_domain"].as_str().unwrap();
        // fo=1: a report when either mechanism gives no aligned pass (relaxed alignment:
        // the same Organizational Domain, the last two labels here).
        let org = |d: &str| {
            let l: Vec<&str> = d.rsplitn(3, '.').collect();
            format!("{}.{}", l[1], l[0])
        };
        let aligned_dkim = c["dkim"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["result"] == "pass" && org(s["d"].as_str().unwrap()) == org(from));
        let mail_from = c["mail_from"].as_str().unwrap();
        let aligned_spf = c["spf"] == "pass"
            && mail_from
                .rsplit_once('@')
                .is_some_and(|(_, d)| org(d) == org(from));
        if ruf_domains.contains(&org(from)) && !(aligned_dkim && aligned_spf) {
            quals.push((
                org(from),
                from.to_owned(),
                c["ip"].as_str().unwrap().to_owned(),
                c["dmarc"] == "pass",
            ));
        }
    }
    let queued = quals.len();
    assert!(
        stderr.contains(&format!("queued {queued} failure-report candidates")),
        "{stderr}"
    );

    // Sending: one ruf domain also names an external address that did not authorise it.
    let (key, key_line) = report_key(d);
    let ext = &ruf_domains[0];
    let mut z: String = zone_text
        .lines()
        .filter(|l| !l.starts_with(&format!("_dmarc.{ext}.")))
        .map(|l| format!("{l}\n"))
        .collect();
    z.push_str(&format!(
        "_dmarc.{ext}. IN TXT \"v=DMARC1; p=quarantine; ruf=mailto:forensic@{ext},mailto:x@unauth.example; fo=1\"\n"
    ));
    z.push_str(&key_line);
    z.push('\n');
    let send_zone = d.join("send.zone");
    std::fs::write(&send_zone, z).unwrap();
    let maildir = d.join("Maildir");
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    let sendmail = d.join("sendmail");
    std::fs::write(
        &sendmail,
        format!(
            "#!/bin/sh\nn=$(date +%s%N)-$$\ncat > '{m}/tmp/'$n && mv '{m}/tmp/'$n '{m}/new/'$n\n",
            m = maildir.display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&sendmail, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let limit = 5usize;
    let config = d.join("reports.toml");
    std::fs::write(
        &config,
        format!(
            "[organization]\nname = \"Test Receiver\"\nemail = \"dmarc@receiver.example\"\n\
             envelope_sender = \"bounces@receiver.example\"\n\
             [failure]\nenabled = true\nper_domain_per_hour = {limit}\n\
             [dkim]\ndomain = \"receiver.example\"\nselector = \"rep\"\nkey = \"{}\"\n\
             [transport]\nkind = \"sendmail\"\ncommand = \"{}\"\n",
            key.display(),
            sendmail.display()
        ),
    )
    .unwrap();
    // Within the hour of the arrivals (failure reports are about fresh failures), so no
    // aggregate period is closed yet.
    let now = (unix_now() + 60).to_string();
    let common = [
        "--db",
        db_s,
        "--dns-zone",
        send_zone.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--now",
        &now,
    ];
    // Without --queue-failures, --record queues nothing: no failure report to make.
    let plain = d.join("plain.sqlite3");
    let out = Command::new(env!("CARGO_BIN_EXE_dmarc"))
        .args(["verify", "--batch", cases.to_str().unwrap(), "--record"])
        .args([
            "--db",
            plain.to_str().unwrap(),
            "--dns-zone",
            zone.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let plain_err = String::from_utf8_lossy(&out.stderr);
    assert!(
        plain_err.contains("recorded 300 observations")
            && !plain_err.contains("failure-report candidates"),
        "{plain_err}"
    );
    let nothing = dmarc(&[
        "report",
        "send",
        "--dry-run",
        "--out",
        d.join("plain-dry").to_str().unwrap(),
        "--db",
        plain.to_str().unwrap(),
        "--dns-zone",
        send_zone.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--now",
        &now,
    ]);
    assert!(nothing.contains("nothing to report"), "{nothing}");

    // The first `limit` of each policy domain are reported, the rest dropped.
    let mut taken: BTreeMap<&str, usize> = BTreeMap::new();
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for (pd, from, _, _) in &quals {
        let n = taken.entry(pd).or_default();
        if *n < limit {
            *n += 1;
            *want.entry(from.clone()).or_default() += 1;
        }
    }
    let reported: usize = taken.values().sum();

    // A dry run: one .eml per report and authorised destination; nothing changes.
    let dry_dir = d.join("dry");
    let mut args = vec![
        "report",
        "send",
        "--dry-run",
        "--out",
        dry_dir.to_str().unwrap(),
    ];
    args.extend(common);
    let dry = dmarc(&args);
    assert_eq!(files(&dry_dir, ".eml").len(), reported, "{dry}");
    assert_eq!(
        dry.matches(": dropped: rate limit").count(),
        queued - reported,
        "{dry}"
    );
    assert!(
        dry.contains("mailto:x@unauth.example: skipped: not authorised"),
        "{dry}"
    );

    // The real run, then another that finds nothing left.
    let mut args = vec!["report", "send"];
    args.extend(common);
    let sent = dmarc(&args);
    assert_eq!(sent.matches(": sent: ").count(), reported, "{sent}");
    assert_eq!(
        sent.matches(": made: failure report (dmarc)").count(),
        reported,
        "{sent}"
    );
    let again = dmarc(&args);
    assert!(
        !again.contains(": sent: ") && !again.contains(": made: "),
        "{again}"
    );
    let delivered = files(&maildir.join("new"), "");
    assert_eq!(delivered.len(), reported);

    let mut with_spf_dns = 0;
    // Each message is signed (a signature our verifier passes), multipart/report, and reads
    // back through our own parser.
    let v = dmarc(&[
        "dkim",
        "verify",
        "--dns-zone",
        send_zone.to_str().unwrap(),
        delivered[0].to_str().unwrap(),
    ]);
    assert!(v.contains("dkim=pass header.d=receiver.example"), "{v}");
    for m in &delivered {
        let raw = std::fs::read_to_string(m).unwrap();
        assert!(raw.starts_with("DKIM-Signature:"), "{raw}");
        assert!(
            raw.contains("Content-Type: multipart/report; report-type=feedback-report;"),
            "{raw}"
        );
        let parsed: Value =
            serde_json::from_str(dmarc(&["report", "parse", "--json", m.to_str().unwrap()]).trim())
                .unwrap();
        assert_eq!(parsed["kind"], "failure", "{parsed}");
        assert_eq!(parsed["feedback_type"], "auth-failure");
        assert_eq!(parsed["auth_failure"], "dmarc");
        assert_eq!(parsed["warnings"], serde_json::json!([]), "{parsed}");
        let domain = parsed["reported_domain"][0].as_str().unwrap();
        let ip = parsed["source_ip"].as_str().unwrap();
        let case = quals
            .iter()
            .find(|(_, f, i, _)| f == domain && i == ip)
            .unwrap_or_else(|| panic!("{ip} is not a failing source of {domain}"));
        // p=quarantine: a DMARC failure goes to spam; fo=1 also reports a pass with one
        // unaligned mechanism, delivered.
        let delivery = if case.3 { "delivered" } else { "spam" };
        assert_eq!(parsed["delivery_result"], delivery, "{parsed}");
        let alignment = parsed["identity_alignment"].as_str().unwrap();
        assert!(
            alignment.contains("spf") || alignment.contains("dkim"),
            "{parsed}"
        );
        assert!(
            parsed["authentication_results"][0]
                .as_str()
                .unwrap()
                .contains(&format!("header.from={domain}"))
        );
        // SPF failed for an aligned MAIL FROM domain: its record is shown (RFC 9991 §4).
        let ar = parsed["authentication_results"][0].as_str().unwrap();
        if ar.contains("spf=fail smtp.mailfrom=") && ar.contains(&format!("@{domain};")) {
            let spf_dns = parsed["spf_dns"]
                .as_str()
                .unwrap_or_else(|| panic!("no SPF-DNS: {parsed}"));
            assert!(
                spf_dns.starts_with(&format!("txt : {domain} : \"v=spf1")),
                "{spf_dns}"
            );
            with_spf_dns += 1;
        }
        let headers = parsed["original_headers"].as_str().unwrap();
        assert!(headers.contains("Message-ID: <"), "{headers}");
        assert!(!parsed["original_body_included"].as_bool().unwrap());
        // Redacted: the From's local part and MAIL FROM's are tokens, not the corpus's.
        let from_line = headers.lines().find(|l| l.starts_with("From:")).unwrap();
        assert!(
            from_line.contains(&format!("@{domain}>")) && !from_line.contains("sender@"),
            "{from_line}"
        );
        let case_mail_from: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|c| c["ip"] == ip)
            .map(|c| c["mail_from"].as_str().unwrap().to_owned())
            .collect();
        let omf = parsed["original_mail_from"].as_str().unwrap();
        assert!(
            case_mail_from
                .iter()
                .all(|m| m.is_empty() || omf != format!("<{m}>")),
            "{omf} is not redacted"
        );
    }

    assert!(with_spf_dns > 0, "no report about an aligned SPF failure");

    // `dmarc ingest` stores each as a failure report, once.
    let back = d.join("back.sqlite3");
    let back_s = back.to_str().unwrap();
    let first = dmarc(&["ingest", maildir.to_str().unwrap(), "--db", back_s]);
    assert!(
        first.contains(&format!("{reported} new, 0 duplicate, 0 rejected")),
        "{first}"
    );
    let summary: Value =
        serde_json::from_str(&dmarc(&["summary", "--db", back_s, "--json"])).unwrap();
    let mut got: BTreeMap<String, u64> = BTreeMap::new();
    for pair in summary["failure_reports"].as_array().unwrap() {
        got.insert(
            pair[0].as_str().unwrap().to_owned(),
            pair[1].as_u64().unwrap(),
        );
    }
    assert_eq!(got, want, "{summary}");

    // Bounces: three DSNs for three reports to one address suppress it (the default
    // bounces_to_suppress is 3); reading them again counts nothing twice.
    let header_value = |raw: &str, name: &str| {
        raw.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .trim()
            .to_owned()
    };
    let mut by_to: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in &delivered {
        let raw = std::fs::read_to_string(m).unwrap();
        by_to
            .entry(header_value(&raw, "To: "))
            .or_default()
            .push(header_value(&raw, "Message-ID: "));
    }
    let (to, ids) = by_to.iter().find(|(_, v)| v.len() >= 3).unwrap();
    let rcpt = to.trim_matches(['<', '>']);
    let bounce_dir = d.join("bounces");
    std::fs::create_dir_all(&bounce_dir).unwrap();
    for (i, id) in ids.iter().take(3).enumerate() {
        std::fs::write(
            bounce_dir.join(format!("dsn{i}.eml")),
            format!(
                "From: MAILER-DAEMON@relay.example\r\nTo: bounces@receiver.example\r\n\
                 Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n\
                 Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
                 --b\r\nContent-Type: text/plain\r\n\r\nNot delivered.\r\n\
                 --b\r\nContent-Type: message/delivery-status\r\n\r\n\
                 Reporting-MTA: dns; relay.example\r\n\r\n\
                 Final-Recipient: rfc822; {rcpt}\r\nAction: failed\r\nStatus: 5.1.1\r\n\
                 Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\
                 --b\r\nContent-Type: text/rfc822-headers\r\n\r\n\
                 From: <dmarc@receiver.example>\r\nMessage-ID: {id}\r\n--b--\r\n"
            ),
        )
        .unwrap();
    }
    std::fs::write(
        bounce_dir.join("other.eml"),
        "From: a@b.example\r\n\r\nhi\r\n",
    )
    .unwrap();
    let bounced = dmarc(&[
        "report",
        "bounces",
        bounce_dir.to_str().unwrap(),
        "--db",
        db_s,
        "--now",
        &now,
    ]);
    assert!(
        bounced.contains(&format!("{rcpt} bounced (3 in a row); suppressed until")),
        "{bounced}"
    );
    assert!(
        bounced.contains("4 files: 3 bounces of report mail recorded, 1 not bounces"),
        "{bounced}"
    );
    let again = dmarc(&[
        "report",
        "bounces",
        bounce_dir.to_str().unwrap(),
        "--db",
        db_s,
        "--now",
        &now,
    ]);
    assert!(
        again.contains("0 bounces of report mail recorded"),
        "{again}"
    );

    // Our report mail arriving at a receiver is neither counted nor reported (no loops).
    let loop_cases = d.join("loop.jsonl");
    let lines: String = delivered
        .iter()
        .map(|m| {
            format!(
                "{}\n",
                serde_json::json!({"file": m, "ip": "192.0.2.99", "helo": "mx.receiver.example",
                    "mail_from": "bounces@receiver.example"})
            )
        })
        .collect();
    std::fs::write(&loop_cases, lines).unwrap();
    let loop_db = d.join("loop.sqlite3");
    let out = Command::new(env!("CARGO_BIN_EXE_dmarc"))
        .args([
            "verify",
            "--batch",
            loop_cases.to_str().unwrap(),
            "--record",
            "--queue-failures",
        ])
        .args([
            "--db",
            loop_db.to_str().unwrap(),
            "--dns-zone",
            send_zone.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("recorded 0 observations"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{reported} report messages (aggregate or failure reports, bounces) not counted"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("failure-report candidates"), "{stderr}");
}

/// Like incidents merged (RFC 9991, Denial of Service: "aggregate these reports as much
/// as is practical, using the Incidents field"): with `merge_window`, the same failure
/// from the same source about the same domain within the window becomes one report whose
/// `Incidents` counts the messages; a different source, or a different failure, gets its
/// own. Nothing is made while the window is open, and a merged candidate is not reported
/// again.
#[test]
fn like_failure_incidents_are_merged_into_one_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bench = bench();
    let text = std::fs::read_to_string(bench.join("cases.jsonl")).unwrap();
    let case = |file: &str| -> Value {
        let mut c: Value = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|c| c["file"] == file)
            .unwrap();
        c["file"] = Value::from(bench.join(file).to_str().unwrap());
        c
    };
    // brand1.example (p=quarantine, ruf=, fo=1): a spoof three times from one address,
    // once from another; an unaligned ESP message (another failure) once.
    let spoof = case("messages/00195.eml");
    assert_eq!(spoof["from_domain"], "brand1.example");
    let mut other_source = spoof.clone();
    other_source["ip"] = Value::from("100.64.7.99");
    let esp = case("messages/00107.eml");
    assert_eq!(esp["from_domain"], "brand1.example");
    let lines: String = [&spoof, &spoof, &other_source, &spoof, &esp]
        .iter()
        .map(|c| format!("{c}\n"))
        .collect();
    let cases = d.join("cases.jsonl");
    std::fs::write(&cases, lines).unwrap();
    let db = d.join("obs.sqlite3");
    let db_s = db.to_str().unwrap();
    let zone = bench.join("zone.txt");
    let out = Command::new(env!("CARGO_BIN_EXE_dmarc"))
        .args(["verify", "--batch", cases.to_str().unwrap(), "--record"])
        .arg("--queue-failures")
        .args(["--db", db_s, "--dns-zone", zone.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("queued 5 failure-report candidates"),
        "{stderr}"
    );

    let sendmail = d.join("sendmail");
    std::fs::write(&sendmail, "#!/bin/sh\ncat > /dev/null\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&sendmail, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let config = d.join("reports.toml");
    std::fs::write(
        &config,
        format!(
            "[organization]\nname = \"Test Receiver\"\nemail = \"dmarc@receiver.example\"\n\
             [failure]\nenabled = true\nmerge_window = 600\n\
             [transport]\nkind = \"sendmail\"\ncommand = \"{}\"\n",
            sendmail.display()
        ),
    )
    .unwrap();
    let arrived = unix_now();
    let send = |now: u64, dry: Option<&Path>| {
        let now = now.to_string();
        let mut args = vec!["report", "send"];
        if let Some(out) = dry {
            args.extend(["--dry-run", "--out", out.to_str().unwrap()]);
        }
        args.extend([
            "--db",
            db_s,
            "--dns-zone",
            zone.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--now",
            &now,
        ]);
        dmarc(&args)
    };

    // Within the window: the candidates wait.
    let early = send(arrived + 60, None);
    assert!(!early.contains(": made: "), "{early}");

    // The window closed: three reports, one of them for three messages.
    let dry = d.join("dry");
    let made = send(arrived + 700, Some(&dry));
    assert_eq!(made.matches(": made: ").count(), 3, "{made}");
    assert!(
        made.contains("made: failure report (dmarc) about 3 like messages from 100.64.7.26"),
        "{made}"
    );
    let mut incidents: Vec<(String, u64)> = files(&dry, ".eml")
        .iter()
        .map(|m| {
            let p: Value = serde_json::from_str(
                dmarc(&["report", "parse", "--json", m.to_str().unwrap()]).trim(),
            )
            .unwrap();
            assert_eq!(p["warnings"], serde_json::json!([]), "{p}");
            (
                p["source_ip"].as_str().unwrap().to_owned(),
                p["incidents"].as_u64().unwrap(),
            )
        })
        .collect();
    incidents.sort();
    let esp_ip = esp["ip"].as_str().unwrap().to_owned();
    let mut want = vec![
        ("100.64.7.26".to_owned(), 3),
        ("100.64.7.99".to_owned(), 1),
        (esp_ip, 1),
    ];
    want.sort();
    assert_eq!(incidents, want);

    // Sent for real, once: the merged candidates are not reported again.
    let sent = send(arrived + 700, None);
    assert_eq!(sent.matches(": made: ").count(), 3, "{sent}");
    let again = send(arrived + 800, None);
    assert!(!again.contains(": made: "), "{again}");
}

/// `DKIM-Canonicalized-Header` (RFC 9991 §4, OPTIONAL for a DKIM failure of an aligned
/// identifier) only with `[failure] dkim_canonicalized_header`: the base64 of what the
/// failed signature covers, as our verifier hashed it (the signed fields canonicalised,
/// the signature last with an empty `b=`).
#[test]
fn dkim_canonicalized_header_only_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bench = bench();
    let text = std::fs::read_to_string(bench.join("cases.jsonl")).unwrap();
    // brand1.example, forwarded with its body modified: its own signature fails.
    let mut c: Value = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|c| c["file"] == "messages/00137.eml")
        .unwrap();
    assert_eq!(c["scenario"], "forwarded_modified");
    c["file"] = Value::from(bench.join("messages/00137.eml").to_str().unwrap());
    let cases = d.join("cases.jsonl");
    std::fs::write(&cases, format!("{c}\n")).unwrap();
    let db = d.join("obs.sqlite3");
    let zone = bench.join("zone.txt");
    let out = Command::new(env!("CARGO_BIN_EXE_dmarc"))
        .args(["verify", "--batch", cases.to_str().unwrap(), "--record"])
        .arg("--queue-failures")
        .args([
            "--db",
            db.to_str().unwrap(),
            "--dns-zone",
            zone.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("queued 1 failure-report"));
    let now = (unix_now() + 60).to_string();
    let report_with = |option: bool| -> Value {
        let config = d.join(format!("reports-{option}.toml"));
        std::fs::write(
            &config,
            format!(
                "[organization]\nname = \"Test Receiver\"\nemail = \"dmarc@receiver.example\"\n\
                 [failure]\nenabled = true\ndkim_canonicalized_header = {option}\n"
            ),
        )
        .unwrap();
        let out = d.join(format!("dry-{option}"));
        dmarc(&[
            "report",
            "send",
            "--dry-run",
            "--out",
            out.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
            "--dns-zone",
            zone.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--now",
            &now,
        ]);
        let eml = files(&out, ".eml");
        assert_eq!(eml.len(), 1);
        serde_json::from_str(dmarc(&["report", "parse", "--json", eml[0].to_str().unwrap()]).trim())
            .unwrap()
    };
    let without = report_with(false);
    assert_eq!(without["dkim_domain"], "brand1.example", "{without}");
    assert!(without["dkim_canonicalized_header"].is_null(), "{without}");
    let with = report_with(true);
    assert_eq!(with["warnings"], serde_json::json!([]), "{with}");
    let b64: String = with["dkim_canonicalized_header"]
        .as_str()
        .unwrap_or_else(|| panic!("no DKIM-Canonicalized-Header: {with}"))
        .split_whitespace()
        .collect();
    let decoded = {
        use std::io::Write as _;
        let mut child = Command::new("base64")
            .arg("-d")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b64.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{b64}");
        String::from_utf8(out.stdout).unwrap()
    };
    // The message's own signature, last, with b= emptied and no final CRLF; the signed
    // fields before it, one per line.
    let raw = std::fs::read_to_string(bench.join("messages/00137.eml")).unwrap();
    let last = decoded.rsplit("\r\n").next().unwrap();
    assert!(
        last.to_ascii_lowercase().starts_with("dkim-signature:")
            && last.contains("d=brand1.example"),
        "{decoded}"
    );
    assert!(last.trim_end().ends_with("b="), "{decoded}");
    // c=relaxed/relaxed: the From field as relaxed canonicalisation writes it.
    assert!(
        raw.contains("\nFrom: Sender <info@brand1.example>"),
        "{raw}"
    );
    assert!(
        decoded.contains("from:Sender <info@brand1.example>\r\n"),
        "{decoded}"
    );
}

/// `[aggregate] honour_ri = true`: a record's `ri=` below a day gives periods of whole
/// hours dividing the UTC day, never under an hour; without it (the default), and for a
/// record without `ri=`, one period per UTC day. Read from the reports' file names
/// (`receiver!policy-domain!begin!end!id.xml.gz`).
#[test]
fn honour_ri_gives_hourly_periods_never_under_an_hour() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("obs.sqlite3");
    let cases = bench().join("cases.jsonl");
    let zone = bench().join("zone.txt");
    dmarc(&[
        "verify",
        "--batch",
        cases.to_str().unwrap(),
        "--record",
        "--db",
        db.to_str().unwrap(),
        "--dns-zone",
        zone.to_str().unwrap(),
    ]);
    // The records at sending time: brand0 asks for hourly reports, brand1 for one a
    // minute, brand2 for one every 5 hours (4 is the largest divisor of 24 not above);
    // the others say nothing.
    let ri = [
        ("brand0.example", 3600),
        ("brand1.example", 60),
        ("brand2.example", 5 * 3600),
    ];
    let z: String = std::fs::read_to_string(&zone)
        .unwrap()
        .lines()
        .map(|l| {
            match ri
                .iter()
                .find(|(pd, _)| l.starts_with(&format!("_dmarc.{pd}. ")))
            {
                Some((_, s)) => format!("{}; ri={s}\"\n", l.trim_end_matches('"')),
                None => format!("{l}\n"),
            }
        })
        .collect();
    let send_zone = d.join("send.zone");
    std::fs::write(&send_zone, z).unwrap();
    let now = (unix_now() + 2 * 86_400).to_string();

    // Per policy domain: the lengths of the periods reported, seconds.
    let periods = |honour: bool| -> BTreeMap<String, Vec<i64>> {
        let name = if honour { "honour" } else { "daily" };
        let db_copy = d.join(format!("{name}.sqlite3"));
        std::fs::copy(&db, &db_copy).unwrap();
        let config = d.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "[organization]\nname = \"Test Receiver\"\nemail = \"dmarc@receiver.example\"\n\
                 [aggregate]\nhonour_ri = {honour}\n"
            ),
        )
        .unwrap();
        let out = d.join(name);
        dmarc(&[
            "report",
            "send",
            "--dry-run",
            "--out",
            out.to_str().unwrap(),
            "--db",
            db_copy.to_str().unwrap(),
            "--dns-zone",
            send_zone.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--now",
            &now,
        ]);
        let mut m: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for f in files(&out, ".xml.gz") {
            let n = f.file_name().unwrap().to_str().unwrap().to_owned();
            let p: Vec<&str> = n.split('!').collect();
            assert_eq!(p[0], "receiver.example", "{n}");
            let (begin, end): (i64, i64) = (p[2].parse().unwrap(), p[3].parse().unwrap());
            let len = end - begin + 1;
            assert_eq!(begin % len, 0, "{n}: not aligned on its length");
            m.entry(p[1].to_owned()).or_default().push(len);
        }
        m
    };

    let daily = periods(false);
    assert_eq!(daily.len(), 24);
    for (pd, lens) in &daily {
        assert_eq!(lens, &[86_400], "{pd}");
    }
    let honoured = periods(true);
    assert_eq!(honoured.len(), 24);
    for (pd, lens) in &honoured {
        let want = match pd.as_str() {
            "brand0.example" | "brand1.example" => 3600,
            "brand2.example" => 4 * 3600,
            _ => 86_400,
        };
        // The arrivals are all within seconds of each other: one period, or two when
        // the run crossed the end of one.
        assert!(!lens.is_empty() && lens.len() <= 2, "{pd}: {lens:?}");
        assert!(
            lens.iter().all(|l| *l == want),
            "{pd}: {lens:?}, want {want}"
        );
    }
}
