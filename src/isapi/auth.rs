//! Logging in the way the device expects it.
//!
//! **Session login** (what the vendor SDK does in ISAPI mode):
//! 1. `GET /ISAPI/Security/sessionLogin/capabilities?username=U` answers a
//!    `SessionLoginCap`: `sessionID`, `challenge`, `iterations`, `isIrreversible`, `salt`.
//! 2. The password is hashed with SHA-256, salted and iterated (see [`session_hash`]).
//! 3. `POST /ISAPI/Security/sessionLogin` with user name, hash and sessionID; a `200`
//!    sets the `WebSession…` cookie every later request carries. A `401` carries a
//!    `userCheck` document with the lockout state ([`login_refusal`]).
//!
//! **HTTP Digest** (RFC 7616, RFC 2617 compatible; MD5 or SHA-256, `qop=auth` or none)
//! for devices without session login. Basic authentication is never sent: a device that
//! offers only Basic is reported as unsupported.

use std::fmt::Write as _;

use md5::Md5;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use super::error::IsapiError;
use super::xml;

/// Lowercase hex of a byte string.
fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Lowercase hex SHA-256.
fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// What the capabilities answer said (step 1 of the session login).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionChallenge {
    /// `sessionID`: names the exchange and, after a successful login, the session.
    pub session_id: String,
    /// `challenge`.
    pub challenge: String,
    /// `iterations` (SHA-256 rounds).
    pub iterations: u32,
    /// `isIrreversible`: the salted scheme (the device stores only a salted hash).
    pub irreversible: bool,
    /// `salt` (irreversible scheme only).
    pub salt: String,
}

/// Iterations above this are refused: a device (or an impostor) must not make the client
/// spin on hashes. Real devices send 100.
pub const MAX_ITERATIONS: u32 = 100_000;

/// Parses a `SessionLoginCap` document.
///
/// # Errors
/// [`IsapiError::Malformed`] without `sessionID` or `challenge`, or with out-of-range
/// iterations.
pub fn parse_capabilities(doc: &str) -> Result<SessionChallenge, IsapiError> {
    let session_id = xml::field(doc, "sessionID")
        .filter(|s| !s.is_empty())
        .ok_or(IsapiError::Malformed(
            "login capabilities without sessionID",
        ))?;
    let challenge = xml::field(doc, "challenge")
        .filter(|s| !s.is_empty())
        .ok_or(IsapiError::Malformed(
            "login capabilities without challenge",
        ))?;
    let iterations = match xml::field(doc, "iterations") {
        None => 100,
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_ITERATIONS).contains(n))
            .ok_or(IsapiError::Malformed("login iterations out of range"))?,
    };
    Ok(SessionChallenge {
        session_id,
        challenge,
        iterations,
        irreversible: xml::field_bool(doc, "isIrreversible").unwrap_or(false),
        salt: xml::field(doc, "salt").unwrap_or_default(),
    })
}

/// The password hash of step 2, lowercase hex.
///
/// Irreversible: `r = H(user + salt + password)`, `r = H(r + challenge)`, then
/// `r = H(r)` until `iterations` rounds in total. Otherwise: `r = H(password) +
/// challenge`, then `r = H(r)` `iterations - 1` times.
pub fn session_hash(user: &str, password: &[u8], c: &SessionChallenge) -> String {
    let mut r = if c.irreversible {
        let mut first = Zeroizing::new(Vec::with_capacity(
            user.len() + c.salt.len() + password.len(),
        ));
        first.extend_from_slice(user.as_bytes());
        first.extend_from_slice(c.salt.as_bytes());
        first.extend_from_slice(password);
        let r = sha256_hex(&first);
        sha256_hex(format!("{r}{}", c.challenge).as_bytes())
    } else {
        let r = sha256_hex(password) + &c.challenge;
        sha256_hex(r.as_bytes())
    };
    let done = if c.irreversible { 2 } else { 1 };
    for _ in done..c.iterations {
        r = sha256_hex(r.as_bytes());
    }
    r
}

/// The body of step 3.
pub fn login_body(user: &str, hash: &str, c: &SessionChallenge) -> String {
    format!(
        "<SessionLogin><userName>{}</userName><password>{hash}</password>\
         <sessionID>{}</sessionID><isSessionIDValidLongTerm>false</isSessionIDValidLongTerm>\
         <sessionIDVersion>2</sessionIDVersion></SessionLogin>",
        xml::escape(user),
        xml::escape(&c.session_id)
    )
}

/// The session cookie (`name=value`) from the `Set-Cookie` headers of a successful
/// login: the first `WebSession…` cookie.
pub fn session_cookie<'a>(set_cookies: impl Iterator<Item = &'a str>) -> Option<String> {
    for sc in set_cookies {
        let pair = sc.split(';').next().unwrap_or("").trim();
        if let Some((name, value)) = pair.split_once('=') {
            if name.trim().starts_with("WebSession") && !value.trim().is_empty() {
                return Some(format!("{}={}", name.trim(), value.trim()));
            }
        }
    }
    None
}

/// What a `401` to a login says: the lockout state from its `userCheck` document.
///
/// `<lockStatus>lock</lockStatus>` is [`IsapiError::Locked`] with `<unlockTime>` (the
/// SDK's error 153 with `dwSurplusLockTime`); otherwise [`IsapiError::Auth`] with
/// `<retryLoginTime>` (the SDK's error 1 with `byRetryLoginTime`), `None` when the device
/// did not say.
pub fn login_refusal(body: &str) -> IsapiError {
    let locked = xml::field(body, "lockStatus").is_some_and(|s| s.eq_ignore_ascii_case("lock"));
    if locked {
        IsapiError::Locked {
            secs_left: xml::field_u32(body, "unlockTime"),
        }
    } else {
        IsapiError::Auth {
            retries_left: xml::field_u32(body, "retryLoginTime")
                .map(|n| u8::try_from(n).unwrap_or(u8::MAX)),
        }
    }
}

/// The digest algorithm of a challenge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestAlgorithm {
    /// `MD5` (RFC 2617; what cameras use).
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256` (RFC 7616).
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
}

impl DigestAlgorithm {
    fn parse(s: &str) -> Option<DigestAlgorithm> {
        match s.to_ascii_uppercase().as_str() {
            "MD5" => Some(DigestAlgorithm::Md5),
            "MD5-SESS" => Some(DigestAlgorithm::Md5Sess),
            "SHA-256" => Some(DigestAlgorithm::Sha256),
            "SHA-256-SESS" => Some(DigestAlgorithm::Sha256Sess),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "MD5",
            DigestAlgorithm::Md5Sess => "MD5-sess",
            DigestAlgorithm::Sha256 => "SHA-256",
            DigestAlgorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    fn hash(self, data: &[u8]) -> String {
        match self {
            DigestAlgorithm::Md5 | DigestAlgorithm::Md5Sess => hex(&Md5::digest(data)),
            DigestAlgorithm::Sha256 | DigestAlgorithm::Sha256Sess => sha256_hex(data),
        }
    }

    fn is_sess(self) -> bool {
        matches!(self, DigestAlgorithm::Md5Sess | DigestAlgorithm::Sha256Sess)
    }
}

/// A `WWW-Authenticate: Digest …` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestChallenge {
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `opaque`, echoed back.
    pub opaque: Option<String>,
    /// The device offered `qop=auth`.
    pub qop_auth: bool,
    /// `algorithm` (default MD5).
    pub algorithm: DigestAlgorithm,
    /// `stale=true`: the nonce expired but the credentials were right; retry with the new
    /// nonce.
    pub stale: bool,
}

/// Splits an auth-param list (`a=b, c="d, e"`) into pairs; quoted values unescaped.
fn auth_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b',' || b[i].is_ascii_whitespace()) {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' {
            i += 1;
        }
        let key = s[ks..i].trim().to_ascii_lowercase();
        if i >= b.len() || b[i] == b',' {
            continue;
        }
        i += 1; // '='
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            let mut vs = i;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    value.push_str(&s[vs..i]);
                    i += 1;
                    vs = i;
                }
                i += 1;
            }
            value.push_str(&s[vs..i.min(b.len())]);
            i += 1; // closing quote
        } else {
            let vs = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            value.push_str(s[vs..i].trim());
        }
        if !key.is_empty() {
            out.push((key, value));
        }
    }
    out
}

/// The first usable Digest challenge among `WWW-Authenticate` header values (a header may
/// hold several schemes; the first Digest with a supported algorithm wins).
pub fn parse_digest_challenge<'a>(
    headers: impl Iterator<Item = &'a str>,
) -> Option<DigestChallenge> {
    for h in headers {
        let h = h.trim();
        let Some(scheme_end) = h.find(char::is_whitespace) else {
            continue;
        };
        if !h[..scheme_end].eq_ignore_ascii_case("digest") {
            continue;
        }
        let mut c = DigestChallenge {
            realm: String::new(),
            nonce: String::new(),
            opaque: None,
            qop_auth: false,
            algorithm: DigestAlgorithm::Md5,
            stale: false,
        };
        let mut supported = true;
        for (k, v) in auth_params(&h[scheme_end..]) {
            match k.as_str() {
                "realm" => c.realm = v,
                "nonce" => c.nonce = v,
                "opaque" => c.opaque = Some(v),
                "qop" => c.qop_auth = v.split(',').any(|q| q.trim().eq_ignore_ascii_case("auth")),
                "algorithm" => match DigestAlgorithm::parse(&v) {
                    Some(a) => c.algorithm = a,
                    None => supported = false,
                },
                "stale" => c.stale = v.eq_ignore_ascii_case("true"),
                _ => {}
            }
        }
        if supported && !c.nonce.is_empty() {
            return Some(c);
        }
    }
    None
}

/// Whether any `WWW-Authenticate` value offers only Basic.
pub fn offers_basic<'a>(mut headers: impl Iterator<Item = &'a str>) -> bool {
    headers.any(|h| {
        h.trim()
            .get(..5)
            .is_some_and(|s| s.eq_ignore_ascii_case("basic"))
    })
}

/// Digest credentials with the current challenge: builds one `Authorization` header per
/// request, counting nonces.
pub struct DigestCredentials {
    user: String,
    /// Kept for a new realm or the `-sess` variants; wiped on drop.
    password: Zeroizing<Vec<u8>>,
    challenge: DigestChallenge,
    /// `nc`: requests sent with this nonce.
    nonce_count: u32,
    rng: fastrand::Rng,
}

impl std::fmt::Debug for DigestCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestCredentials")
            .field("user", &self.user)
            .field("realm", &self.challenge.realm)
            .field("algorithm", &self.challenge.algorithm)
            .finish_non_exhaustive()
    }
}

impl DigestCredentials {
    /// Credentials answering `challenge`.
    pub fn new(user: &str, password: &[u8], challenge: DigestChallenge) -> DigestCredentials {
        DigestCredentials {
            user: user.to_owned(),
            password: Zeroizing::new(password.to_vec()),
            challenge,
            nonce_count: 0,
            rng: fastrand::Rng::new(),
        }
    }

    /// Takes a new challenge (a stale nonce was replaced).
    pub fn renew(&mut self, challenge: DigestChallenge) {
        self.challenge = challenge;
        self.nonce_count = 0;
    }

    /// The `Authorization` header value for `method` on `uri` (path and query).
    pub fn authorization(&mut self, method: &str, uri: &str) -> String {
        self.nonce_count = self.nonce_count.wrapping_add(1);
        let c = &self.challenge;
        let alg = c.algorithm;
        let cnonce = format!("{:016x}", self.rng.u64(..));
        let nc = format!("{:08x}", self.nonce_count);
        let mut a1 = Zeroizing::new(Vec::new());
        a1.extend_from_slice(self.user.as_bytes());
        a1.push(b':');
        a1.extend_from_slice(c.realm.as_bytes());
        a1.push(b':');
        a1.extend_from_slice(&self.password);
        let mut ha1 = Zeroizing::new(alg.hash(&a1));
        if alg.is_sess() {
            ha1 = Zeroizing::new(alg.hash(format!("{}:{}:{cnonce}", *ha1, c.nonce).as_bytes()));
        }
        let ha2 = alg.hash(format!("{method}:{uri}").as_bytes());
        let response = if c.qop_auth {
            alg.hash(format!("{}:{}:{nc}:{cnonce}:auth:{ha2}", *ha1, c.nonce).as_bytes())
        } else {
            alg.hash(format!("{}:{}:{ha2}", *ha1, c.nonce).as_bytes())
        };
        let mut h = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", \
             algorithm={}, response=\"{response}\"",
            quote(&self.user),
            quote(&c.realm),
            quote(&c.nonce),
            alg.name()
        );
        if let Some(o) = &c.opaque {
            let _ = write!(h, ", opaque=\"{}\"", quote(o));
        }
        if c.qop_auth {
            let _ = write!(h, ", qop=auth, nc={nc}, cnonce=\"{cnonce}\"");
        }
        h
    }
}

/// Escapes `"` and `\` for a quoted-string.
fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_example() {
        // The worked example of RFC 2617 section 3.5 (MD5, qop=auth).
        let c = parse_digest_challenge(std::iter::once(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        ))
        .unwrap();
        assert!(c.qop_auth && !c.stale);
        let mut d = DigestCredentials::new("Mufasa", b"Circle Of Life", c);
        d.rng = fastrand::Rng::with_seed(0);
        let h = d.authorization("GET", "/dir/index.html");
        // The RFC's cnonce differs; recompute with ours.
        let cn = h.split("cnonce=\"").nth(1).unwrap().trim_end_matches('"');
        let ha1 = hex(&Md5::digest(b"Mufasa:testrealm@host.com:Circle Of Life"));
        assert_eq!(ha1, "939e7578ed9e3c518a452acee763bce9");
        let ha2 = hex(&Md5::digest(b"GET:/dir/index.html"));
        let want = hex(&Md5::digest(
            format!("{ha1}:dcd98b7102dd2f0e8b11d0f600bfb0c093:00000001:{cn}:auth:{ha2}").as_bytes(),
        ));
        assert!(h.contains(&format!("response=\"{want}\"")), "{h}");
        assert!(h.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""));
    }

    #[test]
    fn lockout_documents() {
        let bad = "<userCheck><statusValue>401</statusValue><lockStatus>unlock</lockStatus>\
                   <unlockTime>0</unlockTime><retryLoginTime>4</retryLoginTime></userCheck>";
        assert!(matches!(
            login_refusal(bad),
            IsapiError::Auth {
                retries_left: Some(4)
            }
        ));
        let locked = "<userCheck><lockStatus>lock</lockStatus><unlockTime>1800</unlockTime>\
                      <retryLoginTime>0</retryLoginTime></userCheck>";
        assert!(matches!(
            login_refusal(locked),
            IsapiError::Locked {
                secs_left: Some(1800)
            }
        ));
        assert!(matches!(
            login_refusal("junk"),
            IsapiError::Auth { retries_left: None }
        ));
    }

    #[test]
    fn cookie_and_basic() {
        let sc = ["a=b", "WebSession_12AB=xyz; path=/; HttpOnly"];
        assert_eq!(
            session_cookie(sc.into_iter()).as_deref(),
            Some("WebSession_12AB=xyz")
        );
        assert!(offers_basic(std::iter::once("Basic realm=\"x\"")));
        assert!(parse_digest_challenge(std::iter::once("Basic realm=\"x\"")).is_none());
        assert!(
            parse_digest_challenge(std::iter::once("Digest nonce=\"n\", algorithm=SHA-512-256"))
                .is_none()
        );
    }
}
