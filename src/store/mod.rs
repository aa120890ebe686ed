//! Per-camera backoff state on flash: survives restarts, written rarely and atomically.
//!
//! Edge gateways lose power and get restarted by their watchdog. When hikwatch comes back
//! it continues where it was: a camera deep in backoff is not hammered again, a camera the
//! device locked is left alone until the lock ends, and a restart loop does not become a
//! login storm.
//!
//! # Pieces
//!
//! - [`mod@format`]: the bytes (magic, version, postcard records, CRC-32) and the v1 migration.
//! - [`clock`]: the pure wall-clock rule that decides how much of a stored wait passed
//!   while the daemon was down.
//! - [`Store`]: the in-memory mirror the runtime updates, with coalesced, atomic writes.
//! - `hikwatch state show FILE [--json]`: [`show`].
//!
//! # Time
//!
//! The API speaks monotonic time: every call takes `now: Instant`, and a [`CameraState`]
//! holds *remaining durations* relative to that `now` (`next_due_in`, `lock_left`) or
//! durations into the past (`last_online_ago`). Internally the store keeps absolute
//! monotonic points, so an unchanged state passed again at a later `now` is recognised as
//! unchanged. On write the durations are stored relative to the wall clock of the write;
//! on load the rule in [`clock`] takes off the time that passed, or nothing when the clock
//! cannot be trusted (1970 boot, clock behind the file, absurd dates). A lock is never
//! shortened by a clock jump.
//!
//! # Start-up contract (for the supervisor)
//!
//! [`Store::open`] takes the configured cameras and returns one [`StartState`] per camera,
//! in the same order:
//!
//! - a camera in the file keeps its counters, backoff, auth-hold and lock; one that is
//!   not in the file starts fresh; cameras in the file but not configured are dropped;
//! - the auth-hold is released (and an auth backoff reset) when the camera's credentials
//!   changed since the file was written; the device lock is kept, because the device locks
//!   the client IP whatever the password;
//! - **the first attempts after a restart are spread out**: every camera's `next_due_in` is
//!   `Some(max(restored due, lock_left, jitter))`, where the jitters are stratified over
//!   [`StoreOptions::start_spread`]: the cameras are shuffled and the k-th of n gets a
//!   random point in `[k, k+1) * spread / n`. So no two cameras share a slot, at most
//!   `ceil(n * w / spread)` cameras start in any window of length `w`, and a camera that
//!   was due long ago still waits for its slot. The supervisor must not attempt a camera
//!   before its `next_due_in` (nor while `auth_hold` is set).
//!
//! # Wear
//!
//! [`Store::update`] only marks the store dirty when the state really changed.
//! [`Store::maybe_flush`] writes at most once per [`StoreOptions::flush_interval`]
//! (default 30 s), and skips the write when the file already on flash describes the same
//! state byte for byte. [`Store::flush`] (at shutdown) writes whatever is pending. A new
//! process may write once right away, so that a crash loop still records each failure;
//! systemd's restart limits bound that. [`Store::metrics`] counts writes and bytes.
//!
//! # Credentials
//!
//! The file never holds a password. Each record carries a 64-bit salted fingerprint: the
//! first 8 bytes of SHA-256 over a per-file random salt, the user name and the password.
//! It is only compared for equality at start-up. (The plaintext password is in the config
//! on the same flash anyway; the fingerprint adds no way in that the config does not.)

mod cli;
pub mod clock;
pub mod format;
pub mod fsio;

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

pub use cli::show;
pub use clock::Elapsed;
pub use format::{MAX_CAMERAS, MAX_ID_LEN, StoredClass, StoredError};
pub use fsio::{LoadCause, LoadError, WriteError};

use format::{FormatError, Record};

/// Default minimum time between two writes.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(30);
/// Smallest accepted flush interval; a smaller configured value is raised to this.
pub const MIN_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Default window over which the first attempts after a start are spread (peer projects
/// all retry in lockstep after a gateway reboot; 30 s spreads a 30-camera site to one
/// login per second).
pub const DEFAULT_START_SPREAD: Duration = Duration::from_secs(30);
/// Longest wait a restored record may carry. The supervisor's backoff caps at minutes and
/// device locks last up to an hour; anything longer comes from a bug or a hand-edited
/// file, and must not park a camera for days.
pub const MAX_RESTORED_WAIT: Duration = Duration::from_secs(24 * 3600);

/// How the store behaves.
#[derive(Clone, Copy, Debug)]
pub struct StoreOptions {
    /// Minimum time between two writes of [`Store::maybe_flush`]; at least
    /// [`MIN_FLUSH_INTERVAL`].
    pub flush_interval: Duration,
    /// Window over which the first attempts after a start are spread.
    pub start_spread: Duration,
    /// Seed of the start jitter; `None` for a random one. Tests pin it.
    pub jitter_seed: Option<u64>,
    /// The wall clock; tests replace it. Only used for the file's write time and the
    /// name of a set-aside file; all scheduling uses the `now: Instant` arguments.
    pub wall_clock: fn() -> SystemTime,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            start_spread: DEFAULT_START_SPREAD,
            jitter_seed: None,
            wall_clock: SystemTime::now,
        }
    }
}

/// What the store persists about one camera, with times relative to a `now: Instant`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CameraState {
    /// Attempts in the current backoff run.
    pub attempts: u32,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// Time until the next attempt is due; `None`: not scheduled (connected or idle).
    /// `Some(ZERO)`: due now.
    pub next_due_in: Option<Duration>,
    /// The last failure: class and vendor code.
    pub last_error: Option<StoredError>,
    /// Login attempts are stopped until the credentials change.
    pub auth_hold: bool,
    /// Time until the device lifts its lock; `None`: not locked.
    pub lock_left: Option<Duration>,
    /// Reconnects since the record was created.
    pub reconnects: u64,
    /// Login attempts since the record was created.
    pub login_attempts: u64,
    /// Time since the camera was last online; `None`: never seen online.
    pub last_online_ago: Option<Duration>,
}

/// A configured camera, as [`Store::open`] needs it. The password is only hashed (with
/// the file's salt), never stored.
#[derive(Clone, Copy)]
pub struct CameraKey<'a> {
    /// The camera id from the config (at most [`MAX_ID_LEN`] bytes).
    pub id: &'a str,
    /// Login user name.
    pub user: &'a str,
    /// Login password.
    pub password: &'a [u8],
}

impl fmt::Debug for CameraKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CameraKey")
            .field("id", &self.id)
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// Where a camera's start state came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Not in the file (first start, new camera, or the file was bad): fresh state.
    New,
    /// Restored from the file.
    Restored,
    /// Restored, but the credentials changed: the auth-hold (and an auth backoff) was
    /// released.
    CredentialsChanged,
    /// The camera cannot be persisted (bad id, or more than [`MAX_CAMERAS`]); it runs with
    /// a fresh state that is not saved. A [`StoreWarning`] says why.
    Untracked,
}

/// One configured camera's state at start-up. See the module docs for the contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartState {
    /// The camera id.
    pub id: String,
    /// The state to start from, relative to the `now` given to [`Store::open`];
    /// `next_due_in` is always `Some` (the start spread).
    pub state: CameraState,
    /// Where it came from.
    pub origin: Origin,
}

/// What [`Store::open`] found.
#[derive(Debug)]
pub struct LoadedState {
    /// One entry per configured camera, in the order given.
    pub cameras: Vec<StartState>,
    /// Ids that were in the file but are not configured any more (dropped).
    pub dropped: Vec<String>,
    /// Problems worth a warning in the log. A missing file (first start) is not one.
    pub warnings: Vec<StoreWarning>,
    /// How the wall clock was judged, when a file was loaded (worth an info line).
    pub clock: Option<Elapsed>,
    /// Format version of the loaded file, when one was loaded.
    pub from_version: Option<u8>,
}

/// A problem found at start-up. None of them stops the daemon.
#[derive(Debug)]
pub enum StoreWarning {
    /// The state file could not be used; the daemon starts with defaults.
    BadFile {
        /// What was wrong, naming the file.
        error: LoadError,
        /// Where the bad file was moved, or why moving it failed.
        set_aside: Result<PathBuf, std::io::Error>,
    },
    /// A restored wait was longer than [`MAX_RESTORED_WAIT`] and was cut to it.
    Clamped {
        /// The camera.
        id: String,
        /// "next attempt" or "lock".
        what: &'static str,
        /// The wait the file had.
        was: Duration,
    },
    /// A configured camera cannot be persisted.
    Untracked {
        /// The camera id (shortened if absurdly long).
        id: String,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for StoreWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreWarning::BadFile { error, set_aside } => {
                write!(f, "{error}; ")?;
                match set_aside {
                    Ok(to) => write!(f, "moved it aside to {}", to.display())?,
                    Err(e) => write!(f, "could not move it aside ({e})")?,
                }
                write!(f, "; starting with fresh state for every camera")
            }
            StoreWarning::Clamped { id, what, was } => write!(
                f,
                "camera {id:?}: stored {what} wait of {} cut to {}",
                clock::human(*was),
                clock::human(MAX_RESTORED_WAIT)
            ),
            StoreWarning::Untracked { id, reason } => {
                write!(f, "camera {id:?}: its state will not be saved: {reason}")
            }
        }
    }
}

/// Errors of the store's run-time calls.
#[derive(Debug)]
pub enum StoreError {
    /// Writing the file failed (the step, path and OS error). The state stays dirty and is
    /// retried after the next flush interval.
    Write(WriteError),
    /// The state could not be encoded (bounds; should not happen through this API).
    Encode(FormatError),
    /// A camera id the file cannot hold.
    InvalidId {
        /// The id (shortened if absurdly long).
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Already [`MAX_CAMERAS`] cameras.
    TooManyCameras(crate::CameraLimitExceeded),
    /// A device session the file cannot hold (too long, or bytes that cannot go into an
    /// HTTP header); it is not remembered.
    InvalidSession {
        /// The camera id.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Write(e) => write!(f, "saving state: {e}"),
            StoreError::Encode(e) => write!(f, "encoding state: {e}"),
            StoreError::InvalidId { id, reason } => write!(f, "camera id {id:?}: {reason}"),
            StoreError::TooManyCameras(e) => write!(f, "state not saved: {e}"),
            StoreError::InvalidSession { id, reason } => {
                write!(f, "camera {id:?}: device session not remembered: {reason}")
            }
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Write(e) => Some(e),
            StoreError::Encode(e) => Some(e),
            StoreError::InvalidId { .. }
            | StoreError::TooManyCameras(_)
            | StoreError::InvalidSession { .. } => None,
        }
    }
}

/// Write counters, for the status page and metrics export.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreMetrics {
    /// Files written (successful atomic replaces).
    pub writes: u64,
    /// Bytes written by those writes.
    pub bytes_written: u64,
    /// Flushes that found the file on flash already up to date and wrote nothing.
    pub skipped_unchanged: u64,
    /// Failed writes.
    pub write_errors: u64,
    /// The last write error, if the last write failed.
    pub last_error: Option<String>,
    /// Size of the state file as last read or written.
    pub file_bytes: u64,
}

/// One camera in memory. Times are nanoseconds on the store's monotonic axis (0 = the
/// `Instant` the store was opened), so an unchanged state given at a later `now`
/// compares equal.
#[derive(Clone, Debug, PartialEq, Eq)]
struct CameraEntry {
    credential: Option<u64>,
    attempts: u32,
    consecutive_failures: u32,
    due: Option<u64>,
    last_error: Option<StoredError>,
    auth_hold: bool,
    lock_until: Option<u64>,
    reconnects: u64,
    login_attempts: u64,
    /// May be negative: online before the store was opened.
    last_online: Option<i64>,
    /// The device session of the live login (see [`Store::set_device_session`]).
    device_session: Option<String>,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Milliseconds, rounded up (a stored wait is never shorter than the real one).
fn ceil_ms(ns: u64) -> u64 {
    ns.div_ceil(1_000_000)
}

impl CameraEntry {
    fn fresh(credential: Option<u64>) -> Self {
        CameraEntry {
            credential,
            attempts: 0,
            consecutive_failures: 0,
            due: None,
            last_error: None,
            auth_hold: false,
            lock_until: None,
            reconnects: 0,
            login_attempts: 0,
            last_online: None,
            device_session: None,
        }
    }

    fn set_state(&mut self, st: &CameraState, now: u64) {
        self.attempts = st.attempts;
        self.consecutive_failures = st.consecutive_failures;
        self.due = st.next_due_in.map(|d| now.saturating_add(nanos(d)));
        self.last_error = st.last_error;
        self.auth_hold = st.auth_hold;
        self.lock_until = st
            .lock_left
            .filter(|d| !d.is_zero())
            .map(|d| now.saturating_add(nanos(d)));
        self.reconnects = st.reconnects;
        self.login_attempts = st.login_attempts;
        self.last_online = st.last_online_ago.map(|ago| {
            let t = i128::from(now) - ago.as_nanos() as i128;
            t.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
        });
    }

    fn state(&self, now: u64) -> CameraState {
        CameraState {
            attempts: self.attempts,
            consecutive_failures: self.consecutive_failures,
            next_due_in: self
                .due
                .map(|t| Duration::from_nanos(t.saturating_sub(now))),
            last_error: self.last_error,
            auth_hold: self.auth_hold,
            lock_left: self
                .lock_until
                .filter(|&t| t > now)
                .map(|t| Duration::from_nanos(t - now)),
            reconnects: self.reconnects,
            login_attempts: self.login_attempts,
            last_online_ago: self.last_online.map(|t| {
                let ago = (i128::from(now) - i128::from(t)).max(0);
                Duration::from_nanos(u64::try_from(ago).unwrap_or(u64::MAX))
            }),
        }
    }

    /// The record as written at `reference` on the monotonic axis.
    fn record(&self, id: &str, reference: u64) -> Record {
        Record {
            id: id.to_owned(),
            credential: self.credential,
            attempts: self.attempts,
            consecutive_failures: self.consecutive_failures,
            next_due_ms: self.due.map(|t| ceil_ms(t.saturating_sub(reference))),
            last_error: self.last_error,
            auth_hold: self.auth_hold,
            lock_left_ms: self
                .lock_until
                .filter(|&t| t > reference)
                .map(|t| ceil_ms(t - reference)),
            reconnects: self.reconnects,
            login_attempts: self.login_attempts,
            last_online_ago_ms: self.last_online.map(|t| {
                let ago = (i128::from(reference) - i128::from(t)).max(0) / 1_000_000;
                u64::try_from(ago).unwrap_or(u64::MAX)
            }),
            device_session: self.device_session.clone(),
        }
    }
}

/// Restores a record at monotonic `now` given the time judged to have passed since the
/// write. Waits longer than [`MAX_RESTORED_WAIT`] are cut (and reported).
fn restore(
    rec: &Record,
    elapsed: Duration,
    now: u64,
    warnings: &mut Vec<StoreWarning>,
) -> CameraEntry {
    let mut wait = |what: &'static str, ms: u64| {
        let left = Duration::from_millis(ms).saturating_sub(elapsed);
        if left > MAX_RESTORED_WAIT {
            warnings.push(StoreWarning::Clamped {
                id: rec.id.clone(),
                what,
                was: left,
            });
            MAX_RESTORED_WAIT
        } else {
            left
        }
    };
    let due = rec
        .next_due_ms
        .map(|ms| now.saturating_add(nanos(wait("next attempt", ms))));
    let lock_until = rec
        .lock_left_ms
        .map(|ms| wait("lock", ms))
        .filter(|d| !d.is_zero())
        .map(|d| now.saturating_add(nanos(d)));
    let last_online = rec.last_online_ago_ms.map(|ms| {
        let ago = nanos(Duration::from_millis(ms).saturating_add(elapsed));
        (i128::from(now) - i128::from(ago)).max(i128::from(i64::MIN)) as i64
    });
    CameraEntry {
        credential: rec.credential,
        attempts: rec.attempts,
        consecutive_failures: rec.consecutive_failures,
        due,
        last_error: rec.last_error,
        auth_hold: rec.auth_hold,
        lock_until,
        reconnects: rec.reconnects,
        login_attempts: rec.login_attempts,
        last_online,
        device_session: rec.device_session.clone(),
    }
}

/// The salted credential fingerprint (see the module docs).
fn fingerprint(salt: &[u8; 16], user: &str, password: &[u8]) -> u64 {
    let mut h = Sha256::new();
    h.update(b"hikwatch credential v1\0");
    h.update(salt);
    h.update((user.len() as u64).to_le_bytes());
    h.update(user.as_bytes());
    h.update(password);
    let out = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&out[..8]);
    u64::from_le_bytes(first)
}

/// A fresh per-file salt from the kernel's random pool (fastrand if that is unreadable;
/// the salt only has to differ between files, not be secret).
fn new_salt() -> [u8; 16] {
    let mut salt = [0u8; 16];
    let from_kernel = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut salt))
        .is_ok();
    if !from_kernel {
        salt = fastrand::u128(..).to_le_bytes();
    }
    salt
}

/// The file as we last wrote it, so an unchanged state is not written again.
#[derive(Debug)]
struct OnDisk {
    bytes: Vec<u8>,
    /// Monotonic point (ns on the store's axis) the file's durations are relative to.
    reference: u64,
    written_at_ms: u64,
}

/// The persisted per-camera state and its write policy. See the module docs.
///
/// Not thread-safe by itself (`&mut self` everywhere); the runtime owns it. The flush
/// calls do blocking file I/O (an fsync), at most once per flush interval.
#[derive(Debug)]
pub struct Store {
    /// The state file.
    path: PathBuf,
    opts: StoreOptions,
    /// Zero of the monotonic axis the entries use.
    base: Instant,
    /// Salt of the credential fingerprints in this file.
    salt: [u8; 16],
    /// The cameras, sorted by id so the encoding is canonical.
    entries: BTreeMap<String, CameraEntry>,
    /// Something changed since the last write (or load).
    dirty: bool,
    /// When the last write was attempted (successful or not): the flush interval runs
    /// from here.
    last_write: Option<Instant>,
    /// What is on flash, when we wrote it.
    on_disk: Option<OnDisk>,
    metrics: StoreMetrics,
}

impl Store {
    /// Opens the state file at `path` for the configured `cameras`. Never fails: a missing
    /// file is a first start; a bad one is set aside (`<name>.corrupt-<unix time>`), reported
    /// in [`LoadedState::warnings`], and every camera starts fresh. Reads at most
    /// [`format::MAX_FILE_LEN`] bytes and never blocks on a FIFO.
    ///
    /// Returns the store (holding the restored records, not the start jitter) and the
    /// start states; see the module docs for the contract.
    pub fn open(
        path: impl Into<PathBuf>,
        opts: StoreOptions,
        cameras: &[CameraKey<'_>],
        now: Instant,
    ) -> (Store, LoadedState) {
        let path = path.into();
        let mut opts = opts;
        opts.flush_interval = opts.flush_interval.max(MIN_FLUSH_INTERVAL);
        let wall = (opts.wall_clock)();
        let mut warnings = Vec::new();
        let mut file_bytes = 0;
        let file = match fsio::load(&path) {
            Ok(Some((f, len))) => {
                file_bytes = len as u64;
                Some(f)
            }
            Ok(None) => None,
            Err(error) => {
                let set_aside = fsio::set_aside(&path, clock::unix_ms(wall) / 1000);
                warnings.push(StoreWarning::BadFile { error, set_aside });
                None
            }
        };
        let elapsed = file
            .as_ref()
            .map(|f| clock::elapsed_since_write(f.written_at_ms, wall));
        let from_version = file.as_ref().map(|f| f.version);
        let salt = match &file {
            Some(f) if f.version == format::CURRENT_VERSION => f.salt,
            _ => new_salt(),
        };
        // Inserted one by one (a later duplicate wins, as with `collect`): collecting
        // into a map sorts the pairs first, a sort of its own in the binary.
        let mut on_file: BTreeMap<String, Record> = BTreeMap::new();
        for r in file.into_iter().flat_map(|f| f.records) {
            on_file.insert(r.id.clone(), r);
        }

        let mut store = Store {
            path,
            opts,
            base: now,
            salt,
            entries: BTreeMap::new(),
            dirty: false,
            last_write: None,
            on_disk: None,
            metrics: StoreMetrics {
                file_bytes,
                ..StoreMetrics::default()
            },
        };
        let passed = elapsed.map(|e| e.duration()).unwrap_or_default();
        let mut starts = Vec::with_capacity(cameras.len());
        for cam in cameras {
            let tag = fingerprint(&salt, cam.user, cam.password);
            let untracked = |reason: String, warnings: &mut Vec<StoreWarning>| {
                warnings.push(StoreWarning::Untracked {
                    id: cam.id.chars().take(MAX_ID_LEN + 8).collect(),
                    reason,
                });
                (CameraEntry::fresh(None), Origin::Untracked)
            };
            let (entry, origin) = if let Err(reason) = format::check_id(cam.id) {
                untracked(format!("bad id: {reason}"), &mut warnings)
            } else if let Some(e) = store.entries.get(cam.id) {
                warnings.push(StoreWarning::Untracked {
                    id: cam.id.to_owned(),
                    reason: "configured twice; using the first entry".into(),
                });
                (e.clone(), Origin::Untracked)
            } else if store.entries.len() >= MAX_CAMERAS {
                let e = crate::CameraLimitExceeded {
                    count: store.entries.len() + 1,
                };
                untracked(e.to_string(), &mut warnings)
            } else {
                let (entry, origin) = match on_file.remove(cam.id) {
                    Some(rec) => {
                        let mut e = restore(&rec, passed, 0, &mut warnings);
                        match e.credential {
                            Some(old) if old == tag => (e, Origin::Restored),
                            Some(_) => {
                                e.credential = Some(tag);
                                e.auth_hold = false;
                                if matches!(
                                    e.last_error,
                                    Some(StoredError {
                                        class: StoredClass::Auth { .. },
                                        ..
                                    })
                                ) {
                                    e.attempts = 0;
                                    e.consecutive_failures = 0;
                                    e.due = None;
                                }
                                store.dirty = true;
                                (e, Origin::CredentialsChanged)
                            }
                            None => {
                                // v1 file: cannot tell; keep the hold, adopt the tag.
                                e.credential = Some(tag);
                                store.dirty = true;
                                (e, Origin::Restored)
                            }
                        }
                    }
                    None => {
                        store.dirty = true;
                        (CameraEntry::fresh(Some(tag)), Origin::New)
                    }
                };
                store.entries.insert(cam.id.to_owned(), entry.clone());
                (entry, origin)
            };
            starts.push(StartState {
                id: cam.id.to_owned(),
                state: entry.state(0),
                origin,
            });
        }
        let dropped: Vec<String> = on_file.into_keys().collect();
        if !dropped.is_empty() {
            store.dirty = true;
        }
        store.spread(&mut starts);
        let loaded = LoadedState {
            cameras: starts,
            dropped,
            warnings,
            clock: elapsed,
            from_version,
        };
        (store, loaded)
    }

    /// Applies the stratified start jitter (module docs).
    fn spread(&self, starts: &mut [StartState]) {
        let n = starts.len();
        if n == 0 {
            return;
        }
        let mut rng = match self.opts.jitter_seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        };
        let mut slots: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut slots);
        let spread = self.opts.start_spread.as_nanos();
        const SUB: u128 = 1_000_000;
        for (start, slot) in starts.iter_mut().zip(slots) {
            let point = slot as u128 * SUB + u128::from(rng.u32(..SUB as u32));
            let jitter = Duration::from_nanos(
                u64::try_from(spread * point / (n as u128 * SUB)).unwrap_or(u64::MAX),
            );
            let st = &mut start.state;
            let floor = st.lock_left.unwrap_or_default().max(jitter);
            st.next_due_in = Some(st.next_due_in.unwrap_or_default().max(floor));
        }
    }

    fn axis(&self, now: Instant) -> u64 {
        nanos(now.saturating_duration_since(self.base))
    }

    /// Records camera `id`'s state at `now`. Marks the store dirty and returns `true` when
    /// it differs from what the store held. A camera not seen before is added (with no
    /// credential fingerprint until [`Store::set_credentials`]).
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidId`] or [`StoreError::TooManyCameras`]; nothing is recorded.
    pub fn update(&mut self, id: &str, st: &CameraState, now: Instant) -> Result<bool, StoreError> {
        let now = self.axis(now);
        let entry = self.entry_mut(id)?;
        let before = entry.clone();
        entry.set_state(st, now);
        let changed = *entry != before;
        self.dirty |= changed;
        Ok(changed)
    }

    fn entry_mut(&mut self, id: &str) -> Result<&mut CameraEntry, StoreError> {
        if !self.entries.contains_key(id) {
            format::check_id(id).map_err(|reason| StoreError::InvalidId {
                id: format::short_id(id),
                reason,
            })?;
            if self.entries.len() >= MAX_CAMERAS {
                return Err(StoreError::TooManyCameras(crate::CameraLimitExceeded {
                    count: self.entries.len() + 1,
                }));
            }
            self.entries.insert(id.to_owned(), CameraEntry::fresh(None));
            self.dirty = true;
        }
        let count = self.entries.len();
        self.entries
            .get_mut(id)
            .ok_or(StoreError::TooManyCameras(crate::CameraLimitExceeded {
                count,
            }))
    }

    /// Sets camera `id`'s credentials (for a config reload). Returns `true` when they
    /// differ from the ones the state was built with; the store then clears its copy of
    /// the auth-hold, and the supervisor must release its hold too.
    ///
    /// # Errors
    ///
    /// As [`Store::update`].
    pub fn set_credentials(
        &mut self,
        id: &str,
        user: &str,
        password: &[u8],
    ) -> Result<bool, StoreError> {
        let tag = fingerprint(&self.salt, user, password);
        let entry = self.entry_mut(id)?;
        let changed = entry.credential.is_some_and(|old| old != tag);
        if entry.credential != Some(tag) {
            entry.credential = Some(tag);
            if changed {
                entry.auth_hold = false;
            }
            self.dirty = true;
        }
        Ok(changed)
    }

    /// Remembers the device session camera `id`'s live login holds, or forgets it (`None`,
    /// after its logout). A remembered session outlives the process: the next start finds
    /// it with [`Store::device_session`] and can end it on the device. Marks the store
    /// dirty and returns `true` when that changed what the store held.
    ///
    /// # Errors
    ///
    /// As [`Store::update`], and [`StoreError::InvalidSession`] for a session the file
    /// cannot hold; nothing is recorded then.
    pub fn set_device_session(
        &mut self,
        id: &str,
        session: Option<&str>,
    ) -> Result<bool, StoreError> {
        if let Some(s) = session {
            format::check_session(s).map_err(|reason| StoreError::InvalidSession {
                id: format::short_id(id),
                reason,
            })?;
        }
        let entry = self.entry_mut(id)?;
        if entry.device_session.as_deref() == session {
            return Ok(false);
        }
        entry.device_session = session.map(str::to_owned);
        self.dirty = true;
        Ok(true)
    }

    /// The device session remembered for camera `id`: one a previous process left behind
    /// (killed before its logout), or the live one this process set.
    pub fn device_session(&self, id: &str) -> Option<&str> {
        self.entries.get(id)?.device_session.as_deref()
    }

    /// Keeps only the cameras in `ids` (the rest were removed from the config). Returns
    /// how many were dropped.
    pub fn retain(&mut self, ids: &[&str]) -> usize {
        let before = self.entries.len();
        self.entries.retain(|id, _| ids.contains(&id.as_str()));
        let dropped = before - self.entries.len();
        if dropped > 0 {
            self.dirty = true;
        }
        dropped
    }

    /// Camera `id`'s state as the store holds it, relative to `now`.
    pub fn get(&self, id: &str, now: Instant) -> Option<CameraState> {
        let now = self.axis(now);
        self.entries.get(id).map(|e| e.state(now))
    }

    /// The camera ids the store holds, sorted.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Whether changes wait to be written.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// When [`Store::maybe_flush`] will next write, if anything is pending: the runtime
    /// can sleep until then.
    pub fn next_flush_at(&self) -> Option<Instant> {
        if !self.dirty {
            return None;
        }
        Some(match self.last_write {
            Some(t) => t + self.opts.flush_interval,
            None => self.base,
        })
    }

    /// The state file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Write counters.
    pub fn metrics(&self) -> StoreMetrics {
        self.metrics.clone()
    }

    /// Writes pending changes if the flush interval has passed since the last write.
    /// Returns whether a file was written. Under any churn this writes at most once per
    /// interval.
    ///
    /// # Errors
    ///
    /// [`StoreError::Write`]: the state stays dirty and the next attempt waits a full
    /// interval (a failing flash is not hammered).
    pub fn maybe_flush(&mut self, now: Instant) -> Result<bool, StoreError> {
        if let Some(last) = self.last_write {
            if now < last + self.opts.flush_interval {
                return Ok(false);
            }
        }
        self.write_pending(now)
    }

    /// Writes pending changes now, whatever the interval (at shutdown). Returns whether a
    /// file was written.
    ///
    /// # Errors
    ///
    /// As [`Store::maybe_flush`].
    pub fn flush(&mut self, now: Instant) -> Result<bool, StoreError> {
        self.write_pending(now)
    }

    fn encode_at(&self, reference: u64, written_at_ms: u64) -> Result<Vec<u8>, StoreError> {
        let records: Vec<Record> = self
            .entries
            .iter()
            .map(|(id, e)| e.record(id, reference))
            .collect();
        format::encode(written_at_ms, &self.salt, &records).map_err(StoreError::Encode)
    }

    fn write_pending(&mut self, now: Instant) -> Result<bool, StoreError> {
        if !self.dirty {
            return Ok(false);
        }
        // Would the file already on flash still describe this state exactly?
        if let Some(prev) = &self.on_disk {
            if self.encode_at(prev.reference, prev.written_at_ms)? == prev.bytes {
                self.dirty = false;
                self.metrics.skipped_unchanged += 1;
                return Ok(false);
            }
        }
        let reference = self.axis(now);
        let written_at_ms = clock::unix_ms((self.opts.wall_clock)());
        let bytes = self.encode_at(reference, written_at_ms)?;
        self.last_write = Some(now);
        match fsio::write_atomic(&self.path, &bytes) {
            Ok(()) => {
                self.dirty = false;
                self.metrics.writes += 1;
                self.metrics.bytes_written += bytes.len() as u64;
                self.metrics.file_bytes = bytes.len() as u64;
                self.metrics.last_error = None;
                self.on_disk = Some(OnDisk {
                    bytes,
                    reference,
                    written_at_ms,
                });
                Ok(true)
            }
            Err(e) => {
                self.metrics.write_errors += 1;
                self.metrics.last_error = Some(e.to_string());
                Err(StoreError::Write(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_round_up_and_ages_round_down() {
        let mut e = CameraEntry::fresh(None);
        let st = CameraState {
            next_due_in: Some(Duration::from_nanos(1_000_001)),
            lock_left: Some(Duration::from_nanos(1)),
            last_online_ago: Some(Duration::from_nanos(2_999_999)),
            ..CameraState::default()
        };
        e.set_state(&st, 5_000_000_000);
        let r = e.record("c", 5_000_000_000);
        assert_eq!(r.next_due_ms, Some(2));
        assert_eq!(r.lock_left_ms, Some(1));
        assert_eq!(r.last_online_ago_ms, Some(2));
        // Read back at the same point: exact.
        assert_eq!(e.state(5_000_000_000), st);
        // An overdue camera is "due now", an expired lock is gone.
        let later = e.record("c", 9_000_000_000);
        assert_eq!(later.next_due_ms, Some(0));
        assert_eq!(later.lock_left_ms, None);
        assert_eq!(later.last_online_ago_ms, Some(4002));
    }

    #[test]
    fn unchanged_state_at_a_later_now_is_equal() {
        let mut a = CameraEntry::fresh(None);
        let st = CameraState {
            next_due_in: Some(Duration::from_secs(100)),
            last_online_ago: Some(Duration::from_secs(5)),
            ..CameraState::default()
        };
        a.set_state(&st, 1_000);
        let mut b = a.clone();
        let later = 40_000_000_000;
        b.set_state(&a.state(later), later);
        assert_eq!(a, b);
    }

    #[test]
    fn online_before_boot_does_not_underflow() {
        let mut e = CameraEntry::fresh(None);
        let st = CameraState {
            last_online_ago: Some(Duration::from_secs(10 * 365 * 86_400)),
            ..CameraState::default()
        };
        e.set_state(&st, 0);
        assert_eq!(e.state(0), st);
        assert_eq!(
            e.record("c", 0).last_online_ago_ms,
            Some(10 * 365 * 86_400_000)
        );
    }

    #[test]
    fn fingerprint_depends_on_salt_user_and_password_only() {
        let s1 = [1u8; 16];
        let s2 = [2u8; 16];
        let f = fingerprint(&s1, "admin", b"secret");
        assert_eq!(f, fingerprint(&s1, "admin", b"secret"));
        assert_ne!(f, fingerprint(&s2, "admin", b"secret"));
        assert_ne!(f, fingerprint(&s1, "admin", b"secreT"));
        assert_ne!(f, fingerprint(&s1, "admi", b"nsecret"));
        assert_ne!(new_salt(), new_salt());
    }
}
