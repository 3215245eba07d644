//! End to end with a real Sendmail (8.17, Debian's packages unpacked by scripts/sendmail.sh,
//! which scripts/test.sh starts): `dmarc milter` on the port Sendmail's
//! `INPUT_MAIL_FILTER` names, in Sendmail's spelling (`inet:PORT@127.0.0.1`), and
//! mail-bench messages sent over SMTP. A rejected message gets 550 5.7.1, a quarantined one
//! stays in Sendmail's queue as quarantined (an `hf` file with our reason), an accepted one
//! is delivered with our Authentication-Results at the top; the store counts each once.
//!
//! Sendmail has no XCLIENT, so every message comes from 127.0.0.1 (not exempt here) and
//! SPF sees that address rather than the case's. The cases are chosen so that the corpus's
//! DMARC verdict does not depend on SPF: accepted ones pass by an aligned DKIM signature,
//! refused and quarantined ones have no passing signature and no SPF pass in the corpus
//! (127.0.0.1 is in no sender's record, so SPF cannot pass for it either).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use dmarc_testkit::corpus;
use dmarc_testkit::daemon::{Daemon, wait_for_port};
use dmarc_testkit::smtp::Smtp;
use serde_json::Value;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: this test needs the private Sendmail of scripts/sendmail.sh. Run \
             `bash scripts/test.sh`, or `bash scripts/sendmail.sh -- cargo test -p dmarc --test milter_sendmail` (as root)"
        )
    })
}

/// `inet:PORT@HOST` as `HOST:PORT`.
fn sendmail_socket(spec: &str) -> String {
    let (port, host) = spec
        .trim_start_matches("inet:")
        .split_once('@')
        .unwrap_or_else(|| panic!("not inet:PORT@HOST: {spec}"));
    format!("{host}:{port}")
}

/// One SMTP transaction for `c`; the reply to the final dot (lines joined by "\n").
fn send(smtp: &str, c: &Value, message: &[u8]) -> String {
    let s = |k: &str| c[k].as_str().unwrap_or("").to_owned();
    let mut client = Smtp::connect(smtp).unwrap();
    for (line, code) in [
        (format!("EHLO {}", s("helo")), "250"),
        (format!("MAIL FROM:<{}>", s("mail_from")), "250"),
        ("RCPT TO:<user@receiver.example>".to_owned(), "250"),
    ] {
        client.expect(&line, code).unwrap();
    }
    let r = client.data(message).unwrap();
    let _ = client.command("QUIT");
    r
}

/// `method=result` of our Authentication-Results field in `message`.
fn our_results(message: &str) -> Vec<String> {
    let header = message.split("\n\n").next().unwrap_or("");
    let unfolded = header.replace("\n\t", " ").replace("\n ", " ");
    let field = unfolded
        .lines()
        .find(|l| l.starts_with("Authentication-Results: mx.receiver.example;"))
        .unwrap_or_else(|| panic!("no Authentication-Results of ours in\n{header}"));
    dmarc_proto::auth_results::parse(field.trim_start_matches("Authentication-Results:"))
        .unwrap()
        .results
        .iter()
        .map(|r| format!("{}={}", r.method, r.result))
        .collect()
}

/// (header_from, dmarc, disposition) -> messages, as the store has counted them.
fn counted(db: &Path) -> BTreeMap<(String, String, String), u64> {
    let mut store = dmarc_store::Store::open(db.to_str().unwrap()).unwrap();
    let mut out = BTreeMap::new();
    for row in store.observation_counts(None, 0, i64::MAX).unwrap() {
        let o = row.observation;
        *out.entry((o.header_from.unwrap_or_default(), o.dmarc, o.disposition))
            .or_default() += row.count;
    }
    out
}

/// The delivered message that Sendmail queued as `id`, waiting for delivery.
fn delivered(maildir: &Path, id: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for e in std::fs::read_dir(maildir.join("new")).unwrap() {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            if text.contains(&format!("with ESMTP id {id}")) {
                return text;
            }
        }
        assert!(Instant::now() < deadline, "{id} not delivered");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sendmail_refuses_quarantines_and_delivers_with_our_results() {
    let smtp = env("DMARC_TEST_SENDMAIL_SMTP");
    let milter_spec = env("DMARC_TEST_SENDMAIL_MILTER");
    let queue = PathBuf::from(env("DMARC_TEST_SENDMAIL_QUEUE"));
    let maildir = PathBuf::from(env("DMARC_TEST_SENDMAIL_MAILDIR"));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("counts.sqlite3");
    let milter = Daemon::spawn_with_temp_log(
        Command::new(env!("CARGO_BIN_EXE_dmarc"))
            .args(["milter", "--listen", &milter_spec])
            .args(["--authserv-id", "mx.receiver.example", "--db"])
            .arg(&db)
            .arg("--dns-zone")
            .arg(corpus("mail-bench").join("zone.txt"))
            .args(["-o", "quarantine=hold", "-o", "exempt.client_ips=[]"]),
    );
    wait_for_port(&sendmail_socket(&milter_spec));

    let cases: Vec<Value> = std::fs::read_to_string(corpus("mail-bench").join("cases.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let s = |c: &Value, k: &str| c[k].as_str().unwrap_or("").to_owned();
    let dkim_pass = |c: &Value, aligned: bool| {
        c["dkim"].as_array().unwrap().iter().any(|d| {
            d["result"] == "pass" && (!aligned || d["d"].as_str() == c["from_domain"].as_str())
        })
    };
    let failing = |policy: &'static str| {
        cases
            .iter()
            .filter(move |c| {
                s(c, "dmarc") == "fail"
                    && s(c, "policy") == policy
                    && s(c, "spf") != "pass"
                    && !dkim_pass(c, false)
            })
            .take(3)
    };
    let accepted = cases
        .iter()
        .filter(|c| s(c, "dmarc") == "pass" && dkim_pass(c, true))
        .take(3);
    let mut expect_counts = BTreeMap::new();
    let mut sent = 0;
    let mut quarantined = Vec::new();
    let mut queued = Vec::new();
    for (c, what) in failing("reject")
        .map(|c| (c, "reject"))
        .chain(failing("quarantine").map(|c| (c, "quarantine")))
        .chain(accepted.map(|c| (c, "accept")))
    {
        let message = std::fs::read(corpus("mail-bench").join(s(c, "file"))).unwrap();
        let reply = send(&smtp, c, &message);
        sent += 1;
        *expect_counts
            .entry((s(c, "from_domain"), s(c, "dmarc"), s(c, "policy")))
            .or_insert(0u64) += 1;
        if what == "reject" {
            assert_eq!(
                reply,
                format!(
                    "550 5.7.1 Rejected by DMARC policy for {}",
                    s(c, "from_domain")
                )
            );
            continue;
        }
        // 250 2.0.0 QUEUEID Message accepted for delivery
        assert!(reply.starts_with("250 2.0.0 "), "{}: {reply}", s(c, "file"));
        let id = reply.split(' ').nth(2).unwrap().to_owned();
        if what == "quarantine" {
            quarantined.push((id, s(c, "from_domain")));
        } else {
            queued.push((id, c));
        }
    }
    assert_eq!((quarantined.len(), queued.len()), (3, 3), "too few cases");

    // Quarantined: kept in the queue as an hf file (Sendmail's quarantine), our reason in
    // its q line, never delivered.
    for (id, domain) in &quarantined {
        let hf = std::fs::read(queue.join(format!("hf{id}")))
            .unwrap_or_else(|e| panic!("{id} not quarantined in {}: {e}", queue.display()));
        let hf = String::from_utf8_lossy(&hf);
        let reason = hf.lines().find(|l| l.starts_with('q')).unwrap_or("");
        assert!(reason.contains(domain.as_str()), "{id}: {reason:?}");
        assert!(!queue.join(format!("qf{id}")).exists());
    }

    // Delivered: ours the only Authentication-Results of our authserv-id, at the top
    // (above Sendmail's Received field), with the corpus's DKIM and DMARC verdicts.
    for (id, c) in &queued {
        let text = delivered(&maildir, id);
        let results = our_results(&text);
        let dkim: Vec<String> = results
            .iter()
            .filter(|r| r.starts_with("dkim="))
            .cloned()
            .collect();
        let want: Vec<String> = c["dkim"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| format!("dkim={}", d["result"].as_str().unwrap()))
            .collect();
        assert_eq!(dkim, want, "{id}");
        assert!(results.contains(&"dmarc=pass".to_owned()), "{results:?}");
        assert_eq!(
            text.matches("Authentication-Results: mx.receiver.example;")
                .count(),
            1
        );
        let ar = text
            .find("Authentication-Results: mx.receiver.example;")
            .unwrap();
        assert!(ar < text.find("Received: from ").unwrap(), "{id}:\n{text}");
    }
    for (id, _) in &quarantined {
        let delivered = std::fs::read_dir(maildir.join("new")).unwrap().any(|e| {
            std::fs::read_to_string(e.unwrap().path())
                .unwrap()
                .contains(&format!("with ESMTP id {id}"))
        });
        assert!(!delivered, "quarantined {id} was delivered");
    }

    // One verdict line per message with Sendmail's queue id; each counted once.
    let log = milter.stop();
    assert_eq!(
        log.matches(": client=localhost[127.0.0.1]").count(),
        sent,
        "{log}"
    );
    let ids = quarantined
        .iter()
        .map(|(id, _)| id)
        .chain(queued.iter().map(|(id, _)| id));
    for id in ids {
        assert!(log.contains(&format!("{id}: client=")), "{id} in\n{log}");
    }
    assert_eq!(counted(&db), expect_counts, "{log}");
}
