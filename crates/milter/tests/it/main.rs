//! The milter crate's integration tests (one binary).

mod arc;
mod config;
mod counting;
mod frames;
mod fuzz;
mod handler;
mod miltertest;
mod server;
mod support;
