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
//! - **streams.** A stream start opens an RTSP session ([`RtspSession`], the camera's
//!   Digest credentials) on `[camera.stream] rtsp_port` (default [`RTSP_PORT`]) and spawns
//!   one reader task for it on the run's executor. The reader counts complete frames; the
//!   runtime reads the counts with [`IsapiBackend::streams_moved`] for its gap detector,
//!   as it reads the SDK's frame counters. A playing stream that breaks (the device
//!   closed it, [`IsapiError::StreamSilent`], garbage) ends its reader, which reports
//!   [`ExceptionKind::PreviewClosed`] (the SDK's "the live view broke and will not come
//!   back"); the runtime takes it with the frame counts ([`IsapiBackend::take_events`]).
//!   A stream stop (the camera's teardown before every logout: loss, removal, the end of
//!   the run) sends `TEARDOWN` and waits for it, bounded by the stop call's deadline; a
//!   logout finding a stream still open (the stop came while it was opening) sends its
//!   `TEARDOWN` first, within half the logout's deadline. A
//!   refused stream (RTSP 453 or 503) fails with class `Resource`, like the SDK's refused
//!   preview.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use async_io::Timer;
use futures_lite::FutureExt;
use smol::{LocalExecutor, Task};

use crate::config::{CameraConfig, StreamConfig};
use crate::isapi::rtsp::{RTSP_PORT, stream_path};
use crate::isapi::{AlertStream, IsapiClient, IsapiError, IsapiOptions, RtspOptions, RtspSession};
use crate::supervisor::{CamId, ExceptionKind, Session, StreamHandle, Token};

use super::{BackendEvent, BackendFailure, Job, LateOutcome, Outcome};

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

/// A watched stream: its reader task and the frames it counted.
#[derive(Debug)]
struct IsapiStream {
    /// Its handle (positive, unique among the live streams).
    handle: i32,
    cam: CamId,
    /// The session number it was started for.
    session: i32,
    /// Complete frames the reader counted so far.
    frames: Rc<Cell<u64>>,
    /// `frames` at the last [`IsapiBackend::streams_moved`].
    frames_seen: u64,
    /// Dropping it (nothing is ever sent) closes the channel, which asks the reader to
    /// send `TEARDOWN` and end.
    stop: Sender<()>,
    /// The reader. Dropping it cancels the reader, which closes the connection without
    /// `TEARDOWN` (a removed camera, or the run's end past its deadline).
    reader: Task<()>,
}

/// The live sessions and streams.
#[derive(Debug, Default)]
struct IsapiTables {
    sessions: HashMap<i32, IsapiSession>,
    /// The last session number handed out.
    last: i32,
    /// The live streams (a few per run at most: a list, not a map).
    streams: Vec<IsapiStream>,
    /// The last stream handle handed out.
    last_stream: i32,
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
    /// A watched stream with no complete frame for this long is broken (the run's
    /// `stream_gap`).
    stream_silence: Duration,
    /// The run's executor, for the stream readers. Weak: the executor's tasks hold this
    /// backend, and the run drops the executor (cancelling every reader) when it ends.
    ex: Weak<LocalExecutor<'static>>,
    /// Broken streams the readers reported, until [`IsapiBackend::take_events`]. Apart
    /// from the tables: readers hold it, and the tables hold the readers.
    events: Rc<RefCell<Vec<BackendEvent>>>,
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

/// The first number after `last` (positive, wrapping) that is not `taken`; becomes `last`.
fn next_number(last: &mut i32, taken: impl Fn(i32) -> bool) -> i32 {
    let mut n = *last;
    loop {
        n = if n >= i32::MAX - 1 { 1 } else { n + 1 };
        if !taken(n) {
            break;
        }
    }
    *last = n;
    n
}

/// Reads a playing stream until it breaks or `stop` says to end it: counts complete frames
/// into `frames`; a break adds `broken` to `events` (it is the one thing the reader
/// reports), a stop sends `TEARDOWN` (under the session's exchange deadline).
async fn read_stream(
    mut rtsp: RtspSession,
    frames: Rc<Cell<u64>>,
    stop: Receiver<()>,
    events: Rc<RefCell<Vec<BackendEvent>>>,
    broken: BackendEvent,
) {
    loop {
        // `None`: asked to stop (the sender dropped).
        let next = async { Some(rtsp.next_progress().await) }.or(async {
            let _ = stop.recv().await;
            None
        });
        match next.await {
            Some(Ok(p)) => frames.set(frames.get().saturating_add(p.frames)),
            Some(Err(e)) => {
                log::debug!("isapi: a watched stream broke: {e}");
                // Each reader adds one at most: the list is bounded by the streams.
                events.borrow_mut().push(broken);
                return;
            }
            None => break,
        }
    }
    if let Err(e) = rtsp.teardown().await {
        log::debug!("isapi: TEARDOWN of a watched stream: {e}");
    }
}

impl IsapiBackend {
    /// A backend that opens the event stream at each login when `alert_silence` is set,
    /// and whose stream readers run on `ex` and find a stream silent after
    /// `stream_silence`.
    pub(crate) fn new(
        alert_silence: Option<Duration>,
        stream_silence: Duration,
        ex: Weak<LocalExecutor<'static>>,
    ) -> IsapiBackend {
        IsapiBackend {
            tables: Rc::new(RefCell::new(IsapiTables::default())),
            alert_silence,
            stream_silence,
            ex,
            events: Rc::default(),
        }
    }

    /// The broken streams reported since the last call (see [`super::Backends::take_events`]).
    pub(crate) fn take_events(&self) -> Vec<BackendEvent> {
        std::mem::take(&mut self.events.borrow_mut())
    }

    /// Whether `stream` is one this backend started and still holds.
    pub(crate) fn holds_stream(&self, stream: StreamHandle) -> bool {
        self.tables
            .borrow()
            .streams
            .iter()
            .any(|s| s.handle == stream.0)
    }

    /// The cameras whose stream counted complete frames since the last call.
    pub(crate) fn streams_moved(&self, moved: &mut Vec<CamId>) {
        for s in &mut self.tables.borrow_mut().streams {
            let frames = s.frames.get();
            if frames > s.frames_seen {
                s.frames_seen = frames;
                moved.push(s.cam);
            }
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

    /// Forgets the sessions of a removed camera (they were logged out, or expire) and
    /// cancels its stream readers (stopped already: the camera's teardown stops its
    /// stream before the logout).
    pub(crate) fn forget_camera(&self, cam: CamId) {
        let mut t = self.tables.borrow_mut();
        t.sessions.retain(|_, s| s.cam != cam);
        t.streams.retain(|s| s.cam != cam);
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
                let started = Instant::now();
                self.end_streams_of(session, deadline / 2).await;
                let deadline = deadline.saturating_sub(started.elapsed());
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
            Job::StartStream {
                token,
                session,
                stream,
                conf,
                deadline,
            } => {
                self.start_stream(cam, token, session, stream, &conf, deadline)
                    .await
            }
            Job::StopStream { stream, deadline } => {
                self.stop_stream(stream, deadline).await;
                Outcome::StreamStopped { stream }
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
                let mut guard = self.tables.borrow_mut();
                let t = &mut *guard;
                // Session numbers are positive and unique among the live ones.
                let sessions = &t.sessions;
                let n = next_number(&mut t.last, |n| sessions.contains_key(&n));
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

    /// Opens the watched stream of `session`'s camera and starts its reader (see the
    /// module docs). A refusal fails with the error's class (`Resource` for RTSP 453/503)
    /// and the RTSP status as its code.
    async fn start_stream(
        &self,
        cam: CamId,
        token: Token,
        session: Session,
        stream: StreamConfig,
        conf: &CameraConfig,
        deadline: Duration,
    ) -> Outcome {
        // Connect, DESCRIBE, SETUP and PLAY each get a quarter of the deadline, so the
        // open as a whole keeps it (host names aside: the login resolved the same name a
        // moment ago) without a race of its own.
        let options = RtspOptions {
            exchange_timeout: deadline / 4,
            silence: self.stream_silence,
            ..RtspOptions::default()
        };
        let path = stream_path(
            u16::try_from(stream.channel).unwrap_or(1),
            stream.stream_type.sdk_value() as u8,
        );
        let port = stream.rtsp_port.unwrap_or(RTSP_PORT);
        let open = async {
            let addr = resolve(&conf.host, port).await.ok_or(IsapiError::Connect(
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ))?;
            let password = conf.password.expose().as_bytes();
            RtspSession::open(addr, &path, &conf.user, password, options).await
        };
        let failed = |e: IsapiError| {
            log::debug!("isapi: {}: stream {path} on port {port}: {e}", conf.id);
            Outcome::StreamFailed {
                token,
                class: e.class(),
                code: e.code().unwrap_or(0),
            }
        };
        let rtsp = match open.await {
            Ok(rtsp) => rtsp,
            Err(e) => return failed(e),
        };
        let Some(ex) = self.ex.upgrade() else {
            // The run is ending: nothing would read the stream (dropped: closed).
            return failed(IsapiError::Closed);
        };
        let frames = Rc::new(Cell::new(0));
        let (stop, stopped) = async_channel::bounded(1);
        let broken = BackendEvent::Exception {
            cam,
            session,
            kind: ExceptionKind::PreviewClosed,
        };
        let reader = read_stream(rtsp, frames.clone(), stopped, self.events.clone(), broken);
        let reader = ex.spawn(reader);
        let mut guard = self.tables.borrow_mut();
        let t = &mut *guard;
        let streams = &t.streams;
        let handle = next_number(&mut t.last_stream, |n| {
            streams.iter().any(|s| s.handle == n)
        });
        let entry = IsapiStream {
            handle,
            cam,
            session: session.0,
            frames,
            frames_seen: 0,
            stop,
            reader,
        };
        t.streams.push(entry);
        Outcome::StreamStarted {
            token,
            stream: StreamHandle(handle),
        }
    }

    /// Ends `session`'s streams before its logout: each reader sends `TEARDOWN`, so the
    /// device sees it before the logout, within `deadline` (then the rest are cancelled,
    /// which closes their connections). The camera's teardown stops its streams before
    /// the logout, so normally there is none; one is left when the stop came while the
    /// stream was still opening.
    async fn end_streams_of(&self, session: Session, deadline: Duration) {
        let mut readers = Vec::new();
        {
            let streams = &mut self.tables.borrow_mut().streams;
            while let Some(i) = streams.iter().position(|s| s.session == session.0) {
                let s = streams.swap_remove(i);
                drop(s.stop);
                readers.push(s.reader);
            }
        }
        if readers.is_empty() {
            return;
        }
        let ended = async {
            for reader in readers {
                reader.await;
            }
            true
        }
        .or(async {
            Timer::after(deadline).await;
            false
        });
        if !ended.await {
            log::debug!(
                "isapi: TEARDOWN before the logout of session {} timed out",
                session.0
            );
        }
    }

    /// Stops `stream`: its reader sends `TEARDOWN` (one that ended already has nothing to
    /// send); past `deadline` plus [`DEADLINE_SLACK`] the reader is cancelled, which closes
    /// the connection.
    async fn stop_stream(&self, stream: StreamHandle, deadline: Duration) {
        let s = {
            let streams = &mut self.tables.borrow_mut().streams;
            match streams.iter().position(|s| s.handle == stream.0) {
                Some(i) => streams.swap_remove(i),
                None => return,
            }
        };
        drop(s.stop);
        let ended = async {
            s.reader.await;
            true
        }
        .or(async {
            Timer::after(deadline + DEADLINE_SLACK).await;
            false
        });
        if !ended.await {
            log::debug!("isapi: TEARDOWN of stream {} timed out", stream.0);
        }
    }
}
