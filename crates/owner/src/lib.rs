//! The domain owner's reasoning: what a domain publishes in DNS for mail, checked as a
//! receiver reads it, with findings that say what to change.
//!
//! * [`check`]: the DNS check of one domain ([`check::check_domain`]): DMARC (RFC 9989
//!   discovery by the tree walk, and what RFC 7489 would find), SPF (the whole include tree
//!   with its DNS lookups, RFC 7208 §4.6.4), DKIM keys, MX, MTA-STS, TLS-RPT and BIMI, and,
//!   when asked, whether mail sent through one service would pass DMARC
//!   ([`check::SenderSpec`]).
//! * [`services`]: the catalogue of well-known sending services (`data/services.toml`).
//! * [`record`]: DMARC and SPF records to publish, built valid by construction.
//! * [`Finding`]: one finding, with an [`Area`], a [`Severity`] and a stable [`Code`].
//!
//! Every result is a `Serialize` value: the CLI prints it as text or JSON, and a dashboard
//! can serve the same values.
//!
//! ```no_run
//! # async fn demo(lookup: &dmarc_dns::AnyLookup) {
//! use dmarc_owner::check::{CheckOptions, check_domain};
//! use dmarc_proto::dmarc::DomainName;
//! let domain = DomainName::new("example.com").unwrap();
//! let report = check_domain(lookup, &domain, &CheckOptions::default()).await;
//! for f in &report.findings {
//!     println!("{} {} {}: {}", f.area, f.severity, f.code, f.message);
//! }
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]

pub mod check;
mod finding;
pub mod rdns;
pub mod record;
pub mod rollout;
pub mod services;
pub mod sources;

pub use finding::{Area, Code, Finding, Severity};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OwnerError {
    /// The services catalogue is malformed.
    #[error("services catalogue: {0}")]
    Catalogue(String),
    /// A record to publish cannot be built from these settings.
    #[error("{0}")]
    Record(String),
    /// A domain name is unusable.
    #[error(transparent)]
    Domain(#[from] dmarc_proto::dmarc::DomainError),
}
