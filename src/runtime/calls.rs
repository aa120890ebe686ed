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
    /// The link watch of a session saw the connection reset (or closed and not
    /// reopenable); see [`run_watch`].
    LinkLost {
        /// The camera.
        cam: CamId,
        /// The session the watch was started for.
        session: Session,
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

/// The addresses of `host:port` (host names are resolved off the executor thread).
async fn resolve(host: String, port: u16) -> Vec<SocketAddr> {
    match host.parse::<IpAddr>() {
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
    }
}

/// The first of `addrs` that accepts a TCP connection within `deadline`.
async fn connect(addrs: &[SocketAddr], deadline: Duration) -> Option<Async<TcpStream>> {
    let attempt = async {
        for &addr in addrs {
            if let Ok(s) = Async::<TcpStream>::connect(addr).await {
                return Some(s);
            }
        }
        None
    };
    attempt
        .or(async {
            Timer::after(deadline).await;
            None
        })
        .await
}

/// An unauthenticated TCP connect to `host:port`, bounded by `deadline` (name resolution
/// included; host names are resolved off the executor thread).
pub(crate) async fn probe(host: String, port: u16, deadline: Duration) -> bool {
    let addrs = resolve(host, port)
        .or(async {
            Timer::after(deadline).await;
            Vec::new()
        })
        .await;
    connect(&addrs, deadline).await.is_some()
}

/// A connection that the device closes sooner than this after it was opened is not
/// reopened at once (a device that closes idle connections straight away must not make
/// the watch spin).
const WATCH_MIN_LIFE: Duration = Duration::from_secs(1);
/// The pause before reopening such a connection.
const WATCH_PAUSE: Duration = Duration::from_secs(5);

/// How a link watch ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WatchEnd {
    /// The first connection could not be opened: nothing to watch (the session goes on;
    /// the heartbeat still covers it).
    NoConnection,
    /// The connection was reset, or closed and could not be opened again.
    Lost,
}

/// The link watch (hybrid, `Traits::link_watch`): holds one idle, unauthenticated TCP
/// connection to the camera's port while a session is live and returns when the device
/// resets it (a reboot or a crash resets every connection), or closes it and refuses a
/// new one. A device that closes an idle connection (FIN) and accepts the next one is
/// fine: the watch goes on with the new connection. Bytes the device sends are ignored.
/// Cancel it by dropping its task.
pub(crate) async fn watch(host: String, port: u16, deadline: Duration) -> WatchEnd {
    use futures_lite::AsyncReadExt as _;
    let addrs = resolve(host, port).await;
    let Some(mut stream) = connect(&addrs, deadline).await else {
        return WatchEnd::NoConnection;
    };
    let mut opened = std::time::Instant::now();
    let mut buf = [0u8; 512];
    loop {
        match (&stream).read(&mut buf).await {
            Ok(0) => {
                if opened.elapsed() < WATCH_MIN_LIFE {
                    Timer::after(WATCH_PAUSE).await;
                }
                match connect(&addrs, deadline).await {
                    Some(s) => {
                        stream = s;
                        opened = std::time::Instant::now();
                    }
                    None => return WatchEnd::Lost,
                }
            }
            Ok(_) => {} // the device talked; nothing we asked for
            Err(_) => return WatchEnd::Lost,
        }
    }
}

/// Runs a link watch for `session` and reports a loss.
pub(crate) async fn run_watch(
    cam: CamId,
    session: Session,
    host: String,
    port: u16,
    deadline: Duration,
    tx: Sender<Msg>,
) {
    if watch(host, port, deadline).await == WatchEnd::Lost {
        send(&tx, Msg::LinkLost { cam, session }).await;
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn reset(s: TcpStream) {
        // SO_LINGER 0: close sends an RST, as a rebooting device's stack does.
        let l = nix::libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Linger, &l).expect("linger");
        drop(s);
    }

    fn watch_in_background(port: u16) -> std::thread::JoinHandle<WatchEnd> {
        std::thread::spawn(move || {
            async_io::block_on(watch("127.0.0.1".into(), port, Duration::from_secs(3)))
        })
    }

    #[test]
    fn a_reset_ends_the_watch() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let w = watch_in_background(l.local_addr().unwrap().port());
        let (s, _) = l.accept().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let t = std::time::Instant::now();
        reset(s);
        assert_eq!(w.join().unwrap(), WatchEnd::Lost);
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    }

    #[test]
    fn a_closed_idle_connection_is_reopened_and_watched_on() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let w = watch_in_background(l.local_addr().unwrap().port());
        let (first, _) = l.accept().unwrap();
        // An idle timeout on the device's side: FIN after a while. The watch opens a new
        // connection at once and keeps watching that one.
        std::thread::sleep(WATCH_MIN_LIFE + Duration::from_millis(200));
        drop(first);
        let (second, _) = l.accept().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert!(!w.is_finished(), "the watch must go on after a FIN");
        reset(second);
        assert_eq!(w.join().unwrap(), WatchEnd::Lost);
    }

    #[test]
    fn a_closed_connection_that_cannot_be_reopened_ends_the_watch() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let w = watch_in_background(l.local_addr().unwrap().port());
        let (s, _) = l.accept().unwrap();
        std::thread::sleep(WATCH_MIN_LIFE + Duration::from_millis(200));
        drop(l); // the service is gone: the reconnect is refused
        drop(s);
        assert_eq!(w.join().unwrap(), WatchEnd::Lost);
    }

    #[test]
    fn nothing_listening_means_nothing_to_watch() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        assert_eq!(
            watch_in_background(port).join().unwrap(),
            WatchEnd::NoConnection
        );
        assert!(!async_io::block_on(probe(
            "127.0.0.1".into(),
            port,
            Duration::from_secs(1)
        )));
    }
}
