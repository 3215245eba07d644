//! The openspf RFC 7208 suite through the binary alone: each scenario's zonedata is written
//! as an RFC 1035 zone file, and each test is one `dmarc spf --dns-zone FILE --json` run
//! whose result and explanation are compared with the suite's.
//!
//! A zone file cannot express a DNS time-out, so the tests that depend on `TIMEOUT` are
//! listed below; the test fails if one of them starts to pass.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_yaml::Value;

/// Tests whose zonedata uses `TIMEOUT`, which a zone file cannot express: the record is
/// absent instead, so a time-out (temperror) becomes NXDOMAIN.
const TIMEOUT_TESTS: &[(&str, &str)] = &[
    (
        "txttimeout",
        "the TXT query times out (§4.4: temperror); in the zone file it is absent",
    ),
    (
        "nospftxttimeout",
        "the TXT query times out (§4.4: temperror); in the zone file it is absent",
    ),
    (
        "alltimeout",
        "every query times out (§4.4: temperror); in the zone file the name is absent",
    ),
    (
        "include-temperror",
        "the included name times out (§5.2: temperror); absent, it is a permerror",
    ),
    (
        "exists-dnserr",
        "the exists name times out (§5.7: temperror); absent, it does not match",
    ),
];

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => panic!("expected a scalar, got {other:?}"),
    }
}

/// A domain name in master-file form: bytes other than letters, digits, `-` and `_` as
/// `\DDD`, absolute.
fn zone_name(name: &str) -> String {
    let name = name.trim_end_matches('.');
    let mut out = String::new();
    for (i, label) in name.split('.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        for b in label.bytes() {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                out.push(char::from(b));
            } else {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
    out.push('.');
    out
}

/// TXT RDATA: character-strings of at most 255 octets, quoted, with `"`, `\` and
/// non-printable octets as `\DDD`.
fn txt_rdata(data: &[u8]) -> String {
    if data.is_empty() {
        return "\"\"".into();
    }
    let mut out = String::new();
    for (i, chunk) in data.chunks(255).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push('"');
        for &b in chunk {
            if (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\' {
                out.push(char::from(b));
            } else {
                let _ = write!(out, "\\{b:03}");
            }
        }
        out.push('"');
    }
    out
}

fn txt_value(v: &Value) -> Vec<u8> {
    match v {
        Value::Sequence(items) => items.iter().flat_map(|i| text(i).into_bytes()).collect(),
        other => text(other).into_bytes(),
    }
}

/// Writes the zonedata of a scenario as a zone file, applying the test driver's rules:
/// SPF records double as TXT when a name has no TXT entry, `TXT: NONE` is no record.
fn write_zone(zonedata: &serde_yaml::Mapping, path: &Path) -> bool {
    let mut out = String::from("$TTL 300\n");
    let mut has_timeout = false;
    for (name, recs) in zonedata {
        let owner = zone_name(&text(name));
        let recs = recs.as_sequence().cloned().unwrap_or_default();
        let has_txt = recs.iter().any(|r| r.get("TXT").is_some());
        for r in &recs {
            if r.as_str() == Some("TIMEOUT") {
                has_timeout = true;
                continue;
            }
            let Value::Mapping(m) = r else { continue };
            let Some((k, v)) = m.iter().next() else {
                continue;
            };
            let line = match text(k).as_str() {
                "SPF" if has_txt => continue,
                "SPF" => format!("TXT {}", txt_rdata(&txt_value(v))),
                "TXT" if v.as_str() == Some("NONE") => continue,
                "TXT" => format!("TXT {}", txt_rdata(&txt_value(v))),
                "A" => format!("A {}", text(v)),
                "AAAA" => format!("AAAA {}", text(v)),
                "PTR" => format!("PTR {}", zone_name(&text(v))),
                "CNAME" => format!("CNAME {}", zone_name(&text(v))),
                "MX" => {
                    let s = v.as_sequence().expect("MX");
                    let exchange = text(&s[1]);
                    let exchange = if exchange.is_empty() {
                        ".".to_owned()
                    } else {
                        zone_name(&exchange)
                    };
                    format!("MX {} {exchange}", text(&s[0]))
                }
                other => panic!("record type {other}"),
            };
            let _ = writeln!(out, "{owner} IN {line}");
        }
    }
    std::fs::write(path, out).expect("write zone");
    has_timeout
}

struct Case {
    id: String,
    helo: String,
    host: String,
    mailfrom: String,
    results: Vec<String>,
    explanation: Option<String>,
    zone: PathBuf,
}

fn normalise(r: &str) -> String {
    match r {
        "unknown" => "permerror".into(),
        "error" => "temperror".into(),
        other => other.to_owned(),
    }
}

fn load() -> Vec<Case> {
    let path = dmarc_testkit::corpus("spf-openspf-rfc7208/rfc7208-tests.yml");
    let data = std::fs::read_to_string(&path).expect("read suite");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("spf_cli_zones");
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let mut cases = Vec::new();
    for (n, doc) in serde_yaml::Deserializer::from_str(&data).enumerate() {
        let v = Value::deserialize(doc).expect("YAML");
        if v.is_null() {
            continue;
        }
        let zone = dir.join(format!("scenario-{n}.zone"));
        let empty = serde_yaml::Mapping::new();
        let zd = v
            .get("zonedata")
            .and_then(Value::as_mapping)
            .unwrap_or(&empty);
        write_zone(zd, &zone);
        let Some(Value::Mapping(tests)) = v.get("tests") else {
            continue;
        };
        for (id, t) in tests {
            let results = match t.get("result").expect("result") {
                Value::Sequence(s) => s.iter().map(|r| normalise(&text(r))).collect(),
                r => vec![normalise(&text(r))],
            };
            cases.push(Case {
                id: text(id),
                helo: t.get("helo").map(text).unwrap_or_default(),
                host: text(t.get("host").expect("host")),
                mailfrom: t.get("mailfrom").map(text).unwrap_or_default(),
                results,
                explanation: t.get("explanation").map(text),
                zone: zone.clone(),
            });
        }
    }
    cases
}

#[test]
fn rfc7208_suite_through_the_cli() {
    let cases = load();
    assert_eq!(cases.len(), 203);
    let listed: BTreeMap<&str, &str> = TIMEOUT_TESTS.iter().copied().collect();
    let mut unexpected = Vec::new();
    let mut now_passing = Vec::new();
    for c in &cases {
        let output = Command::new(env!("CARGO_BIN_EXE_dmarc"))
            .arg("spf")
            .arg("--json")
            .arg(format!("--dns-zone={}", c.zone.display()))
            .arg(format!("--ip={}", c.host))
            .arg(format!("--helo={}", c.helo))
            .arg(format!("--mail-from={}", c.mailfrom))
            .arg("--default-explanation=DEFAULT")
            .output()
            .expect("run dmarc");
        let problem = if !output.status.success() {
            Some(format!(
                "exit status {:?}: {}",
                output.status.code(),
                String::from_utf8_lossy(&output.stderr)
            ))
        } else {
            let v: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON output");
            let result = v["result"].as_str().unwrap_or_default().to_owned();
            let mut p = Vec::new();
            if !c.results.contains(&result) {
                p.push(format!("result {result} (expected {:?})", c.results));
            }
            if let Some(want) = &c.explanation {
                let got = v["explanation"].as_str().unwrap_or_default();
                if got != want {
                    p.push(format!("explanation {got:?} (expected {want:?})"));
                }
            }
            (!p.is_empty()).then(|| format!("{}; reason: {}", p.join("; "), v["reason"]))
        };
        match (problem, listed.contains_key(c.id.as_str())) {
            (Some(p), false) => unexpected.push(format!("{}: {p}", c.id)),
            (None, true) => now_passing.push(c.id.clone()),
            _ => {}
        }
    }
    for u in &unexpected {
        eprintln!("{u}");
    }
    assert!(
        unexpected.is_empty(),
        "{} of 203 tests failed through the CLI",
        unexpected.len()
    );
    assert!(
        now_passing.is_empty(),
        "listed TIMEOUT tests now pass; remove them: {now_passing:?}"
    );
}

#[test]
fn bad_input_is_refused_with_status_2() {
    let zone = dmarc_testkit::workspace_root().join("examples/example.zone");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_dmarc"))
            .arg("spf")
            .args(args)
            .output()
            .expect("run dmarc")
    };
    let zone_arg = format!("--dns-zone={}", zone.display());
    for (args, needle) in [
        (
            vec![
                "--ip=192.0.2.300",
                "--helo=mail.example.com",
                zone_arg.as_str(),
            ],
            "not an IPv4 or IPv6 address",
        ),
        (
            vec![
                "--ip=192.0.2.1",
                "--helo=mail.example.com",
                "--mail-from=nobody",
                zone_arg.as_str(),
            ],
            "malformed",
        ),
        (
            vec![
                "--ip=192.0.2.1",
                "--helo=mail.example.com",
                "--dns-zone=/nonexistent/zone",
            ],
            "zone file",
        ),
        (
            vec!["--ip=192.0.2.1", "--helo=", zone_arg.as_str()],
            "--helo",
        ),
        (
            vec![
                "--ip=192.0.2.1",
                "--helo=x.example",
                "--time-budget=-1",
                zone_arg.as_str(),
            ],
            "--time-budget",
        ),
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn example_zone_gives_a_readable_pass() {
    let zone = dmarc_testkit::workspace_root().join("examples/example.zone");
    let out = Command::new(env!("CARGO_BIN_EXE_dmarc"))
        .args(["spf", "--ip", "192.0.2.10", "--helo", "mail.example.com"])
        .args([
            "--mail-from",
            "alice@example.com",
            "--trace",
            "--receiver",
            "mx.example.org",
        ])
        .arg("--dns-zone")
        .arg(&zone)
        .output()
        .expect("run dmarc");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("spf: pass\n"), "{text}");
    assert!(
        text.contains("deciding term: mx (in the record of example.com)"),
        "{text}"
    );
    assert!(text.contains("Received-SPF: pass (mx.example.org: domain of alice@example.com designates 192.0.2.10 as permitted sender)"), "{text}");
    assert!(
        text.contains(
            "Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=alice@example.com"
        ),
        "{text}"
    );
    assert!(
        text.contains("MX example.com -> 10 mail.example.com, 20 backup.example.com"),
        "{text}"
    );

    // A fail with the domain's explanation, as JSON.
    let out = Command::new(env!("CARGO_BIN_EXE_dmarc"))
        .args([
            "spf",
            "--json",
            "--ip",
            "198.51.100.99",
            "--helo",
            "mail.example.com",
        ])
        .args(["--mail-from", "<bob@lists.example.com>"])
        .arg("--dns-zone")
        .arg(&zone)
        .output()
        .expect("run dmarc");
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["result"], "fail");
    assert_eq!(
        v["explanation"],
        "198.51.100.99 is not one of example.com's designated mail servers. See https://www.example.com/mail-policy"
    );
    assert_eq!(v["domain"], "lists.example.com");
    assert!(v["lookups"].as_u64().unwrap() >= 3);
    assert_eq!(v["void_lookups"], 0);
    assert!(
        v["received_spf"]
            .as_str()
            .unwrap()
            .starts_with("Received-SPF: fail")
    );
    assert!(
        v["authentication_results"]
            .as_str()
            .unwrap()
            .contains("spf=fail")
    );
    assert_eq!(
        v["trace"]["record"]["terms"][0]["term"],
        "redirect=example.com"
    );
}

/// The zone writer keeps every byte: long records are split into strings of at most 255
/// octets and odd bytes escaped, and the zone file resolver gives the same bytes back.
#[test]
fn zone_writer_round_trips_through_the_zone_file_resolver() {
    use dmarc_proto::Lookup;
    use std::task::{Context, Poll, Waker};

    let mut data = b"v=spf1 \"quoted\" back\\slash \x00\x01\x7f\xff ".to_vec();
    data.extend(std::iter::repeat_n(b'x', 600));
    // Byte values as code points, like the suite's `\xNN` escapes.
    let latin1: String = data.iter().map(|&b| char::from(b)).collect();
    let record = |k: &str, v: Value| {
        let mut m = serde_yaml::Mapping::new();
        m.insert(Value::String(k.into()), v);
        Value::Mapping(m)
    };
    let mut zd = serde_yaml::Mapping::new();
    zd.insert(
        Value::String("odd\\ name.example.com".into()),
        Value::Sequence(vec![
            record("TXT", Value::String(latin1.clone())),
            record(
                "MX",
                Value::Sequence(vec![Value::Number(10.into()), Value::String(String::new())]),
            ),
        ]),
    );
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("writer-round-trip.zone");
    write_zone(&zd, &path);
    let zone = dmarc_dns::ZoneFile::load(&path).expect("zone loads");
    let fut = zone.txt("odd\\092\\032name.example.com");
    let mut fut = std::pin::pin!(fut);
    let Poll::Ready(answer) = fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) else {
        panic!("the zone file answers at once")
    };
    let want = latin1.into_bytes();
    assert_eq!(answer, Ok(vec![want]));
    let fut = zone.mx("odd\\092\\032name.example.com");
    let mut fut = std::pin::pin!(fut);
    let Poll::Ready(answer) = fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) else {
        panic!("the zone file answers at once")
    };
    let mx = answer.expect("MX");
    assert_eq!(
        (mx[0].preference, mx[0].exchange.as_str()),
        (10, ""),
        "a null MX"
    );
}
