//! What the runtime drives, whichever way a camera is reached: the backend seam.
//!
//! The supervisor core decides *what* to do (log in, heartbeat, log out, start or stop the
//! watched stream); a backend does it for one camera and answers in this module's neutral
//! vocabulary:
//!
//! - [`Job`] in, [`Outcome`] out: one lane call of one camera. Failures carry an
//!   [`ErrorClass`] and a number for display only; vendor error numbers and exception
//!   codes stay inside the backend (the SDK's "handle already gone", error 47, is an
//!   answer of the SDK backend's teardown, not something the runtime looks at).
//! - [`BackendEvent`]: what a backend reports on its own (the session's keepalive failed
//!   or came back, stream data arrived, its event queue overflowed).
//!
//! Also here, because both backends and the runtime use them: [`ErrorClass`] (what a
//! failure means for reconnecting, [`class`]), the [`BackendFailure`] trait every backend
//! error implements, and the blocking-call [`pool`] the SDK backend runs its calls on.
//!
//! Backends (a camera's `backend` in the config picks one):
//! - `SdkBackend` (`sdk.rs`): the vendor HCNetSDK through `crate::sdk::SdkPool`. Only with
//!   the cargo feature `sdk` (default); loaded only when some camera uses it.
//! - `IsapiBackend` (`isapi.rs`): hikwatch's own ISAPI client, calls as tasks on the
//!   executor; no vendor SDK.
//!
//! [`Backends`] holds the backends of a run and answers the runtime's questions that are
//! not about one call (events, stream data, the SDK's handle counts for status), so the
//! runtime itself needs no `cfg` for the SDK.

pub mod class;
pub(crate) mod isapi;
pub mod pool;
#[cfg(feature = "sdk")]
pub(crate) mod sdk;

use std::time::Duration;

use crate::config::{BackendKind, CameraConfig, StreamConfig};
use crate::supervisor::{CamId, ExceptionKind, Session, StreamHandle, Token};

pub use class::ErrorClass;
pub(crate) use isapi::IsapiBackend;
pub use pool::{CallError, Late, Orphan, Pool, PoolOptions, PoolStats};
#[cfg(feature = "sdk")]
pub(crate) use sdk::SdkBackend;

/// An error of a backend call: what it means for the reconnect policy and, when the
/// backend has one, a number for logs and status.
pub trait BackendFailure {
    /// What the failure means for reconnecting.
    fn class(&self) -> ErrorClass;
    /// The backend's own number for it (display only), if any.
    fn code(&self) -> Option<u32>;
}

/// The backend that runs one call. A cheap handle (clone per call task).
#[derive(Clone, Debug)]
pub(crate) enum Backend {
    /// The vendor HCNetSDK.
    #[cfg(feature = "sdk")]
    Sdk(SdkBackend),
    /// hikwatch's own ISAPI client.
    Isapi(IsapiBackend),
}

impl Backend {
    /// Runs one lane call of camera `cam` (`id` for log lines). Returns its outcome and,
    /// when it missed its deadline while the backend still works on it (the outcome is
    /// then [`Outcome::Stuck`]), the late result still to come.
    pub(crate) async fn run(
        self,
        cam: CamId,
        id: String,
        job: Job,
    ) -> (Outcome, Option<LateOutcome>) {
        match self {
            #[cfg(feature = "sdk")]
            Backend::Sdk(b) => b.run(cam, id, job).await,
            Backend::Isapi(b) => {
                let _ = id; // the ISAPI backend logs with its own prefix
                b.run(cam, job).await
            }
        }
    }
}

/// One call of a camera's serial lane, with everything a backend needs for it.
#[derive(Debug)]
pub(crate) enum Job {
    /// Log in with the camera's configuration as it is when the call starts.
    Login {
        token: Token,
        conf: CameraConfig,
        /// The device session an earlier login of this camera left behind (the state
        /// file's, ISAPI only): ended before logging in. Other backends ignore it.
        left_session: Option<String>,
        deadline: Duration,
    },
    Heartbeat {
        token: Token,
        session: Session,
        deadline: Duration,
    },
    Logout {
        session: Session,
        deadline: Duration,
    },
    StartStream {
        token: Token,
        session: Session,
        stream: StreamConfig,
        /// The camera's configuration as it is when the call starts: the ISAPI backend's
        /// stream client connects and authenticates on its own. Others ignore it.
        conf: CameraConfig,
        deadline: Duration,
    },
    StopStream {
        stream: StreamHandle,
        deadline: Duration,
    },
    /// End the device session an earlier login left behind (`cookie`, the state file's)
    /// without logging in: for a camera that will not log in soon (auth-hold, device
    /// lock). Sends no password. ISAPI only; other backends have none to end.
    EndLeftSession {
        conf: CameraConfig,
        cookie: String,
        deadline: Duration,
    },
}

impl Job {
    /// The answer to a call no backend will run (`why` says why): a failure of class
    /// `Unsupported` for what the core waits for, done at once for teardown.
    pub(crate) fn refused(self, why: &str) -> Outcome {
        let class = ErrorClass::Unsupported;
        match self {
            Job::Login { token, .. } => Outcome::LoginFailed {
                token,
                class,
                code: 0,
                text: why.to_string(),
            },
            Job::Heartbeat { token, .. } => Outcome::HeartbeatFailed {
                token,
                class,
                code: 0,
            },
            Job::Logout { session, .. } => Outcome::LoggedOut { session },
            Job::StartStream { token, .. } => Outcome::StreamFailed {
                token,
                class,
                code: 0,
            },
            Job::StopStream { stream, .. } => Outcome::StreamStopped { stream },
            Job::EndLeftSession { .. } => Outcome::LeftSessionTried,
        }
    }
}

/// The result of one lane call.
#[derive(Debug)]
pub(crate) enum Outcome {
    LoginOk {
        token: Token,
        session: Session,
    },
    LoginFailed {
        token: Token,
        class: ErrorClass,
        code: u32,
        text: String,
    },
    HeartbeatOk {
        token: Token,
    },
    HeartbeatFailed {
        token: Token,
        class: ErrorClass,
        code: u32,
    },
    /// The session is gone on our side (the backend let it go, whatever the device said).
    LoggedOut {
        session: Session,
    },
    StreamStarted {
        token: Token,
        stream: StreamHandle,
    },
    StreamFailed {
        token: Token,
        class: ErrorClass,
        code: u32,
    },
    StreamStopped {
        stream: StreamHandle,
    },
    /// An [`Job::EndLeftSession`] finished, whatever it did (the backend reports whether
    /// the state file should forget the session): nothing for the core.
    LeftSessionTried,
    /// The call missed its deadline. `token` is `None` for calls the core tracks by
    /// session (logout) or not at all (stop stream).
    Stuck {
        call: &'static str,
        token: Option<Token>,
    },
}

/// A late result of a call that missed its deadline, still on its way.
pub(crate) type LateOutcome = std::pin::Pin<Box<dyn std::future::Future<Output = Option<Outcome>>>>;

/// What a backend reports on its own, outside the calls, translated for the camera that
/// holds the session.
// A build without the SDK reports only broken streams (`Exception`).
#[cfg_attr(not(feature = "sdk"), allow(dead_code))]
#[derive(Debug)]
pub(crate) enum BackendEvent {
    /// Something happened to a live session (the SDK's exception callback: its own
    /// keepalive failed, the session came back, the preview broke...; the ISAPI backend's
    /// stream reader: the stream broke, as `PreviewClosed`).
    Exception {
        cam: CamId,
        session: Session,
        kind: ExceptionKind,
    },
    /// The camera's watched stream delivered data (or restarted delivering it).
    StreamData { cam: CamId },
    /// The backend's event queue overflowed and coalesced events.
    Overflow { dropped: u64, unattributed: u64 },
}

/// A backend's own event before [`Backends::translate`]. A build without the SDK has none
/// (the enum is then empty).
#[derive(Debug)]
pub(crate) enum RawEvent {
    /// An SDK callback event.
    #[cfg(feature = "sdk")]
    Sdk(crate::sdk::SdkEvent),
}

/// The receiving end of the backends' own events (the SDK's callback queue). Kept apart
/// from [`Backends`] so the supervisor loop can wait on it without holding the driver.
/// Dropping it closes the queue and then releases the run's hold on the SDK (`NET_DVR_Cleanup`
/// once the last holder is gone). The ISAPI backend's events (broken streams) are not
/// here: the runtime takes them with [`Backends::take_events`].
#[derive(Debug, Default)]
pub(crate) struct EventSource {
    #[cfg(feature = "sdk")]
    sdk: Option<(crate::sdk::EventReceiver, std::sync::Arc<crate::sdk::Sdk>)>,
}

impl EventSource {
    /// The next event; never resolves when no backend reports events.
    pub(crate) async fn recv(&mut self) -> RawEvent {
        #[cfg(feature = "sdk")]
        if let Some((rx, _)) = &mut self.sdk {
            return RawEvent::Sdk(rx.recv().await);
        }
        std::future::pending().await
    }

    /// An event already waiting, if any.
    pub(crate) fn try_recv(&mut self) -> Option<RawEvent> {
        #[cfg(feature = "sdk")]
        if let Some((rx, _)) = &mut self.sdk {
            return rx.try_recv().map(RawEvent::Sdk);
        }
        None
    }
}

/// The backends of one run: the SDK backend when some camera uses it (and the build has
/// it), the ISAPI backend always.
#[derive(Debug)]
pub(crate) struct Backends {
    #[cfg(feature = "sdk")]
    sdk: Option<SdkBackend>,
    isapi: IsapiBackend,
}

impl EventSource {
    /// Takes the SDK's event queue, and a hold on the SDK released after it.
    #[cfg(feature = "sdk")]
    pub(crate) fn set_sdk(
        &mut self,
        rx: crate::sdk::EventReceiver,
        sdk: std::sync::Arc<crate::sdk::Sdk>,
    ) {
        self.sdk = Some((rx, sdk));
    }
}

impl Backends {
    /// The backends of a run without the SDK (yet). `alert_silence`: open each ISAPI
    /// session's event stream for the link watch, with this silence limit;
    /// `stream_silence`: an ISAPI stream without a frame for this long is broken; `ex`: the
    /// run's executor, for the ISAPI stream readers.
    pub(crate) fn new(
        alert_silence: Option<Duration>,
        stream_silence: Duration,
        ex: std::rc::Weak<smol::LocalExecutor<'static>>,
    ) -> Backends {
        Backends {
            #[cfg(feature = "sdk")]
            sdk: None,
            isapi: IsapiBackend::new(alert_silence, stream_silence, ex),
        }
    }

    /// The events the ISAPI backend reported since the last call (broken streams), oldest
    /// first. The runtime takes them with the stream data, about once a second.
    pub(crate) fn take_events(&self) -> Vec<BackendEvent> {
        self.isapi.take_events()
    }

    /// The event stream opened with an ISAPI session's login, once (for its link watch).
    pub(crate) fn take_alert(&self, session: Session) -> Option<crate::isapi::AlertStream> {
        self.isapi.take_alert(session)
    }

    /// Adds the SDK backend (the runtime loaded the SDK because some camera uses it).
    #[cfg(feature = "sdk")]
    pub(crate) fn set_sdk(&mut self, b: SdkBackend) {
        self.sdk = Some(b);
    }

    /// The SDK's sessions still open (`NET_DVR_GetSDKState`), when the SDK is loaded and
    /// can say.
    pub(crate) fn sdk_logins_left(&self) -> Option<u32> {
        #[cfg(feature = "sdk")]
        if let Some(b) = &self.sdk {
            return b.pool().sdk().state().ok().map(|s| s.logins);
        }
        None
    }

    /// Whether `kind` is open in this run.
    pub(crate) fn has(&self, kind: BackendKind) -> bool {
        match kind {
            #[cfg(feature = "sdk")]
            BackendKind::Sdk => self.sdk.is_some(),
            #[cfg(not(feature = "sdk"))]
            BackendKind::Sdk => false,
            BackendKind::Isapi => true,
        }
    }

    /// The backend for a camera configured with `kind`; `None` when it is not open (the
    /// config check and the reload keep such cameras out).
    pub(crate) fn get(&self, kind: BackendKind) -> Option<Backend> {
        match kind {
            #[cfg(feature = "sdk")]
            BackendKind::Sdk => self.sdk.clone().map(Backend::Sdk),
            #[cfg(not(feature = "sdk"))]
            BackendKind::Sdk => None,
            BackendKind::Isapi => Some(Backend::Isapi(self.isapi.clone())),
        }
    }

    /// A backend's own event for the camera it concerns; `None` when no camera holds its
    /// session any more, or it means nothing to the runtime.
    pub(crate) fn translate(&self, ev: RawEvent) -> Option<BackendEvent> {
        match ev {
            #[cfg(feature = "sdk")]
            RawEvent::Sdk(ev) => self.sdk.as_ref().and_then(|b| b.translate(ev)),
        }
    }

    /// Whether a backend started `stream` and still holds it (a stop of any other handle
    /// has nothing to do).
    pub(crate) fn holds_stream(&self, kind: BackendKind, stream: StreamHandle) -> bool {
        match kind {
            #[cfg(feature = "sdk")]
            BackendKind::Sdk => self.sdk.as_ref().is_some_and(|b| b.holds_stream(stream)),
            #[cfg(not(feature = "sdk"))]
            BackendKind::Sdk => false,
            BackendKind::Isapi => self.isapi.holds_stream(stream),
        }
    }

    /// The cameras whose watched stream delivered data since the last call.
    pub(crate) fn streams_moved(&self) -> Vec<CamId> {
        #[cfg_attr(not(feature = "sdk"), allow(unused_mut))]
        let mut moved = Vec::new();
        #[cfg(feature = "sdk")]
        if let Some(b) = &self.sdk {
            moved = b.streams_moved();
        }
        self.isapi.streams_moved(&mut moved);
        moved
    }

    /// The device sessions cameras took or gave up since the last call (ISAPI session
    /// login): `Some(cookie)` to remember in the state file, `None` to forget.
    pub(crate) fn take_device_sessions(&self) -> Vec<(CamId, Option<String>)> {
        self.isapi.take_device_sessions()
    }

    /// Forgets what the backends still know of a removed camera.
    pub(crate) fn forget_camera(&self, cam: CamId) {
        #[cfg(feature = "sdk")]
        if let Some(b) = &self.sdk {
            b.forget_camera(cam);
        }
        self.isapi.forget_camera(cam);
    }

    /// The SDK's live handles (logins, previews), when the SDK is loaded and can say.
    pub(crate) fn sdk_handles(&self) -> Option<crate::status::SdkHandles> {
        #[cfg(feature = "sdk")]
        if let Some(b) = &self.sdk {
            return b
                .pool()
                .sdk()
                .state()
                .ok()
                .map(|s| crate::status::SdkHandles {
                    logins: s.logins,
                    real_plays: s.real_plays,
                });
        }
        None
    }

    /// `HCNetSDK 6.1.9.48 from /opt/hikwatch/sdk` when the SDK is loaded.
    pub(crate) fn describe(&self) -> Option<String> {
        #[cfg(feature = "sdk")]
        if let Some(b) = &self.sdk {
            let sdk = b.pool().sdk();
            return Some(format!(
                "HCNetSDK {} from {}",
                sdk.version(),
                sdk.dir().display()
            ));
        }
        None
    }
}
