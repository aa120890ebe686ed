//! The SDK backend: the runtime's calls through the vendor HCNetSDK.
//!
//! Every call runs on the [`SdkPool`] (blocking SDK functions never run on the executor)
//! with the core's deadline. What only the SDK has stays in here:
//!
//! - **user ids.** The supervisor's [`Session`] of an SDK camera is the SDK's `lUserID`.
//!   The SDK hands a freed id to the next login, so the table of live ids remembers which
//!   login of the id (`LoginEpoch`) a camera holds: an exception callback queued for a
//!   session logged out since must not reach the camera that holds the id now.
//! - **preview handles.** [`StreamHandle`] is the SDK's play handle; the table maps it back
//!   to the camera and the `StreamId` the SDK's frame counters are kept under.
//! - **exception codes** become the core's `ExceptionKind` here, and error numbers the
//!   neutral [`ErrorClass`] (`crate::sdk::classify`), with the number kept for display.
//! - **teardown.** Logout and stop stream are retried until the SDK has really let the
//!   handle go: the call succeeded, or the SDK answers that the handle is already gone
//!   (error 47). See [`teardown`].
//!
//! The tables are shared between the driver and the call tasks (`Rc<RefCell<..>>`, all on
//! the one executor thread; no borrow is held across an `await`), so a call task records
//! a new session or stream the moment it has it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use async_io::Timer;

use crate::config::{CameraConfig, LoginMode, StreamConfig};
use crate::sdk::{
    LoginEpoch, LoginParams, SdkCallError, SdkError, SdkEvent, SdkLoginMode, SdkPool, StreamId,
    StreamParams, UserId,
};
use crate::supervisor::{CamId, ExceptionKind, Session, StreamHandle, Token};

use super::{BackendEvent, CallError, ErrorClass, Job, LateOutcome, Outcome};

/// First pause between attempts of a teardown call whose handle is still alive.
const TEARDOWN_RETRY_FIRST: Duration = Duration::from_millis(500);
/// Longest pause between such attempts.
const TEARDOWN_RETRY_MAX: Duration = Duration::from_secs(30);
/// `NET_DVR_GetLastError` 47: the user id (or play handle) does not exist any more.
const GONE: u32 = 47;

/// A running preview.
#[derive(Clone, Copy, Debug)]
struct SdkStream {
    cam: CamId,
    id: StreamId,
    /// The SDK's frame counter at the last `StreamData` report.
    frames_seen: u64,
}

/// The SDK's handles the backend knows of.
#[derive(Debug, Default)]
struct SdkTables {
    /// `lUserID` → camera and which login of the id it holds.
    uids: HashMap<i32, (CamId, LoginEpoch)>,
    /// Play handle → the stream.
    streams: HashMap<i32, SdkStream>,
}

/// The SDK backend: the call pool and the handle tables. Cloning gives another handle to
/// the same tables (for a call task).
#[derive(Clone, Debug)]
pub(crate) struct SdkBackend {
    pool: SdkPool,
    tables: Rc<RefCell<SdkTables>>,
}

/// What a teardown call's attempt said about the handle.
enum TeardownAnswer {
    /// Let go: the call succeeded, or the SDK says the handle is already gone.
    Released,
    /// The SDK still holds the handle (why, for the log).
    StillHeld(String),
}

impl SdkBackend {
    /// A backend running its calls on `pool`.
    pub(crate) fn new(pool: SdkPool) -> SdkBackend {
        SdkBackend {
            pool,
            tables: Rc::new(RefCell::new(SdkTables::default())),
        }
    }

    /// The call pool (and through it the SDK, for version and handle counts).
    pub(crate) fn pool(&self) -> &SdkPool {
        &self.pool
    }

    /// Whether `stream` is a preview this backend started and still holds (a stop of any
    /// other handle has nothing to do).
    pub(crate) fn holds_stream(&self, stream: StreamHandle) -> bool {
        self.tables.borrow().streams.contains_key(&stream.0)
    }

    /// Forgets the streams of a camera that was removed.
    pub(crate) fn forget_camera(&self, cam: CamId) {
        self.tables.borrow_mut().streams.retain(|_, s| s.cam != cam);
    }

    /// The cameras whose stream's frame counter moved since the last call (the SDK's
    /// counters are read in memory, no I/O).
    pub(crate) fn streams_moved(&self) -> Vec<CamId> {
        let sdk = self.pool.sdk().clone();
        let mut moved = Vec::new();
        for s in self.tables.borrow_mut().streams.values_mut() {
            if let Some(st) = sdk.stream_stats(s.id) {
                if st.frames > s.frames_seen {
                    s.frames_seen = st.frames;
                    moved.push(s.cam);
                }
            }
        }
        moved
    }

    /// An SDK callback event for the camera it concerns; `None` when no camera holds its
    /// session (any more), or it means nothing to the runtime.
    pub(crate) fn translate(&self, ev: SdkEvent) -> Option<BackendEvent> {
        let tables = self.tables.borrow();
        match ev {
            SdkEvent::Exception {
                uid, epoch, kind, ..
            } => {
                let Some(&(cam, held)) = tables.uids.get(&uid.0) else {
                    log::debug!("sdk: {} for {uid} that no camera holds", kind.name());
                    return None;
                };
                if epoch != held {
                    log::debug!(
                        "sdk: {} for an earlier login of {uid}, which is logged out; ignored",
                        kind.name()
                    );
                    return None;
                }
                Some(BackendEvent::Exception {
                    cam,
                    session: Session(uid.0),
                    kind: ExceptionKind::from_code(kind.0),
                })
            }
            SdkEvent::StreamStarted { stream } | SdkEvent::StreamResumed { stream, .. } => tables
                .streams
                .get(&stream.handle)
                .map(|s| BackendEvent::StreamData { cam: s.cam }),
            SdkEvent::Overflow {
                dropped,
                unattributed,
            } => Some(BackendEvent::Overflow {
                dropped,
                unattributed,
            }),
            // hikwatch logs in synchronously on the pool; an async result is not ours.
            SdkEvent::AsyncLogin { .. } => None,
        }
    }

    /// Runs one lane call. Returns its outcome and, when it missed its deadline while
    /// running (the outcome is then [`Outcome::Stuck`]), the late result still to come.
    pub(crate) async fn run(
        self,
        cam: CamId,
        id: String,
        job: Job,
    ) -> (Outcome, Option<LateOutcome>) {
        match job {
            Job::Login {
                token,
                conf,
                deadline,
                ..
            } => self.login(cam, token, &conf, deadline).await,
            Job::Heartbeat {
                token,
                session,
                deadline,
            } => match self.pool.heartbeat(UserId(session.0), deadline).await {
                Ok(()) => (Outcome::HeartbeatOk { token }, None),
                Err(CallError::Failed(e)) => {
                    let (class, code) = failure(&e);
                    (Outcome::HeartbeatFailed { token, class, code }, None)
                }
                Err(CallError::Busy) => {
                    let outcome = Outcome::HeartbeatFailed {
                        token,
                        class: ErrorClass::Resource,
                        code: 0,
                    };
                    (outcome, None)
                }
                // A late heartbeat answer tells nothing the core still wants.
                Err(e) => stuck("heartbeat", Some(token), e, |_| None),
            },
            Job::Logout { session, deadline } => {
                let uid = UserId(session.0);
                let pool = self.pool.clone();
                teardown(&id, "logout", || pool.logout(uid, deadline)).await;
                let mut t = self.tables.borrow_mut();
                if t.uids.get(&session.0).is_some_and(|&(c, _)| c == cam) {
                    t.uids.remove(&session.0);
                }
                (Outcome::LoggedOut { session }, None)
            }
            Job::StartStream {
                token,
                session,
                stream,
                deadline,
                ..
            } => {
                self.start_stream(cam, token, session, stream, deadline)
                    .await
            }
            Job::StopStream { stream, deadline } => {
                let known = self.tables.borrow().streams.get(&stream.0).map(|s| s.id);
                if let Some(sid) = known {
                    let pool = self.pool.clone();
                    teardown(&id, "stop_stream", || pool.stop_stream(sid, deadline)).await;
                }
                self.tables.borrow_mut().streams.remove(&stream.0);
                (Outcome::StreamStopped { stream }, None)
            }
            // The SDK's sessions are its own: none is remembered to end.
            job @ Job::EndLeftSession { .. } => (job.refused("no device session"), None),
        }
    }

    async fn login(
        &self,
        cam: CamId,
        token: Token,
        conf: &CameraConfig,
        deadline: Duration,
    ) -> (Outcome, Option<LateOutcome>) {
        let login_failed = move |e: &SdkError| {
            let (class, code) = failure(e);
            Outcome::LoginFailed {
                token,
                class,
                code,
                text: e.to_string(),
            }
        };
        match self.pool.login(login_params(conf), deadline).await {
            Ok(l) => {
                self.tables
                    .borrow_mut()
                    .uids
                    .insert(l.uid.0, (cam, l.epoch));
                let session = Session(l.uid.0);
                (Outcome::LoginOk { token, session }, None)
            }
            Err(CallError::Failed(e)) => (login_failed(&e), None),
            Err(CallError::Busy) => {
                let outcome = Outcome::LoginFailed {
                    token,
                    class: ErrorClass::Resource,
                    code: 0,
                    text: "the SDK call queue is full".into(),
                };
                (outcome, None)
            }
            Err(e) => {
                // A late success goes back to the core with its original token (the core
                // logs it out when it no longer wants it).
                let tables = self.tables.clone();
                stuck("login", Some(token), e, move |r| {
                    Some(match r {
                        Ok(l) => {
                            tables.borrow_mut().uids.insert(l.uid.0, (cam, l.epoch));
                            Outcome::LoginOk {
                                token,
                                session: Session(l.uid.0),
                            }
                        }
                        Err(e) => login_failed(&e),
                    })
                })
            }
        }
    }

    async fn start_stream(
        &self,
        cam: CamId,
        token: Token,
        session: Session,
        stream: StreamConfig,
        deadline: Duration,
    ) -> (Outcome, Option<LateOutcome>) {
        let params = StreamParams {
            channel: i32::try_from(stream.channel).unwrap_or(1),
            stream_type: stream.stream_type.sdk_value(),
            link_mode: 0,
        };
        let started = move |tables: &RefCell<SdkTables>, id: StreamId| {
            let entry = SdkStream {
                cam,
                id,
                frames_seen: 0,
            };
            tables.borrow_mut().streams.insert(id.handle, entry);
            Outcome::StreamStarted {
                token,
                stream: StreamHandle(id.handle),
            }
        };
        match self
            .pool
            .start_stream(UserId(session.0), params, deadline)
            .await
        {
            Ok(id) => (started(&self.tables, id), None),
            Err(CallError::Failed(e)) => {
                let (class, code) = failure(&e);
                (Outcome::StreamFailed { token, class, code }, None)
            }
            Err(CallError::Busy) => {
                let outcome = Outcome::StreamFailed {
                    token,
                    class: ErrorClass::Resource,
                    code: 0,
                };
                (outcome, None)
            }
            Err(e) => {
                // A late stream goes back with its token; the core stops it.
                let tables = self.tables.clone();
                stuck("start_stream", Some(token), e, move |r| {
                    r.ok().map(|id| started(&tables, id))
                })
            }
        }
    }
}

/// The class and the number (0: none) of a failed SDK call.
fn failure(e: &SdkError) -> (ErrorClass, u32) {
    (e.class(), e.code().unwrap_or(0))
}

/// A missed deadline: [`Outcome::Stuck`] now and, for a call that will still answer, the
/// late result mapped by `to_outcome`.
fn stuck<T: 'static>(
    call: &'static str,
    token: Option<Token>,
    err: SdkCallError<T>,
    to_outcome: impl FnOnce(Result<T, SdkError>) -> Option<Outcome> + 'static,
) -> (Outcome, Option<LateOutcome>) {
    let late = match err {
        // A cancelled call's `Late` yields nothing; a teardown call that was still queued
        // at its deadline runs later and yields its result.
        CallError::DeadlineExceeded { late, .. } => {
            let fut: LateOutcome = Box::pin(async move { to_outcome(late.result().await?) });
            Some(fut)
        }
        _ => None,
    };
    (Outcome::Stuck { call, token }, late)
}

/// Runs a teardown call (logout, stop stream) until the SDK has really let the handle go:
/// the call returned TRUE, or error 47 says the handle no longer exists.
///
/// Any other failure leaves the handle alive inside the SDK — seen with the real SDK:
/// `NET_DVR_Logout` while a heartbeat on the same session is still blocked (a frozen
/// camera) fails with error 0 and keeps the session, which the SDK's own heartbeat then
/// keeps open at the camera after it thaws. So such a call is retried with a growing
/// pause. A call past its deadline is waited for (teardown calls are never cancelled, see
/// `Pool::run_teardown`). The camera's lane stays busy meanwhile, so its next login waits
/// until the old session is really gone: one live session per camera.
async fn teardown<F, Fut>(id: &str, call: &'static str, mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), SdkCallError<()>>>,
{
    let mut pause = TEARDOWN_RETRY_FIRST;
    loop {
        let result = match attempt().await {
            Err(CallError::DeadlineExceeded { late, .. }) => {
                crate::cam_warn!(id, "{call} still running at its deadline");
                late.result().await
            }
            Ok(()) => Some(Ok(())),
            Err(CallError::Failed(e)) => Some(Err(e)),
            // `Busy` is never returned for teardown calls (`Pool::run_teardown` accepts
            // them even when the queue is full); should it ever be, it counts as a failure
            // that keeps the handle, so the call is retried.
            Err(CallError::Busy) => Some(Err(SdkError::Call {
                call,
                code: 0,
                class: ErrorClass::Resource,
                message: Some("the SDK call queue is full".into()),
            })),
        };
        let answer = match result {
            Some(Ok(())) => TeardownAnswer::Released,
            Some(Err(e)) if e.code() == Some(GONE) => TeardownAnswer::Released,
            Some(Err(e)) => TeardownAnswer::StillHeld(e.to_string()),
            // The worker went away; the handle's fate is unknown: try again.
            None => TeardownAnswer::StillHeld("the SDK worker went away".to_string()),
        };
        let why = match answer {
            TeardownAnswer::Released => return,
            TeardownAnswer::StillHeld(why) => why,
        };
        crate::cam_warn!(
            id,
            "{call} failed and the SDK still holds the handle; again in {pause:?}: {why}"
        );
        Timer::after(pause).await;
        pause = (pause * 2).min(TEARDOWN_RETRY_MAX);
    }
}

/// The SDK's login parameters for a configured camera.
pub(crate) fn login_params(c: &CameraConfig) -> LoginParams {
    LoginParams {
        host: c.host.clone(),
        port: c.port,
        user: c.user.clone(),
        password: c.password.clone(),
        mode: match c.login_mode {
            LoginMode::Private => SdkLoginMode::Private,
            LoginMode::Isapi => SdkLoginMode::Isapi,
            LoginMode::Auto => SdkLoginMode::Auto,
        },
    }
}
