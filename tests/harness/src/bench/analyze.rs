//! From what a run recorded to its numbers. Pure functions over plain data, so the
//! definitions are tested on synthetic logs (see the tests at the bottom).
//!
//! # Definitions
//!
//! Times are wall-clock microseconds (`unix_us`): simcam stamps its events with it, and
//! the daemon's log lines carry the daemon's own UTC timestamp (same machine clock).
//!
//! - **Detection** of a fault = the camera's fault event at simcam (`power_off` or
//!   `frozen`) → the daemon's loss verdict (its `CAM: session lost` log line). Counted
//!   only for faults that hit a camera the daemon had online; a fault with no verdict
//!   before the camera's next fault (or the end) is *missed* (e.g. the SDK re-logged in by
//!   itself before the daemon noticed).
//! - **Recovery** = service back at simcam (`listening` after a power-on, `thawed`) →
//!   the session online again: for a power-off, the camera's first `login_ok` at simcam
//!   after max(back, verdict) (a reboot forgets every session, so any session after it
//!   is a new login); for a freeze, the daemon's `CAM: online` line after max(back,
//!   verdict) (a frozen camera answers queued requests at the thaw, so a `login_ok` then
//!   may belong to an abandoned login). A freeze the daemon never noticed left the session
//!   alive: no recovery sample. Outages not recovered before the camera's next fault or
//!   the end enter the percentiles at the time they were cut off (lower bounds) and are
//!   counted as *not recovered*.
//! - **Stalls** (the `stream` scenario): detection = simcam's `stream_fault` `halt` → the
//!   loss verdict; recovery = the verdict → the next `stream_start` at simcam (stream
//!   stopped, session renewed, a new stream playing; during a 15 s stall that happens
//!   before the data comes back, which then flows into the new stream at once). A stall
//!   the daemon never noticed has no recovery sample. **False gaps** = loss verdicts of
//!   a camera outside [stall start, stall end + 15 s) of its stalls (every verdict in the
//!   `stream` scenario that no stall explains).
//! - **Full logins per camera per outage-hour** = logins the daemon issued while the
//!   camera was down (its `login_attempts` counter read just before the power-off and
//!   just before the power-on) ÷ camera-hours of outage. These never reach simcam (the
//!   port refuses them), so the daemon's own counter is the only witness.
//! - **Peak concurrent logins** = most login exchanges (capabilities answered,
//!   `sessionLogin` not yet) open at once across the fleet, replayed from simcam's log;
//!   **peak logins/s** = most `sessionLogin` requests (any answer) in any 1 s window.
//! - **Lockouts** = `lock_engaged` events at simcam (a wrong password that locked the
//!   client IP); attempts during a lock (`login_locked`) are counted beside them.
//! - Percentiles are nearest-rank (p99 of fewer than 100 samples is the maximum).

use std::collections::BTreeMap;

use simcam::{Event, EventKind};

use super::plan::{FaultKind, Plan, Scenario};

/// One daemon log line, reduced to what the analysis needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// When the daemon logged it (its own timestamp), µs since the epoch.
    pub t: u64,
    /// Camera index.
    pub cam: usize,
    /// What it said.
    pub what: Said,
}

/// The daemon's per-camera log lines the benchmark reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Said {
    /// `CAM: session lost: …`
    Down,
    /// `CAM: online` / `CAM: online again …`
    Up,
    /// `CAM: credentials rejected …` (auth-hold)
    AuthHold,
    /// `CAM: the device locked this client out …`
    Locked,
}

/// Microseconds since the epoch of an RFC 3339 UTC timestamp as the daemon writes it
/// (`2026-11-25T15:09:00.123456789Z`).
pub fn parse_utc_us(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || !s.ends_with('Z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut us = 0i64;
    if b.get(19) == Some(&b'.') {
        let frac = &s[20..s.len() - 1];
        let digits: String = frac.chars().take(6).collect();
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        us = digits.parse::<i64>().ok()? * 10i64.pow(6 - digits.len() as u32);
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let t = ((days * 24 + h) * 60 + mi) * 60 + sec;
    u64::try_from(t * 1_000_000 + us).ok()
}

/// Parses one daemon line (`TIME [LEVEL] cam-N: message`) into a [`Verdict`];
/// `fallback_us` is used when the line has no timestamp (journald format).
pub fn parse_line(line: &str, fallback_us: u64) -> Option<Verdict> {
    let (t, rest) = match line.split_once(' ') {
        Some((ts, rest)) if ts.ends_with('Z') => (parse_utc_us(ts).unwrap_or(fallback_us), rest),
        _ => (fallback_us, line),
    };
    let rest = rest.trim_start();
    let rest = match rest.strip_prefix('[') {
        Some(r) => r.split_once("] ")?.1,
        None => rest,
    };
    let (id, msg) = rest.split_once(": ")?;
    let cam: usize = id.strip_prefix("cam-")?.parse().ok()?;
    let what = if msg.starts_with("session lost") {
        Said::Down
    } else if msg == "online" || msg.starts_with("online again") {
        Said::Up
    } else if msg.starts_with("credentials rejected") {
        Said::AuthHold
    } else if msg.starts_with("the device locked this client out") {
        Said::Locked
    } else {
        return None;
    };
    Some(Verdict { t, cam, what })
}

/// A fault as it happened: simcam's times and the daemon's login counter around it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Happened {
    /// Camera index.
    pub cam: usize,
    /// Power-off or freeze.
    pub kind: FaultKind,
    /// simcam's `power_off` / `frozen` event.
    pub at: u64,
    /// simcam's `listening` (after the power-on) / `thawed` event; `None` if it never
    /// came back during the run.
    pub back: Option<u64>,
    /// The daemon's `login_attempts` for the camera just before the fault and just before
    /// the camera came back.
    pub logins: Option<(u64, u64)>,
}

/// p50 / p99 / max of a sample, seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Dist {
    /// Samples.
    pub n: usize,
    /// Median.
    pub p50: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// Nearest-rank percentile of a sorted sample (`q` in 0–1); 0 for an empty one.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

impl Dist {
    /// The distribution of `v` (seconds).
    pub fn of(mut v: Vec<f64>) -> Dist {
        v.sort_by(f64::total_cmp);
        Dist {
            n: v.len(),
            p50: percentile(&v, 0.5),
            p99: percentile(&v, 0.99),
            max: v.last().copied().unwrap_or(0.0),
        }
    }
}

/// Detection and recovery of a run's faults.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Latencies {
    /// Fault → loss verdict, seconds.
    pub detection: Dist,
    /// Faults that hit a camera the daemon had online.
    pub faults_online: usize,
    /// Of those, no verdict before the camera's next fault or the end.
    pub missed: usize,
    /// Service back → session online, seconds (cut-off outages at their lower bound).
    pub recovery: Dist,
    /// Outages not recovered before the next fault or the end.
    pub not_recovered: usize,
    /// Time of the last service return and of the last camera online after it (µs).
    pub last_back: Option<u64>,
    /// When the last camera came online again (µs); `None` if one never did.
    pub all_online: Option<u64>,
    /// Loss verdicts no fault explains (see the module docs; counted for stalls).
    pub false_verdicts: usize,
}

const US: f64 = 1e6;

/// Whether the daemon had `cam` online at `t`, from its log lines (sorted by time).
fn online_at(log: &[Verdict], cam: usize, t: u64) -> bool {
    log.iter()
        .rfind(|v| v.cam == cam && v.t <= t && matches!(v.what, Said::Up | Said::Down))
        .is_some_and(|v| v.what == Said::Up)
}

/// Detection and recovery for `faults` from simcam's `events` and the daemon's `log`
/// (both sorted by time); `end` is when the run stopped watching.
pub fn latencies(faults: &[Happened], events: &[Event], log: &[Verdict], end: u64) -> Latencies {
    let mut det = Vec::new();
    let mut rec = Vec::new();
    let mut out = Latencies::default();
    let mut all_online: Option<u64> = Some(0);
    for f in faults {
        let next = faults
            .iter()
            .filter(|g| g.cam == f.cam && g.at > f.at)
            .map(|g| g.at)
            .min()
            .unwrap_or(end);
        let verdict = log
            .iter()
            .find(|v| v.cam == f.cam && v.what == Said::Down && v.t >= f.at && v.t < next)
            .map(|v| v.t);
        if online_at(log, f.cam, f.at) {
            out.faults_online += 1;
            match verdict {
                Some(t) => det.push((t - f.at) as f64 / US),
                None => out.missed += 1,
            }
        }
        let Some(back) = f.back else {
            out.not_recovered += 1;
            all_online = None;
            continue;
        };
        out.last_back = Some(out.last_back.map_or(back, |b| b.max(back)));
        if matches!(f.kind, FaultKind::Freeze | FaultKind::Stall)
            && verdict.is_none_or(|t| t >= next)
        {
            continue; // the session outlived the freeze or stall: nothing to recover
        }
        let from = verdict.map_or(back, |t| t.max(back));
        let online = match f.kind {
            FaultKind::PowerOff => events
                .iter()
                .find(|e| {
                    e.camera == f.cam
                        && e.kind == EventKind::LoginOk
                        && e.unix_us >= from
                        && e.unix_us < next
                })
                .map(|e| e.unix_us),
            FaultKind::Freeze => log
                .iter()
                .find(|v| v.cam == f.cam && v.what == Said::Up && v.t >= from && v.t < next)
                .map(|v| v.t),
            FaultKind::Stall => verdict.and_then(|v| {
                events
                    .iter()
                    .find(|e| {
                        e.camera == f.cam
                            && e.kind == EventKind::StreamStart
                            && e.unix_us >= v
                            && e.unix_us < next
                    })
                    .map(|e| e.unix_us)
            }),
        };
        let online = match (f.kind, online, verdict) {
            // A stall's recovery runs from the verdict (see the module docs).
            (FaultKind::Stall, Some(t), Some(v)) => Some(back + t.saturating_sub(v)),
            (_, o, _) => o,
        };
        match online {
            Some(t) => {
                rec.push(t.saturating_sub(back) as f64 / US);
                all_online = all_online.map(|a| a.max(t));
            }
            None => {
                rec.push(next.saturating_sub(back) as f64 / US);
                out.not_recovered += 1;
                all_online = None;
            }
        }
    }
    if faults.iter().any(|f| f.kind == FaultKind::Stall) {
        out.false_verdicts = log
            .iter()
            .filter(|v| v.what == Said::Down)
            .filter(|v| {
                !faults.iter().any(|f| {
                    f.cam == v.cam
                        && v.t >= f.at
                        && v.t < f.back.unwrap_or(end).saturating_add(15 * US as u64)
                })
            })
            .count();
    }
    out.detection = Dist::of(det);
    out.recovery = Dist::of(rec);
    out.all_online = all_online.filter(|&t| t > 0);
    out
}

/// Whether a simcam event is a login request (`POST sessionLogin`, any answer).
pub fn is_login(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::LoginOk
            | EventKind::LoginBad
            | EventKind::LockEngaged
            | EventKind::LoginLocked
            | EventKind::LoginStale
            | EventKind::LoginRejectedLimit
    )
}

/// Most login requests in any window of `window_us` (events sorted by time).
pub fn peak_rate(events: &[Event], window_us: u64) -> usize {
    let t: Vec<u64> = events
        .iter()
        .filter(|e| is_login(e.kind))
        .map(|e| e.unix_us)
        .collect();
    let (mut lo, mut best) = (0, 0);
    for hi in 0..t.len() {
        while t[hi] - t[lo] >= window_us {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

/// Full logins per camera per outage-hour, and the outage camera-hours behind it.
pub fn logins_per_outage_hour(faults: &[Happened]) -> Option<(f64, f64, u64)> {
    let (mut logins, mut us) = (0u64, 0u64);
    for f in faults {
        if let (Some(back), Some((before, after))) = (f.back, f.logins) {
            logins += after.saturating_sub(before);
            us += back.saturating_sub(f.at);
        }
    }
    let hours = us as f64 / US / 3600.0;
    (hours > 0.0).then(|| (logins as f64 / hours, hours, logins))
}

/// Counts of simcam events by kind name.
pub fn count_kinds(events: &[Event]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for e in events {
        *m.entry(e.kind.as_str().to_string()).or_insert(0) += 1;
    }
    m
}

/// The goal lines that apply to a scenario: the targets hikwatch set itself, reported
/// next to the measurements, not asserted.
pub fn goals(s: Scenario) -> &'static [&'static str] {
    match s {
        Scenario::Flap => &[
            "detection p99 <= 200 ms after power-off (RST)",
            "recovery p99 <= 1.5 s (hybrid)",
            "zero lockouts; peak concurrent logins <= cap",
            "no RSS growth across the run",
        ],
        Scenario::Storm => &[
            "every camera online <= 5 s after the last one returns",
            "recovery p99 <= 1.5 s (hybrid); peak concurrent logins <= cap",
        ],
        Scenario::Silent => &["detection p99 <= heartbeat x misses + 1 s (16 s)"],
        Scenario::Badpass => &["zero lockouts"],
        Scenario::Steady => &["daemon CPU <= 1 % of a core per 100 cameras"],
        Scenario::Outage => &["<= 6 full logins per camera per outage-hour"],
        Scenario::Stream => &[
            "detection p99 <= stream_gap + 1 s (11 s)",
            "zero false gaps; daemon CPU per 100 watched streams reported",
        ],
    }
}

/// Which plan faults are power-offs vs freezes, for callers building [`Happened`].
pub fn fault_kinds(p: &Plan) -> Vec<FaultKind> {
    p.faults.iter().map(|f| f.kind).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const T0: u64 = 1_800_000_000_000_000;

    fn ev(t_ms: u64, camera: usize, kind: EventKind, detail: &str) -> Event {
        Event {
            seq: t_ms,
            since_start: Duration::from_millis(t_ms),
            unix_us: T0 + t_ms * 1000,
            camera,
            kind,
            detail: detail.into(),
        }
    }

    fn said(t_ms: u64, cam: usize, what: Said) -> Verdict {
        Verdict {
            t: T0 + t_ms * 1000,
            cam,
            what,
        }
    }

    #[test]
    fn timestamps_and_lines() {
        assert_eq!(parse_utc_us("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_utc_us("2024-05-01T12:00:00.123456789Z"),
            Some(1_714_564_800_123_456)
        );
        assert_eq!(
            parse_utc_us("2000-02-29T23:59:59.5Z"),
            Some(951_868_799_500_000)
        );
        assert_eq!(parse_utc_us("yesterday"), None);
        let v = parse_line(
            "2024-05-01T12:00:00.000001Z [WARN] cam-17: session lost: SDK exception 0x8000",
            7,
        )
        .unwrap();
        assert_eq!(
            (v.t, v.cam, v.what),
            (1_714_564_800_000_001, 17, Said::Down)
        );
        let v = parse_line("cam-3: online again (12s after the loss)", 7).unwrap();
        assert_eq!((v.t, v.cam, v.what), (7, 3, Said::Up));
        assert_eq!(
            parse_line("[INFO] cam-3: online", 9).unwrap().what,
            Said::Up
        );
        assert!(parse_line("[INFO] cam-3: login failed: error 7", 9).is_none());
        assert!(parse_line("[INFO] stopping: logging out every camera", 9).is_none());
        assert_eq!(
            parse_line(
                "[ERROR] cam-0: credentials rejected (the device allows 1 more)",
                1
            )
            .unwrap()
            .what,
            Said::AuthHold
        );
    }

    /// Stalls: one detected and renewed, one missed; a verdict on a camera without a
    /// stall is a false gap.
    #[test]
    fn stalls_give_detection_recovery_and_false_gaps() {
        use EventKind::*;
        let events = vec![
            ev(1_000, 0, StreamFault, "halt"),
            ev(1_000, 1, StreamFault, "halt"),
            ev(11_600, 0, StreamStart, "ch=102"),
            ev(16_000, 0, StreamFault, "resume"),
            ev(16_000, 1, StreamFault, "resume"),
        ];
        let log = vec![
            said(10, 0, Said::Up),
            said(10, 1, Said::Up),
            said(10, 2, Said::Up),
            said(11_400, 0, Said::Down),
            said(11_500, 0, Said::Up),
            said(12_000, 2, Said::Down), // nothing stalled on camera 2
        ];
        let f = |cam, at: u64, back: u64| Happened {
            cam,
            kind: FaultKind::Stall,
            at: T0 + at * 1000,
            back: Some(T0 + back * 1000),
            logins: None,
        };
        let faults = [f(0, 1_000, 16_000), f(1, 1_000, 16_000)];
        let l = latencies(&faults, &events, &log, T0 + 60_000_000);
        assert_eq!((l.faults_online, l.missed), (2, 1));
        assert!((l.detection.max - 10.4).abs() < 1e-9, "{:?}", l.detection);
        // Verdict at 11.4 s → new stream at 11.6 s; camera 1's stall went unnoticed.
        assert_eq!((l.recovery.n, l.not_recovered), (1, 0));
        assert!((l.recovery.max - 0.2).abs() < 1e-9, "{:?}", l.recovery);
        assert_eq!(l.false_verdicts, 1);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let d = Dist::of((1..=200).rev().map(f64::from).collect());
        assert_eq!((d.n, d.p50, d.p99, d.max), (200, 100.0, 198.0, 200.0));
        let d = Dist::of(vec![0.3, 0.1, 0.2]);
        assert_eq!((d.p50, d.p99, d.max), (0.2, 0.3, 0.3));
        assert_eq!(Dist::of(Vec::new()), Dist::default());
    }

    /// A known log: three power-offs and one freeze, with every case the definitions
    /// name (detected, missed, not recovered, a freeze the daemon never saw).
    #[test]
    fn a_known_log_gives_known_latencies() {
        use EventKind::*;
        let events = vec![
            ev(0, 0, LoginOk, "s0"),
            ev(0, 1, LoginOk, "s1"),
            ev(0, 2, LoginOk, "s2"),
            ev(1_000, 0, PowerOff, ""),
            ev(1_000, 1, PowerOff, ""),
            ev(1_000, 2, Frozen, ""),
            ev(1_000, 3, PowerOff, ""),
            ev(6_000, 0, Listening, ""),
            ev(6_000, 1, Listening, ""),
            ev(6_000, 3, Listening, ""),
            ev(6_500, 0, Capabilities, "a"),
            ev(6_800, 0, LoginOk, "a"),
            ev(7_000, 2, Thawed, ""),
            ev(9_000, 1, LoginOk, "b"), // the SDK's own re-login: nobody declared a loss
        ];
        let log = vec![
            said(10, 0, Said::Up),
            said(10, 1, Said::Up),
            said(10, 2, Said::Up),
            said(1_150, 0, Said::Down), // 150 ms after the RST
            said(6_900, 0, Said::Up),
        ];
        let f = |cam, kind, at: u64, back: u64| Happened {
            cam,
            kind,
            at: T0 + at * 1000,
            back: Some(T0 + back * 1000),
            logins: Some((1, 3)),
        };
        let faults = [
            f(0, FaultKind::PowerOff, 1_000, 6_000),
            f(1, FaultKind::PowerOff, 1_000, 6_000),
            f(2, FaultKind::Freeze, 1_000, 7_000),
            f(3, FaultKind::PowerOff, 1_000, 6_000), // camera 3 was never online
        ];
        let l = latencies(&faults, &events, &log, T0 + 20_000_000);
        assert_eq!(l.faults_online, 3);
        assert_eq!(l.missed, 2, "cameras 1 and 2: no verdict");
        assert_eq!(l.detection.n, 1);
        assert!((l.detection.max - 0.15).abs() < 1e-9);
        // Camera 0: back at 6.0 s, login_ok at 6.8 s. Camera 1: the SDK's re-login at
        // 9.0 s. Camera 2: the freeze went unnoticed (no sample). Camera 3: no login
        // until the end (cut off at 20 s: 14 s, not recovered).
        assert_eq!(l.recovery.n, 3);
        assert_eq!(l.not_recovered, 1);
        assert!((l.recovery.p50 - 3.0).abs() < 1e-9, "{:?}", l.recovery);
        assert!((l.recovery.max - 14.0).abs() < 1e-9);
        assert_eq!(l.all_online, None);
        assert_eq!(l.last_back, Some(T0 + 7_000_000));

        // Two outages of 5 s and 6 s with 2 logins each: 4 logins in 11/3600 h.
        let (rate, hours, n) = logins_per_outage_hour(&faults[..3]).unwrap();
        assert_eq!(n, 6);
        assert!((hours - 16.0 / 3600.0).abs() < 1e-12);
        assert!((rate - 6.0 / (16.0 / 3600.0)).abs() < 1e-6);
    }

    #[test]
    fn login_rate_and_concurrency_windows() {
        use EventKind::*;
        let mut events = Vec::new();
        for i in 0..10 {
            events.push(ev(i * 100, i as usize, Capabilities, "x"));
            events.push(ev(i * 100 + 50, i as usize, LoginOk, "x"));
        }
        events.push(ev(5_000, 1, LoginBad, "retry=6"));
        assert_eq!(peak_rate(&events, 1_000_000), 10);
        assert_eq!(peak_rate(&events, 250_000), 3);
        assert_eq!(crate::events::max_concurrent_exchanges(&events), 1);
        assert_eq!(count_kinds(&events)["login_ok"], 10);
    }
}
