//! systemd readiness and watchdog, plus the optional hardware watchdog.
//!
//! - [`Notifier`]: `sd_notify(3)`: one datagram per message to the unix socket in
//!   `$NOTIFY_SOCKET` (a path, or `@name` for an abstract socket). Without the variable
//!   every call is a no-op, so the same binary runs from a shell. Written here (about 60
//!   lines) rather than with the `sd-notify` crate (0.5.0, the newest for Rust 1.85), for
//!   what that crate does differently:
//!   - it connects to `$NOTIFY_SOCKET` as a path, so an abstract `@name` socket (which
//!     sd_notify(3) specifies, and `tests/daemon_notify_abstract.rs` checks) fails with
//!     "no such file";
//!   - it reads the target from the process environment at every call, with no way to
//!     pass one: the daemon takes its socket as an option (`RunOptions::notify_socket`),
//!     so tests run several watchdogs and daemons in one process, each with its own
//!     socket, without `set_var` (unsound once threads run);
//!   - it opens, connects and closes a new socket for every message (every `WATCHDOG=1`);
//!     this one is opened once.
//!
//!   Size was not the reason: the measured difference is in `docs/size.md`.
//! - [`Progress`]: a counter the supervisor loop bumps whenever it gets work done.
//! - [`Watchdog`]: pings systemd (`WATCHDOG=1`) at half of `$WATCHDOG_USEC` and keeps the
//!   hardware watchdog alive, **only when [`Progress`] moved since the last ping**.
//!   [`run`] drives it as a task on the daemon's own executor: if the executor stalls,
//!   the task does not run; if the executor runs but the supervisor loop is stuck, the
//!   counter does not move. Either way the pings stop and systemd (or the board) restarts
//!   us. There is deliberately no thread that pings on its own.
//! - [`HwWatchdog`]: a `/dev/watchdog`-style device: a write is a keepalive, and writing
//!   `V` before closing (the "magic close") disarms it on a clean stop. An unclean exit
//!   leaves it armed: unless we come back within its timeout, the board reboots.
//!
//! Man pages: sd_notify(3), sd_watchdog_enabled(3), systemd.service(5) `WatchdogSec=`,
//! and the kernel's Documentation/watchdog/watchdog-api.rst.

use std::ffi::OsStr;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::{self, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Environment variable names, as constants so they cannot be mistyped.
const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";
const WATCHDOG_USEC: &str = "WATCHDOG_USEC";
const WATCHDOG_PID: &str = "WATCHDOG_PID";

/// What went wrong talking to systemd or the watchdog device.
#[derive(Debug)]
pub enum WatchdogError {
    /// An environment variable set by systemd has a value we cannot use.
    BadEnv {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// Why it is unusable.
        reason: &'static str,
    },
    /// Creating the datagram socket or sending to `$NOTIFY_SOCKET` failed.
    Notify {
        /// The target, as given in `$NOTIFY_SOCKET`.
        socket: String,
        /// The OS error.
        source: io::Error,
    },
    /// Opening or writing the hardware watchdog failed.
    Device {
        /// The device.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

impl fmt::Display for WatchdogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchdogError::BadEnv { var, value, reason } => {
                write!(f, "${var}={value:?}: {reason}")
            }
            WatchdogError::Notify { socket, source } => {
                write!(f, "sd_notify to {socket}: {source}")
            }
            WatchdogError::Device { path, source } => {
                write!(f, "hardware watchdog {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for WatchdogError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WatchdogError::BadEnv { .. } => None,
            WatchdogError::Notify { source, .. } | WatchdogError::Device { source, .. } => {
                Some(source)
            }
        }
    }
}

/// One `KEY=value` assignment of the notify protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotifyState<'a> {
    /// `READY=1`: start-up finished (`Type=notify` waits for it).
    Ready,
    /// `RELOADING=1` plus `MONOTONIC_USEC=`: a SIGHUP reload started; send
    /// [`NotifyState::Ready`] when it is done.
    Reloading,
    /// `STOPPING=1`: shutting down.
    Stopping,
    /// `WATCHDOG=1`: the keep-alive ping.
    Watchdog,
    /// `STATUS=…`: one line shown by `systemctl status` (newlines become spaces).
    Status(&'a str),
    /// `EXTEND_TIMEOUT_USEC=…`: more time for start-up or shutdown.
    ExtendTimeout(Duration),
}

impl fmt::Display for NotifyState<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotifyState::Ready => f.write_str("READY=1"),
            NotifyState::Reloading => {
                let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
                    .map(|t| {
                        (t.tv_sec() as u64)
                            .saturating_mul(1_000_000)
                            .saturating_add(t.tv_nsec() as u64 / 1000)
                    })
                    .unwrap_or(0);
                write!(f, "RELOADING=1\nMONOTONIC_USEC={now}")
            }
            NotifyState::Stopping => f.write_str("STOPPING=1"),
            NotifyState::Watchdog => f.write_str("WATCHDOG=1"),
            NotifyState::Status(s) => {
                f.write_str("STATUS=")?;
                for part in s.split(['\n', '\r']).enumerate() {
                    if part.0 > 0 {
                        f.write_str(" ")?;
                    }
                    f.write_str(part.1)?;
                }
                Ok(())
            }
            NotifyState::ExtendTimeout(d) => write!(f, "EXTEND_TIMEOUT_USEC={}", d.as_micros()),
        }
    }
}

/// Sends `sd_notify` messages; a no-op when systemd gave no socket.
#[derive(Debug)]
pub struct Notifier {
    /// `None` when `$NOTIFY_SOCKET` was unset: every send succeeds without doing anything.
    target: Option<Target>,
}

#[derive(Debug)]
struct Target {
    /// Unbound datagram socket we send from.
    socket: UnixDatagram,
    /// Where systemd listens.
    addr: SocketAddr,
    /// `$NOTIFY_SOCKET` as given, for error messages.
    name: String,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET`.
    ///
    /// # Errors
    /// [`WatchdogError::BadEnv`] for a value that is neither an absolute path nor `@name`,
    /// [`WatchdogError::Notify`] when the socket cannot be created.
    pub fn from_env() -> Result<Notifier, WatchdogError> {
        Notifier::new(std::env::var_os(NOTIFY_SOCKET).as_deref())
    }

    /// A notifier that sends nothing.
    pub fn disabled() -> Notifier {
        Notifier { target: None }
    }

    /// For the socket named like `$NOTIFY_SOCKET` (`None` or empty: disabled).
    ///
    /// # Errors
    /// As [`Notifier::from_env`].
    pub fn new(socket: Option<&OsStr>) -> Result<Notifier, WatchdogError> {
        let Some(raw) = socket.filter(|s| !s.is_empty()) else {
            return Ok(Notifier::disabled());
        };
        let name = raw.to_string_lossy().into_owned();
        let bytes = raw.as_bytes();
        let addr = if let Some(abs) = bytes.strip_prefix(b"@") {
            SocketAddr::from_abstract_name(abs)
        } else if bytes.starts_with(b"/") {
            SocketAddr::from_pathname(Path::new(raw))
        } else {
            return Err(WatchdogError::BadEnv {
                var: NOTIFY_SOCKET,
                value: name,
                reason: "expected an absolute path or @abstract-name",
            });
        }
        .map_err(|source| WatchdogError::Notify {
            socket: name.clone(),
            source,
        })?;
        let socket = UnixDatagram::unbound().map_err(|source| WatchdogError::Notify {
            socket: name.clone(),
            source,
        })?;
        Ok(Notifier {
            target: Some(Target { socket, addr, name }),
        })
    }

    /// Whether messages go anywhere.
    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Sends the states as one datagram, newline-separated.
    ///
    /// # Errors
    /// [`WatchdogError::Notify`] when the send fails.
    pub fn notify(&self, states: &[NotifyState<'_>]) -> Result<(), WatchdogError> {
        let Some(t) = &self.target else {
            return Ok(());
        };
        let mut msg = String::new();
        for (i, s) in states.iter().enumerate() {
            if i > 0 {
                msg.push('\n');
            }
            msg.push_str(&s.to_string());
        }
        t.socket
            .send_to_addr(msg.as_bytes(), &t.addr)
            .map(|_| ())
            .map_err(|source| WatchdogError::Notify {
                socket: t.name.clone(),
                source,
            })
    }
}

/// The systemd watchdog timeout from `$WATCHDOG_USEC`/`$WATCHDOG_PID`, like
/// `sd_watchdog_enabled(3)`: `None` when unset or meant for another process.
///
/// # Errors
/// [`WatchdogError::BadEnv`] for unparsable values.
pub fn watchdog_timeout_from_env() -> Result<Option<Duration>, WatchdogError> {
    let usec = std::env::var(WATCHDOG_USEC).ok();
    let pid = std::env::var(WATCHDOG_PID).ok();
    watchdog_timeout(usec.as_deref(), pid.as_deref(), std::process::id())
}

/// The pure part of [`watchdog_timeout_from_env`].
///
/// # Errors
/// [`WatchdogError::BadEnv`] for a non-numeric or zero `usec`, or a non-numeric `pid`.
pub fn watchdog_timeout(
    usec: Option<&str>,
    pid: Option<&str>,
    my_pid: u32,
) -> Result<Option<Duration>, WatchdogError> {
    let Some(usec) = usec.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if let Some(pid) = pid.filter(|s| !s.is_empty()) {
        let p: u32 = pid.parse().map_err(|_| WatchdogError::BadEnv {
            var: WATCHDOG_PID,
            value: pid.to_string(),
            reason: "not a process id",
        })?;
        if p != my_pid {
            return Ok(None);
        }
    }
    match usec.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Some(Duration::from_micros(n))),
        _ => Err(WatchdogError::BadEnv {
            var: WATCHDOG_USEC,
            value: usec.to_string(),
            reason: "not a positive number of microseconds",
        }),
    }
}

/// A progress counter: the supervisor loop calls [`Progress::bump`] each time it has
/// done work (handled an event, a timer, a finished SDK call). Cheap to clone and share.
#[derive(Clone, Debug, Default)]
pub struct Progress(Arc<AtomicU64>);

impl Progress {
    /// A new counter at 0.
    pub fn new() -> Progress {
        Progress::default()
    }

    /// Records progress.
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// The current value.
    pub fn epoch(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A `/dev/watchdog`-style device.
#[derive(Debug)]
pub struct HwWatchdog {
    /// Open for writing while armed; `None` after the magic close.
    file: Option<File>,
    path: PathBuf,
}

impl HwWatchdog {
    /// Opens (and thereby arms) the device.
    ///
    /// # Errors
    /// [`WatchdogError::Device`]; `EBUSY` means another process (often systemd's
    /// `RuntimeWatchdogSec=`) holds it.
    pub fn open(path: &Path) -> Result<HwWatchdog, WatchdogError> {
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|source| WatchdogError::Device {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(HwWatchdog {
            file: Some(file),
            path: path.to_path_buf(),
        })
    }

    /// The device path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), WatchdogError> {
        let Some(f) = self.file.as_mut() else {
            return Ok(());
        };
        f.write_all(bytes)
            .and_then(|()| f.flush())
            .map_err(|source| WatchdogError::Device {
                path: self.path.clone(),
                source,
            })
    }

    /// One keepalive: any write except `V` (which would arm the magic close).
    ///
    /// # Errors
    /// [`WatchdogError::Device`] when the write fails.
    pub fn keepalive(&mut self) -> Result<(), WatchdogError> {
        self.write(b"\0")
    }

    /// Disarms the device: writes `V`, then closes it.
    ///
    /// # Errors
    /// [`WatchdogError::Device`] when the write fails (the device stays armed).
    pub fn magic_close(mut self) -> Result<(), WatchdogError> {
        self.write(b"V")?;
        drop(self.file.take());
        Ok(())
    }
}

/// What one [`Watchdog::tick`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tick {
    /// No watchdog configured, or the next ping is not due yet.
    NotDue,
    /// Pinged systemd and/or the hardware watchdog.
    Pinged,
    /// A ping was due but the supervisor made no progress since the last one: withheld.
    /// `since` is the time since the last ping (or since [`Watchdog::ready`]).
    Stalled {
        /// Time since the last ping.
        since: Duration,
    },
}

/// Pings systemd and the hardware watchdog, but only while the supervisor makes progress.
#[derive(Debug)]
pub struct Watchdog {
    notifier: Notifier,
    /// systemd's `WatchdogSec=` (from `$WATCHDOG_USEC`), if it applies to us.
    systemd_timeout: Option<Duration>,
    hw: Option<HwWatchdog>,
    /// Ping period: half the systemd timeout, or the hardware keepalive if shorter.
    period: Option<Duration>,
    progress: Progress,
    /// The epoch at the last ping (or at `ready`).
    last_epoch: u64,
    /// When we last pinged (or became ready).
    last_ping: Option<Instant>,
}

impl Watchdog {
    /// A watchdog for `systemd_timeout` (`$WATCHDOG_USEC`) and/or `hw` kept alive at
    /// least every `hw_keepalive`.
    pub fn new(
        notifier: Notifier,
        systemd_timeout: Option<Duration>,
        hw: Option<HwWatchdog>,
        hw_keepalive: Duration,
    ) -> Watchdog {
        let sd = systemd_timeout
            .filter(|_| notifier.is_enabled())
            .map(|t| t / 2);
        let hw_period = hw.as_ref().map(|_| hw_keepalive);
        let period = match (sd, hw_period) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Watchdog {
            notifier,
            systemd_timeout,
            hw,
            period,
            progress: Progress::new(),
            last_epoch: 0,
            last_ping: None,
        }
    }

    /// From the environment (`$NOTIFY_SOCKET`, `$WATCHDOG_USEC`, `$WATCHDOG_PID`), with an
    /// optional hardware watchdog.
    ///
    /// # Errors
    /// As [`Notifier::from_env`] and [`watchdog_timeout_from_env`].
    pub fn from_env(
        hw: Option<HwWatchdog>,
        hw_keepalive: Duration,
    ) -> Result<Watchdog, WatchdogError> {
        let notifier = Notifier::from_env()?;
        let timeout = watchdog_timeout_from_env()?;
        Ok(Watchdog::new(notifier, timeout, hw, hw_keepalive))
    }

    /// The handle the supervisor loop bumps.
    pub fn progress(&self) -> Progress {
        self.progress.clone()
    }

    /// How often pings are due; `None` when there is no watchdog at all.
    pub fn period(&self) -> Option<Duration> {
        self.period
    }

    /// systemd's watchdog timeout, when it applies to us.
    pub fn systemd_timeout(&self) -> Option<Duration> {
        self.systemd_timeout
    }

    /// The notifier, for other messages.
    pub fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    /// Start-up is done: sends `READY=1` and `STATUS=status`, and starts the ping clock.
    ///
    /// # Errors
    /// [`WatchdogError::Notify`].
    pub fn ready(&mut self, now: Instant, status: &str) -> Result<(), WatchdogError> {
        self.last_ping = Some(now);
        self.last_epoch = self.progress.epoch();
        self.notifier
            .notify(&[NotifyState::Ready, NotifyState::Status(status)])
    }

    /// Sends `STATUS=status`.
    ///
    /// # Errors
    /// [`WatchdogError::Notify`].
    pub fn status(&self, status: &str) -> Result<(), WatchdogError> {
        self.notifier.notify(&[NotifyState::Status(status)])
    }

    /// Pings when a ping is due and the progress counter moved since the last one.
    ///
    /// # Errors
    /// A failed send or device write; the ping clock still advances so a broken socket
    /// does not turn into a busy loop.
    pub fn tick(&mut self, now: Instant) -> Result<Tick, WatchdogError> {
        let Some(period) = self.period else {
            return Ok(Tick::NotDue);
        };
        let since = self
            .last_ping
            .map_or(period, |t| now.saturating_duration_since(t));
        if since < period {
            return Ok(Tick::NotDue);
        }
        let epoch = self.progress.epoch();
        if epoch == self.last_epoch {
            return Ok(Tick::Stalled { since });
        }
        self.last_epoch = epoch;
        self.last_ping = Some(now);
        if self.systemd_timeout.is_some() {
            self.notifier.notify(&[NotifyState::Watchdog])?;
        }
        if let Some(hw) = self.hw.as_mut() {
            hw.keepalive()?;
        }
        Ok(Tick::Pinged)
    }

    /// Clean stop: `STOPPING=1` (with `STATUS=status`) and the hardware watchdog's magic
    /// close. Both are attempted; the first error is returned.
    ///
    /// # Errors
    /// [`WatchdogError::Notify`] or [`WatchdogError::Device`].
    pub fn stop(mut self, status: &str) -> Result<(), WatchdogError> {
        let sent = self
            .notifier
            .notify(&[NotifyState::Stopping, NotifyState::Status(status)]);
        let closed = match self.hw.take() {
            Some(hw) => hw.magic_close(),
            None => Ok(()),
        };
        sent.and(closed)
    }
}

/// Drives `watchdog` until `shutdown` completes: wakes every quarter period and calls
/// [`Watchdog::tick`]. Run it as a task on the same executor as the supervisor loop.
/// Withheld pings and failed sends are logged (once per stall). Returns at shutdown;
/// then call [`Watchdog::stop`].
pub async fn run<S: Future<Output = ()>>(watchdog: &mut Watchdog, shutdown: S) {
    let Some(period) = watchdog.period() else {
        shutdown.await;
        return;
    };
    let check = (period / 4).max(Duration::from_millis(10));
    let ticks = async {
        let mut stalled = false;
        loop {
            async_io::Timer::after(check).await;
            match watchdog.tick(Instant::now()) {
                Ok(Tick::Stalled { since }) => {
                    if !stalled {
                        log::warn!(
                            "watchdog: no supervisor progress for {} ms; withholding the ping",
                            since.as_millis()
                        );
                    }
                    stalled = true;
                }
                Ok(Tick::Pinged) => {
                    if stalled {
                        log::info!("watchdog: supervisor progress resumed");
                    }
                    stalled = false;
                }
                Ok(Tick::NotDue) => {}
                Err(e) => log::error!("watchdog: {e}"),
            }
        }
    };
    smol::future::or(shutdown, ticks).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format() {
        assert_eq!(NotifyState::Ready.to_string(), "READY=1");
        assert_eq!(NotifyState::Stopping.to_string(), "STOPPING=1");
        assert_eq!(NotifyState::Watchdog.to_string(), "WATCHDOG=1");
        assert_eq!(
            NotifyState::Status("3/4 online\nbad").to_string(),
            "STATUS=3/4 online bad"
        );
        assert_eq!(
            NotifyState::ExtendTimeout(Duration::from_secs(3)).to_string(),
            "EXTEND_TIMEOUT_USEC=3000000"
        );
        let r = NotifyState::Reloading.to_string();
        let (a, b) = r.split_once('\n').unwrap();
        assert_eq!(a, "RELOADING=1");
        let usec: u64 = b.strip_prefix("MONOTONIC_USEC=").unwrap().parse().unwrap();
        assert!(usec > 0);
    }

    #[test]
    fn timeout_parsing_like_sd_watchdog_enabled() {
        let t = |u, p| watchdog_timeout(u, p, 42);
        assert_eq!(t(None, None).unwrap(), None);
        assert_eq!(t(Some(""), None).unwrap(), None);
        assert_eq!(
            t(Some("30000000"), None).unwrap(),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            t(Some("30000000"), Some("42")).unwrap(),
            Some(Duration::from_secs(30))
        );
        // Meant for another process (e.g. inherited by a child).
        assert_eq!(t(Some("30000000"), Some("43")).unwrap(), None);
        assert!(t(Some("abc"), None).is_err());
        assert!(t(Some("0"), None).is_err());
        assert!(t(Some("1000"), Some("x")).is_err());
    }

    #[test]
    fn bad_notify_socket_values() {
        assert!(!Notifier::new(None).unwrap().is_enabled());
        assert!(!Notifier::new(Some(OsStr::new(""))).unwrap().is_enabled());
        let e = Notifier::new(Some(OsStr::new("relative/path"))).unwrap_err();
        assert!(
            e.to_string().contains("absolute path or @abstract-name"),
            "{e}"
        );
        // A disabled notifier accepts everything.
        Notifier::disabled().notify(&[NotifyState::Ready]).unwrap();
    }

    #[test]
    fn period_is_half_the_systemd_timeout_or_the_hw_keepalive() {
        let sock = Some(OsStr::new("@hikwatch-test-period-unused"));
        let w = Watchdog::new(
            Notifier::new(sock).unwrap(),
            Some(Duration::from_secs(30)),
            None,
            Duration::from_secs(5),
        );
        assert_eq!(w.period(), Some(Duration::from_secs(15)));
        // No notify socket: systemd's timeout does not apply.
        let w = Watchdog::new(
            Notifier::disabled(),
            Some(Duration::from_secs(30)),
            None,
            Duration::from_secs(5),
        );
        assert_eq!(w.period(), None);
    }
}
