//! A plain blocking HTTP/1.1 client for the simcam tests (no simcam internals).
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Generous I/O timeout: tests run under qemu too.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// One parsed response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// How many `read` calls it took to receive the whole response.
    pub reads: usize,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Text of `<tag>…</tag>` in the body.
    pub fn tag(&self, tag: &str) -> Option<String> {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        let s = self.body.find(&open)? + open.len();
        let e = self.body[s..].find(&close)? + s;
        Some(self.body[s..e].to_owned())
    }
}

/// A keep-alive connection.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> std::io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
        })
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, raw: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(raw)
    }

    /// Sends one request (with `Host`, optional cookie and body).
    pub fn send(
        &mut self,
        method: &str,
        target: &str,
        cookie: Option<&str>,
        body: &str,
    ) -> std::io::Result<()> {
        let mut req =
            format!("{method} {target} HTTP/1.1\r\nHost: cam\r\nConnection: keep-alive\r\n");
        if let Some(c) = cookie {
            req.push_str(&format!("Cookie: {c}\r\n"));
        }
        if !body.is_empty() || method != "GET" {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        req.push_str(body);
        self.stream.write_all(req.as_bytes())
    }

    /// Reads one response.
    pub fn recv(&mut self) -> std::io::Result<Resp> {
        let mut reads = 0;
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                let mut lines = head.split("\r\n");
                let status_line = lines.next().unwrap_or("");
                let status: u16 = status_line
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidData, head.clone()))?;
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                    .collect();
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                if self.buf.len() >= end + 4 + len {
                    let body =
                        String::from_utf8_lossy(&self.buf[end + 4..end + 4 + len]).into_owned();
                    self.buf.drain(..end + 4 + len);
                    return Ok(Resp {
                        status,
                        headers,
                        body,
                        reads,
                    });
                }
            }
            let mut chunk = [0u8; 65536];
            let n = self.stream.read(&mut chunk)?;
            reads += 1;
            if n == 0 {
                return Err(std::io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "connection closed",
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub fn request(
        &mut self,
        method: &str,
        target: &str,
        cookie: Option<&str>,
        body: &str,
    ) -> std::io::Result<Resp> {
        self.send(method, target, cookie, body)?;
        self.recv()
    }

    /// Reads until EOF or error: Ok(bytes) on a clean close, Err on reset.
    pub fn read_to_close(&mut self) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.stream.read_to_end(&mut out)?;
        Ok(out)
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// Result of one login attempt.
#[derive(Debug, Clone)]
pub struct Login {
    pub resp: Resp,
    pub session_id: String,
    pub salt: String,
    pub challenge: String,
}

impl Login {
    /// `WebSession=<id>` cookie value (only meaningful after a 200).
    pub fn cookie(&self) -> String {
        format!("WebSession={};", self.session_id)
    }
}

/// The ISAPI session-login exchange as the SDK does it, on `conn`.
pub fn login_on(conn: &mut Conn, user: &str, password: &str) -> std::io::Result<Login> {
    let cap = conn.request(
        "GET",
        &format!("/ISAPI/Security/sessionLogin/capabilities?username={user}&random=12345678"),
        None,
        "",
    )?;
    assert_eq!(cap.status, 200, "capabilities: {}", cap.body);
    let sid = cap.tag("sessionID").expect("sessionID");
    let challenge = cap.tag("challenge").expect("challenge");
    let salt = cap.tag("salt").expect("salt");
    let iterations: u32 = cap
        .tag("iterations")
        .expect("iterations")
        .parse()
        .expect("number");
    assert_eq!(cap.tag("isIrreversible").as_deref(), Some("true"));
    let hash = simcam::irreversible_hash(user, &salt, password, &challenge, iterations);
    let body = format!(
        "<SessionLogin version=\"2.0\" xmlns=\"http://www.isapi.org/ver20/XMLSchema\">\r\n\
         <userName>{user}</userName>\r\n<password>{hash}</password>\r\n\
         <sessionID>{sid}</sessionID>\r\n<isSessionIDValidLongTerm>true</isSessionIDValidLongTerm>\r\n\
         </SessionLogin>\r\n"
    );
    let resp = conn.request("POST", "/ISAPI/Security/sessionLogin", None, &body)?;
    Ok(Login {
        resp,
        session_id: sid,
        salt,
        challenge,
    })
}

/// Login on a fresh connection.
pub fn login(addr: SocketAddr, user: &str, password: &str) -> std::io::Result<Login> {
    let mut c = Conn::open(addr)?;
    login_on(&mut c, user, password)
}

/// Login from a given local IP (127.0.0.x), for per-IP lockout tests.
pub fn login_from(
    local: std::net::IpAddr,
    addr: SocketAddr,
    user: &str,
    password: &str,
) -> std::io::Result<Login> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    sock.bind(&SocketAddr::new(local, 0).into())?;
    sock.connect_timeout(&addr.into(), IO_TIMEOUT)?;
    let stream: TcpStream = sock.into();
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    let mut c = Conn {
        stream,
        buf: Vec::new(),
    };
    login_on(&mut c, user, password)
}

/// A fleet with `n` cameras and otherwise default settings changed by `f`.
pub fn fleet(n: usize, f: impl FnOnce(&mut simcam::FleetConfig)) -> simcam::Fleet {
    let mut cfg = simcam::FleetConfig {
        cameras: n,
        ..Default::default()
    };
    f(&mut cfg);
    simcam::Fleet::start(cfg).expect("fleet starts")
}

pub const USER: &str = "admin";
pub const PASS: &str = "hik12345";
