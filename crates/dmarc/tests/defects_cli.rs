//! Regression tests for the defects of issue 9, as a user meets them through the `dmarc`
//! binary: the DMARC bypass through the shape of From (`dmarc verify` and its --from-*
//! choices), unbounded file arguments, misleading messages.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

fn dmarc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dmarc"))
        .args(args)
        .output()
        .expect("run dmarc")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// victim.example publishes p=reject; attacker.example's SPF passes for 192.0.2.1.
const ZONE: &str = "$TTL 300
_dmarc.victim.example. IN TXT \"v=DMARC1; p=reject\"
victim.example. IN TXT \"v=spf1 -all\"
_dmarc.attacker.example. IN TXT \"v=DMARC1; p=none\"
attacker.example. IN TXT \"v=spf1 ip4:192.0.2.1 -all\"
";

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("zone.txt"), ZONE).unwrap();
        Fixture { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `dmarc verify --json` of a message with this header block, plus `extra` flags.
    fn verify(&self, header: &str, extra: &[&str]) -> Value {
        let msg = self.path("msg.eml");
        std::fs::write(&msg, format!("{header}Subject: pay\r\n\r\nNow.\r\n")).unwrap();
        let zone = self.path("zone.txt");
        let mut args = vec![
            "verify",
            msg.to_str().unwrap(),
            "--ip",
            "192.0.2.1",
            "--helo",
            "mail.attacker.example",
            "--mail-from",
            "b@attacker.example",
            "--dns-zone",
            zone.to_str().unwrap(),
            "--json",
        ];
        args.extend_from_slice(extra);
        let out = dmarc(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn verdict(v: &Value) -> (String, String) {
    (
        v["dmarc"]["result"].as_str().unwrap().to_owned(),
        v["action"].as_str().unwrap().to_owned(),
    )
}

fn pair(result: &str, action: &str) -> (String, String) {
    (result.to_owned(), action.to_owned())
}

#[test]
fn from_longer_than_field_limit_does_not_bypass_dmarc() {
    let f = Fixture::new();
    let padded = format!(
        "From: \"{}\" <ceo@victim.example>\r\n",
        "A".repeat(16_384 + 10)
    );
    let v = f.verify(&padded, &[]);
    assert_eq!(verdict(&v), pair("fail", "reject"), "{v}");
    assert!(
        v["dmarc"]["reason"]
            .as_str()
            .unwrap()
            .contains("longer than 16384 bytes"),
        "{v}"
    );
    assert_eq!(
        verdict(&f.verify(&padded, &["--from-unreadable", "reject"])),
        pair("permerror", "reject")
    );
    assert_eq!(
        verdict(&f.verify(&padded, &["--from-unreadable", "accept"])),
        pair("permerror", "accept")
    );
}

#[test]
fn two_from_fields_do_not_bypass_dmarc() {
    let f = Fixture::new();
    let two = "From: ceo@victim.example\r\nFrom: x@attacker.example\r\n";
    assert_eq!(verdict(&f.verify(two, &[])), pair("fail", "reject"));
    assert_eq!(
        verdict(&f.verify(two, &["--from-multiple-fields", "evaluate"])),
        pair("fail", "reject")
    );
    assert_eq!(
        verdict(&f.verify(two, &["--from-multiple-fields", "reject"])),
        pair("permerror", "reject")
    );
    assert_eq!(
        verdict(&f.verify(two, &["--from-multiple-fields", "accept"])),
        pair("permerror", "accept")
    );
}

#[test]
fn from_with_two_domains_does_not_bypass_dmarc() {
    let f = Fixture::new();
    let two = "From: ceo@victim.example, x@attacker.example\r\n";
    let v = f.verify(two, &[]);
    assert_eq!(verdict(&v), pair("fail", "reject"));
    assert_eq!(v["dmarc"]["header_from"], "victim.example");
    assert_eq!(
        verdict(&f.verify(
            "From: x@attacker.example, y@attacker.example\r\n",
            &["--from-multiple-addresses", "reject"]
        )),
        pair("permerror", "reject")
    );
    for opt_in in ["same-domain-only", "decline"] {
        assert_eq!(
            verdict(&f.verify(two, &["--from-multiple-addresses", opt_in])),
            pair("none", "accept")
        );
    }
}

#[test]
fn from_naming_no_domain_is_refused() {
    let f = Fixture::new();
    assert_eq!(verdict(&f.verify("", &[])), pair("permerror", "reject"));
    assert_eq!(
        verdict(&f.verify("From: Nobody\r\n", &[])),
        pair("permerror", "reject")
    );
}

#[test]
fn from_choices_are_documented_in_help() {
    let out = dmarc(&["verify", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--from-multiple-addresses",
        "--from-multiple-fields",
        "--from-unreadable",
        "RejectMultiValueFrom",
        "RequiredHeaders",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

/// Runs `args`, asserting a failure within a few seconds whose message has `want`.
fn fails_fast(args: &[&str], want: &str) {
    let start = Instant::now();
    let out = dmarc(args);
    assert!(!out.status.success());
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "took {:?}",
        start.elapsed()
    );
    assert!(stderr(&out).contains(want), "{}", stderr(&out));
}

#[test]
fn endless_file_arguments_are_refused_at_their_limit() {
    let f = Fixture::new();
    let msg = f.path("m.eml");
    std::fs::write(&msg, "From: a@victim.example\r\n\r\nx\r\n").unwrap();
    let m = msg.to_str().unwrap();
    fails_fast(
        &[
            "dkim",
            "sign",
            m,
            "--key",
            "/dev/zero",
            "--domain",
            "a.example",
            "--selector",
            "s",
        ],
        "the key file /dev/zero is larger than 1048576 bytes",
    );
    fails_fast(
        &[
            "dkim",
            "sign",
            "/dev/zero",
            "--key",
            m,
            "--domain",
            "a.example",
            "--selector",
            "s",
        ],
        "the message /dev/zero is larger than 67108864 bytes",
    );
    fails_fast(
        &[
            "verify",
            "/dev/zero",
            "--ip",
            "192.0.2.1",
            "--helo",
            "h.example",
        ],
        "the message /dev/zero is larger than",
    );
    fails_fast(
        &["verify", "--batch", "/dev/zero"],
        "the cases file /dev/zero is larger than",
    );
    // Per file: the error is reported for that file, the rest go on.
    let out = dmarc(&["report", "parse", "/dev/zero", "--json"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("the report file /dev/zero is larger than"),
        "{text}"
    );
    let out = dmarc(&["dkim", "verify", "/dev/zero", "--json"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("the message /dev/zero is larger than"),
        "{text}"
    );
}

#[test]
fn batch_case_pointing_at_an_endless_file_is_an_error_line() {
    let f = Fixture::new();
    let cases = f.path("cases.jsonl");
    std::fs::write(
        &cases,
        "{\"file\":\"/dev/zero\",\"ip\":\"192.0.2.1\",\"helo\":\"h.example\",\"mail_from\":\"\"}\n",
    )
    .unwrap();
    let zone = f.path("zone.txt");
    let out = dmarc(&[
        "verify",
        "--batch",
        cases.to_str().unwrap(),
        "--dns-zone",
        zone.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        line["error"]
            .as_str()
            .unwrap()
            .contains("the message /dev/zero is larger than"),
        "{line}"
    );
}

#[test]
fn keygen_refuses_a_domain_that_is_not_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dmarc"))
        .current_dir(dir.path())
        .args([
            "dkim",
            "keygen",
            "--domain",
            "bad domain;x",
            "--selector",
            "s1",
            "--algorithm",
            "ed25519",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--domain: \"bad domain;x\""),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let out = Command::new(env!("CARGO_BIN_EXE_dmarc"))
        .current_dir(dir.path())
        .args([
            "dkim",
            "keygen",
            "--domain",
            "example.com",
            "--selector",
            "s;1",
            "--algorithm",
            "ed25519",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--selector"), "{}", stderr(&out));
}

#[test]
fn misspelt_store_url_is_refused_without_echoing_the_password() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "postgress://user:s3cret@db.example/dmarc",
        "mysql://user:s3cret@db.example/dmarc",
        "sqlite:///var/s3cret.db",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_dmarc"))
            .current_dir(dir.path())
            .args(["summary", "--db", url])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{url}");
        let err = stderr(&out);
        assert!(!err.contains("s3cret"), "{err}");
        assert!(
            err.contains("unknown store URL scheme") || err.contains("ambiguous"),
            "{err}"
        );
        // Nothing was created in the working directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "{url}");
    }
    // The accepted spellings.
    let db = dir.path().join("a.sqlite3");
    let out = dmarc(&["summary", "--db", &format!("SQLite:{}", db.display())]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(db.exists());
}

/// Runs `dmarc` as an unprivileged user when this test runs as root (root ignores file
/// modes), else as this user.
fn dmarc_unprivileged(args: &[&str]) -> Output {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false);
    let bin = env!("CARGO_BIN_EXE_dmarc");
    if root {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", bin])
            .args(args)
            .output()
            .expect("setpriv")
    } else {
        dmarc(args)
    }
}

#[test]
fn summary_on_a_read_only_database_says_so() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ro.sqlite3");
    let out = dmarc(&["summary", "--db", db.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let set = |p: &std::path::Path, mode| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    set(&db, 0o444);
    set(dir.path(), 0o555);
    let out = dmarc_unprivileged(&["summary", "--db", db.to_str().unwrap()]);
    set(dir.path(), 0o755);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("is read-only for this user"), "{err}");
    assert!(
        !err.contains("attempt to write a readonly database"),
        "{err}"
    );
}
