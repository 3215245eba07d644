//! Round trip: report values written as RFC 9990 XML parse back to the same values, with no
//! warning. The generated values are what the RFC 9990 schema allows (required elements
//! present, known words), so the XML written is schema-shaped too.

use dmarc_report::aggregate::generate::to_xml;
use dmarc_report::aggregate::*;
use dmarc_report::{Limits, parse_aggregate_xml};
use proptest::prelude::*;

/// Text as reports carry it: no surrounding white space (the parser trims), XML specials
/// included to exercise escaping.
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9 .@&<>'\"_:/=+-]{0,24}[a-zA-Z0-9.]".prop_map(|s| s)
}

fn domain() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,10}(\\.[a-z]{2,5}){1,2}"
}

fn ctext() -> impl Strategy<Value = CompactString> {
    text().prop_map(CompactString::from)
}

fn cdomain() -> impl Strategy<Value = CompactString> {
    // Some longer than the 24 bytes kept inline.
    "[a-z0-9]{1,30}(\\.[a-z]{2,5}){1,2}".prop_map(CompactString::from)
}

fn disposition() -> impl Strategy<Value = Disposition> {
    prop_oneof![
        Just(Disposition::None),
        Just(Disposition::Quarantine),
        Just(Disposition::Reject)
    ]
}

fn action() -> impl Strategy<Value = ActionDisposition> {
    prop_oneof![
        Just(ActionDisposition::None),
        Just(ActionDisposition::Pass),
        Just(ActionDisposition::Quarantine),
        Just(ActionDisposition::Reject)
    ]
}

fn alignment() -> impl Strategy<Value = Alignment> {
    prop_oneof![Just(Alignment::Relaxed), Just(Alignment::Strict)]
}

fn dmarc_result() -> impl Strategy<Value = DmarcResult> {
    prop_oneof![Just(DmarcResult::Pass), Just(DmarcResult::Fail)]
}

fn dkim_result() -> impl Strategy<Value = DkimResult> {
    prop_oneof![
        Just(DkimResult::None),
        Just(DkimResult::Pass),
        Just(DkimResult::Fail),
        Just(DkimResult::Policy),
        Just(DkimResult::Neutral),
        Just(DkimResult::TempError),
        Just(DkimResult::PermError),
    ]
}

fn spf_result() -> impl Strategy<Value = SpfResult> {
    prop_oneof![
        Just(SpfResult::None),
        Just(SpfResult::Neutral),
        Just(SpfResult::Pass),
        Just(SpfResult::Fail),
        Just(SpfResult::SoftFail),
        Just(SpfResult::Policy),
        Just(SpfResult::TempError),
        Just(SpfResult::PermError),
    ]
}

fn override_kind() -> impl Strategy<Value = PolicyOverride> {
    prop_oneof![
        Just(PolicyOverride::LocalPolicy),
        Just(PolicyOverride::MailingList),
        Just(PolicyOverride::Other),
        Just(PolicyOverride::PolicyTestMode),
        Just(PolicyOverride::TrustedForwarder),
    ]
}

fn extension() -> impl Strategy<Value = Extension> {
    (
        "[a-zA-Z][a-zA-Z0-9]{0,10}",
        proptest::option::of("https://[a-z]{1,8}\\.example/[a-z]{0,6}"),
        "([a-z0-9][a-z0-9 ]{0,12}[a-z0-9])?",
    )
        .prop_map(|(name, definition, content)| Extension {
            name,
            definition,
            content,
        })
}

fn record() -> impl Strategy<Value = Record> {
    (
        any::<std::net::IpAddr>(),
        any::<u64>(),
        (
            action().prop_map(Some),
            dmarc_result().prop_map(Some),
            dmarc_result().prop_map(Some),
            proptest::collection::vec(
                (override_kind(), proptest::option::of(ctext()))
                    .prop_map(|(kind, comment)| OverrideReason { kind, comment }),
                0..3,
            ),
        ),
        (
            cdomain(),
            proptest::option::of(cdomain()),
            proptest::option::of(cdomain()),
        ),
        proptest::collection::vec(
            (
                cdomain(),
                "[a-z0-9]{1,12}".prop_map(|s| Some(CompactString::from(s))),
                dkim_result(),
                proptest::option::of(ctext()),
            )
                .prop_map(|(domain, selector, result, human_result)| DkimAuthResult {
                    domain,
                    selector,
                    result,
                    human_result,
                }),
            0..3,
        ),
        proptest::collection::vec(
            (
                cdomain(),
                proptest::option::of(prop_oneof![Just(SpfScope::MailFrom), Just(SpfScope::Helo)]),
                spf_result(),
                proptest::option::of(ctext()),
            )
                .prop_map(|(domain, scope, result, human_result)| SpfAuthResult {
                    domain,
                    scope,
                    result,
                    human_result,
                }),
            0..2,
        ),
        proptest::collection::vec(extension(), 0..2),
    )
        .prop_map(
            |(
                source_ip,
                count,
                (disposition, dkim, spf, reasons),
                ids,
                dkims,
                spfs,
                extensions,
            )| Record {
                source_ip,
                count,
                policy_evaluated: PolicyEvaluated {
                    disposition,
                    dkim,
                    spf,
                    reasons,
                },
                identifiers: Identifiers {
                    header_from: ids.0,
                    envelope_from: ids.1,
                    envelope_to: ids.2,
                },
                auth_results: AuthResults {
                    dkim: dkims,
                    spf: spfs.into(),
                },
                extensions,
            },
        )
}

/// 2100-01-01 00:00:00 UTC.
const LATEST: i64 = 4_102_444_800;

fn report() -> impl Strategy<Value = AggregateReport> {
    (
        (
            text(),
            text(),
            proptest::option::of(text()),
            text(),
            // Any instants, in order and not after 2100-01-01 (later ones, or a range that
            // ends before it begins, are read with a warning: `leniency.rs`).
            (any::<i64>(), any::<i64>())
                .prop_map(|(a, b)| (a.min(b).min(LATEST), a.max(b).min(LATEST))),
            proptest::collection::vec(text(), 0..2),
            proptest::option::of(text()),
        ),
        (
            domain(),
            disposition().prop_map(Some),
            proptest::option::of(disposition()),
            proptest::option::of(disposition()),
            proptest::option::of(alignment()),
            proptest::option::of(alignment()),
            proptest::option::of("[0-4]:[ds]"),
            proptest::option::of(any::<bool>()),
            proptest::option::of(prop_oneof![
                Just(DiscoveryMethod::Psl),
                Just(DiscoveryMethod::Treewalk)
            ]),
        ),
        proptest::collection::vec(record(), 1..5),
        proptest::collection::vec(extension(), 0..2),
    )
        .prop_map(|(m, p, records, extensions)| AggregateReport {
            version: Some("1.0".into()),
            metadata: ReportMetadata {
                org_name: m.0,
                email: m.1,
                extra_contact_info: m.2,
                report_id: m.3,
                date_range: DateRange {
                    begin: m.4.0,
                    end: m.4.1,
                },
                errors: m.5,
                generator: m.6,
            },
            policy_published: PolicyPublished {
                domain: p.0,
                p: p.1,
                sp: p.2,
                np: p.3,
                adkim: p.4,
                aspf: p.5,
                pct: None,
                fo: p.6,
                testing: p.7,
                discovery_method: p.8,
            },
            records,
            extensions,
            warnings: Vec::new(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn rfc9990_xml_round_trip(r in report()) {
        let xml = to_xml(&r);
        // For checking the writer with an outside XSD validator (see BENCHMARKS/README).
        if let Some(dir) = std::env::var_os("DMARC_DUMP_XML_DIR") {
            let n = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            std::fs::write(std::path::Path::new(&dir).join(format!("{n}.xml")), &xml).unwrap();
        }
        let back = parse_aggregate_xml(xml.as_bytes(), &Limits::default())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{xml}")))?;
        prop_assert_eq!(&back, &r, "{}", xml);
        // And through the serde model (the store's JSON form).
        let json = serde_json::to_string(&r).unwrap();
        let from_json: AggregateReport = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(from_json, r);
    }
}

#[test]
fn generated_xml_is_rfc9990_shaped() {
    let bytes = std::fs::read(dmarc_testkit::corpus(
        "dmarc-xsd/rfc9990-appendix-b-sample.xml",
    ))
    .unwrap();
    let r = parse_aggregate_xml(&bytes, &Limits::default()).unwrap();
    let xml = to_xml(&r);
    assert!(xml.contains(r#"<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">"#));
    // Element order of the RFC 9990 schema (xs:sequence parts).
    let order = [
        "<version>",
        "<report_metadata>",
        "<policy_published>",
        "<record>",
    ];
    let pos: Vec<usize> = order.iter().map(|t| xml.find(t).unwrap()).collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "{xml}");
    let order = ["<row>", "<identifiers>", "<auth_results>"];
    let pos: Vec<usize> = order.iter().map(|t| xml.find(t).unwrap()).collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "{xml}");
    assert_eq!(
        parse_aggregate_xml(xml.as_bytes(), &Limits::default()).unwrap(),
        r
    );
}
