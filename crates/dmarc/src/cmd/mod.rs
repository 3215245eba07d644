//! Subcommands.

pub mod ingest;
pub mod rejected;
pub mod report;
pub mod summary;
