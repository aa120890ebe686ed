//! The RTSP client (`hikwatch::isapi::rtsp`) against simcam's RTSP server (frames arrive,
//! TEARDOWN, Digest, the stream limit, a halted or stalled encoder, power-off) and against
//! scripted hostile servers (garbage, endless and slow heads, a missing `Session`, a bogus
//! interleaved frame, a close mid-stream, Basic only, keepalives), plus a proptest of the
//! pure parsers. Every failure must be a classified error within its deadline: never a
//! hang or a panic. Nothing here is x86_64-specific (qemu runs it for armv7 and aarch64).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use harness::patient;
use hikwatch::isapi::http::HttpLimits;
use hikwatch::isapi::rtsp::{
    RtspMessage, parse_message, parse_response, parse_session, rtp_marker, sdp_controls,
    stream_path,
};
use hikwatch::isapi::{IsapiError, RtspOptions, RtspSession};
use hikwatch::sdk::ErrorClass;
use proptest::prelude::*;
use simcam::{EventKind, Fleet, FleetConfig};

const USER: &str = "admin";
const PASS: &[u8] = b"hik12345";

fn fleet() -> Fleet {
    Fleet::start(FleetConfig {
        cameras: 1,
        ..FleetConfig::default()
    })
    .expect("simcam")
}

fn options(silence: Duration) -> RtspOptions {
    RtspOptions {
        exchange_timeout: patient(Duration::from_secs(5)),
        silence,
        ..RtspOptions::default()
    }
}

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    async_io::block_on(f)
}

/// Opens channel 1's main stream on `addr`.
fn open(addr: SocketAddr, password: &[u8], o: RtspOptions) -> Result<RtspSession, IsapiError> {
    run(RtspSession::open(
        addr,
        &stream_path(1, 0),
        USER,
        password,
        o,
    ))
}

/// Reads progress until an error; the frames counted before it and the error.
fn until_error(s: &mut RtspSession) -> (u64, IsapiError) {
    let mut frames = 0;
    loop {
        match run(s.next_progress()) {
            Ok(p) => frames += p.frames,
            Err(e) => return (frames, e),
        }
    }
}

/// The RTSP requests the camera answered, as `METHOD -> STATUS` (URL left out).
fn rtsp_log(f: &Fleet) -> Vec<String> {
    f.camera(0)
        .events()
        .into_iter()
        .filter(|e| e.kind == EventKind::RtspRequest)
        .map(|e| {
            let mut w = e.detail.split_whitespace();
            let method = w.next().unwrap_or("").to_owned();
            format!("{method} -> {}", w.last().unwrap_or(""))
        })
        .collect()
}

#[test]
fn a_stream_with_digest_delivers_frames_and_tears_down() {
    let f = fleet();
    let cam = f.camera(0);
    cam.set_rtsp_digest(true);
    let mut s = open(
        cam.rtsp_addr(),
        PASS,
        options(patient(Duration::from_secs(3))),
    )
    .expect("open");
    let t = Instant::now();
    let (mut frames, mut packets, mut bytes) = (0, 0, 0);
    while frames < 10 {
        let p = run(s.next_progress()).expect("progress");
        assert!(
            p.frames >= 1 && p.packets >= p.frames && p.bytes > 16 * p.packets,
            "{p:?}"
        );
        frames += p.frames;
        packets += p.packets;
        bytes += p.bytes;
    }
    // 25 fps: ten frames take about 0.4 s.
    assert!(
        t.elapsed() < patient(Duration::from_secs(3)),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(cam.stream_stats().active, 1);
    println!("{frames} frames, {packets} packets, {bytes} bytes");
    run(s.teardown()).expect("teardown");
    let stop = cam.wait_event(0, EventKind::StreamStop, patient(Duration::from_secs(2)));
    assert!(
        stop.expect("stream stop")
            .detail
            .contains("reason=teardown")
    );
    let sent = cam.stream_stats();
    assert_eq!((sent.started, sent.stopped, sent.active), (1, 1, 0));
    assert!(
        sent.bytes >= bytes && sent.pictures >= frames,
        "{sent:?} {bytes} {frames}"
    );
    // One challenge, then Digest on every request.
    assert_eq!(
        rtsp_log(&f),
        [
            "DESCRIBE -> 401",
            "DESCRIBE -> 200",
            "SETUP -> 200",
            "PLAY -> 200",
            "TEARDOWN -> 200"
        ]
    );
}

#[test]
fn the_sub_stream_and_the_older_path_without_authentication() {
    let f = fleet();
    let cam = f.camera(0);
    let o = options(patient(Duration::from_secs(3)));
    for path in ["/Streaming/Channels/102", "/ISAPI/Streaming/channels/101"] {
        let mut s = run(RtspSession::open(cam.rtsp_addr(), path, USER, PASS, o)).expect(path);
        assert!(run(s.next_progress()).expect(path).frames >= 1);
        run(s.teardown()).expect("teardown");
    }
    let e = run(RtspSession::open(
        cam.rtsp_addr(),
        &stream_path(1, 2),
        USER,
        PASS,
        o,
    ))
    .expect_err("no third stream");
    assert!(matches!(e, IsapiError::RtspStatus(404)), "{e:?}");
    assert_eq!(e.class(), ErrorClass::Unsupported);
}

#[test]
fn a_wrong_password_is_one_attempt_in_the_auth_class() {
    let f = fleet();
    let cam = f.camera(0);
    cam.set_rtsp_digest(true);
    let e = open(cam.rtsp_addr(), b"wrong", options(Duration::from_secs(1))).expect_err("wrong");
    assert!(
        matches!(e, IsapiError::Auth { retries_left: None }),
        "{e:?}"
    );
    assert_eq!(e.class(), ErrorClass::Auth { retries_left: None });
    assert_eq!(rtsp_log(&f), ["DESCRIBE -> 401", "DESCRIBE -> 401"]);
    assert_eq!(cam.stream_stats().started, 0);
}

#[test]
fn the_stream_limit_is_the_resource_class_like_a_refused_sdk_preview() {
    let f = fleet();
    let cam = f.camera(0);
    cam.set_stream_limit(Some(1));
    let o = options(patient(Duration::from_secs(3)));
    let first = open(cam.rtsp_addr(), PASS, o).expect("first stream");
    let e = open(cam.rtsp_addr(), PASS, o).expect_err("over the limit");
    assert!(matches!(e, IsapiError::RtspStatus(453)), "{e:?}");
    assert_eq!(e.class(), ErrorClass::Resource);
    assert_eq!(cam.stream_stats().refused, 1);
    run(first.teardown()).expect("teardown");
    cam.wait_event(0, EventKind::StreamStop, patient(Duration::from_secs(2)));
    let again = open(cam.rtsp_addr(), PASS, o).expect("a slot is free again");
    drop(again);
}

#[test]
fn a_halted_or_stalled_stream_is_silent_and_power_off_ends_it() {
    let f = fleet();
    let cam = f.camera(0);
    let silence = patient(Duration::from_millis(800));
    let o = options(silence);

    let mut s = open(cam.rtsp_addr(), PASS, o).expect("open");
    run(s.next_progress()).expect("frames");
    cam.halt_stream();
    let t = Instant::now();
    let (_, e) = until_error(&mut s);
    assert!(matches!(e, IsapiError::StreamSilent), "{e:?}");
    assert_eq!(e.class(), ErrorClass::Network);
    assert!(t.elapsed() < silence * 3, "{:?}", t.elapsed());
    drop(s);
    cam.resume_stream();

    // A stall longer than the silence limit is a gap; the camera resumes by itself.
    let mut s = open(cam.rtsp_addr(), PASS, o).expect("open after resume");
    run(s.next_progress()).expect("frames");
    cam.stall_stream(silence * 3);
    let (_, e) = until_error(&mut s);
    assert!(matches!(e, IsapiError::StreamSilent), "{e:?}");
    drop(s);
    cam.resume_stream();

    let mut s = open(cam.rtsp_addr(), PASS, o).expect("open");
    run(s.next_progress()).expect("frames");
    cam.power_off();
    let (_, e) = until_error(&mut s);
    assert!(
        matches!(e, IsapiError::StreamEnded | IsapiError::Io(_)),
        "{e:?}"
    );
    assert_eq!(e.class(), ErrorClass::Network);
    let e = open(cam.rtsp_addr(), PASS, o).expect_err("powered off");
    assert_eq!(e.class(), ErrorClass::Network, "{e:?}");
}

/// A scripted one-connection RTSP server: for each request (method, CSeq) `answer` writes
/// what it likes and returns `false` to stop reading requests (and then keeps the
/// connection open for a while, so the client sees silence, not a close).
fn scripted(
    mut answer: impl FnMut(&str, u32, &mut TcpStream) -> bool + Send + 'static,
) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        let Ok((mut s, _)) = l.accept() else { return };
        let mut buf = Vec::new();
        let mut chunk = [0u8; 2048];
        loop {
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                continue;
            };
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            let method = head.split_whitespace().next().unwrap_or("").to_owned();
            let cseq = head
                .lines()
                .find_map(|l| l.strip_prefix("CSeq: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if !answer(&method, cseq, &mut s) {
                std::thread::sleep(Duration::from_secs(30));
                return;
            }
        }
    });
    addr
}

/// DESCRIBE, SETUP and PLAY answered as a Hikvision camera does (`timeout` seconds of
/// session timeout); then `then` runs on the connection instead of the next answer.
fn camera_script(timeout: u32, then: impl FnOnce(&mut TcpStream) + Send + 'static) -> SocketAddr {
    let mut then = Some(then);
    scripted(move |method, cseq, s| {
        let reply = match method {
            "DESCRIBE" => {
                let sdp = "v=0\r\na=control:*\r\nm=video 0 RTP/AVP 96\r\na=control:trackID=1\r\n";
                format!(
                    "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Base: rtsp://x/ch/\r\n\
                     Content-Length: {}\r\n\r\n{sdp}",
                    sdp.len()
                )
            }
            "SETUP" => format!(
                "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nSession: 7;timeout={timeout}\r\n\
                 Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
            ),
            "PLAY" => {
                let _ = s.write_all(format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n\r\n").as_bytes());
                if let Some(f) = then.take() {
                    f(s);
                }
                return true;
            }
            _ => format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nSession: 7\r\n\r\n"),
        };
        s.write_all(reply.as_bytes()).is_ok()
    })
}

/// One RTP packet on channel 0, marker bit as given.
fn rtp(marker: bool) -> Vec<u8> {
    let mut p = vec![b'$', 0, 0, 16, 0x80, if marker { 0xE0 } else { 0x60 }];
    p.resize(20, 0);
    p
}

#[test]
fn hostile_servers_end_in_classified_errors() {
    let timeout = patient(Duration::from_millis(800));
    let bound = timeout + patient(Duration::from_secs(2));
    let o = RtspOptions {
        exchange_timeout: timeout,
        silence: timeout,
        limits: HttpLimits {
            max_head: 4096,
            max_headers: 16,
            max_body: 8192,
        },
    };
    let fail = |addr| {
        let t = Instant::now();
        let e = run(RtspSession::open(
            addr,
            "/ISAPI/Streaming/channels/101",
            USER,
            PASS,
            o,
        ))
        .expect_err("hostile server");
        (e, t.elapsed())
    };

    // Garbage instead of an answer.
    let addr = scripted(|_, _, s| {
        let _ = s.write_all(b"\x16\x03\x01\x02\x00 not RTSP\r\n\r\n");
        false
    });
    let (e, _) = fail(addr);
    assert!(matches!(e, IsapiError::Malformed(_)), "{e:?}");
    assert_eq!(e.class(), ErrorClass::Network);

    // Slow-loris: a valid start, then a header byte every 50 ms.
    let addr = scripted(|_, _, s| {
        let _ = s.write_all(b"RTSP/1.0 200 OK\r\nX-Slow: ");
        for _ in 0..400 {
            std::thread::sleep(Duration::from_millis(50));
            if s.write_all(b"a").is_err() {
                break;
            }
        }
        false
    });
    let (e, took) = fail(addr);
    assert!(matches!(e, IsapiError::Timeout), "{e:?}");
    assert_eq!(e.class(), ErrorClass::Timeout);
    assert!(took < bound, "slow-loris took {took:?}");

    // A never-ending head, sent fast: the head limit.
    let addr = scripted(|_, _, s| {
        let _ = s.write_all(b"RTSP/1.0 200 OK\r\n");
        for _ in 0..10_000 {
            if s.write_all(b"X-Junk: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n")
                .is_err()
            {
                break;
            }
        }
        false
    });
    let (e, _) = fail(addr);
    assert!(matches!(e, IsapiError::TooLarge(_)), "{e:?}");

    // Only Basic offered: refused, no credentials sent.
    let addr = scripted(|_, cseq, s| {
        let _ = s.write_all(
            format!("RTSP/1.0 401 Unauthorized\r\nCSeq: {cseq}\r\nWWW-Authenticate: Basic realm=\"x\"\r\n\r\n")
                .as_bytes(),
        );
        true
    });
    let (e, _) = fail(addr);
    assert!(matches!(e, IsapiError::Unsupported(_)), "{e:?}");

    // A SETUP answer without a Session header.
    let addr = scripted(|method, cseq, s| {
        let reply = if method == "DESCRIBE" {
            let sdp = "m=video 0 RTP/AVP 96\r\n";
            format!(
                "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Length: {}\r\n\r\n{sdp}",
                sdp.len()
            )
        } else {
            format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n\r\n")
        };
        s.write_all(reply.as_bytes()).is_ok()
    });
    let (e, _) = fail(addr);
    assert!(
        matches!(e, IsapiError::Malformed(m) if m.contains("Session")),
        "{e:?}"
    );

    // Too many streams at a device that says 503.
    let addr = scripted(|_, cseq, s| {
        let _ = s.write_all(
            format!("RTSP/1.0 503 Service Unavailable\r\nCSeq: {cseq}\r\n\r\n").as_bytes(),
        );
        true
    });
    let (e, _) = fail(addr);
    assert!(matches!(e, IsapiError::RtspStatus(503)), "{e:?}");
    assert_eq!(e.class(), ErrorClass::Resource);

    // PLAY never answered.
    let addr = scripted(|method, cseq, s| {
        if method == "PLAY" {
            return false;
        }
        let reply = if method == "DESCRIBE" {
            let sdp = "m=video 0 RTP/AVP 96\r\n";
            format!(
                "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Length: {}\r\n\r\n{sdp}",
                sdp.len()
            )
        } else {
            format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nSession: 1\r\n\r\n")
        };
        s.write_all(reply.as_bytes()).is_ok()
    });
    let (e, took) = fail(addr);
    assert!(matches!(e, IsapiError::Timeout), "{e:?}");
    assert!(took < bound, "{took:?}");

    let play = |then: Box<dyn FnOnce(&mut TcpStream) + Send>| {
        let addr = camera_script(60, then);
        let mut s = run(RtspSession::open(addr, "/x", USER, PASS, o)).expect("open");
        let t = Instant::now();
        let (frames, e) = until_error(&mut s);
        (frames, e, t.elapsed())
    };

    // A bogus interleaved length: a "packet" too short for an RTP header.
    let (_, e, _) = play(Box::new(|s| {
        let _ = s.write_all(&rtp(true));
        let _ = s.write_all(b"$\x00\x00\x03abc");
    }));
    assert!(matches!(e, IsapiError::Malformed(_)), "{e:?}");

    // A frame, then the device closes mid-frame.
    let (frames, e, _) = play(Box::new(|s| {
        let _ = s.write_all(&rtp(true));
        let _ = s.write_all(&rtp(false)[..9]);
        let _ = s.shutdown(std::net::Shutdown::Both);
    }));
    assert_eq!(frames, 1);
    assert!(matches!(e, IsapiError::StreamEnded), "{e:?}");
    assert_eq!(e.class(), ErrorClass::Network);

    // A dribble of packets that never ends a frame (no marker): silent.
    let (frames, e, took) = play(Box::new(|s| {
        for _ in 0..200 {
            if s.write_all(&rtp(false)).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }));
    assert_eq!(frames, 0);
    assert!(matches!(e, IsapiError::StreamSilent), "{e:?}");
    assert!(took < timeout * 3, "{took:?}");

    // Garbage between frames.
    let (_, e, _) = play(Box::new(|s| {
        let _ = s.write_all(&rtp(true));
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\n\r\n");
    }));
    assert!(matches!(e, IsapiError::Malformed(_)), "{e:?}");
}

#[test]
fn keepalive_at_half_the_session_timeout() {
    // Session timeout 2 s: a GET_PARAMETER every second while frames flow. The device
    // refuses GET_PARAMETER (501), so the next keepalive is an OPTIONS; then it answers
    // 454 (session gone), which ends the stream.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        let Ok((mut s, _)) = l.accept() else { return };
        let _ = s.set_read_timeout(Some(Duration::from_millis(20)));
        let mut buf = Vec::new();
        let mut chunk = [0u8; 2048];
        let mut playing = false;
        let mut keepalives = 0;
        for _ in 0..2000 {
            if playing && s.write_all(&rtp(true)).is_err() {
                return;
            }
            if let Ok(n) = s.read(&mut chunk) {
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                buf.drain(..end + 4);
                let method = head.split_whitespace().next().unwrap_or("").to_owned();
                let cseq: u32 = head
                    .lines()
                    .find_map(|l| l.strip_prefix("CSeq: "))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                let _ = tx.send(method.clone());
                let reply = match method.as_str() {
                    "DESCRIBE" => format!(
                        "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Length: 22\r\n\r\nm=video 0 RTP/AVP 96\r\n"
                    ),
                    "SETUP" => {
                        format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nSession: 9;timeout=2\r\n\r\n")
                    }
                    "PLAY" => {
                        playing = true;
                        format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n\r\n")
                    }
                    _ => {
                        keepalives += 1;
                        let status = match keepalives {
                            1 => "501 Not Implemented",
                            2 => "200 OK",
                            _ => "454 Session Not Found",
                        };
                        format!("RTSP/1.0 {status}\r\nCSeq: {cseq}\r\n\r\n")
                    }
                };
                let _ = s.write_all(reply.as_bytes());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let o = options(patient(Duration::from_secs(3)));
    let mut s = run(RtspSession::open(addr, "/k", USER, PASS, o)).expect("open");
    let (frames, e) = until_error(&mut s);
    assert!(matches!(e, IsapiError::RtspStatus(454)), "{e:?}");
    assert_eq!(e.class(), ErrorClass::Network);
    assert!(frames > 10, "{frames}");
    let methods: Vec<String> = rx.try_iter().collect();
    assert_eq!(
        methods,
        [
            "DESCRIBE",
            "SETUP",
            "PLAY",
            "GET_PARAMETER",
            "OPTIONS",
            "OPTIONS"
        ]
    );
}

/// Messages as a device might send them; the proptest mutates and slices these.
const SEEDS: &[&[u8]] = &[
    b"RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Type: application/sdp\r\nContent-Base: rtsp://h/c/101/\r\nContent-Length: 53\r\n\r\nv=0\r\na=control:*\r\nm=video 0 RTP/AVP 96\r\na=control:t\r\n",
    b"RTSP/1.0 200 OK\r\nCSeq: 3\r\nSession: 1A2B;timeout=60\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n",
    b"RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\nWWW-Authenticate: Digest realm=\"r\", nonce=\"n\", stale=\"FALSE\"\r\n\r\n",
    b"$\x00\x00\x0c\x80\xe0\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00$\x01\x00\x02ab",
];

fn limits() -> HttpLimits {
    HttpLimits {
        max_head: 1024,
        max_headers: 8,
        max_body: 512,
    }
}

/// A seed with a few random edits: overwrite, insert, truncate.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (
        0..SEEDS.len(),
        proptest::collection::vec((any::<u8>(), any::<u16>(), any::<u8>()), 0..6),
    )
        .prop_map(|(i, edits)| {
            let mut v = SEEDS[i].to_vec();
            for (op, at, byte) in edits {
                let at = usize::from(at) % (v.len() + 1);
                match op % 3 {
                    0 if at < v.len() => v[at] = byte,
                    1 => v.insert(at, byte),
                    _ => v.truncate(at.max(1)),
                }
            }
            v
        })
}

proptest! {
    /// Any input ends in a message, "need more" or an error, never a panic; what is used
    /// lies inside the buffer; and a message complete at a prefix (as reads deliver the
    /// bytes) is the one the whole buffer gives.
    #[test]
    fn parsers_never_panic_and_agree_on_prefixes(
        buf in prop_oneof![mutated(), proptest::collection::vec(any::<u8>(), 0..300)],
        cut in any::<u16>(),
    ) {
        let l = limits();
        let whole = parse_message(&buf, &l);
        if let Ok(Some((m, used))) = &whole {
            prop_assert!(*used <= buf.len());
            match m {
                RtspMessage::Response(r) => {
                    prop_assert!(r.body.len() <= l.max_body);
                    let _ = r.header("session").map(parse_session);
                    let _ = sdp_controls(&String::from_utf8_lossy(&r.body), "rtsp://h/");
                }
                RtspMessage::Interleaved { payload, .. } => {
                    let _ = rtp_marker(payload);
                }
            }
        }
        let cut = usize::from(cut) % (buf.len() + 1);
        match (parse_message(&buf[..cut], &l), &whole) {
            (Ok(Some(prefix)), Ok(Some(w))) => prop_assert_eq!(&prefix, w),
            (Ok(Some(_)), other) => prop_assert!(false, "complete at a prefix only: {:?}", other),
            _ => {}
        }
        let _ = parse_response(&buf, &l);
        let _ = sdp_controls(&String::from_utf8_lossy(&buf), "rtsp://h/s");
        let _ = parse_session(&String::from_utf8_lossy(&buf));
    }
}
