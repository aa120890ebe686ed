//! The status socket: JSON and table output, the server and client over a real unix
//! socket, shutdown, stale sockets, and `hikwatch status -c FILE [--json]`.

mod daemon_support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use daemon_support::TempDir;
use hikwatch::status::{
    CameraStatusReport, FleetStatusReport, Format, LastErrorReport, QueueStatus, StatusSource,
    bind, query, serve, states, status_command,
};

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn sample() -> FleetStatusReport {
    let mut s = FleetStatusReport::new(at(1_700_000_000));
    s.cameras = vec![
        CameraStatusReport {
            id: "gate-1".into(),
            state: states::ONLINE.into(),
            backend: "sdk".into(),
            since: at(1_700_000_100),
            last_error: None,
            login_attempts: 1,
            reconnects: 0,
            next_attempt: None,
        },
        CameraStatusReport {
            id: "lobby".into(),
            state: states::BACKOFF.into(),
            backend: "isapi".into(),
            since: at(1_700_000_500),
            last_error: Some(LastErrorReport {
                code: Some(7),
                message: "connect failed: \"device offline\"".into(),
                cause: Some("heartbeats-missed"),
                at: at(1_700_000_500),
            }),
            login_attempts: 12,
            reconnects: 3,
            next_attempt: Some(at(1_700_000_620)),
        },
        CameraStatusReport {
            id: "yard".into(),
            state: states::AUTH_HOLD.into(),
            backend: "sdk".into(),
            since: at(1_700_000_300),
            last_error: Some(LastErrorReport {
                code: None,
                message: "wrong password".into(),
                cause: None,
                at: at(1_700_000_300),
            }),
            login_attempts: 1,
            reconnects: 0,
            next_attempt: None,
        },
    ];
    s.queue = QueueStatus {
        depth: 2,
        capacity: 64,
        overflows: 1,
    };
    s.state_writes = 9;
    s
}

#[test]
fn json_is_valid_and_stable() {
    let now = at(1_700_000_600);
    let json = sample().to_json(now);
    let v: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["uptime_secs"], 600);
    let cams = v["cameras"].as_array().unwrap();
    assert_eq!(cams.len(), 3);
    assert_eq!(cams[0]["id"], "gate-1");
    assert_eq!(cams[0]["state"], "online");
    assert_eq!(cams[0]["since"], 1_700_000_100u64);
    assert!(cams[0]["last_error"].is_null());
    assert!(cams[0]["next_attempt"].is_null());
    assert_eq!(cams[1]["last_error"]["code"], 7);
    assert_eq!(
        cams[1]["last_error"]["message"],
        "connect failed: \"device offline\""
    );
    assert_eq!(cams[1]["last_error"]["at"], 1_700_000_500u64);
    // Added field: the loss path of a lost session, null for other errors.
    assert_eq!(cams[1]["last_error"]["cause"], "heartbeats-missed");
    assert!(cams[2]["last_error"]["cause"].is_null());
    assert!(cams[2]["last_error"].get("cause").is_some());
    assert_eq!(cams[1]["login_attempts"], 12);
    assert_eq!(cams[1]["reconnects"], 3);
    assert_eq!(cams[1]["next_attempt"], 1_700_000_620u64);
    assert!(cams[2]["last_error"]["code"].is_null());
    assert_eq!(v["queue"]["depth"], 2);
    assert_eq!(v["queue"]["capacity"], 64);
    assert_eq!(v["queue"]["overflows"], 1);
    assert_eq!(v["state_writes"], 9);
    assert_eq!(v["sdk_deadlines_missed"], 0);
    // Byte-exact for one camera: the documented interface.
    let mut one = FleetStatusReport::new(at(100));
    one.cameras.push(sample().cameras[0].clone());
    assert_eq!(
        one.to_json(at(160)),
        format!(
            "{{\"cameras\":[{{\"id\":\"gate-1\",\"state\":\"online\",\"backend\":\"sdk\",\"since\":1700000100,\"last_error\":null,\"login_attempts\":1,\"reconnects\":0,\"next_attempt\":null}}],\"queue\":{{\"depth\":0,\"capacity\":0,\"overflows\":0}},\"state_writes\":0,\"sdk_deadlines_missed\":0,\"version\":\"{}\",\"sdk\":null,\"uptime_secs\":60}}\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    one.sdk_handles = Some(hikwatch::status::SdkHandles {
        logins: 1,
        real_plays: 0,
    });
    let v: serde_json::Value = serde_json::from_str(&one.to_json(at(160))).expect("JSON");
    assert_eq!(v["sdk"]["logins"], 1);
    assert_eq!(v["sdk"]["real_plays"], 0);
}

#[test]
fn table_for_people() {
    let t = sample().to_table(at(1_700_000_600));
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(
        lines[..4],
        [
            "CAMERA  STATE      FOR    LOGINS  RECONNECTS  NEXT    LAST ERROR",
            "gate-1  online     8m20s  1       0           -       -",
            "lobby   backoff    1m40s  12      3           in 20s  [7] connect failed: \"device offline\" (1m40s ago)",
            "yard    auth-hold  5m     1       0           -       wrong password (5m ago)",
        ]
    );
    assert_eq!(
        lines[4],
        format!(
            "1/3 online; queue 2/64 (1 overflows); 9 state writes; 0 SDK deadlines missed; up 10m; hikwatch {}",
            env!("CARGO_PKG_VERSION")
        )
    );
}

/// Runs the server on `sock` in a thread until the returned sender is dropped.
fn start_server(
    sock: &std::path::Path,
) -> (
    smol::channel::Sender<()>,
    std::thread::JoinHandle<std::io::Result<()>>,
) {
    let listener = bind(sock).unwrap();
    let (tx, rx) = smol::channel::bounded::<()>(1);
    let h = std::thread::spawn(move || {
        smol::block_on(serve(listener, sample, async move {
            let _ = rx.recv().await;
        }))
    });
    (tx, h)
}

#[test]
fn server_and_client_over_a_unix_socket() {
    let dir = TempDir::new("status-srv");
    let sock = dir.join("status.sock");
    let (stop, h) = start_server(&sock);

    let json = query(&sock, Format::Json).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["cameras"][0]["state"], "online");
    let text = query(&sock, Format::Text).unwrap();
    assert!(text.starts_with("CAMERA  STATE"), "{text}");

    // A raw client that sends nothing and closes its write side gets JSON.
    let mut raw = UnixStream::connect(&sock).unwrap();
    raw.shutdown(std::net::Shutdown::Write).unwrap();
    let mut out = String::new();
    raw.read_to_string(&mut out).unwrap();
    assert!(
        serde_json::from_str::<serde_json::Value>(&out).is_ok(),
        "{out}"
    );

    // Garbage request: still JSON, server stays up.
    let mut raw = UnixStream::connect(&sock).unwrap();
    raw.write_all(&[0xff; 200]).unwrap();
    let mut out = String::new();
    raw.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("{\"cameras\":["));

    // The socket is 0660.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o660
    );

    // A second daemon must not steal a live socket.
    let e = bind(&sock).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);

    // Shutdown ends serve().
    drop(stop);
    h.join().unwrap().unwrap();

    // A stale socket file (no listener) is replaced.
    let listener = bind(&sock).unwrap();
    drop(listener);
    // A missing folder is created.
    let nested = dir.join("a/b/status.sock");
    drop(bind(&nested).unwrap());
    assert!(nested.exists());
    // A regular file is not replaced.
    let file = dir.write("not-a-socket", "x");
    assert_eq!(
        bind(&file).unwrap_err().kind(),
        std::io::ErrorKind::AlreadyExists
    );
}

#[test]
fn status_command_reads_the_socket_path_from_the_config() {
    let dir = TempDir::new("status-cli");
    dir.fake_sdk();
    let sock = dir.join("run/status.sock");
    std::fs::create_dir_all(dir.join("run")).unwrap();
    // The password file is unreadable garbage on purpose: `status` must not need it.
    let cfg = dir.write(
        "hikwatch.toml",
        "[sdk]\ndir = \"sdk\"\n[status]\nsocket = \"run/status.sock\"\n[[camera]]\nid = \"gate-1\"\nhost = \"192.0.2.10\"\nuser = \"admin\"\npassword_file = \"missing.pass\"\n",
    );

    // No daemon yet: 69 with a clear message.
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = status_command(
        &StatusSource::Config(cfg.clone()),
        Format::Text,
        &mut out,
        &mut err,
    );
    assert_eq!(code, hikwatch::exit::UNAVAILABLE);
    let err = String::from_utf8(err).unwrap();
    assert!(
        err.starts_with(&format!(
            "hikwatch status: cannot connect to {}: ",
            sock.display()
        )),
        "{err}"
    );
    assert!(err.trim_end().ends_with("(is hikwatch running?)"), "{err}");

    let (stop, h) = start_server(&sock);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = status_command(
        &StatusSource::Config(cfg.clone()),
        Format::Json,
        &mut out,
        &mut err,
    );
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["cameras"][0]["id"], "gate-1");
    assert_eq!(v["cameras"][0]["state"], "online");

    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert_eq!(
        status_command(
            &StatusSource::Config(cfg.clone()),
            Format::Text,
            &mut out,
            &mut err
        ),
        0
    );
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("CAMERA "), "{text}");
    assert!(text.contains("\ngate-1  online "), "{text}");

    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert_eq!(
        status_command(
            &StatusSource::Socket(sock.clone()),
            Format::Json,
            &mut out,
            &mut err
        ),
        0
    );
    assert!(
        String::from_utf8(out)
            .unwrap()
            .starts_with("{\"cameras\":[")
    );
    drop(stop);
    h.join().unwrap().unwrap();

    // Bad config: 78 (usage errors: the unit tests of `hikwatch::cli`).
    let bad = dir.write("bad.toml", "[status]\nsocket = 5\n");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert_eq!(
        status_command(&StatusSource::Config(bad), Format::Text, &mut out, &mut err),
        78
    );
    assert!(
        String::from_utf8(err)
            .unwrap()
            .contains(":2: status.socket: expected a string, found integer")
    );
}
