//! End-to-end ingest into SQLite: parse one large aggregate report (generated in setup)
//! and store it with its records and authentication results, in one transaction, into a
//! database file in WAL mode. Throughput is in records.
//!
//! ```text
//! cargo bench -p dmarc-store --bench ingest
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use dmarc_report::{Limits, parse_named};
use dmarc_store::{Origin, Store};

/// An aggregate report of `n` records, each with one DKIM and one SPF result, from a
/// spread of IPv4 and IPv6 sources; `REPORT-ID` is replaced per iteration.
fn large_report(n: usize) -> String {
    let mut x = String::with_capacity(n * 700);
    x.push_str(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n<report_metadata>\
         <org_name>google.com</org_name><email>noreply-dmarc-support@google.com</email>\
         <extra_contact_info>https://support.google.com/a/answer/2466580</extra_contact_info>\
         <report_id>REPORT-ID</report_id><date_range><begin>1709251200</begin>\
         <end>1709337599</end></date_range></report_metadata>\n<policy_published>\
         <domain>example.com</domain><adkim>r</adkim><aspf>r</aspf><p>quarantine</p>\
         <sp>quarantine</sp><pct>100</pct></policy_published>\n",
    );
    for i in 0..n {
        let ip = if i % 5 == 4 {
            format!("2001:db8:{:x}::{:x}", i >> 16, i & 0xffff)
        } else {
            format!(
                "{}.{}.{}.{}",
                10 + (i >> 24),
                (i >> 16) & 255,
                (i >> 8) & 255,
                i & 255
            )
        };
        let pass = i % 3 != 0;
        let (disp, dkim, spf) = if pass {
            ("none", "pass", "pass")
        } else {
            ("quarantine", "fail", "fail")
        };
        x.push_str(&format!(
            "<record>\n<row><source_ip>{ip}</source_ip><count>{}</count><policy_evaluated>\
             <disposition>{disp}</disposition><dkim>{dkim}</dkim><spf>{spf}</spf>\
             </policy_evaluated></row>\n<identifiers><header_from>example.com</header_from>\
             </identifiers>\n<auth_results><dkim><domain>example.com</domain>\
             <result>{dkim}</result><selector>google</selector></dkim><spf>\
             <domain>bounce{}.example.com</domain><result>{spf}</result></spf></auth_results>\n\
             </record>\n",
            1 + i % 17,
            i % 7
        ));
    }
    x.push_str("</feedback>\n");
    x
}

const RECORDS: usize = 50_000;

fn bench(c: &mut Criterion) {
    let template = large_report(RECORDS);
    let dir = std::env::temp_dir().join(format!("dmarc-store-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    let path = dir.join("bench.sqlite3");
    let mut store = Store::open_sqlite(&path).expect("open");
    let limits = Limits::default();
    let origin = Origin {
        kind: "file",
        location: "bench.xml",
    };
    let mut n = 0u64;

    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(RECORDS as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.bench_function("sqlite_aggregate_50k_records_parse_and_store", |b| {
        b.iter_batched(
            || {
                n += 1;
                template.replacen("REPORT-ID", &format!("bench-{n}"), 1)
            },
            |xml| {
                for parsed in parse_named("bench.xml", xml.as_bytes(), &limits) {
                    let parsed = parsed.expect("parses");
                    let stored = store.store_report(&parsed, &origin).expect("stores");
                    assert!(stored.is_new());
                    black_box(stored);
                }
            },
            BatchSize::PerIteration,
        )
    });
    // The parse alone, to see the split between parsing and storing.
    g.bench_function("parse_only_aggregate_50k_records", |b| {
        b.iter(|| black_box(parse_named("bench.xml", template.as_bytes(), &limits)))
    });
    g.finish();
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
