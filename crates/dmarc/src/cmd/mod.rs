//! The subcommands.

pub mod ingest;
pub mod rejected;
pub mod report;
pub mod spf;
pub mod summary;
