//! Profiling aid: loops `receiver::verify_message` over mail-bench (warm caches).
//! `cargo build --release -p dmarc-proto --example receiver_loop` then
//! `valgrind --tool=callgrind target/release/examples/receiver_loop 3`.
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dmarc_proto::FixedClock;
use dmarc_proto::dns::{DnsError, DnsResult, Lookup, MxRecord};
use dmarc_proto::receiver::{FixedDraw, ReceiverConfig, SmtpFacts, verify_message};

struct MapLookup {
    txt: HashMap<String, Vec<Vec<u8>>>,
    a: HashMap<String, Vec<Ipv4Addr>>,
}
impl MapLookup {
    fn get<T: Clone>(&self, map: &HashMap<String, Vec<T>>, name: &str) -> DnsResult<T> {
        let k = name.trim_end_matches('.').to_ascii_lowercase();
        match map.get(&k) {
            Some(v) => Ok(v.clone()),
            None if self.txt.contains_key(&k) || self.a.contains_key(&k) => Err(DnsError::NoData),
            None => Err(DnsError::NxDomain),
        }
    }
}
impl Lookup for MapLookup {
    async fn txt(&self, name: &str) -> DnsResult<Vec<u8>> {
        self.get(&self.txt, name)
    }
    async fn a(&self, name: &str) -> DnsResult<Ipv4Addr> {
        self.get(&self.a, name)
    }
    async fn aaaa(&self, name: &str) -> DnsResult<Ipv6Addr> {
        self.get(&HashMap::new(), name)
    }
    async fn mx(&self, name: &str) -> DnsResult<MxRecord> {
        self.get(&HashMap::new(), name)
    }
    async fn ptr(&self, _: IpAddr) -> DnsResult<String> {
        Err(DnsError::NxDomain)
    }
}

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
    let zone: HashMap<String, HashMap<String, Vec<String>>> =
        serde_json::from_slice(&std::fs::read(dir.join("zone.json")).expect("zone")).expect("zone");
    let mut lookup = MapLookup {
        txt: HashMap::new(),
        a: HashMap::new(),
    };
    for (name, types) in zone {
        let k = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(v) = types.get("TXT") {
            lookup
                .txt
                .insert(k.clone(), v.iter().map(|s| s.as_bytes().to_vec()).collect());
        }
        if let Some(v) = types.get("A") {
            lookup
                .a
                .insert(k, v.iter().map(|s| s.parse().expect("A")).collect());
        }
    }
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
            std::hint::black_box(v.authentication_results.to_header());
        }
    }
}
