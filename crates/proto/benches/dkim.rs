//! DKIM verification cost on the mail-bench corpus (300 messages, 296 signatures), against
//! the floor (one SHA-256 pass over each message's bytes plus one RSA-2048 verification per
//! message, with aws-lc-rs) and against the mail-auth crate on the same messages.
//!
//! Key lookups come from a warm in-memory map for both verifiers.
//!
//! Run: `cargo bench -p dmarc-proto --bench dkim`

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dmarc_proto::FixedClock;
use dmarc_proto::dkim::{DkimResult, KeyCache, Verifier, VerifyConfig};
use dmarc_proto::dns::{DnsError, DnsResult, Lookup, MxRecord};
use mail_auth::common::parse::TxtRecordParser;

#[path = "support/floor.rs"]
mod floor;

struct MapLookup(HashMap<String, Vec<Vec<u8>>>);

impl Lookup for MapLookup {
    async fn txt(&self, name: &str) -> DnsResult<Vec<u8>> {
        self.0.get(name).cloned().ok_or(DnsError::NxDomain)
    }
    async fn a(&self, _: &str) -> DnsResult<Ipv4Addr> {
        Err(DnsError::NxDomain)
    }
    async fn aaaa(&self, _: &str) -> DnsResult<Ipv6Addr> {
        Err(DnsError::NxDomain)
    }
    async fn mx(&self, _: &str) -> DnsResult<MxRecord> {
        Err(DnsError::NxDomain)
    }
    async fn ptr(&self, _: IpAddr) -> DnsResult<String> {
        Err(DnsError::NxDomain)
    }
}

/// mail-auth's resolver cache, filled in advance with parsed key records.
struct WarmTxt(HashMap<Box<str>, mail_auth::Txt>);

impl mail_auth::ResolverCache<Box<str>, mail_auth::Txt> for WarmTxt {
    fn get<Q>(&self, name: &Q) -> Option<mail_auth::Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.get(name).cloned()
    }
    fn remove<Q>(&self, _: &Q) -> Option<mail_auth::Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        None
    }
    fn insert(&self, _: Box<str>, _: mail_auth::Txt, _: std::time::Instant) {}
}

type Zone = HashMap<String, Vec<Vec<u8>>>;

fn corpus() -> (Vec<Vec<u8>>, Zone) {
    let dir = dmarc_testkit::corpus("mail-bench");
    let cases = std::fs::read_to_string(dir.join("cases.jsonl")).expect("cases.jsonl");
    let messages = cases
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            std::fs::read(dir.join(v["file"].as_str().expect("file"))).expect("message")
        })
        .collect();
    let zone: HashMap<String, HashMap<String, Vec<String>>> =
        serde_json::from_slice(&std::fs::read(dir.join("zone.json")).expect("zone")).expect("zone");
    let mut txt = HashMap::new();
    for (name, types) in zone {
        if let Some(v) = types.get("TXT") {
            txt.insert(
                name.to_ascii_lowercase(),
                v.iter().map(|s| s.as_bytes().to_vec()).collect(),
            );
        }
    }
    (messages, txt)
}

fn bench(c: &mut Criterion) {
    let (messages, txt) = corpus();
    let total_bytes: usize = messages.iter().map(Vec::len).sum();
    let n = messages.len() as u64;
    let clock = FixedClock::from_unix_seconds(1_795_330_000);

    // The floor: SHA-256 over each message, one RSA-2048 verification per message.
    let floor_work = floor::Floor::new();

    // Ours: warm key cache and in-memory lookups.
    let lookup = MapLookup(txt.clone());
    let verifier =
        Verifier::new(VerifyConfig::default()).with_key_cache(Arc::new(KeyCache::default()));
    let mut passes = 0;
    for m in &messages {
        let r = futures::executor::block_on(verifier.verify(m, &lookup, &clock));
        passes += r.iter().filter(|r| r.result == DkimResult::Pass).count();
    }
    assert_eq!(passes, 270);

    // mail-auth: its TXT cache filled with the parsed key records.
    let mut warm = HashMap::new();
    for (name, values) in &txt {
        if name.contains("._domainkey.")
            && let Ok(k) = mail_auth::common::verify::DomainKey::parse(&values[0])
        {
            warm.insert(format!("{name}.").into_boxed_str(), mail_auth::Txt::from(k));
        }
    }
    let warm = WarmTxt(warm);
    let authenticator = mail_auth::MessageAuthenticator::new_cloudflare().expect("resolver");
    let mut ma_passes = 0;
    for m in &messages {
        let msg = mail_auth::AuthenticatedMessage::parse(m).expect("parse");
        let out = futures::executor::block_on(
            authenticator.verify_dkim(mail_auth::Parameters::new(&msg).with_txt_cache(&warm)),
        );
        ma_passes += out
            .iter()
            .filter(|o| *o.result() == mail_auth::DkimResult::Pass)
            .count();
    }
    assert_eq!(ma_passes, 270);

    let mut g = c.benchmark_group("mail-bench");
    g.throughput(Throughput::Elements(n));
    g.sample_size(20);
    eprintln!("mail-bench: {n} messages, {total_bytes} bytes");

    g.bench_function("floor_sha256_plus_rsa2048_verify", |b| {
        b.iter(|| {
            for m in &messages {
                floor_work.message(m);
            }
        })
    });
    g.bench_function("dmarc_proto_verify", |b| {
        b.iter(|| {
            for m in &messages {
                let r = futures::executor::block_on(verifier.verify(m, &lookup, &clock));
                std::hint::black_box(r);
            }
        })
    });
    g.bench_function("mail_auth_0_13_3_verify", |b| {
        b.iter(|| {
            for m in &messages {
                let msg = mail_auth::AuthenticatedMessage::parse(m).expect("parse");
                let out = futures::executor::block_on(
                    authenticator
                        .verify_dkim(mail_auth::Parameters::new(&msg).with_txt_cache(&warm)),
                );
                std::hint::black_box(out);
            }
        })
    });

    // The three in turn, a pass over the corpus each, timed in CPU time of this thread, so
    // that other processes on the machine (preemption, their load) do not count: reports
    // the CPU time of ours, and prints the ratios to the floor.
    let totals = std::cell::Cell::new([std::time::Duration::ZERO; 3]);
    let rounds = std::cell::Cell::new(0u64);
    g.bench_function("cpu_interleaved_dmarc_proto", |b| {
        b.iter_custom(|iters| {
            rounds.set(rounds.get() + iters);
            let mut t = totals.get();
            let mut ours = std::time::Duration::ZERO;
            for _ in 0..iters {
                let t0 = cpu_time::ThreadTime::now();
                for m in &messages {
                    floor_work.message(m);
                }
                let floor = t0.elapsed();
                let t1 = cpu_time::ThreadTime::now();
                for m in &messages {
                    let r = futures::executor::block_on(verifier.verify(m, &lookup, &clock));
                    std::hint::black_box(r);
                }
                let mine = t1.elapsed();
                let t2 = cpu_time::ThreadTime::now();
                for m in &messages {
                    let msg = mail_auth::AuthenticatedMessage::parse(m).expect("parse");
                    let out = futures::executor::block_on(
                        authenticator
                            .verify_dkim(mail_auth::Parameters::new(&msg).with_txt_cache(&warm)),
                    );
                    std::hint::black_box(out);
                }
                let theirs = t2.elapsed();
                t[0] += floor;
                t[1] += mine;
                t[2] += theirs;
                ours += mine;
            }
            totals.set(t);
            ours
        })
    });
    g.finish();
    let [floor, ours, ma] = totals.get();
    let per = |d: std::time::Duration| d.as_secs_f64() / floor.as_secs_f64();
    let passes = |_: std::time::Duration| (rounds.get() * n) as f64;
    eprintln!(
        "cpu time per message: floor {:.1} us (1.000), dmarc-proto {:.1} us ({:.3}), mail-auth {:.1} us ({:.3})",
        floor.as_secs_f64() * 1e6 / passes(floor),
        ours.as_secs_f64() * 1e6 / passes(floor),
        per(ours),
        ma.as_secs_f64() * 1e6 / passes(floor),
        per(ma)
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
