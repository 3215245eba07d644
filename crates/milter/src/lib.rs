//! dmarc milter (placeholder docs)
#![forbid(unsafe_code)]
pub mod codec;
