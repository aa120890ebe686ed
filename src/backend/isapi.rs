//! The ISAPI backend: the runtime's calls through hikwatch's own ISAPI client
//! ([`crate::isapi`]), as tasks on the executor (async-io sockets, no thread per call).
//!
//! - **sessions.** The supervisor's [`Session`] of an ISAPI camera is a number this backend
//!   hands out at each login; the table maps it to the logged-in [`IsapiClient`] (session
//!   cookie or Digest state). A camera's calls run one at a time (its lane), so a call
//!   takes the client out of the table and puts it back when done.
//! - **deadlines.** Every request has the call's deadline as its total deadline (connect,
//!   send, the whole answer); the call as a whole is raced against the same deadline plus
//!   [`DEADLINE_SLACK`] (a login makes several requests). A call past it is dropped
//!   (nothing keeps running, so there is no late result) and reported as stuck, like an
//!   SDK call past its deadline.
//! - **errors** become [`super::ErrorClass`] through [`IsapiError::class`], so the
//!   device's lockout answers reach the same never-lock-a-camera policy as the SDK's
//!   errors 1 and 153.
//! - **link watch.** With a login, the backend opens the device's event stream
//!   (`alertStream`) when the run watches links; the runtime takes it
//!   ([`IsapiBackend::take_alert`]) and reads it: its end or its silence is a lost link.
//! - **teardown.** Logout is one try: a session nobody heartbeats expires at the device,
//!   so there is no handle to keep retrying for (unlike the SDK's).
//! - **left sessions.** A session login's cookie is reported to the runtime
//!   ([`IsapiBackend::take_device_sessions`]), which keeps it in the state file until the
//!   logout ends it or the device says it no longer knows it (`401`). A process killed
//!   before its logout leaves the session in one of the device's slots; the next login of
//!   the camera ends it first (`end_left_session`: the cookie only, no password, so it is
//!   no login attempt for the device's lockout count). See [`IsapiBackend::login`] for
//!   what happens when that fails. A camera that will not log in soon (restored in
//!   auth-hold or under a device lock) gets the same without the login
//!   ([`Job::EndLeftSession`]).
//! - **streams** are not supported yet (the config refuses `[camera.stream]` for ISAPI
//!   cameras); a stream start is answered as refused.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::time::Duration;

use async_io::Timer;
use futures_lite::FutureExt;

use crate::config::CameraConfig;
use crate::isapi::{AlertStream, IsapiClient, IsapiError, IsapiOptions};
use crate::supervisor::{CamId, Session, Token};

use super::{BackendFailure, Job, LateOutcome, Outcome};

/// How much longer than its deadline a whole call may take before it is dropped (each of
/// its requests has the deadline itself).
const DEADLINE_SLACK: Duration = Duration::from_secs(1);

/// A logged-in session.
#[derive(Debug)]
struct IsapiSession {
    cam: CamId,
    /// `None` while a call of the camera's lane uses it.
    client: Option<IsapiClient>,
    /// The event stream opened at login, until the runtime's link watch takes it.
    alert: Option<AlertStream>,
}

/// The live sessions.
#[derive(Debug, Default)]
struct IsapiTables {
    sessions: HashMap<i32, IsapiSession>,
    /// The last session number handed out.
    last: i32,
    /// Device sessions taken (`Some(cookie)`) or given up (`None`) since the runtime last
    /// asked, per camera, oldest first.
    device_sessions: Vec<(CamId, Option<String>)>,
}

/// The ISAPI backend. Cloning gives another handle to the same sessions (for a call task).
#[derive(Clone, Debug)]
pub(crate) struct IsapiBackend {
    tables: Rc<RefCell<IsapiTables>>,
    /// Open the event stream at login, with this silence limit (`None`: the run watches no
    /// links).
    alert_silence: Option<Duration>,
}

/// Why a call of this backend did not finish.
enum CallEnd {
    Failed(IsapiError),
    /// The call's deadline (plus slack) passed.
    Deadline,
}

/// `fut`, unless `deadline` plus [`DEADLINE_SLACK`] passes first.
async fn within<T>(
    deadline: Duration,
    fut: impl std::future::Future<Output = Result<T, IsapiError>>,
) -> Result<T, CallEnd> {
    async { fut.await.map_err(CallEnd::Failed) }
        .or(async {
            Timer::after(deadline + DEADLINE_SLACK).await;
            Err(CallEnd::Deadline)
        })
        .await
}

/// A client for `conf`'s device, not logged in, with `deadline` for each request.
async fn client_for(conf: &CameraConfig, deadline: Duration) -> Result<IsapiClient, IsapiError> {
    let Some(addr) = resolve(&conf.host, conf.port).await else {
        return Err(IsapiError::Connect(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} does not resolve", conf.host),
        )));
    };
    let options = IsapiOptions {
        request_timeout: deadline,
        ..IsapiOptions::default()
    };
    Ok(IsapiClient::new(addr, options))
}

/// The first address of `host:port` (host names resolved off the executor thread).
async fn resolve(host: &str, port: u16) -> Option<SocketAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, port));
    }
    let host = host.to_string();
    smol::unblock(move || (host.as_str(), port).to_socket_addrs().ok()?.next()).await
}

impl IsapiBackend {
    /// A backend that opens the event stream at each login when `alert_silence` is set.
    pub(crate) fn new(alert_silence: Option<Duration>) -> IsapiBackend {
        IsapiBackend {
            tables: Rc::new(RefCell::new(IsapiTables::default())),
            alert_silence,
        }
    }

    /// The event stream opened with `session`'s login, once.
    pub(crate) fn take_alert(&self, session: Session) -> Option<AlertStream> {
        self.tables
            .borrow_mut()
            .sessions
            .get_mut(&session.0)
            .and_then(|s| s.alert.take())
    }

    /// See [`super::Backends::take_device_sessions`].
    pub(crate) fn take_device_sessions(&self) -> Vec<(CamId, Option<String>)> {
        std::mem::take(&mut self.tables.borrow_mut().device_sessions)
    }

    fn note_device_session(&self, cam: CamId, cookie: Option<&str>) {
        let mut t = self.tables.borrow_mut();
        t.device_sessions.push((cam, cookie.map(str::to_owned)));
    }

    /// Forgets the sessions of a removed camera (they were logged out, or expire).
    pub(crate) fn forget_camera(&self, cam: CamId) {
        self.tables
            .borrow_mut()
            .sessions
            .retain(|_, s| s.cam != cam);
    }

    /// Runs one lane call (see the module docs). Never has a late result.
    pub(crate) async fn run(self, cam: CamId, job: Job) -> (Outcome, Option<LateOutcome>) {
        let outcome = match job {
            Job::Login {
                token,
                conf,
                left_session,
                deadline,
            } => {
                self.login(cam, token, &conf, left_session.as_deref(), deadline)
                    .await
            }
            Job::Heartbeat {
                token,
                session,
                deadline,
            } => self.heartbeat(cam, token, session, deadline).await,
            Job::Logout { session, deadline } => {
                let held = self.tables.borrow_mut().sessions.remove(&session.0);
                if let Some(mut client) = held.and_then(|s| s.client) {
                    match within(deadline, client.logout()).await {
                        // Ended, or the device no longer knows it (`401`).
                        Ok(()) | Err(CallEnd::Failed(IsapiError::SessionLost)) => {
                            self.note_device_session(cam, None);
                        }
                        // Kept in the state file: the next login ends it.
                        Err(CallEnd::Failed(e)) => {
                            log::debug!("isapi: logout failed ({e}); ended at the next login");
                        }
                        Err(CallEnd::Deadline) => {}
                    }
                }
                Outcome::LoggedOut { session }
            }
            Job::EndLeftSession {
                conf,
                cookie,
                deadline,
            } => {
                let end = async {
                    let mut client = client_for(&conf, deadline).await?;
                    self.end_left(cam, &conf, &mut client, &cookie).await
                };
                if let Err(CallEnd::Deadline) = within(deadline, end).await {
                    log::debug!("isapi: {}: ending the left session timed out", conf.id);
                }
                Outcome::LeftSessionTried
            }
            job @ (Job::StartStream { .. } | Job::StopStream { .. }) => {
                job.refused("stream watching with backend isapi is not supported yet")
            }
        };
        (outcome, None)
    }

    /// Logs in, after ending `left`, the session an earlier login left behind. If that
    /// fails in transport (device unreachable, or silent until the deadline) the login
    /// would too: the call fails with that error and the cookie stays remembered, since
    /// the session may still be live; the next login tries again, so nothing blocks for
    /// longer than the call's deadline. Any other answer (the device heard us and refused)
    /// would be the same next time: the cookie is forgotten, the session left to the
    /// device's expiry, and the login goes on. Ending a session sends no password.
    async fn login(
        &self,
        cam: CamId,
        token: Token,
        conf: &CameraConfig,
        left: Option<&str>,
        deadline: Duration,
    ) -> Outcome {
        let failed = |e: &IsapiError| Outcome::LoginFailed {
            token,
            class: e.class(),
            code: e.code().unwrap_or(0),
            text: e.to_string(),
        };
        let attempt = async {
            let mut client = client_for(conf, deadline).await?;
            if let Some(cookie) = left {
                self.end_left(cam, conf, &mut client, cookie).await?;
            }
            client
                .login(&conf.user, conf.password.expose().as_bytes())
                .await?;
            let alert = match self.alert_silence {
                Some(silence) => match client.open_alert_stream(silence).await {
                    Ok(a) => Some(a),
                    Err(e) => {
                        log::debug!("isapi: {}: no event stream ({e})", conf.id);
                        None
                    }
                },
                None => None,
            };
            Ok((client, alert))
        };
        match within(deadline, attempt).await {
            Ok((client, alert)) => {
                self.note_device_session(cam, client.session_cookie());
                let mut t = self.tables.borrow_mut();
                // Session numbers are positive and unique among the live ones.
                let mut n = t.last;
                loop {
                    n = if n >= i32::MAX - 1 { 1 } else { n + 1 };
                    if !t.sessions.contains_key(&n) {
                        break;
                    }
                }
                t.last = n;
                let session = IsapiSession {
                    cam,
                    client: Some(client),
                    alert,
                };
                t.sessions.insert(n, session);
                Outcome::LoginOk {
                    token,
                    session: Session(n),
                }
            }
            Err(CallEnd::Failed(e)) => failed(&e),
            Err(CallEnd::Deadline) => Outcome::Stuck {
                call: "login",
                token: Some(token),
            },
        }
    }

    /// Ends `cookie`, the session an earlier login left, on `client` (not logged in): a
    /// transport failure is returned and the cookie stays remembered; done, or any other
    /// answer, forgets it (see [`IsapiBackend::login`]).
    async fn end_left(
        &self,
        cam: CamId,
        conf: &CameraConfig,
        client: &mut IsapiClient,
        cookie: &str,
    ) -> Result<(), IsapiError> {
        match client.end_left_session(cookie).await {
            Ok(()) => crate::cam_info!(conf.id, "ended the device session a previous login left"),
            Err(
                e @ (IsapiError::Connect(_)
                | IsapiError::Io(_)
                | IsapiError::Closed
                | IsapiError::Timeout),
            ) => return Err(e),
            Err(e) => crate::cam_warn!(
                conf.id,
                "the device did not end the session a previous login left ({e}); \
                 it expires there"
            ),
        }
        self.note_device_session(cam, None);
        Ok(())
    }

    async fn heartbeat(
        &self,
        cam: CamId,
        token: Token,
        session: Session,
        deadline: Duration,
    ) -> Outcome {
        let taken = self
            .tables
            .borrow_mut()
            .sessions
            .get_mut(&session.0)
            .and_then(|s| s.client.take());
        let Some(mut client) = taken else {
            let e = IsapiError::SessionLost;
            return Outcome::HeartbeatFailed {
                token,
                class: e.class(),
                code: 0,
            };
        };
        let r = within(deadline, client.heartbeat()).await;
        if let Some(s) = self.tables.borrow_mut().sessions.get_mut(&session.0) {
            s.client = Some(client);
        }
        match r {
            Ok(()) => Outcome::HeartbeatOk { token },
            Err(CallEnd::Failed(e)) => {
                if matches!(e, IsapiError::SessionLost) {
                    self.note_device_session(cam, None); // the device does not know it
                }
                Outcome::HeartbeatFailed {
                    token,
                    class: e.class(),
                    code: e.code().unwrap_or(0),
                }
            }
            Err(CallEnd::Deadline) => Outcome::Stuck {
                call: "heartbeat",
                token: Some(token),
            },
        }
    }
}
