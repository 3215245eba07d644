//! The subcommands, one module each.

pub mod dkim;
pub mod spf;
