//! ISAPI protocol over plain TCP: login exchange, password scheme, sessions, resources,
//! error replies, single-write responses.

mod common;
use common::*;
use simcam::EventKind;
use std::time::Duration;

#[test]
fn password_scheme_known_answer() {
    // Computed independently with Python hashlib:
    //   r = H(user+salt+pwd); r = H(r+challenge); r = H(r) N-2 more times.
    let salt = "0F1E2D3C4B5A69788796A5B4C3D2E1F0";
    let ch = "8A7B6C5D4E3F2A1B";
    assert_eq!(
        simcam::irreversible_hash("admin", salt, "hik12345", ch, 100),
        "0f3d969ff15ba505b35b26e8a9553701cc9c232e35aadfe4a1f862cfc9d8eeb5"
    );
    assert_eq!(
        simcam::irreversible_hash("admin", salt, "hik12345", ch, 2),
        "00b3b14f9d0bd946238e6bf6c315723367c96bee61902abaf2ec7157dbb54692"
    );
}

#[test]
fn capabilities_fields_salt_fixed_challenge_fresh() {
    let f = fleet(1, |_| {});
    let mut c = Conn::open(f.addr(0)).unwrap();
    let get = |c: &mut Conn| {
        c.request(
            "GET",
            "/ISAPI/Security/sessionLogin/capabilities?username=admin&random=87654321",
            None,
            "",
        )
        .unwrap()
    };
    let a = get(&mut c);
    let b = get(&mut c);
    assert_eq!(a.status, 200);
    assert_eq!(a.tag("iterations").as_deref(), Some("100"));
    assert_eq!(a.tag("isIrreversible").as_deref(), Some("true"));
    assert_eq!(a.tag("salt"), b.tag("salt"), "salt is per user, fixed");
    assert_ne!(
        a.tag("challenge"),
        b.tag("challenge"),
        "challenge is fresh per login"
    );
    assert_ne!(a.tag("sessionID"), b.tag("sessionID"));
    assert_eq!(f.camera(0).stats().exchanges_in_flight, 2);
    assert_eq!(f.camera(0).stats().exchanges_hwm, 2);
}

#[test]
fn login_heartbeat_logout() {
    let f = fleet(2, |_| {});
    let cam = f.camera(1);
    let mut c = Conn::open(f.addr(1)).unwrap();
    let l = login_on(&mut c, USER, PASS).unwrap();
    assert_eq!(l.resp.status, 200, "{}", l.resp.body);
    assert_eq!(l.resp.tag("statusValue").as_deref(), Some("200"));
    assert_eq!(l.resp.tag("isActivated").as_deref(), Some("true"));
    assert_eq!(
        l.resp.tag("sessionID").as_deref(),
        Some(l.session_id.as_str())
    );
    let cookie = l.resp.header("Set-Cookie").unwrap();
    assert!(
        cookie.starts_with(&format!("WebSession={}", l.session_id)),
        "{cookie}"
    );
    let s = cam.stats();
    assert_eq!((s.logins_ok, s.sessions, s.exchanges_in_flight), (1, 1, 0));

    // Heartbeat on the same keep-alive connection, with the SDK's cookie form.
    let hb = c
        .request(
            "PUT",
            "/ISAPI/Security/sessionHeartbeat",
            Some(&l.cookie()),
            "",
        )
        .unwrap();
    assert_eq!(hb.status, 200, "{}", hb.body);
    assert_eq!(hb.tag("statusCode").as_deref(), Some("1"));
    assert_eq!(cam.stats().heartbeats_ok, 1);

    let out = c
        .request(
            "PUT",
            "/ISAPI/Security/sessionLogout",
            Some(&l.cookie()),
            "",
        )
        .unwrap();
    assert_eq!(out.status, 200);
    let s = cam.stats();
    assert_eq!((s.logouts, s.sessions, s.sessions_hwm), (1, 0, 1));

    // The session is gone: heartbeat now gets 401.
    let hb = c
        .request(
            "PUT",
            "/ISAPI/Security/sessionHeartbeat",
            Some(&l.cookie()),
            "",
        )
        .unwrap();
    assert_eq!(hb.status, 401);
    assert_eq!(cam.stats().heartbeats_rejected, 1);
    // Camera 0 saw nothing.
    assert_eq!(f.camera(0).stats().requests, 0);
}

#[test]
fn heartbeat_without_session_is_401() {
    let f = fleet(1, |_| {});
    let mut c = Conn::open(f.addr(0)).unwrap();
    let r = c
        .request("PUT", "/ISAPI/Security/sessionHeartbeat", None, "")
        .unwrap();
    assert_eq!(r.status, 401);
    let r = c
        .request(
            "PUT",
            "/ISAPI/Security/sessionHeartbeat",
            Some("WebSession=deadbeef"),
            "",
        )
        .unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(f.camera(0).stats().heartbeats_rejected, 2);
    assert!(
        f.camera(0)
            .events()
            .iter()
            .any(|e| e.kind == EventKind::HeartbeatRejected)
    );
}

#[test]
fn device_info_xml_and_json_per_camera() {
    let custom = simcam::Identity {
        name: "gate <1>".into(),
        model: "DS-2CD2T47G2-L".into(),
        serial: "DS-2CD2T47G2-L20230101AAWRJ12345678".into(),
        mac: "bc:ad:28:00:00:01".into(),
        firmware: "V5.7.15".into(),
        firmware_date: "build 230301".into(),
    };
    let f = fleet(2, |c| c.identities = vec![custom.clone()]);
    // Camera 0: custom identity, XML (escaped).
    let l = login(f.addr(0), USER, PASS).unwrap();
    let mut c = Conn::open(f.addr(0)).unwrap();
    let r = c
        .request("GET", "/ISAPI/System/deviceInfo", Some(&l.cookie()), "")
        .unwrap();
    assert_eq!(r.status, 200);
    assert!(r.header("Content-Type").unwrap().contains("xml"));
    assert_eq!(
        r.tag("serialNumber").as_deref(),
        Some(custom.serial.as_str())
    );
    assert_eq!(r.tag("macAddress").as_deref(), Some("bc:ad:28:00:00:01"));
    assert_eq!(r.tag("model").as_deref(), Some("DS-2CD2T47G2-L"));
    assert_eq!(r.tag("firmwareVersion").as_deref(), Some("V5.7.15"));
    assert_eq!(r.tag("deviceName").as_deref(), Some("gate &lt;1&gt;"));
    // Camera 1: default identity, JSON.
    let l = login(f.addr(1), USER, PASS).unwrap();
    let mut c = Conn::open(f.addr(1)).unwrap();
    let r = c
        .request(
            "GET",
            "/ISAPI/System/deviceInfo?format=json",
            Some(&l.cookie()),
            "",
        )
        .unwrap();
    assert_eq!(r.status, 200);
    assert!(r.header("Content-Type").unwrap().contains("json"));
    let id = simcam::Identity::for_index(1);
    assert!(r.body.starts_with("{\"DeviceInfo\":{"), "{}", r.body);
    assert!(
        r.body
            .contains(&format!("\"serialNumber\":\"{}\"", id.serial)),
        "{}",
        r.body
    );
    assert!(
        r.body.contains(&format!("\"macAddress\":\"{}\"", id.mac)),
        "{}",
        r.body
    );
    assert_ne!(id.serial, simcam::Identity::for_index(0).serial);
    assert_ne!(id.mac, simcam::Identity::for_index(0).mac);
    // Without a session: 401.
    let r = c
        .request("GET", "/ISAPI/System/deviceInfo", None, "")
        .unwrap();
    assert_eq!(r.status, 401);
}

#[test]
fn unknown_resource_is_404_not_support() {
    let f = fleet(1, |_| {});
    let mut c = Conn::open(f.addr(0)).unwrap();
    let l = login_on(&mut c, USER, PASS).unwrap();
    for path in [
        "/ISAPI/Streaming/channels/101",
        "/ISAPI/ContentMgmt/ZeroVideo/channels",
        "/x",
    ] {
        let r = c.request("GET", path, Some(&l.cookie()), "").unwrap();
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(
            r.tag("subStatusCode").as_deref(),
            Some("notSupport"),
            "{path}"
        );
        assert_eq!(r.tag("statusCode").as_deref(), Some("4"));
        assert_eq!(r.tag("requestURL").as_deref(), Some(path));
    }
    // The resources the SDK reads after login answer 200.
    for path in [
        "/ISAPI/Security/capabilities?username=admin",
        "/SDK/language",
        "/ISAPI/System/IO/inputs",
        "/ISAPI/System/IO/outputs",
        "/ISAPI/System/Video/inputs/channels",
        "/ISAPI/System/TwoWayAudio/channels",
        "/ISAPI/ContentMgmt/Storage/hdd",
    ] {
        let r = c.request("GET", path, Some(&l.cookie()), "").unwrap();
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
}

#[test]
fn bad_requests_get_4xx_and_close_never_panic() {
    let f = fleet(1, |_| {});
    let cases: [&[u8]; 5] = [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 garbage\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
        b"POST /ISAPI/Security/sessionLogin HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /a HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n",
        b"GET /ISAPI/Security/sessionLogin/capabilities HTTP/1.1\r\nX: \x01\x02\r\n\r\n",
    ];
    for raw in cases {
        let mut c = Conn::open(f.addr(0)).unwrap();
        c.send_raw(raw).unwrap();
        let r = c.recv().unwrap();
        assert!(
            (400..=501).contains(&r.status),
            "{:?} -> {}",
            String::from_utf8_lossy(raw),
            r.status
        );
        assert_eq!(r.header("Connection"), Some("close"));
    }
    // An oversized head.
    let mut c = Conn::open(f.addr(0)).unwrap();
    let mut big = b"GET /".to_vec();
    big.extend(std::iter::repeat_n(b'a', 20_000));
    let _ = c.send_raw(&big);
    let r = c.recv().unwrap();
    assert_eq!(r.status, 431);
    // A login body without the expected tags is a plain failed login, not a crash.
    let mut c = Conn::open(f.addr(0)).unwrap();
    let r = c
        .request("POST", "/ISAPI/Security/sessionLogin", None, "<x/>")
        .unwrap();
    assert_eq!(r.status, 401);
    // Still serving.
    assert_eq!(login(f.addr(0), USER, PASS).unwrap().resp.status, 200);
    assert!(
        f.camera(0)
            .events()
            .iter()
            .any(|e| e.kind == EventKind::BadRequest)
    );
}

#[test]
fn responses_leave_in_one_write_with_nodelay() {
    let f = fleet(1, |_| {});
    let from = f.next_seq();
    let mut c = Conn::open(f.addr(0)).unwrap();
    let l = login_on(&mut c, USER, PASS).unwrap();
    let open = f
        .wait_event(from, Duration::from_secs(5), |e| {
            e.kind == EventKind::ConnOpened
        })
        .expect("conn_opened event");
    assert!(open.detail.ends_with("nodelay=true"), "{}", open.detail);
    // Every response, head and body, arrives in the first read.
    for i in 0..50 {
        let path = if i % 2 == 0 {
            "/ISAPI/System/deviceInfo"
        } else {
            "/ISAPI/Security/sessionHeartbeat"
        };
        let method = if i % 2 == 0 { "GET" } else { "PUT" };
        let r = c.request(method, path, Some(&l.cookie()), "").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.reads, 1, "response {i} took {} reads", r.reads);
    }
}

#[test]
fn pipelined_requests_and_http10_close() {
    let f = fleet(1, |_| {});
    let mut c = Conn::open(f.addr(0)).unwrap();
    let one =
        "GET /ISAPI/Security/sessionLogin/capabilities?username=admin HTTP/1.1\r\nHost: a\r\n\r\n";
    c.send_raw(format!("{one}{one}").as_bytes()).unwrap();
    assert_eq!(c.recv().unwrap().status, 200);
    assert_eq!(c.recv().unwrap().status, 200);
    let mut c = Conn::open(f.addr(0)).unwrap();
    c.send_raw(b"GET /x HTTP/1.0\r\n\r\n").unwrap();
    let r = c.recv().unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.header("Connection"), Some("close"));
    assert!(c.read_to_close().unwrap().is_empty());
}

#[test]
fn logins_counted_and_stale_session_id_refused() {
    let f = fleet(1, |_| {});
    let mut c = Conn::open(f.addr(0)).unwrap();
    let body = "<SessionLogin><userName>admin</userName><password>00</password>\
                <sessionID>never-issued</sessionID></SessionLogin>";
    let r = c
        .request("POST", "/ISAPI/Security/sessionLogin", None, body)
        .unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.tag("lockStatus").as_deref(), Some("unlock"));
    let s = f.camera(0).stats();
    assert_eq!((s.logins_stale, s.logins_bad, s.logins_ok), (1, 0, 0));
}

#[test]
fn usable_from_async_tests_and_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<simcam::Fleet>();
    send_sync::<simcam::Camera>();
    let f = fleet(1, |_| {});
    let addr = f.addr(0);
    // An async client on the test's own executor, while simcam runs on its threads.
    let status = smol::block_on(async {
        use smol::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = smol::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /ISAPI/Security/sessionLogin/capabilities?username=admin HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    });
    assert!(status.starts_with("HTTP/1.1 200 OK\r\n"), "{status}");
    // Controls from another thread.
    let cam = f.camera(0);
    std::thread::spawn(move || cam.power_off()).join().unwrap();
    assert_eq!(f.camera(0).power(), simcam::Power::Off);
}
