//! The DMARC filter through the whole stack but the socket: an in-memory stream, the
//! server's connection loop, the session, the handler; the MTA played by the client.

use std::sync::Arc;

use dmarc_milter::client::Client;
use dmarc_milter::codec::{Command, ConnectAddress, Reply};
use dmarc_milter::filter::Filter;
use dmarc_milter::server::{ServerSettings, Stop, connection};
use dmarc_proto::Lookup;
use tokio::sync::watch;

use crate::support::{
    Built, FailDmarc, Questions, Recorder, Silent, cases, filter, filter_with, message, zone,
};

/// One SMTP session as Postfix would drive it, `macros` sent before MAIL FROM.
struct Mta {
    client: Client<tokio::io::DuplexStream>,
    server: tokio::task::JoinHandle<()>,
}

impl Mta {
    async fn open<F: Filter>(filter: Arc<F>) -> Mta {
        let (a, b) = tokio::io::duplex(1 << 20);
        let server = tokio::spawn(async move {
            let (_tx, rx) = watch::channel(Stop::Running);
            let _ = connection(
                b,
                filter,
                &ServerSettings::default(),
                &Recorder::default(),
                "test",
                rx,
            )
            .await;
        });
        let mut client = Client::new(a);
        client.negotiate().await.unwrap();
        Mta { client, server }
    }

    async fn connect(&mut self, ip: &str) -> Vec<Reply> {
        self.client
            .send(&Command::Connect {
                hostname: format!("[{ip}]"),
                address: ConnectAddress::Inet(
                    format!("{ip}:25")
                        .parse()
                        .unwrap_or_else(|_| format!("[{ip}]:25").parse().unwrap()),
                ),
            })
            .await
            .unwrap()
    }

    async fn helo(&mut self, helo: &str) {
        self.client
            .send(&Command::Helo { name: helo.into() })
            .await
            .unwrap();
    }

    async fn macros(&mut self, stage: u8, pairs: &[(&str, &str)]) {
        self.client
            .send(&Command::Macro {
                for_command: stage,
                macros: pairs
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect(),
            })
            .await
            .unwrap();
    }

    async fn quit(mut self) {
        self.client.send(&Command::Quit).await.unwrap();
        self.server.await.unwrap();
    }
}

/// Delivers `msg` from `ip`/`helo`/`mail_from` to `rcpts`; the replies of the step that
/// decided.
pub(crate) async fn deliver<F: Filter>(
    filter: Arc<F>,
    ip: &str,
    helo: &str,
    mail_from: &str,
    rcpts: &[&str],
    msg: &[u8],
) -> Vec<Reply> {
    let mut mta = Mta::open(filter).await;
    let r = mta.connect(ip).await;
    if r != [Reply::Continue] {
        return r;
    }
    mta.helo(helo).await;
    mta.macros(b'M', &[("i", "TESTQID")]).await;
    let r = mta.client.message(mail_from, rcpts, msg).await.unwrap();
    mta.quit().await;
    r
}

async fn deliver_case<L: Lookup + Send + Sync + 'static>(built: &Built<L>, n: usize) -> Vec<Reply> {
    let c = &cases()[n];
    deliver(
        built.filter.clone(),
        &c.ip.to_string(),
        &c.helo,
        &c.mail_from,
        &["user@receiver.example"],
        &message(c),
    )
    .await
}

fn inserted<'a>(replies: &'a [Reply], field: &str) -> Option<&'a str> {
    replies.iter().find_map(|r| match r {
        Reply::InsertHeader { name, value, .. } if name == field => Some(value.as_str()),
        _ => None,
    })
}

/// `method=result` of each result of our Authentication-Results field.
fn ar_results(replies: &[Reply]) -> Vec<String> {
    let v = inserted(replies, "Authentication-Results").expect("Authentication-Results");
    dmarc_proto::auth_results::parse(v.trim())
        .unwrap()
        .results
        .iter()
        .map(|r| format!("{}={}", r.method, r.result))
        .collect()
}

fn reply_code(replies: &[Reply]) -> Option<String> {
    replies.iter().find_map(|r| match r {
        Reply::ReplyCode(s) => Some(s.to_wire()),
        _ => None,
    })
}

#[tokio::test]
async fn mail_bench_outcomes_match_the_corpus() {
    let built = filter(&[]);
    let all = cases();
    // Every fourth case: every scenario appears, the test stays quick in a debug build.
    let mut checked = 0;
    for (n, c) in all.iter().enumerate().step_by(4) {
        let r = deliver_case(&built, n).await;
        match (c.dmarc.as_str(), c.policy.as_str()) {
            ("fail", "reject") => {
                let code = reply_code(&r).unwrap_or_else(|| panic!("case {n}: {r:?}"));
                assert_eq!(
                    code,
                    format!("550 5.7.1 Rejected by DMARC policy for {}", c.from_domain)
                );
            }
            (dmarc, policy) => {
                assert_eq!(r.last(), Some(&Reply::Accept), "case {n}: {r:?}");
                let res = ar_results(&r);
                assert!(res.contains(&format!("dmarc={dmarc}")), "case {n}: {res:?}");
                assert_eq!(res[0], format!("spf={}", c.spf), "case {n}");
                let dkim: Vec<String> = res
                    .iter()
                    .filter(|x| x.starts_with("dkim="))
                    .cloned()
                    .collect();
                let want: Vec<String> = if c.dkim.is_empty() {
                    vec!["dkim=none".into()]
                } else {
                    c.dkim.iter().map(|d| format!("dkim={d}")).collect()
                };
                assert_eq!(dkim, want, "case {n}");
                let flagged = inserted(&r, "X-Spam-Flag").is_some();
                assert_eq!(
                    flagged,
                    dmarc == "fail" && policy == "quarantine",
                    "case {n}: {r:?}"
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 70);
    assert_eq!(
        built.logger.lines().len(),
        checked,
        "one log line per message"
    );
    assert!(built.metrics.messages_with("pass", "accept") > 0);
    assert!(built.metrics.messages_with("fail", "reject") > 0);
}

/// The session is driven as the frames arrive: SPF is asked right after MAIL FROM, the
/// DMARC record and the DKIM keys right after the header, all before the body is sent.
#[tokio::test]
async fn dns_is_asked_as_soon_as_each_step_allows() {
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let built = filter_with(Questions(zone(), asked.clone()), &[]);
    let c = &cases()[0];
    let msg = message(c);
    let (head, body) = msg.split_at(msg.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4);
    let pause = || tokio::time::sleep(std::time::Duration::from_millis(100));
    let seen = |q: &str| asked.lock().unwrap().iter().any(|a| a == q);
    let mut mta = Mta::open(built.filter.clone()).await;
    mta.connect(&c.ip.to_string()).await;
    mta.helo(&c.helo).await;
    let r = mta
        .client
        .send(&Command::Mail {
            args: vec![format!("<{}>", c.mail_from)],
        })
        .await
        .unwrap();
    assert_eq!(r, [Reply::Continue]);
    pause().await;
    // MAIL FROM and HELO identities.
    assert!(
        seen("TXT bounces.esp0.example"),
        "{:?}",
        asked.lock().unwrap()
    );
    assert!(
        seen("TXT mail.bounces.esp0.example"),
        "{:?}",
        asked.lock().unwrap()
    );
    assert!(!asked.lock().unwrap().iter().any(|q| q.contains("_dmarc.")));
    mta.client
        .send(&Command::Rcpt {
            args: vec!["<user@receiver.example>".into()],
        })
        .await
        .unwrap();
    // The header fields as Postfix sends them: folded lines joined by LF.
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in String::from_utf8_lossy(head)
        .split("\r\n")
        .filter(|l| !l.is_empty())
    {
        match fields.last_mut() {
            Some((_, v)) if line.starts_with([' ', '\t']) => {
                v.push('\n');
                v.push_str(line);
            }
            _ => {
                let (name, value) = line.split_once(':').unwrap();
                fields.push((name.into(), value.into()));
            }
        }
    }
    for (name, value) in fields {
        mta.client
            .send(&Command::Header {
                name: name.into_bytes(),
                value: value.into_bytes(),
            })
            .await
            .unwrap();
    }
    assert!(
        !seen("TXT _dmarc.brand4.example"),
        "not before the end of the header"
    );
    mta.client.send(&Command::EndOfHeaders).await.unwrap();
    pause().await;
    for q in [
        "TXT _dmarc.brand4.example",
        "TXT k1._domainkey.esp0.example",
        "TXT s4._domainkey.brand4.example",
    ] {
        assert!(seen(q), "{q} before the body: {:?}", asked.lock().unwrap());
    }
    mta.client
        .send(&Command::Body {
            chunk: body.to_vec(),
        })
        .await
        .unwrap();
    let r = mta
        .client
        .send(&Command::EndOfMessage { chunk: Vec::new() })
        .await
        .unwrap();
    assert_eq!(
        ar_results(&r),
        [
            "spf=pass",
            "spf=none",
            "dkim=pass",
            "dkim=pass",
            "dmarc=pass",
            "arc=none"
        ],
        "{r:?}"
    );
    mta.quit().await;
}

#[tokio::test]
async fn quarantine_hold_header_or_accept() {
    let hold = deliver_case(&filter(&["quarantine=hold"]), 1).await;
    assert!(hold.iter().any(|r| matches!(r, Reply::Quarantine { reason } if reason == "DMARC policy of brand19.example asks for quarantine")));
    assert!(inserted(&hold, "X-Spam-Flag").is_none());
    let header = deliver_case(&filter(&["quarantine_header=\"X-DMARC: quarantine\""]), 1).await;
    assert_eq!(inserted(&header, "X-DMARC"), Some(" quarantine"));
    let accept = deliver_case(&filter(&["quarantine=accept"]), 1).await;
    assert!(!accept.iter().any(|r| matches!(r, Reply::Quarantine { .. })));
    assert!(inserted(&accept, "X-Spam-Flag").is_none());
    assert!(ar_results(&accept).contains(&"dmarc=fail".to_owned()));
}

#[tokio::test]
async fn monitor_mode_never_refuses() {
    let built = filter(&["mode=monitor"]);
    let r = deliver_case(&built, 18).await;
    assert_eq!(r.last(), Some(&Reply::Accept), "{r:?}");
    assert!(ar_results(&r).contains(&"dmarc=fail".to_owned()));
    let line = &built.logger.lines()[0];
    assert!(
        line.contains("action=accept") && line.contains("monitor mode"),
        "{line}"
    );
}

#[tokio::test]
async fn temporary_dns_failure_tempfails_or_accepts() {
    let r = deliver_case(
        &filter_with(FailDmarc(zone()), &["dns_failure=tempfail"]),
        0,
    )
    .await;
    assert_eq!(
        reply_code(&r).as_deref(),
        Some(
            "451 4.7.5 Temporary failure evaluating the DMARC policy of brand4.example; try again later"
        )
    );
    let built = filter_with(FailDmarc(zone()), &[]);
    let r = deliver_case(&built, 0).await;
    assert_eq!(r.last(), Some(&Reply::Accept));
    assert!(
        ar_results(&r).contains(&"dmarc=temperror".to_owned()),
        "{r:?}"
    );
    assert!(built.logger.lines()[0].contains("temporary DNS failure"));
}

#[tokio::test]
async fn silent_dns_is_bounded_by_message_timeout() {
    let started = std::time::Instant::now();
    let built = filter_with(Silent, &["message_timeout=0.3"]);
    let r = deliver_case(&built, 0).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(r.last(), Some(&Reply::Accept));
    let ar = inserted(&r, "Authentication-Results").unwrap();
    assert!(
        ar.contains("dmarc=temperror (verification did not finish within 0.3 s)"),
        "{ar}"
    );
    let r = deliver_case(
        &filter_with(Silent, &["message_timeout=0.3", "dns_failure=tempfail"]),
        0,
    )
    .await;
    assert!(reply_code(&r).unwrap().starts_with("451 4.7.5 "), "{r:?}");
}

#[tokio::test]
async fn exempt_clients_are_accepted_at_connect() {
    let built = filter(&["exempt.client_ips=[\"203.0.113.0/24\"]"]);
    let r = deliver_case(&built, 0).await; // 203.0.113.82
    assert_eq!(r, [Reply::Accept]);
    assert!(built.logger.lines().is_empty(), "no message was seen");
    // Loopback, by default.
    let r = deliver(
        filter(&[]).filter,
        "127.0.0.1",
        "localhost",
        "a@b.example",
        &["c@d.example"],
        b"From: a@b.example\r\n\r\n",
    )
    .await;
    assert_eq!(r, [Reply::Accept]);
}

#[tokio::test]
async fn authenticated_senders_are_accepted_at_mail_from() {
    let built = filter(&[]);
    let c = &cases()[18];
    let mut mta = Mta::open(built.filter.clone()).await;
    mta.connect(&c.ip.to_string()).await;
    mta.helo(&c.helo).await;
    mta.macros(
        b'M',
        &[("{auth_authen}", "alice"), ("{auth_type}", "PLAIN")],
    )
    .await;
    let r = mta
        .client
        .message(&c.mail_from, &["user@receiver.example"], &message(c))
        .await
        .unwrap();
    assert_eq!(r, [Reply::Accept]);
    // Without the exemption the same message is refused.
    assert!(
        reply_code(&deliver_case(&filter(&["exempt.authenticated=false"]), 18).await).is_some()
    );
    assert!(
        built.logger.lines()[0].contains("exempt=authenticated"),
        "{:?}",
        built.logger.lines()
    );
}

#[tokio::test]
async fn exempt_sender_and_recipient_domains() {
    let r = deliver_case(&filter(&["exempt.sender_domains=[\"Brand2.Example\"]"]), 18).await;
    assert_eq!(r, [Reply::Accept], "accepted at end of header");
    let built = filter(&["exempt.recipient_domains=[\"receiver.example\"]"]);
    assert_eq!(deliver_case(&built, 18).await, [Reply::Accept]);
    assert!(built.logger.lines()[0].contains("exempt=recipient_domains"));
    // One recipient outside the listed domains: checked.
    let c = &cases()[18];
    let r = deliver(
        built.filter.clone(),
        &c.ip.to_string(),
        &c.helo,
        &c.mail_from,
        &["user@receiver.example", "someone@elsewhere.example"],
        &message(c),
    )
    .await;
    assert!(reply_code(&r).is_some(), "{r:?}");
}

#[tokio::test]
async fn a_trusted_upstream_verdict_is_not_enforced_again() {
    let c = &cases()[18];
    let mut msg =
        b"Authentication-Results: mx1.receiver.example; dmarc=fail header.from=brand2.example\r\n"
            .to_vec();
    msg.extend_from_slice(&message(c));
    let trusting = filter(&["exempt.trusted_authserv_ids=[\"mx1.receiver.example\"]"]);
    let r = deliver(
        trusting.filter.clone(),
        &c.ip.to_string(),
        &c.helo,
        &c.mail_from,
        &["user@receiver.example"],
        &msg,
    )
    .await;
    assert_eq!(r.last(), Some(&Reply::Accept), "{r:?}");
    assert!(trusting.logger.lines()[0].contains("verified upstream"));
    // Not trusted: enforced.
    let r = deliver(
        filter(&[]).filter,
        &c.ip.to_string(),
        &c.helo,
        &c.mail_from,
        &["user@receiver.example"],
        &msg,
    )
    .await;
    assert!(reply_code(&r).is_some());
}

#[tokio::test]
async fn fields_claiming_our_authserv_id_are_deleted_highest_first() {
    let c = &cases()[0];
    let mut msg = b"Authentication-Results: mx.receiver.example; dmarc=pass\r\n\
Authentication-Results: other.example; spf=pass smtp.mailfrom=x@y.example\r\n\
Authentication-Results: MX.Receiver.Example;\r\n\tdkim=pass\r\n"
        .to_vec();
    msg.extend_from_slice(&message(c));
    let r = deliver(
        filter(&[]).filter,
        &c.ip.to_string(),
        &c.helo,
        &c.mail_from,
        &["user@receiver.example"],
        &msg,
    )
    .await;
    let deletions: Vec<u32> = r
        .iter()
        .filter_map(|x| match x {
            Reply::ChangeHeader { index, name, value }
                if name == "Authentication-Results" && value.is_empty() =>
            {
                Some(*index)
            }
            _ => None,
        })
        .collect();
    assert_eq!(deletions, [3, 1]);
    let ins = r
        .iter()
        .position(|x| matches!(x, Reply::InsertHeader { .. }))
        .unwrap();
    assert!(ins > 1, "deletions come before the insertion: {r:?}");
    assert!(ar_results(&r).contains(&"dmarc=pass".to_owned()));
}

#[tokio::test]
async fn bad_from_rejected_or_evaluated() {
    let c = &cases()[0];
    let mut msg = b"From: other@brand19.example\r\n".to_vec();
    msg.extend_from_slice(&message(c));
    let built = filter(&["bad_from=reject"]);
    let r = deliver(
        built.filter.clone(),
        &c.ip.to_string(),
        &c.helo,
        &c.mail_from,
        &["user@receiver.example"],
        &msg,
    )
    .await;
    assert_eq!(
        reply_code(&r).as_deref(),
        Some(
            "550 5.7.1 Message must have exactly one From field with exactly one address (RFC 5322 section 3.6)"
        )
    );
    assert!(
        built.logger.lines()[0].contains("the message has 2 From fields"),
        "{:?}",
        built.logger.lines()
    );
    // Evaluated: both Author Domains, the strictest verdict (brand19 fails, p=quarantine).
    let r = deliver(
        filter(&[]).filter,
        &c.ip.to_string(),
        &c.helo,
        &c.mail_from,
        &["user@receiver.example"],
        &msg,
    )
    .await;
    assert_eq!(r.last(), Some(&Reply::Accept));
    assert!(ar_results(&r).contains(&"dmarc=fail".to_owned()), "{r:?}");
    // No From field at all.
    let r = deliver(
        filter(&["bad_from=reject"]).filter,
        &c.ip.to_string(),
        &c.helo,
        &c.mail_from,
        &["u@receiver.example"],
        b"Subject: x\r\n\r\nbody\r\n",
    )
    .await;
    assert!(reply_code(&r).unwrap().starts_with("550 5.7.1 "));
}

#[tokio::test]
async fn oversize_messages_get_the_configured_outcome() {
    let built = filter(&["max_message_size=4096"]);
    let r = deliver_case(&built, 3).await; // 277 KB
    assert_eq!(r, [Reply::Accept], "accepted unverified, nothing inserted");
    assert!(built.logger.lines()[0].contains("larger than max_message_size (4096 bytes)"));
    assert_eq!(built.metrics.messages_with("unverified", "accept"), 1);
    let r = deliver_case(&filter(&["max_message_size=4096", "oversize=tempfail"]), 3).await;
    assert_eq!(
        reply_code(&r).as_deref(),
        Some("452 4.3.4 Message too large to verify; try again later")
    );
    let r = deliver_case(&filter(&["max_message_size=4096", "oversize=reject"]), 3).await;
    assert_eq!(
        reply_code(&r).as_deref(),
        Some("552 5.3.4 Message too large to verify")
    );
}

#[tokio::test]
async fn oversize_body_is_skipped_when_the_mta_waits_for_body_replies() {
    // An MTA offering SKIP but not NR_BODY: the rest of the body is skipped.
    let built = filter(&["max_message_size=4096"]);
    let (a, b) = tokio::io::duplex(1 << 20);
    let f = built.filter.clone();
    let server = tokio::spawn(async move {
        let (_tx, rx) = watch::channel(Stop::Running);
        let _ = connection(
            b,
            f,
            &ServerSettings::default(),
            &Recorder::default(),
            "t",
            rx,
        )
        .await;
    });
    let mut client = Client::new(a);
    client
        .negotiate_with(
            dmarc_milter::client::POSTFIX_ACTIONS,
            dmarc_milter::codec::Protocol::SKIP,
        )
        .await
        .unwrap();
    let c = &cases()[3];
    client
        .send(&Command::Connect {
            hostname: "h".into(),
            address: ConnectAddress::Inet(format!("{}:25", c.ip).parse().unwrap()),
        })
        .await
        .unwrap();
    client
        .send(&Command::Mail {
            args: vec![format!("<{}>", c.mail_from)],
        })
        .await
        .unwrap();
    client
        .send(&Command::Rcpt {
            args: vec!["<user@receiver.example>".into()],
        })
        .await
        .unwrap();
    client
        .send(&Command::Header {
            name: b"From".to_vec(),
            value: b" a@brand8.example".to_vec(),
        })
        .await
        .unwrap();
    client.send(&Command::EndOfHeaders).await.unwrap();
    let r = client
        .send(&Command::Body {
            chunk: vec![b'x'; 60_000],
        })
        .await
        .unwrap();
    assert_eq!(r, [Reply::Skip]);
    let r = client
        .send(&Command::EndOfMessage { chunk: Vec::new() })
        .await
        .unwrap();
    assert_eq!(r, [Reply::Accept]);
    client.send(&Command::Quit).await.unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn received_spf_when_asked() {
    let r = deliver_case(&filter(&["received_spf=true"]), 0).await;
    let v = inserted(&r, "Received-SPF").expect("Received-SPF");
    assert!(
        v.starts_with(
            " pass (mx.receiver.example: domain of b-0@bounces.esp0.example designates 203.0.113.82"
        ),
        "{v}"
    );
    assert!(v.contains("\n\t"), "folded: {v}");
    // Authentication-Results is inserted last, so that it ends up on top.
    let last_insert = r.iter().rev().find_map(|x| match x {
        Reply::InsertHeader { name, .. } => Some(name.as_str()),
        _ => None,
    });
    assert_eq!(last_insert, Some("Authentication-Results"));
}

#[tokio::test]
async fn one_log_line_per_message_with_the_facts() {
    let built = filter(&[]);
    deliver_case(&built, 18).await;
    let lines = built.logger.lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(
        lines[0].split(", time=").next().unwrap(),
        "TESTQID: client=unknown[100.64.7.183], helo=mail.attacker.example, mail_from=<>, header_from=brand2.example, spf=none, dkim=none, arc=none, dmarc=fail, policy=reject, action=reject"
    );
}
