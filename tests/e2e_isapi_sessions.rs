//! End to end: the ISAPI backend remembers the device session each login holds in the
//! state file and ends it after a restart, so a daemon killed with `kill -9` (a watchdog
//! abort, a power loss) never piles up sessions at the camera. simcam's sessions here
//! never expire on their own: every session left behind and not ended would still count.
//! No vendor SDK: runs on every target (armv7 and aarch64 under qemu too).
//!
//! `HIKWATCH_KILL_LOOPS` sets how many `kill -9` rounds (5 by default).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use harness::{CameraSpec, Daemon, DaemonConfig, SpawnOptions, TempDir, events, target_command};
use simcam::{EventKind, Fleet, FleetConfig};

const BIN: &str = env!("CARGO_BIN_EXE_hikwatch");
const IDS: [&str; 3] = ["c0", "c1", "c2"];
/// The config's `[state] flush_interval`.
const FLUSH: Duration = Duration::from_secs(1);

/// A config with `ids` on the ISAPI backend (fleet cameras in order), flushing the state
/// file every second.
fn isapi_config(dir: &TempDir, fleet: &Fleet, ids: &[&str]) -> PathBuf {
    // No camera uses the SDK: `[sdk] dir` is not checked.
    let mut cfg =
        DaemonConfig::new(Path::new("/nonexistent-sdk")).set("heartbeat_interval", "\"1s\"");
    cfg.flush_interval = "1s".into();
    for (i, id) in ids.iter().enumerate() {
        cfg = cfg.camera(CameraSpec::of(fleet, i, id));
    }
    let config = cfg.write(dir);
    let text = std::fs::read_to_string(&config).expect("read config");
    std::fs::write(&config, format!("backend = \"isapi\"\n{text}")).expect("write config");
    config
}

/// Whether the state file remembers a device session for every camera of `ids`.
fn remembered(path: &Path, ids: &[&str]) -> bool {
    let out = target_command(BIN)
        .args(["state", "show", "--json"])
        .arg(path)
        .output()
        .expect("run hikwatch state show");
    let Ok(v) = serde_json::from_slice::<harness::Value>(&out.stdout) else {
        return false;
    };
    ids.iter().all(|id| {
        v["cameras"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["id"] == *id))
            .is_some_and(|c| c["device_session"] == true)
    })
}

/// Waits (longer than the flush interval, then until `state show` says so) for the state
/// file to remember a session of every camera of `ids` (`want`), or of none of them.
fn state_file_says(d: &Daemon, ids: &[&str], want: bool) -> bool {
    std::thread::sleep(FLUSH + Duration::from_millis(500));
    harness::wait_for(Duration::from_secs(20), Duration::from_millis(200), || {
        let all = remembered(d.state_path(), ids);
        let none = ids.iter().all(|id| !remembered(d.state_path(), &[id]));
        (if want { all } else { none }).then_some(())
    })
    .is_some()
}

#[test]
fn a_kill_9_loop_never_piles_up_sessions_at_the_camera() {
    let rounds: usize = std::env::var("HIKWATCH_KILL_LOOPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let fleet = Fleet::start(FleetConfig {
        cameras: IDS.len(),
        threads: 2,
        ..FleetConfig::default()
    })
    .expect("simcam");
    assert_eq!(fleet.config().session_idle_timeout, None);
    let dir = TempDir::new("e2e-isapi-sessions");
    let config = isapi_config(&dir, &fleet, &IDS);

    // The session each camera held when the daemon was killed.
    let mut left: Vec<Option<String>> = vec![None; IDS.len()];
    for round in 0..=rounds {
        let seq = fleet.next_seq();
        let mut d = Daemon::spawn_with_config(BIN, &dir, &config, SpawnOptions::default());
        assert!(
            d.wait_states(Duration::from_secs(60), &IDS, "online")
                .is_some(),
            "round {round}: {:?}",
            d.status()
        );
        let evs = fleet.events_since(seq);
        for (i, id) in IDS.iter().enumerate() {
            // Never two at once: the left session is ended in the login call itself,
            // before the new login, on the camera's serial lane.
            let st = fleet.camera(i).stats();
            assert_eq!(st.sessions, 1, "round {round}, {id}: {st:?}");
            assert_eq!(st.sessions_hwm, 1, "round {round}, {id}: {st:?}");
            let Some(old) = &left[i] else { continue };
            // The session the killed run held was logged out, before the new login.
            let pos = |kind: EventKind, detail: &str| {
                evs.iter()
                    .position(|e| e.camera == i && e.kind == kind && e.detail == detail)
            };
            let ended = pos(EventKind::Logout, old);
            let new = events::sessions(&evs, i);
            assert!(
                ended.is_some(),
                "round {round}, {id}: {old} not ended: {evs:?}"
            );
            let new_login = new.first().and_then(|s| pos(EventKind::LoginOk, s));
            assert!(ended < new_login, "round {round}, {id}: {evs:?}");
        }
        if round > 0 {
            let log = d.log_text();
            for id in IDS {
                assert!(
                    log.contains(&format!(
                        "{id}: ended the device session a previous login left"
                    )),
                    "round {round}: {log}"
                );
            }
        }
        if round == rounds {
            eprintln!(
                "{rounds} kill -9 rounds: each left session ended before the next login; \
                 sessions now {:?}, most at once {:?}",
                (0..IDS.len())
                    .map(|i| fleet.camera(i).stats().sessions)
                    .collect::<Vec<_>>(),
                (0..IDS.len())
                    .map(|i| fleet.camera(i).stats().sessions_hwm)
                    .collect::<Vec<_>>(),
            );
            break;
        }
        // The state file must hold the sessions before the kill: longer than the flush
        // interval, then until `state show` says so.
        assert!(
            state_file_says(&d, &IDS, true),
            "round {round}: state file without the sessions"
        );
        let evs = fleet.events_since(seq);
        for (i, slot) in left.iter_mut().enumerate() {
            *slot = events::sessions(&evs, i).last().cloned();
            assert!(slot.is_some(), "round {round}: camera {i} has no session");
        }
        d.kill9();
    }
}

/// One simcam camera `c0` and an ISAPI config for it (in a new folder named after `name`),
/// whose state file holds the camera in auth-hold with the session of its last good login
/// still remembered and still live at simcam, and whose password at the device changed
/// meanwhile (a login would fail and count toward its lock).
fn held_with_left_session(name: &str) -> (Fleet, TempDir, PathBuf) {
    let fleet = Fleet::start(FleetConfig {
        cameras: 1,
        threads: 1,
        ..FleetConfig::default()
    })
    .expect("simcam");
    let dir = TempDir::new(name);
    let config = isapi_config(&dir, &fleet, &["c0"]);

    // A run logs in and is killed with its session remembered in the state file.
    let mut d = Daemon::spawn_with_config(BIN, &dir, &config, SpawnOptions::default());
    assert!(
        d.wait_states(Duration::from_secs(60), &["c0"], "online")
            .is_some(),
        "{:?}",
        d.status()
    );
    assert!(
        state_file_says(&d, &["c0"], true),
        "state file without the session"
    );
    d.kill9();
    let state = d.state_path().to_path_buf();
    drop(d);

    // The camera is in auth-hold in that file. A run does not reach this by itself (a
    // login ends the left session before it can fail), so the file is written here with
    // the store's own API: the hold of a camera whose password changed at the device,
    // with the session of its last good login still remembered.
    let (user, password) = (&fleet.config().user, &fleet.config().password);
    let key = hikwatch::store::CameraKey {
        id: "c0",
        user,
        password: password.as_bytes(),
    };
    let now = Instant::now();
    let (mut store, loaded) = hikwatch::store::Store::open(
        &state,
        hikwatch::store::StoreOptions::default(),
        &[key],
        now,
    );
    assert!(store.device_session("c0").is_some());
    let mut held = loaded.cameras[0].state.clone();
    held.auth_hold = true;
    held.next_due_in = None;
    held.last_error = Some(hikwatch::store::StoredError::new(
        hikwatch::backend::ErrorClass::Auth { retries_left: None },
        0,
    ));
    store.update("c0", &held, now).expect("update");
    store.flush(now).expect("write the state file");
    drop(store);
    fleet.camera(0).set_password("changed-at-the-device");
    (fleet, dir, config)
}

#[test]
fn a_camera_restored_in_auth_hold_ends_its_left_session_without_a_login() {
    let (fleet, dir, config) = held_with_left_session("e2e-isapi-hold-session");
    let before = fleet.camera(0).stats();
    assert_eq!(before.sessions, 1, "{before:?}");

    let d = Daemon::spawn_with_config(BIN, &dir, &config, SpawnOptions::default());
    assert!(
        d.wait_states(Duration::from_secs(60), &["c0"], "auth-hold")
            .is_some(),
        "{:?}",
        d.status()
    );
    let ended = harness::wait_for(Duration::from_secs(30), Duration::from_millis(100), || {
        (fleet.camera(0).stats().sessions == 0).then_some(())
    });
    let after = fleet.camera(0).stats();
    assert!(
        ended.is_some(),
        "the left session is still there: {after:?}"
    );
    assert_eq!(after.logouts, before.logouts + 1, "{after:?}");
    let attempts = |s: &simcam::CameraStats| {
        s.logins_ok + s.logins_bad + s.logins_locked + s.logins_rejected_limit + s.logins_stale
    };
    assert_eq!(attempts(&after), attempts(&before), "no login: {after:?}");
    let status = d.status().expect("status");
    assert_eq!(
        harness::camera(&status, "c0").map(|c| c["state"].clone()),
        Some("auth-hold".into())
    );
    // Forgotten once ended: the state file no longer remembers it.
    assert!(
        state_file_says(&d, &["c0"], false),
        "still remembered: {}",
        d.log_text()
    );
    assert!(
        d.log_text()
            .contains("c0: ended the device session a previous login left"),
        "{}",
        d.log_text()
    );
}

/// The left session of a held camera that could not be reached at start (every connection
/// closed at once) stays remembered, and the sweep ends it once the camera answers again:
/// without a login, while the camera stays in auth-hold. Debug builds only: the sweep runs
/// every minute, `HIKWATCH_TEST_LEFT_SWEEP_MS` shortens it.
#[test]
fn an_unreachable_held_cameras_left_session_is_ended_by_the_sweep_once_it_answers() {
    let (fleet, dir, config) = held_with_left_session("e2e-isapi-hold-sweep");
    let cam = fleet.camera(0);
    cam.set_accept_close(true);
    let before = cam.stats();
    assert_eq!(before.sessions, 1, "{before:?}");

    let options = SpawnOptions {
        env: vec![("HIKWATCH_TEST_LEFT_SWEEP_MS".into(), "1500".into())],
        ..SpawnOptions::default()
    };
    let d = Daemon::spawn_with_config(BIN, &dir, &config, options);
    assert!(
        d.wait_states(Duration::from_secs(60), &["c0"], "auth-hold")
            .is_some(),
        "{:?}",
        d.status()
    );
    // The start's try and at least one sweep reached the camera and were closed.
    let tried = harness::wait_for(Duration::from_secs(30), Duration::from_millis(100), || {
        (cam.stats().accepted >= before.accepted + 2).then_some(())
    });
    assert!(
        tried.is_some(),
        "no try reached the camera: {:?}",
        cam.stats()
    );
    assert_eq!(cam.stats().sessions, 1, "{:?}", cam.stats());
    assert!(
        state_file_says(&d, &["c0"], true),
        "forgotten without being ended: {}",
        d.log_text()
    );

    cam.set_accept_close(false);
    let ended = harness::wait_for(Duration::from_secs(30), Duration::from_millis(100), || {
        (cam.stats().sessions == 0).then_some(())
    });
    let after = cam.stats();
    assert!(
        ended.is_some(),
        "the left session is still there: {after:?}\n{}",
        d.log_text()
    );
    assert_eq!(after.logouts, before.logouts + 1, "{after:?}");
    assert_eq!(
        after.logins_ok + after.logins_bad + after.logins_locked,
        before.logins_ok + before.logins_bad + before.logins_locked,
        "no login: {after:?}"
    );
    let status = d.status().expect("status");
    assert_eq!(
        harness::camera(&status, "c0").map(|c| c["state"].clone()),
        Some("auth-hold".into())
    );
}
