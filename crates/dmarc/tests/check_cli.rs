//! `dmarc check` and `dmarc record` through the binary: one broken domain per finding code
//! (`crates/owner/tests/fixtures/findings.zone`, each `; case CODE DOMAIN ARGS` line), the
//! JSON shape, the exit status, and records built by `dmarc record` checked in a zone
//! before publishing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dmarc_owner::Code;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../owner/tests/fixtures")
}

fn dmarc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dmarc"))
        .args(args)
        .current_dir(fixtures())
        .output()
        .expect("run dmarc")
}

struct Case {
    code: String,
    domain: String,
    args: Vec<String>,
}

fn cases() -> Vec<Case> {
    let zone = std::fs::read_to_string(fixtures().join("findings.zone")).unwrap();
    zone.lines()
        .filter_map(|l| l.strip_prefix("; case "))
        .map(|l| {
            let mut words = l.split_whitespace().map(str::to_string);
            Case {
                code: words.next().unwrap(),
                domain: words.next().unwrap(),
                args: words.collect(),
            }
        })
        .collect()
}

/// The check's arguments for a case: `--no-fetch` unless the case fetches or gives the
/// policy file.
fn check_args(case_args: &[String]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "check".into(),
        "--json".into(),
        "--dns-zone".into(),
        "findings.zone".into(),
    ];
    let fetch = case_args
        .iter()
        .any(|a| a == "--fetch" || a == "--mta-sts-policy");
    if !fetch {
        args.push("--no-fetch".into());
    }
    args.extend(case_args.iter().filter(|a| *a != "--fetch").cloned());
    args
}

fn reports(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn codes(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_finding_code_has_a_fixture_that_produces_it() {
    let cases = cases();
    let mut missing_case = Vec::new();
    for code in Code::ALL {
        if !cases.iter().any(|c| c.code == code.as_str()) {
            missing_case.push(code.as_str());
        }
    }
    assert!(
        missing_case.is_empty(),
        "finding codes without a fixture domain in findings.zone: {missing_case:?}"
    );
    for c in &cases {
        assert!(
            Code::from_text(&c.code).is_some(),
            "case for unknown code {}",
            c.code
        );
    }

    // Cases with the same arguments run in one process (the domains concurrently).
    let mut groups: BTreeMap<Vec<String>, Vec<&Case>> = BTreeMap::new();
    for c in &cases {
        groups.entry(c.args.clone()).or_default().push(c);
    }
    let mut failures = Vec::new();
    for (case_args, group) in groups {
        let mut args = check_args(&case_args);
        args.extend(group.iter().map(|c| c.domain.clone()));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = dmarc(&argv);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{argv:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let reports = reports(&out);
        assert_eq!(reports.len(), group.len(), "{argv:?}");
        for (case, report) in group.iter().zip(&reports) {
            assert_eq!(
                report["domain"],
                case.domain.as_str(),
                "output in input order"
            );
            let found = codes(report);
            if !found.contains(&case.code) {
                failures.push(format!("{} ({}): got {found:?}", case.code, case.domain));
            }
            for f in report["findings"].as_array().unwrap() {
                let code = Code::from_text(f["code"].as_str().unwrap()).unwrap();
                assert_eq!(f["area"], code.area().as_str());
                assert_eq!(f["severity"], code.severity().as_str());
                assert!(!f["message"].as_str().unwrap().is_empty());
            }
        }
    }
    assert!(
        failures.is_empty(),
        "fixtures that miss their code:\n{}",
        failures.join("\n")
    );
}

#[test]
fn json_has_the_documented_fields_and_the_exit_status_follows_the_findings() {
    let out = dmarc(&[
        "check",
        "--json",
        "--no-fetch",
        "--dns-zone",
        "findings.zone",
        "--selector",
        "abc123",
        "sender-aligned.test",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let r = &reports(&out)[0];
    for key in [
        "domain", "dmarc", "spf", "dkim", "mx", "mta_sts", "tls_rpt", "bimi", "findings",
    ] {
        assert!(r.get(key).is_some(), "{key} missing");
    }
    for key in [
        "record",
        "policy",
        "subdomain_policy",
        "adkim",
        "aspf",
        "rua",
        "ruf",
    ] {
        assert!(r["dmarc"].get(key).is_some(), "dmarc.{key} missing");
    }
    for key in ["record", "dns_lookups", "void_lookups", "tree"] {
        assert!(r["spf"].get(key).is_some(), "spf.{key} missing");
    }
    assert_eq!(r["dmarc"]["policy"], "reject");
    assert_eq!(r["dmarc"]["adkim"], "relaxed");
    assert_eq!(r["spf"]["dns_lookups"], 1);
    assert_eq!(r["dkim"][0]["selector"], "abc123");
    assert_eq!(r["dkim"][0]["cname"], "abc123.dkim.amazonses.com");
    assert_eq!(r["mx"][0]["exchange"], "mx.sender-aligned.test");

    let out = dmarc(&[
        "check",
        "--no-fetch",
        "--dns-zone",
        "findings.zone",
        "spf-pass-all.test",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("  SPF\n    spf-pass-all.test: \"v=spf1 +all\""),
        "{text}"
    );
    assert!(text.contains("error   spf_pass_all:"), "{text}");

    for bad in [
        &["check", "--dns-zone", "findings.zone", "not a domain"][..],
        &[
            "check",
            "--dns-zone",
            "findings.zone",
            "--sender",
            "no-such-service",
            "example.test",
        ],
        &["check"],
        &["record", "dmarc", "example.test", "--p", "block"],
        &["record", "spf", "example.test", "--ip4", "300.1.1.1"],
    ] {
        let out = dmarc(bad);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{bad:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn sender_check_says_in_words_whether_dmarc_passes() {
    let out = dmarc(&[
        "check",
        "--json",
        "--no-fetch",
        "--dns-zone",
        "findings.zone",
        "--sender",
        "amazon-ses",
        "--mail-from",
        "mail.sender-spf-not-aligned.test",
        "sender-spf-not-aligned.test",
    ]);
    let r = &reports(&out)[0];
    assert_eq!(r["sender"]["spf_aligned"], false);
    assert_eq!(r["sender"]["aspf"], "strict");
    let verdict = r["sender"]["verdict"].as_str().unwrap();
    assert!(verdict.starts_with("DMARC will fail"), "{verdict}");
    assert!(verdict.contains("aspf=s"), "{verdict}");

    let out = dmarc(&[
        "check",
        "--json",
        "--no-fetch",
        "--dns-zone",
        "findings.zone",
        "--sender",
        "ses",
        "--mail-from",
        "mail.sender-aligned.test",
        "--dkim-selector",
        "abc123",
        "sender-aligned.test",
    ]);
    let r = &reports(&out)[0];
    let verdict = r["sender"]["verdict"].as_str().unwrap();
    assert_eq!(r["sender"]["passes"], true);
    assert!(
        verdict.contains("SPF will align through mail.sender-aligned.test under relaxed alignment; aspf=s in your record would break it"),
        "{verdict}"
    );
    assert!(
        verdict.contains("DKIM will align with d=sender-aligned.test"),
        "{verdict}"
    );
}

#[test]
fn records_are_valid_by_construction_and_can_be_checked_in_a_zone_before_publishing() {
    let dir = std::env::temp_dir().join(format!("dmarc-record-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut zone = String::from(
        "$ORIGIN new.test.\nnew.test. IN MX 10 mx.new.test.\nmx.new.test. IN A 192.0.2.25\n",
    );
    for args in [
        &[
            "record",
            "dmarc",
            "new.test",
            "--p",
            "quarantine",
            "--rua",
            "dmarc@new.test",
            "--json",
        ][..],
        &[
            "record",
            "spf",
            "new.test",
            "--mx",
            "--ip4",
            "192.0.2.0/24",
            "--service",
            "google",
            "--all",
            "softfail",
            "--json",
        ],
    ] {
        let out = dmarc(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        zone.push_str(r["zone_line"].as_str().unwrap());
        zone.push('\n');
    }
    assert!(
        zone.contains(
            "_dmarc.new.test. 3600 IN TXT \"v=DMARC1; p=quarantine; rua=mailto:dmarc@new.test\""
        ),
        "{zone}"
    );
    zone.push_str("_spf.google.com. IN TXT \"v=spf1 ip4:172.217.0.0/19 ~all\"\n");
    let path = dir.join("new.zone");
    std::fs::write(&path, &zone).unwrap();
    let out = dmarc(&[
        "check",
        "--json",
        "--no-fetch",
        "--dns-zone",
        path.to_str().unwrap(),
        "new.test",
    ]);
    let r = &reports(&out)[0];
    assert_eq!(r["dmarc"]["policy"], "quarantine");
    assert_eq!(r["spf"]["dns_lookups"], 2);
    let errors: Vec<&Value> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error")
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
