//! The milter crate's integration tests (one binary).

mod frames;
mod miltertest;
mod support;
