//! The camera's RTSP server: RTSP/1.0 over TCP with interleaved RTP (the only transport
//! offered), H.264 packetised per RFC 6184 (single NAL unit packets, FU-A for larger
//! units), one connection task per client.
//!
//! The RTSP listener lives as long as the fleet; it takes connections only while the
//! camera is powered on, and a power-off resets its connections like the HTTP ones.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use smol::channel::Receiver;
use smol::future::FutureExt as _;
use smol::io::{AsyncReadExt as _, AsyncWriteExt as _};
use smol::{Async, Timer};
use socket2::SockRef;

use crate::camera::{CamShared, Power, SocketSlot};
use crate::events::EventKind;
use crate::h264::{H264Gen, base64};
use crate::server::serve_until_power_off;
use crate::stream::StreamKind;

/// Largest RTSP request head (the SDK's are a few hundred bytes).
const MAX_HEAD: usize = 16 * 1024;
/// Largest RTP payload; bigger NAL units are split into FU-A fragments.
const MAX_PAYLOAD: usize = 1400;
/// The 40-byte Hikvision media header ("IMKH", H.264 video, no audio) the vendor SDK
/// expects in the SDP; without it a preview fails with error 414.
pub(crate) const MEDIA_HEADER_HEX: &str =
    "494D4B48010100000400010000000000000000000000000000000000000000000000000000000000";
/// RTP payload type of the H.264 track.
const PT: u8 = 96;

/// Takes the camera's RTSP listener and starts its accept loop.
pub(crate) fn spawn(cam: &Arc<CamShared>) {
    let listener = cam
        .stream
        .listener
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    let Some(listener) = listener else { return };
    let Ok(listener) = Async::new(listener) else {
        return;
    };
    // A weak reference: the task lives in the camera's executor, so a strong one would
    // keep the camera (and the executor) alive forever.
    cam.ex
        .spawn(accept_loop(Arc::downgrade(cam), listener))
        .detach();
}

async fn accept_loop(weak: Weak<CamShared>, listener: Async<TcpListener>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(_) => {
                Timer::after(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(cam) = weak.upgrade() else { return };
        let rx = {
            let mut st = cam.lock();
            if st.power != Power::On || st.accept_close {
                None
            } else {
                st.open_sockets += 1;
                st.stats.connections += 1;
                st.stats.connections_hwm = st.stats.connections_hwm.max(st.stats.connections);
                Some(st.boot_rx.clone())
            }
        };
        let Some(rx) = rx else {
            // Powered off: reset, as a closed port would.
            let _ = SockRef::from(stream.get_ref()).set_linger(Some(Duration::ZERO));
            continue;
        };
        let slot = SocketSlot {
            cam: cam.clone(),
            connection: true,
        };
        let _ = stream.get_ref().set_nodelay(true);
        cam.log(EventKind::ConnOpened, format!("{peer} rtsp"));
        cam.ex
            .spawn(connection(cam.clone(), stream, peer, rx, slot))
            .detach();
    }
}

async fn connection(
    cam: Arc<CamShared>,
    stream: Async<TcpStream>,
    peer: SocketAddr,
    rx: Receiver<()>,
    slot: SocketSlot,
) {
    serve_until_power_off(serve(&cam, &stream), &stream, rx).await;
    drop(stream);
    cam.log(EventKind::ConnClosed, format!("{peer} rtsp"));
    drop(slot);
}

/// One parsed RTSP request.
#[derive(Debug, Default)]
struct RtspRequest {
    method: String,
    url: String,
    cseq: String,
    transport: Option<String>,
    authorization: Option<String>,
}

enum Parsed {
    Request(RtspRequest, usize),
    /// An interleaved frame from the client (RTCP receiver reports): skip it.
    Interleaved(usize),
    Partial,
    Bad,
}

fn parse(buf: &[u8]) -> Parsed {
    if buf.first() == Some(&b'$') {
        if buf.len() < 4 {
            return Parsed::Partial;
        }
        let n = 4 + usize::from(u16::from_be_bytes([buf[2], buf[3]]));
        return if buf.len() >= n {
            Parsed::Interleaved(n)
        } else {
            Parsed::Partial
        };
    }
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD {
            Parsed::Bad
        } else {
            Parsed::Partial
        };
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split_whitespace();
    let (Some(method), Some(url), Some(version)) = (first.next(), first.next(), first.next())
    else {
        return Parsed::Bad;
    };
    if !version.starts_with("RTSP/") {
        return Parsed::Bad;
    }
    let mut req = RtspRequest {
        method: method.to_owned(),
        url: url.to_owned(),
        ..RtspRequest::default()
    };
    let mut length = 0usize;
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k.trim().to_ascii_lowercase().as_str() {
            "cseq" => req.cseq = v.to_owned(),
            "transport" => req.transport = Some(v.to_owned()),
            "authorization" => req.authorization = Some(v.to_owned()),
            "content-length" => match v.parse() {
                Ok(n) if n <= 64 * 1024 => length = n,
                _ => return Parsed::Bad,
            },
            _ => {}
        }
    }
    let total = end + 4 + length;
    if buf.len() < total {
        return Parsed::Partial;
    }
    Parsed::Request(req, total)
}

/// The stream a URL names: `…/Streaming/channels/101[/trackID=1][?…]`.
fn stream_of(url: &str) -> Option<StreamKind> {
    let lower = url.to_ascii_lowercase();
    let at = lower.find("/channels/")? + "/channels/".len();
    let digits: String = lower[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    StreamKind::from_channel_id(digits.parse().ok()?)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Stream Not Found",
        453 => "Not Enough Bandwidth",
        454 => "Session Not Found",
        455 => "Method Not Valid in This State",
        461 => "Unsupported transport",
        _ => "Not Implemented",
    }
}

fn reply(status: u16, cseq: &str, headers: &str, body: &str) -> Vec<u8> {
    let mut s = format!(
        "RTSP/1.0 {status} {}\r\nCSeq: {cseq}\r\nServer: simcam\r\n{headers}",
        reason(status)
    );
    if !body.is_empty() {
        let _ = write!(s, "Content-Length: {}\r\n", body.len());
    }
    s.push_str("\r\n");
    s.push_str(body);
    s.into_bytes()
}

fn sdp(ip: &str, enc: &H264Gen, bitrate: u32) -> String {
    let sps = enc.sps();
    let pps = enc.pps();
    let (w, h) = enc.dimensions();
    let kbps = bitrate.div_ceil(1000).max(1);
    format!(
        "v=0\r\no=- 1109162014219182 1109162014219192 IN IP4 {ip}\r\ns=Media Presentation\r\n\
         e=NONE\r\nb=AS:{}\r\nt=0 0\r\na=control:*\r\nm=video 0 RTP/AVP {PT}\r\n\
         c=IN IP4 0.0.0.0\r\nb=AS:{kbps}\r\na=recvonly\r\na=x-dimensions:{w},{h}\r\n\
         a=control:trackID=1\r\na=rtpmap:{PT} H264/90000\r\n\
         a=fmtp:{PT} profile-level-id={:02X}{:02X}{:02X};packetization-mode=1;\
         sprop-parameter-sets={},{}\r\n\
         a=Media_header:MEDIAINFO={MEDIA_HEADER_HEX};\r\na=appversion:1.0\r\n",
        kbps + 50,
        sps[1],
        sps[2],
        sps[3],
        base64(&sps),
        base64(&pps),
    )
}

/// Appends the RTP packets of one picture (interleaved framing, channel `ch`).
fn packetise(out: &mut Vec<u8>, ch: u8, nals: &[Vec<u8>], seq: &mut u16, ts: u32, ssrc: u32) {
    let mut packet = |out: &mut Vec<u8>, marker: bool, parts: &[&[u8]]| {
        let len: usize = 12 + parts.iter().map(|p| p.len()).sum::<usize>();
        out.push(b'$');
        out.push(ch);
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.push(0x80);
        out.push(PT | if marker { 0x80 } else { 0 });
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(&ts.to_be_bytes());
        out.extend_from_slice(&ssrc.to_be_bytes());
        for p in parts {
            out.extend_from_slice(p);
        }
        *seq = seq.wrapping_add(1);
    };
    for (i, nal) in nals.iter().enumerate() {
        let last = i + 1 == nals.len();
        if nal.len() <= MAX_PAYLOAD {
            packet(out, last, &[nal]);
            continue;
        }
        let indicator = (nal[0] & 0xE0) | 28;
        let kind = nal[0] & 0x1F;
        let body = &nal[1..];
        let chunks: Vec<&[u8]> = body.chunks(MAX_PAYLOAD - 2).collect();
        for (j, c) in chunks.iter().enumerate() {
            let start = j == 0;
            let end = j + 1 == chunks.len();
            let header = kind | if start { 0x80 } else { 0 } | if end { 0x40 } else { 0 };
            packet(out, last && end, &[&[indicator, header], c]);
        }
    }
}

/// Accounting of one RTSP session; settles the counters and logs the stop when the
/// connection ends by any path (TEARDOWN, close, power-off cancelling the task).
struct SessionGuard<'a> {
    cam: &'a CamShared,
    kind: Option<StreamKind>,
    set_up: bool,
    playing_since: Option<Instant>,
    bytes: u64,
    pictures: u64,
    why: &'static str,
}

impl Drop for SessionGuard<'_> {
    fn drop(&mut self) {
        let mut st = self.cam.stream.lock();
        if self.set_up {
            st.stats.active = st.stats.active.saturating_sub(1);
        }
        if self.playing_since.is_none() {
            return;
        }
        st.stats.stopped += 1;
        drop(st);
        let why = if self.why == "closed" && self.cam.lock().power != Power::On {
            "power_off"
        } else {
            self.why
        };
        self.cam.log(
            EventKind::StreamStop,
            format!(
                "ch={} bytes={} pictures={} secs={:.2} reason={why}",
                self.kind.map_or(0, StreamKind::channel_id),
                self.bytes,
                self.pictures,
                self.playing_since
                    .map_or(0.0, |t| t.elapsed().as_secs_f64())
            ),
        );
    }
}

enum Wake {
    Read(std::io::Result<usize>),
    Tick,
}

async fn serve(cam: &Arc<CamShared>, stream: &Async<TcpStream>) {
    let mut io = stream;
    let ip = cam.stream.addr.ip().to_string();
    let mut buf: Vec<u8> = Vec::with_capacity(2048);
    let mut chunk = [0u8; 2048];
    let mut guard = SessionGuard {
        cam,
        kind: None,
        set_up: false,
        playing_since: None,
        bytes: 0,
        pictures: 0,
        why: "closed",
    };
    let session = format!("{:08X}", fastrand::u32(..));
    let ssrc = fastrand::u32(..);
    let mut channel = 0u8;
    let mut seq: u16 = fastrand::u16(..);
    let ts_base = fastrand::u32(..);
    let mut enc: Option<H264Gen> = None;
    let mut next_at = Instant::now();
    // Streams started before a later `cut_streams` end.
    let cuts = cam.stream.lock().cuts;
    loop {
        // Answer every complete request in the buffer.
        loop {
            match parse(&buf) {
                Parsed::Partial => break,
                Parsed::Bad => return,
                Parsed::Interleaved(n) => {
                    buf.drain(..n);
                }
                Parsed::Request(req, n) => {
                    buf.drain(..n);
                    let kind = stream_of(&req.url);
                    let auth = if req.method == "OPTIONS" {
                        Ok(())
                    } else {
                        cam.rtsp_digest_check(&req.method, req.authorization.as_deref())
                    };
                    let (status, headers, body) = match req.method.as_str() {
                        _ if auth.is_err() => (
                            401,
                            format!(
                                "WWW-Authenticate: {}\r\n",
                                auth.as_ref().err().map_or("", String::as_str)
                            ),
                            String::new(),
                        ),
                        "OPTIONS" => (
                            200,
                            "Public: OPTIONS, DESCRIBE, PLAY, PAUSE, SETUP, TEARDOWN, \
                             SET_PARAMETER, GET_PARAMETER\r\n"
                                .to_owned(),
                            String::new(),
                        ),
                        "DESCRIBE" => match kind {
                            Some(k) => {
                                let p = cam.stream.lock().profile(k);
                                let g = H264Gen::new(p.width_mbs, p.height_mbs, p.fps);
                                let base = if req.url.ends_with('/') {
                                    req.url.clone()
                                } else {
                                    format!("{}/", req.url)
                                };
                                (
                                    200,
                                    format!(
                                        "Content-Type: application/sdp\r\nContent-Base: {base}\r\n"
                                    ),
                                    sdp(&ip, &g, p.bitrate),
                                )
                            }
                            None => (404, String::new(), String::new()),
                        },
                        "SETUP" => {
                            let transport = req.transport.clone().unwrap_or_default();
                            let tcp =
                                transport.contains("TCP") || transport.contains("interleaved");
                            match kind {
                                None => (404, String::new(), String::new()),
                                Some(_) if !tcp => (461, String::new(), String::new()),
                                Some(k) => {
                                    if let Some(at) = transport.find("interleaved=") {
                                        let v: String = transport[at + 12..]
                                            .chars()
                                            .take_while(char::is_ascii_digit)
                                            .collect();
                                        channel = v.parse().unwrap_or(0);
                                    }
                                    let mut st = cam.stream.lock();
                                    let refuse = !guard.set_up
                                        && st.limit.is_some_and(|l| st.stats.active >= l);
                                    if refuse {
                                        st.stats.refused += 1;
                                        drop(st);
                                        cam.log(
                                            EventKind::StreamRefused,
                                            format!("ch={}", k.channel_id()),
                                        );
                                        (453, String::new(), String::new())
                                    } else {
                                        if !guard.set_up {
                                            st.stats.active += 1;
                                            st.stats.active_hwm =
                                                st.stats.active_hwm.max(st.stats.active);
                                            guard.set_up = true;
                                        }
                                        drop(st);
                                        guard.kind = Some(k);
                                        (
                                            200,
                                            format!(
                                                "Session: {session};timeout=60\r\nTransport: \
                                                 RTP/AVP/TCP;unicast;interleaved={channel}-{};\
                                                 ssrc={ssrc:08x};mode=\"play\"\r\n",
                                                channel.wrapping_add(1)
                                            ),
                                            String::new(),
                                        )
                                    }
                                }
                            }
                        }
                        "PLAY" => match guard.kind {
                            Some(k) if guard.set_up => {
                                if guard.playing_since.is_none() {
                                    let p = cam.stream.lock().profile(k);
                                    enc = Some(H264Gen::new(p.width_mbs, p.height_mbs, p.fps));
                                    guard.playing_since = Some(Instant::now());
                                    next_at = Instant::now();
                                    cam.stream.lock().stats.started += 1;
                                    cam.log(
                                        EventKind::StreamStart,
                                        format!(
                                            "ch={} fps={} bitrate={}",
                                            k.channel_id(),
                                            p.fps,
                                            p.bitrate
                                        ),
                                    );
                                }
                                (
                                    200,
                                    format!(
                                        "Session: {session}\r\nRange: npt=now-\r\nRTP-Info: \
                                         url={};seq={seq};rtptime={ts_base}\r\n",
                                        req.url
                                    ),
                                    String::new(),
                                )
                            }
                            _ => (455, String::new(), String::new()),
                        },
                        // HEARTBEAT: the vendor SDK's own keepalive, every 5 s.
                        "GET_PARAMETER" | "SET_PARAMETER" | "PAUSE" | "HEARTBEAT" => {
                            (200, format!("Session: {session}\r\n"), String::new())
                        }
                        "TEARDOWN" => {
                            guard.why = "teardown";
                            (200, format!("Session: {session}\r\n"), String::new())
                        }
                        _ => (501, String::new(), String::new()),
                    };
                    cam.stream.lock().stats.requests += 1;
                    cam.log(
                        EventKind::RtspRequest,
                        format!("{} {} -> {status}", req.method, req.url),
                    );
                    let msg = reply(status, &req.cseq, &headers, &body);
                    if io.write_all(&msg).await.is_err() || req.method == "TEARDOWN" {
                        return;
                    }
                }
            }
        }
        let playing = guard.playing_since.is_some();
        let tick = async {
            if playing {
                Timer::at(next_at).await;
            } else {
                std::future::pending::<()>().await;
            }
            Wake::Tick
        };
        let wake = async { Wake::Read(io.read(&mut chunk).await) }
            .or(tick)
            .await;
        match wake {
            Wake::Read(Ok(0)) | Wake::Read(Err(_)) => return,
            Wake::Read(Ok(n)) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > MAX_HEAD + 64 * 1024 {
                    return;
                }
            }
            Wake::Tick => {
                let Some(kind) = guard.kind else { return };
                let now = Instant::now();
                let (flowing, fps, bitrate, cut) = {
                    let mut st = cam.stream.lock();
                    let (flowing, fps) = st.flowing(now, kind);
                    (flowing, fps, st.profile(kind).bitrate, st.cuts != cuts)
                };
                if cut {
                    guard.why = "cut";
                    return;
                }
                let interval = Duration::from_secs(1) / fps;
                next_at += interval;
                if next_at + Duration::from_secs(1) < now {
                    next_at = now + interval; // fell behind (a blocked write): no burst
                }
                if !flowing {
                    continue;
                }
                let Some(g) = enc.as_mut() else { return };
                let budget = (bitrate / 8 / fps) as usize;
                let nals = g.next_picture(budget);
                let since = guard.playing_since.map_or(Duration::ZERO, |t| t.elapsed());
                let ts = ts_base.wrapping_add((since.as_micros() * 9 / 100) as u32);
                let mut out = Vec::with_capacity(budget + 256);
                packetise(&mut out, channel, &nals, &mut seq, ts, ssrc);
                if io.write_all(&out).await.is_err() {
                    return;
                }
                guard.bytes += out.len() as u64;
                guard.pictures += 1;
                let mut st = cam.stream.lock();
                st.stats.bytes += out.len() as u64;
                st.stats.pictures += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_from_url() {
        assert_eq!(
            stream_of("rtsp://127.0.0.1:554/ISAPI/Streaming/channels/101"),
            Some(StreamKind::Main)
        );
        assert_eq!(
            stream_of("rtsp://h/ISAPI/streaming/Channels/102/trackID=1?x=1"),
            Some(StreamKind::Sub)
        );
        assert_eq!(stream_of("rtsp://h/ISAPI/Streaming/channels/103"), None);
        assert_eq!(stream_of("rtsp://h/"), None);
    }

    #[test]
    fn media_header_is_40_bytes_of_imkh() {
        assert_eq!(MEDIA_HEADER_HEX.len(), 80);
        assert!(MEDIA_HEADER_HEX.starts_with("494D4B48"));
    }

    #[test]
    fn fu_a_fragments_a_large_unit() {
        let big = {
            let mut v = vec![0x65u8];
            v.extend(std::iter::repeat_n(0x80u8, 3000));
            v
        };
        let mut out = Vec::new();
        let mut seq = 7u16;
        packetise(&mut out, 0, &[vec![0x67, 1, 2], big], &mut seq, 1, 2);
        assert_eq!(seq, 7 + 1 + 3, "SPS single + three fragments");
        // First packet: single NAL, no marker.
        assert_eq!(out[0], b'$');
        assert_eq!(out[5] & 0x80, 0);
        assert_eq!(out[16], 0x67);
        // Second packet: FU-A start.
        let second = 4 + 12 + 3;
        assert_eq!(out[second + 16], (0x65 & 0xE0) | 28);
        assert_eq!(out[second + 17], 0x80 | 5);
    }
}
