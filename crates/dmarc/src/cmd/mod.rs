//! Subcommands, one module each.

pub mod dkim;
