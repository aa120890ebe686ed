//! Helpers shared by the `tests/store_*.rs` files.
#![allow(dead_code)]

use std::cell::Cell;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
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

/// Whether `exe` must run through qemu: true when this is a cross-compiled test run
/// under qemu-user without binfmt_misc, where the kernel cannot exec ARM binaries. Such
/// an exec fails with ENOEXEC, or (through glibc's posix_spawn under qemu) with a child
/// that exits 127 before running anything. Probed once per binary with `--help`, which
/// both libtest binaries and `hikwatch` answer with exit status 0.
fn needs_qemu(exe: &Path) -> bool {
    static CACHE: Mutex<Vec<(PathBuf, bool)>> = Mutex::new(Vec::new());
    if qemu().is_none() {
        return false;
    }
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, q)) = cache.iter().find(|(p, _)| p == exe) {
        return *q;
    }
    let q = match Command::new(exe)
        .arg("--help")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(st) => st.code() == Some(127),
        Err(e) => e.raw_os_error() == Some(8),
    };
    cache.push((exe.to_owned(), q));
    q
}

/// Spawns `exe` with `args`, prepared by `setup`, through the target's qemu runner when
/// the kernel cannot run it directly (see [`needs_qemu`]).
pub fn spawn(exe: &Path, args: &[&str], setup: impl Fn(&mut Command)) -> io::Result<Child> {
    let mut c = match qemu() {
        Some((q, sysroot)) if needs_qemu(exe) => {
            let mut c = Command::new(q);
            c.arg("-L").arg(sysroot).arg(exe);
            c
        }
        _ => Command::new(exe),
    };
    c.args(args);
    setup(&mut c);
    c.spawn()
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
