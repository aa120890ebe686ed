//! A small HTTP/1.1 client on async-io sockets: one request at a time on a kept-alive
//! connection, answers parsed with `httparse`, bodies framed by `Content-Length`,
//! chunked transfer coding or the end of the connection.
//!
//! Every limit is explicit ([`HttpLimits`]) and every exchange runs under one total
//! deadline ([`with_deadline`]): a device that answers garbage, never ends its headers,
//! sends an endless body or dribbles a byte at a time ends in a classified
//! [`IsapiError`], never a hang or an unbounded buffer. The parsing functions are pure
//! ([`parse_head`], [`parse_response`]) so they can be fuzzed without sockets.

use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use async_io::{Async, Timer};
use futures_lite::{AsyncReadExt as _, AsyncWriteExt as _, FutureExt as _};

use super::error::IsapiError;

/// Size limits applied to every answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// Largest status line plus headers, in bytes (ISAPI heads are well under 1 KiB).
    pub max_head: usize,
    /// Most header lines in one head.
    pub max_headers: usize,
    /// Largest body, in bytes (`deviceInfo` is about 1 KiB; the limit leaves room for
    /// capability documents of NVRs).
    pub max_body: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_head: 16 * 1024,
            max_headers: 48,
            max_body: 256 * 1024,
        }
    }
}

/// Status line and headers of an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// HTTP status code.
    pub status: u16,
    /// Header lines in order, names as sent; values lossily decoded as UTF-8.
    pub headers: Vec<(String, String)>,
    /// The device will close the connection after this answer (`Connection: close`, or
    /// HTTP/1.0 without keep-alive).
    pub close: bool,
}

impl ResponseHead {
    /// The first value of header `name` (case-insensitive).
    pub fn header<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.headers_named(name).next()
    }

    /// Every value of header `name` (case-insensitive), in order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A complete answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status and headers.
    pub head: ResponseHead,
    /// The body, transfer coding removed.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// How the body of an answer ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body (1xx, 204, 304).
    Empty,
    /// Exactly this many bytes.
    Length(usize),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the device closes the connection.
    UntilClose,
}

/// Parses a response head from the start of `buf`: `Ok(None)` when more bytes are
/// needed, else the head, its framing and its length in bytes.
///
/// # Errors
/// [`IsapiError::TooLarge`] past `max_head` or `max_headers`, [`IsapiError::Malformed`]
/// for anything that is not an HTTP/1.x response head or has unusable framing.
pub fn parse_head(
    buf: &[u8],
    limits: &HttpLimits,
) -> Result<Option<(ResponseHead, BodyFraming, usize)>, IsapiError> {
    let mut slots = vec![httparse::EMPTY_HEADER; limits.max_headers.max(1)];
    let mut resp = httparse::Response::new(&mut slots);
    let scan = &buf[..buf.len().min(limits.max_head.saturating_add(1))];
    let used = match resp.parse(scan) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() > limits.max_head {
                Err(IsapiError::TooLarge("response head"))
            } else {
                Ok(None)
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(IsapiError::TooLarge("header count")),
        Err(_) => return Err(IsapiError::Malformed("not an HTTP/1.x response head")),
    };
    if used > limits.max_head {
        return Err(IsapiError::TooLarge("response head"));
    }
    let (Some(status), Some(version)) = (resp.code, resp.version) else {
        return Err(IsapiError::Malformed("incomplete status line"));
    };
    let mut close = version == 0;
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut headers = Vec::with_capacity(resp.headers.len());
    for h in resp.headers.iter() {
        let value = String::from_utf8_lossy(h.value).trim().to_owned();
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse::<usize>()
                .map_err(|_| IsapiError::Malformed("bad Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(IsapiError::Malformed("conflicting Content-Length"));
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = value.rsplit(',').next().unwrap_or("").trim();
            if last.eq_ignore_ascii_case("chunked") {
                chunked = true;
            } else if !last.eq_ignore_ascii_case("identity") {
                return Err(IsapiError::Unsupported(
                    "a transfer coding other than chunked",
                ));
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            let v = value.to_ascii_lowercase();
            if v.contains("close") {
                close = true;
            } else if v.contains("keep-alive") {
                close = false;
            }
        }
        headers.push((h.name.to_owned(), value));
    }
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        BodyFraming::Empty
    } else if chunked {
        // Chunked wins over a Content-Length (RFC 9112 section 6.3).
        BodyFraming::Chunked
    } else if let Some(n) = length {
        if n > limits.max_body {
            return Err(IsapiError::TooLarge("response body"));
        }
        BodyFraming::Length(n)
    } else {
        close = true;
        BodyFraming::UntilClose
    };
    Ok(Some((
        ResponseHead {
            status,
            headers,
            close,
        },
        framing,
        used,
    )))
}

/// Decodes a chunked body from the start of `buf`: `Ok(None)` when more bytes are
/// needed, else the body and how many bytes of `buf` it used (trailers included).
///
/// # Errors
/// [`IsapiError::TooLarge`] when the decoded body or a trailer exceeds the limits,
/// [`IsapiError::Malformed`] for a bad chunk size line or a missing CRLF.
pub fn decode_chunked(
    buf: &[u8],
    limits: &HttpLimits,
) -> Result<Option<(Vec<u8>, usize)>, IsapiError> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let Some(eol) = find(&buf[pos..], b"\r\n") else {
            // A size line is a few hex digits and maybe an extension.
            return if buf.len() - pos > 1024 {
                Err(IsapiError::Malformed("chunk size line too long"))
            } else {
                Ok(None)
            };
        };
        let line = &buf[pos..pos + eol];
        let digits = line.split(|&b| b == b';').next().unwrap_or(b"");
        let digits = std::str::from_utf8(digits)
            .map_err(|_| IsapiError::Malformed("bad chunk size"))?
            .trim();
        if digits.is_empty() || digits.len() > 8 {
            return Err(IsapiError::Malformed("bad chunk size"));
        }
        let size = usize::from_str_radix(digits, 16)
            .map_err(|_| IsapiError::Malformed("bad chunk size"))?;
        pos += eol + 2;
        if size == 0 {
            // Trailer section: header lines until an empty line.
            loop {
                let Some(eol) = find(&buf[pos..], b"\r\n") else {
                    return if buf.len() - pos > limits.max_head {
                        Err(IsapiError::TooLarge("chunked trailer"))
                    } else {
                        Ok(None)
                    };
                };
                pos += eol + 2;
                if eol == 0 {
                    return Ok(Some((body, pos)));
                }
            }
        }
        if body.len().saturating_add(size) > limits.max_body {
            return Err(IsapiError::TooLarge("response body"));
        }
        if buf.len() < pos + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        pos += size;
        if &buf[pos..pos + 2] != b"\r\n" {
            return Err(IsapiError::Malformed("chunk not followed by CRLF"));
        }
        pos += 2;
    }
}

/// Tries to complete the body of an answer whose head (`framing`) is already parsed;
/// `body` is what followed the head so far, `eof` whether the connection has ended.
///
/// # Errors
/// As [`decode_chunked`]; [`IsapiError::Closed`] when the connection ended before a
/// framed body was complete; [`IsapiError::TooLarge`] for an over-long body.
pub fn complete_body(
    body: &[u8],
    framing: BodyFraming,
    eof: bool,
    limits: &HttpLimits,
) -> Result<Option<(Vec<u8>, usize)>, IsapiError> {
    let done = match framing {
        BodyFraming::Empty => Some((Vec::new(), 0)),
        BodyFraming::Length(n) => (body.len() >= n).then(|| (body[..n].to_vec(), n)),
        BodyFraming::Chunked => decode_chunked(body, limits)?,
        BodyFraming::UntilClose => {
            if body.len() > limits.max_body {
                return Err(IsapiError::TooLarge("response body"));
            }
            eof.then(|| (body.to_vec(), body.len()))
        }
    };
    match done {
        Some(d) => Ok(Some(d)),
        None if eof => Err(IsapiError::Closed),
        None => Ok(None),
    }
}

/// Parses one complete answer from the start of `buf` (`eof`: nothing more will come):
/// `Ok(None)` when more bytes are needed, else the answer and the bytes it used. The
/// connection reader runs the same steps on a growing buffer.
///
/// # Errors
/// As [`parse_head`] and [`complete_body`].
pub fn parse_response(
    buf: &[u8],
    eof: bool,
    limits: &HttpLimits,
) -> Result<Option<(HttpResponse, usize)>, IsapiError> {
    let Some((head, framing, head_len)) = parse_head(buf, limits)? else {
        return if eof {
            Err(IsapiError::Closed)
        } else {
            Ok(None)
        };
    };
    Ok(complete_body(&buf[head_len..], framing, eof, limits)?
        .map(|(body, used)| (HttpResponse { head, body }, head_len + used)))
}

/// Position of `needle` in `hay`.
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Runs `fut` until `deadline`; past it, [`IsapiError::Timeout`].
///
/// # Errors
/// `fut`'s error, or the timeout.
pub async fn with_deadline<T>(
    deadline: Instant,
    fut: impl std::future::Future<Output = Result<T, IsapiError>>,
) -> Result<T, IsapiError> {
    fut.or(async {
        Timer::at(deadline).await;
        Err(IsapiError::Timeout)
    })
    .await
}

/// Bytes read per `read` call.
const READ_CHUNK: usize = 4096;

/// One TCP connection to a device, with what has been read but not yet consumed.
#[derive(Debug)]
pub struct HttpConnection {
    stream: Async<TcpStream>,
    /// Received bytes not yet consumed by a parsed answer (or event part).
    buf: Vec<u8>,
    /// Answers read on this connection so far (0: fresh, never reused).
    answers: u32,
    /// The device said it will close after the last answer, or an error left the
    /// connection in an unknown state: do not reuse it.
    spent: bool,
}

impl HttpConnection {
    /// Opens a connection (no deadline of its own: wrap in [`with_deadline`]).
    ///
    /// # Errors
    /// [`IsapiError::Connect`].
    pub async fn connect(addr: SocketAddr) -> Result<HttpConnection, IsapiError> {
        let stream = Async::<TcpStream>::connect(addr)
            .await
            .map_err(IsapiError::Connect)?;
        let _ = stream.get_ref().set_nodelay(true);
        Ok(HttpConnection {
            stream,
            buf: Vec::with_capacity(READ_CHUNK),
            answers: 0,
            spent: false,
        })
    }

    /// Whether another request may be sent on this connection.
    pub fn reusable(&self) -> bool {
        !self.spent
    }

    /// Whether an answer was already read on this connection (a kept-alive connection the
    /// device may have closed meanwhile).
    pub fn was_used(&self) -> bool {
        self.answers > 0
    }

    /// Sends one request (head and body in one write).
    ///
    /// # Errors
    /// [`IsapiError::Io`].
    pub async fn send(&mut self, request: &[u8]) -> Result<(), IsapiError> {
        self.buf.clear();
        self.spent = true; // until a complete answer says otherwise
        self.stream
            .write_all(request)
            .await
            .map_err(IsapiError::Io)?;
        self.stream.flush().await.map_err(IsapiError::Io)
    }

    /// Reads more bytes into the buffer; `Ok(0)` at the end of the connection.
    ///
    /// # Errors
    /// [`IsapiError::Io`].
    pub async fn fill(&mut self) -> Result<usize, IsapiError> {
        let mut chunk = [0u8; READ_CHUNK];
        let n = self.stream.read(&mut chunk).await.map_err(IsapiError::Io)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// The received, unconsumed bytes.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Drops the first `n` buffered bytes (they were parsed).
    pub fn consume(&mut self, n: usize) {
        self.buf.drain(..n.min(self.buf.len()));
    }

    /// Reads one answer's head; the bytes after it stay buffered.
    ///
    /// # Errors
    /// As [`parse_head`]; [`IsapiError::Closed`] or [`IsapiError::Io`] when the
    /// connection ends first.
    pub async fn read_head(
        &mut self,
        limits: &HttpLimits,
    ) -> Result<(ResponseHead, BodyFraming), IsapiError> {
        loop {
            if let Some((head, framing, used)) = parse_head(&self.buf, limits)? {
                self.consume(used);
                return Ok((head, framing));
            }
            if self.fill().await? == 0 {
                return Err(IsapiError::Closed);
            }
        }
    }

    /// Reads one complete answer.
    ///
    /// # Errors
    /// As [`parse_response`], plus I/O errors.
    pub async fn read_response(&mut self, limits: &HttpLimits) -> Result<HttpResponse, IsapiError> {
        let (head, framing) = self.read_head(limits).await?;
        let mut eof = false;
        loop {
            if let Some((body, used)) = complete_body(&self.buf, framing, eof, limits)? {
                self.consume(used);
                self.answers += 1;
                self.spent = head.close || framing == BodyFraming::UntilClose;
                return Ok(HttpResponse { head, body });
            }
            if let BodyFraming::Length(n) = framing {
                // A fixed length needs no reparse until enough has arrived.
                while self.buf.len() < n {
                    if self.fill().await? == 0 {
                        return Err(IsapiError::Closed);
                    }
                }
                continue;
            }
            if self.buf.len() > limits.max_body.saturating_add(limits.max_head) {
                return Err(IsapiError::TooLarge("response body"));
            }
            if self.fill().await? == 0 {
                eof = true;
            }
        }
    }
}

/// Serialises a request: request line, `Host`, the extra headers, a `Content-Length`
/// (and XML content type) when there is a body.
pub fn request_bytes(
    method: &str,
    target: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n");
    for (n, v) in headers {
        head.push_str(n);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        if !body.is_empty() {
            head.push_str("Content-Type: application/xml; charset=\"UTF-8\"\r\n");
        }
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lim() -> HttpLimits {
        HttpLimits::default()
    }

    #[test]
    fn length_chunked_and_until_close() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcX";
        let (r, used) = parse_response(raw, false, &lim()).unwrap().unwrap();
        assert_eq!(
            (r.head.status, r.body.as_slice(), used),
            (200, &b"abc"[..], raw.len() - 1)
        );
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n1;x=y\r\nd\r\n0\r\nT: 1\r\n\r\n";
        let (r, used) = parse_response(raw, false, &lim()).unwrap().unwrap();
        assert_eq!((r.body.as_slice(), used), (&b"abcd"[..], raw.len()));
        let raw = b"HTTP/1.0 200 OK\r\n\r\nhello";
        assert!(parse_response(raw, false, &lim()).unwrap().is_none());
        let (r, _) = parse_response(raw, true, &lim()).unwrap().unwrap();
        assert!(r.head.close);
        assert_eq!(r.body, b"hello");
    }

    #[test]
    fn limits_and_garbage_are_errors() {
        let l = HttpLimits {
            max_head: 64,
            max_headers: 2,
            max_body: 8,
        };
        let long = [b'a'; 100];
        assert!(matches!(
            parse_head(&long, &l),
            Err(IsapiError::Malformed(_))
        ));
        let mut never = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        never.extend_from_slice(&[b'y'; 80]);
        assert!(matches!(
            parse_head(&never, &l),
            Err(IsapiError::TooLarge(_))
        ));
        let many = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        assert!(matches!(parse_head(many, &l), Err(IsapiError::TooLarge(_))));
        let big = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n";
        assert!(matches!(parse_head(big, &l), Err(IsapiError::TooLarge(_))));
        let chunk = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n";
        assert!(matches!(
            parse_response(chunk, false, &l),
            Err(IsapiError::TooLarge(_))
        ));
        let short = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab";
        assert!(matches!(
            parse_response(short, true, &l),
            Err(IsapiError::Closed)
        ));
        let bad = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        assert!(matches!(parse_head(bad, &l), Err(IsapiError::Malformed(_))));
    }
}
