//! Deterministic fleet simulation: ≥ 1,000 cameras, many virtual hours, several seeds,
//! random faults, invariants checked on every step (see `hikwatch::supervisor::sim`).
//!
//! Environment knobs (all optional):
//! - `SIM_SEED=n`: run only this seed (reproduce a failure);
//! - `SIM_SEEDS=n`: number of seeds per test;
//! - `SIM_CAMS=n`, `SIM_HOURS=h`: fleet size and virtual hours;
//! - `SIM_STRATEGY=poll|event|queue|hybrid`: only this strategy in `all_strategies`.
//!
//! Under qemu-arm (armv7) the defaults are smaller but not trivial.

use std::time::{Duration, Instant};

use hikwatch::supervisor::Strategy;
use hikwatch::supervisor::sim::{self, SimConfig, Stats};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn env_f64(name: &str) -> Option<f64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// (cameras, hours, seeds) for the big fleet run on this target.
fn fleet_size() -> (u32, f64, u64) {
    let (cams, hours, seeds) = if cfg!(target_arch = "arm") {
        (1000, 2.0, 1)
    } else {
        (1000, 8.0, 3)
    };
    (
        env_u64("SIM_CAMS").map_or(cams, |v| u32::try_from(v).unwrap_or(cams)),
        env_f64("SIM_HOURS").unwrap_or(hours),
        env_u64("SIM_SEEDS").unwrap_or(seeds),
    )
}

fn seeds(default_base: u64, count: u64) -> Vec<u64> {
    match env_u64("SIM_SEED") {
        Some(s) => vec![s],
        None => (0..count).map(|k| default_base + k * 7919).collect(),
    }
}

fn trace() -> Option<u32> {
    env_u64("SIM_TRACE").and_then(|v| u32::try_from(v).ok())
}

fn hours(h: f64) -> Duration {
    Duration::from_secs_f64(h * 3600.0)
}

fn summary(label: &str, cfg: &SimConfig, s: &Stats, wall: Duration) {
    let per_outage_hour = s.max_logins_per_outage_hour();
    eprintln!(
        "{label} seed={} cams={} virt={:.1}h wall={:.2}s calls={} actions={} logins={} \
         heartbeats={} probes={} faults={} max_in_flight={} overflows={} recovered={} \
         max_due_wait={}ms long_outages={} max_logins/outage-h={per_outage_hour:.2} \
         reopen→login p50={}ms p99={}ms reopen→online p50={}ms p99={}ms holds={} locks={} \
         late_sessions={} stuck_calls={} locked_replies={} online_at_end={} \
         liveness_bound={}ms due_wait_bound={}ms",
        cfg.seed,
        cfg.cameras,
        cfg.duration.as_secs_f64() / 3600.0,
        wall.as_secs_f64(),
        s.supervisor_calls,
        s.actions,
        s.logins,
        s.heartbeats,
        s.probes,
        s.faults,
        s.max_logins_in_flight,
        s.queue_overflows,
        s.queue_recovered,
        s.max_due_wait_ms,
        s.long_outages.len(),
        Stats::quantile(&s.reopen_to_login_ms, 0.5),
        Stats::quantile(&s.reopen_to_login_ms, 0.99),
        Stats::quantile(&s.reopen_to_online_ms, 0.5),
        Stats::quantile(&s.reopen_to_online_ms, 0.99),
        s.auth_holds,
        s.locks,
        s.late_sessions_logged_out,
        s.stuck_calls,
        s.locked_replies,
        s.online_at_end,
        s.liveness_bound_ms,
        s.due_wait_bound_ms,
    );
}

fn run_checked(test: &str, label: &str, cfg: SimConfig) -> Stats {
    let t0 = Instant::now();
    let report = sim::run(cfg);
    summary(label, &cfg, &report.stats, t0.elapsed());
    assert!(
        report.violations.is_empty(),
        "{}",
        sim::describe_failure(test, &cfg, &report)
    );
    report.stats
}

/// The headline run: 1,000 cameras, hybrid, hours of random faults, several seeds.
#[test]
fn fleet_hybrid_random_faults() {
    let (cams, h, n) = fleet_size();
    for seed in seeds(1, n) {
        let mut cfg = SimConfig::new(cams, hours(h), seed);
        cfg.trace = trace();
        let s = run_checked("sim_fleet", "hybrid", cfg);
        // The run must actually exercise the paths the invariants guard.
        assert!(s.faults > u64::from(cams), "too few faults: {}", s.faults);
        assert!(
            s.queue_overflows > 0,
            "the start burst must overflow the job queue"
        );
        assert!(s.queue_recovered > 0);
        assert!(s.auth_holds > 0 && s.locked_replies > 0);
        assert!(!s.long_outages.is_empty());
        assert!(s.max_logins_per_outage_hour() <= 6.0);
    }
}

/// Every strategy shares the safety policy: the same invariants hold for each.
#[test]
fn all_strategies_random_faults() {
    let (cams, h, _) = fleet_size();
    let only = std::env::var("SIM_STRATEGY").ok();
    for strategy in Strategy::ALL {
        if only.as_deref().is_some_and(|o| o != strategy.name()) {
            continue;
        }
        for seed in seeds(100, 2) {
            let mut cfg = SimConfig::new(cams.min(500), hours(h.min(4.0)), seed);
            cfg.settings.strategy = strategy;
            cfg.trace = trace();
            run_checked("sim_fleet", strategy.name(), cfg);
        }
    }
}
