//! The configuration file: one TOML file, validated as a whole at load.
//!
//! - [`Config::load`] reads the file (and the board profile it names), applies defaults,
//!   reads every camera's password and checks everything, collecting *all* problems: each
//!   [`Problem`] names the file, the line and the field, like
//!   `/etc/hikwatch.toml:14: camera[2].port: 70000 is out of range 1..=65535`.
//! - Precedence, lowest first: built-in defaults (documented on each field and in
//!   `examples/hikwatch.toml`), then the board profile (`board = "armv7-generic"` or a path,
//!   see `board/README.md`), then the config file itself.
//! - Passwords are [`Password`]s: never printed, zeroed on drop.
//! - [`diff`] and [`credentials_changed`] tell a SIGHUP reload what changed.
//!
//! This module depends on no other hikwatch module except the pure
//! [`Settings`] it maps `[supervisor]` onto: plain structs,
//! `Duration`s and enums.

mod board;
mod diff;
mod duration;
mod load;

use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::password::Password;
pub use board::{BUILTIN_BOARDS, builtin_board};
pub use diff::{CameraChange, ConfigDiff, credentials_changed, diff};
pub use duration::{format_duration, parse_duration};

/// The whole daemon configuration, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The file this configuration was loaded from.
    pub path: PathBuf,
    /// The board profile applied under the file's own settings: its built-in name or the
    /// path it was read from. `None` when the file names no `board`.
    pub board: Option<String>,
    /// `backend = "sdk" | "isapi"` at the top of the file: the backend of every camera that
    /// does not choose its own. Default `sdk`.
    pub backend: BackendKind,
    /// `[sdk]`: where the vendor SDK lives. Used (and its folder checked) only when some
    /// camera uses the SDK backend ([`Config::uses_sdk`]).
    pub sdk: SdkConfig,
    /// `[state]`: the backoff state file.
    pub state: StateConfig,
    /// `[status]`: status socket and metrics listener.
    pub status: StatusConfig,
    /// `[supervisor]`: detection, reconnect and resource tuning.
    pub supervisor: SupervisorConfig,
    /// `[log]`: log level and repeat suppression.
    pub log: LogConfig,
    /// `[watchdog]`: the optional hardware watchdog.
    pub watchdog: WatchdogConfig,
    /// `[[camera]]`: every camera, in file order. Ids are unique.
    pub cameras: Vec<CameraConfig>,
}

/// `[sdk]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdkConfig {
    /// Folder holding `libhcnetsdk.so`, `HCNetSDKCom/`, `libcrypto`, `libssl`.
    /// Default `/opt/hikwatch/sdk`. Checked at load: it must contain `libhcnetsdk.so`.
    pub dir: PathBuf,
    /// Threads that run blocking SDK calls (logins, heartbeats, logouts). Default 8; board
    /// profiles set it. A call stuck past its deadline gets a replacement thread, up to
    /// four times this many.
    pub threads: u32,
}

/// `[state]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateConfig {
    /// The state file. Default `/var/lib/hikwatch/state.bin` (the unit's
    /// `StateDirectory=hikwatch`).
    pub path: PathBuf,
    /// How often changed state is written at most. Default 10 s: losing up to 10 s of
    /// backoff bookkeeping on a crash is harmless, and it bounds flash writes to 8640 a day
    /// in the worst case (only when something changed).
    pub flush_interval: Duration,
}

/// `[status]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusConfig {
    /// Unix socket `hikwatch status` talks to. Default `/run/hikwatch/status.sock` (the
    /// unit's `RuntimeDirectory=hikwatch`).
    pub socket: PathBuf,
    /// Prometheus listener. Default off; meant for loopback (`127.0.0.1:9184`), a
    /// non-loopback address gets a warning.
    pub metrics: Option<SocketAddr>,
}

pub use crate::supervisor::{Settings, Strategy};

/// `[supervisor]`: every knob of [`Settings`], under the same name and with the same
/// meaning (see each field of [`Settings`] for its default and why), plus the board's
/// camera budget.
///
/// One source of truth: an empty `[supervisor]` table gives exactly `Settings::default()`
/// (tested), and `examples/hikwatch.toml` writes those defaults out (tested too).
#[derive(Clone, Debug, PartialEq)]
pub struct SupervisorConfig {
    /// The supervisor's tuning, key by key: `strategy`, `heartbeat_interval`,
    /// `heartbeat_misses`, `max_concurrent_logins`, `workers`, `backoff_initial`,
    /// `backoff_multiplier`, `backoff_cap`, `slow_backoff_floor`, `fatal_retry`,
    /// `stable_period`, `start_spread`, `lock_margin`, `lock_unknown`, `probe_interval`,
    /// `probe_rate`, `blind_login_interval`, `reopen_login_gap`, `stream_gap`,
    /// `resource_throttle`, `login_deadline`, `heartbeat_deadline`, `logout_deadline`,
    /// `stream_deadline`, `probe_deadline`, `link_watch_timeout`.
    pub settings: Settings,
    /// Most cameras this board is sized for (more is a config error). Default 64; board
    /// profiles set it.
    pub max_cameras: u32,
}

impl SupervisorConfig {
    /// The supervisor settings this table configures.
    pub fn settings(&self) -> Settings {
        self.settings
    }
}

/// `[log]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// Level. Default `info`.
    pub level: log::LevelFilter,
    /// A repeated error of one camera is logged once, then summarised at most once per
    /// this window. Default 1 min.
    pub repeat_window: Duration,
}

/// `[watchdog]` (the systemd watchdog needs no config: it follows `WatchdogSec=`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchdogConfig {
    /// Hardware watchdog device (`/dev/watchdog0`). Default none.
    pub device: Option<PathBuf>,
    /// Keepalive period for the hardware watchdog when systemd's watchdog is off (with it
    /// on, keepalives follow its pings). Must be well below the device's timeout.
    /// Default 5 s.
    pub keepalive: Duration,
}

/// Which backend talks to a camera (`backend`, at the top of the file and per camera).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// The vendor HCNetSDK (`[sdk] dir`), the default.
    Sdk,
    /// hikwatch's own ISAPI client over HTTP: no vendor SDK needed.
    Isapi,
}

impl BackendKind {
    /// The config-file spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Sdk => "sdk",
            BackendKind::Isapi => "isapi",
        }
    }

    /// Whether this build has the backend: the SDK backend needs the cargo feature `sdk`
    /// (on by default).
    pub fn compiled_in(self) -> bool {
        match self {
            BackendKind::Sdk => cfg!(feature = "sdk"),
            BackendKind::Isapi => true,
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the SDK logs in (`byLoginMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LoginMode {
    /// Hikvision private protocol, default port 8000 (default).
    Private,
    /// ISAPI over HTTP, default port 80.
    Isapi,
    /// SDK adaptive mode, default port 8000.
    Auto,
}

impl LoginMode {
    /// The config-file spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            LoginMode::Private => "private",
            LoginMode::Isapi => "isapi",
            LoginMode::Auto => "auto",
        }
    }

    /// The port used when `port` is not set.
    pub fn default_port(self) -> u16 {
        match self {
            LoginMode::Private | LoginMode::Auto => 8000,
            LoginMode::Isapi => 80,
        }
    }
}

/// Which stream of a channel to watch (`dwStreamType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamType {
    /// Main stream (0).
    Main,
    /// Sub stream (1).
    Sub,
    /// Third stream (2).
    Third,
}

impl StreamType {
    /// The config-file spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamType::Main => "main",
            StreamType::Sub => "sub",
            StreamType::Third => "third",
        }
    }

    /// The SDK's `dwStreamType` value.
    pub fn sdk_value(self) -> u32 {
        match self {
            StreamType::Main => 0,
            StreamType::Sub => 1,
            StreamType::Third => 2,
        }
    }
}

/// `[camera.stream]`: watch a live stream for data gaps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamConfig {
    /// Channel number. Default 1.
    pub channel: u32,
    /// Stream type. Default main.
    pub stream_type: StreamType,
    /// The device's RTSP port for the ISAPI backend (`rtsp_port`); `None` for the default
    /// (554). Refused for SDK cameras (the SDK asks the device).
    pub rtsp_port: Option<u16>,
}

/// Where a camera's password came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PasswordSource {
    /// `password_file`: the resolved path.
    File(PathBuf),
    /// `password_credential`: the systemd credential name.
    Credential(String),
    /// `password` in the config file (allowed with a warning).
    Inline,
}

/// One `[[camera]]`.
#[derive(Clone, Debug, PartialEq)]
pub struct CameraConfig {
    /// Unique id: 1 to 64 of `A-Z a-z 0-9 . _ -`. Used in logs, status, metrics, state.
    pub id: String,
    /// IP address or host name (at most 128 bytes).
    pub host: String,
    /// Device port. Default from [`LoginMode::default_port`].
    pub port: u16,
    /// User name (1 to 63 bytes).
    pub user: String,
    /// The password (1 to 63 bytes); empty only when loaded with
    /// [`LoadOptions::skip_secrets`] or in a `check-config` run that could not read a
    /// systemd credential.
    pub password: Password,
    /// Where the password came from.
    pub password_source: PasswordSource,
    /// How hikwatch talks to this camera: `backend` of the camera, else the file's.
    pub backend: BackendKind,
    /// The SDK's login protocol (SDK backend only; the ISAPI backend always speaks ISAPI).
    /// Default private.
    pub login_mode: LoginMode,
    /// Stream to watch, if any.
    pub stream: Option<StreamConfig>,
}

impl Default for SdkConfig {
    fn default() -> Self {
        SdkConfig {
            dir: PathBuf::from("/opt/hikwatch/sdk"),
            threads: 8,
        }
    }
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            path: PathBuf::from("/var/lib/hikwatch/state.bin"),
            flush_interval: Duration::from_secs(10),
        }
    }
}

impl Default for StatusConfig {
    fn default() -> Self {
        StatusConfig {
            socket: PathBuf::from("/run/hikwatch/status.sock"),
            metrics: None,
        }
    }
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        SupervisorConfig {
            settings: Settings::default(),
            max_cameras: 64,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: log::LevelFilter::Info,
            repeat_window: Duration::from_secs(60),
        }
    }
}

impl Default for WatchdogConfig {
    fn default() -> Self {
        WatchdogConfig {
            device: None,
            keepalive: Duration::from_secs(5),
        }
    }
}

impl Config {
    /// Loads and validates `path` for the daemon: systemd credentials come from
    /// `$CREDENTIALS_DIRECTORY` and must be readable.
    ///
    /// # Errors
    /// [`ConfigError::Read`] when the file cannot be read, [`ConfigError::Invalid`] with
    /// every problem found otherwise.
    pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
        Config::load_with(path, &LoadOptions::from_env())
    }

    /// Loads `path` with explicit options (tests, `check-config`).
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn load_with(path: &Path, opts: &LoadOptions) -> Result<LoadedConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        load::load_text(&text, path, opts)
    }

    /// Validates config text as if it had been read from `path` (relative paths inside it
    /// resolve against `path`'s folder).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] with every problem found.
    pub fn from_text(
        text: &str,
        path: &Path,
        opts: &LoadOptions,
    ) -> Result<LoadedConfig, ConfigError> {
        load::load_text(text, path, opts)
    }

    /// The camera with this id.
    pub fn camera(&self, id: &str) -> Option<&CameraConfig> {
        self.cameras.iter().find(|c| c.id == id)
    }

    /// Whether the daemon needs the vendor SDK: some camera uses the SDK backend, or there
    /// is no camera and the file's backend is the SDK (so that a file without cameras
    /// is checked as before).
    pub fn uses_sdk(&self) -> bool {
        if self.cameras.is_empty() {
            return self.backend == BackendKind::Sdk;
        }
        self.cameras.iter().any(|c| c.backend == BackendKind::Sdk)
    }
}

/// A successfully loaded configuration and the warnings it produced.
#[derive(Debug)]
pub struct LoadedConfig {
    /// The configuration.
    pub config: Config,
    /// Problems that do not stop the daemon (inline password, world-readable password
    /// file, ...). Log them at start.
    pub warnings: Vec<Problem>,
}

/// How to load.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Folder of systemd credentials (`$CREDENTIALS_DIRECTORY`).
    pub credentials_dir: Option<PathBuf>,
    /// `check-config` mode: a `password_credential` that cannot be checked because
    /// `credentials_dir` is unset is a warning, not an error (the variable only exists
    /// inside the service).
    pub check_only: bool,
    /// Do not read passwords at all (`hikwatch status` only needs the socket path and
    /// may run as a user who cannot read them). Password sources are still checked for
    /// form; every [`CameraConfig::password`] is empty.
    pub skip_secrets: bool,
}

impl LoadOptions {
    /// Daemon options from the environment.
    pub fn from_env() -> Self {
        LoadOptions {
            credentials_dir: std::env::var_os("CREDENTIALS_DIRECTORY")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            check_only: false,
            skip_secrets: false,
        }
    }
}

/// How bad a [`Problem`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The configuration is unusable.
    Error,
    /// Works, but should be fixed.
    Warning,
}

/// One problem in a config file or board profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// The file (or `<built-in board NAME>`).
    pub file: String,
    /// 1-based line, when the problem has a place.
    pub line: Option<usize>,
    /// The field, like `camera[2].port` (cameras count from 0).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if self.severity == Severity::Warning {
            f.write_str(": warning")?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug)]
pub enum ConfigError {
    /// The config file itself could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file has problems; at least one is an error. Warnings are included, everything
    /// sorted by file and line.
    Invalid {
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The error-severity problems (empty for [`ConfigError::Read`]).
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        let list: &[Problem] = match self {
            ConfigError::Read { .. } => &[],
            ConfigError::Invalid { problems } => problems,
        };
        list.iter().filter(|p| p.severity == Severity::Error)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, source } => {
                write!(f, "{}: cannot read config: {source}", path.display())
            }
            ConfigError::Invalid { problems } => {
                for (i, p) in problems.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\n")?;
                    }
                    write!(f, "{p}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            ConfigError::Invalid { .. } => None,
        }
    }
}

/// `hikwatch check-config`: loads `path` with `opts`, prints every problem to `err` and a
/// summary line to `out`; returns the exit code, 0 when the file is usable and
/// [`crate::exit::CONFIG`] (78) when it is not.
pub fn check_config(
    path: &Path,
    opts: &LoadOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    match Config::load_with(path, opts) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                let _ = writeln!(err, "{w}");
            }
            let c = &loaded.config;
            let board = c.board.as_deref().unwrap_or("none");
            let _ = writeln!(
                out,
                "{}: OK ({} camera{}, board {board}, {} warning{})",
                path.display(),
                c.cameras.len(),
                if c.cameras.len() == 1 { "" } else { "s" },
                loaded.warnings.len(),
                if loaded.warnings.len() == 1 { "" } else { "s" },
            );
            0
        }
        Err(e) => {
            let _ = writeln!(err, "{e}");
            let n = e.errors().count();
            if n > 0 {
                let _ = writeln!(
                    err,
                    "{}: {n} error{} found",
                    path.display(),
                    if n == 1 { "" } else { "s" }
                );
            }
            crate::exit::CONFIG
        }
    }
}
