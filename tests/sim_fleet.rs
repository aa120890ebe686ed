//! Deterministic fleet simulation: ≥ 1,000 cameras, many virtual hours, many seeds, random
//! faults, invariants checked on every step (see `hikwatch::supervisor::sim`).
//!
//! Environment knobs (all optional):
//! - `SIM_SEED=n`: run only this seed (reproduce a failure);
//! - `SIM_SEEDS=n`: number of seeds per test;
//! - `SIM_CAMS=n`, `SIM_HOURS=h`: fleet size and virtual hours;
//! - `SIM_STRATEGY=poll|event|queue|hybrid`: only this strategy;
//! - `SIM_TRACE=i`: print every event and action of camera `i` (use with `--nocapture`).
//!
//! Under qemu-arm (armv7) the defaults are smaller, but still 1,000 cameras.

use std::time::{Duration, Instant};

use hikwatch::supervisor::Strategy;
use hikwatch::supervisor::sim::{self, SimConfig, Stats};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn env_f64(name: &str) -> Option<f64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn arm() -> bool {
    cfg!(target_arch = "arm")
}

/// `(cameras, hours, seeds)`: the defaults for this target, overridden by the environment.
fn size(cams: u32, hours: f64, seeds: u64) -> (u32, f64, u64) {
    (
        env_u64("SIM_CAMS").map_or(cams, |v| u32::try_from(v).unwrap_or(cams)),
        env_f64("SIM_HOURS").unwrap_or(hours),
        env_u64("SIM_SEEDS").unwrap_or(seeds),
    )
}

fn seeds(base: u64, count: u64) -> Vec<u64> {
    match env_u64("SIM_SEED") {
        Some(s) => vec![s],
        None => (0..count).map(|k| base + k * 7919).collect(),
    }
}

fn trace() -> Option<u32> {
    env_u64("SIM_TRACE").and_then(|v| u32::try_from(v).ok())
}

fn wanted(strategy: Strategy) -> bool {
    std::env::var("SIM_STRATEGY")
        .ok()
        .is_none_or(|s| s == strategy.name())
}

fn hours(h: f64) -> Duration {
    Duration::from_secs_f64(h * 3600.0)
}

fn config(cams: u32, h: f64, seed: u64, strategy: Strategy) -> SimConfig {
    let mut cfg = SimConfig::new(cams, hours(h), seed);
    cfg.settings.strategy = strategy;
    if strategy == Strategy::Queue {
        // With workers = cap the queue strategy behaves exactly like `event`; fewer
        // workers than the cap is what makes it a strategy of its own.
        cfg.settings.workers = Some(4);
    }
    cfg.trace = trace();
    cfg
}

fn summary(cfg: &SimConfig, s: &Stats, wall: Duration) {
    eprintln!(
        "{} seed={} cams={} virt={:.1}h wall={:.2}s calls={} actions={} logins={} \
         heartbeats={} probes={} faults={} max_in_flight={} overflows={} recovered={} \
         max_due_wait={}ms long_outages={} max_logins/outage-h={:.2} \
         reopen→login p50={}ms p99={}ms gated reopen→login p50={}ms p99={}ms max={}ms \
         reopen→online p50={}ms p99={}ms holds={} locks={} late_sessions={} stuck_calls={} \
         online_at_end={} liveness_bound={}ms",
        cfg.settings.strategy,
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
        s.max_logins_per_outage_hour(),
        Stats::quantile(&s.reopen_to_login_ms, 0.5),
        Stats::quantile(&s.reopen_to_login_ms, 0.99),
        Stats::quantile(&s.gated_reopen_to_login_ms, 0.5),
        Stats::quantile(&s.gated_reopen_to_login_ms, 0.99),
        Stats::quantile(&s.gated_reopen_to_login_ms, 1.0),
        Stats::quantile(&s.reopen_to_online_ms, 0.5),
        Stats::quantile(&s.reopen_to_online_ms, 0.99),
        s.auth_holds,
        s.locks,
        s.late_sessions_logged_out,
        s.stuck_calls,
        s.online_at_end,
        s.liveness_bound_ms,
    );
}

fn run_checked(cfg: SimConfig) -> Stats {
    let t0 = Instant::now();
    let report = sim::run(cfg);
    summary(&cfg, &report.stats, t0.elapsed());
    let env = format!("SIM_STRATEGY={}", cfg.settings.strategy);
    assert!(
        report.violations.is_empty(),
        "{}",
        sim::describe_failure("sim_fleet", &env, &cfg, &report)
    );
    report.stats
}

/// The headline run: 1,000 cameras, hybrid, hours of random faults, several seeds.
#[test]
fn fleet_1000_hybrid_random_faults() {
    if !wanted(Strategy::Hybrid) {
        return;
    }
    let (cams, h, n) = if arm() {
        size(1000, 1.5, 1)
    } else {
        size(1000, 6.0, 2)
    };
    for seed in seeds(1, n) {
        let s = run_checked(config(cams, h, seed, Strategy::Hybrid));
        // The run must exercise the paths the invariants guard.
        assert!(
            s.faults > u64::from(cams) / 2,
            "too few faults: {}",
            s.faults
        );
        assert!(
            s.queue_overflows > 0,
            "the start burst must overflow the job queue"
        );
        assert_eq!(s.queue_recovered, s.queue_overflows);
        assert!(s.auth_holds > 0 && s.locked_replies > 0);
        assert!(s.stuck_calls > 0 && s.late_sessions_logged_out > 0);
        assert!(
            s.max_logins_in_flight == 8,
            "the cap is reached, never passed"
        );
        if h >= 4.0 {
            assert!(!s.long_outages.is_empty());
        }
        assert!(s.max_logins_per_outage_hour() <= 6.0);
        // Cameras already known down log in within about a second of the port reopening.
        assert!(
            Stats::quantile(&s.gated_reopen_to_login_ms, 0.99) <= 1_500,
            "{:?}",
            s.gated_reopen_to_login_ms
        );
    }
}

/// Every strategy shares the safety policy: the same invariants hold for each.
#[test]
fn all_strategies_random_faults() {
    let (cams, h, n) = if arm() {
        size(300, 1.0, 1)
    } else {
        size(500, 4.0, 2)
    };
    for strategy in Strategy::ALL {
        if !wanted(strategy) {
            continue;
        }
        for seed in seeds(100, n) {
            let s = run_checked(config(cams, h, seed, strategy));
            let cap = if strategy == Strategy::Queue { 4 } else { 8 };
            assert!(s.max_logins_in_flight <= cap);
        }
    }
}

/// Many seeds on small fleets: different interleavings, cheap enough to run dozens.
#[test]
fn many_seeds_small_fleets() {
    let (cams, h, n) = if arm() {
        size(40, 2.0, 6)
    } else {
        size(60, 6.0, 32)
    };
    for (k, seed) in seeds(10_000, n).into_iter().enumerate() {
        let strategy = Strategy::ALL[k % Strategy::ALL.len()];
        if wanted(strategy) {
            run_checked(config(cams, h, seed, strategy));
        }
    }
}

/// A run is a pure function of its config: the same seed gives the same numbers.
#[test]
fn runs_are_reproducible() {
    let cfg = config(200, 1.0, 77, Strategy::Hybrid);
    let a = sim::run(cfg);
    let b = sim::run(cfg);
    assert_eq!(a.stats, b.stats);
    assert_eq!(a.violations, b.violations);
    let other = sim::run(config(200, 1.0, 78, Strategy::Hybrid));
    assert_ne!(a.stats, other.stats, "the seed must matter");
}
