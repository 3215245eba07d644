//! Benchmarks of the DNS adapters: loading the mail-bench zone, answering from it, and
//! answering from the hickory cache (a hickory-server on 127.0.0.1 primes it).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use dmarc_dns::{HickoryLookup, ResolverOptions, ZoneFile};
use dmarc_proto::Lookup;

/// Polls a future that is ready at once (ZoneFile answers are).
fn now<F: std::future::Future>(fut: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut fut = std::pin::pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("ZoneFile answers are ready at once"),
    }
}

fn zone_file(c: &mut Criterion) {
    let path = dmarc_testkit::corpus("mail-bench/zone.txt");
    let bytes = std::fs::read(&path).unwrap();
    c.bench_function("zone/parse mail-bench zone.txt (166 lines)", |b| {
        b.iter(|| ZoneFile::parse_bytes(black_box(&bytes), None).unwrap())
    });

    let zone = ZoneFile::load(&path).unwrap();
    c.bench_function("zone/txt hit", |b| {
        b.iter(|| now(zone.txt(black_box("_dmarc.brand7.example"))).unwrap())
    });
    c.bench_function("zone/txt nxdomain", |b| {
        b.iter(|| now(zone.txt(black_box("nope.brand7.example"))).unwrap_err())
    });
    c.bench_function("zone/a hit", |b| {
        b.iter(|| now(zone.a(black_box("news.brand7.example."))).unwrap())
    });

    let chain = ZoneFile::parse(
        "$ORIGIN example.com.\na CNAME b\nb CNAME c\nc CNAME d\nd A 192.0.2.1\n",
        None,
    )
    .unwrap();
    c.bench_function("zone/a through 3 CNAMEs", |b| {
        b.iter(|| now(chain.a(black_box("a.example.com"))).unwrap())
    });
}

fn hickory_cache(c: &mut Criterion) {
    use hickory_server::Server;
    use hickory_server::proto::rr::{LowerName, Name};
    use hickory_server::proto::serialize::txt::Parser;
    use hickory_server::store::in_memory::InMemoryZoneHandler;
    use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let text = "$ORIGIN test.\n$TTL 3600\n@ SOA ns.test. h.test. 1 3600 600 86400 3600\n\
                _dmarc TXT \"v=DMARC1; p=reject; rua=mailto:d@test\"\n";
    let origin = Name::from_ascii("test.").unwrap();
    let (origin, records) = Parser::new(text, None, Some(origin)).parse().unwrap();
    let handler = InMemoryZoneHandler::<hickory_server::net::runtime::TokioRuntimeProvider>::new(
        origin.clone(),
        records,
        ZoneType::Primary,
        AxfrPolicy::Deny,
    )
    .unwrap();
    let mut catalog = Catalog::new();
    catalog.upsert(LowerName::new(&origin), vec![Arc::new(handler)]);

    let (resolver, _server) = rt.block_on(async {
        let mut server = Server::new(catalog);
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        server.register_socket(udp);
        let options = ResolverOptions {
            timeout: Duration::from_secs(1),
            ..ResolverOptions::default()
        };
        let resolver = HickoryLookup::with_nameservers(&[addr], options).unwrap();
        // Prime the cache, positive and negative.
        resolver.txt("_dmarc.test").await.unwrap();
        resolver.txt("nope.test").await.unwrap_err();
        (resolver, server)
    });

    c.bench_function("hickory/txt cache hit", |b| {
        b.iter(|| rt.block_on(resolver.txt(black_box("_dmarc.test"))).unwrap())
    });
    c.bench_function("hickory/txt nxdomain cache hit", |b| {
        b.iter(|| {
            rt.block_on(resolver.txt(black_box("nope.test")))
                .unwrap_err()
        })
    });
    let before = resolver.stats();
    c.bench_function("hickory/txt network round trip (loopback)", |b| {
        b.iter(|| {
            resolver.clear_cache();
            rt.block_on(resolver.txt(black_box("_dmarc.test"))).unwrap()
        })
    });
    let after = resolver.stats();
    assert!(after.from_network > before.from_network);
}

criterion_group!(benches, zone_file, hickory_cache);
criterion_main!(benches);
