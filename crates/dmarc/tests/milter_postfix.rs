//! End to end with a real Postfix: the private instance of scripts/postfix.sh (which
//! scripts/test.sh starts), `dmarc milter` on the port it expects, mail-bench messages
//! sent over SMTP with XCLIENT so that the milter sees each case's client IP and HELO,
//! DNS from the corpus's zone file. Every message must come out as the corpus says:
//! delivered with the expected Authentication-Results, held (p=quarantine, with
//! quarantine = "hold"), or refused with 550 5.7.1 (p=reject).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dmarc_testkit::corpus;
use serde_json::Value;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: this test needs the private Postfix of scripts/postfix.sh. Run \
             `bash scripts/test.sh`, or `bash scripts/postfix.sh -- cargo test -p dmarc --test milter_postfix` (as root)"
        )
    })
}

struct Milter(Child);

impl Drop for Milter {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One SMTP exchange line by line.
struct Smtp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Smtp {
    fn connect(addr: &str) -> Smtp {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut smtp = Smtp {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
        };
        smtp.expect("greeting", "220");
        smtp
    }

    /// The reply, all lines joined by "\n".
    fn reply(&mut self) -> String {
        let mut all = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            let line = line.trim_end().to_owned();
            let more = line.as_bytes().get(3) == Some(&b'-');
            all.push(line);
            if !more {
                return all.join("\n");
            }
        }
    }

    fn expect(&mut self, what: &str, code: &str) -> String {
        let r = self.reply();
        assert!(r.starts_with(code), "{what}: expected {code}, got {r:?}");
        r
    }

    fn command(&mut self, line: &str) -> String {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
        self.reply()
    }

    /// Sends the message with dot-stuffing; returns the reply to the final dot.
    fn data(&mut self, message: &[u8]) -> String {
        let r = self.command("DATA");
        assert!(r.starts_with("354"), "DATA: {r}");
        let mut out = Vec::with_capacity(message.len() + 64);
        for line in message.split_inclusive(|&b| b == b'\n') {
            if line.starts_with(b".") {
                out.push(b'.');
            }
            out.extend_from_slice(line);
        }
        if !out.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        self.writer.write_all(&out).unwrap();
        self.reply()
    }
}

struct Case {
    n: usize,
    v: Value,
}

impl Case {
    fn s(&self, k: &str) -> &str {
        self.v[k].as_str().unwrap_or("")
    }
}

/// Sends `msg` as the client of case `c`; the reply to the end of data.
fn send(smtp_addr: &str, c: &Case, msg: &[u8]) -> String {
    let mut s = Smtp::connect(smtp_addr);
    let r = s.command("EHLO client.test");
    assert!(r.starts_with("250") && r.contains("XCLIENT"), "EHLO: {r}");
    let r = s.command(&format!(
        "XCLIENT ADDR={} NAME=[UNAVAILABLE] HELO={}",
        c.s("ip"),
        c.s("helo")
    ));
    assert!(r.starts_with("220"), "XCLIENT: {r}");
    let r = s.command(&format!("EHLO {}", c.s("helo")));
    assert!(r.starts_with("250"), "EHLO after XCLIENT: {r}");
    let r = s.command(&format!("MAIL FROM:<{}>", c.s("mail_from")));
    assert!(r.starts_with("250"), "case {}: MAIL: {r}", c.n);
    let r = s.command("RCPT TO:<user@receiver.example>");
    assert!(r.starts_with("250"), "case {}: RCPT: {r}", c.n);
    let r = s.data(msg);
    s.command("QUIT");
    r
}

fn wait_for_port(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "the milter did not start on {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The delivered messages, by the queue id in Postfix's Received field.
fn delivered(maildir: &Path) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for dir in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(maildir.join(dir)) else {
            continue;
        };
        for e in entries {
            let mut text = String::new();
            std::fs::File::open(e.unwrap().path())
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            if let Some(id) = text
                .split("(Postfix) with ESMTP id ")
                .nth(1)
                .and_then(|t| t.split_whitespace().next())
            {
                out.insert(id.to_owned(), text);
            }
        }
    }
    out
}

/// The queue ids in Postfix's hold queue.
fn held(config: &str) -> Vec<String> {
    let out = Command::new("postqueue")
        .args(["-c", config, "-j"])
        .output()
        .expect("postqueue");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["queue_name"] == "hold")
        .filter_map(|v| v["queue_id"].as_str().map(str::to_owned))
        .collect()
}

/// `method=result` of the Authentication-Results field of `authserv_id` in a message.
fn our_results(message: &str, authserv_id: &str) -> Vec<String> {
    let header = message.split("\n\n").next().unwrap_or("");
    let unfolded = header.replace("\n\t", " ").replace("\n ", " ");
    let field = unfolded
        .lines()
        .find(|l| {
            l.starts_with("Authentication-Results:") && l.contains(&format!(" {authserv_id};"))
        })
        .unwrap_or_else(|| panic!("no Authentication-Results of {authserv_id} in\n{header}"));
    let value = field.trim_start_matches("Authentication-Results:");
    dmarc_proto::auth_results::parse(value)
        .unwrap()
        .results
        .iter()
        .map(|r| format!("{}={}", r.method, r.result))
        .collect()
}

#[test]
fn postfix_delivers_holds_and_refuses_as_the_corpus_says() {
    let smtp = env("DMARC_TEST_POSTFIX_SMTP");
    let milter_addr = env("DMARC_TEST_POSTFIX_MILTER");
    let config = env("DMARC_TEST_POSTFIX_CONFIG");
    let maildir = PathBuf::from(env("DMARC_TEST_POSTFIX_MAILDIR"));
    let dir = corpus("mail-bench");
    let milter_log = tempfile::NamedTempFile::new().unwrap();
    let _milter = Milter(
        Command::new(env!("CARGO_BIN_EXE_dmarc"))
            .args([
                "milter",
                "--listen",
                &milter_addr,
                "--authserv-id",
                "mx.receiver.example",
            ])
            .arg("--dns-zone")
            .arg(dir.join("zone.txt"))
            .args(["-o", "quarantine=hold"])
            .stderr(milter_log.reopen().unwrap())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(milter_addr.trim_start_matches("inet:"));

    // A spread of cases: every scenario, small enough for CI.
    let all: Vec<Case> = std::fs::read_to_string(dir.join("cases.jsonl"))
        .unwrap()
        .lines()
        .enumerate()
        .map(|(n, l)| Case {
            n,
            v: serde_json::from_str(l).unwrap(),
        })
        .collect();
    let chosen: Vec<&Case> = all
        .iter()
        .filter(|c| c.n % 10 == 0 || [1, 18, 24].contains(&c.n))
        .collect();
    let mut expect_delivered = Vec::new();
    let mut expect_held = Vec::new();
    let mut refused = 0;
    let read = |c: &Case| std::fs::read(dir.join(c.s("file"))).unwrap();
    for c in &chosen {
        let reply = send(&smtp, c, &read(c));
        let (dmarc, policy) = (c.s("dmarc"), c.s("policy"));
        if dmarc == "fail" && policy == "reject" {
            assert_eq!(
                reply,
                format!(
                    "550 5.7.1 Rejected by DMARC policy for {}",
                    c.s("from_domain")
                ),
                "case {}",
                c.n
            );
            refused += 1;
            continue;
        }
        assert!(
            reply.starts_with("250 2.0.0 Ok: queued as "),
            "case {}: {reply}",
            c.n
        );
        let id = reply.rsplit(' ').next().unwrap().to_owned();
        if dmarc == "fail" && policy == "quarantine" {
            expect_held.push((id, c));
        } else {
            expect_delivered.push((id, c));
        }
    }
    assert!(refused > 0 && !expect_held.is_empty() && !expect_delivered.is_empty());

    // Fields claiming our authserv-id, at the top and at the bottom of the header, are
    // deleted (Postfix counts SMFIR_CHGHEADER indexes in the header as received); an
    // upstream's field stays.
    let forged = {
        let original = read(&all[0]);
        let split = original.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 2;
        let mut m = b"Authentication-Results: mx.receiver.example; dmarc=pass (forged, top)\r\n\
Authentication-Results: upstream.example; spf=pass smtp.mailfrom=x@upstream.example\r\n"
            .to_vec();
        m.extend_from_slice(&original[..split]);
        m.extend_from_slice(
            b"Authentication-Results: MX.RECEIVER.EXAMPLE;\r\n\tdkim=pass (forged, bottom)\r\n",
        );
        m.extend_from_slice(&original[split..]);
        m
    };
    let reply = send(&smtp, &all[0], &forged);
    let forged_id = reply.rsplit(' ').next().unwrap().to_owned();

    // Held messages are in the hold queue (not delivered).
    let deadline = Instant::now() + Duration::from_secs(30);
    let on_hold = loop {
        let h = held(&config);
        if expect_held.iter().all(|(id, _)| h.contains(id)) || Instant::now() > deadline {
            break h;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    for (id, c) in &expect_held {
        assert!(
            on_hold.contains(id),
            "case {} ({id}) not held: {on_hold:?}",
            c.n
        );
    }

    // Delivered messages carry our Authentication-Results with the corpus's verdicts.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mail = loop {
        let m = delivered(&maildir);
        let all_there =
            expect_delivered.iter().all(|(id, _)| m.contains_key(id)) && m.contains_key(&forged_id);
        if all_there || Instant::now() > deadline {
            break m;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    for (id, c) in &expect_delivered {
        let text = mail
            .get(id)
            .unwrap_or_else(|| panic!("case {} ({id}) not delivered", c.n));
        let results = our_results(text, "mx.receiver.example");
        assert_eq!(
            results[0],
            format!("spf={}", c.s("spf")),
            "case {}: {results:?}",
            c.n
        );
        let dkim: Vec<String> = results
            .iter()
            .filter(|r| r.starts_with("dkim="))
            .cloned()
            .collect();
        let want: Vec<String> = match c.v["dkim"].as_array().map(Vec::as_slice) {
            Some([]) | None => vec!["dkim=none".into()],
            Some(sigs) => sigs
                .iter()
                .map(|s| format!("dkim={}", s["result"].as_str().unwrap()))
                .collect(),
        };
        assert_eq!(dkim, want, "case {}", c.n);
        assert!(
            results.contains(&format!("dmarc={}", c.s("dmarc"))),
            "case {}: {results:?}",
            c.n
        );
        // Ours is the only one, and sits above Postfix's Received field.
        assert_eq!(
            text.matches("Authentication-Results: mx.receiver.example;")
                .count(),
            1
        );
        let ar = text
            .find("Authentication-Results: mx.receiver.example;")
            .unwrap();
        let received = text.find("Received: from ").unwrap();
        assert!(ar < received, "case {}", c.n);
    }

    let text = mail
        .get(&forged_id)
        .expect("the message with forged fields, delivered");
    assert!(!text.contains("forged"), "a forged field survived:\n{text}");
    assert_eq!(
        text.matches("Authentication-Results: upstream.example;")
            .count(),
        1
    );
    assert!(our_results(text, "mx.receiver.example").contains(&"dmarc=pass".to_owned()));

    // One log line per message, with Postfix's queue id.
    let log = std::fs::read_to_string(milter_log.path()).unwrap();
    for (id, _) in expect_delivered.iter().chain(&expect_held) {
        assert_eq!(
            log.matches(&format!("{id}: client=")).count(),
            1,
            "{id} in\n{log}"
        );
    }
    assert_eq!(log.matches("action=reject").count(), refused, "{log}");
}
