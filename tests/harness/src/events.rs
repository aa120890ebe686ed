//! Reading simcam's event log: what each camera saw, counted and timed.
//!
//! simcam numbers its events gap-free (`seq`) and stamps them with the wall clock
//! (`unix_us`), so they can be compared with the daemon's log lines (see
//! [`crate::LogLine::at`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use simcam::{Event, EventKind};

/// The wall-clock time of an event.
pub fn at(e: &Event) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(e.unix_us)
}

/// Events of camera `cam` and kind `kind`.
pub fn of(events: &[Event], cam: usize, kind: EventKind) -> Vec<&Event> {
    events
        .iter()
        .filter(|e| e.camera == cam && e.kind == kind)
        .collect()
}

/// How many events of camera `cam` and kind `kind`.
pub fn count(events: &[Event], cam: usize, kind: EventKind) -> usize {
    of(events, cam, kind).len()
}

/// How many events of kind `kind`, all cameras.
pub fn count_all(events: &[Event], kind: EventKind) -> usize {
    events.iter().filter(|e| e.kind == kind).count()
}

/// Login attempts camera `cam` saw: every `POST sessionLogin`, whatever its answer (ok,
/// wrong password, locked, stale, refused by the session limit).
pub fn login_attempts(events: &[Event], cam: usize) -> usize {
    events
        .iter()
        .filter(|e| {
            e.camera == cam
                && matches!(
                    e.kind,
                    EventKind::LoginOk
                        | EventKind::LoginBad
                        | EventKind::LockEngaged
                        | EventKind::LoginLocked
                        | EventKind::LoginStale
                        | EventKind::LoginRejectedLimit
                )
        })
        .count()
}

/// The sessions camera `cam` handed out (`login_ok` details), in order.
pub fn sessions(events: &[Event], cam: usize) -> Vec<String> {
    of(events, cam, EventKind::LoginOk)
        .into_iter()
        .map(|e| e.detail.clone())
        .collect()
}

/// The sessions that heartbeats of camera `cam` named (`heartbeat` details), deduplicated
/// in order of first use.
pub fn heartbeat_sessions(events: &[Event], cam: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in of(events, cam, EventKind::Heartbeat) {
        if !out.contains(&e.detail) {
            out.push(e.detail.clone());
        }
    }
    out
}

/// The most login exchanges (capabilities answered, `sessionLogin` not yet received) that
/// were open at the same time across all cameras, replayed from the log: each
/// `capabilities` opens one (keyed by its sessionID) and the next login answer of the
/// same camera closes the oldest open one of that camera. Power-offs close all of a
/// camera's. Needs a log without dropped events.
pub fn max_concurrent_exchanges(events: &[Event]) -> usize {
    use std::collections::{HashMap, VecDeque};
    let mut open: HashMap<usize, VecDeque<&str>> = HashMap::new();
    let (mut now, mut max) = (0usize, 0usize);
    for e in events {
        match e.kind {
            EventKind::Capabilities => {
                open.entry(e.camera).or_default().push_back(&e.detail);
                now += 1;
                max = max.max(now);
            }
            EventKind::LoginOk | EventKind::LoginStale => {
                let q = open.entry(e.camera).or_default();
                if let Some(i) = q.iter().position(|s| *s == e.detail) {
                    q.remove(i);
                    now -= 1;
                } else if q.pop_front().is_some() {
                    now -= 1;
                }
            }
            EventKind::LoginBad
            | EventKind::LockEngaged
            | EventKind::LoginLocked
            | EventKind::LoginRejectedLimit => {
                let closed = open.entry(e.camera).or_default().pop_front().is_some();
                now -= usize::from(closed);
            }
            EventKind::PowerOff | EventKind::PowerOn => {
                let q = open.entry(e.camera).or_default();
                now -= q.len();
                q.clear();
            }
            _ => {}
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: u64, camera: usize, kind: EventKind, detail: &str) -> Event {
        Event {
            seq,
            since_start: Duration::from_millis(seq),
            unix_us: 1_700_000_000_000_000 + seq,
            camera,
            kind,
            detail: detail.into(),
        }
    }

    #[test]
    fn exchanges_are_replayed() {
        use EventKind::*;
        let log = vec![
            ev(0, 0, Capabilities, "a"),
            ev(1, 1, Capabilities, "b"),
            ev(2, 0, LoginOk, "a"),
            ev(3, 2, Capabilities, "c"),
            ev(4, 3, Capabilities, "d"),
            ev(5, 1, LoginBad, "retry=6"),
            ev(6, 2, PowerOff, ""),
            ev(7, 3, LoginOk, "d"),
        ];
        assert_eq!(max_concurrent_exchanges(&log), 3);
        assert_eq!(login_attempts(&log, 1), 1);
        assert_eq!(sessions(&log, 3), vec!["d".to_string()]);
        assert_eq!(count_all(&log, Capabilities), 4);
        assert_eq!(
            at(&log[1]),
            UNIX_EPOCH + Duration::from_micros(1_700_000_000_000_001)
        );
    }
}
