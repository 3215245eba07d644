//! Conformance and robustness tests for dmarc-report (one integration-test binary).

mod conformance;
mod hostile;
mod leniency;
mod mail_auth_oracle;
mod roundtrip;
