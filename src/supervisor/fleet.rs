//! The fleet: cameras, the bounded login job queue, the probe budget and global limits.

use core::cmp::Reverse;
use core::time::Duration;
use std::collections::{BinaryHeap, VecDeque};

use super::camera::{Camera, Counters, Input, JobMark, PortState, State, StepContext};
use super::event::{Action, ActionKind, CamId, Event, LastFailure, Session};
use super::settings::{Error, Policy, Settings, Strategy};
use super::time::{Millis, ms};

/// Capacity of the login job queue.
///
/// 256: jobs are 4-byte camera ids, so the queue is 1 KiB inline. With the default cap of
/// 8 logins in flight and ~0.5 s per login it drains in about 16 s; a longer queue would
/// only hold decisions that are stale by the time they run. When it is full a due camera
/// stays due (marked *overflow*), is counted, and is queued by the next dispatch that finds
/// room: never dropped. The simulation runs 1,000 cameras through it to prove that.
pub const JOB_QUEUE_CAPACITY: usize = 256;

/// Timer heap entries allowed before superseded ones are compacted away: 4 per camera
/// (16 bytes each) + slack.
fn timer_limit(cams: usize) -> usize {
    4 * cams + 64
}

/// Largest probe burst, in thousandths of a probe: a tenth of a second's budget (at least
/// one probe), so no one-second window sees more than `probe_rate` + 10 %.
fn probe_burst(p: &Policy) -> u64 {
    (u64::from(p.probe_rate) * 100).max(1000)
}

/// What the store keeps for one camera, with times relative to `now`.
///
/// The store converts the remaining durations to wall-clock times when it writes, and back
/// when it loads (see `crate::store`); the core only ever sees durations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Persisted {
    /// Consecutive failures (the backoff exponent).
    pub consecutive_failures: u32,
    /// Remaining backoff before the next attempt, if one is scheduled.
    pub next_attempt_in: Option<Duration>,
    /// Credentials were rejected; no login until they change or an operator releases.
    pub auth_hold: bool,
    /// Remaining device lock wait (remaining lock + margin), if locked.
    pub lock_left: Option<Duration>,
    /// The last failure.
    pub last_error: Option<(crate::backend::ErrorClass, u32)>,
    /// Logins issued so far.
    pub login_attempts: u64,
    /// Sessions lost so far.
    pub reconnects: u64,
    /// How long ago the camera was last online (`Some(0)` while online).
    pub last_online_ago: Option<Duration>,
}

/// One camera's status for `hikwatch status` and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CameraSnapshot {
    /// The state (see [`State::name`] for the stable spelling).
    pub state: State,
    /// When the state was entered.
    pub since: Millis,
    /// The live session, if any.
    pub session: Option<Session>,
    /// Whether a stream is running.
    pub streaming: bool,
    /// Consecutive failures (backoff exponent).
    pub consecutive_failures: u32,
    /// The last failure.
    pub last_error: Option<LastFailure>,
    /// When the next login may be issued (after backoff, probe gate, ticker), if waiting.
    pub next_attempt: Option<Millis>,
    /// The raw backoff due time, before probe gating.
    pub backoff_until: Option<Millis>,
    /// End of the lock wait, when locked.
    pub lock_until: Option<Millis>,
    /// In the job queue (or overflowed, waiting for room).
    pub queued: bool,
    /// What the last probe said.
    pub port: PortState,
    /// Counters.
    pub counters: Counters,
}

/// Fleet-wide numbers for status and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FleetSnapshot {
    /// Cameras per state, indexed by [`State::index`].
    pub states: [u32; State::COUNT],
    /// Jobs in the queue.
    pub queue_depth: u32,
    /// Due cameras waiting for room in the queue right now.
    pub overflow_pending: u32,
    /// Times a due camera found the queue full (each is retried, never dropped).
    pub queue_overflows: u64,
    /// Overflowed cameras that later got their place in the queue.
    pub queue_recovered: u64,
    /// Logins in flight (issued minus results and deadline resolutions).
    pub logins_in_flight: u32,
    /// Logins currently allowed in flight (cap, workers, resource throttle).
    pub login_slots: u32,
    /// Logins granted so far.
    pub logins_dispatched: u64,
    /// Cameras waiting for a probe token.
    pub probes_waiting: u32,
    /// Resource errors seen so far (each throttles the fleet).
    pub resource_throttles: u64,
    /// Whether the fleet is throttled after a resource error.
    pub throttled: bool,
}

/// The fleet-level supervisor: sans-IO, driven by the runtime (or the simulation).
///
/// Drive it with:
/// - [`handle`](Self::handle) for every event (SDK results, callbacks, config, operator);
/// - [`tick`](Self::tick) whenever [`next_wakeup`](Self::next_wakeup) has passed;
/// - then execute the actions it appended to your buffer (reuse one `Vec`: no allocation
///   per event once it has grown).
///
/// `now` must come from one monotonic clock; a `now` earlier than a previous one is treated
/// as the previous one.
#[derive(Debug)]
pub struct Supervisor {
    p: Policy,
    rng: fastrand::Rng,
    cams: Vec<Camera>,
    /// Camera wake-ups, earliest first. Entries are lazy: one whose time is not the
    /// camera's `heap_wake` any more is skipped when popped.
    timers: BinaryHeap<Reverse<(u64, u32)>>,
    /// Login jobs, at most one per camera (coalesced through `Camera::job`).
    jobs: heapless::Deque<CamId, JOB_QUEUE_CAPACITY>,
    /// Cameras marked `JobMark::Overflow`.
    overflowed: u32,
    overflow_cursor: usize,
    /// Cameras waiting for a probe token, FIFO (one entry per camera at most).
    probes: VecDeque<CamId>,
    /// Probe budget in thousandths of a probe.
    probe_budget: u64,
    probe_budget_at: Millis,
    logins_in_flight: u32,
    throttle_until: Millis,
    last_now: Millis,
    queue_overflows: u64,
    queue_recovered: u64,
    logins_dispatched: u64,
    resource_throttles: u64,
}

impl Supervisor {
    /// A supervisor with no cameras. `seed` feeds the jitter PRNG (use a random seed in the
    /// daemon, a fixed one in tests).
    ///
    /// # Errors
    /// [`Error::Setting`] naming the first setting that is out of range.
    pub fn new(settings: &Settings, seed: u64) -> Result<Supervisor, Error> {
        let p = settings.policy()?;
        Ok(Supervisor {
            p,
            rng: fastrand::Rng::with_seed(seed),
            cams: Vec::new(),
            timers: BinaryHeap::new(),
            jobs: heapless::Deque::new(),
            overflowed: 0,
            overflow_cursor: 0,
            probes: VecDeque::new(),
            probe_budget: probe_burst(&p),
            probe_budget_at: Millis::ZERO,
            logins_in_flight: 0,
            throttle_until: Millis::ZERO,
            last_now: Millis::ZERO,
            queue_overflows: 0,
            queue_recovered: 0,
            logins_dispatched: 0,
            resource_throttles: 0,
        })
    }

    /// The strategy in use.
    #[must_use]
    pub fn strategy(&self) -> Strategy {
        self.p.strategy
    }

    /// Adds a camera; its first login is spread over `start_spread`. Reuses the slot of a
    /// removed camera (its tokens keep counting up, so late results stay recognisable).
    pub fn add_camera(&mut self, now: Millis, stream: bool) -> CamId {
        let now = self.advance(now);
        let slot = self.cams.iter().position(|c| c.state == State::Removed);
        let (index, first_token) = match slot {
            Some(i) => (i, self.cams[i].next_token()),
            None => (self.cams.len(), 1),
        };
        let id = CamId(u32::try_from(index).unwrap_or(u32::MAX));
        let mut scratch = Vec::new();
        let mut cx = StepContext {
            p: &self.p,
            rng: &mut self.rng,
            now,
            out: &mut scratch,
        };
        let mut cam = Camera::new(id, stream, first_token, &mut cx);
        if index < self.cams.len() {
            // The old slot may still have a queue or probe-queue entry: inherit the marks
            // so the entry is accounted for (coalescing and the overflow count stay exact).
            cam.job = self.cams[index].job;
            cam.probe_waiting = self.cams[index].probe_waiting;
            self.cams[index] = cam;
        } else {
            self.cams.push(cam);
            // Room for every camera in the probe FIFO and for the timer heap up to its
            // compaction threshold: steady-state events never allocate.
            self.probes
                .reserve(self.cams.len().saturating_sub(self.probes.len()));
            let want = timer_limit(self.cams.len()) + 1;
            self.timers.reserve(want.saturating_sub(self.timers.len()));
        }
        self.schedule(index, now);
        id
    }

    /// Puts a camera added just now into its persisted situation (right after
    /// [`add_camera`](Self::add_camera), before its first `tick`). Locks and holds are kept
    /// exactly; a pending backoff is kept but never earlier than a start-spread slot, so a
    /// restart cannot turn into a login storm. If the credentials changed since the file
    /// was written, pass `auth_hold: false` (or send `CredentialsChanged` after).
    ///
    /// # Errors
    /// [`Error::UnknownCamera`], or [`Error::NotFresh`] once the camera has issued a call.
    pub fn restore(&mut self, cam: CamId, p: &Persisted, now: Millis) -> Result<(), Error> {
        let now = self.advance(now);
        let i = self.index(cam)?;
        let c = &self.cams[i];
        if c.state != State::Starting || c.counters.login_attempts != 0 || c.job != JobMark::None {
            return Err(Error::NotFresh(cam.0));
        }
        let last_error = p.last_error.map(|(class, code)| LastFailure {
            class,
            code,
            cause: None,
            at: now,
        });
        let mut scratch = Vec::new();
        let mut cx = StepContext {
            p: &self.p,
            rng: &mut self.rng,
            now,
            out: &mut scratch,
        };
        let c = &mut self.cams[i];
        c.counters.login_attempts = p.login_attempts;
        c.counters.drops = p.reconnects;
        c.restore(
            &mut cx,
            p.consecutive_failures,
            p.next_attempt_in.map_or(0, ms),
            p.auth_hold,
            p.lock_left.map(ms),
            last_error,
        );
        self.schedule(i, now);
        Ok(())
    }

    /// Feeds one event for one camera; appends the resulting actions to `out`.
    /// Events for unknown cameras are ignored.
    pub fn handle(&mut self, now: Millis, cam: CamId, event: Event, out: &mut Vec<Action>) {
        let now = self.advance(now);
        let Ok(i) = self.index(cam) else { return };
        self.run(i, now, out, |c, cx| c.step(cx, Input::Event(event)));
        self.dispatch(now, out);
    }

    /// Fires every timer due at `now` (deadlines, heartbeats, backoff ends, probes, locks)
    /// and hands out login slots and probe tokens; appends the actions to `out`.
    pub fn tick(&mut self, now: Millis, out: &mut Vec<Action>) {
        let now = self.advance(now);
        while let Some(&Reverse((t, idx))) = self.timers.peek() {
            if t > now.0 {
                break;
            }
            self.timers.pop();
            let i = idx as usize;
            if self.cams.get(i).and_then(|c| c.heap_wake) != Some(Millis(t)) {
                continue; // superseded
            }
            self.cams[i].heap_wake = None;
            self.run(i, now, out, Camera::on_timers);
        }
        self.dispatch(now, out);
    }

    /// When [`tick`](Self::tick) should be called next (it may be called earlier).
    #[must_use]
    pub fn next_wakeup(&self) -> Option<Millis> {
        let mut next = self.timers.peek().map(|Reverse((t, _))| Millis(*t));
        let mut consider = |t: Millis| next = Some(next.map_or(t, |n| n.min(t)));
        if !self.probes.is_empty() {
            consider(self.probe_token_at());
        }
        if !self.jobs.is_empty() && self.throttle_until > self.last_now {
            consider(self.throttle_until);
        }
        next
    }

    /// Status of one camera (`None` for an unknown id).
    #[must_use]
    pub fn status(&self, cam: CamId) -> Option<CameraSnapshot> {
        let c = self.cams.get(cam.0 as usize)?;
        Some(CameraSnapshot {
            state: c.state,
            since: c.since,
            session: c.session(),
            streaming: c.streaming(),
            consecutive_failures: c.failures(),
            last_error: c.last_error,
            next_attempt: c.attempt_due(&self.p),
            backoff_until: c.backoff_until(),
            lock_until: c.lock_until(),
            queued: c.job != JobMark::None,
            port: c.port(),
            counters: c.counters,
        })
    }

    /// Fleet-wide numbers.
    #[must_use]
    pub fn fleet_status(&self) -> FleetSnapshot {
        let mut states = [0u32; State::COUNT];
        for c in &self.cams {
            states[c.state.index()] += 1;
        }
        FleetSnapshot {
            states,
            queue_depth: u32::try_from(self.jobs.len()).unwrap_or(u32::MAX),
            overflow_pending: self.overflowed,
            queue_overflows: self.queue_overflows,
            queue_recovered: self.queue_recovered,
            logins_in_flight: self.logins_in_flight,
            login_slots: self.login_slots(),
            logins_dispatched: self.logins_dispatched,
            probes_waiting: u32::try_from(self.probes.len()).unwrap_or(u32::MAX),
            resource_throttles: self.resource_throttles,
            throttled: self.throttle_until > self.last_now,
        }
    }

    /// The persisted view of one camera, with durations relative to `now`.
    #[must_use]
    pub fn persisted(&self, cam: CamId, now: Millis) -> Option<Persisted> {
        let c = self.cams.get(cam.0 as usize)?;
        let now = now.max(self.last_now);
        let waiting = matches!(c.state, State::Backoff | State::Stuck);
        Some(Persisted {
            consecutive_failures: c.failures(),
            next_attempt_in: c
                .backoff_until()
                .filter(|_| waiting)
                .map(|t| t.duration_since(now)),
            auth_hold: c.state == State::AuthHold,
            lock_left: c
                .lock_until()
                .filter(|_| c.state == State::Locked)
                .map(|t| t.duration_since(now)),
            last_error: c.last_error.map(|e| (e.class, e.code)),
            login_attempts: c.counters.login_attempts,
            reconnects: c.counters.drops,
            last_online_ago: if c.state.has_session() {
                Some(Duration::ZERO)
            } else {
                c.last_online().map(|t| t.duration_since(now))
            },
        })
    }

    /// Ids of all camera slots (removed ones included; check the state).
    pub fn cameras(&self) -> impl Iterator<Item = CamId> + '_ {
        self.cams.iter().map(|c| c.id)
    }

    // ---------------------------------------------------------------- internals

    fn advance(&mut self, now: Millis) -> Millis {
        self.last_now = self.last_now.max(now);
        self.last_now
    }

    fn index(&self, cam: CamId) -> Result<usize, Error> {
        let i = cam.0 as usize;
        if i < self.cams.len() {
            Ok(i)
        } else {
            Err(Error::UnknownCamera(cam.0))
        }
    }

    /// Runs `f` on camera `i`, then settles the fleet bookkeeping it may have changed.
    fn run(
        &mut self,
        i: usize,
        now: Millis,
        out: &mut Vec<Action>,
        f: impl FnOnce(&mut Camera, &mut StepContext<'_>),
    ) {
        let before_key = self.cams[i].persist_key();
        let had_login = self.cams[i].login_in_flight();
        {
            let mut cx = StepContext {
                p: &self.p,
                rng: &mut self.rng,
                now,
                out,
            };
            f(&mut self.cams[i], &mut cx);
        }
        let c = &mut self.cams[i];
        match (had_login, c.login_in_flight()) {
            (false, true) => self.logins_in_flight += 1,
            (true, false) => self.logins_in_flight = self.logins_in_flight.saturating_sub(1),
            _ => {}
        }
        if c.sig_resource {
            c.sig_resource = false;
            self.resource_throttles += 1;
            self.throttle_until = now.plus(self.p.resource_throttle);
        }
        if c.persist_key() != before_key {
            out.push(Action {
                cam: c.id,
                kind: ActionKind::Persist,
            });
        }
        self.enqueue_if_due(i, now);
        self.schedule(i, now);
    }

    fn enqueue_if_due(&mut self, i: usize, now: Millis) {
        let c = &mut self.cams[i];
        if c.job == JobMark::None && c.wants_login(&self.p, now) {
            if self.jobs.push_back(c.id).is_ok() {
                c.job = JobMark::Queued;
            } else {
                c.job = JobMark::Overflow;
                self.overflowed += 1;
                self.queue_overflows += 1;
            }
        }
        if !c.probe_waiting && c.wants_probe(now) {
            c.probe_waiting = true;
            self.probes.push_back(c.id);
        }
    }

    fn schedule(&mut self, i: usize, now: Millis) {
        let Some(w) = self.cams[i].next_wake(&self.p) else {
            return;
        };
        // Anything due now was consumed by `run`; never schedule into the past (that
        // would spin the tick loop).
        let w = w.max(now.plus(1));
        if self.cams[i].heap_wake.is_none_or(|h| w < h) {
            if self.timers.len() >= timer_limit(self.cams.len()) {
                self.compact_timers(); // drop superseded entries instead of growing
            }
            let c = &mut self.cams[i];
            c.heap_wake = Some(w);
            self.timers.push(Reverse((w.0, c.id.0)));
        }
    }

    /// Keeps only each camera's live wake-up (at most one per camera). Reuses the heap's
    /// buffer: no allocation.
    fn compact_timers(&mut self) {
        let mut v = core::mem::take(&mut self.timers).into_vec();
        v.clear();
        v.extend(
            self.cams
                .iter()
                .filter_map(|c| c.heap_wake.map(|w| Reverse((w.0, c.id.0)))),
        );
        self.timers = BinaryHeap::from(v);
    }

    fn login_slots(&self) -> u32 {
        let mut slots = self.p.max_logins;
        if self.p.traits.worker_slots {
            slots = slots.min(self.p.workers);
        }
        if self.throttle_until > self.last_now {
            slots = (slots / 4).max(1);
        }
        slots
    }

    fn probe_token_at(&self) -> Millis {
        if self.probe_budget >= 1000 {
            return self.probe_budget_at;
        }
        let missing = 1000 - self.probe_budget;
        self.probe_budget_at
            .plus(missing.div_ceil(u64::from(self.p.probe_rate)))
    }

    fn refill_probe_budget(&mut self, now: Millis) {
        let elapsed = now.since(self.probe_budget_at);
        let rate = u64::from(self.p.probe_rate);
        let cap = probe_burst(&self.p);
        self.probe_budget = self
            .probe_budget
            .saturating_add(elapsed.saturating_mul(rate))
            .min(cap);
        self.probe_budget_at = now;
    }

    /// Moves overflowed cameras into free queue places, oldest scan position first.
    fn refill_from_overflow(&mut self, now: Millis) {
        let n = self.cams.len();
        let mut scanned = 0;
        while self.overflowed > 0 && !self.jobs.is_full() && scanned < n {
            let i = self.overflow_cursor % n;
            self.overflow_cursor = (i + 1) % n;
            scanned += 1;
            if self.cams[i].job != JobMark::Overflow {
                continue;
            }
            self.overflowed -= 1;
            let c = &mut self.cams[i];
            if c.wants_login(&self.p, now) && self.jobs.push_back(c.id).is_ok() {
                c.job = JobMark::Queued;
                self.queue_recovered += 1;
            } else {
                c.job = JobMark::None;
                self.schedule(i, now);
            }
        }
    }

    /// Grants login slots to queued jobs and probe tokens to waiting probes.
    fn dispatch(&mut self, now: Millis, out: &mut Vec<Action>) {
        loop {
            self.refill_from_overflow(now);
            if self.logins_in_flight >= self.login_slots() {
                break;
            }
            let Some(cam) = self.jobs.pop_front() else {
                break;
            };
            let i = cam.0 as usize;
            self.cams[i].job = JobMark::None;
            if self.cams[i].wants_login(&self.p, now) {
                self.logins_dispatched += 1;
                self.run(i, now, out, |c, cx| c.step(cx, Input::LoginGranted));
            } else {
                self.schedule(i, now); // stale job; the camera's own timer takes over
            }
        }
        self.refill_from_overflow(now);

        if self.probes.is_empty() {
            return;
        }
        self.refill_probe_budget(now);
        while self.probe_budget >= 1000 {
            let Some(cam) = self.probes.pop_front() else {
                break;
            };
            let i = cam.0 as usize;
            self.cams[i].probe_waiting = false;
            if self.cams[i].wants_probe(now) {
                self.probe_budget -= 1000;
                self.run(i, now, out, |c, cx| c.step(cx, Input::ProbeGranted));
            } else {
                self.schedule(i, now);
            }
        }
    }
}
