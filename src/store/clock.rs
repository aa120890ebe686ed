//! Time across reboots: how much of a stored wait has passed, judged from the wall clock.
//!
//! The daemon works in monotonic time, which restarts at boot. The file therefore stores
//! waits as *remaining durations* at write time plus the wall clock of the write, and on
//! load [`elapsed_since_write`] decides how much to take off.
//!
//! Gateways without an RTC boot in 1970 and jump once NTP syncs; a bad RTC can read far in
//! the future. So a wall reading only counts when it lies in [`WALL_FLOOR_MS`] ..
//! [`WALL_CEILING_MS`]. When either reading (the file's or now) is outside, or now is
//! before the write, we assume **no time has passed**: every wait is kept in full. That is
//! always the safe side: a device lock restarts at 30 minutes on any login attempt during
//! the lock, so waiting a little too long costs minutes, retrying too early costs half an
//! hour and maybe the site's IP.
//!
//! # Limitations
//!
//! A clock that looks sane but is wrong at write time (an RTC months behind, corrected by
//! NTP before the next start) makes the elapsed time look longer than it was and can
//! shorten waits. Nothing in the file can detect that; the device then answers with a
//! lock error again and the supervisor re-enters the lock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Earliest wall clock taken as real: 2024-01-01T00:00:00Z, before this code existed.
/// Boards without an RTC read 1970 until NTP syncs.
pub const WALL_FLOOR_MS: u64 = 1_704_067_200_000;
/// Latest wall clock taken as real: 2100-01-01T00:00:00Z. Later readings come from a
/// broken RTC, and trusting them would cancel every wait.
pub const WALL_CEILING_MS: u64 = 4_102_444_800_000;

/// How [`elapsed_since_write`] judged the two wall readings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elapsed {
    /// Both readings are sane and now is after the write: this much time passed.
    Measured(Duration),
    /// The wall clock now is before [`WALL_FLOOR_MS`] (a 1970 boot before NTP).
    NowUnset,
    /// The wall clock now is after [`WALL_CEILING_MS`].
    NowAbsurd,
    /// The file was written while the clock was before [`WALL_FLOOR_MS`].
    WrittenUnset,
    /// The file claims a write time after [`WALL_CEILING_MS`].
    WrittenAbsurd,
    /// Now is before the write time: the clock went backwards.
    ClockBehind {
        /// How far now is behind the write.
        by: Duration,
    },
}

impl Elapsed {
    /// The time to take off every stored wait: the measured time, or zero.
    pub fn duration(&self) -> Duration {
        match self {
            Elapsed::Measured(d) => *d,
            Elapsed::NowUnset
            | Elapsed::NowAbsurd
            | Elapsed::WrittenUnset
            | Elapsed::WrittenAbsurd
            | Elapsed::ClockBehind { .. } => Duration::ZERO,
        }
    }

    /// One line for logs and `state show`.
    pub fn describe(&self) -> String {
        match self {
            Elapsed::Measured(d) => format!("{} since the write", human(*d)),
            Elapsed::NowUnset => {
                "wall clock not set yet (before 2024): assuming no time passed since the write"
                    .into()
            }
            Elapsed::NowAbsurd => {
                "wall clock after 2100: assuming no time passed since the write".into()
            }
            Elapsed::WrittenUnset => {
                "file written before the clock was set: assuming no time passed since the write"
                    .into()
            }
            Elapsed::WrittenAbsurd => {
                "file write time after 2100: assuming no time passed since the write".into()
            }
            Elapsed::ClockBehind { by } => format!(
                "wall clock {} behind the write time: assuming no time passed",
                human(*by)
            ),
        }
    }
}

/// `t` as Unix milliseconds; 0 for times before 1970 (which a misset clock can give).
pub fn unix_ms(t: SystemTime) -> u64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
        Err(_) => 0,
    }
}

fn sane(ms: u64) -> bool {
    (WALL_FLOOR_MS..WALL_CEILING_MS).contains(&ms)
}

/// How much time to treat as passed between a write at `written_at_ms` (Unix ms, as
/// stored) and the wall clock `now`. Pure; see the module docs for the rule.
pub fn elapsed_since_write(written_at_ms: u64, now: SystemTime) -> Elapsed {
    let now_ms = unix_ms(now);
    if now_ms < WALL_FLOOR_MS {
        Elapsed::NowUnset
    } else if now_ms >= WALL_CEILING_MS {
        Elapsed::NowAbsurd
    } else if written_at_ms < WALL_FLOOR_MS {
        Elapsed::WrittenUnset
    } else if !sane(written_at_ms) {
        Elapsed::WrittenAbsurd
    } else if now_ms < written_at_ms {
        Elapsed::ClockBehind {
            by: Duration::from_millis(written_at_ms - now_ms),
        }
    } else {
        Elapsed::Measured(Duration::from_millis(now_ms - written_at_ms))
    }
}

/// A stored remaining wait, after `elapsed`: what is left now, `None` once it ran out
/// (or when there was none).
pub fn remaining(stored_ms: Option<u64>, elapsed: Duration) -> Option<Duration> {
    let left = Duration::from_millis(stored_ms?).checked_sub(elapsed)?;
    if left.is_zero() { None } else { Some(left) }
}

/// A compact human duration with the two leading units: "12s", "4m12s", "27m", "1h05m",
/// "3d4h"; "0s" for zero.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    let (days, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if days > 0 {
        if h > 0 {
            format!("{days}d{h}h")
        } else {
            format!("{days}d")
        }
    } else if s >= 3600 {
        if m > 0 {
            format!("{}h{m:02}m", s / 3600)
        } else {
            format!("{}h", s / 3600)
        }
    } else if s >= 60 {
        if sec > 0 {
            format!("{m}m{sec:02}s")
        } else {
            format!("{m}m")
        }
    } else if s == 0 && d.subsec_millis() > 0 {
        format!("{}ms", d.subsec_millis())
    } else {
        format!("{s}s")
    }
}

/// Unix milliseconds as an ISO-8601 UTC time, "2025-01-01T00:00:00Z".
pub fn iso8601(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (y, mo, d) = civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (the well-known
/// era-based algorithm; exact for every u64 day count that fits the year in u64).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wall(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    const WRITTEN: u64 = 1_735_689_600_000; // 2025-01-01T00:00:00Z
    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn sane_clocks_subtract_the_elapsed_time() {
        let e = elapsed_since_write(WRITTEN, wall(WRITTEN + 10 * 60_000));
        assert_eq!(e, Elapsed::Measured(10 * MIN));
        // A 30-minute lock written 10 minutes ago has 20 minutes left.
        assert_eq!(remaining(Some(30 * 60_000), e.duration()), Some(20 * MIN));
        // A 5-minute backoff written 10 minutes ago is over.
        assert_eq!(remaining(Some(5 * 60_000), e.duration()), None);
    }

    #[test]
    fn boot_in_1970_keeps_the_full_wait() {
        // No RTC: the board boots at the epoch plus uptime.
        let e = elapsed_since_write(WRITTEN, wall(42_000));
        assert_eq!(e, Elapsed::NowUnset);
        assert_eq!(remaining(Some(30 * 60_000), e.duration()), Some(30 * MIN));
        // A misset clock before the epoch is still "unset", not a panic.
        let before_epoch = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(
            elapsed_since_write(WRITTEN, before_epoch),
            Elapsed::NowUnset
        );
    }

    #[test]
    fn file_written_before_ntp_keeps_the_full_wait() {
        // Written 20 s after a 1970 boot; now NTP has synced to 2025.
        let e = elapsed_since_write(20_000, wall(WRITTEN));
        assert_eq!(e, Elapsed::WrittenUnset);
        assert_eq!(remaining(Some(30 * 60_000), e.duration()), Some(30 * MIN));
    }

    #[test]
    fn clock_behind_the_file_keeps_the_full_wait() {
        let e = elapsed_since_write(WRITTEN, wall(WRITTEN - 3_600_000));
        assert_eq!(
            e,
            Elapsed::ClockBehind {
                by: Duration::from_secs(3600)
            }
        );
        assert_eq!(remaining(Some(30 * 60_000), e.duration()), Some(30 * MIN));
    }

    #[test]
    fn absurd_times_keep_the_full_wait() {
        // The file claims year 2200 (written under a broken RTC).
        let y2200 = 7_258_118_400_000;
        let e = elapsed_since_write(y2200, wall(WRITTEN));
        assert_eq!(e, Elapsed::WrittenAbsurd);
        assert_eq!(remaining(Some(30 * 60_000), e.duration()), Some(30 * MIN));
        assert_eq!(
            elapsed_since_write(u64::MAX, wall(WRITTEN)),
            Elapsed::WrittenAbsurd
        );
        // Now reads 2200: a lock must not be cancelled by a broken clock.
        let e = elapsed_since_write(WRITTEN, wall(y2200));
        assert_eq!(e, Elapsed::NowAbsurd);
        assert_eq!(remaining(Some(30 * 60_000), e.duration()), Some(30 * MIN));
    }

    #[test]
    fn a_lock_is_never_shortened_beyond_the_real_elapsed_time() {
        // Whatever the two readings, the time taken off is either zero or exactly the
        // difference of two sane readings with now after the write.
        let samples = [
            0,
            1,
            42_000,
            WALL_FLOOR_MS - 1,
            WALL_FLOOR_MS,
            WRITTEN,
            WRITTEN + 1,
            WALL_CEILING_MS - 1,
            WALL_CEILING_MS,
            u64::MAX / 2,
            u64::MAX,
        ];
        for &w in &samples {
            for &n in &samples {
                let d = elapsed_since_write(w, wall(n.min(u64::MAX / 2))).duration();
                let n = n.min(u64::MAX / 2);
                if !d.is_zero() {
                    assert!(sane(w) && sane(n) && n >= w, "w={w} n={n}");
                    assert_eq!(d, Duration::from_millis(n - w));
                }
            }
        }
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::ZERO), "0s");
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_secs(12)), "12s");
        assert_eq!(human(Duration::from_secs(252)), "4m12s");
        assert_eq!(human(Duration::from_secs(27 * 60)), "27m");
        assert_eq!(human(Duration::from_secs(3900)), "1h05m");
        assert_eq!(human(Duration::from_secs(7200)), "2h");
        assert_eq!(
            human(Duration::from_secs(3 * 86_400 + 4 * 3600 + 5)),
            "3d4h"
        );
        assert_eq!(human(Duration::from_secs(86_400)), "1d");
    }

    #[test]
    fn iso_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(WRITTEN), "2025-01-01T00:00:00Z");
        assert_eq!(iso8601(WALL_FLOOR_MS), "2024-01-01T00:00:00Z");
        assert_eq!(iso8601(WALL_CEILING_MS), "2100-01-01T00:00:00Z");
        assert_eq!(iso8601(1_709_210_096_000), "2024-02-29T12:34:56Z");
    }
}
