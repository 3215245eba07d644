//! The subcommands, one module each.

pub mod alerts;
pub mod arc;
pub mod check;
pub mod dkim;
pub mod imap_args;
pub mod ingest;
pub mod milter;
pub mod record;
pub mod rejected;
pub mod report;
pub mod report_send;
pub mod rollout;
pub mod serve;
pub mod sources;
pub mod spf;
pub mod summary;
pub mod verify;
pub mod verify_files;
