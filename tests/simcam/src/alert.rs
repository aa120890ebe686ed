//! The event stream, `GET /ISAPI/Event/notification/alertStream`: one long-lived
//! `multipart/mixed` answer. Every part is an `EventNotificationAlert` document; when
//! nothing happens a `videoloss`/`inactive` heartbeat part goes out every heartbeat
//! period, as on real cameras. Hooks let tests end the streams (closing delimiter, then
//! FIN) or stall them (open, silent).

use std::collections::VecDeque;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use smol::io::AsyncWriteExt as _;
use smol::{Async, Timer};

use crate::camera::CamShared;
use crate::events::EventKind;
use crate::http::Request;
use crate::isapi::{cookie_session, unauthorized};

/// Where the stream is served.
pub(crate) const ALERT_STREAM_PATH: &str = "/ISAPI/Event/notification/alertStream";
/// The multipart boundary.
const BOUNDARY: &str = "boundary";
/// How often a stream looks at its controls.
const TICK: Duration = Duration::from_millis(20);
/// Queued events kept per camera (a stream that falls further behind skips the oldest).
const MAX_QUEUED: usize = 256;

/// Event-stream controls of one camera.
#[derive(Debug)]
pub(crate) struct AlertState {
    /// Heartbeat part period.
    pub heartbeat: Duration,
    /// While set, open streams send nothing (and stay open).
    pub stalled: bool,
    /// Bumped by [`crate::Camera::end_alert_streams`]: streams opened before end.
    pub end_generation: u64,
    /// Events to send, with their sequence numbers.
    pub queue: VecDeque<(u64, String)>,
    /// Sequence number of the next event.
    pub next_seq: u64,
    /// Streams open now.
    pub open: usize,
}

impl Default for AlertState {
    fn default() -> Self {
        AlertState {
            heartbeat: Duration::from_secs(1),
            stalled: false,
            end_generation: 0,
            queue: VecDeque::new(),
            next_seq: 0,
            open: 0,
        }
    }
}

fn alert_xml(index: usize, event_type: &str, active: bool) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<EventNotificationAlert version=\"2.0\" \
         xmlns=\"http://www.hikvision.com/ver20/XMLSchema\">\n<ipAddress>127.0.0.1</ipAddress>\n\
         <channelID>1</channelID>\n<dateTime>2026-01-01T00:00:00+00:00</dateTime>\n\
         <activePostCount>1</activePostCount>\n<eventType>{event_type}</eventType>\n\
         <eventState>{}</eventState>\n<eventDescription>{event_type} alarm</eventDescription>\n\
         <channelName>simcam-{index}</channelName>\n</EventNotificationAlert>\n",
        if active { "active" } else { "inactive" }
    )
}

fn part(body: &str) -> Vec<u8> {
    format!(
        "--{BOUNDARY}\r\nContent-Type: application/xml; charset=\"UTF-8\"\r\n\
         Content-Length: {}\r\n\r\n{body}\r\n",
        body.len()
    )
    .into_bytes()
}

/// Decrements the open-stream count however the stream task ends.
struct OpenStream(Arc<CamShared>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.alert.open = st.alert.open.saturating_sub(1);
    }
}

/// Serves one stream until it is ended, the client goes away, or power-off.
pub(crate) async fn serve_alert_stream(
    cam: &Arc<CamShared>,
    stream: &Async<TcpStream>,
    req: &Request,
    peer: SocketAddr,
) {
    let mut stream = stream;
    let (refused, generation, mut seq) = {
        let mut st = cam.lock();
        st.stats.requests += 1;
        let refused = if st.digest.enabled {
            cam.digest_check(&mut st, req, peer, Instant::now()).err()
        } else {
            match cookie_session(req.cookie.as_deref()) {
                Some(id) if st.sessions.contains_key(id) => None,
                _ => Some(unauthorized(&req.path)),
            }
        };
        if refused.is_none() {
            st.alert.open += 1;
        }
        (refused, st.alert.end_generation, st.alert.next_seq)
    };
    if let Some(mut r) = refused {
        cam.log(
            EventKind::Request,
            format!("GET {ALERT_STREAM_PATH} -> {}", r.status),
        );
        r.close = true;
        let _ = stream.write_all(&r.to_bytes()).await;
        return;
    }
    let _open = OpenStream(cam.clone());
    cam.log(
        EventKind::Request,
        format!("GET {ALERT_STREAM_PATH} -> 200 (stream)"),
    );
    let head = format!(
        "HTTP/1.1 200 OK\r\nServer: App-webs/\r\nConnection: close\r\n\
         Content-Type: multipart/mixed; boundary={BOUNDARY}\r\n\r\n"
    );
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let mut last_heartbeat = Instant::now();
    loop {
        Timer::after(TICK).await;
        let mut out = Vec::new();
        let ended = {
            let st = cam.lock();
            let ended = st.alert.end_generation != generation;
            if !ended && !st.alert.stalled && st.frozen.is_none() {
                let from = seq;
                for (s, body) in st.alert.queue.iter().filter(|(s, _)| *s >= from) {
                    out.extend_from_slice(&part(body));
                    seq = s + 1;
                }
                if out.is_empty() && last_heartbeat.elapsed() >= st.alert.heartbeat {
                    out.extend_from_slice(&part(&alert_xml(cam.index, "videoloss", false)));
                    last_heartbeat = Instant::now();
                }
            }
            ended
        };
        if ended {
            let _ = stream
                .write_all(format!("--{BOUNDARY}--\r\n").as_bytes())
                .await;
            cam.log(EventKind::Request, "alert stream ended".to_owned());
            return;
        }
        if !out.is_empty() && stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

impl crate::Camera {
    /// Period of the heartbeat parts of the event streams (default 1 s).
    pub fn set_alert_heartbeat(&self, period: Duration) {
        self.cam.lock().alert.heartbeat = period;
    }

    /// Sends an event on every open event stream (`eventState` active or inactive).
    pub fn push_alert_event(&self, event_type: &str, active: bool) {
        let body = alert_xml(self.cam.index, event_type, active);
        let mut st = self.cam.lock();
        let seq = st.alert.next_seq;
        st.alert.next_seq += 1;
        st.alert.queue.push_back((seq, body));
        while st.alert.queue.len() > MAX_QUEUED {
            st.alert.queue.pop_front();
        }
    }

    /// Ends every open event stream: the closing delimiter, then the connection closes.
    pub fn end_alert_streams(&self) {
        self.cam.lock().alert.end_generation += 1;
    }

    /// Stalls (or resumes) the event streams: they stay open but send nothing.
    pub fn stall_alert_streams(&self, on: bool) {
        self.cam.lock().alert.stalled = on;
    }

    /// Event streams open now.
    pub fn alert_streams(&self) -> usize {
        self.cam.lock().alert.open
    }
}
