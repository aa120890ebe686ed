//! The watchdog against a fake systemd (a bound unix datagram socket) and a fake hardware
//! watchdog (a plain file): exact datagrams, no ping without progress, stalled loops and
//! blocked executors stop the pings, keepalives and the magic close.

mod daemon_support;

use std::os::unix::net::UnixDatagram;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use daemon_support::TempDir;
use hikwatch::watchdog::{HwWatchdog, Notifier, NotifyState, Tick, Watchdog, run};

/// A fake systemd: the bound socket and a non-blocking drain.
struct FakeSystemd {
    sock: UnixDatagram,
    _dir: TempDir,
    path: std::path::PathBuf,
}

impl FakeSystemd {
    fn new(tag: &str) -> FakeSystemd {
        let dir = TempDir::new(tag);
        let path = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_nonblocking(true).unwrap();
        FakeSystemd {
            sock,
            _dir: dir,
            path,
        }
    }

    fn notifier(&self) -> Notifier {
        Notifier::new(Some(self.path.as_os_str())).unwrap()
    }

    /// Every datagram waiting, in order.
    fn drain(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.sock.recv(&mut buf) {
            out.push(String::from_utf8(buf[..n].to_vec()).unwrap());
        }
        out
    }
}

#[test]
fn exact_datagrams_and_no_ping_without_progress() {
    let sd = FakeSystemd::new("wd-exact");
    let mut wd = Watchdog::new(
        sd.notifier(),
        Some(Duration::from_secs(30)),
        None,
        Duration::from_secs(5),
    );
    assert_eq!(wd.period(), Some(Duration::from_secs(15)));
    let progress = wd.progress();
    let t0 = Instant::now();

    wd.ready(t0, "starting: 4 cameras").unwrap();
    assert_eq!(sd.drain(), ["READY=1\nSTATUS=starting: 4 cameras"]);

    // Not due yet, even with progress.
    progress.bump();
    assert_eq!(wd.tick(t0 + Duration::from_secs(14)).unwrap(), Tick::NotDue);
    assert!(sd.drain().is_empty());
    // Due and progress was made: ping.
    assert_eq!(wd.tick(t0 + Duration::from_secs(15)).unwrap(), Tick::Pinged);
    assert_eq!(sd.drain(), ["WATCHDOG=1"]);
    // Due again, but the loop made no progress since: withheld, and it stays withheld.
    assert_eq!(
        wd.tick(t0 + Duration::from_secs(30)).unwrap(),
        Tick::Stalled {
            since: Duration::from_secs(15)
        }
    );
    assert_eq!(
        wd.tick(t0 + Duration::from_secs(40)).unwrap(),
        Tick::Stalled {
            since: Duration::from_secs(25)
        }
    );
    assert!(sd.drain().is_empty());
    // Progress resumes: the very next tick pings.
    progress.bump();
    progress.bump();
    assert_eq!(wd.tick(t0 + Duration::from_secs(41)).unwrap(), Tick::Pinged);
    assert_eq!(wd.tick(t0 + Duration::from_secs(42)).unwrap(), Tick::NotDue);
    assert_eq!(sd.drain(), ["WATCHDOG=1"]);

    wd.status("3/4 online").unwrap();
    wd.notifier()
        .notify(&[NotifyState::ExtendTimeout(Duration::from_secs(20))])
        .unwrap();
    wd.stop("stopping: SIGTERM").unwrap();
    assert_eq!(
        sd.drain(),
        [
            "STATUS=3/4 online",
            "EXTEND_TIMEOUT_USEC=20000000",
            "STOPPING=1\nSTATUS=stopping: SIGTERM"
        ]
    );
}

#[test]
fn hardware_watchdog_gets_keepalives_and_the_magic_close() {
    let dir = TempDir::new("wd-hw");
    let dev = dir.write("watchdog0", "");
    let hw = HwWatchdog::open(&dev).unwrap();
    // No systemd watchdog: the hardware keepalive sets the period.
    let mut wd = Watchdog::new(Notifier::disabled(), None, Some(hw), Duration::from_secs(5));
    assert_eq!(wd.period(), Some(Duration::from_secs(5)));
    let progress = wd.progress();
    let t0 = Instant::now();
    wd.ready(t0, "up").unwrap();
    let at = |s| t0 + Duration::from_secs(s);

    progress.bump();
    assert_eq!(wd.tick(at(5)).unwrap(), Tick::Pinged);
    assert_eq!(
        wd.tick(at(10)).unwrap(),
        Tick::Stalled {
            since: Duration::from_secs(5)
        }
    );
    progress.bump();
    assert_eq!(wd.tick(at(11)).unwrap(), Tick::Pinged);
    assert_eq!(std::fs::read(&dev).unwrap(), b"\0\0");
    wd.stop("bye").unwrap();
    // Two keepalives (none while stalled), then the magic 'V' as the last byte written.
    assert_eq!(std::fs::read(&dev).unwrap(), b"\0\0V");

    // Dropping without stop leaves it armed: no 'V'.
    let dev2 = dir.write("watchdog1", "");
    let mut wd = Watchdog::new(
        Notifier::disabled(),
        None,
        Some(HwWatchdog::open(&dev2).unwrap()),
        Duration::from_secs(1),
    );
    wd.progress().bump();
    assert_eq!(wd.tick(Instant::now()).unwrap(), Tick::Pinged);
    drop(wd);
    assert_eq!(std::fs::read(&dev2).unwrap(), b"\0");

    // A missing device is a clear error.
    let e = HwWatchdog::open(&dir.join("missing/watchdog")).unwrap_err();
    assert!(e.to_string().starts_with("hardware watchdog "), "{e}");
}

#[test]
fn both_systemd_and_hardware_ping_at_the_shorter_period() {
    let sd = FakeSystemd::new("wd-both");
    let dir = TempDir::new("wd-both-hw");
    let dev = dir.write("watchdog", "");
    let mut wd = Watchdog::new(
        sd.notifier(),
        Some(Duration::from_secs(30)),
        Some(HwWatchdog::open(&dev).unwrap()),
        Duration::from_secs(4),
    );
    assert_eq!(wd.period(), Some(Duration::from_secs(4)));
    let t0 = Instant::now();
    wd.ready(t0, "up").unwrap();
    wd.progress().bump();
    assert_eq!(wd.tick(t0 + Duration::from_secs(4)).unwrap(), Tick::Pinged);
    assert_eq!(sd.drain(), ["READY=1\nSTATUS=up", "WATCHDOG=1"]);
    assert_eq!(std::fs::read(&dev).unwrap(), b"\0");
}

/// Collects datagrams with their arrival time on a thread.
fn collector(
    sd: &FakeSystemd,
) -> (
    mpsc::Receiver<(Instant, String)>,
    std::thread::JoinHandle<()>,
) {
    let sock = sd.sock.try_clone().unwrap();
    sock.set_nonblocking(false).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            match sock.recv(&mut buf) {
                Ok(n) => {
                    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let stop = msg.starts_with("STOPPING=1");
                    if tx.send((Instant::now(), msg)).is_err() || stop {
                        return;
                    }
                }
                Err(_) => continue,
            }
        }
    });
    (rx, h)
}

/// The async driver on a real executor: pings while the supervisor loop bumps, none once
/// it stops bumping (executor still alive), and none while a task blocks the executor.
#[test]
fn run_task_stops_pinging_when_the_loop_or_the_executor_stalls() {
    let sd = FakeSystemd::new("wd-run");
    // WatchdogSec=400ms: pings due every 200 ms, checked every 50 ms.
    let period = Duration::from_millis(200);
    let mut wd = Watchdog::new(
        sd.notifier(),
        Some(period * 2),
        None,
        Duration::from_secs(5),
    );
    let progress = wd.progress();
    let (rx, h) = collector(&sd);

    let phase = std::cell::Cell::new((Instant::now(), Instant::now(), Instant::now()));
    wd.ready(Instant::now(), "up").unwrap();
    smol::block_on(async {
        let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
        let supervisor = async {
            // 1. Healthy: bump every 20 ms for 1.2 s.
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(1200) {
                progress.bump();
                async_io::Timer::after(Duration::from_millis(20)).await;
            }
            // 2. The loop is stuck (no bumps) but the executor runs: 1.2 s.
            let stalled_at = Instant::now();
            async_io::Timer::after(Duration::from_millis(1200)).await;
            // 3. The executor itself is blocked for 1.2 s (a blocking call on the executor
            //    thread), with progress recorded just before.
            progress.bump();
            async_io::Timer::after(Duration::from_millis(250)).await;
            let blocked_at = Instant::now();
            std::thread::sleep(Duration::from_millis(1200));
            let unblocked_at = Instant::now();
            phase.set((stalled_at, blocked_at, unblocked_at));
            let _ = stop_tx.send(()).await;
        };
        let watchdog = run(&mut wd, async {
            let _ = stop_rx.recv().await;
        });
        smol::future::zip(supervisor, watchdog).await;
    });
    wd.stop("bye").unwrap();
    h.join().unwrap();
    let msgs: Vec<(Instant, String)> = rx.try_iter().collect();
    let (stalled_at, blocked_at, unblocked_at) = phase.get();
    let pings = |from: Instant, to: Instant| {
        msgs.iter()
            .filter(|(t, m)| m == "WATCHDOG=1" && *t >= from && *t < to)
            .count()
    };
    let total = msgs.iter().filter(|(_, m)| m == "WATCHDOG=1").count();
    // Healthy phase: roughly one ping per 200 ms (generous: at least 2).
    assert!(
        pings(stalled_at - Duration::from_millis(1200), stalled_at) >= 2,
        "{msgs:?}"
    );
    // Stuck loop: the last bump may still earn one ping within a period; after that none.
    assert_eq!(
        pings(
            stalled_at + period + Duration::from_millis(100),
            blocked_at - Duration::from_millis(250)
        ),
        0,
        "{msgs:?}"
    );
    // Blocked executor: nothing at all while blocked.
    assert_eq!(
        pings(blocked_at + Duration::from_millis(10), unblocked_at),
        0,
        "{msgs:?}"
    );
    assert!(total >= 2);
    assert_eq!(
        msgs.last().map(|(_, m)| m.as_str()),
        Some("STOPPING=1\nSTATUS=bye")
    );
}
