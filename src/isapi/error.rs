//! The one error type of the ISAPI client, and its mapping to the supervisor's
//! [`ErrorClass`].

use std::fmt;
use std::io;

use crate::backend::{BackendFailure, ErrorClass};

/// Why an ISAPI request, login or event stream failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum IsapiError {
    /// The TCP connect failed (refused, unreachable, reset).
    Connect(io::Error),
    /// Sending or receiving failed on an open connection.
    Io(io::Error),
    /// The request's total deadline passed (connect, send and the whole answer).
    Timeout,
    /// The device closed the connection before the answer was complete.
    Closed,
    /// The answer is not HTTP/1.x or not what ISAPI sends; says what was wrong.
    Malformed(&'static str),
    /// The answer's head, header count, body or an event part exceeds its limit.
    TooLarge(&'static str),
    /// The device refused the user name or password. `retries_left` is its
    /// `<retryLoginTime>` when it sent one.
    Auth {
        /// Attempts the device still allows before it locks the client IP.
        retries_left: Option<u8>,
    },
    /// The device has locked this client out after wrong passwords (`<lockStatus>lock`).
    Locked {
        /// `<unlockTime>`: seconds until the device lifts the lock, when it said.
        secs_left: Option<u32>,
    },
    /// A request inside a session got 401: the device no longer knows the session (it
    /// rebooted, expired it, or an administrator removed it). Log in again.
    SessionLost,
    /// HTTP 503: the device is busy or at its session limit.
    Busy,
    /// Another HTTP status the client does not expect for this request.
    Status(u16),
    /// The device offers no login the client can use, or the answer uses a feature the
    /// client does not implement; says which.
    Unsupported(&'static str),
    /// The event stream or the RTSP video stream ended (the device closed it).
    StreamEnded,
    /// The event stream sent no complete part (event or heartbeat), or the RTSP video
    /// stream no complete frame, for the silence limit.
    StreamSilent,
    /// An RTSP status the client cannot go on with (`rtsp.rs`). 453 "Not Enough
    /// Bandwidth" is Hikvision's answer at its stream limit.
    RtspStatus(u16),
}

impl IsapiError {
    /// The class the supervisor's policy sees. Lockout answers give exactly the classes
    /// the SDK backend produces for SDK errors 1 (with `bySupportLock`) and 153, so the
    /// lockout policy is the same for both backends.
    pub fn class(&self) -> ErrorClass {
        match self {
            IsapiError::Connect(_)
            | IsapiError::Io(_)
            | IsapiError::Closed
            | IsapiError::Malformed(_)
            | IsapiError::TooLarge(_)
            | IsapiError::SessionLost
            | IsapiError::StreamEnded
            | IsapiError::StreamSilent => ErrorClass::Network,
            IsapiError::Timeout => ErrorClass::Timeout,
            IsapiError::Auth { retries_left } => ErrorClass::Auth {
                retries_left: *retries_left,
            },
            IsapiError::Locked { secs_left } => ErrorClass::Locked {
                secs_left: *secs_left,
            },
            IsapiError::Busy => ErrorClass::Resource,
            IsapiError::Unsupported(_) => ErrorClass::Unsupported,
            IsapiError::Status(s) => match s {
                403 => ErrorClass::Fatal,
                404 | 405 | 501 => ErrorClass::Unsupported,
                500 | 502 | 504 => ErrorClass::Network,
                s => ErrorClass::Unknown(u32::from(*s)),
            },
            IsapiError::RtspStatus(s) => match s {
                // The device's stream limit (or a busy device): the class the SDK backend
                // gives a refused preview, so the supervisor stays logged in and asks again
                // after `resource_throttle` (`Alert::StreamRefused`).
                453 | 503 => ErrorClass::Resource,
                // 454 Session Not Found: the device forgot the RTSP session.
                454 | 500 | 502 | 504 => ErrorClass::Network,
                403 => ErrorClass::Fatal,
                // No such stream, method, transport or version.
                404 | 405 | 461 | 501 | 505 => ErrorClass::Unsupported,
                s => ErrorClass::Unknown(u32::from(*s)),
            },
        }
    }
}

impl BackendFailure for IsapiError {
    fn class(&self) -> ErrorClass {
        IsapiError::class(self)
    }

    /// The unexpected HTTP or RTSP status, when that was the failure (RTSP 453 for a
    /// refused stream); the other failures have no number of their own.
    fn code(&self) -> Option<u32> {
        match self {
            IsapiError::Status(s) | IsapiError::RtspStatus(s) => Some(u32::from(*s)),
            _ => None,
        }
    }
}

impl fmt::Display for IsapiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IsapiError::Connect(e) => write!(f, "connect failed: {e}"),
            IsapiError::Io(e) => write!(f, "connection failed: {e}"),
            IsapiError::Timeout => f.write_str("no complete answer before the deadline"),
            IsapiError::Closed => f.write_str("the device closed the connection mid-answer"),
            IsapiError::Malformed(what) => write!(f, "malformed answer: {what}"),
            IsapiError::TooLarge(what) => write!(f, "answer too large: {what}"),
            IsapiError::Auth {
                retries_left: Some(n),
            } => write!(f, "wrong user name or password ({n} attempts left)"),
            IsapiError::Auth { retries_left: None } => f.write_str("wrong user name or password"),
            IsapiError::Locked { secs_left: Some(s) } => {
                write!(f, "the device has locked this client for {s} s")
            }
            IsapiError::Locked { secs_left: None } => {
                f.write_str("the device has locked this client")
            }
            IsapiError::SessionLost => f.write_str("the device no longer knows the session (401)"),
            IsapiError::Busy => f.write_str("the device is busy or at its session limit (503)"),
            IsapiError::Status(s) => write!(f, "unexpected HTTP status {s}"),
            IsapiError::Unsupported(what) => write!(f, "not supported: {what}"),
            IsapiError::StreamEnded => f.write_str("the device ended the stream"),
            IsapiError::StreamSilent => {
                f.write_str("the stream sent nothing for longer than the silence limit")
            }
            IsapiError::RtspStatus(s) => write!(f, "RTSP status {s}"),
        }
    }
}

impl std::error::Error for IsapiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            IsapiError::Connect(e) | IsapiError::Io(e) => Some(e),
            _ => None,
        }
    }
}
