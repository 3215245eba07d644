//! End to end: `dmarc ingest` the shared report corpora twice (the second run finds only
//! duplicates), `dmarc report rejected` lists exactly what is not a report (the
//! catalogue's `reject` samples and the files the catalogue does not list: licences,
//! mail-auth's expected-output JSON), and `dmarc summary` reads it all back.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const CORPORA: &[&str] = &[
    "reports-mail-auth",
    "reports-dmarc-report-viewer",
    "reports-opendmarc",
];

fn dmarc(args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dmarc"))
        .args(args)
        .output()
        .expect("run dmarc");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "dmarc {args:?} failed: {stderr}\n{stdout}"
    );
    (stdout, stderr)
}

fn files_under(dir: &Path, out: &mut BTreeSet<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read corpus dir") {
        let e = e.expect("entry");
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.insert(std::path::absolute(&p).expect("absolute"));
        }
    }
}

#[test]
fn ingest_corpora_twice_then_list_rejected_and_summarise() {
    let corpora = dmarc_testkit::corpora();
    let dirs: Vec<String> = CORPORA
        .iter()
        .map(|c| dmarc_testkit::corpus(c).display().to_string())
        .collect();

    // What the catalogue says about each sample.
    let cat: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(dmarc_testkit::corpus("REPORTS_CATALOG.yaml")).unwrap(),
    )
    .unwrap();
    let mut must_parse = BTreeSet::new();
    let mut must_reject = BTreeSet::new();
    let mut either = BTreeSet::new();
    for section in ["aggregate", "failure", "smtp_tls"] {
        for e in cat[section].as_sequence().unwrap() {
            let file = e["file"].as_str().unwrap();
            if !CORPORA.iter().any(|c| file.starts_with(&format!("{c}/"))) {
                continue;
            }
            let path = std::path::absolute(corpora.join(file)).unwrap();
            let expected = e["expected"].as_str().unwrap_or("parse");
            if expected.contains("tolerate or reject") {
                either.insert(path);
            } else if expected.starts_with("reject") {
                must_reject.insert(path);
            } else {
                must_parse.insert(path);
            }
        }
    }
    let mut all = BTreeSet::new();
    for d in &dirs {
        files_under(Path::new(d), &mut all);
    }
    // Files the catalogue does not list are not reports (licences, expected outputs).
    for f in &all {
        if !must_parse.contains(f) && !either.contains(f) {
            must_reject.insert(f.clone());
        }
    }
    assert!(
        must_parse.len() >= 30,
        "catalogue too small: {must_parse:?}"
    );

    let db = std::env::temp_dir().join(format!("dmarc-cli-e2e-{}.sqlite3", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let db = db.display().to_string();

    let mut args = vec!["ingest", "--json", "--db", &db];
    args.extend(dirs.iter().map(String::as_str));
    let (first, _) = dmarc(&args);
    let first: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(first["inputs"].as_u64().unwrap() as usize, all.len());
    let stored = first["new"].as_u64().unwrap() + first["duplicate"].as_u64().unwrap();
    assert!(first["new"].as_u64().unwrap() >= 30, "{first}");
    assert_eq!(
        first["rejected"], first["rejected_new"],
        "first run: every rejection is new"
    );

    let (second, _) = dmarc(&args);
    let second: Value = serde_json::from_str(&second).unwrap();
    assert_eq!(second["new"], 0, "second run stores nothing new: {second}");
    assert_eq!(second["duplicate"].as_u64().unwrap(), stored, "{second}");
    assert_eq!(second["rejected"], first["rejected"]);
    assert_eq!(second["rejected_new"], 0);

    // The rejected listing: every non-report, no report.
    let (listing, _) = dmarc(&["report", "rejected", "--json", "--db", &db]);
    let entries: Vec<Value> = listing
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rejected: BTreeSet<PathBuf> = entries
        .iter()
        .map(|e| PathBuf::from(e["source"].as_str().unwrap()))
        .collect();
    for f in &must_reject {
        assert!(
            rejected.contains(f),
            "not listed as rejected: {}",
            f.display()
        );
    }
    for f in &rejected {
        assert!(
            must_reject.contains(f) || either.contains(f),
            "a report was rejected: {}",
            f.display()
        );
    }
    assert!(entries.iter().all(|e| e["times_seen"] == 2));
    // The kept bytes are the file's.
    let e = &entries[0];
    let id = e["id"].as_i64().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_dmarc"))
        .args(["report", "rejected", "--db", &db, "--content", &id])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        out.stdout,
        std::fs::read(e["source"].as_str().unwrap()).unwrap()
    );
    let (human, _) = dmarc(&["report", "rejected", "--db", &db]);
    assert!(human.contains(&format!("{} rejected input(s)", entries.len())));

    // The summary reads it back.
    let (json, _) = dmarc(&[
        "summary",
        "--json",
        "--no-rdns",
        "--by",
        "total",
        "--db",
        &db,
    ]);
    let s: Value = serde_json::from_str(&json).unwrap();
    let totals = &s["totals"];
    assert_eq!(
        totals["aggregate_reports"].as_u64().unwrap()
            + totals["failure_reports"].as_u64().unwrap()
            + totals["tls_reports"].as_u64().unwrap(),
        first["new"].as_u64().unwrap()
    );
    // The 9776 records of the largest sample are all there.
    assert!(totals["aggregate_records"].as_u64().unwrap() > 9776);
    let domains = s["domains"].as_array().unwrap();
    let example = domains
        .iter()
        .find(|d| d["domain"] == "example.com")
        .expect("example.com summarised");
    assert!(example["messages"].as_u64().unwrap() > 0);
    assert!(!s["top_sources"].as_array().unwrap().is_empty());
    assert!(!s["reporters"].as_array().unwrap().is_empty());

    let (human, _) = dmarc(&["summary", "--no-rdns", "--db", &db]);
    for heading in [
        "Domains",
        "Top sources by volume",
        "Sources failing DMARC",
        "Reporters",
    ] {
        assert!(human.contains(heading), "no {heading} in:\n{human}");
    }
    let (csv, _) = dmarc(&[
        "summary",
        "--no-rdns",
        "--csv",
        "--csv-table",
        "reporters",
        "--db",
        &db,
    ]);
    assert!(
        csv.starts_with("reporter,reports,messages,first,last\n"),
        "{csv}"
    );
    assert!(csv.contains("google.com,"));
    let (day, _) = dmarc(&[
        "summary",
        "--no-rdns",
        "--json",
        "--since",
        "2012-05-18",
        "--until",
        "2012-05-18",
        "--domain",
        "example.com",
        "--by",
        "day",
        "--db",
        &db,
    ]);
    let day: Value = serde_json::from_str(&day).unwrap();
    let periods: Vec<&str> = day["domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["period"].as_str().unwrap())
        .collect();
    assert_eq!(periods, vec!["2012-05-18"]);

    // Reverse DNS from a zone file, cached in the store: shown again with --no-rdns.
    let zone = format!("{db}.zone");
    std::fs::write(
        &zone,
        "$TTL 3600\n4.3.2.1.in-addr.arpa. IN PTR mail.example.net.\n",
    )
    .unwrap();
    let (with, _) = dmarc(&[
        "summary",
        "--dns-zone",
        &zone,
        "--since",
        "2024-01-01",
        "--top",
        "50",
        "--db",
        &db,
    ]);
    assert!(with.contains("mail.example.net"), "{with}");
    let (cached, _) = dmarc(&[
        "summary",
        "--no-rdns",
        "--since",
        "2024-01-01",
        "--top",
        "50",
        "--db",
        &db,
    ]);
    assert!(cached.contains("mail.example.net"), "{cached}");
    let _ = std::fs::remove_file(&zone);

    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{db}{suffix}"));
    }
}

/// The same corpora into PostgreSQL (the server `scripts/test.sh` starts) and into SQLite
/// give the same summary: one schema, one set of queries.
#[test]
fn postgres_and_sqlite_agree() {
    let url = dmarc_testkit::postgres::required_url();
    let pg = dmarc_testkit::postgres::fresh_schema(&url, "cli_e2e");
    let sqlite = std::env::temp_dir()
        .join(format!("dmarc-cli-agree-{}.sqlite3", std::process::id()))
        .display()
        .to_string();

    let dirs: Vec<String> = CORPORA
        .iter()
        .map(|c| dmarc_testkit::corpus(c).display().to_string())
        .collect();
    let mut summaries = Vec::new();
    for db in [&pg, &sqlite] {
        let mut args = vec!["ingest", "--json", "--db", db.as_str()];
        args.extend(dirs.iter().map(String::as_str));
        let (first, _) = dmarc(&args);
        let (second, _) = dmarc(&args);
        let first: Value = serde_json::from_str(&first).unwrap();
        let second: Value = serde_json::from_str(&second).unwrap();
        assert!(first["new"].as_u64().unwrap() >= 30);
        assert_eq!(second["new"], 0);
        assert_eq!(second["rejected_new"], 0);
        let (json, _) = dmarc(&["summary", "--json", "--no-rdns", "--by", "day", "--db", db]);
        summaries.push(serde_json::from_str::<Value>(&json).unwrap());
    }
    assert_eq!(
        summaries[0], summaries[1],
        "PostgreSQL and SQLite summaries differ"
    );
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{sqlite}{suffix}"));
    }
}
