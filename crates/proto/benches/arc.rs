//! ARC chain validation of a message sealed over three hops (RSA-2048 keys, as the big
//! sealers use), against mail-auth 0.13's ARC verification on the same message.
//!
//! The message is the first of the mail-bench corpus, sealed by three hops with
//! [`dmarc_proto::arc::seal::seal`]. Keys come from warm in-memory caches for both.
//! mail-auth checks the newest AMS and every seal (four RSA verifications); ours checks
//! every AMS as well, for oldest-pass (six): `dmarc_proto_verify` is that default, and
//! `dmarc_proto_verify_no_oldest_pass` does the same work as mail-auth.
//!
//! Run: `cargo bench -p dmarc-proto --bench arc`

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use dmarc_proto::FixedClock;
use dmarc_proto::arc::seal::{SealOptions, seal};
use dmarc_proto::arc::{ArcConfig, ArcVerifier, ChainStatus};
use dmarc_proto::dkim::{KeyCache, SigningKey};
use dmarc_proto::dns::{DnsError, DnsResult, Lookup, MxRecord};
use mail_auth::common::parse::TxtRecordParser;

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

/// The first mail-bench message sealed by three hops, and the zone with their keys.
fn three_hops(now: u64) -> (Vec<u8>, HashMap<String, Vec<Vec<u8>>>) {
    let dir = dmarc_testkit::corpus("mail-bench");
    let cases = std::fs::read_to_string(dir.join("cases.jsonl")).expect("cases.jsonl");
    let first: serde_json::Value =
        serde_json::from_str(cases.lines().next().expect("a case")).expect("json");
    let mut msg = std::fs::read(dir.join(first["file"].as_str().expect("file"))).expect("message");
    let mut zone = HashMap::new();
    let mut status = ChainStatus::None;
    for (k, d) in ["forward.example", "lists.example", "relay.example"]
        .iter()
        .enumerate()
    {
        let key = SigningKey::generate_rsa(2048).expect("key");
        zone.insert(
            format!("arc._domainkey.{d}"),
            vec![key.dns_record().expect("record").into_bytes()],
        );
        let opts = SealOptions::new(*d, "arc", format!("mx.{d}"));
        let results = vec![format!("spf=pass smtp.mailfrom=hop{k}.example")];
        let clock = FixedClock::from_unix_seconds(now);
        let set = seal(&msg, &key, &opts, &results, status, &clock).expect("seal");
        msg = [set.to_prepend().as_bytes(), &msg].concat();
        status = ChainStatus::Pass;
    }
    (msg, zone)
}

fn bench(c: &mut Criterion) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let (msg, zone) = three_hops(now);
    let clock = FixedClock::from_unix_seconds(now);
    let lookup = MapLookup(zone.clone());
    let cache = Arc::new(KeyCache::default());
    let ours = ArcVerifier::default().with_key_cache(cache.clone());
    let same_work = ArcVerifier::new(ArcConfig {
        oldest_pass: false,
        ..ArcConfig::default()
    })
    .with_key_cache(cache);
    let run = |v: &ArcVerifier| futures::executor::block_on(v.verify(&msg, &lookup, &clock));
    let out = run(&ours);
    assert_eq!(out.status, ChainStatus::Pass, "{}", out.reason());
    assert_eq!((out.instances, out.oldest_pass), (3, Some(1)));
    assert_eq!(run(&same_work).status, ChainStatus::Pass);

    let mut warm = HashMap::new();
    for (name, values) in &zone {
        let k = mail_auth::common::verify::DomainKey::parse(&values[0]).expect("key");
        warm.insert(format!("{name}.").into_boxed_str(), mail_auth::Txt::from(k));
    }
    let warm = WarmTxt(warm);
    let authenticator = mail_auth::MessageAuthenticator::new_cloudflare().expect("resolver");
    let theirs = || {
        let m = mail_auth::AuthenticatedMessage::parse(&msg).expect("parse");
        let out = futures::executor::block_on(
            authenticator.verify_arc(mail_auth::Parameters::new(&m).with_txt_cache(&warm)),
        );
        *out.result() == mail_auth::DkimResult::Pass
    };
    assert!(theirs(), "mail-auth does not pass the chain");

    let mut g = c.benchmark_group("arc-3-hops");
    g.sample_size(50);
    eprintln!("message: {} bytes, 3 ARC sets, RSA-2048", msg.len());
    g.bench_function("dmarc_proto_verify", |b| {
        b.iter(|| std::hint::black_box(run(&ours)))
    });
    g.bench_function("dmarc_proto_verify_no_oldest_pass", |b| {
        b.iter(|| std::hint::black_box(run(&same_work)))
    });
    g.bench_function("mail_auth_0_13_3_verify_arc", |b| {
        b.iter(|| std::hint::black_box(theirs()))
    });

    // The three in turn, in CPU time of this thread (other load does not count).
    let totals = std::cell::Cell::new([Duration::ZERO; 3]);
    let rounds = std::cell::Cell::new(0u64);
    g.bench_function("cpu_interleaved", |b| {
        b.iter_custom(|iters| {
            rounds.set(rounds.get() + iters);
            let mut t = totals.get();
            let t0 = cpu_time::ThreadTime::now();
            for _ in 0..iters {
                std::hint::black_box(run(&ours));
            }
            t[0] += t0.elapsed();
            let t1 = cpu_time::ThreadTime::now();
            for _ in 0..iters {
                std::hint::black_box(run(&same_work));
            }
            t[1] += t1.elapsed();
            let t2 = cpu_time::ThreadTime::now();
            for _ in 0..iters {
                std::hint::black_box(theirs());
            }
            let elapsed = t2.elapsed();
            t[2] += elapsed;
            totals.set(t);
            elapsed
        })
    });
    g.finish();
    let t = totals.get();
    let n = rounds.get().max(1) as f64;
    let us = |d: Duration| d.as_secs_f64() * 1e6 / n;
    eprintln!(
        "cpu per message: ours {:.1} µs (no oldest-pass {:.1} µs), mail-auth {:.1} µs; ours / mail-auth = {:.2} ({:.2})",
        us(t[0]),
        us(t[1]),
        us(t[2]),
        us(t[0]) / us(t[2]),
        us(t[1]) / us(t[2])
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
