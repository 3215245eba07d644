//! The integration tests of dmarc-dns, one binary.

mod hickory;
mod wrappers;
mod zone;
