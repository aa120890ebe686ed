//! The vendor HCNetSDK, loaded at run time. The only module with `unsafe`.
//!
//! # Layers
//!
//! - [`types`]: `#[repr(C)]` structs with compile-time size/offset checks (LP64 and
//!   32-bit ARM).
//! - `ffi`: the raw function-pointer table, resolved once from `libhcnetsdk.so` into one
//!   struct that owns the `Library` (never unloaded, see its invariant).
//! - [`Sdk`]: the safe, blocking wrapper. Exactly one is alive per process; it owns
//!   `NET_DVR_Init`/`NET_DVR_Cleanup`.
//! - [`events`]: callback trampolines and the lock-free path to async code
//!   ([`Sdk::events`]); its module docs say which SDK threads call what.
//! - [`SdkPool`]: every blocking call on the neutral worker pool
//!   ([`crate::backend::pool`]: named threads, a deadline per call).
//! - [`class`]: the vendor error-code table ([`classify`]) into the neutral
//!   [`ErrorClass`].
//!
//! Everything neutral (the pool, [`ErrorClass`], the call errors) lives in
//! [`crate::backend`]; this module re-exports what its own signatures use.
//!
//! # Minimum SDK version: 6.1.0.0
//!
//! The struct layouts (`NET_DVR_USER_LOGIN_INFO` with `byLoginMode`/`byHttps`,
//! `NET_DVR_DEVICEINFO_V40` with the lock-out fields and `byLoginMode`) and the
//! `NET_DVR_SetSDKInitCfg` path types 2–4 used here are those of the V6.1 headers, checked
//! against 6.1.9.48 (x86_64) and matching the 6.1.9.4 / 6.1.9.45 (ARM64) packages and the
//! 6.1.5 developer guide. Older lines (V5.x, V6.0) predate or differ in those fields and
//! were never verified, and a struct that is a few bytes off corrupts memory silently.
//! So the loader refuses anything below 6.1.0.0 with [`SdkError::TooOld`].
//!
//! # Where `unsafe` is allowed
//!
//! The crate denies `unsafe_code`; it is allowed back item by item only where the FFI
//! needs it: `ffi` (the symbol table), [`types`] (`repr(C)` structs and callback types),
//! [`events`] (the `extern "C"` callbacks), and in this file the asynchronous-login scratch
//! buffer and the `impl` blocks of [`Sdk`] that call through the table. [`class`],
//! [`elf`], [`error`] are safe code (the password type is
//! [`crate::password::Password`]).
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod class;
pub mod elf;
pub mod error;
#[allow(unsafe_code)] // the extern "C" callbacks the SDK calls
pub mod events;
#[allow(unsafe_code)] // the raw symbol table
mod ffi;
#[allow(unsafe_code)] // repr(C) structs, callback types, zeroed defaults
pub mod types;

use std::ffi::{CStr, CString, c_void};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use crate::backend::ErrorClass;
pub use crate::backend::pool::{CallError, Late, Pool, PoolOptions, PoolStats};
pub use crate::password::Password;
pub use class::{LoginFailure, classify};
pub use elf::Machine;
pub use error::{SdkError, SdkVersion};
pub use events::{
    AsyncLoginResult, EventCounters, EventReceiver, ExceptionCode, LoginEpoch, SdkEvent, StreamId,
    StreamStats, UserId,
};

/// Why a pooled SDK call did not return a value: the neutral [`CallError`] with the SDK's
/// error.
pub type SdkCallError<T> = CallError<T, SdkError>;

use ffi::Api;
use types::*;

/// The oldest SDK hikwatch loads (see the module docs).
pub const MIN_VERSION: SdkVersion = SdkVersion {
    major: 6,
    minor: 1,
    build: 0,
    revision: 0,
};

/// `NET_DVR_RemoteControl` command "check user online": the heartbeat.
const NET_DVR_CHECK_USER_STATUS: u32 = 20005;
/// `NET_DVR_SetSDKInitCfg` types (docs/hcnetsdk.md §1).
const INIT_CFG_SDK_PATH: i32 = 2;
const INIT_CFG_LIBEAY_PATH: i32 = 3;
const INIT_CFG_SSLEAY_PATH: i32 = 4;
/// `NET_DVR_Set/GetSDKLocalCfg` type of `NET_DVR_LOCAL_CHECK_DEV` (docs/hcnetsdk.md §2, §6).
const LOCAL_CFG_CHECK_DEV: i32 = 10;

/// Where asynchronous logins may write their `NET_DVR_DEVICEINFO_V40` (the SDK insists on
/// a non-null pointer; the result hikwatch uses arrives through the callback).
#[cfg(any(test, feature = "test-support"))]
struct DeviceInfoSink(std::cell::UnsafeCell<NET_DVR_DEVICEINFO_V40>);

// SAFETY: Rust code never reads or writes through the cell; its address is only handed to
// the SDK as a write-only scratch buffer, so there is no Rust-visible shared access to
// synchronise.
#[cfg(any(test, feature = "test-support"))]
#[allow(unsafe_code)]
unsafe impl Sync for DeviceInfoSink {}

#[cfg(any(test, feature = "test-support"))]
#[allow(unsafe_code)]
static ASYNC_DEVICE_INFO_SINK: DeviceInfoSink = DeviceInfoSink(std::cell::UnsafeCell::new(
    // SAFETY: all-zero bytes are a valid NET_DVR_DEVICEINFO_V40 (integers and byte arrays
    // only).
    unsafe { std::mem::zeroed() },
));

/// Set while an [`Sdk`] is alive: the SDK is process-global.
static LOADED: AtomicBool = AtomicBool::new(false);

/// SDK-wide settings applied at load.
#[derive(Clone, Debug)]
pub struct SdkOptions {
    /// `NET_DVR_SetConnectTime`: TCP connect timeout (the SDK clamps to 0.3–75 s).
    pub connect_timeout: Duration,
    /// `NET_DVR_SetRecvTimeOut`: receive timeout (the manual says at least 3 s).
    pub recv_timeout: Duration,
    /// `NET_DVR_SetReconnect`: the SDK's own reconnect of preview/alarm channels, with its
    /// interval. `None` (the default) switches it off because hikwatch owns reconnects;
    /// the benchmark turns it on to compare.
    pub sdk_reconnect: Option<Duration>,
    /// A pause in stream data longer than this makes the next data queue
    /// [`SdkEvent::StreamResumed`].
    pub stream_gap: Duration,
    /// `NET_DVR_SetLogToFile`: level 0 (off, the default) to 3, and the folder.
    pub log_level: u32,
    /// Folder for the SDK's own log files (only with `log_level` > 0).
    pub log_dir: Option<PathBuf>,
    /// The SDK's own session heartbeat (`NET_DVR_SetSDKLocalCfg(10, NET_DVR_LOCAL_CHECK_DEV)`),
    /// the detector the `event` and `queue` strategies rely on. `None` leaves the SDK's
    /// default (every 120 s). Default: every 30 s, exception after 1 failure.
    pub check_online: Option<CheckOnline>,
}

/// The SDK's own "check device online" heartbeat (`NET_DVR_LOCAL_CHECK_DEV`, docs/hcnetsdk.md §6):
/// every `interval` the SDK checks each session, and after `fail_max` failures in a row it
/// calls the exception callback (`EXCEPTION_EXCHANGE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckOnline {
    /// `dwCheckOnlineTimeout`: 30–120 s (the header's range; the SDK default is 120 s).
    pub interval: Duration,
    /// `dwCheckOnlineNetFailMax`: at least 1.
    pub fail_max: u32,
}

impl CheckOnline {
    /// What hikwatch configures: the shortest period the header allows, and the exception
    /// at the first failure (the supervisor confirms or acts on it; docs/peers.md L4).
    pub const DEFAULT: CheckOnline = CheckOnline {
        interval: Duration::from_secs(30),
        fail_max: 1,
    };
}

impl Default for SdkOptions {
    fn default() -> Self {
        SdkOptions {
            connect_timeout: Duration::from_secs(5),
            recv_timeout: Duration::from_secs(5),
            sdk_reconnect: None,
            stream_gap: Duration::from_secs(5),
            log_level: 0,
            log_dir: None,
            check_online: Some(CheckOnline::DEFAULT),
        }
    }
}

/// Login protocol (`byLoginMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SdkLoginMode {
    /// Hikvision private protocol (port 8000).
    #[default]
    Private,
    /// ISAPI over HTTP(S) (port 80/443).
    Isapi,
    /// Let the SDK pick ("adaptive").
    Auto,
}

impl SdkLoginMode {
    fn byte(self) -> u8 {
        match self {
            SdkLoginMode::Private => 0,
            SdkLoginMode::Isapi => 1,
            SdkLoginMode::Auto => 2,
        }
    }

    /// Parses `private`, `isapi` or `auto`.
    pub fn parse(s: &str) -> Option<SdkLoginMode> {
        match s {
            "private" => Some(SdkLoginMode::Private),
            "isapi" => Some(SdkLoginMode::Isapi),
            "auto" => Some(SdkLoginMode::Auto),
            _ => None,
        }
    }

    /// `private`, `isapi` or `auto`.
    pub fn name(self) -> &'static str {
        match self {
            SdkLoginMode::Private => "private",
            SdkLoginMode::Isapi => "isapi",
            SdkLoginMode::Auto => "auto",
        }
    }
}

/// What a login needs. `Debug` never shows the password.
#[derive(Clone, Debug)]
pub struct LoginParams {
    /// Device address (IP or host name), at most 128 bytes.
    pub host: String,
    /// Port (8000 private, 80/443 ISAPI).
    pub port: u16,
    /// User name, at most 63 bytes.
    pub user: String,
    /// Password, at most 63 bytes; zeroed on drop.
    pub password: Password,
    /// Protocol.
    pub mode: SdkLoginMode,
}

/// A successful login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    /// The session.
    pub uid: UserId,
    /// Which login of `uid` this is: exceptions stamped with another epoch belong to an
    /// earlier session that had the same id.
    pub epoch: LoginEpoch,
    /// `sSerialNumber`.
    pub serial: String,
    /// Analog channels (`byChanNum`) and the first one (`byStartChan`).
    pub channels: u8,
    /// First channel number.
    pub start_channel: u8,
    /// The protocol the SDK used (`byLoginMode` of DEVICEINFO_V40: 0 private, 1 ISAPI).
    pub login_mode: u8,
    /// How long `NET_DVR_Login_V40` took.
    pub latency: Duration,
}

/// Device identity for `hikwatch probe`, from `GET /ISAPI/System/deviceInfo`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceInfo {
    /// `<model>`.
    pub model: String,
    /// `<serialNumber>`.
    pub serial: String,
    /// `<firmwareVersion>` and, when present, `<firmwareReleasedDate>`.
    pub firmware: String,
    /// `<macAddress>`.
    pub mac: String,
    /// `<deviceName>`.
    pub name: String,
}

/// Which stream to open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamParams {
    /// Channel number (usually 1 for a camera).
    pub channel: i32,
    /// 0 main stream, 1 sub stream.
    pub stream_type: u32,
    /// 0 TCP, 1 UDP, … (`dwLinkMode`).
    pub link_mode: u32,
}

impl Default for StreamParams {
    fn default() -> Self {
        StreamParams {
            channel: 1,
            stream_type: 0,
            link_mode: 0,
        }
    }
}

/// What the SDK holds right now (`NET_DVR_GetSDKState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdkState {
    /// Logged-in users.
    pub logins: u32,
    /// Live-view (RealPlay) handles.
    pub real_plays: u32,
}

/// The loaded SDK. Exactly one exists per process at a time; creating it runs
/// `NET_DVR_Init`, dropping it runs `NET_DVR_Cleanup` (the library itself stays mapped).
///
/// Every method blocks the calling thread and is safe to call from several threads at
/// once (HCNetSDK is thread-safe; the error code is read right after each failing call
/// on the same thread). Async code uses [`SdkPool`].
pub struct Sdk {
    api: Api,
    dir: PathBuf,
    version: SdkVersion,
    sdk_version_word: u32,
    recv_timeout_ms: u32,
}

impl fmt::Debug for Sdk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sdk")
            .field("dir", &self.dir)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// Releases [`LOADED`] when a load fails half-way.
/// The files of an SDK folder that [`Sdk::load`] needs, checked to exist.
struct SdkFiles {
    /// The folder, absolute.
    dir: PathBuf,
    /// `libhcnetsdk.so`, for this build's CPU.
    lib: PathBuf,
    /// The OpenSSL libraries shipped with the SDK.
    crypto: PathBuf,
    ssl: PathBuf,
}

impl SdkFiles {
    /// Makes `dir` absolute and checks the library (present, ELF, this CPU), the
    /// component folder and the OpenSSL libraries.
    fn locate(dir: &Path) -> Result<SdkFiles, SdkError> {
        let dir = std::fs::canonicalize(dir).map_err(|source| SdkError::DirMissing {
            dir: dir.to_path_buf(),
            source,
        })?;
        if !dir.is_dir() {
            return Err(SdkError::DirMissing {
                source: std::io::Error::other("not a directory"),
                dir,
            });
        }
        let lib = dir.join("libhcnetsdk.so");
        if !lib.is_file() {
            return Err(SdkError::FileMissing {
                path: lib,
                what: "the HCNetSDK library",
            });
        }
        let machine = elf::read_machine(&lib).map_err(|source| SdkError::Read {
            path: lib.clone(),
            source,
        })?;
        let found = machine.map_err(|problem| SdkError::NotElf {
            path: lib.clone(),
            problem,
        })?;
        if found != Machine::current() {
            return Err(SdkError::WrongArch {
                path: lib,
                found,
                expected: Machine::current(),
            });
        }
        let com = dir.join("HCNetSDKCom");
        if !com.is_dir() {
            return Err(SdkError::FileMissing {
                path: com,
                what: "the SDK component folder (NET_DVR_SetSDKInitCfg 2 points at its parent)",
            });
        }
        let crypto = find_lib(&dir, "libcrypto").ok_or_else(|| SdkError::FileMissing {
            path: dir.join("libcrypto.so.1.1"),
            what: "OpenSSL libcrypto shipped with the SDK (NET_DVR_SetSDKInitCfg 3)",
        })?;
        let ssl = find_lib(&dir, "libssl").ok_or_else(|| SdkError::FileMissing {
            path: dir.join("libssl.so.1.1"),
            what: "OpenSSL libssl shipped with the SDK (NET_DVR_SetSDKInitCfg 4)",
        })?;
        Ok(SdkFiles {
            dir,
            lib,
            crypto,
            ssl,
        })
    }
}

/// The arguments of `NET_DVR_SetSDKInitCfg` and `NET_DVR_SetLogToFile`, in the C forms the
/// SDK takes, prepared before anything is loaded so that a bad path fails early.
struct SdkInitConfig {
    sdk_path: NET_DVR_LOCAL_SDK_PATH,
    crypto: CString,
    ssl: CString,
    log_dir: Option<CString>,
}

impl SdkInitConfig {
    fn new(files: &SdkFiles, opts: &SdkOptions) -> Result<SdkInitConfig, SdkError> {
        let mut sdk_path = NET_DVR_LOCAL_SDK_PATH::zeroed();
        {
            use std::os::unix::ffi::OsStrExt;
            put_str(
                &mut sdk_path.sPath,
                files.dir.as_os_str().as_bytes(),
                "SDK folder path",
            )?;
        }
        Ok(SdkInitConfig {
            sdk_path,
            crypto: c_path(&files.crypto, "libcrypto path")?,
            ssl: c_path(&files.ssl, "libssl path")?,
            log_dir: match &opts.log_dir {
                Some(d) => Some(c_path(d, "SDK log folder")?),
                None => None,
            },
        })
    }
}

struct LoadGuard(bool);
impl Drop for LoadGuard {
    fn drop(&mut self) {
        if !self.0 {
            LOADED.store(false, Ordering::Release);
        }
    }
}

fn find_lib(dir: &Path, stem: &str) -> Option<PathBuf> {
    let exact = dir.join(format!("{stem}.so.1.1"));
    if exact.is_file() {
        return Some(exact);
    }
    // The greatest name (what sorting and taking the last gave), without a sort.
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("{stem}.so")))
        })
        .max()
}

fn c_path(p: &Path, field: &'static str) -> Result<CString, SdkError> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes()).map_err(|_| SdkError::InvalidArgument {
        field,
        reason: format!("{} contains a NUL byte", p.display()),
    })
}

/// The header's range for `NET_DVR_LOCAL_CHECK_DEV` (docs/hcnetsdk.md §6).
fn check_online_valid(c: CheckOnline) -> Result<(), SdkError> {
    let secs = Duration::from_secs;
    if c.interval < secs(30) || c.interval > secs(120) || c.fail_max == 0 {
        return Err(SdkError::InvalidArgument {
            field: "check_online",
            reason: format!(
                "interval {:?} must be 30-120 s and fail_max {} at least 1",
                c.interval, c.fail_max
            ),
        });
    }
    Ok(())
}

fn ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// Copies `s` into a fixed C char array, NUL-terminated; errors when it does not fit or
/// holds a NUL.
fn put_str(dst: &mut [u8], s: &[u8], field: &'static str) -> Result<(), SdkError> {
    if s.len() >= dst.len() {
        return Err(SdkError::InvalidArgument {
            field,
            reason: format!("{} bytes, at most {} allowed", s.len(), dst.len() - 1),
        });
    }
    if s.contains(&0) {
        return Err(SdkError::InvalidArgument {
            field,
            reason: "contains a NUL byte".into(),
        });
    }
    dst[..s.len()].copy_from_slice(s);
    dst[s.len()..].fill(0);
    Ok(())
}

/// The login struct, boxed so its address is stable; the password bytes are wiped
/// (volatile) by [`LoginInfo::wipe`] right after the call and again on drop.
struct LoginInfo(Box<NET_DVR_USER_LOGIN_INFO>);

impl LoginInfo {
    fn new(p: &LoginParams) -> Result<LoginInfo, SdkError> {
        let mut li = LoginInfo(Box::new(NET_DVR_USER_LOGIN_INFO::zeroed()));
        put_str(&mut li.0.sDeviceAddress, p.host.as_bytes(), "host")?;
        put_str(&mut li.0.sUserName, p.user.as_bytes(), "user")?;
        put_str(
            &mut li.0.sPassword,
            p.password.expose().as_bytes(),
            "password",
        )?;
        li.0.wPort = p.port;
        li.0.byLoginMode = p.mode.byte();
        // byHttps 0: plain HTTP for ISAPI; TLS would need certificates on the gateway.
        Ok(li)
    }

    fn wipe(&mut self) {
        crate::password::wipe(&mut self.0.sPassword);
    }
}

impl Drop for LoginInfo {
    fn drop(&mut self) {
        self.wipe();
    }
}

/// Extracts the text of `<tag>…</tag>` (first occurrence), XML entities decoded.
fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&close)?;
    let raw = xml[start..start + len].trim();
    Some(
        raw.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// The last error on this thread: `NET_DVR_GetLastError` and its message.
#[allow(unsafe_code)] // two raw SDK calls and the message it points to
fn api_last_error(api: &Api) -> (u32, Option<String>) {
    // SAFETY: `Api` invariant; no arguments.
    let code = unsafe { (api.get_last_error)() };
    let mut no: LONG = 0;
    // SAFETY: `Api` invariant; `no` is a valid out-pointer for the call.
    let p = unsafe { (api.get_error_msg)(&mut no) };
    let msg = if p.is_null() {
        None
    } else {
        // SAFETY: non-null; the SDK returns a pointer to a NUL-terminated message in
        // its own static table, valid at least until the next SDK call on this
        // thread. It is copied immediately.
        let s = unsafe { CStr::from_ptr(p) }
            .to_string_lossy()
            .trim()
            .to_string();
        (!s.is_empty()).then_some(s)
    };
    (code, msg)
}

fn api_fail(api: &Api, call: &'static str, failure: &LoginFailure) -> SdkError {
    let (code, message) = api_last_error(api);
    SdkError::Call {
        call,
        code,
        class: classify(code, failure),
        message,
    }
}

fn api_check(api: &Api, ok: BOOL, call: &'static str) -> Result<(), SdkError> {
    if ok != 0 {
        Ok(())
    } else {
        Err(api_fail(api, call, &LoginFailure::default()))
    }
}

#[allow(unsafe_code)] // the safe wrapper: every SDK call goes through the raw table here
impl Sdk {
    /// Loads `libhcnetsdk.so` from `dir` (made absolute), checks it, points the SDK at its
    /// component folder and OpenSSL (`NET_DVR_SetSDKInitCfg` 2/3/4), runs `NET_DVR_Init`,
    /// registers the exception callback and applies `opts`.
    ///
    /// # Errors
    ///
    /// Missing folder or files ([`SdkError::DirMissing`], [`SdkError::FileMissing`]), a
    /// library for another CPU ([`SdkError::WrongArch`]), a missing symbol, an SDK older
    /// than [`MIN_VERSION`], another live `Sdk` ([`SdkError::AlreadyLoaded`]), or a
    /// failing init call ([`SdkError::Call`] with the vendor code).
    pub fn load(dir: &Path, opts: &SdkOptions) -> Result<Arc<Sdk>, SdkError> {
        let files = SdkFiles::locate(dir)?;
        let mut init_cfg = SdkInitConfig::new(&files, opts)?;
        if let Some(c) = opts.check_online {
            check_online_valid(c)?;
        }

        if LOADED.swap(true, Ordering::AcqRel) {
            return Err(SdkError::AlreadyLoaded);
        }
        let mut guard = LoadGuard(false);
        events::init(opts.stream_gap).map_err(|e| SdkError::InvalidArgument {
            field: "event doorbell",
            reason: e.to_string(),
        })?;

        let api = Sdk::load_symbols(&files.lib)?;
        // Until `NET_DVR_Init` succeeded there is no `Sdk` value: its `Drop` runs
        // `NET_DVR_Cleanup`, which must only ever pair with a successful Init. A failure
        // before that drops only `api` (the library stays mapped, see its invariant).
        Sdk::apply_init_config(&api, &mut init_cfg)?;
        let mut sdk = Sdk::init(api, files.dir, opts)?;
        // From here on `Drop for Sdk` runs Cleanup and releases LOADED.
        guard.0 = true;
        // A refused SDK is cleaned up by `Drop`.
        sdk.check_version(files.lib)?;
        let sdk = Arc::new(sdk);
        sdk.configure(opts, init_cfg.log_dir.as_deref())?;
        log::info!(
            "sdk: loaded HCNetSDK {} from {}",
            sdk.version,
            sdk.dir.display()
        );
        Ok(sdk)
    }

    /// Maps `lib` and resolves every symbol hikwatch calls.
    fn load_symbols(lib: &Path) -> Result<Api, SdkError> {
        // SAFETY: `lib` is `libhcnetsdk.so` from the configured SDK folder and its ELF
        // machine matches this build (checked by `SdkFiles::locate`); running its
        // initialisers is what using the vendor SDK means.
        unsafe { Api::load(lib) }
    }

    /// `NET_DVR_SetSDKInitCfg` 2/3/4: the component folder, libcrypto, libssl. Must run
    /// before `NET_DVR_Init`.
    fn apply_init_config(api: &Api, cfg: &mut SdkInitConfig) -> Result<(), SdkError> {
        // SAFETY: `Api` invariant; type 2 takes a NET_DVR_LOCAL_SDK_PATH*, 3 and 4 a
        // NUL-terminated path (docs/hcnetsdk.md §1). All three live in `cfg`, which outlives
        // the call, and the SDK copies them during the call (it must: callers commonly
        // pass stack buffers, and hikwatch's are dropped after Init).
        unsafe {
            api_check(
                api,
                (api.set_sdk_init_cfg)(
                    INIT_CFG_SDK_PATH,
                    (&mut cfg.sdk_path as *mut NET_DVR_LOCAL_SDK_PATH).cast(),
                ),
                "NET_DVR_SetSDKInitCfg(SDK_PATH)",
            )?;
            api_check(
                api,
                (api.set_sdk_init_cfg)(INIT_CFG_LIBEAY_PATH, cfg.crypto.as_ptr() as *mut c_void),
                "NET_DVR_SetSDKInitCfg(LIBEAY_PATH)",
            )?;
            api_check(
                api,
                (api.set_sdk_init_cfg)(INIT_CFG_SSLEAY_PATH, cfg.ssl.as_ptr() as *mut c_void),
                "NET_DVR_SetSDKInitCfg(SSLEAY_PATH)",
            )?;
        }
        Ok(())
    }

    /// `NET_DVR_Init`; the `Sdk` value exists only once it succeeded. The caller holds
    /// the process-wide `LOADED` flag.
    fn init(api: Api, dir: PathBuf, opts: &SdkOptions) -> Result<Sdk, SdkError> {
        // SAFETY: `Api` invariant; no arguments. Paired with Cleanup in `Drop` (the
        // `LOADED` flag guarantees one pair per process at a time).
        let ok = unsafe { (api.init)() };
        api_check(&api, ok, "NET_DVR_Init")?;
        Ok(Sdk {
            api,
            dir,
            version: SdkVersion::from_build_word(0),
            sdk_version_word: 0,
            recv_timeout_ms: ms(opts.recv_timeout),
        })
    }

    /// Reads the version and refuses an SDK older than [`MIN_VERSION`]. The version
    /// getters answer 0 before Init (observed with 6.1.9.48), so this runs after it.
    fn check_version(&mut self, lib: PathBuf) -> Result<(), SdkError> {
        // SAFETY: `Api` invariant (valid pointer, correct signature); no arguments.
        self.version = SdkVersion::from_build_word(unsafe { (self.api.get_sdk_build_version)() });
        // SAFETY: as above.
        self.sdk_version_word = unsafe { (self.api.get_sdk_version)() };
        if self.version < MIN_VERSION {
            return Err(SdkError::TooOld {
                path: lib,
                found: self.version,
                minimum: MIN_VERSION,
            });
        }
        Ok(())
    }

    /// After Init: the exception callback, the timeouts, the SDK's own reconnect, its log
    /// file and the optional online check, from `opts`.
    fn configure(&self, opts: &SdkOptions, log_dir: Option<&CStr>) -> Result<(), SdkError> {
        // SAFETY: `Api` invariant; reserved arguments 0/NULL as on Linux (docs/hcnetsdk.md §1), a
        // non-null `extern "C"` callback that only touches statics, and no user pointer.
        let ok = unsafe {
            (self.api.set_exception_callback_v30)(
                0,
                std::ptr::null_mut(),
                Some(events::exception_trampoline),
                std::ptr::null_mut(),
            )
        };
        self.check(ok, "NET_DVR_SetExceptionCallBack_V30")?;
        self.set_connect_timeout(opts.connect_timeout)?;
        self.set_recv_timeout(opts.recv_timeout)?;
        self.set_sdk_reconnect(opts.sdk_reconnect)?;
        let log_ptr = log_dir.map_or(std::ptr::null_mut(), |c| c.as_ptr() as *mut _);
        // SAFETY: `Api` invariant; the folder is NUL-terminated (or NULL = the SDK's
        // default) and outlives the call.
        let ok = unsafe { (self.api.set_log_to_file)(opts.log_level.min(3), log_ptr, 1) };
        self.check(ok, "NET_DVR_SetLogToFile")?;
        if let Some(c) = opts.check_online {
            self.set_check_online(c)?;
        }
        Ok(())
    }

    /// The SDK's build version (`NET_DVR_GetSDKBuildVersion`, e.g. 6.1.9.48).
    pub fn version(&self) -> SdkVersion {
        self.version
    }

    /// `NET_DVR_GetSDKVersion`: major and minor in the high and low 16 bits.
    pub fn version_word(&self) -> u32 {
        self.sdk_version_word
    }

    /// The SDK folder (absolute).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last error on this thread: `NET_DVR_GetLastError` and its message.
    pub fn last_error(&self) -> (u32, Option<String>) {
        api_last_error(&self.api)
    }

    fn fail(&self, call: &'static str, failure: &LoginFailure) -> SdkError {
        api_fail(&self.api, call, failure)
    }

    fn check(&self, ok: BOOL, call: &'static str) -> Result<(), SdkError> {
        api_check(&self.api, ok, call)
    }

    /// `NET_DVR_SetConnectTime`.
    pub fn set_connect_timeout(&self, t: Duration) -> Result<(), SdkError> {
        // SAFETY: `Api` invariant; two integers (dwTryTimes is reserved).
        let ok = unsafe { (self.api.set_connect_time)(ms(t), 1) };
        self.check(ok, "NET_DVR_SetConnectTime")
    }

    /// `NET_DVR_SetRecvTimeOut`.
    pub fn set_recv_timeout(&self, t: Duration) -> Result<(), SdkError> {
        // SAFETY: `Api` invariant; one integer.
        let ok = unsafe { (self.api.set_recv_timeout)(ms(t)) };
        self.check(ok, "NET_DVR_SetRecvTimeOut")
    }

    /// `NET_DVR_SetReconnect`: `None` switches the SDK's own preview/alarm reconnect off
    /// (hikwatch's default), `Some(interval)` on.
    pub fn set_sdk_reconnect(&self, every: Option<Duration>) -> Result<(), SdkError> {
        let (interval, on) = match every {
            Some(d) => (ms(d), 1),
            None => (5000, 0),
        };
        // SAFETY: `Api` invariant; two integers.
        let ok = unsafe { (self.api.set_reconnect)(interval, on) };
        self.check(ok, "NET_DVR_SetReconnect")
    }

    /// Sets the SDK's own session heartbeat (`NET_DVR_SetSDKLocalCfg(10, …)`).
    ///
    /// # Errors
    ///
    /// [`SdkError::InvalidArgument`] outside 30–120 s or for `fail_max` 0;
    /// [`SdkError::Call`] when the SDK refuses it.
    pub fn set_check_online(&self, c: CheckOnline) -> Result<(), SdkError> {
        check_online_valid(c)?;
        let mut cfg = NET_DVR_LOCAL_CHECK_DEV::zeroed();
        cfg.dwCheckOnlineTimeout = ms(c.interval);
        cfg.dwCheckOnlineNetFailMax = c.fail_max;
        // SAFETY: `Api` invariant; type 10 takes a NET_DVR_LOCAL_CHECK_DEV* (docs/hcnetsdk.md §2: two
        // DWORDs and byRes[256], 264 bytes, size checked at compile time in `types`); `cfg`
        // is a live, exclusively borrowed struct of that layout for the whole call, and the
        // SDK copies it (it is a settings call; nothing keeps the pointer).
        let ok = unsafe {
            (self.api.set_sdk_local_cfg)(
                LOCAL_CFG_CHECK_DEV,
                (&mut cfg as *mut NET_DVR_LOCAL_CHECK_DEV).cast(),
            )
        };
        self.check(ok, "NET_DVR_SetSDKLocalCfg(CHECK_DEV)")
    }

    /// Reads the SDK's session-heartbeat settings back (`NET_DVR_GetSDKLocalCfg(10, …)`).
    ///
    /// # Errors
    ///
    /// [`SdkError::Call`] when the SDK refuses.
    pub fn check_online(&self) -> Result<CheckOnline, SdkError> {
        let mut cfg = NET_DVR_LOCAL_CHECK_DEV::zeroed();
        // SAFETY: `Api` invariant; type 10 writes a NET_DVR_LOCAL_CHECK_DEV (264 bytes,
        // checked in `types`) into `cfg`, which is live, writable and exclusively borrowed
        // for the whole call.
        let ok = unsafe {
            (self.api.get_sdk_local_cfg)(
                LOCAL_CFG_CHECK_DEV,
                (&mut cfg as *mut NET_DVR_LOCAL_CHECK_DEV).cast(),
            )
        };
        self.check(ok, "NET_DVR_GetSDKLocalCfg(CHECK_DEV)")?;
        Ok(CheckOnline {
            interval: Duration::from_millis(u64::from(cfg.dwCheckOnlineTimeout)),
            fail_max: cfg.dwCheckOnlineNetFailMax,
        })
    }

    /// Blocking login (`NET_DVR_Login_V40`). The password bytes in the login struct are
    /// wiped right after the call.
    ///
    /// # Errors
    ///
    /// [`SdkError::InvalidArgument`] for fields that do not fit; [`SdkError::Call`] with
    /// the vendor code and class (auth with attempts left, locked with seconds left).
    pub fn login(&self, p: &LoginParams) -> Result<Login, SdkError> {
        let mut info = LoginInfo::new(p)?;
        let mut dev = NET_DVR_DEVICEINFO_V40::zeroed();
        let t0 = Instant::now();
        // SAFETY: `Api` invariant; both pointers are to live, exclusively borrowed structs
        // of the vendor layout (checked in `types`); the call is synchronous
        // (bUseAsynLogin = 0), so the SDK keeps neither pointer.
        let uid = unsafe { (self.api.login_v40)(&mut *info.0, &mut dev) };
        let latency = t0.elapsed();
        let err = (uid < 0).then(|| {
            self.fail(
                "NET_DVR_Login_V40",
                &LoginFailure {
                    support_lock: dev.bySupportLock == 1,
                    retry_login_time: dev.byRetryLoginTime,
                    surplus_lock_time: dev.dwSurplusLockTime,
                },
            )
        });
        info.wipe();
        if let Some(e) = err {
            return Err(e);
        }
        Ok(Login {
            uid: UserId(uid),
            epoch: events::login_returned(uid),
            serial: events::c_string(&dev.struDeviceV30.sSerialNumber),
            channels: dev.struDeviceV30.byChanNum,
            start_channel: dev.struDeviceV30.byStartChan,
            login_mode: dev.byLoginMode,
            latency,
        })
    }

    /// Asynchronous login (`bUseAsynLogin` = 1): returns the uid at once; the result
    /// arrives as [`SdkEvent::AsyncLogin`] with `token` (possibly before this call has
    /// returned the uid to the caller: match results by token). Tokens are truncated to the
    /// pointer width (32 bits everywhere hikwatch runs). The uid must be logged out in
    /// both outcomes: after a failure the SDK still holds its slot until `Logout`.
    ///
    /// # Errors
    ///
    /// As [`Sdk::login`], for failures the SDK reports before starting.
    ///
    /// Test-only (the `test-support` feature): the daemon logs in synchronously on its
    /// call pool; `tests/sdk_real.rs` uses this to measure the SDK's own parallel logins.
    #[cfg(any(test, feature = "test-support"))]
    pub fn login_async(&self, p: &LoginParams, token: u32) -> Result<UserId, SdkError> {
        let mut info = LoginInfo::new(p)?;
        info.0.bUseAsynLogin = 1;
        info.0.cbLoginResult = Some(events::login_trampoline);
        info.0.pUser = token as usize as *mut c_void;
        // SAFETY: `Api` invariant; the login struct is live and of the vendor layout and
        // the SDK copies it before returning (it returns before the login runs, and the
        // vendor samples pass stack structs); the device-info pointer is the static
        // write-only sink (valid forever, never read by Rust; the SDK refuses NULL with
        // error 17 even for async logins, and may write it later from its own thread);
        // the callback only touches statics; `pUser` is an integer token, never
        // dereferenced.
        let uid = unsafe { (self.api.login_v40)(&mut *info.0, ASYNC_DEVICE_INFO_SINK.0.get()) };
        let err = (uid < 0).then(|| self.fail("NET_DVR_Login_V40", &LoginFailure::default()));
        info.wipe();
        match err {
            Some(e) => Err(e),
            None => {
                events::login_returned(uid);
                Ok(UserId(uid))
            }
        }
    }

    /// `NET_DVR_Logout`. Exception callbacks for `uid` from here on carry a new
    /// [`LoginEpoch`], so none of them is taken for this session's.
    pub fn logout(&self, uid: UserId) -> Result<(), SdkError> {
        // SAFETY: `Api` invariant; an integer id (unknown ids give error 47).
        let ok = unsafe { (self.api.logout)(uid.0) };
        let r = self.check(ok, "NET_DVR_Logout");
        events::logout_returned(uid.0);
        r
    }

    /// Heartbeat: `NET_DVR_RemoteControl(uid, NET_DVR_CHECK_USER_STATUS, NULL, 0)`.
    /// In ISAPI mode this is a synchronous `PUT /ISAPI/Security/sessionHeartbeat`.
    pub fn heartbeat(&self, uid: UserId) -> Result<(), SdkError> {
        // SAFETY: `Api` invariant; command 20005 takes no input buffer (NULL, 0).
        let ok = unsafe {
            (self.api.remote_control)(uid.0, NET_DVR_CHECK_USER_STATUS, std::ptr::null_mut(), 0)
        };
        self.check(ok, "NET_DVR_RemoteControl(CHECK_USER_STATUS)")
    }

    /// Starts live view without decoding (`NET_DVR_RealPlay_V40`, `hPlayWnd` 0,
    /// blocking connect); data only updates the stream's counters ([`Sdk::stream_stats`]).
    pub fn start_stream(&self, uid: UserId, p: &StreamParams) -> Result<StreamId, SdkError> {
        let Some((slot, generation, user)) = events::alloc_slot() else {
            return Err(SdkError::InvalidArgument {
                field: "stream",
                reason: format!("all {} stream slots are in use", events::MAX_STREAMS),
            });
        };
        let mut info = NET_DVR_PREVIEWINFO::zeroed();
        info.lChannel = p.channel;
        info.dwStreamType = p.stream_type;
        info.dwLinkMode = p.link_mode;
        info.hPlayWnd = 0;
        info.bBlocked = 1;
        // SAFETY: `Api` invariant; `info` is a live PREVIEWINFO of the vendor layout that
        // the SDK reads during the call; the callback only touches statics and `user` is
        // an integer (slot and generation), never dereferenced.
        let handle = unsafe {
            (self.api.real_play_v40)(
                uid.0,
                &mut info,
                Some(events::real_data_trampoline),
                user as *mut c_void,
            )
        };
        if handle < 0 {
            let e = self.fail("NET_DVR_RealPlay_V40", &LoginFailure::default());
            events::free_slot(slot, generation);
            return Err(e);
        }
        events::set_slot_handle(slot, handle);
        Ok(StreamId {
            handle,
            slot,
            generation,
        })
    }

    /// `NET_DVR_StopRealPlay`; the stream's counters are released either way.
    pub fn stop_stream(&self, s: StreamId) -> Result<(), SdkError> {
        // SAFETY: `Api` invariant; an integer handle (unknown handles give error 47).
        let ok = unsafe { (self.api.stop_real_play)(s.handle) };
        events::free_slot(s.slot, s.generation);
        self.check(ok, "NET_DVR_StopRealPlay")
    }

    /// The counters of a running stream; `None` after it was stopped.
    pub fn stream_stats(&self, s: StreamId) -> Option<StreamStats> {
        events::stats(s)
    }

    /// Running streams whose last data (or start, if none yet) is older than
    /// `older_than`: the ongoing-gap check the runtime runs on its own timer.
    pub fn stalled_streams(&self, older_than: Duration) -> Vec<(StreamId, Duration)> {
        events::stalled(older_than)
    }

    /// Sends an ISAPI request through the session (`NET_DVR_STDXMLConfig`), e.g.
    /// `"GET /ISAPI/System/deviceInfo"`, and returns the reply body.
    pub fn isapi(&self, uid: UserId, request: &str) -> Result<String, SdkError> {
        const OUT: usize = 64 * 1024;
        if request.contains('\0') {
            return Err(SdkError::InvalidArgument {
                field: "ISAPI request",
                reason: "contains a NUL byte".into(),
            });
        }
        // The SDK reads the URL up to a NUL and ignores dwRequestUrlLen (observed with
        // 6.1.9.48: without the terminator it sent whatever followed in memory).
        let mut url = Vec::with_capacity(request.len() + 1);
        url.extend_from_slice(request.as_bytes());
        url.push(0);
        let mut out = vec![0u8; OUT];
        let mut status = vec![0u8; 4096];
        let mut input = NET_DVR_XML_CONFIG_INPUT::zeroed();
        input.dwSize = std::mem::size_of::<NET_DVR_XML_CONFIG_INPUT>() as u32;
        input.lpRequestUrl = url.as_mut_ptr().cast();
        input.dwRequestUrlLen = request.len() as u32;
        input.dwRecvTimeOut = self.recv_timeout_ms;
        let mut output = NET_DVR_XML_CONFIG_OUTPUT::zeroed();
        output.dwSize = std::mem::size_of::<NET_DVR_XML_CONFIG_OUTPUT>() as u32;
        output.lpOutBuffer = out.as_mut_ptr().cast();
        output.dwOutBufferSize = OUT as u32;
        output.lpStatusBuffer = status.as_mut_ptr().cast();
        output.dwStatusSize = status.len() as u32;
        // SAFETY: `Api` invariant; input/output are live structs of the vendor layout
        // with `dwSize` set; every buffer they point to lives until after the call and
        // its length is the one given (the SDK writes at most dwOutBufferSize /
        // dwStatusSize bytes); the URL is NUL-terminated (the SDK reads it as a C string).
        let ok = unsafe { (self.api.std_xml_config)(uid.0, &mut input, &mut output) };
        self.check(ok, "NET_DVR_STDXMLConfig")?;
        let n = (output.dwReturnedXMLSize as usize).min(OUT);
        let end = out[..n].iter().position(|&b| b == 0).unwrap_or(n);
        Ok(String::from_utf8_lossy(&out[..end]).into_owned())
    }

    /// Model, serial, firmware and MAC from `GET /ISAPI/System/deviceInfo`.
    ///
    /// Why ISAPI through `NET_DVR_STDXMLConfig` rather than `NET_DVR_GetDVRConfig`
    /// (`NET_DVR_GET_DEVICECFG_V40`): one request gives all four fields including the
    /// MAC (DEVICECFG_V40 has no MAC and encodes firmware as packed integers), it works
    /// the same in ISAPI mode and, on devices that tunnel ISAPI over the private
    /// protocol, in private mode, and it needs no further vendor struct whose layout we
    /// would have to verify.
    pub fn device_info(&self, uid: UserId) -> Result<DeviceInfo, SdkError> {
        const REQ: &str = "GET /ISAPI/System/deviceInfo";
        let xml = self.isapi(uid, REQ)?;
        let model = xml_text(&xml, "model").ok_or_else(|| SdkError::BadReply {
            request: REQ.into(),
            reason: format!("no <model> in {} bytes of reply", xml.len()),
        })?;
        let mut firmware = xml_text(&xml, "firmwareVersion").unwrap_or_default();
        if let Some(date) = xml_text(&xml, "firmwareReleasedDate") {
            firmware = format!("{firmware} {date}").trim().to_string();
        }
        Ok(DeviceInfo {
            model,
            serial: xml_text(&xml, "serialNumber").unwrap_or_default(),
            firmware,
            mac: xml_text(&xml, "macAddress").unwrap_or_default(),
            name: xml_text(&xml, "deviceName").unwrap_or_default(),
        })
    }

    /// `NET_DVR_GetSDKState`: how many logins and live views the SDK holds.
    pub fn state(&self) -> Result<SdkState, SdkError> {
        let mut st = NET_DVR_SDKSTATE::default();
        // SAFETY: `Api` invariant; `st` is a live, writable NET_DVR_SDKSTATE (84 bytes).
        let ok = unsafe { (self.api.get_sdk_state)(&mut st) };
        self.check(ok, "NET_DVR_GetSDKState")?;
        Ok(SdkState {
            logins: st.dwTotalLoginNum,
            real_plays: st.dwTotalRealPlayNum,
        })
    }

    /// The single event receiver; `None` while another one exists.
    pub fn events(&self) -> Option<EventReceiver> {
        EventReceiver::take()
    }

    /// Process-wide event counters (overflows, caught panics).
    pub fn event_counters(&self) -> EventCounters {
        events::counters()
    }
}

#[allow(unsafe_code)] // NET_DVR_Cleanup
impl Drop for Sdk {
    fn drop(&mut self) {
        // SAFETY: `Api` invariant; paired with the successful Init in `load` (an `Sdk`
        // value exists only after Init succeeded). No call is in flight: every caller
        // holds `&Sdk` or an `Arc<Sdk>`, and this is the last owner.
        let ok = unsafe { (self.api.cleanup)() };
        if ok == 0 {
            let (code, _) = self.last_error();
            log::warn!("sdk: NET_DVR_Cleanup failed with error {code}");
        }
        LOADED.store(false, Ordering::Release);
    }
}

/// Runs [`Sdk`] calls on a [`Pool`] with deadlines: the async face of the SDK.
#[derive(Clone, Debug)]
pub struct SdkPool {
    sdk: Arc<Sdk>,
    pool: Pool,
}

impl SdkPool {
    /// A pool of `opts.threads` workers for `sdk`.
    ///
    /// # Errors
    /// [`SdkError::InvalidArgument`] for impossible sizes, or when the OS refuses to start
    /// a thread.
    pub fn new(sdk: Arc<Sdk>, opts: PoolOptions) -> Result<SdkPool, SdkError> {
        let pool = Pool::new(opts).map_err(|e| SdkError::InvalidArgument {
            field: "pool",
            reason: e.to_string(),
        })?;
        Ok(SdkPool { pool, sdk })
    }

    /// The SDK.
    pub fn sdk(&self) -> &Arc<Sdk> {
        &self.sdk
    }

    /// Pool counters (live and stuck workers, queue).
    pub fn stats(&self) -> PoolStats {
        self.pool.stats()
    }

    /// [`Sdk::login`]. A success that arrives after the deadline and that nobody collects
    /// from [`Late`] is logged out on the worker.
    pub async fn login(
        &self,
        p: LoginParams,
        deadline: Duration,
    ) -> Result<Login, SdkCallError<Login>> {
        let sdk = self.sdk.clone();
        let orphan_sdk = self.sdk.clone();
        self.pool
            .run(
                "login",
                deadline,
                move || sdk.login(&p),
                Some(Box::new(move |l: Login| {
                    log::warn!("sdk: logging out late login {} nobody waited for", l.uid);
                    let _ = orphan_sdk.logout(l.uid);
                })),
            )
            .await
    }

    /// [`Sdk::login_async`]; the result arrives as an event. Test-only.
    #[cfg(any(test, feature = "test-support"))]
    pub async fn login_async(
        &self,
        p: LoginParams,
        token: u32,
        deadline: Duration,
    ) -> Result<UserId, SdkCallError<UserId>> {
        let sdk = self.sdk.clone();
        self.pool
            .run(
                "login_async",
                deadline,
                move || sdk.login_async(&p, token),
                None,
            )
            .await
    }

    /// [`Sdk::logout`], as a teardown call: never cancelled or refused (a handle that is
    /// not logged out stays alive in the SDK), see [`Pool::run_teardown`].
    pub async fn logout(&self, uid: UserId, deadline: Duration) -> Result<(), SdkCallError<()>> {
        let sdk = self.sdk.clone();
        self.pool
            .run_teardown("logout", deadline, move || sdk.logout(uid))
            .await
    }

    /// [`Sdk::heartbeat`].
    pub async fn heartbeat(&self, uid: UserId, deadline: Duration) -> Result<(), SdkCallError<()>> {
        let sdk = self.sdk.clone();
        self.pool
            .run("heartbeat", deadline, move || sdk.heartbeat(uid), None)
            .await
    }

    /// [`Sdk::start_stream`]; a late stream nobody collects is stopped.
    pub async fn start_stream(
        &self,
        uid: UserId,
        p: StreamParams,
        deadline: Duration,
    ) -> Result<StreamId, SdkCallError<StreamId>> {
        let sdk = self.sdk.clone();
        let orphan_sdk = self.sdk.clone();
        self.pool
            .run(
                "start_stream",
                deadline,
                move || sdk.start_stream(uid, &p),
                Some(Box::new(move |s: StreamId| {
                    let _ = orphan_sdk.stop_stream(s);
                })),
            )
            .await
    }

    /// [`Sdk::stop_stream`], as a teardown call (see [`SdkPool::logout`]).
    pub async fn stop_stream(
        &self,
        s: StreamId,
        deadline: Duration,
    ) -> Result<(), SdkCallError<()>> {
        let sdk = self.sdk.clone();
        self.pool
            .run_teardown("stop_stream", deadline, move || sdk.stop_stream(s))
            .await
    }

    /// [`Sdk::device_info`].
    pub async fn device_info(
        &self,
        uid: UserId,
        deadline: Duration,
    ) -> Result<DeviceInfo, SdkCallError<DeviceInfo>> {
        let sdk = self.sdk.clone();
        self.pool
            .run("device_info", deadline, move || sdk.device_info(uid), None)
            .await
    }

    /// [`Sdk::isapi`].
    pub async fn isapi(
        &self,
        uid: UserId,
        request: String,
        deadline: Duration,
    ) -> Result<String, SdkCallError<String>> {
        let sdk = self.sdk.clone();
        self.pool
            .run("isapi", deadline, move || sdk.isapi(uid, &request), None)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pw: &str) -> LoginParams {
        LoginParams {
            host: "10.0.0.1".into(),
            port: 8000,
            user: "admin".into(),
            password: Password::new(pw.into()),
            mode: SdkLoginMode::Isapi,
        }
    }

    #[test]
    fn login_struct_is_filled_and_the_password_wiped() {
        let mut li = LoginInfo::new(&params("s3cret")).expect("fits");
        assert_eq!(&li.0.sDeviceAddress[..9], b"10.0.0.1\0");
        assert_eq!(li.0.wPort, 8000);
        assert_eq!(&li.0.sPassword[..7], b"s3cret\0");
        assert_eq!(li.0.byLoginMode, 1);
        li.wipe();
        assert!(li.0.sPassword.iter().all(|&b| b == 0));
        assert_eq!(
            &li.0.sUserName[..6],
            b"admin\0",
            "only the password is wiped"
        );
    }

    #[test]
    fn too_long_fields_are_rejected_by_name() {
        let mut p = params("x");
        p.host = "h".repeat(129);
        let Err(SdkError::InvalidArgument { field, .. }) = LoginInfo::new(&p) else {
            panic!("129-byte host accepted");
        };
        assert_eq!(field, "host");
        let p = params(&"p".repeat(64));
        assert!(LoginInfo::new(&p).is_err());
        let p = params("a\0b");
        assert!(LoginInfo::new(&p).is_err());
    }

    #[test]
    fn debug_of_login_params_hides_the_password() {
        let s = format!("{:?}", params("hunter2"));
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("Password(***)"));
    }

    #[test]
    fn xml_fields() {
        let x = "<DeviceInfo><deviceName>a &amp; b</deviceName><model> DS-1 </model>\
                 <serialNumber>S1</serialNumber></DeviceInfo>";
        assert_eq!(xml_text(x, "model").as_deref(), Some("DS-1"));
        assert_eq!(xml_text(x, "deviceName").as_deref(), Some("a & b"));
        assert_eq!(xml_text(x, "macAddress"), None);
    }

    #[test]
    fn modes() {
        assert_eq!(SdkLoginMode::parse("isapi"), Some(SdkLoginMode::Isapi));
        assert_eq!(SdkLoginMode::parse("auto").map(SdkLoginMode::byte), Some(2));
        assert_eq!(SdkLoginMode::parse("x"), None);
    }
}
