//! What goes into the core (events) and what comes out (actions). All small `Copy` values.

use crate::backend::ErrorClass;

use super::time::Millis;

/// A camera's index in the [`Supervisor`](super::Supervisor). Dense, reused after removal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CamId(pub u32);

/// Correlates a call the core asked for with its result. Per camera, strictly increasing:
/// a result whose token is not the one the core waits for is *late* and handled as such.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(pub u32);

/// A login handle from the camera's backend (the SDK's `lUserID`; the ISAPI backend's own
/// session number).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Session(pub i32);

/// A watched-stream handle from the backend (the SDK's `NET_DVR_RealPlay_V40` handle).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StreamHandle(pub i32);

/// The SDK exception callback types the core acts on (`dwType`, docs/hcnetsdk.md §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExceptionKind {
    /// 0x8000 `EXCEPTION_EXCHANGE`: the SDK's own heartbeat to the device failed.
    Exchange,
    /// 0x8003 `EXCEPTION_PREVIEW`: the live view broke.
    Preview,
    /// 0x8017 `RESUME_EXCHANGE`: the device answers again; the session id is still valid.
    Resume,
    /// 0x8040 `EXCEPTION_RELOGIN`: the SDK is re-logging in the user by itself.
    Relogin,
    /// 0x8041 `RELOGIN_SUCCESS`: the SDK's re-login worked; same session id.
    ReloginOk,
    /// 0x8044 `EXCEPTION_RELOGIN_FAILED`: the SDK gave up re-login; the session is dead.
    ReloginFailed,
    /// 0x8045 `PREVIEW_RECONNECT_CLOSED`: the SDK stopped reconnecting the live view.
    PreviewClosed,
    /// Any other type: ignored by the core.
    Other(u32),
}

impl ExceptionKind {
    /// Maps the callback's `dwType`.
    #[must_use]
    pub const fn from_code(code: u32) -> ExceptionKind {
        match code {
            0x8000 => ExceptionKind::Exchange,
            0x8003 => ExceptionKind::Preview,
            0x8017 => ExceptionKind::Resume,
            0x8040 => ExceptionKind::Relogin,
            0x8041 => ExceptionKind::ReloginOk,
            0x8044 => ExceptionKind::ReloginFailed,
            0x8045 => ExceptionKind::PreviewClosed,
            other => ExceptionKind::Other(other),
        }
    }

    /// The callback's `dwType` (the inverse of [`ExceptionKind::from_code`]).
    #[must_use]
    pub const fn code(self) -> u32 {
        match self {
            ExceptionKind::Exchange => 0x8000,
            ExceptionKind::Preview => 0x8003,
            ExceptionKind::Resume => 0x8017,
            ExceptionKind::Relogin => 0x8040,
            ExceptionKind::ReloginOk => 0x8041,
            ExceptionKind::ReloginFailed => 0x8044,
            ExceptionKind::PreviewClosed => 0x8045,
            ExceptionKind::Other(code) => code,
        }
    }
}

/// One input for one camera, given to [`Supervisor::handle`](super::Supervisor::handle).
///
/// Results carry the [`Token`] of the [`Action`] they answer. Call deadlines are tracked
/// by the core itself (see [`Settings`](super::Settings)); the runtime just delivers results
/// whenever they come, late ones included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// `Login` succeeded.
    LoginOk {
        /// The login's token.
        token: Token,
        /// The new session handle.
        session: Session,
    },
    /// `Login` failed.
    LoginFailed {
        /// The login's token.
        token: Token,
        /// What the failure means (the backend's classification, `crate::backend`).
        class: ErrorClass,
        /// The backend's own code (SDK error number, or 0), for status and logs.
        code: u32,
    },
    /// `Heartbeat` succeeded (`CHECK_USER_STATUS` returned TRUE).
    HeartbeatOk {
        /// The heartbeat's token.
        token: Token,
    },
    /// `Heartbeat` failed. Counts as a miss, whatever the class.
    HeartbeatFailed {
        /// The heartbeat's token.
        token: Token,
        /// Failure class.
        class: ErrorClass,
        /// Vendor error code.
        code: u32,
    },
    /// `StartStream` succeeded.
    StreamStarted {
        /// The call's token.
        token: Token,
        /// The preview handle.
        stream: StreamHandle,
    },
    /// `StartStream` failed: counts as a session failure.
    StreamFailed {
        /// The call's token.
        token: Token,
        /// Failure class.
        class: ErrorClass,
        /// Vendor error code.
        code: u32,
    },
    /// Stream data arrived. The runtime should report this at most about once a second per
    /// camera (coalesce in the data callback); the core detects gaps from these.
    StreamData,
    /// A `Logout` returned (whatever its result: the SDK frees the handle either way).
    LogoutDone {
        /// The session that was logged out.
        session: Session,
    },
    /// A TCP connect probe finished. A timeout is `open: false`.
    ProbeResult {
        /// The probe's token.
        token: Token,
        /// Whether the port accepted the connection.
        open: bool,
    },
    /// The SDK exception callback fired for this camera's session.
    Exception {
        /// The callback type.
        kind: ExceptionKind,
        /// `lUserID` from the callback; exceptions for other sessions are ignored.
        session: Session,
    },
    /// The link watch ([`StrategyTraits::link_watch`]): the runtime's idle TCP connection to the
    /// camera's port was reset, or was closed and could not be opened again, while this
    /// session was live. Handled like an SDK exception (one confirming heartbeat).
    ///
    /// [`StrategyTraits::link_watch`]: super::StrategyTraits::link_watch
    LinkLost {
        /// The session that was live when the watch started.
        session: Session,
    },
    /// The device's own event stream (the ISAPI backend's `alertStream`, opened with the
    /// login) ended or sent nothing for its silence limit, while it stood in for the
    /// backend's keepalive (strategies without link watch). Handled exactly like the SDK's
    /// `EXCEPTION_EXCHANGE` ([`ExceptionKind::Exchange`]): one confirming heartbeat where
    /// the strategy confirms exceptions, a loss at once where it does not; ignored by
    /// strategies that ignore exceptions. Its own event so that the loss is reported as
    /// what it was ([`LossCause::EventStreamLost`]), not as an SDK exception.
    EventStreamLost {
        /// The session the stream belonged to.
        session: Session,
    },
    /// The link watch's idle connection got no answer to its keepalives for
    /// `link_watch_timeout` (the kernel's `TCP_USER_TIMEOUT` ran out), and a fresh
    /// connection could not be opened within a second either: the path to the camera is
    /// dead (a black hole, a cut cable). Already confirmed by the runtime, so it ends the
    /// session at once; the keepalive retries make lossy paths pass (a single lost probe
    /// or answer is retried the next second).
    LinkSilent {
        /// The session that was live when the watch started.
        session: Session,
    },
    /// The runtime saw a call run past its deadline before the core's own timer did.
    /// Optional: the core tracks deadlines itself; this only makes it act sooner.
    CallStuck {
        /// The stuck call's token.
        token: Token,
    },
    /// The camera's credentials changed in the config: releases an auth-hold.
    CredentialsChanged,
    /// The camera's address (host/port/mode) changed: tear down and start over, fresh.
    AddressChanged,
    /// The camera was removed from the config: tear down, then forget it.
    Removed,
    /// Operator: attempt now (skips the backoff wait, not the cap or a lock).
    RetryNow,
    /// Operator: release an auth-hold or a lock and attempt now.
    ReleaseHold,
}

/// Which backend call an action or alert is about (SDK function names as examples).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// `NET_DVR_Login_V40`.
    Login,
    /// `NET_DVR_RemoteControl(CHECK_USER_STATUS)`.
    Heartbeat,
    /// `NET_DVR_Logout`.
    Logout,
    /// `NET_DVR_RealPlay_V40`.
    StartStream,
    /// TCP connect probe.
    Probe,
}

/// Which of the core's loss paths ended a live session: what [`Alert::Down`] and the
/// recorded [`LastFailure`] say, for the runtime to put in words. Backend-neutral: the
/// vendor's own code, when there is one, travels beside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LossCause {
    /// Heartbeats failed or went unanswered `heartbeat_misses` times, or nothing was
    /// answered for that many intervals (class and code: the last heartbeat's).
    HeartbeatsMissed,
    /// The backend reported an exception for the session (code: its exception type).
    /// Where the strategy confirms exceptions, the confirming heartbeat failed too.
    BackendException,
    /// The backend's own re-login (announced by an exception) did not finish in time.
    ReloginUnfinished,
    /// The device's event stream ended or fell silent ([`Event::EventStreamLost`]).
    EventStreamLost,
    /// The link watch's connection was reset or closed ([`Event::LinkLost`]), and the
    /// confirming heartbeat failed where the strategy confirms.
    LinkLost,
    /// The link watch's keepalives went unanswered ([`Event::LinkSilent`]).
    LinkSilent,
    /// The watched stream could not be started, or its start ran past the deadline.
    StreamStartFailed,
    /// The watched stream sent no data for `stream_gap`.
    StreamGap,
}

impl LossCause {
    /// A stable lowercase name (status JSON `last_error.cause`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            LossCause::HeartbeatsMissed => "heartbeats-missed",
            LossCause::BackendException => "backend-exception",
            LossCause::ReloginUnfinished => "relogin-unfinished",
            LossCause::EventStreamLost => "event-stream-lost",
            LossCause::LinkLost => "link-lost",
            LossCause::LinkSilent => "link-silent",
            LossCause::StreamStartFailed => "stream-start-failed",
            LossCause::StreamGap => "stream-gap",
        }
    }
}

/// Something an operator should hear about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alert {
    /// A live session was lost.
    Down {
        /// Which loss path ended it.
        cause: LossCause,
        /// The failure's class (the heartbeat's or the stream call's, where one failed).
        class: ErrorClass,
        /// Vendor code (an exception type, an error number), 0 when there is none.
        code: u32,
    },
    /// The camera is online again (also the first connect after start).
    Recovered {
        /// Milliseconds since the session was lost (or since the camera was added).
        downtime_ms: u64,
    },
    /// Credentials rejected: no more logins until they change or an operator releases.
    AuthHold {
        /// The device's remaining tries, if it said.
        retries_left: Option<u8>,
    },
    /// The device locked us out; nothing authenticated is sent until `wait_ms` passed.
    Locked {
        /// How long the core waits (device's remaining time + margin).
        wait_ms: u64,
    },
    /// An SDK call ran past its deadline.
    Stuck {
        /// Which call.
        call: CallKind,
    },
    /// The device refused the stream (a resource error such as its stream limit); the
    /// session stays and the stream is asked for again after `retry_ms`.
    StreamRefused {
        /// Vendor code.
        code: u32,
        /// Milliseconds until the next stream start.
        retry_ms: u64,
    },
    /// A login failed with an `Unsupported` or `Fatal` class: needs a human; retried slowly.
    NeedsOperator {
        /// The class.
        class: ErrorClass,
        /// Vendor code.
        code: u32,
    },
}

/// What the runtime must do for a camera. Execute a camera's SDK actions in the order
/// given (one serial lane per camera; probes may run beside it). Every call action that
/// carries a [`Token`] must eventually be answered with the matching [`Event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionKind {
    /// TCP connect to the camera's SDK port (unauthenticated). Answer: `ProbeResult`.
    Probe {
        /// Echo in `ProbeResult`.
        token: Token,
    },
    /// Log in with the camera's current config (SDK `NET_DVR_Login_V40`). Answer: `LoginOk`/`LoginFailed`.
    Login {
        /// Echo in the result.
        token: Token,
    },
    /// A heartbeat on the session (SDK `CHECK_USER_STATUS`). Answer: `HeartbeatOk`/`HeartbeatFailed`.
    Heartbeat {
        /// The session to check.
        session: Session,
        /// Echo in the result.
        token: Token,
    },
    /// Log the session out (SDK `NET_DVR_Logout`). Answer: `LogoutDone`.
    Logout {
        /// The session to log out.
        session: Session,
    },
    /// Start the watched stream on the session (SDK `NET_DVR_RealPlay_V40`). Answer: `StreamStarted`/`StreamFailed`, then
    /// `StreamData` while data flows.
    StartStream {
        /// The session to preview on.
        session: Session,
        /// Echo in the result.
        token: Token,
    },
    /// Stop the watched stream (SDK `NET_DVR_StopRealPlay`). No answer needed.
    StopStream {
        /// The preview handle.
        stream: StreamHandle,
    },
    /// The camera's persisted view changed; hand [`Supervisor::persisted`] to the store
    /// (which coalesces writes).
    ///
    /// [`Supervisor::persisted`]: super::Supervisor::persisted
    Persist,
    /// Log or notify.
    Alert(Alert),
}

/// One action for one camera.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Action {
    /// The camera.
    pub cam: CamId,
    /// What to do.
    pub kind: ActionKind,
}

/// A failure as the status shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastFailure {
    /// Class of the failure.
    pub class: ErrorClass,
    /// Vendor code (0 for failures the core detected itself, e.g. a stream gap).
    pub code: u32,
    /// Which loss path, when the failure ended a live session (`None` for failed logins,
    /// refused streams and errors restored from the state file).
    pub cause: Option<LossCause>,
    /// When it happened.
    pub at: Millis,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exception_codes_map() {
        assert_eq!(ExceptionKind::from_code(0x8000), ExceptionKind::Exchange);
        assert_eq!(ExceptionKind::from_code(0x8003), ExceptionKind::Preview);
        assert_eq!(ExceptionKind::from_code(0x8017), ExceptionKind::Resume);
        assert_eq!(ExceptionKind::from_code(0x8040), ExceptionKind::Relogin);
        assert_eq!(ExceptionKind::from_code(0x8041), ExceptionKind::ReloginOk);
        assert_eq!(
            ExceptionKind::from_code(0x8044),
            ExceptionKind::ReloginFailed
        );
        assert_eq!(
            ExceptionKind::from_code(0x8045),
            ExceptionKind::PreviewClosed
        );
        assert_eq!(
            ExceptionKind::from_code(0x8005),
            ExceptionKind::Other(0x8005)
        );
        for code in [
            0x8000, 0x8003, 0x8005, 0x8017, 0x8040, 0x8041, 0x8044, 0x8045,
        ] {
            assert_eq!(ExceptionKind::from_code(code).code(), code);
        }
    }

    #[test]
    fn actions_are_small() {
        // Copy values, a few words each: a Vec of them is the whole per-event output.
        assert!(core::mem::size_of::<Action>() <= 24);
        assert!(core::mem::size_of::<Event>() <= 24);
    }
}
