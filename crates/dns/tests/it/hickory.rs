//! `HickoryLookup` against a real DNS server on loopback: hickory-server serving in-memory
//! zones on 127.0.0.1 (ephemeral port), counting the requests it receives.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dmarc_dns::{HickoryLookup, LookupStats, ResolverOptions, ZoneFile};
use dmarc_proto::{DnsError, Lookup, MxRecord};
use hickory_server::Server;
use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::rdata::TXT;
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::proto::serialize::txt::Parser;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{
    AxfrPolicy, Catalog, MessageResponseBuilder, ZoneHandler, ZoneType,
};

/// A catalog that counts (and records) the questions it receives.
struct CountingCatalog {
    catalog: Catalog,
    received: Arc<AtomicU64>,
    log: Arc<Mutex<Vec<String>>>,
}

#[async_trait::async_trait]
impl RequestHandler for CountingCatalog {
    async fn handle_request<R: ResponseHandler, T: hickory_server::net::runtime::Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        self.received.fetch_add(1, Ordering::SeqCst);
        if let Ok(info) = request.request_info() {
            let name = info.query.name().to_string();
            self.log
                .lock()
                .unwrap()
                .push(format!("{name} {}", info.query.query_type()));
            // A broken zone: SERVFAIL for everything under servfail.test. A minimal one:
            // negative answers without SOA under nosoa.test (NODATA for names under
            // nodata.nosoa.test, NXDOMAIN for the others), as a server without SOA
            // record for the zone sends them (zone-server with mail-bench's zone).
            let code = if name.ends_with("servfail.test.") {
                Some(ResponseCode::ServFail)
            } else if name.ends_with("nodata.nosoa.test.") {
                Some(ResponseCode::NoError)
            } else if name.ends_with("nosoa.test.") {
                Some(ResponseCode::NXDomain)
            } else {
                None
            };
            if let Some(code) = code {
                let response = MessageResponseBuilder::from_message_request(request)
                    .error_msg(&request.metadata, code);
                let mut handle = response_handle;
                return handle.send_response(response).await.unwrap();
            }
        }
        self.catalog
            .handle_request::<R, T>(request, response_handle)
            .await
    }
}

struct TestServer {
    addr: SocketAddr,
    received: Arc<AtomicU64>,
    log: Arc<Mutex<Vec<String>>>,
    _server: Server<CountingCatalog>,
}

impl TestServer {
    fn received(&self) -> u64 {
        self.received.load(Ordering::SeqCst)
    }
}

fn zone_handler(text: &str, origin: &str) -> Arc<dyn ZoneHandler> {
    let origin = Name::from_ascii(origin).unwrap();
    let (origin, records) = Parser::new(text, None, Some(origin)).parse().unwrap();
    let mut handler =
        InMemoryZoneHandler::<hickory_server::net::runtime::TokioRuntimeProvider>::new(
            origin.clone(),
            records,
            ZoneType::Primary,
            AxfrPolicy::Deny,
        )
        .unwrap();
    // hickory's master-file parser turns `\DDD` into a code point, not an octet: records
    // with raw bytes are added directly.
    if origin.to_ascii() == "test." {
        let txt = TXT::from_bytes(vec![&b"\x80\xff"[..], &b"\x00x"[..]]);
        let record =
            Record::from_rdata(Name::from_ascii("bin.test.").unwrap(), 300, RData::TXT(txt));
        assert!(handler.upsert_mut(record, 1));
        // 4000 octets: more than an EDNS UDP payload, so the answer comes over TCP.
        let big: Vec<Vec<u8>> = (0..16u8).map(|i| vec![b'a' + i; 250]).collect();
        let txt = TXT::from_bytes(big.iter().map(Vec::as_slice).collect());
        let record =
            Record::from_rdata(Name::from_ascii("big.test.").unwrap(), 300, RData::TXT(txt));
        assert!(handler.upsert_mut(record, 1));
    }
    Arc::new(handler)
}

/// Serves `zones` (text, origin) on 127.0.0.1, UDP and TCP, on one ephemeral port.
async fn serve(zones: &[(&str, &str)]) -> TestServer {
    let mut catalog = Catalog::new();
    for (text, origin) in zones {
        let name = Name::from_ascii(origin).unwrap();
        catalog.upsert(LowerName::new(&name), vec![zone_handler(text, origin)]);
    }
    let received = Arc::new(AtomicU64::new(0));
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut server = Server::new(CountingCatalog {
        catalog,
        received: Arc::clone(&received),
        log: Arc::clone(&log),
    });
    // Find a port free for both UDP and TCP.
    let (udp, tcp) = loop {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        if let Ok(tcp) = tokio::net::TcpListener::bind(addr).await {
            break (udp, tcp);
        }
    };
    let addr = udp.local_addr().unwrap();
    server.register_socket(udp);
    server.register_listener(tcp, Duration::from_secs(5), 64);
    TestServer {
        addr,
        received,
        log,
        _server: server,
    }
}

const TEST_ZONE: &str = r#"
$ORIGIN test.
$TTL 300
@        IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60
@        IN NS  ns
ns       IN A   127.0.0.1
a        IN A   192.0.2.1
a        IN A   192.0.2.2
v6       IN AAAA 2001:db8::1
multi    IN TXT "v=spf1 " "ip4:192.0.2.0/24 " "-all"
multi    IN TXT "second"
alias    IN CNAME hop
hop      IN CNAME target
target   IN A   192.0.2.7
target   IN TXT "at target"
dangling IN CNAME nowhere.test.
mx       IN MX  10 MX1.Test.
mx       IN MX  20 mx2.other.example.
null     IN MX  0 .
sub.deep IN A   192.0.2.9
loop1    IN CNAME loop2
loop2    IN CNAME loop1
selfloop IN CNAME selfloop
"#;

const REVERSE_ZONE: &str = r#"
$ORIGIN 2.0.192.in-addr.arpa.
$TTL 300
@   IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60
7   IN PTR Host.Test.
1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. IN PTR v6.test.
"#;

async fn test_server() -> TestServer {
    serve(&[
        (TEST_ZONE, "test."),
        (REVERSE_ZONE, "2.0.192.in-addr.arpa."),
        (
            "$TTL 300\n@ IN SOA ns.test. h.test. 1 3600 600 86400 60\n\
             1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. IN PTR V6.test.\n",
            "8.b.d.0.1.0.0.2.ip6.arpa.",
        ),
    ])
    .await
}

fn fast_options() -> ResolverOptions {
    ResolverOptions {
        timeout: Duration::from_millis(500),
        attempts: 2,
        deadline: Duration::from_secs(3),
        ..ResolverOptions::default()
    }
}

fn resolver(server: &TestServer) -> HickoryLookup {
    HickoryLookup::with_nameservers(&[server.addr], fast_options()).unwrap()
}

#[tokio::test]
async fn answers_of_each_type() {
    let server = test_server().await;
    let r = resolver(&server);
    let mut a = r.a("a.test").await.unwrap();
    a.sort();
    assert_eq!(
        a,
        [Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2)]
    );
    assert_eq!(
        r.aaaa("v6.test.").await,
        Ok(vec!["2001:db8::1".parse::<Ipv6Addr>().unwrap()])
    );
    let mut txt = r.txt("MULTI.test").await.unwrap();
    txt.sort();
    assert_eq!(
        txt,
        [b"second".to_vec(), b"v=spf1 ip4:192.0.2.0/24 -all".to_vec()]
    );
    assert_eq!(r.txt("bin.test").await, Ok(vec![b"\x80\xff\x00x".to_vec()]));
    let mut mx = r.mx("mx.test").await.unwrap();
    mx.sort();
    assert_eq!(
        mx,
        [
            MxRecord {
                preference: 10,
                exchange: "mx1.test".into()
            },
            MxRecord {
                preference: 20,
                exchange: "mx2.other.example".into()
            }
        ]
    );
    assert_eq!(
        r.mx("null.test").await,
        Ok(vec![MxRecord {
            preference: 0,
            exchange: String::new()
        }])
    );
    let v4: IpAddr = "192.0.2.7".parse().unwrap();
    assert_eq!(r.ptr(v4).await, Ok(vec!["host.test".to_string()]));
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    assert_eq!(r.ptr(v6).await, Ok(vec!["v6.test".to_string()]));
}

#[tokio::test]
async fn truncated_answers_are_retried_over_tcp() {
    let server = test_server().await;
    let r = resolver(&server);
    let txt = r.txt("big.test").await.unwrap();
    assert_eq!(txt.len(), 1);
    assert_eq!(txt[0].len(), 4000);
    assert!(txt[0].starts_with(&[b'a'; 250]));
    assert!(txt[0].ends_with(&[b'p'; 250]));
    // Once over UDP (truncated), once over TCP.
    assert_eq!(server.received(), 2, "{:?}", server.log.lock().unwrap());
    assert_eq!(r.stats().requests_sent, 2);
}

#[tokio::test]
async fn nxdomain_nodata_and_cnames() {
    let server = test_server().await;
    let r = resolver(&server);
    assert_eq!(r.txt("nope.test").await, Err(DnsError::NxDomain));
    assert_eq!(r.a("nope.sub.deep.test").await, Err(DnsError::NxDomain));
    assert_eq!(r.aaaa("a.test").await, Err(DnsError::NoData));
    assert_eq!(r.txt("a.test").await, Err(DnsError::NoData));
    assert_eq!(r.mx("test").await, Err(DnsError::NoData));
    // An empty non-terminal exists (RFC 8020).
    assert_eq!(r.a("deep.test").await, Err(DnsError::NoData));
    // CNAME chains are followed.
    assert_eq!(
        r.a("alias.test").await,
        Ok(vec![Ipv4Addr::new(192, 0, 2, 7)])
    );
    assert_eq!(r.txt("Alias.Test.").await, Ok(vec![b"at target".to_vec()]));
    assert_eq!(r.aaaa("alias.test").await, Err(DnsError::NoData));
    assert_eq!(r.a("dangling.test").await, Err(DnsError::NxDomain));
    let v4: IpAddr = "192.0.2.99".parse().unwrap();
    assert_eq!(r.ptr(v4).await, Err(DnsError::NxDomain));
}

#[tokio::test]
async fn cname_loops_are_temporary_errors() {
    let server = test_server().await;
    let r = resolver(&server);
    for (name, chain) in [
        ("loop1.test", "loop1.test -> loop2.test -> loop1.test"),
        ("selfloop.test", "selfloop.test -> selfloop.test"),
    ] {
        match r.a(name).await {
            Err(DnsError::Temporary(why)) => {
                assert_eq!(why, format!("A {name}: CNAME loop: {chain}"));
            }
            other => panic!("expected a temporary error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn long_cname_chains_across_zones() {
    // Each hop in its own zone, so the server cannot hand over the chain in one response.
    let mut zones = Vec::new();
    for i in 0..=dmarc_dns::zone::MAX_CNAME_CHAIN + 1 {
        let text = if i == dmarc_dns::zone::MAX_CNAME_CHAIN + 1 {
            format!("$TTL 300\n@ SOA ns.z{i}. h.z{i}. 1 3600 600 86400 60\nwww A 192.0.2.{i}\n")
        } else {
            format!(
                "$TTL 300\n@ SOA ns.z{i}. h.z{i}. 1 3600 600 86400 60\nwww CNAME www.z{}.\n",
                i + 1
            )
        };
        zones.push((text, format!("z{i}.")));
    }
    let zones: Vec<(&str, &str)> = zones
        .iter()
        .map(|(t, o)| (t.as_str(), o.as_str()))
        .collect();
    let server = serve(&zones).await;
    let r = resolver(&server);
    // 10 CNAMEs: more hops than hickory makes by itself, within MAX_CNAME_CHAIN.
    let start = dmarc_dns::zone::MAX_CNAME_CHAIN + 1 - 10;
    assert_eq!(
        r.a(&format!("www.z{start}")).await,
        Ok(vec![Ipv4Addr::new(
            192,
            0,
            2,
            (dmarc_dns::zone::MAX_CNAME_CHAIN + 1) as u8
        )])
    );
    // MAX_CNAME_CHAIN CNAMEs: still followed.
    assert!(r.a("www.z1").await.is_ok());
    // One more: a temporary error.
    match r.a("www.z0").await {
        Err(DnsError::Temporary(why)) => assert!(why.contains("CNAME chain longer than"), "{why}"),
        other => panic!("expected a temporary error, got {other:?}"),
    }
    // A chain that ends without the type is NODATA.
    assert_eq!(r.txt(&format!("www.z{start}")).await, Err(DnsError::NoData));
}

#[tokio::test]
async fn refused_is_temporary() {
    let server = test_server().await;
    let r = resolver(&server);
    // The server is authoritative for test. only: REFUSED elsewhere.
    match r.txt("example.org").await {
        Err(DnsError::Temporary(why)) => {
            eprintln!("refused: {why}");
            assert!(why.contains("REFUSED"), "{why}");
            assert!(why.starts_with("TXT example.org: "), "{why}");
        }
        other => panic!("expected a temporary error, got {other:?}"),
    }
}

#[tokio::test]
async fn servfail_is_temporary_and_not_cached() {
    let server = test_server().await;
    let r = resolver(&server);
    for _ in 0..2 {
        match r.a("x.servfail.test").await {
            Err(DnsError::Temporary(why)) => {
                assert_eq!(
                    why,
                    "A x.servfail.test: the name server answered SERVFAIL (Server Failure)"
                );
            }
            other => panic!("expected a temporary error, got {other:?}"),
        }
    }
    let stats = r.stats();
    assert_eq!(stats.questions, 2);
    assert_eq!(stats.from_network, 2, "a SERVFAIL was cached: {stats:?}");
}

#[tokio::test]
async fn silent_server_times_out_within_the_deadline() {
    // A UDP socket that is never read: queries go unanswered. No TCP listener on the port.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let options = ResolverOptions {
        timeout: Duration::from_millis(300),
        attempts: 2,
        deadline: Duration::from_secs(2),
        try_tcp_on_error: false,
        ..ResolverOptions::default()
    };
    let r = HickoryLookup::with_nameservers(&[addr], options).unwrap();
    let start = Instant::now();
    let answer = r.txt("example.com").await;
    let took = start.elapsed();
    match answer {
        Err(DnsError::Temporary(why)) => {
            eprintln!("silent server: {why}");
            assert!(
                why.contains("no response within") || why.contains("no answer within"),
                "{why}"
            )
        }
        other => panic!("expected a temporary error, got {other:?}"),
    }
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_millis(2500), "{took:?}");
    let stats = r.stats();
    assert_eq!(stats.questions, 1);
    assert_eq!(stats.from_network, 1);
    assert!(stats.requests_sent >= 2, "{stats:?}");
    drop(silent);
}

#[tokio::test]
async fn hard_deadline_caps_retries() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let options = ResolverOptions {
        timeout: Duration::from_secs(2),
        attempts: 3,
        deadline: Duration::from_millis(400),
        try_tcp_on_error: false,
        ..ResolverOptions::default()
    };
    let r = HickoryLookup::with_nameservers(&[addr], options).unwrap();
    let start = Instant::now();
    match r.a("example.com").await {
        Err(DnsError::Temporary(why)) => assert!(why.contains("no answer within"), "{why}"),
        other => panic!("expected a temporary error, got {other:?}"),
    }
    assert!(start.elapsed() < Duration::from_millis(1500));
    drop(silent);
}

#[tokio::test]
async fn cache_answers_repeated_questions_positive_and_negative() {
    let server = test_server().await;
    let r = resolver(&server);

    let first = r.txt("multi.test").await;
    assert!(first.is_ok());
    let after_first = server.received();
    assert_eq!(after_first, 1, "{:?}", server.log.lock().unwrap());
    let second = r.txt("multi.test").await;
    assert_eq!(first, second);
    assert_eq!(server.received(), after_first, "positive answer not cached");

    // NXDOMAIN is cached (SOA MINIMUM 60 s).
    assert_eq!(r.a("nope.test").await, Err(DnsError::NxDomain));
    assert_eq!(server.received(), 2);
    assert_eq!(r.a("NOPE.test.").await, Err(DnsError::NxDomain));
    assert_eq!(server.received(), 2, "NXDOMAIN not cached");

    // NODATA is cached.
    assert_eq!(r.aaaa("a.test").await, Err(DnsError::NoData));
    assert_eq!(server.received(), 3);
    assert_eq!(r.aaaa("a.test").await, Err(DnsError::NoData));
    assert_eq!(server.received(), 3, "NODATA not cached");

    assert_eq!(
        r.stats(),
        LookupStats {
            questions: 6,
            from_network: 3,
            from_cache: 3,
            requests_sent: 3,
        }
    );

    // Clones share the cache; clearing it sends the question again.
    let clone = r.clone();
    assert!(clone.txt("multi.test").await.is_ok());
    assert_eq!(server.received(), 3);
    r.clear_cache();
    assert!(clone.txt("multi.test").await.is_ok());
    assert_eq!(server.received(), 4);
    assert_eq!(r.stats().questions, 8);
}

#[tokio::test]
async fn failures_are_not_cached() {
    let server = test_server().await;
    let r = resolver(&server);
    assert!(matches!(
        r.a("example.org").await,
        Err(DnsError::Temporary(_))
    ));
    let n = server.received();
    assert!(n >= 1);
    assert!(matches!(
        r.a("example.org").await,
        Err(DnsError::Temporary(_))
    ));
    assert!(server.received() > n, "a REFUSED answer was cached");
}

#[tokio::test]
async fn negative_ttl_expires() {
    // SOA MINIMUM 1 s: the NXDOMAIN is cached for 1 s only.
    let server = serve(&[(
        "$TTL 300\n@ IN SOA ns.short. h.short. 1 3600 600 86400 1\n@ IN A 192.0.2.1\n",
        "short.",
    )])
    .await;
    let r = resolver(&server);
    assert_eq!(r.a("x.short").await, Err(DnsError::NxDomain));
    assert_eq!(r.a("x.short").await, Err(DnsError::NxDomain));
    assert_eq!(server.received(), 1);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(r.a("x.short").await, Err(DnsError::NxDomain));
    assert_eq!(server.received(), 2, "the negative answer outlived its TTL");
}

#[tokio::test]
async fn negative_answers_without_soa_are_kept_for_a_bounded_time() {
    let server = test_server().await;
    let options = ResolverOptions {
        negative_ttl_without_soa: Duration::from_millis(700),
        ..fast_options()
    };
    let r = HickoryLookup::with_nameservers(&[server.addr], options).unwrap();
    let log = || server.log.lock().unwrap().clone();

    // NXDOMAIN without SOA: asked once, then answered from the cache, any spelling.
    assert_eq!(r.txt("helo.nosoa.test").await, Err(DnsError::NxDomain));
    assert_eq!(server.received(), 1, "{:?}", log());
    assert_eq!(r.txt("HELO.nosoa.test.").await, Err(DnsError::NxDomain));
    assert_eq!(
        server.received(),
        1,
        "NXDOMAIN without SOA not kept: {:?}",
        log()
    );
    // Another type is another question.
    assert_eq!(r.a("helo.nosoa.test").await, Err(DnsError::NxDomain));
    assert_eq!(server.received(), 2, "{:?}", log());

    // NODATA without SOA: the CNAME check once (the name is no alias), then kept.
    assert_eq!(r.txt("x.nodata.nosoa.test").await, Err(DnsError::NoData));
    let asked = server.received();
    assert_eq!(
        asked,
        4,
        "the TXT question and the CNAME check: {:?}",
        log()
    );
    assert_eq!(r.txt("x.nodata.nosoa.test").await, Err(DnsError::NoData));
    assert_eq!(
        server.received(),
        asked,
        "NODATA without SOA not kept: {:?}",
        log()
    );
    assert_eq!(
        r.stats(),
        LookupStats {
            questions: 5,
            from_network: 3,
            from_cache: 2,
            requests_sent: 4,
        }
    );

    // Bounded: asked again once the time is over; and clear_cache forgets them.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(r.txt("helo.nosoa.test").await, Err(DnsError::NxDomain));
    assert_eq!(server.received(), asked + 1, "{:?}", log());
    r.clear_cache();
    assert_eq!(r.txt("helo.nosoa.test").await, Err(DnsError::NxDomain));
    assert_eq!(server.received(), asked + 2, "{:?}", log());

    // Zero keeps none (RFC 2308 §5's advice to caching servers).
    let strict = HickoryLookup::with_nameservers(
        &[server.addr],
        ResolverOptions {
            negative_ttl_without_soa: Duration::ZERO,
            ..fast_options()
        },
    )
    .unwrap();
    let before = server.received();
    assert_eq!(strict.txt("helo.nosoa.test").await, Err(DnsError::NxDomain));
    assert_eq!(strict.txt("helo.nosoa.test").await, Err(DnsError::NxDomain));
    assert_eq!(server.received(), before + 2, "{:?}", log());
}

#[tokio::test]
async fn cache_size_zero_disables_caching() {
    let server = test_server().await;
    let options = ResolverOptions {
        cache_size: 0,
        ..fast_options()
    };
    let r = HickoryLookup::with_nameservers(&[server.addr], options).unwrap();
    assert!(r.a("a.test").await.is_ok());
    assert!(r.a("a.test").await.is_ok());
    assert_eq!(server.received(), 2);
    assert_eq!(r.stats().from_network, 2);
}

#[tokio::test]
async fn concurrent_questions() {
    let server = test_server().await;
    let r = resolver(&server);
    let (a, b, c, d) = tokio::join!(
        r.a("a.test"),
        r.txt("multi.test"),
        r.mx("mx.test"),
        r.txt("nope.test")
    );
    assert_eq!(a.unwrap().len(), 2);
    assert_eq!(b.unwrap().len(), 2);
    assert_eq!(c.unwrap().len(), 2);
    assert_eq!(d, Err(DnsError::NxDomain));
    let stats = r.stats();
    assert_eq!(stats.questions, 4);
    assert_eq!(stats.from_network, 4);
    assert_eq!(server.received(), 4);
}

#[test]
fn outside_a_tokio_runtime_is_a_temporary_error_not_a_panic() {
    let r = HickoryLookup::with_nameservers(
        &["127.0.0.1:9".parse().unwrap()],
        ResolverOptions::default(),
    )
    .unwrap();
    let answer = futures_block_on(r.a("example.com"));
    assert!(
        matches!(&answer, Err(DnsError::Temporary(why)) if why.contains("Tokio runtime")),
        "{answer:?}"
    );
    assert_eq!(
        r.stats(),
        LookupStats {
            questions: 1,
            ..LookupStats::default()
        }
    );
}

#[tokio::test]
async fn special_use_names_are_answered_locally() {
    let server = test_server().await;
    let r = resolver(&server);
    assert_eq!(r.a("localhost").await, Ok(vec![Ipv4Addr::LOCALHOST]));
    assert_eq!(r.txt("anything.invalid").await, Err(DnsError::NxDomain));
    assert_eq!(server.received(), 0);
    let stats = r.stats();
    assert_eq!(
        (stats.questions, stats.from_cache, stats.from_network),
        (2, 2, 0)
    );
}

/// Polls a future to completion on this thread, without any runtime.
fn futures_block_on<F: std::future::Future>(fut: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

#[test]
fn constructors() {
    assert!(HickoryLookup::with_nameservers(&[], ResolverOptions::default()).is_err());
    let r = HickoryLookup::with_nameservers(
        &[
            dmarc_dns::parse_nameserver("192.0.2.53").unwrap(),
            dmarc_dns::parse_nameserver("[::1]:5353").unwrap(),
        ],
        ResolverOptions::default(),
    )
    .unwrap();
    assert_eq!(
        r.nameservers(),
        [
            "192.0.2.53:53".parse::<SocketAddr>().unwrap(),
            "[::1]:5353".parse().unwrap()
        ]
    );
    // The system configuration: works wherever /etc/resolv.conf lists a server.
    if std::fs::read_to_string("/etc/resolv.conf").is_ok_and(|t| t.contains("nameserver")) {
        let r = HickoryLookup::system(ResolverOptions::default()).unwrap();
        assert!(!r.nameservers().is_empty());
    }
}

/// The mail-bench zone served by hickory-server (parsed by hickory's own master-file
/// parser) and read by `ZoneFile` give the same answers to every question of zone.json.
#[tokio::test]
async fn hickory_server_and_zone_file_agree_on_mail_bench() {
    let dir = dmarc_testkit::corpus("mail-bench");
    let text = std::fs::read_to_string(dir.join("zone.txt")).unwrap();
    let served = format!(
        "$ORIGIN example.\n@ 300 IN SOA ns.example. hostmaster.example. 1 3600 600 86400 60\n{text}"
    );
    let server = serve(&[(&served, "example.")]).await;
    let net = resolver(&server);
    let zone = ZoneFile::load(&dir.join("zone.txt")).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("zone.json")).unwrap()).unwrap();
    let mut names: Vec<String> = json.as_object().unwrap().keys().cloned().collect();
    names.push("nonexistent.brand0.example".into());
    names.push("_domainkey.brand1.example".into());
    let mut compared = 0;
    for name in &names {
        let mut pairs = vec![
            (zone.txt(name).await, net.txt(name).await),
            (
                zone.a(name)
                    .await
                    .map(|v| v.iter().map(|a| a.octets().to_vec()).collect()),
                net.a(name)
                    .await
                    .map(|v| v.iter().map(|a| a.octets().to_vec()).collect()),
            ),
            (
                zone.mx(name)
                    .await
                    .map(|v| v.iter().map(|m| m.exchange.clone().into_bytes()).collect()),
                net.mx(name)
                    .await
                    .map(|v| v.iter().map(|m| m.exchange.clone().into_bytes()).collect()),
            ),
        ];
        for (z, n) in &mut pairs {
            if let (Ok(z), Ok(n)) = (z, n) {
                z.sort();
                n.sort();
            }
        }
        for (z, n) in pairs {
            assert_eq!(z, n, "{name}");
            compared += 1;
        }
    }
    assert!(compared >= 3 * 140);
}
