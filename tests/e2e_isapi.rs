//! End to end with the ISAPI backend: the real `hikwatch run` binary, simcam and a fake
//! systemd, and no vendor SDK anywhere (no `[sdk]` table in the config). For every
//! strategy: start, READY, every camera online, a wrong password held without ever
//! locking the camera, a power-off detected and recovered, a SIGHUP that removes one
//! camera and adds another, and SIGTERM logging every camera out. No SDK is needed, so
//! these run on every target: armv7 and aarch64 under qemu-user too.

use std::time::Duration;

use harness::{
    CameraSpec, Daemon, DaemonConfig, Signal, SpawnOptions, TempDir, events, patient, wait_for,
};
use simcam::{EventKind, Fleet, FleetConfig};

const BIN: &str = env!("CARGO_BIN_EXE_hikwatch");

/// Ids of the cameras at start (simcam cameras 0..=3); `late` (camera 4) comes with the
/// reload, which removes `gone` (camera 2).
const START: [&str; 4] = ["gate", "yard", "gone", "badpw"];
const LATE: usize = 4;
/// simcam locks a client out after this many wrong passwords.
const LOCKOUT: u32 = 3;

/// The config for `strategy` with cameras `ids` (camera `i` of the fleet for `ids[i]`,
/// camera 4 for `late`); `badpw` gets a wrong password. With `per_camera`, every camera
/// names `backend = "isapi"` itself and the file keeps the default (the SDK).
fn config(f: &Fleet, strategy: &str, per_camera: bool, ids: &[(usize, &str)]) -> DaemonConfig {
    let mut cfg = DaemonConfig::isapi()
        .set("strategy", &format!("{strategy:?}"))
        .set("start_spread", "\"300ms\"")
        .set("heartbeat_interval", "\"1s\"")
        .set("backoff_initial", "\"1s\"")
        .set("backoff_cap", "\"3s\"")
        .set("slow_backoff_floor", "\"1s\"");
    if per_camera {
        cfg.backend = None;
    }
    for &(i, id) in ids {
        let mut c = CameraSpec::of(f, i, id);
        if id == "badpw" {
            c = c.password("wrong-password");
        }
        cfg = cfg.camera(c);
        if per_camera {
            cfg = cfg.camera_backend(id, "isapi");
        }
    }
    cfg
}

fn scenario(strategy: &str, per_camera: bool) {
    let f = Fleet::start(FleetConfig {
        cameras: 5,
        threads: 2,
        lockout_threshold: LOCKOUT,
        ..FleetConfig::default()
    })
    .expect("simcam fleet");
    let dir = TempDir::new(&format!("e2e-isapi-{strategy}"));
    let start: Vec<(usize, &str)> = START.iter().copied().enumerate().collect();
    let cfg = config(&f, strategy, per_camera, &start);
    let text = cfg.toml(&dir);
    assert!(!text.contains("[sdk]"), "{text}");
    let mut d = Daemon::spawn(
        BIN,
        &dir,
        &cfg,
        SpawnOptions {
            notify: true,
            ..SpawnOptions::default()
        },
    );
    let sd = d.systemd();
    sd.wait(0, Duration::from_secs(20), |m| m.contains("READY=1"))
        .expect("READY=1");

    // Everything online, the wrong password held; no SDK loaded.
    let v = d
        .wait_status(Duration::from_secs(20), |v| {
            let st = |id| harness::camera(v, id).map(|c| c["state"].clone());
            ["gate", "yard", "gone"]
                .iter()
                .all(|id| st(id) == Some("online".into()))
                && st("badpw") == Some("auth-hold".into())
        })
        .unwrap_or_else(|| panic!("{strategy}: not all online: {:?}", d.status()));
    assert!(v["sdk"].is_null(), "{strategy}: an SDK in the status: {v}");
    for c in v["cameras"].as_array().expect("cameras") {
        assert_eq!(c["backend"], "isapi", "{strategy}: {c}");
    }
    assert!(
        !d.log_text().contains("HCNetSDK"),
        "{strategy}: the SDK was loaded:\n{}",
        d.log_text()
    );

    // Power off: detected, and back online once the camera is on again.
    assert!(f.camera(1).power_off());
    assert!(
        d.wait_status(Duration::from_secs(20), |v| {
            harness::camera(v, "yard").is_some_and(|c| c["state"] != "online")
        })
        .is_some(),
        "{strategy}: power-off not detected: {:?}",
        d.status()
    );
    f.camera(1).power_on().expect("power on");
    assert!(
        d.wait_status(Duration::from_secs(20), |v| {
            harness::camera(v, "yard")
                .is_some_and(|c| c["state"] == "online" && c["reconnects"].as_u64() >= Some(1))
        })
        .is_some(),
        "{strategy}: not recovered: {:?}",
        d.status()
    );

    // SIGHUP: "gone" removed, "late" added, the others keep their sessions.
    let seq = f.next_seq();
    let mut reload: Vec<(usize, &str)> = start.iter().copied().filter(|c| c.1 != "gone").collect();
    reload.push((LATE, "late"));
    config(&f, strategy, per_camera, &reload).write(&dir);
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
        d.wait_states(Duration::from_secs(20), &["gate", "yard", "late"], "online")
            .is_some(),
        "{strategy}: {:?}",
        d.status()
    );
    let v = d.status().expect("status");
    assert!(harness::camera(&v, "gone").is_none(), "{strategy}: {v}");
    assert_eq!(
        harness::camera(&v, "late").expect("late")["backend"],
        "isapi"
    );
    assert!(
        f.camera(2)
            .wait_event(seq, EventKind::Logout, patient(Duration::from_secs(10)))
            .is_some(),
        "{strategy}: the removed camera was not logged out"
    );
    let log = f.events_since(seq);
    assert_eq!(
        events::login_attempts(&log, 0),
        0,
        "{strategy}: gate logged in again"
    );

    // The held camera stays held: fewer wrong logins than the lock needs, never locked.
    let bad = f.camera(3).stats();
    assert!(bad.logins_bad < u64::from(LOCKOUT), "{strategy}: {bad:?}");
    assert_eq!(
        harness::camera(&v, "badpw").expect("badpw")["state"],
        "auth-hold",
        "{strategy}: {v}"
    );

    // SIGTERM: STOPPING=1, exit 0, every session logged out, nothing locked anywhere.
    let mark = sd.len();
    d.signal(Signal::SIGTERM);
    let status = d.wait_exit(Duration::from_secs(25)).expect("exit");
    assert_eq!(status.code(), Some(0), "{strategy}: {}", d.log_text());
    assert!(
        sd.wait(mark, Duration::from_secs(1), |m| m.contains("STOPPING=1"))
            .is_some(),
        "{strategy}: {:?}",
        sd.messages()
    );
    // Logouts are answered before the daemon exits; simcam counts them on its own threads.
    let left = wait_for(
        patient(Duration::from_secs(5)),
        Duration::from_millis(50),
        || {
            (0..5)
                .all(|i| f.camera(i).stats().sessions == 0)
                .then_some(())
        },
    );
    let sessions: Vec<usize> = (0..5).map(|i| f.camera(i).stats().sessions).collect();
    assert!(
        left.is_some(),
        "{strategy}: sessions left at simcam: {sessions:?}"
    );
    let all = f.events_since(0);
    for kind in [EventKind::LockEngaged, EventKind::LoginLocked] {
        assert_eq!(events::count_all(&all, kind), 0, "{strategy}: {kind:?}");
    }
    for i in [0, 1, 4] {
        assert!(
            events::count(&all, i, EventKind::Logout) >= 1,
            "{strategy}: camera {i} never logged out"
        );
    }
    assert!(
        !dir.join("status.sock").exists(),
        "{strategy}: status socket left behind"
    );
}

#[test]
fn hybrid_with_the_isapi_backend_end_to_end() {
    scenario("hybrid", false);
}

/// The cameras name the backend themselves; the file's default stays the SDK, which no
/// camera uses, so no SDK is needed.
#[test]
fn poll_with_the_isapi_backend_per_camera_end_to_end() {
    scenario("poll", true);
}

#[test]
fn event_with_the_isapi_backend_end_to_end() {
    scenario("event", false);
}

#[test]
fn queue_with_the_isapi_backend_end_to_end() {
    scenario("queue", false);
}

#[test]
fn a_watched_stream_with_the_isapi_backend_end_to_end() {
    // One camera watching its sub stream over RTSP (simcam's port via `rtsp_port`): the
    // stream stops (an encoder hang), the gap is found and the session renewed, a new
    // stream flows once the camera sends again, and SIGTERM tears the stream down before
    // the logout.
    let f = Fleet::start(FleetConfig {
        cameras: 1,
        ..FleetConfig::default()
    })
    .expect("simcam fleet");
    let cam = f.camera(0);
    let dir = TempDir::new("e2e-isapi-stream");
    let cfg = DaemonConfig::isapi()
        .set("start_spread", "\"300ms\"")
        .set("heartbeat_interval", "\"1s\"")
        .set("backoff_initial", "\"1s\"")
        .set("backoff_cap", "\"2s\"")
        .set("stream_gap", "\"2s\"")
        .camera(CameraSpec::of(&f, 0, "gate").rtsp_stream("sub", cam.rtsp_addr().port()));
    let seq0 = f.next_seq();
    let mut d = Daemon::spawn(BIN, &dir, &cfg, SpawnOptions::default());
    let wait = patient(Duration::from_secs(20));
    assert!(
        d.wait_states(wait, &["gate"], "online").is_some(),
        "{:?}",
        d.status()
    );
    assert!(
        cam.wait_event(seq0, EventKind::StreamStart, wait).is_some(),
        "no stream started:\n{}",
        d.log_text()
    );
    // The frames reach the gap detector: 50 pictures (5 s of the sub stream's 10 fps, more
    // than two gaps) pass without a loss.
    let sent = cam.stream_stats().pictures;
    assert!(
        wait_for(wait, Duration::from_millis(50), || {
            (cam.stream_stats().pictures > sent + 50).then_some(())
        })
        .is_some(),
        "the stream does not flow"
    );
    let v = d.status().expect("status");
    assert_eq!(
        harness::camera(&v, "gate").expect("gate")["reconnects"],
        0,
        "a flowing stream was taken for a gap: {v}"
    );

    // Taken before the halt: the new stream may open before the loss is seen here.
    let seq = f.next_seq();
    cam.halt_stream();
    let v = d
        .wait_status(wait, |v| {
            harness::camera(v, "gate").is_some_and(|c| c["reconnects"].as_u64() >= Some(1))
        })
        .unwrap_or_else(|| panic!("the gap was not found: {:?}", d.status()));
    let c = harness::camera(&v, "gate").expect("gate");
    let cause = &c["last_error"]["cause"];
    assert!(
        cause == "stream-gap" || cause == "backend-exception",
        "the loss's cause: {c}"
    );
    cam.resume_stream();
    assert!(
        cam.wait_event(seq, EventKind::StreamStart, wait).is_some(),
        "no new stream after the loss:\n{}",
        d.log_text()
    );
    assert!(
        d.wait_states(wait, &["gate"], "online").is_some(),
        "not online again: {:?}",
        d.status()
    );
    assert!(
        !d.log_text().contains("SDK exception"),
        "the ISAPI stream's loss in SDK words:\n{}",
        d.log_text()
    );

    let seq = f.next_seq();
    d.signal(Signal::SIGTERM);
    let status = d.wait_exit(Duration::from_secs(25)).expect("exit");
    assert_eq!(status.code(), Some(0), "{}", d.log_text());
    let evs = f.events_since(seq);
    let first = |kind| evs.iter().find(|e| e.kind == kind);
    let stop = first(EventKind::StreamStop).expect("the stream did not end");
    assert!(stop.detail.contains("reason=teardown"), "{stop:?}");
    let logout = first(EventKind::Logout).expect("no logout");
    assert!(stop.seq < logout.seq, "the logout came first: {evs:?}");
    assert_eq!(cam.stream_stats().active, 0);
}
