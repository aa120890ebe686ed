//! The runtime in-process with the ISAPI backend against simcam: no vendor SDK anywhere,
//! so these run on every target (armv7 and aarch64 under qemu too). Set
//! `HIKWATCH_TEST_LOG=1` to see the daemon's log.

mod inproc;

use std::path::Path;
use std::time::{Duration, Instant};

use hikwatch::config::{BackendKind, Config, LoadOptions};
use inproc::{Run, TempDir, WAIT, serial};
use simcam::{EventKind, Fleet, FleetConfig};

/// A config with every camera of `fleet` on the ISAPI backend; `passwords[i]` for camera
/// `i` (the fleet's own password when missing).
fn config(dir: &Path, fleet: &Fleet, supervisor: &str, passwords: &[&str]) -> Config {
    config_with(dir, fleet, supervisor, passwords, false)
}

/// [`config`], and with `streams` every camera watches its sub stream on simcam's RTSP
/// port.
fn config_with(
    dir: &Path,
    fleet: &Fleet,
    supervisor: &str,
    passwords: &[&str],
    streams: bool,
) -> Config {
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
        if streams {
            text.push_str(&format!(
                "[camera.stream]\ntype = \"sub\"\nrtsp_port = {}\n",
                fleet.camera(i).rtsp_addr().port()
            ));
        }
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

/// Stream tests: a 2 s stream gap and a short backoff, so a renewed session comes soon.
const STREAMING: &str = "stream_gap = \"2s\"\nbackoff_initial = \"1s\"\nbackoff_cap = \"2s\"";

/// Waits for camera `i`'s stream to start (simcam's `stream_start`) after `from`.
fn stream_started(f: &Fleet, i: usize, from: u64, what: &str) {
    assert!(
        f.camera(i)
            .wait_event(from, EventKind::StreamStart, WAIT)
            .is_some(),
        "{what}: camera {i}: no stream started within {WAIT:?}"
    );
}

/// Waits until camera `i`'s simcam sent `n` more pictures than it had at the call (a
/// stream flows; the sub stream sends 10 a second).
fn pictures_flow(f: &Fleet, i: usize, n: u64, what: &str) {
    let sent = f.camera(i).stream_stats().pictures;
    wait_for(what, || f.camera(i).stream_stats().pictures > sent + n);
}

/// Camera `c0` lost its session and is online again, with the loss as its last error;
/// returns its status entry.
fn renewed(run: &Run, what: &str, reconnects: u64) -> serde_json::Value {
    run.wait_camera("c0", what, |c| {
        c["state"] == "online" && c["reconnects"].as_u64() > Some(reconnects)
    })
}

/// A daemon with `strategy` whose one camera (`f`'s) watches its stream, once pictures
/// flow; with the camera's reconnect count then.
fn watching(dir: &TempDir, f: &Fleet, strategy: &str) -> (Run, Option<u64>) {
    let seq0 = f.next_seq();
    let sup = format!("strategy = \"{strategy}\"\n{STREAMING}");
    let run = Run::start(config_with(&dir.0, f, &sup, &[], true));
    run.wait_state("c0", "online");
    stream_started(f, 0, seq0, strategy);
    pictures_flow(f, 0, 5, strategy);
    let before = run.camera("c0").expect("c0")["reconnects"].as_u64();
    (run, before)
}

#[test]
fn a_watched_streams_gap_is_detected_and_recovers_with_every_strategy() {
    // The stream stops while the session and the RTSP connection live (an encoder hang):
    // found by the gap detector (poll), or by the reader's own silence limit, whichever is
    // first (hybrid, event, queue). Either way the session is renewed and a new stream flows.
    for strategy in ["hybrid", "poll", "event", "queue"] {
        let _g = serial();
        let dir = TempDir::new(&format!("rti-gap-{strategy}"));
        let f = fleet(1);
        let cam = f.camera(0);
        let (run, before) = watching(&dir, &f, strategy);
        // The frames reach the gap detector: 5 s of pictures (more than two gaps) pass
        // without a loss.
        pictures_flow(&f, 0, 50, strategy);
        let c = run.camera("c0").expect("c0");
        assert_eq!(
            c["reconnects"].as_u64(),
            before,
            "{strategy}: a loss while flowing: {c}"
        );

        // Taken before the halt: the new stream may open before the loss is seen here.
        let seq = f.next_seq();
        cam.halt_stream();
        let c = run.wait_camera("c0", &format!("{strategy}: the gap found"), |c| {
            c["reconnects"].as_u64() > before
        });
        let cause = c["last_error"]["cause"].clone();
        match strategy {
            "poll" => assert_eq!(cause, "stream-gap", "{strategy}: {c}"),
            _ => assert!(
                cause == "stream-gap" || cause == "backend-exception",
                "{strategy}: {c}"
            ),
        }
        cam.resume_stream();
        stream_started(&f, 0, seq, strategy);
        pictures_flow(&f, 0, 5, strategy);
        run.wait_state("c0", "online");
        assert!(run.stop().clean, "{strategy}");
        assert_eq!(
            cam.stream_stats().active,
            0,
            "{strategy}: a stream left open"
        );
    }
}

#[test]
fn a_broken_stream_is_reported_as_such_and_the_session_renewed() {
    // The RTSP connection closes while the session lives: the reader reports the broken
    // stream at once (hybrid, event, queue: a loss of its own, in words that name no SDK); poll
    // acts on no backend event and finds the gap instead.
    for strategy in ["hybrid", "event", "queue", "poll"] {
        let _g = serial();
        let dir = TempDir::new(&format!("rti-cut-{strategy}"));
        let f = fleet(1);
        let cam = f.camera(0);
        let (run, before) = watching(&dir, &f, strategy);

        let seq = f.next_seq();
        cam.cut_streams();
        let c = renewed(
            &run,
            &format!("{strategy}: renewed after the cut"),
            before.unwrap_or(0),
        );
        let e = &c["last_error"];
        let message = e["message"].as_str().unwrap_or_default();
        if strategy == "poll" {
            assert_eq!(e["cause"], "stream-gap", "{strategy}: {c}");
        } else {
            assert_eq!(e["cause"], "backend-exception", "{strategy}: {c}");
            assert_eq!(
                message, "the device's watched stream broke",
                "{strategy}: {c}"
            );
        }
        assert!(!message.contains("SDK"), "{strategy}: {c}");
        let stops = f.events_since(seq);
        assert!(
            stops
                .iter()
                .any(|e| e.kind == EventKind::StreamStop && e.detail.contains("reason=cut")),
            "{strategy}: simcam did not cut the stream: {stops:?}"
        );
        stream_started(&f, 0, seq, strategy);
        pictures_flow(&f, 0, 5, strategy);
        assert!(run.stop().clean, "{strategy}");
    }
}

/// The `stream_stop` events of camera `i` after `from` that a TEARDOWN ended.
fn torn_down(f: &Fleet, i: usize, from: u64) -> usize {
    f.events_since(from)
        .iter()
        .filter(|e| {
            e.camera == i && e.kind == EventKind::StreamStop && e.detail.contains("reason=teardown")
        })
        .count()
}

#[test]
fn streams_are_torn_down_when_a_camera_is_removed_and_when_the_daemon_stops() {
    let _g = serial();
    let dir = TempDir::new("rti-teardown");
    let f = fleet(2);
    let seq0 = f.next_seq();
    let run = Run::start(config_with(&dir.0, &f, STREAMING, &[], true));
    run.wait_state("c0", "online");
    run.wait_state("c1", "online");
    stream_started(&f, 0, seq0, "start");
    stream_started(&f, 1, seq0, "start");

    // Reload without c1: its stream gets a TEARDOWN, then the logout.
    let seq = f.next_seq();
    let text = std::fs::read_to_string(dir.0.join("hikwatch.toml")).expect("config");
    let cut = text
        .find("[[camera]]\nid = \"c1\"")
        .expect("c1 in the config");
    std::fs::write(dir.0.join("hikwatch.toml"), &text[..cut]).expect("write config");
    run.reload.try_send(()).expect("reload");
    assert!(
        f.camera(1)
            .wait_event(seq, EventKind::Logout, WAIT)
            .is_some(),
        "the removed camera was not logged out"
    );
    assert_eq!(torn_down(&f, 1, seq), 1, "{:?}", f.events_since(seq));
    let evs = f.events_since(seq);
    let at = |kind| {
        evs.iter()
            .find(|e| e.camera == 1 && e.kind == kind)
            .map(|e| e.seq)
    };
    assert!(
        at(EventKind::StreamStop) < at(EventKind::Logout),
        "the stream ended after the logout: {evs:?}"
    );
    assert_eq!(f.camera(1).stream_stats().active, 0);
    assert_eq!(
        torn_down(&f, 0, seq),
        0,
        "c0's stream was touched by the reload"
    );

    // Stop: c0's stream gets a TEARDOWN before the logout.
    let seq = f.next_seq();
    assert!(run.stop().clean);
    assert_eq!(torn_down(&f, 0, seq), 1, "{:?}", f.events_since(seq));
    wait_for("c0's stream closed", || {
        f.camera(0).stream_stats().active == 0
    });
    wait_for("sessions logged out", || {
        (0..2).all(|i| f.camera(i).stats().sessions == 0)
    });
}

#[test]
fn a_refused_stream_is_classified_resource_and_the_session_stays() {
    // simcam's stream limit 0: every SETUP gets RTSP 453. The session stays; the stream is
    // asked for again after resource_throttle, not in a loop, and not by a new login.
    let _g = serial();
    let dir = TempDir::new("rti-refused");
    let f = fleet(1);
    let cam = f.camera(0);
    cam.set_stream_limit(Some(0));
    let seq0 = f.next_seq();
    let sup = format!("{STREAMING}\nresource_throttle = \"3s\"");
    let run = Run::start(config_with(&dir.0, &f, &sup, &[], true));
    assert!(
        cam.wait_event(seq0, EventKind::StreamRefused, WAIT)
            .is_some(),
        "the daemon asked for no stream"
    );
    let c = run.wait_camera("c0", "the refusal recorded", |c| {
        c["last_error"]["code"] == 453
    });
    assert_eq!(c["state"], "online", "{c}");
    assert!(c["last_error"]["cause"].is_null(), "not a loss: {c}");
    // Two throttle periods later: still the one login, a refusal per period at most.
    let quiet = f.next_seq();
    wait_for("two more refusals", || {
        f.events_since(quiet)
            .iter()
            .filter(|e| e.kind == EventKind::StreamRefused)
            .count()
            >= 2
    });
    let evs = f.events_since(seq0);
    let count = |kind| evs.iter().filter(|e| e.kind == kind).count();
    assert_eq!(count(EventKind::LoginOk), 1, "a re-login: {evs:?}");
    assert_eq!(count(EventKind::Logout), 0, "a logout: {evs:?}");
    let refusals = count(EventKind::StreamRefused);
    let first = evs
        .iter()
        .find(|e| e.kind == EventKind::StreamRefused)
        .map(|e| e.since_start);
    let last = evs
        .iter()
        .rev()
        .find(|e| e.kind == EventKind::StreamRefused)
        .map(|e| e.since_start);
    let span = last.zip(first).map_or(0.0, |(l, f)| (l - f).as_secs_f64());
    // One refusal per resource_throttle (3 s): a loop would pile up many more.
    assert!(
        (refusals as f64) <= span / 3.0 + 2.0,
        "{refusals} refusals in {span:.1} s: {evs:?}"
    );
    let seq = f.next_seq();
    cam.set_stream_limit(None);
    stream_started(&f, 0, seq, "after the limit was lifted");
    assert!(run.stop().clean);
}
