//! mail-auth's expected parse results (`reports-mail-auth/**/NNN.json`, its serde shape) as
//! field-level oracles (HOW_TO_USE.md §7). Its enum names ("Quarantine", "MailFrom",
//! "Unspecified" for absent) are mapped onto ours.

use std::path::Path;

use dmarc_report::aggregate::AggregateReport;
use dmarc_report::{FailureReport, Limits, ParsedReport, TlsReport, parse_named};
use serde_json::Value;

/// Oracle comparisons this parser does not meet, as (file, field, reason). The test fails
/// when one of them starts matching.
const EXPECTED_FAILURES: &[(&str, &str, &str)] = &[];

fn parse_one(path: &Path) -> ParsedReport {
    let bytes = std::fs::read(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let mut results = parse_named(&name, &bytes, &Limits::default());
    assert_eq!(results.len(), 1, "{}: {results:?}", path.display());
    results.remove(0).unwrap_or_else(|e| panic!("{e}")).report
}

/// Normalises an enum word of either side: lower case, no `_`, our short words spelt out,
/// absent = "unspecified".
fn word(v: Option<&str>) -> String {
    let w = v
        .unwrap_or("unspecified")
        .to_ascii_lowercase()
        .replace(['_', '-'], "");
    match w.as_str() {
        "r" => "relaxed".into(),
        "s" => "strict".into(),
        "mfrom" => "mailfrom".into(),
        "sampledout" => "other".into(),
        _ => w,
    }
}

fn s(v: &Value) -> Option<&str> {
    v.as_str()
}

struct Cmp<'a> {
    file: &'a str,
    mismatches: Vec<(String, String)>,
    checked: usize,
}

impl Cmp<'_> {
    fn eq<T: PartialEq + std::fmt::Debug>(&mut self, field: &str, ours: T, theirs: T) {
        self.checked += 1;
        if ours != theirs {
            self.mismatches.push((
                field.to_string(),
                format!(
                    "{}: {field}: ours {ours:?}, mail-auth {theirs:?}",
                    self.file
                ),
            ));
        }
    }
}

fn compare_aggregate(c: &mut Cmp<'_>, a: &AggregateReport, j: &Value) {
    let version = a
        .version
        .as_deref()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    c.eq("version", version, j["version"].as_f64().unwrap_or(0.0));
    let m = &j["report_metadata"];
    c.eq(
        "org_name",
        Some(a.metadata.org_name.as_str()),
        s(&m["org_name"]),
    );
    c.eq("email", Some(a.metadata.email.as_str()), s(&m["email"]));
    c.eq(
        "extra_contact_info",
        a.metadata.extra_contact_info.as_deref(),
        s(&m["extra_contact_info"]),
    );
    c.eq(
        "report_id",
        Some(a.metadata.report_id.as_str()),
        s(&m["report_id"]),
    );
    c.eq(
        "begin",
        Some(a.metadata.date_range.begin),
        m["date_range"]["begin"].as_i64(),
    );
    c.eq(
        "end",
        Some(a.metadata.date_range.end),
        m["date_range"]["end"].as_i64(),
    );
    let errors: Vec<&str> = m["error"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    c.eq(
        "error",
        a.metadata
            .errors
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        errors,
    );
    if !m["generator"].is_null() {
        c.eq(
            "generator",
            a.metadata.generator.as_deref(),
            s(&m["generator"]),
        );
    }
    let p = &j["policy_published"];
    let pp = &a.policy_published;
    c.eq("policy domain", Some(pp.domain.as_str()), s(&p["domain"]));
    let w = |x: Option<String>| word(x.as_deref());
    c.eq(
        "p",
        w(pp.p.as_ref().map(|v| v.to_string())),
        word(s(&p["p"])),
    );
    c.eq(
        "sp",
        w(pp.sp.as_ref().map(|v| v.to_string())),
        word(s(&p["sp"])),
    );
    if !p["np"].is_null() {
        c.eq(
            "np",
            w(pp.np.as_ref().map(|v| v.to_string())),
            word(s(&p["np"])),
        );
    }
    c.eq(
        "adkim",
        w(pp.adkim.as_ref().map(|v| v.to_string())),
        word(s(&p["adkim"])),
    );
    c.eq(
        "aspf",
        w(pp.aspf.as_ref().map(|v| v.to_string())),
        word(s(&p["aspf"])),
    );
    c.eq(
        "testing",
        pp.testing.unwrap_or(false),
        p["testing"].as_bool().unwrap_or(false),
    );
    if !p["discovery_method"].is_null() {
        c.eq(
            "discovery_method",
            w(pp.discovery_method.as_ref().map(|v| v.to_string())),
            word(s(&p["discovery_method"])),
        );
    }
    c.eq("fo", pp.fo.as_deref(), s(&p["fo"]));
    let recs = j["record"].as_array().cloned().unwrap_or_default();
    c.eq("record count", a.records.len(), recs.len());
    for (i, (r, jr)) in a.records.iter().zip(&recs).enumerate() {
        let f = |name: &str| format!("record[{i}].{name}");
        let row = &jr["row"];
        c.eq(
            &f("source_ip"),
            Some(r.source_ip.to_string()),
            s(&row["source_ip"]).map(|ip| {
                ip.parse::<std::net::IpAddr>()
                    .map_or(ip.to_string(), |x| x.to_string())
            }),
        );
        c.eq(&f("count"), Some(r.count), row["count"].as_u64());
        let pe = &row["policy_evaluated"];
        let rpe = &r.policy_evaluated;
        c.eq(
            &f("disposition"),
            w(rpe.disposition.as_ref().map(|v| v.to_string())),
            word(s(&pe["disposition"])),
        );
        c.eq(
            &f("dkim"),
            w(rpe.dkim.as_ref().map(|v| v.to_string())),
            word(s(&pe["dkim"])),
        );
        c.eq(
            &f("spf"),
            w(rpe.spf.as_ref().map(|v| v.to_string())),
            word(s(&pe["spf"])),
        );
        let reasons: Vec<(String, Option<String>)> = pe["reason"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| (word(s(&x["type_"])), s(&x["comment"]).map(str::to_string)))
                    .collect()
            })
            .unwrap_or_default();
        c.eq(
            &f("reasons"),
            rpe.reasons
                .iter()
                .map(|x| {
                    (
                        word(Some(x.kind.as_str())),
                        x.comment.as_ref().map(|c| c.to_string()),
                    )
                })
                .collect::<Vec<_>>(),
            reasons,
        );
        let id = &jr["identifiers"];
        c.eq(
            &f("header_from"),
            Some(r.identifiers.header_from.as_str()),
            s(&id["header_from"]),
        );
        c.eq(
            &f("envelope_from"),
            r.identifiers.envelope_from.as_deref().unwrap_or(""),
            s(&id["envelope_from"]).unwrap_or(""),
        );
        c.eq(
            &f("envelope_to"),
            r.identifiers.envelope_to.as_deref(),
            s(&id["envelope_to"]),
        );
        let dk: Vec<_> = jr["auth_results"]["dkim"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|d| {
                        (
                            s(&d["domain"]).unwrap_or("").to_string(),
                            s(&d["selector"]).unwrap_or("").to_string(),
                            word(s(&d["result"])),
                            s(&d["human_result"]).map(str::to_string),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let ours: Vec<_> = r
            .auth_results
            .dkim
            .iter()
            .map(|d| {
                (
                    d.domain.to_string(),
                    d.selector.as_deref().unwrap_or_default().to_string(),
                    word(Some(d.result.as_str())),
                    d.human_result.as_ref().map(|h| h.to_string()),
                )
            })
            .collect();
        c.eq(&f("auth_results.dkim"), ours, dk);
        let sp: Vec<_> = jr["auth_results"]["spf"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|d| {
                        (
                            s(&d["domain"]).unwrap_or("").to_string(),
                            word(s(&d["scope"])),
                            word(s(&d["result"])),
                            s(&d["human_result"]).map(str::to_string),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let ours: Vec<_> = r
            .auth_results
            .spf
            .iter()
            .map(|d| {
                (
                    d.domain.to_string(),
                    word(d.scope.as_ref().map(|x| x.as_str())),
                    word(Some(d.result.as_str())),
                    d.human_result.as_ref().map(|h| h.to_string()),
                )
            })
            .collect();
        c.eq(&f("auth_results.spf"), ours, sp);
        let ext = |v: &Value| -> Vec<(String, Option<String>)> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .map(|e| {
                            (
                                s(&e["name"]).unwrap_or("").to_string(),
                                s(&e["definition"]).map(str::to_string),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        c.eq(
            &f("extensions"),
            r.extensions
                .iter()
                .map(|e| (e.name.clone(), e.definition.clone()))
                .collect::<Vec<_>>(),
            ext(&jr["extensions"]),
        );
    }
    c.eq(
        "extensions",
        a.extensions
            .iter()
            .map(|e| (e.name.clone(), e.definition.clone()))
            .collect::<Vec<_>>(),
        j["extensions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| {
                        (
                            s(&e["name"]).unwrap_or("").to_string(),
                            s(&e["definition"]).map(str::to_string),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
    );
}

/// Header sections compared without line-ending or trailing-blank differences.
fn norm_headers(h: &str) -> String {
    h.replace("\r\n", "\n").trim_end().to_string()
}

fn compare_failure(c: &mut Cmp<'_>, f: &FailureReport, j: &Value) {
    c.eq(
        "feedback_type",
        word(f.feedback_type.as_ref().map(|x| x.as_str())),
        word(s(&j["feedback_type"])),
    );
    c.eq(
        "arrival_date",
        f.arrival_timestamp,
        j["arrival_date"].as_i64(),
    );
    c.eq(
        "authentication_results",
        f.authentication_results.clone(),
        j["authentication_results"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
    );
    c.eq(
        "incidents",
        f.incidents.unwrap_or(1),
        j["incidents"].as_u64().unwrap_or(1),
    );
    c.eq(
        "original_envelope_id",
        f.original_envelope_id.as_deref(),
        s(&j["original_envelope_id"]),
    );
    c.eq(
        "original_mail_from",
        f.original_mail_from.as_deref(),
        s(&j["original_mail_from"]),
    );
    c.eq(
        "original_rcpt_to",
        f.original_rcpt_to.first().map(String::as_str),
        s(&j["original_rcpt_to"]),
    );
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    c.eq(
        "reported_domain",
        f.reported_domain.clone(),
        list(&j["reported_domain"]),
    );
    c.eq(
        "reported_uri",
        f.reported_uri.clone(),
        list(&j["reported_uri"]),
    );
    c.eq(
        "reporting_mta",
        f.reporting_mta.as_deref(),
        s(&j["reporting_mta"]),
    );
    c.eq(
        "source_ip",
        f.source_ip.map(|ip| ip.to_string()),
        s(&j["source_ip"]).map(str::to_string),
    );
    c.eq("user_agent", f.user_agent.as_deref(), s(&j["user_agent"]));
    c.eq(
        "version",
        f.version
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(1),
        j["version"].as_u64().unwrap_or(1),
    );
    c.eq(
        "source_port",
        f.source_port.unwrap_or(0),
        u16::try_from(j["source_port"].as_u64().unwrap_or(0)).unwrap(),
    );
    c.eq(
        "auth_failure",
        word(f.auth_failure.as_ref().map(|x| x.as_str())),
        word(s(&j["auth_failure"])),
    );
    c.eq(
        "delivery_result",
        word(f.delivery_result.as_ref().map(|x| x.as_str())),
        word(s(&j["delivery_result"])),
    );
    for (field, ours) in [
        ("dkim_adsp_dns", &f.dkim_adsp_dns),
        ("dkim_canonicalized_body", &f.dkim_canonicalized_body),
        ("dkim_canonicalized_header", &f.dkim_canonicalized_header),
        ("dkim_domain", &f.dkim_domain),
        ("dkim_identity", &f.dkim_identity),
        ("dkim_selector", &f.dkim_selector),
        ("dkim_selector_dns", &f.dkim_selector_dns),
        ("spf_dns", &f.spf_dns),
    ] {
        c.eq(field, ours.as_deref(), s(&j[field]));
    }
    let ia = f.identity_alignment.map_or("unspecified".to_string(), |a| {
        a.as_str().replace([',', ' '], "")
    });
    c.eq("identity_alignment", ia, word(s(&j["identity_alignment"])));
    // mail-auth keeps text/rfc822-headers in "headers" and a message/rfc822 in "message";
    // we keep the header section of either.
    let theirs = s(&j["headers"]).map(norm_headers).or_else(|| {
        s(&j["message"]).map(|m| {
            let m = m.replace("\r\n", "\n");
            norm_headers(m.split("\n\n").next().unwrap_or(""))
        })
    });
    // mail-auth leaves both null when it reads the message/rfc822 part as a nested message
    // (001-003); we keep its header section, so only its non-null values are oracles.
    if theirs.is_some() {
        c.eq(
            "original headers",
            f.original_headers.as_deref().map(norm_headers),
            theirs,
        );
    }
}

fn run_dir(dir: &str, ext: &str, c_all: &mut Vec<(String, String, String)>) -> usize {
    let root = dmarc_testkit::corpus(dir);
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    let mut checked = 0;
    for input in files {
        let oracle = input.with_extension("json");
        if !oracle.exists() {
            continue;
        }
        let j: Value = serde_json::from_slice(&std::fs::read(&oracle).unwrap()).unwrap();
        let file = format!("{dir}/{}", input.file_name().unwrap().to_string_lossy());
        let mut c = Cmp {
            file: &file,
            mismatches: Vec::new(),
            checked: 0,
        };
        match parse_one(&input) {
            ParsedReport::Aggregate(a) => compare_aggregate(&mut c, &a, &j),
            ParsedReport::Failure(f) => compare_failure(&mut c, &f, &j),
            ParsedReport::SmtpTls(_) => panic!("{file}: unexpected TLS report"),
        }
        checked += c.checked;
        for (field, msg) in c.mismatches {
            c_all.push((file.clone(), field, msg));
        }
    }
    checked
}

fn settle(mismatches: Vec<(String, String, String)>) {
    let mut unexpected = Vec::new();
    for (file, field, msg) in &mismatches {
        if !EXPECTED_FAILURES
            .iter()
            .any(|(f, fl, _)| f == file && fl == field)
        {
            unexpected.push(msg.clone());
        }
    }
    assert!(
        unexpected.is_empty(),
        "oracle mismatches:\n{}",
        unexpected.join("\n")
    );
}

#[test]
fn mail_auth_dmarc_feedback_oracle() {
    let mut mism = Vec::new();
    let n = run_dir("reports-mail-auth/dmarc-feedback", "xml", &mut mism)
        + run_dir("reports-mail-auth/dmarc-feedback", "eml", &mut mism);
    eprintln!("aggregate oracle fields compared: {n}");
    assert!(n > 300, "too few comparisons: {n}");
    settle(mism);
}

#[test]
fn mail_auth_arf_oracle() {
    let mut mism = Vec::new();
    let n = run_dir("reports-mail-auth/arf", "eml", &mut mism);
    eprintln!("failure oracle fields compared: {n}");
    assert!(n > 100, "too few comparisons: {n}");
    settle(mism);
}

#[test]
fn expected_failures_are_still_failing() {
    let mut mism = Vec::new();
    run_dir("reports-mail-auth/dmarc-feedback", "xml", &mut mism);
    run_dir("reports-mail-auth/dmarc-feedback", "eml", &mut mism);
    run_dir("reports-mail-auth/arf", "eml", &mut mism);
    for (f, fl, why) in EXPECTED_FAILURES {
        assert!(
            mism.iter().any(|(a, b, _)| a == f && b == fl),
            "{f} {fl} is listed as an expected failure ({why}) but now matches: remove it"
        );
    }
}

/// Each TLS report email parses to the JSON report of the same stem.
#[test]
fn mail_auth_tlsrpt_eml_equals_json() {
    let dir = dmarc_testkit::corpus("reports-mail-auth/tlsrpt");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "eml") {
            continue;
        }
        let from_eml = parse_one(&p);
        let from_json = parse_one(&p.with_extension("json"));
        let (ParsedReport::SmtpTls(a), ParsedReport::SmtpTls(b)) = (from_eml, from_json) else {
            panic!("{}: not TLS reports", p.display());
        };
        let strip = |mut t: TlsReport| {
            t.warnings.clear();
            t
        };
        assert_eq!(strip(a), strip(b), "{}", p.display());
        n += 1;
    }
    assert_eq!(n, 2);
}
