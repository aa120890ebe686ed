//! The runtime in-process with the ISAPI backend against simcam: no vendor SDK anywhere,
//! so these run on every target (armv7 and aarch64 under qemu too). Set
//! `HIKWATCH_TEST_LOG=1` to see the daemon's log.

mod inproc;

use std::path::Path;
use std::time::{Duration, Instant};

use hikwatch::config::{BackendKind, Config, LoadOptions};
use inproc::{Run, TempDir, WAIT, serial};
use simcam::{Fleet, FleetConfig};

/// A config with every camera of `fleet` on the ISAPI backend; `passwords[i]` for camera
/// `i` (the fleet's own password when missing).
fn config(dir: &Path, fleet: &Fleet, supervisor: &str, passwords: &[&str]) -> Config {
    let mut text = format!(
        "backend = \"isapi\"\n[state]\npath = {:?}\nflush_interval = \"1s\"\n[status]\nsocket = {:?}\n\
         [supervisor]\nstart_spread = \"200ms\"\nheartbeat_interval = \"1s\"\n{supervisor}\n\
         [log]\nrepeat_window = \"1s\"\n",
        dir.join("state.bin").display().to_string(),
        dir.join("status.sock").display().to_string(),
    );
    for (i, addr) in fleet.addrs().iter().enumerate() {
        text.push_str(&format!(
            "[[camera]]\nid = \"c{i}\"\nhost = \"{}\"\nport = {}\nuser = \"admin\"\npassword = \"{}\"\n",
            addr.ip(),
            addr.port(),
            passwords.get(i).copied().unwrap_or("hik12345"),
        ));
    }
    let path = dir.join("hikwatch.toml");
    std::fs::write(&path, &text).expect("write config");
    let c = Config::from_text(&text, &path, &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{e}"))
        .config;
    assert!(c.cameras.iter().all(|c| c.backend == BackendKind::Isapi));
    c
}

fn fleet(cameras: usize) -> Fleet {
    Fleet::start(FleetConfig {
        cameras,
        lockout_threshold: 3,
        ..FleetConfig::default()
    })
    .expect("simcam")
}

/// Waits until `pred` holds for simcam's counters.
fn wait_for(what: &str, mut pred: impl FnMut() -> bool) {
    let end = Instant::now() + WAIT;
    while !pred() {
        assert!(Instant::now() < end, "{what}: not within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn online_power_off_recovered_and_a_clean_stop_logs_out_with_the_default_strategy() {
    let _g = serial();
    let dir = TempDir::new("rti-hybrid");
    let f = fleet(2);
    let run = Run::start(config(&dir.0, &f, "", &[]));
    run.wait_state("c0", "online");
    run.wait_state("c1", "online");
    let status = run.status().expect("status");
    assert!(status["sdk"].is_null(), "no SDK loaded: {status}");
    assert_eq!(status["cameras"][0]["backend"], "isapi", "{status}");

    // Power off: the event stream ends, the confirming heartbeat fails, the camera is down;
    // back on, it logs in again.
    assert!(f.camera(0).power_off());
    run.wait_camera("c0", "down after the power-off", |c| c["state"] != "online");
    f.camera(0).power_on().expect("power on");
    run.wait_camera("c0", "online again", |c| {
        c["state"] == "online" && c["reconnects"].as_u64() >= Some(1)
    });
    assert_eq!(run.camera("c1").expect("c1")["state"], "online");

    let summary = run.stop();
    assert!(summary.clean, "{summary:?}");
    for i in 0..2 {
        let st = f.camera(i).stats();
        assert_eq!(
            st.sessions, 0,
            "camera {i}: a session left at the camera: {st:?}"
        );
        assert!(st.logouts >= 1, "camera {i}: {st:?}");
    }
}

#[test]
fn a_wrong_password_never_locks_the_camera() {
    let _g = serial();
    let dir = TempDir::new("rti-badpass");
    let f = fleet(1);
    let run = Run::start(config(&dir.0, &f, "", &["wrong-password"]));
    run.wait_state("c0", "auth-hold");
    // Well past several backoff rounds: the hold stays, no further logins.
    std::thread::sleep(Duration::from_secs(3));
    let c = run.camera("c0").expect("c0");
    assert_eq!(c["state"], "auth-hold", "{c}");
    let st = f.camera(0).stats();
    assert!(st.logins_bad < 3, "{st:?}");
    assert_eq!(st.logins_locked, 0, "{st:?}");
    assert!(run.stop().clean);
}

#[test]
fn the_other_strategies_log_in_and_log_out_with_the_isapi_backend() {
    for strategy in ["poll", "event", "queue"] {
        let _g = serial();
        let dir = TempDir::new(&format!("rti-{strategy}"));
        let f = fleet(2);
        let run = Run::start(config(
            &dir.0,
            &f,
            &format!("strategy = \"{strategy}\""),
            &[],
        ));
        run.wait_state("c0", "online");
        run.wait_state("c1", "online");
        let summary = run.stop();
        assert!(summary.clean, "{strategy}: {summary:?}");
        wait_for("sessions logged out", || {
            (0..2).all(|i| f.camera(i).stats().sessions == 0)
        });
    }
}

#[test]
fn every_other_strategy_detects_a_power_off_and_recovers() {
    // poll by its heartbeat; event and queue by the event stream standing in for the SDK's
    // own keepalive (they act on exceptions only).
    for strategy in ["poll", "event", "queue"] {
        let _g = serial();
        let dir = TempDir::new(&format!("rti-{strategy}-off"));
        let f = fleet(1);
        let run = Run::start(config(
            &dir.0,
            &f,
            &format!("strategy = \"{strategy}\"\nbackoff_initial = \"1s\""),
            &[],
        ));
        run.wait_state("c0", "online");
        assert!(f.camera(0).power_off());
        run.wait_camera(
            "c0",
            &format!("{strategy}: down after the power-off"),
            |c| c["state"] != "online",
        );
        f.camera(0).power_on().expect("power on");
        run.wait_camera("c0", &format!("{strategy}: online again"), |c| {
            c["state"] == "online" && c["reconnects"].as_u64() >= Some(1)
        });
        assert!(run.stop().clean, "{strategy}");
    }
}
