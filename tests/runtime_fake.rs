//! The runtime in-process against the C stand-in SDK (`tests/fakesdk`), on every target
//! (armv7 and aarch64 under qemu too). The stand-in is driven by the camera's host string
//! (`127.0.0.1;down@1500` powers the "device" off 1.5 s after login, see
//! `tests/fakesdk/src/lib.rs`), so these configs are built in code.
//!
//! The SDK is process-global: the runs in this file take turns (a mutex). Set
//! `HIKWATCH_TEST_LOG=1` to see the daemon's log.

mod inproc;

use std::path::Path;
use std::time::Duration;

use hikwatch::config::{Config, LoadOptions};
use inproc::{Run, TempDir, serial};

/// A config for the stand-in: `supervisor` lines, then one camera per `(id, script)`.
fn config(dir: &Path, supervisor: &str, cams: &[(&str, &str)], stream: &[&str]) -> Config {
    let mut text = format!(
        "[sdk]\ndir = {:?}\n[state]\npath = {:?}\nflush_interval = \"1s\"\n[status]\nsocket = {:?}\n\
         [supervisor]\nstart_spread = \"200ms\"\nheartbeat_interval = \"1s\"\n{supervisor}\n\
         [log]\nrepeat_window = \"1s\"\n",
        fakesdk::sdk_dir().display().to_string(),
        dir.join("state.bin").display().to_string(),
        dir.join("status.sock").display().to_string(),
    );
    for (i, (id, _)) in cams.iter().enumerate() {
        text.push_str(&format!(
            "[[camera]]\nid = \"{id}\"\nhost = \"127.0.0.{}\"\nuser = \"admin\"\npassword = \"pw\"\n",
            i + 1
        ));
        if stream.contains(id) {
            text.push_str("[camera.stream]\nchannel = 1\n");
        }
    }
    let path = dir.join("hikwatch.toml");
    std::fs::write(&path, &text).expect("write config");
    let mut c = Config::from_text(&text, &path, &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{e}"))
        .config;
    // The stand-in's script goes where the address is (config validation would refuse it).
    for (c, (_, script)) in c.cameras.iter_mut().zip(cams) {
        if !script.is_empty() {
            c.host = format!("{};{script}", c.host);
        }
    }
    c
}

#[test]
fn cameras_come_online_and_a_clean_stop_logs_every_session_out() {
    let _g = serial();
    let dir = TempDir::new("rtf-clean");
    let run = Run::start(config(
        &dir.0,
        "",
        &[("a", "x"), ("b", "serial=B2"), ("c", "delay=300")],
        &[],
    ));
    for id in ["a", "b", "c"] {
        run.wait_state(id, "online");
    }
    let v = run.status().unwrap();
    assert_eq!(v["queue"]["capacity"], 256);
    let s = run.stop();
    assert!(s.clean, "{s:?}");
    assert_eq!(s.sdk_logins_left, Some(0), "sessions left in the SDK");
    assert!(s.state_saved);
    assert!(dir.0.join("state.bin").is_file());
    assert!(!dir.0.join("status.sock").exists());
}

#[test]
fn a_dropped_session_is_detected_and_recovered_poll_and_event() {
    let _g = serial();
    // poll: heartbeats fail with error 7 after the "power-off" (3 misses); event: the
    // one EXCEPTION_EXCHANGE the stand-in fires ends the session at once.
    for strategy in ["poll", "event"] {
        let dir = TempDir::new(&format!("rtf-drop-{strategy}"));
        let run = Run::start(config(
            &dir.0,
            &format!("strategy = \"{strategy}\"\nbackoff_initial = \"100ms\""),
            &[("cam", "down@1500")],
            &[],
        ));
        run.wait_state("cam", "online");
        // Each login "powers off" 1.5 s later: reconnects keep happening.
        let v = run.wait(&format!("{strategy}: two reconnects"), |v| {
            v["cameras"][0]["reconnects"].as_u64() >= Some(2)
                && v["cameras"][0]["state"] == "online"
        });
        let c = &v["cameras"][0];
        assert!(c["login_attempts"].as_u64() >= Some(3), "{v}");
        let s = run.stop();
        assert_eq!(s.sdk_logins_left, Some(0), "{strategy}: {s:?}");
    }
}

#[test]
fn a_stream_gap_longer_than_stream_gap_ends_the_session() {
    let _g = serial();
    let dir = TempDir::new("rtf-gap");
    // 25 frames a second, then a 4 s pause 1 s in; stream_gap 2 s. Heartbeats stay fine,
    // so only the stream data (reported about once a second) can tell.
    let run = Run::start(config(
        &dir.0,
        "strategy = \"poll\"\nstream_gap = \"2s\"",
        &[("cam", "stream=25fps;gap=4000ms@1s")],
        &["cam"],
    ));
    run.wait_state("cam", "online");
    let v = run.wait("stream gap detected", |v| {
        v["cameras"][0]["reconnects"].as_u64() >= Some(1)
    });
    assert_eq!(
        v["cameras"][0]["last_error"]["code"],
        serde_json::Value::Null,
        "{v}"
    );
    run.wait_state("cam", "online");
    let s = run.stop();
    assert_eq!(s.sdk_logins_left, Some(0), "{s:?}");
}

#[test]
fn a_login_past_its_deadline_is_stuck_and_its_late_result_handled() {
    let _g = serial();
    let dir = TempDir::new("rtf-stuck");
    let run = Run::start(config(
        &dir.0,
        "login_deadline = \"1s\"\nbackoff_initial = \"5s\"\nbackoff_cap = \"5s\"",
        &[("cam", "hang=2500")],
        &[],
    ));
    run.wait_state("cam", "stuck");
    let v = run.status().unwrap();
    assert!(v["sdk_deadlines_missed"].as_u64() >= Some(1), "{v}");
    // The late login answers after 2.5 s, before any newer attempt: adopted.
    run.wait_state("cam", "online");
    let s = run.stop();
    assert_eq!(s.sdk_logins_left, Some(0), "a late session leaked: {s:?}");
}

#[test]
fn auth_hold_and_a_device_lock_survive_a_restart_from_the_state_file() {
    let _g = serial();
    let dir = TempDir::new("rtf-restart");
    let cams = [
        ("held", "auth=1"),
        ("locked", "lock=900"),
        ("failing", "err=7"),
        ("fine", "x"),
    ];
    // poll: attempts on the heartbeat ticker, no probe gate (the stand-in's addresses
    // cannot be probed).
    let sup = "strategy = \"poll\"\nbackoff_initial = \"200ms\"";
    let run = Run::start(config(&dir.0, sup, &cams, &[]));
    run.wait_state("held", "auth-hold");
    run.wait_state("locked", "locked");
    run.wait_state("fine", "online");
    run.wait("failing: three attempts", |v| {
        v["cameras"][2]["login_attempts"].as_u64() >= Some(3)
    });
    let s = run.stop();
    assert!(s.state_saved);

    // Same state file: the hold and the lock continue, with no new login for either, and
    // the failing camera continues its backoff (no fresh start).
    let run = Run::start(config(&dir.0, sup, &cams, &[]));
    let v = run.wait("the first status", |v| {
        v["cameras"].as_array().is_some_and(|c| c.len() == 4)
    });
    let failing = &v["cameras"][2];
    // Restored into its backoff (a fresh camera would be "starting").
    assert!(
        failing["state"] == "backoff" || failing["state"] == "connecting",
        "{failing}"
    );
    assert!(failing["login_attempts"].as_u64() >= Some(3), "{failing}");
    run.wait_state("fine", "online");
    std::thread::sleep(Duration::from_secs(2));
    let held = run.camera("held").expect("held");
    let locked = run.camera("locked").expect("locked");
    assert_eq!(held["state"], "auth-hold", "{held}");
    assert_eq!(locked["state"], "locked", "{locked}");
    // Restored counters: the one login each made in the first run, and no other.
    assert_eq!(held["login_attempts"], 1, "{held}");
    assert_eq!(locked["login_attempts"], 1, "{locked}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let lock_end = locked["next_attempt"].as_u64().expect("lock end");
    assert!(lock_end > now + 800, "lock ends at {lock_end}, now {now}");
    run.stop();
}

#[test]
fn a_reload_adds_and_removes_cameras_and_leaves_the_others_alone() {
    let _g = serial();
    let dir = TempDir::new("rtf-reload");
    // Plain addresses (no script): the reload reads and validates the file.
    let run = Run::start(config(&dir.0, "", &[("a", ""), ("b", "")], &[]));
    run.wait_state("a", "online");
    run.wait_state("b", "online");
    // The file on disk now has "a" and "c".
    config(&dir.0, "", &[("a", ""), ("c", "")], &[]);
    run.reload.try_send(()).expect("reload");
    run.wait_state("c", "online");
    let v = run.wait("b removed", |v| {
        v["cameras"].as_array().is_some_and(|c| c.len() == 2)
    });
    let ids: Vec<&str> = v["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "c"]);
    let a = run.camera("a").unwrap();
    assert_eq!(a["state"], "online");
    assert_eq!(a["login_attempts"], 1, "a was logged in again: {a}");
    let s = run.stop();
    assert_eq!(s.sdk_logins_left, Some(0), "{s:?}");
}
