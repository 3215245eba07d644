//! Interleaved min-of-N timing (robust on a loaded machine); the criterion bench is the
//! reference. `cargo run --release -p dmarc-report --example agg_timing`
//!
//! Other modes (first argument), for `perf stat -e minor-faults,task-clock` and the like:
//! `gen-only` (generate the report, nothing else), `ours-only [N]` / `theirs-only [N]`
//! (N back-to-back parses, default 20), `ours-seq` (each of 20 back-to-back parses timed),
//! `sizes` (size_of the model types).
use std::hint::black_box;
use std::time::Instant;

#[path = "../benches/support/generate.rs"]
mod generate;
use generate::large_report;

fn main() {
    let xml = large_report(40_000, false);
    let limits = dmarc_report::Limits::default();
    // `ours-only N` / `theirs-only N`: N back-to-back parses (default 20), for `perf stat`
    // and callgrind.
    let iters: usize = std::env::args()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    if std::env::args().any(|a| a == "gen-only") {
        black_box(&xml);
        return;
    }
    if std::env::args().any(|a| a == "theirs-only") {
        for _ in 0..iters {
            black_box(
                mail_auth::report::Report::parse_xml(black_box(xml.as_bytes()))
                    .map(|r| r.records().len())
                    .ok(),
            );
        }
        return;
    }
    if std::env::args().any(|a| a == "sizes") {
        use dmarc_report::aggregate::*;
        use std::mem::size_of;
        println!(
            "Record {} PolicyEvaluated {} Identifiers {} AuthResults {} DkimAuthResult {} \
             SpfAuthResult {} OverrideReason {} Option<DkimResult> {} SpfResult {}",
            size_of::<Record>(),
            size_of::<PolicyEvaluated>(),
            size_of::<Identifiers>(),
            size_of::<AuthResults>(),
            size_of::<DkimAuthResult>(),
            size_of::<SpfAuthResult>(),
            size_of::<OverrideReason>(),
            size_of::<Option<DkimResult>>(),
            size_of::<SpfResult>(),
        );
        return;
    }
    if std::env::args().any(|a| a == "ours-seq") {
        // Back-to-back parses, each timed (includes dropping the previous report).
        let mut times = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            black_box(
                dmarc_report::parse_aggregate_xml(black_box(xml.as_bytes()), &limits)
                    .map(|r| r.records.len())
                    .ok(),
            );
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "ours back-to-back: min {:.1} ms, median {:.1} ms",
            times[0],
            times[times.len() / 2]
        );
        return;
    }
    if std::env::args().any(|a| a == "ours-only") {
        for _ in 0..iters {
            black_box(
                dmarc_report::parse_aggregate_xml(black_box(xml.as_bytes()), &limits)
                    .map(|r| r.records.len())
                    .ok(),
            );
        }
        return;
    }
    let mut best = [f64::MAX; 4];
    for _ in 0..15 {
        let t = Instant::now();
        black_box(
            dmarc_report::parse_aggregate_xml(black_box(xml.as_bytes()), &limits)
                .map(|r| r.records.len())
                .ok(),
        );
        best[3] = best[3].min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        black_box(
            dmarc_report::parse_aggregate_xml(black_box(xml.as_bytes()), &limits)
                .map(|r| r.records.len())
                .ok(),
        );
        best[0] = best[0].min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        black_box(
            mail_auth::report::Report::parse_xml(black_box(xml.as_bytes()))
                .map(|r| r.records().len())
                .ok(),
        );
        best[1] = best[1].min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let mut r = quick_xml::Reader::from_reader(black_box(xml.as_bytes()));
        r.config_mut().trim_text(true);
        let mut n = 0usize;
        while !matches!(r.read_event(), Ok(quick_xml::events::Event::Eof) | Err(_)) {
            n += 1;
        }
        black_box(n);
        best[2] = best[2].min(t.elapsed().as_secs_f64());
    }
    let mb = xml.len() as f64 / (1024.0 * 1024.0);
    println!(
        "{} bytes; dmarc-report {:.1} ms ({:.0} MiB/s); mail-auth {:.1} ms ({:.0} MiB/s); ratio {:.2}; quick-xml events only {:.1} ms; ours again {:.1} ms",
        xml.len(),
        best[0] * 1e3,
        mb / best[0],
        best[1] * 1e3,
        mb / best[1],
        best[1] / best[0],
        best[2] * 1e3,
        best[3] * 1e3
    );
}
