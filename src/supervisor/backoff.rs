//! Capped exponential backoff with full jitter, per error class.
//!
//! With `n` consecutive failures (n ≥ 1) the *ceiling* is
//! `min(cap, initial × multiplier^(n−1))` and the delay is drawn uniformly from
//! `[0, ceiling]` (AWS "full jitter": the fewest calls of the jittered schemes; docs/peers.md R2).
//! "Slow" classes add a floor; "very slow" ones wait ½–1 × `fatal_retry`. The counter `n`
//! is reset only after a stable period online, never by one successful login.

use crate::backend::ErrorClass;

use super::settings::Policy;

/// How fast a class of failure is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    /// Network and timeout failures: full jitter over the exponential ceiling.
    Normal,
    /// Resource limits, auth failures with tries left, unknown codes: `slow_backoff_floor`
    /// plus full jitter, capped.
    Slow,
    /// Unsupported and fatal: uniform in [½, 1] × `fatal_retry`. Never given up.
    VerySlow,
}

impl Pace {
    /// The pace for a login failure class. (`Locked` waits for the lock instead, and an
    /// auth failure without tries to spare holds; those never reach the backoff.)
    #[must_use]
    pub fn of(class: ErrorClass) -> Pace {
        match class {
            ErrorClass::Network | ErrorClass::Timeout => Pace::Normal,
            ErrorClass::Auth { .. }
            | ErrorClass::Locked { .. }
            | ErrorClass::Resource
            | ErrorClass::Unknown(_) => Pace::Slow,
            ErrorClass::Unsupported | ErrorClass::Fatal => Pace::VerySlow,
        }
    }
}

/// `min(cap, initial × multiplier^(failures−1))`, in ms, for `failures ≥ 1`
/// (0 is treated as 1).
pub(crate) fn ceiling(p: &Policy, failures: u32) -> u64 {
    let mut c = p.backoff_initial.min(p.backoff_cap);
    for _ in 1..failures {
        if c >= p.backoff_cap {
            break;
        }
        c = c.saturating_mul(p.backoff_mult_milli) / 1000;
        if p.backoff_mult_milli == 1000 {
            break; // a multiplier of 1 never grows: stop early
        }
    }
    c.min(p.backoff_cap)
}

/// A jittered delay in ms for the `failures`-th consecutive failure.
pub(crate) fn delay(p: &Policy, pace: Pace, failures: u32, rng: &mut fastrand::Rng) -> u64 {
    match pace {
        Pace::Normal => rng.u64(0..=ceiling(p, failures)),
        Pace::Slow => p
            .slow_floor
            .saturating_add(rng.u64(0..=ceiling(p, failures)))
            .min(p.backoff_cap.max(p.slow_floor)),
        Pace::VerySlow => rng.u64(p.fatal_retry / 2..=p.fatal_retry),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::Settings;

    fn policy() -> Policy {
        Settings::default().policy().expect("valid")
    }

    #[test]
    fn ceiling_doubles_then_caps() {
        let p = policy();
        let got: Vec<u64> = (1..=12).map(|n| ceiling(&p, n)).collect();
        assert_eq!(
            got,
            [
                1000, 2000, 4000, 8000, 16000, 32000, 60_000, 60_000, 60_000, 60_000, 60_000,
                60_000
            ]
        );
        assert_eq!(ceiling(&p, 0), 1000);
        assert_eq!(ceiling(&p, u32::MAX), 60_000);
    }

    #[test]
    fn fractional_multiplier_and_one() {
        let p = Settings {
            backoff_multiplier: 1.6,
            ..Settings::default()
        }
        .policy()
        .expect("valid");
        assert_eq!(ceiling(&p, 2), 1600);
        assert_eq!(ceiling(&p, 3), 2560);
        let one = Settings {
            backoff_multiplier: 1.0,
            ..Settings::default()
        }
        .policy()
        .expect("valid");
        assert_eq!(ceiling(&one, 50), 1000);
    }

    /// The window the defaults document (1 s × 2^(n−1) up to 60 s; slow classes 15 s +
    /// that, at most 60 s; fatal ½–1 × 30 min), written out here rather than taken from
    /// the code under test.
    fn documented_window(pace: Pace, n: u32) -> (u64, u64) {
        let c = (1000u64 << (n - 1).min(20)).min(60_000);
        match pace {
            Pace::Normal => (0, c),
            Pace::Slow => (15_000, (15_000 + c).min(60_000)),
            Pace::VerySlow => (15 * 60_000, 30 * 60_000),
        }
    }

    #[test]
    fn full_jitter_stays_in_bounds_and_spreads() {
        let p = policy();
        let mut rng = fastrand::Rng::with_seed(7);
        for pace in [Pace::Normal, Pace::Slow, Pace::VerySlow] {
            for n in 1..20 {
                let (lo, hi) = documented_window(pace, n);
                let mut seen_low_half = false;
                let mut seen_high_half = false;
                for _ in 0..400 {
                    let d = delay(&p, pace, n, &mut rng);
                    assert!(
                        d >= lo && d <= hi,
                        "{pace:?} n={n}: {d} not in [{lo}, {hi}]"
                    );
                    seen_low_half |= d <= lo + (hi - lo) / 2;
                    seen_high_half |= d > lo + (hi - lo) / 2;
                }
                assert!(seen_low_half && seen_high_half, "{pace:?} n={n} not spread");
            }
        }
    }

    #[test]
    fn class_paces() {
        assert_eq!(Pace::of(ErrorClass::Network), Pace::Normal);
        assert_eq!(Pace::of(ErrorClass::Timeout), Pace::Normal);
        assert_eq!(Pace::of(ErrorClass::Resource), Pace::Slow);
        assert_eq!(Pace::of(ErrorClass::Unknown(999)), Pace::Slow);
        assert_eq!(
            Pace::of(ErrorClass::Auth {
                retries_left: Some(5)
            }),
            Pace::Slow
        );
        assert_eq!(Pace::of(ErrorClass::Unsupported), Pace::VerySlow);
        assert_eq!(Pace::of(ErrorClass::Fatal), Pace::VerySlow);
        let p = policy();
        let mut rng = fastrand::Rng::with_seed(3);
        for n in [1, 5, 30] {
            assert!(delay(&p, Pace::Slow, n, &mut rng) >= 15_000);
            assert!(delay(&p, Pace::VerySlow, n, &mut rng) >= 15 * 60_000);
        }
    }
}
