//! The benchmark: the four strategies and the two benchmark-only peers
//! (`naive`, `sdk`) on one simcam fleet, through fixed, seeded scenarios, with the real
//! daemon and the real SDK. `scripts/bench.sh` is the one command; the `bench` binary
//! (`src/bin/bench.rs`) is a thin CLI over [`run_scenario`] and [`report`].
//!
//! - [`plan`]: scenarios and their seeded fault schedules;
//! - [`run`]: one run (fleet in-process, daemon as a child, faults on schedule, samples);
//! - [`analyze`]: the metric definitions, as pure functions;
//! - [`report`]: the markdown table, the goals (`analyze::goals`), the per-run JSON;
//! - [`svg`]: the storm timeline;
//! - [`procfs`]: CPU, memory, threads, descriptors from `/proc`;
//! - [`footprint`]: the armv7 binary's size and memory under qemu-arm;
//! - [`netfault`]: the `netfault` scenario, every strategy behind the network fault lab.
//!
//! The strategies of one scenario run side by side (one fleet and one daemon each),
//! started [`plan::Plan::stagger`] apart so their bursts do not meet; CPU seconds are per
//! process (`/proc/PID/stat`), so a neighbour does not add to a daemon's numbers, and the
//! machine's busiest second is recorded with every run to show it was not saturated.

pub mod analyze;
pub mod footprint;
pub mod netfault;
pub mod plan;
pub mod procfs;
pub mod report;
pub mod run;
pub mod svg;

use std::time::Duration;

pub use analyze::{Dist, Latencies};
pub use plan::{Plan, Scale, Scenario};
pub use run::{RawRun, RunConfig};

/// Every strategy the benchmark knows, in table order.
pub const STRATEGIES: [&str; 6] = ["poll", "event", "queue", "hybrid", "naive", "sdk"];

/// The benchmark-only peers: rows of the SDK backend only (`naive` is the seed's scheme
/// over the SDK, `sdk` is the SDK's own reconnect).
pub const SDK_ONLY: [&str; 2] = ["naive", "sdk"];

/// Every backend the benchmark knows, in table order (`backend = …`).
pub const BACKENDS: [&str; 2] = ["sdk", "isapi"];

/// Splits a run label into backend and strategy: `isapi/hybrid` → (`isapi`, `hybrid`); a
/// bare strategy runs on the SDK backend.
pub fn split_label(label: &str) -> (&str, &str) {
    label.split_once('/').unwrap_or(("sdk", label))
}

/// The run labels of `backends` × `strategies`, backend by backend: `sdk/hybrid`, …,
/// `isapi/hybrid`. A strategy written `backend/strategy` runs on that backend only; the
/// peers ([`SDK_ONLY`]) are left out for any other backend than `sdk`.
pub fn labels(backends: &[String], strategies: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for b in backends {
        for s in strategies {
            let (only, st) = match s.split_once('/') {
                Some((only, st)) => (Some(only), st),
                None => (None, s.as_str()),
            };
            if only.is_some_and(|o| o != b) || (b != "sdk" && SDK_ONLY.contains(&st)) {
                continue;
            }
            let l = format!("{b}/{st}");
            if !out.contains(&l) {
                out.push(l);
            }
        }
    }
    out
}

/// The login cap every run uses (the daemon's default `max_concurrent_logins`).
pub const LOGIN_CAP: usize = 8;

/// The numbers of one run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metrics {
    /// Cameras.
    pub cameras: usize,
    /// Detection and recovery.
    pub lat: Latencies,
    /// Full logins per camera per outage-hour, the outage camera-hours, the logins.
    pub outage_logins: Option<(f64, f64, u64)>,
    /// Login requests simcam received.
    pub logins_at_fleet: usize,
    /// Most login exchanges open at once (replayed from simcam's log).
    pub peak_concurrent: usize,
    /// The same, as simcam's live high-water mark.
    pub exchanges_hwm: usize,
    /// Most login requests in one second.
    pub peak_logins_per_s: usize,
    /// `lock_engaged` at simcam.
    pub lockouts: u64,
    /// Attempts during a lock (`login_locked`).
    pub locked_attempts: u64,
    /// Wrong-password answers (`login_bad`).
    pub bad_logins: u64,
    /// Cameras the daemon put in auth-hold.
    pub auth_holds: usize,
    /// Daemon CPU seconds over the whole run (start to the end snapshot).
    pub cpu_secs: f64,
    /// Daemon CPU seconds during the fault phase (steady: the measurement window).
    pub phase_cpu_secs: f64,
    /// Length of that phase, seconds.
    pub phase_secs: f64,
    /// Peak RSS (VmHWM), KiB.
    pub peak_rss_kib: u64,
    /// RSS after the warm-up and at the end, KiB.
    pub rss_kib: (u64, u64),
    /// State-file writes over the whole run.
    pub state_writes: u64,
    /// SDK login handles after the warm-up and at the end.
    pub sdk_handles: (Option<u64>, Option<u64>),
    /// Daemon threads after the warm-up and at the end.
    pub threads: (u64, u64),
    /// Daemon file descriptors after the warm-up and at the end.
    pub fds: (u64, u64),
    /// Healthy cameras online at the end, and how many there are.
    pub online_end: (usize, usize),
    /// Storm: seconds from the last camera's return to every camera online.
    pub all_online_after_last: Option<f64>,
    /// Busiest second of the machine, mean load (0–1 of both cores).
    pub machine_busy: (f64, f64),
    /// Exit code after SIGTERM, seconds it took, sessions simcam still held after.
    pub stop: (Option<i32>, f64, usize),
    /// Warm-up seconds (daemon start to every healthy camera online).
    pub warmup_secs: f64,
    /// Problems the run noticed (events dropped, warm-up incomplete, …).
    pub errors: Vec<String>,
}

impl Metrics {
    /// The numbers of `raw` (see [`analyze`] for the definitions).
    pub fn of(raw: &RawRun) -> Metrics {
        let plan = raw
            .plan
            .clone()
            .unwrap_or_else(|| Plan::new(Scenario::Steady, Scale::Quick, 0, Duration::ZERO));
        let lat = analyze::latencies(&raw.faults, &raw.events, &raw.verdicts, raw.t_end);
        let count = |k: &str| raw.event_counts.get(k).copied().unwrap_or(0);
        let healthy = plan.healthy();
        let online_end = raw.end.status.as_ref().map_or(0, |s| s.online(&healthy));
        let mut holds: Vec<usize> = raw
            .verdicts
            .iter()
            .filter(|v| v.what == analyze::Said::AuthHold)
            .map(|v| v.cam)
            .collect();
        holds.sort_unstable();
        holds.dedup();
        let phase_cpu = raw.end.proc.cpu.saturating_sub(raw.start.proc.cpu);
        let phase_secs = (raw.t_end.saturating_sub(raw.t_phase)) as f64 / 1e6;
        let all_online_after_last = match (plan.scenario, lat.last_back, lat.all_online) {
            (Scenario::Storm, Some(b), Some(a)) => Some(a.saturating_sub(b) as f64 / 1e6),
            _ => None,
        };
        Metrics {
            cameras: plan.cameras,
            outage_logins: analyze::logins_per_outage_hour(&raw.faults),
            logins_at_fleet: raw
                .events
                .iter()
                .filter(|e| analyze::is_login(e.kind))
                .count(),
            peak_concurrent: crate::events::max_concurrent_exchanges(&raw.events),
            exchanges_hwm: raw.exchanges_hwm,
            peak_logins_per_s: analyze::peak_rate(&raw.events, 1_000_000),
            lockouts: count("lock_engaged"),
            locked_attempts: count("login_locked"),
            bad_logins: count("login_bad"),
            auth_holds: holds.len(),
            cpu_secs: raw.end.proc.cpu.as_secs_f64(),
            phase_cpu_secs: phase_cpu.as_secs_f64(),
            phase_secs,
            peak_rss_kib: raw.end.proc.hwm_kib,
            rss_kib: (raw.start.proc.rss_kib, raw.end.proc.rss_kib),
            state_writes: raw.end.status.as_ref().map_or(0, |s| s.state_writes),
            sdk_handles: (
                raw.start.status.as_ref().and_then(|s| s.sdk_logins),
                raw.end.status.as_ref().and_then(|s| s.sdk_logins),
            ),
            threads: (raw.start.proc.threads, raw.end.proc.threads),
            fds: (raw.start.proc.fds, raw.end.proc.fds),
            online_end: (online_end, healthy.len()),
            all_online_after_last,
            machine_busy: (raw.machine_busy_max, raw.machine_busy_mean),
            stop: (raw.exit_code, raw.stop_secs, raw.sessions_after_stop),
            warmup_secs: raw.warmup_secs,
            errors: raw.errors.clone(),
            lat,
        }
    }

    /// Daemon CPU in % of one core per 100 cameras over the phase.
    pub fn cpu_pct_per_100(&self) -> f64 {
        if self.phase_secs <= 0.0 || self.cameras == 0 {
            return 0.0;
        }
        self.phase_cpu_secs / self.phase_secs * 100.0 / (self.cameras as f64 / 100.0)
    }
}

/// One finished run: its raw record and its numbers.
#[derive(Debug)]
pub struct Finished {
    /// The scenario.
    pub scenario: Scenario,
    /// The run's label: backend and strategy (`sdk/hybrid`, `isapi/poll`; a bare
    /// strategy ran on the SDK backend).
    pub strategy: String,
    /// What was recorded.
    pub raw: RawRun,
    /// The numbers.
    pub metrics: Metrics,
}

/// Runs every strategy of `strategies` through `plan` side by side (staggered), and
/// returns the finished runs in `strategies` order. An entry is a strategy (SDK backend)
/// or a label `backend/strategy` ([`labels`]).
///
/// # Errors
/// A run that could not start (the fleet's ports).
pub fn run_scenario(
    plan: &Plan,
    strategies: &[String],
    hikwatch: &std::path::Path,
    sdk_dir: &std::path::Path,
    verbose: bool,
) -> Result<Vec<Finished>, String> {
    let results: Vec<Result<RawRun, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = strategies
            .iter()
            .enumerate()
            .map(|(k, strategy)| {
                let (backend, st) = split_label(strategy);
                let cfg = RunConfig {
                    hikwatch: hikwatch.to_path_buf(),
                    sdk_dir: sdk_dir.to_path_buf(),
                    strategy: st.to_string(),
                    backend: backend.to_string(),
                    label: strategy.clone(),
                    plan: plan.clone(),
                    delay: plan.stagger * u32::try_from(k).unwrap_or(0),
                    verbose,
                };
                s.spawn(move || run::run(&cfg))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a run panicked".into())))
            .collect()
    });
    let mut out = Vec::new();
    for (r, strategy) in results.into_iter().zip(strategies) {
        let raw = r?;
        let metrics = Metrics::of(&raw);
        out.push(Finished {
            scenario: plan.scenario,
            strategy: strategy.clone(),
            raw,
            metrics,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| (*x).to_string()).collect()
    }

    #[test]
    fn labels_pair_backends_with_strategies_and_keep_the_peers_on_the_sdk() {
        let all = labels(&v(&BACKENDS), &v(&STRATEGIES));
        assert_eq!(
            all,
            v(&[
                "sdk/poll",
                "sdk/event",
                "sdk/queue",
                "sdk/hybrid",
                "sdk/naive",
                "sdk/sdk",
                "isapi/poll",
                "isapi/event",
                "isapi/queue",
                "isapi/hybrid",
            ])
        );
        // A qualified entry runs on its backend only.
        assert_eq!(
            labels(&v(&BACKENDS), &v(&["hybrid", "isapi/poll", "naive"])),
            v(&["sdk/hybrid", "sdk/naive", "isapi/hybrid", "isapi/poll"])
        );
        assert_eq!(split_label("isapi/queue"), ("isapi", "queue"));
        assert_eq!(split_label("hybrid"), ("sdk", "hybrid"));
    }
}
