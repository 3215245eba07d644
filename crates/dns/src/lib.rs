//! DNS adapters implementing `dmarc_proto::Lookup`.
#![warn(clippy::unwrap_used)]
