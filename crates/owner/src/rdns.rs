//! Reverse-DNS names of report sources: the lookups, with forward confirmation (FCrDNS:
//! the name's A or AAAA records must hold the address, else anyone controlling the
//! reverse zone of an address could name it `mail.example.com`). The store keeps what is
//! found ([`dmarc_store::rdns`]: the cache and its lifetimes); the DNS work is here, through
//! [`Lookup`], so that any resolver of `dmarc-dns` (or a test map) can answer.

use std::net::IpAddr;

use dmarc_proto::Lookup;
use dmarc_proto::dns::DnsError;
use dmarc_store::rdns::{Looked, RdnsOutcome};
use dmarc_store::time::now;
use dmarc_store::{Store, StoreError};
use futures_util::future::join_all;

/// Looks up one address.
pub async fn lookup<L: Lookup>(lookup: &L, ip: IpAddr) -> RdnsOutcome {
    match lookup.ptr(ip).await {
        Ok(names) => match names.into_iter().find(|n| !n.is_empty()) {
            Some(n) => RdnsOutcome::Name(n.trim_end_matches('.').to_ascii_lowercase()),
            None => RdnsOutcome::NoName,
        },
        Err(DnsError::NxDomain | DnsError::NoData) => RdnsOutcome::NoName,
        Err(DnsError::Temporary(why)) => RdnsOutcome::TempError(why),
    }
}

/// Whether `name`'s A (for IPv4) or AAAA (for IPv6) records hold `ip`; `None` when the
/// lookup failed temporarily.
pub async fn forward_confirms<L: Lookup>(lookup: &L, ip: IpAddr, name: &str) -> Option<bool> {
    let found = match ip {
        IpAddr::V4(v4) => lookup.a(name).await.map(|a| a.contains(&v4)),
        IpAddr::V6(v6) => lookup.aaaa(name).await.map(|a| a.contains(&v6)),
    };
    match found {
        Ok(yes) => Some(yes),
        Err(DnsError::NxDomain | DnsError::NoData) => Some(false),
        Err(DnsError::Temporary(_)) => None,
    }
}

/// Looks up one address and forward-confirms the name found.
pub async fn lookup_confirmed<L: Lookup>(lookup_: &L, ip: IpAddr) -> (RdnsOutcome, Option<bool>) {
    let outcome = lookup(lookup_, ip).await;
    let confirmed = match &outcome {
        RdnsOutcome::Name(n) => forward_confirms(lookup_, ip, n).await,
        _ => None,
    };
    (outcome, confirmed)
}

/// How many reverse lookups [`resolve_missing`] runs at once.
pub const CONCURRENCY: usize = 16;

/// Looks up those of `ips` not freshly cached, [`CONCURRENCY`] at a time, forward-confirms
/// the names found, and caches the outcomes. Returns how many were looked up.
///
/// The store is used between the lookups, so this suits an SQLite store or a runtime that
/// tolerates blocking; with PostgreSQL inside a Tokio runtime, use
/// [`Store::rdns_needing_lookup`], [`lookup_all`] and [`Store::cache_rdns_all`] apart (the
/// synchronous client cannot run inside another runtime).
pub async fn resolve_missing<L: Lookup>(
    store: &mut Store,
    ips: &[IpAddr],
    resolver: &L,
) -> Result<usize, StoreError> {
    let missing = store.rdns_needing_lookup(ips, now())?;
    let found = lookup_all(resolver, &missing).await;
    store.cache_rdns_all(&found, now())?;
    Ok(missing.len())
}

/// Looks up every address of `ips`, [`CONCURRENCY`] at a time, forward-confirming the
/// names found. No store is involved.
pub async fn lookup_all<L: Lookup>(resolver: &L, ips: &[IpAddr]) -> Vec<Looked> {
    let mut out = Vec::with_capacity(ips.len());
    for batch in ips.chunks(CONCURRENCY) {
        let outcomes = join_all(batch.iter().map(|ip| lookup_confirmed(resolver, *ip))).await;
        for (ip, (outcome, confirmed)) in batch.iter().zip(outcomes) {
            out.push((*ip, outcome, confirmed));
        }
    }
    out
}
