//! Bad state files (truncated, bad CRC, unknown version, garbage, empty, too large, a
//! directory or FIFO in its place, unreadable), for the daemon (`Store::open`: warning,
//! set aside, defaults) and for `hikwatch state show` (non-zero exit naming file + cause).

mod store_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hikwatch::sdk::ErrorClass;
use hikwatch::store::format::{self, Record};
use hikwatch::store::{CameraKey, CameraState, Origin, Store, StoreWarning, StoredError};
use store_support::{T2025, hikwatch, opts, run_self, set_wall, tempdir};

const CAMS: [CameraKey<'static>; 2] = [
    CameraKey {
        id: "cam-1",
        user: "admin",
        password: b"pw-1",
    },
    CameraKey {
        id: "cam-2",
        user: "admin",
        password: b"pw-2",
    },
];

fn good_file() -> Vec<u8> {
    let mut r = Record::fresh("cam-1");
    r.attempts = 4;
    r.next_due_ms = Some(252_000);
    r.lock_left_ms = Some(27 * 60_000);
    r.last_error = Some(StoredError::new(
        ErrorClass::Locked {
            secs_left: Some(1620),
        },
        153,
    ));
    r.device_session = Some("WebSession_0f=1e".into());
    format::encode(T2025, &[9; 16], &[r, Record::fresh("cam-2")]).expect("encode")
}

/// Each bad kind: bytes, and words its message must contain.
fn bad_files() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let good = good_file();
    let mut bad_crc = good.clone();
    bad_crc[20] ^= 0x01;
    let mut v9 = good.clone();
    v9[4] = 9;
    let mut too_large = b"HKWS\x02".to_vec();
    too_large.resize(format::MAX_FILE_LEN + 10, 0);
    vec![
        ("truncated", good[..good.len() / 2].to_vec(), "truncated"),
        ("bad CRC", bad_crc, "bad CRC"),
        ("unknown version", v9, "unknown format version 9"),
        (
            "garbage",
            b"\x7fELF garbage garbage".to_vec(),
            "not a hikwatch state file",
        ),
        ("empty", Vec::new(), "empty"),
        ("too large", too_large, "too large"),
    ]
}

fn assert_bad_file_handled(dir: &Path, path: &Path, needle: &str, label: &str) {
    set_wall(T2025 + 5_000);
    let t0 = Instant::now();
    let (mut store, loaded) = Store::open(path, opts(), &CAMS, t0);
    assert_eq!(loaded.warnings.len(), 1, "{label}: {:?}", loaded.warnings);
    let text = loaded.warnings[0].to_string();
    assert!(
        text.contains(&path.display().to_string()),
        "{label}: {text}"
    );
    assert!(text.contains(needle), "{label}: {text}");
    let aside = dir.join("state.corrupt-1735689605");
    assert!(
        text.contains(&format!("moved it aside to {}", aside.display())),
        "{label}: {text}"
    );
    assert!(matches!(
        &loaded.warnings[0],
        StoreWarning::BadFile { set_aside: Ok(p), .. } if *p == aside
    ));
    assert!(fs::symlink_metadata(&aside).is_ok(), "{label}: set aside");
    assert!(
        fs::symlink_metadata(path).is_err(),
        "{label}: original gone"
    );
    // Defaults for everyone, and the next flush makes a good file.
    for c in &loaded.cameras {
        assert_eq!(c.origin, Origin::New, "{label}");
        assert_eq!(c.state.attempts, 0, "{label}");
        assert!(c.state.next_due_in.expect("spread") < Duration::from_secs(30));
    }
    assert!(store.flush(t0).expect("flush"), "{label}");
    assert!(format::decode(&fs::read(path).expect("read")).is_ok());
}

#[test]
fn bad_files_are_set_aside_and_start_fresh() {
    for (label, bytes, needle) in bad_files() {
        let dir = tempdir("bad");
        let path = dir.join("state");
        fs::write(&path, &bytes).expect("write");
        assert_bad_file_handled(&dir, &path, needle, label);
        assert_eq!(
            fs::read(dir.join("state.corrupt-1735689605")).expect("kept"),
            bytes,
            "{label}: bad bytes kept for inspection"
        );
        fs::remove_dir_all(&dir).ok();
    }
}

#[test]
fn directory_or_fifo_in_place_is_set_aside_without_blocking() {
    let dir = tempdir("dir");
    let path = dir.join("state");
    fs::create_dir(&path).expect("mkdir");
    fs::write(path.join("inside"), b"x").expect("write");
    assert_bad_file_handled(&dir, &path, "a directory is in its place", "directory");
    fs::remove_dir_all(&dir).ok();

    let dir = tempdir("fifo");
    let path = dir.join("state");
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    assert_bad_file_handled(&dir, &path, "a FIFO is in its place", "fifo");
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn missing_file_is_a_quiet_first_start() {
    let dir = tempdir("missing");
    let (_, loaded) = Store::open(dir.join("state"), opts(), &CAMS, Instant::now());
    assert!(loaded.warnings.is_empty());
    assert!(loaded.clock.is_none() && loaded.from_version.is_none());
    assert!(loaded.cameras.iter().all(|c| c.origin == Origin::New));
    fs::remove_dir_all(&dir).ok();
}

/// Runs `checks(dir)` without root rights: directly when not root, else in a child
/// process of this test binary (test `child`, which reads the folder from `var`) that
/// runs as `nobody`, since root bypasses file modes.
fn unprivileged(dir: &Path, child: &str, var: &str, checks: fn(&Path)) {
    if is_root() {
        let out = run_self(child, |c| {
            c.env(var, dir).uid(65534).gid(65534);
        });
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "child {child} failed: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        checks(dir);
    }
}

/// Whether this process runs as root (the owner of `/proc/self` is our effective uid).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// In a child: the folder from `var`, and a check that we are not root.
fn child_dir(var: &str) -> Option<PathBuf> {
    let dir = std::env::var_os(var)?;
    assert!(!is_root(), "child must not be root");
    Some(PathBuf::from(dir))
}

#[test]
fn unreadable_file_is_reported_and_set_aside() {
    let dir = tempdir("eacces");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).expect("chmod");
    let path = dir.join("state");
    fs::write(&path, good_file()).expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).expect("chmod");
    unprivileged(
        &dir,
        "unreadable_child",
        "HIKWATCH_TEST_EACCES_DIR",
        unreadable_checks,
    );
    fs::remove_dir_all(&dir).ok();
}

/// Runs only as the child of [`unreadable_file_is_reported_and_set_aside`].
#[test]
fn unreadable_child() {
    if let Some(dir) = child_dir("HIKWATCH_TEST_EACCES_DIR") {
        unreadable_checks(&dir);
    }
}

#[test]
fn read_only_folder_still_starts() {
    let dir = tempdir("ro");
    let path = dir.join("state");
    fs::write(&path, b"junk").expect("write");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o555)).expect("chmod");
    unprivileged(
        &dir,
        "read_only_child",
        "HIKWATCH_TEST_RO_DIR",
        read_only_checks,
    );
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
    fs::remove_dir_all(&dir).ok();
}

/// Runs only as the child of [`read_only_folder_still_starts`].
#[test]
fn read_only_child() {
    if let Some(dir) = child_dir("HIKWATCH_TEST_RO_DIR") {
        read_only_checks(&dir);
    }
}

/// The bad file cannot be moved aside and no new file can be written: start-up still
/// goes on with defaults, the warning says so, and the flush error names the step.
fn read_only_checks(dir: &Path) {
    let path = dir.join("state");
    let t0 = Instant::now();
    let (mut store, loaded) = Store::open(&path, opts(), &CAMS, t0);
    assert_eq!(loaded.warnings.len(), 1);
    let text = loaded.warnings[0].to_string();
    assert!(text.contains("not a hikwatch state file"), "{text}");
    assert!(
        text.contains("could not move it aside") && text.contains("Permission denied"),
        "{text}"
    );
    assert!(loaded.cameras.iter().all(|c| c.origin == Origin::New));
    let err = store.flush(t0).expect_err("read-only folder");
    assert!(err.to_string().contains("create temp file"), "{err}");
}

fn unreadable_checks(dir: &Path) {
    let path = dir.join("state");
    // The CLI first: same cause, non-zero exit, nothing moved.
    let out = hikwatch(&["state", "show", path.to_str().expect("utf-8")], |_| {});
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&path.display().to_string()) && err.contains("Permission denied"),
        "{err}"
    );
    assert_bad_file_handled(dir, &path, "Permission denied", "unreadable");
}

fn show(args: &[&str]) -> (Option<i32>, String, String) {
    let out = hikwatch(args, |_| {});
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn state_show_prints_table_and_json() {
    let dir = tempdir("show");
    let path = dir.join("state");
    fs::write(&path, good_file()).expect("write");
    // One minute after the write.
    let now = (T2025 / 1000 + 60).to_string();
    let (code, out, err) = show(&["state", "show", path_str(&path), "--now", &now]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("format v3, 2 cameras"), "{out}");
    assert!(
        out.contains("written 2025-01-01T00:00:00Z (wall clock); 1m since the write"),
        "{out}"
    );
    let row = out
        .lines()
        .find(|l| l.starts_with("cam-1"))
        .expect("cam-1 row");
    assert!(row.contains("in 3m12s"), "{row}");
    assert!(row.contains("locked 26m left"), "{row}");
    assert!(row.contains("locked (153, device said 27m)"), "{row}");
    // A remembered session is shown by its presence only (it is a credential).
    assert!(row.contains("locked 26m left, session to end"), "{row}");
    assert!(!out.contains("WebSession"), "{out}");

    let (code, out, _) = show(&["state", "show", path_str(&path), "--json", "--now", &now]);
    assert_eq!(code, Some(0));
    assert!(
        out.starts_with('{') && out.trim_end().ends_with('}'),
        "{out}"
    );
    assert!(out.contains("\"next_due_in_ms\":192000"), "{out}");
    assert!(out.contains("\"device_session\":true"), "{out}");
    assert!(!out.contains("WebSession"), "{out}");
    assert!(out.contains("\"lock_left_ms\":1560000"), "{out}");
    assert!(out.contains("\"class\":\"locked\",\"code\":153"), "{out}");
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn state_show_reports_bad_files_and_usage() {
    let dir = tempdir("showbad");
    for (label, bytes, needle) in bad_files() {
        let path = dir.join("state");
        fs::write(&path, &bytes).expect("write");
        for json in [false, true] {
            let mut args = vec!["state", "show", path_str(&path)];
            if json {
                args.push("--json");
            }
            let (code, out, err) = show(&args);
            assert_eq!(code, Some(1), "{label}: {out}{err}");
            assert!(out.is_empty(), "{label}: {out}");
            assert!(
                err.contains(path_str(&path)) && err.contains(needle),
                "{label}: {err}"
            );
        }
        assert_eq!(
            fs::read(&path).expect("not moved"),
            bytes,
            "{label}: show is read-only"
        );
    }
    let missing: PathBuf = dir.join("nope");
    let (code, _, err) = show(&["state", "show", path_str(&missing)]);
    assert_eq!(code, Some(1));
    assert!(err.contains("nope: no such file"), "{err}");
    let (code, _, err) = show(&["state", "show", path_str(&dir)]);
    assert_eq!(code, Some(1));
    assert!(err.contains("a directory is in its place"), "{err}");
    for bad in [
        vec!["state"],
        vec!["state", "show"],
        vec!["state", "show", "a", "b"],
        vec!["state", "show", "a", "--bogus"],
        vec!["state", "show", "a", "--now", "soon"],
        vec!["state", "frobnicate"],
    ] {
        let (code, _, err) = show(&bad);
        assert_eq!(code, Some(64), "{bad:?}: {err}");
        assert!(
            err.contains("Usage: hikwatch state show FILE"),
            "{bad:?}: {err}"
        );
    }
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn daemon_state_reads_back_through_the_cli() {
    let dir = tempdir("roundcli");
    let path = dir.join("state");
    set_wall(T2025);
    let t0 = Instant::now();
    let (mut store, _) = Store::open(&path, opts(), &CAMS, t0);
    let st = CameraState {
        attempts: 2,
        auth_hold: true,
        last_error: Some(StoredError::new(
            ErrorClass::Auth {
                retries_left: Some(3),
            },
            1,
        )),
        ..CameraState::default()
    };
    store.update("cam-2", &st, t0).expect("update");
    store.flush(t0).expect("flush");
    let (code, out, err) = show(&["state", "show", path_str(&path), "--now", "1735689600"]);
    assert_eq!(code, Some(0), "{err}");
    let row = out
        .lines()
        .find(|l| l.starts_with("cam-2"))
        .expect("cam-2 row");
    assert!(
        row.contains("auth hold") && row.contains("auth (1, 3 tries left)"),
        "{row}"
    );
    fs::remove_dir_all(&dir).ok();
}
