//! The daemon with no camera on the SDK backend: it starts without loading the vendor SDK
//! (no `[sdk]` in the file, no SDK anywhere), answers status without SDK fields and stops
//! cleanly. Needs no SDK, so it runs on every target.

mod inproc;

use hikwatch::config::{BackendKind, Config, LoadOptions};
use inproc::{Run, TempDir, serial};

#[test]
fn an_isapi_only_config_runs_without_the_sdk() {
    let _g = serial();
    let dir = TempDir::new("rt-isapi-only");
    // Port 9 on loopback: nothing answers; the camera just stays offline.
    let text = format!(
        "backend = \"isapi\"\n[state]\npath = {:?}\n[status]\nsocket = {:?}\n\
         [supervisor]\nstart_spread = \"200ms\"\n\
         [[camera]]\nid = \"a\"\nhost = \"127.0.0.1\"\nport = 9\nuser = \"admin\"\npassword = \"pw\"\n",
        dir.0.join("state.bin").display().to_string(),
        dir.0.join("status.sock").display().to_string(),
    );
    let path = dir.0.join("hikwatch.toml");
    std::fs::write(&path, &text).expect("write config");
    let config = Config::from_text(&text, &path, &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{e}"))
        .config;
    assert!(!config.uses_sdk());
    assert_eq!(config.cameras[0].backend, BackendKind::Isapi);
    let run = Run::start(config);
    let status = run.wait("status answers with the camera", |v| {
        v["cameras"].as_array().is_some_and(|c| c.len() == 1)
    });
    assert!(status["sdk"].is_null(), "no SDK loaded: {status}");
    let summary = run.stop();
    assert!(summary.clean, "{summary:?}");
    assert_eq!(summary.sdk_logins_left, None, "{summary:?}");
}
