//! DMARC aggregate (RFC 7489, RFC 9990), failure (RFC 6591, RFC 9991) and SMTP TLS (RFC 8460) reports.
#![warn(clippy::unwrap_used)]
