//! The integration tests of dmarc-dns, one binary.

mod zone;
