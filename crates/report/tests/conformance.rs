//! Every sample in `REPORTS_CATALOG.yaml` meets its `expected` entry (HOW_TO_USE.md §7).

use dmarc_report::{Limits, ParsedReport, parse_named};
use serde_yaml::Value;

/// Catalogue entries this parser does not meet, with the reason. The test fails when one of
/// them starts passing, so the list stays true.
const EXPECTED_FAILURES: &[(&str, &str)] = &[];

fn catalogue() -> Value {
    let path = dmarc_testkit::corpus("REPORTS_CATALOG.yaml");
    let text = std::fs::read_to_string(path).expect("read catalogue");
    serde_yaml::from_str(&text).expect("catalogue is YAML")
}

/// Checks one catalogue entry; `Err` describes how it was not met.
fn check(section: &str, entry: &Value) -> Result<String, String> {
    let file = entry["file"].as_str().ok_or("entry without file")?;
    let expected = entry["expected"].as_str().unwrap_or("parse");
    let bytes = std::fs::read(dmarc_testkit::corpus(file)).map_err(|e| e.to_string())?;
    let results = parse_named(file, &bytes, &Limits::default());
    if results.is_empty() {
        return Err("no result at all".into());
    }
    let either = expected.contains("tolerate or reject");
    if expected.starts_with("reject") {
        return if results.iter().any(Result::is_err) {
            Ok("rejected".into())
        } else {
            Err("expected an error, got a report".into())
        };
    }
    let mut reports = Vec::new();
    for r in &results {
        match r {
            Ok(p) => reports.push(p),
            Err(e) if either => return Ok(format!("rejected cleanly: {e}")),
            Err(e) => return Err(format!("error: {e}")),
        }
    }
    let want_kind = match section {
        "aggregate" => "aggregate",
        "failure" => "failure",
        "smtp_tls" => "smtp_tls",
        other => return Err(format!("unknown catalogue section {other}")),
    };
    for p in &reports {
        if p.report.kind() != want_kind {
            return Err(format!("parsed as {}, not {want_kind}", p.report.kind()));
        }
    }
    if let Some(n) = entry["records"].as_u64() {
        let got: usize = reports
            .iter()
            .map(|p| match &p.report {
                ParsedReport::Aggregate(a) => a.records.len(),
                _ => 0,
            })
            .sum();
        if either {
            // Tolerated damaged input: what was lost must be said.
            let warned = reports.iter().all(|p| !p.report.warnings().is_empty());
            if got as u64 != n && !warned {
                return Err(format!("{got} of {n} records and no warning"));
            }
        } else if got as u64 != n {
            return Err(format!("{got} records, catalogue says {n}"));
        }
    }
    if let Some(reporter) = entry["reporter"].as_str() {
        for p in &reports {
            let name = match &p.report {
                ParsedReport::Aggregate(a) => a.metadata.org_name.clone(),
                ParsedReport::SmtpTls(t) => t.organization_name.clone(),
                ParsedReport::Failure(_) => continue,
            };
            // The catalogue writes e.g. "163.com (NetEase)" for org_name "163.com".
            // Compared without case and punctuation (the catalogue paraphrases).
            let norm = |s: &str| -> String {
                s.chars()
                    .filter(|c| c.is_alphanumeric() || *c == '.')
                    .collect::<String>()
                    .to_lowercase()
            };
            let bare = norm(reporter.split(" (").next().unwrap_or(reporter));
            let name_n = norm(&name);
            if !name_n.contains(&bare) && !norm(reporter).contains(&name_n) {
                return Err(format!("org name {name:?}, catalogue says {reporter:?}"));
            }
        }
    }
    Ok(format!("{} report(s)", reports.len()))
}

#[test]
fn reports_catalogue() {
    let cat = catalogue();
    let mut failures = Vec::new();
    let mut unexpected_passes = Vec::new();
    let mut counts = std::collections::BTreeMap::new();
    for section in ["aggregate", "failure", "smtp_tls"] {
        let entries = cat[section].as_sequence().expect("section list");
        assert!(!entries.is_empty(), "catalogue section {section} is empty");
        for entry in entries {
            let file = entry["file"].as_str().unwrap_or("?").to_string();
            let listed = EXPECTED_FAILURES.iter().find(|(f, _)| *f == file);
            let outcome = check(section, entry);
            *counts.entry(section).or_insert(0) += 1;
            if let Ok(how) = &outcome {
                eprintln!("{file}: {how}");
            }
            match (outcome, listed) {
                (Ok(_), Some(_)) => unexpected_passes.push(file),
                (Err(e), None) => failures.push(format!("{file}: {e}")),
                _ => {}
            }
        }
    }
    eprintln!("catalogue entries checked: {counts:?}");
    assert!(
        failures.is_empty(),
        "catalogue failures:\n{}",
        failures.join("\n")
    );
    assert!(
        unexpected_passes.is_empty(),
        "listed as expected failures but now pass (remove them): {unexpected_passes:?}"
    );
}

/// The two RFC 9990 samples shipped beside the schemas.
#[test]
fn xsd_directory_samples() {
    for (file, records, generator) in [
        (
            "dmarc-xsd/rfc9990-appendix-b-sample.xml",
            1,
            Some("Example DMARC Aggregate Reporter v1.2"),
        ),
        ("dmarc-xsd/rfc9990-draft-alt-sample.xml", 1, None),
    ] {
        let bytes = std::fs::read(dmarc_testkit::corpus(file)).unwrap();
        let r = dmarc_report::parse_aggregate_xml(&bytes, &Limits::default())
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(r.records.len(), records, "{file}");
        if let Some(g) = generator {
            assert_eq!(r.metadata.generator.as_deref(), Some(g), "{file}");
        }
        assert!(r.warnings.is_empty(), "{file}: {:?}", r.warnings);
    }
}

/// The RFC 9990 Appendix B values (catalogue: np=none, discovery_method=treewalk, testing=n).
#[test]
fn rfc9990_appendix_b_values() {
    use dmarc_report::aggregate::{DiscoveryMethod, Disposition};
    let bytes = std::fs::read(dmarc_testkit::corpus(
        "reports-mail-auth/dmarc-feedback/004.xml",
    ))
    .unwrap();
    let r = dmarc_report::parse_aggregate_xml(&bytes, &Limits::default()).unwrap();
    assert_eq!(r.policy_published.np, Some(Disposition::None));
    assert_eq!(
        r.policy_published.discovery_method,
        Some(DiscoveryMethod::Treewalk)
    );
    assert_eq!(r.policy_published.testing, Some(false));
    assert_eq!(
        r.metadata.generator.as_deref(),
        Some("Example DMARC Aggregate Reporter v1.2")
    );
}
