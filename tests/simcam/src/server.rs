//! The socket side of a camera: accept loop, boot timer, one task per connection.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use smol::channel::Receiver;
use smol::future::FutureExt as _;
use smol::io::{AsyncReadExt as _, AsyncWriteExt as _};
use smol::{Async, Timer};
use socket2::SockRef;

use crate::camera::{CamShared, SocketSlot};
use crate::events::EventKind;
use crate::http::{ParseOutcome, parse_request};

/// Read chunk per connection.
const READ_CHUNK: usize = 2048;

/// Resolves when the boot's kill sender is dropped (power-off).
async fn killed(rx: Receiver<()>) {
    // `recv` only errors once the channel is closed; nothing is ever sent on it.
    while rx.recv().await.is_ok() {}
}

/// Runs `serve` on `stream` until it ends or the camera loses power (`rx` closes); on
/// power loss the socket is closed with SO_LINGER 0, so close() sends RST, like a camera
/// losing power mid-connection. The HTTP and the RTSP connections share it.
pub(crate) async fn serve_until_power_off(
    serve: impl std::future::Future<Output = ()>,
    stream: &Async<TcpStream>,
    rx: Receiver<()>,
) {
    let reset = async {
        serve.await;
        false
    }
    .or(async {
        killed(rx).await;
        true
    })
    .await;
    if reset {
        let _ = SockRef::from(stream.get_ref()).set_linger(Some(Duration::ZERO));
    }
}

/// Waits out the boot delay, then serves.
pub(crate) async fn boot_after(
    cam: Arc<CamShared>,
    delay: Duration,
    rx: Receiver<()>,
    slot: SocketSlot,
) {
    let done = async {
        Timer::after(delay).await;
        true
    }
    .or(async {
        killed(rx.clone()).await;
        false
    })
    .await;
    if !done {
        return;
    }
    if let Some(listener) = cam.finish_boot(&rx) {
        accept_loop(cam, listener, rx, slot).await;
    }
}

/// Accepts connections until power-off. Dropping the listener closes it, and the kernel
/// resets connections still in its backlog.
pub(crate) async fn accept_loop(
    cam: Arc<CamShared>,
    listener: Async<TcpListener>,
    rx: Receiver<()>,
    slot: SocketSlot,
) {
    let serve = async {
        loop {
            cam.wait_thawed().await;
            let (stream, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(_) => {
                    // EMFILE and friends: back off instead of spinning.
                    Timer::after(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let accept_close = {
                let mut st = cam.lock();
                st.stats.accepted += 1;
                if !st.accept_close {
                    st.open_sockets += 1;
                    st.stats.connections += 1;
                    st.stats.connections_hwm = st.stats.connections_hwm.max(st.stats.connections);
                }
                st.accept_close
            };
            if accept_close {
                cam.log(EventKind::AcceptClosed, peer.to_string());
                drop(stream);
                continue;
            }
            let conn_slot = SocketSlot {
                cam: cam.clone(),
                connection: true,
            };
            let _ = stream.get_ref().set_nodelay(true);
            // Read back from the socket so tests can check the option really is on.
            let nodelay = stream.get_ref().nodelay().unwrap_or(false);
            cam.log(EventKind::ConnOpened, format!("{peer} nodelay={nodelay}"));
            cam.ex
                .spawn(connection(cam.clone(), stream, peer, rx.clone(), conn_slot))
                .detach();
        }
    };
    serve.or(killed(rx.clone())).await;
    drop(listener);
    drop(slot);
}

/// Serves one connection until the peer closes, a bad request, or power-off (RST).
async fn connection(
    cam: Arc<CamShared>,
    stream: Async<TcpStream>,
    peer: SocketAddr,
    rx: Receiver<()>,
    slot: SocketSlot,
) {
    serve_until_power_off(serve(&cam, &stream, peer), &stream, rx).await;
    drop(stream);
    cam.log(EventKind::ConnClosed, peer.to_string());
    drop(slot);
}

async fn serve(cam: &Arc<CamShared>, stream: &Async<TcpStream>, peer: SocketAddr) {
    let mut stream = stream;
    let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut chunk = [0u8; READ_CHUNK];
    loop {
        match parse_request(&buf) {
            ParseOutcome::Complete(req, used) => {
                buf.drain(..used);
                if req.method == "GET" && req.path == crate::alert::ALERT_STREAM_PATH {
                    crate::alert::serve_alert_stream(cam, stream, &req, peer).await;
                    return;
                }
                if req.method == "POST" && req.path == "/ISAPI/Security/sessionLogin" {
                    let delay = cam.lock().login_delay;
                    if !delay.is_zero() {
                        Timer::after(delay).await;
                    }
                }
                cam.wait_thawed().await;
                let (resp, slow) = {
                    let mut st = cam.lock();
                    let resp = cam.handle(&mut st, &req, peer);
                    (resp, st.slow)
                };
                if !slow.is_zero() {
                    Timer::after(slow).await;
                    cam.wait_thawed().await;
                }
                let close = req.close || resp.close;
                let mut resp = resp;
                resp.close = close;
                // One buffer, one write: with TCP_NODELAY the response leaves in one segment.
                if stream.write_all(&resp.to_bytes()).await.is_err() || close {
                    return;
                }
                continue;
            }
            ParseOutcome::Partial => {}
            ParseOutcome::Bad(status, why) => {
                cam.lock().stats.requests += 1;
                cam.log(EventKind::BadRequest, format!("{status} {why}"));
                let mut resp =
                    crate::isapi::response_status("", status, 4, "Invalid Operation", "badRequest");
                resp.close = true;
                if stream.write_all(&resp.to_bytes()).await.is_ok() {
                    lingering_close(stream).await;
                }
                return;
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// After an error reply: send FIN, then swallow what the client is still sending (bounded
/// in bytes and time), so closing with unread data does not turn into an RST that could
/// destroy the reply before the client reads it.
async fn lingering_close(stream: &Async<TcpStream>) {
    let _ = stream.get_ref().shutdown(std::net::Shutdown::Write);
    let mut stream = stream;
    let mut chunk = [0u8; READ_CHUNK];
    let mut budget = 256 * 1024usize;
    let drain = async {
        while budget > 0 {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => budget = budget.saturating_sub(n),
            }
        }
    };
    drain
        .or(async {
            Timer::after(Duration::from_secs(2)).await;
        })
        .await;
}
