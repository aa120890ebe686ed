//! `Watchdog::from_env` with a path `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and our own
//! `$WATCHDOG_PID`. One test in this file: the environment is process-global.

mod daemon_support;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use daemon_support::TempDir;
use hikwatch::watchdog::{Tick, Watchdog};

#[test]
fn from_env_path_socket_and_watchdog_usec() {
    let dir = TempDir::new("notify-env");
    let path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // SAFETY: the only test in this file; it runs before this process starts any thread
    // of its own, and nothing else in the process reads the environment concurrently.
    unsafe {
        std::env::set_var("NOTIFY_SOCKET", &path);
        std::env::set_var("WATCHDOG_USEC", "30000000");
        std::env::set_var("WATCHDOG_PID", std::process::id().to_string());
    }
    let mut wd = Watchdog::from_env(None, Duration::from_secs(5)).unwrap();
    assert_eq!(wd.systemd_timeout(), Some(Duration::from_secs(30)));
    assert_eq!(wd.period(), Some(Duration::from_secs(15)));
    let t0 = Instant::now();
    wd.ready(t0, "ready").unwrap();
    wd.progress().bump();
    assert_eq!(wd.tick(t0 + Duration::from_secs(15)).unwrap(), Tick::Pinged);
    wd.stop("bye").unwrap();
    let mut buf = [0u8; 256];
    let mut got = Vec::new();
    for _ in 0..3 {
        let n = sock.recv(&mut buf).unwrap();
        got.push(String::from_utf8(buf[..n].to_vec()).unwrap());
    }
    assert_eq!(
        got,
        [
            "READY=1\nSTATUS=ready",
            "WATCHDOG=1",
            "STOPPING=1\nSTATUS=bye"
        ]
    );
}
