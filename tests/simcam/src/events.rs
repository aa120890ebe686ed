//! The fleet's timestamped event log: a bounded ring buffer with a drop counter.
//!
//! Memory is bounded by [`crate::FleetConfig::event_capacity`]: when the ring is full the
//! oldest event is discarded and [`EventLog::dropped`] grows. Readers keep a sequence
//! number ([`Event::seq`]) as a cursor, so a reader that polls often enough loses nothing.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What happened. Fault events come from the control API, protocol events from clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// Camera powered off (listener closed, connections reset, sessions forgotten).
    PowerOff,
    /// Camera powered on; `detail` holds `boot=<id> delay_ms=<ms>`.
    PowerOn,
    /// The camera's listener is up (after the boot delay).
    Listening,
    /// Camera frozen: connections stay open, nothing answers.
    Frozen,
    /// Camera thawed.
    Thawed,
    /// Added per-response latency changed; `detail` is `ms=<n>`.
    SlowSet,
    /// Password changed (new salt).
    PasswordChanged,
    /// Login delay changed; `detail` is `ms=<n>`.
    LoginDelaySet,
    /// Session limit changed; `detail` is `limit=<n|none>`.
    SessionLimitSet,
    /// Accept-then-close mode changed; `detail` is `on` or `off`.
    AcceptCloseSet,
    /// Illegal-login locks cleared by the operator.
    Unlocked,
    /// A TCP connection was accepted; `detail` is `<peer> nodelay=<TCP_NODELAY read back>`.
    ConnOpened,
    /// A TCP connection ended; `detail` is the peer address.
    ConnClosed,
    /// A connection was accepted and closed at once (accept-then-close fault).
    AcceptClosed,
    /// `GET /ISAPI/Security/sessionLogin/capabilities` answered; `detail` is the sessionID.
    Capabilities,
    /// Successful login; `detail` is the sessionID.
    LoginOk,
    /// Wrong user name or password; `detail` is `retry=<attempts left>`.
    LoginBad,
    /// The wrong password that engaged the lock; `detail` is `unlock_s=<s>`.
    LockEngaged,
    /// Login attempt while locked (the lock was renewed); `detail` is `unlock_s=<s>`.
    LoginLocked,
    /// A lock ran out; noticed at the next login attempt from that IP (`detail`).
    LockExpired,
    /// Login with a sessionID the camera never issued (or forgot, e.g. after a reboot).
    LoginStale,
    /// Correct password refused because the session limit is reached.
    LoginRejectedLimit,
    /// Accepted heartbeat; `detail` is the sessionID.
    Heartbeat,
    /// Heartbeat without a live session (answered 401).
    HeartbeatRejected,
    /// Logout of a live session.
    Logout,
    /// A session expired after the idle timeout.
    SessionExpired,
    /// Any other request; `detail` is `METHOD /path -> status`.
    Request,
    /// A malformed request answered 4xx/5xx and the connection closed; `detail` says why.
    BadRequest,
    /// An RTSP request answered; `detail` is `METHOD url -> status`.
    RtspRequest,
    /// A stream started (RTSP PLAY); `detail` is `ch=<101|102> fps=<n> bitrate=<bit/s>`.
    StreamStart,
    /// A stream ended; `detail` is `ch=… bytes=<RTP bytes sent> pictures=… secs=…
    /// reason=<teardown|closed|power_off|cut>`.
    StreamStop,
    /// SETUP refused with RTSP 453 (the stream limit); `detail` is `ch=…`.
    StreamRefused,
    /// A stream fault or setting changed; `detail` is `halt`, `resume`, `stall ms=<n>`,
    /// `fps_cap=<n|none>`, `limit=<n|none>`, `cut` or `profile ch=… fps=… bitrate=…`.
    StreamFault,
}

impl EventKind {
    /// Stable snake_case name (used in the JSON output of the binary).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::PowerOff => "power_off",
            EventKind::PowerOn => "power_on",
            EventKind::Listening => "listening",
            EventKind::Frozen => "frozen",
            EventKind::Thawed => "thawed",
            EventKind::SlowSet => "slow_set",
            EventKind::PasswordChanged => "password_changed",
            EventKind::LoginDelaySet => "login_delay_set",
            EventKind::SessionLimitSet => "session_limit_set",
            EventKind::AcceptCloseSet => "accept_close_set",
            EventKind::Unlocked => "unlocked",
            EventKind::ConnOpened => "conn_opened",
            EventKind::ConnClosed => "conn_closed",
            EventKind::AcceptClosed => "accept_closed",
            EventKind::Capabilities => "capabilities",
            EventKind::LoginOk => "login_ok",
            EventKind::LoginBad => "login_bad",
            EventKind::LockEngaged => "lock_engaged",
            EventKind::LoginLocked => "login_locked",
            EventKind::LockExpired => "lock_expired",
            EventKind::LoginStale => "login_stale",
            EventKind::LoginRejectedLimit => "login_rejected_limit",
            EventKind::Heartbeat => "heartbeat",
            EventKind::HeartbeatRejected => "heartbeat_rejected",
            EventKind::Logout => "logout",
            EventKind::SessionExpired => "session_expired",
            EventKind::Request => "request",
            EventKind::BadRequest => "bad_request",
            EventKind::RtspRequest => "rtsp_request",
            EventKind::StreamStart => "stream_start",
            EventKind::StreamStop => "stream_stop",
            EventKind::StreamRefused => "stream_refused",
            EventKind::StreamFault => "stream_fault",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One logged event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Position in the fleet's log, starting at 0, gap-free (dropped events keep theirs).
    pub seq: u64,
    /// Monotonic time since the fleet started.
    pub since_start: Duration,
    /// Wall clock in microseconds since the Unix epoch (to correlate with other processes).
    pub unix_us: u64,
    /// Camera index.
    pub camera: usize,
    /// What happened.
    pub kind: EventKind,
    /// Free-form detail (see [`EventKind`]).
    pub detail: String,
}

impl Event {
    /// The event as one JSON object (no trailing newline).
    pub fn to_json(&self) -> String {
        format!(
            "{{\"seq\":{},\"t_us\":{},\"unix_us\":{},\"cam\":{},\"event\":\"{}\",\"detail\":\"{}\"}}",
            self.seq,
            self.since_start.as_micros(),
            self.unix_us,
            self.camera,
            self.kind.as_str(),
            json_escape(&self.detail)
        )
    }
}

/// Escapes `s` for use inside a JSON string literal.
pub fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Ring state behind the log's mutex.
#[derive(Debug)]
struct Ring {
    events: VecDeque<Event>,
    next_seq: u64,
    dropped: u64,
}

impl Ring {
    /// Index in `events` of the first event with `seq >= from` (sequence numbers are
    /// contiguous, so no scan is needed).
    fn index_of(&self, from: u64) -> usize {
        let first = self.next_seq - self.events.len() as u64;
        (from.saturating_sub(first) as usize).min(self.events.len())
    }
}

/// The shared, bounded event log.
#[derive(Debug)]
pub(crate) struct EventLog {
    start: Instant,
    start_unix_us: u64,
    capacity: usize,
    ring: Mutex<Ring>,
    /// Signalled on every push, for [`EventLog::wait_for`].
    pushed: Condvar,
}

fn unix_us_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

impl EventLog {
    pub(crate) fn new(capacity: usize) -> Self {
        let start = Instant::now();
        EventLog {
            start,
            start_unix_us: unix_us_now(),
            capacity: capacity.max(1),
            ring: Mutex::new(Ring {
                events: VecDeque::new(),
                next_seq: 0,
                dropped: 0,
            }),
            pushed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn push(&self, camera: usize, kind: EventKind, detail: String) {
        let since_start = self.start.elapsed();
        let unix_us = self.start_unix_us + since_start.as_micros() as u64;
        let mut ring = self.lock();
        if ring.events.len() >= self.capacity {
            ring.events.pop_front();
            ring.dropped += 1;
        }
        let seq = ring.next_seq;
        ring.next_seq += 1;
        ring.events.push_back(Event {
            seq,
            since_start,
            unix_us,
            camera,
            kind,
            detail,
        });
        drop(ring);
        self.pushed.notify_all();
    }

    pub(crate) fn next_seq(&self) -> u64 {
        self.lock().next_seq
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Events with `seq >= from` still in the ring, oldest first.
    pub(crate) fn since(&self, from: u64) -> Vec<Event> {
        let ring = self.lock();
        ring.events.range(ring.index_of(from)..).cloned().collect()
    }

    /// Blocks until an event with `seq >= from` matches `pred`, or `timeout` passes.
    pub(crate) fn wait_for(
        &self,
        from: u64,
        timeout: Duration,
        mut pred: impl FnMut(&Event) -> bool,
    ) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        let mut cursor = from;
        let mut ring = self.lock();
        loop {
            let start = ring.index_of(cursor);
            for e in ring.events.range(start..) {
                if pred(e) {
                    return Some(e.clone());
                }
            }
            cursor = ring.next_seq;
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            ring = self
                .pushed
                .wait_timeout(ring, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_drops_oldest_and_counts() {
        let log = EventLog::new(3);
        for i in 0..5 {
            log.push(i, EventKind::Request, String::new());
        }
        let evs = log.since(0);
        assert_eq!(evs.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 3, 4]);
        assert_eq!(log.dropped(), 2);
        assert_eq!(log.next_seq(), 5);
        assert_eq!(log.since(4).len(), 1);
        assert_eq!(log.since(9).len(), 0);
        assert_eq!(log.since(1).len(), 3);
        let e = log
            .wait_for(3, Duration::from_millis(1), |e| e.camera == 3)
            .unwrap();
        assert_eq!(e.seq, 3);
        assert!(
            log.wait_for(0, Duration::from_millis(1), |e| e.camera == 1)
                .is_none()
        );
    }

    #[test]
    fn json_line() {
        let log = EventLog::new(3);
        log.push(2, EventKind::LoginBad, "a\"b".into());
        let j = log.since(0)[0].to_json();
        assert!(j.contains("\"event\":\"login_bad\""), "{j}");
        assert!(j.contains("\"detail\":\"a\\\"b\""), "{j}");
        assert!(j.contains("\"cam\":2"), "{j}");
    }
}
