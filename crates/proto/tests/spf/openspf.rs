//! The openspf test suites (`spf-openspf-rfc7208/`), run through check_host() on the MAIL
//! FROM identity (HOW_TO_USE.md §1), with the default explanation set to `DEFAULT` as
//! pyspf's harness does. Every test must pass, and no test may ask a DNS question twice.

use std::collections::BTreeMap;
use std::net::IpAddr;

use dmarc_proto::FixedClock;
use dmarc_proto::spf::{self, SpfOptions, SpfRequest, SpfResult};
use serde::Deserialize;
use serde_yaml::Value;

use crate::zone::{Rec, Zone, duplicates};

/// Tests of the RFC 4408 suite whose expectation RFC 7208 changed, with the section that
/// changed it. The test fails if one of these starts to match the RFC 4408 expectation.
/// A difference is a result other than the one the RFC 4408 suite prefers (its first).
const RFC4408_DIFFERENCES: &[(&str, &str)] = &[
    (
        "spfonly",
        "§3.1, §4.4: only TXT is queried; type SPF (99) records are not used, so none",
    ),
    (
        "spfoverride",
        "§3.1, §4.4: only TXT is queried; the TXT record (-all) decides",
    ),
    (
        "multispf2",
        "§3.1, §4.4: only TXT is queried; the single TXT record (+all) decides",
    ),
    (
        "multitxt1",
        "§4.5: two v=spf1 TXT records are a permerror; type SPF is not consulted",
    ),
    (
        "txttimeout",
        "§4.4: the TXT lookup timing out is a temperror; there is no SPF-type fallback",
    ),
    (
        "exists-dnserr",
        "§4.4, §5.7, §2.6.6: a DNS error during evaluation is a temperror",
    ),
    ("mx-limit", "§4.6.4: more than 10 MX records is a permerror"),
    (
        "invalid-domain-empty-label",
        "§4.3, §4.8: a target name DNS cannot carry does not match (as the RFC 7208 suite prefers)",
    ),
    (
        "invalid-domain-long",
        "§4.3, §4.8: a target name DNS cannot carry does not match (as the RFC 7208 suite prefers)",
    ),
    (
        "invalid-domain-long-via-macro",
        "§4.3, §4.8: a target name DNS cannot carry does not match (as the RFC 7208 suite prefers)",
    ),
];

/// RFC 7208 tests that accept several results where we give one other than the first,
/// with the reason.
const RFC7208_NOT_PREFERRED: &[&str] = &[];

#[derive(Debug)]
pub struct Case {
    pub id: String,
    pub scenario: String,
    pub helo: String,
    pub host: String,
    pub mailfrom: String,
    pub results: Vec<SpfResult>,
    pub explanation: Option<String>,
}

pub struct Scenario {
    pub zone: Zone,
    pub cases: Vec<Case>,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => panic!("expected a scalar, got {other:?}"),
    }
}

/// The strings of a TXT/SPF value: a string, or a list of character-strings to join.
fn txt_value(v: &Value) -> Vec<u8> {
    match v {
        Value::Sequence(items) => items.iter().flat_map(|i| text(i).into_bytes()).collect(),
        other => text(other).into_bytes(),
    }
}

fn record(v: &Value) -> Rec {
    if let Value::String(s) = v {
        assert_eq!(s, "TIMEOUT", "unknown bare record {s:?}");
        return Rec::Timeout;
    }
    let Value::Mapping(m) = v else {
        panic!("unexpected record {v:?}")
    };
    let (k, val) = m.iter().next().expect("one-key map");
    match text(k).as_str() {
        "SPF" => Rec::Spf(txt_value(val)),
        "TXT" if val.as_str() == Some("NONE") => Rec::TxtNone,
        "TXT" => Rec::Txt(txt_value(val)),
        "A" => Rec::A(text(val).parse().expect("A")),
        "AAAA" => Rec::Aaaa(text(val).parse().expect("AAAA")),
        "PTR" => Rec::Ptr(text(val)),
        "CNAME" => Rec::Cname(text(val)),
        "MX" => {
            let seq = val.as_sequence().expect("MX is [pref, name]");
            Rec::Mx(text(&seq[0]).parse().expect("MX preference"), text(&seq[1]))
        }
        other => panic!("unknown record type {other}"),
    }
}

pub fn load(rel: &str) -> Vec<Scenario> {
    let path = dmarc_testkit::corpus(rel);
    let data = std::fs::read_to_string(&path).expect("read suite");
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&data) {
        let v = Value::deserialize(doc).expect("YAML document");
        if v.is_null() {
            continue;
        }
        let description = v.get("description").map(text).unwrap_or_default();
        let mut zone = Zone::default();
        if let Some(Value::Mapping(zd)) = v.get("zonedata") {
            for (name, recs) in zd {
                let name = text(name);
                let recs: Vec<Rec> = recs
                    .as_sequence()
                    .map(|s| s.iter().map(record).collect())
                    .unwrap_or_default();
                for r in recs {
                    zone.add(&name, r);
                }
            }
        }
        let mut cases = Vec::new();
        if let Some(Value::Mapping(tests)) = v.get("tests") {
            for (id, t) in tests {
                let results = match t.get("result").expect("result") {
                    Value::Sequence(s) => {
                        s.iter().map(|r| text(r).parse().expect("result")).collect()
                    }
                    r => vec![text(r).parse().expect("result")],
                };
                cases.push(Case {
                    id: text(id),
                    scenario: description.clone(),
                    helo: t.get("helo").map(text).unwrap_or_default(),
                    host: text(t.get("host").expect("host")),
                    mailfrom: t.get("mailfrom").map(text).unwrap_or_default(),
                    results,
                    explanation: t.get("explanation").map(text),
                });
            }
        }
        out.push(Scenario { zone, cases });
    }
    out
}

/// Runs every case; returns (id, what went wrong) for the failures, the number run, and
/// (id, result) for the cases whose result is accepted but not the suite's preferred (first) one.
#[allow(clippy::type_complexity)]
fn run(rel: &str) -> (Vec<(String, String)>, usize, Vec<(String, String)>) {
    let scenarios = load(rel);
    let clock = FixedClock::from_unix_seconds(1_400_000_000);
    let options = SpfOptions {
        default_explanation: Some("DEFAULT".into()),
        receiver: "receiver.example.net".into(),
        ..SpfOptions::default()
    };
    // The receiver's settings: no trace, a shared cache of parsed records. They must not
    // change anything but the trace.
    let fast = SpfOptions {
        trace: false,
        record_cache: Some(std::sync::Arc::new(spf::SpfRecordCache::new(64))),
        ..options.clone()
    };
    let mut failures = Vec::new();
    let mut not_preferred = Vec::new();
    let mut count = 0;
    for sc in &scenarios {
        for case in &sc.cases {
            count += 1;
            let ip: IpAddr = case.host.parse().expect("host");
            let request =
                SpfRequest::new(ip, case.helo.clone()).with_mail_from(case.mailfrom.clone());
            sc.zone.take_log();
            let out =
                pollster::block_on(spf::verify_mail_from(&sc.zone, &clock, &options, &request));
            let dups = duplicates(&sc.zone.take_log());
            let mut problems = Vec::new();
            let quick =
                pollster::block_on(spf::verify_mail_from(&sc.zone, &clock, &fast, &request));
            sc.zone.take_log();
            let untraced = spf::SpfOutput {
                trace: spf::Trace::default(),
                ..out.clone()
            };
            if untraced != quick {
                problems.push(format!(
                    "without the trace and with a record cache the output differs: {quick:?}"
                ));
            }
            if !case.results.contains(&out.result) {
                problems.push(format!(
                    "result {} (expected {:?})",
                    out.result, case.results
                ));
            } else if case.results.first() != Some(&out.result) {
                not_preferred.push((
                    case.id.clone(),
                    format!(
                        "{} (suite prefers {:?}): {}",
                        out.result, case.results, out.reason
                    ),
                ));
            }
            if let Some(want) = &case.explanation {
                let got = out.explanation.clone().unwrap_or_default();
                if &got != want {
                    problems.push(format!("explanation {got:?} (expected {want:?})"));
                }
            }
            if !dups.is_empty() {
                problems.push(format!("repeated DNS queries: {dups:?}"));
            }
            if out.lookups > 10 {
                problems.push(format!(
                    "{} DNS-querying terms, over the limit",
                    out.lookups
                ));
            }
            if !problems.is_empty() {
                failures.push((
                    case.id.clone(),
                    format!(
                        "[{}] {}: {}\n    reason: {}\n{}",
                        case.scenario,
                        case.id,
                        problems.join("; "),
                        out.reason,
                        out.trace.to_text()
                    ),
                ));
            }
        }
    }
    (failures, count, not_preferred)
}

#[test]
fn rfc7208_suite() {
    let (failures, count, not_preferred) = run("spf-openspf-rfc7208/rfc7208-tests.yml");
    assert_eq!(count, 203, "the suite has 203 tests");
    for (id, why) in &not_preferred {
        eprintln!("accepted, not preferred: {id}: {why}");
    }
    let ids: Vec<&str> = not_preferred.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids, RFC7208_NOT_PREFERRED,
        "cases with an accepted but not preferred result changed"
    );
    for (_, f) in &failures {
        eprintln!("{f}");
    }
    assert!(
        failures.is_empty(),
        "{} of {count} RFC 7208 tests failed",
        failures.len()
    );
}

#[test]
fn rfc4408_suite_with_known_differences() {
    let (mut failures, count, not_preferred) = run("spf-openspf-rfc7208/rfc4408-tests.yml");
    // Against RFC 4408, a result the suite accepts but does not prefer is a difference.
    for (id, why) in not_preferred {
        failures.push((id.clone(), format!("{id}: {why}")));
    }
    assert_eq!(count, 191, "the suite has 191 tests");
    let known: BTreeMap<&str, &str> = RFC4408_DIFFERENCES.iter().copied().collect();
    let mut unexpected = Vec::new();
    for (id, f) in &failures {
        if !known.contains_key(id.as_str()) {
            unexpected.push(f.clone());
        }
    }
    let failing: Vec<&str> = failures.iter().map(|(id, _)| id.as_str()).collect();
    let now_passing: Vec<&str> = known
        .keys()
        .filter(|id| !failing.contains(id))
        .copied()
        .collect();
    for f in &unexpected {
        eprintln!("{f}");
    }
    assert!(
        unexpected.is_empty(),
        "{} RFC 4408 tests failed that are not listed: {:?}",
        unexpected.len(),
        failures.iter().map(|(id, _)| id).collect::<Vec<_>>()
    );
    assert!(
        now_passing.is_empty(),
        "listed RFC 4408 differences now match the RFC 4408 expectation; remove them: {now_passing:?}"
    );
}

/// The older releases of the RFC 7208 suite (HOW_TO_USE.md §1 variants) pass as well.
#[test]
fn earlier_rfc7208_releases() {
    for (rel, n) in [
        (
            "spf-openspf-rfc7208/variants/rfc7208-tests-2014.05.yml",
            193,
        ),
        (
            "spf-openspf-rfc7208/variants/rfc7208-tests-2015.01.yml",
            200,
        ),
    ] {
        let (failures, count, _) = run(rel);
        assert_eq!(count, n, "{rel}");
        for (_, f) in &failures {
            eprintln!("{f}");
        }
        assert!(
            failures.is_empty(),
            "{rel}: {} of {count} failed",
            failures.len()
        );
    }
}
