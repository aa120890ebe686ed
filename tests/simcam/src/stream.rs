//! Live video of a camera: stream settings, stream faults and counters (the RTSP side
//! lives in `rtsp.rs`, the H.264 pictures in `h264.rs`).
//!
//! What HCNetSDK 6.1.9.48 needs for a live preview in ISAPI login mode: it reads the RTSP
//! port from `GET /ISAPI/Security/adminAccesses`, then runs RTSP over TCP (interleaved
//! RTP) on `rtsp://host:port/ISAPI/Streaming/channels/101` (main) or `102` (sub).

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::camera::{CamShared, Camera};
use crate::events::EventKind;
use crate::http::Response;

/// Which stream of channel 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// Main stream, `/ISAPI/Streaming/channels/101`.
    Main,
    /// Sub stream, `/ISAPI/Streaming/channels/102`.
    Sub,
}

impl StreamKind {
    /// The ISAPI streaming channel id (101, 102).
    pub fn channel_id(self) -> u32 {
        match self {
            StreamKind::Main => 101,
            StreamKind::Sub => 102,
        }
    }

    /// From an ISAPI streaming channel id.
    pub fn from_channel_id(id: u32) -> Option<StreamKind> {
        match id {
            101 => Some(StreamKind::Main),
            102 => Some(StreamKind::Sub),
            _ => None,
        }
    }
}

/// What one stream sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamProfile {
    /// Pictures per second (1 to 120).
    pub fps: u32,
    /// Target bitrate in bits per second (filler pads the pictures up to it).
    pub bitrate: u32,
    /// Picture width in 16-pixel macroblocks.
    pub width_mbs: u32,
    /// Picture height in macroblocks.
    pub height_mbs: u32,
}

impl StreamProfile {
    /// Default main stream: 64×48, 25 fps, 128 kbit/s.
    pub const MAIN: StreamProfile = StreamProfile {
        fps: 25,
        bitrate: 128_000,
        width_mbs: 4,
        height_mbs: 3,
    };
    /// Default sub stream: 32×32, 10 fps, 64 kbit/s.
    pub const SUB: StreamProfile = StreamProfile {
        fps: 10,
        bitrate: 64_000,
        width_mbs: 2,
        height_mbs: 2,
    };
}

/// Stream counters of one camera (a snapshot; see [`Camera::stream_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Streams that reached PLAY.
    pub started: u64,
    /// Streams that ended (TEARDOWN, connection closed, power-off).
    pub stopped: u64,
    /// SETUP or PLAY refused with 453 (stream limit).
    pub refused: u64,
    /// Streams set up now (SETUP done, not yet ended).
    pub active: usize,
    /// Most streams set up at once.
    pub active_hwm: usize,
    /// RTP bytes sent (interleaved framing included).
    pub bytes: u64,
    /// Pictures sent.
    pub pictures: u64,
    /// RTSP requests answered.
    pub requests: u64,
}

/// Stream settings, faults and counters of one camera.
#[derive(Debug)]
pub(crate) struct StreamState {
    pub main: StreamProfile,
    pub sub: StreamProfile,
    /// Most streams set up at once; beyond it SETUP gets 453. `None` = unlimited.
    pub limit: Option<usize>,
    /// "Stream stops while the session lives": no pictures until resumed.
    pub halted: bool,
    /// Stall: no pictures until this instant (then they resume).
    pub stall_until: Option<Instant>,
    /// Frame-rate drop: send at most this many pictures per second.
    pub fps_cap: Option<u32>,
    /// Bumped by [`Camera::cut_streams`]: a playing stream that started under an earlier
    /// value closes its connection at its next picture.
    pub cuts: u64,
    pub stats: StreamStats,
}

/// Per-camera stream control, held in the camera's shared state.
#[derive(Debug)]
pub(crate) struct StreamCtl {
    /// Where the camera's RTSP server listens (fixed for the fleet's life).
    pub addr: SocketAddr,
    /// The listener until the accept loop takes it.
    pub listener: Mutex<Option<TcpListener>>,
    st: Mutex<StreamState>,
}

impl StreamCtl {
    /// Binds the RTSP listener on `ip` (an ephemeral port).
    pub(crate) fn new(ip: Ipv4Addr) -> std::io::Result<StreamCtl> {
        let listener = TcpListener::bind((ip, 0))?;
        let addr = listener.local_addr()?;
        Ok(StreamCtl {
            addr,
            listener: Mutex::new(Some(listener)),
            st: Mutex::new(StreamState {
                main: StreamProfile::MAIN,
                sub: StreamProfile::SUB,
                limit: None,
                halted: false,
                stall_until: None,
                fps_cap: None,
                cuts: 0,
                stats: StreamStats::default(),
            }),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, StreamState> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl StreamState {
    pub(crate) fn profile(&self, kind: StreamKind) -> StreamProfile {
        match kind {
            StreamKind::Main => self.main,
            StreamKind::Sub => self.sub,
        }
    }

    /// Whether pictures flow now, and the effective frame rate.
    pub(crate) fn flowing(&mut self, now: Instant, kind: StreamKind) -> (bool, u32) {
        if self.stall_until.is_some_and(|t| t <= now) {
            self.stall_until = None;
        }
        let fps = self.profile(kind).fps.clamp(1, 120);
        let fps = self.fps_cap.map_or(fps, |c| fps.min(c.max(1)));
        (!self.halted && self.stall_until.is_none(), fps)
    }
}

impl CamShared {
    /// `GET /ISAPI/Security/adminAccesses`: the ports of the camera's protocols. The SDK
    /// takes the RTSP port from here before a live preview.
    pub(crate) fn admin_accesses(&self) -> Response {
        let port = |proto: &str, id: u32, port: u16| {
            format!(
                "<AdminAccessProtocol version=\"2.0\" xmlns=\"http://www.hikvision.com/ver20/XMLSchema\">\n\
                 <id>{id}</id>\n<enabled>true</enabled>\n<protocol>{proto}</protocol>\n\
                 <portNo>{port}</portNo>\n</AdminAccessProtocol>\n"
            )
        };
        Response::xml(
            200,
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AdminAccessProtocolList version=\"2.0\" \
                 xmlns=\"http://www.hikvision.com/ver20/XMLSchema\">\n{}{}{}</AdminAccessProtocolList>\n",
                port("HTTP", 1, self.addr.port()),
                port("DEV_MANAGE", 2, 8000),
                port("RTSP", 3, self.stream.addr.port()),
            ),
        )
    }
}

impl Camera {
    /// Where this camera's RTSP server listens (announced in `adminAccesses`).
    pub fn rtsp_addr(&self) -> SocketAddr {
        self.cam.stream.addr
    }

    /// Frame rate, bitrate and size of the main or sub stream (for streams started later).
    pub fn set_stream_profile(&self, kind: StreamKind, profile: StreamProfile) {
        let mut st = self.cam.stream.lock();
        match kind {
            StreamKind::Main => st.main = profile,
            StreamKind::Sub => st.sub = profile,
        }
        drop(st);
        self.cam.log(
            EventKind::StreamFault,
            format!(
                "profile ch={} fps={} bitrate={}",
                kind.channel_id(),
                profile.fps,
                profile.bitrate
            ),
        );
    }

    /// The stream stops while the session and the RTSP connection live (an encoder hang):
    /// no pictures until [`Camera::resume_stream`].
    pub fn halt_stream(&self) {
        self.cam.stream.lock().halted = true;
        self.cam.log(EventKind::StreamFault, "halt".into());
    }

    /// Ends [`Camera::halt_stream`] and any stall.
    pub fn resume_stream(&self) {
        let mut st = self.cam.stream.lock();
        st.halted = false;
        st.stall_until = None;
        drop(st);
        self.cam.log(EventKind::StreamFault, "resume".into());
    }

    /// The stream stalls for `d` (no pictures), then resumes by itself.
    pub fn stall_stream(&self, d: Duration) {
        self.cam.stream.lock().stall_until = Some(Instant::now() + d);
        self.cam.log(
            EventKind::StreamFault,
            format!("stall ms={}", d.as_millis()),
        );
    }

    /// Frame-rate drop: at most `fps` pictures per second (`None` = the profile's rate).
    pub fn set_stream_fps_cap(&self, fps: Option<u32>) {
        self.cam.stream.lock().fps_cap = fps;
        let d = fps.map_or_else(|| "none".to_owned(), |n| n.to_string());
        self.cam.log(EventKind::StreamFault, format!("fps_cap={d}"));
    }

    /// The device's stream limit: beyond `n` streams set up at once, SETUP gets RTSP 453
    /// (Not Enough Bandwidth); `Some(0)` refuses every stream. `None` = unlimited.
    pub fn set_stream_limit(&self, n: Option<usize>) {
        self.cam.stream.lock().limit = n;
        let d = n.map_or_else(|| "none".to_owned(), |n| n.to_string());
        self.cam.log(EventKind::StreamFault, format!("limit={d}"));
    }

    /// Closes the RTSP connection of every playing stream (within one picture interval)
    /// while the session lives: a stream that breaks, not one that stalls. The stops are
    /// logged with `reason=cut`.
    pub fn cut_streams(&self) {
        self.cam.stream.lock().cuts += 1;
        self.cam.log(EventKind::StreamFault, "cut".into());
    }

    /// A snapshot of the stream counters.
    pub fn stream_stats(&self) -> StreamStats {
        self.cam.stream.lock().stats
    }
}
