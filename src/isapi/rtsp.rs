//! A minimal RTSP/1.0 client that watches a camera's live video without the vendor SDK:
//! it only counts what arrives, so the caller can tell a flowing stream from a gap.
//!
//! One TCP connection carries everything (RFC 2326 section 10.12): `DESCRIBE` (HTTP
//! Digest on a `401`, never Basic), `SETUP` of the SDP's video track with
//! `RTP/AVP/TCP;unicast;interleaved=0-1`, `PLAY`, then RTP packets framed as `$`,
//! channel, 16-bit big-endian length. Each RTP packet on the video channel is counted; a
//! packet with the RTP marker bit ends a video frame (RFC 6184 section 5.1: the marker is
//! set on the last packet of an access unit). The payload is never decoded. While playing,
//! a `GET_PARAMETER` (or `OPTIONS`, when the device refuses it) keeps the RTSP session
//! alive at half its timeout; `TEARDOWN` ends it.
//!
//! As in `http.rs`, every limit is explicit (the [`HttpLimits`] of [`RtspOptions`] bound
//! heads and bodies; an interleaved frame is at most 4 + 65,535 bytes by its framing), every
//! request/answer exchange runs under a total deadline, and the parsers are pure functions
//! ([`parse_message`], [`parse_response`], [`rtp_marker`], [`sdp_controls`],
//! [`parse_session`]) that the tests fuzz without sockets. Whatever a device sends ends in
//! a classified [`IsapiError`], never a hang, a panic or an unbounded buffer.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::{AsyncReadExt as _, AsyncWriteExt as _, FutureExt as _};

use super::auth::{self, DigestCredentials};
use super::error::IsapiError;
use super::http::{HttpLimits, find, with_deadline};

/// The RTSP port of Hikvision devices unless `adminAccesses` says otherwise.
pub const RTSP_PORT: u16 = 554;

/// The path the vendor SDK requests for `channel` (1-based) and `stream_type` (0 main,
/// 1 sub, 2 third): `/ISAPI/Streaming/channels/{channel × 100 + stream_type + 1}`, so
/// channel 1's main stream is `…/101` (docs/sdk-notes.md, "Live preview"). Devices also
/// accept the older `/Streaming/Channels/101`.
pub fn stream_path(channel: u16, stream_type: u8) -> String {
    let id = u32::from(channel) * 100 + u32::from(stream_type) + 1;
    format!("/ISAPI/Streaming/channels/{id}")
}

/// Client settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtspOptions {
    /// Total deadline of one exchange: connect, or one request and its complete answer
    /// (RTP packets arriving meanwhile are counted, not waited for).
    pub exchange_timeout: Duration,
    /// Longest time without a complete video frame before
    /// [`RtspSession::next_progress`] fails with [`IsapiError::StreamSilent`]. Frames,
    /// not bytes: a device that dribbles bytes of a frame that never ends is silent too.
    pub silence: Duration,
    /// Largest answer head, header count and body (the SDP is the only body, about 1 KiB).
    pub limits: HttpLimits,
}

impl Default for RtspOptions {
    fn default() -> Self {
        RtspOptions {
            exchange_timeout: Duration::from_secs(10),
            silence: Duration::from_secs(10),
            limits: HttpLimits {
                max_head: 16 * 1024,
                max_headers: 48,
                max_body: 64 * 1024,
            },
        }
    }
}

/// What arrived since the previous [`RtspSession::next_progress`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamProgress {
    /// Complete video frames (RTP packets with the marker bit).
    pub frames: u64,
    /// RTP packets on the video channel.
    pub packets: u64,
    /// Bytes of those packets, interleaved framing included.
    pub bytes: u64,
}

/// An RTSP answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtspResponse {
    /// Status code.
    pub status: u16,
    /// Header lines in order, names as sent, values trimmed (invalid UTF-8 replaced).
    pub headers: Vec<(String, String)>,
    /// The body (`Content-Length` bytes; none without the header).
    pub body: Vec<u8>,
}

impl RtspResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `CSeq`, when present and numeric.
    pub fn cseq(&self) -> Option<u32> {
        self.header("cseq").and_then(|v| v.parse().ok())
    }
}

/// One message from the device on the RTSP connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RtspMessage<'a> {
    /// An answer to one of our requests.
    Response(RtspResponse),
    /// An interleaved binary frame: RTP or RTCP, by channel.
    Interleaved {
        /// The channel byte (`interleaved=0-1`: 0 RTP, 1 RTCP).
        channel: u8,
        /// The RTP or RTCP packet.
        payload: &'a [u8],
    },
}

/// Parses the message at the start of `buf`: `Ok(None)` when more bytes are needed, else
/// the message and its length in bytes.
///
/// # Errors
/// As [`parse_response`] for anything that does not start with `$`.
pub fn parse_message<'a>(
    buf: &'a [u8],
    limits: &HttpLimits,
) -> Result<Option<(RtspMessage<'a>, usize)>, IsapiError> {
    match buf {
        [] => Ok(None),
        [b'$', rest @ ..] => {
            let &[channel, hi, lo, ..] = rest else {
                return Ok(None);
            };
            let end = 4 + usize::from(u16::from_be_bytes([hi, lo]));
            Ok(buf
                .get(4..end)
                .map(|payload| (RtspMessage::Interleaved { channel, payload }, end)))
        }
        _ => Ok(parse_response(buf, limits)?.map(|(r, n)| (RtspMessage::Response(r), n))),
    }
}

/// Parses an RTSP/1.x answer at the start of `buf`: `Ok(None)` when more bytes are
/// needed, else the answer and its length in bytes.
///
/// # Errors
/// [`IsapiError::Malformed`] as soon as the bytes cannot start an `RTSP/1.x` status line
/// (garbage is not buffered up to the limit), for a bad status line, a header line without
/// a colon or a bad `Content-Length`; [`IsapiError::TooLarge`] past the head, header-count
/// or body limit.
pub fn parse_response(
    buf: &[u8],
    limits: &HttpLimits,
) -> Result<Option<(RtspResponse, usize)>, IsapiError> {
    const PREFIX: &[u8] = b"RTSP/1.";
    let n = buf.len().min(PREFIX.len());
    if buf[..n] != PREFIX[..n] {
        return Err(IsapiError::Malformed("not an RTSP/1.x answer"));
    }
    // Only the first `max_head` bytes (and the terminator) can hold an acceptable head.
    let scan = &buf[..buf.len().min(limits.max_head.saturating_add(4))];
    let Some(end) = find(scan, b"\r\n\r\n") else {
        return if buf.len() > limits.max_head {
            Err(IsapiError::TooLarge("RTSP answer head"))
        } else {
            Ok(None)
        };
    };
    if end + 4 > limits.max_head {
        return Err(IsapiError::TooLarge("RTSP answer head"));
    }
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let mut status_line = lines.next().unwrap_or("").split_whitespace();
    let _version = status_line.next();
    let status = status_line
        .next()
        .filter(|s| s.len() == 3)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| *s >= 100)
        .ok_or(IsapiError::Malformed("bad RTSP status line"))?;
    let mut headers = Vec::new();
    let mut length: Option<usize> = None;
    for line in lines {
        if headers.len() >= limits.max_headers {
            return Err(IsapiError::TooLarge("RTSP header count"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or(IsapiError::Malformed("RTSP header line without a colon"))?;
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse::<usize>()
                .map_err(|_| IsapiError::Malformed("bad Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(IsapiError::Malformed("conflicting Content-Length"));
            }
            if n > limits.max_body {
                return Err(IsapiError::TooLarge("RTSP answer body"));
            }
            length = Some(n);
        }
        headers.push((name.to_owned(), value.to_owned()));
    }
    let start = end + 4;
    let total = start + length.unwrap_or(0);
    Ok(buf.get(start..total).map(|body| {
        (
            RtspResponse {
                status,
                headers,
                body: body.to_vec(),
            },
            total,
        )
    }))
}

/// The RTP marker bit of an RTP packet (RFC 3550 section 5.1): set on the last packet of a
/// video frame.
///
/// # Errors
/// [`IsapiError::Malformed`] when the packet is shorter than the 12-byte fixed header or
/// is not RTP version 2 (a bogus interleaved length shows up here).
pub fn rtp_marker(packet: &[u8]) -> Result<bool, IsapiError> {
    match packet {
        [first, second, ..] if packet.len() >= 12 && first >> 6 == 2 => Ok(second & 0x80 != 0),
        _ => Err(IsapiError::Malformed(
            "interleaved frame is not an RTP packet",
        )),
    }
}

/// The `Session` header value: the session id and, when given, its `timeout` in seconds.
/// `None` for an empty or over-long (> 256 bytes) id.
pub fn parse_session(value: &str) -> Option<(String, Option<u32>)> {
    let mut parts = value.split(';');
    let id = parts.next().unwrap_or("").trim();
    if id.is_empty() || id.len() > 256 {
        return None;
    }
    let timeout = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("timeout")
            .then(|| v.trim().parse().ok())?
    });
    Some((id.to_owned(), timeout))
}

/// The RTP channel of a `Transport` answer's `interleaved=a-b` (`None` without one).
fn interleaved_channel(transport: &str) -> Option<u8> {
    transport.split(';').find_map(|p| {
        let v = p.trim().strip_prefix("interleaved=")?;
        v.split('-').next()?.trim().parse().ok()
    })
}

/// Resolves an SDP `a=control` value against the base URL: `*` is the base itself, an
/// absolute `rtsp://` URL stays as it is, anything else is appended as a path segment
/// (what Hikvision's `trackID=1` with a `Content-Base` ending in `/` needs, and what
/// common clients do for a base without one).
fn resolve(base: &str, control: &str) -> String {
    let absolute = control
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("rtsp://"));
    if control == "*" || control.is_empty() {
        base.to_owned()
    } else if absolute {
        control.to_owned()
    } else if base.ends_with('/') {
        format!("{base}{control}")
    } else {
        format!("{base}/{control}")
    }
}

/// The control URLs of an SDP (RFC 2326 appendix C): the aggregate one for `PLAY`,
/// keepalives and `TEARDOWN` (the session-level `a=control`, else the video track's), and
/// the first video track's for `SETUP` (the base when the track names none).
///
/// # Errors
/// [`IsapiError::Unsupported`] when the SDP has no `m=video` section.
pub fn sdp_controls(sdp: &str, base: &str) -> Result<(String, String), IsapiError> {
    let mut session: Option<&str> = None;
    let mut video: Option<Option<&str>> = None;
    // Which section the lines belong to: the session (before any `m=`), the first video
    // section, or another media section.
    let mut in_session = true;
    let mut in_video = false;
    for line in sdp.lines() {
        if let Some(media) = line.strip_prefix("m=") {
            in_session = false;
            in_video = video.is_none() && media.starts_with("video");
            if in_video {
                video = Some(None);
            }
        } else if let Some(c) = line.strip_prefix("a=control:") {
            if in_session {
                session = Some(c.trim());
            } else if in_video {
                video = Some(Some(c.trim()));
            }
        }
    }
    let video = video.ok_or(IsapiError::Unsupported("an SDP without a video track"))?;
    let track = resolve(base, video.unwrap_or("*"));
    let aggregate = session.map_or_else(|| track.clone(), |c| resolve(base, c));
    Ok((aggregate, track))
}

/// Bytes read per `read` call (a few RTP packets).
const READ_CHUNK: usize = 8192;

/// One playing RTSP session: the connection, the session id and the counters.
///
/// Dropping it closes the connection (the device ends the stream when it sees the close);
/// [`RtspSession::teardown`] ends it politely first.
#[derive(Debug)]
pub struct RtspSession {
    stream: Async<TcpStream>,
    /// Received bytes not yet parsed: at most one incomplete message, which the limits and
    /// the 16-bit interleaved length bound.
    buf: Vec<u8>,
    options: RtspOptions,
    /// The aggregate control URL: `PLAY`, keepalives and `TEARDOWN` go here.
    url: String,
    /// The `Session` id from `SETUP`, sent on every later request (empty before).
    session: String,
    /// The `CSeq` of the last request.
    cseq: u32,
    /// Digest credentials after the device asked for them; every later request carries
    /// a fresh `Authorization` with the same nonce (and the next `nc`).
    creds: Option<DigestCredentials>,
    /// The interleaved channel of RTP (the device's answer to `interleaved=0-1`); the
    /// channel after it (RTCP) and any other are skipped.
    rtp_channel: u8,
    /// Half the session timeout the device announced (60 s when it did not).
    keepalive_every: Duration,
    /// When the next keepalive is due.
    keepalive_at: Instant,
    /// `GET_PARAMETER`, or `OPTIONS` after the device refused `GET_PARAMETER`.
    keepalive_method: &'static str,
    /// The `CSeq` of the keepalive whose answer has not arrived yet.
    keepalive_cseq: Option<u32>,
    /// When the last complete frame arrived (or `PLAY` was answered): the silence clock.
    last_frame: Instant,
    /// Counted since the last [`RtspSession::next_progress`] returned.
    pending: StreamProgress,
}

impl RtspSession {
    /// Connects to the device's RTSP port at `addr`, and runs `DESCRIBE`, `SETUP` of the
    /// video track (TCP interleaved) and `PLAY` for `path` (see [`stream_path`]). Each step
    /// has its own deadline, `options.exchange_timeout`.
    ///
    /// The password is used only when the device asks for Digest (a `401`); a device
    /// that offers only Basic gets nothing.
    ///
    /// # Errors
    /// [`IsapiError::Connect`], [`IsapiError::Timeout`], [`IsapiError::Io`],
    /// [`IsapiError::Closed`]; [`IsapiError::Auth`] when the device refuses the
    /// credentials; [`IsapiError::Unsupported`] for Basic only or an SDP without video;
    /// [`IsapiError::RtspStatus`] for other refusals (453: the device's stream limit);
    /// [`IsapiError::Malformed`] / [`IsapiError::TooLarge`] for bad answers, including a
    /// `SETUP` answer without a `Session` header.
    pub async fn open(
        addr: SocketAddr,
        path: &str,
        user: &str,
        password: &[u8],
        options: RtspOptions,
    ) -> Result<RtspSession, IsapiError> {
        if !path.starts_with('/') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            // It goes into the request line as it is.
            return Err(IsapiError::Unsupported(
                "an RTSP path that does not start with / or holds spaces or control characters",
            ));
        }
        let login = Some((user, password));
        let url = format!("rtsp://{addr}{path}");
        let stream = with_deadline(Instant::now() + options.exchange_timeout, async {
            Async::<TcpStream>::connect(addr)
                .await
                .map_err(IsapiError::Connect)
        })
        .await?;
        let _ = stream.get_ref().set_nodelay(true);
        let now = Instant::now();
        let mut s = RtspSession {
            stream,
            buf: Vec::with_capacity(READ_CHUNK),
            options,
            url: url.clone(),
            session: String::new(),
            cseq: 0,
            creds: None,
            rtp_channel: 0,
            keepalive_every: Duration::from_secs(30),
            keepalive_at: now,
            keepalive_method: "GET_PARAMETER",
            keepalive_cseq: None,
            last_frame: now,
            pending: StreamProgress::default(),
        };

        let sdp = s
            .exchange("DESCRIBE", &url, "Accept: application/sdp\r\n", login)
            .await?;
        let base = ["content-base", "content-location"]
            .iter()
            .filter_map(|h| sdp.header(h))
            .find(|b| {
                b.get(..7)
                    .is_some_and(|p| p.eq_ignore_ascii_case("rtsp://"))
            })
            .unwrap_or(&url)
            .to_owned();
        let (aggregate, track) = sdp_controls(&String::from_utf8_lossy(&sdp.body), &base)?;

        let setup = s
            .exchange(
                "SETUP",
                &track,
                "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n",
                login,
            )
            .await?;
        let (session, timeout) =
            setup
                .header("session")
                .and_then(parse_session)
                .ok_or(IsapiError::Malformed(
                    "SETUP answer without a Session header",
                ))?;
        s.session = session;
        s.rtp_channel = setup
            .header("transport")
            .and_then(interleaved_channel)
            .unwrap_or(0);
        // Clamped: a device must not make us send a keepalive every few milliseconds, and
        // one that announces hours may still expire us sooner.
        s.keepalive_every = Duration::from_secs(u64::from(timeout.unwrap_or(60).clamp(2, 600)) / 2);

        s.url = aggregate.clone();
        s.exchange("PLAY", &aggregate, "Range: npt=0.000-\r\n", login)
            .await?;
        let now = Instant::now();
        s.last_frame = now;
        s.keepalive_at = now + s.keepalive_every;
        Ok(s)
    }

    /// Waits until at least one video frame has completed and returns what arrived since
    /// the previous call. Sends the keepalive when it is due.
    ///
    /// Cancelling the returned future (a `select` with a shutdown) loses nothing that was
    /// read; a keepalive being written at that moment may be cut short, after which the
    /// device will see a malformed request.
    ///
    /// # Errors
    /// [`IsapiError::StreamSilent`] when no frame completed for `options.silence`,
    /// [`IsapiError::StreamEnded`] when the device closed the connection,
    /// [`IsapiError::Io`] when it reset it, [`IsapiError::RtspStatus`] (454) when the
    /// device no longer knows the session, [`IsapiError::Malformed`] /
    /// [`IsapiError::TooLarge`] for garbage on the connection.
    pub async fn next_progress(&mut self) -> Result<StreamProgress, IsapiError> {
        loop {
            if let Some(answer) = self.drain()? {
                self.keepalive_answer(&answer)?;
                continue;
            }
            let now = Instant::now();
            if now >= self.keepalive_at {
                self.send_keepalive().await?;
                continue;
            }
            if self.pending.frames > 0 {
                return Ok(std::mem::take(&mut self.pending));
            }
            let silent_at = self.last_frame + self.options.silence;
            if now >= silent_at {
                return Err(IsapiError::StreamSilent);
            }
            let wake = silent_at.min(self.keepalive_at);
            let read = async { self.fill().await.map(Some) }
                .or(async {
                    Timer::at(wake).await;
                    Ok(None)
                })
                .await?;
            if read == Some(0) {
                return Err(IsapiError::StreamEnded);
            }
        }
    }

    /// Sends `TEARDOWN` and waits for its answer (under the exchange deadline), then
    /// closes the connection. Errors are only worth a log line: the stream ends either way.
    ///
    /// # Errors
    /// As [`RtspSession::next_progress`]'s transport errors, [`IsapiError::Timeout`], or
    /// [`IsapiError::RtspStatus`] when the device refused it.
    pub async fn teardown(mut self) -> Result<(), IsapiError> {
        let url = self.url.clone();
        self.exchange("TEARDOWN", &url, "", None).await.map(|_| ())
    }

    /// The request head with `CSeq`, `Session` and `Authorization` (when the device asked
    /// for Digest) plus `extra` (complete header lines).
    fn request(&mut self, method: &str, url: &str, extra: &str) -> Vec<u8> {
        self.cseq = self.cseq.wrapping_add(1);
        let mut head = format!(
            "{method} {url} RTSP/1.0\r\nCSeq: {}\r\nUser-Agent: hikwatch\r\n{extra}",
            self.cseq
        );
        if !self.session.is_empty() {
            head.push_str(&format!("Session: {}\r\n", self.session));
        }
        if let Some(d) = &mut self.creds {
            head.push_str(&format!(
                "Authorization: {}\r\n",
                d.authorization(method, url)
            ));
        }
        head.push_str("\r\n");
        head.into_bytes()
    }

    /// One request and its answer, under the exchange deadline. A `401` is answered with
    /// Digest once: with `login` when no credentials are set yet, or with a fresh nonce
    /// when the device says the old one is stale. Any other `401` is a refused login (a
    /// wrong password is never retried: each try counts towards the device's lock).
    /// Non-2xx answers are errors.
    async fn exchange(
        &mut self,
        method: &str,
        url: &str,
        extra: &str,
        login: Option<(&str, &[u8])>,
    ) -> Result<RtspResponse, IsapiError> {
        let deadline = Instant::now() + self.options.exchange_timeout;
        for first in [true, false] {
            let raw = self.request(method, url, extra);
            let cseq = self.cseq;
            let answer = with_deadline(deadline, async {
                self.write(&raw).await?;
                loop {
                    match self.drain()? {
                        Some(a) if a.cseq().is_none_or(|c| c == cseq) => return Ok(a),
                        // An answer to an earlier request (a late keepalive).
                        Some(_) => continue,
                        None => {
                            if self.fill().await? == 0 {
                                return Err(IsapiError::Closed);
                            }
                        }
                    }
                }
            })
            .await?;
            if answer.status != 401 {
                return match answer.status {
                    200..=299 => Ok(answer),
                    s => Err(IsapiError::RtspStatus(s)),
                };
            }
            let offers = || {
                answer
                    .headers
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case("www-authenticate"))
                    .map(|(_, v)| v.as_str())
            };
            let challenge = auth::parse_digest_challenge(offers());
            match (&mut self.creds, challenge, login) {
                (None, Some(c), Some((user, password))) if first => {
                    self.creds = Some(DigestCredentials::new(user, password, c));
                }
                (Some(d), Some(c), _) if first && c.stale => d.renew(c),
                (None, None, _) if auth::offers_basic(offers()) => {
                    return Err(IsapiError::Unsupported(
                        "the device offers only Basic authentication, which hikwatch never sends",
                    ));
                }
                _ => return Err(auth::login_refusal(&String::from_utf8_lossy(&answer.body))),
            }
        }
        Err(IsapiError::Auth { retries_left: None })
    }

    /// Handles every complete message in the buffer: RTP packets on the video channel are
    /// counted, other channels (RTCP) skipped; the first answer found is returned, the
    /// bytes after it stay buffered.
    fn drain(&mut self) -> Result<Option<RtspResponse>, IsapiError> {
        let mut used = 0;
        let mut answer = None;
        while answer.is_none() {
            let Some((msg, n)) = parse_message(&self.buf[used..], &self.options.limits)? else {
                break;
            };
            used += n;
            match msg {
                RtspMessage::Response(r) => answer = Some(r),
                RtspMessage::Interleaved { channel, payload } if channel == self.rtp_channel => {
                    let marker = rtp_marker(payload)?;
                    self.pending.packets += 1;
                    self.pending.bytes += n as u64;
                    if marker {
                        self.pending.frames += 1;
                        self.last_frame = Instant::now();
                    }
                }
                RtspMessage::Interleaved { .. } => {}
            }
        }
        self.buf.drain(..used);
        Ok(answer)
    }

    /// Checks the answer to a keepalive: `454` (the device forgot the session) is an
    /// error; `405`/`501` switch the keepalive to `OPTIONS`; a stale Digest nonce is
    /// renewed for the next request. Other answers (and late ones) change nothing: the
    /// frames, not the keepalive, say whether the stream lives.
    fn keepalive_answer(&mut self, answer: &RtspResponse) -> Result<(), IsapiError> {
        if self.keepalive_cseq.is_none() || answer.cseq() != self.keepalive_cseq {
            return Ok(());
        }
        self.keepalive_cseq = None;
        match answer.status {
            454 => return Err(IsapiError::RtspStatus(454)),
            405 | 501 => self.keepalive_method = "OPTIONS",
            401 => {
                let offers = answer
                    .headers
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case("www-authenticate"))
                    .map(|(_, v)| v.as_str());
                if let (Some(d), Some(c)) = (&mut self.creds, auth::parse_digest_challenge(offers))
                {
                    d.renew(c);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Sends the keepalive (its answer is read with the stream) and schedules the next.
    async fn send_keepalive(&mut self) -> Result<(), IsapiError> {
        let url = self.url.clone();
        let raw = self.request(self.keepalive_method, &url, "");
        self.keepalive_cseq = Some(self.cseq);
        self.keepalive_at = Instant::now() + self.keepalive_every;
        with_deadline(
            Instant::now() + self.options.exchange_timeout,
            self.write(&raw),
        )
        .await
    }

    /// Writes one request.
    async fn write(&mut self, raw: &[u8]) -> Result<(), IsapiError> {
        self.stream.write_all(raw).await.map_err(IsapiError::Io)?;
        self.stream.flush().await.map_err(IsapiError::Io)
    }

    /// Reads more bytes into the buffer; `Ok(0)` at the end of the connection.
    async fn fill(&mut self) -> Result<usize, IsapiError> {
        let mut chunk = [0u8; READ_CHUNK];
        let n = self.stream.read(&mut chunk).await.map_err(IsapiError::Io)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lim() -> HttpLimits {
        RtspOptions::default().limits
    }

    #[test]
    fn answers_frames_and_garbage() {
        let raw = b"RTSP/1.0 200 OK\r\nCSeq: 3\r\nContent-Length: 2\r\n\r\nab$\x00\x00\x0c";
        let (m, n) = parse_message(raw, &lim()).unwrap().unwrap();
        let RtspMessage::Response(r) = m else {
            panic!("{m:?}")
        };
        assert_eq!(
            (r.status, r.cseq(), r.body.as_slice(), n),
            (200, Some(3), &b"ab"[..], raw.len() - 4)
        );
        // The frame after it needs its 12 bytes.
        assert!(parse_message(&raw[n..], &lim()).unwrap().is_none());
        let frame = [b'$', 1, 0, 2, 9, 9, 7];
        assert_eq!(
            parse_message(&frame, &lim()).unwrap(),
            Some((
                RtspMessage::Interleaved {
                    channel: 1,
                    payload: &[9, 9]
                },
                6
            ))
        );
        assert!(parse_message(b"RTS", &lim()).unwrap().is_none());
        assert!(matches!(
            parse_message(b"HTTP/1.1 200 OK\r\n\r\n", &lim()),
            Err(IsapiError::Malformed(_))
        ));
        assert!(matches!(
            parse_message(b"RTSP/1.0 2000 OK\r\n\r\n", &lim()),
            Err(IsapiError::Malformed(_))
        ));
        let mut endless = b"RTSP/1.0 200 OK\r\nX: ".to_vec();
        endless.resize(20_000, b'a');
        assert!(matches!(
            parse_message(&endless, &lim()),
            Err(IsapiError::TooLarge(_))
        ));
        assert!(matches!(
            parse_message(
                b"RTSP/1.0 200 OK\r\nContent-Length: 99999999\r\n\r\n",
                &lim()
            ),
            Err(IsapiError::TooLarge(_))
        ));
    }

    #[test]
    fn rtp_marker_and_session() {
        let mut p = [0u8; 12];
        p[0] = 0x80;
        assert!(!rtp_marker(&p).unwrap());
        p[1] = 0x80 | 96;
        assert!(rtp_marker(&p).unwrap());
        assert!(rtp_marker(&p[..11]).is_err());
        assert!(rtp_marker(&[0u8; 12]).is_err());
        assert_eq!(
            parse_session("12AB;timeout=60"),
            Some(("12AB".into(), Some(60)))
        );
        assert_eq!(
            parse_session(" x ; Timeout = 8"),
            Some(("x".into(), Some(8)))
        );
        assert_eq!(parse_session("x"), Some(("x".into(), None)));
        assert_eq!(parse_session(";timeout=1"), None);
        assert_eq!(
            interleaved_channel("RTP/AVP/TCP;unicast;interleaved=2-3"),
            Some(2)
        );
    }

    #[test]
    fn sdp_control_urls() {
        let base = "rtsp://10.0.0.2:554/ISAPI/Streaming/channels/101/";
        let hik = "v=0\r\na=control:*\r\nm=video 0 RTP/AVP 96\r\na=control:trackID=1\r\n\
                   m=audio 0 RTP/AVP 0\r\na=control:trackID=2\r\n";
        assert_eq!(
            sdp_controls(hik, base).unwrap(),
            (base.to_owned(), format!("{base}trackID=1"))
        );
        let other = "m=audio 0 RTP/AVP 0\r\na=control:a\r\nm=video 0 RTP/AVP 96\r\n\
                     a=control:rtsp://h/v\r\n";
        assert_eq!(
            sdp_controls(other, "rtsp://h/s").unwrap(),
            ("rtsp://h/v".to_owned(), "rtsp://h/v".to_owned())
        );
        assert_eq!(
            sdp_controls("m=video 0 RTP/AVP 96\n", "rtsp://h/s")
                .unwrap()
                .1,
            "rtsp://h/s"
        );
        assert!(matches!(
            sdp_controls("m=audio 0 RTP/AVP 0\r\n", base),
            Err(IsapiError::Unsupported(_))
        ));
        assert_eq!(stream_path(1, 0), "/ISAPI/Streaming/channels/101");
        assert_eq!(stream_path(2, 1), "/ISAPI/Streaming/channels/202");
    }
}
