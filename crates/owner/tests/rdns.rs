//! Reverse DNS of report sources: looked up with forward confirmation, cached in the store,
//! not asked again while fresh.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};

use dmarc_owner::rdns;
use dmarc_proto::dns::{DnsError, DnsResult, MxRecord};
use dmarc_store::Store;
use dmarc_store::rdns::RdnsOutcome;

/// Answers PTR questions from a list (a temporary failure for 203.0.113.9), and A
/// questions for mail-out.example.com with 192.0.2.10; counts the PTR questions.
struct MapLookup {
    names: Vec<(IpAddr, &'static str)>,
    asked: AtomicUsize,
}

impl dmarc_proto::Lookup for MapLookup {
    async fn txt(&self, _: &str) -> DnsResult<Vec<u8>> {
        Err(DnsError::NoData)
    }
    async fn a(&self, name: &str) -> DnsResult<Ipv4Addr> {
        match name {
            "mail-out.example.com" => Ok(vec![Ipv4Addr::new(192, 0, 2, 10)]),
            _ => Err(DnsError::NxDomain),
        }
    }
    async fn aaaa(&self, _: &str) -> DnsResult<Ipv6Addr> {
        Err(DnsError::NoData)
    }
    async fn mx(&self, _: &str) -> DnsResult<MxRecord> {
        Err(DnsError::NoData)
    }
    async fn ptr(&self, ip: IpAddr) -> DnsResult<String> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        if ip.to_string() == "203.0.113.9" {
            return Err(DnsError::Temporary("timed out".into()));
        }
        match self.names.iter().find(|(i, _)| *i == ip) {
            Some((_, n)) => Ok(vec![n.to_string()]),
            None => Err(DnsError::NxDomain),
        }
    }
}

/// Runs a future that never waits (the map resolver answers at once).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[test]
fn looked_up_once_confirmed_and_cached() {
    let mut store = Store::open_sqlite_memory().unwrap();
    let ips: Vec<IpAddr> = ["192.0.2.10", "192.0.2.11", "203.0.113.9", "2001:db8::1"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let lookup = MapLookup {
        names: vec![
            ("192.0.2.10".parse().unwrap(), "Mail-Out.Example.COM."),
            ("192.0.2.11".parse().unwrap(), "forged.example.com"),
        ],
        asked: AtomicUsize::new(0),
    };
    let n = block_on(rdns::resolve_missing(&mut store, &ips, &lookup)).unwrap();
    assert_eq!(n, 4);
    assert_eq!(lookup.asked.load(Ordering::SeqCst), 4);
    // Cached: nothing is asked again, temporary failures included (for an hour).
    let n = block_on(rdns::resolve_missing(&mut store, &ips, &lookup)).unwrap();
    assert_eq!(n, 0);
    assert_eq!(lookup.asked.load(Ordering::SeqCst), 4);
    let mut entry = |ip: &str| store.cached_rdns(ip).unwrap().unwrap();
    let e = entry("192.0.2.10");
    assert_eq!(e.name.as_deref(), Some("mail-out.example.com"));
    assert_eq!(e.confirmed_name(), Some("mail-out.example.com"));
    // A name whose A records do not hold the address is kept but not confirmed.
    let e = entry("192.0.2.11");
    assert_eq!(e.name.as_deref(), Some("forged.example.com"));
    assert_eq!(e.confirmed, Some(false));
    assert_eq!(e.confirmed_name(), None);
    assert_eq!(entry("203.0.113.9").status, "temperror");
    assert_eq!(entry("2001:db8::1").status, "none");
    assert_eq!(
        block_on(rdns::lookup(&lookup, "2001:db8::1".parse().unwrap())),
        RdnsOutcome::NoName
    );
}
