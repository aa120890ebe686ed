//! The two benchmark-only peers (`strategy = "naive"` and `"sdk"`, issue 7): the config
//! accepts them only with a loud warning, the `sdk` peer switches the SDK's own reconnect
//! on, and both behave as documented when the daemon runs them against the C stand-in SDK
//! (every target, armv7 and aarch64 under qemu too). Their pacing rules are unit-tested in
//! `src/supervisor/tests.rs`; `scripts/bench.sh` measures them on the real SDK.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_channel::Sender;
use hikwatch::config::{Config, LoadOptions, Severity, Strategy};
use hikwatch::runtime::{
    RunError, RunOptions, SDK_PEER_RECONNECT, Summary, run_loaded, sdk_options,
};
use hikwatch::sdk::SdkOptions;
use hikwatch::status::{Format, query};

/// Generous: qemu-user runs everything several times slower.
const WAIT: Duration = Duration::from_secs(40);

/// The SDK is process-global: runs take turns.
fn serial() -> MutexGuard<'static, ()> {
    static M: Mutex<()> = Mutex::new(());
    M.lock().unwrap_or_else(|p| p.into_inner())
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("hikwatch-peers-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

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

fn load(dir: &Path, strategy: &str, scripts: &[&str]) -> hikwatch::config::Loaded {
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
    let dir = TempDir::new("cfg");
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

struct Run {
    thread: Option<JoinHandle<Result<Summary, RunError>>>,
    stop: Sender<()>,
    socket: PathBuf,
}

impl Run {
    fn start(config: Config) -> Run {
        let socket = config.status.socket.clone();
        let (stop, stop_rx) = async_channel::bounded::<()>(1);
        let (_reload, reload_rx) = async_channel::bounded::<()>(1);
        let opts = RunOptions {
            seed: Some(7),
            ..RunOptions::default()
        };
        let thread = std::thread::spawn(move || {
            let _keep = _reload;
            run_loaded(
                config,
                opts,
                async move {
                    let _ = stop_rx.recv().await;
                },
                reload_rx,
            )
        });
        Run {
            thread: Some(thread),
            stop,
            socket,
        }
    }

    fn status(&self) -> Option<serde_json::Value> {
        let text = query(&self.socket, Format::Json).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn camera(&self, id: &str) -> Option<serde_json::Value> {
        let v = self.status()?;
        v["cameras"]
            .as_array()?
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
    }

    /// Waits until camera `id`'s status satisfies `pred`; returns it.
    fn wait(
        &self,
        id: &str,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let end = Instant::now() + WAIT;
        loop {
            match self.camera(id) {
                Some(c) if pred(&c) => return c,
                last if Instant::now() > end => {
                    panic!("{id}: {what} not within {WAIT:?}: {last:?}")
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    fn stop(mut self) -> Summary {
        self.stop.try_send(()).expect("stop");
        self.thread
            .take()
            .expect("running")
            .join()
            .expect("runtime thread")
            .expect("run result")
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = self.stop.try_send(());
            let _ = t.join();
        }
    }
}

#[test]
fn the_sdk_peer_marks_a_camera_down_on_0x8000_and_never_logs_in_again() {
    let _g = serial();
    let dir = TempDir::new("sdk");
    // One EXCEPTION_EXCHANGE 300 ms after the login.
    let run = Run::start(load(&dir.0, "sdk", &["exc=0x8000@300ms"]).config);
    let c = run.wait("c0", "down", |c| c["state"] == "suspect");
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
    let dir = TempDir::new("naive");
    // Error 1 with "5 tries left" on every login; a real strategy holds before the last.
    let run = Run::start(load(&dir.0, "naive", &["auth=5", "x"]).config);
    run.wait("c1", "online", |c| c["state"] == "online");
    let c = run.wait("c0", "four logins", |c| {
        c["login_attempts"].as_u64().is_some_and(|n| n >= 4)
    });
    assert_ne!(c["state"], "auth-hold", "{c}");
    assert_eq!(c["last_error"]["code"], 1, "{c}");
    let s = run.stop();
    assert!(s.clean, "{s:?}");
}
