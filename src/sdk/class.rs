//! What a `NET_DVR_GetLastError` code means for reconnecting.
//!
//! The supervisor never looks at raw codes; it looks at the class. [`classify`] is the one
//! table, pure and public; [`TABLE`] lists every code it knows (from the header, the SDK's
//! message table and the Chinese manual, see docs/hcnetsdk.md §4) so tests and docs can
//! walk it. Codes that have nothing to do with sessions or preview (storage, audio, files,
//! upgrade, player) are deliberately absent: they come back as [`ErrorClass::Unknown`].
//!
//! Choices where docs/hcnetsdk.md allowed two readings:
//! - 47 / 102 / 154 ("user id does not exist / not logged in / invalid user id") mean the
//!   session is gone; the right reaction is a fresh login, so they are [`ErrorClass::Network`]
//!   (re-login with backoff), not `Fatal`.
//! - 11 (bad data) is usually a broken transfer ([`ErrorClass::Network`]); the deployment
//!   case (private-mode login to an HTTP port) is left to the operator's eye on repeats.
//! - Device state / configuration codes (privilege, channel state, not activated, IP/MAC
//!   binding) cannot be fixed by retrying as-is and are [`ErrorClass::Fatal`].
//! - 29 ("device operation failed") is also what the SDK reports when it cannot load
//!   libcrypto/libssl or runs on an unsupported OS: [`ErrorClass::Fatal`].

use crate::backend::ErrorClass;

/// The lock-out fields of `NET_DVR_DEVICEINFO_V40` that a failed login fills in.
/// For calls other than login, use `LoginFailure::default()`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoginFailure {
    /// `bySupportLock` = 1: the other two fields are valid.
    pub support_lock: bool,
    /// `byRetryLoginTime`: attempts left after a wrong user name or password.
    pub retry_login_time: u8,
    /// `dwSurplusLockTime`: seconds of lock left.
    pub surplus_lock_time: u32,
}

/// A class without its payload, as stored in [`TABLE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// [`ErrorClass::Network`]
    Network,
    /// [`ErrorClass::Timeout`]
    Timeout,
    /// [`ErrorClass::Auth`]
    Auth,
    /// [`ErrorClass::Locked`]
    Locked,
    /// [`ErrorClass::Resource`]
    Resource,
    /// [`ErrorClass::Unsupported`]
    Unsupported,
    /// [`ErrorClass::Fatal`]
    Fatal,
}

/// Every connection-relevant `NET_DVR_GetLastError` code: inclusive ranges `(first, last,
/// kind)`, sorted and non-overlapping (a unit test checks both).
pub const TABLE: &[(u32, u32, Kind)] = &[
    (1, 1, Kind::Auth),            // wrong user name or password
    (2, 2, Kind::Fatal),           // insufficient privilege (device config)
    (3, 3, Kind::Fatal),           // not initialised
    (4, 4, Kind::Fatal),           // channel number error
    (5, 5, Kind::Resource),        // device's client-connection limit
    (6, 6, Kind::Unsupported),     // SDK-device version mismatch
    (7, 9, Kind::Network),         // connect / send / receive failed
    (10, 10, Kind::Timeout),       // receive timeout
    (11, 11, Kind::Network),       // bad data
    (12, 12, Kind::Fatal),         // API call order error
    (13, 13, Kind::Fatal),         // no permission for the function
    (14, 14, Kind::Timeout),       // device command timeout
    (15, 17, Kind::Fatal),         // serial / alarm port number, parameter error
    (18, 18, Kind::Fatal),         // channel error state
    (23, 23, Kind::Unsupported),   // device does not support
    (24, 24, Kind::Network),       // device busy
    (25, 25, Kind::Fatal),         // modify failed
    (26, 26, Kind::Auth),          // password format error
    (27, 27, Kind::Fatal),         // HDD formatting
    (28, 28, Kind::Resource),      // device out of resources
    (29, 29, Kind::Fatal),         // device operation failed (also libssl/OS problems)
    (41, 41, Kind::Fatal),         // SDK allocation failed
    (43, 43, Kind::Fatal),         // buffer too small
    (44, 45, Kind::Network),       // create / set socket failed
    (46, 46, Kind::Resource),      // SDK login or preview count limit
    (47, 47, Kind::Network),       // user id does not exist: session gone, log in again
    (52, 52, Kind::Resource),      // device's logged-in-user limit
    (53, 53, Kind::Fatal),         // cannot get local IP/MAC
    (54, 56, Kind::Fatal),         // channel not encoding, IP/MAC binding mismatch
    (58, 58, Kind::Resource),      // player port limit
    (64, 68, Kind::Fatal),         // component failed to load
    (72, 73, Kind::Network),       // bind socket failed, socket closed
    (74, 74, Kind::Network),       // user id busy at logout (retry)
    (76, 76, Kind::Fatal),         // program exception
    (83, 83, Kind::Network),       // NVR IP channel offline
    (84, 85, Kind::Fatal),         // component failed to load
    (91, 91, Kind::Unsupported),   // channel not supported
    (96, 96, Kind::Network),       // device not on DDNS
    (98, 98, Kind::Unsupported),   // OS not supported
    (100, 100, Kind::Fatal),       // component failed to load
    (102, 102, Kind::Network),     // user not logged in: log in again
    (104, 104, Kind::Resource),    // port pool exhausted
    (105, 105, Kind::Unsupported), // packet type not supported
    (107, 115, Kind::Fatal),       // HCNetSDKCom component failed to load (check SDK_PATH)
    (121, 142, Kind::Fatal),       // component vs core version mismatch
    (147, 149, Kind::Fatal),       // certificate errors
    (151, 151, Kind::Network),     // invalid communication
    (152, 152, Kind::Auth),        // user name does not exist
    (153, 153, Kind::Locked),      // user (IP) locked
    (154, 154, Kind::Network),     // invalid user id: log in again
    (155, 155, Kind::Unsupported), // login version too low
    (156, 158, Kind::Fatal),       // libssl / libcrypto / libiconv load failure
    (159, 159, Kind::Network),     // SSL connect failed
    (161, 162, Kind::Fatal),       // zlib load failure, OpenSSL not initialised
    (182, 182, Kind::Resource),    // HRUDP link limit
    (187, 187, Kind::Resource),    // port-multiplex limit
    (188, 188, Kind::Network),     // invalid link
    (189, 189, Kind::Unsupported), // interface does not support ISAPI
    (250, 252, Kind::Fatal),       // not activated / risky password / already activated
    (401, 401, Kind::Auth),        // RTSP 401
    (402, 403, Kind::Fatal),       // RTSP resource / parameter error
    (404, 404, Kind::Unsupported), // RTSP URL not found
    (405, 407, Kind::Fatal),       // RTSP forced stop, port, other
    (410, 425, Kind::Network),     // RTSP DESCRIBE/SETUP/PLAY/TEARDOWN send/receive
    (426, 426, Kind::Resource),    // RTSP too many channels (453)
    (427, 446, Kind::Network),     // RTSP send/receive errors and timeouts
    (800, 800, Kind::Resource),    // device network capacity exceeded
    (803, 803, Kind::Network),     // remote disconnect
];

/// The [`Kind`] of `code`, or `None` when [`TABLE`] does not list it.
pub fn kind_of(code: u32) -> Option<Kind> {
    let i = TABLE.partition_point(|&(_, last, _)| last < code);
    match TABLE.get(i) {
        Some(&(first, _, kind)) if first <= code => Some(kind),
        _ => None,
    }
}

/// Classifies a `NET_DVR_GetLastError` code. `failure` carries the lock-out fields of a
/// failed login (pass `&LoginFailure::default()` for other calls): an auth error carries
/// the attempts left, a lock the seconds left, when the device reported them
/// (`bySupportLock`). Codes not in [`TABLE`] (and 0) give [`ErrorClass::Unknown`].
pub fn classify(code: u32, failure: &LoginFailure) -> ErrorClass {
    match kind_of(code) {
        Some(Kind::Network) => ErrorClass::Network,
        Some(Kind::Timeout) => ErrorClass::Timeout,
        Some(Kind::Auth) => ErrorClass::Auth {
            retries_left: failure.support_lock.then_some(failure.retry_login_time),
        },
        Some(Kind::Locked) => ErrorClass::Locked {
            secs_left: failure.support_lock.then_some(failure.surplus_lock_time),
        },
        Some(Kind::Resource) => ErrorClass::Resource,
        Some(Kind::Unsupported) => ErrorClass::Unsupported,
        Some(Kind::Fatal) => ErrorClass::Fatal,
        None => ErrorClass::Unknown(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: LoginFailure = LoginFailure {
        support_lock: false,
        retry_login_time: 0,
        surplus_lock_time: 0,
    };

    #[test]
    fn table_is_sorted_and_disjoint() {
        for w in TABLE.windows(2) {
            assert!(w[0].0 <= w[0].1, "{:?}", w[0]);
            assert!(
                w[0].1 < w[1].0,
                "{:?} overlaps or precedes {:?}",
                w[0],
                w[1]
            );
        }
    }

    #[test]
    fn every_code_in_the_table_classifies_to_its_kind() {
        let mut n = 0;
        for &(first, last, kind) in TABLE {
            for code in first..=last {
                n += 1;
                let class = classify(code, &NONE);
                let expect = match kind {
                    Kind::Network => ErrorClass::Network,
                    Kind::Timeout => ErrorClass::Timeout,
                    Kind::Auth => ErrorClass::Auth { retries_left: None },
                    Kind::Locked => ErrorClass::Locked { secs_left: None },
                    Kind::Resource => ErrorClass::Resource,
                    Kind::Unsupported => ErrorClass::Unsupported,
                    Kind::Fatal => ErrorClass::Fatal,
                };
                assert_eq!(class, expect, "code {code}");
            }
        }
        assert!(n > 150, "table covers {n} codes");
    }

    #[test]
    fn codes_outside_the_table_are_unknown() {
        for code in 0..1000u32 {
            if kind_of(code).is_none() {
                assert_eq!(classify(code, &NONE), ErrorClass::Unknown(code));
            }
        }
        for code in [
            0,
            19,
            20,
            30,
            40,
            42,
            48,
            57,
            150,
            500,
            999,
            10_000,
            u32::MAX,
        ] {
            assert_eq!(
                classify(code, &NONE),
                ErrorClass::Unknown(code),
                "code {code}"
            );
        }
    }

    #[test]
    fn facts_sheet_spot_checks() {
        use ErrorClass::*;
        let cases = [
            (7, Network),
            (8, Network),
            (9, Network),
            (10, Timeout),
            (14, Timeout),
            (3, Fatal),
            (17, Fatal),
            (5, Resource),
            (46, Resource),
            (52, Resource),
            (6, Unsupported),
            (23, Unsupported),
            (47, Network),
            (73, Network),
            (107, Fatal),
            (157, Fatal),
            (426, Resource),
            (430, Network),
            (803, Network),
            (800, Resource),
        ];
        for (code, class) in cases {
            assert_eq!(classify(code, &NONE), class, "code {code}");
        }
    }

    #[test]
    fn auth_carries_retries_only_when_the_device_supports_lock() {
        let f = LoginFailure {
            support_lock: true,
            retry_login_time: 4,
            surplus_lock_time: 0,
        };
        assert_eq!(
            classify(1, &f),
            ErrorClass::Auth {
                retries_left: Some(4)
            }
        );
        assert_eq!(classify(1, &NONE), ErrorClass::Auth { retries_left: None });
        let f = LoginFailure {
            support_lock: false,
            retry_login_time: 4,
            surplus_lock_time: 99,
        };
        assert_eq!(classify(1, &f), ErrorClass::Auth { retries_left: None });
    }

    #[test]
    fn locked_carries_seconds_left() {
        let f = LoginFailure {
            support_lock: true,
            retry_login_time: 0,
            surplus_lock_time: 1742,
        };
        assert_eq!(
            classify(153, &f),
            ErrorClass::Locked {
                secs_left: Some(1742)
            }
        );
        assert_eq!(classify(153, &NONE), ErrorClass::Locked { secs_left: None });
    }

    #[test]
    fn retryable_split() {
        assert!(ErrorClass::Network.is_retryable());
        assert!(ErrorClass::Unknown(9999).is_retryable());
        assert!(!ErrorClass::Auth { retries_left: None }.is_retryable());
        assert!(!ErrorClass::Locked { secs_left: None }.is_retryable());
        assert!(!ErrorClass::Fatal.is_retryable());
        assert_eq!(ErrorClass::Locked { secs_left: None }.name(), "locked");
    }
}
