//! Source naming and the rollout advice on the generated report set of
//! `dmarc_testkit::rollout`, answered from its zone file: every figure must equal the
//! fixture's truth.

use dmarc_dns::ZoneFile;
use dmarc_owner::rollout::advise;
use dmarc_owner::sources::{Kind, ProblemCode, SourcesReport, name_sources};
use dmarc_proto::dmarc::DomainName;
use dmarc_store::sources::SourceQuery;
use dmarc_store::{Origin, Store};
use dmarc_testkit::rollout as fx;

fn store() -> Store {
    let mut store = Store::open_sqlite_memory().unwrap();
    for (name, xml) in fx::reports() {
        for parsed in dmarc_report::parse_named(&name, xml.as_bytes(), &Default::default()) {
            let origin = Origin {
                kind: "file",
                location: &name,
            };
            assert!(
                store
                    .store_report(&parsed.unwrap(), &origin)
                    .unwrap()
                    .is_new()
            );
        }
    }
    store
}

fn zone() -> ZoneFile {
    ZoneFile::parse(fx::ZONE, None).unwrap()
}

fn named(store: &mut Store, zone: &ZoneFile, since: Option<i64>) -> SourcesReport {
    let domain = DomainName::new(fx::DOMAIN).unwrap();
    let q = SourceQuery {
        domain: fx::DOMAIN.into(),
        since,
        until: None,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(name_sources(store, zone, &domain, &q)).unwrap()
}

fn dmarc_check(zone: &ZoneFile) -> dmarc_owner::check::DmarcReport {
    let domain = DomainName::new(fx::DOMAIN).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut findings = Vec::new();
    rt.block_on(dmarc_owner::check::dmarc::check(
        zone,
        &domain,
        &mut findings,
    ))
}

#[test]
fn every_sender_gets_its_name_kind_and_counts() {
    let (mut store, zone) = (store(), zone());
    let r = named(&mut store, &zone, None);
    let units = fx::units();
    assert_eq!(units, 90);
    assert_eq!(r.sources.len(), fx::SENDERS.len(), "{:#?}", r.sources);
    for want in fx::SENDERS {
        let s = r
            .sources
            .iter()
            .find(|s| s.name == want.name)
            .unwrap_or_else(|| panic!("no source {:?} in {:#?}", want.name, r.sources));
        assert_eq!(s.kind.as_str(), want.kind, "{}", want.name);
        assert_eq!(s.ips, want.ips, "{}", want.name);
        let (m, p) = fx::per_unit(want.ips);
        assert_eq!(s.messages, m * units, "{}", want.name);
        assert_eq!(s.dmarc_pass, p * units, "{}", want.name);
        assert_eq!(s.fix.is_some(), p < m, "{}: {:?}", want.name, s.fix);
    }
    assert_eq!(r.messages, 124 * units);
    assert_eq!(r.rows, 12 * 40);

    let by = |n: &str| r.sources.iter().find(|s| s.name == n).unwrap();
    let sendgrid = by("SendGrid (Twilio)");
    assert_eq!(sendgrid.service.as_deref(), Some("sendgrid"));
    let codes: Vec<ProblemCode> = sendgrid.problems.iter().map(|p| p.code).collect();
    assert_eq!(
        codes,
        [ProblemCode::SpfUnaligned, ProblemCode::DkimUnaligned]
    );
    let fix = sendgrid.fix.as_deref().unwrap();
    assert!(fix.contains("publish the service's DKIM CNAMEs"), "{fix}");
    assert!(
        fix.contains("set up a custom MAIL FROM at the service"),
        "{fix}"
    );
    assert_eq!(sendgrid.selectors, ["s1 (d=sendgrid.net)"]);
    assert!(
        sendgrid.addresses[0]
            .evidence
            .contains("include:sendgrid.net")
    );

    let google = by("Google Workspace");
    assert!(google.fix.is_none() && google.problems.is_empty());
    assert_eq!(google.selectors, ["google (d=example.com)"]);

    let own2 = by("own servers (example.com)");
    assert_eq!(own2.addresses[0].rdns.as_deref(), Some("mx2.example.com"));
    assert!(own2.addresses[0].rdns_confirmed);
    let fix = own2.fix.as_deref().unwrap();
    assert_eq!(
        fix,
        "sign its mail with DKIM as example.com, and authorise it in SPF (ip4:192.0.2.20)"
    );
    assert_eq!(
        own2.problems
            .iter()
            .find(|p| p.code == ProblemCode::NoDkim)
            .unwrap()
            .messages,
        2 * units
    );

    let fwd = by("forwarder (example.net)");
    assert!(fwd.addresses[0].evidence.contains("forwarded"));
    let list = by("forwarder (no reverse DNS)");
    assert!(
        list.addresses[0].evidence.contains("7")
            || list.addresses[0].evidence.contains("mailing_list")
    );
    let spoofed = by("unknown (example.org)");
    assert!(
        !spoofed.addresses[0].rdns_confirmed,
        "no A record: not confirmed"
    );
    assert_eq!(spoofed.kind, Kind::Unknown);

    // The reverse-DNS answers were cached, forward-confirmed where they hold.
    let e = store.cached_rdns("192.0.2.10").unwrap().unwrap();
    assert_eq!(e.confirmed_name(), Some("mx1.example.com"));
    let e = store.cached_rdns("203.0.113.88").unwrap().unwrap();
    assert_eq!(
        (e.name.as_deref(), e.confirmed),
        (Some("host.spoofer.example.org"), Some(false))
    );
}

#[test]
fn simulation_and_advice_match_the_truth() {
    let (mut store, zone) = (store(), zone());
    let r = named(&mut store, &zone, None);
    let a = advise(&r, &dmarc_check(&zone));
    let u = fx::units();
    assert_eq!(a.current.p.as_deref(), Some("none"));
    assert_eq!(a.current.stage, "none");
    assert_eq!(a.window.messages, 124 * u);
    assert_eq!(a.window.days, 20);
    assert!(a.window.long_enough);
    assert_eq!(a.window.main_receivers, ["google.com", "yahoo.com"]);
    assert_eq!(a.window.first.as_deref(), Some("2024-03-01 00:00:00"));
    assert_eq!(a.window.last.as_deref(), Some("2024-03-20 23:59:59"));
    // Legitimate: everything but the 7 spoofed messages per unit; 99 of 117 pass.
    assert_eq!(a.legitimate_messages, 117 * u);
    assert_eq!(a.legitimate_aligned, 99 * u);
    assert!((a.aligned_share - 99.0 / 117.0).abs() < 1e-12);
    assert_eq!(a.unknown_messages, 7 * u);
    let got: Vec<(&str, u8, bool, i64, i64, i64)> = a
        .simulation
        .iter()
        .map(|s| (s.stage, s.pct, s.t, s.messages, s.legitimate, s.unknown))
        .collect();
    // Failing per unit: 18 legitimate (own 2, SendGrid 12, forwarder 1, list 3), 7 unknown.
    assert_eq!(
        got,
        [
            ("quarantine", 10, false, 162 + 63, 162, 63),
            ("quarantine", 25, false, 405 + 158, 405, 158),
            ("quarantine", 50, false, 810 + 315, 810, 315),
            ("quarantine", 100, false, 1620 + 630, 1620, 630),
            ("quarantine", 0, true, 0, 0, 0),
            ("reject", 100, false, 2250, 1620, 630),
        ]
    );
    let s = &a.simulation[3];
    assert_eq!((s.failing, s.sources, s.legitimate_sources), (2250, 6, 4));
    assert_eq!(
        s.rows,
        7 * 40,
        "seven failing rows in each of the 40 reports"
    );
    let blockers: Vec<(&str, i64, bool)> = a
        .blockers
        .iter()
        .map(|b| (b.name.as_str(), b.failing, b.fixable))
        .collect();
    assert_eq!(
        blockers,
        [
            ("SendGrid (Twilio)", 12 * u, true),
            ("forwarder (no reverse DNS)", 3 * u, false),
            ("own servers (example.com)", 2 * u, true),
            ("forwarder (example.net)", u, false),
        ]
    );
    assert_eq!(a.subdomains.len(), 1);
    assert_eq!(a.subdomains[0].domain, "billing.example.com");
    assert_eq!(a.subdomains[0].messages, 5 * u);
    assert_eq!(a.subdomains[0].legitimate_failing, 0);
    let next = a.next.as_ref().unwrap();
    assert!(!next.ready);
    assert!(
        next.why.contains("2 legitimate source(s) fail"),
        "{}",
        next.why
    );
    assert_eq!((next.stage, next.pct, next.t), ("quarantine", 10, false));
    // The organisational domain's own mail is blocked, the subdomain's is not: sp first.
    assert_eq!(next.applies_to, "sp");
    assert_eq!(
        next.record,
        "v=DMARC1; p=none; sp=quarantine; np=reject; pct=10; rua=mailto:dmarc@example.com"
    );
    assert_eq!(next.name, "_dmarc.example.com");
}

#[test]
fn a_short_window_is_not_long_enough() {
    let (mut store, zone) = (store(), zone());
    let since = fx::FIRST_DAY + 10 * 86_400;
    let r = named(&mut store, &zone, Some(since));
    let a = advise(&r, &dmarc_check(&zone));
    // google.com ×3 and yahoo.com ×2 on days 10..19: 30 + 10 units.
    assert_eq!(a.window.messages, 124 * 40);
    assert_eq!(a.window.days, 10);
    assert!(!a.window.long_enough);
    assert_eq!(a.window.main_receivers, ["google.com", "yahoo.com"]);
}

#[test]
fn a_record_passing_everyone_makes_no_one_own() {
    let mut store = store();
    let zone = ZoneFile::parse(
        &fx::ZONE.replace(
            "v=spf1 ip4:192.0.2.0/28 include:_spf.google.com include:sendgrid.net -all",
            "v=spf1 +all",
        ),
        None,
    )
    .unwrap();
    let r = named(&mut store, &zone, None);
    let kind = |ip: &str| r.kinds.get(ip).map(|k| k.0);
    assert_eq!(kind("203.0.113.66"), Some(Kind::Unknown));
    // Still own by its forward-confirmed name, and still Google by its name.
    assert_eq!(kind("192.0.2.10"), Some(Kind::Own));
    assert_eq!(r.kinds["209.85.220.41"].1, "Google Workspace");
}
