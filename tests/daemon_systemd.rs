//! The systemd unit: the real `systemd-analyze security --offline=yes` rates it <= 2.0,
//! every remaining exposure is explained in a comment, `systemd-analyze verify` is clean,
//! and the restart/watchdog/credential settings the daemon relies on are there.

mod daemon_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use daemon_support::TempDir;

fn unit_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/hikwatch.service")
}

fn systemd_analyze(args: &[&str]) -> (bool, String, String) {
    let out = Command::new("systemd-analyze")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run systemd-analyze ({e}): it comes with the Debian package `systemd`")
        });
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `Key=value` lines of the unit (comments skipped), in order.
fn settings(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('[') && !l.is_empty())
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn get<'a>(s: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    s.iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn one<'a>(s: &'a [(String, String)], key: &str) -> &'a str {
    let v = get(s, key);
    assert_eq!(v.len(), 1, "{key}: {v:?}");
    v[0]
}

fn secs(v: &str) -> u64 {
    let v = v.trim();
    if let Some(n) = v.strip_suffix("min") {
        n.parse::<u64>().unwrap() * 60
    } else if let Some(n) = v.strip_suffix('s') {
        n.parse().unwrap()
    } else {
        v.parse().unwrap()
    }
}

#[test]
fn security_exposure_is_at_most_2_and_explained() {
    let unit = unit_path();
    let (_, out, err) = systemd_analyze(&["security", "--offline=yes", unit.to_str().unwrap()]);
    let all = format!("{out}{err}");
    let line = all
        .lines()
        .find(|l| l.contains("Overall exposure level for hikwatch.service:"))
        .unwrap_or_else(|| panic!("no overall exposure in:\n{all}"));
    let value: f64 = line
        .split(':')
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot parse {line:?}"));
    assert!(value <= 2.0, "exposure {value} > 2.0:\n{all}");

    // Every remaining finding (a ✗ line with a non-zero weight) is named in a comment.
    let text = std::fs::read_to_string(&unit).unwrap();
    let comments: String = text
        .lines()
        .filter(|l| l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let mut findings = 0;
    for l in all.lines().filter(|l| l.starts_with('✗')) {
        let name = l.trim_start_matches('✗').split_whitespace().next().unwrap();
        findings += 1;
        assert!(
            comments.contains(name),
            "exposure {name:?} is not explained in a comment of the unit"
        );
    }
    assert!(findings > 0, "parsed no findings from:\n{all}");
}

#[test]
fn verify_is_clean() {
    // verify checks that ExecStart exists: point it at a stand-in executable.
    let dir = TempDir::new("unit-verify");
    let exe = dir.write("hikwatch", "#!/bin/sh\nexit 0\n");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let text = std::fs::read_to_string(unit_path())
        .unwrap()
        .replace("/usr/bin/hikwatch", exe.to_str().unwrap());
    let copy = dir.write("hikwatch.service", &text);
    let (ok, out, err) = systemd_analyze(&["verify", "--man=no", copy.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert_eq!(
        format!("{out}{err}").trim(),
        "",
        "systemd-analyze verify complained"
    );
}

#[test]
fn lifecycle_settings() {
    let text = std::fs::read_to_string(unit_path()).unwrap();
    let s = settings(&text);
    assert_eq!(one(&s, "Type"), "notify");
    assert_eq!(one(&s, "Restart"), "always");
    let restart_sec = secs(one(&s, "RestartSec"));
    assert!(restart_sec >= 5);
    let watchdog = secs(one(&s, "WatchdogSec"));
    assert!((10..=120).contains(&watchdog), "{watchdog}");
    // Our own restarts can never reach the start limit: a crash loop backs off to
    // RestartSec instead of being locked out.
    let interval = secs(one(&s, "StartLimitIntervalSec"));
    let burst: u64 = one(&s, "StartLimitBurst").parse().unwrap();
    assert!(interval > 0);
    assert!(
        burst * restart_sec > interval,
        "burst {burst} x {restart_sec}s <= {interval}s"
    );
    assert_eq!(
        one(&s, "RestartPreventExitStatus"),
        hikwatch::exit::CONFIG.to_string()
    );
    assert_eq!(one(&s, "StateDirectory"), "hikwatch");
    assert_eq!(one(&s, "RuntimeDirectory"), "hikwatch");
    assert!(!get(&s, "LoadCredential").is_empty());
    // The daemon's defaults live where the unit creates folders.
    let state = hikwatch::config::StateConfig::default().path;
    let socket = hikwatch::config::StatusConfig::default().socket;
    assert!(state.starts_with("/var/lib/hikwatch"));
    assert!(socket.starts_with("/run/hikwatch"));
    // Network families the daemon and the SDK need.
    let fams = one(&s, "RestrictAddressFamilies");
    for f in ["AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"] {
        assert!(
            fams.split_whitespace().any(|x| x == f),
            "{f} missing in {fams}"
        );
    }
    assert!(one(&s, "ExecStart").contains(" run -c "));
}

#[test]
fn support_files_exist() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    let sysusers = std::fs::read_to_string(dir.join("hikwatch.sysusers.conf")).unwrap();
    assert!(sysusers.lines().any(|l| l.starts_with("u hikwatch ")));
    let tmpfiles = std::fs::read_to_string(dir.join("hikwatch.tmpfiles.conf")).unwrap();
    assert!(tmpfiles.contains("d /etc/hikwatch/credentials 0700 root root"));
    let rules = std::fs::read_to_string(dir.join("60-hikwatch-watchdog.rules")).unwrap();
    assert!(rules.contains("GROUP=\"hikwatch\""));
}
