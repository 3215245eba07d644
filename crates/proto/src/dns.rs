//! The DNS seam: the one trait through which the core asks DNS questions.
//!
//! # Contract
//!
//! Every implementation of [`Lookup`] (the hickory-resolver adapter and the zone-file
//! resolver in `dmarc-dns`, the in-memory maps in tests) keeps these promises, because SPF's
//! void-lookup limit and DMARC's `np` tag depend on them:
//!
//! * **Names are absolute A-labels.** The `name` argument is an absolute domain name in
//!   ASCII (A-label, "xn--") form. A trailing dot is optional and means the same thing; no
//!   search list or `ndots` rule is ever applied. Names compare case-insensitively. Callers
//!   convert U-labels and validate length limits before asking.
//! * **Three kinds of "no answer" stay distinct.** [`DnsError::NxDomain`] means the name does
//!   not exist (RCODE 3). [`DnsError::NoData`] means the name exists but has no record of the
//!   asked type (RCODE 0 with an empty answer). [`DnsError::Temporary`] is everything else
//!   that prevented an answer: time-out, SERVFAIL, REFUSED, a network error, a malformed
//!   response. An `Ok` value is never empty: an empty answer is `NoData`.
//! * **CNAMEs are followed.** A query at an alias returns the records of the canonical name
//!   (a CNAME chain that loops or ends nowhere is `NxDomain` or `Temporary`, as a resolver
//!   reports it).
//! * **TXT records are joined and kept as bytes.** Each element of a TXT answer is one
//!   resource record whose character-strings have been concatenated with no separator
//!   (RFC 7208 §3.3, RFC 6376 §3.6.2.2). The data is handed over exactly as received, never
//!   lossily decoded: deciding what non-ASCII or control bytes mean is the protocol's job.
//! * **Returned names** (MX exchanges, PTR targets) are lower-case and have no trailing dot.
//! * **CNAMEs can also be seen.** [`Lookup::cname`] asks for the CNAME record at a name
//!   itself, without following it, for callers that must know whether a name is an alias
//!   (a DKIM key delegated to an email service). Verification never needs it, so it has a
//!   default implementation that reports a temporary failure; the adapters of `dmarc-dns`
//!   implement it.
//! * **Records of type SPF (99) are never asked for.** RFC 7208 §3.1 retired them; there is
//!   deliberately no method for them.
//!
//! The methods return futures so that independent questions can be asked concurrently; the
//! core never blocks and never spawns.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

pub mod memo;
pub use memo::{Memo, MemoLookup};

/// Why a DNS question produced no records.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DnsError {
    /// NXDOMAIN: the name does not exist.
    NxDomain,
    /// NODATA: the name exists, but has no records of the asked type.
    NoData,
    /// A temporary failure: time-out, SERVFAIL, REFUSED, a network or protocol error. The
    /// text says what happened, for a person.
    Temporary(String),
}

impl DnsError {
    /// True for the two answers that say "there is nothing here" (NXDOMAIN and NODATA),
    /// which RFC 7208 §4.6.4 calls void lookups.
    pub fn is_void(&self) -> bool {
        matches!(self, DnsError::NxDomain | DnsError::NoData)
    }

    /// The short, stable name of the answer class: `nxdomain`, `nodata` or `temperror`.
    pub fn class(&self) -> &'static str {
        match self {
            DnsError::NxDomain => "nxdomain",
            DnsError::NoData => "nodata",
            DnsError::Temporary(_) => "temperror",
        }
    }
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsError::NxDomain => f.write_str("the name does not exist (NXDOMAIN)"),
            DnsError::NoData => f.write_str("the name has no records of that type (NODATA)"),
            DnsError::Temporary(why) => write!(f, "temporary DNS failure: {why}"),
        }
    }
}

impl std::error::Error for DnsError {}

/// The result of one DNS question. `Ok` is never empty.
pub type DnsResult<T> = Result<Vec<T>, DnsError>;

/// One MX record.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MxRecord {
    /// The preference; lower is tried first.
    pub preference: u16,
    /// The exchange's host name, lower-case, without trailing dot. `""` is the null MX
    /// (RFC 7505, an exchange of ".").
    pub exchange: String,
}

/// Asks DNS questions. See the [module documentation](self) for the contract every
/// implementation keeps.
pub trait Lookup: Send + Sync {
    /// TXT records at `name`, one element per resource record, character-strings joined.
    fn txt(&self, name: &str) -> impl Future<Output = DnsResult<Vec<u8>>> + Send;

    /// A records at `name`.
    fn a(&self, name: &str) -> impl Future<Output = DnsResult<Ipv4Addr>> + Send;

    /// AAAA records at `name`.
    fn aaaa(&self, name: &str) -> impl Future<Output = DnsResult<Ipv6Addr>> + Send;

    /// MX records at `name`, in the order received (callers sort by preference when they
    /// need to).
    fn mx(&self, name: &str) -> impl Future<Output = DnsResult<MxRecord>> + Send;

    /// PTR records for `ip` (the question is asked at its `in-addr.arpa` or `ip6.arpa`
    /// name).
    fn ptr(&self, ip: IpAddr) -> impl Future<Output = DnsResult<String>> + Send;

    /// The target of the CNAME record at `name` itself (not followed), lower-case without
    /// trailing dot: `Ok` with one element when `name` is an alias, [`DnsError::NoData`] when
    /// it exists and is not one, [`DnsError::NxDomain`] when it does not exist.
    ///
    /// The default implementation answers [`DnsError::Temporary`] ("not supported"): the
    /// protocol core never asks, and a lookup that cannot ask need not pretend to know.
    fn cname(&self, name: &str) -> impl Future<Output = DnsResult<String>> + Send {
        let _ = name;
        std::future::ready(Err(DnsError::Temporary(
            "this resolver does not answer CNAME questions".into(),
        )))
    }
}

impl<L: Lookup + ?Sized> Lookup for &L {
    fn txt(&self, name: &str) -> impl Future<Output = DnsResult<Vec<u8>>> + Send {
        (**self).txt(name)
    }
    fn a(&self, name: &str) -> impl Future<Output = DnsResult<Ipv4Addr>> + Send {
        (**self).a(name)
    }
    fn aaaa(&self, name: &str) -> impl Future<Output = DnsResult<Ipv6Addr>> + Send {
        (**self).aaaa(name)
    }
    fn mx(&self, name: &str) -> impl Future<Output = DnsResult<MxRecord>> + Send {
        (**self).mx(name)
    }
    fn ptr(&self, ip: IpAddr) -> impl Future<Output = DnsResult<String>> + Send {
        (**self).ptr(ip)
    }
    fn cname(&self, name: &str) -> impl Future<Output = DnsResult<String>> + Send {
        (**self).cname(name)
    }
}

impl<L: Lookup + ?Sized> Lookup for Arc<L> {
    fn txt(&self, name: &str) -> impl Future<Output = DnsResult<Vec<u8>>> + Send {
        (**self).txt(name)
    }
    fn a(&self, name: &str) -> impl Future<Output = DnsResult<Ipv4Addr>> + Send {
        (**self).a(name)
    }
    fn aaaa(&self, name: &str) -> impl Future<Output = DnsResult<Ipv6Addr>> + Send {
        (**self).aaaa(name)
    }
    fn mx(&self, name: &str) -> impl Future<Output = DnsResult<MxRecord>> + Send {
        (**self).mx(name)
    }
    fn ptr(&self, ip: IpAddr) -> impl Future<Output = DnsResult<String>> + Send {
        (**self).ptr(ip)
    }
    fn cname(&self, name: &str) -> impl Future<Output = DnsResult<String>> + Send {
        (**self).cname(name)
    }
}

/// The name at which the PTR records of `ip` live, without trailing dot:
/// `4.3.2.1.in-addr.arpa` or the 32 nibbles of an IPv6 address under `ip6.arpa`.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                for nibble in [byte & 0x0f, byte >> 4] {
                    s.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
                    s.push('.');
                }
            }
            s.push_str("ip6.arpa");
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_name("192.0.2.10".parse().unwrap()),
            "10.2.0.192.in-addr.arpa"
        );
        assert_eq!(
            reverse_name("2001:db8::1".parse().unwrap()),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
    }

    #[test]
    fn void_classes() {
        assert!(DnsError::NxDomain.is_void());
        assert!(DnsError::NoData.is_void());
        assert!(!DnsError::Temporary("timeout".into()).is_void());
    }
}
