//! `dmarc report parse`: JSON lines per report, errors as lines, exit status.

use std::process::Command;

use serde_json::Value;

fn run(args: &[&str]) -> (i32, Vec<Value>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dmarc"))
        .args(args)
        .output()
        .expect("run dmarc");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 output");
    let lines = if args.contains(&"--json") {
        stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    } else {
        Vec::new()
    };
    (out.status.code().unwrap_or(-1), lines, stdout)
}

fn corpus(rel: &str) -> String {
    dmarc_testkit::corpus(rel).display().to_string()
}

#[test]
fn json_lines_for_every_kind_and_an_error_line() {
    let agg = corpus("reports-mail-auth/dmarc-feedback/103.eml");
    let rfc9990 = corpus("reports-mail-auth/dmarc-feedback/004.xml");
    let arf = corpus("reports-mail-auth/arf/004.eml");
    let tls = corpus("reports-dmarc-report-viewer/smtp-tls-reports/microsoft.json");
    let missing = "/nonexistent/report.xml";
    let (code, lines, _) = run(&[
        "report", "parse", "--json", &agg, &rfc9990, missing, &arf, &tls,
    ]);
    assert_eq!(code, 1, "an unreadable input makes the status 1");
    assert_eq!(lines.len(), 5);

    let a = &lines[0];
    assert_eq!(a["kind"], "aggregate");
    assert_eq!(a["file"], agg.as_str());
    assert_eq!(a["org_name"], "Outlook.com");
    assert_eq!(a["report_id"], "725cbfbe133940149987cfc528387235");
    assert_eq!(a["begin"], 1_666_483_200);
    assert_eq!(a["policy_published"]["domain"], "stalw.art");
    assert_eq!(a["policy_published"]["p"], "none");
    let rec = &a["records"][0];
    assert!(rec["source_ip"].as_str().is_some());
    assert_eq!(rec["count"], 1);
    assert_eq!(rec["auth_results"]["spf"][0]["scope"], "mfrom");
    assert_eq!(rec["envelope_to"], "outlook.com");
    assert_eq!(
        rec["auth_results"]["dkim"].as_array().map(Vec::len),
        Some(3)
    );

    let b = &lines[1];
    assert_eq!(b["policy_published"]["np"], "none");
    assert_eq!(b["policy_published"]["testing"], "n");
    assert_eq!(b["policy_published"]["discovery_method"], "treewalk");
    assert_eq!(b["generator"], "Example DMARC Aggregate Reporter v1.2");
    assert_eq!(b["version"], "1.0");

    let e = &lines[2];
    assert_eq!(e["file"], missing);
    assert!(e["error"].as_str().unwrap().contains("cannot read"));
    assert!(e.get("kind").is_none());

    let f = &lines[3];
    assert_eq!(f["kind"], "failure");
    assert_eq!(f["feedback_type"], "auth-failure");
    assert_eq!(f["source_ip"], "148.163.85.135");
    assert_eq!(f["auth_failure"], "dmarc");
    assert_eq!(f["reported_domain"][0], "interpublication.org");
    assert!(
        f["original_headers"]
            .as_str()
            .unwrap()
            .contains("DKIM-Signature:")
    );

    let t = &lines[4];
    assert_eq!(t["kind"], "smtp_tls");
    assert_eq!(t["organization_name"], "Microsoft Corporation");
    assert!(!t["policies"].as_array().unwrap().is_empty());
    assert!(t["policies"][0]["summary"]["total_successful_session_count"].is_u64());
}

#[test]
fn all_good_inputs_exit_zero_with_a_human_summary() {
    let google = corpus("reports-dmarc-report-viewer/dmarc-reports/google.xml");
    let (code, _, out) = run(&["report", "parse", &google]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("aggregate report from google.com"), "{out}");
    assert!(out.contains("record(s)"), "{out}");
}

#[test]
fn unparsable_file_gives_error_line_and_status_1() {
    let dir = std::env::temp_dir().join(format!("dmarc-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("garbage.bin");
    std::fs::write(&bad, b"\x00\x01\x02 nothing").unwrap();
    let good = corpus("reports-mail-auth/tlsrpt/rpt02.json");
    let bad_s = bad.display().to_string();
    let (code, lines, _) = run(&["report", "parse", "--json", &bad_s, &good]);
    assert_eq!(code, 1);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["file"], bad_s.as_str());
    assert!(lines[0]["error"].as_str().unwrap().contains("not a report"));
    assert_eq!(lines[1]["kind"], "smtp_tls");
    std::fs::remove_dir_all(&dir).ok();
}

/// A reader that goes away (`dmarc report parse ... | head -1`) ends the command quietly
/// and successfully: no "Broken pipe" on standard error.
#[test]
fn a_closed_stdout_ends_quietly() {
    use std::io::Read;
    let agg = corpus("reports-mail-auth/dmarc-feedback/004.xml");
    // Enough output that it cannot all sit in the pipe before the reader closes it.
    let files: Vec<String> = std::iter::repeat_n(agg, 2000).collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dmarc"))
        .args(["report", "parse", "--json"])
        .args(&files)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run dmarc");
    let mut first = [0u8; 1];
    child
        .stdout
        .take()
        .expect("stdout")
        .read_exact(&mut first)
        .expect("some output");
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(stderr.is_empty(), "{stderr}");
}
