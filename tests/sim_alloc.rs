//! "No allocation per event": a counting global allocator watches every call into the
//! supervisor while a fleet runs through drops, reconnects, probes, heartbeats, stuck
//! calls and queue overflow. After warm-up (buffers grown once), `handle` and `tick`
//! must not allocate at all.
//!
//! One test per file: the allocator is process-wide; the counter is per thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use hikwatch::sdk::ErrorClass;
use hikwatch::supervisor::{
    Action, ActionKind, Event, ExceptionKind, Millis, Session, Settings, Strategy, Supervisor,
};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: delegates to `System` unchanged; the bookkeeping only touches thread-locals
// with `const` initialisers (no allocation, no re-entrancy).
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` with allocation counting on; returns how many allocations it made.
fn counted(f: impl FnOnce()) -> u64 {
    let before = ALLOCS.with(Cell::get);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCS.with(Cell::get) - before
}

/// A tiny world answering every action at once: camera `i` is "down" (RST) while
/// `(now / 60 s + i) % 23 == 0`, so a slice of the fleet keeps dropping and returning.
fn answer(now: Millis, a: &Action, next_session: &mut i32) -> Option<Event> {
    let down = (now.0 / 60_000 + u64::from(a.cam.0)).is_multiple_of(23);
    let fail = |token| Event::LoginFailed {
        token,
        class: ErrorClass::Network,
        code: 7,
    };
    match a.kind {
        ActionKind::Login { token } if down => Some(fail(token)),
        ActionKind::Login { .. } if a.cam.0.is_multiple_of(97) && now.0.is_multiple_of(7) => {
            None // a login that never answers: deadline, stuck, late nothing
        }
        ActionKind::Login { token } => {
            *next_session = next_session.wrapping_add(1).max(1);
            Some(Event::LoginOk {
                token,
                session: Session(*next_session),
            })
        }
        ActionKind::Heartbeat { token, .. } if down => Some(Event::HeartbeatFailed {
            token,
            class: ErrorClass::Network,
            code: 7,
        }),
        ActionKind::Heartbeat { token, .. } => Some(Event::HeartbeatOk { token }),
        ActionKind::Logout { session } => Some(Event::LogoutDone { session }),
        ActionKind::Probe { token } => Some(Event::ProbeResult { token, open: !down }),
        _ => None,
    }
}

#[test]
fn steady_state_handle_and_tick_do_not_allocate() {
    // The counter itself works.
    assert_eq!(counted(|| drop(std::hint::black_box(vec![0u8; 16]))), 1);
    let settings = Settings {
        strategy: Strategy::Hybrid,
        ..Settings::default()
    };
    let mut sup = Supervisor::new(&settings, 3).expect("valid");
    let n = 1000;
    let mut now = Millis(0);
    for _ in 0..n {
        sup.add_camera(now, false);
    }
    let mut out: Vec<Action> = Vec::with_capacity(4096);
    let mut work: Vec<Action> = Vec::with_capacity(4096);
    let mut session = 0;
    let mut calls = 0u64;
    let mut allocs = 0u64;
    let warm_up = Millis(30 * 60_000);
    let end = Millis(3 * 3_600_000);
    while let Some(w) = sup.next_wakeup() {
        if w > end {
            break;
        }
        now = now.max(w);
        let measure = now > warm_up;
        let a = counted(|| sup.tick(now, &mut out));
        work.append(&mut out);
        while let Some(act) = work.pop() {
            if let Some(ev) = answer(now, &act, &mut session) {
                // An exception now and then, as the SDK would send.
                if let (Event::HeartbeatFailed { .. }, true) = (ev, act.cam.0 % 5 == 0) {
                    let a = counted(|| {
                        sup.handle(
                            now,
                            act.cam,
                            Event::Exception {
                                kind: ExceptionKind::Exchange,
                                session: Session(0),
                            },
                            &mut out,
                        );
                    });
                    if measure {
                        allocs += a;
                    }
                }
                let a = counted(|| sup.handle(now, act.cam, ev, &mut out));
                if measure {
                    allocs += a;
                    calls += 1;
                }
                work.append(&mut out);
            }
        }
        if measure {
            allocs += a;
            calls += 1;
        }
    }
    let f = sup.fleet_status();
    eprintln!(
        "{calls} supervisor calls after warm-up, {allocs} allocations; \
         logins {}, queue overflows {}",
        f.logins_dispatched, f.queue_overflows
    );
    assert!(calls > 1_000_000, "too little work: {calls}");
    assert!(f.logins_dispatched > 5_000, "the fleet must churn");
    assert_eq!(allocs, 0, "handle/tick allocated in steady state");
}
