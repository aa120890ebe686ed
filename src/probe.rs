//! `hikwatch probe`: one login, one heartbeat, device info and a logout, with a human or
//! JSON summary. Exit status 0 when every step worked, 1 when one failed (the output says
//! which step, the SDK error code or HTTP failure, its class and what to check), 64 for
//! bad usage.
//!
//! `probe -c FILE --camera ID` takes the camera from a config file, as the daemon would
//! talk to it: address, user, password and backend (the camera's `backend`, else the
//! file's; `[sdk] dir` and `login_mode` for the SDK backend).
//!
//! Two backends: `sdk` (the vendor HCNetSDK, the default) and `isapi` (the crate's own
//! ISAPI client, no SDK needed). Every SDK call runs on the SDK layer's blocking pool with a
//! deadline and every ISAPI request has a total deadline, so a camera that hangs makes the
//! probe fail with a timeout instead of hanging the shell.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::backend::ErrorClass;
#[cfg(feature = "sdk")]
use crate::backend::{CallError, PoolOptions};
use crate::config::{BackendKind, Config};
use crate::isapi::{IsapiClient, IsapiDeviceInfo, IsapiError, IsapiOptions};
use crate::password::Password;
#[cfg(feature = "sdk")]
use crate::sdk::{LoginParams, Sdk, SdkCallError, SdkError, SdkLoginMode, SdkOptions, SdkPool};

/// Which client the probe uses (`--backend`).
#[derive(Debug, PartialEq, Eq)]
pub enum ProbeBackend {
    /// The vendor HCNetSDK (builds with the cargo feature `sdk`).
    #[cfg(feature = "sdk")]
    Sdk {
        /// The vendor SDK folder (`--sdk`).
        sdk: PathBuf,
        /// Login mode (`--mode`, default `private`).
        mode: SdkLoginMode,
    },
    /// hikwatch's own ISAPI client over HTTP: session login or Digest, no SDK.
    Isapi,
}

impl ProbeBackend {
    /// `sdk` or `isapi`.
    pub fn name(&self) -> &'static str {
        match self {
            #[cfg(feature = "sdk")]
            ProbeBackend::Sdk { .. } => "sdk",
            ProbeBackend::Isapi => "isapi",
        }
    }
}

/// What `hikwatch probe` was asked to do (parsed with the rest of the command line).
#[derive(Debug, PartialEq, Eq)]
pub struct ProbeArgs {
    /// The backend and its settings.
    pub backend: ProbeBackend,
    /// The camera's address (`--host`).
    pub host: String,
    /// The camera's SDK port (`--port`).
    pub port: u16,
    /// The user name (`--user`).
    pub user: String,
    /// A file holding the password (`--password-file`; empty, and not read, when the
    /// camera comes from a config file).
    pub password_file: PathBuf,
    /// JSON output instead of the summary for people (`--json`).
    pub json: bool,
}

/// Where the probe stopped.
#[derive(Debug)]
struct Failure {
    stage: &'static str,
    code: Option<u32>,
    class: ErrorClass,
    message: String,
}

impl Failure {
    #[cfg(feature = "sdk")]
    fn from_sdk(stage: &'static str, e: &SdkError) -> Failure {
        Failure {
            stage,
            code: e.code(),
            class: e.class(),
            message: e.to_string(),
        }
    }

    #[cfg(feature = "sdk")]
    fn from_call<T>(stage: &'static str, e: &SdkCallError<T>) -> Failure {
        match e {
            CallError::Failed(e) => Failure::from_sdk(stage, e),
            other => Failure {
                stage,
                code: None,
                class: other.class(),
                message: other.to_string(),
            },
        }
    }

    fn from_isapi(stage: &'static str, e: &IsapiError) -> Failure {
        Failure {
            stage,
            code: None,
            class: e.class(),
            message: e.to_string(),
        }
    }

    fn detail(&self) -> Option<String> {
        match self.class {
            ErrorClass::Auth {
                retries_left: Some(n),
            } => Some(format!("{n} attempts left before the camera locks this IP")),
            ErrorClass::Locked { secs_left: Some(s) } => {
                Some(format!("locked for another {s} s ({} min)", s.div_ceil(60)))
            }
            _ => None,
        }
    }

    fn advice(&self) -> &'static str {
        match self.stage {
            "sdk" => {
                "check that --sdk names the folder holding libhcnetsdk.so, HCNetSDKCom/, \
                 libcrypto and libssl, built for this CPU"
            }
            "password-file" => "check that the password file exists and is readable",
            "address" => "check --host (an IP address or a name this machine resolves)",
            _ => self.class.advice(),
        }
    }
}

/// A successful login, whichever backend made it.
#[derive(Debug)]
struct LoginSummary {
    latency: Duration,
    /// The SDK's user id (SDK backend).
    uid: Option<i32>,
    /// `sSerialNumber` from the SDK's login (SDK backend).
    serial: Option<String>,
    /// `session` or `digest` (ISAPI backend).
    auth: Option<&'static str>,
}

/// What the probe found.
#[derive(Debug, Default)]
struct ProbeReport {
    /// The SDK's version (SDK backend).
    sdk_version: Option<String>,
    login: Option<LoginSummary>,
    heartbeat: Option<Duration>,
    /// Device identity, whichever backend read it.
    device: Option<IsapiDeviceInfo>,
    failure: Option<Failure>,
}

fn run(a: &ProbeArgs) -> ProbeReport {
    match Password::from_file(&a.password_file) {
        Ok(p) => run_with(a, p),
        Err(e) => ProbeReport {
            failure: Some(Failure {
                stage: "password-file",
                code: None,
                class: ErrorClass::Fatal,
                message: format!("cannot read {}: {e}", a.password_file.display()),
            }),
            ..ProbeReport::default()
        },
    }
}

fn run_with(a: &ProbeArgs, password: Password) -> ProbeReport {
    let mut r = ProbeReport::default();
    match &a.backend {
        #[cfg(feature = "sdk")]
        ProbeBackend::Sdk { sdk, mode } => run_sdk(a, sdk, *mode, password, &mut r),
        ProbeBackend::Isapi => run_isapi(a, &password, &mut r),
    }
    r
}

/// The address of `host:port`: the first one a resolver gives.
fn resolve(host: &str, port: u16) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs as _;
    match (host, port).to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("{host} resolves to no address")),
        Err(e) => Err(format!("cannot resolve {host}: {e}")),
    }
}

/// The ISAPI backend: login, heartbeat, device info and logout with hikwatch's own client.
fn run_isapi(a: &ProbeArgs, password: &Password, r: &mut ProbeReport) {
    let addr = match resolve(&a.host, a.port) {
        Ok(addr) => addr,
        Err(message) => {
            r.failure = Some(Failure {
                stage: "address",
                code: None,
                class: ErrorClass::Network,
                message,
            });
            return;
        }
    };
    let mut client = IsapiClient::new(addr, IsapiOptions::default());
    async_io::block_on(async {
        let login = match client.login(&a.user, password.expose().as_bytes()).await {
            Ok(l) => l,
            Err(e) => {
                r.failure = Some(Failure::from_isapi("login", &e));
                return;
            }
        };
        r.login = Some(LoginSummary {
            latency: login.latency,
            uid: None,
            serial: None,
            auth: Some(login.method.name()),
        });
        let t = Instant::now();
        match client.heartbeat().await {
            Ok(()) => r.heartbeat = Some(t.elapsed()),
            Err(e) => r.failure = Some(Failure::from_isapi("heartbeat", &e)),
        }
        if r.failure.is_none() {
            match client.device_info().await {
                Ok(d) => r.device = Some(d),
                Err(e) => r.failure = Some(Failure::from_isapi("device-info", &e)),
            }
        }
        if let Err(e) = client.logout().await {
            if r.failure.is_none() {
                r.failure = Some(Failure::from_isapi("logout", &e));
            }
        }
    });
}

/// The SDK backend: the same steps through the vendor SDK on its blocking pool.
#[cfg(feature = "sdk")]
fn run_sdk(
    a: &ProbeArgs,
    sdk_dir: &std::path::Path,
    mode: SdkLoginMode,
    password: Password,
    r: &mut ProbeReport,
) {
    let opts = SdkOptions::default();
    let sdk = match Sdk::load(sdk_dir, &opts) {
        Ok(s) => s,
        Err(e) => {
            r.failure = Some(Failure::from_sdk("sdk", &e));
            return;
        }
    };
    r.sdk_version = Some(sdk.version().to_string());
    let pool = match SdkPool::new(
        sdk,
        PoolOptions {
            threads: 1,
            max_threads: 2,
            queue: 4,
            name: "probe".into(),
        },
    ) {
        Ok(p) => p,
        Err(e) => {
            r.failure = Some(Failure::from_sdk("sdk", &e));
            return;
        }
    };
    // Generous: connect + receive timeouts, ISAPI's extra requests after login.
    let login_deadline = opts.connect_timeout + opts.recv_timeout * 3;
    let call_deadline = opts.recv_timeout * 2;
    let params = LoginParams {
        host: a.host.clone(),
        port: a.port,
        user: a.user.clone(),
        password,
        mode,
    };
    smol::block_on(async {
        let login = match pool.login(params, login_deadline).await {
            Ok(l) => l,
            Err(e) => {
                r.failure = Some(Failure::from_call("login", &e));
                return;
            }
        };
        let uid = login.uid;
        r.login = Some(LoginSummary {
            latency: login.latency,
            uid: Some(login.uid.0),
            serial: Some(login.serial),
            auth: None,
        });
        let t = Instant::now();
        match pool.heartbeat(uid, call_deadline).await {
            Ok(()) => r.heartbeat = Some(t.elapsed()),
            Err(e) => r.failure = Some(Failure::from_call("heartbeat", &e)),
        }
        if r.failure.is_none() {
            match pool.device_info(uid, call_deadline).await {
                Ok(d) => {
                    r.device = Some(IsapiDeviceInfo {
                        model: d.model,
                        serial: d.serial,
                        firmware: d.firmware,
                        mac: d.mac,
                        name: d.name,
                    });
                }
                Err(e) => r.failure = Some(Failure::from_call("device-info", &e)),
            }
        }
        if let Err(e) = pool.logout(uid, call_deadline).await {
            if r.failure.is_none() {
                r.failure = Some(Failure::from_call("logout", &e));
            }
        }
    });
}

/// `private`, `isapi` or `auto` for the SDK; `isapi` for the ISAPI backend.
fn mode_name(a: &ProbeArgs) -> &'static str {
    match &a.backend {
        #[cfg(feature = "sdk")]
        ProbeBackend::Sdk { mode, .. } => mode.name(),
        ProbeBackend::Isapi => "isapi",
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn human(a: &ProbeArgs, r: &ProbeReport) -> String {
    let mut s = String::new();
    let status = match &r.failure {
        None => "OK".to_string(),
        Some(f) => format!("FAILED at {}", f.stage),
    };
    let _ = writeln!(
        s,
        "hikwatch probe {}:{} ({} {}): {status}",
        a.host,
        a.port,
        a.backend.name(),
        mode_name(a)
    );
    if let Some(d) = &r.device {
        let _ = writeln!(s, "  model      {}", d.model);
        let _ = writeln!(s, "  serial     {}", d.serial);
        let _ = writeln!(s, "  firmware   {}", d.firmware);
        let _ = writeln!(s, "  mac        {}", d.mac);
    } else if let Some(serial) = r.login.as_ref().and_then(|l| l.serial.as_ref()) {
        let _ = writeln!(s, "  serial     {serial}");
    }
    if let Some(l) = &r.login {
        let _ = writeln!(s, "  login      {} ms", ms(l.latency));
        if let Some(auth) = l.auth {
            let _ = writeln!(s, "  auth       {auth}");
        }
    }
    if let Some(h) = r.heartbeat {
        let _ = writeln!(s, "  heartbeat  {} ms", ms(h));
    }
    if let Some(v) = &r.sdk_version {
        let _ = writeln!(s, "  sdk        HCNetSDK {v}");
    }
    if let Some(f) = &r.failure {
        let code = f.code.map_or_else(String::new, |c| format!("error {c}, "));
        let _ = writeln!(
            s,
            "  error      {code}class {}: {}",
            f.class.name(),
            f.message
        );
        if let Some(d) = f.detail() {
            let _ = writeln!(s, "  detail     {d}");
        }
        let _ = writeln!(s, "  advice     {}", f.advice());
    }
    s
}

fn opt_num<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "null".to_string(), |v| v.to_string())
}

fn json(a: &ProbeArgs, r: &ProbeReport) -> String {
    let mut s = String::from("{");
    let _ = write!(
        s,
        "\"ok\":{},\"backend\":{},\"host\":{},\"port\":{},\"mode\":{}",
        r.failure.is_none(),
        crate::json::string(a.backend.name()),
        crate::json::string(&a.host),
        a.port,
        crate::json::string(mode_name(a))
    );
    let _ = write!(
        s,
        ",\"sdk_version\":{}",
        r.sdk_version
            .as_deref()
            .map_or_else(|| "null".into(), crate::json::string)
    );
    match &r.login {
        Some(l) => {
            let _ = write!(
                s,
                ",\"login_ms\":{},\"uid\":{},\"login_serial\":{},\"auth\":{}",
                ms(l.latency),
                opt_num(l.uid),
                l.serial
                    .as_deref()
                    .map_or_else(|| "null".into(), crate::json::string),
                l.auth.map_or_else(|| "null".into(), crate::json::string)
            );
        }
        None => s.push_str(",\"login_ms\":null"),
    }
    let _ = write!(
        s,
        ",\"heartbeat_ms\":{}",
        r.heartbeat.map_or_else(|| "null".into(), ms)
    );
    match &r.device {
        Some(d) => {
            let _ = write!(
                s,
                ",\"device\":{{\"model\":{},\"serial\":{},\"firmware\":{},\"mac\":{},\"name\":{}}}",
                crate::json::string(&d.model),
                crate::json::string(&d.serial),
                crate::json::string(&d.firmware),
                crate::json::string(&d.mac),
                crate::json::string(&d.name)
            );
        }
        None => s.push_str(",\"device\":null"),
    }
    match &r.failure {
        Some(f) => {
            let (retries, secs) = match f.class {
                ErrorClass::Auth { retries_left } => (retries_left.map(u32::from), None),
                ErrorClass::Locked { secs_left } => (None, secs_left),
                _ => (None, None),
            };
            let _ = write!(
                s,
                ",\"error\":{{\"stage\":{},\"code\":{},\"class\":{},\"retries_left\":{},\
                 \"secs_left\":{},\"message\":{},\"advice\":{}}}",
                crate::json::string(f.stage),
                opt_num(f.code),
                crate::json::string(f.class.name()),
                opt_num(retries),
                opt_num(secs),
                crate::json::string(&f.message),
                crate::json::string(f.advice())
            );
        }
        None => s.push_str(",\"error\":null"),
    }
    s.push('}');
    s
}

/// Runs `hikwatch probe` and prints its summary; exit 0 when every step worked, 1 when
/// one failed.
pub fn main(a: &ProbeArgs) -> ExitCode {
    report(a, &run(a))
}

/// `hikwatch probe -c FILE --camera ID`: the camera `id` of the config `config`, with its
/// backend. Exit 78 when the config cannot be loaded, 64 when it has no such camera.
pub fn main_camera(config: &Path, id: &str, json: bool) -> ExitCode {
    let loaded = match Config::load(config) {
        Ok(l) => l.config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(crate::exit::CONFIG);
        }
    };
    #[cfg(feature = "sdk")]
    let sdk = loaded.sdk.dir;
    let Some(cam) = loaded.cameras.into_iter().find(|c| c.id == id) else {
        eprintln!("{}: no camera with id {id:?}", config.display());
        return ExitCode::from(crate::exit::USAGE);
    };
    let backend = match cam.backend {
        BackendKind::Isapi => ProbeBackend::Isapi,
        #[cfg(feature = "sdk")]
        BackendKind::Sdk => ProbeBackend::Sdk {
            sdk,
            mode: crate::backend::sdk::login_params(&cam).mode,
        },
        // The config load has refused a camera on a backend this build lacks.
        #[cfg(not(feature = "sdk"))]
        BackendKind::Sdk => return ExitCode::from(crate::exit::CONFIG),
    };
    let a = ProbeArgs {
        backend,
        host: cam.host,
        port: cam.port,
        user: cam.user,
        password_file: PathBuf::new(),
        json,
    };
    report(&a, &run_with(&a, cam.password))
}

/// Prints the summary of `r`; exit 0 when every step worked, 1 when one failed.
fn report(a: &ProbeArgs, r: &ProbeReport) -> ExitCode {
    if a.json {
        println!("{}", json(a, r));
    } else {
        print!("{}", human(a, r));
    }
    if r.failure.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
