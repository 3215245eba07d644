//! DMARC hot paths: record parsing, Author Domain extraction, the Public Suffix List, and
//! whole evaluations against a warm in-memory DNS (answers are ready; what is measured is
//! the protocol work: parsing, tree walks, alignment, verdict).
//!
//! Run: `cargo bench -p dmarc-proto --bench dmarc`

use std::collections::HashMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use dmarc_proto::dmarc::{
    self, AuthResult, AuthorOptions, DkimIdentity, DmarcInput, DmarcOptions, DmarcRecordCache, Psl,
    PslSections, Record, SpfIdentity,
};
use dmarc_proto::dns::DnsResult;
use dmarc_proto::{DnsError, Lookup, MxRecord};
use futures_executor::block_on;

/// Name -> TXT records; everything else is NXDOMAIN.
struct Warm(HashMap<String, Vec<Vec<u8>>>);

impl Warm {
    fn new(records: &[(&str, &str)]) -> Self {
        let mut m: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
        for (name, txt) in records {
            m.entry((*name).to_owned())
                .or_default()
                .push(txt.as_bytes().to_vec());
        }
        Warm(m)
    }
}

impl Lookup for Warm {
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

const RECORD: &str = "v=DMARC1; p=reject; sp=quarantine; adkim=r; aspf=s; fo=1:d; \
    rua=mailto:dmarc-agg@example.com,mailto:reports@thirdparty.example.net!10m; \
    ruf=mailto:dmarc-fail@example.com";

fn input(author: &str, spf: &str, dkim: &str) -> DmarcInput {
    DmarcInput {
        author_domain: author.into(),
        spf: vec![SpfIdentity::new(spf, AuthResult::Pass)],
        dkim: vec![DkimIdentity::new(dkim, AuthResult::Pass)],
        pct_draw: None,
    }
}

fn parsing(c: &mut Criterion) {
    c.bench_function("record_parse", |b| {
        b.iter(|| Record::parse(black_box(RECORD.as_bytes())))
    });
    let from: &[u8] = b"\"Example, Support\" <support@mail.Example.COM>";
    c.bench_function("author_domain", |b| {
        b.iter(|| dmarc::author_domains(&[black_box(from)], &AuthorOptions::default()))
    });
    let mut slow = c.benchmark_group("once");
    slow.sample_size(10);
    slow.bench_function("psl_parse_builtin_list", |b| {
        b.iter(|| Psl::parse(black_box(dmarc_psl::BUILTIN_LIST)))
    });
    slow.finish();
    let psl = Psl::builtin();
    c.bench_function("psl_registrable_domain", |b| {
        b.iter(|| psl.registrable_domain(black_box("a.b.mail.example.co.uk"), PslSections::Icann))
    });
}

fn evaluation(c: &mut Criterion) {
    let opts = DmarcOptions::default();
    // The Author Domain has its own record; DKIM d= is identical: one query.
    let zone = Warm::new(&[("_dmarc.example.com", RECORD)]);
    let inp = input("example.com", "bounce.other.example", "example.com");
    c.bench_function("evaluate_9989_identical_pass", |b| {
        b.iter(|| block_on(dmarc::evaluate(&zone, black_box(&inp), &opts)))
    });
    // Subdomain author, record at the Organizational Domain, relaxed DKIM from another
    // subdomain: author walk plus an identifier walk.
    let zone = Warm::new(&[("_dmarc.example.com", RECORD)]);
    let inp = input("news.example.com", "bounce.example.com", "mail.example.com");
    c.bench_function("evaluate_9989_relaxed_tree_walk", |b| {
        b.iter(|| block_on(dmarc::evaluate(&zone, black_box(&inp), &opts)))
    });
    // Appendix B.4.2: a 14-label Author Domain (eight queries) and a DKIM walk.
    let zone = Warm::new(&[
        ("_dmarc.example.com", "v=DMARC1; p=reject"),
        ("_dmarc.signing.example.com", "v=DMARC1; p=reject"),
    ]);
    let inp = input(
        "a.b.c.d.e.f.g.h.i.j.k.example.com",
        "example.com",
        "signing.example.com",
    );
    c.bench_function("evaluate_9989_deep_tree_walk", |b| {
        b.iter(|| block_on(dmarc::evaluate(&zone, black_box(&inp), &opts)))
    });
    // Failing message, no alignment: full verdict with reason.
    let zone = Warm::new(&[("_dmarc.example.com", RECORD)]);
    let inp = input("example.com", "spammer.example", "spammer.example");
    c.bench_function("evaluate_9989_fail", |b| {
        b.iter(|| block_on(dmarc::evaluate(&zone, black_box(&inp), &opts)))
    });
    // RFC 7489 mode: Organizational Domains from the Public Suffix List.
    let opts7489 = DmarcOptions::rfc7489();
    let zone = Warm::new(&[("_dmarc.example.co.uk", RECORD)]);
    let inp = input(
        "news.example.co.uk",
        "bounce.example.co.uk",
        "mail.example.co.uk",
    );
    c.bench_function("evaluate_7489_psl_relaxed", |b| {
        b.iter(|| block_on(dmarc::evaluate(&zone, black_box(&inp), &opts7489)))
    });
}

/// The receiver's path: From field to verdict with the shared record cache warm (the
/// `_dmarc` answer parsed once), an ESP message whose SPF domain is the ESP's and whose
/// second DKIM signature is the brand's.
fn receiver_like(c: &mut Criterion) {
    let opts = DmarcOptions {
        record_cache: Some(Arc::new(DmarcRecordCache::new(64))),
        ..DmarcOptions::default()
    };
    let zone = Warm::new(&[
        (
            "_dmarc.brand4.example",
            "v=DMARC1; p=quarantine; np=reject; rua=mailto:dmarc@brand4.example",
        ),
        ("_dmarc.esp0.example", "v=DMARC1; p=none"),
    ]);
    let from: &[u8] = b"\"Brand 4 News\" <news@brand4.example>";
    let spf = [SpfIdentity::new("bounces.esp0.example", AuthResult::Pass)];
    let dkim = [
        DkimIdentity::new("esp0.example", AuthResult::Pass).with_selector("k1"),
        DkimIdentity::new("brand4.example", AuthResult::Pass).with_selector("s4"),
    ];
    c.bench_function("evaluate_message_9989_warm_cache_esp", |b| {
        b.iter(|| {
            block_on(dmarc::evaluate_message(
                &zone,
                &[black_box(from)],
                &spf,
                &dkim,
                None,
                &opts,
            ))
        })
    });
}

criterion_group!(benches, parsing, evaluation, receiver_like);
criterion_main!(benches);
