//! Digest mode: a camera without session login. Every request carries an HTTP Digest
//! `Authorization` (RFC 2617, MD5, `qop=auth`); the session-login resources answer 404,
//! as on firmware that lacks them. Wrong credentials count towards the same per-IP lock
//! as wrong session logins, and the 401 carries the same `userCheck` document.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Instant;

use md5::{Digest as _, Md5};

use crate::camera::{CamShared, CamState};
use crate::events::EventKind;
use crate::http::{Request, Response};
use crate::isapi::{login_failed, not_supported, unauthorized};

/// The realm simcam announces.
pub(crate) const REALM: &str = "IP Camera(simcam)";
/// Nonces remembered per camera; older ones are answered `stale=true`.
const MAX_NONCES: usize = 64;

/// Digest-mode state of one camera.
#[derive(Debug, Default)]
pub(crate) struct DigestState {
    /// Digest only: no session login.
    pub enabled: bool,
    /// The RTSP server asks for Digest too (see [`crate::Camera::set_rtsp_digest`]).
    pub rtsp: bool,
    /// Nonces issued, newest last.
    pub nonces: VecDeque<String>,
}

fn md5_hex(data: &[u8]) -> String {
    let mut s = String::with_capacity(32);
    for b in Md5::digest(data) {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `key=value` pairs of a Digest `Authorization` header (quoted values unquoted).
fn params(h: &str) -> Option<Vec<(String, String)>> {
    let rest = h.trim().strip_prefix("Digest ")?;
    let mut out = Vec::new();
    let mut s = rest;
    while !s.trim().is_empty() {
        s = s.trim_start_matches([',', ' ']);
        let (k, after) = s.split_once('=')?;
        let (v, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (&q[..end], &q[end + 1..])
        } else {
            match after.find(',') {
                Some(i) => (&after[..i], &after[i..]),
                None => (after, ""),
            }
        };
        out.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        s = next;
    }
    Some(out)
}

/// What checking an `Authorization` header found.
enum Verdict {
    Ok,
    /// No or unparsable header: challenge, no failure counted.
    Missing,
    /// Right credentials, but a nonce this camera no longer knows.
    Stale,
    /// Wrong user or password.
    Wrong,
}

impl CamShared {
    fn challenge(&self, st: &mut CamState, stale: bool) -> String {
        let nonce = crate::auth::random_hex(&mut st.rng, 32);
        st.digest.nonces.push_back(nonce.clone());
        while st.digest.nonces.len() > MAX_NONCES {
            st.digest.nonces.pop_front();
        }
        format!(
            "Digest qop=\"auth\", realm=\"{REALM}\", nonce=\"{nonce}\", stale=\"{}\"",
            if stale { "TRUE" } else { "FALSE" }
        )
    }

    fn verdict(&self, st: &CamState, method: &str, authorization: Option<&str>) -> Verdict {
        let Some(p) = authorization.and_then(params) else {
            return Verdict::Missing;
        };
        let get = |k: &str| {
            p.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        };
        let ha1 = md5_hex(format!("{}:{REALM}:{}", self.common.user, st.password).as_bytes());
        let ha2 = md5_hex(format!("{method}:{}", get("uri")).as_bytes());
        let nonce = get("nonce");
        let expected = if get("qop").is_empty() {
            md5_hex(format!("{ha1}:{nonce}:{ha2}").as_bytes())
        } else {
            md5_hex(
                format!(
                    "{ha1}:{nonce}:{}:{}:{}:{ha2}",
                    get("nc"),
                    get("cnonce"),
                    get("qop")
                )
                .as_bytes(),
            )
        };
        if get("username") != self.common.user || get("response") != expected {
            Verdict::Wrong
        } else if !st.digest.nonces.iter().any(|n| n == nonce) {
            Verdict::Stale
        } else {
            Verdict::Ok
        }
    }

    /// Checks a Digest request against the per-IP lock. `Err` is the answer to send.
    pub(crate) fn digest_check(
        &self,
        st: &mut CamState,
        req: &Request,
        peer: SocketAddr,
        now: Instant,
    ) -> Result<(), Response> {
        let path = req.path.as_str();
        let ip = peer.ip();
        let k = self.common.lockout_threshold;
        let lock_s = self.common.lock_duration.as_secs();
        let mut lock = self.current_lock(st, ip, now);
        let verdict = self.verdict(st, &req.method, req.authorization.as_deref());
        if matches!(verdict, Verdict::Missing) {
            let mut r = unauthorized(path);
            r.www_authenticate = Some(self.challenge(st, false));
            return Err(r);
        }
        if lock.locked_until.is_some() {
            lock.locked_until = Some(now + self.common.lock_duration);
            st.locks.insert(ip, lock);
            st.stats.logins_locked += 1;
            self.log(EventKind::LoginLocked, format!("unlock_s={lock_s}"));
            let mut r = login_failed(true, lock_s, 0);
            r.www_authenticate = Some(self.challenge(st, false));
            return Err(r);
        }
        match verdict {
            Verdict::Ok => {
                if lock.failures > 0 {
                    st.locks.remove(&ip);
                }
                Ok(())
            }
            Verdict::Missing | Verdict::Stale => {
                let mut r = unauthorized(path);
                r.www_authenticate = Some(self.challenge(st, true));
                Err(r)
            }
            Verdict::Wrong => {
                st.stats.logins_bad += 1;
                lock.failures += 1;
                let resp = if k > 0 && lock.failures >= k {
                    lock.locked_until = Some(now + self.common.lock_duration);
                    self.log(EventKind::LockEngaged, format!("unlock_s={lock_s}"));
                    login_failed(true, lock_s, 0)
                } else {
                    let retry = if k > 0 { k - lock.failures } else { 0 };
                    self.log(EventKind::LoginBad, format!("retry={retry}"));
                    login_failed(false, 0, retry)
                };
                st.locks.insert(ip, lock);
                let mut r = resp;
                r.www_authenticate = Some(self.challenge(st, false));
                Err(r)
            }
        }
    }

    /// Checks an RTSP request while [`crate::Camera::set_rtsp_digest`] is on: `Err` is the
    /// `WWW-Authenticate` value of the `401` to send (a missing, stale or wrong
    /// `Authorization`). RTSP failures do not count towards the per-IP lock.
    pub(crate) fn rtsp_digest_check(
        &self,
        method: &str,
        authorization: Option<&str>,
    ) -> Result<(), String> {
        let mut st = self.lock();
        if !st.digest.rtsp {
            return Ok(());
        }
        match self.verdict(&st, method, authorization) {
            Verdict::Ok => Ok(()),
            Verdict::Stale => Err(self.challenge(&mut st, true)),
            Verdict::Missing | Verdict::Wrong => Err(self.challenge(&mut st, false)),
        }
    }

    /// Answers one request in Digest mode. Called with the state lock held.
    pub(crate) fn handle_digest(
        &self,
        st: &mut CamState,
        req: &Request,
        peer: SocketAddr,
        now: Instant,
    ) -> Response {
        let path = req.path.as_str();
        if path.starts_with("/ISAPI/Security/session") {
            self.log(EventKind::Request, format!("{} {path} -> 404", req.method));
            return not_supported(path);
        }
        let resp = match self.digest_check(st, req, peer, now) {
            Ok(()) => self.resource(st, req),
            Err(r) => r,
        };
        self.log(
            EventKind::Request,
            format!("{} {path} -> {} (digest)", req.method, resp.status),
        );
        resp
    }
}

impl crate::Camera {
    /// Digest mode on or off: with it on, the camera lacks session login (its resources
    /// answer 404) and every request needs HTTP Digest credentials.
    pub fn set_digest_only(&self, on: bool) {
        let mut st = self.cam.lock();
        st.digest.enabled = on;
        st.digest.nonces.clear();
        drop(st);
        self.cam.log(
            EventKind::Request,
            format!("digest_only={}", if on { "on" } else { "off" }),
        );
    }

    /// RTSP Digest on or off (default off, as the vendor SDK's tests expect): with it on,
    /// every RTSP request but `OPTIONS` needs HTTP Digest credentials (MD5, `qop=auth`)
    /// with the camera's user and password, like a real camera's default.
    pub fn set_rtsp_digest(&self, on: bool) {
        self.cam.lock().digest.rtsp = on;
        self.cam.log(
            EventKind::Request,
            format!("rtsp_digest={}", if on { "on" } else { "off" }),
        );
    }

    /// Forgets every issued nonce: the next Digest request is answered `stale=true`.
    pub fn expire_digest_nonces(&self) {
        self.cam.lock().digest.nonces.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_params() {
        let p =
            params("Digest username=\"admin\", nc=00000001, uri=\"/a?b=c,d\", qop=auth").unwrap();
        assert_eq!(p[0], ("username".into(), "admin".into()));
        assert_eq!(p[1], ("nc".into(), "00000001".into()));
        assert_eq!(p[2], ("uri".into(), "/a?b=c,d".into()));
        assert_eq!(p[3], ("qop".into(), "auth".into()));
        assert!(params("Basic abc").is_none());
    }
}
