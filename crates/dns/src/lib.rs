//! DNS adapters implementing [`dmarc_proto::Lookup`], and the system clock.
//!
//! The protocol core (`dmarc-proto`) asks DNS questions through the [`Lookup`] trait and never
//! touches the network, files or the clock itself. This crate holds the implementations that
//! do:
//!
//! * [`HickoryLookup`] asks recursive name servers (from `/etc/resolv.conf` or given with
//!   [`parse_nameserver`]) through hickory-resolver on Tokio, with a TTL-honouring cache for
//!   positive and negative answers, bounded time per question, and [`LookupStats`].
//! * [`ZoneFile`] answers from an RFC 1035 master file, offline: for tests, benchmarks,
//!   reproducing a verdict and checking a zone before publishing it.
//! * [`AnyLookup`] is either of them, chosen at run time.
//! * [`DelayLookup`] adds a fixed latency to every answer of another resolver, and
//!   [`CountingLookup`] records every question asked of one: for tests and benchmarks.
//! * [`SystemClock`] implements [`dmarc_proto::Clock`] with [`std::time::SystemTime`].
//!
//! Every adapter keeps the contract documented in [`dmarc_proto::dns`]: absolute names,
//! NXDOMAIN, NODATA and temporary failures kept apart, CNAMEs followed, TXT strings joined
//! and kept as bytes, returned names lower-case without trailing dot, no SPF-type queries.
//!
//! Choosing a resolver from command-line settings:
//!
//! ```
//! use std::path::Path;
//! use dmarc_dns::{AnyLookup, HickoryLookup, ResolverOptions, ZoneFile, parse_nameserver};
//!
//! fn resolver(
//!     zone: Option<&Path>,
//!     nameservers: &[String],
//! ) -> Result<AnyLookup, Box<dyn std::error::Error>> {
//!     let options = ResolverOptions::default();
//!     Ok(match zone {
//!         Some(path) => ZoneFile::load(path)?.into(),
//!         None if nameservers.is_empty() => HickoryLookup::system(options)?.into(),
//!         None => {
//!             let servers = nameservers
//!                 .iter()
//!                 .map(|s| parse_nameserver(s))
//!                 .collect::<Result<Vec<_>, _>>()?;
//!             HickoryLookup::with_nameservers(&servers, options)?.into()
//!         }
//!     })
//! }
//! # let r = resolver(None, &["127.0.0.1:5353".to_string()]).unwrap();
//! # assert!(matches!(r, AnyLookup::Hickory(_)));
//! # assert!(resolver(None, &["dns.example".to_string()]).is_err());
//! ```
#![warn(clippy::unwrap_used)]
#![warn(missing_docs)]

pub mod hickory;
mod wrappers;
pub mod zone;

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use dmarc_proto::Lookup;
pub use hickory::{HickoryLookup, LookupStats, ResolverError, ResolverOptions, parse_nameserver};
pub use wrappers::{AnyLookup, CountingLookup, DelayLookup};
pub use zone::{LoadOptions, Soa, ZoneError, ZoneFile, ZoneNode};

/// The kind of a DNS question, as recorded by [`CountingLookup`] and shown in diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QType {
    /// IPv4 address records.
    A,
    /// IPv6 address records.
    Aaaa,
    /// Mail exchanger records.
    Mx,
    /// Text records.
    Txt,
    /// Reverse-mapping pointer records.
    Ptr,
    /// An alias (asked only through [`Lookup::cname`], never by verification).
    Cname,
}

impl QType {
    /// The record type's mnemonic: `A`, `AAAA`, `MX`, `TXT`, `PTR`, `CNAME`.
    pub fn as_str(self) -> &'static str {
        match self {
            QType::A => "A",
            QType::Aaaa => "AAAA",
            QType::Mx => "MX",
            QType::Txt => "TXT",
            QType::Ptr => "PTR",
            QType::Cname => "CNAME",
        }
    }
}

impl fmt::Display for QType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The system's wall clock, [`std::time::SystemTime`], as a [`dmarc_proto::Clock`].
///
/// A time before the Unix epoch (a badly set clock) reads as the epoch itself rather than
/// failing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemClock;

impl dmarc_proto::Clock for SystemClock {
    fn now(&self) -> Duration {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dmarc_proto::Clock;

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.unix_seconds() > 1_577_836_800);
    }
}
