//! `hikwatch probe` end to end: the built binary against the C stand-in (every target;
//! under qemu for cross builds) and, on x86_64 and aarch64, against simcam with the
//! vendor's SDK (see `harness::vendor_sdk`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The built binary; cross builds run it through the same qemu as the test itself.
fn hikwatch() -> Command {
    harness::target_command(env!("CARGO_BIN_EXE_hikwatch"))
}

fn password_file(name: &str, pw: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hikwatch-probe-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("tmp");
    let f = d.join(name);
    std::fs::write(&f, format!("{pw}\n")).expect("write");
    f
}

fn probe(sdk: &Path, host: &str, port: u16, pwf: &Path, extra: &[&str]) -> Output {
    hikwatch()
        .arg("probe")
        .arg("--sdk")
        .arg(sdk)
        .args([
            "--host",
            host,
            "--port",
            &port.to_string(),
            "--user",
            "admin",
        ])
        .arg("--password-file")
        .arg(pwf)
        .args(extra)
        .output()
        .expect("run hikwatch")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn stand_in_success_human_and_json() {
    let pwf = password_file("ok", "pw");
    let o = probe(
        &fakesdk::sdk_dir(),
        "serial=PRB1;model=DS-PROBE",
        8000,
        &pwf,
        &[],
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let version = format!("HCNetSDK {}", fakesdk::VERSION);
    for needle in [
        ": OK",
        "model      DS-PROBE",
        "serial     PRB1",
        "firmware   V5.7.0 build 230410",
        "login      ",
        "heartbeat  ",
        version.as_str(),
    ] {
        assert!(t.contains(needle), "missing {needle:?} in\n{t}");
    }
    let o = probe(
        &fakesdk::sdk_dir(),
        "serial=PRB1;model=DS-PROBE",
        8000,
        &pwf,
        &["--json"],
    );
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{t}");
    assert!(t.starts_with("{\"ok\":true,"), "{t}");
    assert!(t.contains("\"model\":\"DS-PROBE\""), "{t}");
    assert!(t.contains("\"serial\":\"PRB1\""), "{t}");
    assert!(t.contains("\"error\":null"), "{t}");
}

#[test]
fn stand_in_failures_are_classified_with_advice() {
    let pwf = password_file("f", "pw");
    let o = probe(&fakesdk::sdk_dir(), "lock=900", 8000, &pwf, &[]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("FAILED at login"), "{t}");
    assert!(t.contains("error 153, class locked"), "{t}");
    assert!(t.contains("locked for another 900 s (15 min)"), "{t}");
    assert!(
        t.contains("advice     the camera has locked this IP"),
        "{t}"
    );

    let o = probe(&fakesdk::sdk_dir(), "err=7", 8000, &pwf, &["--json"]);
    let t = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("\"code\":7,\"class\":\"network\""), "{t}");

    let o = probe(&fakesdk::sdk_dir(), "hb=10", 8000, &pwf, &[]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("FAILED at heartbeat") && t.contains("class timeout"),
        "{t}"
    );
}

#[test]
fn bad_inputs_are_named() {
    let pwf = password_file("b", "pw");
    let o = probe(Path::new("/nonexistent/sdk"), "x", 8000, &pwf, &[]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("FAILED at sdk") && t.contains("/nonexistent/sdk"),
        "{t}"
    );
    let o = probe(
        &fakesdk::sdk_dir(),
        "x",
        8000,
        Path::new("/nonexistent/pw"),
        &[],
    );
    let t = text(&o);
    assert!(t.contains("cannot read /nonexistent/pw"), "{t}");
    let o = hikwatch()
        .args(["probe", "--host", "x"])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(64));
    assert!(text(&o).contains("--sdk is required"));
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod real {
    use super::*;
    use harness::RealSdk;
    use simcam::{Fleet, FleetConfig};

    #[test]
    fn real_sdk_against_simcam() {
        let Some(sdk) = RealSdk::find(env!("CARGO_MANIFEST_DIR")) else {
            return;
        };
        let sdk_dir = || sdk.dir.clone();
        let fleet = Fleet::start(FleetConfig {
            cameras: 1,
            lockout_threshold: 5,
            ..FleetConfig::default()
        })
        .expect("fleet");
        let id = fleet.camera(0).identity().clone();
        let addr = fleet.addr(0);
        let host = addr.ip().to_string();
        let good = password_file("real-ok", &fleet.config().password);
        let o = probe(&sdk_dir(), &host, addr.port(), &good, &["--mode", "isapi"]);
        let t = text(&o);
        assert!(o.status.success(), "{t}");
        assert!(t.contains(&format!("model      {}", id.model)), "{t}");
        assert!(t.contains(&format!("serial     {}", id.serial)), "{t}");
        assert!(t.contains(&format!("mac        {}", id.mac)), "{t}");
        sdk.assert_named_in(&t);
        let stats = fleet.camera(0).stats();
        assert_eq!(
            (stats.logins_ok, stats.logouts),
            (1, 1),
            "one login, one logout"
        );
        assert!(stats.heartbeats_ok >= 1);

        let o = probe(
            &sdk_dir(),
            &host,
            addr.port(),
            &good,
            &["--mode", "isapi", "--json"],
        );
        let t = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{t}");
        // stdout is exactly one JSON document: the vendor libraries' own diagnostic
        // lines (e.g. "loop[2] find 2 mac and 3 ip") must not end up in it.
        let v: serde_json::Value =
            serde_json::from_str(&t).unwrap_or_else(|e| panic!("--json stdout: {e}: {t:?}"));
        assert_eq!(v["device"]["serial"], id.serial.as_str(), "{v}");

        let bad = password_file("real-bad", "wrong");
        let o = probe(&sdk_dir(), &host, addr.port(), &bad, &["--mode", "isapi"]);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(1), "{t}");
        assert!(t.contains("error 1, class auth"), "{t}");
        assert!(t.contains("4 attempts left"), "{t}");
    }
}
