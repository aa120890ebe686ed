//! Loading the SDK: every refusal names the path, symbol or architecture; Init/Cleanup
//! pairing; one instance per process; queue overflow coalescing. Each test loads and
//! drops its own `Sdk`, so they run one at a time (the SDK is process-global).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hikwatch::sdk::elf::{Machine, fake_header};
use hikwatch::sdk::{
    ExceptionCode, LoginParams, Password, Sdk, SdkError, SdkEvent, SdkLoginMode, SdkOptions, UserId,
};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hikwatch-sdkload-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// A copy of the stand-in's folder without `skip`.
fn sdk_copy(name: &str, skip: &str) -> PathBuf {
    let d = temp_dir(name);
    let src = fakesdk::sdk_dir();
    for f in ["libhcnetsdk.so", "libcrypto.so.1.1", "libssl.so.1.1"] {
        if f != skip {
            std::fs::copy(src.join(f), d.join(f)).expect("copy");
        }
    }
    if skip != "HCNetSDKCom" {
        std::fs::create_dir_all(d.join("HCNetSDKCom")).expect("mkdir");
    }
    d
}

/// A login the stand-in accepts (no script in the address).
fn any_login() -> LoginParams {
    LoginParams {
        host: "x".into(),
        port: 8000,
        user: "u".into(),
        password: Password::new("p".into()),
        mode: SdkLoginMode::Isapi,
    }
}

fn load(dir: &Path) -> Result<std::sync::Arc<Sdk>, SdkError> {
    Sdk::load(dir, &SdkOptions::default())
}

#[test]
fn missing_folder() {
    let _g = serial();
    let dir = temp_dir("nofolder").join("does-not-exist");
    let e = load(&dir).expect_err("missing folder");
    assert!(matches!(e, SdkError::DirMissing { .. }), "{e:?}");
    assert!(e.to_string().contains("does-not-exist"), "{e}");
}

#[test]
fn missing_library_and_companions_are_named() {
    let _g = serial();
    for (skip, needle) in [
        ("libhcnetsdk.so", "libhcnetsdk.so is missing"),
        ("HCNetSDKCom", "HCNetSDKCom is missing"),
        ("libcrypto.so.1.1", "libcrypto.so.1.1 is missing"),
        ("libssl.so.1.1", "libssl.so.1.1 is missing"),
    ] {
        let d = sdk_copy(&format!("skip-{skip}"), skip);
        let e = load(&d).expect_err(skip);
        assert!(matches!(e, SdkError::FileMissing { .. }), "{skip}: {e:?}");
        assert!(e.to_string().contains(needle), "{skip}: {e}");
        let _ = std::fs::remove_dir_all(&d);
    }
}

#[test]
fn wrong_architecture_is_named() {
    let _g = serial();
    let d = sdk_copy("arch", "libhcnetsdk.so");
    // A library for "the other" machine: ARM for x86 hosts, x86_64 otherwise.
    let other = if Machine::current().0 == 62 { 40 } else { 62 };
    std::fs::write(d.join("libhcnetsdk.so"), fake_header(other, other == 62)).expect("write");
    let e = load(&d).expect_err("wrong arch");
    let msg = e.to_string();
    let expect = format!(
        "libhcnetsdk.so is {} but this build runs on {}",
        Machine(other),
        Machine::current()
    );
    assert!(msg.starts_with(&expect), "{msg}");
    assert!(msg.contains(&d.display().to_string()), "{msg}");
    std::fs::write(d.join("libhcnetsdk.so"), b"#!/bin/sh\necho not a library\n").expect("write");
    let e = load(&d).expect_err("not elf");
    assert!(matches!(e, SdkError::NotElf { .. }), "{e:?}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn missing_symbol_is_named() {
    let _g = serial();
    let e = load(&fakesdk::missing_symbol_sdk_dir()).expect_err("missing symbol");
    match &e {
        SdkError::MissingSymbol { symbol, path } => {
            assert_eq!(*symbol, "NET_DVR_STDXMLConfig");
            assert!(path.ends_with("libhcnetsdk.so"));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        e.to_string()
            .contains("does not export NET_DVR_STDXMLConfig")
    );
}

#[test]
fn too_old_sdk_is_refused() {
    let _g = serial();
    let e = load(&fakesdk::old_sdk_dir()).expect_err("old");
    match &e {
        SdkError::TooOld { found, minimum, .. } => {
            assert_eq!(found.to_string(), "5.3.0.0");
            assert_eq!(minimum.to_string(), "6.1.0.0");
        }
        other => panic!("{other:?}"),
    }
    // A refused load leaves no instance behind.
    drop(load(&fakesdk::sdk_dir()).expect("a good SDK loads afterwards"));
}

#[test]
fn failed_init_is_not_cleaned_up() {
    let _g = serial();
    // A copy of the stand-in is a library of its own (own globals); the folder name makes
    // its NET_DVR_Init fail.
    let dir = sdk_copy("FAKE-INIT-FAILS", "");
    let e = load(&dir).expect_err("Init fails");
    match &e {
        SdkError::Call { call, code, .. } => {
            assert_eq!((*call, *code), ("NET_DVR_Init", 41), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !dir.join("UNPAIRED-CLEANUP").exists(),
        "NET_DVR_Cleanup was called although NET_DVR_Init failed"
    );
    // The failed load left no instance behind.
    drop(load(&fakesdk::sdk_dir()).expect("a good SDK loads afterwards"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn one_instance_owns_init_and_cleanup() {
    let _g = serial();
    let sdk = load(&fakesdk::sdk_dir()).expect("load");
    assert!(matches!(
        load(&fakesdk::sdk_dir()),
        Err(SdkError::AlreadyLoaded)
    ));
    let login = sdk.login(&any_login()).expect("login");
    let clone = sdk.clone();
    drop(sdk);
    // Still alive through the clone: Cleanup has not run.
    clone.heartbeat(login.uid).expect("alive");
    drop(clone);
    // Cleanup ran (the stand-in forgets sessions), and a new instance can load.
    let sdk = load(&fakesdk::sdk_dir()).expect("reload");
    assert_eq!(
        sdk.heartbeat(login.uid).map_err(|e| e.code()),
        Err(Some(47))
    );
    assert_eq!(sdk.state().expect("state").logins, 0);
}

#[test]
fn queue_overflow_is_counted_and_coalesced_per_uid() {
    let _g = serial();
    let sdk = load(&fakesdk::sdk_dir()).expect("load");
    let mut rx = sdk.events().expect("receiver");
    let p = |script: &str| LoginParams {
        host: script.into(),
        port: 8000,
        user: "u".into(),
        password: Password::new("p".into()),
        mode: SdkLoginMode::Private,
    };
    let before = sdk.event_counters().dropped;
    // 5000 preview exceptions for one uid and one 0x8000 for another, while nobody reads.
    let a = sdk.login(&p("exc=0x8003@50msx5000")).expect("login a").uid;
    let b = sdk.login(&p("exc=0x8000@400ms")).expect("login b").uid;
    let t = Instant::now();
    while sdk.event_counters().dropped < before + 5000 - 1024 + 1 {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{:?}",
            sdk.event_counters()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(600));
    let mut events = Vec::new();
    while let Some(e) = rx.try_recv() {
        events.push(e);
    }
    let queued_a = events
        .iter()
        .filter(|e| matches!(e, SdkEvent::Exception { uid, coalesced: false, .. } if *uid == a))
        .count();
    assert_eq!(queued_a, 1024, "the queue holds exactly its capacity");
    let coalesced = |uid: UserId, kind: ExceptionCode| {
        events.iter().any(|e| {
            matches!(e, SdkEvent::Exception { uid: u, kind: k, coalesced: true, .. } if *u == uid && *k == kind)
        })
    };
    assert!(
        coalesced(a, ExceptionCode::PREVIEW),
        "a's overflow folded into one event"
    );
    assert!(
        coalesced(b, ExceptionCode::EXCHANGE),
        "b's exception not lost"
    );
    let overflow: u64 = events
        .iter()
        .map(|e| match e {
            SdkEvent::Overflow { dropped, .. } => *dropped,
            _ => 0,
        })
        .sum();
    assert_eq!(
        overflow,
        5000 + 1 - 1024,
        "every dropped callback is counted"
    );
    assert_eq!(sdk.event_counters().panics, 0);
    // After draining, new events flow normally again.
    let c = sdk.login(&p("exc=0x8000@50ms")).expect("login c").uid;
    let got = smol::block_on(async {
        loop {
            match rx.recv_timeout(Duration::from_secs(10)).await {
                Some(SdkEvent::Exception {
                    uid,
                    coalesced: false,
                    ..
                }) if uid == c => {
                    break true;
                }
                Some(_) => continue,
                None => break false,
            }
        }
    });
    assert!(got, "events flow after an overflow");
    for uid in [a, b, c] {
        sdk.logout(uid).expect("logout");
    }
}

/// The OpenSSL files of each vendor layout reach `NET_DVR_SetSDKInitCfg` 3/4: 6.1.8.x and
/// 6.1.9.x ship `libcrypto.so.1.1` / `libssl.so.1.1`; 6.1.6.3 ships OpenSSL 1.0 as
/// `libcrypto.so` + `libcrypto.so.1.0.0` and a bare `libssl.so`. (The real 6.1.6.3 itself
/// runs the real-SDK tests in the release matrix of `scripts/test.sh`.)
#[test]
fn openssl_file_names_of_every_release_layout() {
    let _g = serial();
    let layouts: [(&str, &[&str], &str, &str); 2] = [
        (
            "ossl11",
            &[
                "libcrypto.so",
                "libcrypto.so.1.1",
                "libssl.so",
                "libssl.so.1.1",
            ],
            "libcrypto.so.1.1",
            "libssl.so.1.1",
        ),
        (
            "ossl10",
            &["libcrypto.so", "libcrypto.so.1.0.0", "libssl.so"],
            "libcrypto.so.1.0.0",
            "libssl.so",
        ),
    ];
    for (name, files, crypto, ssl) in layouts {
        let d = sdk_copy(name, "libcrypto.so.1.1");
        std::fs::remove_file(d.join("libssl.so.1.1")).expect("rm");
        for f in files {
            std::fs::write(d.join(f), b"placeholder\n").expect("write");
        }
        let sdk = load(&d).unwrap_or_else(|e| panic!("{name}: {e}"));
        let uid = sdk
            .login(&any_login())
            .unwrap_or_else(|e| panic!("{name}: login: {e}"))
            .uid;
        let cfg = sdk.isapi(uid, "GET /fake/config").expect("fake config");
        let dir = std::fs::canonicalize(&d).expect("canonical");
        for (key, file) in [("crypto", crypto), ("ssl", ssl)] {
            let want = format!("{key}={}\n", dir.join(file).display());
            assert!(cfg.contains(&want), "{name}: no {want:?} in\n{cfg}");
        }
        sdk.logout(uid).expect("logout");
        drop(sdk);
        let _ = std::fs::remove_dir_all(&d);
    }
}
