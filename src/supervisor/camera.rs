//! One camera's state machine. [`Camera::step`] is the only place a transition happens;
//! the table in the [module docs](super) mirrors its `match`.

use crate::backend::ErrorClass;

use super::backoff::{self, Pace};
use super::event::{
    Action, ActionKind, Alert, CallKind, CamId, Event, ExceptionKind, LastFailure, LossCause,
    Session, StreamHandle, Token,
};
use super::settings::Policy;
use super::time::Millis;

/// Where a camera is in its life. See the transition table in the [module docs](super).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Added (or restarted after an address change); first attempt at a spread-out time.
    Starting,
    /// A login is in flight.
    Connecting,
    /// A live session (and stream, if configured); heartbeats per strategy.
    Online,
    /// Still holding the session, but a heartbeat was missed or the SDK reported trouble.
    Suspect,
    /// No session; the next login waits for the backoff (and, in `hybrid`, the probe).
    Backoff,
    /// Credentials rejected with no tries to spare: nothing authenticated is sent until the
    /// credentials change or an operator releases the hold.
    AuthHold,
    /// The device locked us out: nothing authenticated is sent until the lock (+ margin)
    /// has passed.
    Locked,
    /// A login ran past its deadline; like `Backoff`, while its late result may still come.
    Stuck,
    /// Tearing down because the camera was removed or its address changed.
    Stopping,
    /// Gone; the slot may be reused by a new camera.
    Removed,
}

impl State {
    /// Number of states (for per-state counts).
    pub const COUNT: usize = 10;

    /// Every state, in declaration order (index = [`State::index`]).
    pub const ALL: [State; State::COUNT] = [
        State::Starting,
        State::Connecting,
        State::Online,
        State::Suspect,
        State::Backoff,
        State::AuthHold,
        State::Locked,
        State::Stuck,
        State::Stopping,
        State::Removed,
    ];

    /// Stable lowercase name for status output and metrics labels.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Connecting => "connecting",
            State::Online => "online",
            State::Suspect => "suspect",
            State::Backoff => "backoff",
            State::AuthHold => "auth-hold",
            State::Locked => "locked",
            State::Stuck => "stuck",
            State::Stopping => "stopping",
            State::Removed => "removed",
        }
    }

    /// Position in [`State::ALL`].
    #[must_use]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Whether the camera holds a usable session.
    #[must_use]
    pub const fn has_session(self) -> bool {
        matches!(self, State::Online | State::Suspect)
    }
}

/// What the last TCP probe said (hybrid strategy).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PortState {
    /// No probe result since the camera went down.
    Unknown,
    /// The port accepted a connection.
    Open,
    /// Refused, unreachable or timed out.
    Closed,
}

/// Per-camera counters for status and metrics. Monotonic except across slot reuse.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Logins issued.
    pub login_attempts: u64,
    /// Logins that produced the camera's session.
    pub logins_ok: u64,
    /// Live sessions lost (reconnects needed).
    pub drops: u64,
    /// Heartbeats sent.
    pub heartbeats: u64,
    /// Heartbeats failed or past their deadline.
    pub heartbeat_misses: u64,
    /// TCP probes sent.
    pub probes: u64,
    /// Calls past their deadline.
    pub stuck_calls: u64,
    /// Late successful logins that were logged out at once.
    pub late_sessions: u64,
    /// Exception callbacks received for the current session.
    pub exceptions: u64,
}

/// Whether the camera is in the fleet's job queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JobMark {
    /// Not queued.
    None,
    /// In the job queue (exactly once).
    Queued,
    /// Due, but the queue was full: retried on every dispatch until it fits.
    Overflow,
}

/// What the camera does once a `Stopping` teardown has finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AfterStop {
    Remove,
    Restart,
}

/// A call in flight.
#[derive(Clone, Copy, Debug)]
struct CallInFlight {
    token: Token,
    deadline: Millis,
}

/// Inputs of [`Camera::step`]: outside events plus the core's own timers and grants.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Input {
    /// From the runtime.
    Event(Event),
    /// The fleet granted a login slot (cap, workers, queue turn).
    LoginGranted,
    /// The fleet granted a probe (fleet-wide probe rate).
    ProbeGranted,
    /// The login in flight passed its deadline.
    LoginDeadline,
    /// Time for the next heartbeat.
    HeartbeatDue,
    /// The heartbeat in flight passed its deadline.
    HeartbeatDeadline,
    /// The stream start in flight passed its deadline.
    StreamDeadline,
    /// The logout in flight passed its deadline.
    LogoutDeadline,
    /// The probe in flight passed its deadline.
    ProbeDeadline,
    /// No stream data for `stream_gap`.
    StreamGap,
    /// Online for `stable_period`: the backoff counter resets.
    StableReached,
    /// The lock wait is over.
    LockExpired,
    /// Suspect (SDK re-login) for too long without a verdict.
    SuspectTimeout,
    /// Time to ask again for a stream the device refused.
    StreamRetry,
}

/// The context of one step: policy, randomness, time and the output buffer.
pub(crate) struct StepContext<'a> {
    pub p: &'a Policy,
    pub rng: &'a mut fastrand::Rng,
    pub now: Millis,
    pub out: &'a mut Vec<Action>,
}

/// One camera: state, calls in flight, timers, counters.
#[derive(Debug)]
pub(crate) struct Camera {
    pub id: CamId,
    /// Start a stream after login and watch it for gaps.
    pub stream_wanted: bool,
    pub state: State,
    /// When `state` was entered.
    pub since: Millis,
    next_token: u32,

    // ---- calls in flight (each answered by token, or ended by its deadline)
    login: Option<CallInFlight>,
    /// The newest login that passed its deadline and may still answer.
    stuck_login: Option<Token>,
    heartbeat: Option<CallInFlight>,
    /// When the heartbeat in flight was sent, and how many misses due slots already
    /// counted for it (one per whole interval without an answer).
    heartbeat_sent: Millis,
    heartbeat_overdue: u8,
    /// What made the session suspect and sent a confirming heartbeat (an exception, a lost
    /// link, a lost event stream) and its code: if the confirmation fails, the loss is
    /// reported as this cause rather than as missed heartbeats. Cleared when the session
    /// is online again or gone.
    suspicion: Option<(LossCause, u32)>,
    /// When the newest heartbeat that was answered was sent (or the session began): the
    /// start of the silence that `heartbeat_misses` intervals of ends the session.
    heard_at: Millis,
    stream_call: Option<CallInFlight>,
    /// The session being logged out and the logout's deadline. No login while set.
    logout: Option<(Session, Millis)>,
    probe: Option<CallInFlight>,

    // ---- the session
    session: Option<Session>,
    stream: Option<StreamHandle>,
    last_data: Millis,

    // ---- schedule
    /// Backoff due time (before probe gating and ticker alignment).
    attempt_at: Option<Millis>,
    /// Ignore the probe gate for the next attempt (operator, credentials change).
    force: bool,
    /// Earliest blind login while the probe says closed.
    blind_at: Millis,
    heartbeat_at: Option<Millis>,
    probe_at: Option<Millis>,
    lock_until: Option<Millis>,
    stable_at: Option<Millis>,
    suspect_until: Option<Millis>,
    /// After the device refused the stream (its stream limit): when to ask again.
    stream_retry_at: Option<Millis>,
    misses: u8,
    /// Consecutive failures: the backoff exponent. Reset only after a stable period.
    failures: u32,
    port: PortState,
    last_reopen_login: Option<Millis>,
    /// Offset of this camera's ticker (poll cadence), in ms.
    ticker_phase: u64,
    after_stop: AfterStop,
    /// When the camera last lost (or never had) its session.
    down_since: Millis,
    /// Last time the camera was online (for the persisted view).
    last_online: Option<Millis>,
    /// Bumped by every credentials change; a login remembers the epoch it used.
    creds_epoch: u32,
    login_epoch: u32,

    // ---- fleet bookkeeping
    pub job: JobMark,
    pub probe_waiting: bool,
    pub heap_wake: Option<Millis>,
    /// Set when a login failed with a resource class (the fleet throttles).
    pub sig_resource: bool,

    // ---- status
    pub counters: Counters,
    pub last_error: Option<LastFailure>,
}

/// Whether an auth failure leaves no try to spare: `retries_left <= 1`, or unknown.
pub(crate) fn auth_needs_hold(retries_left: Option<u8>) -> bool {
    retries_left.is_none_or(|n| n <= 1)
}

impl Camera {
    /// A fresh camera whose first attempt is spread over `start_spread`.
    pub(super) fn new(
        id: CamId,
        stream_wanted: bool,
        first_token: u32,
        cx: &mut StepContext<'_>,
    ) -> Camera {
        let now = cx.now;
        // The naive peer has no jitter: every camera starts at once, on one tick grid.
        let (spread, phase) = if cx.p.traits.naive() {
            (0, 0)
        } else {
            (
                cx.rng.u64(0..=cx.p.start_spread),
                cx.rng.u64(0..cx.p.heartbeat_interval),
            )
        };
        Camera {
            id,
            stream_wanted,
            state: State::Starting,
            since: now,
            next_token: first_token,
            login: None,
            stuck_login: None,
            heartbeat: None,
            stream_call: None,
            logout: None,
            probe: None,
            session: None,
            stream: None,
            last_data: now,
            attempt_at: Some(now.plus(spread)),
            force: false,
            blind_at: now,
            heartbeat_at: None,
            probe_at: None,
            lock_until: None,
            stable_at: None,
            suspect_until: None,
            stream_retry_at: None,
            misses: 0,
            heartbeat_sent: Millis::ZERO,
            heartbeat_overdue: 0,
            suspicion: None,
            heard_at: Millis::ZERO,
            failures: 0,
            port: PortState::Unknown,
            last_reopen_login: None,
            ticker_phase: if cx.p.traits.naive() {
                0
            } else {
                now.0.wrapping_add(phase) % cx.p.heartbeat_interval
            },
            after_stop: AfterStop::Remove,
            down_since: now,
            last_online: None,
            creds_epoch: 0,
            login_epoch: 0,
            job: JobMark::None,
            probe_waiting: false,
            heap_wake: None,
            sig_resource: false,
            counters: Counters::default(),
            last_error: None,
        }
    }

    /// The token the next call will use; slot reuse continues from here.
    pub(super) fn next_token(&self) -> u32 {
        self.next_token
    }

    // ================================================================ the transition function

    /// Applies one input. Every state change of a camera happens in this `match`.
    #[allow(clippy::too_many_lines)] // the transition table: one row per (state, input)
    pub(super) fn step(&mut self, cx: &mut StepContext<'_>, input: Input) {
        use Event as E;
        use Input as I;
        use State as S;

        // A runtime-reported stuck call is the same as the core's own deadline.
        if let I::Event(E::CallStuck { token }) = input {
            if let Some(deadline) = self.deadline_input_for(token) {
                self.step(cx, deadline);
            }
            return;
        }

        // This stays ONE `match (state, input)`: it is the transition table of the module
        // docs, row for row, and the order of the rows (guarded rows before the catch-alls
        // of the same input) is part of its meaning. Splitting it by state or by input
        // would scatter that order over several functions. Bodies longer than a few
        // lines are the named methods in the next section, so each row reads as
        // "in this state, on this input, do that".
        match (self.state, input) {
            // ---------------------------------------------------------------- login
            (S::Starting | S::Backoff | S::Stuck, I::LoginGranted) => {
                self.issue_login(cx);
                self.enter(cx, S::Connecting);
            }
            (_, I::LoginGranted) => {} // no longer eligible: the fleet drops the grant

            (S::Connecting, I::Event(E::LoginOk { token, session })) if self.is_login(token) => {
                self.login = None;
                self.go_online(cx, session);
            }
            (S::Stuck, I::Event(E::LoginOk { token, session }))
                if self.stuck_login == Some(token) && self.login.is_none() =>
            {
                // The stuck login answered before any newer one was issued: adopt it.
                self.stuck_login = None;
                self.go_online(cx, session);
            }
            (_, I::Event(E::LoginOk { session, .. })) if self.session == Some(session) => {
                // A duplicate of the result that made this session: nothing to do.
            }
            (_, I::Event(E::LoginOk { token, session })) => {
                self.refuse_late_session(cx, token, session);
            }

            (S::Connecting, I::Event(E::LoginFailed { token, class, code }))
                if cx.p.traits.naive() && self.is_login(token) =>
            {
                self.naive_login_failed(cx, class, code);
            }
            (S::Connecting, I::Event(E::LoginFailed { token, class, code }))
                if self.is_login(token) =>
            {
                self.login_failed(cx, class, code);
            }
            (S::Backoff | S::Stuck, I::Event(E::LoginFailed { token, class, code }))
                if cx.p.traits.naive()
                    && self.stuck_login == Some(token)
                    && self.login.is_none() =>
            {
                self.naive_stuck_login_failed(cx, class, code);
            }
            (S::Backoff | S::Stuck, I::Event(E::LoginFailed { token, class, code }))
                if self.stuck_login == Some(token) && self.login.is_none() =>
            {
                self.stuck_login_failed(cx, class, code);
            }
            (_, I::Event(E::LoginFailed { token, .. })) => {
                // Stale (or while stopping): it only ends the call.
                self.forget_login(token);
                self.finish_stop_if_done(cx);
            }

            (S::Connecting, I::LoginDeadline) => {
                self.mark_login_stuck(cx);
                self.record(cx, ErrorClass::Timeout, 0);
                self.fail_and_wait(cx, Pace::Normal, S::Stuck);
            }
            (_, I::LoginDeadline) => {
                self.mark_login_stuck(cx);
                self.finish_stop_if_done(cx);
            }

            // ---------------------------------------------------------------- heartbeat
            (S::Online | S::Suspect, I::HeartbeatDue) => self.heartbeat_due(cx),
            (_, I::HeartbeatDue) => self.heartbeat_at = None,

            (S::Online | S::Suspect, I::Event(E::HeartbeatOk { token }))
                if self.is_heartbeat(token) =>
            {
                self.heartbeat_ok(cx);
            }
            (S::Online | S::Suspect, I::Event(E::HeartbeatFailed { token, class, code }))
                if self.is_heartbeat(token) =>
            {
                self.heartbeat = None;
                self.late_miss(cx, class, code);
            }
            (S::Online | S::Suspect, I::HeartbeatDeadline) => {
                self.heartbeat = None;
                self.report_stuck(cx, CallKind::Heartbeat);
                self.late_miss(cx, ErrorClass::Timeout, 0);
            }
            (_, I::Event(E::HeartbeatOk { .. } | E::HeartbeatFailed { .. })) => {} // stale
            (_, I::HeartbeatDeadline) => self.heartbeat = None,

            // ---------------------------------------------------------------- exceptions
            (S::Online | S::Suspect, I::Event(E::Exception { kind, session }))
                if cx.p.traits.sdk_owns_session() && self.session == Some(session) =>
            {
                self.follow_sdk_exception(cx, kind);
            }
            (S::Online | S::Suspect, I::Event(E::Exception { kind, session }))
                if cx.p.traits.exceptions && self.session == Some(session) =>
            {
                self.exception(cx, kind);
            }
            (_, I::Event(E::Exception { .. })) => {} // poll ignores them; stale sessions too
            (S::Online | S::Suspect, I::Event(E::EventStreamLost { session }))
                if (cx.p.traits.sdk_owns_session() || cx.p.traits.exceptions)
                    && self.session == Some(session) =>
            {
                // As the SDK's EXCEPTION_EXCHANGE would be: the `sdk` peer loses the session,
                // the others confirm with one heartbeat or lose it, as they do for that.
                self.counters.exceptions += 1;
                let cause = LossCause::EventStreamLost;
                if cx.p.traits.sdk_owns_session() {
                    self.lose_session(cx, cause, ErrorClass::Network, 0);
                } else {
                    self.trouble(cx, cause, 0);
                }
            }
            (_, I::Event(E::EventStreamLost { .. })) => {} // as for exceptions
            (S::Online | S::Suspect, I::Event(E::LinkLost { session }))
                if cx.p.traits.link_watch && self.session == Some(session) =>
            {
                // The device reset our idle connection: confirm with one heartbeat.
                self.counters.exceptions += 1;
                self.trouble(cx, LossCause::LinkLost, 0);
            }
            (_, I::Event(E::LinkLost { .. })) => {} // another strategy, or a stale session
            (S::Online | S::Suspect, I::Event(E::LinkSilent { session }))
                if cx.p.traits.link_watch && self.session == Some(session) =>
            {
                // Keepalives unanswered and no new connection: the path is dead.
                self.counters.exceptions += 1;
                self.lose_session(cx, LossCause::LinkSilent, ErrorClass::Timeout, 0);
            }
            (_, I::Event(E::LinkSilent { .. })) => {}
            (S::Suspect, I::SuspectTimeout) => {
                self.lose_session(
                    cx,
                    LossCause::ReloginUnfinished,
                    ErrorClass::Timeout,
                    0x8040,
                );
            }
            (_, I::SuspectTimeout) => self.suspect_until = None,

            // ---------------------------------------------------------------- stream
            (S::Online | S::Suspect, I::Event(E::StreamStarted { token, stream }))
                if self.is_stream_call(token) =>
            {
                self.stream_call = None;
                self.stream = Some(stream);
                self.last_data = cx.now;
            }
            (_, I::Event(E::StreamStarted { stream, .. })) if self.stream == Some(stream) => {
                // A duplicate of the result that started this stream.
            }
            (_, I::Event(E::StreamStarted { stream, .. })) => {
                // A stream we no longer want (late, or the session is gone): stop it.
                cx.emit(self.id, ActionKind::StopStream { stream });
            }
            (S::Online | S::Suspect, I::Event(E::StreamFailed { token, class, code }))
                if self.is_stream_call(token) && class == ErrorClass::Resource =>
            {
                // The device refused the stream (its stream limit), not the session: a new
                // login would be refused the same stream, so stay logged in and ask again
                // after `resource_throttle`.
                self.stream_call = None;
                self.record(cx, class, code);
                self.stream_retry_at = Some(cx.now.plus(cx.p.resource_throttle));
                cx.emit(
                    self.id,
                    ActionKind::Alert(Alert::StreamRefused {
                        code,
                        retry_ms: cx.p.resource_throttle,
                    }),
                );
            }
            (S::Online | S::Suspect, I::Event(E::StreamFailed { token, class, code }))
                if self.is_stream_call(token) =>
            {
                self.stream_call = None;
                self.lose_session(cx, LossCause::StreamStartFailed, class, code);
            }
            (_, I::Event(E::StreamFailed { .. })) => {}
            (S::Online | S::Suspect, I::StreamDeadline) => {
                self.stream_call = None;
                self.report_stuck(cx, CallKind::StartStream);
                self.lose_session(cx, LossCause::StreamStartFailed, ErrorClass::Timeout, 0);
            }
            (_, I::StreamDeadline) => self.stream_call = None,
            (_, I::Event(E::StreamData)) => {
                if self.stream.is_some() {
                    self.last_data = cx.now;
                }
            }
            (S::Online | S::Suspect, I::StreamGap) => {
                self.lose_session(cx, LossCause::StreamGap, ErrorClass::Timeout, 0);
            }
            (_, I::StreamGap) => {}
            (S::Online | S::Suspect, I::StreamRetry) => {
                self.stream_retry_at = None;
                if let (Some(session), None, None) = (self.session, self.stream, self.stream_call) {
                    self.start_stream(cx, session);
                }
            }
            (_, I::StreamRetry) => self.stream_retry_at = None,

            // ---------------------------------------------------------------- stable period
            (S::Online | S::Suspect, I::StableReached) => {
                self.stable_at = None;
                self.failures = 0;
            }
            (_, I::StableReached) => self.stable_at = None,

            // ---------------------------------------------------------------- logout
            (_, I::Event(E::LogoutDone { session })) => {
                if self.logout.is_some_and(|(s, _)| s == session) {
                    self.logout = None;
                    self.finish_stop_if_done(cx);
                }
            }
            (_, I::LogoutDeadline) => {
                // The SDK frees the handle even when the device is gone (docs/hcnetsdk.md §6); a
                // logout that hangs is abandoned so the camera can log in again.
                self.logout = None;
                self.report_stuck(cx, CallKind::Logout);
                self.finish_stop_if_done(cx);
            }

            // ---------------------------------------------------------------- probes
            (S::Backoff | S::Stuck, I::ProbeGranted) => self.issue_probe(cx),
            (_, I::ProbeGranted) => {}
            (S::Backoff | S::Stuck, I::Event(E::ProbeResult { token, open }))
                if self.probe.is_some_and(|c| c.token == token) =>
            {
                self.probe_seen(cx, open);
            }
            (S::Backoff | S::Stuck, I::ProbeDeadline) => self.probe_seen(cx, false),
            // The late result of a probe abandoned when a login went out must not cancel
            // the probe that replaced it: probing would stop, and a camera whose port
            // reopened would wait for its next blind login (up to 19 min).
            (_, I::Event(E::ProbeResult { token, .. })) => {
                if self.probe.is_some_and(|c| c.token == token) {
                    self.probe = None;
                }
            }
            (_, I::ProbeDeadline) => self.probe = None,

            // ---------------------------------------------------------------- lock
            (S::Locked, I::LockExpired) => {
                self.lock_until = None;
                self.retry_now(cx, S::Backoff);
            }
            (_, I::LockExpired) => self.lock_until = None,

            // ---------------------------------------------------------------- config
            (S::AuthHold, I::Event(E::CredentialsChanged)) => {
                self.creds_epoch = self.creds_epoch.wrapping_add(1);
                self.failures = 0;
                self.retry_now(cx, S::Backoff);
            }
            (S::Starting | S::Backoff | S::Stuck, I::Event(E::CredentialsChanged)) => {
                self.credentials_changed_while_waiting(cx);
            }
            (_, I::Event(E::CredentialsChanged)) => {
                // Online keeps its session; Locked stays locked (the lock is per client IP);
                // a login in flight with the old credentials is judged by the epoch.
                self.creds_epoch = self.creds_epoch.wrapping_add(1);
            }
            (S::Stopping | S::Removed, I::Event(E::AddressChanged | E::Removed)) => {
                if matches!(input, I::Event(E::Removed)) {
                    self.after_stop = AfterStop::Remove;
                }
            }
            (_, I::Event(E::AddressChanged)) => self.begin_stop(cx, AfterStop::Restart),
            (_, I::Event(E::Removed)) => self.begin_stop(cx, AfterStop::Remove),

            // ---------------------------------------------------------------- operator
            (S::Starting | S::Backoff | S::Stuck, I::Event(E::RetryNow | E::ReleaseHold)) => {
                let to = self.state;
                self.retry_now(cx, to);
            }
            (S::AuthHold | S::Locked, I::Event(E::ReleaseHold))
            | (S::AuthHold, I::Event(E::RetryNow)) => {
                self.lock_until = None;
                self.retry_now(cx, S::Backoff);
            }
            (_, I::Event(E::RetryNow | E::ReleaseHold)) => {} // a lock needs an explicit release

            (_, I::Event(E::CallStuck { .. })) => {} // translated above
        }
    }

    // ================================================================ rows of the table
    // The bodies of the longer rows of `step`, named for the row they implement.

    /// A login answered with a session nobody wants any more (late, stale, or while
    /// stopping): never keep a second session.
    fn refuse_late_session(&mut self, cx: &mut StepContext<'_>, token: Token, session: Session) {
        self.forget_login(token);
        self.counters.late_sessions += 1;
        cx.emit(self.id, ActionKind::Logout { session });
        self.finish_stop_if_done(cx);
    }

    /// The call `token` is over: it is neither the login in flight nor the stuck one.
    fn forget_login(&mut self, token: Token) {
        if self.is_login(token) {
            self.login = None;
        }
        if self.stuck_login == Some(token) {
            self.stuck_login = None;
        }
    }

    /// Benchmark peer `naive`: no error classes; whatever failed is retried next tick.
    fn naive_login_failed(&mut self, cx: &mut StepContext<'_>, class: ErrorClass, code: u32) {
        self.login = None;
        self.record(cx, class, code);
        self.fail_and_wait(cx, Pace::Normal, State::Backoff);
    }

    /// The login in flight failed: the error class picks the wait (hold, lock, operator
    /// alert, slower or normal backoff).
    fn login_failed(&mut self, cx: &mut StepContext<'_>, class: ErrorClass, code: u32) {
        self.login = None;
        self.record(cx, class, code);
        let stale_creds = self.login_epoch != self.creds_epoch;
        match class {
            ErrorClass::Auth { .. } if stale_creds => {
                // The credentials changed while this login was in flight: the change is
                // the release the hold would wait for. Try the new ones.
                self.failures = 0;
                self.retry_now(cx, State::Backoff);
            }
            ErrorClass::Auth { retries_left } if auth_needs_hold(retries_left) => {
                self.hold(cx, retries_left);
            }
            ErrorClass::Locked { secs_left } => self.lock(cx, secs_left),
            ErrorClass::Unsupported | ErrorClass::Fatal => {
                cx.emit(
                    self.id,
                    ActionKind::Alert(Alert::NeedsOperator { class, code }),
                );
                self.fail_and_wait(cx, Pace::VerySlow, State::Backoff);
            }
            ErrorClass::Resource => {
                self.sig_resource = true;
                self.fail_and_wait(cx, Pace::Slow, State::Backoff);
            }
            ErrorClass::Auth { .. }
            | ErrorClass::Network
            | ErrorClass::Timeout
            | ErrorClass::Unknown(_) => {
                self.fail_and_wait(cx, Pace::of(class), State::Backoff);
            }
        }
    }

    /// Benchmark peer `naive`: the stuck login failed; no holds or locks, the next tick
    /// is already planned.
    fn naive_stuck_login_failed(&mut self, cx: &mut StepContext<'_>, class: ErrorClass, code: u32) {
        self.stuck_login = None;
        self.record(cx, class, code);
        self.enter(cx, State::Backoff);
    }

    /// The stuck login finally failed. Its failure was already counted at the deadline;
    /// only hold/lock information changes the plan.
    fn stuck_login_failed(&mut self, cx: &mut StepContext<'_>, class: ErrorClass, code: u32) {
        self.stuck_login = None;
        self.record(cx, class, code);
        match class {
            ErrorClass::Auth { retries_left }
                if auth_needs_hold(retries_left) && self.login_epoch == self.creds_epoch =>
            {
                self.hold(cx, retries_left);
            }
            ErrorClass::Locked { secs_left } => self.lock(cx, secs_left),
            _ => self.enter(cx, State::Backoff),
        }
    }

    /// Time for a heartbeat while a session is up: count an unanswered one as a miss,
    /// send the next, or give the session up after too long a silence.
    fn heartbeat_due(&mut self, cx: &mut StepContext<'_>) {
        if cx.p.traits.heartbeat {
            self.heartbeat_at = Some(next_heartbeat(cx));
        }
        if self.heartbeat.is_some() && self.is_overdue(cx) {
            // No answer for a whole interval: that is a miss now, not when the SDK
            // finally gives up (its receive timeout, or our deadline).
            self.heartbeat_overdue = self.heartbeat_overdue.saturating_add(1);
            self.missed(cx, ErrorClass::Timeout, 0);
        }
        if self.state.has_session() {
            if self.heartbeat.is_none() {
                self.send_heartbeat(cx);
            } else if self.silent_too_long(cx) {
                // Silence: a heartbeat is out and nothing sent since `heard_at` was
                // answered for `heartbeat_misses` intervals. Found within interval ×
                // misses of the cut, however slowly the SDK fails.
                self.lose_session(cx, LossCause::HeartbeatsMissed, ErrorClass::Timeout, 0);
            }
        }
    }

    /// The heartbeat in flight was answered: the session is fine.
    fn heartbeat_ok(&mut self, cx: &mut StepContext<'_>) {
        self.heartbeat = None;
        self.heartbeat_overdue = 0;
        self.heard_at = self.heard_at.max(self.heartbeat_sent);
        self.misses = 0;
        self.enter(cx, State::Online);
    }

    /// A call passed its deadline: count it and tell the operator.
    fn report_stuck(&mut self, cx: &mut StepContext<'_>, call: CallKind) {
        self.counters.stuck_calls += 1;
        cx.emit(self.id, ActionKind::Alert(Alert::Stuck { call }));
    }

    /// Benchmark peer `sdk`: the SDK heartbeats and re-logs in; we only follow it.
    fn follow_sdk_exception(&mut self, cx: &mut StepContext<'_>, kind: ExceptionKind) {
        self.counters.exceptions += 1;
        match kind {
            ExceptionKind::Exchange | ExceptionKind::Relogin | ExceptionKind::ReloginFailed => {
                self.lose_session(
                    cx,
                    LossCause::BackendException,
                    ErrorClass::Network,
                    kind.code(),
                );
            }
            ExceptionKind::Preview | ExceptionKind::PreviewClosed if self.stream_wanted => {
                self.lose_session(
                    cx,
                    LossCause::BackendException,
                    ErrorClass::Network,
                    kind.code(),
                );
            }
            ExceptionKind::Resume | ExceptionKind::ReloginOk => self.sdk_back(cx),
            ExceptionKind::Preview | ExceptionKind::PreviewClosed | ExceptionKind::Other(_) => {}
        }
    }

    /// An SDK exception for the live session (strategies that listen to them).
    fn exception(&mut self, cx: &mut StepContext<'_>, kind: ExceptionKind) {
        self.counters.exceptions += 1;
        match kind {
            ExceptionKind::Exchange => self.trouble(cx, LossCause::BackendException, 0x8000),
            ExceptionKind::Preview if self.stream_wanted => {
                self.trouble(cx, LossCause::BackendException, 0x8003);
            }
            ExceptionKind::ReloginFailed => {
                self.lose_session(cx, LossCause::BackendException, ErrorClass::Network, 0x8044);
            }
            ExceptionKind::PreviewClosed if self.stream_wanted => {
                self.lose_session(cx, LossCause::BackendException, ErrorClass::Network, 0x8045);
            }
            ExceptionKind::Relogin => {
                // The SDK re-logs in by itself; wait for its verdict (bounded).
                self.suspect_until = Some(cx.now.plus(cx.p.login_deadline));
                self.enter(cx, State::Suspect);
            }
            ExceptionKind::Resume | ExceptionKind::ReloginOk => {
                if self.state == State::Suspect && self.heartbeat.is_none() {
                    self.misses = 0;
                    self.suspect_until = None;
                    self.enter(cx, State::Online);
                }
            }
            ExceptionKind::Preview | ExceptionKind::PreviewClosed | ExceptionKind::Other(_) => {}
        }
    }

    /// The fleet granted a probe: send one unless one is out already.
    fn issue_probe(&mut self, cx: &mut StepContext<'_>) {
        if self.probe.is_some() {
            return;
        }
        let token = self.take_token();
        self.probe = Some(CallInFlight {
            token,
            deadline: cx.now.plus(cx.p.probe_deadline),
        });
        self.probe_at = None;
        self.counters.probes += 1;
        cx.emit(self.id, ActionKind::Probe { token });
    }

    /// New credentials while waiting to log in: if the last failure was about
    /// credentials, try the new ones now.
    fn credentials_changed_while_waiting(&mut self, cx: &mut StepContext<'_>) {
        self.creds_epoch = self.creds_epoch.wrapping_add(1);
        if self
            .last_error
            .is_some_and(|e| matches!(e.class, ErrorClass::Auth { .. }))
        {
            self.failures = 0;
            let to = self.state;
            self.retry_now(cx, to);
        }
    }

    // ================================================================ transition helpers
    // These do the bookkeeping for the `match` above; none of them picks a target state
    // on its own except where the name says so (`hold`, `lock`, `lose_session`).

    fn enter(&mut self, cx: &StepContext<'_>, to: State) {
        if self.state != to {
            if self.state.has_session() && !to.has_session() {
                self.last_online = Some(cx.now);
            }
            self.state = to;
            self.since = cx.now;
        }
        if to == State::Online || !to.has_session() {
            self.suspicion = None;
        }
        if !matches!(to, State::Backoff | State::Stuck) {
            self.probe_at = None;
            self.probe = None;
        }
    }

    fn take_token(&mut self) -> Token {
        let t = Token(self.next_token);
        self.next_token = self.next_token.wrapping_add(1);
        t
    }

    fn is_login(&self, token: Token) -> bool {
        self.login.is_some_and(|c| c.token == token)
    }

    fn is_heartbeat(&self, token: Token) -> bool {
        self.heartbeat.is_some_and(|c| c.token == token)
    }

    fn is_stream_call(&self, token: Token) -> bool {
        self.stream_call.is_some_and(|c| c.token == token)
    }

    fn deadline_input_for(&self, token: Token) -> Option<Input> {
        if self.is_login(token) {
            Some(Input::LoginDeadline)
        } else if self.is_heartbeat(token) {
            Some(Input::HeartbeatDeadline)
        } else if self.is_stream_call(token) {
            Some(Input::StreamDeadline)
        } else if self.probe.is_some_and(|c| c.token == token) {
            Some(Input::ProbeDeadline)
        } else {
            None
        }
    }

    fn record(&mut self, cx: &StepContext<'_>, class: ErrorClass, code: u32) {
        self.record_loss(cx, None, class, code);
    }

    fn record_loss(
        &mut self,
        cx: &StepContext<'_>,
        cause: Option<LossCause>,
        class: ErrorClass,
        code: u32,
    ) {
        self.last_error = Some(LastFailure {
            class,
            code,
            cause,
            at: cx.now,
        });
    }

    fn issue_login(&mut self, cx: &mut StepContext<'_>) {
        let token = self.take_token();
        self.login = Some(CallInFlight {
            token,
            deadline: cx.now.plus(cx.p.login_deadline),
        });
        self.login_epoch = self.creds_epoch;
        self.counters.login_attempts += 1;
        self.attempt_at = None;
        self.force = false;
        let jitter = cx.rng.u64(0..=cx.p.blind_interval / 4);
        self.blind_at = cx.now.plus(cx.p.blind_interval.saturating_add(jitter));
        cx.emit(self.id, ActionKind::Login { token });
    }

    fn mark_login_stuck(&mut self, cx: &mut StepContext<'_>) {
        if let Some(c) = self.login.take() {
            self.stuck_login = Some(c.token);
            self.counters.stuck_calls += 1;
            cx.emit(
                self.id,
                ActionKind::Alert(Alert::Stuck {
                    call: CallKind::Login,
                }),
            );
        }
    }

    fn go_online(&mut self, cx: &mut StepContext<'_>, session: Session) {
        self.session = Some(session);
        self.heard_at = cx.now;
        // The reopen gap limits logins within one outage (a port flapping while the
        // service never lets a login through); a session that came up ends the outage.
        self.last_reopen_login = None;
        self.misses = 0;
        self.counters.logins_ok += 1;
        self.attempt_at = None;
        self.force = false;
        self.stable_at = Some(cx.now.plus(cx.p.stable_period));
        self.heartbeat_at = cx.p.traits.heartbeat.then(|| next_heartbeat(cx));
        cx.emit(
            self.id,
            ActionKind::Alert(Alert::Recovered {
                downtime_ms: cx.now.since(self.down_since),
            }),
        );
        if self.stream_wanted {
            self.start_stream(cx, session);
        }
        self.enter(cx, State::Online);
    }

    fn start_stream(&mut self, cx: &mut StepContext<'_>, session: Session) {
        let token = self.take_token();
        self.stream_call = Some(CallInFlight {
            token,
            deadline: cx.now.plus(cx.p.stream_deadline),
        });
        cx.emit(self.id, ActionKind::StartStream { session, token });
    }

    fn send_heartbeat(&mut self, cx: &mut StepContext<'_>) {
        if let (None, Some(session)) = (self.heartbeat, self.session) {
            let token = self.take_token();
            self.heartbeat = Some(CallInFlight {
                token,
                deadline: cx.now.plus(cx.p.heartbeat_deadline),
            });
            self.heartbeat_sent = cx.now;
            self.heartbeat_overdue = 0;
            self.counters.heartbeats += 1;
            cx.emit(self.id, ActionKind::Heartbeat { session, token });
        }
    }

    /// Whether the heartbeat in flight has gone unanswered for a whole interval (the
    /// fleet grid may shorten an interval by up to one grid step). Never for the naive peer,
    /// which judges a heartbeat only by its result, as a plain polling loop does.
    fn is_overdue(&self, cx: &StepContext<'_>) -> bool {
        !cx.p.traits.naive()
            && cx.now.since(self.heartbeat_sent)
                >= cx.p.heartbeat_interval.saturating_sub(HEARTBEAT_GRID_MS)
    }

    /// Whether nothing sent after `heard_at` has been answered for `heartbeat_misses`
    /// intervals (less one grid step: due slots sit on the fleet grid). A device that
    /// fails heartbeats quickly is judged by counting them instead. Never for the naive
    /// peer, which counts results as a plain polling loop does.
    fn silent_too_long(&self, cx: &StepContext<'_>) -> bool {
        let window =
            cx.p.heartbeat_interval
                .saturating_mul(u64::from(cx.p.heartbeat_misses))
                .saturating_sub(HEARTBEAT_GRID_MS);
        !cx.p.traits.naive() && cx.now.since(self.heard_at) >= window
    }

    /// The heartbeat in flight failed or passed its deadline: one miss per whole interval
    /// it went unanswered (at least one), less those the due slots already counted. If
    /// slots counted it, the next heartbeat goes out at once, so that the next slot judges
    /// a fresh one: misses accrue one per interval, and a silent cut is found within
    /// `heartbeat_interval × heartbeat_misses` whatever the SDK's timeouts.
    fn late_miss(&mut self, cx: &mut StepContext<'_>, class: ErrorClass, code: u32) {
        let counted = u64::from(std::mem::take(&mut self.heartbeat_overdue));
        let waited = cx.now.since(self.heartbeat_sent) / cx.p.heartbeat_interval.max(1);
        let due = if cx.p.traits.naive() {
            1
        } else {
            waited.max(1)
        };
        for _ in counted..due {
            self.missed(cx, class, code);
            if !self.state.has_session() {
                return;
            }
        }
        if counted > 0 {
            self.record(cx, class, code);
            self.send_heartbeat(cx);
        }
    }

    /// A heartbeat failed or timed out: suspect, or down after `heartbeat_misses`.
    fn missed(&mut self, cx: &mut StepContext<'_>, class: ErrorClass, code: u32) {
        self.counters.heartbeat_misses += 1;
        self.misses = self.misses.saturating_add(1);
        // The naive peer drops the session at the first miss.
        if self.misses >= cx.p.heartbeat_misses || cx.p.traits.naive() {
            self.lose_session(cx, LossCause::HeartbeatsMissed, class, code);
        } else {
            self.enter(cx, State::Suspect);
        }
    }

    /// An exception (or a lost link or event stream) reported trouble with the session.
    fn trouble(&mut self, cx: &mut StepContext<'_>, cause: LossCause, code: u32) {
        if cx.p.traits.confirm_exceptions {
            // Counts as all but one missed heartbeat; one failed confirmation ends it.
            self.misses = self.misses.max(cx.p.heartbeat_misses.saturating_sub(1));
            self.enter(cx, State::Suspect);
            self.suspicion = Some((cause, code));
            self.send_heartbeat(cx);
        } else {
            self.lose_session(cx, cause, ErrorClass::Network, code);
        }
    }

    /// The session is dead: tear it down and wait for the backoff. Missed heartbeats
    /// that confirmed a suspicion are reported as the suspicion's cause (with its code,
    /// where it has one, and the heartbeat's class).
    fn lose_session(
        &mut self,
        cx: &mut StepContext<'_>,
        cause: LossCause,
        class: ErrorClass,
        code: u32,
    ) {
        let (cause, code) = match self.suspicion.take() {
            Some((suspected, own)) if cause == LossCause::HeartbeatsMissed => {
                (suspected, if own != 0 { own } else { code })
            }
            _ => (cause, code),
        };
        if cx.p.traits.sdk_owns_session() {
            // Benchmark peer: the SDK keeps the handle and re-logs in by itself; we never
            // log out or in again. Down = suspect until the SDK reports the session back.
            if self.state == State::Online {
                self.record_loss(cx, Some(cause), class, code);
                self.counters.drops += 1;
                self.down_since = cx.now;
                let down = Alert::Down { cause, class, code };
                cx.emit(self.id, ActionKind::Alert(down));
                self.enter(cx, State::Suspect);
            }
            return;
        }
        self.record_loss(cx, Some(cause), class, code);
        self.counters.drops += 1;
        self.down_since = cx.now;
        let down = Alert::Down { cause, class, code };
        cx.emit(self.id, ActionKind::Alert(down));
        self.teardown(cx);
        self.port = PortState::Unknown;
        // The first attempt of an outage is allowed even if the probe says closed at once;
        // blind attempts then follow every `blind_login_interval`.
        self.blind_at = cx.now;
        self.fail_and_wait(cx, Pace::Normal, State::Backoff);
        if cx.p.traits.naive() {
            self.attempt_at = Some(cx.now); // the naive peer re-logs in at once
        }
    }

    /// Benchmark peer `sdk`: the SDK reports the session back (0x8017, 0x8041).
    fn sdk_back(&mut self, cx: &mut StepContext<'_>) {
        if self.state == State::Suspect {
            cx.emit(
                self.id,
                ActionKind::Alert(Alert::Recovered {
                    downtime_ms: cx.now.since(self.down_since),
                }),
            );
            self.enter(cx, State::Online);
        }
    }

    /// Stop the stream and log out, in that order; the next login waits for the logout.
    fn teardown(&mut self, cx: &mut StepContext<'_>) {
        if let Some(stream) = self.stream.take() {
            cx.emit(self.id, ActionKind::StopStream { stream });
        }
        self.stream_call = None; // a late StreamStarted will be stopped
        self.stream_retry_at = None;
        self.heartbeat = None;
        self.heartbeat_at = None;
        self.stable_at = None;
        self.suspect_until = None;
        self.misses = 0;
        if let Some(session) = self.session.take() {
            self.logout = Some((session, cx.now.plus(cx.p.logout_deadline)));
            cx.emit(self.id, ActionKind::Logout { session });
        }
    }

    /// Count a failure, schedule the jittered backoff, and wait in `to`.
    fn fail_and_wait(&mut self, cx: &mut StepContext<'_>, pace: Pace, to: State) {
        self.failures = self.failures.saturating_add(1);
        self.attempt_at = Some(if cx.p.traits.naive() {
            naive_tick(cx) // benchmark peer: no backoff, the next tick of the grid
        } else {
            cx.now
                .plus(backoff::delay(cx.p, pace, self.failures, cx.rng))
        });
        self.wait_in(cx, to);
    }

    /// Attempt as soon as the queue allows (still behind the cap and any teardown).
    fn retry_now(&mut self, cx: &mut StepContext<'_>, to: State) {
        self.attempt_at = Some(cx.now);
        self.force = true;
        self.wait_in(cx, to);
    }

    fn wait_in(&mut self, cx: &mut StepContext<'_>, to: State) {
        self.enter(cx, to);
        if cx.p.traits.probe_gate && self.probe.is_none() && self.probe_at.is_none() {
            self.probe_at = Some(cx.now);
        }
    }

    /// Credentials rejected with no try to spare.
    fn hold(&mut self, cx: &mut StepContext<'_>, retries_left: Option<u8>) {
        self.attempt_at = None;
        self.force = false;
        cx.emit(self.id, ActionKind::Alert(Alert::AuthHold { retries_left }));
        self.enter(cx, State::AuthHold);
    }

    /// The device locked us out: wait its remaining time plus the margin.
    fn lock(&mut self, cx: &mut StepContext<'_>, secs_left: Option<u32>) {
        let wait = secs_left.map_or(cx.p.lock_unknown, |s| {
            u64::from(s)
                .saturating_mul(1000)
                .saturating_add(cx.p.lock_margin)
        });
        // Never shorten a lock we already know about.
        let until = cx
            .now
            .plus(wait)
            .max(self.lock_until.unwrap_or(Millis::ZERO));
        self.lock_until = Some(until);
        self.attempt_at = None;
        self.force = false;
        cx.emit(
            self.id,
            ActionKind::Alert(Alert::Locked {
                wait_ms: until.since(cx.now),
            }),
        );
        self.enter(cx, State::Locked);
    }

    fn probe_seen(&mut self, cx: &mut StepContext<'_>, open: bool) {
        self.probe = None;
        self.probe_at = Some(cx.now.plus(cx.p.probe_interval));
        let was = self.port;
        self.port = if open {
            PortState::Open
        } else {
            PortState::Closed
        };
        let reopen_ok = self
            .last_reopen_login
            .is_none_or(|t| cx.now.since(t) >= cx.p.reopen_gap);
        if open && was == PortState::Closed && reopen_ok {
            // The service came back: one login due now (still behind locks, holds, cap).
            self.last_reopen_login = Some(cx.now);
            self.attempt_at = Some(cx.now);
        }
    }

    fn begin_stop(&mut self, cx: &mut StepContext<'_>, after: AfterStop) {
        self.teardown(cx);
        self.after_stop = after;
        self.attempt_at = None;
        self.force = false;
        self.lock_until = None;
        self.enter(cx, State::Stopping);
        self.finish_stop_if_done(cx);
    }

    fn finish_stop_if_done(&mut self, cx: &mut StepContext<'_>) {
        if self.state != State::Stopping || self.logout.is_some() || self.login.is_some() {
            return;
        }
        match self.after_stop {
            AfterStop::Remove => self.enter(cx, State::Removed),
            AfterStop::Restart => {
                // A new address is a new device: start fresh, spread like at start-up.
                self.failures = 0;
                self.port = PortState::Unknown;
                self.last_reopen_login = None;
                self.blind_at = cx.now; // the first attempt needs no probe verdict
                self.down_since = cx.now;
                self.attempt_at = Some(cx.now.plus(cx.rng.u64(0..=cx.p.start_spread)));
                self.enter(cx, State::Starting);
            }
        }
    }

    // ================================================================ queries for the fleet

    /// When a login may be issued, after probe gating and ticker alignment.
    pub(super) fn attempt_due(&self, p: &Policy) -> Option<Millis> {
        if !matches!(self.state, State::Starting | State::Backoff | State::Stuck) {
            return None;
        }
        let mut t = self.attempt_at?;
        // Probe-gated: without an "open" verdict only blind attempts go out (the first
        // attempt after a drop or start is one: `blind_at` is set to that moment).
        if p.traits.probe_gate && self.port != PortState::Open && !self.force {
            t = t.max(self.blind_at);
        }
        if p.traits.ticker_cadence {
            t = align_up(t, self.ticker_phase, p.heartbeat_interval);
        }
        Some(t)
    }

    /// Whether the camera should get a login slot now.
    pub(super) fn wants_login(&self, p: &Policy, now: Millis) -> bool {
        self.login.is_none()
            && self.logout.is_none()
            && self.attempt_due(p).is_some_and(|t| t <= now)
    }

    /// Whether the camera should get a probe token now.
    pub(super) fn wants_probe(&self, now: Millis) -> bool {
        matches!(self.state, State::Backoff | State::Stuck)
            && self.probe.is_none()
            && self.probe_at.is_some_and(|t| t <= now)
    }

    /// Whether a login of this camera is in flight (counts against the cap).
    pub(super) fn login_in_flight(&self) -> bool {
        self.login.is_some()
    }

    /// The earliest time one of this camera's timers needs attention.
    pub(super) fn next_wake(&self, p: &Policy) -> Option<Millis> {
        let attempt = if self.job == JobMark::None && self.login.is_none() && self.logout.is_none()
        {
            self.attempt_due(p)
        } else {
            None
        };
        let probe = if self.probe_waiting || self.probe.is_some() {
            None
        } else {
            self.probe_at
                .filter(|_| matches!(self.state, State::Backoff | State::Stuck))
        };
        let gap = self
            .stream
            .filter(|_| self.state.has_session())
            .map(|_| self.last_data.plus(p.stream_gap));
        [
            attempt,
            probe,
            gap,
            self.login.map(|c| c.deadline),
            self.heartbeat.map(|c| c.deadline),
            self.stream_call.map(|c| c.deadline),
            self.logout.map(|(_, d)| d),
            self.probe.map(|c| c.deadline),
            self.heartbeat_at,
            self.lock_until,
            self.stable_at,
            self.suspect_until,
            self.stream_retry_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Fires every timer that is due at `cx.now`, in a fixed order.
    pub(super) fn on_timers(&mut self, cx: &mut StepContext<'_>) {
        let now = cx.now;
        let due = |t: Option<Millis>| t.is_some_and(|t| t <= now);
        if due(self.lock_until) {
            self.step(cx, Input::LockExpired);
        }
        if due(self.login.map(|c| c.deadline)) {
            self.step(cx, Input::LoginDeadline);
        }
        if due(self.heartbeat.map(|c| c.deadline)) {
            self.step(cx, Input::HeartbeatDeadline);
        }
        if due(self.stream_call.map(|c| c.deadline)) {
            self.step(cx, Input::StreamDeadline);
        }
        if due(self.logout.map(|(_, d)| d)) {
            self.step(cx, Input::LogoutDeadline);
        }
        if due(self.probe.map(|c| c.deadline)) {
            self.step(cx, Input::ProbeDeadline);
        }
        if self.stream.is_some()
            && self.state.has_session()
            && due(Some(self.last_data.plus(cx.p.stream_gap)))
        {
            self.step(cx, Input::StreamGap);
        }
        if due(self.suspect_until) {
            self.step(cx, Input::SuspectTimeout);
        }
        if due(self.stable_at) {
            self.step(cx, Input::StableReached);
        }
        if due(self.heartbeat_at) {
            self.step(cx, Input::HeartbeatDue);
        }
        if due(self.stream_retry_at) {
            self.step(cx, Input::StreamRetry);
        }
    }

    // ================================================================ views

    pub(super) fn session(&self) -> Option<Session> {
        self.session
    }

    pub(super) fn streaming(&self) -> bool {
        self.stream.is_some()
    }

    pub(super) fn failures(&self) -> u32 {
        self.failures
    }

    pub(super) fn backoff_until(&self) -> Option<Millis> {
        self.attempt_at
    }

    pub(super) fn lock_until(&self) -> Option<Millis> {
        self.lock_until
    }

    pub(super) fn port(&self) -> PortState {
        self.port
    }

    pub(super) fn last_online(&self) -> Option<Millis> {
        self.last_online
    }

    /// What changes here is worth a state-file write.
    pub(super) fn persist_key(&self) -> (State, u32, Option<Millis>, Option<Millis>, Option<u32>) {
        // A login in flight is still "down" for the store; suspect is still online.
        let state = match self.state {
            State::Suspect => State::Online,
            State::Stuck | State::Connecting => State::Backoff,
            s => s,
        };
        (
            state,
            self.failures,
            self.attempt_at,
            self.lock_until,
            self.last_error.map(|e| e.code),
        )
    }

    /// Puts a fresh camera into the persisted situation.
    pub(super) fn restore(
        &mut self,
        cx: &mut StepContext<'_>,
        failures: u32,
        wait: u64,
        hold: bool,
        lock_left: Option<u64>,
        last_error: Option<LastFailure>,
    ) {
        self.failures = failures;
        self.last_error = last_error;
        if let Some(left) = lock_left {
            self.lock_until = Some(cx.now.plus(left));
            self.enter(cx, State::Locked);
        } else if hold {
            self.enter(cx, State::AuthHold);
        } else {
            // Never earlier than a spread slot: a restart must not become a login storm.
            let spread = cx.rng.u64(0..=cx.p.start_spread);
            self.attempt_at = Some(cx.now.plus(wait.max(spread)));
            self.wait_in(cx, State::Backoff);
        }
        if lock_left.is_some() || hold {
            self.attempt_at = None;
        }
    }
}

impl StepContext<'_> {
    fn emit(&mut self, cam: CamId, kind: ActionKind) {
        self.out.push(Action { cam, kind });
    }
}

/// Heartbeats are due on a fleet-wide grid of this many ms: one interval after the last
/// one, rounded up to the grid. A daemon wakes up once per grid slot for every camera due
/// in it instead of once per camera (1,000 cameras at 5 s: 4 wake-ups a second instead
/// of 200), which the benchmark measured as the bulk of a heartbeat's CPU cost
/// (bench/README.md). The slot stays short against the interval, so the heartbeat
/// period grows by less than 250 ms and heartbeats of a large fleet still spread over the
/// interval (each slot holds about a twentieth of the fleet).
pub(crate) const HEARTBEAT_GRID_MS: u64 = 250;

/// When the next heartbeat of an online camera is due.
fn next_heartbeat(cx: &StepContext<'_>) -> Millis {
    if cx.p.traits.naive() {
        naive_tick(cx)
    } else {
        align_up(cx.now.plus(cx.p.heartbeat_interval), 0, HEARTBEAT_GRID_MS)
    }
}

/// Benchmark peer `naive`: the next tick of its one fleet-wide grid (phase 0, period
/// `heartbeat_interval`), strictly after now.
fn naive_tick(cx: &StepContext<'_>) -> Millis {
    align_up(cx.now.plus(1), 0, cx.p.heartbeat_interval)
}

/// The first tick `phase + k·interval` at or after `t`.
fn align_up(t: Millis, phase: u64, interval: u64) -> Millis {
    let base = t.0.saturating_sub(phase);
    let k = base.div_ceil(interval);
    Millis(phase.saturating_add(k.saturating_mul(interval)).max(t.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn align_up_hits_ticks() {
        assert_eq!(align_up(Millis(0), 300, 5000), Millis(300));
        assert_eq!(align_up(Millis(300), 300, 5000), Millis(300));
        assert_eq!(align_up(Millis(301), 300, 5000), Millis(5300));
        assert_eq!(align_up(Millis(10_300), 300, 5000), Millis(10_300));
    }

    #[test]
    fn state_names_and_indices() {
        for (i, s) in State::ALL.iter().enumerate() {
            assert_eq!(s.index(), i);
        }
        assert_eq!(State::AuthHold.name(), "auth-hold");
        assert!(State::Suspect.has_session());
        assert!(!State::Stuck.has_session());
    }

    #[test]
    fn hold_rule() {
        assert!(auth_needs_hold(None));
        assert!(auth_needs_hold(Some(0)));
        assert!(auth_needs_hold(Some(1)));
        assert!(!auth_needs_hold(Some(2)));
    }
}
