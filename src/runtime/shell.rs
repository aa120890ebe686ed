//! The supervisor task's state: the pure [`Supervisor`] plus everything that turns its
//! actions into I/O and I/O back into events.
//!
//! Everything here runs on the executor thread, synchronously, between two awaits of the
//! loop in [`super::run_loaded`]; the only `await`s are in the call tasks it spawns.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use async_channel::Sender;
use smol::LocalExecutor;

use crate::backend::{BackendEvent, Backends, Job, Outcome};
use crate::config::{BackendKind, CameraConfig, Config, LoadOptions, LoginMode};
use crate::histogram::Histogram;
use crate::logging::RepeatLog;
use crate::store::{self, CameraState, Store};
use crate::supervisor::{
    Action, ActionKind, CamId, Event, ExceptionKind, Millis, Persisted, Session, Settings, State,
    StreamHandle, Supervisor, Token,
};
use crate::watchdog::{Notifier, NotifyState};
use crate::{cam_info, cam_warn};

use super::calls::{self, Msg};

/// A call the core asked for, waiting for its turn in the camera's lane. Turned into a
/// [`Job`] when it starts, so a login uses the configuration current at that moment.
/// `EndLeftSession` is the runtime's own: end the device session the last run left,
/// without a login.
#[derive(Clone, Copy, Debug)]
enum Intent {
    Login { token: Token },
    Heartbeat { session: Session, token: Token },
    Logout { session: Session },
    StartStream { session: Session, token: Token },
    StopStream { stream: StreamHandle },
    EndLeftSession,
}

/// How often the runtime looks for remembered device sessions of cameras that will not
/// log in soon (see [`SupervisorDriver::end_idle_left_sessions`]): each try is one short
/// request per such camera.
pub(super) const LEFT_SESSION_SWEEP: Duration = Duration::from_secs(60);

/// [`LEFT_SESSION_SWEEP`], or in debug builds the end-to-end tests' shorter period
/// (`HIKWATCH_TEST_LEFT_SWEEP_MS`, see `hook.rs`).
pub(super) fn left_session_sweep() -> Duration {
    #[cfg(debug_assertions)]
    if let Some(period) = super::hook::left_sweep_from_env() {
        return period;
    }
    LEFT_SESSION_SWEEP
}

/// After a link watch could not connect, the next try waits this long.
const WATCH_RETRY: Duration = Duration::from_secs(60);

/// One camera slot (index = the supervisor's [`CamId`]; the supervisor reuses the slots
/// of removed cameras, and so does this table).
#[derive(Debug)]
pub(crate) struct CameraSlot {
    /// The camera's current configuration.
    pub conf: CameraConfig,
    /// Removed from the configuration; the core is tearing it down.
    pub retired: bool,
    /// The serial lane: backend calls of this camera run one at a time, in the order the
    /// core emitted them (stop stream before logout before the next login).
    lane: VecDeque<Intent>,
    /// A lane call is running.
    busy: bool,
    /// The last evidence the session was healthy (login, heartbeat, stream data, SDK
    /// resume): where detection latency is measured from.
    pub last_good: Option<Instant>,
    /// Set when a session loss was declared; cleared by the next recovery (so the first
    /// connect after start is not counted as a recovery).
    pub down_at: Option<Instant>,
    /// The last SDK error text seen for this camera, with its code (for status).
    pub last_text: Option<(u32, String)>,
    /// The link watch of the live session (hybrid): dropping the task closes it.
    watch: Option<(Session, smol::Task<()>)>,
    /// No watch before this (the last one could not connect).
    watch_retry_at: Option<Instant>,
}

/// Counters and histograms the runtime measures (see the module docs of
/// [`crate::runtime`] for the definitions).
#[derive(Debug)]
pub(crate) struct Observed {
    pub detection: Histogram,
    pub recovery: Histogram,
    pub deadlines_missed: u64,
    pub sdk_overflows: u64,
}

/// Wall and monotonic clock of one daemon run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    pub start: Instant,
    pub start_wall: SystemTime,
}

impl Clock {
    pub(super) fn millis(&self, t: Instant) -> Millis {
        Millis(
            u64::try_from(t.saturating_duration_since(self.start).as_millis()).unwrap_or(u64::MAX),
        )
    }

    pub(super) fn instant(&self, m: Millis) -> Instant {
        self.start + Duration::from_millis(m.0)
    }

    pub(super) fn wall(&self, m: Millis) -> SystemTime {
        self.start_wall + Duration::from_millis(m.0)
    }
}

/// The supervisor task's state. See the module docs.
#[derive(Debug)]
pub(crate) struct SupervisorDriver {
    pub cfg: Config,
    pub load_opts: LoadOptions,
    pub settings: Settings,
    pub sup: Supervisor,
    /// The backends this run opened.
    pub backends: Backends,
    pub store: Store,
    pub clock: Clock,
    pub slots: Vec<CameraSlot>,
    pub by_id: HashMap<String, CamId>,
    /// The core's output buffer, reused.
    actions: Vec<Action>,
    pub tx: Sender<Msg>,
    pub ex: Rc<LocalExecutor<'static>>,
    pub repeat: RepeatLog,
    pub obs: Observed,
    pub notifier: Notifier,
    /// Shutting down: persisted state is frozen (the teardown must not overwrite a
    /// camera's backoff, hold or lock in the state file).
    pub stopping: bool,
    /// The last `STATUS=` text sent.
    pub status_sent: String,
}

/// What [`SupervisorDriver::new`] needs.
#[derive(Debug)]
pub(crate) struct DriverParts {
    pub cfg: Config,
    pub load_opts: LoadOptions,
    pub sup: Supervisor,
    pub backends: Backends,
    pub store: Store,
    pub clock: Clock,
    pub tx: Sender<Msg>,
    pub ex: Rc<LocalExecutor<'static>>,
    pub notifier: Notifier,
}

impl SupervisorDriver {
    /// A shell with no cameras yet.
    pub(super) fn new(p: DriverParts) -> SupervisorDriver {
        let settings = p.cfg.supervisor.settings();
        let repeat = RepeatLog::new(p.cfg.log.repeat_window);
        SupervisorDriver {
            cfg: p.cfg,
            load_opts: p.load_opts,
            settings,
            sup: p.sup,
            backends: p.backends,
            store: p.store,
            clock: p.clock,
            slots: Vec::new(),
            by_id: HashMap::new(),
            actions: Vec::new(),
            tx: p.tx,
            ex: p.ex,
            repeat,
            obs: Observed {
                detection: Histogram::latency(),
                recovery: Histogram::latency(),
                deadlines_missed: 0,
                sdk_overflows: 0,
            },
            notifier: p.notifier,
            stopping: false,
            status_sent: String::new(),
        }
    }

    /// Monotonic `now` for the core.
    pub(super) fn now_ms(&self) -> Millis {
        self.clock.millis(Instant::now())
    }

    /// Adds a camera to the core and the slot table.
    pub(super) fn add_camera(&mut self, conf: CameraConfig) -> CamId {
        let now = self.now_ms();
        let cam = self.sup.add_camera(now, conf.stream.is_some());
        let i = cam.0 as usize;
        let slot = CameraSlot {
            conf,
            retired: false,
            lane: VecDeque::new(),
            busy: false,
            last_good: None,
            down_at: None,
            last_text: None,
            watch: None,
            watch_retry_at: None,
        };
        if i < self.slots.len() {
            // A reused slot keeps its lane: a late call of the previous camera may still
            // be on its way back (the core recognises it by its token).
            let old = &mut self.slots[i];
            let lane = std::mem::take(&mut old.lane);
            let busy = old.busy;
            *old = slot;
            old.lane = lane;
            old.busy = busy;
        } else {
            self.slots.push(slot);
        }
        self.by_id.insert(self.slots[i].conf.id.clone(), cam);
        cam
    }

    /// Puts a freshly added camera into its persisted situation (backoff, auth-hold,
    /// lock) from the state file.
    pub(super) fn restore(&mut self, cam: CamId, st: &CameraState) {
        let p = Persisted {
            consecutive_failures: st.consecutive_failures,
            next_attempt_in: st.next_due_in,
            auth_hold: st.auth_hold,
            lock_left: st.lock_left,
            last_error: st.last_error.map(|e| (e.class.into(), e.code)),
            login_attempts: st.login_attempts,
            reconnects: st.reconnects,
            last_online_ago: st.last_online_ago,
        };
        let now = self.now_ms();
        if let Err(e) = self.sup.restore(cam, &p, now) {
            log::warn!("state: cannot restore camera {}: {e}", self.id(cam));
        }
    }

    /// The camera id of a slot.
    pub(super) fn id(&self, cam: CamId) -> &str {
        self.slots
            .get(cam.0 as usize)
            .map_or("?", |s| s.conf.id.as_str())
    }

    /// Feeds one event to the core and executes what comes out.
    pub(super) fn handle(&mut self, cam: CamId, event: Event) {
        let now = self.now_ms();
        let mut out = std::mem::take(&mut self.actions);
        self.sup.handle(now, cam, event, &mut out);
        self.execute(&mut out);
        self.actions = out;
    }

    /// Fires the core's due timers and executes what comes out.
    pub(super) fn tick(&mut self) {
        let now = self.now_ms();
        let mut out = std::mem::take(&mut self.actions);
        self.sup.tick(now, &mut out);
        self.execute(&mut out);
        self.actions = out;
    }

    /// When the core wants the next `tick`.
    pub(super) fn next_core_wake(&self) -> Option<Instant> {
        self.sup.next_wakeup().map(|m| self.clock.instant(m))
    }

    fn execute(&mut self, out: &mut Vec<Action>) {
        for a in out.drain(..) {
            let cam = a.cam;
            match a.kind {
                ActionKind::Probe { token } => self.spawn_probe(cam, token),
                ActionKind::Login { token } => self.queue(cam, Intent::Login { token }),
                ActionKind::Heartbeat { session, token } => {
                    self.queue(cam, Intent::Heartbeat { session, token });
                }
                ActionKind::Logout { session } => self.queue(cam, Intent::Logout { session }),
                ActionKind::StartStream { session, token } => {
                    self.queue(cam, Intent::StartStream { session, token });
                }
                ActionKind::StopStream { stream } => {
                    self.queue(cam, Intent::StopStream { stream });
                }
                ActionKind::Persist => self.persist(cam),
                ActionKind::Alert(alert) => self.on_alert(cam, alert),
            }
        }
    }

    fn spawn_probe(&mut self, cam: CamId, token: Token) {
        let Some(slot) = self.slots.get(cam.0 as usize) else {
            return;
        };
        let task = calls::run_probe(
            cam,
            token,
            slot.conf.host.clone(),
            slot.conf.port,
            self.settings.probe_deadline,
            // An ISAPI device is alive when its web service answers, not when its kernel
            // accepts a connection (a hung device still does).
            match (slot.conf.backend, slot.conf.login_mode) {
                (BackendKind::Isapi, _) | (_, LoginMode::Isapi) => calls::ProbeKind::Http,
                (BackendKind::Sdk, LoginMode::Private | LoginMode::Auto) => {
                    calls::ProbeKind::Connect
                }
            },
            self.tx.clone(),
        );
        self.ex.spawn(task).detach();
    }

    fn queue(&mut self, cam: CamId, intent: Intent) {
        let Some(slot) = self.slots.get_mut(cam.0 as usize) else {
            return;
        };
        if let Intent::Logout { session } = intent {
            if slot.watch.as_ref().is_some_and(|(s, _)| *s == session) {
                slot.watch = None; // the session ends: stop watching its link
            }
        }
        slot.lane.push_back(intent);
        if !slot.busy {
            self.start_next(cam);
        }
    }

    /// Ends the device session the last run left for `cam` now, without a login, when the
    /// camera will not log in soon (auth-hold until the config changes, or a device lock):
    /// its next login would end it first, but that may be hours away, and the session
    /// holds one of the device's slots meanwhile. Sends no password, so it is no login
    /// attempt for the device's lockout count. Not while the camera's lane has work.
    /// Whether it was asked for.
    pub(super) fn end_left_session_if_idle(&mut self, cam: CamId) -> bool {
        let idle = self
            .sup
            .status(cam)
            .is_some_and(|s| matches!(s.state, State::AuthHold | State::Locked));
        let left = self.slots.get(cam.0 as usize).is_some_and(|slot| {
            !slot.busy && slot.lane.is_empty() && self.store.device_session(&slot.conf.id).is_some()
        });
        if idle && left {
            self.queue(cam, Intent::EndLeftSession);
        }
        idle && left
    }

    /// [`SupervisorDriver::end_left_session_if_idle`] for every camera: a camera that went
    /// into a hold or lock with a session still remembered (its logout failed in
    /// transport), or whose last try failed in transport. Run every
    /// [`LEFT_SESSION_SWEEP`].
    pub(super) fn end_idle_left_sessions(&mut self) {
        if self.stopping {
            return;
        }
        let cams: Vec<CamId> = self.by_id.values().copied().collect();
        for cam in cams {
            self.end_left_session_if_idle(cam);
        }
    }

    /// Starts the next call of the camera's lane, if any.
    fn start_next(&mut self, cam: CamId) {
        let s = &self.settings;
        let Some(slot) = self.slots.get_mut(cam.0 as usize) else {
            return;
        };
        let job = loop {
            let Some(intent) = slot.lane.pop_front() else {
                slot.busy = false;
                return;
            };
            let job = match intent {
                Intent::Login { token } => Job::Login {
                    token,
                    conf: slot.conf.clone(),
                    left_session: self.store.device_session(&slot.conf.id).map(str::to_owned),
                    deadline: s.login_deadline,
                },
                Intent::Heartbeat { session, token } => Job::Heartbeat {
                    token,
                    session,
                    deadline: s.heartbeat_deadline,
                },
                Intent::Logout { session } => Job::Logout {
                    session,
                    deadline: s.logout_deadline,
                },
                Intent::StartStream { session, token } => Job::StartStream {
                    token,
                    session,
                    stream: slot.conf.stream.unwrap_or(crate::config::StreamConfig {
                        channel: 1,
                        stream_type: crate::config::StreamType::Main,
                        rtsp_port: None,
                    }),
                    conf: slot.conf.clone(),
                    deadline: s.stream_deadline,
                },
                Intent::EndLeftSession => {
                    // Gone meanwhile (a login ended it first): nothing to do.
                    let Some(cookie) = self.store.device_session(&slot.conf.id) else {
                        continue;
                    };
                    Job::EndLeftSession {
                        conf: slot.conf.clone(),
                        cookie: cookie.to_owned(),
                        deadline: s.logout_deadline,
                    }
                }
                Intent::StopStream { stream } => {
                    // Only streams we started and still hold; an unknown handle was
                    // stopped already.
                    if !self.backends.holds_stream(slot.conf.backend, stream) {
                        continue;
                    }
                    Job::StopStream {
                        stream,
                        deadline: s.logout_deadline,
                    }
                }
            };
            break job;
        };
        slot.busy = true;
        let Some(backend) = self.backends.get(slot.conf.backend) else {
            // Not open in this run (the config check and the reload keep such cameras
            // out): the call is answered as refused, like one that ran.
            let why = format!("backend {} is not available in this run", slot.conf.backend);
            let outcome = job.refused(&why);
            if self.tx.try_send(Msg::Done { cam, outcome }).is_err() {
                log::error!("{}: {why}, and the inbox is full", slot.conf.id);
            }
            return;
        };
        let id = slot.conf.id.clone();
        let task = calls::run_job(backend, cam, id, job, self.tx.clone());
        self.ex.spawn(task).detach();
    }

    /// A message from a call task.
    pub(super) fn on_msg(&mut self, msg: Msg) {
        match msg {
            Msg::Done { cam, outcome } => {
                self.record_device_sessions();
                self.on_outcome(cam, outcome);
                if let Some(slot) = self.slots.get_mut(cam.0 as usize) {
                    slot.busy = false;
                }
                self.start_next(cam);
            }
            Msg::Late { cam, outcome } => {
                cam_info!(self.id(cam), "late answer of a call past its deadline");
                self.on_outcome(cam, outcome);
            }
            Msg::KeepaliveLost { cam, session } => {
                if let Some(slot) = self.slots.get_mut(cam.0 as usize) {
                    if slot.watch.as_ref().is_some_and(|(s, _)| *s == session) {
                        slot.watch = None;
                    }
                }
                let id = self.id(cam).to_string();
                self.repeat.log(
                    log::Level::Info,
                    &id,
                    "exception",
                    format_args!("the device's event stream ended or fell silent"),
                );
                self.handle(cam, Event::EventStreamLost { session });
            }
            Msg::Probe { cam, token, open } => {
                self.handle(cam, Event::ProbeResult { token, open });
            }
            Msg::LinkLost {
                cam,
                session,
                silent,
            } => {
                if let Some(slot) = self.slots.get_mut(cam.0 as usize) {
                    if slot.watch.as_ref().is_some_and(|(s, _)| *s == session) {
                        slot.watch = None;
                    }
                }
                let id = self.id(cam).to_string();
                let (event, what) = if silent {
                    (
                        Event::LinkSilent { session },
                        format!(
                            "no answer on our idle connection for {:?} and no new connection",
                            self.settings.link_watch_timeout
                        ),
                    )
                } else {
                    (
                        Event::LinkLost { session },
                        "the device reset our idle connection; confirming the session".into(),
                    )
                };
                self.repeat
                    .log(log::Level::Info, &id, "link", format_args!("{what}"));
                self.handle(cam, event);
            }
        }
    }

    /// Records in the store the device sessions the backends took or gave up (written
    /// with the next flush, so a kill within `[state] flush_interval` of a login leaves
    /// that session to the device's expiry). Not for cameras gone from the store, nor new
    /// sessions of a camera being removed (its logout follows).
    fn record_device_sessions(&mut self) {
        for (cam, cookie) in self.backends.take_device_sessions() {
            let Some(slot) = self.slots.get(cam.0 as usize) else {
                continue;
            };
            let id = &slot.conf.id;
            let skip = match cookie {
                Some(_) => slot.retired,
                None => self.store.device_session(id).is_none(),
            };
            if skip {
                continue;
            }
            if let Err(e) = self.store.set_device_session(id, cookie.as_deref()) {
                cam_warn!(id, "state: {e}");
            }
        }
    }

    fn on_outcome(&mut self, cam: CamId, outcome: Outcome) {
        let now = Instant::now();
        match outcome {
            Outcome::LoginOk { token, session } => {
                self.handle(cam, Event::LoginOk { token, session });
                self.ensure_watch(cam);
            }
            Outcome::LoginFailed {
                token,
                class,
                code,
                text,
            } => {
                let id = self.id(cam).to_string();
                self.repeat.log(
                    log::Level::Warn,
                    &id,
                    "login",
                    format_args!("login failed: {text}"),
                );
                if let Some(slot) = self.slots.get_mut(cam.0 as usize) {
                    slot.last_text = Some((code, text));
                }
                self.handle(cam, Event::LoginFailed { token, class, code });
            }
            Outcome::HeartbeatOk { token } => {
                if let Some(slot) = self.slots.get_mut(cam.0 as usize) {
                    slot.last_good = Some(now);
                }
                self.handle(cam, Event::HeartbeatOk { token });
                self.ensure_watch(cam); // after a false alarm, or a failed first connect
            }
            Outcome::HeartbeatFailed { token, class, code } => {
                let id = self.id(cam).to_string();
                self.repeat.log(
                    log::Level::Info,
                    &id,
                    "heartbeat",
                    format_args!("heartbeat failed: {} error {code}", class.name()),
                );
                self.handle(cam, Event::HeartbeatFailed { token, class, code });
            }
            Outcome::LoggedOut { session } => {
                self.handle(cam, Event::LogoutDone { session });
            }
            Outcome::StreamStarted { token, stream } => {
                if let Some(slot) = self.slots.get_mut(cam.0 as usize) {
                    slot.last_good = Some(now);
                }
                self.handle(cam, Event::StreamStarted { token, stream });
            }
            Outcome::StreamFailed { token, class, code } => {
                self.handle(cam, Event::StreamFailed { token, class, code });
            }
            // Not the core's call; the store already heard what the backend did.
            Outcome::LeftSessionTried => {}
            // The backend has let the stream go; the core forgot it when it asked.
            Outcome::StreamStopped { stream } => {
                log::debug!("{}: stream {} stopped", self.id(cam), stream.0);
            }
            Outcome::Stuck { call, token } => {
                // The core's own deadline alert logs the calls it tracks; a stream stop
                // is not one of them.
                if token.is_none() && call == "stop_stream" {
                    let id = self.id(cam).to_string();
                    self.repeat.log(
                        log::Level::Warn,
                        &id,
                        "stuck",
                        format_args!("SDK {call} still running at its deadline"),
                    );
                }
                if let Some(token) = token {
                    self.handle(cam, Event::CallStuck { token });
                }
            }
        }
    }

    /// Starts the link watch of `cam`'s live session (strategies with
    /// `StrategyTraits::link_watch`), unless one runs for it or the last one could not connect a
    /// moment ago.
    fn ensure_watch(&mut self, cam: CamId) {
        let traits = self.settings.strategy.traits();
        let isapi = self
            .slots
            .get(cam.0 as usize)
            .is_some_and(|s| s.conf.backend == BackendKind::Isapi);
        // Without link watch, an ISAPI session's event stream still stands in for the
        // SDK's own keepalive where the strategy acts on its exceptions.
        let as_keepalive = !traits.link_watch;
        if as_keepalive && !(isapi && traits.exceptions) {
            return;
        }
        let Some(session) = self.sup.status(cam).and_then(|s| s.session) else {
            return;
        };
        let Some(slot) = self.slots.get_mut(cam.0 as usize) else {
            return;
        };
        let now = Instant::now();
        let alive = slot
            .watch
            .as_ref()
            .is_some_and(|(s, t)| *s == session && !t.is_finished());
        if alive || slot.watch_retry_at.is_some_and(|t| now < t) {
            return;
        }
        // A finished watch that reported nothing could not connect: retry it later.
        if slot
            .watch
            .as_ref()
            .is_some_and(|(s, t)| *s == session && t.is_finished())
        {
            slot.watch_retry_at = Some(now + WATCH_RETRY);
            slot.watch = None;
            return;
        }
        slot.watch_retry_at = None;
        // An ISAPI session's own event stream, opened with its login, is its link watch;
        // without one (refused, or already used up by an earlier watch) the idle TCP
        // connection below is.
        if isapi {
            if let Some(alert) = self.backends.take_alert(session) {
                let task =
                    calls::run_alert_watch(cam, session, alert, as_keepalive, self.tx.clone());
                slot.watch = Some((session, self.ex.spawn(task)));
                return;
            }
        }
        if as_keepalive {
            return; // no event stream: nothing stands in for the keepalive
        }
        let task = calls::run_watch(
            cam,
            session,
            slot.conf.host.clone(),
            slot.conf.port,
            self.settings.probe_deadline,
            self.settings.link_watch_timeout,
            self.tx.clone(),
        );
        slot.watch = Some((session, self.ex.spawn(task)));
    }

    /// An event a backend reported on its own (the SDK's callbacks, the ISAPI backend's
    /// broken streams).
    pub(super) fn on_backend_event(&mut self, ev: BackendEvent) {
        match ev {
            BackendEvent::Exception { cam, session, kind } => {
                if matches!(kind, ExceptionKind::Resume | ExceptionKind::ReloginOk) {
                    if let Some(slot) = self.slots.get_mut(cam.0 as usize) {
                        slot.last_good = Some(Instant::now());
                    }
                }
                let id = self.id(cam).to_string();
                let isapi = (self.slots.get(cam.0 as usize))
                    .is_some_and(|s| s.conf.backend == BackendKind::Isapi);
                // The ISAPI backend's only event is its stream reader's.
                let what = match isapi {
                    true => "the device's watched stream broke, session",
                    false => &format!("SDK exception callback {kind:?} for uid"),
                };
                self.repeat.log(
                    log::Level::Info,
                    &id,
                    "exception",
                    format_args!("{what} {}", session.0),
                );
                self.handle(cam, Event::Exception { kind, session });
            }
            BackendEvent::StreamData { cam } => self.stream_data(cam),
            BackendEvent::Overflow {
                dropped,
                unattributed,
            } => {
                self.obs.sdk_overflows += dropped;
                log::warn!(
                    "sdk: event queue overflowed: {dropped} callbacks coalesced \
                     ({unattributed} for unknown sessions)"
                );
            }
        }
    }

    fn stream_data(&mut self, cam: CamId) {
        if let Some(slot) = self.slots.get_mut(cam.0 as usize) {
            slot.last_good = Some(Instant::now());
        }
        self.handle(cam, Event::StreamData);
    }

    /// Reports stream data at most once per call (the runtime calls this about once a
    /// second): a camera whose frame counter moved gets one `StreamData`.
    /// Then the ISAPI backend's broken streams.
    pub(super) fn poll_streams(&mut self) {
        for cam in self.backends.streams_moved() {
            self.stream_data(cam);
        }
        for ev in self.backends.take_events() {
            self.on_backend_event(ev);
        }
    }

    /// Writes the camera's persisted view into the store (not while stopping: the
    /// teardown must not overwrite a hold or a lock).
    fn persist(&mut self, cam: CamId) {
        if self.stopping {
            return;
        }
        let now = Instant::now();
        let Some(p) = self.sup.persisted(cam, self.clock.millis(now)) else {
            return;
        };
        let Some(slot) = self.slots.get(cam.0 as usize) else {
            return;
        };
        if slot.retired {
            return;
        }
        let st = camera_state(&p);
        if let Err(e) = self.store.update(&slot.conf.id, &st, now) {
            let id = slot.conf.id.clone();
            self.repeat
                .log(log::Level::Warn, &id, "state", format_args!("{e}"));
        }
    }

    /// Records every camera's current view in the store (before a shutdown teardown).
    pub(super) fn persist_all(&mut self) {
        let cams: Vec<CamId> = self.by_id.values().copied().collect();
        for cam in cams {
            self.persist(cam);
        }
    }

    /// Writes the state file when due (coalesced; at most once per flush interval).
    pub(super) fn maybe_flush(&mut self, now: Instant) {
        if let Err(e) = self.store.maybe_flush(now) {
            log::error!("state: {e}");
        }
    }

    /// Starts the graceful stop: state frozen, every camera torn down (streams stopped,
    /// sessions logged out).
    pub(super) fn begin_shutdown(&mut self) {
        self.persist_all();
        self.stopping = true;
        let cams: Vec<CamId> = self.sup.cameras().collect();
        for cam in cams {
            if self
                .sup
                .status(cam)
                .is_some_and(|s| s.state != State::Removed)
            {
                self.handle(cam, Event::Removed);
            }
        }
    }

    /// Whether every camera is torn down and no call of a lane is running.
    pub(super) fn all_stopped(&self) -> bool {
        self.sup
            .cameras()
            .all(|c| self.sup.status(c).is_none_or(|s| s.state == State::Removed))
            && self.slots.iter().all(|s| !s.busy)
    }

    /// Drops the bookkeeping of retired cameras the core has finished removing.
    pub(super) fn reap(&mut self) {
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if slot.retired {
                let cam = CamId(u32::try_from(i).unwrap_or(u32::MAX));
                if self
                    .sup
                    .status(cam)
                    .is_some_and(|s| s.state == State::Removed)
                {
                    slot.retired = false;
                    self.backends.forget_camera(cam);
                    cam_info!(slot.conf.id, "removed");
                }
            }
        }
    }

    /// Sends `STATUS=` when the text changed.
    pub(super) fn send_status(&mut self) {
        let line = self.status_line();
        if line != self.status_sent {
            if let Err(e) = self.notifier.notify(&[NotifyState::Status(&line)]) {
                log::warn!("systemd: {e}");
            }
            self.status_sent = line;
        }
    }

    /// SIGHUP: load the file again and apply what changed. A bad file is logged and the
    /// running configuration kept.
    pub(super) fn reload(&mut self) {
        if let Err(e) = self.notifier.notify(&[NotifyState::Reloading]) {
            log::warn!("systemd: {e}");
        }
        let path = self.cfg.path.clone();
        match Config::load_with(&path, &self.load_opts) {
            Err(e) => {
                log::error!(
                    "reload: {} has problems; keeping the running configuration",
                    path.display()
                );
                for line in e.to_string().lines() {
                    log::error!("reload: {line}");
                }
            }
            Ok(loaded) => {
                for w in &loaded.warnings {
                    log::warn!("reload: {w}");
                }
                self.apply(loaded.config);
            }
        }
        let line = self.status_line();
        if let Err(e) = self
            .notifier
            .notify(&[NotifyState::Ready, NotifyState::Status(&line)])
        {
            log::warn!("systemd: {e}");
        }
        self.status_sent = line;
    }

    fn apply(&mut self, new: Config) {
        // A backend this run did not open cannot be opened now (the SDK is loaded once, at
        // start): keep the running configuration.
        if let Some(c) = new.cameras.iter().find(|c| !self.backends.has(c.backend)) {
            log::error!(
                "reload: camera {} uses backend {}, which this run did not open (no camera \
                 used it at start); keeping the running configuration (restart to apply: \
                 systemctl restart hikwatch)",
                c.id,
                c.backend
            );
            return;
        }
        let d = crate::config::diff(&self.cfg, &new);
        for id in &d.removed {
            if let Some(cam) = self.by_id.remove(id) {
                cam_info!(id, "removed from the configuration; logging out");
                self.retire(cam);
            }
        }
        for change in &d.changed {
            let (Some(&cam), Some(conf)) = (self.by_id.get(&change.id), new.camera(&change.id))
            else {
                continue;
            };
            if change.stream || change.backend {
                // The core fixes "stream or not" per camera, and a session belongs to its
                // backend: replace the camera (log out, then start afresh).
                let what = if change.backend {
                    "backend"
                } else {
                    "stream setting"
                };
                cam_info!(change.id, "{what} changed; starting the camera afresh");
                self.by_id.remove(&change.id);
                self.retire(cam);
                let cam = self.add_camera(conf.clone());
                self.set_credentials(cam);
                continue;
            }
            self.slots[cam.0 as usize].conf = conf.clone();
            if change.endpoint {
                cam_info!(change.id, "address changed; reconnecting");
                self.handle(cam, Event::AddressChanged);
            }
            if change.credentials {
                cam_info!(change.id, "credentials changed");
                self.set_credentials(cam);
                self.handle(cam, Event::CredentialsChanged);
            }
        }
        for id in &d.added {
            if let Some(conf) = new.camera(id) {
                cam_info!(id, "added to the configuration");
                let cam = self.add_camera(conf.clone());
                self.set_credentials(cam);
            }
        }
        // Globals: the log settings apply now; the rest needs a restart.
        let mut later = Vec::new();
        for g in &d.global {
            match *g {
                "log.level" => {
                    crate::logging::set_level(new.log.level);
                    log::info!("reload: log level {}", new.log.level);
                }
                "log.repeat_window" => self.repeat = RepeatLog::new(new.log.repeat_window),
                other => later.push(other),
            }
        }
        if !later.is_empty() {
            log::warn!(
                "reload: {} changed; takes effect at the next start (systemctl restart hikwatch)",
                later.join(", ")
            );
        }
        let ids: Vec<&str> = new.cameras.iter().map(|c| c.id.as_str()).collect();
        let dropped = self.store.retain(&ids);
        if dropped > 0 {
            log::info!("state: forgot {dropped} removed camera(s)");
        }
        log::info!(
            "reload: {} added, {} removed, {} changed, {} unchanged",
            d.added.len(),
            d.removed.len(),
            d.changed.len(),
            new.cameras.len() - d.added.len() - d.changed.len()
        );
        self.cfg = new;
    }

    fn retire(&mut self, cam: CamId) {
        if let Some(slot) = self.slots.get_mut(cam.0 as usize) {
            slot.retired = true;
        }
        self.handle(cam, Event::Removed);
    }

    fn set_credentials(&mut self, cam: CamId) {
        let conf = &self.slots[cam.0 as usize].conf;
        if let Err(e) =
            self.store
                .set_credentials(&conf.id, &conf.user, conf.password.expose().as_bytes())
        {
            cam_warn!(conf.id, "state: {e}");
        }
    }
}

/// The supervisor's persisted view as the store keeps it.
pub(crate) fn camera_state(p: &Persisted) -> CameraState {
    CameraState {
        attempts: p.consecutive_failures,
        consecutive_failures: p.consecutive_failures,
        next_due_in: p.next_attempt_in,
        last_error: p
            .last_error
            .map(|(class, code)| store::StoredError::new(class, code)),
        auth_hold: p.auth_hold,
        lock_left: p.lock_left,
        reconnects: p.reconnects,
        login_attempts: p.login_attempts,
        last_online_ago: p.last_online_ago,
    }
}

/// Whether a restored record carries anything the schedule must honour.
pub(crate) fn needs_restore(st: &CameraState) -> bool {
    st.auth_hold || st.lock_left.is_some() || st.consecutive_failures > 0
}
