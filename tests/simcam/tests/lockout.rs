//! Illegal-login lock: countdown, lock, renewal during the lock, expiry, per client IP.

mod common;
use common::*;
use simcam::EventKind;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

fn attempt(addr: std::net::SocketAddr, pwd: &str) -> (u16, String, u64, u32) {
    let l = login(addr, USER, pwd).unwrap();
    let r = &l.resp;
    (
        r.status,
        r.tag("lockStatus").unwrap_or_default(),
        r.tag("unlockTime").map_or(0, |v| v.parse().unwrap()),
        r.tag("retryLoginTime").map_or(0, |v| v.parse().unwrap()),
    )
}

#[test]
fn countdown_then_lock_then_renewal() {
    let f = fleet(1, |_| {}); // K = 7, L = 1800 s (defaults)
    let a = f.addr(0);
    for n in 1..7u32 {
        let (st, lock, _, retry) = attempt(a, "wrong");
        assert_eq!(
            (st, lock.as_str(), retry),
            (401, "unlock", 7 - n),
            "attempt {n}"
        );
    }
    let (st, lock, unlock, retry) = attempt(a, "wrong");
    assert_eq!(
        (st, lock.as_str(), unlock, retry),
        (401, "lock", 1800, 0),
        "7th wrong locks"
    );
    // Right password during the lock: still locked, lock renewed to the full L.
    let (st, lock, unlock, _) = attempt(a, PASS);
    assert_eq!((st, lock.as_str(), unlock), (401, "lock", 1800));
    let left = f
        .camera(0)
        .lock_remaining(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .unwrap();
    assert!(left > Duration::from_secs(1790), "{left:?}");
    let s = f.camera(0).stats();
    assert_eq!((s.logins_bad, s.logins_locked, s.logins_ok), (7, 1, 0));
    let kinds: Vec<EventKind> = f.camera(0).events().iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == EventKind::LoginBad).count(),
        6
    );
    assert!(kinds.contains(&EventKind::LockEngaged));
    assert!(kinds.contains(&EventKind::LoginLocked));
    // Operator unlock.
    f.camera(0).unlock();
    assert_eq!(login(a, USER, PASS).unwrap().resp.status, 200);
}

#[test]
fn success_resets_the_countdown() {
    let f = fleet(1, |_| {});
    let a = f.addr(0);
    for _ in 0..5 {
        attempt(a, "wrong");
    }
    assert_eq!(login(a, USER, PASS).unwrap().resp.status, 200);
    let (_, _, _, retry) = attempt(a, "wrong");
    assert_eq!(retry, 6);
}

#[test]
fn lock_expires_after_l_and_attempts_renew_it() {
    let f = fleet(1, |c| {
        c.lockout_threshold = 2;
        c.lock_duration = Duration::from_secs(3);
    });
    let a = f.addr(0);
    assert_eq!(attempt(a, "wrong").3, 1);
    let (_, lock, unlock, _) = attempt(a, "wrong");
    assert_eq!((lock.as_str(), unlock), ("lock", 3));
    // Keep poking during the lock: each attempt restarts the 3 s, so 4.5 s after the lock
    // started it still holds.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(1500));
        let (_, lock, _, _) = attempt(a, PASS);
        assert_eq!(lock, "lock", "renewed lock still holds");
    }
    // Quiet for longer than L: unlocked, the right password works.
    std::thread::sleep(Duration::from_millis(3500));
    let l = login(a, USER, PASS).unwrap();
    assert_eq!(l.resp.status, 200, "{}", l.resp.body);
    assert!(
        f.camera(0)
            .events()
            .iter()
            .any(|e| e.kind == EventKind::LockExpired)
    );
    // And the countdown starts over.
    assert_eq!(attempt(a, "wrong").3, 1);
}

#[test]
fn lock_is_per_client_ip() {
    let f = fleet(1, |c| c.lockout_threshold = 3);
    let a = f.addr(0);
    let other = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    for _ in 0..3 {
        attempt(a, "wrong");
    }
    assert_eq!(attempt(a, PASS).1, "lock");
    let l = login_from(other, a, USER, PASS).unwrap();
    assert_eq!(l.resp.status, 200, "another IP is not locked");
    assert!(f.camera(0).lock_remaining(other).is_none());
}

#[test]
fn threshold_zero_never_locks() {
    let f = fleet(1, |c| c.lockout_threshold = 0);
    for _ in 0..12 {
        assert_eq!(attempt(f.addr(0), "wrong").1, "unlock");
    }
    assert_eq!(login(f.addr(0), USER, PASS).unwrap().resp.status, 200);
}

#[test]
fn reboot_clears_locks() {
    let f = fleet(1, |c| c.lockout_threshold = 1);
    assert_eq!(attempt(f.addr(0), "wrong").1, "lock");
    f.camera(0).power_off();
    f.camera(0).power_on().unwrap();
    assert_eq!(login(f.addr(0), USER, PASS).unwrap().resp.status, 200);
}
