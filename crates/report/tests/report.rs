//! Conformance and robustness tests for dmarc-report (one integration-test binary).

mod conformance;
mod hostile;
mod mail_auth_oracle;
mod roundtrip;
