//! A bounded pool of named threads for blocking calls, each with a deadline.
//!
//! It knows nothing about the vendor SDK, which is its one user (`crate::sdk::SdkPool`): a
//! job is any closure returning `Result<T, E>`, `E` being the caller's error type. HCNetSDK
//! calls block (a login to a silent socket takes the receive timeout; a bad network can
//! make one hang far longer), so none of them may run on the executor. The pool runs them
//! on its own threads and hands the caller an async result.
//!
//! - **Bounded:** `threads` workers and a job queue of `queue` entries; a full queue is an
//!   immediate [`CallError::Busy`], never unbounded growth.
//! - **Deadlines:** the caller races the result against a timer. A call still queued at
//!   its deadline is cancelled (it never runs). A call already running is reported as
//!   [`CallError::DeadlineExceeded`] with `started: true`, so the camera can be marked
//!   stuck; its worker is counted as stuck and, while fewer than `max_threads` threads
//!   exist, a replacement is started so the other cameras' calls keep flowing.
//! - **Late results:** the eventual result of a stuck call is still delivered through
//!   [`Late`]. When nobody is waiting for it any more (the [`Late`] or the caller's future
//!   was dropped), the job's `orphan` hook runs on the worker with the value — for a login
//!   that is a logout, so a late success never leaks a session.
//! - When a stuck worker finishes and the pool has more live workers than it needs, it
//!   exits, so the pool shrinks back to `threads`.
//! - **Teardown calls must run** ([`Pool::run_teardown`]: logout, stop stream). A session
//!   handle that is never logged out stays alive inside the SDK (its own heartbeat keeps
//!   the device-side session open), so these are never cancelled in the queue and never
//!   refused as busy: at their deadline the caller gets
//!   [`CallError::DeadlineExceeded`] with the eventual result in [`Late`], whether the call
//!   had started or not. Their number is bounded by the live handles (each is torn down
//!   once), so the queue bound does not need to cover them.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering::*};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use async_channel::{Receiver, Sender};
use async_io::Timer;
use futures_lite::FutureExt;

use super::{BackendFailure, ErrorClass};

/// Sizing of a [`Pool`].
#[derive(Clone, Debug)]
pub struct PoolOptions {
    /// Worker threads kept running (default 4: logins are mostly waiting on the network,
    /// and the SDK serialises much internally).
    pub threads: usize,
    /// Hard limit of threads including replacements for stuck workers (default 16).
    pub max_threads: usize,
    /// Jobs waiting for a worker (default 1024).
    pub queue: usize,
    /// Thread name prefix (default `sdk`; Linux shows 15 characters).
    pub name: String,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            threads: 4,
            max_threads: 16,
            queue: 1024,
            name: "sdk".into(),
        }
    }
}

/// Why a pooled call did not return a value. `E` is the error type of the call itself.
pub enum CallError<T, E> {
    /// The call itself (or the argument check before it) failed.
    Failed(E),
    /// The deadline passed.
    DeadlineExceeded {
        /// The call's name (e.g. `login`).
        call: &'static str,
        /// The deadline that passed.
        deadline: Duration,
        /// Whether the call had started on a worker (false: it was cancelled in the queue
        /// and will never run). A started call is stuck inside the SDK.
        started: bool,
        /// The eventual result of a started call.
        late: Late<T, E>,
    },
    /// The job queue is full.
    Busy,
}

impl<T, E: BackendFailure> CallError<T, E> {
    /// The backend's own error code (for display), for failed calls.
    pub fn code(&self) -> Option<u32> {
        match self {
            CallError::Failed(e) => e.code(),
            _ => None,
        }
    }

    /// The reconnect class: the call error's; a missed deadline is a
    /// [`ErrorClass::Timeout`], a full queue a [`ErrorClass::Resource`].
    pub fn class(&self) -> ErrorClass {
        match self {
            CallError::Failed(e) => e.class(),
            CallError::DeadlineExceeded { .. } => ErrorClass::Timeout,
            CallError::Busy => ErrorClass::Resource,
        }
    }
}

impl<T, E: fmt::Debug> fmt::Debug for CallError<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
            CallError::DeadlineExceeded {
                call,
                deadline,
                started,
                ..
            } => f
                .debug_struct("DeadlineExceeded")
                .field("call", call)
                .field("deadline", deadline)
                .field("started", started)
                .finish_non_exhaustive(),
            CallError::Busy => f.write_str("Busy"),
        }
    }
}

impl<T, E: fmt::Display> fmt::Display for CallError<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Failed(e) => e.fmt(f),
            CallError::DeadlineExceeded {
                call,
                deadline,
                started: true,
                ..
            } => write!(
                f,
                "{call} still running after its {deadline:?} deadline (stuck)"
            ),
            CallError::DeadlineExceeded {
                call,
                deadline,
                started: false,
                ..
            } => write!(
                f,
                "{call} not started within its {deadline:?} deadline (cancelled)"
            ),
            CallError::Busy => f.write_str("the blocking call queue is full"),
        }
    }
}

impl<T, E: std::error::Error + 'static> std::error::Error for CallError<T, E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CallError::Failed(e) => Some(e),
            _ => None,
        }
    }
}

/// The eventual result of a call that missed its deadline.
pub struct Late<T, E> {
    rx: Option<Receiver<Result<T, E>>>,
}

impl<T, E> fmt::Debug for Late<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Late")
            .field("pending", &self.rx.is_some())
            .finish()
    }
}

impl<T, E> Late<T, E> {
    /// Waits for the late result; `None` when the call never ran (cancelled) or the
    /// worker died. Dropping the `Late` instead hands a late success to the call's orphan
    /// hook (a late login is logged out).
    pub async fn result(mut self) -> Option<Result<T, E>> {
        match self.rx.take() {
            Some(rx) => rx.recv().await.ok(),
            None => None,
        }
    }
}

const QUEUED: u8 = 0;
const RUNNING: u8 = 1;
const STUCK: u8 = 2;
const DONE: u8 = 3;
const CANCELLED: u8 = 4;

type PoolTask = Box<dyn FnOnce() + Send>;

/// What to do with a late success nobody waits for (e.g. log the session out).
pub type Orphan<T> = Box<dyn FnOnce(T) + Send>;

struct PoolState {
    jobs: VecDeque<PoolTask>,
    /// Worker threads alive.
    live: usize,
    /// Of those, running a call past its deadline.
    stuck: usize,
    /// Threads ever started (for names).
    spawned: usize,
    /// Set when the last [`Pool`] handle is dropped.
    closed: bool,
}

struct Inner {
    opts: PoolOptions,
    state: Mutex<PoolState>,
    work: Condvar,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // A worker never panics while holding the lock (jobs run unlocked), so poisoning
        // cannot carry a broken invariant; recover the guard.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Counters of a [`Pool`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStats {
    /// Worker threads alive.
    pub live: usize,
    /// Of those, stuck in a call past its deadline.
    pub stuck: usize,
    /// Jobs waiting.
    pub queued: usize,
    /// Threads started since the pool was created.
    pub spawned: usize,
}

/// The blocking-call pool. Cloning gives another handle to the same pool; when the last
/// handle is dropped the idle workers exit (stuck ones exit when their call returns).
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
    _closer: Arc<Closer>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("stats", &self.stats())
            .finish()
    }
}

/// Closes the pool when the last [`Pool`] handle goes (workers hold `Inner`, not this).
struct Closer(Arc<Inner>);

impl Drop for Closer {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.work.notify_all();
    }
}

impl Pool {
    /// Starts `opts.threads` workers.
    ///
    /// # Errors
    ///
    /// [`std::io::ErrorKind::InvalidInput`] for zero threads, a hard limit below
    /// `threads` or an empty queue; the OS error when it refuses to start a thread.
    pub fn new(opts: PoolOptions) -> std::io::Result<Pool> {
        if opts.threads == 0 || opts.max_threads < opts.threads || opts.queue == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "need 0 < threads <= max_threads and queue > 0, got {} / {} / {}",
                    opts.threads, opts.max_threads, opts.queue
                ),
            ));
        }
        let n = opts.threads;
        let inner = Arc::new(Inner {
            opts,
            state: Mutex::new(PoolState {
                jobs: VecDeque::new(),
                live: 0,
                stuck: 0,
                spawned: 0,
                closed: false,
            }),
            work: Condvar::new(),
        });
        for _ in 0..n {
            spawn_worker(&inner)?;
        }
        Ok(Pool {
            _closer: Arc::new(Closer(inner.clone())),
            inner,
        })
    }

    /// Current counters.
    pub fn stats(&self) -> PoolStats {
        let s = self.inner.lock();
        PoolStats {
            live: s.live,
            stuck: s.stuck,
            queued: s.jobs.len(),
            spawned: s.spawned,
        }
    }

    /// Runs `f` on a worker; resolves with its result, or with
    /// [`CallError::DeadlineExceeded`] when `deadline` passes first (counted from now,
    /// queueing included). `orphan` receives a success nobody waits for any more.
    pub async fn run<T, E, F>(
        &self,
        call: &'static str,
        deadline: Duration,
        f: F,
        orphan: Option<Orphan<T>>,
    ) -> Result<T, CallError<T, E>>
    where
        T: Send + 'static,
        E: Send + 'static,
        F: FnOnce() -> Result<T, E> + Send + 'static,
    {
        self.submit(call, deadline, f, orphan, false).await
    }

    /// Like [`Pool::run`] for a call that must happen eventually (logout, stop stream):
    /// accepted even when the queue is full and never cancelled. At the deadline the
    /// caller gets [`CallError::DeadlineExceeded`] (`started` tells whether a worker had
    /// picked it up) and the result arrives later through [`Late`].
    pub async fn run_teardown<T, E, F>(
        &self,
        call: &'static str,
        deadline: Duration,
        f: F,
    ) -> Result<T, CallError<T, E>>
    where
        T: Send + 'static,
        E: Send + 'static,
        F: FnOnce() -> Result<T, E> + Send + 'static,
    {
        self.submit(call, deadline, f, None, true).await
    }

    async fn submit<T, E, F>(
        &self,
        call: &'static str,
        deadline: Duration,
        f: F,
        orphan: Option<Orphan<T>>,
        must_run: bool,
    ) -> Result<T, CallError<T, E>>
    where
        T: Send + 'static,
        E: Send + 'static,
        F: FnOnce() -> Result<T, E> + Send + 'static,
    {
        let (tx, rx) = async_channel::bounded::<Result<T, E>>(1);
        let phase = Arc::new(AtomicU8::new(QUEUED));
        let job_phase = phase.clone();
        let inner = self.inner.clone();
        let job: PoolTask = Box::new(move || run_job(&inner, &job_phase, f, tx, orphan));
        {
            let mut s = self.inner.lock();
            if !must_run && s.jobs.len() >= self.inner.opts.queue {
                return Err(CallError::Busy);
            }
            s.jobs.push_back(job);
        }
        self.inner.work.notify_one();

        let timed_out = async {
            Timer::after(deadline).await;
            None
        };
        match async { rx.recv().await.ok() }.or(timed_out).await {
            Some(r) => r.map_err(CallError::Failed),
            None => {
                if must_run && phase.load(Acquire) == QUEUED {
                    // Still waiting for a worker; it will run, and its result comes late.
                    return Err(CallError::DeadlineExceeded {
                        call,
                        deadline,
                        started: false,
                        late: Late { rx: Some(rx) },
                    });
                }
                if !must_run
                    && phase
                        .compare_exchange(QUEUED, CANCELLED, AcqRel, Acquire)
                        .is_ok()
                {
                    return Err(CallError::DeadlineExceeded {
                        call,
                        deadline,
                        started: false,
                        late: Late { rx: None },
                    });
                }
                if self.mark_stuck(&phase, call, deadline) {
                    return Err(CallError::DeadlineExceeded {
                        call,
                        deadline,
                        started: true,
                        late: Late { rx: Some(rx) },
                    });
                }
                // It finished just now: the result is in the channel (or the worker died).
                match rx.recv().await {
                    Ok(r) => r.map_err(CallError::Failed),
                    Err(_) => Err(CallError::DeadlineExceeded {
                        call,
                        deadline,
                        started: true,
                        late: Late { rx: None },
                    }),
                }
            }
        }
    }

    /// Marks a running call stuck (under the state lock, so the worker's decrement can
    /// never precede this increment) and starts a replacement worker when allowed.
    /// Returns false when the call was not running any more.
    fn mark_stuck(&self, phase: &AtomicU8, call: &'static str, deadline: Duration) -> bool {
        let mut s = self.inner.lock();
        if phase
            .compare_exchange(RUNNING, STUCK, AcqRel, Acquire)
            .is_err()
        {
            return false;
        }
        s.stuck += 1;
        let healthy = s.live - s.stuck.min(s.live);
        let want_more = healthy < self.inner.opts.threads && s.live < self.inner.opts.max_threads;
        let (live, stuck) = (s.live, s.stuck);
        drop(s);
        log::warn!(
            "{}: {call} exceeded its {deadline:?} deadline; {stuck} of {live} workers stuck",
            self.inner.opts.name
        );
        if want_more {
            if let Err(e) = spawn_worker(&self.inner) {
                log::error!(
                    "{}: cannot start a replacement worker: {e}",
                    self.inner.opts.name
                );
            }
        } else if healthy == 0 {
            log::error!(
                "{}: all {live} workers are stuck and the hard limit {} is reached",
                self.inner.opts.name,
                self.inner.opts.max_threads
            );
        }
        true
    }
}

fn run_job<T, E, F>(
    inner: &Inner,
    phase: &AtomicU8,
    f: F,
    tx: Sender<Result<T, E>>,
    orphan: Option<Orphan<T>>,
) where
    F: FnOnce() -> Result<T, E>,
{
    if phase
        .compare_exchange(QUEUED, RUNNING, AcqRel, Acquire)
        .is_err()
    {
        return; // cancelled at its deadline before it started
    }
    let result = f();
    let was = phase.swap(DONE, AcqRel);
    if was == STUCK {
        inner.lock().stuck -= 1;
    }
    if let Err(e) = tx.try_send(result) {
        // Nobody is waiting (the caller's future or its `Late` was dropped).
        if let (Ok(v), Some(hook)) = (e.into_inner(), orphan) {
            hook(v);
        }
    }
}

fn spawn_worker(inner: &Arc<Inner>) -> std::io::Result<()> {
    let id = {
        let mut s = inner.lock();
        s.live += 1;
        s.spawned += 1;
        s.spawned
    };
    let name = format!("{}-{id}", inner.opts.name);
    let worker = inner.clone();
    let r = std::thread::Builder::new()
        .name(name)
        .spawn(move || worker_loop(&worker));
    if r.is_err() {
        inner.lock().live -= 1;
    }
    r.map(drop)
}

fn worker_loop(inner: &Inner) {
    let mut s = inner.lock();
    loop {
        // Shrink back after stuck workers were replaced and then came back.
        if s.live - s.stuck > inner.opts.threads || (s.closed && s.jobs.is_empty()) {
            s.live -= 1;
            return;
        }
        match s.jobs.pop_front() {
            Some(job) => {
                drop(s);
                job();
                s = inner.lock();
            }
            None => {
                s = inner.work.wait(s).unwrap_or_else(|p| p.into_inner());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error type of the test jobs.
    #[derive(Debug)]
    struct JobFailed;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    fn pool(threads: usize, max: usize) -> Pool {
        Pool::new(PoolOptions {
            threads,
            max_threads: max,
            queue: 64,
            name: "t".into(),
        })
        .expect("pool")
    }

    #[test]
    fn runs_and_returns() {
        let p = pool(2, 4);
        let r = smol::block_on(p.run("x", Duration::from_secs(5), || Ok::<_, JobFailed>(7), None));
        assert_eq!(r.ok(), Some(7));
        let r: Result<(), _> =
            smol::block_on(p.run("x", Duration::from_secs(5), || Err(JobFailed), None));
        assert!(matches!(r, Err(CallError::Failed(JobFailed))));
    }

    #[test]
    fn stuck_call_is_reported_replaced_and_delivered_late() {
        let p = pool(1, 3);
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let r = smol::block_on(p.run(
            "hang",
            Duration::from_millis(100),
            move || {
                let _ = release_rx.recv();
                Ok::<_, JobFailed>(42)
            },
            None,
        ));
        let late = match r {
            Err(CallError::DeadlineExceeded {
                started: true,
                late,
                ..
            }) => late,
            other => panic!("expected a stuck call, got {other:?}"),
        };
        // The only worker is stuck; a replacement must serve the next call.
        let t = Instant::now();
        let r = smol::block_on(p.run(
            "next",
            Duration::from_secs(10),
            || Ok::<_, JobFailed>(1),
            None,
        ));
        assert_eq!(r.ok(), Some(1));
        assert!(t.elapsed() < Duration::from_secs(5));
        assert_eq!(p.stats().stuck, 1);
        release_tx.send(()).expect("release");
        assert_eq!(smol::block_on(late.result()).and_then(|r| r.ok()), Some(42));
        // The pool shrinks back to one live worker once the stuck one returned.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // Wake idle workers so the surplus one notices and exits.
            let _ = smol::block_on(p.run(
                "poke",
                Duration::from_secs(5),
                || Ok::<_, JobFailed>(()),
                None,
            ));
            let s = p.stats();
            if s.live == 1 && s.stuck == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "pool did not shrink: {s:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn orphaned_late_success_goes_to_the_hook() {
        static ORPHANS: AtomicUsize = AtomicUsize::new(0);
        fn hook(v: usize) {
            ORPHANS.fetch_add(v, Ordering::SeqCst);
        }
        let p = pool(1, 2);
        let r = smol::block_on(p.run(
            "slow",
            Duration::from_millis(50),
            || {
                std::thread::sleep(Duration::from_millis(300));
                Ok::<_, JobFailed>(5usize)
            },
            Some(Box::new(hook)),
        ));
        assert!(matches!(
            r,
            Err(CallError::DeadlineExceeded { started: true, .. })
        ));
        drop(r); // drops the Late: nobody wants the result any more
        let t = Instant::now();
        while ORPHANS.load(Ordering::SeqCst) != 5 {
            assert!(t.elapsed() < Duration::from_secs(10), "hook never ran");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn queued_call_past_deadline_is_cancelled_and_never_runs() {
        static RAN: AtomicUsize = AtomicUsize::new(0);
        let p = pool(1, 1);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let blocker = p.clone();
        let h = std::thread::spawn(move || {
            smol::block_on(blocker.run(
                "block",
                Duration::from_secs(30),
                move || {
                    let _ = rx.recv();
                    Ok::<_, JobFailed>(())
                },
                None,
            ))
        });
        std::thread::sleep(Duration::from_millis(100));
        let r = smol::block_on(p.run(
            "queued",
            Duration::from_millis(100),
            || {
                RAN.fetch_add(1, Ordering::SeqCst);
                Ok::<_, JobFailed>(())
            },
            None,
        ));
        assert!(matches!(
            r,
            Err(CallError::DeadlineExceeded { started: false, .. })
        ));
        tx.send(()).expect("release");
        assert!(h.join().expect("join").is_ok());
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(RAN.load(Ordering::SeqCst), 0);
    }

    type Waiting = std::thread::JoinHandle<Result<(), CallError<(), JobFailed>>>;

    /// A one-thread pool with a queue of one: its worker blocked until `tx` sends, and
    /// its queue holding one call, so the next ordinary call is refused.
    fn blocked_and_full(name: &str) -> (Pool, std::sync::mpsc::Sender<()>, Waiting, Waiting) {
        let p = Pool::new(PoolOptions {
            threads: 1,
            max_threads: 1,
            queue: 1,
            name: name.into(),
        })
        .expect("pool");
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let blocker = p.clone();
        let running = std::thread::spawn(move || {
            smol::block_on(blocker.run(
                "block",
                Duration::from_secs(30),
                move || {
                    let _ = rx.recv();
                    Ok::<_, JobFailed>(())
                },
                None,
            ))
        });
        std::thread::sleep(Duration::from_millis(100));
        let filler = p.clone();
        let queued = std::thread::spawn(move || {
            smol::block_on(filler.run(
                "fill",
                Duration::from_secs(30),
                || Ok::<_, JobFailed>(()),
                None,
            ))
        });
        std::thread::sleep(Duration::from_millis(100));
        (p, tx, running, queued)
    }

    #[test]
    fn teardown_calls_are_never_cancelled_nor_refused() {
        static RAN: AtomicUsize = AtomicUsize::new(0);
        let (p, tx, h, h2) = blocked_and_full("td");
        let busy = smol::block_on(p.run(
            "plain",
            Duration::from_secs(1),
            || Ok::<_, JobFailed>(()),
            None,
        ));
        assert!(matches!(busy, Err(CallError::Busy)));
        // A teardown call is accepted anyway, misses its deadline in the queue, and still
        // runs once the worker is free; its result arrives through `Late`.
        let r = smol::block_on(p.run_teardown("logout", Duration::from_millis(100), || {
            RAN.fetch_add(1, Ordering::SeqCst);
            Ok::<_, JobFailed>(5)
        }));
        let late = match r {
            Err(CallError::DeadlineExceeded {
                started: false,
                late,
                ..
            }) => late,
            other => panic!("expected a queued deadline miss, got {other:?}"),
        };
        assert_eq!(RAN.load(Ordering::SeqCst), 0);
        tx.send(()).expect("release");
        let v = smol::block_on(late.result());
        assert!(matches!(v, Some(Ok(5))), "late result: {v:?}");
        assert_eq!(RAN.load(Ordering::SeqCst), 1);
        assert!(h.join().expect("join").is_ok());
        assert!(h2.join().expect("join").is_ok());
    }

    #[test]
    fn full_queue_is_busy() {
        let (p, tx, h1, h2) = blocked_and_full("q");
        let r = smol::block_on(p.run("c", Duration::from_secs(1), || Ok::<_, JobFailed>(()), None));
        assert!(matches!(r, Err(CallError::Busy)));
        tx.send(()).expect("release");
        assert!(h1.join().expect("join").is_ok());
        assert!(h2.join().expect("join").is_ok());
    }

    #[test]
    fn bad_options_are_rejected() {
        assert!(
            Pool::new(PoolOptions {
                threads: 0,
                ..PoolOptions::default()
            })
            .is_err()
        );
    }
}
