//! What a `NET_DVR_GetLastError` code means for reconnecting.
//!
//! The supervisor never looks at raw codes; it looks at the class.

/// How a failed SDK call should be treated by the reconnect policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Connect, send or receive failed; device offline or network down. Back off.
    Network,
    /// The device or the SDK timed out. Back off.
    Timeout,
    /// Wrong user name or password. `retries_left` is the device's `byRetryLoginTime`
    /// when it reported one (`bySupportLock` = 1).
    Auth {
        /// Attempts the device still allows before it locks the client IP.
        retries_left: Option<u8>,
    },
    /// The device has locked us out (error 153). `secs_left` is `dwSurplusLockTime`.
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
    /// A code the table does not know. Retried conservatively.
    Unknown(u32),
}
