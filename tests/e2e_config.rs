//! Issue 6.8, end to end: `hikwatch run` with an unusable configuration exits 78
//! (EX_CONFIG, which the unit does not restart) and says what is wrong: the file, the
//! line and the field, or the SDK file and the reason. Also a bad config on SIGHUP: logged,
//! the running one kept. x86_64 only (spawns the host binary; the SDK cases need the
//! real SDK folder layout).
#![cfg(target_arch = "x86_64")]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::{CameraSpec, Daemon, DaemonConfig, Signal, SpawnOptions, TempDir};
use simcam::{Fleet, FleetConfig};

const BIN: &str = env!("CARGO_BIN_EXE_hikwatch");

/// Runs `hikwatch run -c path` (killed after 20 s if it does not exit); exit code and
/// stderr.
fn run(path: &std::path::Path) -> (Option<i32>, String) {
    let mut child = Command::new(BIN)
        .args(["run", "-c"])
        .arg(path)
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hikwatch");
    let end = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if Instant::now() > end {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    (status.and_then(|s| s.code()), err)
}

fn fake_sdk(dir: &TempDir, lib: &[u8]) -> std::path::PathBuf {
    let sdk = dir.join("sdk");
    std::fs::create_dir_all(sdk.join("HCNetSDKCom")).unwrap();
    std::fs::write(sdk.join("libhcnetsdk.so"), lib).unwrap();
    sdk
}

#[test]
fn invalid_configs_exit_78_naming_file_line_and_field() {
    let dir = TempDir::new("e2e-78");
    let sdk = fake_sdk(&dir, b"");
    let head = format!("[sdk]\ndir = {:?}\n", sdk.display().to_string());
    let cam =
        "[[camera]]\nid = \"gate\"\nhost = \"192.0.2.1\"\nuser = \"admin\"\npassword = \"pw\"\n";
    let cases: &[(&str, String, &[&str])] = &[
        (
            "syntax",
            format!("{head}[supervisor\n"),
            &[":3: syntax error"],
        ),
        (
            "unknown key and range",
            format!(
                "{head}[supervisor]\nheartbeat_intervall = \"5s\"\nmax_concurrent_logins = 0\n{cam}"
            ),
            &[
                ":4: supervisor.heartbeat_intervall: unknown key \"heartbeat_intervall\"; did you mean \"heartbeat_interval\"?",
                ":5: supervisor.max_concurrent_logins: 0 is out of range 1..=1024",
            ],
        ),
        (
            "no password",
            format!("{head}[[camera]]\nid = \"gate\"\nhost = \"192.0.2.1\"\nuser = \"admin\"\n"),
            &[":3: camera[0].password: no password source"],
        ),
        (
            "strategy",
            format!("{head}[supervisor]\nstrategy = \"hybird\"\n{cam}"),
            &[
                ":4: supervisor.strategy: \"hybird\" is not one of poll | event | queue | hybrid; did you mean \"hybrid\"?",
            ],
        ),
        (
            "missing sdk",
            format!("[sdk]\ndir = \"/nonexistent/sdk\"\n{cam}"),
            &[":2: sdk.dir: /nonexistent/sdk is not a folder"],
        ),
    ];
    for (name, text, want) in cases {
        let path = dir.write(&format!("{}.toml", name.replace(' ', "-")), text);
        let (code, err) = run(&path);
        assert_eq!(code, Some(78), "{name}: {err}");
        let file = path.display().to_string();
        for w in *want {
            assert!(
                err.contains(&format!("{file}{w}")),
                "{name}: {w:?} missing in\n{err}"
            );
        }
        assert!(err.contains("not starting"), "{name}: {err}");
    }

    // A file that passes the config checks but is not a loadable SDK: still 78, with the
    // SDK file and the reason.
    let path = dir.write("not-elf.toml", &format!("{head}{cam}"));
    let (code, err) = run(&path);
    assert_eq!(code, Some(78), "{err}");
    assert!(err.contains("cannot use the SDK"), "{err}");
    assert!(err.contains("libhcnetsdk.so"), "{err}");
}

#[test]
fn a_bad_config_on_sighup_is_logged_and_the_running_one_kept() {
    let Some(sdk) = harness::RealSdk::find(env!("CARGO_MANIFEST_DIR")) else {
        return;
    };
    let f = Fleet::start(FleetConfig {
        cameras: 1,
        ..FleetConfig::default()
    })
    .expect("fleet");
    let dir = TempDir::new("e2e-badhup");
    let cfg = DaemonConfig::new(&sdk.dir).camera(CameraSpec::of(&f, 0, "gate"));
    let mut d = Daemon::spawn(
        BIN,
        &dir,
        &cfg,
        SpawnOptions {
            notify: true,
            ..SpawnOptions::default()
        },
    );
    d.assert_sdk_release(sdk, Duration::from_secs(20));
    assert!(
        d.wait_states(Duration::from_secs(20), &["gate"], "online")
            .is_some()
    );
    let path = d.config_path().to_path_buf();
    let good = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{good}\n[[camera]]\nid = \"gate\"\n")).unwrap();
    let cursor = d.log_len();
    let sd = d.systemd();
    let mark = sd.len();
    d.signal(Signal::SIGHUP);
    let line = d
        .wait_log(
            cursor,
            Duration::from_secs(10),
            "keeping the running configuration",
        )
        .expect("reload problem logged");
    assert!(
        line.text.contains(&path.display().to_string()),
        "{}",
        line.text
    );
    assert!(
        d.wait_log(cursor, Duration::from_secs(5), "duplicate id \"gate\"")
            .is_some(),
        "{}",
        d.log_text()
    );
    // Reloading, then ready again, and the camera never left.
    let (i, _, _) = sd
        .wait(mark, Duration::from_secs(5), |m| {
            m.starts_with("RELOADING=1")
        })
        .expect("RELOADING");
    assert!(
        sd.wait(i + 1, Duration::from_secs(5), |m| m.contains("READY=1"))
            .is_some()
    );
    assert_eq!(d.state_of("gate").as_deref(), Some("online"));
    assert_eq!(f.camera(0).stats().logins_ok, 1);
    d.signal(Signal::SIGTERM);
    assert_eq!(
        d.wait_exit(Duration::from_secs(25)).and_then(|s| s.code()),
        Some(0)
    );
}
