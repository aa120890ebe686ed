//! Deterministic simulation: a world of fake cameras driven against the real [`Supervisor`].
//!
//! The world models each camera the way the real device and SDK behave (docs/hcnetsdk.md §3–§6):
//! - **up**: calls answer after a realistic latency;
//! - **down** (RST): connects are refused at once, error 7; the device reboots, so sessions
//!   are lost; with hybrid's link watch the reset of the idle connection arrives as
//!   `LinkLost` within milliseconds;
//! - **unreachable**: no answer at the TCP level, error 7 after the SDK's 3.5 s connect
//!   timeout, probes time out;
//! - **frozen**: TCP accepts, nothing answers; calls fail with error 10 after the SDK's 5 s
//!   receive timeout, or (hang mode) do not return until the freeze ends: the runtime would
//!   see them run past their deadline, and their results arrive late;
//! - **wrong password** with Hikvision's lockout: K = 7 bad tries lock the client for
//!   L = 30 min; any attempt during the lock renews it; each bad try reports
//!   `byRetryLoginTime` (when the device supports it), a locked reply `dwSurplusLockTime`;
//! - **session limits** (other clients fill the device), **glitches** (an unknown error code),
//!   **external locks** (another client locked the device), **config changes** and
//!   **operator pokes**;
//! - the SDK's own behaviour: `EXCEPTION_EXCHANGE` on its 30 s heartbeat while a session is
//!   broken, `RESUME_EXCHANGE` when it heals, ISAPI-mode re-login (0x8040/0x8041/0x8044),
//!   preview exceptions, stream data every 2 s.
//!
//! Invariants are checked on every step (see [`Sim::violations`]); a run returns a
//! [`SimReport`]. Everything is a pure function of [`SimConfig`]: the same seed gives the same
//! run on every target.

use core::cmp::{Ordering, Reverse};
use core::fmt::Write as _;
use core::time::Duration;
use std::collections::BinaryHeap;

use crate::backend::ErrorClass;

use super::camera::State;
use super::event::{
    Action, ActionKind, Alert, CamId, Event, ExceptionKind, Session, StreamHandle, Token,
};
use super::fleet::Supervisor;
use super::settings::{Settings, Strategy};
use super::time::{Millis, ms};

/// Bad tries before a Hikvision camera locks the client IP (admin account).
pub const LOCK_TRIES: u8 = 7;
/// How long the device lock lasts (and is renewed to by any attempt during it).
pub const LOCK_MS: u64 = 30 * 60 * 1000;
/// The SDK's own heartbeat period, as hikwatch configures it (30 s; docs/peers.md L4).
pub const SDK_HEARTBEAT_MS: u64 = 30_000;
/// Stream data arrives this often while a stream runs.
pub const DATA_EVERY_MS: u64 = 2_000;

/// A fault the world can put a camera into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Port closed (RST) for the duration; the device reboots, sessions are lost.
    Outage,
    /// No answer at all (cable pulled); sessions are lost when it lasts over 60 s.
    Unreachable,
    /// TCP accepted but nothing answers. With `hang`, calls return only when it ends.
    /// Ends with a reboot (sessions lost) when `reboot`.
    Freeze {
        /// Calls hang until the freeze ends.
        hang: bool,
        /// The freeze ends with a reboot.
        reboot: bool,
    },
    /// The device password changed; at the end the operator fixes the config.
    WrongPassword,
    /// Another client locked the device for [`LOCK_MS`] and an admin reset ended the
    /// existing sessions, so the supervisor meets the lock on its next login.
    ExternalLock,
    /// Other clients fill the device's session table; logins fail with error 52.
    SessionsFull,
    /// Logins fail with an error code the SDK table does not know.
    Glitch,
    /// The camera's address changes in the config (same device): a fresh start.
    AddressChange,
    /// An operator asks for an attempt now (never to a held camera).
    Poke,
}

/// Relative frequencies of random faults and their duration ranges.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FaultMix {
    /// Mean time between the end of one fault and the start of the next, per camera.
    pub mean_gap: Duration,
    /// Weights, in the order outage, short outage (reboot), unreachable, blip, freeze,
    /// wrong password, external lock, sessions full, glitch, address change, poke.
    pub weights: [u32; 11],
    /// Percent of freezes whose calls hang.
    pub hang_percent: u32,
    /// Longest outage (long outages exercise the probe gate and blind logins).
    pub max_outage: Duration,
}

impl Default for FaultMix {
    fn default() -> Self {
        FaultMix {
            mean_gap: Duration::from_secs(90 * 60),
            weights: [14, 14, 6, 14, 10, 5, 3, 5, 5, 2, 8],
            hang_percent: 30,
            max_outage: Duration::from_secs(3 * 3600),
        }
    }
}

/// One simulation run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SimConfig {
    /// Number of cameras.
    pub cameras: u32,
    /// Virtual time to simulate.
    pub duration: Duration,
    /// Seed of everything random (the supervisor's jitter too).
    pub seed: u64,
    /// Supervisor settings under test.
    pub settings: Settings,
    /// Percent of cameras with a stream configured.
    pub stream_percent: u32,
    /// Random faults; `None` for a scripted run (see [`Sim::inject`]).
    pub faults: Option<FaultMix>,
    /// Print every event, action and fault of this camera to stderr (debugging a seed;
    /// the fleet test reads it from `SIM_TRACE`).
    pub trace: Option<u32>,
}

impl SimConfig {
    /// A default run: hybrid strategy, 15 % streams, the default fault mix.
    #[must_use]
    pub fn new(cameras: u32, duration: Duration, seed: u64) -> SimConfig {
        SimConfig {
            cameras,
            duration,
            seed,
            settings: Settings::default(),
            stream_percent: 15,
            faults: Some(FaultMix::default()),
            trace: None,
        }
    }
}

/// Numbers a run measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// World items processed (deliveries, faults, timers).
    pub world_events: u64,
    /// Supervisor calls (`handle` + `tick`).
    pub supervisor_calls: u64,
    /// Actions the supervisor emitted.
    pub actions: u64,
    /// Logins issued.
    pub logins: u64,
    /// Heartbeats issued.
    pub heartbeats: u64,
    /// Probes issued.
    pub probes: u64,
    /// Most probes issued within one second of virtual time (fleet-wide).
    pub max_probes_per_second: u32,
    /// Faults injected.
    pub faults: u64,
    /// Most logins in flight at once (deadline-aware count, as the cap is defined).
    pub max_logins_in_flight: u32,
    /// Late successful logins the supervisor logged out.
    pub late_sessions_logged_out: u64,
    /// Calls that ran past their deadline.
    pub stuck_calls: u64,
    /// Auth-holds entered.
    pub auth_holds: u64,
    /// Locks the supervisor waited out.
    pub locks: u64,
    /// Logins the device answered with a lock.
    pub locked_replies: u64,
    /// Queue overflows (due camera found the job queue full).
    pub queue_overflows: u64,
    /// Overflowed cameras later queued.
    pub queue_recovered: u64,
    /// Longest wait of a due camera for its login (ms).
    pub max_due_wait_ms: u64,
    /// Outages of an hour or more: (logins during the outage, outage hours).
    pub long_outages: Vec<(u32, f64)>,
    /// Time from a port reopening (end of an outage) to the next login, ms.
    pub reopen_to_login_ms: Vec<u64>,
    /// Time from a port reopening to online, ms.
    pub reopen_to_online_ms: Vec<u64>,
    /// Time from a port reopening to the next login, for cameras that were already down,
    /// waiting and probe-gated (probe said closed) when it reopened, ms.
    pub gated_reopen_to_login_ms: Vec<u64>,
    /// Longest time a reachable camera took to get online (ms).
    pub max_reachable_to_online_ms: u64,
    /// The bound "reachable for long enough" the run asserted (ms).
    pub liveness_bound_ms: u64,
    /// The bound on a due camera's wait the run asserted (ms).
    pub due_wait_bound_ms: u64,
    /// Cameras online at the end.
    pub online_at_end: u32,
}

impl Stats {
    /// The `q`-quantile (0–1) of a sample; `None` when nothing was measured, so that a
    /// bound on it cannot pass on an empty sample.
    #[must_use]
    pub fn quantile(sample: &[u64], q: f64) -> Option<u64> {
        if sample.is_empty() {
            return None;
        }
        let mut v = sample.to_vec();
        v.sort_unstable();
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let i = ((v.len() - 1) as f64 * q).round() as usize;
        Some(v[i.min(v.len() - 1)])
    }

    /// Most logins per outage-hour over the long outages (0 when none).
    #[must_use]
    pub fn max_logins_per_outage_hour(&self) -> f64 {
        self.long_outages
            .iter()
            .map(|&(n, h)| f64::from(n) / h)
            .fold(0.0, f64::max)
    }
}

/// The result of a run.
#[derive(Clone, Debug)]
pub struct SimReport {
    /// Invariant violations, in order (empty = pass). Capped at 50.
    pub violations: Vec<String>,
    /// Measurements.
    pub stats: Stats,
}

// ------------------------------------------------------------------------ world model

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cond {
    Up,
    Down,
    Unreachable,
    Frozen { hang: bool },
}

#[derive(Clone, Copy, Debug)]
struct WSession {
    id: Session,
    epoch: u32,
    /// `LoginOk` was delivered: the supervisor owns it.
    known: bool,
    /// The supervisor sent `Logout` for it.
    logged_out: bool,
}

#[derive(Clone, Copy, Debug)]
enum SimCall {
    Login(Token),
    Heartbeat(Session, Token),
    Logout(Session),
    StartStream(Session, Token),
}

#[derive(Debug)]
struct WCam {
    cond: Cond,
    /// The active fault: what, when it started, its generation (stale ends are ignored).
    fault: Option<(Fault, Millis, u32)>,
    fault_gen: u32,
    password_ok: bool,
    supports_lock: bool,
    isapi: bool,
    stream_cam: bool,
    bad_tries: u8,
    locked_until: Millis,
    lock_reported: bool,
    hold_reported: bool,
    sessions_full: bool,
    glitch: bool,
    epoch: u32,
    sessions: Vec<WSession>,
    stream: Option<(StreamHandle, Session)>,
    data_pending: bool,
    sdk_phase: u64,
    sdk_tick_pending: bool,
    exchange_sent: bool,
    relogin_running: bool,
    hung: Vec<SimCall>,
    reachable_since: Option<Millis>,
    outage: Option<(Millis, u32)>,
    reopened_at: Option<Millis>,
    gated_reopen: Option<Millis>,
    reopen_online_pending: Option<Millis>,
    last_state: State,
    /// The supervisor announced an auth-hold (cleared by the releases the sim sends).
    core_hold: bool,
    /// The supervisor announced a lock wait until then.
    core_lock_until: Millis,
}

#[derive(Clone, Copy, Debug)]
enum SimEvent {
    Deliver(u32, Event),
    FaultStart(u32),
    FaultEnd(u32, u32),
    Data(u32, StreamHandle),
    SdkTick(u32),
    LockEnd(u32),
    Check,
}

#[derive(Clone, Copy, Debug)]
struct Queued {
    at: u64,
    seq: u64,
    item: SimEvent,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// A running simulation: the supervisor under test, the world, and the invariant checker.
#[derive(Debug)]
pub struct Sim {
    cfg: SimConfig,
    sup: Supervisor,
    rng: fastrand::Rng,
    cams: Vec<WCam>,
    ids: Vec<CamId>,
    queue: BinaryHeap<Reverse<Queued>>,
    seq: u64,
    now: Millis,
    next_session: i32,
    next_stream: i32,
    /// Logins in flight as the cap defines them: (camera, token, issued at).
    in_flight: Vec<(u32, Token, Millis)>,
    throttle_until: Millis,
    out: Vec<Action>,
    violations: Vec<String>,
    stats: Stats,
    slots: u32,
    login_deadline: u64,
    /// Probes in the current one-second bucket: (second, count).
    probe_bucket: (u64, u32),
}

const MAX_VIOLATIONS: usize = 50;

impl Sim {
    /// Builds the world and the supervisor; every camera starts up and reachable.
    ///
    /// # Panics
    /// If `cfg.settings` are invalid (a test bug).
    #[must_use]
    pub fn new(cfg: SimConfig) -> Sim {
        let sup = Supervisor::new(&cfg.settings, cfg.seed ^ 0x5eed_5eed_5eed_5eed)
            .expect("simulation settings must be valid");
        let mut rng = fastrand::Rng::with_seed(cfg.seed);
        let t = cfg.settings.strategy.traits();
        let cap = u32::from(cfg.settings.max_concurrent_logins);
        let slots = if t.worker_slots {
            cap.min(cfg.settings.workers.map_or(cap, u32::from))
        } else {
            cap
        };
        let mut sim = Sim {
            cfg,
            sup,
            cams: Vec::with_capacity(cfg.cameras as usize),
            ids: Vec::with_capacity(cfg.cameras as usize),
            queue: BinaryHeap::new(),
            seq: 0,
            now: Millis::ZERO,
            next_session: 1,
            next_stream: 1,
            in_flight: Vec::new(),
            throttle_until: Millis::ZERO,
            out: Vec::with_capacity(256),
            violations: Vec::new(),
            stats: Stats::default(),
            slots,
            login_deadline: ms(cfg.settings.login_deadline),
            probe_bucket: (0, 0),
            rng: fastrand::Rng::with_seed(rng.u64(..)),
        };
        for i in 0..cfg.cameras {
            let stream_cam = rng.u32(0..100) < cfg.stream_percent;
            let id = sim.sup.add_camera(Millis::ZERO, stream_cam);
            sim.ids.push(id);
            sim.cams.push(WCam {
                cond: Cond::Up,
                fault: None,
                fault_gen: 0,
                password_ok: true,
                supports_lock: rng.u32(0..100) < 80,
                isapi: rng.u32(0..100) < 30,
                stream_cam,
                bad_tries: 0,
                locked_until: Millis::ZERO,
                lock_reported: false,
                hold_reported: false,
                sessions_full: false,
                glitch: false,
                epoch: 0,
                sessions: Vec::new(),
                stream: None,
                data_pending: false,
                sdk_phase: rng.u64(0..SDK_HEARTBEAT_MS),
                sdk_tick_pending: false,
                exchange_sent: false,
                relogin_running: false,
                hung: Vec::new(),
                reachable_since: Some(Millis::ZERO),
                outage: None,
                reopened_at: None,
                gated_reopen: None,
                reopen_online_pending: None,
                last_state: State::Starting,
                core_hold: false,
                core_lock_until: Millis::ZERO,
            });
            if let Some(mix) = cfg.faults {
                let gap = sim.gap_ms(ms(mix.mean_gap));
                sim.push(gap, SimEvent::FaultStart(i));
            }
        }
        sim.stats.liveness_bound_ms = sim.liveness_bound();
        sim.stats.due_wait_bound_ms = sim.due_wait_bound();
        sim.push(60_000, SimEvent::Check);
        sim
    }

    /// The supervisor under test.
    #[must_use]
    pub fn supervisor(&self) -> &Supervisor {
        &self.sup
    }

    /// The supervisor id of world camera `i`.
    #[must_use]
    pub fn cam_id(&self, i: u32) -> CamId {
        self.ids[i as usize]
    }

    /// Current virtual time.
    #[must_use]
    pub fn now(&self) -> Millis {
        self.now
    }

    /// Invariant violations so far.
    #[must_use]
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    /// Measurements so far.
    #[must_use]
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Number of live sessions the supervisor owns on camera `i` (world view).
    #[must_use]
    pub fn live_sessions(&self, i: u32) -> usize {
        self.cams[i as usize]
            .sessions
            .iter()
            .filter(|s| s.known && !s.logged_out)
            .count()
    }

    /// Whether world camera `i` has a running stream.
    #[must_use]
    pub fn world_streaming(&self, i: u32) -> bool {
        self.cams[i as usize].stream.is_some()
    }

    /// Whether device `i` reports `byRetryLoginTime`/`dwSurplusLockTime`.
    #[must_use]
    pub fn device_supports_lock(&self, i: u32) -> bool {
        self.cams[i as usize].supports_lock
    }

    /// Bad password tries device `i` has counted since its last good login.
    #[must_use]
    pub fn device_bad_tries(&self, i: u32) -> u8 {
        self.cams[i as usize].bad_tries
    }

    /// Whether camera `i` is locked by the device right now.
    #[must_use]
    pub fn device_locked(&self, i: u32) -> bool {
        self.now < self.cams[i as usize].locked_until
    }

    /// Scripted fault: camera `i` enters `fault` now for `dur`.
    pub fn inject(&mut self, i: u32, fault: Fault, dur: Duration) {
        self.start_fault(i, fault, ms(dur).max(1));
    }

    /// Delivers an operator or config event to camera `i` now.
    pub fn send(&mut self, i: u32, ev: Event) {
        if matches!(
            ev,
            Event::CredentialsChanged | Event::RetryNow | Event::ReleaseHold
        ) {
            let c = &mut self.cams[i as usize];
            c.hold_reported = false;
            c.core_hold = false;
            if ev == Event::ReleaseHold {
                c.core_lock_until = Millis::ZERO;
            }
        }
        self.handle(i, ev);
    }

    /// Runs the simulation to the end of `cfg.duration` and returns the report.
    #[must_use]
    pub fn run(mut self) -> SimReport {
        let end = Millis(ms(self.cfg.duration));
        self.run_until(end);
        self.finish()
    }

    /// Advances virtual time to `end`, processing everything due.
    pub fn run_until(&mut self, end: Millis) {
        loop {
            let t_world = self.queue.peek().map(|Reverse(q)| q.at);
            let t_sup = self.sup.next_wakeup().map(|m| m.0);
            let next = match (t_world, t_sup) {
                (None, None) => break,
                (Some(w), None) => w,
                (None, Some(s)) => s,
                (Some(w), Some(s)) => w.min(s),
            };
            if next > end.0 {
                break;
            }
            self.now = Millis(next.max(self.now.0));
            if t_sup.is_some_and(|s| s <= next) {
                self.stats.supervisor_calls += 1;
                let mut out = core::mem::take(&mut self.out);
                self.sup.tick(self.now, &mut out);
                self.apply_all(&mut out, None);
                self.out = out;
            } else if let Some(Reverse(q)) = self.queue.pop() {
                self.stats.world_events += 1;
                self.world(q.item);
            }
        }
        self.now = self.now.max(end);
    }

    /// Final checks and the report.
    #[must_use]
    pub fn finish(mut self) -> SimReport {
        let f = self.sup.fleet_status();
        self.stats.queue_overflows = f.queue_overflows;
        self.stats.queue_recovered = f.queue_recovered;
        self.stats.online_at_end =
            f.states[State::Online.index()] + f.states[State::Suspect.index()];
        self.stats.late_sessions_logged_out = self
            .sup
            .cameras()
            .filter_map(|c| self.sup.status(c))
            .map(|s| s.counters.late_sessions)
            .sum();
        self.stats.stuck_calls = self
            .sup
            .cameras()
            .filter_map(|c| self.sup.status(c))
            .map(|s| s.counters.stuck_calls)
            .sum();
        if f.queue_overflows < f.queue_recovered + u64::from(f.overflow_pending) {
            self.violate(format!(
                "queue accounting: {} overflows < {} recovered + {} pending",
                f.queue_overflows, f.queue_recovered, f.overflow_pending
            ));
        }
        self.check_liveness();
        SimReport {
            violations: self.violations,
            stats: self.stats,
        }
    }

    // -------------------------------------------------------------- plumbing

    fn push(&mut self, delay: u64, item: SimEvent) {
        self.seq += 1;
        self.queue.push(Reverse(Queued {
            at: self.now.0.saturating_add(delay),
            seq: self.seq,
            item,
        }));
    }

    /// A random gap with the given mean: uniform in [1, 2·mean]. Integer-only, so runs
    /// are bit-identical on every target (libm's `ln`/`exp` are not).
    fn gap_ms(&mut self, mean: u64) -> u64 {
        self.rng.u64(1..=mean.saturating_mul(2).max(1))
    }

    /// Roughly log-uniform in [lo, hi]: a uniform octave, then uniform inside it.
    /// Integer-only for the same reason as [`Sim::gap_ms`].
    fn log_uniform(&mut self, lo: u64, hi: u64) -> u64 {
        let lo = lo.max(1);
        let hi = hi.max(lo + 1);
        let octaves = u64::from(64 - (hi / lo).leading_zeros()); // ≈ log2(hi/lo) + 1
        let k = self.rng.u64(0..octaves.max(1));
        let base = lo.saturating_mul(1 << k.min(62));
        let v = self.rng.u64(base..=base.saturating_mul(2));
        v.clamp(lo, hi)
    }

    fn violate(&mut self, msg: String) {
        if self.violations.len() < MAX_VIOLATIONS {
            let mut m = String::new();
            let _ = write!(m, "t={} {msg}", self.now);
            self.violations.push(m);
        }
    }

    fn handle(&mut self, i: u32, ev: Event) {
        if self.cfg.trace == Some(i) {
            eprintln!("t={} cam {i} <- {ev:?}", self.now);
        }
        self.stats.supervisor_calls += 1;
        let mut out = core::mem::take(&mut self.out);
        self.sup
            .handle(self.now, self.ids[i as usize], ev, &mut out);
        self.apply_all(&mut out, Some(i));
        self.out = out;
    }

    fn deliver(&mut self, i: u32, delay: u64, ev: Event) {
        self.push(delay.max(1), SimEvent::Deliver(i, ev));
    }

    fn cam_index(&self, id: CamId) -> u32 {
        // Slots are never reused in the simulation (no removals), so id == index.
        id.0
    }

    // -------------------------------------------------------------- actions → world

    fn apply_all(&mut self, out: &mut Vec<Action>, touched: Option<u32>) {
        self.stats.actions += out.len() as u64;
        for &a in out.iter() {
            let i = self.cam_index(a.cam);
            if self.cfg.trace == Some(i) {
                let st = self.sup.status(a.cam).map(|s| s.state.name());
                eprintln!("t={} cam {i} -> {:?} (now {st:?})", self.now, a.kind);
            }
            self.apply(i, a.kind);
        }
        // Per-step invariants on every camera this step touched.
        if let Some(i) = touched {
            self.check_cam(i);
        }
        for a in out.iter() {
            let i = self.cam_index(a.cam);
            if Some(i) != touched {
                self.check_cam(i);
            }
        }
        out.clear();
    }

    #[allow(clippy::too_many_lines)]
    fn apply(&mut self, i: u32, kind: ActionKind) {
        let now = self.now;
        let idx = i as usize;
        match kind {
            ActionKind::Login { token } => {
                self.stats.logins += 1;
                self.check_login_allowed(i);
                self.in_flight
                    .retain(|&(_, _, at)| at.plus(self.login_deadline) > now);
                self.in_flight.push((i, token, now));
                let n = u32::try_from(self.in_flight.len()).unwrap_or(u32::MAX);
                self.stats.max_logins_in_flight = self.stats.max_logins_in_flight.max(n);
                let slots = if now < self.throttle_until {
                    (self.slots / 4).max(1)
                } else {
                    self.slots
                };
                if n > slots {
                    self.violate(format!("{n} logins in flight, cap {slots} (camera {i})"));
                }
                let c = &mut self.cams[idx];
                if let Some((start, n)) = c.outage.as_mut() {
                    let _ = start;
                    *n += 1;
                }
                if let Some(t) = c.reopened_at.take() {
                    self.stats.reopen_to_login_ms.push(now.since(t));
                }
                if let Some(t) = c.gated_reopen.take() {
                    self.stats.gated_reopen_to_login_ms.push(now.since(t));
                }
                self.issue(i, SimCall::Login(token));
            }
            ActionKind::Heartbeat { session, token } => {
                self.stats.heartbeats += 1;
                if !self.owns(i, session) {
                    self.violate(format!(
                        "camera {i}: heartbeat on session {} it does not own",
                        session.0
                    ));
                }
                let c = &self.cams[idx];
                if c.hold_reported
                    || c.core_hold
                    || now < c.core_lock_until
                    || (now < c.locked_until && c.lock_reported)
                {
                    self.violate(format!("camera {i}: heartbeat while held or locked"));
                }
                self.issue(i, SimCall::Heartbeat(session, token));
            }
            ActionKind::Logout { session } => {
                let c = &mut self.cams[idx];
                match c
                    .sessions
                    .iter_mut()
                    .find(|s| s.id == session && !s.logged_out)
                {
                    Some(s) => s.logged_out = true,
                    None => self.violate(format!(
                        "camera {i}: logout of session {} it does not hold",
                        session.0
                    )),
                }
                let c = &mut self.cams[idx];
                c.sessions.retain(|s| !s.logged_out);
                if c.stream.is_some_and(|(_, s)| s == session) {
                    c.stream = None;
                }
                self.issue(i, SimCall::Logout(session));
            }
            ActionKind::StartStream { session, token } => {
                if !self.owns(i, session) {
                    self.violate(format!(
                        "camera {i}: stream on session {} it does not own",
                        session.0
                    ));
                }
                self.issue(i, SimCall::StartStream(session, token));
            }
            ActionKind::StopStream { stream } => {
                let c = &mut self.cams[idx];
                if c.stream.is_some_and(|(s, _)| s == stream) {
                    c.stream = None;
                }
            }
            ActionKind::Probe { token } => {
                self.stats.probes += 1;
                let sec = now.0 / 1000;
                if self.probe_bucket.0 == sec {
                    self.probe_bucket.1 += 1;
                } else {
                    self.probe_bucket = (sec, 1);
                }
                self.stats.max_probes_per_second =
                    self.stats.max_probes_per_second.max(self.probe_bucket.1);
                let (delay, open) = match self.cams[idx].cond {
                    Cond::Up | Cond::Frozen { .. } => (self.rng.u64(1..20), true),
                    Cond::Down => (self.rng.u64(1..20), false),
                    Cond::Unreachable => (1000, false),
                };
                self.deliver(i, delay, Event::ProbeResult { token, open });
            }
            ActionKind::Persist => {}
            ActionKind::Alert(alert) => match alert {
                Alert::AuthHold { .. } => {
                    self.stats.auth_holds += 1;
                    self.cams[idx].core_hold = true;
                }
                Alert::Locked { wait_ms } => {
                    self.stats.locks += 1;
                    self.cams[idx].core_lock_until = now.plus(wait_ms);
                }
                Alert::Recovered { .. } => {
                    if let Some(t) = self.cams[idx].reopen_online_pending.take() {
                        self.stats.reopen_to_online_ms.push(now.since(t));
                    }
                }
                Alert::Down { .. }
                | Alert::Stuck { .. }
                | Alert::NeedsOperator { .. }
                | Alert::StreamRefused { .. } => {}
            },
        }
    }

    fn owns(&self, i: u32, session: Session) -> bool {
        self.cams[i as usize]
            .sessions
            .iter()
            .any(|s| s.id == session && s.known && !s.logged_out)
    }

    /// Safety checks on a login the supervisor just issued: against the device's view
    /// (what it told us) and against the supervisor's own announcements.
    fn check_login_allowed(&mut self, i: u32) {
        let c = &self.cams[i as usize];
        let (own_hold, own_lock) = (c.core_hold, self.now < c.core_lock_until);
        if own_hold {
            self.violate(format!("camera {i}: login during its own auth-hold"));
        }
        if own_lock {
            self.violate(format!("camera {i}: login during its own lock wait"));
        }
        let c = &self.cams[i as usize];
        let held = c.hold_reported && !c.password_ok;
        let locked = self.now < c.locked_until && c.lock_reported;
        if held {
            self.violate(format!(
                "camera {i}: login after the device said no try is left (auth-hold ignored)"
            ));
        }
        if locked {
            self.violate(format!(
                "camera {i}: login during a lock the device reported"
            ));
        }
    }

    /// A call reaches the device (or not), per the camera's condition.
    fn issue(&mut self, i: u32, call: SimCall) {
        let cond = self.cams[i as usize].cond;
        match cond {
            Cond::Up => self.eval(i, call),
            Cond::Down => {
                let d = self.rng.u64(1..30);
                self.fail(i, call, d, ErrorClass::Network, 7);
            }
            Cond::Unreachable => self.fail(i, call, 3500, ErrorClass::Network, 7),
            Cond::Frozen { hang: false } => self.fail(i, call, 5000, ErrorClass::Timeout, 10),
            Cond::Frozen { hang: true } => self.cams[i as usize].hung.push(call),
        }
    }

    fn fail(&mut self, i: u32, call: SimCall, delay: u64, class: ErrorClass, code: u32) {
        let ev = match call {
            SimCall::Login(token) => Event::LoginFailed { token, class, code },
            SimCall::Heartbeat(_, token) => Event::HeartbeatFailed { token, class, code },
            SimCall::Logout(session) => Event::LogoutDone { session },
            SimCall::StartStream(_, token) => Event::StreamFailed { token, class, code },
        };
        self.deliver(i, delay, ev);
    }

    /// The device answers a call (it is up).
    fn eval(&mut self, i: u32, call: SimCall) {
        let now = self.now;
        let idx = i as usize;
        match call {
            SimCall::Login(token) => {
                let lat = self.rng.u64(100..800);
                let c = &mut self.cams[idx];
                if now < c.locked_until {
                    // Any attempt during the lock renews it.
                    c.locked_until = now.plus(LOCK_MS);
                    let secs = c.supports_lock.then_some((LOCK_MS / 1000) as u32);
                    self.stats.locked_replies += 1;
                    self.push(LOCK_MS, SimEvent::LockEnd(i));
                    self.deliver(
                        i,
                        lat,
                        Event::LoginFailed {
                            token,
                            class: ErrorClass::Locked { secs_left: secs },
                            code: 153,
                        },
                    );
                } else if !c.password_ok {
                    c.bad_tries = c.bad_tries.saturating_add(1);
                    if c.bad_tries >= LOCK_TRIES {
                        c.locked_until = now.plus(LOCK_MS);
                        c.bad_tries = 0;
                        let secs = c.supports_lock.then_some((LOCK_MS / 1000) as u32);
                        self.violate(format!("camera {i}: our bad logins locked the device"));
                        self.push(LOCK_MS, SimEvent::LockEnd(i));
                        self.update_reachable(i);
                        self.deliver(
                            i,
                            lat,
                            Event::LoginFailed {
                                token,
                                class: ErrorClass::Locked { secs_left: secs },
                                code: 153,
                            },
                        );
                    } else {
                        let left = LOCK_TRIES - c.bad_tries;
                        let retries_left = c.supports_lock.then_some(left);
                        self.deliver(
                            i,
                            lat,
                            Event::LoginFailed {
                                token,
                                class: ErrorClass::Auth { retries_left },
                                code: 1,
                            },
                        );
                    }
                } else if c.sessions_full {
                    self.deliver(
                        i,
                        lat,
                        Event::LoginFailed {
                            token,
                            class: ErrorClass::Resource,
                            code: 52,
                        },
                    );
                } else if c.glitch {
                    self.deliver(
                        i,
                        lat,
                        Event::LoginFailed {
                            token,
                            class: ErrorClass::Unknown(1234),
                            code: 1234,
                        },
                    );
                } else {
                    c.bad_tries = 0;
                    let id = Session(self.next_session);
                    self.next_session = self.next_session.wrapping_add(1).max(1);
                    let epoch = c.epoch;
                    c.sessions.push(WSession {
                        id,
                        epoch,
                        known: false,
                        logged_out: false,
                    });
                    self.deliver(i, lat, Event::LoginOk { token, session: id });
                }
            }
            SimCall::Heartbeat(session, token) => {
                let lat = self.rng.u64(10..150);
                let c = &self.cams[idx];
                let valid = c
                    .sessions
                    .iter()
                    .any(|s| s.id == session && !s.logged_out && s.epoch == c.epoch);
                let ev = if valid {
                    Event::HeartbeatOk { token }
                } else {
                    Event::HeartbeatFailed {
                        token,
                        class: ErrorClass::Fatal,
                        code: 47,
                    }
                };
                self.deliver(i, lat, ev);
            }
            SimCall::Logout(session) => {
                let lat = self.rng.u64(10..100);
                self.deliver(i, lat, Event::LogoutDone { session });
            }
            SimCall::StartStream(session, token) => {
                let lat = self.rng.u64(100..500);
                let c = &mut self.cams[idx];
                let valid = c
                    .sessions
                    .iter()
                    .any(|s| s.id == session && !s.logged_out && s.epoch == c.epoch);
                if valid {
                    let h = StreamHandle(self.next_stream);
                    self.next_stream = self.next_stream.wrapping_add(1).max(1);
                    c.stream = Some((h, session));
                    self.deliver(i, lat, Event::StreamStarted { token, stream: h });
                    self.start_data(i, lat + DATA_EVERY_MS / 2);
                } else {
                    self.deliver(
                        i,
                        lat,
                        Event::StreamFailed {
                            token,
                            class: ErrorClass::Network,
                            code: 7,
                        },
                    );
                }
            }
        }
    }

    fn start_data(&mut self, i: u32, delay: u64) {
        let c = &mut self.cams[i as usize];
        if let (Some((h, _)), false) = (c.stream, c.data_pending) {
            c.data_pending = true;
            self.push(delay, SimEvent::Data(i, h));
        }
    }

    // -------------------------------------------------------------- world items

    fn world(&mut self, item: SimEvent) {
        match item {
            SimEvent::Deliver(i, ev) => self.on_deliver(i, ev),
            SimEvent::FaultStart(i) => self.random_fault(i),
            SimEvent::FaultEnd(i, generation) => {
                if self.cams[i as usize]
                    .fault
                    .is_some_and(|(_, _, g)| g == generation)
                {
                    self.end_fault(i, true);
                }
            }
            SimEvent::Data(i, h) => {
                let c = &mut self.cams[i as usize];
                c.data_pending = false;
                let flowing = c.cond == Cond::Up
                    && c.stream.is_some_and(|(s, sess)| {
                        s == h
                            && c.sessions
                                .iter()
                                .any(|x| x.id == sess && !x.logged_out && x.epoch == c.epoch)
                    });
                if flowing {
                    self.handle(i, Event::StreamData);
                    self.start_data(i, DATA_EVERY_MS);
                }
            }
            SimEvent::SdkTick(i) => self.sdk_tick(i),
            SimEvent::LockEnd(i) => {
                let c = &mut self.cams[i as usize];
                if self.now >= c.locked_until {
                    c.lock_reported = false;
                    self.update_reachable(i);
                }
            }
            SimEvent::Check => {
                for i in 0..self.cfg.cameras {
                    self.check_cam(i);
                }
                self.check_liveness();
                self.check_due_waits();
                self.push(60_000, SimEvent::Check);
            }
        }
    }

    fn on_deliver(&mut self, i: u32, ev: Event) {
        let idx = i as usize;
        match ev {
            Event::LoginOk { token, session } => {
                self.in_flight.retain(|&(c, t, _)| !(c == i && t == token));
                if let Some(s) = self.cams[idx].sessions.iter_mut().find(|s| s.id == session) {
                    s.known = true;
                }
                self.cams[idx].hold_reported = false;
            }
            Event::LoginFailed { token, class, .. } => {
                self.in_flight.retain(|&(c, t, _)| !(c == i && t == token));
                match class {
                    ErrorClass::Auth { retries_left }
                        if retries_left.is_none_or(|n| n <= 1) && !self.cams[idx].password_ok =>
                    {
                        self.cams[idx].hold_reported = true;
                    }
                    ErrorClass::Locked { .. } if self.now < self.cams[idx].locked_until => {
                        self.cams[idx].lock_reported = true;
                    }
                    ErrorClass::Resource => {
                        self.throttle_until =
                            self.now.plus(ms(self.cfg.settings.resource_throttle));
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        self.handle(i, ev);
    }

    /// The SDK's own heartbeat for our session on camera `i`.
    fn sdk_tick(&mut self, i: u32) {
        let idx = i as usize;
        self.cams[idx].sdk_tick_pending = false;
        let c = &self.cams[idx];
        let Some(s) = c
            .sessions
            .iter()
            .rev()
            .find(|s| s.known && !s.logged_out)
            .copied()
        else {
            self.cams[idx].exchange_sent = false;
            return;
        };
        let valid = s.epoch == c.epoch;
        let up = c.cond == Cond::Up;
        if up && valid {
            if c.exchange_sent {
                self.cams[idx].exchange_sent = false;
                self.handle(
                    i,
                    Event::Exception {
                        kind: ExceptionKind::Resume,
                        session: s.id,
                    },
                );
            }
            return;
        }
        if up && c.isapi && !c.relogin_running {
            // ISAPI mode: the SDK logs the user in again by itself (one attempt).
            self.cams[idx].relogin_running = true;
            self.handle(
                i,
                Event::Exception {
                    kind: ExceptionKind::Relogin,
                    session: s.id,
                },
            );
            let now = self.now;
            let c = &mut self.cams[idx];
            let ok = c.password_ok && now >= c.locked_until && !c.sessions_full;
            if ok {
                if let Some(x) = c.sessions.iter_mut().find(|x| x.id == s.id) {
                    x.epoch = c.epoch;
                }
            } else if !c.password_ok && now >= c.locked_until {
                c.bad_tries = c.bad_tries.saturating_add(1);
                if c.bad_tries >= LOCK_TRIES {
                    c.locked_until = now.plus(LOCK_MS);
                    c.bad_tries = 0;
                    self.violate(format!("camera {i}: SDK re-login locked the device"));
                }
            }
            let kind = if ok {
                ExceptionKind::ReloginOk
            } else {
                ExceptionKind::ReloginFailed
            };
            self.cams[idx].relogin_running = false;
            self.deliver(
                i,
                500,
                Event::Exception {
                    kind,
                    session: s.id,
                },
            );
            return;
        }
        self.cams[idx].exchange_sent = true;
        self.handle(
            i,
            Event::Exception {
                kind: ExceptionKind::Exchange,
                session: s.id,
            },
        );
        self.schedule_sdk_tick(i);
    }

    fn schedule_sdk_tick(&mut self, i: u32) {
        let c = &mut self.cams[i as usize];
        if c.sdk_tick_pending {
            return;
        }
        c.sdk_tick_pending = true;
        let now = self.now.0;
        let phase = c.sdk_phase;
        let next = if now < phase {
            phase
        } else {
            phase + ((now - phase) / SDK_HEARTBEAT_MS + 1) * SDK_HEARTBEAT_MS
        };
        self.push(next - now, SimEvent::SdkTick(i));
    }

    /// Something broke the session(s) on camera `i`: the SDK will notice.
    fn session_trouble(&mut self, i: u32) {
        let has_live = self.cams[i as usize]
            .sessions
            .iter()
            .any(|s| s.known && !s.logged_out);
        if has_live {
            self.schedule_sdk_tick(i);
            let c = &self.cams[i as usize];
            if let (Some((_, sess)), true) = (c.stream, c.cond != Cond::Up) {
                let d = self.rng.u64(1000..3000);
                self.deliver(
                    i,
                    d,
                    Event::Exception {
                        kind: ExceptionKind::Preview,
                        session: sess,
                    },
                );
            }
        }
    }

    fn random_fault(&mut self, i: u32) {
        let Some(mix) = self.cfg.faults else { return };
        let total: u32 = mix.weights.iter().sum();
        let mut r = self.rng.u32(0..total.max(1));
        let mut which = 0;
        for (k, w) in mix.weights.iter().enumerate() {
            if r < *w {
                which = k;
                break;
            }
            r -= w;
        }
        let (fault, dur) = match which {
            0 => (Fault::Outage, self.log_uniform(5_000, ms(mix.max_outage))),
            1 => (Fault::Outage, self.rng.u64(30_000..120_000)),
            2 => (Fault::Unreachable, self.log_uniform(10_000, 30 * 60_000)),
            3 => (Fault::Unreachable, self.rng.u64(1_000..20_000)),
            4 => {
                let hang = self.rng.u32(0..100) < mix.hang_percent;
                let reboot = self.rng.bool();
                (
                    Fault::Freeze { hang, reboot },
                    self.log_uniform(10_000, 20 * 60_000),
                )
            }
            5 => (
                Fault::WrongPassword,
                self.log_uniform(5 * 60_000, 3 * 3_600_000),
            ),
            6 => (Fault::ExternalLock, LOCK_MS),
            7 => (Fault::SessionsFull, self.log_uniform(60_000, 30 * 60_000)),
            8 => (Fault::Glitch, self.log_uniform(60_000, 20 * 60_000)),
            9 => (Fault::AddressChange, 1),
            _ => (Fault::Poke, 1),
        };
        self.start_fault(i, fault, dur);
    }

    fn start_fault(&mut self, i: u32, fault: Fault, dur: u64) {
        if self.cfg.trace == Some(i) {
            eprintln!("t={} cam {i} fault {fault:?} for {dur} ms", self.now);
        }
        self.stats.faults += 1;
        let idx = i as usize;
        let now = self.now;
        if self.cams[idx].fault.is_some() {
            // A scripted fault replaces the current one: end that first.
            self.end_fault(i, false);
        }
        let c = &mut self.cams[idx];
        c.fault_gen = c.fault_gen.wrapping_add(1);
        let generation = c.fault_gen;
        c.fault = Some((fault, now, generation));
        match fault {
            Fault::Outage => {
                let c = &mut self.cams[idx];
                c.cond = Cond::Down;
                c.epoch += 1; // the device reboots
                c.outage = Some((now, 0));
                c.reopened_at = None;
                c.gated_reopen = None;
                self.session_trouble(i);
                // The reboot resets every connection: the runtime's link watch (hybrid)
                // sees the RST of the live session's idle connection within milliseconds.
                if self.cfg.settings.strategy.traits().link_watch {
                    let live: Vec<Session> = self.cams[idx]
                        .sessions
                        .iter()
                        .filter(|s| s.known && !s.logged_out)
                        .map(|s| s.id)
                        .collect();
                    for session in live {
                        let d = self.rng.u64(1..20);
                        self.deliver(i, d, Event::LinkLost { session });
                    }
                }
            }
            Fault::Unreachable => {
                self.cams[idx].cond = Cond::Unreachable;
                self.session_trouble(i);
            }
            Fault::Freeze { hang, .. } => {
                self.cams[idx].cond = Cond::Frozen { hang };
                self.session_trouble(i);
            }
            Fault::WrongPassword => {
                let c = &mut self.cams[idx];
                c.password_ok = false;
                c.epoch += 1; // a password change ends existing sessions
                self.session_trouble(i);
            }
            Fault::ExternalLock => {
                let c = &mut self.cams[idx];
                c.locked_until = c.locked_until.max(now.plus(LOCK_MS));
                c.lock_reported = false;
                c.epoch += 1;
                self.push(LOCK_MS, SimEvent::LockEnd(i));
                self.session_trouble(i);
            }
            Fault::SessionsFull => self.cams[idx].sessions_full = true,
            Fault::Glitch => self.cams[idx].glitch = true,
            Fault::AddressChange => {
                // A new address is a new camera for the supervisor: the liveness window
                // starts again, holds and lock waits are forgotten.
                let c = &mut self.cams[idx];
                if c.reachable_since.is_some() {
                    c.reachable_since = Some(now);
                }
                c.core_hold = false;
                c.core_lock_until = Millis::ZERO;
                // What the device told the supervisor under the old address is forgotten
                // with it: a lock that outlived its fault (renewed by an attempt during
                // it) meets the fresh start's first login, which the device answers with
                // the lock again. Our own bad tries still count (`bad_tries` is kept).
                c.lock_reported = false;
                c.hold_reported = false;
                self.handle(i, Event::AddressChanged);
            }
            Fault::Poke => {
                let st = self.sup.status(self.ids[idx]).map(|s| s.state);
                if !matches!(st, Some(State::AuthHold | State::Locked)) {
                    self.handle(i, Event::RetryNow);
                }
            }
        }
        self.update_reachable(i);
        self.push(dur, SimEvent::FaultEnd(i, generation));
    }

    /// Ends camera `i`'s fault; `natural` ends schedule the next random fault.
    fn end_fault(&mut self, i: u32, natural: bool) {
        let idx = i as usize;
        let now = self.now;
        let Some((fault, start, _)) = self.cams[idx].fault.take() else {
            return;
        };
        if self.cfg.trace == Some(i) {
            eprintln!("t={} cam {i} fault {fault:?} ends", self.now);
        }
        match fault {
            Fault::Outage => {
                let gated = self.sup.status(self.ids[idx]).is_some_and(|st| {
                    matches!(st.state, State::Backoff | State::Stuck)
                        && st.port == super::camera::PortState::Closed
                });
                let c = &mut self.cams[idx];
                c.cond = Cond::Up;
                c.reopened_at = Some(now);
                c.gated_reopen = gated.then_some(now);
                c.reopen_online_pending = Some(now);
                if let Some((start, logins)) = c.outage.take() {
                    let hours = now.since(start) as f64 / 3_600_000.0;
                    if hours >= 1.0 {
                        self.stats.long_outages.push((logins, hours));
                        let allowed = 6.0 * hours.ceil();
                        if self.cfg.settings.strategy == Strategy::Hybrid
                            && f64::from(logins) > allowed
                        {
                            self.violate(format!(
                                "camera {i}: {logins} logins during a {hours:.2} h outage (allowed {allowed})"
                            ));
                        }
                    }
                }
            }
            Fault::Unreachable => {
                let c = &mut self.cams[idx];
                c.cond = Cond::Up;
                if now.since(start) > 60_000 {
                    c.epoch += 1; // the device dropped the idle sessions meanwhile
                }
            }
            Fault::Freeze { reboot, .. } => {
                let c = &mut self.cams[idx];
                c.cond = Cond::Up;
                if reboot {
                    c.epoch += 1;
                }
                // Hung calls are answered now, by a device that is up again.
                let hung = core::mem::take(&mut self.cams[idx].hung);
                for call in hung {
                    self.eval(i, call);
                }
            }
            Fault::WrongPassword => {
                self.cams[idx].password_ok = true;
                self.send(i, Event::CredentialsChanged);
            }
            Fault::ExternalLock | Fault::AddressChange | Fault::Poke => {}
            Fault::SessionsFull => self.cams[idx].sessions_full = false,
            Fault::Glitch => self.cams[idx].glitch = false,
        }
        // Sessions may have healed or died: let the SDK notice, and restart data.
        self.session_trouble(i);
        let c = &self.cams[idx];
        if c.cond == Cond::Up && c.stream.is_some() {
            self.start_data(i, DATA_EVERY_MS);
        }
        self.update_reachable(i);
        if let (true, Some(mix)) = (natural, self.cfg.faults) {
            let gap = self.gap_ms(ms(mix.mean_gap));
            self.push(gap, SimEvent::FaultStart(i));
        }
    }

    fn reachable(&self, i: u32) -> bool {
        let c = &self.cams[i as usize];
        c.cond == Cond::Up
            && c.password_ok
            && self.now >= c.locked_until
            && !c.sessions_full
            && !c.glitch
    }

    fn update_reachable(&mut self, i: u32) {
        let r = self.reachable(i);
        let c = &mut self.cams[i as usize];
        match (r, c.reachable_since) {
            (true, None) => c.reachable_since = Some(self.now),
            (false, Some(_)) => c.reachable_since = None,
            _ => {}
        }
    }

    // -------------------------------------------------------------- invariants

    /// Per-step checks for one camera.
    fn check_cam(&mut self, i: u32) {
        let live = self.live_sessions(i);
        if live > 1 {
            self.violate(format!("camera {i}: {live} live sessions"));
        }
        let Some(st) = self.sup.status(self.ids[i as usize]) else {
            return;
        };
        let prev = self.cams[i as usize].last_state;
        self.cams[i as usize].last_state = st.state;
        if st.state.has_session() && live != 1 {
            self.violate(format!(
                "camera {i}: state {} but {live} sessions",
                st.state.name()
            ));
        }
        // Backoff bounds, checked when a failure just scheduled one.
        let fresh = st.last_error.is_some_and(|e| e.at == self.now);
        if fresh
            && matches!(st.state, State::Backoff | State::Stuck)
            && matches!(prev, State::Connecting | State::Online | State::Suspect)
        {
            if let (Some(due), Some(err)) = (st.backoff_until, st.last_error) {
                let class = if prev == State::Connecting && st.state == State::Backoff {
                    err.class
                } else {
                    ErrorClass::Network // session losses and stuck logins back off normally
                };
                if !matches!(class, ErrorClass::Auth { .. }) {
                    let (lo, hi) =
                        documented_backoff(&self.cfg.settings, class, st.consecutive_failures);
                    let d = due.since(self.now);
                    if d < lo || d > hi {
                        self.violate(format!(
                            "camera {i}: backoff {d} ms outside [{lo}, {hi}] after {} failures ({class:?})",
                            st.consecutive_failures
                        ));
                    }
                }
            }
        }
    }

    /// Every camera reachable for longer than the bound is online with a usable session.
    fn check_liveness(&mut self) {
        let bound = self.stats.liveness_bound_ms;
        for i in 0..self.cfg.cameras {
            let idx = i as usize;
            let Some(since) = self.cams[idx].reachable_since else {
                continue;
            };
            let Some(st) = self.sup.status(self.ids[idx]) else {
                continue;
            };
            let c = &self.cams[idx];
            let usable = st.state.has_session()
                && c.sessions
                    .iter()
                    .any(|s| s.known && !s.logged_out && s.epoch == c.epoch)
                && (!c.stream_cam || c.stream.is_some());
            if usable {
                continue;
            }
            let waited = self.now.since(since);
            if waited > bound {
                self.violate(format!(
                    "camera {i}: reachable for {waited} ms (bound {bound}) but {} / usable session: no",
                    st.state.name()
                ));
                // SimReport each stuck camera once per check period at most.
                self.cams[idx].reachable_since = Some(self.now);
            }
        }
    }

    /// No due camera waits longer than the queue can explain.
    fn check_due_waits(&mut self) {
        let bound = self.stats.due_wait_bound_ms;
        for i in 0..self.cfg.cameras {
            let Some(st) = self.sup.status(self.ids[i as usize]) else {
                continue;
            };
            if !matches!(st.state, State::Starting | State::Backoff | State::Stuck) {
                continue;
            }
            if let Some(due) = st.next_attempt {
                let waited = self.now.since(due);
                self.stats.max_due_wait_ms = self.stats.max_due_wait_ms.max(waited);
                if waited > bound {
                    self.violate(format!(
                        "camera {i}: due for {waited} ms without a login (bound {bound}, queued: {})",
                        st.queued
                    ));
                }
            }
        }
    }

    /// "Reachable for long enough", derived from the policy bounds:
    /// start spread + largest backoff + detection + teardown + one login deadline + the SDK
    /// heartbeat + the lock margin + the reopen gap + the stream path + queue drain.
    fn liveness_bound(&self) -> u64 {
        let s = &self.cfg.settings;
        let detect =
            u64::from(s.heartbeat_misses) * (ms(s.heartbeat_interval) + ms(s.heartbeat_deadline));
        ms(s.start_spread)
            + ms(s.backoff_cap).max(ms(s.slow_backoff_floor))
            + ms(s.heartbeat_interval) // ticker alignment (poll)
            + detect
            + SDK_HEARTBEAT_MS
            + ms(s.logout_deadline)
            + ms(s.login_deadline)
            + ms(s.lock_margin)
            + ms(s.reopen_login_gap)
            + ms(s.stream_deadline)
            + ms(s.stream_gap)
            + self.due_wait_bound()
    }

    /// Longest a due camera may wait for its login in this world: every other camera is
    /// ahead of it in the queue, logins run `slots / 4` at a time (resource throttle on),
    /// an answering device takes ≤ 1 s per login, a few hung logins run to their deadline;
    /// plus a logout deadline and the check period.
    fn due_wait_bound(&self) -> u64 {
        let s = &self.cfg.settings;
        let slots = u64::from((self.slots / 4).max(1));
        let rounds = u64::from(self.cfg.cameras).div_ceil(slots);
        rounds * 1000 + 4 * ms(s.login_deadline) + ms(s.logout_deadline) + 60_000
    }
}

/// The backoff window `[lo, hi]` (ms) the settings document for the `n`-th consecutive
/// failure (n ≥ 1) of `class`, worked out here from [`Settings`] alone so that the
/// invariant does not take its bounds from the code it checks. With the ceiling
/// `c = min(backoff_cap, backoff_initial × backoff_multiplier^(n−1))` (the multiplier in
/// thousandths, as the settings accept it):
/// - network and timeout failures: full jitter, `[0, c]`;
/// - resource limits, unknown codes, auth failures with tries left, locks ("slow"):
///   `[floor, min(floor + c, max(backoff_cap, floor))]`, `floor = slow_backoff_floor`;
/// - unsupported and fatal errors: `[fatal_retry / 2, fatal_retry]`.
fn documented_backoff(s: &Settings, class: ErrorClass, n: u32) -> (u64, u64) {
    let cap = ms(s.backoff_cap);
    let mult = (s.backoff_multiplier * 1000.0).round() / 1000.0;
    let exponent = i32::try_from(n.max(1) - 1).unwrap_or(i32::MAX);
    // Exact in f64 for every value below the cap that matters; the `+ 1` absorbs rounding.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let c =
        ((ms(s.backoff_initial) as f64 * mult.powi(exponent)).min(cap as f64) as u64 + 1).min(cap);
    match class {
        ErrorClass::Network | ErrorClass::Timeout => (0, c),
        ErrorClass::Resource
        | ErrorClass::Unknown(_)
        | ErrorClass::Auth { .. }
        | ErrorClass::Locked { .. } => {
            let floor = ms(s.slow_backoff_floor);
            let top = cap.max(floor);
            (floor.min(top), floor.saturating_add(c).min(top))
        }
        ErrorClass::Unsupported | ErrorClass::Fatal => {
            let f = ms(s.fatal_retry);
            (f / 2, f)
        }
    }
}

/// Runs `cfg` and returns the report.
#[must_use]
pub fn run(cfg: SimConfig) -> SimReport {
    Sim::new(cfg).run()
}

/// Formats a failing run for a test failure, with the command that reproduces it.
/// `env` is extra environment for the command (e.g. `SIM_STRATEGY=poll`), may be empty.
#[must_use]
pub fn describe_failure(test: &str, env: &str, cfg: &SimConfig, report: &SimReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "simulation failed: seed {} ({} cameras, {:?}, strategy {})",
        cfg.seed, cfg.cameras, cfg.duration, cfg.settings.strategy
    );
    let _ = writeln!(
        s,
        "reproduce with: {env}{}SIM_SEED={} SIM_CAMS={} SIM_HOURS={} SIM_TRACE=<camera> \
         cargo test --test {test} -- --nocapture",
        if env.is_empty() { "" } else { " " },
        cfg.seed,
        cfg.cameras,
        cfg.duration.as_secs_f64() / 3600.0
    );
    for v in &report.violations {
        let _ = writeln!(s, "  {v}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_world_gets_everyone_online() {
        let mut cfg = SimConfig::new(50, Duration::from_secs(600), 1);
        cfg.faults = None;
        let r = run(cfg);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!(r.stats.online_at_end, 50);
        assert!(r.stats.logins >= 50);
    }

    #[test]
    fn same_seed_same_run() {
        let cfg = SimConfig::new(40, Duration::from_secs(3 * 3600), 9);
        let a = run(cfg);
        let b = run(cfg);
        assert_eq!(a.stats, b.stats);
        assert_eq!(a.violations, b.violations);
    }
}
