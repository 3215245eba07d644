//! check_host() over a realistic include tree (a Google-style netblock tree, a
//! Microsoft 365-style range list, a mailing-list provider, plus mx, a and a macro exists),
//! with an in-memory lookup, so the figure is the cost of the protocol logic alone.
//!
//! `cargo bench -p dmarc-proto --bench spf`

use std::collections::HashMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::{Criterion, criterion_group, criterion_main};
use dmarc_proto::dns::DnsResult;
use dmarc_proto::spf::{self, Record, SpfOptions, SpfRequest, SpfResult};
use dmarc_proto::{DnsError, FixedClock, Lookup, MxRecord};

#[derive(Default)]
struct Mem {
    txt: HashMap<String, Vec<Vec<u8>>>,
    a: HashMap<String, Vec<Ipv4Addr>>,
    aaaa: HashMap<String, Vec<Ipv6Addr>>,
    mx: HashMap<String, Vec<MxRecord>>,
}

fn get<T: Clone>(m: &HashMap<String, Vec<T>>, name: &str) -> DnsResult<T> {
    m.get(&name.to_ascii_lowercase())
        .cloned()
        .ok_or(DnsError::NxDomain)
}

impl Lookup for Mem {
    async fn txt(&self, name: &str) -> DnsResult<Vec<u8>> {
        get(&self.txt, name)
    }
    async fn a(&self, name: &str) -> DnsResult<Ipv4Addr> {
        get(&self.a, name)
    }
    async fn aaaa(&self, name: &str) -> DnsResult<Ipv6Addr> {
        get(&self.aaaa, name)
    }
    async fn mx(&self, name: &str) -> DnsResult<MxRecord> {
        get(&self.mx, name)
    }
    async fn ptr(&self, _: IpAddr) -> DnsResult<String> {
        Err(DnsError::NxDomain)
    }
}

const GOOGLE: &str = "v=spf1 include:_netblocks.google.example include:_netblocks2.google.example include:_netblocks3.google.example ~all";
const NETBLOCKS: &str = "v=spf1 ip4:35.190.247.0/24 ip4:64.233.160.0/19 ip4:66.102.0.0/20 ip4:66.249.80.0/20 ip4:72.14.192.0/18 ip4:74.125.0.0/16 ip4:108.177.8.0/21 ip4:173.194.0.0/16 ip4:209.85.128.0/17 ip4:216.58.192.0/19 ip4:216.239.32.0/19 ~all";
const NETBLOCKS2: &str = "v=spf1 ip6:2001:4860:4000::/36 ip6:2404:6800:4000::/36 ip6:2607:f8b0:4000::/36 ip6:2800:3f0:4000::/36 ip6:2a00:1450:4000::/36 ip6:2c0f:fb50:4000::/36 ~all";
const NETBLOCKS3: &str = "v=spf1 ip4:172.217.0.0/19 ip4:172.217.32.0/20 ip4:172.217.128.0/19 ip4:172.217.160.0/20 ip4:172.217.192.0/19 ip4:172.253.56.0/21 ip4:172.253.112.0/20 ip4:108.177.96.0/19 ip4:35.191.0.0/16 ip4:130.211.0.0/22 ~all";
const OUTLOOK: &str = "v=spf1 ip4:40.92.0.0/15 ip4:40.107.0.0/16 ip4:52.100.0.0/15 ip4:52.102.0.0/16 ip4:52.103.0.0/16 ip4:104.47.0.0/17 ip6:2a01:111:f400::/48 ip6:2a01:111:f403::/49 ip6:2a01:111:f403:8000::/51 ip6:2a01:111:f403:c000::/51 ip6:2a01:111:f403:f000::/52 -all";
const LISTS: &str = "v=spf1 ip4:205.201.128.0/20 ip4:198.2.128.0/18 ip4:148.105.8.0/21 -all";
const TOP: &str = "v=spf1 mx a:relay.example.com include:_spf.google.example include:spf.protection.outlook.example include:servers.lists.example exists:%{i}._spf.example.com ip4:203.0.113.0/24 -all";

fn zone() -> Mem {
    let mut m = Mem::default();
    for (n, t) in [
        ("example.com", TOP),
        ("_spf.google.example", GOOGLE),
        ("_netblocks.google.example", NETBLOCKS),
        ("_netblocks2.google.example", NETBLOCKS2),
        ("_netblocks3.google.example", NETBLOCKS3),
        ("spf.protection.outlook.example", OUTLOOK),
        ("servers.lists.example", LISTS),
    ] {
        m.txt.insert(
            n.into(),
            vec![
                t.as_bytes().to_vec(),
                b"google-site-verification=abc".to_vec(),
            ],
        );
    }
    m.mx.insert(
        "example.com".into(),
        vec![
            MxRecord {
                preference: 10,
                exchange: "mx1.example.com".into(),
            },
            MxRecord {
                preference: 20,
                exchange: "mx2.example.com".into(),
            },
        ],
    );
    m.a.insert(
        "mx1.example.com".into(),
        vec!["192.0.2.25".parse().unwrap()],
    );
    m.a.insert(
        "mx2.example.com".into(),
        vec!["192.0.2.26".parse().unwrap()],
    );
    m.aaaa.insert(
        "mx1.example.com".into(),
        vec!["2001:db8::25".parse().unwrap()],
    );
    m.a.insert(
        "relay.example.com".into(),
        vec!["192.0.2.30".parse().unwrap()],
    );
    m
}

fn bench(c: &mut Criterion) {
    let z = zone();
    let clock = FixedClock::from_unix_seconds(1_700_000_000);
    let opts = SpfOptions::default();
    let cases = [
        ("pass_outlook_v4", "52.101.4.7", SpfResult::Pass),
        ("pass_google_v6", "2a00:1450:4001::1", SpfResult::Pass),
        ("fail_full_walk_v4", "198.51.100.77", SpfResult::Fail),
    ];
    let mut group = c.benchmark_group("spf_check_host");
    for (name, ip, want) in cases {
        let req = SpfRequest::new(ip.parse().unwrap(), "mail.example.com")
            .with_mail_from("alice@example.com");
        let out = pollster::block_on(spf::verify_mail_from(&z, &clock, &opts, &req));
        assert_eq!(out.result, want, "{}", out.trace);
        eprintln!(
            "{name}: result {}, {} DNS-querying terms, {} void lookups, {} DNS queries",
            out.result, out.lookups, out.void_lookups, out.dns_queries
        );
        group.bench_function(name, |b| {
            b.iter(|| {
                pollster::block_on(spf::verify_mail_from(
                    black_box(&z),
                    &clock,
                    &opts,
                    black_box(&req),
                ))
            })
        });
    }
    group.finish();
    c.bench_function("spf_record_parse_top", |b| {
        b.iter(|| Record::parse(black_box(TOP.as_bytes())))
    });
    c.bench_function("spf_record_parse_outlook", |b| {
        b.iter(|| Record::parse(black_box(OUTLOOK.as_bytes())))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
