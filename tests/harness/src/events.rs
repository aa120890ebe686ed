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
/// `capabilities` opens one (keyed by its sessionID); a login answer of the same camera
/// closes the one it names (`login_ok`, `login_stale`) or else the newest open one (a
/// client runs one login per camera at a time; older ones were abandoned); a
/// power-off or power-on closes all of the camera's.
///
/// An exchange still open at the end of the log was **abandoned** by its client and is
/// left out: a frozen camera answers, at its thaw, every `capabilities` request queued in
/// its sockets — requests of logins that timed out long before, on connections the client
/// has closed — and those would otherwise all count as open at once. Needs a log without
/// dropped events.
pub fn max_concurrent_exchanges(events: &[Event]) -> usize {
    use std::collections::{HashMap, VecDeque};
    // Pass 1: which exchange (by index of its `capabilities` event) was closed, and when.
    let mut open: HashMap<usize, VecDeque<(usize, &str)>> = HashMap::new();
    let mut closed_at: HashMap<usize, usize> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        let q = open.entry(e.camera).or_default();
        match e.kind {
            EventKind::Capabilities => q.push_back((i, &e.detail)),
            EventKind::LoginOk | EventKind::LoginStale => {
                let taken = match q.iter().position(|(_, s)| *s == e.detail) {
                    Some(k) => q.remove(k),
                    None => q.pop_back(),
                };
                if let Some((opened, _)) = taken {
                    closed_at.insert(opened, i);
                }
            }
            EventKind::LoginBad
            | EventKind::LockEngaged
            | EventKind::LoginLocked
            | EventKind::LoginRejectedLimit => {
                if let Some((opened, _)) = q.pop_back() {
                    closed_at.insert(opened, i);
                }
            }
            EventKind::PowerOff | EventKind::PowerOn => {
                for (opened, _) in q.drain(..) {
                    closed_at.insert(opened, i);
                }
            }
            _ => {}
        }
    }
    // Pass 2: the most closed exchanges open at once (an exchange closes before the event
    // that closed it opens anything).
    let mut edges: Vec<(usize, bool)> = closed_at
        .iter()
        .flat_map(|(&opened, &closed)| [(opened, true), (closed, false)])
        .collect();
    edges.sort_unstable_by_key(|&(i, opens)| (i, opens));
    let (mut now, mut max) = (0usize, 0usize);
    for (_, opens) in edges {
        if opens {
            now += 1;
            max = max.max(now);
        } else {
            now -= 1;
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

    #[test]
    fn exchanges_answered_at_a_thaw_and_never_continued_are_left_out() {
        use EventKind::*;
        // Camera 0 was frozen: three logins timed out on it; at the thaw it answers the
        // three queued `capabilities` at once, then the daemon's next login goes through.
        // Camera 1 logs in meanwhile.
        let log = vec![
            ev(0, 0, Frozen, ""),
            ev(1, 0, Thawed, ""),
            ev(2, 0, Capabilities, "old1"),
            ev(3, 0, Capabilities, "old2"),
            ev(4, 1, Capabilities, "x"),
            ev(5, 0, Capabilities, "old3"),
            ev(6, 0, Capabilities, "new"),
            ev(7, 1, LoginOk, "x"),
            ev(8, 0, LoginOk, "new"),
        ];
        assert_eq!(max_concurrent_exchanges(&log), 2);
        // Without the answers the abandoned ones would have been open together with both.
        let cut: Vec<Event> = log
            .into_iter()
            .filter(|e| !e.detail.starts_with("old"))
            .collect();
        assert_eq!(max_concurrent_exchanges(&cut), 2);
    }

    #[test]
    fn an_exchange_closed_by_a_power_off_counts_until_then() {
        use EventKind::*;
        let log = vec![
            ev(0, 0, Capabilities, "a"),
            ev(1, 1, Capabilities, "b"),
            ev(2, 0, PowerOff, ""),
            ev(3, 2, Capabilities, "c"),
            ev(4, 1, LoginOk, "b"),
            ev(5, 2, LoginOk, "c"),
        ];
        assert_eq!(max_concurrent_exchanges(&log), 2);
    }
}
