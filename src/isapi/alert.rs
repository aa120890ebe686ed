//! The device's event stream: `GET /ISAPI/Event/notification/alertStream` answers one
//! long-lived `multipart/mixed` body. Each part is one event (an `EventNotificationAlert`
//! document); devices send `videoloss`/`inactive` as a heartbeat every few seconds when
//! nothing happens.
//!
//! As a detection channel, the stream's end ([`IsapiError::StreamEnded`]) or its silence
//! ([`IsapiError::StreamSilent`]: no complete part within the silence limit) means the
//! link is lost. The silence limit counts complete parts, not bytes, so a device that
//! dribbles bytes without ever finishing a part is silent too.

use std::time::{Duration, Instant};

use super::error::IsapiError;
use super::http::{HttpConnection, find, with_deadline};
use super::xml;

/// Most header lines in one part.
const MAX_PART_HEADERS: usize = 16;

/// One event from the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlertEvent {
    /// The device's "still here" part (`videoloss` with state `inactive`).
    Heartbeat,
    /// A device event.
    Event {
        /// `eventType`, e.g. `VMD`, `linedetection`, `videoloss`.
        event_type: String,
        /// `eventState` is `active`.
        active: bool,
        /// `channelID` (or `dynChannelID`), when present.
        channel: Option<u32>,
    },
    /// A part that is not an XML event (a picture, a JSON document); its content type.
    Other {
        /// The part's `Content-Type`.
        content_type: String,
    },
}

/// One raw part: its content type and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertPart {
    /// `Content-Type` of the part (empty when absent).
    pub content_type: String,
    /// The part's body.
    pub body: Vec<u8>,
}

impl AlertPart {
    /// What the part means.
    pub fn event(&self) -> AlertEvent {
        let ct = self.content_type.to_ascii_lowercase();
        let looks_xml = ct.contains("xml") || (ct.is_empty() && self.body.starts_with(b"<"));
        if !looks_xml {
            return AlertEvent::Other {
                content_type: self.content_type.clone(),
            };
        }
        let doc = String::from_utf8_lossy(&self.body);
        let event_type = xml::field(&doc, "eventType").unwrap_or_default();
        let state = xml::field(&doc, "eventState").unwrap_or_default();
        let active = state.eq_ignore_ascii_case("active");
        if event_type.eq_ignore_ascii_case("videoloss") && !active {
            return AlertEvent::Heartbeat;
        }
        let channel =
            xml::field_u32(&doc, "channelID").or_else(|| xml::field_u32(&doc, "dynChannelID"));
        AlertEvent::Event {
            event_type,
            active,
            channel,
        }
    }
}

/// The `boundary` parameter of a `multipart/…` content type.
pub fn multipart_boundary(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().to_ascii_lowercase().starts_with("multipart/") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        let v = v.trim().trim_matches('"');
        (k.trim().eq_ignore_ascii_case("boundary") && !v.is_empty() && v.len() <= 70)
            .then(|| v.to_owned())
    })
}

/// Parses one part from the start of `buf` (`delimiter` is `--` plus the boundary):
/// `Ok(None)` when more bytes are needed, else the part and the bytes it used. Bytes
/// before the first delimiter (a preamble, blank lines) are skipped.
///
/// # Errors
/// [`IsapiError::StreamEnded`] at the closing delimiter; [`IsapiError::TooLarge`] when a
/// part (or the junk before it) exceeds `max_part`; [`IsapiError::Malformed`] for bad
/// part headers.
pub fn parse_part(
    buf: &[u8],
    delimiter: &[u8],
    max_part: usize,
) -> Result<Option<(AlertPart, usize)>, IsapiError> {
    let Some(start) = find(buf, delimiter) else {
        return if buf.len() > max_part {
            Err(IsapiError::TooLarge(
                "event stream data without a part delimiter",
            ))
        } else {
            Ok(None)
        };
    };
    if start > max_part {
        return Err(IsapiError::TooLarge(
            "event stream data without a part delimiter",
        ));
    }
    let after = &buf[start + delimiter.len()..];
    if after.len() < 2 {
        return Ok(None);
    }
    if after.starts_with(b"--") {
        return Err(IsapiError::StreamEnded);
    }
    // The rest of the delimiter line (transport padding), then the part's headers.
    let Some(eol) = find(after, b"\n") else {
        return if after.len() > 1024 {
            Err(IsapiError::Malformed("part delimiter line too long"))
        } else {
            Ok(None)
        };
    };
    let head_start = start + delimiter.len() + eol + 1;
    let rest = &buf[head_start..];
    let mut slots = [httparse::EMPTY_HEADER; MAX_PART_HEADERS];
    let scan = &rest[..rest.len().min(max_part)];
    let (head_len, headers) = match httparse::parse_headers(scan, &mut slots) {
        Ok(httparse::Status::Complete((n, h))) => (n, h),
        Ok(httparse::Status::Partial) => {
            return if rest.len() >= max_part {
                Err(IsapiError::TooLarge("event part headers"))
            } else {
                Ok(None)
            };
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(IsapiError::TooLarge("event part header count"));
        }
        Err(_) => return Err(IsapiError::Malformed("bad event part headers")),
    };
    let mut content_type = String::new();
    let mut length = None;
    for h in headers.iter() {
        if h.name.eq_ignore_ascii_case("content-type") {
            content_type = String::from_utf8_lossy(h.value).trim().to_owned();
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .ok_or(IsapiError::Malformed("bad event part Content-Length"))?;
            length = Some(n);
        }
    }
    let body_start = head_start + head_len;
    let body_buf = &buf[body_start..];
    let (body, used) = match length {
        Some(n) => {
            if n > max_part {
                return Err(IsapiError::TooLarge("event part"));
            }
            if body_buf.len() < n {
                return Ok(None);
            }
            (body_buf[..n].to_vec(), body_start + n)
        }
        None => {
            // The part ends where the next delimiter line begins.
            let mut next = Vec::with_capacity(delimiter.len() + 2);
            next.extend_from_slice(b"\r\n");
            next.extend_from_slice(delimiter);
            match find(body_buf, &next) {
                Some(end) if end <= max_part => (body_buf[..end].to_vec(), body_start + end),
                Some(_) => return Err(IsapiError::TooLarge("event part")),
                None if body_buf.len() > max_part => {
                    return Err(IsapiError::TooLarge("event part"));
                }
                None => return Ok(None),
            }
        }
    };
    Ok(Some((AlertPart { content_type, body }, used)))
}

/// An open event stream. Created by [`super::IsapiClient::open_alert_stream`]; owns its
/// own connection (the client's request connection stays free).
#[derive(Debug)]
pub struct AlertStream {
    conn: HttpConnection,
    /// `--` plus the boundary.
    delimiter: Vec<u8>,
    /// A complete part must arrive within this long, or the stream is silent.
    silence: Duration,
    /// Largest part accepted.
    max_part: usize,
}

impl AlertStream {
    pub(crate) fn new(
        conn: HttpConnection,
        boundary: &str,
        silence: Duration,
        max_part: usize,
    ) -> AlertStream {
        AlertStream {
            conn,
            delimiter: format!("--{boundary}").into_bytes(),
            silence,
            max_part,
        }
    }

    /// The next part, within the silence limit.
    ///
    /// # Errors
    /// [`IsapiError::StreamSilent`] when no complete part arrives in time,
    /// [`IsapiError::StreamEnded`] when the device closes the stream, or the parse
    /// errors of [`parse_part`].
    pub async fn next_part(&mut self) -> Result<AlertPart, IsapiError> {
        let deadline = Instant::now() + self.silence;
        let delimiter = self.delimiter.clone();
        let max_part = self.max_part;
        let conn = &mut self.conn;
        let read = async {
            loop {
                if let Some((part, used)) = parse_part(conn.buffered(), &delimiter, max_part)? {
                    conn.consume(used);
                    return Ok(part);
                }
                match conn.fill().await {
                    Ok(0) | Err(IsapiError::Io(_)) => return Err(IsapiError::StreamEnded),
                    Ok(_) => {}
                    Err(e) => return Err(e),
                }
            }
        };
        match with_deadline(deadline, read).await {
            Err(IsapiError::Timeout) => Err(IsapiError::StreamSilent),
            other => other,
        }
    }

    /// The next event (see [`AlertPart::event`]).
    ///
    /// # Errors
    /// As [`AlertStream::next_part`].
    pub async fn next_event(&mut self) -> Result<AlertEvent, IsapiError> {
        Ok(self.next_part().await?.event())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_with_and_without_length() {
        let d = b"--b";
        let buf = b"\r\n--b\r\nContent-Type: application/xml\r\nContent-Length: 5\r\n\r\n<a/>x\r\n--b\r\n\r\n<x>1</x>\r\n--b--\r\n";
        let (p, used) = parse_part(buf, d, 1024).unwrap().unwrap();
        assert_eq!(p.body, b"<a/>x");
        let (p2, used2) = parse_part(&buf[used..], d, 1024).unwrap().unwrap();
        assert_eq!(p2.body, b"<x>1</x>");
        assert!(matches!(
            parse_part(&buf[used + used2..], d, 1024),
            Err(IsapiError::StreamEnded)
        ));
        assert!(
            parse_part(b"--b\r\nContent-Length: 9\r\n\r\nab", d, 1024)
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            parse_part(&[b'z'; 2000], d, 1024),
            Err(IsapiError::TooLarge(_))
        ));
    }

    #[test]
    fn heartbeat_and_event() {
        let hb = AlertPart {
            content_type: "application/xml".into(),
            body: b"<EventNotificationAlert><channelID>1</channelID><eventType>videoloss</eventType><eventState>inactive</eventState></EventNotificationAlert>".to_vec(),
        };
        assert_eq!(hb.event(), AlertEvent::Heartbeat);
        let ev = AlertPart {
            content_type: "application/xml".into(),
            body: b"<EventNotificationAlert><channelID>2</channelID><eventType>VMD</eventType><eventState>active</eventState></EventNotificationAlert>".to_vec(),
        };
        assert_eq!(
            ev.event(),
            AlertEvent::Event {
                event_type: "VMD".into(),
                active: true,
                channel: Some(2)
            }
        );
        assert_eq!(
            multipart_boundary("multipart/mixed; boundary=\"boundary\"").as_deref(),
            Some("boundary")
        );
        assert_eq!(multipart_boundary("application/xml"), None);
    }
}
