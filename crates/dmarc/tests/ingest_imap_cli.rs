//! `dmarc ingest --imap` end to end against a real Dovecot on loopback.
//!
//! `scripts/test.sh` starts the server through `scripts/dovecot.sh`, which exports the
//! `DMARC_TEST_IMAP_*` variables. Without them this test fails and says how to start it.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;

struct Server {
    host: String,
    port: String,
    tls_port: String,
    user: String,
    password: String,
    ca_file: String,
}

fn server() -> Server {
    let var = |name: &str| {
        std::env::var(format!("DMARC_TEST_IMAP_{name}")).unwrap_or_else(|_| {
            panic!(
                "DMARC_TEST_IMAP_{name} is not set: these tests need a loopback Dovecot. \
                 Run them through `bash scripts/test.sh`, or start one with \
                 `bash scripts/dovecot.sh --env-file /tmp/imap.env` and `source /tmp/imap.env`"
            )
        })
    };
    Server {
        host: var("HOST"),
        port: var("PORT"),
        tls_port: var("TLS_PORT"),
        user: var("USER"),
        password: var("PASSWORD"),
        ca_file: var("CA_FILE"),
    }
}

/// A minimal IMAP client (plaintext on loopback, which the test server allows) that
/// creates a mailbox and appends messages to it.
fn append_all(s: &Server, mailbox: &str, messages: &[Vec<u8>]) {
    let stream = TcpStream::connect(format!("{}:{}", s.host, s.port)).unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    let mut read_until = |r: &mut BufReader<TcpStream>, prefix: &str| loop {
        line.clear();
        assert!(
            r.read_line(&mut line).unwrap() > 0,
            "server closed the connection"
        );
        if line.starts_with(prefix) {
            assert!(
                prefix == "+" || line.contains(" OK") || line.contains("[ALREADYEXISTS]"),
                "IMAP command failed: {line}"
            );
            return;
        }
    };
    read_until(&mut r, "* OK");
    write!(w, "a LOGIN \"{}\" \"{}\"\r\n", s.user, s.password).unwrap();
    read_until(&mut r, "a ");
    write!(w, "b CREATE \"{mailbox}\"\r\n").unwrap();
    read_until(&mut r, "b ");
    for (i, m) in messages.iter().enumerate() {
        write!(w, "c{i} APPEND \"{mailbox}\" {{{}}}\r\n", m.len()).unwrap();
        read_until(&mut r, "+");
        w.write_all(m).unwrap();
        w.write_all(b"\r\n").unwrap();
        read_until(&mut r, &format!("c{i} "));
    }
    write!(w, "z LOGOUT\r\n").unwrap();
}

fn samples() -> Vec<Vec<u8>> {
    let dir = dmarc_testkit::corpus("reports-mail-auth/dmarc-feedback");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 3,
        "expected report emails in {}",
        dir.display()
    );
    let mut out: Vec<Vec<u8>> = files
        .iter()
        .map(|p| dmarc_testkit::to_crlf(&std::fs::read(p).unwrap()))
        .collect();
    out.push(b"From: someone@example.com\r\nSubject: not a report\r\n\r\nhello\r\n".to_vec());
    out
}

fn ingest(db: &Path, url: &str, extra: &[&str], password: &str) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_dmarc"))
        .args(["ingest", "--imap", url, "--json", "--db"])
        .arg(db)
        .args(extra)
        .env("DMARC_IMAP_PASSWORD", password)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dmarc ingest --imap failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}{}{nanos}", std::process::id())
}

#[test]
fn ingest_from_imap_moves_reports_and_rejects_garbage() {
    let s = server();
    let mailbox = unique("cli");
    let messages = samples();
    let reports = messages.len() as u64 - 1;
    append_all(&s, &mailbox, &messages);
    let dir = std::env::temp_dir().join(unique("dmarc-imap-cli"));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("store.sqlite3");

    // Implicit TLS, trusting the test CA, with folders for both outcomes.
    let url = format!("imaps://{}@{}:{}/{mailbox}", s.user, s.host, s.tls_port);
    let done = format!("{mailbox}-done");
    let bad = format!("{mailbox}-bad");
    let args = [
        "--imap-ca-file",
        s.ca_file.as_str(),
        "--imap-move-to",
        done.as_str(),
        "--imap-error-folder",
        bad.as_str(),
    ];
    let first = ingest(&db, &url, &args, &s.password);
    assert_eq!(first["messages"], reports + 1, "{first}");
    assert_eq!(first["new"], reports, "{first}");
    assert_eq!(first["rejected"], 1, "{first}");

    // Everything was moved out of the mailbox: a second run finds nothing.
    let second = ingest(&db, &url, &args, &s.password);
    assert_eq!(second["messages"], 0, "{second}");

    // The same reports appended again over STARTTLS are recognised as duplicates.
    append_all(&s, &mailbox, &messages[..messages.len() - 1]);
    let url = format!("imap://{}@{}:{}/{mailbox}", s.user, s.host, s.port);
    let third = ingest(&db, &url, &args, &s.password);
    assert_eq!(third["duplicate"], reports, "{third}");
    assert_eq!(third["new"], 0, "{third}");

    // The rejected message is listed with its IMAP origin.
    let out = Command::new(env!("CARGO_BIN_EXE_dmarc"))
        .args(["report", "rejected", "--json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("UIDVALIDITY"), "{listing}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_password_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_dmarc"))
        .args([
            "ingest",
            "--imap",
            "imaps://u@127.0.0.1:1/INBOX",
            "--db",
            "/nonexistent/x.db",
        ])
        .env_remove("DMARC_IMAP_PASSWORD")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DMARC_IMAP_PASSWORD"), "{err}");
}
