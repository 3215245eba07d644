//! The store test-suite, run against both backends: SQLite (a temporary file) and
//! PostgreSQL (the server named by `DMARC_TEST_POSTGRES`, which `scripts/test.sh` starts).
//! The PostgreSQL tests fail, not skip, when that variable is unset.

use std::net::IpAddr;

use dmarc_receiver::Observation;
use dmarc_report::{Limits, Parsed, ParsedReport, parse_named};
use dmarc_store::rdns::{self, RdnsOutcome};
use dmarc_store::{Granularity, Origin, Rejection, Store, SummaryQuery};

// ---------------------------------------------------------------------------------------
// Backends

/// A fresh, empty store of one backend, and a way to run raw SQL against its database
/// behind the store's back (to sabotage it in the atomicity test).
/// Runs SQL on the test database behind the store's back.
type RawSql = Box<dyn FnMut(&str)>;

trait Backend {
    fn open(name: &str) -> (Store, RawSql);
    /// Opens the same database again (a second connection, or after a restart).
    fn reopen(name: &str) -> Store;
    /// Leaves the database empty (no schema), without opening it as a store.
    fn wipe(name: &str);
}

struct Sqlite;

fn sqlite_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "dmarc-store-test-{}-{name}.sqlite3",
        std::process::id()
    ))
}

impl Backend for Sqlite {
    fn open(name: &str) -> (Store, RawSql) {
        let path = sqlite_path(name);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let store = Store::open(path.to_str().unwrap()).expect("open sqlite");
        let raw = rusqlite_raw(path);
        (store, raw)
    }
    fn reopen(name: &str) -> Store {
        Store::open(sqlite_path(name).to_str().unwrap()).expect("reopen sqlite")
    }
    fn wipe(name: &str) {
        let path = sqlite_path(name);
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}

fn rusqlite_raw(path: std::path::PathBuf) -> RawSql {
    let conn = rusqlite::Connection::open(path).expect("second connection");
    Box::new(move |sql: &str| conn.execute_batch(sql).expect("raw sql"))
}

struct Postgres;

/// The test's own schema, so tests can run in parallel on one database.
fn pg_schema_url(name: &str) -> String {
    dmarc_testkit::postgres::schema_url(
        &dmarc_testkit::postgres::required_url(),
        &format!("t_{name}"),
    )
}

impl Backend for Postgres {
    fn open(name: &str) -> (Store, RawSql) {
        let url = dmarc_testkit::postgres::required_url();
        let store = Store::open(&dmarc_testkit::postgres::fresh_schema(
            &url,
            &format!("t_{name}"),
        ))
        .expect("open postgres");
        let mut admin = dmarc_testkit::postgres::connect(&url);
        let schema = format!("t_{name}");
        let raw = Box::new(move |sql: &str| {
            admin
                .batch_execute(&format!("SET search_path = {schema}; {sql}"))
                .expect("raw sql");
        });
        (store, raw)
    }
    fn reopen(name: &str) -> Store {
        Store::open(&pg_schema_url(name)).expect("reopen postgres")
    }
    fn wipe(name: &str) {
        let url = dmarc_testkit::postgres::required_url();
        dmarc_testkit::postgres::fresh_schema(&url, &format!("t_{name}"));
    }
}

// ---------------------------------------------------------------------------------------
// Fixtures

struct Rec<'a> {
    ip: &'a str,
    count: u64,
    disposition: &'a str,
    dkim: &'a str,
    spf: &'a str,
    from: &'a str,
}

fn aggregate_xml(org: &str, id: &str, domain: &str, begin: i64, records: &[Rec<'_>]) -> Vec<u8> {
    let mut x = format!(
        "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>{org}</org_name>\
         <email>dmarc@{org}</email><report_id>{id}</report_id><date_range><begin>{begin}</begin>\
         <end>{}</end></date_range></report_metadata><policy_published><domain>{domain}</domain>\
         <adkim>r</adkim><aspf>r</aspf><p>reject</p><sp>none</sp><pct>100</pct></policy_published>",
        begin + 86_399
    );
    for r in records {
        x.push_str(&format!(
            "<record><row><source_ip>{}</source_ip><count>{}</count><policy_evaluated>\
             <disposition>{}</disposition><dkim>{}</dkim><spf>{}</spf>\
             <reason><type>local_policy</type><comment>c</comment></reason></policy_evaluated>\
             </row><identifiers><header_from>{}</header_from><envelope_from>{}</envelope_from>\
             </identifiers><auth_results><dkim><domain>{}</domain><selector>s1</selector>\
             <result>{}</result></dkim><dkim><domain>other.example</domain><result>fail</result>\
             </dkim><spf><domain>{}</domain><scope>mfrom</scope><result>{}</result></spf>\
             </auth_results></record>",
            r.ip,
            r.count,
            r.disposition,
            r.dkim,
            r.spf,
            r.from,
            r.from,
            r.from,
            r.dkim,
            r.from,
            r.spf
        ));
    }
    x.push_str("</feedback>");
    x.into_bytes()
}

fn parse_one(name: &str, bytes: &[u8]) -> Parsed {
    let mut out = parse_named(name, bytes, &Limits::default());
    assert_eq!(out.len(), 1, "{name}: {out:?}");
    out.remove(0).expect("parses")
}

const DAY: i64 = 86_400;
/// 2024-03-01 00:00:00 UTC.
const MARCH_1: i64 = 1_709_251_200;

fn origin() -> Origin<'static> {
    Origin {
        kind: "file",
        location: "/tmp/test-input",
    }
}

fn google_report() -> Parsed {
    parse_one(
        "google.xml",
        &aggregate_xml(
            "google.com",
            "g-1",
            "Example.COM.",
            MARCH_1,
            &[
                Rec {
                    ip: "192.0.2.10",
                    count: 100,
                    disposition: "none",
                    dkim: "pass",
                    spf: "pass",
                    from: "example.com",
                },
                Rec {
                    ip: "198.51.100.7",
                    count: 7,
                    disposition: "reject",
                    dkim: "fail",
                    spf: "fail",
                    from: "example.com",
                },
                Rec {
                    ip: "2001:db8::1",
                    count: 3,
                    disposition: "quarantine",
                    dkim: "fail",
                    spf: "pass",
                    from: "example.com",
                },
            ],
        ),
    )
}

fn yahoo_report(begin: i64, id: &str) -> Parsed {
    parse_one(
        "yahoo.xml",
        &aggregate_xml(
            "Yahoo",
            id,
            "example.com",
            begin,
            &[
                Rec {
                    ip: "192.0.2.10",
                    count: 50,
                    disposition: "none",
                    dkim: "pass",
                    spf: "fail",
                    from: "example.com",
                },
                Rec {
                    ip: "203.0.113.9",
                    count: 20,
                    disposition: "reject",
                    dkim: "fail",
                    spf: "fail",
                    from: "mail.example.com",
                },
            ],
        ),
    )
}

const TLS: &str = r#"{"organization-name":"Company-X","date-range":{"start-datetime":"2024-03-01T00:00:00Z","end-datetime":"2024-03-01T23:59:59Z"},"contact-info":"sts-reporting@company-x.example","report-id":"5065427c-23d3","policies":[{"policy":{"policy-type":"sts","policy-string":["version: STSv1","mode: testing"],"policy-domain":"example.com","mx-host":["*.mail.example.com"]},"summary":{"total-successful-session-count":5326,"total-failure-session-count":303},"failure-details":[{"result-type":"certificate-expired","sending-mta-ip":"2001:db8:abcd:0012::1","receiving-mx-hostname":"mx1.mail.example.com","failed-session-count":100},{"result-type":"starttls-not-supported","sending-mta-ip":"2001:db8:abcd:0013::1","receiving-mx-hostname":"mx2.mail.example.com","receiving-ip":"203.0.113.56","failed-session-count":200,"additional-information":"https://reports.example/x"}]}]}"#;

const ARF: &str = "From: dmarc@receiver.example\r\nTo: ruf@example.com\r\nSubject: FW: Earn money\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nThis is an authentication failure report.\r\n\
--b\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: auth-failure\r\nVersion: 1\r\n\
User-Agent: Receiver/1.0\r\nAuth-Failure: dmarc\r\nSource-IP: 192.0.2.99\r\n\
Reported-Domain: example.com\r\nArrival-Date: Fri, 01 Mar 2024 10:00:00 +0000\r\n\
Authentication-Results: receiver.example; dmarc=fail header.from=example.com\r\n\r\n\
--b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: <x@example.com>\r\nSubject: Earn money\r\n\r\n--b--\r\n";

// ---------------------------------------------------------------------------------------
// The suite

fn migrations_are_idempotent<B: Backend>(name: &str) {
    let (mut store, _) = B::open(name);
    assert_eq!(store.schema_version().unwrap(), 10);
    drop(store);
    let mut again = B::reopen(name);
    assert_eq!(again.schema_version().unwrap(), 10);
    assert_eq!(again.totals().unwrap().aggregate_reports, 0);
}

fn aggregate_is_stored_once<B: Backend>(name: &str) {
    let (mut store, _) = B::open(name);
    let r = google_report();
    let first = store.store_report(&r, &origin()).unwrap();
    assert!(first.is_new());
    assert_eq!(first.kind(), "aggregate");
    let second = store.store_report(&r, &origin()).unwrap();
    assert!(!second.is_new(), "same report twice must be a duplicate");
    assert_eq!(second.id(), first.id());

    // The same report arriving through another container is still a duplicate.
    let ParsedReport::Aggregate(a) = &r.report else {
        panic!()
    };
    let xml = dmarc_report::aggregate::generate::to_xml(a);
    let via_other = parse_one("other.xml", xml.as_bytes());
    assert!(!store.store_report(&via_other, &origin()).unwrap().is_new());

    // A different period from the same reporter is a new report.
    let mut next = a.clone();
    next.metadata.date_range.begin += DAY;
    next.metadata.date_range.end += DAY;
    let next = Parsed {
        source: r.source.clone(),
        report: ParsedReport::Aggregate(next),
    };
    assert!(store.store_report(&next, &origin()).unwrap().is_new());

    let t = store.totals().unwrap();
    assert_eq!(t.aggregate_reports, 2);
    assert_eq!(t.aggregate_records, 6);
}

fn dkim_selectors_of_a_policy_domain<B: Backend>(name: &str) {
    let (mut store, _) = B::open(name);
    store.store_report(&google_report(), &origin()).unwrap();
    // The policy domain is published as "Example.COM."; signatures without a selector
    // (other.example) are left out.
    assert_eq!(
        store.dkim_selectors("example.com").unwrap(),
        [("example.com".to_string(), "s1".to_string(), 110)]
    );
    assert!(store.dkim_selectors("example.org").unwrap().is_empty());
}

/// Migration 9: the DNS records last seen, and what the DNS alert rule asks of the reports.
fn dns_records_are_kept<B: Backend>(name: &str) {
    let (mut store, _) = B::open(name);
    store.store_report(&google_report(), &origin()).unwrap();
    // Selectors and domains of the reports whose period's middle is in the window.
    let s1 = [("example.com".to_string(), "s1".to_string(), 110)];
    assert_eq!(
        store
            .dkim_selectors_between("example.com", MARCH_1, MARCH_1 + DAY)
            .unwrap(),
        s1
    );
    assert!(
        store
            .dkim_selectors_between("example.com", MARCH_1 + DAY, MARCH_1 + 9 * DAY)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.report_domains(MARCH_1, MARCH_1 + DAY, 10).unwrap(),
        ["example.com"]
    );
    assert!(
        store
            .report_domains(MARCH_1, MARCH_1 + DAY, 0)
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .report_domains(MARCH_1 + DAY, MARCH_1 + 2 * DAY, 10)
            .unwrap()
            .is_empty()
    );

    let mut seen = dmarc_store::dns_records::DnsRecordSeen {
        domain: "example.com".into(),
        kind: "dmarc".into(),
        name: "_dmarc.example.com".into(),
        record: Some("v=DMARC1; p=reject".into()),
        status: "ok".into(),
        problems: String::new(),
        first_seen: 100,
        last_seen: 100,
        previous: None,
        changed_at: None,
        failures: 0,
        failed_since: None,
    };
    let spf = dmarc_store::dns_records::DnsRecordSeen {
        kind: "spf".into(),
        name: "example.com".into(),
        record: None,
        status: "unknown".into(),
        failures: 1,
        failed_since: Some(100),
        ..seen.clone()
    };
    store
        .save_dns_records(&[seen.clone(), spf.clone()])
        .unwrap();
    assert_eq!(
        store.dns_records_seen("example.com").unwrap(),
        [seen.clone(), spf.clone()]
    );
    // A second save replaces the row.
    seen.previous = seen.record.take();
    seen.record = Some("v=DMARC1; p=none <'\u{1}'>".into());
    seen.status = "broken".into();
    seen.problems = "a\nb".into();
    seen.changed_at = Some(200);
    seen.last_seen = 200;
    store.save_dns_records(std::slice::from_ref(&seen)).unwrap();
    assert_eq!(store.dns_records_seen("example.com").unwrap(), [seen, spf]);
    assert!(store.dns_records_seen("example.org").unwrap().is_empty());
}

fn summary_counts_and_rates<B: Backend>(name: &str) {
    let (mut store, _) = B::open(name);
    store.store_report(&google_report(), &origin()).unwrap();
    store
        .store_report(&yahoo_report(MARCH_1 + 3 * DAY, "y-1"), &origin())
        .unwrap();
    store
        .store_report(&yahoo_report(MARCH_1 + 40 * DAY, "y-2"), &origin())
        .unwrap();

    let q = SummaryQuery {
        granularity: Granularity::Month,
        ..Default::default()
    };
    let s = store.summary(&q).unwrap();
    assert_eq!(s.domains.len(), 2, "{:#?}", s.domains);
    let march = &s.domains[0];
    assert_eq!(march.domain, "example.com");
    assert_eq!(march.period, "2024-03");
    assert_eq!(march.reports, 2);
    assert_eq!(march.messages, 180);
    assert_eq!(march.dmarc_pass, 153); // 100 + 3 (spf) + 50 (dkim)
    assert_eq!(march.spf_aligned_pass, 103);
    assert_eq!(march.dkim_aligned_pass, 150);
    assert_eq!(march.disposition_none, 150);
    assert_eq!(march.disposition_reject, 27);
    assert_eq!(march.disposition_quarantine, 3);
    assert_eq!(march.disposition_other, 0);
    assert!((march.pass_rate() - 153.0 / 180.0).abs() < 1e-9);
    assert_eq!(s.domains[1].period, "2024-04");
    assert_eq!(s.domains[1].messages, 70);

    // Top sources by volume, with pass rates.
    assert_eq!(s.top_sources[0].ip, "192.0.2.10");
    assert_eq!(s.top_sources[0].messages, 200);
    assert_eq!(s.top_sources[0].dmarc_pass, 200);
    assert_eq!(s.top_sources[0].reporters, 2);
    assert_eq!(s.top_sources[1].ip, "203.0.113.9");
    assert_eq!(s.top_sources[1].messages, 40);
    assert_eq!(s.top_sources[1].pass_rate(), 0.0);

    // Failing sources ranked by failing volume.
    let failing: Vec<(&str, i64)> = s
        .failing_sources
        .iter()
        .map(|f| (f.ip.as_str(), f.failing))
        .collect();
    assert_eq!(failing, vec![("203.0.113.9", 40), ("198.51.100.7", 7)]);
    assert_eq!(s.failing_sources[0].rejected, 40);
    assert_eq!(s.failing_sources[0].header_from, "mail.example.com");

    // Reporters.
    assert_eq!(s.reporters[0].org_name, "Yahoo");
    assert_eq!(s.reporters[0].reports, 2);
    assert_eq!(s.reporters[0].messages, 140);
    assert_eq!(s.reporters[1].org_name, "google.com");

    // Day granularity, a date window and a domain filter.
    let q = SummaryQuery {
        granularity: Granularity::Day,
        since: Some(MARCH_1 + DAY),
        until: Some(MARCH_1 + 10 * DAY),
        domain: Some("EXAMPLE.com.".into()),
        top: 1,
    };
    let s = store.summary(&q).unwrap();
    assert_eq!(s.domains.len(), 1);
    assert_eq!(s.domains[0].period, "2024-03-04");
    assert_eq!(s.domains[0].messages, 70);
    assert_eq!(s.top_sources.len(), 1);
    assert_eq!(s.reporters.len(), 1);

    let q = SummaryQuery {
        domain: Some("nothing.example".into()),
        granularity: Granularity::Total,
        ..Default::default()
    };
    let s = store.summary(&q).unwrap();
    assert!(s.domains.is_empty() && s.top_sources.is_empty() && s.reporters.is_empty());
    assert_eq!(s.totals.aggregate_reports, 3);

    let s = store
        .summary(&SummaryQuery {
            granularity: Granularity::Total,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(s.domains.len(), 1);
    assert_eq!(s.domains[0].period, "all");
    assert_eq!(s.domains[0].messages, 250);
}

/// The per-report sums kept at ingest give the summary's per-domain figures exactly, for
/// every granularity and filter; the quick totals equal the counted ones.
fn per_report_sums_equal_the_summary<B: Backend>(name: &str) {
    let (mut store, _) = B::open(name);
    store.store_report(&google_report(), &origin()).unwrap();
    for (i, d) in [3, 40, 41, 90].iter().enumerate() {
        store
            .store_report(
                &yahoo_report(MARCH_1 + d * DAY, &format!("y-{i}")),
                &origin(),
            )
            .unwrap();
    }
    for granularity in [Granularity::Day, Granularity::Month, Granularity::Total] {
        for (domain, since, until) in [
            (None, None, None),
            (
                Some("example.com".to_string()),
                Some(MARCH_1 + 10 * DAY),
                None,
            ),
            (None, Some(MARCH_1), Some(MARCH_1 + 41 * DAY)),
            (Some("nothing.example".to_string()), None, None),
        ] {
            let q = SummaryQuery {
                domain,
                since,
                until,
                granularity,
                top: 0,
            };
            assert_eq!(
                store.domain_periods(&q).unwrap(),
                store.summary(&q).unwrap().domains,
                "{q:?}"
            );
        }
    }
    assert_eq!(store.quick_totals().unwrap(), store.totals().unwrap());
}

/// The per-source sums kept at ingest (migration 7) give the figures the rows give, after
/// several ingests (duplicates refused) over three months and two domains, and again once
/// migration 7 has filled them from the stored reports.
fn source_sums_equal_the_rows<B: Backend>(name: &str) {
    use dmarc_store::sources::SourceQuery;
    let (mut store, mut raw) = B::open(name);
    let ingest = |store: &mut Store| {
        assert!(
            store
                .store_report(&google_report(), &origin())
                .unwrap()
                .is_new()
        );
        for (i, d) in [3, 40, 41, 90, 91].iter().enumerate() {
            let r = yahoo_report(MARCH_1 + d * DAY, &format!("y-{i}"));
            assert!(store.store_report(&r, &origin()).unwrap().is_new());
            assert!(!store.store_report(&r, &origin()).unwrap().is_new());
        }
        let other = parse_one(
            "other.xml",
            &aggregate_xml(
                "Mail.ru",
                "m-1",
                "other.example",
                MARCH_1 + 35 * DAY,
                &[
                    Rec {
                        ip: "203.0.113.9",
                        count: 7,
                        disposition: "quarantine",
                        dkim: "fail",
                        spf: "fail",
                        from: "other.example",
                    },
                    Rec {
                        ip: "192.0.2.10",
                        count: 3,
                        disposition: "none",
                        dkim: "fail",
                        spf: "pass",
                        from: "other.example",
                    },
                ],
            ),
        );
        assert!(store.store_report(&other, &origin()).unwrap().is_new());
        assert!(!store.store_report(&other, &origin()).unwrap().is_new());
        assert!(
            !store
                .store_report(&google_report(), &origin())
                .unwrap()
                .is_new()
        );
    };
    ingest(&mut store);
    let april = MARCH_1 + 31 * DAY;
    let may = april + 30 * DAY;
    let compare = |store: &mut Store| {
        for (domain, since, until) in [
            (None, None, None),
            (Some("example.com"), None, None),
            (Some("other.example"), None, None),
            (None, Some(april), None),
            (None, None, Some(may)),
            (None, Some(april), Some(may)),
            (Some("example.com"), Some(MARCH_1 + 10 * DAY), None),
            (None, Some(MARCH_1 + 10 * DAY), Some(may + 5 * DAY)),
            (None, Some(april + 2 * DAY), Some(april + 20 * DAY)),
            (None, Some(april - 1), Some(may + 1)),
            // Windows of whole days inside months (the daily sums, migration 10): single
            // days with and without reports, across a month's end, partial months at
            // both ends of whole ones, and bounds inside a day (the rest of a day from the
            // rows: a report's period's middle is at 11:59:59).
            (None, Some(MARCH_1 + 40 * DAY), Some(MARCH_1 + 41 * DAY)),
            (
                Some("example.com"),
                Some(MARCH_1 + 41 * DAY),
                Some(MARCH_1 + 42 * DAY),
            ),
            (None, Some(MARCH_1 + 36 * DAY), Some(MARCH_1 + 37 * DAY)),
            (None, Some(MARCH_1), Some(MARCH_1 + DAY)),
            (None, Some(MARCH_1 + 2 * DAY), Some(april + 6 * DAY)),
            (None, Some(MARCH_1 + 20 * DAY), Some(april + 11 * DAY)),
            (None, Some(MARCH_1 + 3 * DAY), Some(MARCH_1 + 91 * DAY)),
            (None, Some(MARCH_1 + 41 * DAY), Some(MARCH_1 + 92 * DAY)),
            (
                Some("other.example"),
                Some(MARCH_1 + 30 * DAY),
                Some(may + 3 * DAY),
            ),
            (None, Some(MARCH_1 + 90 * DAY), None),
            (None, None, Some(MARCH_1 + 41 * DAY)),
            (
                None,
                Some(MARCH_1 + 40 * DAY + 3_600),
                Some(MARCH_1 + 91 * DAY + 50_000),
            ),
            (
                None,
                Some(MARCH_1 + 40 * DAY + 50_000),
                Some(MARCH_1 + 91 * DAY + 3_600),
            ),
            (
                None,
                Some(MARCH_1 + 3 * DAY + 43_199),
                Some(MARCH_1 + 3 * DAY + 43_200),
            ),
        ] {
            // Every source, and only the first (its `From` domains are read for it alone).
            for top in [1000, 1] {
                let q = SummaryQuery {
                    domain: domain.map(str::to_string),
                    since,
                    until,
                    granularity: Granularity::Day,
                    top,
                };
                let kept = store.summary(&q).unwrap();
                assert_eq!(kept, store.summary_from_rows(&q).unwrap(), "{q:?}");
                if top > 1 && domain.is_none() && since.is_none() && until.is_none() {
                    assert!(kept.top_sources.len() >= 3 && kept.failing_sources.len() >= 2);
                }
            }
            let q = SourceQuery {
                domain: domain.unwrap_or("example.com").to_string(),
                since,
                until,
            };
            let kept = store.source_facts(&q).unwrap();
            assert_eq!(kept, store.source_facts_from_rows(&q).unwrap(), "{q:?}");
            // The alert rules' volumes: whole days from the per-day sums, the rest from rows.
            let (s, u) = (since.unwrap_or(1), until.unwrap_or(may + 60 * DAY));
            for (s, u) in [(s, u), (s + 3_600, u - 7_200), (s + 60, s + 120), (0, u)] {
                let kept = store.source_volumes(s, u).unwrap();
                assert_eq!(
                    kept,
                    store.source_volumes_from_rows(s, u).unwrap(),
                    "{s} {u}"
                );
                if s <= MARCH_1 && u >= may {
                    assert!(kept.len() >= 3, "{kept:?}");
                }
            }
            if since.is_none() && until.is_none() {
                assert!(!kept.outcomes.is_empty() && !kept.spf.is_empty());
            }
            for ip in ["192.0.2.10", "203.0.113.9"] {
                let q = dmarc_store::browse::ListQuery {
                    domain: domain.map(str::to_string),
                    since,
                    until,
                    ..Default::default()
                };
                let kept = store.source_detail(ip, &q).unwrap();
                assert_eq!(
                    kept,
                    store.source_detail_from_rows(ip, &q).unwrap(),
                    "{ip} {q:?}"
                );
                if since.is_none() && until.is_none() {
                    assert!(!kept.days.is_empty() && !kept.reporters.is_empty());
                }
            }
        }
    };
    compare(&mut store);
    drop(store);

    // Migration 7 again on the stored reports: the same sums. The later migrations are
    // undone too, as for a store at version 6 (the migrator applies what is above the
    // newest recorded version).
    const DAILY: &str = "DROP TABLE aggregate_daily_sums; DROP TABLE aggregate_daily_reporters; \
         DROP TABLE aggregate_daily_dkim; DROP TABLE aggregate_daily_spf; \
         DROP TABLE aggregate_daily_reasons;";
    raw(&format!(
        "DROP TABLE aggregate_source_sums; DROP TABLE aggregate_source_reporters; \
         DROP TABLE aggregate_source_dkim; DROP TABLE aggregate_source_spf; \
         DROP TABLE aggregate_source_reasons; DROP TABLE aggregate_source_days; \
         DROP TABLE dns_records; {DAILY} DELETE FROM schema_migrations WHERE version >= 7;"
    ));
    let mut store = B::reopen(name);
    assert_eq!(store.schema_version().unwrap(), 10);
    compare(&mut store);
    drop(store);

    // Migration 10 alone on a store at version 9 (the daily sums filled from the rows).
    raw(&format!(
        "{DAILY} DELETE FROM schema_migrations WHERE version >= 10;"
    ));
    let mut store = B::reopen(name);
    assert_eq!(store.schema_version().unwrap(), 10);
    compare(&mut store);

    // The same reports in one batch (the sums written once, at its end): the same sums,
    // and a second batch of the same reports adds nothing.
    let batched = format!("{name}_batch");
    let (mut store, _) = B::open(&batched);
    store.begin_batch().unwrap();
    ingest(&mut store);
    store.end_batch().unwrap();
    compare(&mut store);
    let before = store.summary(&SummaryQuery::default()).unwrap();
    store.begin_batch().unwrap();
    assert!(
        !store
            .store_report(&google_report(), &origin())
            .unwrap()
            .is_new()
    );
    store.end_batch().unwrap();
    assert_eq!(store.summary(&SummaryQuery::default()).unwrap(), before);
    compare(&mut store);
}

fn failure_and_tls_reports<B: Backend>(name: &str) {
    let (mut store, _) = B::open(name);
    let f = parse_one("ruf.eml", ARF.as_bytes());
    assert_eq!(f.report.kind(), "failure");
    assert!(store.store_report(&f, &origin()).unwrap().is_new());
    assert!(!store.store_report(&f, &origin()).unwrap().is_new());

    let t = parse_one("tls.json", TLS.as_bytes());
    assert_eq!(t.report.kind(), "smtp_tls");
    let stored = store.store_report(&t, &origin()).unwrap();
    assert_eq!(stored.kind(), "smtp_tls");
    assert!(stored.is_new());
    assert!(!store.store_report(&t, &origin()).unwrap().is_new());

    let totals = store.totals().unwrap();
    assert_eq!(totals.failure_reports, 1);
    assert_eq!(totals.tls_reports, 1);
    let s = store.summary(&SummaryQuery::default()).unwrap();
    assert_eq!(s.failure_reports, vec![("example.com".to_string(), 1)]);
    assert_eq!(s.tls.len(), 1);
    assert_eq!(s.tls[0].domain, "example.com");
    assert_eq!(s.tls[0].successful_sessions, 5326);
    assert_eq!(s.tls[0].failed_sessions, 303);
}

fn rejected_inputs_are_kept<B: Backend>(name: &str) {
    let (mut store, _) = B::open(name);
    let bytes: Vec<u8> = (0u8..=255)
        .chain(b"\0not a report".iter().copied())
        .collect();
    let results = parse_named("junk.bin", &bytes, &Limits::default());
    let err = results[0].as_ref().unwrap_err();
    let msg = err.to_string();
    let part = err.path().to_string();
    let rej = Rejection {
        origin: Origin {
            kind: "file",
            location: "/data/junk.bin",
        },
        part: &part,
        error_kind: dmarc_store::error_kind(err),
        error: &msg,
        input: Some(&bytes),
    };
    let (id, new) = store.store_rejected(&rej).unwrap();
    assert!(new);
    let (id2, new2) = store.store_rejected(&rej).unwrap();
    assert_eq!(id, id2);
    assert!(!new2, "the same rejection twice is recorded once");

    let list = store.rejected().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].source, "/data/junk.bin");
    assert_eq!(list[0].error_kind, "unknown_format");
    assert_eq!(list[0].error, msg);
    assert_eq!(list[0].times_seen, 2);
    assert_eq!(list[0].size, bytes.len() as i64);
    assert_eq!(
        store.rejected_content(id).unwrap().as_deref(),
        Some(&bytes[..])
    );
    assert_eq!(store.rejected_content(id + 1000).unwrap(), None);

    // An input too large to keep is still listed.
    let big = Rejection {
        input: None,
        error: "limit max_input_size exceeded",
        error_kind: "limit",
        ..rej
    };
    let (bid, bnew) = store.store_rejected(&big).unwrap();
    assert!(bnew);
    assert_eq!(store.rejected_content(bid).unwrap(), None);
    assert_eq!(store.rejected().unwrap().len(), 2);
    assert_eq!(store.totals().unwrap().rejected, 2);
}

fn a_failed_report_leaves_nothing<B: Backend>(name: &str) {
    let (mut store, mut raw) = B::open(name);
    // Sabotage: the auth-results table disappears, so the third insert of the report fails.
    raw("DROP TABLE aggregate_dkim");
    let r = google_report();
    assert!(store.store_report(&r, &origin()).is_err());
    let t = store.totals().unwrap();
    assert_eq!(t.aggregate_reports, 0, "the report row was rolled back");
    assert_eq!(t.aggregate_records, 0, "the record rows were rolled back");
    // The connection is usable afterwards.
    let f = parse_one("ruf.eml", ARF.as_bytes());
    assert!(store.store_report(&f, &origin()).unwrap().is_new());

    // In a batch, the failed report leaves nothing and the others are kept.
    let t = parse_one("tls.json", TLS.as_bytes());
    store.begin_batch().unwrap();
    assert!(store.store_report(&r, &origin()).is_err());
    assert!(store.store_report(&t, &origin()).unwrap().is_new());
    assert!(store.begin_batch().is_err(), "one batch at a time");
    store.end_batch().unwrap();
    assert!(store.end_batch().is_err(), "no batch is open");
    let totals = store.totals().unwrap();
    assert_eq!(totals.aggregate_reports, 0);
    assert_eq!(totals.aggregate_records, 0);
    assert_eq!((totals.failure_reports, totals.tls_reports), (1, 1));

    // A batch never ended keeps nothing, sums and rows alike.
    let other = parse_one(
        "other.xml",
        &aggregate_xml(
            "Mail.ru",
            "m-2",
            "other.example",
            MARCH_1,
            &[Rec {
                ip: "203.0.113.9",
                count: 7,
                disposition: "quarantine",
                dkim: "fail",
                spf: "fail",
                from: "other.example",
            }],
        ),
    );
    raw(
        "CREATE TABLE aggregate_dkim (report BIGINT NOT NULL, row_no BIGINT NOT NULL, \
         seq BIGINT NOT NULL, domain TEXT NOT NULL, selector TEXT, result TEXT NOT NULL, \
         human_result TEXT, PRIMARY KEY (report, row_no, seq))",
    );
    store.begin_batch().unwrap();
    assert!(store.store_report(&other, &origin()).unwrap().is_new());
    drop(store);
    let mut store = B::reopen(name);
    assert_eq!(store.totals().unwrap().aggregate_reports, 0);
    assert!(
        store
            .summary(&SummaryQuery::default())
            .unwrap()
            .top_sources
            .is_empty()
    );
    assert!(store.store_report(&other, &origin()).unwrap().is_new());
    assert_eq!(store.totals().unwrap().aggregate_reports, 1);
}

fn hostile_text_is_stored<B: Backend>(name: &str) {
    let (mut store, _) = B::open(name);
    let r = google_report();
    let ParsedReport::Aggregate(mut a) = r.report else {
        panic!()
    };
    a.metadata.org_name = "evil\0org ' ; DROP TABLE rejected; --".into();
    a.records[0].identifiers.header_from = "\u{202e}moc.elpmaxe\0".into();
    a.metadata.date_range.begin = i64::MAX - 1;
    a.metadata.date_range.end = i64::MAX;
    a.records[0].count = u64::MAX;
    let p = Parsed {
        source: r.source,
        report: ParsedReport::Aggregate(a),
    };
    assert!(store.store_report(&p, &origin()).unwrap().is_new());
    assert!(!store.store_report(&p, &origin()).unwrap().is_new());
    let s = store.summary(&SummaryQuery::default()).unwrap();
    assert_eq!(s.reporters.len(), 1);
    assert_eq!(
        s.reporters[0].org_name,
        "evil\u{FFFD}org ' ; DROP TABLE rejected; --".replace(
            '\u{FFFD}',
            if store.dialect() == dmarc_store::Dialect::Sqlite {
                "\0"
            } else {
                "\u{FFFD}"
            },
        )
    );
    // The absurd count is capped, and the summary's sums stay in range.
    assert_eq!(
        s.domains[0].messages,
        dmarc_store::MAX_RECORD_COUNT as i64 + 10
    );
    assert_eq!(store.totals().unwrap().rejected, 0);
}

fn rdns_is_cached<B: Backend>(name: &str) {
    let (mut store, _) = B::open(name);
    store.store_report(&google_report(), &origin()).unwrap();
    store
        .store_report(&yahoo_report(MARCH_1, "y-1"), &origin())
        .unwrap();
    let s = store.summary(&SummaryQuery::default()).unwrap();
    assert!(s.top_sources.iter().all(|x| x.rdns.is_none()));
    let ips = Store::summary_ips(&s);
    assert_eq!(ips.len(), 4);
    // What the lookups found (the store does no DNS: dmarc_owner::rdns asks): one name,
    // not forward-confirmed, one temporary failure, two addresses without a name.
    let now = dmarc_store_now();
    let missing = store.rdns_needing_lookup(&ips, now).unwrap();
    assert_eq!(missing.len(), 4);
    let found: Vec<rdns::Looked> = missing
        .iter()
        .map(|ip| match ip.to_string().as_str() {
            "192.0.2.10" => (
                *ip,
                RdnsOutcome::Name("mail-out.example.com".into()),
                Some(false),
            ),
            "203.0.113.9" => (*ip, RdnsOutcome::TempError("timed out".into()), None),
            _ => (*ip, RdnsOutcome::NoName, None),
        })
        .collect();
    store.cache_rdns_all(&found, now).unwrap();
    // Cached: nothing needs asking again, temporary failures included (for an hour).
    assert!(store.rdns_needing_lookup(&ips, now).unwrap().is_empty());
    let s = store.summary(&SummaryQuery::default()).unwrap();
    assert_eq!(
        s.top_sources[0].rdns.as_deref(),
        Some("mail-out.example.com")
    );
    assert!(s.top_sources[1..].iter().all(|x| x.rdns.is_none()));
    // Stale entries are looked up again.
    let later = dmarc_store_now() + rdns::TEMPFAIL_TTL + 10;
    let stale = store.rdns_needing_lookup(&ips, later).unwrap();
    assert_eq!(stale, vec!["203.0.113.9".parse::<IpAddr>().unwrap()]);
    let much_later = dmarc_store_now() + rdns::POSITIVE_TTL + 10;
    assert_eq!(
        store.rdns_needing_lookup(&ips, much_later).unwrap().len(),
        4
    );
    store
        .cache_rdns(
            "192.0.2.10".parse().unwrap(),
            &RdnsOutcome::Name("renamed.example.com".into()),
            much_later,
        )
        .unwrap();
    assert_eq!(
        store.cached_rdns_name("192.0.2.10").unwrap().as_deref(),
        Some("renamed.example.com")
    );
    // Many addresses are read in batches, in the order given, unknown ones included.
    let many: Vec<IpAddr> = (0..1203u32)
        .map(|i| IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i)))
        .collect();
    let found: Vec<rdns::Looked> = many
        .iter()
        .step_by(2)
        .map(|ip| (*ip, RdnsOutcome::Name(format!("h{ip}.example")), Some(true)))
        .collect();
    store.cache_rdns_all(&found, now).unwrap();
    let text: Vec<String> = many.iter().map(IpAddr::to_string).collect();
    let refs: Vec<&str> = text.iter().map(String::as_str).collect();
    let cached = store.cached_rdns_many(&refs).unwrap();
    assert_eq!(cached.len(), 602);
    assert_eq!(
        cached["10.0.4.178"].confirmed_name(),
        Some("h10.0.4.178.example")
    );
    let missing = store.rdns_needing_lookup(&many, now).unwrap();
    assert_eq!(
        missing,
        many.iter().skip(1).step_by(2).copied().collect::<Vec<_>>()
    );
}

fn source_facts_of_a_domain<B: Backend>(name: &str) {
    use dmarc_store::sources::SourceQuery;
    let (mut store, mut raw) = B::open(name);
    store.store_report(&google_report(), &origin()).unwrap();
    store
        .store_report(&yahoo_report(MARCH_1, "y-1"), &origin())
        .unwrap();
    let q = SourceQuery {
        domain: "EXAMPLE.com.".into(),
        ..SourceQuery::default()
    };
    let f = store.source_facts(&q).unwrap();
    let total: i64 = f.outcomes.iter().map(|o| o.messages).sum();
    let s = store.summary(&SummaryQuery::default()).unwrap();
    let summary_total: i64 = s.domains.iter().map(|d| d.messages).sum();
    assert_eq!(total, summary_total, "{f:#?}");
    let google = f
        .outcomes
        .iter()
        .find(|o| o.ip == "192.0.2.10")
        .expect("the passing row");
    assert!(google.dmarc_pass());
    assert_eq!(google.published_p.as_deref(), Some("reject"));
    assert!(f.dkim.iter().any(|d| d.ip == "192.0.2.10"
        && d.domain == "example.com"
        && d.selector.as_deref() == Some("s1")
        && d.result == "pass"));
    assert!(
        f.dkim
            .iter()
            .any(|d| d.domain == "other.example" && d.selector.is_none())
    );
    assert!(f.spf.iter().all(|x| x.scope.as_deref() == Some("mfrom")));
    assert!(f.reasons.iter().all(|r| r.reason == "local_policy"));
    assert_eq!(
        f.reporters.iter().map(|r| r.messages).sum::<i64>(),
        summary_total
    );
    // A domain with no reports, and one only sharing a suffix, read nothing.
    for other in ["xample.com", "ample.com", "_xample.com"] {
        let q = SourceQuery {
            domain: other.into(),
            ..SourceQuery::default()
        };
        assert!(
            store.source_facts(&q).unwrap().outcomes.is_empty(),
            "{other}"
        );
    }
    // A damaged cache entry (SQLite keeps what it is given) is an error naming the
    // column, not a guess.
    if store.dialect() != dmarc_store::Dialect::Sqlite {
        return;
    }
    raw(
        "INSERT INTO rdns (ip, name, status, looked_up_at, confirmed) VALUES ('192.0.2.99', 'x', 'name', 'soon', 1)",
    );
    let e = store.cached_rdns("192.0.2.99").unwrap_err().to_string();
    assert!(
        e.contains("rdns entry: column 3 should be an integer"),
        "{e}"
    );
}

fn dmarc_store_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn large_report_round_trip<B: Backend>(name: &str) {
    let (mut store, _) = B::open(name);
    let ips: Vec<String> = (0..2000)
        .map(|i| format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256))
        .collect();
    let recs: Vec<Rec<'_>> = ips
        .iter()
        .map(|ip| Rec {
            ip,
            count: 2,
            disposition: "none",
            dkim: "pass",
            spf: "fail",
            from: "example.org",
        })
        .collect();
    let r = parse_one(
        "big.xml",
        &aggregate_xml("big.example", "b-1", "example.org", MARCH_1, &recs),
    );
    assert!(store.store_report(&r, &origin()).unwrap().is_new());
    let s = store
        .summary(&SummaryQuery {
            granularity: Granularity::Total,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(s.domains[0].messages, 4000);
    assert_eq!(s.domains[0].dkim_aligned_pass, 4000);
    assert_eq!(s.totals.aggregate_records, 2000);
}

fn concurrent_writers_store_each_report_once<B: Backend>(name: &str) {
    let (first, _) = B::open(name);
    let reports: Vec<Parsed> = (0..20)
        .map(|i| yahoo_report(MARCH_1 + i * DAY, &format!("c-{i}")))
        .collect();
    let stores = vec![first, B::reopen(name), B::reopen(name)];
    let new_total: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = stores
            .into_iter()
            .map(|mut store| {
                let reports = &reports;
                scope.spawn(move || {
                    reports
                        .iter()
                        .filter(|r| store.store_report(r, &origin()).unwrap().is_new())
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(new_total, 20, "each report is new for exactly one writer");
    let mut store = B::reopen(name);
    let t = store.totals().unwrap();
    assert_eq!(t.aggregate_reports, 20);
    assert_eq!(t.aggregate_records, 40);
}

fn observation(ip: &str, domain: Option<&str>, dkim: &[(&str, &str)]) -> Observation {
    use dmarc_receiver::observation::{DkimAuth, Override, PublishedPolicy, SpfAuth};
    Observation {
        policy_domain: domain.map(str::to_owned),
        source_ip: ip.parse().unwrap(),
        header_from: domain.map(str::to_owned),
        envelope_from: Some("bounces.esp.example".into()),
        envelope_to: vec!["receiver.example".into(), "other.example".into()],
        spf: vec![SpfAuth {
            domain: "bounces.esp.example".into(),
            scope: "mfrom".into(),
            result: "pass".into(),
            human_result: None,
        }],
        dkim: dkim
            .iter()
            .map(|(d, r)| DkimAuth {
                domain: (*d).into(),
                selector: Some("s1".into()),
                result: (*r).into(),
                human_result: (*r != "pass").then(|| "body hash mismatch".into()),
            })
            .collect(),
        dmarc: "fail".into(),
        spf_aligned: "fail".into(),
        dkim_aligned: "fail".into(),
        disposition: "none".into(),
        overrides: vec![Override {
            kind: "policy_test_mode".into(),
            comment: "t=y: 'quarantine' applied as none".into(),
        }],
        published: domain.map(|d| PublishedPolicy {
            domain: d.into(),
            p: "quarantine".into(),
            sp: None,
            np: Some("reject".into()),
            adkim: "r".into(),
            aspf: "s".into(),
            pct: None,
            fo: Some("1:d".into()),
            testing: true,
        }),
    }
}

/// Two writers (two MX hosts) add observations at the same time, by upsert: the totals
/// are exact, equal keys in one period are one row, and each row reads back as written.
fn concurrent_observation_writers_give_exact_totals<B: Backend>(name: &str) {
    let (mut store, _raw) = B::open(name);
    let hour = 1_796_180_400; // 2026-12-02 03:00 UTC
    let kinds = [
        observation(
            "192.0.2.1",
            Some("brand.example"),
            &[("brand.example", "fail")],
        ),
        observation("192.0.2.2", Some("brand.example"), &[]),
        observation(
            "2001:db8::25",
            None,
            &[("esp.example", "pass"), ("brand.example", "fail")],
        ),
    ];
    assert_eq!(store.add_observations(&[]).unwrap(), 0);
    let rounds = 25;
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let kinds = kinds.clone();
            let name = name.to_owned();
            std::thread::spawn(move || {
                let mut store = B::reopen(&name);
                for round in 0..rounds {
                    // Every kind in this hour (twice the first), the first in the next hour;
                    // the order differs between the writers.
                    let mut batch: Vec<(i64, Observation)> = vec![
                        (hour + 10 + round, kinds[0].clone()),
                        (hour + 3599, kinds[0].clone()),
                        (hour + 60, kinds[1].clone()),
                        (hour + 61, kinds[2].clone()),
                        (hour + 3600, kinds[0].clone()),
                    ];
                    if w == 1 {
                        batch.reverse();
                    }
                    assert_eq!(store.add_observations(&batch).unwrap(), 5);
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let rows = store.observation_counts(None, hour, hour + 7200).unwrap();
    let total: u64 = rows.iter().map(|r| r.count).sum();
    assert_eq!(total, 2 * 5 * rounds as u64);
    assert_eq!(rows.len(), 4, "{rows:#?}");
    let count = |period: i64, o: &Observation| {
        rows.iter()
            .find(|r| r.period_start == period && &r.observation == o)
            .map(|r| r.count)
    };
    assert_eq!(count(hour, &kinds[0]), Some(2 * 2 * rounds as u64));
    assert_eq!(count(hour, &kinds[1]), Some(2 * rounds as u64));
    assert_eq!(count(hour, &kinds[2]), Some(2 * rounds as u64));
    assert_eq!(count(hour + 3600, &kinds[0]), Some(2 * rounds as u64));
    // One policy domain; "" is the messages without a policy.
    let brand = store
        .observation_counts(Some("brand.example"), hour, hour + 3600)
        .unwrap();
    assert_eq!(brand.len(), 2);
    let none = store
        .observation_counts(Some(""), hour, hour + 3600)
        .unwrap();
    assert_eq!(none.len(), 1);
    assert_eq!(none[0].observation, kinds[2]);
    assert!(store.observation_counts(None, 0, hour).unwrap().is_empty());
}

/// Issue 9: several processes opening a fresh database at once (two `ingest` runs) all
/// succeed, one of them creating the schema, none failing with "database is locked" or a
/// duplicate table.
fn concurrent_openers_of_a_fresh_database_never_fail<B: Backend>(name: &str) {
    for round in 0..15 {
        B::wipe(name);
        let start = std::sync::Barrier::new(4);
        let versions: Vec<i64> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let start = &start;
                    scope.spawn(move || {
                        start.wait();
                        let mut store = B::reopen(name);
                        store.schema_version().unwrap()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| panic!("round {round}: an opener failed"))
                })
                .collect()
        });
        assert!(
            versions.iter().all(|v| *v == versions[0] && *v > 0),
            "{versions:?}"
        );
    }
}

/// Failure-report candidates: queued in one transaction, read back whole in arrival order,
/// finished with their report, and failure reports counted per domain for the rate limit.
fn failure_candidates_queue_and_finish<B: Backend>(name: &str) {
    use dmarc_receiver::failure::{FailedSignature, FailureCandidate};
    use dmarc_store::OutgoingReport;
    let (mut store, _raw) = B::open(name);
    let candidate = |arrival: i64, ip: &str| FailureCandidate {
        policy_domain: "example.com".into(),
        arrival,
        source_ip: ip.parse().unwrap(),
        fo: "0:d".into(),
        asked_by: vec!["0".into()],
        ruf: vec!["mailto:ruf@example.com!10m".into()],
        auth_failure: "dmarc".into(),
        dkim_unaligned: true,
        spf_unaligned: true,
        failed_signature: Some(FailedSignature {
            domain: "example.com".into(),
            identity: "@example.com".into(),
            selector: "s1".into(),
        }),
        delivery_result: "reject".into(),
        authentication_results: "mx.example.net; dmarc=fail header.from=example.com".into(),
        mail_from: "bounce@esp.example".into(),
        rcpt_to: vec!["user@receiver.example".into()],
        reported_domain: "example.com".into(),
        explanation: "DMARC fail".into(),
        observation: observation(ip, Some("example.com"), &[("example.com", "fail")]),
        header: "From: <a@example.com>\r\nSubject: h\u{e9}llo \0 nul\r\n".into(),
        header_truncated: false,
    };
    let (a, b) = (candidate(2000, "192.0.2.1"), candidate(1000, "2001:db8::1"));
    assert_eq!(
        store
            .queue_failure_candidates(&[a.clone(), b.clone()])
            .unwrap(),
        2
    );
    let queued = store.failure_candidates("queued", 10).unwrap();
    assert_eq!(queued.len(), 2);
    assert_eq!(queued[0].candidate.arrival, 1000, "oldest first");
    assert_eq!(queued[1].candidate.source_ip, a.source_ip);
    assert_eq!(queued[1].candidate.fo, "0:d");
    assert!(
        queued[1]
            .candidate
            .header
            .starts_with("From: <a@example.com>")
    );
    assert_eq!(store.failure_candidates("queued", 1).unwrap().len(), 1);

    let report = store
        .save_outgoing_report(&OutgoingReport {
            id: 0,
            kind: "failure".into(),
            policy_domain: "example.com".into(),
            begin: 1000,
            end: queued[0].id,
            report_id: "r1".into(),
            filename: "r1.eml".into(),
            media_type: "message/feedback-report".into(),
            content: b"Feedback-Type: auth-failure\r\n".to_vec(),
            record_count: 1,
            message_count: 1,
            created_at: 5000,
        })
        .unwrap();
    assert_eq!(report.created_at, 5000);
    store
        .finish_failure_candidate(queued[0].id, "reported", "report r1", Some(report.id))
        .unwrap();
    store
        .finish_failure_candidate(queued[1].id, "dropped", "rate limit", None)
        .unwrap();
    assert!(store.failure_candidates("queued", 10).unwrap().is_empty());
    let done = store.failure_candidates("reported", 10).unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].report, Some(report.id));
    assert_eq!(done[0].detail, "report r1");
    assert_eq!(
        store.failure_candidates("dropped", 10).unwrap()[0].detail,
        "rate limit"
    );
    assert_eq!(
        store
            .reports_made_since("failure", "example.com", 4000)
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .reports_made_since("failure", "example.com", 6000)
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .reports_made_since("failure", "other.example", 0)
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .reports_made_since("aggregate", "example.com", 0)
            .unwrap(),
        0
    );
}

/// A delivery a stopped run left `sending` is deferred and sent again later (same
/// Message-ID), never lost; a sent one is left alone.
fn interrupted_deliveries_are_retried<B: Backend>(name: &str) {
    use dmarc_store::{Delivery, DeliveryStatus, OutgoingReport};
    let (mut store, _raw) = B::open(name);
    let report = store
        .save_outgoing_report(&OutgoingReport {
            id: 0,
            kind: "aggregate".into(),
            policy_domain: "example.com".into(),
            begin: 0,
            end: 86_399,
            report_id: "r".into(),
            filename: "r.xml.gz".into(),
            media_type: "application/gzip".into(),
            content: vec![1, 2, 3],
            record_count: 1,
            message_count: 1,
            created_at: 100,
        })
        .unwrap();
    for dest in ["mailto:a@example.com", "mailto:b@example.com"] {
        store
            .add_delivery(&Delivery {
                report: report.id,
                destination: dest.into(),
                address: dest[7..].into(),
                status: DeliveryStatus::Pending,
                detail: String::new(),
                attempts: 0,
                next_attempt: None,
                updated_at: 100,
                sent_at: None,
                message_id: None,
            })
            .unwrap();
        assert!(store.claim_delivery(report.id, dest, 100).unwrap());
    }
    store
        .finish_delivery(
            report.id,
            "mailto:b@example.com",
            DeliveryStatus::Sent,
            "250 ok",
            None,
            Some("<m>"),
            101,
        )
        .unwrap();
    // The run stopped with a still `sending`.
    assert_eq!(store.retry_interrupted_deliveries(200, 1100).unwrap(), 1);
    let d = store.deliveries(report.id).unwrap();
    assert_eq!(d[0].status, DeliveryStatus::Deferred);
    assert_eq!(d[0].next_attempt, Some(1100));
    assert!(d[0].detail.contains("same Message-ID"), "{}", d[0].detail);
    assert_eq!(d[1].status, DeliveryStatus::Sent);
    assert!(
        store
            .reports_with_open_deliveries("aggregate", 1000)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .reports_with_open_deliveries("aggregate", 1100)
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .claim_delivery(report.id, "mailto:a@example.com", 1100)
            .unwrap()
    );
    assert_eq!(store.deliveries(report.id).unwrap()[0].attempts, 2);
}

macro_rules! suite {
    ($module:ident, $backend:ty) => {
        mod $module {
            use super::*;
            suite!(@tests $module, $backend,
                migrations_are_idempotent,
                aggregate_is_stored_once,
                summary_counts_and_rates,
                per_report_sums_equal_the_summary,
                source_sums_equal_the_rows,
                failure_and_tls_reports,
                rejected_inputs_are_kept,
                a_failed_report_leaves_nothing,
                hostile_text_is_stored,
                rdns_is_cached,
                large_report_round_trip,
                concurrent_writers_store_each_report_once,
                dkim_selectors_of_a_policy_domain,
                dns_records_are_kept,
                concurrent_observation_writers_give_exact_totals,
                source_facts_of_a_domain,
                concurrent_openers_of_a_fresh_database_never_fail,
                failure_candidates_queue_and_finish,
                interrupted_deliveries_are_retried,
            );
        }
    };
    (@tests $module:ident, $backend:ty, $($test:ident),+ $(,)?) => {
        $(
            #[test]
            fn $test() {
                super::$test::<$backend>(stringify!($test));
            }
        )+
    };
}

suite!(sqlite, Sqlite);
suite!(postgres, Postgres);
