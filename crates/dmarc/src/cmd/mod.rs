//! The subcommands.

pub mod spf;
