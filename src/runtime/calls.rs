//! The calls the supervisor asks for, as small tasks: SDK calls through the [`SdkPool`]
//! (never on the executor thread) and TCP probes on the reactor. Each task reports back
//! with one [`Msg`] on the shell's inbox; a call that missed its deadline reports that
//! at once and, when it was running, its late result later.

use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use async_channel::Sender;
use async_io::{Async, Timer};
use futures_lite::FutureExt;

use crate::sdk::{
    CallError, ErrorClass, Late, LoginParams, SdkError, SdkPool, StreamId, StreamParams, UserId,
};
use crate::supervisor::{CamId, Session, Token};

/// What a call task tells the shell.
#[derive(Debug)]
pub(crate) enum Msg {
    /// A call of the camera's serial lane finished; the lane may start its next call.
    Done {
        /// The camera.
        cam: CamId,
        /// What happened.
        outcome: Outcome,
    },
    /// The late result of a call that missed its deadline (the lane moved on already).
    Late {
        /// The camera.
        cam: CamId,
        /// What happened.
        outcome: Outcome,
    },
    /// A TCP probe finished (a timeout is `open: false`).
    Probe {
        /// The camera.
        cam: CamId,
        /// The probe's token.
        token: Token,
        /// Whether the port accepted the connection.
        open: bool,
    },
}

/// The result of one call.
#[derive(Debug)]
pub(crate) enum Outcome {
    LoginOk {
        token: Token,
        uid: UserId,
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
    /// `NET_DVR_Logout` returned (whatever it said: the SDK frees the handle either way).
    LoggedOut {
        session: Session,
    },
    StreamStarted {
        token: Token,
        id: StreamId,
    },
    StreamFailed {
        token: Token,
        class: ErrorClass,
        code: u32,
    },
    StreamStopped {
        handle: i32,
    },
    /// The pool gave up waiting at the deadline. `token` is `None` for calls the core
    /// tracks by session (logout) or not at all (stop stream).
    Stuck {
        call: &'static str,
        token: Option<Token>,
    },
}

/// One SDK call for a camera's lane, with everything it needs.
#[derive(Debug)]
pub(crate) enum Job {
    Login {
        token: Token,
        params: LoginParams,
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
        params: StreamParams,
        deadline: Duration,
    },
    StopStream {
        id: StreamId,
        deadline: Duration,
    },
}

fn failure(e: &SdkError) -> (ErrorClass, u32) {
    (e.class(), e.code().unwrap_or(0))
}

async fn send(tx: &Sender<Msg>, msg: Msg) {
    // Fails only when the shell is gone (shutdown): nothing left to tell.
    let _ = tx.send(msg).await;
}

/// Reports a missed deadline at once, then the late result when `to_outcome` maps it.
async fn stuck<T>(
    tx: &Sender<Msg>,
    cam: CamId,
    call: &'static str,
    token: Option<Token>,
    err: CallError<T>,
    to_outcome: impl FnOnce(Result<T, SdkError>) -> Option<Outcome>,
) {
    let late: Option<Late<T>> = match err {
        CallError::DeadlineExceeded { started, late, .. } => started.then_some(late),
        _ => None,
    };
    send(
        tx,
        Msg::Done {
            cam,
            outcome: Outcome::Stuck { call, token },
        },
    )
    .await;
    if let Some(late) = late {
        if let Some(result) = late.result().await {
            if let Some(outcome) = to_outcome(result) {
                send(tx, Msg::Late { cam, outcome }).await;
            }
        }
    }
}

/// Runs one lane job on the pool and reports its outcome.
pub(crate) async fn run_job(pool: SdkPool, cam: CamId, job: Job, tx: Sender<Msg>) {
    let done = |outcome| Msg::Done { cam, outcome };
    match job {
        Job::Login {
            token,
            params,
            deadline,
        } => {
            let login_failed = |e: &SdkError| {
                let (class, code) = failure(e);
                Outcome::LoginFailed {
                    token,
                    class,
                    code,
                    text: e.to_string(),
                }
            };
            match pool.login(params, deadline).await {
                Ok(l) => send(&tx, done(Outcome::LoginOk { token, uid: l.uid })).await,
                Err(CallError::Sdk(e)) => send(&tx, done(login_failed(&e))).await,
                Err(CallError::Busy) => {
                    let outcome = Outcome::LoginFailed {
                        token,
                        class: ErrorClass::Resource,
                        code: 0,
                        text: "the SDK call queue is full".into(),
                    };
                    send(&tx, done(outcome)).await;
                }
                Err(e) => {
                    // A late success goes back to the core with its original token (the
                    // core logs it out when it no longer wants it).
                    stuck(&tx, cam, "login", Some(token), e, |r| {
                        Some(match r {
                            Ok(l) => Outcome::LoginOk { token, uid: l.uid },
                            Err(e) => login_failed(&e),
                        })
                    })
                    .await;
                }
            }
        }
        Job::Heartbeat {
            token,
            session,
            deadline,
        } => match pool.heartbeat(UserId(session.0), deadline).await {
            Ok(()) => send(&tx, done(Outcome::HeartbeatOk { token })).await,
            Err(CallError::Sdk(e)) => {
                let (class, code) = failure(&e);
                send(&tx, done(Outcome::HeartbeatFailed { token, class, code })).await;
            }
            Err(CallError::Busy) => {
                let outcome = Outcome::HeartbeatFailed {
                    token,
                    class: ErrorClass::Resource,
                    code: 0,
                };
                send(&tx, done(outcome)).await;
            }
            // A late heartbeat answer tells nothing the core still wants.
            Err(e) => stuck(&tx, cam, "heartbeat", Some(token), e, |_| None).await,
        },
        Job::Logout { session, deadline } => {
            match pool.logout(UserId(session.0), deadline).await {
                Ok(()) | Err(CallError::Sdk(_) | CallError::Busy) => {
                    send(&tx, done(Outcome::LoggedOut { session })).await;
                }
                Err(e) => {
                    // The core abandons a logout at its own deadline; the late return
                    // still frees the uid mapping.
                    stuck(&tx, cam, "logout", None, e, |_| {
                        Some(Outcome::LoggedOut { session })
                    })
                    .await;
                }
            }
        }
        Job::StartStream {
            token,
            session,
            params,
            deadline,
        } => match pool.start_stream(UserId(session.0), params, deadline).await {
            Ok(id) => send(&tx, done(Outcome::StreamStarted { token, id })).await,
            Err(CallError::Sdk(e)) => {
                let (class, code) = failure(&e);
                send(&tx, done(Outcome::StreamFailed { token, class, code })).await;
            }
            Err(CallError::Busy) => {
                let outcome = Outcome::StreamFailed {
                    token,
                    class: ErrorClass::Resource,
                    code: 0,
                };
                send(&tx, done(outcome)).await;
            }
            Err(e) => {
                // A late stream goes back with its token; the core stops it.
                stuck(&tx, cam, "start_stream", Some(token), e, |r| {
                    r.ok().map(|id| Outcome::StreamStarted { token, id })
                })
                .await;
            }
        },
        Job::StopStream { id, deadline } => {
            let handle = id.handle;
            match pool.stop_stream(id, deadline).await {
                Ok(()) | Err(CallError::Sdk(_) | CallError::Busy) => {
                    send(&tx, done(Outcome::StreamStopped { handle })).await;
                }
                Err(e) => stuck(&tx, cam, "stop_stream", None, e, |_| None).await,
            }
        }
    }
}

/// An unauthenticated TCP connect to `host:port`, bounded by `deadline` (name resolution
/// included; host names are resolved off the executor thread).
pub(crate) async fn probe(host: String, port: u16, deadline: Duration) -> bool {
    let connect = async move {
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => {
                smol::unblock(move || {
                    (host.as_str(), port)
                        .to_socket_addrs()
                        .map(Iterator::collect)
                        .unwrap_or_default()
                })
                .await
            }
        };
        for addr in addrs {
            if Async::<TcpStream>::connect(addr).await.is_ok() {
                return true;
            }
        }
        false
    };
    connect
        .or(async {
            Timer::after(deadline).await;
            false
        })
        .await
}

/// Runs a probe and reports it.
pub(crate) async fn run_probe(
    cam: CamId,
    token: Token,
    host: String,
    port: u16,
    deadline: Duration,
    tx: Sender<Msg>,
) {
    let open = probe(host, port, deadline).await;
    send(&tx, Msg::Probe { cam, token, open }).await;
}
