//! Hostile input: bombs, deep nesting, huge entry counts, truncation, garbage. Every case
//! must give a clear error naming the problem, never a panic or an empty report.

use std::io::Write;

use dmarc_report::{LimitKind, Limits, ReportError, parse, parse_named};
use proptest::prelude::*;

pub(crate) const SMALL_REPORT: &str = r#"<?xml version="1.0"?>
<feedback>
  <report_metadata>
    <org_name>example.net</org_name><email>dmarc@example.net</email>
    <report_id>r1</report_id>
    <date_range><begin>1700000000</begin><end>1700086399</end></date_range>
  </report_metadata>
  <policy_published><domain>example.com</domain><p>reject</p></policy_published>
  <record>
    <row><source_ip>192.0.2.1</source_ip><count>2</count>
      <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>fail</spf></policy_evaluated>
    </row>
    <identifiers><header_from>example.com</header_from></identifiers>
    <auth_results><dkim><domain>example.com</domain><selector>s1</selector><result>pass</result></dkim></auth_results>
  </record>
</feedback>
"#;

pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub(crate) fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn single_err(results: Vec<Result<dmarc_report::Parsed, ReportError>>) -> ReportError {
    assert_eq!(results.len(), 1, "{results:?}");
    match results.into_iter().next().unwrap() {
        Err(e) => e,
        Ok(p) => panic!("expected an error, got {p:?}"),
    }
}

fn limit_kind(e: &ReportError) -> Option<LimitKind> {
    match e {
        ReportError::Limit { kind, .. } => Some(*kind),
        _ => None,
    }
}

#[test]
fn gzip_bomb_hits_the_ratio_limit() {
    let bomb = gzip(&vec![b' '; 16 << 20]);
    let e = single_err(parse_named("bomb.xml.gz", &bomb, &Limits::default()));
    assert_eq!(limit_kind(&e), Some(LimitKind::CompressionRatio), "{e}");
    assert!(e.to_string().contains("max_compression_ratio"), "{e}");
    assert!(e.to_string().starts_with("bomb.xml.gz"), "{e}");
}

#[test]
fn zip_bomb_hits_the_ratio_limit() {
    let zeros = vec![0u8; 16 << 20];
    let bomb = zip_of(&[("a.xml", &zeros)]);
    let e = single_err(parse(&bomb, &Limits::default()));
    assert_eq!(limit_kind(&e), Some(LimitKind::CompressionRatio), "{e}");
    assert!(e.to_string().contains("a.xml"), "names the entry: {e}");
}

#[test]
fn decompressed_size_limit() {
    let limits = Limits {
        max_decompressed_size: 1000,
        ..Limits::default()
    };
    let big = SMALL_REPORT.repeat(2);
    let e = single_err(parse(&gzip(big.as_bytes()), &limits));
    assert_eq!(limit_kind(&e), Some(LimitKind::DecompressedSize), "{e}");
}

#[test]
fn too_many_zip_entries() {
    let names: Vec<String> = (0..20).map(|i| format!("r{i}.xml")).collect();
    let entries: Vec<(&str, &[u8])> = names
        .iter()
        .map(|n| (n.as_str(), SMALL_REPORT.as_bytes()))
        .collect();
    let z = zip_of(&entries);
    let limits = Limits {
        max_entries: 10,
        ..Limits::default()
    };
    let e = single_err(parse(&z, &limits));
    assert_eq!(limit_kind(&e), Some(LimitKind::Entries), "{e}");
    // Within the limit every entry gives its own report.
    let ok = parse(&z, &Limits::default());
    assert_eq!(ok.len(), 20);
    assert!(ok.iter().all(Result::is_ok));
}

#[test]
fn nested_containers_hit_the_nesting_limit() {
    let mut data = SMALL_REPORT.as_bytes().to_vec();
    for _ in 0..12 {
        data = gzip(&data);
    }
    let e = single_err(parse_named("deep.gz", &data, &Limits::default()));
    assert_eq!(limit_kind(&e), Some(LimitKind::Nesting), "{e}");
    // Three levels are fine.
    let mut data = SMALL_REPORT.as_bytes().to_vec();
    for _ in 0..3 {
        data = gzip(&data);
    }
    assert!(parse(&data, &Limits::default())[0].is_ok());
}

#[test]
fn deep_xml_hits_the_depth_limit() {
    let mut xml = String::from("<feedback>");
    for _ in 0..100_000 {
        xml.push_str("<a>");
    }
    let e = single_err(parse(xml.as_bytes(), &Limits::default()));
    assert_eq!(limit_kind(&e), Some(LimitKind::XmlDepth), "{e}");
    assert!(e.to_string().contains("line 1"), "{e}");
}

#[test]
fn record_limit() {
    let limits = Limits {
        max_records: 0,
        ..Limits::default()
    };
    let e = single_err(parse(SMALL_REPORT.as_bytes(), &limits));
    assert_eq!(limit_kind(&e), Some(LimitKind::Records), "{e}");
}

#[test]
fn input_size_limit() {
    let limits = Limits {
        max_input_size: 10,
        ..Limits::default()
    };
    let e = single_err(parse(SMALL_REPORT.as_bytes(), &limits));
    assert_eq!(limit_kind(&e), Some(LimitKind::InputSize), "{e}");
}

/// Issue 9: the decompression limits hold over all the members of a gzip file together.
#[test]
fn multi_member_gzip_bomb_hits_the_limits() {
    let member = gzip(&vec![b' '; 4 << 20]);
    let many: Vec<u8> = std::iter::repeat_n(member.as_slice(), 8)
        .flatten()
        .copied()
        .collect();
    let limits = Limits {
        max_decompressed_size: 16 << 20,
        max_compression_ratio: u64::MAX,
        ..Limits::default()
    };
    let e = single_err(parse_named("r.xml.gz", &many, &limits));
    assert_eq!(limit_kind(&e), Some(LimitKind::DecompressedSize), "{e}");
    let e = single_err(parse_named("r.xml.gz", &many, &Limits::default()));
    assert_eq!(limit_kind(&e), Some(LimitKind::CompressionRatio), "{e}");
}

#[test]
fn truncated_gzip_is_a_decompression_error() {
    let gz = gzip(SMALL_REPORT.as_bytes());
    let cut = &gz[..gz.len() / 2];
    let e = single_err(parse_named("r.xml.gz", cut, &Limits::default()));
    assert!(
        matches!(e, ReportError::Decompress { format: "gzip", .. }),
        "{e}"
    );
}

#[test]
fn truncated_zip_is_a_decompression_error() {
    let z = zip_of(&[("r.xml", SMALL_REPORT.as_bytes())]);
    let e = single_err(parse(&z[..z.len() - 30], &Limits::default()));
    assert!(
        matches!(e, ReportError::Decompress { format: "zip", .. }),
        "{e}"
    );
}

#[test]
fn garbage_and_empty_inputs() {
    for input in [
        &b""[..],
        b"\x00\x01\x02\x03garbage",
        b"PK\x03\x04 not really a zip",
        b"\x1f\x8b\x08 not really gzip",
        b"just some words",
        b"{ not json",
        b"<html><body>hello</body></html>",
        b"<feedback></feedback>",
        b"<feedback><report_metadata></report_metadata>",
        b"<?xml version=\"1.0\"?>",
    ] {
        let results = parse(input, &Limits::default());
        assert!(!results.is_empty());
        for r in results {
            let e = r.expect_err(&format!(
                "{:?} must be an error",
                String::from_utf8_lossy(input)
            ));
            assert!(!e.to_string().is_empty());
        }
    }
}

#[test]
fn a_report_with_nothing_in_it_is_an_error() {
    // Leniency never hides loss: no metadata, no policy, no records is not an empty report.
    let cases = [
        SMALL_REPORT
            .replace("<record>", "<xrecord>")
            .replace("</record>", "</xrecord>"),
        SMALL_REPORT
            .replace("<report_metadata>", "<x>")
            .replace("</report_metadata>", "</x>"),
        SMALL_REPORT
            .replace("<policy_published>", "<x>")
            .replace("</policy_published>", "</x>"),
        SMALL_REPORT.replace("<begin>1700000000</begin>", ""),
    ];
    for xml in cases {
        let e = dmarc_report::parse_aggregate_xml(xml.as_bytes(), &Limits::default())
            .expect_err("must be an error");
        assert!(matches!(e, ReportError::Incomplete { .. }), "{e}");
    }
}

#[test]
fn error_names_xml_position() {
    let xml = "<feedback>\n<report_metadata>\n<org_name>x</org_name\n";
    let e = single_err(parse(xml.as_bytes(), &Limits::default()));
    match e {
        ReportError::Xml { line, .. } => assert!(line >= 3, "line {line}"),
        other => panic!("{other}"),
    }
}

#[test]
fn email_without_report_is_an_error_naming_its_parts() {
    let msg = b"From: a@example.com\nTo: b@example.com\nSubject: hi\n\nHello there.\n";
    let e = single_err(parse_named("m.eml", msg, &Limits::default()));
    assert!(matches!(e, ReportError::NoReportInMessage { .. }), "{e}");
    assert!(e.to_string().contains("text/plain"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Random bytes never panic and always give at least one result.
    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let results = parse(&data, &Limits::default());
        prop_assert!(!results.is_empty());
    }

    /// Random damage to a valid report (and to it gzipped) never panics.
    #[test]
    fn damaged_reports_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        gz in any::<bool>(),
    ) {
        let mut data = if gz { gzip(SMALL_REPORT.as_bytes()) } else { SMALL_REPORT.as_bytes().to_vec() };
        for (i, b) in flips {
            let i = i.index(data.len());
            data[i] = b;
        }
        let n = cut.index(data.len() + 1);
        let results = parse(&data[..n], &Limits::default());
        prop_assert!(!results.is_empty());
        for r in results.iter().flatten() {
            // A tolerated report says what it tolerated or is identical in substance.
            let _ = r.report.warnings();
        }
    }
}

/// XML-ish token soup: the scanner's edge cases (unclosed markup, quotes, references,
/// comments, CDATA, declarations, stray `<`) in random order.
fn xml_soup() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("<feedback>".to_string()),
        Just("</feedback>".to_string()),
        Just("<record>".to_string()),
        Just("</record>".to_string()),
        Just("<row><source_ip>192.0.2.1</source_ip><count>1</count></row>".to_string()),
        Just("<report_metadata><date_range><begin>1</begin><end>2</end></date_range></report_metadata>".to_string()),
        Just("<policy_published><domain>x</domain></policy_published>".to_string()),
        Just("<extensions><extension name=\"a\" definition='b'>".to_string()),
        Just("</extension></extensions>".to_string()),
        Just("<x a=\"unclosed".to_string()),
        Just("<!-- c".to_string()),
        Just("-->".to_string()),
        Just("<![CDATA[ x ]]>".to_string()),
        Just("<![CDATA[".to_string()),
        Just("<!DOCTYPE feedback [ <!ENTITY e \"x\"> ]>".to_string()),
        Just("<?xml version=\"1.0\"?>".to_string()),
        Just("<?pi".to_string()),
        Just("&amp;&#x41;&bogus;&#xFFFFFFFF;&".to_string()),
        Just("<".to_string()),
        Just(">".to_string()),
        Just("</".to_string()),
        Just("<a/>".to_string()),
        Just("<ns:dkim>".to_string()),
        Just("</ns:dkim>".to_string()),
        "[a-z0-9 .]{0,8}",
        "\\PC{0,4}",
    ];
    proptest::collection::vec(token, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// The scanner never panics on XML-like soup, and an accepted report always has records,
    /// a policy domain element and a date range (leniency never yields an empty report).
    #[test]
    fn xml_soup_never_panics(xml in xml_soup()) {
        match dmarc_report::parse_aggregate_xml(xml.as_bytes(), &Limits::default()) {
            Ok(r) => prop_assert!(!r.records.is_empty()),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}

/// Every input that once crashed a fuzz target of this crate (`fuzz/regressions/<target>/`)
/// parses to a value or an error. The first: a feedback report whose damaged MIME boundary
/// drives mail-parser 0.11 into its `debug_assert!(false, "Invalid part ID")` (FUZZING.md).
#[test]
fn fuzz_regressions_never_panic() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions");
    let mut seen = 0;
    for target in ["failure_report", "aggregate_xml", "containers", "tls_rpt"] {
        let Ok(dir) = std::fs::read_dir(root.join(target)) else {
            continue;
        };
        for entry in dir {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let limits = Limits::default();
            match target {
                "failure_report" => {
                    let _ = dmarc_report::parse_message(&name, &data, &limits);
                }
                _ => {
                    let _ = parse_named(&name, &data, &limits);
                }
            }
            seen += 1;
        }
    }
    assert!(
        seen >= 1,
        "no regression inputs found under {}",
        root.display()
    );
}

#[test]
fn damaged_mime_boundary_in_a_feedback_report_is_read_or_refused() {
    let data = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/regressions/failure_report/mail-parser-invalid-part-id.eml"),
    )
    .unwrap();
    let results = dmarc_report::parse_message("damaged.eml", &data, &Limits::default());
    // mail-parser recovers four embedded messages from the damaged structure; none holds a
    // report, and each refusal names the part it is about.
    assert!(!results.is_empty());
    for r in &results {
        match r {
            Err(e) => assert!(e.to_string().contains("contains no report"), "{e}"),
            Ok(p) => panic!("a report was read from a damaged message: {p:?}"),
        }
    }
}
