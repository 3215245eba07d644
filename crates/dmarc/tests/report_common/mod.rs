//! Helpers of the reports-out tests (`report_send_cli.rs` through a sendmail command,
//! `report_postfix.rs` through a real Postfix): running the binary, the mail-bench
//! corpus's own figures and those a store's summary shows, the signing key of the
//! reports, the clock.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Runs `dmarc ARGS`, which must succeed; its standard output.
pub fn dmarc(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dmarc"))
        .args(args)
        .output()
        .expect("run dmarc");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "dmarc {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The mail-bench corpus.
pub fn bench() -> PathBuf {
    dmarc_testkit::corpus("mail-bench")
}

/// The Organizational Domain of a corpus From domain (its last two labels).
pub fn org(d: &str) -> String {
    let l: Vec<&str> = d.rsplitn(3, '.').collect();
    format!("{}.{}", l[1], l[0])
}

/// Figures per policy domain: messages, DMARC passes, dispositions none, quarantine,
/// reject.
pub type Figures = BTreeMap<String, [u64; 5]>;

/// The corpus's own verdicts, counted as the summary counts them (the policy domain is
/// the Organizational Domain of the From domain here).
pub fn expected() -> Figures {
    let mut m = Figures::new();
    let text = std::fs::read_to_string(bench().join("cases.jsonl")).unwrap();
    for line in text.lines() {
        let c: Value = serde_json::from_str(line).unwrap();
        let e = m
            .entry(org(c["from_domain"].as_str().unwrap()))
            .or_default();
        e[0] += 1;
        e[1] += u64::from(c["dmarc"] == "pass");
        match c["policy"].as_str().unwrap() {
            "none" => e[2] += 1,
            "quarantine" => e[3] += 1,
            "reject" => e[4] += 1,
            other => panic!("policy {other}"),
        }
    }
    m
}

/// The same figures from `dmarc summary --json` of the store at `db`.
pub fn summary_figures(db: &str) -> (Figures, Value) {
    let summary: Value = serde_json::from_str(&dmarc(&["summary", "--db", db, "--json"])).unwrap();
    let mut got = Figures::new();
    for dom in summary["domains"].as_array().unwrap() {
        let e = got
            .entry(dom["domain"].as_str().unwrap().to_owned())
            .or_default();
        for (i, k) in [
            "messages",
            "dmarc_pass",
            "disposition_none",
            "disposition_quarantine",
            "disposition_reject",
        ]
        .iter()
        .enumerate()
        {
            e[i] += dom[k].as_u64().unwrap();
        }
    }
    (got, summary)
}

/// A fresh Ed25519 key for the reports' signatures (`d=receiver.example`, `s=rep`) in
/// `dir`: its PEM file and the zone line publishing it.
pub fn report_key(dir: &Path) -> (PathBuf, String) {
    let key = dir.join("reports.key.pem");
    let keygen = dmarc(&[
        "dkim",
        "keygen",
        "--domain",
        "receiver.example",
        "--selector",
        "rep",
        "--algorithm",
        "ed25519",
        "--out",
        key.to_str().unwrap(),
    ]);
    let line = keygen
        .lines()
        .find(|l| l.contains("_domainkey"))
        .expect("the key's zone line")
        .to_owned();
    (key, line)
}

/// Now, Unix seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
