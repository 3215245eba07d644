//! The sans-I/O protocol core of `dmarc`.
//!
//! Nothing in this crate touches the network, the file system or the clock. DNS answers
//! arrive through the [`Lookup`] trait and time through the [`Clock`] trait, so every
//! verdict is reproducible from its inputs.
//!
//! Verdicts are values named as the RFCs name them, each with a reason a person can read.
#![warn(clippy::unwrap_used)]

pub mod arc;
pub mod auth_results;
pub mod clock;
pub mod dkim;
pub mod dmarc;
pub mod dns;
pub mod message;
pub mod name;
pub mod spf;
pub mod tag_list;

pub use clock::{Clock, FixedClock};
pub use dns::{DnsError, Lookup, MxRecord};
