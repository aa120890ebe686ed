//! The status snapshot, the unix-socket server that answers with it, and the client
//! behind `hikwatch status`.
//!
//! - [`FleetStatusReport`]/[`CameraStatusReport`]: plain data the daemon fills from its supervisor
//!   (no supervisor types here). [`FleetStatusReport::to_json`] is the stable interface
//!   documented in `docs/interface.md`; [`FleetStatusReport::to_table`] is for people.
//! - [`serve`]: an async server on an `Async<UnixListener>`, generic over a snapshot
//!   function and a shutdown future. Protocol: connect, optionally send one line
//!   (`json` or `text`), read the answer until EOF. Sending nothing (or closing the write
//!   side) gets JSON, so `socat - UNIX-CONNECT:/run/hikwatch/status.sock </dev/null`
//!   works.
//! - [`query`] and [`status_command`]: `hikwatch status [-c FILE | --socket PATH] [--json]`.

use std::fmt::{self, Write as _};
use std::future::Future;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_io::{Async, Timer};
use smol::future::FutureExt;
use smol::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::{Config, LoadOptions, format_duration};
use crate::histogram::Histogram;

/// The camera state vocabulary: the supervisor's own state names
/// ([`crate::supervisor::State::name`]; a test keeps the two lists equal). `state` is a
/// string so this module stays free of supervisor types, but these are the documented
/// values and the metrics export one series per value.
pub mod states {
    /// Configured, first attempt not made yet (start spread).
    pub const STARTING: &str = "starting";
    /// A login is running.
    pub const CONNECTING: &str = "connecting";
    /// Logged in, heartbeat (and stream, if watched) healthy.
    pub const ONLINE: &str = "online";
    /// Still logged in, but a heartbeat was missed or the SDK reported trouble.
    pub const SUSPECT: &str = "suspect";
    /// Waiting before the next attempt.
    pub const BACKOFF: &str = "backoff";
    /// Wrong credentials: no more attempts until they change.
    pub const AUTH_HOLD: &str = "auth-hold";
    /// The device locked us out: waiting for the lock to end.
    pub const LOCKED: &str = "locked";
    /// A login ran past its deadline; waiting like `backoff` while its late result may come.
    pub const STUCK: &str = "stuck";
    /// Tearing down (removed by a reload, address changed, or shutting down).
    pub const STOPPING: &str = "stopping";
    /// Gone (only seen while a reload finishes removing it).
    pub const REMOVED: &str = "removed";
    /// Every documented state, in display order.
    pub const ALL: &[&str] = &[
        STARTING, CONNECTING, ONLINE, SUSPECT, BACKOFF, AUTH_HOLD, LOCKED, STUCK, STOPPING, REMOVED,
    ];
}

/// The last error a camera had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastErrorReport {
    /// The vendor error code (`NET_DVR_GetLastError`), when there is one.
    pub code: Option<u32>,
    /// What happened, one line, never containing a password.
    pub message: String,
    /// When the error ended a live session: how it was found, as a stable name
    /// (`LossCause::name`: `"heartbeats-missed"`, `"event-stream-lost"`, `"stream-gap"`...).
    pub cause: Option<&'static str>,
    /// When.
    pub at: SystemTime,
}

/// One camera.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CameraStatusReport {
    /// The configured id.
    pub id: String,
    /// One of [`states`] (`"online"` means a live session).
    pub state: String,
    /// The backend that talks to it: `"sdk"` or `"isapi"`.
    pub backend: String,
    /// When the camera entered `state`.
    pub since: SystemTime,
    /// The last error, if any since start.
    pub last_error: Option<LastErrorReport>,
    /// Login attempts since start.
    pub login_attempts: u64,
    /// Sessions re-established after a loss, since start.
    pub reconnects: u64,
    /// When the next attempt is due (backoff, locked), if one is scheduled.
    pub next_attempt: Option<SystemTime>,
}

/// The job queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStatus {
    /// Jobs waiting now.
    pub depth: u64,
    /// Capacity.
    pub capacity: u64,
    /// Jobs refused because the queue was full, since start.
    pub overflows: u64,
}

/// Everything `hikwatch status` and the metrics show.
#[derive(Clone, Debug, PartialEq)]
pub struct FleetStatusReport {
    /// hikwatch version.
    pub version: String,
    /// When the daemon started.
    pub started: SystemTime,
    /// Every configured camera, in config order.
    pub cameras: Vec<CameraStatusReport>,
    /// The job queue.
    pub queue: QueueStatus,
    /// State-file writes since start.
    pub state_writes: u64,
    /// SDK calls that missed their deadline since start.
    pub sdk_deadlines_missed: u64,
    /// What the SDK holds right now (`NET_DVR_GetSDKState`): login handles and live-view
    /// handles; `None` when the SDK could not say.
    pub sdk_handles: Option<SdkHandles>,
    /// Time from a session breaking to the supervisor noticing.
    pub detection_latency: Histogram,
    /// Time from noticing to being online again.
    pub recovery_latency: Histogram,
}

/// Handles the SDK holds (`NET_DVR_GetSDKState`), for leak checks from the outside.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SdkHandles {
    /// Logged-in users (one per camera with a session, when nothing leaks).
    pub logins: u32,
    /// Live-view handles.
    pub real_plays: u32,
}

impl FleetStatusReport {
    /// An empty snapshot for this version, started `started`.
    pub fn new(started: SystemTime) -> FleetStatusReport {
        FleetStatusReport {
            version: env!("CARGO_PKG_VERSION").to_string(),
            started,
            cameras: Vec::new(),
            queue: QueueStatus::default(),
            state_writes: 0,
            sdk_deadlines_missed: 0,
            sdk_handles: None,
            detection_latency: Histogram::latency(),
            recovery_latency: Histogram::latency(),
        }
    }

    /// The JSON document (`docs/interface.md`): times are Unix seconds, `null` when
    /// absent; `uptime_secs` is relative to `now`.
    pub fn to_json(&self, now: SystemTime) -> String {
        let mut o = String::with_capacity(256 + 256 * self.cameras.len());
        o.push_str("{\"cameras\":[");
        for (i, c) in self.cameras.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            o.push_str("{\"id\":");
            crate::json::push_str(&mut o, &c.id);
            o.push_str(",\"state\":");
            crate::json::push_str(&mut o, &c.state);
            o.push_str(",\"backend\":");
            crate::json::push_str(&mut o, &c.backend);
            let _ = write!(o, ",\"since\":{}", unix_secs(c.since));
            o.push_str(",\"last_error\":");
            match &c.last_error {
                None => o.push_str("null"),
                Some(e) => {
                    o.push_str("{\"code\":");
                    match e.code {
                        Some(code) => {
                            let _ = write!(o, "{code}");
                        }
                        None => o.push_str("null"),
                    }
                    o.push_str(",\"message\":");
                    crate::json::push_str(&mut o, &e.message);
                    o.push_str(",\"cause\":");
                    match e.cause {
                        Some(cause) => crate::json::push_str(&mut o, cause),
                        None => o.push_str("null"),
                    }
                    let _ = write!(o, ",\"at\":{}}}", unix_secs(e.at));
                }
            }
            let _ = write!(
                o,
                ",\"login_attempts\":{},\"reconnects\":{},\"next_attempt\":",
                c.login_attempts, c.reconnects
            );
            match c.next_attempt {
                Some(t) => {
                    let _ = write!(o, "{}", unix_secs(t));
                }
                None => o.push_str("null"),
            }
            o.push('}');
        }
        let _ = write!(
            o,
            "],\"queue\":{{\"depth\":{},\"capacity\":{},\"overflows\":{}}},\
             \"state_writes\":{},\"sdk_deadlines_missed\":{},\"version\":",
            self.queue.depth,
            self.queue.capacity,
            self.queue.overflows,
            self.state_writes,
            self.sdk_deadlines_missed
        );
        crate::json::push_str(&mut o, &self.version);
        match self.sdk_handles {
            Some(h) => {
                let _ = write!(
                    o,
                    ",\"sdk\":{{\"logins\":{},\"real_plays\":{}}}",
                    h.logins, h.real_plays
                );
            }
            None => o.push_str(",\"sdk\":null"),
        }
        let _ = write!(o, ",\"uptime_secs\":{}}}", secs_between(self.started, now));
        o.push('\n');
        o
    }

    /// A table for people, relative to `now`.
    pub fn to_table(&self, now: SystemTime) -> String {
        let headers = [
            "CAMERA",
            "STATE",
            "FOR",
            "LOGINS",
            "RECONNECTS",
            "NEXT",
            "LAST ERROR",
        ];
        let rows: Vec<[String; 7]> = self
            .cameras
            .iter()
            .map(|c| {
                [
                    c.id.clone(),
                    c.state.clone(),
                    ago(c.since, now),
                    c.login_attempts.to_string(),
                    c.reconnects.to_string(),
                    c.next_attempt
                        .map(|t| format!("in {}", ago(now, t)))
                        .unwrap_or_else(|| "-".into()),
                    match &c.last_error {
                        None => "-".into(),
                        Some(e) => {
                            let code = e.code.map(|c| format!("[{c}] ")).unwrap_or_default();
                            format!("{code}{} ({} ago)", e.message, ago(e.at, now))
                        }
                    },
                ]
            })
            .collect();
        let mut widths = headers.map(str::len);
        for r in &rows {
            for (w, cell) in widths.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut o = String::new();
        let mut line = |cells: &[&str]| {
            let mut l = String::new();
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                if i + 1 == cells.len() {
                    l.push_str(cell);
                } else {
                    let _ = write!(l, "{cell:<w$}  ");
                }
            }
            o.push_str(l.trim_end());
            o.push('\n');
        };
        line(&headers);
        for r in &rows {
            let cells: Vec<&str> = r.iter().map(String::as_str).collect();
            line(&cells);
        }
        let online = self
            .cameras
            .iter()
            .filter(|c| c.state == states::ONLINE)
            .count();
        let _ = writeln!(
            o,
            "{online}/{} online; queue {}/{} ({} overflows); {} state writes; {} SDK deadlines \
             missed; up {}; hikwatch {}",
            self.cameras.len(),
            self.queue.depth,
            self.queue.capacity,
            self.queue.overflows,
            self.state_writes,
            self.sdk_deadlines_missed,
            ago(self.started, now),
            self.version
        );
        o
    }
}

/// Seconds from `a` to `b`, 0 if `b` is earlier.
fn secs_between(a: SystemTime, b: SystemTime) -> u64 {
    b.duration_since(a).map(|d| d.as_secs()).unwrap_or(0)
}

fn unix_secs(t: SystemTime) -> u64 {
    secs_between(UNIX_EPOCH, t)
}

/// `1m30s`-style distance from `a` to `b`, whole seconds.
fn ago(a: SystemTime, b: SystemTime) -> String {
    format_duration(Duration::from_secs(secs_between(a, b)))
}

/// What a client asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// [`FleetStatusReport::to_json`].
    Json,
    /// [`FleetStatusReport::to_table`].
    Text,
}

/// How long a client may take to send its request line and to read the answer.
const CLIENT_DEADLINE: Duration = Duration::from_secs(2);
/// Longest request line accepted.
const MAX_REQUEST: usize = 64;

/// Binds the status socket: creates its folder if missing (`0750`; under systemd
/// `RuntimeDirectory=` already did), removes a stale socket file left by a crash
/// (refusing when a live daemon still answers on it), binds, and makes it `0660`.
///
/// # Errors
/// The OS error, or `AddrInUse` when another daemon is listening, or `AlreadyExists`
/// when the path is a file that is not a socket.
pub fn bind(path: &Path) -> io::Result<Async<UnixListener>> {
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(dir)?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{}: another hikwatch is listening", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = Async::<UnixListener>::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    Ok(listener)
}

/// Serves status requests until `shutdown` completes. Connections are handled one at a
/// time (status requests are rare and each is bounded by [`CLIENT_DEADLINE`]), so a
/// flood of clients cannot make the daemon spawn without bound.
///
/// # Errors
/// None in practice: accept errors (e.g. `EMFILE`) are logged and retried after a pause.
pub async fn serve<F, S>(listener: Async<UnixListener>, snapshot: F, shutdown: S) -> io::Result<()>
where
    F: Fn() -> FleetStatusReport,
    S: Future<Output = ()>,
{
    let accept_loop = async {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let handled = handle(stream, &snapshot)
                        .or(async {
                            Timer::after(CLIENT_DEADLINE * 2).await;
                            Err(io::ErrorKind::TimedOut.into())
                        })
                        .await;
                    if let Err(e) = handled {
                        log::debug!("status: client: {e}");
                    }
                }
                Err(e) => {
                    log::warn!("status: accept: {e}");
                    Timer::after(Duration::from_millis(100)).await;
                }
            }
        }
    };
    async {
        shutdown.await;
        Ok(())
    }
    .or(accept_loop)
    .await
}

async fn handle<F: Fn() -> FleetStatusReport>(
    mut stream: Async<UnixStream>,
    snapshot: &F,
) -> io::Result<()> {
    let mut req = Vec::with_capacity(MAX_REQUEST);
    let read_request = async {
        let mut buf = [0u8; MAX_REQUEST];
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            req.extend_from_slice(&buf[..n]);
            if req.contains(&b'\n') || req.len() >= MAX_REQUEST {
                break;
            }
        }
        io::Result::Ok(())
    };
    // A client that sends nothing and keeps the connection open gets JSON after the
    // deadline instead of an error.
    let _ = read_request
        .or(async {
            Timer::after(CLIENT_DEADLINE).await;
            Ok(())
        })
        .await;
    let line = String::from_utf8_lossy(&req);
    let format = match line.trim() {
        "text" => Format::Text,
        _ => Format::Json,
    };
    let status = snapshot();
    let now = SystemTime::now();
    let body = match format {
        Format::Json => status.to_json(now),
        Format::Text => status.to_table(now),
    };
    stream.write_all(body.as_bytes()).await?;
    stream.flush().await?;
    lingering_close(stream).await
}

/// Closes our side, then reads and discards what the client still sends (bounded) until
/// it closes: closing a unix or TCP socket with unread input makes the peer's read fail
/// with `ECONNRESET` before it sees our answer.
pub(crate) async fn lingering_close<T>(mut stream: Async<T>) -> io::Result<()>
where
    T: std::os::fd::AsFd,
    Async<T>: smol::io::AsyncRead + Unpin,
    T: ShutdownWrite,
{
    stream.get_ref().shutdown_write()?;
    let mut buf = [0u8; 1024];
    let mut left: usize = 64 * 1024;
    while left > 0 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
    Ok(())
}

/// Half-close for the stream types the servers use.
pub(crate) trait ShutdownWrite {
    /// `shutdown(SHUT_WR)`.
    fn shutdown_write(&self) -> io::Result<()>;
}

impl ShutdownWrite for UnixStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

impl ShutdownWrite for std::net::TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

/// Errors of `hikwatch status`.
#[derive(Debug)]
pub enum StatusError {
    /// The config could not be loaded.
    Config(crate::config::ConfigError),
    /// Nothing answers on the socket.
    Connect {
        /// The socket.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The exchange failed half way.
    Io {
        /// The socket.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusError::Config(e) => write!(f, "{e}"),
            StatusError::Connect { path, source } => write!(
                f,
                "cannot connect to {}: {source} (is hikwatch running?)",
                path.display()
            ),
            StatusError::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for StatusError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StatusError::Config(e) => Some(e),
            StatusError::Connect { source, .. } | StatusError::Io { source, .. } => Some(source),
        }
    }
}

/// Asks the daemon on `socket` (blocking, 5 s timeouts).
///
/// # Errors
/// [`StatusError::Connect`] or [`StatusError::Io`].
pub fn query(socket: &Path, format: Format) -> Result<String, StatusError> {
    let io_err = |source| StatusError::Io {
        path: socket.to_path_buf(),
        source,
    };
    let mut s = UnixStream::connect(socket).map_err(|source| StatusError::Connect {
        path: socket.to_path_buf(),
        source,
    })?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(io_err)?;
    s.set_write_timeout(Some(Duration::from_secs(5)))
        .map_err(io_err)?;
    let req: &[u8] = match format {
        Format::Json => b"json\n",
        Format::Text => b"text\n",
    };
    s.write_all(req).map_err(io_err)?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(io_err)?;
    Ok(out)
}

/// Where `hikwatch status` finds the daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusSource {
    /// The socket named by this config file's `[status] socket`.
    Config(PathBuf),
    /// This socket.
    Socket(PathBuf),
}

/// `hikwatch status` with its output streams as parameters; returns the exit code: 0,
/// [`crate::exit::UNAVAILABLE`] when no daemon answers, [`crate::exit::CONFIG`] when the
/// config cannot be loaded.
pub fn status_command(
    source: &StatusSource,
    format: Format,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let socket = match source {
        StatusSource::Socket(s) => s.clone(),
        StatusSource::Config(c) => {
            // `status` runs from a shell, often not as the daemon's user: passwords are
            // neither needed nor necessarily readable.
            let opts = LoadOptions {
                check_only: true,
                skip_secrets: true,
                ..LoadOptions::from_env()
            };
            match Config::load_with(c, &opts) {
                Ok(l) => l.config.status.socket,
                Err(e) => {
                    let _ = writeln!(err, "{}", StatusError::Config(e));
                    return crate::exit::CONFIG;
                }
            }
        }
    };
    match query(&socket, format) {
        Ok(text) => {
            let _ = out.write_all(text.as_bytes());
            0
        }
        Err(e) => {
            let _ = writeln!(err, "hikwatch status: {e}");
            crate::exit::UNAVAILABLE
        }
    }
}
