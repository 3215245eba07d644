//! The worked examples of RFC 9989 Appendix B, one test per example, named after its
//! section. Records are the zone-file texts of the examples with their character-strings
//! joined; DNS is an in-memory zone that logs every query.

mod dmarc_support;

use dmarc_proto::dmarc::{
    self, AuthResult, DkimIdentity, DmarcInput, DmarcOptions, DmarcOutput, DmarcResult, DomainName,
    ExternalCheck, Policy, PolicySource, Record, ReportKind, SpfIdentity,
};
use dmarc_support::Zone;
use futures_executor::block_on;

fn run(zone: &Zone, author: &str, spf: &[&str], dkim: &[&str]) -> DmarcOutput {
    let input = DmarcInput {
        author_domain: author.into(),
        spf: spf
            .iter()
            .map(|d| SpfIdentity::new(*d, AuthResult::Pass))
            .collect(),
        dkim: dkim
            .iter()
            .map(|d| DkimIdentity::new(*d, AuthResult::Pass))
            .collect(),
        pct_draw: None,
    };
    block_on(dmarc::evaluate(zone, &input, &DmarcOptions::default()))
}

fn example_zone() -> Zone {
    Zone::new().txt("_dmarc.example.com", "v=DMARC1; p=reject")
}

// B.1.1: SPF.

#[test]
fn b_1_1_spf_example_1_strict_alignment() {
    let zone = Zone::new().txt("_dmarc.example.com", "v=DMARC1; p=reject; aspf=s");
    let out = run(&zone, "example.com", &["example.com"], &[]);
    assert_eq!(out.result, DmarcResult::Pass);
    assert!(out.spf_aligned());
    assert_eq!(out.spf[0].alignment_domain.as_deref(), Some("example.com"));
}

#[test]
fn b_1_1_spf_example_2_relaxed_alignment() {
    let zone = example_zone();
    let out = run(&zone, "example.com", &["child.example.com"], &[]);
    assert_eq!(out.result, DmarcResult::Pass);
    assert!(out.spf_aligned());
    assert_eq!(out.org_domain.as_deref(), Some("example.com"));
    // Strict alignment would not do.
    let zone = Zone::new().txt("_dmarc.example.com", "v=DMARC1; p=reject; aspf=s");
    let out = run(&zone, "example.com", &["child.example.com"], &[]);
    assert_eq!(out.result, DmarcResult::Fail);
}

#[test]
fn b_1_1_spf_example_3_no_alignment() {
    let zone = example_zone();
    let out = run(&zone, "child.example.com", &["example.net"], &[]);
    assert_eq!(out.result, DmarcResult::Fail);
    assert!(!out.spf_aligned());
    assert_eq!(out.policy_domain.as_deref(), Some("example.com"));
}

// B.1.2: DKIM.

#[test]
fn b_1_2_dkim_example_1_strict_alignment() {
    let zone = Zone::new().txt("_dmarc.example.com", "v=DMARC1; p=reject; adkim=s");
    let out = run(&zone, "example.com", &[], &["example.com"]);
    assert_eq!(out.result, DmarcResult::Pass);
    assert!(out.dkim_aligned());
}

#[test]
fn b_1_2_dkim_example_2_relaxed_alignment() {
    let zone = example_zone();
    let out = run(&zone, "child.example.com", &[], &["example.com"]);
    assert_eq!(out.result, DmarcResult::Pass);
    assert_eq!(out.dkim[0].alignment_domain.as_deref(), Some("example.com"));
}

#[test]
fn b_1_2_dkim_example_3_no_alignment() {
    let zone = example_zone();
    let out = run(&zone, "child.example.com", &[], &["example.net"]);
    assert_eq!(out.result, DmarcResult::Fail);
    assert!(!out.dkim_aligned());
    assert_eq!(out.requested_policy, Some(Policy::Reject));
}

// B.2: Domain Owner examples (the records themselves).

const B_2_1: &str = concat!(
    "v=DMARC1; p=none; ",
    "rua=mailto:dmarc-feedback@example.com"
);

#[test]
fn b_2_1_entire_domain_monitoring_mode() {
    let parsed = Record::parse(B_2_1.as_bytes()).unwrap();
    assert!(parsed.is_clean(), "{:?}", parsed.diagnostics);
    let r = parsed.record;
    assert_eq!(r.p, Policy::None);
    assert!(!r.testing);
    assert_eq!(r.rua.len(), 1);
    assert_eq!(
        r.rua[0].address.as_deref(),
        Some("dmarc-feedback@example.com")
    );
    // Monitoring mode: a failing message gets policy none.
    let zone = Zone::new().txt("_dmarc.example.com", B_2_1);
    let out = run(&zone, "example.com", &["example.net"], &[]);
    assert_eq!(out.result, DmarcResult::Fail);
    assert_eq!(out.disposition(), Some(Policy::None));
}

#[test]
fn b_2_2_entire_domain_monitoring_mode_per_message_failure_reports() {
    let txt = concat!(
        "v=DMARC1; p=none; ",
        "rua=mailto:dmarc-feedback@example.com; ",
        "ruf=mailto:auth-reports@example.com"
    );
    let parsed = Record::parse(txt.as_bytes()).unwrap();
    assert!(parsed.is_clean());
    assert_eq!(
        parsed.record.ruf[0].mailto_domain().as_deref(),
        Some("example.com")
    );
}

#[test]
fn b_2_3_per_message_failure_reports_directed_to_third_party() {
    let txt = concat!(
        "v=DMARC1; p=none; ",
        "rua=mailto:dmarc-feedback@example.com; ",
        "ruf=mailto:auth-reports@thirdparty.example.net"
    );
    let record = Record::parse(txt.as_bytes()).unwrap().record;
    let policy = DomainName::new("example.com").unwrap();
    let zone = Zone::new().txt(
        "example.com._report._dmarc.thirdparty.example.net",
        "v=DMARC1;",
    );
    let checks = block_on(dmarc::verify_external_destinations(
        &zone,
        &policy,
        &policy,
        &record.ruf,
        ReportKind::Failure,
    ));
    assert_eq!(checks[0].1, ExternalCheck::Authorized { overrides: vec![] });
    let rua = block_on(dmarc::verify_external_destinations(
        &zone,
        &policy,
        &policy,
        &record.rua,
        ReportKind::Aggregate,
    ));
    assert_eq!(rua[0].1, ExternalCheck::SameOrganization);
    assert_eq!(
        zone.queries(),
        [(
            "TXT".to_owned(),
            "example.com._report._dmarc.thirdparty.example.net".to_owned()
        )]
    );
    // Without the authorisation record the destination is refused.
    let empty = Zone::new();
    let checks = block_on(dmarc::verify_external_destinations(
        &empty,
        &policy,
        &policy,
        &record.ruf,
        ReportKind::Failure,
    ));
    assert_eq!(checks[0].1, ExternalCheck::NotAuthorized);
    assert!(!checks[0].1.may_send());
}

#[test]
fn b_2_4_overriding_destination_addresses() {
    let txt = concat!(
        "v=DMARC1; ",
        "rua=mailto:aggregate-reports@thirdparty.example.net; ",
        "ruf=mailto:failure-reports@thirdparty.example.net"
    );
    let zone = Zone::new().txt("example.com._report._dmarc.thirdparty.example.net", txt);
    let policy = DomainName::new("example.com").unwrap();
    let dest = DomainName::new("thirdparty.example.net").unwrap();
    // The third party authorises the reports and names the failure-report address to use
    // instead of auth-reports@thirdparty.example.net.
    let check = block_on(dmarc::verify_external_destination(
        &zone,
        &policy,
        &dest,
        false,
        ReportKind::Failure,
    ));
    let ExternalCheck::Authorized { overrides } = check else {
        panic!("not authorised: {check:?}");
    };
    assert_eq!(overrides.len(), 1);
    assert_eq!(
        overrides[0].address.as_deref(),
        Some("failure-reports@thirdparty.example.net")
    );
    // An override naming another host forbids reports to both (RFC 9990 §4).
    let zone = Zone::new().txt(
        "example.com._report._dmarc.thirdparty.example.net",
        "v=DMARC1; ruf=mailto:victim@elsewhere.example",
    );
    let check = block_on(dmarc::verify_external_destination(
        &zone,
        &policy,
        &dest,
        false,
        ReportKind::Failure,
    ));
    assert!(matches!(check, ExternalCheck::OverrideElsewhere(_)));
    assert!(!check.may_send());
}

#[test]
fn b_2_5_subdomain_testing_and_multiple_aggregate_report_uris() {
    let testing = concat!(
        "v=DMARC1; p=quarantine; ",
        "rua=mailto:dmarc-feedback@example.com,",
        "mailto:tld-test@thirdparty.example.net; ",
        "t=y"
    );
    let parsed = Record::parse(testing.as_bytes()).unwrap();
    assert!(parsed.is_clean());
    assert_eq!(parsed.record.rua.len(), 2);
    assert!(parsed.record.testing);
    let zone = Zone::new().txt("_dmarc.test.example.com", testing);
    let out = run(&zone, "test.example.com", &[], &[]);
    assert_eq!(out.result, DmarcResult::Fail);
    assert_eq!(out.requested_policy, Some(Policy::Quarantine));
    assert_eq!(out.applied_policy, Some(Policy::None));
    assert!(out.testing);

    let enforcing = concat!(
        "v=DMARC1; p=reject; ",
        "rua=mailto:dmarc-feedback@example.com,",
        "mailto:tld-test@thirdparty.example.net"
    );
    let zone = Zone::new().txt("_dmarc.test.example.com", enforcing);
    let out = run(&zone, "test.example.com", &[], &[]);
    assert_eq!(out.disposition(), Some(Policy::Reject));
    assert_eq!(out.policy_domain.as_deref(), Some("test.example.com"));
}

// B.3: Mail Receiver example.

#[test]
fn b_3_1_smtp_session_example() {
    let zone = Zone::new().txt(
        "_dmarc.example.com",
        "v=DMARC1; p=reject; aspf=r; rua=mailto:dmarc-feedback@example.com",
    );
    let out = run(
        &zone,
        "example.com",
        &["mail.example.com"],
        &["example.com"],
    );
    assert_eq!(out.result, DmarcResult::Pass);
    assert!(out.spf_aligned());
    assert!(out.dkim_aligned());
    assert_eq!(out.requested_policy, Some(Policy::Reject));
    assert_eq!(out.disposition(), None);
    let ar = out.to_method_result();
    assert_eq!(ar.result, "pass");
    assert!(
        ar.properties
            .iter()
            .any(|p| p.ptype == "header" && p.property == "from" && p.value == "example.com")
    );
}

// B.4: Organizational and Policy Domain tree walk examples.

#[test]
fn b_4_1_simple_organizational_and_policy_example() {
    let zone = Zone::new()
        .txt("_dmarc.example.com", "v=DMARC1; p=reject")
        .txt("_dmarc.signing.example.com", "v=DMARC1; p=reject");
    let out = run(
        &zone,
        "example.com",
        &["example.com"],
        &["signing.example.com"],
    );
    assert_eq!(out.result, DmarcResult::Pass);
    assert!(out.spf_aligned());
    assert!(out.dkim_aligned());
    assert_eq!(out.org_domain.as_deref(), Some("example.com"));
    assert_eq!(out.policy_domain.as_deref(), Some("example.com"));
    assert_eq!(out.policy_source, Some(PolicySource::P));
    // Author: _dmarc.example.com, _dmarc.com; DKIM: _dmarc.signing.example.com (the other
    // two answers are remembered).
    assert_eq!(
        zone.dmarc_queries(),
        [
            "_dmarc.example.com",
            "_dmarc.com",
            "_dmarc.signing.example.com"
        ]
    );
}

#[test]
fn b_4_2_deep_tree_walk_example() {
    let zone = Zone::new()
        .txt("_dmarc.example.com", "v=DMARC1; p=reject")
        .txt("_dmarc.signing.example.com", "v=DMARC1; p=reject");
    let out = run(
        &zone,
        "a.b.c.d.e.f.g.h.i.j.k.example.com",
        &["example.com"],
        &["signing.example.com"],
    );
    assert_eq!(out.result, DmarcResult::Pass);
    assert!(out.spf_aligned());
    assert!(out.dkim_aligned());
    assert_eq!(out.org_domain.as_deref(), Some("example.com"));
    assert_eq!(out.policy_domain.as_deref(), Some("example.com"));
    assert_eq!(
        zone.dmarc_queries(),
        [
            "_dmarc.a.b.c.d.e.f.g.h.i.j.k.example.com",
            "_dmarc.g.h.i.j.k.example.com",
            "_dmarc.h.i.j.k.example.com",
            "_dmarc.i.j.k.example.com",
            "_dmarc.j.k.example.com",
            "_dmarc.k.example.com",
            "_dmarc.example.com",
            "_dmarc.com",
            "_dmarc.signing.example.com",
        ]
    );
}

#[test]
fn b_4_3_example_with_a_psd_dmarc_policy_record() {
    let zone = Zone::new()
        .txt("_dmarc.bank.example", "v=DMARC1; p=reject; psd=y")
        .txt("_dmarc.giant.bank.example", "v=DMARC1; p=quarantine");
    let out = run(
        &zone,
        "giant.bank.example",
        &["mail.giant.bank.example"],
        &["mail.mega.bank.example"],
    );
    assert_eq!(out.result, DmarcResult::Pass);
    assert!(out.spf_aligned());
    assert!(!out.dkim_aligned());
    assert_eq!(out.org_domain.as_deref(), Some("giant.bank.example"));
    assert_eq!(out.policy_domain.as_deref(), Some("giant.bank.example"));
    assert_eq!(out.requested_policy, Some(Policy::Quarantine));
    // The DKIM domain is not under giant.bank.example, so it cannot share its
    // Organizational Domain and needs no walk of its own.
    assert_eq!(
        zone.dmarc_queries(),
        [
            "_dmarc.giant.bank.example",
            "_dmarc.bank.example",
            "_dmarc.mail.giant.bank.example"
        ]
    );
    // Its Organizational Domain is the one the example gives.
    let d = DomainName::new("mail.mega.bank.example").unwrap();
    let org = block_on(dmarc::organizational_domain(&zone, &d)).unwrap();
    assert_eq!(org.as_str(), "mega.bank.example");
}
