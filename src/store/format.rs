//! The on-flash layout of the state file: header, postcard records, CRC-32.
//!
//! # Layout (every version)
//!
//! ```text
//! offset 0   4 bytes  magic "HKWS" (HiKwatch State)
//! offset 4   1 byte   format version (1 and 2 = legacy, 3 = current)
//! offset 5   n bytes  postcard payload, layout chosen by the version byte
//! offset 5+n 4 bytes  CRC-32 (ISO-HDLC, the zlib/Ethernet one), little-endian,
//!                     over bytes 0 .. 5+n (magic and version included)
//! ```
//!
//! The writer uses postcard's CRC flavour ([`postcard::ser_flavors::crc::CrcModifier`]) with
//! a digest that has already consumed the 5 header bytes, so the checksum also protects the
//! version byte: a flipped version bit is a CRC error, never a silent decode with the wrong
//! layout. The reader checks the CRC itself before decoding, so that a damaged file is
//! reported as such and not as whatever postcard error the damage happens to cause.
//!
//! # Version 3 (current) payload, in postcard order
//!
//! `written_at_ms: u64` (wall clock at write, Unix ms; may be a 1970 reading on boards
//! without an RTC) · `salt: [u8; 16]` (per-file random salt for the credential
//! fingerprints) · `records: seq of` [`Record`] (sorted by id).
//!
//! # Version 2 (legacy) payload
//!
//! As version 3, but a record ends after `last_online_ago_ms`: it has no
//! `device_session`. [`decode`] migrates it with no remembered session.
//!
//! # Version 1 (legacy) payload
//!
//! `written_at_s: u64` (Unix seconds) · `records: seq of {id: str, attempts: u32,
//! consecutive_failures: u32, next_due_s: Option<u32>, last_error: Option<{class: enum
//! without payloads, code: u32}>, auth_hold: bool, lock_left_s: Option<u32>, reconnects:
//! u32, login_attempts: u32}`. Version 1 had no salt, no credential fingerprint and no
//! last-online time; [`decode`] migrates it to the current in-memory form (see
//! `migrate_v1` in the source for the rules).
//!
//! # Bounds
//!
//! At most [`MAX_CAMERAS`] records with ids of at most [`MAX_ID_LEN`] bytes, so a file is
//! at most [`MAX_FILE_LEN`] bytes. The whole file is rewritten on every flush, so its size
//! is the wear cost of one write and the time one fsync takes; a typical 16-camera site is
//! well under 1 KiB (one flash page). The bound also means the reader can refuse anything
//! larger before reading it, so a huge file put in our place cannot exhaust memory.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::backend::ErrorClass;

/// The first four bytes of every state file.
pub const MAGIC: [u8; 4] = *b"HKWS";
/// The first legacy layout; still decoded, never written.
pub const VERSION_1: u8 = 1;
/// The second legacy layout (no device session); still decoded, never written.
pub const VERSION_2: u8 = 2;
/// The layout this build writes.
pub const CURRENT_VERSION: u8 = 3;
/// Magic plus version byte.
pub const HEADER_LEN: usize = 5;
/// The trailing CRC-32.
pub const CRC_LEN: usize = 4;
/// Longest camera id, in bytes. Config ids are short names ("gate-1"); 64 bytes leaves
/// room for `site/building/cam` schemes while keeping one record at most
/// [`MAX_RECORD_LEN`] bytes.
pub const MAX_ID_LEN: usize = 64;
/// Most cameras one file holds: hikwatch's one camera limit. An edge gateway handles tens
/// of cameras, whose file is a few KiB; the worst case ([`MAX_FILE_LEN`], every record at
/// its longest) is about 568 KiB (306 KiB of it without device sessions).
pub use crate::MAX_CAMERAS;
/// Longest remembered device session, in bytes: the `Cookie` header value of an ISAPI
/// session login (`WebSession_<hex>=<token>`, well under 100 bytes on the devices seen).
pub const MAX_SESSION_LEN: usize = 128;
/// Worst-case encoded size of one v3 record: id (1 + 64) + fingerprint (1 + 10) +
/// attempts (5) + failures (5) + next due (1 + 10) + last error (1 + variant 1 + payload
/// 1 + 5 + code 5) + hold (1) +
/// lock (1 + 10) + reconnects (10) + login attempts (10) + last online (1 + 10) + device
/// session (1 + 2 + 128).
pub const MAX_RECORD_LEN: usize =
    65 + 11 + 5 + 5 + 11 + 13 + 1 + 11 + 10 + 10 + 11 + 1 + 2 + MAX_SESSION_LEN;
/// Largest file the reader accepts: header, payload header (10 + 16 + 3 for the record
/// count), [`MAX_CAMERAS`] worst-case records and the CRC.
pub const MAX_FILE_LEN: usize = HEADER_LEN + 29 + MAX_CAMERAS * MAX_RECORD_LEN + CRC_LEN;

/// The CRC used for the trailer: CRC-32/ISO-HDLC, the same as zlib's `crc32`, so a file can
/// be checked with `python3 -c 'import zlib; ...'`.
pub const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// The persisted error class: [`ErrorClass`] with a variant order that is part of the file
/// format.
///
/// postcard writes an enum as its variant index, so **never reorder or remove variants**;
/// add new ones at the end (old files stay valid, old builds reject the new index as a bad
/// file and start fresh, which is safe). Conversions to and from [`ErrorClass`] are
/// lossless.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StoredClass {
    /// Index 0: [`ErrorClass::Network`].
    Network,
    /// Index 1: [`ErrorClass::Timeout`].
    Timeout,
    /// Index 2: [`ErrorClass::Auth`].
    Auth {
        /// Attempts the device still allowed when it answered.
        retries_left: Option<u8>,
    },
    /// Index 3: [`ErrorClass::Locked`]. The lock itself lives in `lock_left`; this is only
    /// what the device said at the time.
    Locked {
        /// Seconds of lock the device reported at the time.
        secs_left: Option<u32>,
    },
    /// Index 4: [`ErrorClass::Resource`].
    Resource,
    /// Index 5: [`ErrorClass::Unsupported`].
    Unsupported,
    /// Index 6: [`ErrorClass::Fatal`].
    Fatal,
    /// Index 7: [`ErrorClass::Unknown`].
    Unknown(u32),
}

impl From<ErrorClass> for StoredClass {
    fn from(c: ErrorClass) -> Self {
        match c {
            ErrorClass::Network => StoredClass::Network,
            ErrorClass::Timeout => StoredClass::Timeout,
            ErrorClass::Auth { retries_left } => StoredClass::Auth { retries_left },
            ErrorClass::Locked { secs_left } => StoredClass::Locked { secs_left },
            ErrorClass::Resource => StoredClass::Resource,
            ErrorClass::Unsupported => StoredClass::Unsupported,
            ErrorClass::Fatal => StoredClass::Fatal,
            ErrorClass::Unknown(code) => StoredClass::Unknown(code),
        }
    }
}

impl From<StoredClass> for ErrorClass {
    fn from(c: StoredClass) -> Self {
        match c {
            StoredClass::Network => ErrorClass::Network,
            StoredClass::Timeout => ErrorClass::Timeout,
            StoredClass::Auth { retries_left } => ErrorClass::Auth { retries_left },
            StoredClass::Locked { secs_left } => ErrorClass::Locked { secs_left },
            StoredClass::Resource => ErrorClass::Resource,
            StoredClass::Unsupported => ErrorClass::Unsupported,
            StoredClass::Fatal => ErrorClass::Fatal,
            StoredClass::Unknown(code) => ErrorClass::Unknown(code),
        }
    }
}

impl StoredClass {
    /// Short lower-case name, as `state show` prints it.
    pub fn name(&self) -> &'static str {
        match self {
            StoredClass::Network => "network",
            StoredClass::Timeout => "timeout",
            StoredClass::Auth { .. } => "auth",
            StoredClass::Locked { .. } => "locked",
            StoredClass::Resource => "resource",
            StoredClass::Unsupported => "unsupported",
            StoredClass::Fatal => "fatal",
            StoredClass::Unknown(_) => "unknown",
        }
    }
}

/// The last failure of a camera: its class and the vendor error code
/// (`NET_DVR_GetLastError`, or the HTTP status for ISAPI).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StoredError {
    /// What the failure means for reconnecting.
    pub class: StoredClass,
    /// The vendor code.
    pub code: u32,
}

impl StoredError {
    /// Builds the persisted form from what the SDK layer reports.
    pub fn new(class: ErrorClass, code: u32) -> Self {
        StoredError {
            class: class.into(),
            code,
        }
    }
}

/// One camera as stored in a version-3 file. **The field order is the v3 wire layout**:
/// changing it needs a new format version (and a golden-bytes test change shows it).
///
/// Durations are relative to the file's `written_at_ms`: what was left, or how long ago,
/// at the moment of writing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The camera id from the config, at most [`MAX_ID_LEN`] bytes.
    pub id: String,
    /// Salted fingerprint of the credentials the state was built with; `None` when unknown
    /// (migrated from v1).
    pub credential: Option<u64>,
    /// Attempts in the current backoff run.
    pub attempts: u32,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// Milliseconds until the next attempt was due, at write time; `None`: not scheduled.
    pub next_due_ms: Option<u64>,
    /// The last failure.
    pub last_error: Option<StoredError>,
    /// Login attempts stopped until the credentials change (wrong user or password).
    pub auth_hold: bool,
    /// Milliseconds of device lock left at write time; `None`: not locked.
    pub lock_left_ms: Option<u64>,
    /// Reconnects since the record was created.
    pub reconnects: u64,
    /// Login attempts since the record was created.
    pub login_attempts: u64,
    /// Milliseconds between the last time the camera was online and the write.
    pub last_online_ago_ms: Option<u64>,
    /// The device session a live login holds (the ISAPI session cookie), so that a daemon
    /// killed before it could log out ends that session after its restart instead of
    /// leaving it to occupy one of the camera's session slots until the camera expires
    /// it. At most [`MAX_SESSION_LEN`] visible ASCII bytes; `None`: no session, or one
    /// that needs no logout.
    pub device_session: Option<String>,
}

impl Record {
    /// A fresh record for `id`: nothing scheduled, no history.
    pub fn fresh(id: &str) -> Self {
        Record {
            id: id.to_owned(),
            credential: None,
            attempts: 0,
            consecutive_failures: 0,
            next_due_ms: None,
            last_error: None,
            auth_hold: false,
            lock_left_ms: None,
            reconnects: 0,
            login_attempts: 0,
            last_online_ago_ms: None,
            device_session: None,
        }
    }
}

/// A decoded state file, whatever version it was read from, in the current form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateFile {
    /// The format version the bytes had (1, 2 or 3).
    pub version: u8,
    /// Wall clock when the file was written, Unix milliseconds.
    pub written_at_ms: u64,
    /// The per-file salt of the credential fingerprints (all zero for a v1 file).
    pub salt: [u8; 16],
    /// The cameras, sorted by id.
    pub records: Vec<Record>,
}

/// Why bytes are not a valid state file, or why a state cannot be encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// Zero bytes.
    Empty,
    /// Fewer bytes than a header and a CRC, or the data ends before the last record.
    Truncated {
        /// Bytes present.
        len: usize,
    },
    /// The first bytes are not [`MAGIC`].
    BadMagic {
        /// Up to four bytes found instead.
        found: Vec<u8>,
    },
    /// A version byte this build does not know (a newer hikwatch wrote it, or damage).
    UnknownVersion {
        /// The version byte.
        version: u8,
    },
    /// The CRC does not match: the file was damaged.
    BadCrc {
        /// CRC stored in the last four bytes.
        stored: u32,
        /// CRC computed over the rest.
        computed: u32,
    },
    /// The file is larger than any file this build writes.
    TooLarge {
        /// Its length.
        len: u64,
    },
    /// The checksum is right but the payload does not decode.
    Malformed {
        /// postcard's reason.
        reason: postcard::Error,
    },
    /// Bytes left over between the payload and the CRC.
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// More than [`MAX_CAMERAS`] records.
    TooManyCameras {
        /// How many there are.
        count: usize,
    },
    /// A camera id is empty, longer than [`MAX_ID_LEN`], or has control characters.
    BadId {
        /// The id, shortened and escaped for display.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two records for the same camera.
    DuplicateId {
        /// The id.
        id: String,
    },
    /// A remembered device session is longer than [`MAX_SESSION_LEN`] or has bytes that
    /// cannot go into an HTTP header (it would be sent to the camera as one).
    BadSession {
        /// The camera id.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::Empty => write!(f, "the file is empty"),
            FormatError::Truncated { len } => {
                write!(f, "the file is truncated ({len} bytes, data ends early)")
            }
            FormatError::BadMagic { found } => write!(
                f,
                "not a hikwatch state file (starts with {:02x?}, expected \"HKWS\")",
                found
            ),
            FormatError::UnknownVersion { version } => write!(
                f,
                "unknown format version {version} (this build reads {VERSION_1} to \
                 {CURRENT_VERSION}; written by a newer hikwatch?)"
            ),
            FormatError::BadCrc { stored, computed } => write!(
                f,
                "bad CRC (stored {stored:#010x}, computed {computed:#010x}): the file is damaged"
            ),
            FormatError::TooLarge { len } => write!(
                f,
                "the file is too large ({len} bytes, at most {MAX_FILE_LEN} expected)"
            ),
            FormatError::Malformed { reason } => {
                write!(
                    f,
                    "the checksum is right but the records do not decode: {reason}"
                )
            }
            FormatError::TrailingBytes { count } => {
                write!(f, "{count} unexpected bytes after the last record")
            }
            FormatError::TooManyCameras { count } => {
                crate::CameraLimitExceeded { count: *count }.fmt(f)
            }
            FormatError::BadId { id, reason } => write!(f, "camera id {id:?}: {reason}"),
            FormatError::DuplicateId { id } => write!(f, "camera id {id:?} appears twice"),
            FormatError::BadSession { id, reason } => {
                write!(f, "camera {id:?}: device_session: {reason}")
            }
        }
    }
}

impl std::error::Error for FormatError {}

/// Checks a camera id against the file's rules; the reason when it breaks one.
pub fn check_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() {
        Err("empty")
    } else if id.len() > MAX_ID_LEN {
        Err("longer than 64 bytes")
    } else if id.chars().any(char::is_control) {
        Err("contains control characters")
    } else {
        Ok(())
    }
}

/// `id`, cut to a displayable length (error messages quote it).
pub(crate) fn short_id(id: &str) -> String {
    id.chars().take(MAX_ID_LEN + 8).collect()
}

fn check_records(records: &[Record]) -> Result<(), FormatError> {
    if records.len() > MAX_CAMERAS {
        return Err(FormatError::TooManyCameras {
            count: records.len(),
        });
    }
    let mut seen = std::collections::BTreeSet::new();
    for r in records {
        check_id(&r.id).map_err(|reason| FormatError::BadId {
            id: short_id(&r.id),
            reason,
        })?;
        if !seen.insert(r.id.as_str()) {
            return Err(FormatError::DuplicateId { id: r.id.clone() });
        }
        if let Some(session) = &r.device_session {
            check_session(session).map_err(|reason| FormatError::BadSession {
                id: short_id(&r.id),
                reason,
            })?;
        }
    }
    Ok(())
}

/// Checks a device session against the file's rules; the reason when it breaks one. The
/// session goes back to the camera in a `Cookie` header, so a damaged or planted file must
/// not be able to put a line break (a header of its own) or anything but visible ASCII
/// there.
pub fn check_session(session: &str) -> Result<(), &'static str> {
    if session.is_empty() {
        Err("empty")
    } else if session.len() > MAX_SESSION_LEN {
        Err("longer than 128 bytes")
    } else if !session.bytes().all(|b| b.is_ascii_graphic()) {
        Err("has bytes other than visible ASCII")
    } else {
        Ok(())
    }
}

/// The v3 payload as written (borrows the records).
#[derive(Serialize)]
struct PayloadV3Ref<'a> {
    written_at_ms: u64,
    salt: [u8; 16],
    records: &'a [Record],
}

/// The v3 payload as read.
#[derive(Deserialize)]
struct PayloadV3 {
    written_at_ms: u64,
    salt: [u8; 16],
    records: Vec<Record>,
}

/// A v2 record: a v3 [`Record`] without `device_session`.
#[derive(Deserialize)]
struct RecordV2 {
    id: String,
    credential: Option<u64>,
    attempts: u32,
    consecutive_failures: u32,
    next_due_ms: Option<u64>,
    last_error: Option<StoredError>,
    auth_hold: bool,
    lock_left_ms: Option<u64>,
    reconnects: u64,
    login_attempts: u64,
    last_online_ago_ms: Option<u64>,
}

/// The v2 payload as read.
#[derive(Deserialize)]
struct PayloadV2 {
    written_at_ms: u64,
    salt: [u8; 16],
    records: Vec<RecordV2>,
}

/// The v1 error class: no payloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
enum ClassV1 {
    Network,
    Timeout,
    Auth,
    Locked,
    Resource,
    Unsupported,
    Fatal,
    Unknown,
}

#[derive(Deserialize)]
struct LastErrorV1 {
    class: ClassV1,
    code: u32,
}

#[derive(Deserialize)]
struct RecordV1 {
    id: String,
    attempts: u32,
    consecutive_failures: u32,
    next_due_s: Option<u32>,
    last_error: Option<LastErrorV1>,
    auth_hold: bool,
    lock_left_s: Option<u32>,
    reconnects: u32,
    login_attempts: u32,
}

#[derive(Deserialize)]
struct PayloadV1 {
    written_at_s: u64,
    records: Vec<RecordV1>,
}

/// Encodes a state as a current-version file (header, postcard payload, CRC-32).
///
/// `records` must be sorted by id for the output to be canonical (the store keeps them in
/// a `BTreeMap`); the encoder checks the bounds and id rules so that nothing is ever
/// written that [`decode`] would refuse.
///
/// # Errors
///
/// [`FormatError::TooManyCameras`], [`FormatError::BadId`] or [`FormatError::DuplicateId`]
/// when the records break the bounds.
pub fn encode(
    written_at_ms: u64,
    salt: &[u8; 16],
    records: &[Record],
) -> Result<Vec<u8>, FormatError> {
    check_records(records)?;
    let mut out = Vec::with_capacity(HEADER_LEN + 32 + records.len() * 48 + CRC_LEN);
    out.extend_from_slice(&MAGIC);
    out.push(CURRENT_VERSION);
    let mut digest = CRC32.digest();
    digest.update(&out);
    let payload = PayloadV3Ref {
        written_at_ms,
        salt: *salt,
        records,
    };
    let flavor = postcard::ser_flavors::crc::CrcModifier::new(
        postcard::ser_flavors::ExtendFlavor::new(out),
        digest,
    );
    postcard::serialize_with_flavor(&payload, flavor)
        .map_err(|reason| FormatError::Malformed { reason })
}

/// Decodes a state file of any supported version.
///
/// Checks, in order: empty, magic, version, length, CRC, payload, trailing bytes, bounds.
///
/// # Errors
///
/// A [`FormatError`] naming the first problem found. Never panics, whatever the bytes.
pub fn decode(bytes: &[u8]) -> Result<StateFile, FormatError> {
    if bytes.is_empty() {
        return Err(FormatError::Empty);
    }
    let magic_len = bytes.len().min(MAGIC.len());
    if bytes[..magic_len] != MAGIC[..magic_len] {
        return Err(FormatError::BadMagic {
            found: bytes[..magic_len].to_vec(),
        });
    }
    if bytes.len() < HEADER_LEN + CRC_LEN {
        return Err(FormatError::Truncated { len: bytes.len() });
    }
    let version = bytes[MAGIC.len()];
    if !(VERSION_1..=CURRENT_VERSION).contains(&version) {
        return Err(FormatError::UnknownVersion { version });
    }
    if bytes.len() > MAX_FILE_LEN {
        return Err(FormatError::TooLarge {
            len: bytes.len() as u64,
        });
    }
    let (body, trailer) = bytes.split_at(bytes.len() - CRC_LEN);
    let stored = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let computed = CRC32.checksum(body);
    if stored != computed {
        // Tell a cut-off file from a damaged one: read the four "CRC" bytes as data too; if
        // the payload still runs out, or ends less than a CRC before the end, the file was
        // cut short.
        let all = &bytes[HEADER_LEN..];
        let cut = match version {
            VERSION_1 => looks_cut::<PayloadV1>(all),
            VERSION_2 => looks_cut::<PayloadV2>(all),
            _ => looks_cut::<PayloadV3>(all),
        };
        if cut {
            return Err(FormatError::Truncated { len: bytes.len() });
        }
        return Err(FormatError::BadCrc { stored, computed });
    }
    let payload = &body[HEADER_LEN..];
    let file = match version {
        VERSION_1 => migrate_v1(take_all::<PayloadV1>(payload)?),
        VERSION_2 => migrate_v2(take_all::<PayloadV2>(payload)?),
        _ => {
            let p = take_all::<PayloadV3>(payload)?;
            StateFile {
                version: CURRENT_VERSION,
                written_at_ms: p.written_at_ms,
                salt: p.salt,
                records: p.records,
            }
        }
    };
    check_records(&file.records)?;
    Ok(file)
}

fn looks_cut<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> bool {
    match postcard::take_from_bytes::<T>(bytes) {
        Err(postcard::Error::DeserializeUnexpectedEnd) => true,
        Ok((_, rest)) => rest.len() < CRC_LEN,
        Err(_) => false,
    }
}

fn take_all<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, FormatError> {
    match postcard::take_from_bytes::<T>(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(FormatError::TrailingBytes { count: rest.len() }),
        Err(reason) => Err(FormatError::Malformed { reason }),
    }
}

/// Migrates a version-1 payload to the current form.
///
/// - seconds become milliseconds, `u32` counters widen to `u64`;
/// - the payload-free v1 classes become the v2 ones with "not reported" payloads
///   (`Auth { retries_left: None }`, `Locked { secs_left: None }`, `Unknown(code)`);
/// - no credential fingerprint (`credential: None`): on restore the hold is kept and the
///   current fingerprint adopted, since v1 cannot tell whether the password changed;
/// - no salt (all zero; the store makes a new one on its next write) and no last-online
///   time.
fn migrate_v1(p: PayloadV1) -> StateFile {
    let records = p
        .records
        .into_iter()
        .map(|r| Record {
            id: r.id,
            credential: None,
            attempts: r.attempts,
            consecutive_failures: r.consecutive_failures,
            next_due_ms: r.next_due_s.map(|s| u64::from(s) * 1000),
            last_error: r.last_error.map(|e| StoredError {
                class: match e.class {
                    ClassV1::Network => StoredClass::Network,
                    ClassV1::Timeout => StoredClass::Timeout,
                    ClassV1::Auth => StoredClass::Auth { retries_left: None },
                    ClassV1::Locked => StoredClass::Locked { secs_left: None },
                    ClassV1::Resource => StoredClass::Resource,
                    ClassV1::Unsupported => StoredClass::Unsupported,
                    ClassV1::Fatal => StoredClass::Fatal,
                    ClassV1::Unknown => StoredClass::Unknown(e.code),
                },
                code: e.code,
            }),
            auth_hold: r.auth_hold,
            lock_left_ms: r.lock_left_s.map(|s| u64::from(s) * 1000),
            reconnects: u64::from(r.reconnects),
            login_attempts: u64::from(r.login_attempts),
            last_online_ago_ms: None,
            device_session: None,
        })
        .collect();
    StateFile {
        version: VERSION_1,
        written_at_ms: p.written_at_s.saturating_mul(1000),
        salt: [0; 16],
        records,
    }
}

/// Migrates a version-2 payload: the same records, with no remembered device session (a
/// v2 build never remembered one).
fn migrate_v2(p: PayloadV2) -> StateFile {
    let records = p
        .records
        .into_iter()
        .map(|r| Record {
            id: r.id,
            credential: r.credential,
            attempts: r.attempts,
            consecutive_failures: r.consecutive_failures,
            next_due_ms: r.next_due_ms,
            last_error: r.last_error,
            auth_hold: r.auth_hold,
            lock_left_ms: r.lock_left_ms,
            reconnects: r.reconnects,
            login_attempts: r.login_attempts,
            last_online_ago_ms: r.last_online_ago_ms,
            device_session: None,
        })
        .collect();
    StateFile {
        version: VERSION_2,
        written_at_ms: p.written_at_ms,
        salt: p.salt,
        records,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Record> {
        vec![
            Record {
                id: "cam-1".into(),
                credential: Some(0x0102_0304_0506_0708),
                attempts: 3,
                consecutive_failures: 2,
                next_due_ms: Some(252_000),
                last_error: Some(StoredError::new(
                    ErrorClass::Locked {
                        secs_left: Some(1742),
                    },
                    153,
                )),
                auth_hold: false,
                lock_left_ms: Some(1_620_000),
                reconnects: 7,
                login_attempts: 40,
                last_online_ago_ms: Some(3_600_000),
                device_session: Some("WebSession_1a=2b".into()),
            },
            Record::fresh("gate"),
        ]
    }

    /// Pins every byte of a small current-version file. If this fails, the wire layout
    /// changed: that needs a new format version and a migration, not a new expected value.
    #[test]
    fn golden_bytes_v3() {
        let salt = [0xAA; 16];
        let bytes = encode(1_735_689_600_000, &salt, &sample()).expect("encodes");
        #[rustfmt::skip]
        let expected: &[u8] = &[
            b'H', b'K', b'W', b'S', 3,                       // magic, version
            0x80, 0xF8, 0xA5, 0xF9, 0xC1, 0x32,              // written_at_ms 1735689600000
            0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA,  // salt
            0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA,
            2,                                               // 2 records
            5, b'c', b'a', b'm', b'-', b'1',                 // id
            1, 0x88, 0x8E, 0x98, 0xA8, 0xC0, 0xE0, 0x80, 0x81, 0x01, // Some(fingerprint)
            3,                                               // attempts
            2,                                               // consecutive_failures
            1, 0xE0, 0xB0, 0x0F,                             // Some(252000 ms)
            1, 3, 1, 0xCE, 0x0D, 0x99, 0x01,                 // Some(Locked{Some(1742)}), 153
            0,                                               // auth_hold false
            1, 0xA0, 0xF0, 0x62,                             // Some(1620000 ms)
            7,                                               // reconnects
            40,                                              // login_attempts
            1, 0x80, 0xDD, 0xDB, 0x01,                       // Some(3600000 ms)
            1, 16, b'W', b'e', b'b', b'S', b'e', b's', b's', b'i', // Some(device session)
            b'o', b'n', b'_', b'1', b'a', b'=', b'2', b'b',
            4, b'g', b'a', b't', b'e',                       // id
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,                 // all None / zero / false
            0x7E, 0x99, 0x93, 0x22,                          // CRC-32 LE
        ];
        assert_eq!(bytes, expected, "got {bytes:02x?}");
        let back = decode(&bytes).expect("decodes");
        assert_eq!(back.version, CURRENT_VERSION);
        assert_eq!(back.written_at_ms, 1_735_689_600_000);
        assert_eq!(back.salt, salt);
        assert_eq!(back.records, sample());
    }

    /// A version-2 file (the bytes a v2 build wrote, pinned when v2 was current) decodes
    /// and migrates with no remembered device session.
    #[test]
    fn golden_bytes_v2_migrates() {
        let salt = [0xAA; 16];
        #[rustfmt::skip]
        let v2: &[u8] = &[
            b'H', b'K', b'W', b'S', 2,                       // magic, version
            0x80, 0xF8, 0xA5, 0xF9, 0xC1, 0x32,              // written_at_ms 1735689600000
            0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA,  // salt
            0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA,
            2,                                               // 2 records
            5, b'c', b'a', b'm', b'-', b'1',                 // id
            1, 0x88, 0x8E, 0x98, 0xA8, 0xC0, 0xE0, 0x80, 0x81, 0x01, // Some(fingerprint)
            3,                                               // attempts
            2,                                               // consecutive_failures
            1, 0xE0, 0xB0, 0x0F,                             // Some(252000 ms)
            1, 3, 1, 0xCE, 0x0D, 0x99, 0x01,                 // Some(Locked{Some(1742)}), 153
            0,                                               // auth_hold false
            1, 0xA0, 0xF0, 0x62,                             // Some(1620000 ms)
            7,                                               // reconnects
            40,                                              // login_attempts
            1, 0x80, 0xDD, 0xDB, 0x01,                       // Some(3600000 ms)
            4, b'g', b'a', b't', b'e',                       // id
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0,                    // all None / zero / false
            0x63, 0x41, 0x74, 0x2A,                          // CRC-32 LE
        ];
        let back = decode(v2).expect("decodes");
        assert_eq!(back.version, VERSION_2);
        assert_eq!(back.written_at_ms, 1_735_689_600_000);
        assert_eq!(back.salt, salt);
        let mut expected = sample();
        expected[0].device_session = None;
        assert_eq!(back.records, expected);
        // Re-encoding writes the current version.
        let again = encode(back.written_at_ms, &back.salt, &back.records).expect("encodes");
        assert_eq!(again[4], CURRENT_VERSION);
    }

    /// A version-1 file, built by hand from the v1 layout in the module docs (not by any
    /// encoder in this crate), decodes and migrates.
    #[test]
    fn golden_bytes_v1_migrates() {
        #[rustfmt::skip]
        let v1: &[u8] = &[
            b'H', b'K', b'W', b'S', 1,          // magic, version 1
            0x80, 0x8B, 0xD2, 0xBB, 0x06,       // written_at_s 1735689600
            2,                                  // 2 records
            5, b'c', b'a', b'm', b'-', b'1',    // id
            3, 2,                               // attempts, consecutive_failures
            1, 0xFC, 0x01,                      // Some(252 s)
            1, 2, 1,                            // Some(Auth), code 1
            1,                                  // auth_hold
            1, 0x94, 0x0D,                      // Some(1684 s) lock
            7, 40,                              // reconnects, login_attempts
            4, b'g', b'a', b't', b'e',
            0, 0, 0,                            // attempts, failures, next_due None
            1, 7, 0x99, 0x01,                   // Some(Unknown), code 153
            0, 0, 0, 0,                         // hold, lock, reconnects, logins
            0xBC, 0x39, 0x00, 0xFF,             // CRC-32 LE
        ];
        let f = decode(v1).expect("v1 decodes");
        assert_eq!(f.version, VERSION_1);
        assert_eq!(f.written_at_ms, 1_735_689_600_000);
        assert_eq!(f.salt, [0; 16]);
        let cam = &f.records[0];
        assert_eq!(cam.id, "cam-1");
        assert_eq!(cam.credential, None);
        assert_eq!((cam.attempts, cam.consecutive_failures), (3, 2));
        assert_eq!(cam.next_due_ms, Some(252_000));
        assert_eq!(
            cam.last_error,
            Some(StoredError {
                class: StoredClass::Auth { retries_left: None },
                code: 1
            })
        );
        assert!(cam.auth_hold);
        assert_eq!(cam.lock_left_ms, Some(1_684_000));
        assert_eq!((cam.reconnects, cam.login_attempts), (7, 40));
        assert_eq!(cam.last_online_ago_ms, None);
        let gate = &f.records[1];
        assert_eq!(gate.id, "gate");
        assert_eq!(
            gate.last_error,
            Some(StoredError {
                class: StoredClass::Unknown(153),
                code: 153
            })
        );
        // Re-encoding writes the current version.
        let again = encode(f.written_at_ms, &f.salt, &f.records).expect("encodes");
        assert_eq!(again[4], CURRENT_VERSION);
        assert_eq!(decode(&again).expect("decodes").records, f.records);
    }

    #[test]
    fn class_conversions_are_lossless() {
        let all = [
            ErrorClass::Network,
            ErrorClass::Timeout,
            ErrorClass::Auth { retries_left: None },
            ErrorClass::Auth {
                retries_left: Some(3),
            },
            ErrorClass::Locked { secs_left: None },
            ErrorClass::Locked {
                secs_left: Some(1800),
            },
            ErrorClass::Resource,
            ErrorClass::Unsupported,
            ErrorClass::Fatal,
            ErrorClass::Unknown(9999),
        ];
        for c in all {
            let s = StoredClass::from(c);
            assert_eq!(ErrorClass::from(s), c);
            let e = StoredError { class: s, code: 1 };
            let mut buf = [0u8; 16];
            let bytes = postcard::to_slice(&e, &mut buf).expect("encodes");
            let back: StoredError = postcard::from_bytes(bytes).expect("decodes");
            assert_eq!(back, e);
        }
    }

    #[test]
    fn every_bad_kind_is_named() {
        let good = encode(1, &[0; 16], &sample()).expect("encodes");
        assert_eq!(decode(&[]), Err(FormatError::Empty));
        assert!(matches!(
            decode(b"HK"),
            Err(FormatError::Truncated { len: 2 })
        ));
        assert!(matches!(
            decode(b"HKWS\x02"),
            Err(FormatError::Truncated { len: 5 })
        ));
        assert!(matches!(
            decode(b"GIF89a.."),
            Err(FormatError::BadMagic { .. })
        ));
        let mut v9 = good.clone();
        v9[4] = 9;
        assert_eq!(decode(&v9), Err(FormatError::UnknownVersion { version: 9 }));
        let mut flipped = good.clone();
        flipped[30] ^= 0x10;
        assert!(matches!(decode(&flipped), Err(FormatError::BadCrc { .. })));
        for cut in [HEADER_LEN + CRC_LEN, good.len() / 2, good.len() - 1] {
            assert!(
                matches!(decode(&good[..cut]), Err(FormatError::Truncated { .. })),
                "cut at {cut}: {:?}",
                decode(&good[..cut])
            );
        }
        let big = vec![0u8; MAX_FILE_LEN + 1];
        let mut big = big;
        big[..5].copy_from_slice(b"HKWS\x02");
        assert!(matches!(decode(&big), Err(FormatError::TooLarge { .. })));
    }

    #[test]
    fn encoder_refuses_what_decoder_would_refuse() {
        let long = Record::fresh(&"x".repeat(MAX_ID_LEN + 1));
        assert!(matches!(
            encode(0, &[0; 16], &[long]),
            Err(FormatError::BadId { .. })
        ));
        assert!(matches!(
            encode(0, &[0; 16], &[Record::fresh("")]),
            Err(FormatError::BadId { .. })
        ));
        assert!(matches!(
            encode(0, &[0; 16], &[Record::fresh("a\nb")]),
            Err(FormatError::BadId { .. })
        ));
        assert!(matches!(
            encode(0, &[0; 16], &[Record::fresh("a"), Record::fresh("a")]),
            Err(FormatError::DuplicateId { .. })
        ));
        let many: Vec<Record> = (0..=MAX_CAMERAS)
            .map(|i| Record::fresh(&format!("c{i}")))
            .collect();
        assert!(matches!(
            encode(0, &[0; 16], &many),
            Err(FormatError::TooManyCameras { .. })
        ));
        for bad in ["", "a\r\nHost: x", "a b", &"x".repeat(MAX_SESSION_LEN + 1)] {
            let mut r = Record::fresh("cam");
            r.device_session = Some(bad.into());
            assert!(
                matches!(
                    encode(0, &[0; 16], &[r]),
                    Err(FormatError::BadSession { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn worst_case_file_fits_the_bound() {
        let worst = |i: usize| Record {
            id: format!("{i:0>64}"),
            credential: Some(u64::MAX),
            attempts: u32::MAX,
            consecutive_failures: u32::MAX,
            next_due_ms: Some(u64::MAX),
            last_error: Some(StoredError {
                class: StoredClass::Locked {
                    secs_left: Some(u32::MAX),
                },
                code: u32::MAX,
            }),
            auth_hold: true,
            lock_left_ms: Some(u64::MAX),
            reconnects: u64::MAX,
            login_attempts: u64::MAX,
            last_online_ago_ms: Some(u64::MAX),
            device_session: Some("~".repeat(MAX_SESSION_LEN)),
        };
        let one = encode(u64::MAX, &[0xFF; 16], &[worst(0)]).expect("encodes");
        let empty = encode(u64::MAX, &[0xFF; 16], &[]).expect("encodes");
        assert_eq!(one.len() - empty.len(), MAX_RECORD_LEN);
        let all: Vec<Record> = (0..MAX_CAMERAS).map(worst).collect();
        let bytes = encode(u64::MAX, &[0xFF; 16], &all).expect("encodes");
        assert!(
            bytes.len() <= MAX_FILE_LEN,
            "{} > {MAX_FILE_LEN}",
            bytes.len()
        );
        assert_eq!(decode(&bytes).expect("decodes").records.len(), MAX_CAMERAS);
    }
}
