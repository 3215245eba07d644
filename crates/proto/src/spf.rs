//! SPF (RFC 7208). Filled in by the SPF work.
