//! Issue 6.8, end to end: after `kill -9` and a restart the backoff continues. A camera
//! held on a wrong password stays held and makes no new login; a camera the device locked
//! stays locked and gets nothing authenticated (which would renew the lock); a healthy
//! camera simply comes back. With the real SDK: x86_64, and aarch64 under qemu-user (see
//! `harness::vendor_sdk`).
#![cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]

use std::net::IpAddr;
use std::time::Duration;

use harness::{
    CameraSpec, Daemon, DaemonConfig, RealSdk, SpawnOptions, TempDir, events, target_command,
    wait_for,
};
use simcam::{EventKind, Fleet, FleetConfig};

const BIN: &str = env!("CARGO_BIN_EXE_hikwatch");

fn state_show(path: &std::path::Path) -> harness::Value {
    let out = target_command(BIN)
        .args(["state", "show", "--json"])
        .arg(path)
        .output()
        .expect("run hikwatch state show");
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).expect("state show JSON")
}

fn record<'v>(state: &'v harness::Value, id: &str) -> Option<&'v harness::Value> {
    state["cameras"].as_array()?.iter().find(|c| c["id"] == id)
}

#[test]
fn after_kill_9_and_a_restart_hold_and_lock_continue() {
    let Some(sdk) = RealSdk::find(env!("CARGO_MANIFEST_DIR")) else {
        return;
    };
    // Fleet A locks after 3 wrong passwords (the daemon holds before the last try); fleet
    // B after the first, for 10 minutes.
    let a = Fleet::start(FleetConfig {
        cameras: 2,
        threads: 2,
        lockout_threshold: 3,
        ..FleetConfig::default()
    })
    .expect("fleet A");
    let b = Fleet::start(FleetConfig {
        cameras: 1,
        threads: 1,
        lockout_threshold: 1,
        lock_duration: Duration::from_secs(600),
        ..FleetConfig::default()
    })
    .expect("fleet B");
    let dir = TempDir::new("e2e-restart");
    let cfg = DaemonConfig::new(&sdk.dir)
        .set("heartbeat_interval", "\"1s\"")
        .set("slow_backoff_floor", "\"1s\"")
        .set("backoff_cap", "\"3s\"")
        .camera(CameraSpec::of(&a, 0, "held").password("wrong"))
        .camera(CameraSpec::of(&a, 1, "fine"))
        .camera(CameraSpec::of(&b, 0, "locked").password("wrong"));
    let mut d = Daemon::spawn(BIN, &dir, &cfg, SpawnOptions::default());
    d.assert_sdk_release(sdk, Duration::from_secs(20));
    let ok = d.wait_status(Duration::from_secs(60), |v| {
        let st = |id| harness::camera(v, id).map(|c| c["state"].clone());
        st("held") == Some("auth-hold".into())
            && st("locked") == Some("locked".into())
            && st("fine") == Some("online".into())
    });
    assert!(ok.is_some(), "{:?}", d.status());
    // Wait for the state file to say so (written at most every second).
    let on_disk = wait_for(Duration::from_secs(10), Duration::from_millis(200), || {
        let s = state_show(d.state_path());
        let held = record(&s, "held")?["auth_hold"] == true;
        let locked = record(&s, "locked")?["lock_left_ms"].as_u64()? > 500_000;
        (held && locked).then_some(s)
    });
    assert!(on_disk.is_some(), "{}", state_show(d.state_path()));
    let bad_before = a.camera(0).stats().logins_bad;
    let lock_before = b
        .camera(0)
        .lock_remaining(IpAddr::from([127, 0, 0, 1]))
        .expect("camera B locked us");

    d.kill9();
    let seq_a = a.next_seq();
    let seq_b = b.next_seq();
    let d = Daemon::spawn_with_config(
        BIN,
        &dir,
        &dir.join("hikwatch.toml"),
        SpawnOptions::default(),
    );
    assert!(
        d.wait_states(Duration::from_secs(20), &["fine"], "online")
            .is_some(),
        "{:?}",
        d.status()
    );
    // Longer than start_spread (1 s) and the backoff cap (3 s): anything that was going to
    // be retried would have been by now.
    std::thread::sleep(Duration::from_secs(5));
    let v = d.status().expect("status");
    let held = harness::camera(&v, "held").expect("held");
    let locked = harness::camera(&v, "locked").expect("locked");
    assert_eq!(held["state"], "auth-hold", "{v}");
    assert_eq!(locked["state"], "locked", "{v}");
    // The lock's end is still about ten minutes away.
    let next = locked["next_attempt"].as_u64().expect("lock end");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(next > now + 500, "lock ends at {next}, now {now}");
    // Nothing authenticated reached either camera after the restart.
    let la = a.events_since(seq_a);
    let lb = b.events_since(seq_b);
    assert_eq!(events::login_attempts(&la, 0), 0, "held camera logged in");
    assert_eq!(events::login_attempts(&lb, 0), 0, "locked camera logged in");
    assert_eq!(events::count(&lb, 0, EventKind::LoginLocked), 0);
    assert_eq!(a.camera(0).stats().logins_bad, bad_before);
    // The lock was not renewed (it only runs down).
    let lock_after = b
        .camera(0)
        .lock_remaining(IpAddr::from([127, 0, 0, 1]))
        .expect("still locked");
    assert!(
        lock_after < lock_before,
        "{lock_after:?} vs {lock_before:?}"
    );
    eprintln!(
        "after kill -9: held camera still held ({} wrong logins in total), locked camera \
         still locked ({} s left at the device), no login attempt to either",
        a.camera(0).stats().logins_bad,
        lock_after.as_secs()
    );
    let text = d.log_text();
    assert!(
        text.contains("held: restored auth-hold from the state file"),
        "{text}"
    );
    assert!(
        text.contains("locked: restored device lock from the state file"),
        "{text}"
    );
}
