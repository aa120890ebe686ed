//! The two benchmark-only peers (`strategy = "naive"` and `"sdk"`): the config
//! accepts them only with a loud warning, the `sdk` peer switches the SDK's own reconnect
//! on, and both behave as documented when the daemon runs them against the C stand-in SDK
//! (every target, armv7 and aarch64 under qemu too). Their pacing rules are unit-tested in
//! `src/supervisor/tests.rs`; `scripts/bench.sh` measures them on the real SDK.

mod inproc;

use std::path::Path;
use std::time::Duration;

use hikwatch::config::{Config, LoadOptions, Severity, Strategy};
use hikwatch::runtime::{SDK_PEER_RECONNECT, sdk_options};
use hikwatch::sdk::SdkOptions;
use inproc::{Run, TempDir, serial};

/// A config for the stand-in SDK with `strategy`, one camera per script.
fn config_text(dir: &Path, strategy: &str, cams: usize) -> String {
    let mut text = format!(
        "[sdk]\ndir = {:?}\n[state]\npath = {:?}\nflush_interval = \"1s\"\n[status]\nsocket = {:?}\n\
         [supervisor]\nstrategy = \"{strategy}\"\nstart_spread = \"200ms\"\nheartbeat_interval = \"1s\"\n\
         [log]\nrepeat_window = \"1s\"\n",
        fakesdk::sdk_dir().display().to_string(),
        dir.join("state.bin").display().to_string(),
        dir.join("status.sock").display().to_string(),
    );
    for i in 0..cams {
        text.push_str(&format!(
            "[[camera]]\nid = \"c{i}\"\nhost = \"127.0.0.{}\"\nuser = \"admin\"\npassword = \"pw\"\n",
            i + 1
        ));
    }
    text
}

fn load(dir: &Path, strategy: &str, scripts: &[&str]) -> hikwatch::config::LoadedConfig {
    let text = config_text(dir, strategy, scripts.len());
    let path = dir.join("hikwatch.toml");
    std::fs::write(&path, &text).expect("write config");
    let mut loaded =
        Config::from_text(&text, &path, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    // The stand-in's script goes where the address is (config validation would refuse it).
    for (c, script) in loaded.config.cameras.iter_mut().zip(scripts) {
        c.host = format!("{};{script}", c.host);
    }
    loaded
}

#[test]
fn the_config_accepts_the_peers_only_with_a_loud_warning() {
    let dir = TempDir::new("peers-cfg");
    for (name, strategy) in [("naive", Strategy::Naive), ("sdk", Strategy::Sdk)] {
        let loaded = load(&dir.0, name, &["x"]);
        assert_eq!(loaded.config.supervisor.settings.strategy, strategy);
        let w: Vec<String> = loaded
            .warnings
            .iter()
            .filter(|p| p.severity == Severity::Warning)
            .map(ToString::to_string)
            .collect();
        assert!(
            w.iter()
                .any(|l| l.contains(":9: warning: supervisor.strategy:")
                    && l.contains("BENCHMARK-ONLY")
                    && l.contains("never for production")),
            "{name}: {w:?}"
        );
    }
    // The real strategies load without it.
    for s in Strategy::ALL {
        let loaded = load(&dir.0, s.name(), &["x"]);
        assert!(
            !loaded
                .warnings
                .iter()
                .any(|p| p.to_string().contains("BENCHMARK-ONLY")),
            "{s}"
        );
    }
    // A typo names the real strategies only: the peers are not advertised.
    let text = config_text(&dir.0, "naiv", 1);
    let err = Config::from_text(&text, &dir.0.join("hikwatch.toml"), &LoadOptions::default())
        .expect_err("a bad strategy is an error")
        .to_string();
    assert!(
        err.contains("\"naiv\" is not one of poll | event | queue | hybrid\n")
            && !err.contains("naive"),
        "{err}"
    );
}

#[test]
fn only_the_sdk_peer_switches_the_sdks_own_reconnect_on() {
    let base = SdkOptions::default();
    assert_eq!(
        base.sdk_reconnect, None,
        "hikwatch owns reconnects by default"
    );
    for s in Strategy::ALL.into_iter().chain([Strategy::Naive]) {
        assert_eq!(sdk_options(s, &base).sdk_reconnect, None, "{s}");
    }
    let o = sdk_options(Strategy::Sdk, &base);
    assert_eq!(o.sdk_reconnect, Some(SDK_PEER_RECONNECT));
    assert_eq!(SDK_PEER_RECONNECT, Duration::from_secs(5));
    // Everything else is kept (the SDK's own heartbeat the peer relies on, timeouts).
    assert_eq!(o.check_online, base.check_online);
    assert_eq!(o.recv_timeout, base.recv_timeout);
}

#[test]
fn the_sdk_peer_marks_a_camera_down_on_0x8000_and_never_logs_in_again() {
    let _g = serial();
    let dir = TempDir::new("peers-sdk");
    // One EXCEPTION_EXCHANGE 300 ms after the login.
    let run = Run::start(load(&dir.0, "sdk", &["exc=0x8000@300ms"]).config);
    let c = run.wait_camera("c0", "down", |c| c["state"] == "suspect");
    assert_eq!(c["reconnects"], 1, "{c}");
    assert_eq!(c["last_error"]["code"], 0x8000, "{c}");
    // hikwatch leaves the session to the SDK: no logout, no second login, ever.
    std::thread::sleep(Duration::from_secs(3));
    let c = run.camera("c0").expect("status");
    assert_eq!(c["state"], "suspect", "{c}");
    assert_eq!(c["login_attempts"], 1, "{c}");
    // The status shows the handle the SDK still holds for it.
    let v = run.status().expect("status");
    assert_eq!(v["sdk"]["logins"], 1, "{v}");
    let s = run.stop();
    assert!(s.clean, "{s:?}");
    assert_eq!(
        s.sdk_logins_left,
        Some(0),
        "the stop still logs the handle out"
    );
}

#[test]
fn the_naive_peer_retries_a_rejected_password_every_tick_without_a_hold() {
    let _g = serial();
    let dir = TempDir::new("peers-naive");
    // Error 1 with "5 tries left" on every login; a real strategy holds before the last.
    let run = Run::start(load(&dir.0, "naive", &["auth=5", "x"]).config);
    run.wait_state("c1", "online");
    let c = run.wait_camera("c0", "four logins", |c| {
        c["login_attempts"].as_u64().is_some_and(|n| n >= 4)
    });
    assert_ne!(c["state"], "auth-hold", "{c}");
    assert_eq!(c["last_error"]["code"], 1, "{c}");
    let s = run.stop();
    assert!(s.clean, "{s:?}");
}
