//! SDK callbacks → async code: `extern "C"` trampolines, a bounded lock-free queue, per-id
//! coalescing on overflow, per-stream atomics, and the async [`EventReceiver`].
//!
//! # Which SDK threads call what, and what they may touch
//!
//! | Callback | Registered by | Called on | Touches |
//! |---|---|---|---|
//! | `exception_trampoline` | `NET_DVR_SetExceptionCallBack_V30` at load | an SDK pool thread (two alternate; never the caller's; docs/hcnetsdk.md §7) | the `QUEUE`, the per-uid pending masks, the doorbell |
//! | `login_trampoline` | `NET_DVR_Login_V40` with `bUseAsynLogin` | an SDK pool thread | reads the V30 serial, then the same as above |
//! | `real_data_trampoline` | `NET_DVR_RealPlay_V40` | the SDK's stream receive thread (which one is unconfirmed for the real SDK; the stand-in uses one thread per stream) | the stream slot's atomics; the queue only on transitions |
//!
//! Rules every trampoline keeps (and that make them safe to run on any SDK thread):
//! - **Never call the SDK.** Not even to read the last error: a heartbeat issued from an
//!   exception callback makes the SDK enqueue another exception per failure (the callback
//!   storm of docs/hcnetsdk.md §7). The async-login failure code is therefore not known here; a
//!   failed async login reports [`AsyncLoginResult::Failed`] and the owner retries with a
//!   blocking login when it needs the class.
//! - **Never block and never lock.** Work is a few atomic operations, one non-blocking
//!   `heapless::mpmc` enqueue (Vyukov's bounded queue, no mutex) and at most one
//!   non-blocking `write(2)` of one byte to a socketpair (the doorbell). No mutex, no
//!   allocation, no waker call (a waker could take an executor's lock).
//! - **Never unwind into C.** Bodies are panic-free by construction (checked indexing via
//!   `get`, no allocation); they are still wrapped in `catch_unwind` for test builds, and
//!   release builds use `panic = "abort"`.
//! - **Nothing is lost silently.** When the queue is full the event is folded into a
//!   per-uid bitmask (exception kinds, async-login result) or per-stream flags, the slot is
//!   marked dirty, and [`EventReceiver`] turns the marks back into events, followed by one
//!   [`SdkEvent::Overflow`] with the number of events that took this path.
//! - **Stream data is not queued per frame.** Each callback only bumps the stream slot's
//!   atomics (last-data time, bytes, frames). It queues [`SdkEvent::StreamStarted`] on the
//!   first data and [`SdkEvent::StreamResumed`] when data comes back after a pause longer
//!   than the configured gap; an ongoing gap is seen by polling
//!   [`super::Sdk::stalled_streams`] or [`super::Sdk::stream_stats`] (the absence of
//!   callbacks cannot be reported by a callback).
//!
//! All state here is `static`: the SDK is process-global, callbacks can arrive on any
//! thread at any time between `NET_DVR_Init` and `NET_DVR_Cleanup`, and statics make the
//! "pointer valid while the callback runs" question moot.

use std::collections::VecDeque;
use std::ffi::c_void;
use std::fmt;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::panic::catch_unwind;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering::*};
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::FutureExt;
use heapless::mpmc::Queue;

use super::types::{BYTE, DWORD, LONG};

/// Queue slots. 1024 × ~64 bytes = 64 KiB of static memory: room for one burst of
/// events from every camera of a large site between two consumer wake-ups; beyond that
/// events are coalesced, not lost.
pub const QUEUE_CAPACITY: usize = 1024;
/// User ids the coalescing tables cover: the SDK hands out ids below its login limit,
/// which is hikwatch's camera limit.
pub const MAX_USERS: usize = crate::MAX_CAMERAS;
/// Concurrent streams (RealPlay handles) hikwatch tracks: one per camera.
pub const MAX_STREAMS: usize = crate::MAX_CAMERAS;
/// Most queue items converted per [`EventReceiver::try_recv`] refill.
const MAX_DRAIN: usize = 4 * QUEUE_CAPACITY;

/// A logged-in session's id (`lUserID`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub i32);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "uid {}", self.0)
    }
}

/// Which login of a user id an exception belongs to.
///
/// The SDK hands a freed `lUserID` out again to the next login, so the id alone cannot
/// tell an exception queued for a session that has since been logged out from one for
/// the session that now holds the id. Every uid therefore has a counter that moves on
/// when a login returns it and again when its logout returns; exception callbacks are
/// stamped with the counter's value when they run, and [`super::Login::epoch`] is the
/// value its login got. An exception whose epoch is not that of the session its owner
/// knows for the uid belongs to an earlier login. (A callback for a new session that ran
/// before its login call returned would carry the earlier value and be dropped too; the
/// SDK reports session exceptions from its heartbeat, well after the login.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LoginEpoch(pub u32);

/// A running stream: the SDK's RealPlay handle plus hikwatch's slot for its counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StreamId {
    /// The `NET_DVR_RealPlay_V40` handle.
    pub handle: i32,
    pub(crate) slot: u16,
    pub(crate) generation: u32,
}

/// An exception callback type (`dwType`, docs/hcnetsdk.md §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExceptionCode(pub u32);

impl ExceptionCode {
    /// 0x8000: session/heartbeat exception (device unreachable).
    pub const EXCHANGE: ExceptionCode = ExceptionCode(0x8000);
    /// 0x8003: live view exception.
    pub const PREVIEW: ExceptionCode = ExceptionCode(0x8003);
    /// 0x8005: live view reconnecting (the SDK's own reconnect).
    pub const RECONNECT: ExceptionCode = ExceptionCode(0x8005);
    /// 0x8015: live view reconnected.
    pub const PREVIEW_RECONNECT_SUCCESS: ExceptionCode = ExceptionCode(0x8015);
    /// 0x8017: user interaction restored (device back, same uid).
    pub const RESUME_EXCHANGE: ExceptionCode = ExceptionCode(0x8017);
    /// 0x8040: the SDK is logging the user in again.
    pub const RELOGIN: ExceptionCode = ExceptionCode(0x8040);
    /// 0x8041: re-login succeeded, same uid.
    pub const RELOGIN_SUCCESS: ExceptionCode = ExceptionCode(0x8041);
    /// 0x8044: re-login failed; the SDK stops trying (session dead).
    pub const RELOGIN_FAILED: ExceptionCode = ExceptionCode(0x8044);
    /// 0x8045: the SDK stopped reconnecting the preview.
    pub const PREVIEW_RECONNECT_CLOSED: ExceptionCode = ExceptionCode(0x8045);
    /// Stands for a kind outside 0x8000..0x807f that was coalesced on overflow.
    pub const OTHER: ExceptionCode = ExceptionCode(0xffff_ffff);

    /// The vendor name, when known.
    pub fn name(self) -> &'static str {
        match self.0 {
            0x8000 => "EXCEPTION_EXCHANGE",
            0x8001 => "EXCEPTION_AUDIOEXCHANGE",
            0x8002 => "EXCEPTION_ALARM",
            0x8003 => "EXCEPTION_PREVIEW",
            0x8004 => "EXCEPTION_SERIAL",
            0x8005 => "EXCEPTION_RECONNECT",
            0x8006 => "EXCEPTION_ALARMRECONNECT",
            0x8015 => "PREVIEW_RECONNECTSUCCESS",
            0x8016 => "ALARM_RECONNECTSUCCESS",
            0x8017 => "RESUME_EXCHANGE",
            0x8040 => "EXCEPTION_RELOGIN",
            0x8041 => "RELOGIN_SUCCESS",
            0x8044 => "EXCEPTION_RELOGIN_FAILED",
            0x8045 => "EXCEPTION_PREVIEW_RECONNECT_CLOSED",
            0x8046 => "EXCEPTION_ALARM_RECONNECT_CLOSED",
            _ => "other",
        }
    }
}

/// The result of an asynchronous login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AsyncLoginResult {
    /// Logged in; the serial number when the event was queued (not when coalesced).
    Ok {
        /// `sSerialNumber` of the device info.
        serial: Option<String>,
    },
    /// The login failed and the session is dead, but the SDK keeps the uid's slot until
    /// `NET_DVR_Logout` (observed with 6.1.9.48): the owner must still call
    /// [`super::Sdk::logout`] on it. The SDK gives no code in the callback (and the
    /// callback may not ask it), so the class is unknown here.
    Failed,
}

/// What the SDK told us, delivered in order per producer thread.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SdkEvent {
    /// An exception callback.
    Exception {
        /// The session it concerns (`lUserID`; may be -1 for SDK-wide exceptions).
        uid: UserId,
        /// Which login of `uid` it concerns (see [`LoginEpoch`]). When coalesced: the
        /// newest epoch folded for `uid`.
        epoch: LoginEpoch,
        /// `dwType`.
        kind: ExceptionCode,
        /// `lHandle` (a preview handle for preview exceptions); -1 when coalesced.
        handle: i32,
        /// Rebuilt from the overflow bitmask: one event stands for one or more callbacks
        /// of this kind for this uid.
        coalesced: bool,
    },
    /// An asynchronous login finished.
    AsyncLogin {
        /// The caller's token given to [`super::Sdk::login_async`].
        token: u32,
        /// The uid `login_async` returned.
        uid: UserId,
        /// Success or failure.
        result: AsyncLoginResult,
    },
    /// The first data of a stream arrived.
    StreamStarted {
        /// The stream.
        stream: StreamId,
    },
    /// Data arrived again after a pause longer than the configured stream gap.
    StreamResumed {
        /// The stream.
        stream: StreamId,
        /// How long no data had arrived (the longest one when coalesced).
        gap: Duration,
    },
    /// The queue was full: `dropped` callbacks since the last report were folded into
    /// the coalesced events delivered just before this one (`unattributed` of them had a
    /// uid outside the tables and are only counted).
    Overflow {
        /// Callbacks that took the overflow path since the last report.
        dropped: u64,
        /// Of those, exceptions whose uid was outside 0..MAX_USERS.
        unattributed: u64,
    },
}

#[derive(Clone, Copy)]
enum Raw {
    Exception {
        kind: u32,
        uid: i32,
        epoch: u32,
        handle: i32,
    },
    // Only the test-only asynchronous login produces it.
    #[cfg_attr(not(any(test, feature = "test-support")), allow(dead_code))]
    AsyncLogin {
        token: u32,
        uid: i32,
        ok: bool,
        serial: [u8; 48],
    },
    StreamStarted {
        slot: u16,
        generation: u32,
        handle: i32,
    },
    StreamResumed {
        slot: u16,
        generation: u32,
        handle: i32,
        gap_ms: u32,
    },
}

/// Per-uid overflow marks.
struct UserPending {
    /// Bit `i` of word `w`: exception kind `0x8000 + 64 * w + i`; bit 63 of word 1 also
    /// stands for any kind outside that range.
    exc: [AtomicU64; 2],
    /// The newest [`LoginEpoch`] of an exception folded here (epochs only grow).
    exc_epoch: AtomicU32,
    /// Bit 0: async login succeeded, bit 1: failed.
    login: AtomicU32,
    /// The async-login token, valid when `login` is non-zero.
    token: AtomicU32,
}

impl UserPending {
    const fn new() -> Self {
        UserPending {
            exc: [AtomicU64::new(0), AtomicU64::new(0)],
            exc_epoch: AtomicU32::new(0),
            login: AtomicU32::new(0),
            token: AtomicU32::new(0),
        }
    }
}

/// One tracked stream's counters.
pub(crate) struct StreamSlot {
    /// Owner and generation in one word, so that claiming and releasing the slot are
    /// single compare-and-swaps: bit 0 set while a stream owns the slot, bits 1..=32 the
    /// generation, bumped by each allocation (callbacks carrying another generation are
    /// ignored). See [`slot_state`].
    state: AtomicU64,
    /// The RealPlay handle; -1 from the owner's release until the next owner has one.
    handle: AtomicI32,
    /// Milliseconds since [`EPOCH`] of the last data (0 = none yet).
    last_ms: AtomicU64,
    /// When the stream was started, ms since [`EPOCH`].
    started_ms: AtomicU64,
    bytes: AtomicU64,
    frames: AtomicU64,
    /// Overflow marks: bit 0 started, bit 1 resumed.
    pending: AtomicU32,
    /// Longest coalesced gap, ms.
    pending_gap_ms: AtomicU32,
}

impl StreamSlot {
    const fn new() -> Self {
        StreamSlot {
            state: AtomicU64::new(0),
            // Never read before `alloc_slot` sets -1; zero keeps the table in .bss (a
            // non-zero initialiser would put 28 KiB into the binary's .data).
            handle: AtomicI32::new(0),
            last_ms: AtomicU64::new(0),
            started_ms: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            frames: AtomicU64::new(0),
            pending: AtomicU32::new(0),
            pending_gap_ms: AtomicU32::new(0),
        }
    }

    /// The generation of the stream that owns the slot, if one does.
    fn owner(&self) -> Option<u32> {
        let s = self.state.load(Acquire);
        (s & SLOT_OWNED != 0).then_some((s >> 1) as u32)
    }
}

/// Bit 0 of [`StreamSlot::state`]: a stream owns the slot.
const SLOT_OWNED: u64 = 1;

/// [`StreamSlot::state`] of a slot owned by the stream of `generation`; without [`SLOT_OWNED`],
/// of a free slot whose last owner had it.
fn slot_state(generation: u32) -> u64 {
    (u64::from(generation) << 1) | SLOT_OWNED
}

/// The event queue, allocated once by [`init`] (before any callback is registered).
/// Not a plain `static Queue`: its cells start with non-zero sequence numbers, which
/// would put 64 KiB into the binary's .data (flash on the gateway).
static QUEUE: OnceLock<Box<Queue<Raw, QUEUE_CAPACITY>>> = OnceLock::new();
static USERS: [UserPending; MAX_USERS] = [const { UserPending::new() }; MAX_USERS];
/// Per uid: the current [`LoginEpoch`] (see there).
static USER_EPOCH: [AtomicU32; MAX_USERS] = [const { AtomicU32::new(0) }; MAX_USERS];
static USER_DIRTY: [AtomicU64; MAX_USERS / 64] = [const { AtomicU64::new(0) }; MAX_USERS / 64];
static SLOTS: [StreamSlot; MAX_STREAMS] = [const { StreamSlot::new() }; MAX_STREAMS];
static SLOT_DIRTY: [AtomicU64; MAX_STREAMS / 64] = [const { AtomicU64::new(0) }; MAX_STREAMS / 64];
/// Callbacks that found the queue full (cumulative).
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// Of those, exceptions whose uid was outside the tables (cumulative).
static UNATTRIBUTED: AtomicU64 = AtomicU64::new(0);
/// Panics caught in trampolines (test builds; release aborts).
static PANICS: AtomicU64 = AtomicU64::new(0);
/// A pause longer than this between two data callbacks queues `StreamResumed`.
static GAP_MS: AtomicU64 = AtomicU64::new(5000);
/// Set by the producer that rang the doorbell; cleared by the consumer after reading the
/// doorbell and before draining the queue (see [`ring`] for why that order).
static RUNG: AtomicBool = AtomicBool::new(false);
/// Whether an [`EventReceiver`] exists.
static RECEIVER_TAKEN: AtomicBool = AtomicBool::new(false);
/// The doorbell: (producer end, consumer end), both non-blocking.
static DOORBELL: OnceLock<(UnixStream, UnixStream)> = OnceLock::new();
/// Time origin of the `*_ms` atomics.
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Milliseconds since [`EPOCH`], plus one so that 0 means "never".
fn now_ms() -> u64 {
    match EPOCH.get() {
        Some(e) => u64::try_from(e.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1,
        None => 1,
    }
}

/// Sets up the process-wide state; called by `Sdk::load` before any callback can be
/// registered. Clears leftovers of a previous `Sdk`.
pub(crate) fn init(gap: Duration) -> std::io::Result<()> {
    EPOCH.get_or_init(Instant::now);
    if DOORBELL.get().is_none() {
        let (tx, rx) = UnixStream::pair()?;
        tx.set_nonblocking(true)?;
        rx.set_nonblocking(true)?;
        let _ = DOORBELL.set((tx, rx));
    }
    GAP_MS.store(u64::try_from(gap.as_millis()).unwrap_or(u64::MAX), Relaxed);
    let q = QUEUE.get_or_init(|| Box::new(Queue::new()));
    while q.dequeue().is_some() {}
    for u in &USERS {
        u.exc[0].store(0, Relaxed);
        u.exc[1].store(0, Relaxed);
        u.exc_epoch.store(0, Relaxed);
        u.login.store(0, Relaxed);
    }
    for d in USER_DIRTY.iter().chain(SLOT_DIRTY.iter()) {
        d.store(0, Relaxed);
    }
    for s in &SLOTS {
        // Free, keeping the generation: a `StreamId` of the previous `Sdk` never matches.
        s.state.fetch_and(!SLOT_OWNED, Relaxed);
        s.handle.store(-1, Relaxed);
        s.pending.store(0, Relaxed);
    }
    Ok(())
}

/// Wakes the consumer after an event was queued or marked.
///
/// # Why no wake-up is lost
///
/// A producer queues its event, then swaps [`RUNG`] to true; only the producer that
/// found it false writes a byte to the doorbell. The consumer ([`EventReceiver::refill`])
/// first reads every byte out of the doorbell, then swaps `RUNG` to false, then drains
/// the queue and the marks; it sleeps only when that found nothing, until the doorbell is
/// readable. All changes of `RUNG` are swaps (read-modify-writes, acquire and release),
/// so they are totally ordered and each reads the value of the one just before it. Take
/// a producer P whose event the consumer's drain after swap C missed:
///
/// - P's swap cannot come before C: C would then read P's true or that of a later swap
///   (the release sequence of P's swap), so P's event would happen-before C's drain.
/// - So P's swap comes after C. If it reads false (from C), P writes a byte. If it reads
///   true, that true comes from a producer Q whose swap came after C as well and read
///   false, so Q writes a byte. Either byte is written after C (the byte writer's swap
///   read from C's release sequence), hence after the consumer's doorbell reads that came
///   before C: it is still in the doorbell when the consumer goes to sleep, the consumer
///   wakes, and its next swap comes after P's swap or meets the same case again (each
///   round needs a new byte, so a new producer event).
///
/// Reading the doorbell after clearing `RUNG` (the old order) breaks the second case: the
/// consumer could swallow Q's byte while missing P's event, and sleep with `RUNG` true.
fn ring() {
    if !RUNG.swap(true, AcqRel) {
        if let Some((tx, _)) = DOORBELL.get() {
            // Non-blocking. EINTR is retried. EAGAIN means the doorbell is full of
            // unread bytes, so the consumer wakes anyway; nothing else can fail on a
            // connected socketpair whose ends live as long as the process.
            loop {
                match (&*tx).write(&[1]) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    _ => break,
                }
            }
        }
    }
}

fn mark(dirty: &[AtomicU64], i: usize) {
    if let Some(w) = dirty.get(i / 64) {
        w.fetch_or(1 << (i % 64), Release);
    }
}

fn user_slot(uid: i32) -> Option<(usize, &'static UserPending)> {
    let i = usize::try_from(uid).ok()?;
    USERS.get(i).map(|p| (i, p))
}

/// Enqueues `ev`; when the queue is full runs `fold` (which must record the event in the
/// pending tables) and counts the drop. Then rings the doorbell.
fn post(ev: Raw, fold: impl FnOnce()) {
    // No queue (impossible: `init` runs before callbacks are registered) counts as full.
    if QUEUE.get().is_none_or(|q| q.enqueue(ev).is_err()) {
        fold();
        DROPPED.fetch_add(1, SeqCst);
    }
    ring();
}

fn kind_bit(kind: u32) -> (usize, u32) {
    match kind.checked_sub(0x8000) {
        Some(d) if d < 128 => ((d / 64) as usize, d % 64),
        _ => (1, 63),
    }
}

/// A login returned `uid`: moves its [`LoginEpoch`] on and returns the new one.
pub(crate) fn login_returned(uid: i32) -> LoginEpoch {
    let i = usize::try_from(uid).ok();
    match i.and_then(|i| USER_EPOCH.get(i)) {
        Some(e) => LoginEpoch(e.fetch_add(1, AcqRel).wrapping_add(1)),
        None => LoginEpoch(0),
    }
}

/// The logout of `uid` returned: later callbacks for the uid belong to no login so far.
pub(crate) fn logout_returned(uid: i32) {
    let _ = login_returned(uid);
}

fn epoch_of(uid: i32) -> u32 {
    let i = usize::try_from(uid).ok();
    i.and_then(|i| USER_EPOCH.get(i))
        .map_or(0, |e| e.load(Acquire))
}

fn on_exception(kind: DWORD, uid: LONG, handle: LONG) {
    let epoch = epoch_of(uid);
    post(
        Raw::Exception {
            kind,
            uid,
            epoch,
            handle,
        },
        || match user_slot(uid) {
            Some((i, p)) => {
                let (w, b) = kind_bit(kind);
                p.exc_epoch.fetch_max(epoch, Release);
                p.exc[w].fetch_or(1 << b, Release);
                mark(&USER_DIRTY, i);
            }
            None => {
                UNATTRIBUTED.fetch_add(1, Relaxed);
            }
        },
    );
}

#[cfg(any(test, feature = "test-support"))]
fn on_login(uid: LONG, ok: bool, serial: [u8; 48], token: u32) {
    post(
        Raw::AsyncLogin {
            token,
            uid,
            ok,
            serial,
        },
        || match user_slot(uid) {
            Some((i, p)) => {
                p.token.store(token, Relaxed);
                p.login.fetch_or(if ok { 1 } else { 2 }, Release);
                mark(&USER_DIRTY, i);
            }
            None => {
                UNATTRIBUTED.fetch_add(1, Relaxed);
            }
        },
    );
}

/// Bits of `pUser` that hold the slot index; the rest hold the generation.
const SLOT_BITS: u32 = 11;
const GEN_MASK: u32 = (usize::MAX >> SLOT_BITS) as u32;
const _: () = assert!(MAX_STREAMS <= 1 << SLOT_BITS);

fn on_data(handle: LONG, data_type: DWORD, len: DWORD, user: usize) {
    let idx = user & ((1 << SLOT_BITS) - 1);
    let generation = (user >> SLOT_BITS) as u32;
    let Some(slot) = SLOTS.get(idx) else { return };
    let Some(full_generation) = slot.owner().filter(|g| g & GEN_MASK == generation) else {
        return; // a late callback for a stream that was stopped
    };
    let now = now_ms();
    slot.bytes.fetch_add(u64::from(len), Relaxed);
    if data_type != 1 {
        // 1 = NET_DVR_SYSHEAD, the stream header; everything else is media or metadata.
        slot.frames.fetch_add(1, Relaxed);
    }
    let prev = slot.last_ms.swap(now, AcqRel);
    let slot_no = idx as u16;
    if prev == 0 {
        post(
            Raw::StreamStarted {
                slot: slot_no,
                generation: full_generation,
                handle,
            },
            || {
                slot.pending.fetch_or(1, Release);
                mark(&SLOT_DIRTY, idx);
            },
        );
    } else if now.saturating_sub(prev) > GAP_MS.load(Relaxed) {
        let gap_ms = u32::try_from(now - prev).unwrap_or(u32::MAX);
        post(
            Raw::StreamResumed {
                slot: slot_no,
                generation: full_generation,
                handle,
                gap_ms,
            },
            || {
                slot.pending_gap_ms.fetch_max(gap_ms, Relaxed);
                slot.pending.fetch_or(2, Release);
                mark(&SLOT_DIRTY, idx);
            },
        );
    }
}

/// The exception callback given to `NET_DVR_SetExceptionCallBack_V30`.
///
/// # Safety
///
/// Called by the SDK with the vendor signature; no argument is dereferenced (`_user` is
/// ignored), so any values are accepted.
pub(crate) unsafe extern "C" fn exception_trampoline(
    kind: DWORD,
    uid: LONG,
    handle: LONG,
    _user: *mut c_void,
) {
    if catch_unwind(|| on_exception(kind, uid, handle)).is_err() {
        PANICS.fetch_add(1, Relaxed);
    }
}

/// The async-login result callback; `user` carries the caller's token. Test-only, like
/// [`super::Sdk::login_async`].
///
/// # Safety
///
/// `info` must be NULL or point to a `NET_DVR_DEVICEINFO_V30` that is valid for reads for
/// the duration of the call (the SDK's contract for `fLoginResultCallBack`). `user` is
/// only used as an integer.
#[cfg(any(test, feature = "test-support"))]
pub(crate) unsafe extern "C" fn login_trampoline(
    uid: LONG,
    result: DWORD,
    info: *mut super::types::NET_DVR_DEVICEINFO_V30,
    user: *mut c_void,
) {
    let token = user as usize as u32;
    let ok = result == 1;
    let r = catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut serial = [0u8; 48];
        if ok && !info.is_null() {
            // SAFETY: for dwResult 1 the SDK passes a pointer to a live DEVICEINFO_V30
            // that stays valid for the duration of the callback (docs/hcnetsdk.md §6; checked for
            // null above). We copy 48 bytes out of it and keep no reference.
            serial = unsafe { (*info).sSerialNumber };
        }
        on_login(uid, ok, serial, token);
    }));
    if r.is_err() {
        PANICS.fetch_add(1, Relaxed);
    }
}

/// The stream-data callback of `NET_DVR_RealPlay_V40`; `user` encodes slot and generation.
/// The data itself (`_buf`) is not read: hikwatch watches liveness, not content.
///
/// # Safety
///
/// Called by the SDK with the vendor signature; no pointer is dereferenced (`user` is an
/// integer, and a stale or foreign value only selects a slot whose generation check then
/// fails), so any values are accepted.
pub(crate) unsafe extern "C" fn real_data_trampoline(
    handle: LONG,
    data_type: DWORD,
    _buf: *mut BYTE,
    len: DWORD,
    user: *mut c_void,
) {
    let user = user as usize;
    if catch_unwind(|| on_data(handle, data_type, len, user)).is_err() {
        PANICS.fetch_add(1, Relaxed);
    }
}

/// Takes a free stream slot; returns `(slot, generation, pUser)`. Safe to call from many
/// threads at once: a slot is claimed by one compare-and-swap of its owner bit and
/// generation together, and only the winner touches its counters.
pub(crate) fn alloc_slot() -> Option<(u16, u32, usize)> {
    for (i, s) in SLOTS.iter().enumerate() {
        let cur = s.state.load(Relaxed);
        if cur & SLOT_OWNED != 0 {
            continue;
        }
        let generation = ((cur >> 1) as u32).wrapping_add(1);
        if s.state
            .compare_exchange(cur, slot_state(generation), AcqRel, Relaxed)
            .is_err()
        {
            continue; // another thread claimed it first
        }
        // Ours now. Callbacks of the previous owner carry its generation and are ignored;
        // those of the new stream cannot come before RealPlay, which gets `user` only
        // after this returns. The handle is -1 since the previous owner released the
        // slot, so `stalled` skips the slot until `set_slot_handle`.
        s.last_ms.store(0, Relaxed);
        s.started_ms.store(now_ms(), Relaxed);
        s.bytes.store(0, Relaxed);
        s.frames.store(0, Relaxed);
        s.pending.store(0, Relaxed);
        s.pending_gap_ms.store(0, Relaxed);
        let user = (i & ((1 << SLOT_BITS) - 1)) | (((generation & GEN_MASK) as usize) << SLOT_BITS);
        return Some((i as u16, generation, user));
    }
    None
}

/// Records the RealPlay handle of an allocated slot.
pub(crate) fn set_slot_handle(slot: u16, handle: i32) {
    if let Some(s) = SLOTS.get(usize::from(slot)) {
        s.handle.store(handle, Release);
    }
}

/// Frees a slot if it still belongs to `generation` (once per stream).
pub(crate) fn free_slot(slot: u16, generation: u32) {
    if let Some(s) = SLOTS.get(usize::from(slot)) {
        if s.owner() == Some(generation) {
            s.handle.store(-1, Relaxed);
            let _ = s.state.compare_exchange(
                slot_state(generation),
                slot_state(generation) & !SLOT_OWNED,
                AcqRel,
                Relaxed,
            );
        }
    }
}

/// A snapshot of a stream's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamStats {
    /// Time since the last data callback, or `None` before the first.
    pub since_last_data: Option<Duration>,
    /// Time since the stream was started.
    pub since_start: Duration,
    /// Bytes delivered.
    pub bytes: u64,
    /// Data callbacks other than the stream header.
    pub frames: u64,
}

/// Reads a stream's counters; `None` when the stream was stopped.
pub(crate) fn stats(id: StreamId) -> Option<StreamStats> {
    let s = SLOTS.get(usize::from(id.slot))?;
    if s.owner() != Some(id.generation) {
        return None;
    }
    let now = now_ms();
    let last = s.last_ms.load(Acquire);
    Some(StreamStats {
        since_last_data: (last != 0).then(|| Duration::from_millis(now.saturating_sub(last))),
        since_start: Duration::from_millis(now.saturating_sub(s.started_ms.load(Relaxed))),
        bytes: s.bytes.load(Relaxed),
        frames: s.frames.load(Relaxed),
    })
}

/// Running streams without data for longer than `older_than` (counting from the start
/// for streams that never delivered any), with how long. This is how an ongoing gap is
/// seen: callbacks cannot report the absence of data, so the consumer polls this (or
/// [`stats`]) on its own timer.
pub(crate) fn stalled(older_than: Duration) -> Vec<(StreamId, Duration)> {
    let now = now_ms();
    let mut out = Vec::new();
    for (i, s) in SLOTS.iter().enumerate() {
        let Some(generation) = s.owner() else {
            continue;
        };
        let last = s.last_ms.load(Acquire);
        let since = if last != 0 {
            last
        } else {
            s.started_ms.load(Relaxed)
        };
        let quiet = Duration::from_millis(now.saturating_sub(since));
        let handle = s.handle.load(Acquire);
        if quiet > older_than && handle >= 0 {
            out.push((
                StreamId {
                    handle,
                    slot: i as u16,
                    generation,
                },
                quiet,
            ));
        }
    }
    out
}

/// Counters of the event path, for status pages and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventCounters {
    /// Callbacks that found the queue full (since the process started).
    pub dropped: u64,
    /// Of those, exceptions with a uid outside the tables.
    pub unattributed: u64,
    /// Panics caught inside trampolines (always 0 unless there is a bug).
    pub panics: u64,
}

/// Process-wide event counters.
pub fn counters() -> EventCounters {
    EventCounters {
        dropped: DROPPED.load(Relaxed),
        unattributed: UNATTRIBUTED.load(Relaxed),
        panics: PANICS.load(Relaxed),
    }
}

/// The single consumer of SDK events (see [`super::Sdk::events`]).
///
/// `recv().await` waits on the doorbell socket through async-io, so it works on any
/// executor (smol, `block_on`). Dropping the receiver lets a new one be taken.
pub struct EventReceiver {
    bell: Async<UnixStream>,
    backlog: VecDeque<SdkEvent>,
    reported_dropped: u64,
    reported_unattributed: u64,
}

impl fmt::Debug for EventReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventReceiver")
            .field("backlog", &self.backlog.len())
            .finish_non_exhaustive()
    }
}

impl EventReceiver {
    /// Takes the receiver, or `None` when one exists already.
    pub(crate) fn take() -> Option<EventReceiver> {
        let (_, rx) = DOORBELL.get()?;
        if RECEIVER_TAKEN.swap(true, AcqRel) {
            return None;
        }
        let bell = rx.try_clone().and_then(Async::new);
        match bell {
            Ok(bell) => Some(EventReceiver {
                bell,
                backlog: VecDeque::new(),
                reported_dropped: DROPPED.load(SeqCst),
                reported_unattributed: UNATTRIBUTED.load(SeqCst),
            }),
            Err(e) => {
                log::error!("sdk: cannot register the event doorbell: {e}");
                RECEIVER_TAKEN.store(false, Release);
                None
            }
        }
    }

    /// The next event, if one is ready.
    pub fn try_recv(&mut self) -> Option<SdkEvent> {
        if self.backlog.is_empty() {
            self.refill();
        }
        self.backlog.pop_front()
    }

    /// Waits for the next event.
    pub async fn recv(&mut self) -> SdkEvent {
        loop {
            if let Some(e) = self.try_recv() {
                return e;
            }
            // No timer: every event rings the doorbell (see [`ring`]). Should the poller
            // ever fail, retry after a pause rather than spin.
            if let Err(e) = self.bell.readable().await {
                log::error!("sdk: waiting on the event doorbell failed: {e}");
                Timer::after(Duration::from_millis(100)).await;
            }
        }
    }

    /// Waits up to `timeout` for the next event.
    pub async fn recv_timeout(&mut self, timeout: Duration) -> Option<SdkEvent> {
        async { Some(self.recv().await) }
            .or(async {
                Timer::after(timeout).await;
                None
            })
            .await
    }

    fn refill(&mut self) {
        // The doorbell first, then `RUNG`, then the queue: the order [`ring`] relies on.
        let mut sink = [0u8; 64];
        let mut bell: &UnixStream = self.bell.get_ref();
        while let Ok(n) = bell.read(&mut sink) {
            if n == 0 {
                break;
            }
        }
        #[cfg(test)]
        tests::refill_step();
        RUNG.swap(false, AcqRel);
        #[cfg(test)]
        tests::refill_step();
        for _ in 0..MAX_DRAIN {
            match QUEUE.get().and_then(|q| q.dequeue()) {
                Some(raw) => self.backlog.push_back(convert(raw)),
                None => break,
            }
        }
        self.drain_marks();
        let dropped = DROPPED.load(SeqCst);
        let unattributed = UNATTRIBUTED.load(SeqCst);
        if dropped != self.reported_dropped {
            self.backlog.push_back(SdkEvent::Overflow {
                dropped: dropped.wrapping_sub(self.reported_dropped),
                unattributed: unattributed.wrapping_sub(self.reported_unattributed),
            });
            self.reported_dropped = dropped;
            self.reported_unattributed = unattributed;
        }
    }

    fn drain_marks(&mut self) {
        for (w, word) in USER_DIRTY.iter().enumerate() {
            if word.load(Acquire) == 0 {
                continue;
            }
            let mut bits = word.swap(0, AcqRel);
            while bits != 0 {
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let uid = w * 64 + b;
                let Some(p) = USERS.get(uid) else { continue };
                let uid = UserId(uid as i32);
                let taken = [p.exc[0].swap(0, AcqRel), p.exc[1].swap(0, AcqRel)];
                // Loaded after taking the kinds: every fold sets the epoch before its kind.
                let epoch = LoginEpoch(p.exc_epoch.load(Acquire));
                for (i, mut kinds) in taken.into_iter().enumerate() {
                    while kinds != 0 {
                        let k = kinds.trailing_zeros();
                        kinds &= kinds - 1;
                        let kind = if i == 1 && k == 63 {
                            ExceptionCode::OTHER
                        } else {
                            ExceptionCode(0x8000 + 64 * i as u32 + k)
                        };
                        self.backlog.push_back(SdkEvent::Exception {
                            uid,
                            epoch,
                            kind,
                            handle: -1,
                            coalesced: true,
                        });
                    }
                }
                let login = p.login.swap(0, AcqRel);
                if login != 0 {
                    let token = p.token.load(Relaxed);
                    // A success and a failure both pending: the SDK reported twice for the
                    // same uid; report both, failure last (the uid is dead then).
                    if login & 1 != 0 {
                        self.backlog.push_back(SdkEvent::AsyncLogin {
                            token,
                            uid,
                            result: AsyncLoginResult::Ok { serial: None },
                        });
                    }
                    if login & 2 != 0 {
                        self.backlog.push_back(SdkEvent::AsyncLogin {
                            token,
                            uid,
                            result: AsyncLoginResult::Failed,
                        });
                    }
                }
            }
        }
        for (w, word) in SLOT_DIRTY.iter().enumerate() {
            if word.load(Acquire) == 0 {
                continue;
            }
            let mut bits = word.swap(0, AcqRel);
            while bits != 0 {
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let idx = w * 64 + b;
                let Some(s) = SLOTS.get(idx) else { continue };
                let pending = s.pending.swap(0, AcqRel);
                let stream = StreamId {
                    handle: s.handle.load(Acquire),
                    slot: idx as u16,
                    generation: (s.state.load(Acquire) >> 1) as u32,
                };
                if pending & 1 != 0 {
                    self.backlog.push_back(SdkEvent::StreamStarted { stream });
                }
                if pending & 2 != 0 {
                    let gap = s.pending_gap_ms.swap(0, AcqRel);
                    self.backlog.push_back(SdkEvent::StreamResumed {
                        stream,
                        gap: Duration::from_millis(u64::from(gap)),
                    });
                }
            }
        }
    }
}

impl Drop for EventReceiver {
    fn drop(&mut self) {
        RECEIVER_TAKEN.store(false, Release);
    }
}

pub(crate) fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).trim().to_string()
}

fn convert(raw: Raw) -> SdkEvent {
    match raw {
        Raw::Exception {
            kind,
            uid,
            epoch,
            handle,
        } => SdkEvent::Exception {
            uid: UserId(uid),
            epoch: LoginEpoch(epoch),
            kind: ExceptionCode(kind),
            handle,
            coalesced: false,
        },
        Raw::AsyncLogin {
            token,
            uid,
            ok,
            serial,
        } => SdkEvent::AsyncLogin {
            token,
            uid: UserId(uid),
            result: if ok {
                let s = c_string(&serial);
                AsyncLoginResult::Ok {
                    serial: (!s.is_empty()).then_some(s),
                }
            } else {
                AsyncLoginResult::Failed
            },
        },
        Raw::StreamStarted {
            slot,
            generation,
            handle,
        } => SdkEvent::StreamStarted {
            stream: StreamId {
                handle,
                slot,
                generation,
            },
        },
        Raw::StreamResumed {
            slot,
            generation,
            handle,
            gap_ms,
        } => SdkEvent::StreamResumed {
            stream: StreamId {
                handle,
                slot,
                generation,
            },
            gap: Duration::from_millis(u64::from(gap_ms)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::sync::{Barrier, Mutex, MutexGuard};

    thread_local! {
        /// A producer's ring at this step of [`EventReceiver::refill`] on this thread.
        static RING_AT_STEP: Cell<Option<usize>> = const { Cell::new(None) };
        /// Steps of `refill` passed on this thread.
        static REFILL_STEPS: Cell<usize> = const { Cell::new(0) };
    }

    /// Called between the steps of `refill` (test builds only).
    pub(super) fn refill_step() {
        let n = REFILL_STEPS.replace(REFILL_STEPS.get() + 1);
        if RING_AT_STEP.get() == Some(n) {
            ring();
        }
    }

    /// A producer queued its event and was preempted before ringing; the consumer took
    /// the event in a refill, and the producer's ring lands in the middle of the next
    /// refill (which finds nothing). Another producer then queues an event: its ring sees
    /// the flag set and writes nothing. The consumer is about to sleep until the doorbell
    /// is readable (there is no timer): the doorbell must be readable now, wherever in
    /// the refill the first ring landed.
    #[test]
    fn a_ring_during_a_refill_is_not_lost() {
        let _g = statics();
        for step in 0..2 {
            init(Duration::from_secs(5)).expect("init");
            let mut rx = EventReceiver::take().expect("receiver");
            while rx.try_recv().is_some() {}
            let queue = QUEUE.get().expect("init made the queue");
            let late = Raw::Exception {
                kind: 0x8000,
                uid: 1,
                epoch: 0,
                handle: 1,
            };
            assert!(queue.enqueue(late).is_ok());
            assert!(matches!(
                rx.try_recv(),
                Some(SdkEvent::Exception { handle: 1, .. })
            ));
            REFILL_STEPS.set(0);
            RING_AT_STEP.set(Some(step));
            assert_eq!(rx.try_recv(), None);
            RING_AT_STEP.set(None);
            on_exception(0x8000, 2, 2);
            let mut probe = [0u8; 1];
            let mut bell: &UnixStream = rx.bell.get_ref();
            let readable = bell.read(&mut probe).is_ok_and(|n| n == 1);
            assert!(
                readable,
                "ring at refill step {step}: an event is queued but the doorbell is silent"
            );
            assert!(matches!(
                rx.try_recv(),
                Some(SdkEvent::Exception { handle: 2, .. })
            ));
        }
    }

    /// The tests that use the module's statics (queue, doorbell, slots) run one at a time.
    fn statics() -> MutexGuard<'static, ()> {
        static M: Mutex<()> = Mutex::new(());
        M.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Many pool workers starting and stopping streams at once: every start gets a slot of
    /// its own whose data is accepted, every stop frees it, and no slot leaks.
    #[test]
    fn concurrent_stream_starts_keep_their_slots() {
        let _g = statics();
        init(Duration::from_secs(5)).expect("init");
        const THREADS: usize = 8;
        const ROUNDS: usize = 50_000;
        let start = Barrier::new(THREADS);
        let lost = AtomicU64::new(0);
        std::thread::scope(|scope| {
            for t in 0..THREADS {
                let (start, lost) = (&start, &lost);
                scope.spawn(move || {
                    start.wait();
                    for r in 0..ROUNDS {
                        let Some((slot, generation, user)) = alloc_slot() else {
                            lost.fetch_add(1, Relaxed);
                            continue;
                        };
                        let handle = (t * ROUNDS + r) as i32;
                        set_slot_handle(slot, handle);
                        on_data(handle, 2, 100, user);
                        let id = StreamId {
                            handle,
                            slot,
                            generation,
                        };
                        if !stats(id).is_some_and(|st| st.bytes == 100 && st.frames == 1) {
                            lost.fetch_add(1, Relaxed);
                        }
                        free_slot(slot, generation);
                    }
                });
            }
        });
        assert_eq!(
            lost.load(Relaxed),
            0,
            "starts whose slot was taken over or whose data was rejected"
        );
        let all: Vec<_> = (0..MAX_STREAMS).map(|_| alloc_slot()).collect();
        let free = all.iter().filter(|a| a.is_some()).count();
        for (slot, generation, _) in all.into_iter().flatten() {
            free_slot(slot, generation);
        }
        assert_eq!(free, MAX_STREAMS, "stream slots leaked");
    }

    /// Producers on several threads post events in rounds while the consumer sleeps on
    /// the doorbell between rounds (there is no timer to rescue it): every round's events
    /// must wake it. A lost wake-up shows as a round that never completes.
    #[test]
    fn no_doorbell_wake_up_is_lost() {
        let _g = statics();
        init(Duration::from_secs(5)).expect("init");
        let mut rx = EventReceiver::take().expect("receiver");
        while rx.try_recv().is_some() {}
        const PRODUCERS: usize = 3;
        // A few seconds on the host; armv7 runs it under qemu.
        const ROUNDS: usize = 5_000;
        // Only a hang detector: a round takes microseconds.
        const HANG: Duration = Duration::from_secs(60);
        let round = Barrier::new(PRODUCERS + 1);
        std::thread::scope(|scope| {
            for p in 0..PRODUCERS {
                let round = &round;
                scope.spawn(move || {
                    let queue = QUEUE.get().expect("init made the queue");
                    for r in 0..ROUNDS {
                        round.wait();
                        // What `post` does, with the producer sometimes preempted between
                        // queueing and ringing: the consumer may take the event before the
                        // ring, which is the window the order of `refill` must cover.
                        let ev = Raw::Exception {
                            kind: 0x8000,
                            uid: p as i32,
                            epoch: 0,
                            handle: r as i32,
                        };
                        assert!(queue.enqueue(ev).is_ok(), "the queue has room");
                        if (r + p) % 3 == 0 {
                            std::thread::yield_now();
                        }
                        ring();
                    }
                });
            }
            smol::block_on(async {
                for r in 0..ROUNDS {
                    round.wait();
                    let mut got = 0;
                    while got < PRODUCERS {
                        match rx.recv_timeout(HANG).await {
                            Some(SdkEvent::Exception { handle, .. }) => {
                                assert_eq!(handle, r as i32, "an event of another round");
                                got += 1;
                            }
                            Some(other) => panic!("unexpected {other:?}"),
                            None => panic!(
                                "round {r}: {got} of {PRODUCERS} events, then no wake-up \
                                 (an event is queued but the doorbell stayed silent)"
                            ),
                        }
                    }
                }
            });
        });
    }

    #[test]
    fn kind_bits_round_trip() {
        assert_eq!(kind_bit(0x8000), (0, 0));
        assert_eq!(kind_bit(0x8041), (1, 1));
        assert_eq!(kind_bit(0x807f), (1, 63));
        assert_eq!(kind_bit(0x1234), (1, 63));
        assert_eq!(kind_bit(0x9000), (1, 63));
    }

    #[test]
    fn c_string_stops_at_nul() {
        assert_eq!(c_string(b"AB12\0junk"), "AB12");
        assert_eq!(c_string(b"full"), "full");
    }

    #[test]
    fn names() {
        assert_eq!(ExceptionCode::EXCHANGE.name(), "EXCEPTION_EXCHANGE");
        assert_eq!(ExceptionCode(0x8017).name(), "RESUME_EXCHANGE");
    }
}
