//! Logging: journald and plain formats, the camera-id convention, and the repeat limiter
//! (pure, on virtual time, and end to end through the global logger).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hikwatch::logging::{RateLimiter, RepeatLog, RepeatSummary, Style, Verdict, build_logger};
use log::{Level, LevelFilter, Log, Record};

#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedBuf {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn emit(logger: &dyn Log, level: Level, args: std::fmt::Arguments<'_>) {
    logger.log(
        &Record::builder()
            .level(level)
            .target("hikwatch::test")
            .args(args)
            .build(),
    );
    logger.flush();
}

#[test]
fn journal_style_has_priorities_and_no_timestamps() {
    let buf = SharedBuf::default();
    let logger = build_logger(LevelFilter::Info, Style::Journal, buf.clone());
    emit(
        &*logger,
        Level::Error,
        format_args!("gate-1: connect failed: error {}", 7),
    );
    emit(
        &*logger,
        Level::Warn,
        format_args!("gate-1: locked for {} s", 1742),
    );
    emit(&*logger, Level::Info, format_args!("gate-1: online"));
    emit(&*logger, Level::Debug, format_args!("filtered out at info"));
    assert_eq!(
        buf.text(),
        "<3>gate-1: connect failed: error 7\n<4>gate-1: locked for 1742 s\n<6>gate-1: online\n"
    );
    let buf = SharedBuf::default();
    let logger = build_logger(LevelFilter::Trace, Style::Journal, buf.clone());
    emit(&*logger, Level::Debug, format_args!("d"));
    emit(&*logger, Level::Trace, format_args!("t"));
    assert_eq!(buf.text(), "<7>d\n<7>t\n");
}

#[test]
fn plain_style_has_timestamps_and_levels() {
    let buf = SharedBuf::default();
    let logger = build_logger(LevelFilter::Info, Style::Plain, buf.clone());
    emit(
        &*logger,
        Level::Warn,
        format_args!("gate-1: connect failed"),
    );
    emit(&*logger, Level::Debug, format_args!("filtered out"));
    let text = buf.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text:?}");
    // 2024-05-01T12:00:00.123456789Z [WARN] gate-1: connect failed
    let (stamp, rest) = lines[0].split_once(' ').unwrap();
    assert_eq!(rest, "[WARN] gate-1: connect failed", "{text:?}");
    let b = stamp.as_bytes();
    assert!(
        stamp.len() >= 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && stamp.ends_with('Z'),
        "{stamp}"
    );
    assert!(!text.starts_with('<'));
}

#[test]
fn limiter_logs_first_then_one_line_per_window() {
    let t0 = Instant::now();
    let s = |secs: u64| t0 + Duration::from_secs(secs);
    let mut rl = RateLimiter::new(Duration::from_secs(60));
    assert_eq!(
        rl.check("gate-1", "connect", s(0), "connect failed"),
        Verdict::Log
    );
    for i in 1..=57 {
        assert_eq!(
            rl.check("gate-1", "connect", s(i), "connect failed"),
            Verdict::Suppress
        );
    }
    // Other keys and other cameras are independent.
    assert_eq!(
        rl.check("gate-1", "heartbeat", s(10), "heartbeat missed"),
        Verdict::Log
    );
    assert_eq!(
        rl.check("gate-2", "connect", s(10), "connect failed"),
        Verdict::Log
    );
    // The window (from the last logged line) has passed: log with the count.
    assert_eq!(
        rl.check("gate-1", "connect", s(60), "connect failed"),
        Verdict::LogRepeated { suppressed: 57 }
    );
    assert_eq!(
        rl.check("gate-1", "connect", s(61), "connect failed: error 7"),
        Verdict::Suppress
    );
    // Nothing due before the window ends.
    assert!(rl.flush(s(100)).is_empty());
    // The flood stopped: flush gives the summary once.
    assert_eq!(
        rl.flush(s(120)),
        vec![RepeatSummary {
            camera: "gate-1".into(),
            key: "connect",
            message: "connect failed: error 7".into(),
            suppressed: 1
        }]
    );
    assert_eq!(
        rl.flush(s(120))
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>(),
        Vec::<String>::new()
    );
    assert_eq!(
        RepeatSummary {
            camera: "gate-1".into(),
            key: "connect",
            message: "connect failed".into(),
            suppressed: 57
        }
        .to_string(),
        "gate-1: connect failed (repeated 57 times)"
    );
    // A quiet window after a logged line: plain Log again.
    assert_eq!(
        rl.check("gate-2", "connect", s(200), "connect failed"),
        Verdict::Log
    );
    // Idle pairs are forgotten after two windows.
    assert!(rl.len() >= 3);
    rl.flush(s(1000));
    assert_eq!(rl.len(), 0);
}

#[test]
fn limiter_clear_camera_and_capacity() {
    let t0 = Instant::now();
    let mut rl = RateLimiter::with_capacity(Duration::from_secs(60), 2);
    rl.check("a", "connect", t0, "x");
    rl.check("a", "connect", t0, "x2");
    rl.check("b", "connect", t0 + Duration::from_secs(1), "y");
    // Recovery: pending summary out, next failure logged at once.
    assert_eq!(
        rl.clear_camera("a"),
        vec![RepeatSummary {
            camera: "a".into(),
            key: "connect",
            message: "x2".into(),
            suppressed: 1
        }]
    );
    assert_eq!(
        rl.check("a", "connect", t0 + Duration::from_secs(2), "x"),
        Verdict::Log
    );
    // Capacity 2: a third pair evicts the oldest ("b" at t0+1 is older than "a" at t0+2).
    assert_eq!(
        rl.check("c", "connect", t0 + Duration::from_secs(3), "z"),
        Verdict::Log
    );
    assert_eq!(rl.len(), 2);
    assert_eq!(
        rl.check("b", "connect", t0 + Duration::from_secs(4), "y"),
        Verdict::Log
    );
}

/// The global logger for the end-to-end tests below (set once per process).
fn global() -> &'static SharedBuf {
    static BUF: OnceLock<SharedBuf> = OnceLock::new();
    BUF.get_or_init(|| {
        let buf = SharedBuf::default();
        log::set_boxed_logger(build_logger(
            LevelFilter::Debug,
            Style::Journal,
            buf.clone(),
        ))
        .unwrap();
        log::set_max_level(LevelFilter::Debug);
        buf
    })
}

fn lines_about(cam: &str) -> Vec<String> {
    global()
        .text()
        .lines()
        .filter(|l| l.contains(&format!("{cam}:")))
        .map(str::to_string)
        .collect()
}

#[test]
fn camera_macros_prefix_the_id() {
    global();
    let id = "macro-cam";
    hikwatch::cam_error!(id, "connect failed: error {}", 7);
    hikwatch::cam_warn!(id, "auth suspect, {} tries left", 2);
    hikwatch::cam_info!(id, "online");
    hikwatch::cam_debug!(id, "heartbeat ok");
    assert_eq!(
        lines_about(id),
        [
            "<3>macro-cam: connect failed: error 7",
            "<4>macro-cam: auth suspect, 2 tries left",
            "<6>macro-cam: online",
            "<7>macro-cam: heartbeat ok",
        ]
    );
}

#[test]
fn repeat_log_swallows_a_flood() {
    global();
    let repeat = RepeatLog::new(Duration::from_secs(60));
    for i in 0..100 {
        repeat.log(
            Level::Warn,
            "flood-cam",
            "connect",
            format_args!("connect failed: error {}", 7 + i % 2),
        );
    }
    repeat.log(Level::Info, "flood-cam", "online", format_args!("online"));
    repeat.clear_camera("flood-cam");
    repeat.log(
        Level::Warn,
        "flood-cam",
        "connect",
        format_args!("connect failed again"),
    );
    assert_eq!(
        lines_about("flood-cam"),
        [
            "<4>flood-cam: connect failed: error 7",
            "<6>flood-cam: online",
            "<4>flood-cam: connect failed: error 8 (repeated 99 times)",
            "<4>flood-cam: connect failed again",
        ]
    );
}
