//! `$NOTIFY_SOCKET` naming an abstract socket (`@name`), and a `$WATCHDOG_PID` that is not
//! ours (the watchdog then does not apply). One test in this file: the environment is
//! process-global.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

use hikwatch::watchdog::{Tick, Watchdog};

#[test]
fn from_env_abstract_socket_and_foreign_watchdog_pid() {
    let name = format!("hikwatch-test-notify-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let sock = UnixDatagram::bind_addr(&addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // SAFETY: the only test in this file; it runs before this process starts any thread
    // of its own, and nothing else in the process reads the environment concurrently.
    unsafe {
        std::env::set_var("NOTIFY_SOCKET", format!("@{name}"));
        std::env::set_var("WATCHDOG_USEC", "30000000");
        std::env::set_var("WATCHDOG_PID", (std::process::id() + 1).to_string());
    }
    let mut wd = Watchdog::from_env(None, Duration::from_secs(5)).unwrap();
    // WATCHDOG_PID names another process: no watchdog for us, but notify still works.
    assert_eq!(wd.systemd_timeout(), None);
    assert_eq!(wd.period(), None);
    let t0 = Instant::now();
    wd.ready(t0, "ready").unwrap();
    wd.progress().bump();
    assert_eq!(wd.tick(t0 + Duration::from_secs(60)).unwrap(), Tick::NotDue);
    wd.stop("bye").unwrap();
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"READY=1\nSTATUS=ready");
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"STOPPING=1\nSTATUS=bye");
}
