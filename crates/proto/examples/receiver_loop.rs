//! Profiling aid: loops `receiver::verify_message` over mail-bench (warm caches).
//! `cargo build --release -p dmarc-proto --example receiver_loop` then
//! `valgrind --tool=callgrind target/release/examples/receiver_loop 3`.
use std::net::IpAddr;

use dmarc_proto::FixedClock;
use dmarc_proto::receiver::{FixedDraw, ReceiverConfig, SmtpFacts, verify_message};

#[path = "../benches/support/map_lookup.rs"]
mod map_lookup;

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let dir = dmarc_testkit::corpus("mail-bench");
    let text = std::fs::read_to_string(dir.join("cases.jsonl")).expect("cases");
    let cases: Vec<(Vec<u8>, SmtpFacts)> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            let ip: IpAddr = v["ip"].as_str().expect("ip").parse().expect("ip");
            let facts = SmtpFacts::new(ip, v["helo"].as_str().expect("helo"))
                .with_mail_from(v["mail_from"].as_str().expect("mf"));
            (
                std::fs::read(dir.join(v["file"].as_str().expect("file"))).expect("m"),
                facts,
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
