//! Profiling aid: loops `receiver::verify_message` over mail-bench (warm caches).
//! `cargo build --release -p dmarc-receiver --example receiver_loop` then
//! `valgrind --tool=callgrind target/release/examples/receiver_loop 3`.

use dmarc_proto::FixedClock;
use dmarc_receiver::{FixedDraw, ReceiverConfig, verify_message};

#[path = "../../proto/benches/support/map_lookup.rs"]
mod map_lookup;

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
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
    for _ in 0..rounds {
        for (m, f) in &cases {
            let v = futures::executor::block_on(verify_message(
                &lookup,
                &clock,
                &FixedDraw(0),
                &config,
                f,
                m,
            ));
            std::hint::black_box(v.authentication_results_header());
        }
    }
}
