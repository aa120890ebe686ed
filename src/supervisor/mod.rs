//! The supervisor core: a pure, sans-IO state machine per camera plus a fleet-level job
//! queue and global limits.
//!
//! No clocks, threads, sockets or SDK calls live here. Time comes in as [`Millis`], events
//! come in through [`Supervisor::handle`], timers fire through [`Supervisor::tick`], and
//! everything the outside world must do comes out as small `Copy` [`Action`]s appended to
//! a caller-owned `Vec`. The only randomness is a seeded `fastrand::Rng`, so a run is a
//! pure function of (settings, seed, inputs): the deterministic simulation in [`sim`]
//! relies on that.
//!
//! # Lessons this design implements (docs/peers.md L1–L5)
//! - **Auth is a state, not a retry rung** (L1): `AuthHold` and `Locked` send nothing
//!   authenticated; the last device try is never used.
//! - **Full jitter, spread start, reset only after a stable period** (L2).
//! - **Never give up; a first-connect failure is a drop** (L3): every camera starts in
//!   `Starting` and every failure lands in `Backoff`, `AuthHold` or `Locked`, none terminal.
//! - **Layered detection** (L4): heartbeats, SDK exceptions, stream gaps, call deadlines.
//! - **Teardown before redial, bounded everything** (L5): one session per camera, a
//!   heapless job queue, a cap on logins in flight, a fleet-wide probe budget.
//!
//! # States
//! `starting`, `connecting`, `online`, `suspect`, `backoff`, `auth-hold`, `locked`,
//! `stuck`, `stopping`, `removed` ([`State`]). *Waiting* states are `starting`, `backoff`
//! and `stuck`: a camera in one of them gets a login job once its attempt is due.
//!
//! # Transition table
//! Every row is an arm of the one `match (state, input)` in `Camera::step`
//! (src/supervisor/camera.rs). "teardown" = `StopStream` (if streaming) then `Logout`;
//! the next login waits for `LogoutDone` or the logout deadline. "backoff(pace)" = count
//! a failure and wait a jittered delay ([`Pace`]).
//!
//! | From | Input | To | Actions / notes |
//! |---|---|---|---|
//! | starting, backoff, stuck | login granted (queue turn + free slot) | connecting | `Login` |
//! | connecting | `LoginOk` (current token) | online | `Alert(Recovered)`, `StartStream` if configured, heartbeat timer |
//! | stuck | `LoginOk` of the stuck login, no newer login | online | adopt the late session |
//! | any | duplicate `LoginOk` of the live session | same | ignored |
//! | any | other `LoginOk` (late/stale, or stopping) | same | `Logout` it at once: never two sessions |
//! | connecting | `LoginFailed` auth, credentials changed meanwhile | backoff | due now, counter reset |
//! | connecting | `LoginFailed` auth, `retries_left` ≤ 1 or unknown | auth-hold | `Alert(AuthHold)` |
//! | connecting | `LoginFailed` auth, `retries_left` ≥ 2 | backoff | backoff(slow) |
//! | connecting | `LoginFailed` locked | locked | wait `secs_left` + margin (unknown: `lock_unknown`), `Alert(Locked)` |
//! | connecting | `LoginFailed` resource | backoff | backoff(slow), fleet throttled to cap/4 for `resource_throttle` |
//! | connecting | `LoginFailed` unsupported/fatal | backoff | backoff(very slow), `Alert(NeedsOperator)` |
//! | connecting | `LoginFailed` network/timeout/unknown | backoff | backoff(normal; slow for unknown) |
//! | backoff, stuck | `LoginFailed` of the stuck login | backoff / auth-hold / locked | only hold/lock info changes the plan |
//! | connecting | login deadline (or `CallStuck`) | stuck | `Alert(Stuck)`, slot released, backoff(normal) |
//! | online, suspect | heartbeat due | same | `Heartbeat` (poll, hybrid) |
//! | online, suspect | `HeartbeatOk` | online | misses = 0 |
//! | online, suspect | `HeartbeatFailed` / heartbeat deadline | suspect, or backoff after `heartbeat_misses` | teardown, `Alert(Down)` |
//! | online, suspect | `Exception` exchange/preview (event, queue) | backoff | teardown, `Alert(Down)` |
//! | online, suspect | `Exception` exchange/preview (hybrid) | suspect | one confirming `Heartbeat`; its failure ends the session |
//! | online, suspect | `Exception` relogin-failed / preview-closed | backoff | teardown |
//! | online, suspect | `LinkLost` (hybrid's link watch: the idle connection was reset) | suspect | one confirming `Heartbeat`; its failure ends the session |
//! | online, suspect | `LinkSilent` (hybrid's link watch: keepalives unanswered and no new connection) | backoff | the session ends (already confirmed by the runtime) |
//! | online, suspect | `EventStreamLost` (the device's event stream standing in for the keepalive) | as `Exception` exchange | the same rows as the SDK's exchange exception, per strategy |
//! | online, suspect | `Exception` relogin | suspect | verdict within `login_deadline` |
//! | suspect | `Exception` resume / relogin-ok (no heartbeat pending) | online | |
//! | suspect | relogin verdict timeout | backoff | teardown |
//! | online, suspect | `StreamStarted` (current) | same | gap timer starts |
//! | any | other `StreamStarted` (not a duplicate of the live one) | same | `StopStream` it |
//! | online, suspect | `StreamFailed` resource (the device's stream limit) | same | `Alert(StreamRefused)`, `StartStream` again after `resource_throttle` |
//! | online, suspect | other `StreamFailed` / stream deadline / data gap > `stream_gap` | backoff | teardown, `Alert(Down)` |
//! | online, suspect | stable period reached | same | backoff counter reset (the only reset) |
//! | any | `LogoutDone` / logout deadline | same (stopping → removed/starting) | next login allowed |
//! | backoff, stuck | probe granted (fleet probe budget) | same | `Probe` (hybrid) |
//! | backoff, stuck | `ProbeResult` | same | not open → logins skipped except blind ones; closed→open → due now |
//! | locked | lock wait over | backoff | due now |
//! | auth-hold | `CredentialsChanged` | backoff | due now, counter reset |
//! | starting, backoff, stuck | `CredentialsChanged` after an auth error | same | due now |
//! | any but stopping/removed | `AddressChanged` | stopping → starting | teardown, fresh start |
//! | any but removed | `Removed` | stopping → removed | teardown |
//! | starting, backoff, stuck | `RetryNow` / `ReleaseHold` | same | due now (cap still applies) |
//! | auth-hold | `RetryNow` / `ReleaseHold` | backoff | due now |
//! | locked | `ReleaseHold` | backoff | due now (`RetryNow` alone never breaks a lock) |
//! | any | anything else | same | ignored (stale tokens, other sessions) |
//!
//! # Loss causes
//! Every `Alert(Down)` carries a [`LossCause`]: which of the rows above ended the session
//! (missed heartbeats, a backend exception, an unfinished re-login, the device's event
//! stream, the link watch's lost or silent link, a failed stream start, a stream gap),
//! beside the failure's class and vendor code; the recorded [`LastFailure`] keeps it for
//! the status. Where a confirming heartbeat ends a suspicion (an exception, a lost link or
//! event stream), the cause is the suspicion's, not "heartbeats missed". The core only
//! names the path; the runtime words it (the SDK's exception names only for the SDK
//! backend).
//!
//! The ISAPI backend's event stream, when it stands in for the keepalive, arrives as its
//! own event, `EventStreamLost`, rather than as the SDK's `EXCEPTION_EXCHANGE`: its
//! transitions are those of that exception (same counters, same confirmation), but a
//! vendor exception code it never had stays out of the alert and the status.
//!
//! # Strategies
//! See [`Strategy`] and [`StrategyTraits`]: `poll` heartbeats and reconnects on its ticker,
//! `event` reacts to SDK callbacks, `queue` adds the worker pool, `hybrid` (default)
//! combines callbacks, heartbeats, workers and probe-gated login.
//!
//! Two **benchmark-only peers** (`scripts/bench.sh`, never for production; the config
//! warns) are rows of the same table with two extra switches, so the comparison runs the
//! same daemon: `naive` ([`StrategyTraits::naive`]: the textbook fixed 5 s ticker, one miss is a
//! loss, immediate re-login, no jitter, no error classes: it locks accounts) and `sdk`
//! ([`StrategyTraits::sdk_owns_session`]: hikwatch logs in once, then the SDK's own heartbeat and
//! re-login keep the session; a loss is `suspect` with the handle kept). The simulation's
//! invariants are claimed for the four real strategies ([`Strategy::ALL`]) only.
//!
//! # Probe-gated login (hybrid)
//! While a camera waits in `backoff`/`stuck`, a TCP probe runs every `probe_interval`,
//! within a fleet-wide budget of `probe_rate` probes per second (FIFO, so every waiting
//! camera gets its turn). Until a probe says "open", due logins are skipped except the
//! first attempt after a drop (or start) and one *blind* login per
//! `blind_login_interval` (+0–25 % jitter): at most 5 logins per outage-hour. A
//! closed→open transition makes one login due at once (at most once per
//! `reopen_login_gap`), still behind locks, holds, the teardown and the login cap.
//!
//! # Global limits
//! - Logins in flight ≤ `max_concurrent_logins` (and ≤ `workers` for queue/hybrid); a
//!   resource error cuts that to a quarter for `resource_throttle`. In flight = issued minus
//!   results minus deadline resolutions (a stuck login frees its slot at its deadline).
//! - One job per camera in a heapless queue of [`JOB_QUEUE_CAPACITY`]; overflow is
//!   counted and recovered, never dropped.
//!
//! # Teardown and sessions
//! A camera holds at most one session. Losing it emits `StopStream` then `Logout`; the
//! next login waits until `LogoutDone` arrives or `logout_deadline` passes (the SDK frees
//! the handle even for a dead device, docs/hcnetsdk.md §6, so an abandoned logout leaks nothing on our
//! side). A late successful login (after its deadline and a newer attempt) is logged out
//! at once, as is a late stream.
//!
//! # Time and persistence
//! [`Supervisor::persisted`] and [`Supervisor::restore`] exchange plain data with remaining
//! durations relative to `now`; the store converts them to and from wall time.

mod backoff;
mod camera;
mod event;
mod fleet;
mod settings;
/// The deterministic fleet simulation: test-only (the `test-support` feature, which the
/// test builds switch on; never in the shipped binary).
#[cfg(any(test, feature = "test-support"))]
pub mod sim;
mod time;

pub use backoff::Pace;
pub use camera::{Counters, PortState, State};
pub use event::{
    Action, ActionKind, Alert, CallKind, CamId, Event, ExceptionKind, LastFailure, LossCause,
    Session, StreamHandle, Token,
};
pub use fleet::{CameraSnapshot, FleetSnapshot, JOB_QUEUE_CAPACITY, Persisted, Supervisor};
pub use settings::{Error, Settings, Strategy, StrategyTraits};
pub use time::{Millis, ms};

#[cfg(test)]
mod tests;
