//! DMARC conformance from `../shared/corpora/dmarc-eval-tables` (HOW_TO_USE §5): the
//! evaluation cases, the record cases and the misc cases (alignment, From domains,
//! Organizational Domains with the old and the current Public Suffix List, external report
//! destinations). Each case runs in every mode its `rfc` field names.
//!
//! Implementation choices the tables flag with a `note` are configured per source project,
//! the way that project behaves (see [`options_for`]): mailauth declines a From field with
//! several addresses, authheaders evaluates each Author Domain. Both are options of
//! [`AuthorOptions`]; nothing else differs between projects.
//!
//! A case we decide differently, with the RFC section that says why, is listed in
//! `EXPECTED_FAILURES`; the test fails if a listed case starts passing.

mod dmarc_support;

use dmarc_proto::dmarc::{
    self, AlignmentMode, AuthResult, AuthorOptions, DkimIdentity, DmarcOptions, DmarcOutput,
    DomainName, MultipleAddresses, Psl, PslSections, RecordSet, ReportKind, Spec, SpfIdentity,
};
use dmarc_support::{Zone, table, txt_rr};
use futures_executor::block_on;
use serde_json::Value;

/// (case id, mode, reason). Mode is "7489", "9989" or "*".
const EXPECTED_FAILURES: &[(&str, &str, &str)] = &[
    (
        "authheaders/bad-record-syntax",
        "*",
        "RFC 9989 §4.8 (and RFC 7489 §6.3): a syntax error in the remainder of the record \
         (\"reject\" without '=') is discarded, so p=none applies and the result is fail; \
         authheaders reports permerror (the table notes this is implementation-divergent)",
    ),
    (
        "opendmarc/parse/5",
        "*",
        "RFC 9989 §4.8 ABNF dmarc-request: \"p=n\" is not a policy; with no rua the record \
         is not usable (§4.10.1). OpenDMARC's abbreviation is a quirk (HOW_TO_USE §5.2)",
    ),
    (
        "mail-auth/parse/5",
        "*",
        "RFC 3986 §2.1 / RFC 6068 §2: \"mailto:user%20@example.com\" percent-decodes to \
         \"user @example.com\"; mail-auth drops the encoded space (the table notes this is \
         implementation-specific)",
    ),
    (
        "opendmarc/alignment/5",
        "*",
        "RFC 1035 §2.3.1 / RFC 5322 §3.4.1: \".mac.com.\" has an empty label and is not a \
         domain name, so it aligns with nothing; OpenDMARC strips the dots (noted as \
         implementation-specific)",
    ),
    (
        "opendmarc/alignment/6",
        "*",
        "RFC 1035 §2.3.1 / RFC 5322 §3.4.1: \"....mac.com....\" has empty labels and is not a \
         domain name; OpenDMARC strips the dots (noted as implementation-specific)",
    ),
];

struct Outcome {
    failures: Vec<String>,
    unexpected_passes: Vec<String>,
    checked: usize,
}

impl Outcome {
    fn new() -> Self {
        Outcome {
            failures: Vec::new(),
            unexpected_passes: Vec::new(),
            checked: 0,
        }
    }

    fn record(&mut self, id: &str, mode: &str, problems: Vec<String>) {
        self.checked += 1;
        let listed = EXPECTED_FAILURES
            .iter()
            .any(|(i, m, _)| *i == id && (*m == "*" || *m == mode));
        match (problems.is_empty(), listed) {
            (true, true) => self
                .unexpected_passes
                .push(format!("{id} [{mode}] passes but is in EXPECTED_FAILURES")),
            (false, false) => self
                .failures
                .push(format!("{id} [{mode}]: {}", problems.join("; "))),
            _ => {}
        }
    }

    fn finish(self, suite: &str, expected_count: usize) {
        let mut msg = String::new();
        for f in self.failures.iter().chain(&self.unexpected_passes) {
            msg.push_str(f);
            msg.push('\n');
        }
        assert!(msg.is_empty(), "{suite}:\n{msg}");
        assert_eq!(self.checked, expected_count, "{suite}: number of runs");
    }
}

fn modes(case: &Value) -> Vec<(&'static str, Spec)> {
    let rfcs: Vec<&str> = case["rfc"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut out = Vec::new();
    if rfcs.contains(&"7489") {
        out.push(("7489", Spec::Rfc7489));
    }
    if rfcs.contains(&"9989") {
        out.push(("9989", Spec::Rfc9989));
    }
    out
}

/// The options emulating the source project's documented choices for several From
/// addresses (HOW_TO_USE §5.1 notes); the defaults otherwise.
fn options_for(case: &Value, spec: Spec) -> DmarcOptions {
    let project = case["source"]["project"].as_str().unwrap_or_default();
    let multiple_addresses = match project {
        "mailauth-js" => MultipleAddresses::Decline,
        "authheaders" => MultipleAddresses::EvaluateEach,
        _ => MultipleAddresses::SameDomainOnly,
    };
    DmarcOptions {
        spec,
        author: AuthorOptions {
            multiple_addresses,
            ..AuthorOptions::default()
        },
        ..DmarcOptions::default()
    }
}

fn identities(v: &Value) -> Vec<(String, AuthResult)> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|i| {
                    (
                        i["domain"].as_str().unwrap().to_owned(),
                        i["result"].as_str().unwrap().parse().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn check_evaluation(case: &Value, out: &DmarcOutput, queries: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut pairs: Vec<(&str, String, String)> = Vec::new();
    let mut expect_eq = |what: &'static str, got: String, want: String| {
        pairs.push((what, got, want));
    };
    let s = |v: &Value| match v {
        Value::Null => "null".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let opt = |o: Option<String>| o.unwrap_or_else(|| "null".into());
    for (key, want) in case["expect"].as_object().unwrap() {
        match key.as_str() {
            "dmarc" => {
                let got = if out.declined {
                    "not-evaluated".to_owned()
                } else {
                    out.result.as_str().to_owned()
                };
                expect_eq("dmarc", got, s(want));
            }
            "policy" => expect_eq(
                "policy",
                opt(out.applied_policy.map(|p| p.to_string())),
                s(want),
            ),
            "policy_domain" => expect_eq(
                "policy_domain",
                opt(out.policy_domain.as_ref().map(|d| d.to_string())),
                s(want),
            ),
            "org_domain" => expect_eq(
                "org_domain",
                opt(out.org_domain.as_ref().map(|d| d.to_string())),
                s(want),
            ),
            "header_from_domain" => expect_eq(
                "header_from_domain",
                opt(out.author_domain.clone()),
                s(want),
            ),
            "dkim_aligned" => expect_eq("dkim_aligned", out.dkim_aligned().to_string(), s(want)),
            "spf_aligned" => expect_eq("spf_aligned", out.spf_aligned().to_string(), s(want)),
            "spf_aligned_domain" => expect_eq(
                "spf_aligned_domain",
                opt(out
                    .spf
                    .iter()
                    .find(|a| a.aligned)
                    .and_then(|a| a.alignment_domain.as_ref().map(|d| d.to_string()))),
                s(want),
            ),
            "dkim_mode" => expect_eq("dkim_mode", out.dkim_mode.to_string(), s(want)),
            "spf_mode" => expect_eq("spf_mode", out.spf_mode.to_string(), s(want)),
            "record_found" => expect_eq("record_found", out.record.is_some().to_string(), s(want)),
            "record" => match &out.record {
                None => problems.push("record: none was used".into()),
                Some(r) => {
                    for (tag, v) in want.as_object().unwrap() {
                        let got = match tag.as_str() {
                            "p" => r.p.to_string(),
                            "sp" => r.subdomain_policy().to_string(),
                            "np" => r.nonexistent_policy().to_string(),
                            "pct" => r.pct.unwrap_or(100).to_string(),
                            other => panic!("unknown record key {other}"),
                        };
                        if got != s(v) {
                            problems.push(format!("record.{tag}: got {got}, expected {}", s(v)));
                        }
                    }
                }
            },
            "dmarc_txt_queries" => {
                let want: Vec<String> = want
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect();
                if queries != want.as_slice() {
                    problems.push(format!(
                        "dmarc_txt_queries: got {queries:?}, expected {want:?}"
                    ));
                }
            }
            other => panic!("unknown expect key {other}"),
        }
    }
    for (what, got, want) in pairs {
        if got != want {
            problems.push(format!("{what}: got {got}, expected {want}"));
        }
    }
    problems
}

#[test]
fn evaluation_cases() {
    let t = table("dmarc-eval-tables/dmarc-evaluation-cases.json");
    let mut outcome = Outcome::new();
    let mut runs = 0;
    for case in t["cases"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        for (mode, spec) in modes(case) {
            runs += 1;
            let zone = Zone::from_json(&case["dns"], case["dns_default"].as_str().unwrap());
            let input = &case["input"];
            let from = match &input["header_from"] {
                Value::String(s) => s.clone(),
                Value::Array(list) => list
                    .iter()
                    .map(|v| v.as_str().unwrap())
                    .collect::<Vec<_>>()
                    .join(", "),
                other => panic!("{id}: header_from {other}"),
            };
            let spf: Vec<SpfIdentity> = identities(&input["spf"])
                .into_iter()
                .map(|(d, r)| SpfIdentity::new(d, r))
                .collect();
            let dkim: Vec<DkimIdentity> = identities(&input["dkim"])
                .into_iter()
                .map(|(d, r)| DkimIdentity::new(d, r))
                .collect();
            let options = options_for(case, spec);
            let out = block_on(dmarc::evaluate_message(
                &zone,
                &[from.as_bytes()],
                &spf,
                &dkim,
                None,
                &options,
            ));
            assert!(!out.reason.is_empty(), "{id}: empty reason");
            assert_eq!(out.spec, spec);
            let problems = check_evaluation(case, &out, &zone.dmarc_queries());
            outcome.record(id, mode, problems);
        }
    }
    // 87 cases: 72 in both modes, 14 RFC 9989 only, 1 RFC 7489 only.
    outcome.finish("dmarc-evaluation-cases", 159);
    assert_eq!(runs, 159);
}

fn check_record(case: &Value, spec: Spec) -> Vec<String> {
    let mut problems = Vec::new();
    let rrs: Vec<Vec<u8>> = case["txt"].as_array().unwrap().iter().map(txt_rr).collect();
    let set = dmarc::record::select_record(&rrs, spec);
    let expect = &case["expect"];
    let strict = expect.get("opendmarc_status").is_some() || expect.get("linter_error").is_some();
    let valid = match &set {
        RecordSet::Found(p) => !strict || p.is_clean(),
        _ => false,
    };
    let want_valid = expect["valid"].as_bool().unwrap();
    if valid != want_valid {
        let detail = match &set {
            RecordSet::Found(p) => p
                .diagnostics
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(" | "),
            other => format!("{other:?}"),
        };
        problems.push(format!(
            "valid: got {valid}, expected {want_valid} ({})",
            if strict {
                "linter view"
            } else {
                "receiver view"
            }
        ));
        problems.push(detail);
    }
    let RecordSet::Found(parsed) = &set else {
        return problems;
    };
    let r = &parsed.record;
    if let Some(tags) = expect.get("tags").and_then(Value::as_object) {
        for (tag, want) in tags {
            let got: Value = match tag.as_str() {
                "v" => "DMARC1".into(),
                "p" => r.p.as_str().into(),
                "sp" => r.subdomain_policy().as_str().into(),
                "np" => r.nonexistent_policy().as_str().into(),
                "adkim" => (if r.adkim == AlignmentMode::Strict {
                    "s"
                } else {
                    "r"
                })
                .into(),
                "aspf" => (if r.aspf == AlignmentMode::Strict {
                    "s"
                } else {
                    "r"
                })
                .into(),
                "fo" => r.fo.iter().map(|f| Value::from(f.as_str())).collect(),
                "psd" => r.psd.as_str().into(),
                "t" => (if r.testing { "y" } else { "n" }).into(),
                "pct" => r.pct.map_or(Value::Null, Value::from),
                "ri" => r.ri.map_or(Value::Null, Value::from),
                "rua" | "ruf" => {
                    let list = if tag == "rua" { &r.rua } else { &r.ruf };
                    list.iter()
                        .map(|u| {
                            serde_json::json!({
                                "address": u.address.clone().unwrap_or_default(),
                                "max_size": u.max_size,
                            })
                        })
                        .collect()
                }
                other => panic!("unknown tag key {other}"),
            };
            if &got != want {
                problems.push(format!("tags.{tag}: got {got}, expected {want}"));
            }
        }
    }
    if let Some(ignored) = expect.get("ignored_tags").and_then(Value::as_array) {
        for t in ignored {
            let t = t.as_str().unwrap();
            if !parsed.ignored_tags.iter().any(|i| i == t) {
                problems.push(format!(
                    "ignored_tags: {t} not ignored (ignored: {:?})",
                    parsed.ignored_tags
                ));
            }
        }
    }
    problems
}

#[test]
fn record_cases() {
    let t = table("dmarc-eval-tables/dmarc-record-cases.json");
    let mut outcome = Outcome::new();
    let mut runs = 0;
    for case in t["cases"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        for (mode, spec) in modes(case) {
            runs += 1;
            outcome.record(id, mode, check_record(case, spec));
        }
    }
    // 70 cases, 121 runs (51 in both modes, 12 RFC 9989 only, 7 RFC 7489 only).
    outcome.finish("dmarc-record-cases", 121);
    assert_eq!(runs, 121);
}

fn old_psl() -> Psl {
    Psl::parse(
        &std::fs::read_to_string(dmarc_testkit::corpus(
            "psl-opendmarc-old/effective_tld_names.dat",
        ))
        .unwrap(),
    )
}

#[test]
fn misc_alignment_cases() {
    let t = table("dmarc-eval-tables/dmarc-misc-cases.json");
    let old = old_psl();
    let lists: [(&str, &Psl); 2] = [("old", &old), ("current", Psl::builtin())];
    let mut outcome = Outcome::new();
    for case in t["alignment_cases"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let mode = match case["mode"].as_str().unwrap() {
            "strict" => AlignmentMode::Strict,
            _ => AlignmentMode::Relaxed,
        };
        let want = case["expect_aligned"].as_bool().unwrap();
        let mut problems = Vec::new();
        for (name, psl) in lists {
            let got = match (
                DomainName::new(case["from_domain"].as_str().unwrap()),
                DomainName::new(case["auth_domain"].as_str().unwrap()),
            ) {
                (Ok(a), Ok(b)) => dmarc::psl_aligned(psl, PslSections::All, &a, &b, mode),
                _ => false,
            };
            if got != want {
                problems.push(format!("{name} list: got {got}, expected {want}"));
            }
        }
        outcome.record(id, "*", problems);
    }
    outcome.finish("alignment_cases", 10);
}

#[test]
fn misc_from_domain_cases() {
    let t = table("dmarc-eval-tables/dmarc-misc-cases.json");
    let mut outcome = Outcome::new();
    let opts = AuthorOptions::default();
    for case in t["from_domain_cases"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let input = case["input"].as_str().unwrap();
        let want = case["expect_domain"].as_str().unwrap();
        let got = dmarc::author_domains(&[input.as_bytes()], &opts)
            .map(|a| a.domains[0].to_string())
            .unwrap_or_else(|e| format!("error: {e}"));
        let problems = if got == want {
            vec![]
        } else {
            vec![format!("got {got}, expected {want}")]
        };
        outcome.record(id, "*", problems);
    }
    outcome.finish("from_domain_cases", 17);
}

#[test]
fn misc_org_domain_cases() {
    let t = table("dmarc-eval-tables/dmarc-misc-cases.json");
    let old = old_psl();
    let mut outcome = Outcome::new();
    for case in t["org_domain_cases"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let domain = DomainName::new(case["domain"].as_str().unwrap()).unwrap();
        let mut problems = Vec::new();
        let runs = [
            (
                "old list",
                &old,
                PslSections::All,
                "expect_org_domain_with_old_list",
            ),
            (
                "current list, both sections",
                Psl::builtin(),
                PslSections::All,
                "expect_org_domain_with_current_psl",
            ),
            (
                "current list, ICANN section",
                Psl::builtin(),
                PslSections::Icann,
                "expect_org_domain_with_current_psl",
            ),
        ];
        for (name, psl, sections, key) in runs {
            let got = dmarc::psl_organizational_domain(psl, sections, &domain);
            let want = case[key].as_str().unwrap();
            if got.as_str() != want {
                problems.push(format!("{name}: got {got}, expected {want}"));
            }
        }
        outcome.record(id, "*", problems);
    }
    outcome.finish("org_domain_cases", 3);
}

#[test]
fn misc_external_destination_cases() {
    let t = table("dmarc-eval-tables/dmarc-misc-cases.json");
    let mut outcome = Outcome::new();
    for case in t["external_destination_cases"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let zone = Zone::from_json(&case["dns"], case["dns_default"].as_str().unwrap());
        let policy_domain = DomainName::new(case["policy_domain"].as_str().unwrap()).unwrap();
        let uris: Vec<_> = case["rua"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| dmarc::record::parse_report_uri(u.as_str().unwrap()).unwrap())
            .collect();
        let checks = block_on(dmarc::verify_external_destinations(
            &zone,
            &policy_domain,
            &policy_domain,
            &uris,
            ReportKind::Aggregate,
        ));
        let got: Vec<String> = checks
            .iter()
            .filter(|(_, c)| c.may_send())
            .map(|(u, _)| u.uri.clone())
            .collect();
        let want: Vec<String> = case["expect_authorized"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        let mut problems = Vec::new();
        if got != want {
            problems.push(format!("authorized: got {got:?}, expected {want:?}"));
        }
        let asked: Vec<String> = zone.queries().into_iter().map(|(_, n)| n).collect();
        if asked
            != [
                "example.org._report._dmarc.external.org",
                "example.org._report._dmarc.other.org",
            ]
        {
            problems.push(format!("queries: {asked:?}"));
        }
        outcome.record(id, "*", problems);
    }
    outcome.finish("external_destination_cases", 1);
}
