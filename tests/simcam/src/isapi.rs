//! ISAPI request handling: the login exchange, sessions, lockout and the resources the
//! SDK reads after logging in. Everything here is synchronous and runs under the camera's
//! state lock; the socket side lives in `server.rs`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::auth::{irreversible_hash, random_hex, random_hex_upper};
use crate::camera::{CamShared, CamState, IpLock, Pending, Session};
use crate::events::{EventKind, json_escape};
use crate::http::{Request, Response};

/// Capabilities answers whose sessionLogin never came are forgotten after this long.
pub(crate) const PENDING_TTL: Duration = Duration::from_secs(60);
/// At most this many login exchanges in flight per camera; the oldest is forgotten first.
pub(crate) const MAX_PENDING: usize = 4096;

const XML_DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
const NS: &str = "xmlns=\"http://www.hikvision.com/ver20/XMLSchema\"";

/// Hikvision `ResponseStatus` body.
pub(crate) fn response_status(url: &str, http: u16, code: u8, string: &str, sub: &str) -> Response {
    Response::xml(
        http,
        format!(
            "{XML_DECL}<ResponseStatus version=\"2.0\" {NS}>\n<requestURL>{}</requestURL>\n\
             <statusCode>{code}</statusCode>\n<statusString>{string}</statusString>\n\
             <subStatusCode>{sub}</subStatusCode>\n</ResponseStatus>\n",
            xml_escape(url)
        ),
    )
}

fn ok_status(url: &str) -> Response {
    response_status(url, 200, 1, "OK", "ok")
}

pub(crate) fn not_supported(url: &str) -> Response {
    response_status(url, 404, 4, "Invalid Operation", "notSupport")
}

/// 401 for requests without a live session.
pub(crate) fn unauthorized(url: &str) -> Response {
    let mut r = response_status(url, 401, 4, "Invalid Operation", "unauthorized");
    r.body = format!(
        "{XML_DECL}<userCheck>\n<statusValue>401</statusValue>\n\
         <statusString>Unauthorized</statusString>\n</userCheck>\n"
    );
    r
}

/// 401 reply to `POST sessionLogin`; the SDK parses these four tags.
pub(crate) fn login_failed(locked: bool, unlock_s: u64, retry: u32) -> Response {
    Response::xml(
        401,
        format!(
            "{XML_DECL}<userCheck version=\"2.0\" {NS}>\n<statusValue>401</statusValue>\n\
             <statusString>Unauthorized</statusString>\n<lockStatus>{}</lockStatus>\n\
             <unlockTime>{unlock_s}</unlockTime>\n<retryLoginTime>{retry}</retryLoginTime>\n\
             </userCheck>\n",
            if locked { "lock" } else { "unlock" }
        ),
    )
}

pub(crate) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Text of the first `<tag>…</tag>` in `body` (no nesting, no attributes on the tag).
pub(crate) fn xml_tag<'a>(body: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&close)? + start;
    Some(body[start..end].trim())
}

/// The session ID from a `Cookie` header: any `WebSession…=<id>` pair.
pub(crate) fn cookie_session(cookie: Option<&str>) -> Option<&str> {
    cookie?.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        k.trim().starts_with("WebSession").then(|| v.trim())
    })
}

impl CamShared {
    /// Answers one request. Called with the state lock held.
    /// The lock state of `ip`; a lock that has run out is lifted here (lazily, at the next
    /// attempt). Session login and Digest share it.
    pub(crate) fn current_lock(
        &self,
        st: &mut CamState,
        ip: std::net::IpAddr,
        now: Instant,
    ) -> IpLock {
        let lock = st.locks.get(&ip).copied().unwrap_or_default();
        match lock.locked_until {
            Some(until) if until <= now => {
                st.locks.remove(&ip);
                self.log(EventKind::LockExpired, ip.to_string());
                IpLock::default()
            }
            _ => lock,
        }
    }

    pub(crate) fn handle(&self, st: &mut CamState, req: &Request, peer: SocketAddr) -> Response {
        let now = Instant::now();
        st.stats.requests += 1;
        self.expire_sessions(st, now);
        if st.digest.enabled {
            return self.handle_digest(st, req, peer, now);
        }
        let path = req.path.as_str();
        match (req.method.as_str(), path) {
            ("GET", "/ISAPI/Security/sessionLogin/capabilities") => self.capabilities(st, req, now),
            ("POST", "/ISAPI/Security/sessionLogin") => self.session_login(st, req, peer, now),
            ("PUT", "/ISAPI/Security/sessionHeartbeat") => {
                match cookie_session(req.cookie.as_deref()) {
                    Some(id) if st.sessions.contains_key(id) => {
                        if let Some(s) = st.sessions.get_mut(id) {
                            s.last_seen = now;
                        }
                        st.stats.heartbeats_ok += 1;
                        self.log(EventKind::Heartbeat, id.to_owned());
                        ok_status(path)
                    }
                    other => {
                        st.stats.heartbeats_rejected += 1;
                        self.log(EventKind::HeartbeatRejected, other.unwrap_or("").to_owned());
                        unauthorized(path)
                    }
                }
            }
            ("PUT", "/ISAPI/Security/sessionLogout") => {
                match cookie_session(req.cookie.as_deref()) {
                    Some(id) if st.sessions.contains_key(id) => {
                        st.sessions.remove(id);
                        st.stats.logouts += 1;
                        st.stats.sessions = st.sessions.len();
                        self.log(EventKind::Logout, id.to_owned());
                        ok_status(path)
                    }
                    _ => {
                        self.log_request(req, 401);
                        unauthorized(path)
                    }
                }
            }
            _ => {
                let authed = match cookie_session(req.cookie.as_deref()) {
                    Some(id) => match st.sessions.get_mut(id) {
                        Some(s) => {
                            s.last_seen = now;
                            true
                        }
                        None => false,
                    },
                    None => false,
                };
                let resp = if authed {
                    self.resource(st, req)
                } else {
                    unauthorized(path)
                };
                self.log_request(req, resp.status);
                resp
            }
        }
    }

    fn log_request(&self, req: &Request, status: u16) {
        self.log(
            EventKind::Request,
            format!("{} {} -> {status}", req.method, req.path),
        );
    }

    /// Forgets sessions idle for longer than the configured timeout.
    pub(crate) fn expire_sessions(&self, st: &mut CamState, now: Instant) {
        let Some(idle) = self.common.session_idle_timeout else {
            return;
        };
        let before = st.sessions.len();
        let mut expired = Vec::new();
        st.sessions.retain(|id, s| {
            let keep = now.duration_since(s.last_seen) < idle;
            if !keep {
                expired.push(id.clone());
            }
            keep
        });
        if st.sessions.len() != before {
            st.stats.sessions = st.sessions.len();
            for id in expired {
                self.log(EventKind::SessionExpired, id);
            }
        }
    }

    fn capabilities(&self, st: &mut CamState, req: &Request, now: Instant) -> Response {
        let user = req.query_param("username").unwrap_or_default();
        // Forget abandoned exchanges so "in flight" stays honest and memory bounded.
        st.pending
            .retain(|_, p| now.duration_since(p.created) < PENDING_TTL);
        if st.pending.len() >= MAX_PENDING {
            if let Some(oldest) = st
                .pending
                .iter()
                .min_by_key(|(_, p)| p.created)
                .map(|(k, _)| k.clone())
            {
                st.pending.remove(&oldest);
            }
        }
        let session_id = random_hex(&mut st.rng, 64);
        let challenge = random_hex_upper(&mut st.rng, 32);
        // Per-user salt: the configured user's is fixed until the password changes; an
        // unknown user gets a stable-looking but useless one (no user enumeration).
        let salt = if user == self.common.user {
            st.salt.clone()
        } else {
            crate::auth::sha256_hex(format!("{user}{}", st.salt).as_bytes()).to_ascii_uppercase()
        };
        st.pending.insert(
            session_id.clone(),
            Pending {
                challenge: challenge.clone(),
                created: now,
            },
        );
        self.sync_exchanges(st);
        self.log(EventKind::Capabilities, session_id.clone());
        Response::xml(
            200,
            format!(
                "{XML_DECL}<SessionLoginCap version=\"2.0\" {NS}>\n\
                 <sessionID>{session_id}</sessionID>\n<challenge>{challenge}</challenge>\n\
                 <iterations>{}</iterations>\n<isSupportRTSPWithSession>true</isSupportRTSPWithSession>\n\
                 <isIrreversible>true</isIrreversible>\n<salt>{salt}</salt>\n\
                 <isSupportSessionTag>false</isSupportSessionTag>\n</SessionLoginCap>\n",
                self.common.iterations
            ),
        )
    }

    fn session_login(
        &self,
        st: &mut CamState,
        req: &Request,
        peer: SocketAddr,
        now: Instant,
    ) -> Response {
        let body = String::from_utf8_lossy(&req.body);
        let user = xml_tag(&body, "userName").unwrap_or("");
        let hash = xml_tag(&body, "password").unwrap_or("");
        let sid = xml_tag(&body, "sessionID").unwrap_or("");
        let pending = st.pending.remove(sid);
        self.sync_exchanges(st);
        let k = self.common.lockout_threshold;
        let lock_s = self.common.lock_duration.as_secs();
        let ip = peer.ip();

        let mut lock = self.current_lock(st, ip, now);
        if lock.locked_until.is_some() {
            // Any attempt during the lock, right or wrong, restarts it.
            lock.locked_until = Some(now + self.common.lock_duration);
            st.locks.insert(ip, lock);
            st.stats.logins_locked += 1;
            self.log(EventKind::LoginLocked, format!("unlock_s={lock_s}"));
            return login_failed(true, lock_s, 0);
        }
        let Some(pending) = pending else {
            st.stats.logins_stale += 1;
            self.log(EventKind::LoginStale, sid.to_owned());
            return login_failed(false, 0, k.saturating_sub(lock.failures));
        };
        let expected = irreversible_hash(
            &self.common.user,
            &st.salt,
            &st.password,
            &pending.challenge,
            self.common.iterations,
        );
        if user != self.common.user || hash != expected {
            st.stats.logins_bad += 1;
            lock.failures += 1;
            if k > 0 && lock.failures >= k {
                lock.locked_until = Some(now + self.common.lock_duration);
                st.locks.insert(ip, lock);
                self.log(EventKind::LockEngaged, format!("unlock_s={lock_s}"));
                return login_failed(true, lock_s, 0);
            }
            st.locks.insert(ip, lock);
            let retry = if k > 0 { k - lock.failures } else { 0 };
            self.log(EventKind::LoginBad, format!("retry={retry}"));
            return login_failed(false, 0, retry);
        }
        st.locks.remove(&ip);
        if let Some(limit) = st.session_limit {
            if st.sessions.len() >= limit {
                st.stats.logins_rejected_limit += 1;
                self.log(EventKind::LoginRejectedLimit, format!("limit={limit}"));
                return session_limit_reply(&req.path);
            }
        }
        st.sessions
            .insert(sid.to_owned(), Session { last_seen: now });
        st.stats.logins_ok += 1;
        st.stats.sessions = st.sessions.len();
        st.stats.sessions_hwm = st.stats.sessions_hwm.max(st.sessions.len());
        self.log(EventKind::LoginOk, sid.to_owned());
        let mut r = Response::xml(
            200,
            format!(
                "{XML_DECL}<SessionLogin version=\"2.0\" {NS}>\n<statusValue>200</statusValue>\n\
                 <statusString>OK</statusString>\n<isDefaultPassword>false</isDefaultPassword>\n\
                 <isRiskPassword>false</isRiskPassword>\n<isActivated>true</isActivated>\n\
                 <sessionID>{sid}</sessionID>\n</SessionLogin>\n"
            ),
        );
        r.set_cookie = Some(format!("WebSession={sid}; path=/; HttpOnly"));
        r
    }

    /// Resources behind a live session.
    pub(crate) fn resource(&self, _st: &mut CamState, req: &Request) -> Response {
        let path = req.path.as_str();
        match (req.method.as_str(), path) {
            ("GET", "/ISAPI/System/deviceInfo") => {
                if req.query_param("format").as_deref() == Some("json") {
                    Response::json(200, self.device_info_json())
                } else {
                    Response::xml(200, self.device_info_xml())
                }
            }
            ("GET", "/ISAPI/Security/capabilities") => Response::xml(
                200,
                format!(
                    "{XML_DECL}<SecurityCap version=\"2.0\" {NS}>\n\
                     <supportUserNums>32</supportUserNums>\n<userBondIpNums>0</userBondIpNums>\n\
                     <userBondMacNums>0</userBondMacNums>\n<isSupCertificate>false</isSupCertificate>\n\
                     <issupIllegalLoginLock>true</issupIllegalLoginLock>\n\
                     <isIrreversible>true</isIrreversible>\n<salt>{}</salt>\n\
                     <keyIterateNum>{}</keyIterateNum>\n</SecurityCap>\n",
                    _st.salt, self.common.iterations
                ),
            ),
            ("GET", "/ISAPI/Security/adminAccesses") => self.admin_accesses(),
            ("GET", "/ISAPI/System/Video/inputs/channels") => Response::xml(
                200,
                format!(
                    "{XML_DECL}<VideoInputChannelList version=\"2.0\" {NS}>\n\
                     <VideoInputChannel version=\"2.0\" {NS}>\n<id>1</id>\n<inputPort>1</inputPort>\n\
                     <name>{}</name>\n<videoFormat>PAL</videoFormat>\n</VideoInputChannel>\n\
                     </VideoInputChannelList>\n",
                    xml_escape(&self.identity.name)
                ),
            ),
            ("GET", "/ISAPI/System/IO/inputs") => Response::xml(
                200,
                format!(
                    "{XML_DECL}<IOInputPortList version=\"2.0\" {NS}>\n<IOInputPort version=\"2.0\" {NS}>\n\
                     <id>1</id>\n<triggering>low</triggering>\n</IOInputPort>\n</IOInputPortList>\n"
                ),
            ),
            ("GET", "/ISAPI/System/IO/outputs") => Response::xml(
                200,
                format!(
                    "{XML_DECL}<IOOutputPortList version=\"2.0\" {NS}>\n<IOOutputPort version=\"2.0\" {NS}>\n\
                     <id>1</id>\n<PowerOnState>\n<defaultState>low</defaultState>\n\
                     <outputState>pulse</outputState>\n<pulseDuration>1000</pulseDuration>\n\
                     </PowerOnState>\n</IOOutputPort>\n</IOOutputPortList>\n"
                ),
            ),
            ("GET", "/ISAPI/System/TwoWayAudio/channels") => Response::xml(
                200,
                format!(
                    "{XML_DECL}<TwoWayAudioChannelList version=\"2.0\" {NS}>\n\
                     <TwoWayAudioChannel version=\"2.0\" {NS}>\n<id>1</id>\n<enabled>false</enabled>\n\
                     <audioCompressionType>G.711ulaw</audioCompressionType>\n\
                     </TwoWayAudioChannel>\n</TwoWayAudioChannelList>\n"
                ),
            ),
            ("GET", "/ISAPI/ContentMgmt/Storage/hdd") => Response::xml(
                200,
                format!("{XML_DECL}<hddList version=\"2.0\" {NS}>\n</hddList>\n"),
            ),
            ("GET", "/SDK/language") => Response::xml(
                200,
                format!("{XML_DECL}<Language>\n<type>English</type>\n</Language>\n"),
            ),
            _ => not_supported(path),
        }
    }

    fn device_info_xml(&self) -> String {
        let id = &self.identity;
        format!(
            "{XML_DECL}<DeviceInfo version=\"2.0\" {NS}>\n<deviceName>{}</deviceName>\n\
             <deviceID>{}</deviceID>\n<model>{}</model>\n<serialNumber>{}</serialNumber>\n\
             <macAddress>{}</macAddress>\n<firmwareVersion>{}</firmwareVersion>\n\
             <firmwareReleasedDate>{}</firmwareReleasedDate>\n<encoderVersion>V7.3</encoderVersion>\n\
             <encoderReleasedDate>build 200601</encoderReleasedDate>\n\
             <deviceType>IPCamera</deviceType>\n<telecontrolID>88</telecontrolID>\n\
             <supportBeep>false</supportBeep>\n<supportVideoLoss>false</supportVideoLoss>\n\
             </DeviceInfo>\n",
            xml_escape(&id.name),
            self.index,
            xml_escape(&id.model),
            xml_escape(&id.serial),
            xml_escape(&id.mac),
            xml_escape(&id.firmware),
            xml_escape(&id.firmware_date),
        )
    }

    fn device_info_json(&self) -> String {
        let id = &self.identity;
        format!(
            "{{\"DeviceInfo\":{{\"deviceName\":\"{}\",\"deviceID\":\"{}\",\"model\":\"{}\",\
             \"serialNumber\":\"{}\",\"macAddress\":\"{}\",\"firmwareVersion\":\"{}\",\
             \"firmwareReleasedDate\":\"{}\",\"deviceType\":\"IPCamera\"}}}}",
            json_escape(&id.name),
            self.index,
            json_escape(&id.model),
            json_escape(&id.serial),
            json_escape(&id.mac),
            json_escape(&id.firmware),
            json_escape(&id.firmware_date),
        )
    }
}

/// Reply to a correct login beyond the session limit: HTTP 503 with a "Device Busy"
/// `ResponseStatus`. SDK 6.1.9.48 maps the sessionLogin HTTP status through a fixed table
/// (`libHCCore.so`; no status yields 5, 28 or 52), and 503 gives error 24 "device busy",
/// the closest transient/resource-class error it can report in ISAPI mode (see README).
fn session_limit_reply(url: &str) -> Response {
    response_status(url, 503, 2, "Device Busy", "deviceBusy")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_and_cookie() {
        assert_eq!(xml_tag("<a><b> x </b></a>", "b"), Some("x"));
        assert_eq!(xml_tag("<a>", "b"), None);
        assert_eq!(cookie_session(Some("foo=1; WebSession=abc;")), Some("abc"));
        assert_eq!(cookie_session(Some("WebSession_1a2b=xyz")), Some("xyz"));
        assert_eq!(cookie_session(Some("foo=1")), None);
        assert_eq!(cookie_session(None), None);
    }
}
