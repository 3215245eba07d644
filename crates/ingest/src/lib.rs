//! Report sources for `dmarc ingest`.
#![warn(clippy::unwrap_used)]
#![warn(missing_docs)]

pub mod imap;
