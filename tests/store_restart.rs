//! Store behaviour across restarts, the wall-clock rule through the store, the start
//! spread, and the write policy (coalescing, unchanged-bytes skip, shutdown flush), with a
//! virtual monotonic and wall clock.

mod store_support;

use std::fs;
use std::time::{Duration, Instant};

use hikwatch::sdk::ErrorClass;
use hikwatch::store::format::{self, Record};
use hikwatch::store::{
    CameraKey, CameraState, MAX_CAMERAS, MAX_RESTORED_WAIT, Origin, Store, StoreError,
    StoreWarning, StoredError,
};
use store_support::{T2025, opts, set_wall, tempdir};

const MIN: Duration = Duration::from_secs(60);

fn key<'a>(id: &'a str, password: &'a str) -> CameraKey<'a> {
    CameraKey {
        id,
        user: "admin",
        password: password.as_bytes(),
    }
}

fn start<'a>(
    loaded: &'a hikwatch::store::LoadedState,
    id: &str,
) -> &'a hikwatch::store::StartState {
    loaded
        .cameras
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("{id} not in {:?}", loaded.cameras))
}

fn backoff() -> CameraState {
    CameraState {
        attempts: 5,
        consecutive_failures: 5,
        next_due_in: Some(10 * MIN),
        last_error: Some(StoredError::new(ErrorClass::Network, 7)),
        reconnects: 2,
        login_attempts: 11,
        last_online_ago: Some(MIN),
        ..CameraState::default()
    }
}

fn held() -> CameraState {
    CameraState {
        attempts: 2,
        consecutive_failures: 2,
        next_due_in: Some(MIN),
        last_error: Some(StoredError::new(
            ErrorClass::Auth {
                retries_left: Some(1),
            },
            1,
        )),
        auth_hold: true,
        login_attempts: 2,
        ..CameraState::default()
    }
}

fn locked() -> CameraState {
    CameraState {
        attempts: 1,
        consecutive_failures: 1,
        next_due_in: Some(30 * MIN),
        last_error: Some(StoredError::new(
            ErrorClass::Locked {
                secs_left: Some(1800),
            },
            153,
        )),
        lock_left: Some(30 * MIN),
        login_attempts: 6,
        ..CameraState::default()
    }
}

/// First run: four cameras in different states, flushed at `t0` with the wall clock at
/// 2025-01-01.
fn first_run(dir: &std::path::Path) -> std::path::PathBuf {
    set_wall(T2025);
    let path = dir.join("state");
    let t0 = Instant::now();
    let cams = [
        key("backoff", "s3cret-pw"),
        key("held", "s3cret-pw"),
        key("locked", "s3cret-pw"),
        key("online", "s3cret-pw"),
    ];
    let (mut store, loaded) = Store::open(&path, opts(), &cams, t0);
    assert!(
        loaded.warnings.is_empty(),
        "first start: {:?}",
        loaded.warnings
    );
    assert!(loaded.cameras.iter().all(|c| c.origin == Origin::New));
    store.update("backoff", &backoff(), t0).expect("update");
    store.update("held", &held(), t0).expect("update");
    store.update("locked", &locked(), t0).expect("update");
    let online = CameraState {
        reconnects: 3,
        last_online_ago: Some(Duration::ZERO),
        ..CameraState::default()
    };
    store.update("online", &online, t0).expect("update");
    assert!(store.flush(t0).expect("flush"));
    path
}

#[test]
fn restart_keeps_backoff_hold_and_lock_drops_removed_and_adds_new() {
    let dir = tempdir("restart");
    let path = first_run(&dir);

    // Power cut; the board comes back 2 minutes later (sane clock) in a new process.
    set_wall(T2025 + 2 * 60_000);
    let t1 = Instant::now();
    let cams = [
        key("backoff", "s3cret-pw"),
        key("held", "s3cret-pw"),
        key("locked", "s3cret-pw"),
        key("new-cam", "s3cret-pw"),
    ];
    let (mut store, loaded) = Store::open(&path, opts(), &cams, t1);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.dropped, vec!["online".to_owned()]);
    assert_eq!(loaded.clock.expect("file loaded").duration(), 2 * MIN);

    let b = start(&loaded, "backoff");
    assert_eq!(b.origin, Origin::Restored);
    let want = CameraState {
        next_due_in: Some(8 * MIN),
        last_online_ago: Some(3 * MIN),
        ..backoff()
    };
    assert_eq!(b.state, want);

    let h = start(&loaded, "held");
    assert_eq!(h.origin, Origin::Restored);
    assert!(h.state.auth_hold, "hold kept with unchanged credentials");
    assert_eq!(h.state.last_error, held().last_error);

    let l = start(&loaded, "locked");
    assert_eq!(l.state.lock_left, Some(28 * MIN));
    assert_eq!(l.state.next_due_in, Some(28 * MIN));

    let n = start(&loaded, "new-cam");
    assert_eq!(n.origin, Origin::New);
    assert_eq!(n.state.attempts, 0);
    assert!(n.state.next_due_in.expect("spread") < Duration::from_secs(30));

    // The removed camera is gone from the file after the next flush.
    assert!(store.is_dirty());
    assert!(store.flush(t1).expect("flush"));
    let f = format::decode(&fs::read(&path).expect("read")).expect("decode");
    let ids: Vec<&str> = f.records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["backoff", "held", "locked", "new-cam"]);
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn changed_password_releases_hold_but_keeps_lock_and_file_has_no_password() {
    let dir = tempdir("creds");
    let path = first_run(&dir);
    let bytes = fs::read(&path).expect("read");
    assert!(
        !bytes.windows(5).any(|w| w == b"admin") && !bytes.windows(9).any(|w| w == b"s3cret-pw"),
        "credentials leaked into the file"
    );

    set_wall(T2025 + 60_000);
    let t1 = Instant::now();
    let cams = [
        key("backoff", "s3cret-pw"),
        key("held", "new password"),
        key("locked", "new password"),
    ];
    let (store, loaded) = Store::open(&path, opts(), &cams, t1);
    let h = start(&loaded, "held");
    assert_eq!(h.origin, Origin::CredentialsChanged);
    assert!(!h.state.auth_hold, "hold released");
    assert_eq!((h.state.attempts, h.state.consecutive_failures), (0, 0));
    assert!(h.state.next_due_in.expect("spread") < Duration::from_secs(30));
    let l = start(&loaded, "locked");
    assert_eq!(l.origin, Origin::CredentialsChanged);
    assert_eq!(l.state.lock_left, Some(29 * MIN), "the device lock stays");
    assert_eq!(start(&loaded, "backoff").origin, Origin::Restored);
    assert!(store.is_dirty());
    drop(store);

    // A user-name change counts as a credential change too.
    let cams = [CameraKey {
        id: "backoff",
        user: "operator",
        password: b"s3cret-pw",
    }];
    let (_, loaded) = Store::open(&path, opts(), &cams, Instant::now());
    assert_eq!(loaded.cameras[0].origin, Origin::CredentialsChanged);
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn set_credentials_at_run_time() {
    let dir = tempdir("setcred");
    let path = dir.join("state");
    let t0 = Instant::now();
    let (mut store, _) = Store::open(&path, opts(), &[key("cam", "a")], t0);
    store.update("cam", &held(), t0).expect("update");
    assert!(!store.set_credentials("cam", "admin", b"a").expect("same"));
    assert!(store.get("cam", t0).expect("cam").auth_hold);
    assert!(
        store
            .set_credentials("cam", "admin", b"b")
            .expect("changed")
    );
    assert!(!store.get("cam", t0).expect("cam").auth_hold);
    store.flush(t0).expect("flush");
    let (_, loaded) = Store::open(&path, opts(), &[key("cam", "b")], Instant::now());
    assert_eq!(loaded.cameras[0].origin, Origin::Restored);
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn lock_survives_1970_boot_and_ntp_jump_after_load() {
    let dir = tempdir("ntp");
    let path = first_run(&dir);

    // Reboot without RTC: the wall clock reads 40 s after the epoch.
    set_wall(40_000);
    let t1 = Instant::now();
    let cams = [key("locked", "s3cret-pw")];
    let (mut store, loaded) = Store::open(&path, opts(), &cams, t1);
    assert_eq!(loaded.clock, Some(hikwatch::store::Elapsed::NowUnset));
    assert_eq!(
        loaded.cameras[0].state.lock_left,
        Some(30 * MIN),
        "full lock kept"
    );

    // NTP syncs 5 minutes later (monotonic) and the wall clock jumps a day ahead of the
    // write. The in-memory lock follows monotonic time only.
    let t2 = t1 + 5 * MIN;
    set_wall(T2025 + 86_400_000);
    assert_eq!(
        store.get("locked", t2).expect("cam").lock_left,
        Some(25 * MIN)
    );
    // Something changes; the flush stores the lock against the new wall clock.
    let mut st = store.get("locked", t2).expect("cam");
    st.login_attempts += 1;
    store.update("locked", &st, t2).expect("update");
    assert!(store.flush(t2).expect("flush"));
    let f = format::decode(&fs::read(&path).expect("read")).expect("decode");
    assert_eq!(f.written_at_ms, T2025 + 86_400_000);
    assert_eq!(f.records[0].lock_left_ms, Some(25 * 60_000));

    // Another restart 10 minutes later with a sane clock: 15 minutes left.
    set_wall(T2025 + 86_400_000 + 10 * 60_000);
    let (_, loaded) = Store::open(&path, opts(), &cams, Instant::now());
    assert_eq!(loaded.cameras[0].state.lock_left, Some(15 * MIN));
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn clock_behind_or_absurd_keeps_full_waits() {
    for (label, write_ms, read_ms) in [
        ("clock behind the file", T2025 + 3_600_000, T2025),
        ("file from year 2200", 7_258_118_400_000, T2025),
        ("file written in 1970", 20_000, T2025),
        ("now in year 2200", T2025, 7_258_118_400_000),
    ] {
        let dir = tempdir("behind");
        let path = dir.join("state");
        set_wall(write_ms);
        let t0 = Instant::now();
        let (mut store, _) = Store::open(&path, opts(), &[key("locked", "s3cret-pw")], t0);
        store.update("locked", &locked(), t0).expect("update");
        store.flush(t0).expect("flush");
        set_wall(read_ms);
        let (_, loaded) = Store::open(&path, opts(), &[key("locked", "s3cret-pw")], Instant::now());
        let st = &loaded.cameras[0].state;
        assert_eq!(st.lock_left, Some(30 * MIN), "{label}");
        assert_eq!(st.next_due_in, Some(30 * MIN), "{label}");
        assert_eq!(
            loaded.clock.expect("loaded").duration(),
            Duration::ZERO,
            "{label}"
        );
        fs::remove_dir_all(&dir).ok();
    }
}

#[test]
fn absurdly_long_waits_are_cut_with_a_warning() {
    let dir = tempdir("clamp");
    let path = dir.join("state");
    let mut rec = Record::fresh("cam");
    rec.lock_left_ms = Some(10 * 86_400_000);
    rec.next_due_ms = Some(u64::MAX);
    let bytes = format::encode(T2025, &[3; 16], &[rec]).expect("encode");
    fs::write(&path, bytes).expect("write");
    set_wall(T2025);
    let (_, loaded) = Store::open(&path, opts(), &[key("cam", "s3cret-pw")], Instant::now());
    let st = &loaded.cameras[0].state;
    assert_eq!(st.lock_left, Some(MAX_RESTORED_WAIT));
    assert_eq!(st.next_due_in, Some(MAX_RESTORED_WAIT));
    assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
    let text = loaded.warnings[0].to_string();
    assert!(
        text.contains("\"cam\"") && text.contains("cut to 1d"),
        "{text}"
    );
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn first_attempts_after_restart_are_stratified_over_the_spread() {
    let dir = tempdir("spread");
    let path = dir.join("state");
    let ids: Vec<String> = (0..100).map(|i| format!("cam-{i:03}")).collect();
    let cams: Vec<CameraKey<'_>> = ids.iter().map(|id| key(id, "s3cret-pw")).collect();
    set_wall(T2025);
    let t0 = Instant::now();
    let (mut store, loaded) = Store::open(&path, opts(), &cams, t0);
    let mut first: Vec<Duration> = loaded
        .cameras
        .iter()
        .map(|c| c.state.next_due_in.expect("spread"))
        .collect();
    // Everyone was in backoff; by the restart an hour later all of it is overdue.
    for id in &ids {
        let st = CameraState {
            attempts: 3,
            next_due_in: Some(10 * MIN),
            ..CameraState::default()
        };
        store.update(id, &st, t0).expect("update");
    }
    store.flush(t0).expect("flush");

    set_wall(T2025 + 3_600_000);
    let (_, loaded) = Store::open(&path, opts(), &cams, Instant::now());
    let spread = Duration::from_secs(30);
    let mut dues: Vec<Duration> = loaded
        .cameras
        .iter()
        .map(|c| c.state.next_due_in.expect("spread"))
        .collect();
    // Stratified: sorted, the k-th of n lies in [k, k+1) * spread / n.
    for list in [&mut first, &mut dues] {
        let n = 100u32;
        list.sort();
        for (k, d) in list.iter().enumerate().take(100) {
            let k = k as u32;
            assert!(*d >= spread * k / n, "slot {k}: {d:?}");
            assert!(*d < spread * (k + 1) / n, "slot {k}: {d:?}");
        }
    }
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn long_restored_backoff_is_kept_over_the_spread() {
    let dir = tempdir("keep");
    let path = first_run(&dir);
    set_wall(T2025);
    let (_, loaded) = Store::open(
        &path,
        opts(),
        &[key("backoff", "s3cret-pw")],
        Instant::now(),
    );
    assert_eq!(loaded.cameras[0].state.next_due_in, Some(10 * MIN));
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn at_most_one_write_per_interval_under_churn() {
    let dir = tempdir("churn");
    let path = dir.join("state");
    set_wall(T2025);
    let t0 = Instant::now();
    let ids: Vec<String> = (0..8).map(|i| format!("cam-{i}")).collect();
    let cams: Vec<CameraKey<'_>> = ids.iter().map(|id| key(id, "s3cret-pw")).collect();
    let (mut store, _) = Store::open(&path, opts(), &cams, t0);
    let interval = Duration::from_secs(30);
    let mut write_times = Vec::new();
    let mut sizes = 0u64;
    // One virtual hour, a state change every 100 ms.
    for step in 0..36_000u32 {
        let now = t0 + Duration::from_millis(u64::from(step) * 100);
        set_wall(T2025 + u64::from(step) * 100);
        let st = CameraState {
            attempts: step,
            next_due_in: Some(Duration::from_secs(u64::from(step % 50))),
            ..CameraState::default()
        };
        assert!(
            store
                .update(&ids[step as usize % 8], &st, now)
                .expect("update")
        );
        if store.maybe_flush(now).expect("flush") {
            write_times.push(now);
            sizes += fs::metadata(&path).expect("meta").len();
        }
    }
    for pair in write_times.windows(2) {
        assert!(pair[1] - pair[0] >= interval, "{:?}", pair[1] - pair[0]);
    }
    // Churn never stops, so it writes once per interval: 3600 s / 30 s, plus the first.
    assert!(
        (120..=121).contains(&write_times.len()),
        "{}",
        write_times.len()
    );
    let m = store.metrics();
    assert_eq!(m.writes, write_times.len() as u64);
    assert_eq!(m.bytes_written, sizes);
    assert_eq!(m.write_errors, 0);
    println!(
        "churn: {} writes, {} bytes in one virtual hour ({} bytes per write)",
        m.writes,
        m.bytes_written,
        m.bytes_written / m.writes
    );
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn unchanged_state_is_not_written_again() {
    let dir = tempdir("same");
    let path = dir.join("state");
    set_wall(T2025);
    let t0 = Instant::now();
    let (mut store, _) = Store::open(&path, opts(), &[key("cam", "s3cret-pw")], t0);
    store.update("cam", &backoff(), t0).expect("update");
    assert!(store.maybe_flush(t0).expect("flush"));
    let first = fs::read(&path).expect("read");

    // The same state given again later (durations relative to the later now): no change.
    let t1 = t0 + MIN;
    let same = store.get("cam", t1).expect("cam");
    assert_eq!(same.next_due_in, Some(9 * MIN));
    assert!(!store.update("cam", &same, t1).expect("update"));
    assert!(!store.is_dirty());

    // A -> B -> A between two flushes: dirty, but the bytes on flash already say A.
    let mut b = same.clone();
    b.reconnects += 1;
    assert!(store.update("cam", &b, t1).expect("update"));
    assert!(store.update("cam", &same, t1).expect("update"));
    assert!(store.is_dirty());
    set_wall(T2025 + 60_000);
    assert!(!store.maybe_flush(t1).expect("flush"));
    assert!(!store.is_dirty());
    let m = store.metrics();
    assert_eq!((m.writes, m.skipped_unchanged), (1, 1));
    assert_eq!(fs::read(&path).expect("read"), first);
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn shutdown_flush_ignores_the_interval() {
    let dir = tempdir("shutdown");
    let path = dir.join("state");
    set_wall(T2025);
    let t0 = Instant::now();
    let (mut store, _) = Store::open(&path, opts(), &[key("cam", "s3cret-pw")], t0);
    assert!(store.maybe_flush(t0).expect("flush"));
    let t1 = t0 + Duration::from_secs(1);
    store.update("cam", &locked(), t1).expect("update");
    assert!(
        !store.maybe_flush(t1).expect("flush"),
        "inside the interval"
    );
    assert_eq!(store.next_flush_at(), Some(t0 + Duration::from_secs(30)));
    assert!(store.flush(t1).expect("flush"), "shutdown writes");
    assert_eq!(store.next_flush_at(), None);
    let (_, loaded) = Store::open(&path, opts(), &[key("cam", "s3cret-pw")], Instant::now());
    assert_eq!(loaded.cameras[0].state.lock_left, Some(30 * MIN));
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn write_failure_is_reported_and_retried_after_an_interval() {
    let dir = tempdir("wfail");
    let sub = dir.join("gone");
    let path = sub.join("state");
    set_wall(T2025);
    let t0 = Instant::now();
    let (mut store, _) = Store::open(&path, opts(), &[key("cam", "s3cret-pw")], t0);
    let err = store.maybe_flush(t0).expect_err("folder missing");
    assert!(matches!(err, StoreError::Write(_)));
    let text = err.to_string();
    assert!(
        text.contains("create temp file") && text.contains("gone/.state.tmp"),
        "{text}"
    );
    let m = store.metrics();
    assert_eq!((m.writes, m.write_errors), (0, 1));
    assert!(m.last_error.is_some());
    assert!(store.is_dirty());
    fs::create_dir(&sub).expect("mkdir");
    assert!(
        !store
            .maybe_flush(t0 + Duration::from_secs(29))
            .expect("waits")
    );
    assert!(
        store
            .maybe_flush(t0 + Duration::from_secs(30))
            .expect("retries")
    );
    assert_eq!(store.metrics().last_error, None);
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn bounds_are_enforced_without_panics() {
    let dir = tempdir("bounds");
    let path = dir.join("state");
    let ids: Vec<String> = (0..MAX_CAMERAS + 2).map(|i| format!("c{i}")).collect();
    let mut cams: Vec<CameraKey<'_>> = ids.iter().map(|id| key(id, "s3cret-pw")).collect();
    let long = "x".repeat(65);
    cams.insert(0, key(&long, "s3cret-pw"));
    cams.insert(1, key("c0", "s3cret-pw"));
    set_wall(T2025);
    let t0 = Instant::now();
    let (mut store, loaded) = Store::open(&path, opts(), &cams, t0);
    assert_eq!(loaded.cameras.len(), cams.len());
    let untracked = loaded
        .cameras
        .iter()
        .filter(|c| c.origin == Origin::Untracked)
        .count();
    // The long id, one duplicate (the later "c0"), and the two past the cap.
    assert_eq!(untracked, 4);
    assert_eq!(loaded.warnings.len(), 4);
    assert!(
        loaded
            .warnings
            .iter()
            .all(|w| matches!(w, StoreWarning::Untracked { .. }))
    );
    assert!(matches!(
        store.update(&long, &CameraState::default(), t0),
        Err(StoreError::InvalidId { .. })
    ));
    assert!(matches!(
        store.update("one-more", &CameraState::default(), t0),
        Err(StoreError::TooManyCameras(_))
    ));
    assert!(store.flush(t0).expect("flush"));
    assert!(fs::metadata(&path).expect("meta").len() <= format::MAX_FILE_LEN as u64);
    assert_eq!(store.retain(&["c1", "c2"]), MAX_CAMERAS - 2);
    assert_eq!(store.ids().collect::<Vec<_>>(), ["c1", "c2"]);
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn store_is_send_and_the_interval_has_a_floor() {
    fn send<T: Send + 'static>() {}
    send::<Store>(); // the runtime may move it to a blocking thread for the fsync
    let dir = tempdir("floor");
    let path = dir.join("state");
    set_wall(T2025);
    let t0 = Instant::now();
    let zero = hikwatch::store::StoreOptions {
        flush_interval: Duration::ZERO,
        ..opts()
    };
    let (mut store, _) = Store::open(&path, zero, &[key("cam", "s3cret-pw")], t0);
    assert!(store.maybe_flush(t0).expect("flush"));
    store.update("cam", &backoff(), t0).expect("update");
    assert!(
        !store
            .maybe_flush(t0 + Duration::from_millis(999))
            .expect("flush")
    );
    assert!(
        store
            .maybe_flush(t0 + Duration::from_secs(1))
            .expect("flush")
    );
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_device_session_outlives_the_process_until_it_is_forgotten() {
    let dir = tempdir("device-session");
    set_wall(T2025);
    let path = dir.join("state");
    let cams = [key("isapi-cam", "pw"), key("sdk-cam", "pw")];
    let t0 = Instant::now();
    let (mut store, _) = Store::open(&path, opts(), &cams, t0);
    assert_eq!(store.device_session("isapi-cam"), None);
    // Remembered at login: a change, then none when the same session is set again.
    assert!(
        store
            .set_device_session("isapi-cam", Some("WebSession_ab=cd01"))
            .expect("valid session")
    );
    assert!(
        !store
            .set_device_session("isapi-cam", Some("WebSession_ab=cd01"))
            .expect("valid session")
    );
    // What would go into a header of its own, or no longer fit the file, is refused and
    // nothing is recorded.
    for bad in [
        "x\r\nHost: evil",
        "",
        &"y".repeat(format::MAX_SESSION_LEN + 1),
    ] {
        assert!(
            matches!(
                store.set_device_session("sdk-cam", Some(bad)),
                Err(StoreError::InvalidSession { .. })
            ),
            "{bad:?}"
        );
    }
    assert_eq!(store.device_session("sdk-cam"), None);
    store.flush(t0).expect("flush");
    drop(store);

    // The process was killed: the next one finds the session it has to end.
    let t1 = Instant::now();
    let (mut store, loaded) = Store::open(&path, opts(), &cams, t1);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(
        store.device_session("isapi-cam"),
        Some("WebSession_ab=cd01")
    );
    assert_eq!(store.device_session("sdk-cam"), None);
    // Ended on the device: forgotten, and so after the next restart too.
    assert!(store.set_device_session("isapi-cam", None).expect("forget"));
    store.flush(t1).expect("flush");
    drop(store);
    let (store, _) = Store::open(&path, opts(), &cams, Instant::now());
    assert_eq!(store.device_session("isapi-cam"), None);
    let _ = fs::remove_dir_all(&dir);
}
