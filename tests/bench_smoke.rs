//! The benchmark cannot rot: a tiny storm (8 cameras, 10 s off) through the real daemon,
//! the real x86_64 SDK and simcam, with two strategies side by side, must produce a
//! complete report. The metric definitions themselves are pinned by known synthetic logs
//! in the harness's unit tests (`cargo test -p harness bench::`), which run on every
//! target.
#![cfg(target_arch = "x86_64")]

use std::path::Path;
use std::time::Duration;

use harness::bench::analyze::Said;
use harness::bench::{self, Plan, Scale, Scenario, report, svg};

const BIN: &str = env!("CARGO_BIN_EXE_hikwatch");

#[test]
fn a_tiny_storm_produces_a_complete_report() {
    let Some(real) = harness::RealSdk::find(env!("CARGO_MANIFEST_DIR")) else {
        return;
    };
    let sdk = &real.dir;
    let plan = Plan::new(Scenario::Storm, Scale::Quick, 7, Duration::ZERO);
    assert_eq!(plan.cameras, 8);
    let strategies = ["hybrid".to_string(), "naive".to_string()];
    let runs = bench::run_scenario(&plan, &strategies, Path::new(BIN), sdk, false)
        .expect("the runs start");
    assert_eq!(runs.len(), 2);
    for f in &runs {
        let m = &f.metrics;
        let who = &f.strategy;
        assert!(f.raw.errors.is_empty(), "{who}: {:?}", f.raw.errors);
        real.assert_version(f.raw.sdk_version.as_deref().unwrap_or("none reported"));
        assert_eq!(f.raw.events_dropped, 0, "{who}");
        assert_eq!(m.cameras, 8);
        // Every camera went off and came back at simcam, and the daemon saw it.
        assert_eq!(f.raw.faults.len(), 8, "{who}");
        assert!(
            f.raw
                .faults
                .iter()
                .all(|h| h.back.is_some() && h.logins.is_some())
        );
        assert_eq!(m.lat.faults_online, 8, "{who}: {:?}", m.lat);
        assert_eq!(m.lat.detection.n + m.lat.missed, 8, "{who}");
        assert!(
            m.lat.detection.n > 0,
            "{who}: nothing detected: {:?}",
            m.lat
        );
        // The detection figures are the power-off → verdict delays of this run: worked
        // out here from simcam's fault times and the daemon's log lines, nearest rank
        // (of 8 samples, p50 is the 4th and p99 the largest).
        let mut delays: Vec<f64> = f
            .raw
            .faults
            .iter()
            .filter_map(|h| {
                f.raw
                    .verdicts
                    .iter()
                    .find(|v| v.cam == h.cam && v.what == Said::Down && v.t >= h.at)
                    .map(|v| (v.t - h.at) as f64 / 1e6)
            })
            .collect();
        delays.sort_by(f64::total_cmp);
        assert_eq!(delays.len(), m.lat.detection.n, "{who}: {delays:?}");
        assert_eq!(m.lat.detection.p99, delays[delays.len() - 1], "{who}");
        assert_eq!(
            m.lat.detection.p50,
            delays[delays.len().div_ceil(2) - 1],
            "{who}"
        );
        if who == "hybrid" {
            // Half of the default 5 s heartbeat: only the link watch sees all 8 RSTs that
            // fast (a heartbeat finds each loss at a random point of its interval).
            assert!(
                m.lat.detection.p99 < 2.5,
                "{who}: detection p99 {} s",
                m.lat.detection.p99
            );
        }
        assert_eq!(m.lat.recovery.n, 8, "{who}: {:?}", m.lat);
        assert_eq!(m.lat.not_recovered, 0, "{who}");
        assert!(m.all_online_after_last.is_some(), "{who}");
        // Logins at the fleet (warm-up and recovery), within the cap, no lockout.
        assert!(m.logins_at_fleet >= 16, "{who}: {}", m.logins_at_fleet);
        assert!(m.peak_logins_per_s >= 1 && m.peak_concurrent >= 1);
        assert!(m.peak_concurrent <= bench::LOGIN_CAP, "{who}");
        assert_eq!(m.lockouts, 0, "{who}");
        // Logins while the cameras were off: the daemon's counter moved.
        let (rate, hours, n) = m.outage_logins.expect("outage logins");
        assert!(
            n >= 8 && hours > 0.0 && rate > 0.0,
            "{who}: {n} {hours} {rate}"
        );
        // Cost numbers from /proc and the status.
        assert!(m.cpu_secs > 0.0 && m.peak_rss_kib > 1024, "{who}");
        assert!(m.threads.0 > 1 && m.fds.0 > 3, "{who}");
        assert_eq!(m.sdk_handles, (Some(8), Some(8)), "{who}");
        assert!(m.state_writes > 0, "{who}");
        assert_eq!(m.online_end, (8, 8), "{who}");
        assert_eq!(m.stop.0, Some(0), "{who}: exit code after SIGTERM");
        assert_eq!(m.stop.2, 0, "{who}: sessions left at simcam after the stop");
        // The per-run JSON carries the same numbers.
        let v: serde_json::Value = serde_json::from_str(&report::json(f)).expect("JSON");
        assert_eq!(v["strategy"], who.as_str());
        assert_eq!(v["recovery_s"]["n"], 8);
        assert_eq!(v["lockouts"], 0);
    }
    let machine = report::Machine::here("test", "cargo test", 7);
    let svg_doc = svg::storm(&runs).expect("a storm timeline");
    assert!(svg_doc.starts_with("<svg") && svg_doc.trim_end().ends_with("</svg>"));
    assert!(svg_doc.contains(">hybrid<") && svg_doc.contains(">naive<"));
    let md = report::markdown(&runs, &machine, Some("storm.svg"));
    for needle in [
        "# hikwatch benchmark results",
        "on one machine: every figure below is a ratio or a percentile from that single run",
        "## Goals (reported, not asserted)",
        "## storm — 8 cameras off together for 10 s",
        "| hybrid |",
        "| naive |",
        "[storm.svg](storm.svg)",
    ] {
        assert!(
            md.to_lowercase().contains(&needle.to_lowercase()),
            "missing {needle:?} in\n{md}"
        );
    }
    // Every table row has as many cells as its header.
    for table in md.split("\n\n").filter(|t| t.starts_with("| strategy |")) {
        let mut lines = table.lines();
        let cols = lines.next().unwrap().matches('|').count();
        for l in lines {
            assert_eq!(l.matches('|').count(), cols, "{l}");
        }
    }
}
