//! Profiling aid: times parts of the receiver path in place over mail-bench (warm caches),
//! best of 30 rounds: DKIM signature parsing, Authentication-Results rendering (alone, and
//! built then rendered), message parsing, signature parsing as `start_message` does it,
//! cloning and dropping the verdicts, and the whole `verify_message` with and without the
//! header. `cargo run --release -p dmarc-receiver --example parts_timing`; with the argument
//! `sig` it only loops over signature parsing (for callgrind).
use dmarc_proto::FixedClock;
use dmarc_receiver::{FixedDraw, ReceiverConfig, SmtpFacts, verify_message};
use std::time::Instant;
#[path = "../../proto/benches/support/map_lookup.rs"]
mod map_lookup;
fn main() {
    let dir = dmarc_testkit::corpus("mail-bench");
    let cases: Vec<(Vec<u8>, dmarc_receiver::SmtpFacts)> = map_lookup::mail_bench_cases(&dir)
        .into_iter()
        .map(|(m, (ip, helo, mail_from))| {
            (
                m,
                dmarc_receiver::SmtpFacts::new(ip, helo).with_mail_from(mail_from),
            )
        })
        .collect();
    let lookup = map_lookup::load_zone_json(&dir.join("zone.json"));
    let clock = FixedClock::from_unix_seconds(1_795_400_000);
    let config = ReceiverConfig::new("mx.receiver.example");
    let run = |m: &Vec<u8>, f: &SmtpFacts| {
        futures::executor::block_on(verify_message(
            &lookup,
            &clock,
            &FixedDraw(0),
            &config,
            f,
            m,
        ))
    };
    {
        let (m, f) = &cases[0];
        let fut = verify_message(&lookup, &clock, &FixedDraw(0), &config, f, m);
        eprintln!(
            "verify_message future: {} bytes; Verdicts {} bytes",
            std::mem::size_of_val(&fut),
            std::mem::size_of::<dmarc_receiver::Verdicts>()
        );
    }
    let verdicts: Vec<_> = cases.iter().map(|(m, f)| run(m, f)).collect();
    let n = cases.len() as f64;
    let sigs: Vec<Vec<u8>> = cases
        .iter()
        .flat_map(|(m, _)| {
            let msg = dmarc_proto::message::Message::parse(m);
            msg.fields("DKIM-Signature")
                .map(|f| f.value().to_vec())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut bsig = f64::MAX;
    if std::env::args().any(|a| a == "sig") {
        for _ in 0..200 {
            for v in &sigs {
                std::hint::black_box(dmarc_proto::dkim::parse_signature(v).is_ok());
            }
        }
        return;
    }
    let mut best = [f64::MAX; 7];
    let verifier = dmarc_proto::dkim::Verifier::new(Default::default());
    for _ in 0..30 {
        let t = Instant::now();
        for v in &sigs {
            std::hint::black_box(dmarc_proto::dkim::parse_signature(v).is_ok());
        }
        bsig = bsig.min(t.elapsed().as_secs_f64() * 1e6 / n);
        let t = Instant::now();
        for v in &verdicts {
            std::hint::black_box(v.authentication_results().to_header());
        }
        best[0] = best[0].min(t.elapsed().as_secs_f64() * 1e6 / n);
        let ars: Vec<_> = verdicts
            .iter()
            .map(|v| v.authentication_results())
            .collect();
        let t = Instant::now();
        for a in &ars {
            std::hint::black_box(a.to_header());
        }
        best[5] = best[5].min(t.elapsed().as_secs_f64() * 1e6 / n);
        drop(ars);
        let t = Instant::now();
        for (m, _) in &cases {
            std::hint::black_box(dmarc_proto::message::Message::parse(m));
        }
        best[1] = best[1].min(t.elapsed().as_secs_f64() * 1e6 / n);
        let t = Instant::now();
        for (m, _) in &cases {
            let msg = dmarc_proto::message::Message::parse(m);
            std::hint::black_box(verifier.start_message(&msg).key_names());
        }
        best[2] = best[2].min(t.elapsed().as_secs_f64() * 1e6 / n);
        let t = Instant::now();
        for v in &verdicts {
            std::hint::black_box(v.clone());
        }
        best[3] = best[3].min(t.elapsed().as_secs_f64() * 1e6 / n);
        let t = Instant::now();
        for (m, f) in &cases {
            std::hint::black_box(run(m, f));
        }
        best[4] = best[4].min(t.elapsed().as_secs_f64() * 1e6 / n);
        let t = Instant::now();
        for (m, f) in &cases {
            let v = run(m, f);
            std::hint::black_box(v.authentication_results_header());
        }
        best[6] = best[6].min(t.elapsed().as_secs_f64() * 1e6 / n);
    }
    println!(
        "parse_signature {:.2} µs; AR render only {:.2} µs; AR build+render {:.2} µs; Message::parse {:.2} µs; parse+start_message {:.2} µs; Verdicts clone+drop {:.2} µs; whole {:.2} µs; whole+AR {:.2} µs",
        bsig, best[5], best[0], best[1], best[2], best[3], best[4], best[6]
    );
}
