//! Subcommands.

pub mod report;
