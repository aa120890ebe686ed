//! One simulated camera: its state, the fault controls and the counters.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use smol::Executor;
use smol::channel::{Receiver, Sender};
use socket2::{Domain, Socket, Type};

use crate::config::Identity;
use crate::events::{Event, EventKind, EventLog};

/// How long [`Camera::power_off`] waits for the camera's sockets to close.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings shared by every camera of a fleet.
#[derive(Debug)]
pub(crate) struct Common {
    pub user: String,
    pub iterations: u32,
    pub lockout_threshold: u32,
    pub lock_duration: Duration,
    pub session_idle_timeout: Option<Duration>,
    pub backlog: i32,
    /// Set when the fleet is dropped: no executor thread runs tasks any more, so a camera
    /// handle that outlived its fleet must not power on again.
    pub shut_down: std::sync::atomic::AtomicBool,
    /// Login exchanges in flight across the whole fleet (see [`CamShared::sync_exchanges`]).
    pub exchanges_now: AtomicUsize,
    /// Most login exchanges in flight across the fleet at once.
    pub exchanges_hwm: AtomicUsize,
}

/// Power state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    /// Off: connects are refused (RST); the port stays reserved.
    Off,
    /// Powered on, waiting out the boot delay; connects are still refused.
    Booting,
    /// Listening and serving.
    On,
}

/// A live session.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Session {
    pub last_seen: Instant,
}

/// A login exchange between the capabilities GET and the sessionLogin POST.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub challenge: String,
    pub created: Instant,
}

/// Illegal-login bookkeeping for one client IP.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct IpLock {
    /// Wrong passwords since the last success or lock expiry.
    pub failures: u32,
    /// Set while locked.
    pub locked_until: Option<Instant>,
}

/// Counters of one camera (a snapshot; see [`Camera::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CameraStats {
    /// Successful logins.
    pub logins_ok: u64,
    /// Wrong user name or password (including the one that engaged a lock).
    pub logins_bad: u64,
    /// Login attempts refused because the client IP was locked (each renewed the lock).
    pub logins_locked: u64,
    /// Correct logins refused by the session limit.
    pub logins_rejected_limit: u64,
    /// Logins naming a sessionID the camera did not issue or forgot.
    pub logins_stale: u64,
    /// Accepted heartbeats.
    pub heartbeats_ok: u64,
    /// Heartbeats refused with 401 (no live session).
    pub heartbeats_rejected: u64,
    /// Logouts of live sessions.
    pub logouts: u64,
    /// Live sessions now.
    pub sessions: usize,
    /// Most live sessions at once.
    pub sessions_hwm: usize,
    /// Open TCP connections now.
    pub connections: usize,
    /// Most open TCP connections at once.
    pub connections_hwm: usize,
    /// Connections accepted in total (including accept-then-close ones).
    pub accepted: u64,
    /// Requests answered (including 4xx).
    pub requests: u64,
    /// Login exchanges in flight (capabilities answered, sessionLogin not yet).
    pub exchanges_in_flight: usize,
    /// Most login exchanges in flight at once.
    pub exchanges_hwm: usize,
    /// Boot counter: 1 after the fleet starts, +1 per power-on.
    pub boot_id: u64,
}

/// Mutable state behind the camera's lock. Held only for short, non-async sections.
#[derive(Debug)]
pub(crate) struct CamState {
    pub power: Power,
    /// Dropping this sender tells every task of the current boot (listener, connections,
    /// boot timer) to stop; connections then close with RST.
    pub boot_kill: Option<Sender<()>>,
    /// The receiving side of `boot_kill`, cloned into each task of the boot.
    pub boot_rx: Receiver<()>,
    /// While frozen: a sender whose drop (thaw) wakes every waiter on `frozen_rx`.
    pub frozen: Option<(Sender<()>, Receiver<()>)>,
    pub slow: Duration,
    /// Delay before a `POST sessionLogin` is read and answered (the exchange stays in flight).
    pub login_delay: Duration,
    pub accept_close: bool,
    pub password: String,
    pub salt: String,
    pub session_limit: Option<usize>,
    pub sessions: HashMap<String, Session>,
    pub pending: HashMap<String, Pending>,
    pub locks: HashMap<IpAddr, IpLock>,
    /// Listener plus connections still open; `power_off` waits for 0.
    pub open_sockets: usize,
    pub stats: CameraStats,
    pub rng: fastrand::Rng,
    /// Digest-only mode and the nonces issued (see `digest.rs`).
    pub digest: crate::digest::DigestState,
    /// The event streams' controls and queued events (see `alert.rs`).
    pub alert: crate::alert::AlertState,
}

/// Everything about one camera, shared by its handle and its tasks.
pub(crate) struct CamShared {
    pub index: usize,
    pub addr: SocketAddr,
    /// Bound (SO_REUSEPORT) but never listening: reserves the port while the camera is off
    /// (connects get RST, the kernel hands the port to nobody else) and lets each new
    /// boot's listener bind the same port. See `bound_socket`.
    _reserve: Socket,
    pub identity: Identity,
    pub common: Arc<Common>,
    pub log: Arc<EventLog>,
    pub ex: Arc<Executor<'static>>,
    pub st: Mutex<CamState>,
    /// Signalled when `open_sockets` drops.
    pub drained: Condvar,
    /// Live video: RTSP listener, stream settings, faults and counters.
    pub stream: crate::stream::StreamCtl,
}

impl fmt::Debug for CamShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CamShared")
            .field("index", &self.index)
            .field("addr", &self.addr)
            .finish()
    }
}

/// Binds a socket with SO_REUSEPORT (and deliberately without SO_REUSEADDR) to `addr`,
/// without listening.
///
/// The reserving socket and every boot's listener share the port through SO_REUSEPORT
/// (same user). Sockets of other programs, which at most set SO_REUSEADDR (Rust's std
/// does), conflict with the reservation and cannot bind the port, and the kernel never
/// picks it for `bind(:0)` or as an outgoing ephemeral port. TIME_WAIT leftovers of an
/// earlier boot do not block the next listener.
fn bound_socket(addr: SocketAddr) -> std::io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    s.set_reuse_port(true)?;
    s.set_cloexec(true)?;
    s.bind(&addr.into())?;
    Ok(s)
}

impl CamShared {
    /// Reserves the port and builds a camera that is off.
    pub(crate) fn new(
        index: usize,
        want: SocketAddr,
        identity: Identity,
        password: String,
        common: Arc<Common>,
        log: Arc<EventLog>,
        ex: Arc<Executor<'static>>,
    ) -> std::io::Result<CamShared> {
        let reserve = bound_socket(want)?;
        let addr = reserve
            .local_addr()?
            .as_socket()
            .ok_or_else(|| std::io::Error::other("reserved socket has no IP address"))?;
        let mut rng = fastrand::Rng::new();
        let salt = crate::auth::random_hex_upper(&mut rng, 64);
        let (_, boot_rx) = smol::channel::bounded(1);
        let stream = crate::stream::StreamCtl::new(match addr.ip() {
            IpAddr::V4(ip) => ip,
            IpAddr::V6(_) => std::net::Ipv4Addr::LOCALHOST,
        })?;
        Ok(CamShared {
            index,
            addr,
            _reserve: reserve,
            identity,
            common,
            log,
            ex,
            st: Mutex::new(CamState {
                power: Power::Off,
                boot_kill: None,
                boot_rx,
                frozen: None,
                slow: Duration::ZERO,
                login_delay: Duration::ZERO,
                accept_close: false,
                password,
                salt,
                session_limit: None,
                sessions: HashMap::new(),
                pending: HashMap::new(),
                locks: HashMap::new(),
                open_sockets: 0,
                stats: CameraStats::default(),
                rng,
                digest: crate::digest::DigestState::default(),
                alert: crate::alert::AlertState::default(),
            }),
            drained: Condvar::new(),
            stream,
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, CamState> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn log(&self, kind: EventKind, detail: String) {
        self.log.push(self.index, kind, detail);
    }

    /// Brings the camera's and the fleet's "exchanges in flight" counters in line with
    /// `st.pending` after it changed (call with the camera's lock held, after every change).
    pub(crate) fn sync_exchanges(&self, st: &mut CamState) {
        let old = st.stats.exchanges_in_flight;
        let new = st.pending.len();
        if new > old {
            let now = self
                .common
                .exchanges_now
                .fetch_add(new - old, Ordering::SeqCst)
                + (new - old);
            self.common.exchanges_hwm.fetch_max(now, Ordering::SeqCst);
        } else if new < old {
            self.common
                .exchanges_now
                .fetch_sub(old - new, Ordering::SeqCst);
        }
        st.stats.exchanges_in_flight = new;
        st.stats.exchanges_hwm = st.stats.exchanges_hwm.max(new);
    }

    /// A listening socket on the reserved port.
    fn listen(&self) -> std::io::Result<smol::Async<TcpListener>> {
        let s = bound_socket(self.addr)?;
        s.listen(self.common.backlog)?;
        // Accepted sockets inherit TCP_NODELAY on Linux; it is set per connection too.
        s.set_nodelay(true)?;
        smol::Async::new(TcpListener::from(s))
    }

    /// Starts a new boot: sessions and locks forgotten, listener after `delay`.
    pub(crate) fn power_on(self: &Arc<Self>, delay: Duration) -> std::io::Result<bool> {
        let mut st = self.lock();
        if self
            .common
            .shut_down
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            return Err(std::io::Error::other(
                "the fleet of this camera was dropped",
            ));
        }
        if st.power != Power::Off {
            return Ok(false);
        }
        let (tx, rx) = smol::channel::bounded::<()>(1);
        st.boot_kill = Some(tx);
        st.boot_rx = rx.clone();
        st.power = Power::Booting;
        st.stats.boot_id += 1;
        st.sessions.clear();
        st.pending.clear();
        st.locks.clear();
        st.frozen = None;
        st.stats.sessions = 0;
        self.sync_exchanges(&mut st);
        let boot = st.stats.boot_id;
        self.log(
            EventKind::PowerOn,
            format!("boot={boot} delay_ms={}", delay.as_millis()),
        );
        if delay.is_zero() {
            let listener = match self.listen() {
                Ok(l) => l,
                Err(e) => {
                    st.power = Power::Off;
                    st.boot_kill = None;
                    return Err(e);
                }
            };
            st.power = Power::On;
            st.open_sockets += 1;
            drop(st);
            self.log(EventKind::Listening, self.addr.to_string());
            let slot = SocketSlot {
                cam: self.clone(),
                connection: false,
            };
            self.ex
                .spawn(crate::server::accept_loop(self.clone(), listener, rx, slot))
                .detach();
        } else {
            st.open_sockets += 1; // the boot timer task holds a slot until it hands over
            drop(st);
            let slot = SocketSlot {
                cam: self.clone(),
                connection: false,
            };
            self.ex
                .spawn(crate::server::boot_after(self.clone(), delay, rx, slot))
                .detach();
        }
        Ok(true)
    }

    /// Called by the boot task once the delay is over.
    pub(crate) fn finish_boot(
        self: &Arc<Self>,
        rx: &Receiver<()>,
    ) -> Option<smol::Async<TcpListener>> {
        let mut st = self.lock();
        if st.power != Power::Booting || rx.is_closed() {
            return None;
        }
        match self.listen() {
            Ok(l) => {
                st.power = Power::On;
                drop(st);
                self.log(EventKind::Listening, self.addr.to_string());
                Some(l)
            }
            Err(e) => {
                st.power = Power::Off;
                st.boot_kill = None;
                drop(st);
                self.log(EventKind::PowerOff, format!("listen failed: {e}"));
                None
            }
        }
    }

    /// Power off: stop every task of this boot and wait until its sockets are closed.
    pub(crate) fn power_off(&self) -> bool {
        let mut st = self.lock();
        if st.power == Power::Off {
            return false;
        }
        st.power = Power::Off;
        st.boot_kill = None; // wakes every task of this boot
        st.frozen = None;
        st.sessions.clear();
        st.pending.clear();
        st.stats.sessions = 0;
        self.sync_exchanges(&mut st);
        self.log(EventKind::PowerOff, String::new());
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while st.open_sockets > 0 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            st = self
                .drained
                .wait_timeout(st, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        true
    }

    /// Releases one `open_sockets` slot (see [`SocketSlot`]).
    pub(crate) fn release_socket(&self, connection: bool) {
        let mut st = self.lock();
        st.open_sockets = st.open_sockets.saturating_sub(1);
        if connection {
            st.stats.connections = st.stats.connections.saturating_sub(1);
        }
        drop(st);
        self.drained.notify_all();
    }

    /// The receiver to wait on while frozen, if frozen.
    pub(crate) fn frozen_rx(&self) -> Option<Receiver<()>> {
        self.lock().frozen.as_ref().map(|(_, rx)| rx.clone())
    }

    /// Waits while the camera is frozen.
    pub(crate) async fn wait_thawed(&self) {
        while let Some(rx) = self.frozen_rx() {
            // `recv` fails once the sender is dropped (thaw or power-off).
            let _ = rx.recv().await;
        }
    }
}

/// Decrements `open_sockets` (and the connection count) when dropped, so every exit path
/// of a task, including cancellation at executor shutdown, is counted.
pub(crate) struct SocketSlot {
    pub cam: Arc<CamShared>,
    pub connection: bool,
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        self.cam.release_socket(self.connection);
    }
}

/// Handle to one camera of a [`crate::Fleet`]: fault controls, counters, events.
///
/// Cheap to clone; it keeps the camera's state alive, not the fleet's threads.
/// The control methods block briefly (power-off waits until the camera's sockets are
/// closed), so call them from a plain thread or a test body, not from simcam's own tasks.
#[derive(Debug, Clone)]
pub struct Camera {
    pub(crate) cam: Arc<CamShared>,
}

impl Camera {
    /// Index in the fleet.
    pub fn index(&self) -> usize {
        self.cam.index
    }

    /// `127.0.0.1:port` of this camera (the same across power cycles).
    pub fn addr(&self) -> SocketAddr {
        self.cam.addr
    }

    /// The camera's identity.
    pub fn identity(&self) -> &Identity {
        &self.cam.identity
    }

    /// Power off: the listener closes (new connects get RST), open connections are reset
    /// (SO_LINGER 0), sessions and pending logins are forgotten. Returns when all of the
    /// camera's sockets are closed. `false` if it was already off.
    pub fn power_off(&self) -> bool {
        self.cam.power_off()
    }

    /// Power on at once: a new boot (new boot id, no sessions, no locks), listening when
    /// this returns. `Ok(false)` if it was not off.
    ///
    /// # Errors
    /// The listener cannot bind the reserved port, or the fleet was dropped.
    pub fn power_on(&self) -> std::io::Result<bool> {
        self.cam.power_on(Duration::ZERO)
    }

    /// Power on with a boot delay: connects are refused until `delay` has passed.
    ///
    /// # Errors
    /// As [`Camera::power_on`] (a bind failure after the delay is logged as `power_off`).
    pub fn power_on_after(&self, delay: Duration) -> std::io::Result<bool> {
        self.cam.power_on(delay)
    }

    /// Current power state.
    pub fn power(&self) -> Power {
        self.cam.lock().power
    }

    /// Freeze: open connections stay open, the kernel still completes new handshakes
    /// (backlog), but nothing is accepted, read or answered until [`Camera::thaw`]. Requests
    /// already received are answered after the thaw. Power-off also thaws.
    pub fn freeze(&self) {
        let mut st = self.cam.lock();
        if st.frozen.is_none() {
            st.frozen = Some(smol::channel::bounded(1));
            drop(st);
            self.cam.log(EventKind::Frozen, String::new());
        }
    }

    /// End a freeze.
    pub fn thaw(&self) {
        let mut st = self.cam.lock();
        if st.frozen.take().is_some() {
            drop(st);
            self.cam.log(EventKind::Thawed, String::new());
        }
    }

    /// Whether the camera is frozen.
    pub fn is_frozen(&self) -> bool {
        self.cam.lock().frozen.is_some()
    }

    /// Extra latency added before every response (`Duration::ZERO` to stop).
    pub fn set_slow(&self, latency: Duration) {
        self.cam.lock().slow = latency;
        self.cam
            .log(EventKind::SlowSet, format!("ms={}", latency.as_millis()));
    }

    /// Delay every `POST sessionLogin` by `delay` before it is read and answered, so each
    /// login exchange stays in flight that long (`Duration::ZERO` to stop). Makes logins
    /// slow without slowing heartbeats, for tests that measure login concurrency.
    pub fn set_login_delay(&self, delay: Duration) {
        self.cam.lock().login_delay = delay;
        self.cam.log(
            EventKind::LoginDelaySet,
            format!("ms={}", delay.as_millis()),
        );
    }

    /// Change the password: a new salt; existing sessions stay valid.
    pub fn set_password(&self, password: &str) {
        let mut st = self.cam.lock();
        st.password = password.to_owned();
        let salt = crate::auth::random_hex_upper(&mut st.rng, 64);
        st.salt = salt;
        drop(st);
        self.cam.log(EventKind::PasswordChanged, String::new());
    }

    /// Limit live sessions; logins beyond it are refused (`None` = unlimited).
    pub fn set_session_limit(&self, limit: Option<usize>) {
        self.cam.lock().session_limit = limit;
        let d = limit.map_or_else(|| "none".to_owned(), |n| n.to_string());
        self.cam
            .log(EventKind::SessionLimitSet, format!("limit={d}"));
    }

    /// Accept-then-close: every new connection is accepted and closed at once (FIN).
    pub fn set_accept_close(&self, on: bool) {
        self.cam.lock().accept_close = on;
        self.cam.log(
            EventKind::AcceptCloseSet,
            if on { "on" } else { "off" }.to_owned(),
        );
    }

    /// Clear every illegal-login lock and failure count.
    pub fn unlock(&self) {
        self.cam.lock().locks.clear();
        self.cam.log(EventKind::Unlocked, String::new());
    }

    /// Drop every live session (as an admin kicking users would); heartbeats then get 401.
    pub fn drop_sessions(&self) {
        let mut st = self.cam.lock();
        st.sessions.clear();
        st.stats.sessions = 0;
    }

    /// Whether `ip` is locked now, and for how much longer.
    pub fn lock_remaining(&self, ip: IpAddr) -> Option<Duration> {
        let st = self.cam.lock();
        let until = st.locks.get(&ip)?.locked_until?;
        until.checked_duration_since(Instant::now())
    }

    /// A snapshot of the counters (idle sessions are expired first).
    pub fn stats(&self) -> CameraStats {
        let mut st = self.cam.lock();
        self.cam.expire_sessions(&mut st, Instant::now());
        st.stats
    }

    /// This camera's events still in the fleet's ring buffer, oldest first.
    pub fn events(&self) -> Vec<Event> {
        self.cam
            .log
            .since(0)
            .into_iter()
            .filter(|e| e.camera == self.cam.index)
            .collect()
    }

    /// Blocks until this camera logs an event of `kind` with sequence number `>= from`
    /// (see [`crate::Fleet::next_seq`]), or `timeout` passes.
    pub fn wait_event(&self, from: u64, kind: EventKind, timeout: Duration) -> Option<Event> {
        let idx = self.cam.index;
        self.cam
            .log
            .wait_for(from, timeout, |e| e.camera == idx && e.kind == kind)
    }
}
