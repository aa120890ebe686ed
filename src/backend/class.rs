//! What a failed call means for reconnecting: the one vocabulary the supervisor sees.
//!
//! Both backends map their own failures into [`ErrorClass`]; the supervisor's policy
//! (backoff, auth-hold, never locking a camera) looks only at the class (plus a code for
//! display). The SDK's code table is `crate::sdk::class`, the ISAPI mapping
//! `crate::isapi::IsapiError::class`.

/// How a failed call (of either backend) should be treated by the reconnect policy. The
/// SDK backend derives it from `NET_DVR_GetLastError` (`crate::sdk::classify`), the ISAPI
/// backend from the device's answer (`crate::isapi::IsapiError::class`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Connect, send or receive failed; device offline or network down. Back off.
    Network,
    /// The device or the SDK timed out. Back off.
    Timeout,
    /// Wrong user name or password. `retries_left` is what the device said it still
    /// allows (SDK: `byRetryLoginTime` with `bySupportLock` = 1; ISAPI: `retryLoginTime`).
    Auth {
        /// Attempts the device still allows before it locks the client IP.
        retries_left: Option<u8>,
    },
    /// The device has locked us out (SDK error 153, ISAPI `lockStatus` = `lock`).
    /// `secs_left` is what the device said (`dwSurplusLockTime`, `unlockTime`).
    Locked {
        /// Seconds until the device lifts the lock, when it said.
        secs_left: Option<u32>,
    },
    /// A connection, user or resource limit on the device or in the SDK. Back off slower.
    Resource,
    /// The device or this SDK build does not support what we asked.
    Unsupported,
    /// A programming or deployment error (not initialised, bad parameter, missing SDK
    /// component). Retrying as-is will not help; alert the operator.
    Fatal,
    /// A code the backend does not know (the SDK's error number). Retried conservatively.
    Unknown(u32),
}

impl ErrorClass {
    /// Whether an automatic retry (with backoff) is reasonable: network, timeout, resource
    /// and unknown codes. Auth, locked, unsupported and fatal need the operator or a wait.
    pub fn is_retryable(self) -> bool {
        match self {
            ErrorClass::Network
            | ErrorClass::Timeout
            | ErrorClass::Resource
            | ErrorClass::Unknown(_) => true,
            ErrorClass::Auth { .. }
            | ErrorClass::Locked { .. }
            | ErrorClass::Unsupported
            | ErrorClass::Fatal => false,
        }
    }

    /// A short lower-case name for logs and JSON (`network`, `auth`, …).
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Network => "network",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Auth { .. } => "auth",
            ErrorClass::Locked { .. } => "locked",
            ErrorClass::Resource => "resource",
            ErrorClass::Unsupported => "unsupported",
            ErrorClass::Fatal => "fatal",
            ErrorClass::Unknown(_) => "unknown",
        }
    }

    /// What an operator should check, one sentence (used by `hikwatch probe`).
    pub fn advice(self) -> &'static str {
        match self {
            ErrorClass::Network => {
                "check that the camera is powered and reachable (ping, firewall, host and port; \
                 private protocol is usually 8000, ISAPI 80/443)"
            }
            ErrorClass::Timeout => {
                "the camera or network is slow or the port answers with another protocol; check \
                 the port and --mode, and the network path"
            }
            ErrorClass::Auth { .. } => {
                "check the user name and the password file; do not retry blindly, the camera \
                 locks the client IP after a few wrong attempts"
            }
            ErrorClass::Locked { .. } => {
                "the camera has locked this IP after wrong passwords; wait until the lock \
                 expires (any attempt during the lock restarts it), then fix the credentials"
            }
            ErrorClass::Resource => {
                "a connection or user limit is reached on the camera or in the SDK; close other \
                 clients or wait"
            }
            ErrorClass::Unsupported => {
                "the camera does not support this request or login mode; try another --mode"
            }
            ErrorClass::Fatal => {
                "a deployment problem: check the SDK folder (HCNetSDKCom/, libcrypto, libssl), \
                 the user's rights and whether the camera is activated"
            }
            ErrorClass::Unknown(_) => "an error code hikwatch does not know; see the SDK message",
        }
    }
}
