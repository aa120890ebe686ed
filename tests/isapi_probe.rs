//! `hikwatch probe --backend isapi` end to end: the built binary (under qemu for cross
//! builds) against simcam, with no vendor SDK anywhere: session login and Digest, wrong
//! password and lock, an unreachable camera, and the usage errors.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Output;

use serde_json::Value;
use simcam::{Fleet, FleetConfig};

fn password_file(name: &str, pw: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hikwatch-isapi-probe-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("tmp");
    let f = d.join(name);
    std::fs::write(&f, format!("{pw}\n")).expect("write");
    f
}

fn probe(addr: SocketAddr, pw: &str, extra: &[&str]) -> Output {
    let pwf = password_file(&format!("pw-{}", addr.port()), pw);
    harness::target_command(env!("CARGO_BIN_EXE_hikwatch"))
        .args(["probe", "--backend", "isapi", "--host"])
        .arg(addr.ip().to_string())
        .arg("--port")
        .arg(addr.port().to_string())
        .args(["--user", "admin", "--password-file"])
        .arg(&pwf)
        .args(extra)
        .output()
        .expect("run hikwatch")
}

fn json(o: &Output) -> Value {
    let out = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn fleet(threshold: u32) -> Fleet {
    Fleet::start(FleetConfig {
        cameras: 1,
        lockout_threshold: threshold,
        ..FleetConfig::default()
    })
    .expect("simcam")
}

#[test]
fn session_login_probe_succeeds_without_an_sdk() {
    let f = fleet(7);
    let cam = f.camera(0);
    let o = probe(f.addr(0), "hik12345", &[]);
    let t = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{t}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for needle in [
        "(isapi isapi): OK",
        &format!("serial     {}", cam.identity().serial),
        &format!("model      {}", cam.identity().model),
        "auth       session",
        "heartbeat  ",
    ] {
        assert!(t.contains(needle), "missing {needle:?} in\n{t}");
    }
    let s = cam.stats();
    assert_eq!(
        (s.logins_ok, s.heartbeats_ok, s.logouts, s.sessions),
        (1, 1, 1, 0),
        "login, heartbeat, logout, nothing left behind"
    );

    let o = probe(f.addr(0), "hik12345", &["--json"]);
    assert_eq!(o.status.code(), Some(0));
    let v = json(&o);
    assert_eq!(v["ok"], true);
    assert_eq!(v["backend"], "isapi");
    assert_eq!(v["auth"], "session");
    assert_eq!(v["sdk_version"], Value::Null);
    assert_eq!(v["device"]["serial"], cam.identity().serial.as_str());
    assert_eq!(v["error"], Value::Null);
}

#[test]
fn digest_probe_succeeds() {
    let f = fleet(7);
    f.camera(0).set_digest_only(true);
    let o = probe(f.addr(0), "hik12345", &["--json"]);
    let v = json(&o);
    assert_eq!(o.status.code(), Some(0), "{v}");
    assert_eq!(v["auth"], "digest");
    assert_eq!(v["device"]["model"], f.camera(0).identity().model.as_str());
}

#[test]
fn wrong_password_reports_attempts_left_then_the_lock() {
    let f = fleet(2);
    let o = probe(f.addr(0), "wrong", &["--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v = json(&o);
    assert_eq!(v["error"]["stage"], "login");
    assert_eq!(v["error"]["class"], "auth");
    assert_eq!(v["error"]["retries_left"], 1);
    let o = probe(f.addr(0), "wrong", &[]);
    assert_eq!(o.status.code(), Some(1));
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(t.contains("FAILED at login"), "{t}");
    assert!(t.contains("class locked"), "{t}");
    assert!(t.contains("locked for another 1800 s (30 min)"), "{t}");
    assert!(
        t.contains("advice     the camera has locked this IP"),
        "{t}"
    );
}

#[test]
fn unreachable_camera_is_a_network_failure() {
    // A port nobody listens on: bind, note it, close.
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    let o = probe(addr, "x", &["--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v = json(&o);
    assert_eq!(v["error"]["class"], "network", "{v}");
    assert_eq!(v["login_ms"], Value::Null);
}

#[test]
fn sdk_only_options_are_usage_errors_with_isapi() {
    let f = fleet(7);
    let o = probe(f.addr(0), "hik12345", &["--sdk", "/opt/sdk"]);
    assert_eq!(o.status.code(), Some(64));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("--sdk applies to --backend sdk only"), "{e}");
    let o = probe(f.addr(0), "hik12345", &["--mode", "isapi"]);
    assert_eq!(o.status.code(), Some(64));
    assert_eq!(f.camera(0).stats().requests, 0, "nothing was sent");
}

/// `probe -c FILE --camera ID`: the camera's own `backend = "isapi"` (the file's default
/// is the SDK, and there is no `[sdk]` table), or the file's; address, user and password
/// from the config.
#[test]
fn a_camera_of_a_config_file_is_probed_with_its_backend() {
    let f = Fleet::start(FleetConfig {
        cameras: 2,
        ..FleetConfig::default()
    })
    .expect("simcam");
    let pwf = password_file("pw-config", "hik12345");
    let camera = |id: &str, i: usize, own: &str| {
        format!(
            "[[camera]]\nid = {id:?}\nhost = \"{}\"\nport = {}\nuser = \"admin\"\n\
             password_file = {:?}\n{own}",
            f.addr(i).ip(),
            f.addr(i).port(),
            pwf.display().to_string()
        )
    };
    let dir = pwf.parent().expect("dir").to_path_buf();
    let probe_config = |name: &str, text: String, args: &[&str]| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write config");
        harness::target_command(env!("CARGO_BIN_EXE_hikwatch"))
            .args(["probe", "-c"])
            .arg(&path)
            .args(args)
            .output()
            .expect("run hikwatch")
    };
    let own = format!(
        "{}{}",
        camera("gate", 0, "backend = \"isapi\"\n"),
        camera("yard", 1, "backend = \"isapi\"\n")
    );
    let o = probe_config("own.toml", own.clone(), &["--camera", "yard", "--json"]);
    let v = json(&o);
    assert_eq!(o.status.code(), Some(0), "{v}");
    assert_eq!(v["backend"], "isapi", "{v}");
    assert_eq!(v["port"], f.addr(1).port(), "{v}");
    assert_eq!(v["sdk_version"], Value::Null);
    assert_eq!(
        v["device"]["serial"],
        f.camera(1).identity().serial.as_str()
    );
    assert_eq!(f.camera(1).stats().logins_ok, 1);
    assert_eq!(f.camera(1).stats().sessions, 0, "logged out");
    assert_eq!(
        f.camera(0).stats().requests,
        0,
        "the other camera untouched"
    );

    let file = format!("backend = \"isapi\"\n{}", camera("gate", 0, ""));
    let o = probe_config("file.toml", file, &["--camera", "gate"]);
    let t = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("(isapi isapi): OK"), "{t}");

    let o = probe_config("own2.toml", own, &["--camera", "door"]);
    assert_eq!(o.status.code(), Some(64));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("no camera with id \"door\""), "{e}");
}
