//! Time, injected.
//!
//! The core never reads the system clock. Callers hand in a [`Clock`]; tests use
//! [`FixedClock`], binaries use a clock backed by `SystemTime` (see the `dmarc-dns` crate).

use std::time::Duration;

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// The time elapsed since the Unix epoch (1970-01-01T00:00:00Z).
    ///
    /// Used both for absolute timestamps (DKIM `t=`/`x=`, report periods) and for measuring
    /// elapsed time (the SPF evaluation time budget), so it should not jump backwards.
    fn now(&self) -> Duration;

    /// Whole seconds since the Unix epoch.
    fn unix_seconds(&self) -> u64 {
        self.now().as_secs()
    }
}

/// A clock that always reads the same instant. For tests and for reproducing a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedClock(pub Duration);

impl FixedClock {
    /// A clock fixed at `secs` seconds after the Unix epoch.
    pub fn from_unix_seconds(secs: u64) -> Self {
        FixedClock(Duration::from_secs(secs))
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Duration {
        self.0
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> Duration {
        (**self).now()
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> Duration {
        (**self).now()
    }
}
