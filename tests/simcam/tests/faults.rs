//! Fault injection: power, boot delay, freeze, slow, password change, session limit,
//! accept-then-close, idle timeout; counters and events.

mod common;
use common::*;
use simcam::{EventKind, Power};
use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn refused(addr: std::net::SocketAddr) -> bool {
    matches!(
        TcpStream::connect_timeout(&addr, IO_TIMEOUT),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused
    )
}

#[test]
fn power_off_resets_connections_refuses_and_keeps_port() {
    let f = fleet(2, |_| {});
    let cam = f.camera(0);
    let addr = f.addr(0);
    let mut c = Conn::open(addr).unwrap();
    let l = login_on(&mut c, USER, PASS).unwrap();
    assert_eq!(cam.stats().connections, 1);
    assert!(cam.power_off());
    assert_eq!(cam.power(), Power::Off);
    // The open connection was reset (RST), not closed gracefully.
    let mut b = [0u8; 16];
    let e = c
        .stream
        .read(&mut b)
        .expect_err("read after power-off must fail");
    assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}");
    // New connects are refused; nobody else can take the port.
    assert!(refused(addr));
    assert!(
        std::net::TcpListener::bind(addr).is_err(),
        "port stays reserved while off"
    );
    let s = cam.stats();
    assert_eq!((s.connections, s.sessions), (0, 0));
    // Other cameras are unaffected.
    assert_eq!(login(f.addr(1), USER, PASS).unwrap().resp.status, 200);

    // Power on: same port, new boot, the old session is forgotten.
    let boot = cam.stats().boot_id;
    assert!(cam.power_on().unwrap());
    assert_eq!(cam.addr(), addr);
    assert_eq!(cam.stats().boot_id, boot + 1);
    let mut c = Conn::open(addr).unwrap();
    let hb = c
        .request(
            "PUT",
            "/ISAPI/Security/sessionHeartbeat",
            Some(&l.cookie()),
            "",
        )
        .unwrap();
    assert_eq!(hb.status, 401, "a rebooted camera forgot all sessions");
    assert_eq!(login_on(&mut c, USER, PASS).unwrap().resp.status, 200);
    let kinds: Vec<EventKind> = cam.events().iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&EventKind::PowerOff) && kinds.contains(&EventKind::PowerOn));
    // Idempotent controls.
    assert!(!cam.power_on().unwrap());
}

#[test]
fn power_cycles_many_times_on_the_same_port() {
    let f = fleet(1, |_| {});
    let cam = f.camera(0);
    for _ in 0..20 {
        let _c = Conn::open(cam.addr()).unwrap(); // leave a connection open each time
        cam.power_off();
        assert!(refused(cam.addr()));
        cam.power_on().unwrap();
        assert_eq!(login(cam.addr(), USER, PASS).unwrap().resp.status, 200);
    }
    assert_eq!(cam.stats().boot_id, 21);
}

#[test]
fn boot_delay_refuses_until_listening() {
    let f = fleet(1, |_| {});
    let cam = f.camera(0);
    cam.power_off();
    let from = f.next_seq();
    let t0 = Instant::now();
    cam.power_on_after(Duration::from_millis(600)).unwrap();
    assert_eq!(cam.power(), Power::Booting);
    assert!(refused(cam.addr()), "refused while booting");
    let ev = cam
        .wait_event(from, EventKind::Listening, Duration::from_secs(20))
        .expect("listening");
    assert!(t0.elapsed() >= Duration::from_millis(600));
    assert!(ev.since_start > Duration::ZERO && ev.unix_us > 1_600_000_000_000_000);
    assert_eq!(cam.power(), Power::On);
    assert_eq!(login(cam.addr(), USER, PASS).unwrap().resp.status, 200);
    // Power-off during the boot delay cancels the boot.
    cam.power_off();
    cam.power_on_after(Duration::from_millis(300)).unwrap();
    cam.power_off();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(cam.power(), Power::Off);
    assert!(refused(cam.addr()));
}

#[test]
fn freeze_keeps_connections_but_answers_nothing() {
    let f = fleet(1, |_| {});
    let cam = f.camera(0);
    let mut c = Conn::open(cam.addr()).unwrap();
    let l = login_on(&mut c, USER, PASS).unwrap();
    cam.freeze();
    assert!(cam.is_frozen());
    // Existing connection: the request goes out, no answer.
    c.stream
        .set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    c.send(
        "PUT",
        "/ISAPI/Security/sessionHeartbeat",
        Some(&l.cookie()),
        "",
    )
    .unwrap();
    let e = c.recv().expect_err("no answer while frozen");
    assert!(
        matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{e}"
    );
    // New connections: the kernel completes the handshake, nothing answers.
    let mut n = Conn::open(cam.addr()).expect("handshake completes while frozen");
    n.stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    n.send(
        "GET",
        "/ISAPI/Security/sessionLogin/capabilities?username=admin",
        None,
        "",
    )
    .unwrap();
    assert!(n.recv().is_err());
    // Thaw: the pending requests are answered.
    cam.thaw();
    c.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    n.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    assert_eq!(c.recv().unwrap().status, 200);
    assert_eq!(n.recv().unwrap().status, 200);
    // Power-off while frozen still resets everything.
    cam.freeze();
    cam.power_off();
    assert!(!cam.is_frozen());
    let mut b = [0u8; 8];
    assert!(c.stream.read(&mut b).is_err());
}

#[test]
fn slow_adds_latency_per_response() {
    let f = fleet(1, |_| {});
    let cam = f.camera(0);
    cam.set_slow(Duration::from_millis(300));
    let mut c = Conn::open(cam.addr()).unwrap();
    let t0 = Instant::now();
    for _ in 0..2 {
        let r = c
            .request(
                "GET",
                "/ISAPI/Security/sessionLogin/capabilities?username=admin",
                None,
                "",
            )
            .unwrap();
        assert_eq!(r.status, 200);
    }
    // A lower bound only: latency is added, never removed.
    assert!(
        t0.elapsed() >= Duration::from_millis(600),
        "{:?}",
        t0.elapsed()
    );
    cam.set_slow(Duration::ZERO);
    assert!(
        cam.events()
            .iter()
            .any(|e| e.kind == EventKind::SlowSet && e.detail == "ms=300")
    );
}

#[test]
fn password_change_new_salt_sessions_stay() {
    let f = fleet(1, |_| {});
    let cam = f.camera(0);
    let mut c = Conn::open(cam.addr()).unwrap();
    let old = login_on(&mut c, USER, PASS).unwrap();
    cam.set_password("n3w-Secret");
    let bad = login(cam.addr(), USER, PASS).unwrap();
    assert_eq!(bad.resp.status, 401);
    assert_ne!(bad.salt, old.salt, "a new password comes with a new salt");
    let good = login(cam.addr(), USER, "n3w-Secret").unwrap();
    assert_eq!(good.resp.status, 200);
    let hb = c
        .request(
            "PUT",
            "/ISAPI/Security/sessionHeartbeat",
            Some(&old.cookie()),
            "",
        )
        .unwrap();
    assert_eq!(hb.status, 200, "existing sessions stay valid");
}

#[test]
fn session_limit_refuses_extra_logins_with_503() {
    let f = fleet(1, |c| c.session_limit = Some(2));
    let cam = f.camera(0);
    let a = login(cam.addr(), USER, PASS).unwrap();
    let _b = login(cam.addr(), USER, PASS).unwrap();
    let c = login(cam.addr(), USER, PASS).unwrap();
    assert_eq!(c.resp.status, 503, "{}", c.resp.body);
    assert_eq!(c.resp.tag("subStatusCode").as_deref(), Some("deviceBusy"));
    // A wrong password beyond the limit is still a wrong password (counts toward lockout).
    let w = login(cam.addr(), USER, "nope").unwrap();
    assert_eq!(w.resp.status, 401);
    let s = cam.stats();
    assert_eq!(
        (
            s.logins_ok,
            s.logins_rejected_limit,
            s.sessions,
            s.sessions_hwm
        ),
        (2, 1, 2, 2)
    );
    // Logging one out frees a slot.
    let mut conn = Conn::open(cam.addr()).unwrap();
    conn.request(
        "PUT",
        "/ISAPI/Security/sessionLogout",
        Some(&a.cookie()),
        "",
    )
    .unwrap();
    assert_eq!(login(cam.addr(), USER, PASS).unwrap().resp.status, 200);
    // Runtime change.
    cam.set_session_limit(None);
    assert_eq!(login(cam.addr(), USER, PASS).unwrap().resp.status, 200);
}

#[test]
fn accept_then_close() {
    let f = fleet(1, |_| {});
    let cam = f.camera(0);
    cam.set_accept_close(true);
    for _ in 0..3 {
        let mut c = Conn::open(cam.addr()).expect("connect succeeds");
        let _ = c.send("GET", "/ISAPI/Security/sessionLogin/capabilities", None, "");
        assert!(c.recv().is_err(), "closed without an answer");
    }
    let s = cam.stats();
    assert_eq!((s.accepted, s.requests, s.connections), (3, 0, 0));
    assert_eq!(
        cam.events()
            .iter()
            .filter(|e| e.kind == EventKind::AcceptClosed)
            .count(),
        3
    );
    cam.set_accept_close(false);
    assert_eq!(login(cam.addr(), USER, PASS).unwrap().resp.status, 200);
}

#[test]
fn idle_sessions_expire() {
    let f = fleet(1, |c| {
        c.session_idle_timeout = Some(Duration::from_millis(1500))
    });
    let cam = f.camera(0);
    let mut c = Conn::open(cam.addr()).unwrap();
    let l = login_on(&mut c, USER, PASS).unwrap();
    // Heartbeats well inside the timeout keep it alive for longer than the timeout.
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(400));
        let hb = c.request(
            "PUT",
            "/ISAPI/Security/sessionHeartbeat",
            Some(&l.cookie()),
            "",
        );
        assert_eq!(hb.unwrap().status, 200);
    }
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(cam.stats().sessions, 0);
    let hb = c.request(
        "PUT",
        "/ISAPI/Security/sessionHeartbeat",
        Some(&l.cookie()),
        "",
    );
    assert_eq!(hb.unwrap().status, 401);
    assert!(
        cam.events()
            .iter()
            .any(|e| e.kind == EventKind::SessionExpired)
    );
}

#[test]
fn connection_and_exchange_high_water_marks() {
    let f = fleet(1, |_| {});
    let cam = f.camera(0);
    let conns: Vec<Conn> = (0..5).map(|_| Conn::open(cam.addr()).unwrap()).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while cam.stats().connections < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(cam.stats().connections, 5);
    drop(conns);
    while cam.stats().connections > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let s = cam.stats();
    assert_eq!((s.connections, s.connections_hwm, s.accepted), (0, 5, 5));
    // Three capabilities in flight, then one completes.
    let mut c = Conn::open(cam.addr()).unwrap();
    for _ in 0..3 {
        c.request(
            "GET",
            "/ISAPI/Security/sessionLogin/capabilities?username=admin",
            None,
            "",
        )
        .unwrap();
    }
    assert_eq!(cam.stats().exchanges_in_flight, 3);
    login_on(&mut c, USER, PASS).unwrap();
    let s = cam.stats();
    assert_eq!((s.exchanges_in_flight, s.exchanges_hwm), (3, 4));
    cam.power_off();
    assert_eq!(
        cam.stats().exchanges_in_flight,
        0,
        "a reboot forgets pending logins"
    );
}

#[test]
fn fleet_wide_exchange_count_and_login_delay() {
    let f = fleet(3, |_| {});
    assert_eq!((f.exchanges_in_flight(), f.exchanges_hwm()), (0, 0));
    // Two exchanges open on camera 0, one on camera 1: three at the same instant across
    // the fleet (the summed per-camera marks would say 2 + 1 as well, but see below).
    let mut conns: Vec<Conn> = Vec::new();
    for cam in [0, 0, 1] {
        let mut c = Conn::open(f.addr(cam)).unwrap();
        let r = c
            .request(
                "GET",
                "/ISAPI/Security/sessionLogin/capabilities?username=admin",
                None,
                "",
            )
            .unwrap();
        assert_eq!(r.status, 200);
        conns.push(c);
    }
    assert_eq!((f.exchanges_in_flight(), f.exchanges_hwm()), (3, 3));
    // Power-off forgets camera 0's pending logins: the fleet count drops, the mark stays.
    f.camera(0).power_off();
    assert_eq!((f.exchanges_in_flight(), f.exchanges_hwm()), (1, 3));
    f.reset_exchanges_hwm();
    assert_eq!(f.exchanges_hwm(), 1);
    // Sequential logins on camera 2 never overlap: the mark does not move.
    for _ in 0..3 {
        let l = login(f.addr(2), USER, PASS).unwrap();
        assert_eq!(l.resp.status, 200);
    }
    assert_eq!((f.exchanges_in_flight(), f.exchanges_hwm()), (1, 2));
    // (2: camera 1's pending exchange plus each login's own, one at a time.)

    // A login delay holds the sessionLogin POST, and the exchange stays in flight.
    let cam = f.camera(2);
    cam.set_login_delay(Duration::from_millis(400));
    let t = Instant::now();
    let l = login(f.addr(2), USER, PASS).unwrap();
    assert_eq!(l.resp.status, 200);
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );
    // Heartbeats are not delayed.
    let mut c = Conn::open(f.addr(2)).unwrap();
    let t = Instant::now();
    let hb = c
        .request(
            "PUT",
            "/ISAPI/Security/sessionHeartbeat",
            Some(&l.cookie()),
            "",
        )
        .unwrap();
    assert_eq!(hb.status, 200);
    assert!(
        t.elapsed() < Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );
    // Four delayed logins from four threads overlap at the camera.
    f.reset_exchanges_hwm();
    let addr = f.addr(2);
    let threads: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(move || login(addr, USER, PASS).unwrap().resp.status))
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 200);
    }
    assert_eq!(
        f.exchanges_hwm(),
        5,
        "camera 1's pending one plus four at once"
    );
    assert_eq!(f.exchanges_in_flight(), 1);
    assert!(
        cam.events()
            .iter()
            .any(|e| e.kind == EventKind::LoginDelaySet && e.detail == "ms=400")
    );
    drop(conns);
}

#[test]
fn event_log_is_bounded_with_drop_counter() {
    let f = fleet(1, |c| c.event_capacity = 16);
    for _ in 0..10 {
        let _ = login(f.addr(0), USER, PASS).unwrap();
    }
    // Connection-close events may still be arriving from the server thread (slow under
    // qemu): take the snapshot once the log is quiet, so the three reads agree.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (evs, next, dropped) = loop {
        let before = f.next_seq();
        let evs = f.events_since(0);
        let dropped = f.events_dropped();
        std::thread::sleep(Duration::from_millis(50));
        if f.next_seq() == before || std::time::Instant::now() > deadline {
            break (evs, before, dropped);
        }
    };
    assert_eq!(evs.len(), 16);
    assert!(dropped > 0);
    assert_eq!(evs.last().unwrap().seq + 1, next);
    assert_eq!(dropped + 16, next);
    // Sequence numbers are gap-free within the ring.
    assert!(evs.windows(2).all(|w| w[1].seq == w[0].seq + 1));
}

#[test]
fn drop_shuts_down_and_frees_ports() {
    let f = fleet(3, |_| {});
    let addrs = f.addrs();
    let mut c = Conn::open(addrs[0]).unwrap();
    login_on(&mut c, USER, PASS).unwrap();
    drop(f);
    for a in addrs {
        assert!(refused(a));
        std::net::TcpListener::bind(a).expect("port free after drop");
    }
    let mut b = [0u8; 8];
    assert!(
        c.stream.read(&mut b).is_err(),
        "open connections reset on drop"
    );
}

#[test]
fn a_handle_outliving_its_fleet_cannot_power_on() {
    let f = fleet(1, |_| {});
    let cam = f.camera(0);
    drop(f);
    assert_eq!(cam.power(), Power::Off);
    assert!(cam.power_on().is_err());
    assert!(refused(cam.addr()));
}
