//! Test and demo helpers for hikwatch: run the real `hikwatch` binary against a simcam
//! fleet and watch it from the outside.
//!
//! - [`TempDir`]: a scratch folder per test, removed on drop.
//! - [`DaemonConfig`]: writes a `hikwatch.toml` (and the password files) for a set of
//!   simcam cameras, with short test timings.
//! - [`Daemon`]: the daemon process: its log lines with their arrival time, signals,
//!   `hikwatch status --json` (over the socket, or through the real CLI), exit status.
//!   On a panicking test it prints the daemon's log, then kills it.
//! - [`FakeSystemd`]: a bound `NOTIFY_SOCKET` that records every datagram with its
//!   arrival time.
//! - [`events`]: counting and timing simcam's event log.
//! - [`netlab`]: the network fault lab: cameras behind a user-space router that loses,
//!   delays and black-holes real IP packets (needs root).
//! - [`bench`]: the benchmark (`scripts/bench.sh`, the `bench` binary).
//! - [`real_sdk_dir`]: where the real x86_64 SDK 6.1.9.48 is (or a clear failure saying
//!   how to fetch it), for the demo and the benchmark.
//! - [`vendor_sdk`]: which vendor SDK release a real-SDK test runs against ([`RealSdk`]),
//!   on x86_64 and aarch64, and the skip rule for the releases beside the repository.
//! - [`target_command`]: runs a binary of the target being tested (through qemu-user for
//!   a cross build).
//!
//! The harness does not depend on the `hikwatch` crate: it speaks to the daemon only as
//! an operator would (files, signals, the status socket), so it checks the interface.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

pub mod bench;
pub mod events;
pub mod netlab;
pub mod vendor_sdk;

pub use vendor_sdk::{RealSdk, SdkRelease};

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

pub use nix::sys::signal::Signal;
pub use serde_json::Value;

/// The real x86_64 HCNetSDK folder for tests: `$HIKWATCH_TEST_SDK`, else
/// `<manifest_dir>/vendor/hcnetsdk-linux64`.
///
/// # Panics
/// When `libhcnetsdk.so` is not there, with the command that fetches it: real-SDK tests
/// must fail, never skip silently.
pub fn real_sdk_dir(manifest_dir: &str) -> PathBuf {
    let dir = std::env::var_os("HIKWATCH_TEST_SDK")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(manifest_dir).join("vendor/hcnetsdk-linux64"));
    assert!(
        dir.join("libhcnetsdk.so").is_file(),
        "the real HCNetSDK is missing at {}: run scripts/fetch-sdk.sh (or set HIKWATCH_TEST_SDK)",
        dir.display()
    );
    dir
}

/// The qemu-user runner and sysroot for this target when it is cross-built for ARM on a
/// machine with Debian's cross sysroot (what `.cargo/config.toml` runs the tests with);
/// `None` for the host (and on a native ARM machine, which has no cross sysroot).
pub fn qemu_runner() -> Option<(&'static str, &'static str)> {
    let r = if cfg!(target_arch = "arm") {
        ("qemu-arm", "/usr/arm-linux-gnueabihf")
    } else if cfg!(target_arch = "aarch64") {
        ("qemu-aarch64", "/usr/aarch64-linux-gnu")
    } else {
        return None;
    };
    Path::new(r.1).is_dir().then_some(r)
}

/// How many times slower than the host this test process runs: 1 natively, 10 under
/// qemu-user (emulated code runs roughly 10-20x slower; the vendor SDK's own start-up takes
/// about 3 s either way).
pub fn slowdown() -> u32 {
    if qemu_runner().is_some() { 10 } else { 1 }
}

/// `d` x [`slowdown`]. The daemon and fake-systemd waits of this crate apply it to their
/// timeouts themselves (a passing wait returns as soon as its condition holds; only a
/// wait that is meant to time out takes longer under qemu).
pub fn patient(d: Duration) -> Duration {
    d * slowdown()
}

/// This process's resident memory, KiB: `VmRSS` natively. Under qemu-user that figure
/// is the emulator's (it grows with qemu's cache of translated code, hundreds of MiB over
/// a long test, none of it the program's), so there it is the sum of the guest's own
/// mappings in the host's `/proc/PID/smaps` (read by a host `cat`, because qemu answers
/// the guest's own `/proc/self` reads itself). 0 when nothing can be read.
pub fn own_rss_kib() -> u64 {
    let Some((qemu, _)) = qemu_runner() else {
        let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        return bench::procfs::status_field(&s, "VmRSS").unwrap_or(0);
    };
    let limit = if qemu == "qemu-arm" {
        1 << 32
    } else {
        bench::footprint::GUEST64_LIMIT
    };
    Command::new("cat")
        .arg(format!("/proc/{}/smaps", std::process::id()))
        .output()
        .map(|o| bench::footprint::guest_rss_kib_below(&String::from_utf8_lossy(&o.stdout), limit))
        .unwrap_or(0)
}

/// A command running `bin`, a binary built for the target under test: directly on the
/// host, through `qemu-<arch> -L <sysroot>` for a cross build (a process under qemu-user
/// cannot exec an ARM binary itself unless binfmt_misc is set up, and binfmt's qemu does
/// not know the cross sysroot). Signals sent to the qemu process reach the program.
pub fn target_command(bin: impl AsRef<Path>) -> Command {
    match qemu_runner() {
        Some((qemu, sysroot)) => {
            let mut c = Command::new(qemu);
            c.arg("-L").arg(sysroot).arg(bin.as_ref());
            c
        }
        None => Command::new(bin.as_ref()),
    }
}

/// Polls `f` every `every` until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(
    timeout: Duration,
    every: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// A loopback port that was free a moment ago (for `[status] metrics`).
///
/// # Panics
/// When no port can be bound.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// `GET path` over HTTP/1.1 (connection closed after the answer): status code and body.
///
/// # Errors
/// Connection or protocol failures, as text.
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).map_err(|e| e.to_string())?;
    let (head, body) = raw.split_once("\r\n\r\n").ok_or("no header end")?;
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("no status code")?;
    Ok((code, body.to_string()))
}

/// Seconds from `a` to `b` (negative when `b` is earlier).
pub fn secs(a: SystemTime, b: SystemTime) -> f64 {
    match b.duration_since(a) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// A fresh folder under the system temp dir, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new empty folder named after `tag`.
    ///
    /// # Panics
    /// When the folder cannot be created.
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("hikwatch-h-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A path inside the folder.
    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }

    /// Writes `text` to `name` (mode 0600) and returns the path.
    ///
    /// # Panics
    /// On I/O errors.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&p, text).expect("write file");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One camera in a generated config.
#[derive(Clone, Debug)]
pub struct CameraSpec {
    /// `[[camera]] id`.
    pub id: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Login user.
    pub user: String,
    /// Password (written to `<id>.pass`).
    pub password: String,
    /// `login_mode` (simcam speaks `isapi`).
    pub login_mode: String,
    /// `[camera.stream] type` (`main`, `sub`): watch that stream of channel 1.
    pub stream: Option<String>,
    /// `[camera.stream] rtsp_port` (ISAPI cameras: simcam's RTSP port is not 554).
    pub rtsp_port: Option<u16>,
}

impl CameraSpec {
    /// Camera `i` of `fleet` as `id`, with the fleet's user and password, ISAPI mode.
    pub fn of(fleet: &simcam::Fleet, i: usize, id: &str) -> CameraSpec {
        CameraSpec {
            id: id.to_string(),
            addr: fleet.addr(i),
            user: fleet.config().user.clone(),
            password: fleet.config().password.clone(),
            login_mode: "isapi".into(),
            stream: None,
            rtsp_port: None,
        }
    }

    /// The same camera with a watched stream of channel 1 (`main` or `sub`).
    pub fn stream(mut self, stream_type: &str) -> CameraSpec {
        self.stream = Some(stream_type.to_string());
        self
    }

    /// The same camera with a watched stream of channel 1 (`main` or `sub`) read by the
    /// ISAPI backend from simcam's RTSP server at `port` (simcam's `rtsp_addr`).
    pub fn rtsp_stream(mut self, stream_type: &str, port: u16) -> CameraSpec {
        self.stream = Some(stream_type.to_string());
        self.rtsp_port = Some(port);
        self
    }

    /// The same camera with another password.
    pub fn password(mut self, pw: &str) -> CameraSpec {
        self.password = pw.to_string();
        self
    }
}

/// A `hikwatch.toml` for tests: paths inside a [`TempDir`], short timings.
#[derive(Clone, Debug)]
pub struct DaemonConfig {
    /// `[sdk] dir`; empty: no `[sdk]` table (a config whose cameras all use ISAPI).
    pub sdk_dir: PathBuf,
    /// `backend` at the top of the file (`None`: not written, the SDK by default).
    pub backend: Option<String>,
    /// `backend` of single cameras: (camera id, `"sdk"` or `"isapi"`).
    pub camera_backends: Vec<(String, String)>,
    /// `[supervisor]` keys, as TOML values (`"\"1s\""`, `"3"`), in order.
    pub supervisor: Vec<(String, String)>,
    /// `[state] flush_interval`.
    pub flush_interval: String,
    /// `[log] level`.
    pub log_level: String,
    /// `[log] repeat_window`.
    pub repeat_window: String,
    /// `[status] metrics`.
    pub metrics: Option<SocketAddr>,
    /// `[sdk] threads`.
    pub threads: Option<u32>,
    /// The cameras.
    pub cameras: Vec<CameraSpec>,
    /// Raw TOML appended at the end (more tables, e.g. `[watchdog]`).
    pub extra: String,
}

impl DaemonConfig {
    /// A config for the SDK in `sdk_dir` with test timings: `start_spread` 1 s, state
    /// written every second, repeats summarised per second, log level info.
    pub fn new(sdk_dir: &Path) -> DaemonConfig {
        DaemonConfig {
            sdk_dir: sdk_dir.to_path_buf(),
            backend: None,
            camera_backends: Vec::new(),
            supervisor: vec![("start_spread".into(), "\"1s\"".into())],
            flush_interval: "1s".into(),
            log_level: "info".into(),
            repeat_window: "1s".into(),
            metrics: None,
            threads: None,
            cameras: Vec::new(),
            extra: String::new(),
        }
    }

    /// Like [`DaemonConfig::new`] for the ISAPI backend: `backend = "isapi"` at the top and
    /// no `[sdk]` table (no vendor SDK anywhere).
    pub fn isapi() -> DaemonConfig {
        let mut c = DaemonConfig::new(Path::new(""));
        c.backend = Some("isapi".into());
        c
    }

    /// Gives camera `id` a `backend` of its own (`"sdk"` or `"isapi"`).
    pub fn camera_backend(mut self, id: &str, backend: &str) -> DaemonConfig {
        self.camera_backends.retain(|(c, _)| c != id);
        self.camera_backends
            .push((id.to_string(), backend.to_string()));
        self
    }

    /// Sets a `[supervisor]` key to a TOML value (replacing an earlier one).
    pub fn set(mut self, key: &str, toml_value: &str) -> DaemonConfig {
        self.supervisor.retain(|(k, _)| k != key);
        self.supervisor
            .push((key.to_string(), toml_value.to_string()));
        self
    }

    /// Adds a camera.
    pub fn camera(mut self, c: CameraSpec) -> DaemonConfig {
        self.cameras.push(c);
        self
    }

    /// The TOML text, with the state file, status socket and password files in `dir`.
    pub fn toml(&self, dir: &TempDir) -> String {
        let mut t = String::new();
        if let Some(b) = &self.backend {
            let _ = writeln!(t, "backend = {b:?}");
        }
        // No `[sdk]` table without an SDK folder or for a file whose backend is ISAPI:
        // no SDK is named, so none can be loaded.
        if !self.sdk_dir.as_os_str().is_empty() && self.backend.as_deref() != Some("isapi") {
            let _ = writeln!(t, "[sdk]\ndir = {:?}", self.sdk_dir.display().to_string());
            if let Some(n) = self.threads {
                let _ = writeln!(t, "threads = {n}");
            }
        }
        let _ = writeln!(
            t,
            "[state]\npath = {:?}\nflush_interval = {:?}",
            dir.join("state.bin").display().to_string(),
            self.flush_interval
        );
        let _ = writeln!(
            t,
            "[status]\nsocket = {:?}",
            dir.join("status.sock").display().to_string()
        );
        if let Some(m) = self.metrics {
            let _ = writeln!(t, "metrics = \"{m}\"");
        }
        t.push_str("[supervisor]\n");
        for (k, v) in &self.supervisor {
            let _ = writeln!(t, "{k} = {v}");
        }
        let _ = writeln!(
            t,
            "[log]\nlevel = {:?}\nrepeat_window = {:?}",
            self.log_level, self.repeat_window
        );
        for c in &self.cameras {
            let _ = writeln!(
                t,
                "[[camera]]\nid = {:?}\nhost = \"{}\"\nport = {}\nuser = {:?}\npassword_file = {:?}\nlogin_mode = {:?}",
                c.id,
                c.addr.ip(),
                c.addr.port(),
                c.user,
                format!("{}.pass", c.id),
                c.login_mode
            );
            if let Some((_, b)) = self.camera_backends.iter().find(|(id, _)| *id == c.id) {
                let _ = writeln!(t, "backend = {b:?}");
            }
            if let Some(st) = &c.stream {
                let _ = writeln!(t, "[camera.stream]\nchannel = 1\ntype = {st:?}");
                if let Some(p) = c.rtsp_port {
                    let _ = writeln!(t, "rtsp_port = {p}");
                }
            }
        }
        t.push_str(&self.extra);
        t
    }

    /// Writes the password files and `hikwatch.toml` into `dir`; returns the config path.
    pub fn write(&self, dir: &TempDir) -> PathBuf {
        for c in &self.cameras {
            dir.write(&format!("{}.pass", c.id), &c.password);
        }
        dir.write("hikwatch.toml", &self.toml(dir))
    }
}

/// One line the daemon wrote (stderr or stdout), with when the harness read it.
#[derive(Clone, Debug)]
pub struct LogLine {
    /// Arrival time (wall clock, comparable with simcam's `Event::unix_us`).
    pub at: SystemTime,
    /// The line.
    pub text: String,
}

type Shared<T> = Arc<(Mutex<Vec<T>>, Condvar)>;

fn collect_lines(src: impl Read + Send + 'static, sink: Shared<LogLine>) {
    std::thread::spawn(move || {
        for line in BufReader::new(src).lines() {
            let Ok(text) = line else { break };
            let (m, cv) = &*sink;
            m.lock().unwrap_or_else(|p| p.into_inner()).push(LogLine {
                at: SystemTime::now(),
                text,
            });
            cv.notify_all();
        }
    });
}

fn wait_in<T: Clone>(
    sink: &Shared<T>,
    from: usize,
    timeout: Duration,
    mut pred: impl FnMut(&T) -> bool,
) -> Option<(usize, T)> {
    let (m, cv) = &**sink;
    let end = Instant::now() + patient(timeout);
    let mut g = m.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        if let Some((i, v)) = g.iter().enumerate().skip(from).find(|(_, v)| pred(v)) {
            return Some((i, v.clone()));
        }
        let left = end.checked_duration_since(Instant::now())?;
        g = cv
            .wait_timeout(g, left)
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0);
    }
}

/// A fake systemd: a bound datagram socket for `NOTIFY_SOCKET` that records every
/// message with its arrival time. Clones share the record.
#[derive(Clone, Debug)]
pub struct FakeSystemd {
    path: PathBuf,
    got: Shared<(SystemTime, String)>,
}

impl FakeSystemd {
    /// Binds `<dir>/notify.sock`.
    ///
    /// # Panics
    /// When the socket cannot be bound.
    pub fn new(dir: &TempDir) -> FakeSystemd {
        let path = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&path).expect("bind the notify socket");
        let got: Shared<(SystemTime, String)> = Arc::default();
        let sink = got.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = sock.recv(&mut buf) {
                let (m, cv) = &*sink;
                m.lock().unwrap_or_else(|p| p.into_inner()).push((
                    SystemTime::now(),
                    String::from_utf8_lossy(&buf[..n]).into_owned(),
                ));
                cv.notify_all();
            }
        });
        FakeSystemd { path, got }
    }

    /// The socket path to put in `NOTIFY_SOCKET`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every datagram so far, with arrival times.
    pub fn messages(&self) -> Vec<(SystemTime, String)> {
        self.got.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits for a datagram (index ≥ `from`) for which `pred` holds; returns its index,
    /// time and text.
    pub fn wait(
        &self,
        from: usize,
        timeout: Duration,
        mut pred: impl FnMut(&str) -> bool,
    ) -> Option<(usize, SystemTime, String)> {
        wait_in(&self.got, from, timeout, |(_, t)| pred(t)).map(|(i, (at, t))| (i, at, t))
    }

    /// How many datagrams so far.
    pub fn len(&self) -> usize {
        self.got.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether none arrived yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How to start the daemon.
#[derive(Debug, Default)]
pub struct SpawnOptions {
    /// Start a [`FakeSystemd`] and pass it as `NOTIFY_SOCKET`.
    pub notify: bool,
    /// `WATCHDOG_USEC` (needs `notify`).
    pub watchdog: Option<Duration>,
    /// More environment variables.
    pub env: Vec<(String, String)>,
}

/// The daemon process. Killed (SIGKILL) on drop; on a panicking test its log is printed
/// first.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    bin: PathBuf,
    config: PathBuf,
    socket: PathBuf,
    state: PathBuf,
    log: Shared<LogLine>,
    systemd: Option<FakeSystemd>,
    exit: Option<ExitStatus>,
}

impl Daemon {
    /// Writes `cfg` into `dir` and starts `bin run -c <dir>/hikwatch.toml`.
    ///
    /// # Panics
    /// When the process cannot be started.
    pub fn spawn(
        bin: impl AsRef<Path>,
        dir: &TempDir,
        cfg: &DaemonConfig,
        opts: SpawnOptions,
    ) -> Daemon {
        let config = cfg.write(dir);
        Daemon::spawn_with_config(bin, dir, &config, opts)
    }

    /// Starts `bin run -c config` (a config already written into `dir`).
    ///
    /// # Panics
    /// When the process cannot be started.
    pub fn spawn_with_config(
        bin: impl AsRef<Path>,
        dir: &TempDir,
        config: &Path,
        opts: SpawnOptions,
    ) -> Daemon {
        Daemon::spawn_adjusted(bin, dir, config, opts, |_| {})
    }

    /// Like [`Daemon::spawn_with_config`], with `adjust` applied to the command just
    /// before it starts: e.g. a process group of its own
    /// (`std::os::unix::process::CommandExt::process_group`), so that a Ctrl-C at the
    /// terminal reaches only the calling program, which then stops the daemon itself.
    ///
    /// # Panics
    /// When the process cannot be started.
    pub fn spawn_adjusted(
        bin: impl AsRef<Path>,
        dir: &TempDir,
        config: &Path,
        opts: SpawnOptions,
        adjust: impl FnOnce(&mut Command),
    ) -> Daemon {
        let bin = bin.as_ref();
        let systemd = opts.notify.then(|| FakeSystemd::new(dir));
        let mut cmd = target_command(bin);
        cmd.arg("run")
            .arg("-c")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .env_remove("JOURNAL_STREAM")
            .env_remove("HIKWATCH_TEST_STALL");
        if let Some(s) = &systemd {
            cmd.env("NOTIFY_SOCKET", s.path());
            if let Some(w) = opts.watchdog {
                cmd.env("WATCHDOG_USEC", w.as_micros().to_string());
            }
        }
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        adjust(&mut cmd);
        let mut child = cmd.spawn().expect("start hikwatch");
        let log: Shared<LogLine> = Arc::default();
        if let Some(e) = child.stderr.take() {
            collect_lines(e, log.clone());
        }
        if let Some(o) = child.stdout.take() {
            collect_lines(o, log.clone());
        }
        Daemon {
            child,
            bin: bin.to_path_buf(),
            config: config.to_path_buf(),
            socket: dir.join("status.sock"),
            state: dir.join("state.bin"),
            log,
            systemd,
            exit: None,
        }
    }

    /// The process id.
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap_or(i32::MAX)
    }

    /// The config file path.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// The state file path.
    pub fn state_path(&self) -> &Path {
        &self.state
    }

    /// The fake systemd (a handle sharing its record), when started with `notify`.
    ///
    /// # Panics
    /// When the daemon was started without it.
    pub fn systemd(&self) -> FakeSystemd {
        self.systemd.clone().expect("spawned with notify: true")
    }

    /// Sends `sig` to the daemon.
    ///
    /// # Panics
    /// When the signal cannot be sent (the process is gone).
    pub fn signal(&self, sig: Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig)
            .expect("signal the daemon");
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        if let Ok(s) = self.child.wait() {
            self.exit = Some(s);
        }
    }

    /// Waits up to `timeout` (x [`slowdown`]) for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.exit.is_some() {
            return self.exit;
        }
        let end = Instant::now() + patient(timeout);
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                self.exit = Some(s);
                // Let the reader threads take the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return self.exit;
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every line so far.
    pub fn logs(&self) -> Vec<LogLine> {
        self.log.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// How many lines so far (a cursor for [`Daemon::wait_log`]).
    pub fn log_len(&self) -> usize {
        self.log.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The log as one string.
    pub fn log_text(&self) -> String {
        self.logs()
            .iter()
            .map(|l| format!("{}\n", l.text))
            .collect()
    }

    /// Waits for a line (index ≥ `from`) containing `needle` (up to `timeout` x
    /// [`slowdown`]).
    pub fn wait_log(&self, from: usize, timeout: Duration, needle: &str) -> Option<LogLine> {
        wait_in(&self.log, from, timeout, |l| l.text.contains(needle)).map(|(_, l)| l)
    }

    /// Waits for the start line (`HCNetSDK <version> from <dir>`) and panics unless it
    /// names `sdk`'s release: the daemon ran the vendor's library, not the stand-in.
    ///
    /// # Panics
    /// When the line does not come within `timeout` or names another version.
    pub fn assert_sdk_release(&self, sdk: &RealSdk, timeout: Duration) {
        let line = self
            .wait_log(0, timeout, "HCNetSDK ")
            .unwrap_or_else(|| panic!("no `HCNetSDK <version>` start line within {timeout:?}"));
        sdk.assert_named_in(&line.text);
    }

    /// Lines (index ≥ `from`) containing `needle`.
    pub fn lines_with(&self, from: usize, needle: &str) -> Vec<LogLine> {
        self.logs()
            .into_iter()
            .skip(from)
            .filter(|l| l.text.contains(needle))
            .collect()
    }

    /// `hikwatch status --json` straight from the socket (the protocol of
    /// `docs/interface.md`).
    ///
    /// # Errors
    /// When nothing answers or the answer is not JSON.
    pub fn status(&self) -> Result<Value, String> {
        let mut s = UnixStream::connect(&self.socket).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        s.write_all(b"json\n").map_err(|e| e.to_string())?;
        let mut out = String::new();
        s.read_to_string(&mut out).map_err(|e| e.to_string())?;
        serde_json::from_str(&out).map_err(|e| format!("{e}: {out:?}"))
    }

    /// `hikwatch status -c FILE --json` through the real CLI: exit code and stdout.
    ///
    /// # Panics
    /// When the CLI cannot be run.
    pub fn status_cli(&self) -> (Option<i32>, String) {
        let out = target_command(&self.bin)
            .args(["status", "--json", "-c"])
            .arg(&self.config)
            .output()
            .expect("run hikwatch status");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// The state of camera `id` now (`None` when the daemon does not answer or does not
    /// know it).
    pub fn state_of(&self, id: &str) -> Option<String> {
        let v = self.status().ok()?;
        camera(&v, id)?["state"].as_str().map(str::to_string)
    }

    /// Waits until the status satisfies `pred` (up to `timeout` x [`slowdown`]); returns it.
    pub fn wait_status(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> Option<Value> {
        wait_for(patient(timeout), Duration::from_millis(50), || {
            self.status().ok().filter(|v| pred(v))
        })
    }

    /// Waits until every camera in `ids` is in `state`; returns when that was seen.
    pub fn wait_states(&self, timeout: Duration, ids: &[&str], state: &str) -> Option<SystemTime> {
        self.wait_status(timeout, |v| {
            ids.iter()
                .all(|id| camera(v, id).is_some_and(|c| c["state"] == state))
        })
        .map(|_| SystemTime::now())
    }
}

/// Camera `id` in a status document.
pub fn camera<'v>(status: &'v Value, id: &str) -> Option<&'v Value> {
    status["cameras"].as_array()?.iter().find(|c| c["id"] == id)
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- hikwatch log ({}) ----\n{}---- end of log ----",
                self.config.display(),
                self.log_text()
            );
        }
        if self.exit.is_none() {
            self.kill9();
        }
    }
}
