//! dmarc milter (placeholder docs)
#![forbid(unsafe_code)]
pub mod codec;
pub mod filter;
pub mod session;
