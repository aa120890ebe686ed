//! Issue 6.8, end to end: the real `hikwatch` binary, the real SDK, simcam and a fake
//! systemd. Start, READY, everything online (`hikwatch status --json`), a SIGHUP that adds
//! and removes cameras without touching the others, and SIGTERM logging every camera
//! out with the state flushed. On x86_64 and, under qemu-user, on aarch64 with the vendor's
//! aarch64 SDK (see `harness::vendor_sdk`; skipped when that is not beside the repository).
#![cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]

use std::time::Duration;

use harness::{
    CameraSpec, Daemon, DaemonConfig, RealSdk, Signal, SpawnOptions, TempDir, events,
    target_command,
};
use simcam::{EventKind, Fleet, FleetConfig};

const BIN: &str = env!("CARGO_BIN_EXE_hikwatch");

fn fleet(cameras: usize) -> Fleet {
    Fleet::start(FleetConfig {
        cameras,
        threads: 2,
        ..FleetConfig::default()
    })
    .expect("simcam fleet")
}

fn real() -> Option<&'static RealSdk> {
    RealSdk::find(env!("CARGO_MANIFEST_DIR"))
}

fn base(sdk: &RealSdk) -> DaemonConfig {
    DaemonConfig::new(&sdk.dir).set("heartbeat_interval", "\"1s\"")
}

/// `hikwatch state show FILE --json`, parsed.
fn state_show(path: &std::path::Path) -> harness::Value {
    let out = target_command(BIN)
        .args(["state", "show", "--json"])
        .arg(path)
        .output()
        .expect("run hikwatch state show");
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).expect("state show JSON")
}

fn state_ids(v: &harness::Value) -> Vec<String> {
    let mut ids: Vec<String> = v["cameras"]
        .as_array()
        .expect("cameras")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_string())
        .collect();
    ids.sort();
    ids
}

#[test]
fn start_ready_online_reload_then_sigterm_logs_everything_out() {
    let Some(sdk) = real() else { return };
    let f = fleet(4);
    let dir = TempDir::new("e2e-life");
    // A long flush interval: after the first write at start, only the final flush at
    // SIGTERM can record the cameras the reload added and removed.
    let mut cfg = base(sdk);
    cfg.flush_interval = "1h".into();
    for (i, id) in ["gate", "lobby", "yard"].iter().enumerate() {
        cfg = cfg.camera(CameraSpec::of(&f, i, id));
    }
    let mut d = Daemon::spawn(
        BIN,
        &dir,
        &cfg,
        SpawnOptions {
            notify: true,
            ..SpawnOptions::default()
        },
    );
    d.assert_sdk_release(sdk, Duration::from_secs(20));
    let sd = d.systemd();
    let (_, _, ready) = sd
        .wait(0, Duration::from_secs(20), |m| m.contains("READY=1"))
        .expect("READY=1");
    assert!(ready.contains("STATUS="), "{ready}");
    // READY comes after the SDK and the state file were loaded.
    let text = d.log_text();
    assert!(text.contains("sdk: loaded HCNetSDK"), "{text}");

    // Everything online, as `hikwatch status -c FILE --json` shows it.
    assert!(
        d.wait_states(
            Duration::from_secs(20),
            &["gate", "lobby", "yard"],
            "online"
        )
        .is_some(),
        "{:?}",
        d.status()
    );
    let (code, out) = d.status_cli();
    assert_eq!(code, Some(0), "{out}");
    let v: harness::Value = serde_json::from_str(&out).expect("status --json");
    let states: Vec<&str> = v["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["online", "online", "online"], "{v}");
    assert!(
        sd.wait(0, Duration::from_secs(5), |m| m == "STATUS=3/3 online")
            .is_some(),
        "{:?}",
        sd.messages()
    );
    let first_state = state_show(d.state_path());
    assert_eq!(state_ids(&first_state), ["gate", "lobby", "yard"]);

    // SIGHUP: "yard" removed, "door" (camera 3) added, "gate" and "lobby" unchanged.
    let seq = f.next_seq();
    let before: Vec<Vec<String>> = (0..2)
        .map(|i| events::sessions(&f.events_since(0), i))
        .collect();
    let mut cfg2 = base(sdk);
    cfg2.flush_interval = "1h".into();
    for (i, id) in [(0, "gate"), (1, "lobby"), (3, "door")] {
        cfg2 = cfg2.camera(CameraSpec::of(&f, i, id));
    }
    cfg2.write(&dir);
    let mark = sd.len();
    d.signal(Signal::SIGHUP);
    let (i, _, _) = sd
        .wait(mark, Duration::from_secs(10), |m| {
            m.starts_with("RELOADING=1")
        })
        .expect("RELOADING=1");
    sd.wait(i + 1, Duration::from_secs(10), |m| m.contains("READY=1"))
        .expect("READY=1 after the reload");
    assert!(
        d.wait_states(
            Duration::from_secs(20),
            &["gate", "lobby", "door"],
            "online"
        )
        .is_some(),
        "{:?}",
        d.status()
    );
    let v = d.status().unwrap();
    assert!(harness::camera(&v, "yard").is_none(), "{v}");
    // The removed camera was logged out at simcam.
    assert!(
        f.camera(2)
            .wait_event(seq, EventKind::Logout, Duration::from_secs(10))
            .is_some(),
        "yard not logged out"
    );
    assert_eq!(f.camera(2).stats().sessions, 0);
    // The unchanged ones kept their session: no new login, heartbeats on the old one.
    std::thread::sleep(Duration::from_secs(2));
    let log = f.events_since(seq);
    for (i, sessions_before) in before.iter().enumerate() {
        assert_eq!(
            events::login_attempts(&log, i),
            0,
            "camera {i} logged in again"
        );
        assert_eq!(
            events::count(&log, i, EventKind::Logout),
            0,
            "camera {i} logged out"
        );
        let hb = events::heartbeat_sessions(&log, i);
        assert!(!hb.is_empty(), "camera {i}: no heartbeat after the reload");
        assert!(
            hb.iter().all(|s| sessions_before.contains(s)),
            "camera {i}: heartbeats on a new session {hb:?} (before: {sessions_before:?})"
        );
    }

    // SIGTERM: STOPPING=1, every camera logged out, state flushed, exit 0.
    let mark = sd.len();
    let seq = f.next_seq();
    d.signal(Signal::SIGTERM);
    let status = d.wait_exit(Duration::from_secs(25)).expect("exit");
    assert_eq!(status.code(), Some(0), "{}", d.log_text());
    assert!(
        sd.wait(mark, Duration::from_secs(1), |m| m.contains("STOPPING=1"))
            .is_some(),
        "{:?}",
        sd.messages()
    );
    let log = f.events_since(seq);
    for i in [0, 1, 3] {
        assert_eq!(events::count(&log, i, EventKind::Logout), 1, "camera {i}");
        assert_eq!(f.camera(i).stats().sessions, 0, "camera {i}");
    }
    // The final flush recorded the reload (the periodic one would wait an hour).
    let last_state = state_show(d.state_path());
    assert_eq!(state_ids(&last_state), ["door", "gate", "lobby"]);
    assert!(
        !dir.join("status.sock").exists(),
        "status socket left behind"
    );
}

/// SIGINT is a graceful stop too; and the hardware watchdog (a plain file standing in
/// for `/dev/watchdog0`) gets keepalives while the daemon runs and the magic close `V`
/// on the clean stop.
#[test]
fn sigint_stops_gracefully_with_the_hardware_watchdog_closed() {
    let Some(sdk) = real() else { return };
    let f = fleet(1);
    let dir = TempDir::new("e2e-int");
    let hw = dir.write("watchdog0", "");
    let mut cfg = base(sdk).camera(CameraSpec::of(&f, 0, "gate"));
    cfg.extra = format!(
        "[watchdog]\ndevice = {:?}\nkeepalive = \"1s\"\n",
        hw.display().to_string()
    );
    let mut d = Daemon::spawn(BIN, &dir, &cfg, SpawnOptions::default());
    d.assert_sdk_release(sdk, Duration::from_secs(20));
    assert!(
        d.wait_states(Duration::from_secs(20), &["gate"], "online")
            .is_some()
    );
    std::thread::sleep(Duration::from_millis(2500));
    let seq = f.next_seq();
    d.signal(Signal::SIGINT);
    assert_eq!(
        d.wait_exit(Duration::from_secs(25)).and_then(|s| s.code()),
        Some(0)
    );
    assert_eq!(events::count(&f.events_since(seq), 0, EventKind::Logout), 1);
    let written = std::fs::read(&hw).unwrap();
    assert!(written.len() >= 3, "keepalives: {written:?}");
    assert_eq!(written.last(), Some(&b'V'), "no magic close: {written:?}");
    assert!(written[..written.len() - 1].iter().all(|&b| b != b'V'));
}
