//! SDK-layer tests against the C stand-in (`tests/fakesdk`), on every target (the armv7
//! build runs them under qemu). The SDK is process-global, so this binary loads it once
//! and shares it; a collector thread drains the one event receiver into a log that tests
//! search by their own uid / token.

use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hikwatch::sdk::{
    AsyncLoginResult, CallError, ErrorClass, ExceptionCode, LoginParams, Password, PoolOptions,
    Sdk, SdkError, SdkEvent, SdkLoginMode, SdkOptions, SdkPool, StreamParams, UserId,
};

struct Shared {
    sdk: Arc<Sdk>,
    pool: SdkPool,
    log: Arc<(Mutex<Vec<SdkEvent>>, Condvar)>,
}

fn shared() -> &'static Shared {
    static S: OnceLock<Shared> = OnceLock::new();
    S.get_or_init(|| {
        let opts = SdkOptions {
            stream_gap: Duration::from_millis(1000),
            ..SdkOptions::default()
        };
        let sdk = Sdk::load(&fakesdk::sdk_dir(), &opts).expect("load the stand-in SDK");
        let mut rx = sdk.events().expect("first receiver");
        assert!(sdk.events().is_none(), "only one receiver at a time");
        let log = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let sink = log.clone();
        std::thread::Builder::new()
            .name("collector".into())
            .spawn(move || {
                smol::block_on(async {
                    loop {
                        let ev = rx.recv().await;
                        let (m, cv) = &*sink;
                        m.lock().expect("log").push(ev);
                        cv.notify_all();
                    }
                })
            })
            .expect("collector thread");
        let pool = SdkPool::new(
            sdk.clone(),
            PoolOptions {
                threads: 4,
                max_threads: 12,
                queue: 1024,
                name: "fake".into(),
            },
        )
        .expect("pool");
        Shared { sdk, pool, log }
    })
}

fn wait_event(timeout: Duration, mut pred: impl FnMut(&SdkEvent) -> bool) -> Option<SdkEvent> {
    let (m, cv) = &*shared().log;
    let end = Instant::now() + timeout;
    let mut g = m.lock().expect("log");
    loop {
        if let Some(e) = g.iter().find(|e| pred(e)) {
            return Some(e.clone());
        }
        let now = Instant::now();
        if now >= end {
            return None;
        }
        g = cv.wait_timeout(g, end - now).expect("log").0;
    }
}

fn count_events(mut pred: impl FnMut(&SdkEvent) -> bool) -> usize {
    shared()
        .log
        .0
        .lock()
        .expect("log")
        .iter()
        .filter(|e| pred(e))
        .count()
}

fn params(script: &str) -> LoginParams {
    LoginParams {
        host: script.into(),
        port: 8000,
        user: "admin".into(),
        password: Password::new("pw".into()),
        mode: SdkLoginMode::Private,
    }
}

fn fake_config(uid: UserId) -> String {
    shared()
        .sdk
        .isapi(uid, "GET /fake/config")
        .expect("fake config")
}

#[test]
fn loads_with_version_and_rejects_a_second_instance() {
    let s = shared();
    assert_eq!(s.sdk.version().to_string(), fakesdk::VERSION);
    assert_eq!(s.sdk.version_word(), 0x0006_0001);
    assert!(s.sdk.dir().is_absolute());
    match Sdk::load(&fakesdk::sdk_dir(), &SdkOptions::default()) {
        Err(SdkError::AlreadyLoaded) => {}
        other => panic!("second load: {other:?}"),
    }
}

#[test]
fn init_cfg_names_the_folder_and_openssl() {
    let s = shared();
    let login = s.sdk.login(&params("127.0.0.1")).expect("login");
    let cfg = fake_config(login.uid);
    let dir = std::fs::canonicalize(fakesdk::sdk_dir()).expect("canonical");
    assert!(
        cfg.contains(&format!("sdk_path={}\n", dir.display())),
        "{cfg}"
    );
    assert!(
        cfg.contains(&format!(
            "crypto={}\n",
            dir.join("libcrypto.so.1.1").display()
        )),
        "{cfg}"
    );
    assert!(
        cfg.contains(&format!("ssl={}\n", dir.join("libssl.so.1.1").display())),
        "{cfg}"
    );
    assert!(cfg.contains("connect_ms=5000\n"), "{cfg}");
    assert!(cfg.contains("recv_ms=5000\n"), "{cfg}");
    s.sdk.logout(login.uid).expect("logout");
}

#[test]
fn sdk_reconnect_is_switchable() {
    let s = shared();
    let login = s.sdk.login(&params("127.0.0.1")).expect("login");
    // Off by default: hikwatch owns reconnects (only this test touches the switch).
    assert!(fake_config(login.uid).contains("reconnect=0\n"));
    s.sdk
        .set_sdk_reconnect(Some(Duration::from_secs(3)))
        .expect("on");
    let cfg = fake_config(login.uid);
    assert!(
        cfg.contains("reconnect=1\n") && cfg.contains("reconnect_ms=3000\n"),
        "{cfg}"
    );
    s.sdk.set_sdk_reconnect(None).expect("off");
    assert!(fake_config(login.uid).contains("reconnect=0\n"));
    s.sdk.logout(login.uid).expect("logout");
}

#[test]
fn login_heartbeat_device_info_logout() {
    let s = shared();
    let login = s
        .sdk
        .login(&params("serial=SER123;model=DS-TEST"))
        .expect("login");
    assert!(login.uid.0 >= 0);
    assert_eq!(login.serial, "SER123");
    assert_eq!(login.channels, 1);
    s.sdk.heartbeat(login.uid).expect("heartbeat");
    let info = s.sdk.device_info(login.uid).expect("device info");
    assert_eq!(info.model, "DS-TEST");
    assert_eq!(info.serial, "SER123");
    assert_eq!(info.mac, "00:11:22:33:44:55");
    assert_eq!(info.firmware, "V5.7.0 build 230410");
    assert_eq!(info.name, "fake & camera");
    s.sdk.logout(login.uid).expect("logout");
    let e = s
        .sdk
        .heartbeat(login.uid)
        .expect_err("heartbeat after logout");
    assert_eq!(e.code(), Some(47));
    assert_eq!(e.class(), ErrorClass::Network, "session gone: log in again");
}

#[test]
fn the_password_reaches_the_sdk() {
    let s = shared();
    let mut p = params("pw=right-one");
    p.password = Password::new("right-one".into());
    let login = s.sdk.login(&p).expect("right password");
    s.sdk.logout(login.uid).expect("logout");
    p.password = Password::new("wrong".into());
    let e = s.sdk.login(&p).expect_err("wrong password");
    assert_eq!(e.class(), ErrorClass::Auth { retries_left: None });
}

#[test]
fn login_failures_are_classified_with_lockout_details() {
    let s = shared();
    let cases: [(&str, u32, ErrorClass); 6] = [
        ("err=7", 7, ErrorClass::Network),
        ("err=10", 10, ErrorClass::Timeout),
        (
            "auth=4",
            1,
            ErrorClass::Auth {
                retries_left: Some(4),
            },
        ),
        (
            "lock=1742",
            153,
            ErrorClass::Locked {
                secs_left: Some(1742),
            },
        ),
        ("err=52", 52, ErrorClass::Resource),
        ("err=9999", 9999, ErrorClass::Unknown(9999)),
    ];
    for (script, code, class) in cases {
        match s.sdk.login(&params(script)) {
            Err(SdkError::Call {
                call,
                code: c,
                class: k,
                message,
            }) => {
                assert_eq!(call, "NET_DVR_Login_V40");
                assert_eq!((c, k), (code, class), "{script}");
                assert!(message.is_some(), "{script}: the SDK's message is kept");
            }
            other => panic!("{script}: {other:?}"),
        }
    }
}

#[test]
fn last_error_and_message_follow_the_failing_call() {
    let s = shared();
    assert!(s.sdk.logout(UserId(2047)).is_err());
    let (code, msg) = s.sdk.last_error();
    assert_eq!(code, 47);
    assert_eq!(msg.as_deref(), Some("User doest not exist."));
}

#[test]
fn exception_callback_reaches_the_queue() {
    let s = shared();
    let login = s.sdk.login(&params("exc=0x8000@100ms")).expect("login");
    let uid = login.uid;
    let ev = wait_event(
        Duration::from_secs(10),
        |e| matches!(e, SdkEvent::Exception { uid: u, kind, .. } if *u == uid && *kind == ExceptionCode::EXCHANGE),
    );
    assert!(ev.is_some(), "no EXCEPTION_EXCHANGE for {uid}");
    s.sdk.logout(uid).expect("logout");
}

#[test]
fn power_off_gives_error_7_and_an_exception() {
    let s = shared();
    let login = s.sdk.login(&params("down@200ms")).expect("login");
    let uid = login.uid;
    s.sdk.heartbeat(uid).expect("alive at first");
    let ev = wait_event(
        Duration::from_secs(10),
        |e| matches!(e, SdkEvent::Exception { uid: u, kind, .. } if *u == uid && *kind == ExceptionCode::EXCHANGE),
    );
    assert!(ev.is_some(), "no exception after power-off");
    // The event may be a stale one for an earlier session that had the same (reused) uid,
    // delivered before this device's own power-off; so wait for the heartbeat to fail
    // rather than expecting the very next one to.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let e = loop {
        match s.sdk.heartbeat(uid) {
            Err(e) => break e,
            Ok(()) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Ok(()) => panic!("heartbeat to a dead device kept succeeding"),
        }
    };
    assert_eq!(e.code(), Some(7));
    assert_eq!(e.class(), ErrorClass::Network);
    s.sdk.logout(uid).expect("logout");
}

#[test]
fn stream_counters_and_gap_transitions() {
    let s = shared();
    let login = s
        .sdk
        .login(&params("stream=50fps;gap=1800ms@1s;frame=1000"))
        .expect("login");
    let stream = s
        .sdk
        .start_stream(login.uid, &StreamParams::default())
        .expect("stream");
    let started = wait_event(
        Duration::from_secs(10),
        |e| matches!(e, SdkEvent::StreamStarted { stream: st } if *st == stream),
    );
    assert!(started.is_some(), "no StreamStarted");
    // During the pause the consumer sees the gap growing in the counters...
    let t = Instant::now();
    let mut saw_gap = false;
    while t.elapsed() < Duration::from_secs(10) {
        let st = s.sdk.stream_stats(stream).expect("running");
        if st
            .since_last_data
            .is_some_and(|d| d > Duration::from_millis(1200))
        {
            saw_gap = true;
            assert!(st.frames > 10 && st.bytes >= st.frames * 1000, "{st:?}");
            let stalled = s.sdk.stalled_streams(Duration::from_millis(1000));
            assert!(
                stalled
                    .iter()
                    .any(|(id, d)| *id == stream && *d > Duration::from_millis(1000)),
                "{stalled:?}"
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(saw_gap, "the data gap never showed in stream_stats");
    // ...and when data comes back one transition is queued.
    let resumed = wait_event(
        Duration::from_secs(10),
        |e| matches!(e, SdkEvent::StreamResumed { stream: st, gap } if *st == stream && *gap >= Duration::from_millis(1200)),
    );
    assert!(resumed.is_some(), "no StreamResumed");
    assert!(
        !s.sdk
            .stalled_streams(Duration::from_millis(1000))
            .iter()
            .any(|(id, _)| *id == stream),
        "data flows again"
    );
    let frames_before = s.sdk.stream_stats(stream).expect("running").frames;
    std::thread::sleep(Duration::from_millis(300));
    assert!(s.sdk.stream_stats(stream).expect("running").frames > frames_before);
    // Frames are counted, not queued: far fewer events than frames.
    let stream_events = count_events(
        |e| matches!(e, SdkEvent::StreamStarted { stream: st } | SdkEvent::StreamResumed { stream: st, .. } if *st == stream),
    );
    assert_eq!(stream_events, 2);
    s.sdk.stop_stream(stream).expect("stop");
    assert!(s.sdk.stream_stats(stream).is_none());
    s.sdk.logout(login.uid).expect("logout");
}

#[test]
fn realplay_failure_is_classified() {
    let s = shared();
    let login = s.sdk.login(&params("rp=46")).expect("login");
    let e = s
        .sdk
        .start_stream(login.uid, &StreamParams::default())
        .expect_err("realplay");
    assert_eq!(e.code(), Some(46));
    assert_eq!(e.class(), ErrorClass::Resource);
    s.sdk.logout(login.uid).expect("logout");
}

#[test]
fn async_login_results_arrive_as_events() {
    let s = shared();
    let uid = s
        .sdk
        .login_async(&params("serial=ASYNC1;delay=50"), 77)
        .expect("async");
    let ev = wait_event(Duration::from_secs(10), |e| {
        matches!(e, SdkEvent::AsyncLogin { token: 77, .. })
    })
    .expect("async result");
    match ev {
        SdkEvent::AsyncLogin {
            uid: u,
            result: AsyncLoginResult::Ok { serial },
            ..
        } => {
            assert_eq!(u, uid);
            assert!(
                serial.is_none() || serial.as_deref() == Some("ASYNC1"),
                "{serial:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    s.sdk.heartbeat(uid).expect("async session works");
    s.sdk.logout(uid).expect("logout");

    let bad = s.sdk.login_async(&params("err=7"), 78).expect("async");
    let ev = wait_event(Duration::from_secs(10), |e| {
        matches!(e, SdkEvent::AsyncLogin { token: 78, .. })
    })
    .expect("async failure");
    assert!(matches!(
        ev,
        SdkEvent::AsyncLogin { uid, result: AsyncLoginResult::Failed, .. } if uid == bad
    ));
    // The failed uid is dead but holds its slot until logged out (as the real SDK does).
    assert_eq!(s.sdk.heartbeat(bad).map_err(|e| e.code()), Err(Some(47)));
    s.sdk
        .logout(bad)
        .expect("a failed async login is still logged out");
    assert_eq!(s.sdk.logout(bad).map_err(|e| e.code()), Err(Some(47)));
}

#[test]
fn many_async_logins_at_once() {
    let s = shared();
    const N: u32 = 256;
    let base = 10_000;
    let mut uids = Vec::new();
    for i in 0..N {
        uids.push(
            s.sdk
                .login_async(&params("delay=100"), base + i)
                .expect("async"),
        );
    }
    let t = Instant::now();
    loop {
        let done = count_events(
            |e| matches!(e, SdkEvent::AsyncLogin { token, result: AsyncLoginResult::Ok { .. }, .. } if (base..base + N).contains(token)),
        );
        if done == N as usize {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "{done}/{N} results");
        std::thread::sleep(Duration::from_millis(20));
    }
    for uid in uids {
        s.sdk.logout(uid).expect("logout");
    }
}

#[test]
fn a_hung_login_does_not_stall_other_cameras() {
    let s = shared();
    smol::block_on(async {
        // Two logins that never return (more than half the pool's 4 workers)...
        let hung: Vec<_> = (0..2)
            .map(|_| {
                let pool = s.pool.clone();
                smol::spawn(
                    async move { pool.login(params("hang"), Duration::from_millis(300)).await },
                )
            })
            .collect();
        for h in hung {
            match h.await {
                Err(CallError::DeadlineExceeded { started: true, .. }) => {}
                other => panic!("hung login: {other:?}"),
            }
        }
        // ...while every other camera's calls keep completing.
        let t = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..40 {
            let pool = s.pool.clone();
            tasks.push(smol::spawn(async move {
                let l = pool
                    .login(
                        params(&format!("serial=OK{i};delay=20")),
                        Duration::from_secs(10),
                    )
                    .await
                    .expect("login while others hang");
                pool.heartbeat(l.uid, Duration::from_secs(10))
                    .await
                    .expect("heartbeat");
                pool.logout(l.uid, Duration::from_secs(10))
                    .await
                    .expect("logout");
            }));
        }
        for t in tasks {
            t.await;
        }
        assert!(t.elapsed() < Duration::from_secs(10));
        assert!(s.pool.stats().stuck >= 2, "{:?}", s.pool.stats());
    });
}

#[test]
fn a_late_login_is_still_delivered() {
    let s = shared();
    smol::block_on(async {
        let r = s
            .pool
            .login(params("delay=700;serial=LATE"), Duration::from_millis(100))
            .await;
        let late = match r {
            Err(CallError::DeadlineExceeded {
                started: true,
                late,
                ..
            }) => late,
            other => panic!("{other:?}"),
        };
        let login = late
            .result()
            .await
            .expect("delivered")
            .expect("login succeeded");
        assert_eq!(login.serial, "LATE");
        // The owner logs the late session out.
        s.sdk.logout(login.uid).expect("logout");
    });
}

#[test]
fn sdk_heartbeat_config_is_applied_at_load_and_can_be_changed() {
    use hikwatch::sdk::CheckOnline;
    let s = shared();
    // `SdkOptions::default()` configures the SDK's own heartbeat: 30 s, one failure.
    assert_eq!(
        s.sdk.check_online().expect("read back"),
        CheckOnline::DEFAULT
    );
    let login = s.sdk.login(&params("127.0.0.1")).expect("login");
    let cfg = fake_config(login.uid);
    assert!(cfg.contains("check_online_ms=30000\n"), "{cfg}");
    assert!(cfg.contains("check_online_fail=1\n"), "{cfg}");
    // Out of the header's range: refused before the SDK sees it.
    for bad in [
        CheckOnline {
            interval: Duration::from_secs(29),
            fail_max: 1,
        },
        CheckOnline {
            interval: Duration::from_secs(121),
            fail_max: 1,
        },
        CheckOnline {
            interval: Duration::from_secs(60),
            fail_max: 0,
        },
    ] {
        match s.sdk.set_check_online(bad) {
            Err(SdkError::InvalidArgument { field, .. }) => assert_eq!(field, "check_online"),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    let c = CheckOnline {
        interval: Duration::from_secs(60),
        fail_max: 3,
    };
    s.sdk.set_check_online(c).expect("set");
    assert_eq!(s.sdk.check_online().expect("read back"), c);
    s.sdk
        .set_check_online(CheckOnline::DEFAULT)
        .expect("restore the default");
    s.sdk.logout(login.uid).expect("logout");
}
