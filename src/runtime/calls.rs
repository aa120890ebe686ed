//! The calls the supervisor asks for, as small tasks: lane calls through the camera's
//! backend ([`crate::backend`]) and TCP probes and link watches on the reactor. Each task reports back
//! with one [`Msg`] on the shell's inbox; a call that missed its deadline reports that
//! at once and, when it was running, its late result later.

use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use async_channel::Sender;
use async_io::{Async, Timer};
use futures_lite::FutureExt;

use crate::backend::{Backend, Job, Outcome};
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
    /// reopenable), or silent; see [`run_watch`].
    LinkLost {
        /// The camera.
        cam: CamId,
        /// The session the watch was started for.
        session: Session,
        /// Keepalives went unanswered and no new connection opened ([`WatchEnd::Silent`]),
        /// rather than a reset.
        silent: bool,
    },
    /// The event stream of an ISAPI session ended or fell silent, with a strategy that
    /// acts on exceptions but watches no links: the SDK's "keepalive failed" exception.
    KeepaliveLost {
        /// The camera.
        cam: CamId,
        /// The session whose stream it was.
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

async fn send(tx: &Sender<Msg>, msg: Msg) {
    // Fails only when the shell is gone (shutdown): nothing left to tell.
    let _ = tx.send(msg).await;
}

/// Runs one lane call on its backend and reports its outcome, then (for a call that
/// missed its deadline but still answers) the late result.
pub(crate) async fn run_job(backend: Backend, cam: CamId, id: String, job: Job, tx: Sender<Msg>) {
    let (outcome, late) = backend.run(cam, id, job).await;
    send(&tx, Msg::Done { cam, outcome }).await;
    if let Some(late) = late {
        if let Some(outcome) = late.await {
            send(&tx, Msg::Late { cam, outcome }).await;
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

/// How a probe judges a device alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProbeKind {
    /// An unauthenticated TCP connect (any device; a hung device whose kernel still
    /// accepts connections looks alive).
    Connect,
    /// A connect plus one unauthenticated `GET /` that must be answered with an HTTP
    /// status line (ISAPI devices): only a device whose web service runs looks alive.
    /// Carries no credentials, so it can never count as a failed login.
    Http,
}

/// Probes `host:port`, bounded by `deadline` as a whole (name resolution included; host
/// names are resolved off the executor thread).
pub(crate) async fn probe(host: String, port: u16, deadline: Duration, kind: ProbeKind) -> bool {
    let attempt = async {
        let addrs = resolve(host.clone(), port).await;
        let Some(stream) = connect(&addrs, deadline).await else {
            return false;
        };
        match kind {
            ProbeKind::Connect => true,
            ProbeKind::Http => http_answers(stream, &host).await,
        }
    };
    attempt
        .or(async {
            Timer::after(deadline).await;
            false
        })
        .await
}

/// Sends `GET /` and reads until the first bytes of an answer: true if they are an HTTP
/// status line (whatever the status: 200, 302, 401 and 404 all prove the service runs).
async fn http_answers(stream: Async<TcpStream>, host: &str) -> bool {
    use futures_lite::{AsyncReadExt as _, AsyncWriteExt as _};
    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    if (&stream).write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = [0u8; 5];
    let mut got = 0;
    while got < head.len() {
        match (&stream).read(&mut head[got..]).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => got += n,
        }
    }
    &head == b"HTTP/"
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
    /// Keepalives went unanswered for the silence bound (`ETIMEDOUT`) and none of
    /// [`WATCH_CONFIRM_CONNECTS`] fresh connections opened within
    /// [`WATCH_CONFIRM_WINDOW`].
    Silent,
}

/// Fresh connections tried at once when the watched connection fell silent: on a lossy
/// path one of them gets through (at 20 % loss each way a handshake fails 36 % of the
/// time, all four 1.7 %); through a black hole none does.
pub(crate) const WATCH_CONFIRM_CONNECTS: usize = 4;
/// How long those connections may take.
pub(crate) const WATCH_CONFIRM_WINDOW: Duration = Duration::from_secs(1);

/// Keepalive on the watch's connection: a probe after one idle second and every second
/// after, and `ETIMEDOUT` once nothing was acknowledged for `silent_after`
/// (`TCP_USER_TIMEOUT`, which also bounds unacknowledged data). Zero: left off.
fn set_keepalive(stream: &Async<TcpStream>, silent_after: Duration) {
    use nix::sys::socket::{setsockopt, sockopt};
    if silent_after.is_zero() {
        return;
    }
    let fd = stream.get_ref();
    let ms = u32::try_from(silent_after.as_millis()).unwrap_or(u32::MAX);
    let set = setsockopt(fd, sockopt::KeepAlive, &true)
        .and_then(|()| setsockopt(fd, sockopt::TcpKeepIdle, &1))
        .and_then(|()| setsockopt(fd, sockopt::TcpKeepInterval, &1))
        .and_then(|()| setsockopt(fd, sockopt::TcpUserTimeout, &ms));
    if let Err(e) = set {
        log::debug!("link watch: keepalive options refused: {e}");
    }
}

/// The first of [`WATCH_CONFIRM_CONNECTS`] connections to open within
/// [`WATCH_CONFIRM_WINDOW`].
async fn confirm_connect(addrs: &[SocketAddr]) -> Option<Async<TcpStream>> {
    let one = || async {
        match connect(addrs, WATCH_CONFIRM_WINDOW).await {
            Some(s) => s,
            None => std::future::pending().await,
        }
    };
    let mut race: std::pin::Pin<
        Box<dyn std::future::Future<Output = Async<TcpStream>> + Send + '_>,
    > = Box::pin(one());
    for _ in 1..WATCH_CONFIRM_CONNECTS {
        race = Box::pin(race.or(one()));
    }
    async { Some(race.await) }
        .or(async {
            Timer::after(WATCH_CONFIRM_WINDOW).await;
            None
        })
        .await
}

/// The link watch (hybrid, `StrategyTraits::link_watch`): holds one idle, unauthenticated TCP
/// connection to the camera's port while a session is live and returns when the device
/// resets it (a reboot or a crash resets every connection), or closes it and refuses a
/// new one. A device that closes an idle connection (FIN) and accepts the next one is
/// fine: the watch goes on with the new connection. Bytes the device sends are ignored.
/// Cancel it by dropping its task.
///
/// With a non-zero `silent_after` the connection carries TCP keepalives
/// ([`set_keepalive`]); when they time out and no fresh connection opens at once
/// ([`confirm_connect`]) the watch returns [`WatchEnd::Silent`], else it watches on with
/// the fresh connection.
pub(crate) async fn watch(
    host: String,
    port: u16,
    deadline: Duration,
    silent_after: Duration,
) -> WatchEnd {
    use futures_lite::AsyncReadExt as _;
    let addrs = resolve(host, port).await;
    let Some(mut stream) = connect(&addrs, deadline).await else {
        return WatchEnd::NoConnection;
    };
    set_keepalive(&stream, silent_after);
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
                        set_keepalive(&stream, silent_after);
                        opened = std::time::Instant::now();
                    }
                    None => return WatchEnd::Lost,
                }
            }
            Ok(_) => {} // the device talked; nothing we asked for
            Err(e) if e.raw_os_error() == Some(nix::libc::ETIMEDOUT) => {
                match confirm_connect(&addrs).await {
                    Some(s) => {
                        stream = s;
                        set_keepalive(&stream, silent_after);
                        opened = std::time::Instant::now();
                    }
                    None => return WatchEnd::Silent,
                }
            }
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
    silent_after: Duration,
    tx: Sender<Msg>,
) {
    let silent = match watch(host, port, deadline, silent_after).await {
        WatchEnd::NoConnection => return,
        WatchEnd::Lost => false,
        WatchEnd::Silent => true,
    };
    send(
        &tx,
        Msg::LinkLost {
            cam,
            session,
            silent,
        },
    )
    .await;
}

/// The link watch of an ISAPI session: reads its event stream until it ends (a lost link)
/// or sends nothing for its silence limit (a silent one), and reports that; as
/// [`Msg::KeepaliveLost`] when `as_keepalive` (strategies without link watch).
pub(crate) async fn run_alert_watch(
    cam: CamId,
    session: Session,
    mut alert: crate::isapi::AlertStream,
    as_keepalive: bool,
    tx: Sender<Msg>,
) {
    let silent = loop {
        match alert.next_part().await {
            Ok(_) => {} // an event or the device's heartbeat: the link is alive
            Err(crate::isapi::IsapiError::StreamSilent) => break true,
            Err(e) => {
                log::debug!(
                    "isapi: the event stream of session {} ended: {e}",
                    session.0
                );
                break false;
            }
        }
    };
    if as_keepalive {
        send(&tx, Msg::KeepaliveLost { cam, session }).await;
        return;
    }
    send(
        &tx,
        Msg::LinkLost {
            cam,
            session,
            silent,
        },
    )
    .await;
}

/// Runs a probe and reports it.
pub(crate) async fn run_probe(
    cam: CamId,
    token: Token,
    host: String,
    port: u16,
    deadline: Duration,
    kind: ProbeKind,
    tx: Sender<Msg>,
) {
    let open = probe(host, port, deadline, kind).await;
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
            async_io::block_on(watch(
                "127.0.0.1".into(),
                port,
                Duration::from_secs(3),
                Duration::from_secs(4),
            ))
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
        for kind in [ProbeKind::Connect, ProbeKind::Http] {
            assert!(!async_io::block_on(probe(
                "127.0.0.1".into(),
                port,
                Duration::from_secs(1),
                kind
            )));
        }
    }

    #[test]
    fn an_http_probe_needs_an_answer_a_connect_probe_does_not() {
        // A hung device: the kernel accepts (backlog), nobody reads or answers.
        let hung = TcpListener::bind("127.0.0.1:0").unwrap();
        let hung_port = hung.local_addr().unwrap().port();
        // A live web service: answers anything with a 404.
        let live = TcpListener::bind("127.0.0.1:0").unwrap();
        let live_port = live.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            use std::io::{Read as _, Write as _};
            let (mut s, _) = live.accept().unwrap();
            let mut buf = [0u8; 512];
            let n = s.read(&mut buf).unwrap();
            let request = String::from_utf8_lossy(&buf[..n]).to_string();
            s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
            request
        });
        let d = Duration::from_millis(300);
        let p = |port, kind| async_io::block_on(probe("127.0.0.1".into(), port, d, kind));
        assert!(p(hung_port, ProbeKind::Connect));
        assert!(!p(hung_port, ProbeKind::Http));
        assert!(p(live_port, ProbeKind::Http));
        let request = server.join().unwrap();
        assert!(request.starts_with("GET / HTTP/1.1\r\n"), "{request}");
        assert!(!request.to_ascii_lowercase().contains("authorization"));
        drop(hung);
    }
}
