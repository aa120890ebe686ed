//! A fault hook for the end-to-end watchdog test, compiled only into debug builds.
//!
//! `HIKWATCH_TEST_STALL=loop:MS` makes the supervisor loop stop making progress `MS`
//! milliseconds after `READY=1` (it awaits forever; the executor, and so the watchdog task,
//! keep running). `HIKWATCH_TEST_STALL=block:MS` blocks the executor thread itself (no
//! task runs at all). Either way the `WATCHDOG=1` pings must stop.
//!
//! `HIKWATCH_TEST_LEFT_SWEEP_MS=MS` shortens the sweep that ends a held camera's left
//! device session (every minute otherwise), so a test can watch it happen.
//!
//! Why `cfg(debug_assertions)` and an environment variable rather than a cargo feature
//! switched on through a dev-dependency on ourselves: `cargo test` builds the binary that
//! the end-to-end tests run with the dev profile, so the hook is there without any
//! feature plumbing, while the shipped binary (`cargo build --release`, which has no debug
//! assertions) does not contain the code at all. A self dev-dependency would also unify
//! the feature into every `cargo build --all-targets` of the workspace, release
//! included. The test checks that the hook announced itself, so a `--release` test run
//! fails clearly instead of passing for the wrong reason.

use std::time::Duration;

/// How the loop stalls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StallMode {
    /// The supervisor loop awaits forever; other tasks still run.
    Loop,
    /// The executor thread sleeps forever; nothing runs.
    Block,
}

/// When and how to stall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stall {
    /// How.
    pub mode: StallMode,
    /// After this long since `READY=1`.
    pub after: Duration,
}

/// The environment variable.
pub const ENV: &str = "HIKWATCH_TEST_STALL";

impl Stall {
    /// Parses `loop:MS` or `block:MS`.
    pub fn parse(s: &str) -> Option<Stall> {
        let (mode, ms) = s.split_once(':')?;
        let mode = match mode {
            "loop" => StallMode::Loop,
            "block" => StallMode::Block,
            _ => return None,
        };
        Some(Stall {
            mode,
            after: Duration::from_millis(ms.parse().ok()?),
        })
    }

    /// From [`ENV`]; a malformed value is reported and ignored.
    pub fn from_env() -> Option<Stall> {
        let v = std::env::var(ENV).ok()?;
        let s = Stall::parse(&v);
        if s.is_none() {
            eprintln!("hikwatch: ignoring {ENV}={v:?} (expected loop:MS or block:MS)");
        }
        s
    }

    /// Stalls for good (called from the supervisor loop).
    pub async fn stall(self) {
        log::warn!(
            "test hook {ENV}: stalling the supervisor loop ({:?})",
            self.mode
        );
        match self.mode {
            StallMode::Loop => futures_lite::future::pending::<()>().await,
            StallMode::Block => loop {
                std::thread::sleep(Duration::from_secs(3600));
            },
        }
    }
}

/// The environment variable of the left-session sweep's period.
pub const LEFT_SWEEP_ENV: &str = "HIKWATCH_TEST_LEFT_SWEEP_MS";

/// The sweep period from [`LEFT_SWEEP_ENV`], when set; a malformed value is reported and
/// ignored.
pub fn left_sweep_from_env() -> Option<Duration> {
    let v = std::env::var(LEFT_SWEEP_ENV).ok()?;
    let ms = v.parse::<u64>().ok().filter(|&ms| ms > 0);
    if ms.is_none() {
        eprintln!("hikwatch: ignoring {LEFT_SWEEP_ENV}={v:?} (expected milliseconds > 0)");
    }
    ms.map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(
            Stall::parse("loop:1500"),
            Some(Stall {
                mode: StallMode::Loop,
                after: Duration::from_millis(1500)
            })
        );
        assert_eq!(
            Stall::parse("block:0").map(|s| s.mode),
            Some(StallMode::Block)
        );
        assert_eq!(Stall::parse("loop"), None);
        assert_eq!(Stall::parse("spin:10"), None);
        assert_eq!(Stall::parse("loop:x"), None);
    }
}
