//! Prometheus exposition: checked by the real `promtool check metrics`, and served over
//! HTTP on loopback.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hikwatch::histogram::Histogram;
use hikwatch::metrics::{bind, render, serve};
use hikwatch::status::{
    CameraStatusReport, FleetStatusReport, LastErrorReport, QueueStatus, states,
};

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn sample() -> FleetStatusReport {
    let mut s = FleetStatusReport::new(at(1_700_000_000));
    let cam = |id: &str, state: &str, code: Option<u32>| CameraStatusReport {
        id: id.into(),
        state: state.into(),
        backend: "sdk".into(),
        since: at(1_700_000_100),
        last_error: code.map(|c| LastErrorReport {
            code: Some(c),
            message: "x".into(),
            cause: None,
            at: at(1_700_000_100),
        }),
        login_attempts: 5,
        reconnects: 2,
        next_attempt: None,
    };
    s.cameras = vec![
        cam("gate-1", states::ONLINE, None),
        cam("lobby", states::LOCKED, Some(153)),
        // A state outside the documented set still gets a series.
        cam("yard.east_2", "probing", Some(7)),
    ];
    for ms in [800, 4_000, 14_000, 16_000] {
        s.detection_latency.observe(Duration::from_millis(ms));
    }
    s.recovery_latency.observe(Duration::from_secs(42));
    s.queue = QueueStatus {
        depth: 3,
        capacity: 64,
        overflows: 2,
    };
    s.state_writes = 17;
    s.sdk_deadlines_missed = 1;
    s
}

/// Runs the real `promtool check metrics` on `text`; returns (success, its output).
fn promtool(text: &str) -> (bool, String) {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!(
            "cannot run promtool ({e}): install the Debian package `prometheus` (scripts/setup.sh does)"
        ),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let mut msg = String::from_utf8_lossy(&out.stdout).into_owned();
    msg.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), msg)
}

#[test]
fn exposition_passes_promtool_without_lint_findings() {
    let text = render(&sample(), at(1_700_000_600));
    let (ok, msg) = promtool(&text);
    assert!(ok, "promtool failed:\n{msg}\n---\n{text}");
    assert!(
        msg.trim().is_empty(),
        "promtool lint findings:\n{msg}\n---\n{text}"
    );
    // An empty fleet is valid too.
    let (ok, msg) = promtool(&render(&FleetStatusReport::new(at(0)), at(5)));
    assert!(ok && msg.trim().is_empty(), "{msg}");
    // And promtool really checks: a broken exposition fails.
    let (ok, _) = promtool("# TYPE x counter\nx{a=\"1\" 2\n");
    assert!(!ok);
}

#[test]
fn exposition_content() {
    let text = render(&sample(), at(1_700_000_600));
    let has = |line: &str| text.lines().any(|l| l == line);
    for line in [
        "hikwatch_uptime_seconds 600",
        "hikwatch_cameras 3",
        "hikwatch_camera_state{camera=\"gate-1\",state=\"online\"} 1",
        "hikwatch_camera_state{camera=\"gate-1\",state=\"backoff\"} 0",
        "hikwatch_camera_state{camera=\"lobby\",state=\"locked\"} 1",
        "hikwatch_camera_state{camera=\"yard.east_2\",state=\"probing\"} 1",
        "hikwatch_camera_login_attempts_total{camera=\"lobby\"} 5",
        "hikwatch_camera_reconnects_total{camera=\"lobby\"} 2",
        "hikwatch_camera_last_error_code{camera=\"gate-1\"} 0",
        "hikwatch_camera_last_error_code{camera=\"lobby\"} 153",
        "hikwatch_camera_state_since_timestamp_seconds{camera=\"gate-1\"} 1700000100",
        "hikwatch_detection_latency_seconds_bucket{le=\"1\"} 1",
        "hikwatch_detection_latency_seconds_bucket{le=\"5\"} 2",
        "hikwatch_detection_latency_seconds_bucket{le=\"15\"} 3",
        "hikwatch_detection_latency_seconds_bucket{le=\"30\"} 4",
        "hikwatch_detection_latency_seconds_bucket{le=\"+Inf\"} 4",
        "hikwatch_detection_latency_seconds_sum 34.8",
        "hikwatch_detection_latency_seconds_count 4",
        "hikwatch_recovery_latency_seconds_bucket{le=\"60\"} 1",
        "hikwatch_recovery_latency_seconds_count 1",
        "hikwatch_queue_depth 3",
        "hikwatch_queue_capacity 64",
        "hikwatch_queue_overflows_total 2",
        "hikwatch_state_writes_total 17",
        "hikwatch_sdk_deadlines_missed_total 1",
    ] {
        assert!(has(line), "missing {line:?} in\n{text}");
    }
    // Every documented state plus "probing" for yard, the documented ones for the others.
    let n = hikwatch::status::states::ALL.len();
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("hikwatch_camera_state{"))
            .count(),
        n * 3 + 1
    );
    // Label values are escaped.
    let mut s = FleetStatusReport::new(at(0));
    s.version = "1.0 \"quoted\" \\ back\nslash".into();
    let t = render(&s, at(0));
    assert!(
        t.contains("hikwatch_build_info{version=\"1.0 \\\"quoted\\\" \\\\ back\\nslash\"} 1"),
        "{t}"
    );
    assert!(promtool(&t).0);
    let _ = Histogram::latency();
}

fn http(addr: std::net::SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn http_listener_on_loopback() {
    let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.get_ref().local_addr().unwrap();
    let (tx, rx) = smol::channel::bounded::<()>(1);
    let h = std::thread::spawn(move || {
        smol::block_on(serve(listener, sample, async move {
            let _ = rx.recv().await;
        }))
    });

    let resp = http(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n",
    );
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    assert!(
        head.contains(&format!("Content-Length: {}", body.len())),
        "{head}"
    );
    assert!(body.contains("hikwatch_cameras 3\n"));
    let (ok, msg) = promtool(body);
    assert!(ok && msg.trim().is_empty(), "{msg}");

    let resp = http(addr, "HEAD /metrics HTTP/1.0\r\n\r\n");
    assert!(
        resp.starts_with("HTTP/1.1 200 OK\r\n") && resp.ends_with("\r\n\r\n"),
        "{resp}"
    );
    assert!(http(addr, "GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
    assert!(http(addr, "POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405 "));
    assert!(http(addr, "hello\r\n\r\n").starts_with("HTTP/1.1 400 "));
    let big = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(10_000));
    assert!(http(addr, &big).starts_with("HTTP/1.1 431 "));
    // Still serving after the bad requests.
    assert!(http(addr, "GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 OK"));

    drop(tx);
    h.join().unwrap().unwrap();
}
