//! `dmarc dkim` end to end: keygen, sign, verify with a zone file, and `verify --json`
//! over the mail-bench corpus against its recorded verdicts.

use std::path::Path;
use std::process::Command;

fn dmarc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dmarc"))
}

#[test]
fn verify_json_agrees_with_mail_bench() {
    let dir = dmarc_testkit::corpus("mail-bench");
    let cases = std::fs::read_to_string(dir.join("cases.jsonl")).unwrap();
    let cases: Vec<serde_json::Value> = cases
        .lines()
        .take(60)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let files: Vec<_> = cases
        .iter()
        .map(|c| dir.join(c["file"].as_str().unwrap()))
        .collect();
    let out = dmarc()
        .args([
            "dkim",
            "verify",
            "--json",
            "--now",
            "1795330000",
            "--dns-zone",
        ])
        .arg(dir.join("zone.txt"))
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "{out:?}"
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), cases.len());
    for ((line, case), file) in lines.iter().zip(&cases).zip(&files) {
        let got: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(got["file"], file.display().to_string());
        let sigs = got["signatures"].as_array().unwrap();
        let want = case["dkim"].as_array().unwrap();
        assert_eq!(sigs.len(), want.len(), "{line}");
        for (g, w) in sigs.iter().zip(want) {
            assert_eq!(g["d"], w["d"]);
            assert_eq!(g["s"], w["s"]);
            assert_eq!(g["result"] == "pass", w["result"] == "pass", "{line}");
            if g["result"] != "pass" {
                assert_eq!(g["reason"], "body hash mismatch");
            }
        }
    }
}

#[test]
fn keygen_sign_verify_round_trip() {
    let tmp = std::env::temp_dir().join(format!("dmarc-dkim-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let mut zone = String::from("$TTL 300\n");
    for (sel, alg) in [("r", "rsa-2048"), ("e", "ed25519")] {
        let key = tmp.join(format!("{sel}.pem"));
        let out = dmarc()
            .args([
                "dkim",
                "keygen",
                "--domain",
                "example.com",
                "--selector",
                sel,
                "--algorithm",
                alg,
                "--out",
            ])
            .arg(&key)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let line = String::from_utf8(out.stdout).unwrap();
        assert!(line.starts_with(&format!("{sel}._domainkey.example.com. IN TXT \"v=DKIM1; ")));
        assert!(line.split('"').all(|s| s.len() <= 255));
        zone.push_str(&line);
    }
    // keygen never overwrites a key.
    let again = dmarc()
        .args([
            "dkim",
            "keygen",
            "--domain",
            "example.com",
            "--selector",
            "r",
            "--out",
        ])
        .arg(tmp.join("r.pem"))
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    std::fs::write(tmp.join("zone.txt"), &zone).unwrap();
    let msg = tmp.join("m.eml");
    std::fs::write(
        &msg,
        "From: a@example.com\nTo: b@example.net\nSubject: hi\n\nHello  world\n\n",
    )
    .unwrap();
    for sel in ["r", "e"] {
        let signed = dmarc()
            .args(["dkim", "sign"])
            .arg(&msg)
            .args(["--domain", "example.com", "--selector", sel, "--key"])
            .arg(tmp.join(format!("{sel}.pem")))
            .output()
            .unwrap();
        assert!(signed.status.success(), "{signed:?}");
        // LF in, LF out.
        assert!(!signed.stdout.contains(&b'\r'));
        let signed_path = tmp.join(format!("signed-{sel}.eml"));
        std::fs::write(&signed_path, &signed.stdout).unwrap();
        let v = dmarc()
            .args(["dkim", "verify", "--dns-zone"])
            .arg(tmp.join("zone.txt"))
            .arg(&signed_path)
            .output()
            .unwrap();
        let text = String::from_utf8(v.stdout).unwrap();
        assert_eq!(v.status.code(), Some(0), "{text}");
        assert!(text.contains("dkim=pass header.d=example.com"), "{text}");
    }
    let unsigned = dmarc()
        .args(["dkim", "verify", "--dns-zone"])
        .arg(tmp.join("zone.txt"))
        .arg(&msg)
        .output()
        .unwrap();
    assert_eq!(unsigned.status.code(), Some(1));
    assert!(Path::new(&tmp).exists());
    std::fs::remove_dir_all(&tmp).unwrap();
}
