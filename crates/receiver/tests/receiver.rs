//! The receiver's single call (`dmarc_receiver::verify_message`) end to end on real
//! messages: every verdict of `../shared/corpora/mail-bench`, the authheaders messages of
//! `dmarc-authheaders/` with the DNS of their evaluation-table rows (HOW_TO_USE §5.1), the
//! Authentication-Results field, upstream and forged fields, and concurrency of the DNS work.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use dmarc_proto::FixedClock;
use dmarc_proto::auth_results;
use dmarc_proto::dkim::DkimResult;
use dmarc_proto::dmarc::{DmarcResult, MultipleAddresses, Spec};
use dmarc_proto::dns::{DnsError, DnsResult, Lookup, MxRecord};
use dmarc_receiver::{Action, FixedDraw, ReceiverConfig, SmtpFacts, Verdicts, verify_message};
use dmarc_testkit::corpus;
use futures_executor::block_on;
use serde_json::Value;

// ---------------------------------------------------------------------------------------
// Test DNS

/// An in-memory zone: a name absent is NXDOMAIN, a name present without the asked type is
/// NODATA. Counts queries.
#[derive(Default)]
struct MapLookup {
    txt: HashMap<String, Vec<Vec<u8>>>,
    a: HashMap<String, Vec<Ipv4Addr>>,
    queries: AtomicUsize,
}

impl MapLookup {
    fn key(name: &str) -> String {
        name.trim_end_matches('.').to_ascii_lowercase()
    }
    fn exists(&self, k: &str) -> bool {
        self.txt.contains_key(k) || self.a.contains_key(k)
    }
    fn answer<T: Clone>(&self, map: &HashMap<String, Vec<T>>, name: &str) -> DnsResult<T> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let k = Self::key(name);
        match map.get(&k) {
            Some(v) if !v.is_empty() => Ok(v.clone()),
            _ if self.exists(&k) => Err(DnsError::NoData),
            _ => Err(DnsError::NxDomain),
        }
    }
    fn mail_bench() -> MapLookup {
        let dir = corpus("mail-bench");
        let zone: HashMap<String, HashMap<String, Vec<String>>> =
            serde_json::from_slice(&std::fs::read(dir.join("zone.json")).unwrap()).unwrap();
        let mut m = MapLookup::default();
        for (name, types) in zone {
            let k = Self::key(&name);
            for (t, values) in types {
                match t.as_str() {
                    "TXT" => m
                        .txt
                        .entry(k.clone())
                        .or_default()
                        .extend(values.into_iter().map(String::into_bytes)),
                    "A" => {
                        m.a.entry(k.clone())
                            .or_default()
                            .extend(values.iter().map(|v| v.parse::<Ipv4Addr>().unwrap()))
                    }
                    other => panic!("zone.json: unexpected type {other}"),
                }
            }
        }
        m
    }
}

impl Lookup for MapLookup {
    async fn txt(&self, name: &str) -> DnsResult<Vec<u8>> {
        self.answer(&self.txt, name)
    }
    async fn a(&self, name: &str) -> DnsResult<Ipv4Addr> {
        self.answer(&self.a, name)
    }
    async fn aaaa(&self, name: &str) -> DnsResult<Ipv6Addr> {
        self.answer(&HashMap::new(), name)
    }
    async fn mx(&self, name: &str) -> DnsResult<MxRecord> {
        self.answer(&HashMap::new(), name)
    }
    async fn ptr(&self, _: IpAddr) -> DnsResult<String> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        Err(DnsError::NxDomain)
    }
}

/// mail-bench signatures carry t=1795329660 and no x=: verify a little later.
const BENCH_NOW: u64 = 1_795_400_000;

fn cases() -> Vec<Value> {
    let dir = corpus("mail-bench");
    std::fs::read_to_string(dir.join("cases.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn facts(case: &Value) -> SmtpFacts {
    SmtpFacts::new(
        case["ip"].as_str().unwrap().parse().unwrap(),
        case["helo"].as_str().unwrap(),
    )
    .with_mail_from(case["mail_from"].as_str().unwrap())
}

fn run(lookup: &MapLookup, config: &ReceiverConfig, facts: &SmtpFacts, msg: &[u8]) -> Verdicts {
    block_on(verify_message(
        lookup,
        &FixedClock::from_unix_seconds(BENCH_NOW),
        &FixedDraw(0),
        config,
        facts,
        msg,
    ))
}

fn policy_name(p: Option<dmarc_proto::dmarc::Policy>) -> &'static str {
    p.map_or("none", |p| p.as_str())
}

// ---------------------------------------------------------------------------------------
// mail-bench

/// Every verdict of mail-bench (spf, dkim per signature, dmarc, policy_requested, policy),
/// in RFC 9989 mode, and the verdicts (spf, dkim, dmarc) in RFC 7489 mode too (the README
/// says RFC 7489 with the PSL gives the same verdicts).
#[test]
fn mail_bench_every_verdict() {
    let dir = corpus("mail-bench");
    let lookup = MapLookup::mail_bench();
    let cases = cases();
    assert_eq!(cases.len(), 300);
    for spec in [Spec::Rfc9989, Spec::Rfc7489] {
        let mut config = ReceiverConfig::new("mx.receiver.example");
        config.dmarc.spec = spec;
        let mut mismatches = Vec::new();
        for case in &cases {
            let file = case["file"].as_str().unwrap();
            let msg = std::fs::read(dir.join(file)).unwrap();
            let v = run(&lookup, &config, &facts(case), &msg);
            let mut got = serde_json::json!({
                "spf": v.spf.result.as_str(),
                "dkim": v.dkim.iter().map(|s| serde_json::json!({
                    "d": s.info.domain, "s": s.info.selector, "result": s.result.as_str(),
                })).collect::<Vec<_>>(),
                "dmarc": v.dmarc.result.as_str(),
                "policy_requested": policy_name(v.dmarc.requested_policy),
                "policy": if v.dmarc.result == DmarcResult::Pass { "none" } else { policy_name(v.dmarc.applied_policy) },
            });
            let mut want = serde_json::json!({
                "spf": case["spf"], "dkim": case["dkim"], "dmarc": case["dmarc"],
                "policy_requested": case["policy_requested"], "policy": case["policy"],
            });
            if spec == Spec::Rfc7489 {
                // RFC 7489 knows neither t= nor np= (RFC 9989 §4.7): the corpus's policies
                // are RFC 9989's, so only the verdicts are compared in that mode.
                for g in [&mut got, &mut want] {
                    let o = g.as_object_mut().unwrap();
                    o.remove("policy");
                    o.remove("policy_requested");
                }
            }
            if got != want {
                got["file"] = file.into();
                mismatches.push(format!("{spec}: {got}\n   want {want}"));
            }
            // The action agrees with the policy.
            let action = match case["policy"].as_str().unwrap() {
                "reject" => Action::Reject,
                "quarantine" => Action::Quarantine,
                _ => Action::Accept,
            };
            if spec == Spec::Rfc9989 {
                assert_eq!(v.action, action, "{file}");
            }
            // The field rendered straight from the verdicts is the one built as values.
            assert_eq!(
                v.authentication_results_header(),
                v.authentication_results().to_header(),
                "{file}"
            );
            // The field parses back, claims our id, and carries the three methods.
            let folded = v.authentication_results().to_folded();
            let parsed = auth_results::parse(&folded).unwrap();
            assert_eq!(parsed.authserv_id, "mx.receiver.example");
            let dmarc = parsed.results.iter().find(|r| r.method == "dmarc").unwrap();
            assert_eq!(dmarc.result, case["dmarc"].as_str().unwrap());
            assert_eq!(
                dmarc.property("header", "from"),
                Some(case["from_domain"].as_str().unwrap())
            );
            let dkims = parsed.results.iter().filter(|r| r.method == "dkim").count();
            assert_eq!(
                dkims,
                case["dkim"].as_array().unwrap().len().max(1),
                "{file}"
            );
        }
        assert!(
            mismatches.is_empty(),
            "{} of 300 cases differ:\n{}",
            mismatches.len(),
            mismatches.join("\n")
        );
    }
}

/// For a null reverse-path the SPF identity DMARC uses is the HELO name (RFC 9989 §4.4.2).
#[test]
fn null_reverse_path_uses_helo_identity() {
    let dir = corpus("mail-bench");
    let lookup = MapLookup::mail_bench();
    let config = ReceiverConfig::new("mx.receiver.example");
    let mut seen = 0;
    for case in cases()
        .iter()
        .filter(|c| c["mail_from"].as_str() == Some(""))
    {
        let msg = std::fs::read(dir.join(case["file"].as_str().unwrap())).unwrap();
        let v = run(&lookup, &config, &facts(case), &msg);
        let helo = case["helo"].as_str().unwrap();
        assert_eq!(v.spf.domain, helo);
        assert!(
            v.helo_spf.is_none(),
            "the MAIL FROM check is the HELO check"
        );
        assert_eq!(v.dmarc.spf.first().map(|r| r.domain.as_str()), Some(helo));
        seen += 1;
    }
    assert!(seen > 0);
}

/// The human explanation names the identifiers, their alignment and the verdict.
#[test]
fn explanation_in_words() {
    let dir = corpus("mail-bench");
    let lookup = MapLookup::mail_bench();
    let config = ReceiverConfig::new("mx.receiver.example");
    let case = &cases()[0]; // esp_aligned_dkim
    let msg = std::fs::read(dir.join(case["file"].as_str().unwrap())).unwrap();
    let v = run(&lookup, &config, &facts(case), &msg);
    let text = v.explain();
    assert!(
        text.starts_with(
            "SPF passed for bounces.esp0.example, but that is not aligned with brand4.example"
        ),
        "{text}"
    );
    assert!(
        text.contains("DKIM passed for brand4.example and is aligned"),
        "{text}"
    );
    assert!(text.ends_with(": DMARC pass."), "{text}");
}

// ---------------------------------------------------------------------------------------
// Incoming Authentication-Results: trusted upstream, forged

#[test]
fn upstream_and_forged_fields() {
    let dir = corpus("dmarc-authheaders");
    let msg = std::fs::read(dir.join("messages/test.message")).unwrap();
    let lookup = MapLookup::default();
    let f = SmtpFacts::new("192.0.2.1".parse().unwrap(), "mail.example.com");
    // Trusted: reported, parsed.
    let config = ReceiverConfig::new("mx.example.net").trusting(["Lists.Example.Org"]);
    let v = run(&lookup, &config, &f, &msg);
    assert!(v.forged_fields.is_empty());
    assert_eq!(v.upstream.len(), 1);
    assert_eq!(v.upstream[0].field_index, 0);
    let up = v.upstream[0].parsed.as_ref().unwrap();
    let dkim = up.results.iter().find(|r| r.method == "dkim").unwrap();
    assert_eq!(dkim.result, "pass");
    assert_eq!(dkim.property("header", "i"), Some("@d1.example"));
    // Not trusted: ignored.
    let config = ReceiverConfig::new("mx.example.net");
    let v = run(&lookup, &config, &f, &msg);
    assert!(v.upstream.is_empty() && v.forged_fields.is_empty());
    // Claims our own id: forged, to delete.
    let config = ReceiverConfig::new("LISTS.example.org");
    let v = run(&lookup, &config, &f, &msg);
    assert_eq!(v.forged_fields, vec![0]);
    assert!(v.upstream.is_empty());
}

/// The field quotes what needs quoting and round-trips through the parser.
#[test]
fn authentication_results_quoting() {
    let lookup = MapLookup::default();
    let config = ReceiverConfig::new("mx.example.net");
    let f = SmtpFacts::new("192.0.2.1".parse().unwrap(), "helo.example")
        .with_mail_from("\"odd local\"@example.com");
    let msg = b"From: a@example.com\r\n\r\nbody\r\n";
    let v = run(&lookup, &config, &f, msg);
    let header = v.authentication_results().to_header();
    assert_eq!(v.authentication_results_header(), header);
    assert!(header.starts_with("Authentication-Results: mx.example.net;\r\n\tspf=none"));
    assert!(header.contains("dkim=none"), "{header}");
    assert!(header.contains("dmarc=none"), "{header}");
    let parsed = auth_results::parse(&v.authentication_results().to_folded()).unwrap();
    let spf = parsed.results.iter().find(|r| r.method == "spf").unwrap();
    assert_eq!(
        spf.property("smtp", "mailfrom"),
        Some("\"odd local\"@example.com")
    );
    let helo = parsed
        .results
        .iter()
        .find(|r| r.property("smtp", "helo").is_some())
        .unwrap();
    assert_eq!(helo.property("smtp", "helo"), Some("helo.example"));
}

// ---------------------------------------------------------------------------------------
// authheaders messages with the evaluation-table rows (HOW_TO_USE §5.1)

/// (case id, reason) of rows whose expectation this implementation does not share.
const AUTHHEADERS_EXPECTED_FAILURES: &[(&str, &str)] = &[(
    "authheaders/bad-record-syntax",
    "RFC 9989 §4.8 (and RFC 7489 §6.3): a syntax error in the remainder of the record \
     (\"reject\" without '=') is discarded, so p=none applies and the result is fail; \
     authheaders reports permerror (the table notes this is implementation-divergent)",
)];

fn zone_from_table(dns: &Value, dir: &Path) -> MapLookup {
    let mut m = MapLookup::default();
    for (name, types) in dns.as_object().unwrap() {
        let k = MapLookup::key(name);
        for (t, rrs) in types.as_object().unwrap() {
            for rr in rrs.as_array().unwrap() {
                match t.as_str() {
                    "TXT" => {
                        let bytes = match rr {
                            Value::String(s) => s.clone().into_bytes(),
                            Value::Array(parts) => parts
                                .iter()
                                .flat_map(|p| p.as_str().unwrap().bytes())
                                .collect(),
                            other => panic!("TXT rr {other}"),
                        };
                        m.txt.entry(k.clone()).or_default().push(bytes);
                    }
                    "A" => {
                        m.a.entry(k.clone())
                            .or_default()
                            .push(rr.as_str().unwrap().parse().unwrap())
                    }
                    other => panic!("unexpected type {other}"),
                }
            }
        }
    }
    // The key of test.message_signed (the table's note).
    let key = std::fs::read_to_string(dir.join("messages/test.txt")).unwrap();
    m.txt.insert(
        "test._domainkey.example.com".into(),
        vec![key.trim().as_bytes().to_vec()],
    );
    m
}

/// The table rows that name a message in `dmarc-authheaders/messages`, run end to end: the
/// real message through the single call (real DKIM verification, the From field parsed by
/// the receiver), with the row's DNS. The rows give no SMTP facts and no SPF identity, so
/// the SMTP client is an address no SPF record covers and the reverse-path is null.
#[test]
fn authheaders_messages_end_to_end() {
    let dir = corpus("dmarc-authheaders");
    let table: Value = serde_json::from_slice(
        &std::fs::read(corpus("dmarc-eval-tables").join("dmarc-evaluation-cases.json")).unwrap(),
    )
    .unwrap();
    let mut ran = 0;
    let mut unexpected = Vec::new();
    let mut listed_passing = Vec::new();
    for case in table["cases"].as_array().unwrap() {
        let note = case["note"].as_str().unwrap_or("");
        let Some(file) = note
            .split("Message file: dmarc-authheaders/")
            .nth(1)
            .map(|s| s.trim_end_matches('.'))
        else {
            continue;
        };
        let id = case["id"].as_str().unwrap();
        let msg = std::fs::read(dir.join(file)).unwrap();
        let lookup = zone_from_table(&case["dns"], &dir);
        let expect = &case["expect"];
        for rfc in case["rfc"].as_array().unwrap() {
            let mut config = ReceiverConfig::new("mx.receiver.example");
            config.dmarc.spec = if rfc == "7489" {
                Spec::Rfc7489
            } else {
                Spec::Rfc9989
            };
            // authheaders evaluates every From domain and reports the worst (the table note).
            config.dmarc.author.multiple_addresses = MultipleAddresses::EvaluateEach;
            // The key is old; the signature has no x=.
            let f = SmtpFacts::new("192.0.2.200".parse().unwrap(), "localhost.invalid");
            let v = run(&lookup, &config, &f, &msg);
            ran += 1;
            assert_eq!(
                v.authentication_results_header(),
                v.authentication_results().to_header()
            );
            // The DKIM identities the row lists come out of real verification.
            let want_dkim: Vec<(String, String)> = case["input"]["dkim"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| {
                    (
                        d["domain"].as_str().unwrap().to_owned(),
                        d["result"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            for (d, r) in &want_dkim {
                let Some(sig) = v.dkim.iter().find(|s| s.info.domain.as_deref() == Some(d)) else {
                    // The row's other identities come from prior results in a header.
                    continue;
                };
                let got = if sig.result == DkimResult::Pass {
                    "pass"
                } else {
                    "fail"
                };
                assert_eq!(got, r, "{id}: DKIM d={d}: {:?}", sig.problem);
            }
            let mut diffs = Vec::new();
            if let Some(d) = expect["dmarc"].as_str()
                && v.dmarc.result.as_str() != d
            {
                diffs.push(format!(
                    "dmarc {} want {d} ({})",
                    v.dmarc.result, v.dmarc.reason
                ));
            }
            if let Some(p) = expect.get("policy") {
                let got = v.dmarc.applied_policy.map(|p| p.as_str());
                if got != p.as_str() && !(p.as_str() == Some("none") && got.is_none()) {
                    diffs.push(format!("policy {got:?} want {p}"));
                }
            }
            for (key, got) in [
                ("policy_domain", v.dmarc.policy_domain.as_deref()),
                ("org_domain", v.dmarc.org_domain.as_deref()),
                ("header_from_domain", v.dmarc.author_domain.as_deref()),
            ] {
                if let Some(want) = expect[key].as_str()
                    && got != Some(want)
                {
                    diffs.push(format!("{key} {got:?} want {want}"));
                }
            }
            let listed = AUTHHEADERS_EXPECTED_FAILURES.iter().any(|(l, _)| *l == id);
            match (diffs.is_empty(), listed) {
                (false, false) => unexpected.push(format!("{id} ({rfc}): {}", diffs.join("; "))),
                (true, true) => listed_passing.push(format!("{id} ({rfc})")),
                _ => {}
            }
        }
    }
    assert!(ran >= 12, "only {ran} authheaders runs");
    assert!(unexpected.is_empty(), "{}", unexpected.join("\n"));
    assert!(
        listed_passing.is_empty(),
        "listed as expected failures but passing: {listed_passing:?}"
    );
}

/// test.message_signed: the real signature verifies and the field says what authheaders
/// says: dmarc=pass header.from=example.com policy.dmarc=reject... (our policy.dmarc is the
/// applied policy, reported only when it would apply: here DMARC passes).
#[test]
fn authheaders_signed_message_header() {
    let dir = corpus("dmarc-authheaders");
    let table: Value = serde_json::from_slice(
        &std::fs::read(corpus("dmarc-eval-tables").join("dmarc-evaluation-cases.json")).unwrap(),
    )
    .unwrap();
    let case = table["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "authheaders/dkim-pass-from-domain-record")
        .unwrap();
    let lookup = zone_from_table(&case["dns"], &dir);
    let msg = std::fs::read(dir.join("messages/test.message_signed")).unwrap();
    let config = ReceiverConfig::new("mx.receiver.example");
    let f = SmtpFacts::new("192.0.2.200".parse().unwrap(), "localhost.invalid");
    let v = run(&lookup, &config, &f, &msg);
    assert_eq!(v.dkim.len(), 1);
    assert_eq!(
        v.dkim[0].result,
        DkimResult::Pass,
        "{:?}",
        v.dkim[0].problem
    );
    let text = v.authentication_results().to_string();
    assert!(
        text.contains("dkim=pass header.d=example.com header.i=@example.com header.s=test"),
        "{text}"
    );
    assert!(text.contains(" header.from=example.com"), "{text}");
    assert!(
        text.contains("policy.published-domain-policy=reject"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------
// Concurrency: independent DNS questions are asked together

/// A lookup whose every answer waits until the test releases it ("one round trip"). The
/// number of rounds needed to finish is the longest chain of dependent lookups.
struct RoundLookup {
    inner: MapLookup,
    round: Mutex<u64>,
    asked_in_round: Mutex<Vec<u64>>,
}

impl RoundLookup {
    async fn wait(&self) {
        let start = *self.round.lock().unwrap();
        self.asked_in_round.lock().unwrap().push(start);
        std::future::poll_fn(|_| {
            if *self.round.lock().unwrap() > start {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

impl Lookup for RoundLookup {
    async fn txt(&self, name: &str) -> DnsResult<Vec<u8>> {
        self.wait().await;
        self.inner.txt(name).await
    }
    async fn a(&self, name: &str) -> DnsResult<Ipv4Addr> {
        self.wait().await;
        self.inner.a(name).await
    }
    async fn aaaa(&self, name: &str) -> DnsResult<Ipv6Addr> {
        self.wait().await;
        self.inner.aaaa(name).await
    }
    async fn mx(&self, name: &str) -> DnsResult<MxRecord> {
        self.wait().await;
        self.inner.mx(name).await
    }
    async fn ptr(&self, ip: IpAddr) -> DnsResult<String> {
        self.wait().await;
        self.inner.ptr(ip).await
    }
}

/// With every answer taking one "round trip", a message with two signatures, SPF and a
/// DMARC record needs far fewer rounds than questions: the work is concurrent.
#[test]
fn dns_rounds_follow_the_longest_chain() {
    let dir = corpus("mail-bench");
    let case = cases()
        .into_iter()
        .find(|c| c["dkim"].as_array().unwrap().len() == 2)
        .unwrap();
    let msg = std::fs::read(dir.join(case["file"].as_str().unwrap())).unwrap();
    let lookup = RoundLookup {
        inner: MapLookup::mail_bench(),
        round: Mutex::new(0),
        asked_in_round: Mutex::new(Vec::new()),
    };
    let config = ReceiverConfig::new("mx.receiver.example");
    let f = facts(&case);
    let clock = FixedClock::from_unix_seconds(BENCH_NOW);
    let mut fut = Box::pin(verify_message(
        &lookup,
        &clock,
        &FixedDraw(0),
        &config,
        &f,
        &msg,
    ));
    let mut cx = Context::from_waker(Waker::noop());
    let mut rounds = 0u64;
    let v = loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            break v;
        }
        rounds += 1;
        *lookup.round.lock().unwrap() = rounds;
        assert!(rounds < 100, "does not finish");
    };
    let questions = lookup.asked_in_round.lock().unwrap().len() as u64;
    eprintln!("{rounds} rounds of DNS for {questions} questions");
    assert_eq!(v.dmarc.result.as_str(), case["dmarc"].as_str().unwrap());
    assert!(questions >= 6, "{questions} questions");
    assert!(
        rounds * 2 <= questions,
        "{rounds} rounds for {questions} questions: not concurrent"
    );
    // The first round already asks for SPF, the DMARC record and both keys.
    let first = lookup
        .asked_in_round
        .lock()
        .unwrap()
        .iter()
        .filter(|r| **r == 0)
        .count();
    assert!(first >= 4, "only {first} questions in the first round");
}

// ---------------------------------------------------------------------------------------
// Options from ReceiverConfig: DNS failure mode, RFC 7489 pct draw

/// A zone where every `_dmarc.` question times out.
struct DmarcTimesOut(MapLookup);

impl Lookup for DmarcTimesOut {
    async fn txt(&self, name: &str) -> DnsResult<Vec<u8>> {
        if name.starts_with("_dmarc.") {
            Err(DnsError::Temporary("timed out".into()))
        } else {
            self.0.txt(name).await
        }
    }
    async fn a(&self, name: &str) -> DnsResult<Ipv4Addr> {
        self.0.a(name).await
    }
    async fn aaaa(&self, name: &str) -> DnsResult<Ipv6Addr> {
        self.0.aaaa(name).await
    }
    async fn mx(&self, name: &str) -> DnsResult<MxRecord> {
        self.0.mx(name).await
    }
    async fn ptr(&self, ip: IpAddr) -> DnsResult<String> {
        self.0.ptr(ip).await
    }
}

#[test]
fn dns_failure_tempfails_or_fails_open() {
    let dir = corpus("mail-bench");
    let case = &cases()[1];
    let msg = std::fs::read(dir.join(case["file"].as_str().unwrap())).unwrap();
    let lookup = DmarcTimesOut(MapLookup::mail_bench());
    let clock = FixedClock::from_unix_seconds(BENCH_NOW);
    let run = |config: &ReceiverConfig| {
        block_on(verify_message(
            &lookup,
            &clock,
            &FixedDraw(0),
            config,
            &facts(case),
            &msg,
        ))
    };
    let v = run(&ReceiverConfig::new("mx.receiver.example"));
    assert_eq!(v.dmarc.result, DmarcResult::TempError);
    assert_eq!(v.action, Action::TempFail);
    assert!(
        v.authentication_results()
            .to_string()
            .contains("dmarc=temperror")
    );
    let v = run(&ReceiverConfig::new("mx.receiver.example")
        .with_dns_failure(dmarc_proto::dmarc::DnsFailureMode::FailOpen));
    assert_eq!(v.dmarc.result, DmarcResult::None);
    assert_eq!(v.action, Action::Accept);
}

/// RFC 7489 mode: the pct draw comes from the injected source.
#[test]
fn rfc7489_pct_draw_is_injected() {
    let mut lookup = MapLookup::default();
    lookup.txt.insert(
        "_dmarc.example.com".into(),
        vec![b"v=DMARC1; p=reject; pct=50".to_vec()],
    );
    let config = ReceiverConfig::new("mx.receiver.example").rfc7489();
    let f = SmtpFacts::new("192.0.2.1".parse().unwrap(), "helo.example.net")
        .with_mail_from("x@example.net");
    let msg = b"From: a@example.com\r\n\r\nbody\r\n";
    let clock = FixedClock::from_unix_seconds(BENCH_NOW);
    let run = |draw: u8| {
        block_on(verify_message(
            &lookup,
            &clock,
            &FixedDraw(draw),
            &config,
            &f,
            msg,
        ))
    };
    let selected = run(10);
    assert_eq!(selected.dmarc.result, DmarcResult::Fail);
    assert_eq!(selected.action, Action::Reject);
    let spared = run(90);
    assert_eq!(spared.dmarc.result, DmarcResult::Fail);
    assert_eq!(spared.action, Action::Quarantine, "{}", spared.dmarc.reason);
}
