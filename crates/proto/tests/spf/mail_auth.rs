//! The mail-auth SPF cases (`spf-mail-auth/*.yml`), in their line-based format
//! (HOW_TO_USE.md §2): records accumulate (a redefinition replaces the set for that name and
//! type), `domain:` is the HELO name, `sender:` the MAIL FROM, `ip:` the client, and each
//! `expect:` runs a check. The receiver name (`%{r}`) is `localdomain.org`.
//!
//! Each check is run the way mail-auth's own test runs it: the HELO identity first, and the
//! MAIL FROM identity only when HELO passes (RFC 7208 §2.3 allows deciding on HELO).

use std::collections::BTreeMap;
use std::net::IpAddr;

use dmarc_proto::FixedClock;
use dmarc_proto::spf::{self, SpfOptions, SpfRequest, SpfResult};

use crate::zone::{Rec, Zone, duplicates};

/// Checks whose expectation we do not meet, as `(file, check label, reason)`. The test fails
/// when one of them starts to pass.
const EXPECTED_FAILURES: &[(&str, &str, &str)] = &[
    (
        "all.yml",
        "All test #1",
        "§4.6: a syntax error anywhere in the record (here `ip:10.0.0.1` after -all) is a \
         permerror; mail-auth stops parsing at `all` (openspf detect-errors-anywhere agrees)",
    ),
    (
        "basic.yml",
        "DNS Lookup Limits #1",
        "§4.6.4: ten a: terms to names that do not exist are ten void lookups; more than two \
         is a permerror (openspf void-over-limit); mail-auth has no void-lookup limit",
    ),
    (
        "basic.yml",
        "DNS Lookup Limits #6",
        "§4.6.4: an mx mechanism whose name has more than 10 MX records MUST produce a \
         permerror (openspf mx-limit); mail-auth expects the extra exchanges ignored",
    ),
    (
        "exists.yml",
        "Exists #2",
        "§5.7: exists asks for A records even for an IPv6 client; the name has only AAAA \
         (openspf exists-ip6only); mail-auth also accepts AAAA",
    ),
    (
        "ip.yml",
        "IPv6 match #4",
        "§5: IPv4 client addresses are listed only with ip4:; ip6:::ffff:10.1.2.3 does not \
         match the IPv4 client 10.1.2.3 (openspf cidr6-ip4)",
    ),
    (
        "macro.yml",
        "Macro expansion 2 #2",
        "§5.7: exists asks for A records even for an IPv6 client; the zone has only an AAAA \
         record at the %{ir}.%{v}._spf name",
    ),
];

fn kind(r: &Rec) -> u8 {
    match r {
        Rec::Txt(_) | Rec::Spf(_) | Rec::TxtNone => 0,
        Rec::A(_) => 1,
        Rec::Aaaa(_) => 2,
        Rec::Ptr(_) => 3,
        Rec::Mx(..) => 4,
        Rec::Cname(_) => 5,
        Rec::Timeout | Rec::ServFail => 6,
    }
}

/// Replaces the records of `r`'s type at `name` with `recs`.
fn set(zone: &mut Zone, name: &str, recs: Vec<Rec>) {
    let Some(first) = recs.first() else { return };
    let k = kind(first);
    let entry = zone.names.entry(crate::zone::norm(name)).or_default();
    entry.retain(|r| kind(r) != k);
    entry.extend(recs);
}

struct Outcome {
    label: String,
    problem: Option<String>,
}

fn run_file(file: &str) -> Vec<Outcome> {
    let path = dmarc_testkit::corpus(&format!("spf-mail-auth/{file}"));
    let data = std::fs::read_to_string(&path).expect("read");
    let clock = FixedClock::from_unix_seconds(1_700_000_000);
    let options = SpfOptions {
        receiver: "localdomain.org".into(),
        ..SpfOptions::default()
    };
    let mut outcomes = Vec::new();
    for (doc_no, doc) in data.split("---\n").enumerate() {
        let mut zone = Zone {
            servfail_marker: Some("_dns_error."),
            ..Zone::default()
        };
        let mut helo = String::new();
        let mut mail_from = String::new();
        let mut ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let mut name = format!("document {doc_no}");
        let mut check_no = 0;
        for raw in doc.lines() {
            let line = raw.trim();
            let line = line.strip_prefix("- ").unwrap_or(line).trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key {
                "name" => name = value.to_owned(),
                "spf" | "exp" => {
                    let (domain, txt) = value.split_once(' ').unwrap_or((value, ""));
                    set(&mut zone, domain, vec![Rec::Txt(txt.as_bytes().to_vec())]);
                }
                "a" | "aaaa" => {
                    let (domain, ips) = value.split_once(' ').expect("a: domain ips");
                    let recs = ips
                        .split(',')
                        .map(|i| {
                            let i = i.trim();
                            if key == "a" {
                                Rec::A(i.parse().expect("A"))
                            } else {
                                Rec::Aaaa(i.parse().expect("AAAA"))
                            }
                        })
                        .collect();
                    set(&mut zone, domain, recs);
                }
                "ptr" => {
                    let (addr, names) = value.split_once(' ').expect("ptr: ip names");
                    let addr: IpAddr = addr.parse().expect("ptr ip");
                    let rev = dmarc_proto::dns::reverse_name(addr);
                    let recs = names
                        .split(',')
                        .map(|n| Rec::Ptr(n.trim().to_owned()))
                        .collect();
                    set(&mut zone, &rev, recs);
                }
                "mx" => {
                    let (domain, ips) = value.split_once(' ').expect("mx: domain ips");
                    let mut recs = Vec::new();
                    for (n, i) in ips.split(',').enumerate() {
                        let i = i.trim();
                        let host = format!("mx.{i}.{n}");
                        let pref = u16::try_from(n + 1).expect("small");
                        recs.push(Rec::Mx(pref, host.clone()));
                        let addr: IpAddr = i.parse().expect("mx ip");
                        let rec = match addr {
                            IpAddr::V4(a) => Rec::A(a),
                            IpAddr::V6(a) => Rec::Aaaa(a),
                        };
                        set(&mut zone, &host, vec![rec]);
                    }
                    set(&mut zone, domain, recs);
                }
                "domain" => helo = value.to_owned(),
                "sender" => mail_from = value.to_owned(),
                "ip" => ip = value.parse().expect("ip"),
                "expect" => {
                    check_no += 1;
                    let (want, explanation) = match value.split_once(' ') {
                        Some((w, e)) => (w, Some(e)),
                        None => (value, None),
                    };
                    let want: SpfResult = want.parse().expect("result");
                    let request =
                        SpfRequest::new(ip, helo.clone()).with_mail_from(mail_from.clone());
                    zone.take_log();
                    let mut out =
                        pollster::block_on(spf::verify_helo(&zone, &clock, &options, &request));
                    let mut dups = duplicates(&zone.take_log());
                    if out.result == SpfResult::Pass {
                        out = pollster::block_on(spf::verify_mail_from(
                            &zone, &clock, &options, &request,
                        ));
                        dups = duplicates(&zone.take_log());
                    }
                    let mut problems = Vec::new();
                    if out.result != want {
                        problems.push(format!("result {} (expected {want})", out.result));
                    }
                    if let Some(e) = explanation
                        && out.explanation.as_deref() != Some(e)
                    {
                        problems.push(format!(
                            "explanation {:?} (expected {e:?})",
                            out.explanation
                        ));
                    }
                    if !dups.is_empty() {
                        problems.push(format!("repeated DNS queries: {dups:?}"));
                    }
                    let label = format!("{name} #{check_no}");
                    outcomes.push(Outcome {
                        problem: (!problems.is_empty()).then(|| {
                            format!(
                                "{file}: {label} (helo {helo}, from {mail_from}, ip {ip}): {}\n  reason: {}\n{}",
                                problems.join("; "),
                                out.reason,
                                out.trace.to_text()
                            )
                        }),
                        label,
                    });
                }
                _ => {}
            }
        }
    }
    outcomes
}

#[test]
fn mail_auth_cases() {
    let dir = dmarc_testkit::corpus("spf-mail-auth");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yml"))
        .collect();
    files.sort();
    let expected: BTreeMap<(&str, &str), &str> = EXPECTED_FAILURES
        .iter()
        .map(|(f, l, r)| ((*f, *l), *r))
        .collect();
    let mut total = 0;
    let mut unexpected = Vec::new();
    let mut now_passing = Vec::new();
    for file in &files {
        for o in run_file(file) {
            total += 1;
            let listed = expected.contains_key(&(file.as_str(), o.label.as_str()));
            match (&o.problem, listed) {
                (Some(p), false) => unexpected.push(p.clone()),
                (None, true) => now_passing.push(format!("{file}: {}", o.label)),
                _ => {}
            }
        }
    }
    for u in &unexpected {
        eprintln!("{u}");
    }
    assert_eq!(total, 163, "the mail-auth files have 163 checks");
    assert!(
        unexpected.is_empty(),
        "{} of {total} mail-auth checks failed",
        unexpected.len()
    );
    assert!(
        now_passing.is_empty(),
        "listed failures now pass; remove them: {now_passing:?}"
    );
}
