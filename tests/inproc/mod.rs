//! The daemon's runtime in-process, for integration tests against the C stand-in SDK:
//! a temp folder, a turn at the process-global SDK, and a running `run_loaded` with its
//! status socket. Shared by `tests/runtime_fake.rs` and `tests/bench_peers.rs`; each uses
//! a part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_channel::Sender;
use hikwatch::config::Config;
use hikwatch::runtime::{RunError, RunOptions, RunSummary, run_loaded};
use hikwatch::status::{Format, query};

/// Generous: qemu-user runs everything several times slower.
pub const WAIT: Duration = Duration::from_secs(40);

/// The SDK is process-global: runs take turns. Set `HIKWATCH_TEST_LOG=1` to see the
/// daemon's log.
pub fn serial() -> MutexGuard<'static, ()> {
    static M: Mutex<()> = Mutex::new(());
    static LOG: OnceLock<()> = OnceLock::new();
    LOG.get_or_init(|| {
        if std::env::var_os("HIKWATCH_TEST_LOG").is_some() {
            let _ = hikwatch::logging::init(log::LevelFilter::Debug);
        }
    });
    M.lock().unwrap_or_else(|p| p.into_inner())
}

/// A fresh folder under the temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("hikwatch-{tag}-{}", std::process::id()));
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

/// The runtime on its own thread; stopped (and joined) on `stop` or drop.
pub struct Run {
    thread: Option<JoinHandle<Result<RunSummary, RunError>>>,
    stop: Sender<()>,
    pub reload: Sender<()>,
    socket: PathBuf,
}

impl Run {
    pub fn start(config: Config) -> Run {
        let socket = config.status.socket.clone();
        let (stop, stop_rx) = async_channel::bounded::<()>(1);
        let (reload, reload_rx) = async_channel::bounded::<()>(4);
        let opts = RunOptions {
            seed: Some(7),
            ..RunOptions::default()
        };
        let thread = std::thread::spawn(move || {
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
            reload,
            socket,
        }
    }

    pub fn status(&self) -> Option<serde_json::Value> {
        let text = query(&self.socket, Format::Json).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn camera(&self, id: &str) -> Option<serde_json::Value> {
        self.status()?["cameras"]
            .as_array()?
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
    }

    /// Waits until `pred` holds for the status document; returns it.
    pub fn wait(
        &self,
        what: &str,
        mut pred: impl FnMut(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let end = Instant::now() + WAIT;
        loop {
            if let Some(v) = self.status() {
                if pred(&v) {
                    return v;
                }
                if Instant::now() > end {
                    panic!("{what}: not within {WAIT:?}; last status {v}");
                }
            } else if Instant::now() > end {
                panic!("{what}: the daemon does not answer");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until camera `id`'s status satisfies `pred`; returns the camera's entry.
    pub fn wait_camera(
        &self,
        id: &str,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let v = self.wait(&format!("{id}: {what}"), |v| {
            v["cameras"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["id"] == id && pred(c)))
        });
        v["cameras"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["id"] == id))
            .cloned()
            .unwrap_or_default()
    }

    pub fn wait_state(&self, id: &str, state: &str) -> serde_json::Value {
        self.wait_camera(id, state, |c| c["state"] == state)
    }

    pub fn stop(mut self) -> RunSummary {
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
