//! DMARC reports out. Aggregate reports (RFC 9990, or RFC 7489 on request) are made from the
//! observations the receiver stored (`dmarc verify --batch --record`, the milter), one per
//! policy domain and closed period; each is gzip-compressed, attached to a message as RFC
//! 9990 §3 describes, DKIM-signed with the project's signer, and sent to every `rua`
//! destination of the policy record as published at sending time that passes the RFC 9990
//! §4 external-destination check, the `!size` limit and the configured exclusions.
//!
//! Failure reports (RFC 9991, [`failure`]) are made, when `[failure] enabled`, from the
//! candidates the receiver queued, one AFRF message per failed message, to the `ruf`
//! destinations that pass the same checks, at most `per_domain_per_hour` per policy
//! domain, with the same delivery rows.
//!
//! This crate does the I/O (DNS questions through [`dmarc_proto::dns::Lookup`], the store,
//! SMTP or sendmail through lettre) around the protocol crate's logic; the protocol crate
//! stays free of I/O. Every destination's state is a row in the store (`dmarc_store::outbox`),
//! which makes a run safe to stop and repeat.
#![warn(missing_docs)]

pub mod aggregate;
pub mod bounces;
pub mod config;
pub mod destinations;
pub mod failure;
pub mod mail;
pub mod run;
pub mod transport;

pub use config::Config;
pub use run::{Event, Run, RunOptions};

/// Why reporting failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is not usable.
    #[error("configuration: {0}")]
    Config(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] dmarc_store::StoreError),
    /// Signing failed.
    #[error("DKIM signing: {0}")]
    Sign(String),
    /// Writing a file failed.
    #[error("{0}")]
    Io(String),
}
