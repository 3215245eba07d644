//! Profiling aid: SPF alone as the receiver runs it (MAIL FROM and HELO, no trace, a
//! warm record cache) over mail-bench.
//! `cargo build --release -p dmarc-proto --example spf_loop`, then run
//! `target/release/examples/spf_loop N` under `valgrind --tool=callgrind` or
//! `--tool=dhat` for N = 1 and 4 and divide the difference by 3 x 900 messages
//! (`bash crates/proto/benches/support/spf_measure.sh` does it).
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dmarc_proto::FixedClock;
use dmarc_proto::dns::{DnsResult, Lookup, MxRecord};
use dmarc_proto::spf::{self, SpfOptions, SpfRecordCache, SpfRequest};

#[path = "../benches/support/map_lookup.rs"]
mod map_lookup;

/// The zone, counting its questions and the heap blocks its answers cost (the key it
/// lower-cases, the answer's vector and each record's copy), to tell them from SPF's own.
struct Counted {
    zone: map_lookup::MapLookup,
    queries: AtomicU64,
    blocks: AtomicU64,
}

impl Lookup for Counted {
    async fn txt(&self, n: &str) -> DnsResult<Vec<u8>> {
        let r = self.zone.txt(n).await;
        self.queries.fetch_add(1, Ordering::Relaxed);
        let blocks = 1 + r.as_ref().map_or(0, |v| 1 + v.len() as u64);
        self.blocks.fetch_add(blocks, Ordering::Relaxed);
        r
    }
    async fn a(&self, n: &str) -> DnsResult<Ipv4Addr> {
        let r = self.zone.a(n).await;
        self.queries.fetch_add(1, Ordering::Relaxed);
        self.blocks
            .fetch_add(1 + u64::from(r.is_ok()), Ordering::Relaxed);
        r
    }
    async fn aaaa(&self, n: &str) -> DnsResult<Ipv6Addr> {
        let r = self.zone.aaaa(n).await;
        self.queries.fetch_add(1, Ordering::Relaxed);
        self.blocks.fetch_add(1, Ordering::Relaxed);
        r
    }
    async fn mx(&self, n: &str) -> DnsResult<MxRecord> {
        let r = self.zone.mx(n).await;
        self.queries.fetch_add(1, Ordering::Relaxed);
        self.blocks.fetch_add(1, Ordering::Relaxed);
        r
    }
    async fn ptr(&self, ip: IpAddr) -> DnsResult<String> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        self.zone.ptr(ip).await
    }
}

fn main() {
    let rounds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let dir = dmarc_testkit::corpus("mail-bench");
    let text = std::fs::read_to_string(dir.join("cases.jsonl")).expect("cases");
    let requests: Vec<SpfRequest> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            let ip: IpAddr = v["ip"].as_str().expect("ip").parse().expect("ip");
            // As the receiver builds it: both names in one buffer.
            let mail_from = v["mail_from"].as_str().expect("mf");
            SpfRequest::with_identities(
                ip,
                v["helo"].as_str().expect("helo"),
                Some(mail_from).filter(|m| !m.is_empty()),
            )
        })
        .collect();
    let lookup = Counted {
        zone: map_lookup::load_zone_json(&dir.join("zone.json")),
        queries: AtomicU64::new(0),
        blocks: AtomicU64::new(0),
    };
    let clock = FixedClock::from_unix_seconds(1_795_400_000);
    let options = SpfOptions {
        receiver: "mx.receiver.example".into(),
        record_cache: Some(Arc::new(SpfRecordCache::new(1024))),
        trace: false,
        ..SpfOptions::default()
    };
    let mut warm = 0;
    let run = |warm: &mut usize| {
        for r in &requests {
            let m =
                futures::executor::block_on(spf::verify_mail_from(&lookup, &clock, &options, r));
            let h = futures::executor::block_on(spf::verify_helo(&lookup, &clock, &options, r));
            *warm += usize::from(m.result == h.result);
            std::hint::black_box((m, h));
        }
    };
    sizes(&lookup, &options, &requests[0]);
    for _ in 0..rounds {
        run(&mut warm);
    }
    std::hint::black_box(warm);
    let n = (rounds * requests.len() as u64).max(1) as f64;
    eprintln!(
        "zone: {:.2} questions and {:.2} heap blocks per message",
        lookup.queries.load(Ordering::Relaxed) as f64 / n,
        lookup.blocks.load(Ordering::Relaxed) as f64 / n
    );
}
/// The sizes that matter for the cost of moving an evaluation around.
fn sizes(lookup: &Counted, o: &SpfOptions, r: &SpfRequest) {
    let c = FixedClock::from_unix_seconds(0);
    eprintln!(
        "future {} output {}",
        std::mem::size_of_val(&spf::verify_mail_from(lookup, &c, o, r)),
        std::mem::size_of::<spf::SpfOutput>()
    );
}
