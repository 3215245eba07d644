//! `dmarc sources` and `dmarc rollout` end to end: the generated report set of
//! `dmarc_testkit::rollout` ingested with `dmarc ingest`, DNS from its zone file, on
//! SQLite and (when `DMARC_TEST_POSTGRES` names a server, as `scripts/test.sh` sets it) on
//! PostgreSQL; the JSON must carry the fixture's truth.

use std::path::Path;
use std::process::Command;

use dmarc_testkit::rollout as fx;
use serde_json::Value;

fn dmarc(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dmarc"))
        .args(args)
        .output()
        .expect("run dmarc")
}

fn ok(args: &[&str]) -> String {
    let out = dmarc(args);
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        out.status.success(),
        "dmarc {args:?}: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn fixture(dir: &Path) -> String {
    std::fs::create_dir_all(dir.join("reports")).unwrap();
    for (name, xml) in fx::reports() {
        std::fs::write(dir.join("reports").join(name), xml).unwrap();
    }
    let zone = dir.join("example.com.zone");
    std::fs::write(&zone, fx::ZONE).unwrap();
    zone.display().to_string()
}

fn check_db(db: &str, zone: &str, dir: &Path) {
    let reports = dir.join("reports").display().to_string();
    let out = ok(&["ingest", "--db", db, &reports]);
    assert!(out.is_empty() || out.contains("40"), "{out}");
    let u = fx::units();

    // dmarc sources --json: the sources with the fixture's names, kinds and counts.
    let json: Value = serde_json::from_str(&ok(&[
        "sources",
        "example.com",
        "--db",
        db,
        "--dns-zone",
        zone,
        "--json",
    ]))
    .unwrap();
    let list = json.as_array().expect("a list");
    assert_eq!(list.len(), fx::SENDERS.len());
    for want in fx::SENDERS {
        let s = list
            .iter()
            .find(|s| s["name"] == want.name)
            .unwrap_or_else(|| panic!("{} missing: {json:#}", want.name));
        assert_eq!(s["kind"], want.kind, "{}", want.name);
        let ips: Vec<&str> = s["ips"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(ips, want.ips);
        let (m, p) = fx::per_unit(want.ips);
        assert_eq!(s["messages"], m * u, "{}", want.name);
        assert_eq!(s["dmarc_pass"], p * u, "{}", want.name);
        assert_eq!(s["fix"].is_string(), p < m, "{}", want.name);
    }
    // Largest first.
    assert_eq!(list[0]["name"], "own servers (ip4:192.0.2.0/28)");

    // dmarc rollout --json: the fields of the issue, with the truth.
    let r: Value = serde_json::from_str(&ok(&[
        "rollout",
        "example.com",
        "--db",
        db,
        "--dns-zone",
        zone,
        "--json",
    ]))
    .unwrap();
    assert_eq!(r["domain"], "example.com");
    assert_eq!(r["current"]["p"], "none");
    for k in ["sp", "np", "pct"] {
        assert!(r["current"][k].is_null(), "{k}");
    }
    assert_eq!(r["current"]["t"], false);
    assert_eq!(r["window"]["first"], "2024-03-01 00:00:00");
    assert_eq!(r["window"]["last"], "2024-03-20 23:59:59");
    assert_eq!(r["window"]["days"], 20);
    assert_eq!(r["window"]["messages"], 124 * u);
    assert!((r["aligned_share"].as_f64().unwrap() - 99.0 / 117.0).abs() < 1e-12);
    let sim: Vec<(String, i64, i64, i64, i64)> = r["simulation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["stage"].as_str().unwrap().to_string(),
                s["pct"].as_i64().unwrap(),
                s["messages"].as_i64().unwrap(),
                s["legitimate"].as_i64().unwrap(),
                s["unknown"].as_i64().unwrap(),
            )
        })
        .collect();
    let q = |pct, l: i64, un: i64| ("quarantine".to_string(), pct, l + un, l, un);
    assert_eq!(
        sim,
        [
            q(10, 162, 63),
            q(25, 405, 158),
            q(50, 810, 315),
            q(100, 1620, 630),
            q(0, 0, 0),
            ("reject".to_string(), 100, 2250, 1620, 630),
        ]
    );
    assert_eq!(r["blockers"].as_array().unwrap().len(), 4);
    assert_eq!(r["blockers"][0]["name"], "SendGrid (Twilio)");
    assert_eq!(r["next"]["stage"], "quarantine");
    assert_eq!(
        r["next"]["record"],
        "v=DMARC1; p=none; sp=quarantine; np=reject; pct=10; rua=mailto:dmarc@example.com"
    );

    // The text forms.
    let text = ok(&["sources", "example.com", "--db", db, "--dns-zone", zone]);
    assert!(
        text.contains("SendGrid (Twilio) [service]: 1080 message(s), DMARC pass 0"),
        "{text}"
    );
    assert!(
        text.contains("fix: sign its mail with DKIM as example.com"),
        "{text}"
    );
    let text = ok(&["rollout", "example.com", "--db", db, "--dns-zone", zone]);
    assert!(
        text.contains("quarantine pct=10             225         162         63"),
        "{text}"
    );
    assert!(
        text.contains("_dmarc.example.com TXT \"v=DMARC1; p=none; sp=quarantine;"),
        "{text}"
    );

    // A later window: ten days, not enough.
    let r: Value = serde_json::from_str(&ok(&[
        "rollout",
        "example.com",
        "--db",
        db,
        "--dns-zone",
        zone,
        "--json",
        "--since",
        "2024-03-11",
    ]))
    .unwrap();
    assert_eq!(r["window"]["days"], 10);
    assert_eq!(r["window"]["long_enough"], false);
    assert_eq!(r["window"]["messages"], 124 * 40);
}

#[test]
fn sources_and_rollout_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let zone = fixture(dir.path());
    let db = dir.path().join("db.sqlite3").display().to_string();
    check_db(&db, &zone, dir.path());
}

#[test]
fn sources_and_rollout_on_postgres() {
    let Some(url) = dmarc_testkit::postgres::url() else {
        eprintln!("DMARC_TEST_POSTGRES is not set: the PostgreSQL run is skipped");
        return;
    };
    let db = dmarc_testkit::postgres::fresh_schema(&url, "t_rollout_cli");
    let dir = tempfile::tempdir().unwrap();
    let zone = fixture(dir.path());
    check_db(&db, &zone, dir.path());
}

#[test]
fn bad_arguments_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite3").display().to_string();
    let zone = fixture(dir.path());
    for (args, why) in [
        (
            vec!["sources", "not a domain", "--db", &db, "--dns-zone", &zone],
            "not a domain name",
        ),
        (
            vec![
                "rollout",
                "example.com",
                "--db",
                &db,
                "--dns-zone",
                &zone,
                "--since",
                "2024-03-10",
                "--until",
                "2024-03-01",
            ],
            "--until is before --since",
        ),
        (
            vec![
                "rollout",
                "example.com",
                "--db",
                &db,
                "--since",
                "2024-02-30",
            ],
            "day 30 does not exist",
        ),
    ] {
        let out = dmarc(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{args:?}: {err}");
    }
    // An empty store: no sources, and no stage to simulate against.
    let text = ok(&["sources", "example.com", "--db", &db, "--dns-zone", &zone]);
    assert!(text.contains("No aggregate reports match."), "{text}");
    let r: Value = serde_json::from_str(&ok(&[
        "rollout",
        "example.com",
        "--db",
        &db,
        "--dns-zone",
        &zone,
        "--json",
    ]))
    .unwrap();
    assert_eq!(r["window"]["messages"], 0);
    assert_eq!(r["window"]["long_enough"], false);
    assert_eq!(r["simulation"][0]["messages"], 0);
}
