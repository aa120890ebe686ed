//! The smol shell around the supervisor core: `hikwatch run`.
//!
//! # Tasks
//!
//! One [`smol::LocalExecutor`] owned by [`run_loaded`] (not the global executor: its tasks
//! are dropped when the run ends, after the final state flush), driven on the calling
//! thread. It is a *local* executor on purpose: everything async in the daemon is
//! waiting (SDK calls run on the [`SdkPool`]'s threads, never here), so one thread is
//! plenty, and the supervisor's state can be shared with the status server as a
//! `RefCell` instead of behind locks. Its tasks:
//!
//! - **the supervisor loop** (the future `run_loaded` drives): the only owner of the
//!   [`Supervisor`]. It waits for the first of: the stop future, a reload (SIGHUP), the
//!   core's next timer, a message from a call task, an SDK callback event; feeds it to
//!   `handle`/`tick`; executes the actions that come out; and bumps the watchdog's
//!   progress counter. About once a second (more often with a short `WatchdogSec`) it
//!   also reports stream data, flushes rate-limited log summaries, updates `STATUS=` and
//!   writes the state file when a write is due;
//! - **call tasks**, one per backend call or probe the core asks for (SDK calls on the
//!   SDK pool's threads, ISAPI calls as tasks here; see [`crate::backend`]). A camera's SDK calls run
//!   one at a time in the order the core emitted them (its *lane*: stop the stream, then
//!   log out, then the next login); probes run beside it. SDK calls go through the
//!   [`SdkPool`] with the core's deadline; a call past it is reported to the core as
//!   stuck at once (`CallStuck`) and its late result is delivered afterwards with the
//!   original token (a late login is then logged out by the core). Probes are
//!   non-blocking TCP connects (`Async<TcpStream>`) raced against the probe deadline;
//! - **link watches** (hybrid, `StrategyTraits::link_watch`), one per live session: an idle,
//!   unauthenticated TCP connection to the camera's port. A rebooting or crashing device
//!   resets it at once; the watch then reports `Event::LinkLost` and the core confirms
//!   with one heartbeat (milliseconds instead of up to a heartbeat interval). A device
//!   that closes the idle connection but accepts a new one is watched on the new one;
//!   the watch ends with the session's logout. An ISAPI session's watch is its own event
//!   stream (`alertStream`, opened with the login): its end is `LinkLost`, its silence
//!   `LinkSilent`;
//! - **the status server** (`hikwatch status`) and, when configured, **the metrics
//!   listener**, both answering from a snapshot of the supervisor;
//! - **the watchdog**, pinging systemd (`WATCHDOG=1`) and the hardware watchdog only when
//!   the supervisor loop made progress since the last ping.
//!
//! # Inputs
//!
//! | Input | Becomes |
//! |---|---|
//! | SDK exception callback (`lUserID`, type) | `Event::Exception` for the camera holding that session (a map kept from login and logout results); the SDK reuses freed ids, so an exception stamped with an earlier login of the id (`LoginEpoch`) is dropped |
//! | an ISAPI stream reader's broken stream (connection ended, silent for `stream_gap`, garbage) | `Event::Exception` (`PreviewClosed`) for its session, taken with the stream data (about once a second) |
//! | stream data (the SDK's per-stream counters and the ISAPI stream readers' frame counts, read about once a second; the SDK's "started"/"resumed" events at once) | `Event::StreamData`, at most about once a second per camera |
//! | a call's result | `LoginOk`/`LoginFailed`/`HeartbeatOk`/…, with the call's token |
//! | a call past its deadline | `Event::CallStuck`, then its late result |
//! | a probe | `Event::ProbeResult` |
//! | a link watch's connection reset (or closed, and refused when reopened) | `Event::LinkLost` |
//! | the core's timers | `Supervisor::tick` at `next_wakeup` |
//! | SIGHUP | a reload (below) |
//! | SIGTERM, SIGINT | the graceful stop (below) |
//! | a status request | a snapshot (`Supervisor::status`, `fleet_status`) |
//!
//! Time for the core is monotonic milliseconds since the daemon started.
//!
//! # Start
//!
//! Config, then the SDK (with [`SdkOptions::check_online`]: the SDK's own heartbeat every
//! 30 s, which the `event` and `queue` strategies rely on), then the state file: each
//! camera that had a backoff, an auth-hold or a lock is restored into it (the store spreads
//! the restored attempts over `start_spread`, and the core never schedules one earlier
//! than its own spread slot); cameras no longer configured are dropped from the file. A
//! device session a killed run left behind (ISAPI session login) is ended before the
//! camera's next login.
//! Then the status socket, the metrics listener and `READY=1` with `STATUS=`.
//!
//! # Reload (SIGHUP)
//!
//! `RELOADING=1`, then the file is loaded again. A bad file is logged (every problem) and
//! the running configuration kept. Otherwise [`config::diff`](crate::config::diff) says
//! what changed: removed cameras are torn down (logged out) and forgotten, added ones
//! start (spread like at start), an address change reconnects, a credentials change
//! releases an auth-hold (`Event::CredentialsChanged`; the state file's fingerprint is
//! updated), a changed stream setting starts the camera afresh; unchanged cameras are not
//! touched (same session). `log.*` applies at once; other global settings at the next
//! start (logged). Then `READY=1`.
//!
//! # Stop (SIGTERM, SIGINT)
//!
//! `STOPPING=1`; every camera's state is recorded as it is (so the teardown does not
//! overwrite a backoff, hold or lock); every camera is torn down (stream stopped, session
//! logged out: simcam sees the logouts); the loop keeps running until all are done or
//! [`SHUTDOWN_DEADLINE`] passed; then the state file is written, the hardware watchdog
//! gets its magic close, and the run returns (exit 0).
//!
//! # Latencies (metrics `hikwatch_detection_latency_seconds`, `…_recovery_…`)
//!
//! - **Detection latency**: from the last evidence that a session was healthy (its login,
//!   a successful heartbeat, stream data, or the SDK's "resumed" callback) to the moment
//!   the supervisor declared the session lost. The break itself happened somewhere in
//!   that interval, so this is an upper bound of the true detection delay; with the
//!   `poll` strategy it is at most about `heartbeat_interval × (heartbeat_misses + 1)`
//!   plus one heartbeat deadline.
//! - **Recovery latency**: from that loss verdict to the camera being online again (the
//!   core's `Recovered { downtime_ms }`). It includes the time the camera was really
//!   down; the first connect after start is not counted.
//!
//! # Exit codes
//!
//! 0 after a clean stop; 78 (`EX_CONFIG`) when the configuration or the SDK folder is
//! unusable (restarting cannot help, and the unit does not restart on 78); 1 otherwise.

mod calls;
#[cfg(debug_assertions)]
pub mod hook;
mod observe;
mod shell;
mod signals;

use std::cell::RefCell;
use std::ffi::OsString;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::pin::{Pin, pin};
use std::process::ExitCode;
use std::rc::Rc;
#[cfg(feature = "sdk")]
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_io::{Async, Timer};
use futures_lite::{Stream, StreamExt, future};
use smol::LocalExecutor;

use crate::backend::{Backends, EventSource, RawEvent};
#[cfg(feature = "sdk")]
use crate::backend::{PoolOptions, SdkBackend};
use crate::config::{CameraConfig, Config, ConfigError, LoadOptions};
#[cfg(feature = "sdk")]
use crate::sdk::{EventReceiver, Sdk, SdkError, SdkOptions, SdkPool};
use crate::status::FleetStatusReport;
use crate::store::{CameraKey, LoadedState, Origin, Store, StoreOptions};
use crate::supervisor::{Settings, Strategy, Supervisor};
use crate::watchdog::{HwWatchdog, Notifier, NotifyState, Progress, Watchdog, WatchdogError};

pub use signals::Signals;

use calls::Msg;
use shell::{Clock, DriverParts, SupervisorDriver};

/// How long a graceful stop may take before the state is written and the run ends
/// anyway: below the unit's `TimeoutStopSec=30s`, above the default logout deadline
/// (10 s).
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(20);

/// Capacity of the call tasks' inbox. A task waits when it is full, so memory stays
/// bounded; there is at most about one call and one probe in flight per camera.
const INBOX: usize = 1024;

/// Most queued messages or SDK events handled in one loop turn before the loop looks at
/// its other inputs again.
const BATCH: usize = 256;

/// The longest pause between two housekeeping rounds (stream data, log summaries,
/// `STATUS=`, state writes); shorter when the watchdog pings more often.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// What a run needs besides the configuration: the process environment, captured once.
#[derive(Debug, Default)]
pub struct RunOptions {
    /// `$NOTIFY_SOCKET` (`None`: no systemd notification).
    pub notify_socket: Option<OsString>,
    /// `$WATCHDOG_USEC` and `$WATCHDOG_PID` as systemd set them.
    pub watchdog_usec: Option<String>,
    /// See `watchdog_usec`.
    pub watchdog_pid: Option<String>,
    /// How to load the configuration on reload (credentials folder).
    pub load: LoadOptions,
    /// SDK-wide settings (connect and receive timeouts, the SDK's own heartbeat).
    #[cfg(feature = "sdk")]
    pub sdk: SdkOptions,
    /// Seed of the supervisor's jitter and the start spread; `None` for a random one.
    pub seed: Option<u64>,
    /// The end-to-end tests' stall hook (debug builds only, see [`hook`]).
    #[cfg(debug_assertions)]
    pub stall: Option<hook::Stall>,
}

impl RunOptions {
    /// From the environment (the daemon).
    pub fn from_env() -> RunOptions {
        RunOptions {
            notify_socket: std::env::var_os("NOTIFY_SOCKET"),
            watchdog_usec: std::env::var("WATCHDOG_USEC").ok(),
            watchdog_pid: std::env::var("WATCHDOG_PID").ok(),
            load: LoadOptions::from_env(),
            #[cfg(feature = "sdk")]
            sdk: SdkOptions::default(),
            seed: None,
            #[cfg(debug_assertions)]
            stall: hook::Stall::from_env(),
        }
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSummary {
    /// Every camera was torn down before [`SHUTDOWN_DEADLINE`].
    pub clean: bool,
    /// Sessions the SDK still held after the teardown (`NET_DVR_GetSDKState`; `None` if
    /// it could not say or is not loaded). 0 after a clean stop.
    pub sdk_logins_left: Option<u32>,
    /// The final state write succeeded (or nothing had changed).
    pub state_saved: bool,
}

/// Why `hikwatch run` could not start (or stopped abnormally).
#[derive(Debug)]
pub enum RunError {
    /// The configuration file is unusable.
    Config(ConfigError),
    /// The SDK could not be loaded or initialised.
    #[cfg(feature = "sdk")]
    Sdk(SdkError),
    /// Signal handling could not be set up.
    Signals(std::io::Error),
    /// The status socket could not be bound.
    Status {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The metrics listener could not be bound.
    Metrics {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// `$NOTIFY_SOCKET` is unusable.
    Notify(WatchdogError),
    /// The supervisor refused its settings.
    Supervisor(crate::supervisor::Error),
}

impl RunError {
    /// The process exit code: 78 (`EX_CONFIG`) for what a restart cannot fix (the
    /// configuration, the SDK folder), 1 for the rest.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Config(_) | RunError::Supervisor(_) => crate::exit::CONFIG,
            #[cfg(feature = "sdk")]
            RunError::Sdk(e) => match e {
                SdkError::Call { .. } | SdkError::AlreadyLoaded => 1,
                _ => crate::exit::CONFIG,
            },
            _ => 1,
        }
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Config(e) => write!(f, "{e}"),
            #[cfg(feature = "sdk")]
            RunError::Sdk(e) => write!(f, "cannot use the SDK: {e}"),
            RunError::Signals(e) => write!(f, "cannot set up signal handling: {e}"),
            RunError::Status { path, source } => {
                write!(f, "status socket {}: {source}", path.display())
            }
            RunError::Metrics { addr, source } => write!(f, "metrics listener {addr}: {source}"),
            RunError::Notify(e) => write!(f, "{e}"),
            RunError::Supervisor(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for RunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunError::Config(e) => Some(e),
            #[cfg(feature = "sdk")]
            RunError::Sdk(e) => Some(e),
            RunError::Signals(e) => Some(e),
            RunError::Status { source, .. } | RunError::Metrics { source, .. } => Some(source),
            RunError::Notify(e) => Some(e),
            RunError::Supervisor(e) => Some(e),
        }
    }
}

/// `hikwatch run`: loads `path`, runs the daemon until SIGTERM/SIGINT, reloads on SIGHUP.
///
/// Must run before anything starts a thread (the command line only parses before it): it
/// blocks the signals the daemon handles, so that every thread started later (the SDK's,
/// the executor's, the call pool's) inherits the mask.
pub fn cli_main(path: &Path) -> ExitCode {
    let signals = match Signals::block() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hikwatch run: {}", RunError::Signals(e));
            return ExitCode::from(1);
        }
    };
    let opts = RunOptions::from_env();
    let loaded = match Config::load_with(path, &opts.load) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            let n = e.errors().count().max(1);
            eprintln!(
                "hikwatch run: {}: {n} problem{} in the configuration; not starting \
                 (check it with `hikwatch check-config -c {}`)",
                path.display(),
                if n == 1 { "" } else { "s" },
                path.display()
            );
            return ExitCode::from(crate::exit::CONFIG);
        }
    };
    if let Err(e) = crate::logging::init(loaded.config.log.level) {
        eprintln!("hikwatch run: logging: {e}");
    }
    for w in &loaded.warnings {
        log::warn!("{w}");
    }
    let (shutdown, reload) = signals.into_parts();
    match run_loaded(loaded.config, opts, shutdown, reload) {
        Ok(s) => {
            log::info!(
                "stopped{}",
                if s.clean {
                    ""
                } else {
                    " (some cameras were still being torn down at the deadline)"
                }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("{e}");
            // Also on stderr without a logger prefix, for `systemctl status`.
            ExitCode::from(e.exit_code())
        }
    }
}

/// Loads `config_path` and runs the daemon until `shutdown` resolves; each item of
/// `reload` reloads the file.
///
/// # Errors
/// [`RunError::Config`] with every problem of the file, and the errors of
/// [`run_loaded`].
pub fn run(
    config_path: &Path,
    opts: RunOptions,
    shutdown: impl Future<Output = ()>,
    reload: impl Stream<Item = ()>,
) -> Result<RunSummary, RunError> {
    let loaded = Config::load_with(config_path, &opts.load).map_err(RunError::Config)?;
    for w in &loaded.warnings {
        log::warn!("{w}");
    }
    run_loaded(loaded.config, opts, shutdown, reload)
}

/// The SDK's own reconnect interval for the benchmark peer `sdk` (`NET_DVR_SetReconnect`
/// 5 s, the SDK's documented default; docs/hcnetsdk.md §6).
#[cfg(feature = "bench-peers")]
pub const SDK_PEER_RECONNECT: Duration = Duration::from_secs(5);

/// The SDK options a run uses: `base`, except that the benchmark peer `sdk` switches the
/// SDK's own reconnect on ([`SDK_PEER_RECONNECT`]); every other strategy keeps it off
/// because hikwatch owns reconnects.
#[cfg(feature = "sdk")]
#[must_use]
pub fn sdk_options(strategy: Strategy, base: &SdkOptions) -> SdkOptions {
    #[cfg(feature = "bench-peers")]
    if strategy == Strategy::Sdk {
        let mut o = base.clone();
        o.sdk_reconnect = Some(SDK_PEER_RECONNECT);
        return o;
    }
    let _ = strategy; // only the `sdk` peer changes the options
    base.clone()
}

/// What one turn of the supervisor loop woke up for.
enum Wake {
    Shutdown,
    Reload,
    Timer,
    Msg(Msg),
    Backend(RawEvent),
}

/// Runs the daemon with an already loaded configuration until `shutdown` resolves (then
/// stops gracefully, see the module docs); each item of `reload` reloads
/// `config.path`.
///
/// # Errors
/// Start-up failures: the SDK, the status socket, the metrics listener, the notify
/// socket.
pub fn run_loaded(
    config: Config,
    opts: RunOptions,
    shutdown: impl Future<Output = ()>,
    reload: impl Stream<Item = ()>,
) -> Result<RunSummary, RunError> {
    Ok(Daemon::start(config, opts)?.run(shutdown, reload))
}

/// A started daemon: backends open, state restored, cameras added, listeners bound,
/// READY sent. [`Daemon::run`] drives it until the shutdown signal.
struct Daemon {
    ex: Rc<LocalExecutor<'static>>,
    driver: Rc<RefCell<SupervisorDriver>>,
    /// Answers of the call tasks.
    rx: async_channel::Receiver<Msg>,
    /// The backends' own events. Dropped last, after the driver and the executor's tasks:
    /// it holds the SDK, whose cleanup runs when the last holder is gone.
    events: EventSource,
    wd: Watchdog,
    /// The longest pause between two housekeeping rounds.
    housekeeping: Duration,
    status_listener: Async<UnixListener>,
    metrics_listener: Option<Async<TcpListener>>,
    /// Removed when the run ends.
    socket_path: PathBuf,
    start_wall: SystemTime,
    #[cfg(debug_assertions)]
    stall: Option<hook::Stall>,
}

impl Daemon {
    /// Everything up to READY, in an order that fails early on what is most likely
    /// wrong: the SDK, the state file, the core, the listeners, systemd.
    fn start(config: Config, opts: RunOptions) -> Result<Daemon, RunError> {
        let clock = Clock {
            start: Instant::now(),
            start_wall: SystemTime::now(),
        };
        let settings = config.supervisor.settings();
        let ex: Rc<LocalExecutor<'static>> = Rc::new(LocalExecutor::new());
        let (backends, events) = open_backends(&config, settings.strategy, &opts, &ex)?;
        let (store, loaded) = open_store(&config, &settings, opts.seed, clock.start);

        let seed = opts.seed.unwrap_or_else(|| fastrand::u64(..));
        let sup = Supervisor::new(&settings, seed).map_err(RunError::Supervisor)?;

        let status_listener =
            crate::status::bind(&config.status.socket).map_err(|source| RunError::Status {
                path: config.status.socket.clone(),
                source,
            })?;
        let socket_path = config.status.socket.clone();
        let metrics_listener = match config.status.metrics {
            Some(addr) => Some(
                crate::metrics::bind(addr).map_err(|source| RunError::Metrics { addr, source })?,
            ),
            None => None,
        };
        let notifier = Notifier::new(opts.notify_socket.as_deref()).map_err(RunError::Notify)?;
        let mut wd = open_watchdog(&config, &opts)?;
        let housekeeping = wd.period().map_or(HOUSEKEEPING, |p| {
            (p / 4).clamp(Duration::from_millis(10), HOUSEKEEPING)
        });

        let (tx, rx) = async_channel::bounded::<Msg>(INBOX);
        let cameras = config.cameras.clone();
        let strategy = settings.strategy;
        let driver = Rc::new(RefCell::new(SupervisorDriver::new(DriverParts {
            cfg: config,
            load_opts: opts.load,
            sup,
            backends,
            store,
            clock,
            tx,
            ex: ex.clone(),
            notifier,
        })));
        {
            let mut d = driver.borrow_mut();
            add_cameras(&mut d, &cameras, &loaded);
            log::info!(
                "hikwatch {}: {} camera(s), strategy {strategy}, {}",
                env!("CARGO_PKG_VERSION"),
                cameras.len(),
                d.backends
                    .describe()
                    .unwrap_or_else(|| "no vendor SDK (ISAPI only)".into())
            );
        }
        drop(cameras);

        let ready_line = driver.borrow().status_line();
        if let Err(e) = wd.ready(Instant::now(), &ready_line) {
            log::warn!("systemd: {e}");
        }
        driver.borrow_mut().status_sent = ready_line;

        Ok(Daemon {
            ex,
            driver,
            rx,
            events,
            wd,
            housekeeping,
            status_listener,
            metrics_listener,
            socket_path,
            start_wall: clock.start_wall,
            #[cfg(debug_assertions)]
            stall: opts.stall,
        })
    }

    /// Serves status, metrics and the watchdog in the background and runs the supervisor
    /// loop until `shutdown` resolves and the graceful stop is over; then writes the
    /// state and tells systemd.
    fn run(self, shutdown: impl Future<Output = ()>, reload: impl Stream<Item = ()>) -> RunSummary {
        let Daemon {
            ex,
            driver,
            rx,
            mut events,
            mut wd,
            housekeeping,
            status_listener,
            metrics_listener,
            socket_path,
            start_wall,
            #[cfg(debug_assertions)]
            stall,
        } = self;

        // Background tasks end when `stop_tx` is dropped.
        let (stop_tx, stop_rx) = async_channel::bounded::<()>(1);
        let stopped = move || {
            let rx = stop_rx.clone();
            async move {
                let _ = rx.recv().await;
            }
        };
        let snapshot = {
            let weak = Rc::downgrade(&driver);
            move || {
                weak.upgrade()
                    .and_then(|s| s.try_borrow().ok().map(|s| s.snapshot()))
                    .unwrap_or_else(|| FleetStatusReport::new(start_wall))
            }
        };
        ex.spawn(crate::status::serve(
            status_listener,
            snapshot.clone(),
            stopped(),
        ))
        .detach();
        if let Some(l) = metrics_listener {
            ex.spawn(crate::metrics::serve(l, snapshot, stopped()))
                .detach();
        }
        let progress = wd.progress();
        let wd_stopped = stopped();
        let wd_task = ex.spawn(async move {
            crate::watchdog::run(&mut wd, wd_stopped).await;
            wd
        });

        let supervisor_loop = SupervisorLoop {
            driver: &driver,
            rx: &rx,
            events: &mut events,
            progress,
            housekeeping,
            next_housekeeping: Instant::now(),
            next_left_sweep: Instant::now() + shell::left_session_sweep(),
            stop_by: None,
            // Counted from READY (the real SDK's init alone takes seconds).
            #[cfg(debug_assertions)]
            stall: stall.map(|s| (s, Instant::now() + s.after)),
        };
        let main = async {
            let clean = supervisor_loop.run(shutdown, reload).await;
            let summary = final_summary(&mut driver.borrow_mut(), clean);
            drop(stop_tx);
            let wd = wd_task.await;
            let line = driver.borrow().status_line();
            if let Err(e) = wd.stop(&line) {
                log::warn!("watchdog: {e}");
            }
            summary
        };
        let summary = future::block_on(ex.run(main));
        // Tasks still pending (late answers nobody waits for) are dropped with the executor;
        // the pool logs out a late login on its own thread.
        drop(driver);
        drop(ex);
        // Our socket (bound in `start`; a stale one is also removed at the next start).
        let _ = std::fs::remove_file(&socket_path);
        // Last: it holds the SDK (nothing to drop in a build without it).
        #[allow(clippy::drop_non_drop)]
        drop(events);
        summary
    }
}

/// The silence limit of an ISAPI session's event stream when `link_watch_timeout` is 0
/// (keepalives off): devices send a heartbeat part every few seconds.
const ALERT_SILENCE_DEFAULT: Duration = Duration::from_secs(30);

/// Opens the backends `config` needs: the SDK only when some camera uses it. `ex` runs
/// the ISAPI backend's stream readers.
#[cfg_attr(not(feature = "sdk"), allow(unused_variables))]
fn open_backends(
    config: &Config,
    strategy: Strategy,
    opts: &RunOptions,
    ex: &Rc<LocalExecutor<'static>>,
) -> Result<(Backends, EventSource), RunError> {
    #[cfg(feature = "bench-peers")]
    if strategy.is_benchmark_peer() {
        log::warn!(
            "strategy {strategy} is a BENCHMARK-ONLY peer (scripts/bench.sh): do not run it in production",
        );
    }
    // The ISAPI sessions' event streams are their link watch (strategies that watch links)
    // or, for strategies that act on the SDK's exception callbacks, the stand-in for the
    // SDK's own keepalive.
    let settings = config.supervisor.settings();
    let traits = settings.strategy.traits();
    let alert_silence = (traits.link_watch || traits.exceptions).then(|| {
        if settings.link_watch_timeout.is_zero() {
            ALERT_SILENCE_DEFAULT
        } else {
            settings.link_watch_timeout
        }
    });
    #[cfg_attr(not(feature = "sdk"), allow(unused_mut))]
    let mut backends = Backends::new(alert_silence, settings.stream_gap, Rc::downgrade(ex));
    #[cfg_attr(not(feature = "sdk"), allow(unused_mut))]
    let mut events = EventSource::default();
    #[cfg(feature = "sdk")]
    if config.uses_sdk() {
        let (sdk, pool, rx) = open_sdk(config, strategy, &opts.sdk)?;
        backends.set_sdk(SdkBackend::new(pool));
        events.set_sdk(rx, sdk);
    }
    Ok((backends, events))
}

/// Loads and initialises the SDK for `config` and starts the call pool: the one place a
/// run opens the SDK.
#[cfg(feature = "sdk")]
fn open_sdk(
    config: &Config,
    strategy: Strategy,
    base: &SdkOptions,
) -> Result<(Arc<Sdk>, SdkPool, EventReceiver), RunError> {
    let sdk_opts = sdk_options(strategy, base);
    let sdk = Sdk::load(&config.sdk.dir, &sdk_opts).map_err(RunError::Sdk)?;
    let events = sdk.events().ok_or(RunError::Sdk(SdkError::AlreadyLoaded))?;
    let threads = usize::try_from(config.sdk.threads).unwrap_or(8).max(1);
    let pool = SdkPool::new(
        sdk.clone(),
        PoolOptions {
            threads,
            max_threads: threads * 4,
            queue: 1024,
            name: "sdk".into(),
        },
    )
    .map_err(RunError::Sdk)?;
    Ok((sdk, pool, events))
}

/// Opens the state file for the configured cameras and logs what it found.
fn open_store(
    config: &Config,
    settings: &Settings,
    seed: Option<u64>,
    start: Instant,
) -> (Store, LoadedState) {
    let keys: Vec<CameraKey<'_>> = config
        .cameras
        .iter()
        .map(|c| CameraKey {
            id: &c.id,
            user: &c.user,
            password: c.password.expose().as_bytes(),
        })
        .collect();
    let (store, loaded) = Store::open(
        &config.state.path,
        StoreOptions {
            flush_interval: config.state.flush_interval,
            start_spread: settings.start_spread,
            jitter_seed: seed,
            wall_clock: SystemTime::now,
        },
        &keys,
        start,
    );
    drop(keys);
    for w in &loaded.warnings {
        log::warn!("state: {w}");
    }
    if let Some(c) = &loaded.clock {
        log::info!("state: {}: {}", config.state.path.display(), c.describe());
    }
    if !loaded.dropped.is_empty() {
        log::info!(
            "state: forgot {} camera(s) no longer configured: {}",
            loaded.dropped.len(),
            loaded.dropped.join(", ")
        );
    }
    (store, loaded)
}

/// The systemd watchdog (from `$WATCHDOG_USEC`/`$WATCHDOG_PID`) and the optional hardware
/// one; either is left out, with an error in the log, when it cannot be used.
fn open_watchdog(config: &Config, opts: &RunOptions) -> Result<Watchdog, RunError> {
    let notifier = Notifier::new(opts.notify_socket.as_deref()).map_err(RunError::Notify)?;
    let timeout = match crate::watchdog::watchdog_timeout(
        opts.watchdog_usec.as_deref(),
        opts.watchdog_pid.as_deref(),
        std::process::id(),
    ) {
        Ok(t) => t,
        Err(e) => {
            log::error!("watchdog: {e}; running without the systemd watchdog");
            None
        }
    };
    let hw = config
        .watchdog
        .device
        .as_ref()
        .and_then(|p| match HwWatchdog::open(p) {
            Ok(h) => Some(h),
            Err(e) => {
                log::error!("watchdog: {e}; running without the hardware watchdog");
                None
            }
        });
    Ok(Watchdog::new(
        notifier,
        timeout,
        hw,
        config.watchdog.keepalive,
    ))
}

/// Adds the configured cameras to the driver, each with the state the store restored.
fn add_cameras(driver: &mut SupervisorDriver, cameras: &[CameraConfig], loaded: &LoadedState) {
    for (conf, start) in cameras.iter().zip(&loaded.cameras) {
        let cam = driver.add_camera(conf.clone());
        let restored = matches!(start.origin, Origin::Restored | Origin::CredentialsChanged);
        if restored && shell::needs_restore(&start.state) {
            driver.restore(cam, &start.state);
            let st = &start.state;
            let what = if st.lock_left.is_some() {
                "device lock"
            } else if st.auth_hold {
                "auth-hold"
            } else {
                "backoff"
            };
            crate::cam_info!(conf.id, "restored {what} from the state file");
        }
        if start.origin == Origin::CredentialsChanged {
            crate::cam_info!(conf.id, "credentials changed since the last run");
        }
        if driver.end_left_session_if_idle(cam) {
            crate::cam_info!(
                conf.id,
                "the last run left a device session; ending it now (no login before the \
                 hold or lock ends)"
            );
        } else if driver.store.device_session(&conf.id).is_some() {
            crate::cam_info!(
                conf.id,
                "the last run left a device session; ending it first"
            );
        }
    }
}

/// The final state write and what the SDK still holds, after the loop ended (`clean`:
/// every camera was torn down in time).
fn final_summary(driver: &mut SupervisorDriver, clean: bool) -> RunSummary {
    let state_saved = match driver.store.flush(Instant::now()) {
        Ok(wrote) => {
            if wrote {
                log::info!("state: saved {}", driver.store.path().display());
            }
            true
        }
        Err(e) => {
            log::error!("state: {e}");
            false
        }
    };
    RunSummary {
        clean,
        sdk_logins_left: driver.backends.sdk_logins_left(),
        state_saved,
    }
}

/// The supervisor loop: one turn per wake-up (signal, reload, timer, call answer, SDK
/// event), then a bounded batch of whatever else is waiting, then the core's timers.
struct SupervisorLoop<'d> {
    driver: &'d RefCell<SupervisorDriver>,
    rx: &'d async_channel::Receiver<Msg>,
    events: &'d mut EventSource,
    /// Bumped every turn; the watchdog pings only while it moves.
    progress: Progress,
    housekeeping: Duration,
    next_housekeeping: Instant,
    /// The next [`SupervisorDriver::end_idle_left_sessions`] (the first is at the start,
    /// with the cameras).
    next_left_sweep: Instant,
    /// Set by the shutdown signal: the graceful stop ends by then at the latest.
    stop_by: Option<Instant>,
    #[cfg(debug_assertions)]
    stall: Option<(hook::Stall, Instant)>,
}

impl SupervisorLoop<'_> {
    /// Runs until the graceful stop is over; `true` if every camera was torn down before
    /// [`SHUTDOWN_DEADLINE`].
    async fn run(
        mut self,
        shutdown: impl Future<Output = ()>,
        reload: impl Stream<Item = ()>,
    ) -> bool {
        let mut shutdown = pin!(shutdown);
        let mut reload = pin!(reload);
        loop {
            let now = Instant::now();
            #[cfg(debug_assertions)]
            if let Some((s, at)) = self.stall {
                if now >= at {
                    s.stall().await;
                }
            }
            if now >= self.next_housekeeping {
                let mut d = self.driver.borrow_mut();
                d.poll_streams();
                d.repeat.flush();
                d.send_status();
                d.maybe_flush(now);
                if now >= self.next_left_sweep {
                    d.end_idle_left_sessions();
                    self.next_left_sweep = now + shell::left_session_sweep();
                }
                self.next_housekeeping = now + self.housekeeping;
            }
            if let Some(by) = self.stop_by {
                if self.driver.borrow().all_stopped() {
                    return true;
                }
                if now >= by {
                    return false;
                }
            }
            let wake_at = self.wake_at(now);
            let woke = self.wait(wake_at, shutdown.as_mut(), reload.as_mut()).await;
            self.progress.bump();
            self.handle(woke);
        }
    }

    /// When the next turn is due if nothing wakes the loop earlier.
    fn wake_at(&self, now: Instant) -> Instant {
        let d = self.driver.borrow();
        let mut at = self.next_housekeeping;
        for t in [d.next_core_wake(), d.store.next_flush_at(), self.stop_by]
            .into_iter()
            .flatten()
        {
            at = at.min(t);
        }
        #[cfg(debug_assertions)]
        if let Some((_, t)) = self.stall {
            at = at.min(t);
        }
        // Never a timer in the past: whatever is due was handled by this turn's tick, and
        // a zero wait would spin.
        at.max(now + Duration::from_millis(1))
    }

    /// Waits for the first of: the shutdown signal, a reload, `wake_at`, a call answer,
    /// an SDK event. Once stopping, signals and reloads are no longer listened to.
    async fn wait<S, R>(
        &mut self,
        wake_at: Instant,
        shutdown: Pin<&mut S>,
        reload: Pin<&mut R>,
    ) -> Wake
    where
        S: Future<Output = ()>,
        R: Stream<Item = ()>,
    {
        let stopping = self.stop_by.is_some();
        let sig = async {
            if stopping {
                future::pending::<()>().await;
            }
            shutdown.await;
            Wake::Shutdown
        };
        let rl = async {
            if stopping {
                future::pending::<()>().await;
            }
            let mut reload = reload;
            match reload.next().await {
                Some(()) => Wake::Reload,
                None => future::pending().await,
            }
        };
        let timer = async {
            Timer::at(wake_at).await;
            Wake::Timer
        };
        let rx = self.rx;
        let msg = async {
            match rx.recv().await {
                Ok(m) => Wake::Msg(m),
                // The driver holds a sender: never closed while we run.
                Err(_) => future::pending().await,
            }
        };
        let events = &mut *self.events;
        let sdk_ev = async { Wake::Backend(events.recv().await) };
        future::or(
            sig,
            future::or(rl, future::or(timer, future::or(msg, sdk_ev))),
        )
        .await
    }

    /// Acts on what woke the loop, then on a bounded batch of each kind of input already
    /// waiting, then runs the core's timers and reaps finished teardowns.
    fn handle(&mut self, woke: Wake) {
        let mut d = self.driver.borrow_mut();
        match woke {
            Wake::Shutdown => {
                if let Err(e) = d.notifier.notify(&[NotifyState::Stopping]) {
                    log::warn!("systemd: {e}");
                }
                log::info!("stopping: logging out every camera");
                d.begin_shutdown();
                self.stop_by = Some(Instant::now() + SHUTDOWN_DEADLINE);
            }
            Wake::Reload => d.reload(),
            Wake::Timer => {}
            Wake::Msg(m) => d.on_msg(m),
            Wake::Backend(e) => {
                if let Some(e) = d.backends.translate(e) {
                    d.on_backend_event(e);
                }
            }
        }
        for _ in 0..BATCH {
            match self.rx.try_recv() {
                Ok(m) => d.on_msg(m),
                Err(_) => break,
            }
        }
        for _ in 0..BATCH {
            match self.events.try_recv() {
                Some(e) => {
                    if let Some(e) = d.backends.translate(e) {
                        d.on_backend_event(e);
                    }
                }
                None => break,
            }
        }
        d.tick();
        d.reap();
        if d.store.next_flush_at().is_some_and(|t| t <= Instant::now()) {
            d.maybe_flush(Instant::now());
        }
    }
}
