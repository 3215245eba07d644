//! `dmarc verify`: every mail-bench verdict through `--batch` with `zone.txt` as
//! `--dns-zone`, bad cases as error lines, and the single-message output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dmarc_testkit::corpus;
use serde_json::Value;

fn dmarc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dmarc"))
        .args(args)
        .output()
        .expect("run dmarc")
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn bench() -> (PathBuf, PathBuf) {
    let dir = corpus("mail-bench");
    (dir.join("cases.jsonl"), dir.join("zone.txt"))
}

/// Every case of mail-bench through `dmarc verify --batch`: spf, dkim per signature,
/// dmarc, policy_requested and policy, in input order.
#[test]
fn batch_mail_bench_every_verdict() {
    let (cases, zone) = bench();
    let out = dmarc(&[
        "verify",
        "--batch",
        cases.to_str().unwrap(),
        "--dns-zone",
        zone.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = lines(&out);
    let want: Vec<Value> = std::fs::read_to_string(&cases)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), want.len());
    let mut diffs = Vec::new();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g["file"], w["file"], "output out of order at {i}");
        assert_eq!(g["line"], i + 1);
        let dkim: Vec<Value> = g["dkim"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| serde_json::json!({"d": d["d"], "s": d["s"], "result": d["result"]}))
            .collect();
        let dmarc = &g["dmarc"];
        let policy = if dmarc["result"] == "pass" {
            Value::from("none")
        } else {
            dmarc["applied_policy"].clone()
        };
        let got_row = serde_json::json!({
            "spf": g["spf"]["result"], "dkim": dkim, "dmarc": dmarc["result"],
            "policy_requested": dmarc["requested_policy"], "policy": policy,
            "from": dmarc["header_from"],
        });
        let want_row = serde_json::json!({
            "spf": w["spf"], "dkim": w["dkim"], "dmarc": w["dmarc"],
            "policy_requested": w["policy_requested"], "policy": w["policy"],
            "from": w["from_domain"],
        });
        if got_row != want_row {
            diffs.push(format!("{}: {got_row}\n  want {want_row}", w["file"]));
        }
        assert!(
            g["authentication_results"]
                .as_str()
                .unwrap()
                .starts_with("localhost; spf=")
        );
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

/// A bad case gives an error line for that case, not an abort; the exit status says so.
#[test]
fn batch_bad_cases_are_error_lines() {
    let (cases, zone) = bench();
    let dir = std::env::temp_dir().join(format!("dmarc-verify-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bench_dir = cases.parent().unwrap();
    let first = std::fs::read_to_string(&cases)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    let mut good: Value = serde_json::from_str(&first).unwrap();
    let abs = |v: &mut Value| {
        let f = v["file"].as_str().unwrap().to_owned();
        v["file"] = bench_dir.join(f).to_str().unwrap().into();
    };
    abs(&mut good);
    let mut bad_ip = good.clone();
    bad_ip["ip"] = "300.1.2.3".into();
    let mut missing = good.clone();
    missing["file"] = "no/such/file.eml".into();
    let jsonl = [
        good.to_string(),
        "{not json".to_owned(),
        bad_ip.to_string(),
        missing.to_string(),
        good.to_string(),
    ]
    .join("\n");
    let path = dir.join("cases.jsonl");
    std::fs::write(&path, jsonl).unwrap();
    let out = dmarc(&[
        "verify",
        "--batch",
        path.to_str().unwrap(),
        "--dns-zone",
        zone.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let got = lines(&out);
    assert_eq!(got.len(), 5);
    assert_eq!(got[0]["dmarc"]["result"], "pass");
    assert_eq!(got[1]["line"], 2);
    assert!(
        got[1]["error"].as_str().unwrap().contains("bad JSON"),
        "{}",
        got[1]
    );
    assert_eq!(got[2]["line"], 3);
    assert!(
        got[2]["error"]
            .as_str()
            .unwrap()
            .contains("not an IP address")
    );
    assert_eq!(got[3]["file"], "no/such/file.eml");
    assert!(got[3]["error"].as_str().unwrap().contains("cannot read"));
    assert_eq!(got[4]["dmarc"]["result"], "pass");
    std::fs::remove_dir_all(&dir).ok();
}

fn first_case() -> (Value, PathBuf, PathBuf) {
    let (cases, zone) = bench();
    let first = std::fs::read_to_string(&cases)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    let v: Value = serde_json::from_str(&first).unwrap();
    let msg = Path::new(cases.parent().unwrap()).join(v["file"].as_str().unwrap());
    (v, msg, zone)
}

/// The human output: the verdict in words, the policy, the action, the field.
#[test]
fn single_message_human_output() {
    let (case, msg, zone) = first_case();
    let out = dmarc(&[
        "verify",
        msg.to_str().unwrap(),
        "--ip",
        case["ip"].as_str().unwrap(),
        "--helo",
        case["helo"].as_str().unwrap(),
        "--mail-from",
        case["mail_from"].as_str().unwrap(),
        "--dns-zone",
        zone.to_str().unwrap(),
        "--authserv-id",
        "mx.receiver.example",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("SPF passed for bounces.esp0.example, but that is not aligned with brand4.example (relaxed: "),
        "{text}"
    );
    assert!(
        text.contains("DKIM passed for brand4.example and is aligned: DMARC pass.\n"),
        "{text}"
    );
    assert!(
        text.contains("Policy: brand4.example requests quarantine (p, RFC 9989)"),
        "{text}"
    );
    assert!(
        text.contains("A receiver would accept the message.\n"),
        "{text}"
    );
    assert!(
        text.contains("Authentication-Results: mx.receiver.example;\n\tspf=pass smtp.mailfrom=b-0@bounces.esp0.example;"),
        "{text}"
    );
    assert!(text.contains("\tdmarc=pass"), "{text}");
}

/// `--json` for one message: the documented keys.
#[test]
fn single_message_json() {
    let (case, msg, zone) = first_case();
    let out = dmarc(&[
        "verify",
        msg.to_str().unwrap(),
        "--ip",
        case["ip"].as_str().unwrap(),
        "--helo",
        case["helo"].as_str().unwrap(),
        "--mail-from",
        case["mail_from"].as_str().unwrap(),
        "--dns-zone",
        zone.to_str().unwrap(),
        "--json",
        "--rfc7489",
    ]);
    assert!(out.status.success());
    let v = &lines(&out)[0];
    assert_eq!(v["spf"]["result"], "pass");
    assert_eq!(v["spf"]["domain"], "bounces.esp0.example");
    assert_eq!(v["dkim"][1]["d"], "brand4.example");
    assert_eq!(v["dkim"][1]["s"], "s4");
    assert_eq!(v["dkim"][1]["result"], "pass");
    assert!(v["dkim"][1].get("reason").is_some());
    assert_eq!(v["dmarc"]["result"], "pass");
    assert_eq!(v["dmarc"]["policy_domain"], "brand4.example");
    assert_eq!(v["dmarc"]["requested_policy"], "quarantine");
    assert_eq!(v["dmarc"]["alignment"]["spf"], false);
    assert_eq!(v["dmarc"]["alignment"]["dkim"], true);
    assert_eq!(v["dmarc"]["spec"], "RFC 7489");
    assert!(
        v["authentication_results"]
            .as_str()
            .unwrap()
            .contains("dmarc=pass")
    );
}

/// A bad IP is an error with status 2.
#[test]
fn single_message_bad_ip() {
    let (case, msg, zone) = first_case();
    let out = dmarc(&[
        "verify",
        msg.to_str().unwrap(),
        "--ip",
        "not-an-ip",
        "--helo",
        case["helo"].as_str().unwrap(),
        "--dns-zone",
        zone.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an IPv4 or IPv6 address"));
}

/// With a lookup that adds a fixed delay to every query (`DelayLookup` around the zone file), the
/// wall time of `verify_message` grows with the longest chain of dependent lookups, not
/// with the number of queries: checked on mail-bench messages with two signatures (and
/// printed for BENCHMARKS-verify.md: `cargo test -p dmarc --test verify_cli -- --nocapture
/// delay`).
#[test]
fn delay_wall_time_follows_longest_chain() {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use dmarc_dns::{CountingLookup, DelayLookup, SystemClock, ZoneFile};
    use dmarc_receiver::{FixedDraw, ReceiverConfig, SmtpFacts, verify_message};

    let (cases, zone) = bench();
    let dir = cases.parent().unwrap().to_path_buf();
    // 100 ms by default, so that CPU time in a debug build on a busy machine stays small
    // next to one round trip; DMARC_VERIFY_DELAY_MS=20 gives the figures in
    // BENCHMARKS-verify.md.
    let delay = Duration::from_millis(
        std::env::var("DMARC_VERIFY_DELAY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100),
    );
    let lookup = Arc::new(CountingLookup::new(DelayLookup::new(
        ZoneFile::load(&zone).unwrap(),
        delay,
    )));
    let config = ReceiverConfig::new("mx.receiver.example");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let all: Vec<Value> = std::fs::read_to_string(&cases)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut picked: Vec<&Value> = all
        .iter()
        .filter(|c| c["dkim"].as_array().unwrap().len() == 2)
        .take(6)
        .collect();
    picked.extend(
        all.iter()
            .filter(|c| c["dkim"].as_array().unwrap().len() < 2)
            .take(4),
    );
    // Warm up one-time costs (the built-in Public Suffix List, key parsing) on a message
    // not measured.
    {
        let c = &all[all.len() - 1];
        let msg = std::fs::read(dir.join(c["file"].as_str().unwrap())).unwrap();
        let facts = SmtpFacts::new(
            c["ip"].as_str().unwrap().parse().unwrap(),
            c["helo"].as_str().unwrap(),
        );
        let mut cfg = config.clone();
        cfg.dmarc.spec = dmarc_proto::dmarc::Spec::Rfc7489;
        rt.block_on(verify_message(
            &*lookup,
            &SystemClock,
            &FixedDraw(0),
            &cfg,
            &facts,
            &msg,
        ));
        rt.block_on(verify_message(
            &*lookup,
            &SystemClock,
            &FixedDraw(0),
            &config,
            &facts,
            &msg,
        ));
    }
    let (mut total_q, mut total_wall) = (0usize, Duration::ZERO);
    eprintln!("file | signatures | scenario | queries | wall (ms) | queries x delay (ms)");
    for case in picked {
        let msg = std::fs::read(dir.join(case["file"].as_str().unwrap())).unwrap();
        let facts = SmtpFacts::new(
            case["ip"].as_str().unwrap().parse().unwrap(),
            case["helo"].as_str().unwrap(),
        )
        .with_mail_from(case["mail_from"].as_str().unwrap());
        lookup.reset();
        let start = Instant::now();
        let v = rt.block_on(verify_message(
            &*lookup,
            &SystemClock,
            &FixedDraw(0),
            &config,
            &facts,
            &msg,
        ));
        let wall = start.elapsed();
        let q = lookup.count();
        assert_eq!(v.dmarc.result.as_str(), case["dmarc"].as_str().unwrap());
        let sigs = case["dkim"].as_array().unwrap().len();
        eprintln!(
            "{} | {sigs} | {} | {q} | {:.1} | {}",
            case["file"].as_str().unwrap(),
            case["scenario"].as_str().unwrap(),
            wall.as_secs_f64() * 1e3,
            q as u128 * delay.as_millis()
        );
        if sigs == 2 {
            assert!(q >= 4, "{q} queries");
            assert!(
                wall < delay * (q as u32) / 2,
                "{}: {wall:?} for {q} queries of {delay:?}: not concurrent",
                case["file"]
            );
        }
        total_q += q;
        total_wall += wall;
    }
    eprintln!(
        "total: {total_q} queries, {:.0} ms wall (sequential would be {} ms)",
        total_wall.as_secs_f64() * 1e3,
        total_q as u128 * delay.as_millis()
    );
}

/// `--jobs` changes how many messages are verified at once, not what is printed.
#[test]
fn batch_output_is_the_same_for_any_jobs() {
    let (cases, zone) = bench();
    let run = |jobs: &str| {
        let out = dmarc(&[
            "verify",
            "--batch",
            cases.to_str().unwrap(),
            "--dns-zone",
            zone.to_str().unwrap(),
            "--jobs",
            jobs,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let one = run("1");
    assert_eq!(String::from_utf8_lossy(&one).lines().count(), 300);
    assert_eq!(one, run("3"));
}

/// `--record`: each case's observation is counted in the store under its arrival hour
/// (Unix seconds, RFC 3339, or now); recording the batch twice doubles every count; a bad
/// `arrival` is an error line for that case.
#[test]
fn batch_record_counts_observations_by_arrival() {
    let (cases, zone) = bench();
    let bench_dir = cases.parent().unwrap();
    let dir = std::env::temp_dir().join(format!("dmarc-verify-record-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("store.sqlite3");
    let text = std::fs::read_to_string(&cases).unwrap();
    let hour = 1_796_180_400_i64; // 2026-12-02 03:00:00 UTC
    let mut lines_out = Vec::new();
    for (i, line) in text.lines().take(40).enumerate() {
        let mut v: Value = serde_json::from_str(line).unwrap();
        let f = v["file"].as_str().unwrap().to_owned();
        v["file"] = bench_dir.join(f).to_str().unwrap().into();
        v["rcpt_to"] = serde_json::json!(["a@receiver.example", "b@Receiver.Example"]);
        v["arrival"] = match i % 3 {
            0 => (hour + 5).into(),
            1 => "2026-12-02T04:59:59+01:00".into(), // the same hour
            _ => "2026-12-02T04:00:00Z".into(),      // the next hour
        };
        lines_out.push(v.to_string());
    }
    lines_out.push(
        r#"{"file": "x.eml", "ip": "192.0.2.1", "helo": "h.example", "arrival": "yesterday"}"#
            .to_owned(),
    );
    let batch = dir.join("cases.jsonl");
    std::fs::write(&batch, lines_out.join("\n")).unwrap();
    for _ in 0..2 {
        let out = dmarc(&[
            "verify",
            "--batch",
            batch.to_str().unwrap(),
            "--dns-zone",
            zone.to_str().unwrap(),
            "--record",
            "--db",
            db.to_str().unwrap(),
        ]);
        assert!(!out.status.success(), "the bad arrival fails the batch");
        let got = lines(&out);
        assert_eq!(got.len(), 41);
        assert!(
            got[40]["error"].as_str().unwrap().contains("\"arrival\""),
            "{}",
            got[40]
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("recorded 40 observations"));
    }
    let mut store = dmarc_store::Store::open(db.to_str().unwrap()).unwrap();
    let first = store.observation_counts(None, hour, hour + 3600).unwrap();
    let second = store
        .observation_counts(None, hour + 3600, hour + 7200)
        .unwrap();
    let total = |rows: &[dmarc_store::ObservationCount]| rows.iter().map(|r| r.count).sum::<u64>();
    assert_eq!(total(&first), 2 * 27);
    assert_eq!(total(&second), 2 * 13);
    assert!(first.iter().all(|r| r.count % 2 == 0));
    for r in first.iter().chain(&second) {
        assert_eq!(r.observation.envelope_to, ["receiver.example"]);
    }
    std::fs::remove_dir_all(&dir).ok();
}
