//! Virtual monotonic time for the pure core.
//!
//! The core never reads a clock. The runtime passes `now` as milliseconds on a monotonic
//! clock of its choosing (e.g. `Instant` since start); the simulation passes virtual time.
//! Spans are plain `u64` milliseconds inside the core and [`Duration`] at the API edge.

use core::fmt;
use core::time::Duration;

/// A point on the caller's monotonic clock, in milliseconds since an arbitrary origin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Millis(pub u64);

impl Millis {
    /// The origin of the clock.
    pub const ZERO: Millis = Millis(0);

    /// `self + ms`, saturating at the end of time (never wraps).
    #[must_use]
    pub const fn plus(self, ms: u64) -> Millis {
        Millis(self.0.saturating_add(ms))
    }

    /// `self + d`, saturating.
    #[must_use]
    pub fn after(self, d: Duration) -> Millis {
        self.plus(ms(d))
    }

    /// Milliseconds from `earlier` to `self`; 0 when `earlier` is later.
    #[must_use]
    pub const fn since(self, earlier: Millis) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// [`Duration`] from `earlier` to `self`; zero when `earlier` is later.
    #[must_use]
    pub const fn duration_since(self, earlier: Millis) -> Duration {
        Duration::from_millis(self.since(earlier))
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        write!(f, "{}.{:03}s", ms / 1000, ms % 1000)
    }
}

/// A [`Duration`] as whole milliseconds, saturating at `u64::MAX`.
#[must_use]
pub fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Millis(u64::MAX - 1).plus(5), Millis(u64::MAX));
        assert_eq!(Millis(3).since(Millis(10)), 0);
        assert_eq!(Millis(10).since(Millis(3)), 7);
        assert_eq!(ms(Duration::MAX), u64::MAX);
        assert_eq!(Millis(1500).to_string(), "1.500s");
        assert_eq!(Millis(5).after(Duration::from_secs(1)), Millis(1005));
    }
}
