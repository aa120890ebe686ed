//! Logging: `log` macros everywhere, one of two sinks, a camera-id convention and a
//! per-camera repeat limiter.
//!
//! - **Under journald** (`$JOURNAL_STREAM` matches our stderr, as systemd(1) recommends
//!   checking): `<3>message` lines, the syslog priority as a prefix (`<3>` error,
//!   `<4>` warn, `<6>` info, `<7>` debug and trace) and no timestamp (the journal adds
//!   its own).
//! - **Otherwise**: simplelog on stderr with an RFC 3339 UTC timestamp and the level.
//! - **Camera lines** start with the camera id: `gate-1: connect failed: error 7`. Use
//!   [`cam_error!`](crate::cam_error), [`cam_warn!`](crate::cam_warn),
//!   [`cam_info!`](crate::cam_info), [`cam_debug!`](crate::cam_debug). `grep '^gate-1:'`
//!   and `journalctl -u hikwatch --grep '^gate-1:'` then find everything about a camera.
//! - **Repeats**: [`RateLimiter`] (pure, virtual time) and [`RepeatLog`] (logs through
//!   it) print an error of one camera once, then at most one line per window with the
//!   number of repeats, so a flapping camera cannot fill the flash.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use log::{Level, LevelFilter, Log, Metadata, Record};

#[doc(hidden)]
pub use log as __log;

/// Logs an error about a camera: `cam_error!(id, "connect failed: {}", e)` prints
/// `gate-1: connect failed: …`.
#[macro_export]
macro_rules! cam_error {
    ($cam:expr, $($arg:tt)+) => {
        $crate::logging::__log::error!("{}: {}", $cam, format_args!($($arg)+))
    };
}

/// Logs a warning about a camera (see [`cam_error!`](crate::cam_error)).
#[macro_export]
macro_rules! cam_warn {
    ($cam:expr, $($arg:tt)+) => {
        $crate::logging::__log::warn!("{}: {}", $cam, format_args!($($arg)+))
    };
}

/// Logs an info line about a camera (see [`cam_error!`](crate::cam_error)).
#[macro_export]
macro_rules! cam_info {
    ($cam:expr, $($arg:tt)+) => {
        $crate::logging::__log::info!("{}: {}", $cam, format_args!($($arg)+))
    };
}

/// Logs a debug line about a camera (see [`cam_error!`](crate::cam_error)).
#[macro_export]
macro_rules! cam_debug {
    ($cam:expr, $($arg:tt)+) => {
        $crate::logging::__log::debug!("{}: {}", $cam, format_args!($($arg)+))
    };
}

/// Where log lines go and how they look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// `<N>message`, no timestamp: stderr is connected to journald.
    Journal,
    /// `2024-05-01T12:00:00.123456789Z [WARN] message` (RFC 3339, UTC, nanoseconds with
    /// trailing zeros dropped).
    Plain,
}

impl Style {
    /// [`Style::Journal`] when `$JOURNAL_STREAM` names our stderr.
    pub fn detect() -> Style {
        let var = std::env::var("JOURNAL_STREAM").ok();
        if journal_stream_matches(var.as_deref(), stderr_dev_ino()) {
            Style::Journal
        } else {
            Style::Plain
        }
    }
}

/// Device and inode of our stderr.
fn stderr_dev_ino() -> Option<(u64, u64)> {
    let fd = io::stderr().as_fd().try_clone_to_owned().ok()?;
    let meta = std::fs::File::from(fd).metadata().ok()?;
    Some((meta.dev(), meta.ino()))
}

/// Whether `$JOURNAL_STREAM` (`"DEV:INO"`) names the file our stderr is (`stderr`).
/// A stale variable inherited by a process whose stderr was redirected does not match.
pub fn journal_stream_matches(journal_stream: Option<&str>, stderr: Option<(u64, u64)>) -> bool {
    let (Some(var), Some((dev, ino))) = (journal_stream, stderr) else {
        return false;
    };
    let Some((d, i)) = var.split_once(':') else {
        return false;
    };
    d.parse::<u64>() == Ok(dev) && i.parse::<u64>() == Ok(ino)
}

/// The syslog priority journald expects for a level.
pub fn syslog_priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// Formats one record for journald: each line of the message gets the `<N>` prefix (the
/// journal splits on newlines).
pub fn format_journal(level: Level, args: &fmt::Arguments<'_>) -> String {
    let text = args.to_string();
    let prio = syslog_priority(level);
    let mut out = String::with_capacity(text.len() + 4);
    for line in text.split('\n') {
        out.push_str(&format!("<{prio}>"));
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The journald sink: one `write_all` per record so lines never interleave.
#[derive(Debug)]
pub struct JournalLogger<W: Write + Send> {
    level: LevelFilter,
    out: Mutex<W>,
}

impl<W: Write + Send> JournalLogger<W> {
    /// A sink writing to `out` at up to `level`.
    pub fn new(level: LevelFilter, out: W) -> Self {
        JournalLogger {
            level,
            out: Mutex::new(out),
        }
    }
}

impl<W: Write + Send> Log for JournalLogger<W> {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format_journal(record.level(), record.args());
        if let Ok(mut out) = self.out.lock() {
            // Nowhere to report a failed log write.
            let _ = out.write_all(line.as_bytes());
        }
    }

    fn flush(&self) {
        if let Ok(mut out) = self.out.lock() {
            let _ = out.flush();
        }
    }
}

/// Builds the sink for `style` writing to `out` (stderr in the daemon, a buffer in tests).
pub fn build_logger<W: Write + Send + 'static>(
    level: LevelFilter,
    style: Style,
    out: W,
) -> Box<dyn Log> {
    match style {
        Style::Journal => Box::new(JournalLogger::new(level, out)),
        Style::Plain => {
            let config = simplelog::ConfigBuilder::new()
                .set_time_format_rfc3339()
                .set_time_level(LevelFilter::Error)
                .set_target_level(LevelFilter::Off)
                .set_thread_level(LevelFilter::Off)
                .set_location_level(LevelFilter::Off)
                .set_level_padding(simplelog::LevelPadding::Off)
                .build();
            simplelog::WriteLogger::new(level, config, out)
        }
    }
}

/// Installs the global logger on stderr with the detected [`Style`].
///
/// # Errors
/// When a logger was already installed.
pub fn init(level: LevelFilter) -> Result<Style, log::SetLoggerError> {
    let style = Style::detect();
    log::set_boxed_logger(build_logger(level, style, io::stderr()))?;
    log::set_max_level(level);
    Ok(style)
}

/// Changes the level at run time (config reload).
pub fn set_level(level: LevelFilter) {
    log::set_max_level(level);
}

/// What the limiter says about one occurrence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Log it as is.
    Log,
    /// Log it with "(repeated `suppressed` times)": that many were swallowed since the
    /// last line for this camera and key.
    LogRepeated {
        /// Occurrences not logged since the last line.
        suppressed: u64,
    },
    /// Swallow it (counted).
    Suppress,
}

/// A summary due for a camera and key whose occurrences stopped while some were
/// suppressed ([`RateLimiter::flush`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepeatSummary {
    /// The camera id.
    pub camera: String,
    /// The key.
    pub key: &'static str,
    /// The last suppressed message.
    pub message: String,
    /// How many were suppressed.
    pub suppressed: u64,
}

impl fmt::Display for RepeatSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (repeated {} times)",
            self.camera, self.message, self.suppressed
        )
    }
}

#[derive(Debug)]
struct LimiterEntry {
    /// When the last line for this camera and key was logged.
    logged_at: Instant,
    /// Occurrences swallowed since.
    suppressed: u64,
    /// The last swallowed message, for the summary.
    last: String,
}

/// Per camera-and-key repeat limiter over caller-supplied time (pure: no clock, no I/O).
///
/// The first occurrence is logged; further ones within `window` of the last logged line
/// are counted and swallowed; the first one after the window is logged with the count.
/// [`RateLimiter::flush`] produces the summary for a flood that simply stopped. Memory is
/// bounded: at most `capacity` camera/key pairs, the oldest forgotten first, and idle
/// pairs are dropped by `flush`.
#[derive(Debug)]
pub struct RateLimiter {
    window: Duration,
    capacity: usize,
    entries: HashMap<(String, &'static str), LimiterEntry>,
}

impl RateLimiter {
    /// Default bound on tracked camera/key pairs.
    pub const DEFAULT_CAPACITY: usize = 4096;

    /// A limiter allowing one line per camera and key per `window`.
    pub fn new(window: Duration) -> RateLimiter {
        RateLimiter::with_capacity(window, RateLimiter::DEFAULT_CAPACITY)
    }

    /// As [`RateLimiter::new`], tracking at most `capacity` pairs.
    pub fn with_capacity(window: Duration, capacity: usize) -> RateLimiter {
        RateLimiter {
            window,
            capacity: capacity.max(1),
            entries: HashMap::new(),
        }
    }

    /// Decides about one occurrence of `key` for `camera` at `now`; `message` is kept for
    /// the summary when the occurrence is swallowed.
    pub fn check(
        &mut self,
        camera: &str,
        key: &'static str,
        now: Instant,
        message: &str,
    ) -> Verdict {
        if let Some(e) = self.entries.get_mut(&(camera.to_string(), key)) {
            if now.saturating_duration_since(e.logged_at) < self.window {
                e.suppressed += 1;
                message.clone_into(&mut e.last);
                return Verdict::Suppress;
            }
            let n = std::mem::take(&mut e.suppressed);
            e.logged_at = now;
            e.last.clear();
            return if n == 0 {
                Verdict::Log
            } else {
                Verdict::LogRepeated { suppressed: n }
            };
        }
        if self.entries.len() >= self.capacity {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.logged_at)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.entries.remove(&k);
            }
        }
        self.entries.insert(
            (camera.to_string(), key),
            LimiterEntry {
                logged_at: now,
                suppressed: 0,
                last: String::new(),
            },
        );
        Verdict::Log
    }

    /// Summaries for pairs whose window ended with swallowed occurrences (each is then
    /// reset), and forgets pairs idle for two windows. Call it every few seconds.
    pub fn flush(&mut self, now: Instant) -> Vec<RepeatSummary> {
        let window = self.window;
        let mut out = Vec::new();
        self.entries.retain(|(cam, key), e| {
            let age = now.saturating_duration_since(e.logged_at);
            if e.suppressed > 0 && age >= window {
                out.push(RepeatSummary {
                    camera: cam.clone(),
                    key,
                    message: std::mem::take(&mut e.last),
                    suppressed: std::mem::take(&mut e.suppressed),
                });
                e.logged_at = now;
                return true;
            }
            e.suppressed > 0 || age < window.saturating_mul(2)
        });
        crate::stable_sort::sort_by(&mut out, |a, b| (&a.camera, a.key).cmp(&(&b.camera, b.key)));
        out
    }

    /// Forgets everything about `camera` (it recovered: its next failure should be
    /// logged at once) and returns the summaries still pending for it.
    pub fn clear_camera(&mut self, camera: &str) -> Vec<RepeatSummary> {
        let mut out = Vec::new();
        self.entries.retain(|(cam, key), e| {
            if cam != camera {
                return true;
            }
            if e.suppressed > 0 {
                out.push(RepeatSummary {
                    camera: cam.clone(),
                    key,
                    message: std::mem::take(&mut e.last),
                    suppressed: e.suppressed,
                });
            }
            false
        });
        crate::stable_sort::sort_by(&mut out, |a, b| a.key.cmp(b.key));
        out
    }

    /// Tracked camera/key pairs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Logs camera lines through a [`RateLimiter`] with the real clock.
///
/// ```
/// # use hikwatch::logging::RepeatLog;
/// # use std::time::Duration;
/// let repeat = RepeatLog::new(Duration::from_secs(60));
/// repeat.log(log::Level::Warn, "gate-1", "connect", format_args!("connect failed: error {}", 7));
/// ```
#[derive(Debug)]
pub struct RepeatLog {
    limiter: Mutex<RateLimiter>,
}

impl RepeatLog {
    /// One line per camera and key per `window` (config `log.repeat_window`).
    pub fn new(window: Duration) -> RepeatLog {
        RepeatLog {
            limiter: Mutex::new(RateLimiter::new(window)),
        }
    }

    /// Logs `camera: args` unless the same camera and key was logged within the window.
    pub fn log(&self, level: Level, camera: &str, key: &'static str, args: fmt::Arguments<'_>) {
        if !log::log_enabled!(level) {
            return;
        }
        let msg = args.to_string();
        let verdict = match self.limiter.lock() {
            Ok(mut l) => l.check(camera, key, Instant::now(), &msg),
            Err(_) => Verdict::Log,
        };
        match verdict {
            Verdict::Log => log::log!(level, "{camera}: {msg}"),
            Verdict::LogRepeated { suppressed } => {
                log::log!(level, "{camera}: {msg} (repeated {suppressed} times)")
            }
            Verdict::Suppress => {}
        }
    }

    /// Emits the summaries that are due (at warn level). Call it every few seconds.
    pub fn flush(&self) {
        let due = match self.limiter.lock() {
            Ok(mut l) => l.flush(Instant::now()),
            Err(_) => Vec::new(),
        };
        for s in due {
            log::warn!("{s}");
        }
    }

    /// The camera recovered: emit its pending summaries and log its next failure at once.
    pub fn clear_camera(&self, camera: &str) {
        let due = match self.limiter.lock() {
            Ok(mut l) => l.clear_camera(camera),
            Err(_) => Vec::new(),
        };
        for s in due {
            log::warn!("{s}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_detection_needs_a_matching_stream() {
        assert!(journal_stream_matches(Some("8:12345"), Some((8, 12345))));
        assert!(!journal_stream_matches(Some("8:12345"), Some((8, 99))));
        assert!(!journal_stream_matches(Some("8:12345"), None));
        assert!(!journal_stream_matches(None, Some((8, 12345))));
        assert!(!journal_stream_matches(Some("garbage"), Some((8, 12345))));
    }

    #[test]
    fn priorities() {
        assert_eq!(syslog_priority(Level::Error), 3);
        assert_eq!(syslog_priority(Level::Warn), 4);
        assert_eq!(syslog_priority(Level::Info), 6);
        assert_eq!(syslog_priority(Level::Debug), 7);
        assert_eq!(syslog_priority(Level::Trace), 7);
        assert_eq!(
            format_journal(Level::Error, &format_args!("a\nb")),
            "<3>a\n<3>b\n"
        );
    }
}
