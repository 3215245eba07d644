//! Evaluation cost, hostile records, the time budget, and rendering. Every test counts the
//! DNS questions asked through the zone's query log.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use dmarc_proto::spf::{self, Identity, SpfOptions, SpfOutput, SpfRequest, SpfResult};
use dmarc_proto::{Clock, FixedClock};

use crate::zone::{Rec, Zone, duplicates};

fn zone(records: &[(&str, &str)]) -> Zone {
    let mut z = Zone::default();
    for (name, rec) in records {
        let r = if let Some(a) = rec.strip_prefix("A ") {
            Rec::A(a.parse().unwrap())
        } else if let Some(a) = rec.strip_prefix("AAAA ") {
            Rec::Aaaa(a.parse().unwrap())
        } else if let Some(mx) = rec.strip_prefix("MX ") {
            let (p, n) = mx.split_once(' ').unwrap();
            Rec::Mx(p.parse().unwrap(), n.to_owned())
        } else if let Some(p) = rec.strip_prefix("PTR ") {
            Rec::Ptr(p.to_owned())
        } else {
            Rec::Txt(rec.as_bytes().to_vec())
        };
        z.add(name, r);
    }
    z
}

fn check(z: &Zone, ip: &str, from: &str) -> SpfOutput {
    check_with(
        z,
        ip,
        from,
        &SpfOptions::default(),
        &FixedClock::from_unix_seconds(1_700_000_000),
    )
}

fn check_with(z: &Zone, ip: &str, from: &str, opts: &SpfOptions, clock: &dyn Clock) -> SpfOutput {
    let req = SpfRequest::new(ip.parse().unwrap(), "mail.example.org").with_mail_from(from);
    z.take_log();
    let out = pollster::block_on(spf::verify_mail_from(z, clock, opts, &req));
    let log = z.take_log();
    assert!(duplicates(&log).is_empty(), "repeated queries: {log:?}");
    assert_eq!(
        out.dns_queries as usize,
        log.len(),
        "dns_queries counts what was asked"
    );
    out
}

#[test]
fn repeated_terms_are_asked_once_but_counted() {
    let z = zone(&[
        (
            "example.com",
            "v=spf1 include:a.example.com include:a.example.com a:h.example.com a:h.example.com mx mx -all",
        ),
        ("a.example.com", "v=spf1 a:h.example.com -all"),
        ("h.example.com", "A 192.0.2.1"),
        ("example.com", "MX 10 h.example.com"),
    ]);
    let out = check(&z, "198.51.100.1", "x@example.com");
    assert_eq!(out.result, SpfResult::Fail);
    // 2 includes + their 2 a: terms + 2 a: + 2 mx = 8 terms, but only 4 distinct questions.
    assert_eq!(out.lookups, 8);
    assert_eq!(out.dns_queries, 4, "{}", out.trace);
}

#[test]
fn include_chains_and_loops_are_bounded() {
    let mut records = Vec::new();
    let names: Vec<String> = (0..50).map(|i| format!("d{i}.example.com")).collect();
    let texts: Vec<String> = (0..50)
        .map(|i| format!("v=spf1 include:d{}.example.com -all", i + 1))
        .collect();
    for i in 0..50 {
        records.push((names[i].as_str(), texts[i].as_str()));
    }
    let z = zone(&records);
    let out = check(&z, "192.0.2.1", "x@d0.example.com");
    assert_eq!(out.result, SpfResult::PermError);
    assert_eq!(out.lookups, 10);
    assert!(out.dns_queries <= 11, "{}", out.dns_queries);
    assert!(out.reason.contains("limit is 10"), "{}", out.reason);

    let z = zone(&[("loop.example.com", "v=spf1 redirect=loop.example.com")]);
    let out = check(&z, "192.0.2.1", "x@loop.example.com");
    assert_eq!(out.result, SpfResult::PermError);
    assert_eq!(out.dns_queries, 1, "a loop asks its one question once");
}

#[test]
fn void_lookups_are_limited() {
    let z = zone(&[(
        "example.com",
        "v=spf1 a:n1.example.com mx:n2.example.com exists:n3.example.com -all",
    )]);
    let out = check(&z, "192.0.2.1", "x@example.com");
    assert_eq!(out.result, SpfResult::PermError);
    assert_eq!(out.void_lookups, 3);
    assert_eq!(out.deciding_term.unwrap().term(), "exists:n3.example.com");
}

#[test]
fn hostile_records() {
    // Non-ASCII and control bytes: permerror naming the byte.
    let mut z = Zone::default();
    z.add(
        "bad.example.com",
        Rec::Txt(b"v=spf1 a:\xC3\xA9.example.com -all".to_vec()),
    );
    z.add(
        "ctl.example.com",
        Rec::Txt(b"v=spf1 ip4:192.0.2.1\n-all".to_vec()),
    );
    let out = check(&z, "192.0.2.1", "x@bad.example.com");
    assert_eq!(out.result, SpfResult::PermError);
    assert!(out.reason.contains("non-ASCII byte 0xC3"), "{}", out.reason);
    let out = check(&z, "192.0.2.1", "x@ctl.example.com");
    assert_eq!(out.result, SpfResult::PermError);
    assert!(
        out.reason.contains("control character 0x0A"),
        "{}",
        out.reason
    );

    // A huge record of ip4 terms evaluates without DNS beyond the record itself.
    let mut big = String::from("v=spf1");
    for i in 0..3000 {
        big.push_str(&format!(" ip4:10.{}.{}.0/24", i / 256, i % 256));
    }
    big.push_str(" -all");
    let mut z = Zone::default();
    z.add("big.example.com", Rec::Txt(big.into_bytes()));
    let out = check(&z, "192.0.2.1", "x@big.example.com");
    assert_eq!(out.result, SpfResult::Fail);
    assert_eq!(out.dns_queries, 1);
    let small = SpfOptions {
        max_record_bytes: 1000,
        ..SpfOptions::default()
    };
    let out = check_with(
        &z,
        "192.0.2.1",
        "x@big.example.com",
        &small,
        &FixedClock::from_unix_seconds(0),
    );
    assert_eq!(out.result, SpfResult::PermError);
    assert!(
        out.reason.contains("over the limit of 1000"),
        "{}",
        out.reason
    );

    // A macro that expands to a name over 253 octets is shortened, not rejected.
    let mut z = Zone::default();
    z.add(
        "m.example.com",
        Rec::Txt(b"v=spf1 exists:%{l}.%{l}.%{l}.%{l}.%{l}.%{l}.x.example.com -all".to_vec()),
    );
    let local = "a".repeat(60);
    let out = check(&z, "192.0.2.1", &format!("{local}@m.example.com"));
    assert_eq!(out.result, SpfResult::Fail, "{}", out.reason);
}

/// A clock that moves forward by a fixed step every time it is read.
struct SteppingClock(Mutex<Duration>, Duration);

impl Clock for SteppingClock {
    fn now(&self) -> Duration {
        let mut t = self.0.lock().unwrap();
        *t += self.1;
        *t
    }
}

#[test]
fn time_budget_gives_temperror() {
    let z = zone(&[
        (
            "example.com",
            "v=spf1 a:h1.example.com a:h2.example.com a:h3.example.com -all",
        ),
        ("h1.example.com", "A 192.0.2.1"),
        ("h2.example.com", "A 192.0.2.2"),
        ("h3.example.com", "A 192.0.2.3"),
    ]);
    let clock = SteppingClock(Mutex::new(Duration::ZERO), Duration::from_secs(8));
    let out = check_with(
        &z,
        "192.0.2.3",
        "x@example.com",
        &SpfOptions::default(),
        &clock,
    );
    assert_eq!(out.result, SpfResult::TempError, "{}", out.trace);
    assert!(out.reason.contains("time budget"), "{}", out.reason);
    let unlimited = SpfOptions {
        time_budget: None,
        ..SpfOptions::default()
    };
    let clock = SteppingClock(Mutex::new(Duration::ZERO), Duration::from_secs(8));
    let out = check_with(&z, "192.0.2.3", "x@example.com", &unlimited, &clock);
    assert_eq!(out.result, SpfResult::Pass);
}

#[test]
fn identities_and_initial_processing() {
    let z = zone(&[
        ("example.com", "v=spf1 ip4:192.0.2.0/24 -all"),
        ("mail.example.org", "v=spf1 a -all"),
        ("mail.example.org", "A 198.51.100.7"),
    ]);
    // IPv4-mapped IPv6 is IPv4.
    let out = check(&z, "::ffff:192.0.2.9", "alice@example.com");
    assert_eq!(out.result, SpfResult::Pass);
    assert_eq!(out.ip, "192.0.2.9".parse::<IpAddr>().unwrap());
    // Null reverse-path: postmaster@HELO.
    let req = SpfRequest::new("198.51.100.7".parse().unwrap(), "mail.example.org");
    let clock = FixedClock::from_unix_seconds(0);
    let out = pollster::block_on(spf::verify_mail_from(
        &z,
        &clock,
        &SpfOptions::default(),
        &req,
    ));
    assert_eq!(out.result, SpfResult::Pass);
    assert_eq!(out.sender, "postmaster@mail.example.org");
    assert_eq!(out.identity, Identity::MailFrom);
    let out = pollster::block_on(spf::verify_helo(&z, &clock, &SpfOptions::default(), &req));
    assert_eq!(out.result, SpfResult::Pass);
    assert_eq!(out.identity, Identity::Helo);
    // Malformed domains give none without any query.
    for from in ["x@localhost", "x@[192.0.2.1]", "x@a..example.com", "x@"] {
        let out = check(&z, "192.0.2.1", from);
        assert_eq!(out.result, SpfResult::None, "{from}");
        assert_eq!(out.dns_queries, 0, "{from}");
    }
}

#[test]
fn explanation_and_headers() {
    let z = zone(&[
        (
            "example.com",
            "v=spf1 ip4:192.0.2.0/24 -all exp=why.example.com",
        ),
        (
            "why.example.com",
            "%{i} is not allowed to send for %{d}; checked by %{r} at %{t}",
        ),
    ]);
    let opts = SpfOptions {
        receiver: "mx.example.net".into(),
        ..SpfOptions::default()
    };
    let out = check_with(
        &z,
        "198.51.100.1",
        "alice@example.com",
        &opts,
        &FixedClock::from_unix_seconds(1_700_000_000),
    );
    assert_eq!(out.result, SpfResult::Fail);
    assert_eq!(
        out.explanation.as_deref(),
        Some(
            "198.51.100.1 is not allowed to send for example.com; checked by mx.example.net at 1700000000"
        )
    );
    assert_eq!(
        out.received_spf("mx.example.net"),
        "Received-SPF: fail (mx.example.net: domain of alice@example.com does not designate \
         198.51.100.1 as permitted sender) client-ip=198.51.100.1; envelope-from=\"alice@example.com\"; \
         helo=mail.example.org; receiver=mx.example.net; identity=mailfrom; mechanism=-all"
    );
    assert_eq!(
        out.auth_result().to_string(),
        "spf=fail smtp.mailfrom=alice@example.com"
    );

    let out = check(&z, "192.0.2.1", "\"odd person\"@example.com");
    assert_eq!(out.result, SpfResult::Pass);
    assert_eq!(out.explanation, None);
    let rs = out.received_spf("mx.example.net");
    assert!(
        rs.contains("envelope-from=\"\\\"odd person\\\"@example.com\""),
        "{rs}"
    );
    assert!(rs.contains("mechanism=\"ip4:192.0.2.0/24\""), "{rs}");
    assert_eq!(
        out.auth_result().to_string(),
        "spf=pass smtp.mailfrom=\"\\\"odd person\\\"@example.com\""
    );

    let z = zone(&[("example.com", "v=spf1 a:%{x}.example.com")]);
    let out = check(&z, "192.0.2.1", "alice@example.com");
    assert_eq!(out.result, SpfResult::PermError);
    assert!(
        out.auth_result()
            .to_string()
            .starts_with("spf=permerror reason=\"syntax error")
    );
    assert!(out.received_spf("mx").contains("problem=\"syntax error"));
}

#[test]
fn output_serializes_to_json() {
    let z = zone(&[
        ("example.com", "v=spf1 include:_spf.example.com -all"),
        ("_spf.example.com", "v=spf1 ip4:192.0.2.0/24 ~all"),
    ]);
    let out = check(&z, "192.0.2.7", "alice@example.com");
    let id = out.dmarc_identity();
    assert_eq!(id.domain, "example.com");
    assert_eq!(id.result, dmarc_proto::dmarc::AuthResult::Pass);
    let v = serde_json::to_value(&out).unwrap();
    assert_eq!(v["result"], "pass");
    assert_eq!(v["lookups"], 1);
    assert_eq!(v["void_lookups"], 0);
    assert_eq!(v["deciding_term"]["term"], "include:_spf.example.com");
    let term = &v["trace"]["record"]["terms"][0];
    assert_eq!(term["outcome"], "match");
    assert_eq!(term["nested"]["domain"], "_spf.example.com");
    assert_eq!(term["nested"]["queries"][0]["answer"], "records");
    let text = out.trace.to_text();
    assert!(
        text.contains("include:_spf.example.com [_spf.example.com] => match"),
        "{text}"
    );
}

/// Answers every question: TXT with one record, A/AAAA/MX/PTR with something plausible.
struct Everything(Vec<u8>);

impl dmarc_proto::Lookup for Everything {
    async fn txt(&self, _: &str) -> dmarc_proto::dns::DnsResult<Vec<u8>> {
        Ok(vec![self.0.clone()])
    }
    async fn a(&self, name: &str) -> dmarc_proto::dns::DnsResult<std::net::Ipv4Addr> {
        if name.len().is_multiple_of(3) {
            Err(dmarc_proto::DnsError::NxDomain)
        } else {
            Ok(vec!["192.0.2.1".parse().unwrap()])
        }
    }
    async fn aaaa(&self, _: &str) -> dmarc_proto::dns::DnsResult<std::net::Ipv6Addr> {
        Err(dmarc_proto::DnsError::NoData)
    }
    async fn mx(&self, name: &str) -> dmarc_proto::dns::DnsResult<dmarc_proto::MxRecord> {
        Ok((0..12)
            .map(|i| dmarc_proto::MxRecord {
                preference: i,
                exchange: format!("mx{i}.{name}"),
            })
            .collect())
    }
    async fn ptr(&self, _: IpAddr) -> dmarc_proto::dns::DnsResult<String> {
        Ok((0..15).map(|i| format!("h{i}.example.com")).collect())
    }
}

/// Records assembled from fragments of SPF syntax, valid and not: parsing never panics,
/// what parses displays as something that parses to the same record, and evaluating it
/// against a resolver that answers everything stays within the limits.
#[test]
fn random_records_never_panic_and_stay_bounded() {
    const FRAGMENTS: &[&str] = &[
        "a",
        "mx",
        "ptr",
        "all",
        "ip4:",
        "ip6:",
        "include:",
        "exists:",
        "redirect=",
        "exp=",
        "foo=",
        "%{",
        "}",
        "%",
        "%%",
        "%_",
        "%-",
        "/",
        "//",
        ":",
        "1.2.3.4",
        "::1",
        "192.0.2.0",
        "example.com",
        "%{ir}",
        "%{d2}",
        "%{l1r-}",
        "%{p}",
        "%{x}",
        "-",
        "~",
        "?",
        "+",
        ".",
        "=",
        "\u{ff}",
        "\r",
        " ",
        "  ",
        "24",
        "129",
        "0",
        "033",
        "%{i}.",
        "x",
        "_spf",
        "%{H}",
    ];
    let mut seed: u64 = 0x5EED_5EED;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let clock = FixedClock::from_unix_seconds(1_700_000_000);
    let opts = SpfOptions::default();
    let mut parsed = 0;
    for _ in 0..3000 {
        let mut rec = String::from("v=spf1");
        let terms = next() % 12;
        for _ in 0..terms {
            rec.push(' ');
            for _ in 0..(1 + next() % 4) {
                rec.push_str(FRAGMENTS[(next() % FRAGMENTS.len() as u64) as usize]);
            }
        }
        let Ok(r) = spf::Record::parse(rec.as_bytes()) else {
            continue;
        };
        parsed += 1;
        let again = spf::Record::parse(r.to_string().as_bytes()).expect("display parses");
        assert_eq!(again, r, "{rec:?}");
        let lookup = Everything(rec.clone().into_bytes());
        let req = SpfRequest::new("192.0.2.1".parse().unwrap(), "helo.example.org")
            .with_mail_from("someone@example.com");
        let out = pollster::block_on(spf::verify_mail_from(&lookup, &clock, &opts, &req));
        assert!(
            out.lookups <= 10 && out.void_lookups <= 3,
            "{rec:?}: {}",
            out.trace
        );
        // At most: 10 terms, each MX or PTR walk bounded by 10 names, plus explanation.
        assert!(
            out.dns_queries <= 1 + 10 * 12 + 4,
            "{rec:?}: {}",
            out.dns_queries
        );
    }
    assert!(
        parsed > 250,
        "the generator should produce valid records too ({parsed})"
    );
}

#[test]
fn internationalized_names_are_checked_as_a_labels() {
    let z = zone(&[
        (
            "xn--bcher-kva.example",
            "v=spf1 exists:%{l}.users.%{o} -all",
        ),
        ("xn--jrg-sna.users.xn--bcher-kva.example", "A 127.0.0.2"),
    ]);
    let out = check(&z, "192.0.2.1", "jörg@bücher.example");
    assert_eq!(out.result, SpfResult::Pass, "{}", out.trace);
    assert_eq!(out.domain, "xn--bcher-kva.example");
    assert!(out.trace.notes.iter().any(|n| n.contains("A-label")));
    let out = check(&z, "192.0.2.1", "anna@bücher.example");
    assert_eq!(out.result, SpfResult::Fail);
    let out = check(&z, "192.0.2.1", "x@a\u{200b}\u{0}b.example");
    assert_eq!(out.result, SpfResult::None);
    assert_eq!(out.dns_queries, 0);
}

/// The evaluation futures can be spawned on a multi-threaded runtime.
#[test]
fn futures_are_send() {
    fn assert_send<T: Send>(t: T) -> T {
        t
    }
    let z = zone(&[("example.com", "v=spf1 -all")]);
    let clock = FixedClock::from_unix_seconds(0);
    let opts = SpfOptions::default();
    let req = SpfRequest::new("192.0.2.1".parse().unwrap(), "mail.example.com");
    let out = pollster::block_on(assert_send(spf::verify_helo(&z, &clock, &opts, &req)));
    assert_eq!(out.result, SpfResult::None);
    let out = pollster::block_on(assert_send(spf::check_host(
        &z,
        &clock,
        &opts,
        req.ip,
        "example.com",
        "a@example.com",
        "mail.example.com",
    )));
    assert_eq!(out.result, SpfResult::Fail);
}

/// A lookup whose answers take one extra poll each, recording how many questions were in
/// flight at once.
struct Slow {
    in_flight: std::sync::atomic::AtomicUsize,
    max_in_flight: std::sync::atomic::AtomicUsize,
}

struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            std::task::Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    }
}

impl Slow {
    async fn enter<T>(&self, v: T) -> T {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        self.max_in_flight.fetch_max(now, SeqCst);
        YieldOnce(false).await;
        self.in_flight.fetch_sub(1, SeqCst);
        v
    }
}

impl dmarc_proto::Lookup for Slow {
    async fn txt(&self, name: &str) -> dmarc_proto::dns::DnsResult<Vec<u8>> {
        let r = match name {
            "example.com" => Ok(vec![b"v=spf1 mx -all".to_vec()]),
            _ => Err(dmarc_proto::DnsError::NxDomain),
        };
        self.enter(r).await
    }
    async fn a(&self, name: &str) -> dmarc_proto::dns::DnsResult<std::net::Ipv4Addr> {
        let r = match name {
            "mx3.example.com" => Ok(vec!["192.0.2.3".parse().unwrap()]),
            _ => Ok(vec!["198.51.100.1".parse().unwrap()]),
        };
        self.enter(r).await
    }
    async fn aaaa(&self, _: &str) -> dmarc_proto::dns::DnsResult<std::net::Ipv6Addr> {
        self.enter(Err(dmarc_proto::DnsError::NoData)).await
    }
    async fn mx(&self, _: &str) -> dmarc_proto::dns::DnsResult<dmarc_proto::MxRecord> {
        let mx = |p, n: &str| dmarc_proto::MxRecord {
            preference: p,
            exchange: n.into(),
        };
        self.enter(Ok(vec![
            mx(10, "mx1.example.com"),
            mx(20, "mx2.example.com"),
            mx(30, "mx3.example.com"),
        ]))
        .await
    }
    async fn ptr(&self, _: IpAddr) -> dmarc_proto::dns::DnsResult<String> {
        self.enter(Err(dmarc_proto::DnsError::NxDomain)).await
    }
}

/// The address questions for the hosts of an mx mechanism are asked together.
#[test]
fn mx_hosts_are_asked_concurrently() {
    let lookup = Slow {
        in_flight: 0.into(),
        max_in_flight: 0.into(),
    };
    let clock = FixedClock::from_unix_seconds(0);
    let req = SpfRequest::new("192.0.2.3".parse().unwrap(), "mail.example.com")
        .with_mail_from("a@example.com");
    let out = pollster::block_on(spf::verify_mail_from(
        &lookup,
        &clock,
        &SpfOptions::default(),
        &req,
    ));
    assert_eq!(out.result, SpfResult::Pass, "{}", out.trace);
    assert_eq!(out.dns_queries, 5);
    assert_eq!(
        lookup
            .max_in_flight
            .load(std::sync::atomic::Ordering::SeqCst),
        3
    );
    let text = out.trace.to_text();
    assert!(text.contains("A mx3.example.com -> 192.0.2.3"), "{text}");
}
