//! A pure-ISAPI client: talks to Hikvision devices over plain HTTP without the vendor SDK.
//!
//! What it does: log in the way the device expects it (the session-login exchange the SDK
//! uses, or HTTP Digest for devices without it; never Basic), keep the session alive with
//! `sessionHeartbeat`, read `deviceInfo`, log out, read the device's event stream, and watch
//! its live video over RTSP (`rtsp`).
//! Everything runs on the async-io reactor (no thread per call); every request has a total
//! deadline and size limits, so a misbehaving device ends in a classified [`IsapiError`].
//! `hikwatch probe --backend isapi` uses it; docs/isapi.md describes the protocol.
//!
//! # Layout
//! - `http`: the HTTP/1.1 client (limits, deadline, pure parsers).
//! - `auth`: session-login hashing, lockout answers, Digest.
//! - `alert`: the multipart event stream.
//! - `rtsp`: live video over RTSP/1.0 (TCP-interleaved RTP), counted for stream gaps.
//! - `xml`: tolerant field extraction.
//! - `error`: [`IsapiError`] and its mapping to the supervisor's error classes.

pub mod alert;
pub mod auth;
pub mod error;
pub mod http;
pub mod rtsp;
pub mod xml;

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use alert::{AlertEvent, AlertPart, AlertStream};
pub use error::IsapiError;
pub use http::{HttpLimits, HttpResponse};
pub use rtsp::{RtspOptions, RtspSession, StreamProgress};

use auth::{DigestCredentials, SessionChallenge};
use http::{HttpConnection, request_bytes, with_deadline};

/// Where the event stream lives.
pub const ALERT_STREAM_PATH: &str = "/ISAPI/Event/notification/alertStream";
const CAPABILITIES_PATH: &str = "/ISAPI/Security/sessionLogin/capabilities";
const LOGIN_PATH: &str = "/ISAPI/Security/sessionLogin";
const HEARTBEAT_PATH: &str = "/ISAPI/Security/sessionHeartbeat";
const LOGOUT_PATH: &str = "/ISAPI/Security/sessionLogout";
const DEVICE_INFO_PATH: &str = "/ISAPI/System/deviceInfo";

/// Client settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IsapiOptions {
    /// Total deadline of one request: connect, send and the complete answer.
    pub request_timeout: Duration,
    /// Size limits of every answer.
    pub limits: HttpLimits,
    /// Largest event-stream part (pictures included).
    pub max_alert_part: usize,
}

impl Default for IsapiOptions {
    fn default() -> Self {
        IsapiOptions {
            request_timeout: Duration::from_secs(10),
            limits: HttpLimits::default(),
            max_alert_part: 512 * 1024,
        }
    }
}

/// How the client authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IsapiAuthMethod {
    /// The session-login exchange (a `WebSession` cookie).
    Session,
    /// HTTP Digest on every request.
    Digest,
}

impl IsapiAuthMethod {
    /// `session` or `digest`.
    pub fn name(self) -> &'static str {
        match self {
            IsapiAuthMethod::Session => "session",
            IsapiAuthMethod::Digest => "digest",
        }
    }
}

/// A successful login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsapiLogin {
    /// Which method worked.
    pub method: IsapiAuthMethod,
    /// The device's session id (session login only).
    pub session_id: Option<String>,
    /// How long the login took.
    pub latency: Duration,
}

/// Device identity from `GET /ISAPI/System/deviceInfo`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IsapiDeviceInfo {
    /// `<model>`.
    pub model: String,
    /// `<serialNumber>`.
    pub serial: String,
    /// `<firmwareVersion>` and, when present, `<firmwareReleasedDate>`.
    pub firmware: String,
    /// `<macAddress>`.
    pub mac: String,
    /// `<deviceName>`.
    pub name: String,
}

impl IsapiDeviceInfo {
    /// Reads a `DeviceInfo` document (missing fields stay empty).
    pub fn from_xml(doc: &str) -> IsapiDeviceInfo {
        let f = |n| xml::field(doc, n).unwrap_or_default();
        let mut firmware = f("firmwareVersion");
        let date = f("firmwareReleasedDate");
        if !date.is_empty() {
            firmware = format!("{firmware} {date}");
        }
        IsapiDeviceInfo {
            model: f("model"),
            serial: f("serialNumber"),
            firmware,
            mac: f("macAddress"),
            name: f("deviceName"),
        }
    }
}

/// How requests are authenticated after login.
#[derive(Debug)]
enum Credentials {
    /// Not logged in.
    None,
    /// `Cookie: WebSession…=id`.
    Session {
        /// `name=value` of the cookie.
        cookie: String,
        /// The value.
        id: String,
    },
    /// An `Authorization: Digest` header per request.
    Digest(DigestCredentials),
}

/// A client for one device. One request at a time (`&mut self`), on one kept-alive
/// connection that is reopened when the device closed it.
#[derive(Debug)]
pub struct IsapiClient {
    addr: SocketAddr,
    /// `Host` header value.
    host: String,
    options: IsapiOptions,
    conn: Option<HttpConnection>,
    creds: Credentials,
}

impl IsapiClient {
    /// A client for the device at `addr`; nothing is sent yet.
    pub fn new(addr: SocketAddr, options: IsapiOptions) -> IsapiClient {
        IsapiClient {
            addr,
            host: addr.to_string(),
            options,
            conn: None,
            creds: Credentials::None,
        }
    }

    /// The session id, while logged in with session login.
    pub fn session_id(&self) -> Option<&str> {
        match &self.creds {
            Credentials::Session { id, .. } => Some(id),
            Credentials::None | Credentials::Digest(_) => None,
        }
    }

    /// The session cookie (`name=value`), while logged in with session login: all a later
    /// process needs to end this session ([`IsapiClient::end_left_session`]) if this one
    /// dies before its logout.
    pub fn session_cookie(&self) -> Option<&str> {
        match &self.creds {
            Credentials::Session { cookie, .. } => Some(cookie),
            Credentials::None | Credentials::Digest(_) => None,
        }
    }

    /// The method of the current login, if logged in.
    pub fn auth_method(&self) -> Option<IsapiAuthMethod> {
        match self.creds {
            Credentials::None => None,
            Credentials::Session { .. } => Some(IsapiAuthMethod::Session),
            Credentials::Digest(_) => Some(IsapiAuthMethod::Digest),
        }
    }

    /// Sends one request and reads its answer under the request deadline, reusing the
    /// kept-alive connection. A reused connection the device had closed before answering
    /// is retried once on a fresh one, except for `POST` (not idempotent).
    async fn send(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<HttpResponse, IsapiError> {
        let deadline = Instant::now() + self.options.request_timeout;
        let raw = request_bytes(method, target, &self.host, headers, body);
        let limits = self.options.limits;
        let addr = self.addr;
        let mut conn = match self.conn.take() {
            Some(c) if c.reusable() => c,
            _ => with_deadline(deadline, HttpConnection::connect(addr)).await?,
        };
        let first = with_deadline(deadline, async {
            conn.send(&raw).await?;
            conn.read_response(&limits).await
        })
        .await;
        let resp = match first {
            Err(IsapiError::Closed | IsapiError::Io(_)) if conn.was_used() && method != "POST" => {
                conn = with_deadline(deadline, HttpConnection::connect(addr)).await?;
                with_deadline(deadline, async {
                    conn.send(&raw).await?;
                    conn.read_response(&limits).await
                })
                .await?
            }
            other => other?,
        };
        if conn.reusable() {
            self.conn = Some(conn);
        }
        Ok(resp)
    }

    /// Sends a request with the current credentials. A Digest answer of `401` with
    /// `stale=true` (the nonce expired, the credentials were right) is retried once with
    /// the new nonce; any other `401` is returned to the caller.
    async fn authed(
        &mut self,
        method: &str,
        target: &str,
        body: &[u8],
    ) -> Result<HttpResponse, IsapiError> {
        for _ in 0..2 {
            let header = match &mut self.creds {
                Credentials::None => None,
                Credentials::Session { cookie, .. } => Some(("Cookie", cookie.clone())),
                Credentials::Digest(d) => Some(("Authorization", d.authorization(method, target))),
            };
            let headers: Vec<(&str, &str)> = header.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let resp = self.send(method, target, &headers, body).await?;
            if resp.head.status == 401 {
                if let Credentials::Digest(d) = &mut self.creds {
                    if let Some(c) =
                        auth::parse_digest_challenge(resp.head.headers_named("www-authenticate"))
                    {
                        if c.stale {
                            d.renew(c);
                            continue;
                        }
                    }
                }
            }
            return Ok(resp);
        }
        Err(IsapiError::SessionLost)
    }

    /// Logs in: session login when the device offers it, else HTTP Digest.
    ///
    /// # Errors
    /// [`IsapiError::Auth`] / [`IsapiError::Locked`] with the device's lockout state,
    /// [`IsapiError::Busy`] at the session limit, [`IsapiError::Unsupported`] when the
    /// device offers neither (or only Basic), transport errors.
    pub async fn login(&mut self, user: &str, password: &[u8]) -> Result<IsapiLogin, IsapiError> {
        let started = Instant::now();
        self.creds = Credentials::None;
        let target = format!("{CAPABILITIES_PATH}?username={}", url_encode(user));
        let caps = self.send("GET", &target, &[], &[]).await?;
        match caps.head.status {
            200 => {
                let challenge = auth::parse_capabilities(&caps.text())?;
                self.session_login(user, password, &challenge).await?;
                Ok(IsapiLogin {
                    method: IsapiAuthMethod::Session,
                    session_id: self.session_id().map(str::to_owned),
                    latency: started.elapsed(),
                })
            }
            401 | 403 | 404 | 405 | 501 => {
                self.digest_login(user, password, &caps).await?;
                Ok(IsapiLogin {
                    method: IsapiAuthMethod::Digest,
                    session_id: None,
                    latency: started.elapsed(),
                })
            }
            503 => Err(IsapiError::Busy),
            s => Err(IsapiError::Status(s)),
        }
    }

    async fn session_login(
        &mut self,
        user: &str,
        password: &[u8],
        challenge: &SessionChallenge,
    ) -> Result<(), IsapiError> {
        let hash = auth::session_hash(user, password, challenge);
        let body = auth::login_body(user, &hash, challenge);
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let target = format!("{LOGIN_PATH}?timeStamp={stamp}");
        let resp = self.send("POST", &target, &[], body.as_bytes()).await?;
        match resp.head.status {
            200 => {
                let cookie = auth::session_cookie(resp.head.headers_named("set-cookie"))
                    .or_else(|| {
                        xml::field(&resp.text(), "sessionID")
                            .filter(|s| !s.is_empty())
                            .map(|id| format!("WebSession={id}"))
                    })
                    .ok_or(IsapiError::Malformed(
                        "login answer without a session cookie",
                    ))?;
                let id = cookie.split_once('=').map_or("", |(_, v)| v).to_owned();
                self.creds = Credentials::Session { cookie, id };
                Ok(())
            }
            401 => Err(auth::login_refusal(&resp.text())),
            503 => Err(IsapiError::Busy),
            s => Err(IsapiError::Status(s)),
        }
    }

    /// Digest login: the challenge comes from the capabilities answer when it was a
    /// Digest `401`, else from an unauthenticated `deviceInfo`; then `deviceInfo` is read
    /// with credentials. A wrong password is never retried here (each try counts towards
    /// the device's lock).
    async fn digest_login(
        &mut self,
        user: &str,
        password: &[u8],
        caps: &HttpResponse,
    ) -> Result<(), IsapiError> {
        let challenge = match auth::parse_digest_challenge(
            caps.head.headers_named("www-authenticate"),
        ) {
            Some(c) => c,
            None if caps.head.status == 401
                && auth::offers_basic(caps.head.headers_named("www-authenticate")) =>
            {
                return Err(IsapiError::Unsupported(
                    "the device offers only Basic authentication, which hikwatch never sends",
                ));
            }
            None => {
                let probe = self.send("GET", DEVICE_INFO_PATH, &[], &[]).await?;
                match probe.head.status {
                    401 => auth::parse_digest_challenge(probe.head.headers_named("www-authenticate"))
                        .ok_or(if auth::offers_basic(probe.head.headers_named("www-authenticate")) {
                            IsapiError::Unsupported("the device offers only Basic authentication, which hikwatch never sends")
                        } else {
                            IsapiError::Unsupported("the device offers neither session login nor Digest")
                        })?,
                    200 => return Err(IsapiError::Unsupported("the device answers without authentication")),
                    503 => return Err(IsapiError::Busy),
                    s => return Err(IsapiError::Status(s)),
                }
            }
        };
        self.creds = Credentials::Digest(DigestCredentials::new(user, password, challenge));
        let resp = self.authed("GET", DEVICE_INFO_PATH, &[]).await;
        let result = match resp {
            Ok(r) => match r.head.status {
                200 => Ok(()),
                401 => Err(auth::login_refusal(&r.text())),
                503 => Err(IsapiError::Busy),
                s => Err(IsapiError::Status(s)),
            },
            Err(IsapiError::SessionLost) => Err(IsapiError::Auth { retries_left: None }),
            Err(e) => Err(e),
        };
        if result.is_err() {
            self.creds = Credentials::None;
        }
        result
    }

    /// Keeps the session alive: `PUT sessionHeartbeat` (session login) or an
    /// authenticated `GET deviceInfo` (Digest, which has no session).
    ///
    /// # Errors
    /// [`IsapiError::SessionLost`] on `401` (or when not logged in), [`IsapiError::Busy`]
    /// on `503`, transport errors.
    pub async fn heartbeat(&mut self) -> Result<(), IsapiError> {
        let (method, path) = match self.creds {
            Credentials::None => return Err(IsapiError::SessionLost),
            Credentials::Session { .. } => ("PUT", HEARTBEAT_PATH),
            Credentials::Digest(_) => ("GET", DEVICE_INFO_PATH),
        };
        let resp = self.authed(method, path, &[]).await?;
        ok_or_class(resp.head.status).map(|_| ())
    }

    /// Reads the device's identity.
    ///
    /// # Errors
    /// As [`IsapiClient::heartbeat`].
    pub async fn device_info(&mut self) -> Result<IsapiDeviceInfo, IsapiError> {
        if matches!(self.creds, Credentials::None) {
            return Err(IsapiError::SessionLost);
        }
        let resp = self.authed("GET", DEVICE_INFO_PATH, &[]).await?;
        ok_or_class(resp.head.status)?;
        Ok(IsapiDeviceInfo::from_xml(&resp.text()))
    }

    /// Logs out (`PUT sessionLogout`; Digest has nothing to end) and closes the
    /// connection. The credentials are forgotten either way.
    ///
    /// # Errors
    /// As [`IsapiClient::heartbeat`].
    pub async fn logout(&mut self) -> Result<(), IsapiError> {
        let result = match self.creds {
            Credentials::Session { .. } => {
                let r = self.authed("PUT", LOGOUT_PATH, &[]).await;
                r.and_then(|resp| ok_or_class(resp.head.status).map(|_| ()))
            }
            Credentials::Digest(_) | Credentials::None => Ok(()),
        };
        self.creds = Credentials::None;
        self.conn = None;
        result
    }

    /// Ends a session that an earlier process left behind (killed before its logout),
    /// known only by its cookie ([`IsapiClient::session_cookie`]): `PUT sessionLogout`
    /// with that cookie. Until the device expires such a session it occupies one of its
    /// session slots. A device that no longer knows the session answers `401`, which is
    /// success here: the slot is free either way. Any login of this client is forgotten.
    ///
    /// # Errors
    /// Transport errors and answers other than `200` or `401`;
    /// [`IsapiError::Unsupported`] for a cookie that is not visible ASCII (it goes into a
    /// header, so a line break would be a header of its own), with nothing sent.
    pub async fn end_left_session(&mut self, cookie: &str) -> Result<(), IsapiError> {
        if cookie.is_empty() || !cookie.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(IsapiError::Unsupported(
                "a session cookie that is not visible ASCII",
            ));
        }
        self.creds = Credentials::Session {
            cookie: cookie.to_owned(),
            id: String::new(),
        };
        let result = match self.logout().await {
            Err(IsapiError::SessionLost) => Ok(()),
            other => other,
        };
        self.creds = Credentials::None;
        result
    }

    /// Opens the event stream on a connection of its own. `silence`: how long
    /// [`AlertStream::next_part`] waits for a complete part.
    ///
    /// # Errors
    /// As [`IsapiClient::heartbeat`]; [`IsapiError::Malformed`] when the answer is not a
    /// multipart body.
    pub async fn open_alert_stream(
        &mut self,
        silence: Duration,
    ) -> Result<AlertStream, IsapiError> {
        let deadline = Instant::now() + self.options.request_timeout;
        let limits = self.options.limits;
        let addr = self.addr;
        let mut attempt = 0;
        let (conn, head) = loop {
            attempt += 1;
            let header = match &mut self.creds {
                Credentials::None => return Err(IsapiError::SessionLost),
                Credentials::Session { cookie, .. } => ("Cookie", cookie.clone()),
                Credentials::Digest(d) => {
                    ("Authorization", d.authorization("GET", ALERT_STREAM_PATH))
                }
            };
            let raw = request_bytes(
                "GET",
                ALERT_STREAM_PATH,
                &self.host,
                &[(header.0, header.1.as_str())],
                &[],
            );
            let (conn, head) = with_deadline(deadline, async {
                let mut conn = HttpConnection::connect(addr).await?;
                conn.send(&raw).await?;
                let (head, _) = conn.read_head(&limits).await?;
                Ok((conn, head))
            })
            .await?;
            // A stale Digest nonce: once more with the new one (as for other requests).
            if head.status == 401 && attempt == 1 {
                if let Credentials::Digest(d) = &mut self.creds {
                    if let Some(c) =
                        auth::parse_digest_challenge(head.headers_named("www-authenticate"))
                    {
                        if c.stale {
                            d.renew(c);
                            continue;
                        }
                    }
                }
            }
            break (conn, head);
        };
        ok_or_class(head.status)?;
        if head
            .header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"))
        {
            return Err(IsapiError::Unsupported("a chunked event stream"));
        }
        let boundary = head
            .header("content-type")
            .and_then(alert::multipart_boundary)
            .ok_or(IsapiError::Malformed("event stream is not multipart"))?;
        Ok(AlertStream::new(
            conn,
            &boundary,
            silence,
            self.options.max_alert_part,
        ))
    }
}

/// `200` is fine; `401` means the session is gone; others are classified.
fn ok_or_class(status: u16) -> Result<u16, IsapiError> {
    match status {
        200..=299 => Ok(status),
        401 => Err(IsapiError::SessionLost),
        503 => Err(IsapiError::Busy),
        s => Err(IsapiError::Status(s)),
    }
}

/// Percent-encodes a query value (unreserved characters stay).
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
