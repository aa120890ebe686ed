//! Issue 6.8, end to end: `WATCHDOG=1` pings flow while the supervisor loop works and
//! stop when it stalls, whether the loop itself hangs (the executor still runs the
//! watchdog task, which sees no progress) or the whole executor thread is blocked.
//!
//! The stall comes from the test-only hook `HIKWATCH_TEST_STALL` (compiled into debug
//! builds only; see `src/runtime/hook.rs` for why). x86_64 only (spawns the host binary
//! with the real SDK).
#![cfg(target_arch = "x86_64")]

use std::time::{Duration, SystemTime};

use harness::{CameraSpec, Daemon, DaemonConfig, SpawnOptions, TempDir, secs};
use simcam::{Fleet, FleetConfig};

const BIN: &str = env!("CARGO_BIN_EXE_hikwatch");

fn stalls(mode: &str) {
    let Some(sdk) = harness::RealSdk::find(env!("CARGO_MANIFEST_DIR")) else {
        return;
    };
    let f = Fleet::start(FleetConfig {
        cameras: 1,
        ..FleetConfig::default()
    })
    .expect("fleet");
    let dir = TempDir::new(&format!("e2e-wd-{mode}"));
    let cfg = DaemonConfig::new(&sdk.dir)
        .set("heartbeat_interval", "\"1s\"")
        .camera(CameraSpec::of(&f, 0, "gate"));
    // WatchdogSec=2s: a ping is due every second.
    let d = Daemon::spawn(
        BIN,
        &dir,
        &cfg,
        SpawnOptions {
            notify: true,
            watchdog: Some(Duration::from_secs(2)),
            env: vec![("HIKWATCH_TEST_STALL".into(), format!("{mode}:4000"))],
        },
    );
    d.assert_sdk_release(sdk, Duration::from_secs(20));
    let sd = d.systemd();
    sd.wait(0, Duration::from_secs(20), |m| m.contains("READY=1"))
        .expect("READY=1");
    let hook = d
        .wait_log(
            0,
            Duration::from_secs(20),
            "test hook HIKWATCH_TEST_STALL: stalling",
        )
        .unwrap_or_else(|| {
            panic!(
                "the stall hook did not fire: it exists only in debug builds (run the tests \
                 without --release)\n{}",
                d.log_text()
            )
        });
    let pings_before: Vec<SystemTime> = sd
        .messages()
        .into_iter()
        .filter(|(at, m)| m == "WATCHDOG=1" && *at <= hook.at)
        .map(|(at, _)| at)
        .collect();
    // Pings flowed while the loop worked (about one per second for ~4 s).
    assert!(pings_before.len() >= 2, "{:?}", sd.messages());
    // Then they stop: none later than one period after the stall, for 4 s (twice
    // WatchdogSec, after which systemd would have killed us).
    std::thread::sleep(Duration::from_secs(5));
    let late: Vec<f64> = sd
        .messages()
        .into_iter()
        .filter(|(at, m)| m == "WATCHDOG=1" && *at > hook.at)
        .map(|(at, _)| secs(hook.at, at))
        .collect();
    assert!(
        late.iter().all(|&t| t < 1.1),
        "{mode}: pings continued after the stall at +{late:?} s"
    );
    eprintln!(
        "{mode} stall: {} pings before, {} within one period after, none later",
        pings_before.len(),
        late.len()
    );
    match mode {
        // The executor is alive: the watchdog task says why it withholds the ping, and
        // the status socket still answers.
        "loop" => {
            assert!(
                d.wait_log(0, Duration::from_secs(1), "no supervisor progress")
                    .is_some(),
                "{}",
                d.log_text()
            );
            assert!(d.status().is_ok());
        }
        // Nothing runs at all: not even the status socket answers.
        _ => assert!(d.status().is_err()),
    }
}

#[test]
fn pings_stop_when_the_supervisor_loop_hangs() {
    stalls("loop");
}

#[test]
fn pings_stop_when_the_executor_thread_is_blocked() {
    stalls("block");
}
