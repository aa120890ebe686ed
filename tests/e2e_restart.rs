//! End to end: after `kill -9` and a restart the backoff continues. A camera held on a
//! wrong password stays held and makes no new login; a camera the device locked stays
//! locked and gets nothing authenticated (which would renew the lock); a healthy camera
//! simply comes back.
//!
//! The scenario runs with each backend. With the real SDK: x86_64, and aarch64 under
//! qemu-user (see `harness::vendor_sdk`). With the ISAPI backend: every target, armv7
//! under qemu-user too (no vendor SDK). Every step applies to both, except the SDK's
//! release line (no SDK is loaded with ISAPI) and, for ISAPI only, the session the
//! healthy camera held when killed: the state file remembers it and the restart ends it,
//! so the device holds one session, not two.

use std::net::IpAddr;
use std::time::Duration;

use harness::{
    CameraSpec, Daemon, DaemonConfig, SpawnOptions, TempDir, events, target_command, wait_for,
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

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[test]
fn after_kill_9_and_a_restart_hold_and_lock_continue_with_the_sdk() {
    let Some(sdk) = harness::RealSdk::find(env!("CARGO_MANIFEST_DIR")) else {
        return;
    };
    hold_and_lock_continue_after_kill_9(Some(sdk));
}

#[test]
fn after_kill_9_and_a_restart_hold_and_lock_continue_with_isapi() {
    hold_and_lock_continue_after_kill_9(None);
}

/// The scenario, with the real SDK when `sdk` is given, else with the ISAPI backend.
fn hold_and_lock_continue_after_kill_9(sdk: Option<&harness::RealSdk>) {
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
    let (dir, base) = match sdk {
        Some(sdk) => (TempDir::new("e2e-restart"), DaemonConfig::new(&sdk.dir)),
        None => (TempDir::new("e2e-restart-isapi"), DaemonConfig::isapi()),
    };
    let cfg = base
        .set("heartbeat_interval", "\"1s\"")
        .set("slow_backoff_floor", "\"1s\"")
        .set("backoff_cap", "\"3s\"")
        .camera(CameraSpec::of(&a, 0, "held").password("wrong"))
        .camera(CameraSpec::of(&a, 1, "fine"))
        .camera(CameraSpec::of(&b, 0, "locked").password("wrong"));
    let mut d = Daemon::spawn(BIN, &dir, &cfg, SpawnOptions::default());
    if let Some(sdk) = sdk {
        d.assert_sdk_release(sdk, Duration::from_secs(20));
    }
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
        // ISAPI: the healthy camera's session too, so that the restart can end it.
        let session = sdk.is_some() || record(&s, "fine")?["device_session"] == true;
        (held && locked && session).then_some(s)
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
    if sdk.is_none() {
        // The healthy camera's session from before the kill was ended, not left beside
        // the new one.
        let fine = a.camera(1).stats();
        assert_eq!(fine.sessions, 1, "{fine:?}");
        assert!(
            text.contains("fine: ended the device session a previous login left"),
            "{text}"
        );
    }
}
