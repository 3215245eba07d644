//! The fixture of the report-generation benchmark (BENCHMARKS.md, "Reports out"): one UTC
//! day of 1,000,000 observations in 10,000 distinct rows over 500 policy domains, written to
//! an SQLite store, and a zone file publishing each domain's DMARC record with an `rua=`.
//!
//! `cargo run --release -p dmarc-reporter --example report_bench_fixture DIR [DOMAINS]`
//! writes `DIR/obs.sqlite3` and `DIR/zone.txt`; the day is 2026-11-01 (UTC). `DOMAINS`
//! (default 500) spreads the same rows over fewer or more policy domains, to see memory
//! follow the largest report rather than the day.

use std::net::{IpAddr, Ipv4Addr};

use dmarc_receiver::Observation;
use dmarc_receiver::observation::{DkimAuth, PublishedPolicy, SpfAuth};

const ROWS: usize = 10_000;
const MESSAGES: u64 = 1_000_000;
/// 2026-11-01T00:00:00Z.
const DAY: i64 = 1_793_491_200;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: report_bench_fixture DIR");
    let dir = std::path::Path::new(&dir);
    let domains: usize = std::env::args()
        .nth(2)
        .map_or(500, |d| d.parse().expect("DOMAINS: a number"))
        .clamp(1, ROWS);
    std::fs::create_dir_all(dir).expect("create DIR");
    let db = dir.join("obs.sqlite3");
    let _ = std::fs::remove_file(&db);
    let mut store = dmarc_store::Store::open(db.to_str().expect("utf-8 path")).expect("store");
    let per_row = MESSAGES / ROWS as u64;
    let mut items: Vec<(i64, Observation, u64)> = Vec::with_capacity(ROWS);
    for i in 0..ROWS {
        let d = i % domains;
        let domain = format!("brand{d}.example");
        let n = u32::try_from(i).expect("small");
        let ip = IpAddr::V4(Ipv4Addr::from(0xC633_0000u32 + n)); // 198.51.0.0/16 and up
        let pass = i % 3 != 0;
        let o = Observation {
            policy_domain: Some(domain.clone()),
            source_ip: ip,
            header_from: Some(domain.clone()),
            envelope_from: Some(format!("bounces.esp{}.example", i % 7)),
            envelope_to: vec!["receiver.example".to_owned()],
            spf: vec![SpfAuth {
                domain: format!("bounces.esp{}.example", i % 7),
                scope: "mfrom".to_owned(),
                result: if pass { "pass" } else { "softfail" }.to_owned(),
                human_result: (!pass).then(|| "not authorised".to_owned()),
            }],
            dkim: vec![DkimAuth {
                domain: domain.clone(),
                selector: Some("s1".to_owned()),
                result: if pass { "pass" } else { "fail" }.to_owned(),
                human_result: (!pass).then(|| "body hash mismatch".to_owned()),
            }],
            dmarc: if pass { "pass" } else { "fail" }.to_owned(),
            spf_aligned: "fail".to_owned(),
            dkim_aligned: if pass { "pass" } else { "fail" }.to_owned(),
            disposition: "none".to_owned(),
            overrides: Vec::new(),
            published: Some(PublishedPolicy {
                domain: domain.clone(),
                p: "none".to_owned(),
                sp: None,
                np: None,
                adkim: "r".to_owned(),
                aspf: "r".to_owned(),
                pct: None,
                fo: None,
                testing: false,
            }),
        };
        let hour = i64::try_from((i / domains) % 24).expect("small");
        items.push((DAY + hour * 3600, o, per_row));
    }
    let refs: Vec<(i64, &Observation, u64)> = items.iter().map(|(t, o, n)| (*t, o, *n)).collect();
    let n = store.add_observation_counts(&refs).expect("write");
    let mut zone = String::from("$ORIGIN example.\n$TTL 300\n");
    for d in 0..domains {
        zone.push_str(&format!(
            "_dmarc.brand{d} IN TXT \"v=DMARC1; p=none; rua=mailto:dmarc@brand{d}.example\"\n"
        ));
    }
    std::fs::write(dir.join("zone.txt"), zone).expect("zone");
    println!(
        "{n} messages in {ROWS} rows over {domains} policy domains: {}",
        db.display()
    );
}
