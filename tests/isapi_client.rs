//! The pure-ISAPI client against simcam (session login and Digest, lockout answers,
//! heartbeat, logout, the event stream) and against hostile raw servers (slow-loris,
//! endless heads and bodies, garbage, silence), plus a seeded fuzz of its parsers. Every
//! failure must be a classified error within its deadline: never a hang or a panic.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use harness::patient;
use hikwatch::isapi::alert::parse_part;
use hikwatch::isapi::http::{HttpLimits, parse_response};
use hikwatch::isapi::{
    AlertEvent, IsapiAuthMethod, IsapiClient, IsapiError, IsapiOptions, auth, xml,
};
use hikwatch::sdk::{ErrorClass, LoginFailure, classify};
use simcam::{Fleet, FleetConfig};

const USER: &str = "admin";
const PASS: &[u8] = b"hik12345";

fn fleet(threshold: u32) -> Fleet {
    Fleet::start(FleetConfig {
        cameras: 1,
        lockout_threshold: threshold,
        ..FleetConfig::default()
    })
    .expect("simcam")
}

fn client(addr: SocketAddr) -> IsapiClient {
    IsapiClient::new(
        addr,
        IsapiOptions {
            request_timeout: patient(Duration::from_secs(5)),
            ..IsapiOptions::default()
        },
    )
}

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    async_io::block_on(f)
}

/// The class the SDK backend gives SDK error `code` with these lockout fields.
fn sdk_class(code: u32, retries: u8, secs: u32) -> ErrorClass {
    classify(
        code,
        &LoginFailure {
            support_lock: true,
            retry_login_time: retries,
            surplus_lock_time: secs,
        },
    )
}

#[test]
fn session_login_heartbeat_device_info_logout() {
    let f = fleet(7);
    let cam = f.camera(0);
    let mut c = client(f.addr(0));
    run(async {
        let login = c.login(USER, PASS).await.expect("login");
        assert_eq!(login.method, IsapiAuthMethod::Session);
        let sid = login.session_id.expect("session id");
        assert_eq!(c.session_id(), Some(sid.as_str()));
        assert_eq!(cam.stats().sessions, 1);
        c.heartbeat().await.expect("heartbeat");
        c.heartbeat()
            .await
            .expect("heartbeat on the kept-alive connection");
        assert_eq!(cam.stats().heartbeats_ok, 2);
        let d = c.device_info().await.expect("device info");
        assert_eq!(d.serial, cam.identity().serial);
        assert_eq!(d.model, cam.identity().model);
        assert_eq!(d.mac, cam.identity().mac);
        c.logout().await.expect("logout");
        let s = cam.stats();
        assert_eq!((s.logouts, s.sessions, s.logins_ok), (1, 0, 1));
        // No Basic credentials ever leave the client.
        assert!(c.heartbeat().await.is_err());
    });
    // One TCP connection carried capabilities, login, heartbeats and device info.
    assert_eq!(cam.stats().accepted, 1, "keep-alive");
}

#[test]
fn a_session_left_by_a_killed_process_is_ended_by_its_cookie() {
    let f = fleet(7);
    let cam = f.camera(0);
    let cookie = run(async {
        let mut first = client(f.addr(0));
        first.login(USER, PASS).await.expect("login");
        let cookie = first.session_cookie().expect("session cookie").to_owned();
        // Dropped without a logout: what a kill -9 leaves.
        drop(first);
        cookie
    });
    assert_eq!(cam.stats().sessions, 1);
    run(async {
        let mut next = client(f.addr(0));
        next.end_left_session(&cookie).await.expect("ended");
        assert_eq!(cam.stats().sessions, 0);
        // Ending it again (or one the camera expired) is no error: the slot is free.
        next.end_left_session(&cookie).await.expect("already gone");
        // A cookie that would break the request is refused before anything is sent.
        let accepted = cam.stats().accepted;
        assert!(matches!(
            next.end_left_session("a\r\nHost: x").await,
            Err(IsapiError::Unsupported(_))
        ));
        assert_eq!(cam.stats().accepted, accepted);
    });
    assert_eq!(cam.stats().logouts, 1);
}

#[test]
fn heartbeat_401_is_session_lost_in_the_network_class() {
    let f = fleet(7);
    let mut c = client(f.addr(0));
    run(async {
        c.login(USER, PASS).await.expect("login");
        f.camera(0).drop_sessions();
        let e = c.heartbeat().await.expect_err("session dropped");
        assert!(matches!(e, IsapiError::SessionLost), "{e:?}");
        assert_eq!(e.class(), ErrorClass::Network);
        // A reboot (new connection, session forgotten) gives the same.
        c.login(USER, PASS).await.expect("login again");
        f.camera(0).power_off();
        f.camera(0).power_on().expect("power on");
        let e = c.heartbeat().await.expect_err("rebooted");
        assert_eq!(e.class(), ErrorClass::Network, "{e:?}");
    });
}

#[test]
fn wrong_password_counts_down_then_locks_like_sdk_errors_1_and_153() {
    let f = fleet(3);
    let mut c = client(f.addr(0));
    run(async {
        for left in [2u8, 1] {
            let e = c.login(USER, b"wrong").await.expect_err("wrong password");
            assert!(
                matches!(e, IsapiError::Auth { retries_left: Some(n) } if n == left),
                "{e:?}"
            );
            assert_eq!(e.class(), sdk_class(1, left, 0));
        }
        let e = c
            .login(USER, b"wrong")
            .await
            .expect_err("third wrong locks");
        assert!(
            matches!(
                e,
                IsapiError::Locked {
                    secs_left: Some(1800)
                }
            ),
            "{e:?}"
        );
        assert_eq!(e.class(), sdk_class(153, 0, 1800));
        // The right password during the lock is refused as locked, too.
        let e = c.login(USER, PASS).await.expect_err("locked");
        assert_eq!(e.class(), sdk_class(153, 0, 1800));
    });
    let s = f.camera(0).stats();
    assert_eq!((s.logins_bad, s.logins_locked, s.logins_ok), (3, 1, 0));
}

#[test]
fn session_limit_503_is_the_resource_class() {
    let f = fleet(7);
    f.camera(0).set_session_limit(Some(0));
    let mut c = client(f.addr(0));
    let e = run(c.login(USER, PASS)).expect_err("limit");
    assert!(matches!(e, IsapiError::Busy), "{e:?}");
    assert_eq!(e.class(), ErrorClass::Resource);
}

#[test]
fn digest_login_heartbeat_stale_nonce_and_lockout() {
    let f = fleet(3);
    let cam = f.camera(0);
    cam.set_digest_only(true);
    let mut c = client(f.addr(0));
    run(async {
        let login = c.login(USER, PASS).await.expect("digest login");
        assert_eq!(
            (login.method, login.session_id),
            (IsapiAuthMethod::Digest, None)
        );
        c.heartbeat().await.expect("heartbeat");
        cam.expire_digest_nonces();
        c.heartbeat()
            .await
            .expect("a stale nonce is renewed, not a failure");
        let d = c.device_info().await.expect("device info");
        assert_eq!(d.serial, cam.identity().serial);
        // The event stream with Digest, and after a stale nonce.
        cam.set_alert_heartbeat(Duration::from_millis(100));
        cam.expire_digest_nonces();
        let mut stream = c
            .open_alert_stream(patient(Duration::from_secs(2)))
            .await
            .expect("digest event stream");
        assert_eq!(
            stream.next_event().await.expect("heartbeat"),
            AlertEvent::Heartbeat
        );
        drop(stream);
        c.logout().await.expect("digest logout");
        assert_eq!(cam.stats().logins_bad, 0);

        let e = c.login(USER, b"wrong").await.expect_err("wrong");
        assert_eq!(e.class(), sdk_class(1, 2, 0), "{e:?}");
        let e = c.login(USER, b"wrong").await.expect_err("wrong");
        assert_eq!(e.class(), sdk_class(1, 1, 0), "{e:?}");
        let e = c.login(USER, b"wrong").await.expect_err("locks");
        assert_eq!(e.class(), sdk_class(153, 0, 1800), "{e:?}");
    });
    // Each wrong login was exactly one attempt at the camera.
    assert_eq!(cam.stats().logins_bad, 3);
}

#[test]
fn alert_stream_heartbeats_events_end_silence_and_power_off() {
    let f = fleet(7);
    let cam = f.camera(0);
    cam.set_alert_heartbeat(Duration::from_millis(100));
    let mut c = client(f.addr(0));
    run(async {
        c.login(USER, PASS).await.expect("login");
        let silence = patient(Duration::from_millis(1500));
        let mut s = c.open_alert_stream(silence).await.expect("stream");
        assert_eq!(
            s.next_event().await.expect("heartbeat"),
            AlertEvent::Heartbeat
        );
        cam.push_alert_event("VMD", true);
        let ev = loop {
            match s.next_event().await.expect("event") {
                AlertEvent::Heartbeat => continue,
                other => break other,
            }
        };
        assert_eq!(
            ev,
            AlertEvent::Event {
                event_type: "VMD".into(),
                active: true,
                channel: Some(1)
            }
        );
        // The request connection stays usable beside the stream.
        c.heartbeat().await.expect("heartbeat beside the stream");
        cam.end_alert_streams();
        let e = loop {
            match s.next_event().await {
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        assert!(matches!(e, IsapiError::StreamEnded), "{e:?}");
        assert_eq!(e.class(), ErrorClass::Network);

        let mut s = c.open_alert_stream(silence).await.expect("stream 2");
        s.next_event().await.expect("heartbeat");
        cam.stall_alert_streams(true);
        let t = Instant::now();
        let e = loop {
            match s.next_event().await {
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        assert!(matches!(e, IsapiError::StreamSilent), "{e:?}");
        assert_eq!(e.class(), ErrorClass::Network);
        assert!(t.elapsed() < silence * 3, "{:?}", t.elapsed());
        cam.stall_alert_streams(false);

        let mut s = c.open_alert_stream(silence).await.expect("stream 3");
        s.next_event().await.expect("heartbeat");
        cam.power_off();
        let e = loop {
            match s.next_event().await {
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        assert!(matches!(e, IsapiError::StreamEnded), "{e:?}");
    });
}

#[test]
fn alert_stream_needs_a_session() {
    let f = fleet(7);
    let mut c = client(f.addr(0));
    run(async {
        c.login(USER, PASS).await.expect("login");
        f.camera(0).drop_sessions();
        let e = c
            .open_alert_stream(Duration::from_secs(1))
            .await
            .expect_err("401");
        assert!(matches!(e, IsapiError::SessionLost), "{e:?}");
    });
}

/// A one-connection raw server: accepts, reads the request, then runs `answer`.
fn raw_server(answer: impl FnOnce(std::net::TcpStream) + Send + 'static) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            answer(s);
        }
    });
    addr
}

/// The client's login against `addr` with a short deadline: its error and how long it took.
fn login_against(addr: SocketAddr, timeout: Duration) -> (IsapiError, Duration) {
    let mut c = IsapiClient::new(
        addr,
        IsapiOptions {
            request_timeout: timeout,
            limits: HttpLimits {
                max_head: 4096,
                max_headers: 16,
                max_body: 64 * 1024,
            },
            ..IsapiOptions::default()
        },
    );
    let t = Instant::now();
    let e = run(c.login(USER, PASS)).expect_err("hostile server");
    (e, t.elapsed())
}

#[test]
fn slow_loris_and_hostile_answers_end_in_classified_errors() {
    let timeout = patient(Duration::from_millis(800));
    let bound = timeout + patient(Duration::from_secs(2));
    // Slow-loris: a valid start, then one header byte every 50 ms, forever.
    let addr = raw_server(|mut s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nX-Slow: ");
        for _ in 0..400 {
            std::thread::sleep(Duration::from_millis(50));
            if s.write_all(b"a").is_err() {
                return;
            }
        }
    });
    let (e, took) = login_against(addr, timeout);
    assert!(matches!(e, IsapiError::Timeout), "{e:?}");
    assert_eq!(e.class(), ErrorClass::Timeout);
    assert!(took < bound, "slow-loris took {took:?}");

    // Slow-loris in the body: Content-Length promised, a byte every 50 ms.
    let addr = raw_server(|mut s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n<");
        for _ in 0..400 {
            std::thread::sleep(Duration::from_millis(50));
            if s.write_all(b"a").is_err() {
                return;
            }
        }
    });
    let (e, took) = login_against(addr, timeout);
    assert!(matches!(e, IsapiError::Timeout), "{e:?}");
    assert!(took < bound, "slow body took {took:?}");

    // Silence: accepts, reads, never answers.
    let addr = raw_server(|s| {
        // Far past the deadline (8 s under qemu); the test does not wait for it.
        std::thread::sleep(Duration::from_secs(60));
        drop(s);
    });
    let (e, took) = login_against(addr, timeout);
    assert!(matches!(e, IsapiError::Timeout), "{e:?}");
    assert!(took < bound, "silence took {took:?}");

    // A never-ending head, sent fast: the head limit, not the deadline.
    let addr = raw_server(|mut s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\n");
        let line = b"X-Junk: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
        for _ in 0..100_000 {
            if s.write_all(line).is_err() {
                return;
            }
        }
    });
    let (e, _) = login_against(addr, patient(Duration::from_secs(5)));
    assert!(matches!(e, IsapiError::TooLarge(_)), "{e:?}");
    assert_eq!(e.class(), ErrorClass::Network);

    // An endless body without a length: the body limit.
    let addr = raw_server(|mut s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        let chunk = [b'x'; 4096];
        for _ in 0..10_000 {
            if s.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let (e, _) = login_against(addr, patient(Duration::from_secs(5)));
    assert!(matches!(e, IsapiError::TooLarge(_)), "{e:?}");

    // Garbage.
    let addr = raw_server(|mut s| {
        let _ = s.write_all(b"\x16\x03\x01\x02\x00garbage that is not HTTP\r\n\r\n");
    });
    let (e, _) = login_against(addr, patient(Duration::from_secs(5)));
    assert!(matches!(e, IsapiError::Malformed(_)), "{e:?}");

    // Closed mid-answer.
    let addr = raw_server(|mut s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort");
    });
    let (e, _) = login_against(addr, patient(Duration::from_secs(5)));
    assert!(matches!(e, IsapiError::Closed), "{e:?}");

    // Only Basic offered: refused, nothing sent.
    let addr = raw_server(|mut s| {
        let _ = s.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\n\r\n",
        );
    });
    let (e, _) = login_against(addr, patient(Duration::from_secs(5)));
    assert!(matches!(e, IsapiError::Unsupported(_)), "{e:?}");
    assert_eq!(e.class(), ErrorClass::Unsupported);
}

#[test]
fn slow_loris_event_stream_is_silent() {
    // A stream that dribbles bytes of a part that never completes.
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        // Connection 1: the capabilities answer says "no session login" (404), then a Digest
        // challenge for deviceInfo, then 200 for the authenticated deviceInfo. Connection 2:
        // the stream.
        for n in 1.. {
            let Ok((mut s, _)) = l.accept() else { return };
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                let mut buf = [0u8; 4096];
                if n == 1 {
                    for reply in [
                        &b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"[..],
                        b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"r\", nonce=\"n\", qop=\"auth\"\r\nContent-Length: 0\r\n\r\n",
                        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                    ] {
                        let _ = s.read(&mut buf);
                        let _ = s.write_all(reply);
                    }
                    std::thread::sleep(Duration::from_secs(10));
                } else {
                    let _ = s.read(&mut buf);
                    let _ = s.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Length: 100000\r\n\r\n",
                    );
                    for _ in 0..400 {
                        std::thread::sleep(Duration::from_millis(20));
                        if s.write_all(b"x").is_err() {
                            break;
                        }
                    }
                }
            });
        }
    });
    let mut c = client(addr);
    run(async {
        c.login(USER, PASS)
            .await
            .expect("digest login against the raw server");
        let silence = patient(Duration::from_millis(600));
        let mut s = c.open_alert_stream(silence).await.expect("stream");
        let t = Instant::now();
        let e = s.next_event().await.expect_err("dribble");
        assert!(matches!(e, IsapiError::StreamSilent), "{e:?}");
        assert!(t.elapsed() < silence * 3, "{:?}", t.elapsed());
    });
}

/// Seeded fuzz of every parser the client runs on device input: HTTP answers (whole and
/// fed in random slices, as the socket delivers them), event-stream parts, XML fields,
/// login capabilities, lockout documents and Digest challenges. The seed is printed;
/// `ISAPI_FUZZ_SEED=N` replays a run.
#[test]
fn fuzz_parsers() {
    let seed = std::env::var("ISAPI_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    println!("isapi fuzz seed {seed} (replay with ISAPI_FUZZ_SEED={seed})");
    let mut rng = fastrand::Rng::with_seed(seed);
    let limits = HttpLimits {
        max_head: 2048,
        max_headers: 16,
        max_body: 4096,
    };
    let seeds: &[&[u8]] = &[
        b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: 60\r\n\r\n<DeviceInfo><model>DS</model><serialNumber>S1</serialNumber></DeviceInfo>",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n<a>1<\r\n4\r\n/a>x\r\n0\r\n\r\n",
        b"HTTP/1.0 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"r\", nonce=\"abc\", qop=\"auth\", stale=TRUE\r\n\r\n<userCheck><lockStatus>lock</lockStatus><unlockTime>5</unlockTime></userCheck>",
        b"HTTP/1.1 200 OK\r\nSet-Cookie: WebSession_1=abc; path=/\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 999999999999999999999\r\n\r\n",
    ];
    let part_seeds: &[&[u8]] = &[
        b"--b\r\nContent-Type: application/xml\r\nContent-Length: 20\r\n\r\n<eventType>VMD</eventType>\r\n--b\r\n",
        b"preamble\r\n--b\r\n\r\n<x>1</x>\r\n--b--\r\n",
        b"--b  \r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\xff\r\n--b",
    ];
    let mutate = |rng: &mut fastrand::Rng, src: &[u8]| -> Vec<u8> {
        let mut v = src.to_vec();
        for _ in 0..rng.usize(0..6) {
            match rng.u8(0..7) {
                0 if !v.is_empty() => {
                    let i = rng.usize(..v.len());
                    v[i] = rng.u8(..);
                }
                1 if !v.is_empty() => {
                    v.truncate(rng.usize(..v.len()));
                }
                2 => {
                    let i = rng.usize(..=v.len());
                    let junk: Vec<u8> = (0..rng.usize(1..64)).map(|_| rng.u8(..)).collect();
                    v.splice(i..i, junk);
                }
                3 => {
                    let i = rng.usize(..=v.len());
                    let tok: &[u8] = [
                        &b"\r\n"[..],
                        b"\r\n\r\n",
                        b"Content-Length: 7\r\n",
                        b"Transfer-Encoding: chunked\r\n",
                        b"ffffffff\r\n",
                        b"--b",
                        b"<",
                        b"&#x110000;",
                        b"\"",
                    ][rng.usize(..9)];
                    v.splice(i..i, tok.iter().copied());
                }
                4 if !v.is_empty() => {
                    let a = rng.usize(..v.len());
                    let b = rng.usize(a..=v.len());
                    let dup = v[a..b].to_vec();
                    v.extend_from_slice(&dup);
                }
                5 => v.extend((0..rng.usize(0..3000)).map(|_| b'a')),
                _ => {}
            }
        }
        v
    };
    let cases = 4000;
    for case in 0..cases {
        let src = seeds[rng.usize(..seeds.len())];
        let buf = mutate(&mut rng, src);
        // Whole buffer, with and without the end of the connection.
        for eof in [false, true] {
            if let Ok(Some((r, used))) = parse_response(&buf, eof, &limits) {
                assert!(used <= buf.len(), "case {case}: used past the end");
                assert!(
                    r.body.len() <= limits.max_body,
                    "case {case}: body over the limit"
                );
                let text = r.text();
                let _ = xml::field(&text, "model");
                let _ = auth::parse_capabilities(&text);
                let _ = auth::login_refusal(&text);
                let _ = auth::session_cookie(r.head.headers_named("set-cookie"));
                let _ = auth::parse_digest_challenge(r.head.headers_named("www-authenticate"));
            }
        }
        // Fed in growing prefixes, as reads deliver it: an answer complete at a prefix must
        // be the same answer the whole buffer gives (bytes after it belong to the next).
        let mut cut = 0;
        while cut < buf.len() {
            cut = (cut + rng.usize(1..64)).min(buf.len());
            match parse_response(&buf[..cut], false, &limits) {
                Ok(None) => {}
                Ok(Some((r, used))) => {
                    assert!(used <= cut);
                    let whole = parse_response(&buf, false, &limits);
                    assert!(
                        matches!(&whole, Ok(Some((w, u))) if w == &r && *u == used),
                        "case {case}: prefix {cut} parsed differently from the whole"
                    );
                    break;
                }
                Err(_) => break,
            }
        }
        let psrc = part_seeds[rng.usize(..part_seeds.len())];
        let pbuf = mutate(&mut rng, psrc);
        if let Ok(Some((p, used))) = parse_part(&pbuf, b"--b", 1024) {
            assert!(used <= pbuf.len() && p.body.len() <= 1024, "case {case}");
            let _ = p.event();
        }
        let doc = String::from_utf8_lossy(&buf);
        let _ = xml::field(&doc, "eventType");
        let _ = auth::parse_digest_challenge(std::iter::once(doc.as_ref()));
    }
    println!("isapi fuzz: {cases} cases, seed {seed}");
}
