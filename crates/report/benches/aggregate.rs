//! Aggregate report parsing throughput, against the mail-auth crate's parser on the same
//! bytes. The report is generated here (deterministically) rather than committed.
//!
//! cargo bench -p dmarc-report --bench aggregate

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dmarc_report::Limits;

#[path = "support/generate.rs"]
mod generate;
use generate::large_report;

fn bench(c: &mut Criterion) {
    for (name, records, namespaced) in [
        ("google_style_40k_records", 40_000usize, false),
        ("rfc9990_40k_records", 40_000, true),
    ] {
        let xml = large_report(records, namespaced);
        let limits = Limits::default();
        // Both parsers read the whole document.
        let ours = dmarc_report::parse_aggregate_xml(xml.as_bytes(), &limits).expect("parses");
        assert_eq!(ours.records.len(), records);
        let theirs =
            mail_auth::report::Report::parse_xml(xml.as_bytes()).expect("mail-auth parses");
        assert_eq!(theirs.records().len(), records);

        let mut g = c.benchmark_group(format!("aggregate/{name}"));
        g.throughput(Throughput::Bytes(xml.len() as u64));
        g.sample_size(20);
        g.bench_function("dmarc-report", |b| {
            b.iter(|| {
                dmarc_report::parse_aggregate_xml(black_box(xml.as_bytes()), &limits)
                    .map(|r| r.records.len())
            })
        });
        g.bench_function("mail-auth 0.13.3", |b| {
            b.iter(|| {
                mail_auth::report::Report::parse_xml(black_box(xml.as_bytes()))
                    .map(|r| r.records().len())
            })
        });
        g.bench_function("quick-xml 0.42 events only", |b| {
            b.iter(|| {
                let mut r = quick_xml::Reader::from_reader(black_box(xml.as_bytes()));
                r.config_mut().trim_text(true);
                let mut n = 0usize;
                while !matches!(r.read_event(), Ok(quick_xml::events::Event::Eof) | Err(_)) {
                    n += 1;
                }
                n
            })
        });
        g.finish();
        eprintln!("{name}: {} bytes, {records} records", xml.len());
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
