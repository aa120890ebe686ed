//! How the runtime words a lost session, in-process with the ISAPI backend against simcam
//! (no vendor SDK: runs on every target). The device's event stream ending is its own
//! cause, never an SDK exception. Set `HIKWATCH_TEST_LOG=1` to see the daemon's log.

mod inproc;

use std::path::Path;

use hikwatch::config::{Config, LoadOptions};
use inproc::{Run, TempDir, serial};
use simcam::{Fleet, FleetConfig};

fn config(dir: &Path, fleet: &Fleet, strategy: &str) -> Config {
    let addr = fleet.addrs()[0];
    let text = format!(
        "backend = \"isapi\"\n[state]\npath = {:?}\nflush_interval = \"1s\"\n[status]\nsocket = {:?}\n\
         [supervisor]\nstrategy = \"{strategy}\"\nstart_spread = \"200ms\"\n\
         heartbeat_interval = \"1s\"\nbackoff_initial = \"1s\"\n\
         [[camera]]\nid = \"c0\"\nhost = \"{}\"\nport = {}\nuser = \"admin\"\npassword = \"hik12345\"\n",
        dir.join("state.bin").display().to_string(),
        dir.join("status.sock").display().to_string(),
        addr.ip(),
        addr.port(),
    );
    let path = dir.join("hikwatch.toml");
    std::fs::write(&path, &text).expect("write config");
    Config::from_text(&text, &path, &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{e}"))
        .config
}

#[test]
fn an_ended_event_stream_is_reported_as_such_not_as_an_sdk_exception() {
    // `event` acts on exceptions only: the ISAPI event stream stands in for the SDK's
    // keepalive, and its end ends the session at once.
    let _g = serial();
    let dir = TempDir::new("rlc-event");
    let f = Fleet::start(FleetConfig {
        cameras: 1,
        ..FleetConfig::default()
    })
    .expect("simcam");
    let run = Run::start(config(&dir.0, &f, "event"));
    run.wait_state("c0", "online");
    f.camera(0).end_alert_streams();
    // The camera stays up: the next login works, so the loss stays the last error.
    let cam = run.wait_camera("c0", "online again after the stream ended", |c| {
        c["state"] == "online" && c["reconnects"].as_u64() >= Some(1)
    });
    let e = &cam["last_error"];
    assert_eq!(e["cause"], "event-stream-lost", "{cam}");
    assert!(e["code"].is_null(), "no vendor code for it: {cam}");
    let message = e["message"].as_str().unwrap_or_default();
    assert!(message.contains("event stream"), "{cam}");
    assert!(!message.contains("SDK"), "{cam}");
    assert!(!message.contains("EXCEPTION"), "{cam}");
    assert!(run.stop().clean);
}
