//! Prometheus text exposition (format 0.0.4), hand-written, and a minimal HTTP/1.1
//! listener for it. Off by default (`[status] metrics = "127.0.0.1:9184"` turns it on).
//!
//! Everything is rendered from a [`FleetStatusReport`] snapshot, so metrics and
//! `hikwatch status` always agree. Metric names and labels are listed in
//! `docs/interface.md`.

use std::fmt::Write as _;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_io::{Async, Timer};
use smol::future::FutureExt;
use smol::io::{AsyncReadExt, AsyncWriteExt};

use crate::histogram::Histogram;
use crate::status::{CameraStatusReport, FleetStatusReport, states};

/// Escapes a label value (`\`, `"`, newline).
fn label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn header(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

fn float(v: f64) -> String {
    if v.is_infinite() {
        "+Inf".into()
    } else {
        // Shortest round-trip form ("0.1", "15", "2.5").
        format!("{v}")
    }
}

fn histogram(o: &mut String, name: &str, help: &str, h: &Histogram) {
    header(o, name, "histogram", help);
    for (bound, n) in h.cumulative() {
        let _ = writeln!(o, "{name}_bucket{{le=\"{}\"}} {n}", float(bound));
    }
    let _ = writeln!(o, "{name}_sum {}", float(h.sum()));
    let _ = writeln!(o, "{name}_count {}", h.count());
}

/// Renders the snapshot as Prometheus text (format 0.0.4), relative to `now`.
pub fn render(s: &FleetStatusReport, now: SystemTime) -> String {
    let mut o = String::with_capacity(2048 + 512 * s.cameras.len());
    daemon_metrics(&mut o, s, now);
    camera_metrics(&mut o, &s.cameras);
    latency_metrics(&mut o, s);
    internal_metrics(&mut o, s);
    o
}

/// One series per camera: `name{camera="ID"} VALUE`.
fn per_camera(
    o: &mut String,
    cameras: &[CameraStatusReport],
    name: &str,
    kind: &str,
    help: &str,
    f: &dyn Fn(&CameraStatusReport) -> String,
) {
    header(o, name, kind, help);
    for c in cameras {
        o.push_str(name);
        o.push_str("{camera=\"");
        label(o, &c.id);
        let _ = writeln!(o, "\"}} {}", f(c));
    }
}

/// The daemon itself: build, uptime, camera count.
fn daemon_metrics(o: &mut String, s: &FleetStatusReport, now: SystemTime) {
    header(
        o,
        "hikwatch_build_info",
        "gauge",
        "hikwatch version, always 1.",
    );
    o.push_str("hikwatch_build_info{version=\"");
    label(o, &s.version);
    o.push_str("\"} 1\n");

    header(
        o,
        "hikwatch_uptime_seconds",
        "gauge",
        "Seconds since the daemon started.",
    );
    let up = now.duration_since(s.started).unwrap_or_default().as_secs();
    let _ = writeln!(o, "hikwatch_uptime_seconds {up}");

    header(o, "hikwatch_cameras", "gauge", "Cameras configured.");
    let _ = writeln!(o, "hikwatch_cameras {}", s.cameras.len());
}

/// Per camera: the state set, when it was entered, login and reconnect counters, the last
/// error code.
fn camera_metrics(o: &mut String, cameras: &[CameraStatusReport]) {
    // State set: one series per documented state, 1 for the current one; an
    // undocumented state gets its own series so it is never lost.
    header(
        o,
        "hikwatch_camera_state",
        "gauge",
        "1 for the state the camera is in, 0 for the others.",
    );
    for c in cameras {
        let extra = (!states::ALL.contains(&c.state.as_str())).then_some(c.state.as_str());
        for st in states::ALL.iter().copied().chain(extra) {
            o.push_str("hikwatch_camera_state{camera=\"");
            label(o, &c.id);
            o.push_str("\",state=\"");
            label(o, st);
            let _ = writeln!(o, "\"}} {}", u8::from(c.state == st));
        }
    }
    per_camera(
        o,
        cameras,
        "hikwatch_camera_state_since_timestamp_seconds",
        "gauge",
        "Unix time the camera entered its current state.",
        &|c| {
            c.since
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs()
                .to_string()
        },
    );
    per_camera(
        o,
        cameras,
        "hikwatch_camera_login_attempts_total",
        "counter",
        "Login attempts since start.",
        &|c| c.login_attempts.to_string(),
    );
    per_camera(
        o,
        cameras,
        "hikwatch_camera_reconnects_total",
        "counter",
        "Sessions re-established after a loss since start.",
        &|c| c.reconnects.to_string(),
    );
    per_camera(
        o,
        cameras,
        "hikwatch_camera_last_error_code",
        "gauge",
        "Vendor error code of the last error (0: none or no code).",
        &|c| {
            c.last_error
                .as_ref()
                .and_then(|e| e.code)
                .unwrap_or(0)
                .to_string()
        },
    );
}

/// The detection and recovery latency histograms.
fn latency_metrics(o: &mut String, s: &FleetStatusReport) {
    histogram(
        o,
        "hikwatch_detection_latency_seconds",
        "Time from a session breaking to the supervisor noticing.",
        &s.detection_latency,
    );
    histogram(
        o,
        "hikwatch_recovery_latency_seconds",
        "Time from noticing a broken session to being online again.",
        &s.recovery_latency,
    );
}

/// The job queue, state writes and missed SDK deadlines.
fn internal_metrics(o: &mut String, s: &FleetStatusReport) {
    header(
        o,
        "hikwatch_queue_depth",
        "gauge",
        "Jobs waiting in the queue.",
    );
    let _ = writeln!(o, "hikwatch_queue_depth {}", s.queue.depth);
    header(
        o,
        "hikwatch_queue_capacity",
        "gauge",
        "Capacity of the job queue.",
    );
    let _ = writeln!(o, "hikwatch_queue_capacity {}", s.queue.capacity);
    header(
        o,
        "hikwatch_queue_overflows_total",
        "counter",
        "Jobs refused because the queue was full.",
    );
    let _ = writeln!(o, "hikwatch_queue_overflows_total {}", s.queue.overflows);
    header(
        o,
        "hikwatch_state_writes_total",
        "counter",
        "State file writes.",
    );
    let _ = writeln!(o, "hikwatch_state_writes_total {}", s.state_writes);
    header(
        o,
        "hikwatch_sdk_deadlines_missed_total",
        "counter",
        "SDK calls that missed their deadline.",
    );
    let _ = writeln!(
        o,
        "hikwatch_sdk_deadlines_missed_total {}",
        s.sdk_deadlines_missed
    );
}

/// Binds the metrics listener.
///
/// # Errors
/// The OS error.
pub fn bind(addr: SocketAddr) -> io::Result<Async<TcpListener>> {
    Async::<TcpListener>::bind(addr)
}

/// Longest request head accepted.
const MAX_HEAD: usize = 8192;
/// How long a scraper may take for one exchange.
const CLIENT_DEADLINE: Duration = Duration::from_secs(5);

/// Serves `GET /metrics` until `shutdown` completes, one connection at a time (a scrape
/// every few seconds needs no more, and it bounds what a misbehaving client can cost).
///
/// # Errors
/// None in practice: accept errors are logged and retried after a pause.
pub async fn serve<F, S>(listener: Async<TcpListener>, snapshot: F, shutdown: S) -> io::Result<()>
where
    F: Fn() -> FleetStatusReport,
    S: Future<Output = ()>,
{
    let accept_loop = async {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let handled = handle(stream, &snapshot)
                        .or(async {
                            Timer::after(CLIENT_DEADLINE).await;
                            Err(io::ErrorKind::TimedOut.into())
                        })
                        .await;
                    if let Err(e) = handled {
                        log::debug!("metrics: client: {e}");
                    }
                }
                Err(e) => {
                    log::warn!("metrics: accept: {e}");
                    Timer::after(Duration::from_millis(100)).await;
                }
            }
        }
    };
    async {
        shutdown.await;
        Ok(())
    }
    .or(accept_loop)
    .await
}

/// The parts of an HTTP request line we look at.
fn parse_request_line(head: &[u8]) -> Option<(&str, &str)> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
    let mut parts = line.split(' ');
    let method = parts.next()?;
    let target = parts.next()?;
    let version = parts.next()?;
    version.starts_with("HTTP/1.").then_some((method, target))
}

async fn handle<F: Fn() -> FleetStatusReport>(
    mut stream: Async<TcpStream>,
    snapshot: &F,
) -> io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_HEAD {
            respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "text/plain; charset=utf-8",
                b"too large\n",
                true,
            )
            .await?;
            return crate::status::lingering_close(stream).await;
        }
    }
    let (status, body, send_body) = match parse_request_line(&head) {
        Some(("GET" | "HEAD", path)) if path == "/metrics" || path.starts_with("/metrics?") => {
            let text = render(&snapshot(), SystemTime::now());
            ("200 OK", text, !head.starts_with(b"HEAD"))
        }
        Some(("GET" | "HEAD", "/")) => (
            "200 OK",
            "hikwatch metrics: see /metrics\n".to_string(),
            !head.starts_with(b"HEAD"),
        ),
        Some(("GET" | "HEAD", _)) => ("404 Not Found", "not found\n".to_string(), true),
        Some(_) => ("405 Method Not Allowed", "GET only\n".to_string(), true),
        None => ("400 Bad Request", "bad request\n".to_string(), true),
    };
    let ctype = if status.starts_with("200") && body.starts_with('#') {
        "text/plain; version=0.0.4; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    respond(&mut stream, status, ctype, body.as_bytes(), send_body).await?;
    crate::status::lingering_close(stream).await
}

async fn respond(
    stream: &mut Async<TcpStream>,
    status: &str,
    ctype: &str,
    body: &[u8],
    send_body: bool,
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    if send_body {
        stream.write_all(body).await?;
    }
    stream.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut h = Histogram::new(&[1.0, 5.0]);
        for ms in [500, 1000, 3000, 7000, 9000] {
            h.observe(Duration::from_millis(ms));
        }
        assert_eq!(h.cumulative(), vec![(1.0, 2), (5.0, 3), (f64::INFINITY, 5)]);
        assert_eq!(h.count(), 5);
        assert!((h.sum() - 20.5).abs() < 1e-9);
    }

    #[test]
    fn request_lines() {
        assert_eq!(
            parse_request_line(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(("GET", "/metrics"))
        );
        assert_eq!(parse_request_line(b"GET /metrics\r\n"), None);
        assert_eq!(parse_request_line(b"\xff\xfe"), None);
    }
}
