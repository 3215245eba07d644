//! The trusted-forwarder override.
