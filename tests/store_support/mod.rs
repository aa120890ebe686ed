//! Helpers shared by the `tests/store_*.rs` files.
#![allow(dead_code)]

use std::cell::Cell;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hikwatch::store::StoreOptions;

/// 2025-01-01T00:00:00Z.
pub const T2025: u64 = 1_735_689_600_000;

thread_local! {
    /// The virtual wall clock of the current test thread, Unix ms.
    static WALL_MS: Cell<u64> = const { Cell::new(T2025) };
}

/// The virtual wall clock (per test thread).
pub fn wall() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(WALL_MS.with(Cell::get))
}

/// Sets the virtual wall clock.
pub fn set_wall(ms: u64) {
    WALL_MS.with(|w| w.set(ms));
}

/// Store options on the virtual wall clock with a pinned jitter seed.
pub fn opts() -> StoreOptions {
    StoreOptions {
        flush_interval: Duration::from_secs(30),
        start_spread: Duration::from_secs(30),
        jitter_seed: Some(7),
        wall_clock: wall,
    }
}

/// A fresh, empty temporary folder.
pub fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "hikwatch-{tag}-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    fs::create_dir_all(&d).expect("create temp dir");
    d
}

/// The qemu runner for this target, as `.cargo/config.toml` sets it.
fn qemu() -> Option<(&'static str, &'static str)> {
    if cfg!(target_arch = "arm") {
        Some(("qemu-arm", "/usr/arm-linux-gnueabihf"))
    } else if cfg!(target_arch = "aarch64") {
        Some(("qemu-aarch64", "/usr/aarch64-linux-gnu"))
    } else {
        None
    }
}

/// Spawns `exe` with `args`, prepared by `setup`. When the kernel cannot run it (a
/// cross-compiled test under qemu-user without binfmt_misc: ENOEXEC), runs it through the
/// same qemu runner cargo used.
pub fn spawn(exe: &Path, args: &[&str], setup: impl Fn(&mut Command)) -> io::Result<Child> {
    let mut c = Command::new(exe);
    c.args(args);
    setup(&mut c);
    match c.spawn() {
        Err(e) if e.raw_os_error() == Some(8) => {
            let Some((q, sysroot)) = qemu() else {
                return Err(e);
            };
            let mut c = Command::new(q);
            c.arg("-L").arg(sysroot).arg(exe).args(args);
            setup(&mut c);
            c.spawn()
        }
        r => r,
    }
}

/// Runs this test binary's test `name` in a child process (output captured).
pub fn run_self(name: &str, setup: impl Fn(&mut Command)) -> std::process::Output {
    let exe = std::env::current_exe().expect("current exe");
    let child = spawn(
        &exe,
        &[name, "--exact", "--nocapture", "--test-threads=1"],
        |c| {
            c.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            setup(c);
        },
    )
    .expect("spawn test binary");
    child.wait_with_output().expect("wait for child")
}

/// The `hikwatch` binary with `args`, output captured.
pub fn hikwatch(args: &[&str], setup: impl Fn(&mut Command)) -> std::process::Output {
    let exe = Path::new(env!("CARGO_BIN_EXE_hikwatch"));
    let child = spawn(exe, args, |c| {
        c.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        setup(c);
    })
    .expect("spawn hikwatch");
    child.wait_with_output().expect("wait for hikwatch")
}
