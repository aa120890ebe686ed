//! A minimal HTTP/1.1 server side: request heads parsed with `httparse`, bodies by
//! `Content-Length`, responses serialised into one buffer so they leave in one write.

use std::fmt::Write as _;

/// Largest request head we accept; real ISAPI requests from the SDK are well under 1 KiB.
pub(crate) const MAX_HEAD: usize = 16 * 1024;
/// Largest request body we accept (the sessionLogin body is about 400 bytes).
pub(crate) const MAX_BODY: usize = 64 * 1024;
/// Header slots for `httparse`; the SDK sends fewer than ten.
const MAX_HEADERS: usize = 32;

/// One parsed request. Only what the ISAPI handlers need is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Raw query string (without `?`), possibly empty.
    pub query: String,
    /// Value of the `Cookie` header, if any.
    pub cookie: Option<String>,
    /// Value of the `Authorization` header, if any (Digest mode).
    pub authorization: Option<String>,
    /// The client asked to close the connection after this request (or spoke HTTP/1.0
    /// without keep-alive).
    pub close: bool,
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of query parameter `name` (no percent-decoding beyond `%XX`).
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then(|| percent_decode(v))
        })
    }
}

/// Why a buffer did not yield a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParseOutcome {
    /// A full request; `usize` is how many bytes of the buffer it used.
    Complete(Request, usize),
    /// Need more bytes.
    Partial,
    /// Malformed or unsupported: answer with this status and close.
    Bad(u16, &'static str),
}

/// Tries to parse one request from the start of `buf`.
pub(crate) fn parse_request(buf: &[u8]) -> ParseOutcome {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() > MAX_HEAD {
                ParseOutcome::Bad(431, "request head too large")
            } else {
                ParseOutcome::Partial
            };
        }
        Err(httparse::Error::TooManyHeaders) => return ParseOutcome::Bad(431, "too many headers"),
        Err(_) => return ParseOutcome::Bad(400, "malformed request head"),
    };
    if head_len > MAX_HEAD {
        return ParseOutcome::Bad(431, "request head too large");
    }
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return ParseOutcome::Bad(400, "incomplete request line");
    };
    let mut content_length: usize = 0;
    let mut seen_length = false;
    let mut cookie = None;
    let mut authorization = None;
    let mut conn_close = version == 0;
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let Some(n) = std::str::from_utf8(h.value)
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
            else {
                return ParseOutcome::Bad(400, "bad Content-Length");
            };
            if seen_length && n != content_length {
                return ParseOutcome::Bad(400, "conflicting Content-Length");
            }
            seen_length = true;
            content_length = n;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // The SDK never sends chunked bodies; refusing is safer than guessing.
            return ParseOutcome::Bad(501, "Transfer-Encoding not supported");
        } else if name.eq_ignore_ascii_case("authorization") {
            authorization = Some(String::from_utf8_lossy(h.value).into_owned());
        } else if name.eq_ignore_ascii_case("cookie") {
            cookie = Some(String::from_utf8_lossy(h.value).into_owned());
        } else if name.eq_ignore_ascii_case("connection") {
            let v = String::from_utf8_lossy(h.value).to_ascii_lowercase();
            if v.contains("close") {
                conn_close = true;
            } else if v.contains("keep-alive") {
                conn_close = false;
            }
        }
    }
    if content_length > MAX_BODY {
        return ParseOutcome::Bad(413, "request body too large");
    }
    let total = head_len + content_length;
    if buf.len() < total {
        return ParseOutcome::Partial;
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    ParseOutcome::Complete(
        Request {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            cookie,
            authorization,
            close: conn_close,
            body: buf[head_len..total].to_vec(),
        },
        total,
    )
}

/// Decodes `%XX` escapes and `+`; invalid escapes are kept literally.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A response to serialise.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    pub set_cookie: Option<String>,
    /// A `WWW-Authenticate` header (Digest mode).
    pub www_authenticate: Option<String>,
    /// Close the connection after sending.
    pub close: bool,
}

/// XML content type as Hikvision cameras send it.
pub(crate) const XML: &str = "application/xml; charset=\"UTF-8\"";
/// JSON content type.
pub(crate) const JSON: &str = "application/json; charset=\"UTF-8\"";

impl Response {
    /// A response with an XML body.
    pub fn xml(status: u16, body: String) -> Self {
        Response {
            status,
            content_type: XML,
            body,
            set_cookie: None,
            www_authenticate: None,
            close: false,
        }
    }

    /// A response with a JSON body.
    pub fn json(status: u16, body: String) -> Self {
        Response {
            status,
            content_type: JSON,
            body,
            set_cookie: None,
            www_authenticate: None,
            close: false,
        }
    }

    /// The whole response (head and body) as one buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = String::with_capacity(192);
        let _ = write!(head, "HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        head.push_str("Server: App-webs/\r\n");
        head.push_str(if self.close {
            "Connection: close\r\n"
        } else {
            "Connection: keep-alive\r\n"
        });
        let _ = write!(head, "Content-Type: {}\r\n", self.content_type);
        let _ = write!(head, "Content-Length: {}\r\n", self.body.len());
        if let Some(c) = &self.www_authenticate {
            let _ = write!(head, "WWW-Authenticate: {c}\r\n");
        }
        if let Some(c) = &self.set_cookie {
            let _ = write!(head, "Set-Cookie: {c}\r\n");
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(self.body.as_bytes());
        out
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_get_with_query_and_cookie() {
        let raw = b"GET /ISAPI/x?username=admin&random=123 HTTP/1.1\r\nHost: a\r\nCookie: WebSession=ab;\r\n\r\nGET";
        let ParseOutcome::Complete(r, n) = parse_request(raw) else {
            panic!("not complete")
        };
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/ISAPI/x");
        assert_eq!(r.query_param("username").as_deref(), Some("admin"));
        assert_eq!(r.query_param("random").as_deref(), Some("123"));
        assert_eq!(r.cookie.as_deref(), Some("WebSession=ab;"));
        assert!(!r.close);
        assert_eq!(&raw[n..], b"GET");
    }

    #[test]
    fn waits_for_body() {
        let raw = b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nab";
        assert_eq!(parse_request(raw), ParseOutcome::Partial);
        let raw = b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcde";
        let ParseOutcome::Complete(r, _) = parse_request(raw) else {
            panic!()
        };
        assert_eq!(r.body, b"abcde");
    }

    #[test]
    fn rejects_garbage_and_chunked() {
        assert!(matches!(
            parse_request(b"\x00\x01 nonsense\r\n\r\n"),
            ParseOutcome::Bad(400, _)
        ));
        let raw = b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(matches!(parse_request(raw), ParseOutcome::Bad(501, _)));
        let raw = b"POST /a HTTP/1.1\r\nContent-Length: x\r\n\r\n";
        assert!(matches!(parse_request(raw), ParseOutcome::Bad(400, _)));
        let raw = b"POST /a HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n";
        assert!(matches!(parse_request(raw), ParseOutcome::Bad(413, _)));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%41b+c%zz%4"), "aAb c%zz%4");
    }
}
