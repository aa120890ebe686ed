//! Live video without the vendor SDK: adminAccesses, the RTSP exchange, RTP data, the
//! stream faults, counters and events (the real SDK's view is in the root crate's
//! `tests/sdk_real.rs`).

mod common;
use common::*;
use simcam::{EventKind, StreamKind, StreamProfile};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A minimal RTSP client over one TCP connection.
struct Rtsp {
    r: BufReader<TcpStream>,
    w: TcpStream,
    cseq: u32,
    url: String,
}

impl Rtsp {
    fn open(addr: SocketAddr, ch: u32) -> Rtsp {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        Rtsp {
            r: BufReader::new(s.try_clone().expect("clone")),
            w: s,
            cseq: 0,
            url: format!("rtsp://{addr}/ISAPI/Streaming/channels/{ch}"),
        }
    }

    /// Sends a request; returns (status, head, body), skipping interleaved frames.
    fn req(&mut self, method: &str, suffix: &str, extra: &str) -> (u16, String, String) {
        self.cseq += 1;
        let msg = format!(
            "{method} {}{suffix} RTSP/1.0\r\nCSeq: {}\r\n{extra}\r\n",
            self.url, self.cseq
        );
        self.w.write_all(msg.as_bytes()).expect("write");
        loop {
            let mut first = [0u8; 1];
            self.r.read_exact(&mut first).expect("read");
            if first[0] == b'$' {
                let mut h = [0u8; 3];
                self.r.read_exact(&mut h).expect("frame head");
                let mut skip = vec![0u8; usize::from(u16::from_be_bytes([h[1], h[2]]))];
                self.r.read_exact(&mut skip).expect("frame");
                continue;
            }
            let mut head = String::from(char::from(first[0]));
            loop {
                let mut line = String::new();
                self.r.read_line(&mut line).expect("line");
                head.push_str(&line);
                if line == "\r\n" {
                    break;
                }
            }
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .map_or(0, |v| v.trim().parse().expect("length"));
            let mut body = vec![0u8; len];
            self.r.read_exact(&mut body).expect("body");
            let status = head[9..12].parse().expect("status");
            return (status, head, String::from_utf8_lossy(&body).into_owned());
        }
    }

    /// Reads interleaved RTP for `d`; returns (packets, bytes, pictures).
    fn rtp_for(&mut self, d: Duration) -> (usize, usize, usize) {
        self.w
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let end = Instant::now() + d;
        let (mut n, mut bytes, mut pictures) = (0, 0, 0);
        while Instant::now() < end {
            let mut h = [0u8; 4];
            match self.r.read_exact(&mut h) {
                Ok(()) => {}
                Err(_) => continue,
            }
            assert_eq!(h[0], b'$', "interleaved frame");
            let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
            let mut p = vec![0u8; len];
            self.r.read_exact(&mut p).expect("packet");
            assert_eq!(p[0], 0x80, "RTP version 2");
            assert_eq!(p[1] & 0x7F, 96, "payload type");
            n += 1;
            bytes += len + 4;
            if p[1] & 0x80 != 0 {
                pictures += 1; // the marker ends a picture
            }
        }
        self.w.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        (n, bytes, pictures)
    }

    fn play(&mut self) {
        let (st, _, sdp) = self.req("DESCRIBE", "", "");
        assert_eq!(st, 200);
        assert!(sdp.contains("a=Media_header:MEDIAINFO=494D4B48"), "{sdp}");
        assert!(sdp.contains("a=rtpmap:96 H264/90000"), "{sdp}");
        let (st, head, _) = self.req(
            "SETUP",
            "/trackID=1",
            "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n",
        );
        assert_eq!(st, 200, "{head}");
        assert!(head.contains("interleaved=0-1"), "{head}");
        assert_eq!(self.req("PLAY", "", "").0, 200);
    }
}

#[test]
fn admin_accesses_names_the_rtsp_port() {
    let f = fleet(1, |_| {});
    let cam = f.camera(0);
    let mut c = Conn::open(f.addr(0)).unwrap();
    let l = login_on(&mut c, USER, PASS).unwrap();
    let cookie = l.cookie();
    let r = c
        .request("GET", "/ISAPI/Security/adminAccesses", Some(&cookie), "")
        .unwrap();
    assert_eq!(r.status, 200);
    let port = cam.rtsp_addr().port().to_string();
    assert!(
        r.body.contains(&format!(
            "<protocol>RTSP</protocol>\n<portNo>{port}</portNo>"
        )),
        "{}",
        r.body
    );
}

#[test]
fn a_stream_plays_stalls_halts_and_ends_with_counters_and_events() {
    let f = fleet(1, |_| {});
    let cam = f.camera(0);
    cam.set_stream_profile(
        StreamKind::Sub,
        StreamProfile {
            fps: 20,
            bitrate: 80_000,
            ..StreamProfile::SUB
        },
    );
    let seq = f.next_seq();
    let mut r = Rtsp::open(cam.rtsp_addr(), 102);
    r.play();
    let (_, bytes, pictures) = r.rtp_for(Duration::from_secs(2));
    // 20 pictures per second, 10 kB/s: about 40 pictures and 20 kB in 2 s.
    assert!((20..=60).contains(&pictures), "{pictures} pictures");
    assert!((10_000..40_000).contains(&bytes), "{bytes} bytes");
    cam.stall_stream(Duration::from_millis(1500));
    r.rtp_for(Duration::from_millis(200)); // what was in flight
    assert_eq!(r.rtp_for(Duration::from_millis(800)).0, 0, "stalled");
    assert!(r.rtp_for(Duration::from_secs(2)).0 > 0, "resumed by itself");
    cam.halt_stream();
    r.rtp_for(Duration::from_millis(200));
    assert_eq!(r.rtp_for(Duration::from_secs(1)).0, 0, "halted");
    // The RTSP session still answers (the SDK's keepalive).
    assert_eq!(r.req("HEARTBEAT", "", "").0, 200);
    cam.resume_stream();
    assert!(r.rtp_for(Duration::from_secs(1)).0 > 0, "resumed");
    cam.set_stream_fps_cap(Some(2));
    r.rtp_for(Duration::from_millis(300));
    let slow = r.rtp_for(Duration::from_secs(2)).2;
    assert!((2..=8).contains(&slow), "{slow} pictures at 2 fps");
    assert_eq!(r.req("TEARDOWN", "", "").0, 200);
    let stop = cam
        .wait_event(seq, EventKind::StreamStop, IO_TIMEOUT)
        .expect("stream_stop");
    assert!(stop.detail.contains("reason=teardown"), "{}", stop.detail);
    let st = cam.stream_stats();
    assert_eq!((st.started, st.stopped, st.active), (1, 1, 0));
    assert!(st.bytes > 0 && st.pictures > 0);
    let start = cam
        .wait_event(seq, EventKind::StreamStart, IO_TIMEOUT)
        .expect("stream_start");
    assert_eq!(start.detail, "ch=102 fps=20 bitrate=80000");
}

#[test]
fn the_stream_limit_refuses_with_453_and_power_off_ends_streams() {
    let f = fleet(1, |_| {});
    let cam = f.camera(0);
    cam.set_stream_limit(Some(1));
    let seq = f.next_seq();
    let mut a = Rtsp::open(cam.rtsp_addr(), 101);
    a.play();
    let mut b = Rtsp::open(cam.rtsp_addr(), 101);
    assert_eq!(b.req("DESCRIBE", "", "").0, 200);
    let (st, _, _) = b.req(
        "SETUP",
        "/trackID=1",
        "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n",
    );
    assert_eq!(st, 453, "beyond the limit");
    assert_eq!(cam.stream_stats().refused, 1);
    assert!(
        cam.wait_event(seq, EventKind::StreamRefused, IO_TIMEOUT)
            .is_some()
    );
    // UDP is not offered.
    let (st, _, _) = b.req(
        "SETUP",
        "/trackID=1",
        "Transport: RTP/AVP;unicast;client_port=5000-5001\r\n",
    );
    assert_eq!(st, 461);
    assert!(cam.power_off());
    let stop = cam
        .wait_event(seq, EventKind::StreamStop, IO_TIMEOUT)
        .expect("stream_stop");
    assert!(stop.detail.contains("reason=power_off"), "{}", stop.detail);
    assert_eq!(cam.stream_stats().active, 0);
    // Off: the RTSP port resets new connections.
    let mut s = TcpStream::connect(cam.rtsp_addr()).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let mut buf = [0u8; 8];
    assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)));
}
