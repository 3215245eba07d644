//! Adapters around a [`Lookup`]: choose one at run time ([`AnyLookup`]), add latency
//! ([`DelayLookup`]), record the questions ([`CountingLookup`]).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;
use std::time::Duration;

use dmarc_proto::dns::{DnsResult, reverse_name};
use dmarc_proto::{Lookup, MxRecord};

use crate::{HickoryLookup, QType, ZoneFile};

/// One of the resolvers of this crate, chosen at run time (`--zone FILE` or the network).
#[derive(Debug)]
pub enum AnyLookup {
    /// Answers from a master file.
    Zone(ZoneFile),
    /// Asks name servers.
    Hickory(HickoryLookup),
}

impl From<ZoneFile> for AnyLookup {
    fn from(zone: ZoneFile) -> Self {
        AnyLookup::Zone(zone)
    }
}

impl From<HickoryLookup> for AnyLookup {
    fn from(resolver: HickoryLookup) -> Self {
        AnyLookup::Hickory(resolver)
    }
}

impl Lookup for AnyLookup {
    async fn txt(&self, name: &str) -> DnsResult<Vec<u8>> {
        match self {
            AnyLookup::Zone(z) => z.txt(name).await,
            AnyLookup::Hickory(h) => h.txt(name).await,
        }
    }

    async fn a(&self, name: &str) -> DnsResult<Ipv4Addr> {
        match self {
            AnyLookup::Zone(z) => z.a(name).await,
            AnyLookup::Hickory(h) => h.a(name).await,
        }
    }

    async fn aaaa(&self, name: &str) -> DnsResult<Ipv6Addr> {
        match self {
            AnyLookup::Zone(z) => z.aaaa(name).await,
            AnyLookup::Hickory(h) => h.aaaa(name).await,
        }
    }

    async fn mx(&self, name: &str) -> DnsResult<MxRecord> {
        match self {
            AnyLookup::Zone(z) => z.mx(name).await,
            AnyLookup::Hickory(h) => h.mx(name).await,
        }
    }

    async fn ptr(&self, ip: IpAddr) -> DnsResult<String> {
        match self {
            AnyLookup::Zone(z) => z.ptr(ip).await,
            AnyLookup::Hickory(h) => h.ptr(ip).await,
        }
    }

    async fn cname(&self, name: &str) -> DnsResult<String> {
        match self {
            AnyLookup::Zone(z) => z.cname(name).await,
            AnyLookup::Hickory(h) => h.cname(name).await,
        }
    }
}

/// Waits a fixed time (a Tokio sleep) before each answer of the inner [`Lookup`], as a
/// network would. With it, the wall time of a check grows with its longest chain of
/// dependent lookups, while independent lookups asked concurrently overlap.
///
/// The sleep needs a Tokio runtime with the time driver enabled.
#[derive(Debug, Clone)]
pub struct DelayLookup<L> {
    inner: L,
    delay: Duration,
}

impl<L> DelayLookup<L> {
    /// Wraps `inner`, delaying each answer by `delay`.
    pub fn new(inner: L, delay: Duration) -> Self {
        DelayLookup { inner, delay }
    }

    /// The delay added to each answer.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// The wrapped resolver.
    pub fn inner(&self) -> &L {
        &self.inner
    }

    /// Unwraps the resolver.
    pub fn into_inner(self) -> L {
        self.inner
    }
}

impl<L: Lookup> Lookup for DelayLookup<L> {
    async fn txt(&self, name: &str) -> DnsResult<Vec<u8>> {
        tokio::time::sleep(self.delay).await;
        self.inner.txt(name).await
    }

    async fn a(&self, name: &str) -> DnsResult<Ipv4Addr> {
        tokio::time::sleep(self.delay).await;
        self.inner.a(name).await
    }

    async fn aaaa(&self, name: &str) -> DnsResult<Ipv6Addr> {
        tokio::time::sleep(self.delay).await;
        self.inner.aaaa(name).await
    }

    async fn mx(&self, name: &str) -> DnsResult<MxRecord> {
        tokio::time::sleep(self.delay).await;
        self.inner.mx(name).await
    }

    async fn ptr(&self, ip: IpAddr) -> DnsResult<String> {
        tokio::time::sleep(self.delay).await;
        self.inner.ptr(ip).await
    }

    async fn cname(&self, name: &str) -> DnsResult<String> {
        tokio::time::sleep(self.delay).await;
        self.inner.cname(name).await
    }
}

/// Records every question asked of the inner [`Lookup`], in the order asked (when the method
/// is called, before the answer is awaited): the type and the name as given (for PTR, the
/// reverse name, e.g. `1.2.0.192.in-addr.arpa`).
#[derive(Debug, Default)]
pub struct CountingLookup<L> {
    inner: L,
    questions: Mutex<Vec<(QType, String)>>,
}

impl<L> CountingLookup<L> {
    /// Wraps `inner`.
    pub fn new(inner: L) -> Self {
        CountingLookup {
            inner,
            questions: Mutex::new(Vec::new()),
        }
    }

    /// The questions asked so far, in order.
    pub fn questions(&self) -> Vec<(QType, String)> {
        self.lock().clone()
    }

    /// How many questions were asked.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// Forgets the questions recorded so far.
    pub fn reset(&self) {
        self.lock().clear();
    }

    /// The wrapped resolver.
    pub fn inner(&self) -> &L {
        &self.inner
    }

    /// Unwraps the resolver.
    pub fn into_inner(self) -> L {
        self.inner
    }

    fn record(&self, qtype: QType, name: &str) {
        self.lock().push((qtype, name.to_string()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(QType, String)>> {
        // A panic while holding the lock cannot leave the list inconsistent: keep going.
        self.questions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<L: Lookup> Lookup for CountingLookup<L> {
    fn txt(&self, name: &str) -> impl Future<Output = DnsResult<Vec<u8>>> + Send {
        self.record(QType::Txt, name);
        self.inner.txt(name)
    }

    fn a(&self, name: &str) -> impl Future<Output = DnsResult<Ipv4Addr>> + Send {
        self.record(QType::A, name);
        self.inner.a(name)
    }

    fn aaaa(&self, name: &str) -> impl Future<Output = DnsResult<Ipv6Addr>> + Send {
        self.record(QType::Aaaa, name);
        self.inner.aaaa(name)
    }

    fn mx(&self, name: &str) -> impl Future<Output = DnsResult<MxRecord>> + Send {
        self.record(QType::Mx, name);
        self.inner.mx(name)
    }

    fn ptr(&self, ip: IpAddr) -> impl Future<Output = DnsResult<String>> + Send {
        self.record(QType::Ptr, &reverse_name(ip));
        self.inner.ptr(ip)
    }

    fn cname(&self, name: &str) -> impl Future<Output = DnsResult<String>> + Send {
        self.record(QType::Cname, name);
        self.inner.cname(name)
    }
}
