//! Issue 6.7: the demo binary end to end (the real `hikwatch` binary, the real SDK,
//! simcam in the demo's process). `--quick` runs the whole fault schedule in about 40 s
//! and must pass its own summary; Ctrl-C mid-run must still print the summary, stop the
//! daemon with SIGTERM and leave nothing behind. x86_64 only (the real SDK is an x86_64
//! build).
#![cfg(target_arch = "x86_64")]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const DEMO: &str = env!("CARGO_BIN_EXE_demo");

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shipped `hikwatch` binary (no test or benchmark features), built (or found up to
/// date) by cargo: it belongs to another package of the workspace, so this test cannot
/// name it with `CARGO_BIN_EXE_*`. It is built in a target directory of its own: in the
/// shared one it would replace `target/debug/hikwatch`, the test build with the benchmark
/// peers that later end-to-end tests of the workspace run.
fn hikwatch() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--locked", "-p", "hikwatch", "--bin", "hikwatch"])
        .arg("--manifest-path")
        .arg(workspace().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(workspace().join("target/demo-test"))
        .arg("--message-format=json-render-diagnostics")
        .stderr(Stdio::inherit())
        .output()
        .expect("run cargo build for hikwatch");
    assert!(out.status.success(), "cargo build -p hikwatch failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == "hikwatch")
        .find_map(|v| v["executable"].as_str().map(PathBuf::from))
        .expect("cargo reported no hikwatch executable")
}

/// The demo with the real SDK and `hikwatch`, plain output, stdout lines sent to a
/// channel as they come.
fn spawn_demo(extra: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let sdk = harness::real_sdk_dir(workspace().to_str().expect("UTF-8 path"));
    let mut child = Command::new(DEMO)
        .args(["--plain", "--sdk"])
        .arg(&sdk)
        .arg("--hikwatch")
        .arg(hikwatch())
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the demo");
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Everything until the demo exits (killed after `timeout`): exit code, stdout, stderr.
fn finish(
    mut child: Child,
    rx: &mpsc::Receiver<String>,
    seen: Vec<String>,
    timeout: Duration,
) -> (Option<i32>, String, String) {
    let end = Instant::now() + timeout;
    let mut lines = seen;
    let status = loop {
        while let Ok(l) = rx.try_recv() {
            lines.push(l);
        }
        if let Ok(Some(s)) = child.try_wait() {
            break Some(s);
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // The reader thread ends at EOF.
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(2)) {
        lines.push(l);
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let out = lines.join("\n");
    assert!(
        status.is_some(),
        "the demo did not end within {timeout:?}\n{out}\n{err}"
    );
    (status.and_then(|s| s.code()), out, err)
}

/// The value after `key` on its line of the summary.
fn field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key:?} line in\n{out}"))
}

/// The daemon pid and the temp folder, from the demo's banner.
fn banner(out: &str) -> (i32, PathBuf) {
    let pid = out
        .lines()
        .find_map(|l| {
            let rest = l.trim().strip_prefix("daemon:")?;
            rest.rsplit_once("(pid ")?.1.strip_suffix(')')?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no daemon pid in\n{out}"));
    let config = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("config:"))
        .map(|c| PathBuf::from(c.trim()))
        .unwrap_or_else(|| panic!("no config path in\n{out}"));
    let dir = config.parent().expect("config folder").to_path_buf();
    (pid, dir)
}

/// Nothing left behind: the daemon is gone (reaped) and the temp folder removed.
fn assert_clean(out: &str) {
    let (pid, dir) = banner(out);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "hikwatch (pid {pid}) still exists after the demo\n{out}"
    );
    assert!(!dir.exists(), "{} left behind\n{out}", dir.display());
}

#[test]
fn quick_demo_detects_and_recovers_every_fault_without_lockouts() {
    let (child, rx) = spawn_demo(&["--quick"]);
    let (code, out, err) = finish(child, &rx, Vec::new(), Duration::from_secs(150));
    eprintln!("{out}");
    assert_eq!(code, Some(0), "demo failed\n{out}\n{err}");

    // Every fault: injected, detected, repaired and recovered (times, never "never").
    let summary = out
        .split_once("==================== summary")
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("no summary\n{out}"));
    for fault in [
        "wrong password ",
        "power-off ",
        "group power-off ",
        "silent cut ",
    ] {
        let row = summary
            .lines()
            .find(|l| l.trim_start().starts_with(fault))
            .unwrap_or_else(|| panic!("no {fault:?} row\n{summary}"));
        let cols: Vec<&str> = row.split_whitespace().collect();
        let times: Vec<&&str> = cols
            .iter()
            .filter(|c| c.starts_with("t+") || c.starts_with('+'))
            .collect();
        // injected, detected, repaired, recovered.
        assert_eq!(times.len(), 4, "{fault}: not every time is there: {row}");
        assert!(!row.contains("never"), "{row}");
    }
    // The wrong password ends in an auth-hold with a try to spare, and never a lock.
    let wrong = summary
        .lines()
        .find(|l| l.contains("wrong passwords at the camera"))
        .unwrap_or_else(|| panic!("no wrong-password note\n{summary}"));
    assert!(wrong.trim_start().starts_with("auth-hold +"), "{wrong}");
    assert!(
        wrong.ends_with("wrong passwords at the camera (it locks at 7)"),
        "{wrong}"
    );
    let wrong_count: u32 = wrong
        .split("; ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no wrong-password count in {wrong}"));
    assert!(
        (1..7).contains(&wrong_count),
        "{wrong_count} wrong passwords"
    );
    assert_eq!(field(&out, "lockouts at the cameras:"), "0");
    assert_eq!(field(&out, "cameras online at the end:"), "16/16");
    let logouts = field(&out, "logouts at SIGTERM:");
    assert!(logouts.ends_with("(16/16 cameras)"), "{logouts}");
    assert_eq!(field(&out, "sessions left at the cameras:"), "0");
    assert!(
        field(&out, "hikwatch exit code:").starts_with("0 ("),
        "{out}"
    );
    // Login attempts per camera and in total, as hikwatch and the cameras counted them.
    let total = field(&out, "  total");
    let (ours, theirs) = total.split_once(" / ").expect("total a / b");
    let (ours, theirs): (u32, u32) = (ours.parse().unwrap(), theirs.parse().unwrap());
    assert!(ours >= 16 && theirs >= 16, "{total}");
    assert_eq!(field(&out, "result:"), "PASS");
    assert_clean(&out);
}

#[test]
fn ctrl_c_still_prints_the_summary_and_stops_the_daemon_with_sigterm() {
    let (child, rx) = spawn_demo(&["--quick"]);
    // Wait for the fault phase, then Ctrl-C (SIGINT to the demo only: the daemon runs in a
    // process group of its own).
    let mut seen = Vec::new();
    let end = Instant::now() + Duration::from_secs(90);
    while !seen.iter().any(|l: &String| l.contains("faults begin")) {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => seen.push(l),
            Err(_) => panic!("the fault phase never began\n{}", seen.join("\n")),
        }
    }
    std::thread::sleep(Duration::from_secs(3));
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, harness::Signal::SIGINT).expect("SIGINT the demo");
    let (code, out, err) = finish(child, &rx, seen, Duration::from_secs(60));
    eprintln!("{out}");
    assert_eq!(code, Some(130), "{out}\n{err}");
    assert!(out.contains("SIGINT received: ending early"), "{out}");
    assert!(out.contains("stopping hikwatch with SIGTERM"), "{out}");
    assert!(out.contains("hikwatch exited (exit status: 0)"), "{out}");
    assert!(out.contains("==================== summary"), "{out}");
    assert_eq!(field(&out, "lockouts at the cameras:"), "0");
    assert_eq!(field(&out, "sessions left at the cameras:"), "0");
    assert!(
        field(&out, "hikwatch exit code:").starts_with("0 ("),
        "{out}"
    );
    assert_eq!(field(&out, "result:"), "ENDED EARLY");
    assert_clean(&out);
}

#[test]
fn bad_usage_and_a_missing_sdk_are_explained() {
    let out = Command::new(DEMO).arg("--bogus").output().expect("demo");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown argument \"--bogus\"") && err.contains("usage:"),
        "{err}"
    );

    let out = Command::new(DEMO)
        .args(["--quick", "--sdk", "/nonexistent/sdk"])
        .output()
        .expect("demo");
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/sdk") && err.contains("scripts/fetch-sdk.sh"),
        "{err}"
    );
}
