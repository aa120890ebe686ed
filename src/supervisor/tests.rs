//! Focused tests: one per transition or rule, driving the public [`Supervisor`] API.

use core::time::Duration;

use crate::backend::ErrorClass;

use super::*;

const HB: u64 = 5_000;

fn settings(strategy: Strategy) -> Settings {
    Settings {
        strategy,
        start_spread: Duration::ZERO,
        ..Settings::default()
    }
}

/// A one-supervisor harness with virtual time.
struct H {
    sup: Supervisor,
    now: Millis,
    out: Vec<Action>,
}

impl H {
    fn new(s: Settings) -> H {
        H {
            sup: Supervisor::new(&s, 42).expect("valid settings"),
            now: Millis(0),
            out: Vec::new(),
        }
    }

    fn with_cam(s: Settings, stream: bool) -> (H, CamId) {
        let mut h = H::new(s);
        let c = h.sup.add_camera(h.now, stream);
        (h, c)
    }

    /// Runs every timer up to `now + ms`; returns the actions, in order.
    fn advance(&mut self, ms: u64) -> Vec<Action> {
        let target = self.now.plus(ms);
        let mut all = Vec::new();
        while let Some(w) = self.sup.next_wakeup() {
            if w > target {
                break;
            }
            self.now = self.now.max(w);
            self.sup.tick(self.now, &mut self.out);
            all.append(&mut self.out);
        }
        self.now = target;
        self.sup.tick(self.now, &mut self.out);
        all.append(&mut self.out);
        all
    }

    /// Advances until an action of `cam` matches `pred` (at most `limit_ms`).
    fn until(
        &mut self,
        cam: CamId,
        limit_ms: u64,
        pred: impl Fn(&ActionKind) -> bool,
    ) -> Option<(Millis, ActionKind)> {
        let end = self.now.plus(limit_ms);
        loop {
            let next = self.sup.next_wakeup().filter(|&w| w <= end)?;
            self.now = self.now.max(next);
            self.sup.tick(self.now, &mut self.out);
            let hit = self
                .out
                .iter()
                .find(|a| a.cam == cam && pred(&a.kind))
                .map(|a| a.kind);
            self.out.clear();
            if let Some(k) = hit {
                return Some((self.now, k));
            }
        }
    }

    fn ev(&mut self, cam: CamId, e: Event) -> Vec<ActionKind> {
        self.sup.handle(self.now, cam, e, &mut self.out);
        let v = self
            .out
            .iter()
            .filter(|a| a.cam == cam)
            .map(|a| a.kind)
            .collect();
        self.out.clear();
        v
    }

    fn ev_raw(&mut self, cam: CamId, e: Event) -> Vec<Action> {
        self.sup.handle(self.now, cam, e, &mut self.out);
        self.out.drain(..).collect()
    }

    /// Runs to `end`, answering every action with `respond` (at the same instant), the
    /// actions of those answers included. Stops early when nothing is scheduled.
    fn drive(
        &mut self,
        first: Vec<Action>,
        end: Millis,
        mut respond: impl FnMut(Millis, &Action) -> Option<Event>,
    ) {
        let mut pending = first;
        loop {
            while let Some(a) = pending.pop() {
                if let Some(e) = respond(self.now, &a) {
                    self.sup.handle(self.now, a.cam, e, &mut self.out);
                    pending.append(&mut self.out);
                }
            }
            match self.sup.next_wakeup() {
                Some(w) if w <= end => {
                    self.now = self.now.max(w);
                    self.sup.tick(self.now, &mut self.out);
                    pending.append(&mut self.out);
                }
                _ => break,
            }
        }
        self.now = self.now.max(end);
    }

    fn state(&self, cam: CamId) -> State {
        self.sup.status(cam).expect("camera").state
    }

    fn status(&self, cam: CamId) -> CameraSnapshot {
        self.sup.status(cam).expect("camera")
    }

    /// Waits for the next login of `cam` and returns its token.
    fn next_login(&mut self, cam: CamId, limit_ms: u64) -> Token {
        match self.until(cam, limit_ms, |k| matches!(k, ActionKind::Login { .. })) {
            Some((_, ActionKind::Login { token })) => token,
            other => panic!("no login within {limit_ms} ms: {other:?}"),
        }
    }

    /// Logs `cam` in; returns the session.
    fn online(&mut self, cam: CamId, session: i32) -> Session {
        let token = self.next_login(cam, 60_000);
        let s = Session(session);
        let acts = self.ev(cam, Event::LoginOk { token, session: s });
        assert!(
            acts.iter()
                .any(|k| matches!(k, ActionKind::Alert(Alert::Recovered { .. }))),
            "{acts:?}"
        );
        assert_eq!(self.state(cam), State::Online);
        s
    }

    /// Fails the next login of `cam` with `class`.
    fn fail_login(&mut self, cam: CamId, class: ErrorClass, code: u32) -> Vec<ActionKind> {
        let token = self.next_login(cam, 3_600_000);
        self.ev(cam, Event::LoginFailed { token, class, code })
    }

    fn heartbeat(&mut self, cam: CamId) -> Token {
        match self.until(cam, 60_000, |k| matches!(k, ActionKind::Heartbeat { .. })) {
            Some((_, ActionKind::Heartbeat { token, .. })) => token,
            other => panic!("no heartbeat: {other:?}"),
        }
    }
}

fn has(acts: &[ActionKind], pred: impl Fn(&ActionKind) -> bool) -> bool {
    acts.iter().any(pred)
}

/// A login issued in the same call (a freed camera is dispatched at once).
fn logs_in(acts: &[ActionKind]) -> bool {
    has(acts, |k| matches!(k, ActionKind::Login { .. }))
}

fn is_logout(s: Session) -> impl Fn(&ActionKind) -> bool {
    move |k| matches!(k, ActionKind::Logout { session } if *session == s)
}

/// The loss an `Alert(Down)` among `acts` reports: cause, class, code.
fn down(acts: &[ActionKind]) -> Option<(LossCause, ErrorClass, u32)> {
    acts.iter().find_map(|k| match k {
        ActionKind::Alert(Alert::Down { cause, class, code }) => Some((*cause, *class, *code)),
        _ => None,
    })
}

/// The heartbeat sent among `acts` (a suspicion's confirmation); panics with `what`.
fn confirming_heartbeat(acts: &[ActionKind], what: &str) -> Token {
    acts.iter()
        .find_map(|k| match k {
            ActionKind::Heartbeat { token, .. } => Some(*token),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{what}: {acts:?}"))
}

fn kinds(acts: &[Action]) -> Vec<ActionKind> {
    acts.iter().map(|a| a.kind).collect()
}

/// The cause the status keeps for the last loss.
fn recorded_cause(h: &H, c: CamId) -> Option<LossCause> {
    h.status(c).last_error.and_then(|e| e.cause)
}

fn logins(acts: &[Action]) -> usize {
    acts.iter()
        .filter(|a| matches!(a.kind, ActionKind::Login { .. }))
        .count()
}

// ====================================================================== start and login

#[test]
fn first_attempts_are_spread_over_the_start_window() {
    let s = Settings {
        start_spread: Duration::from_secs(10),
        ..Settings::default()
    };
    let mut h = H::new(s);
    for _ in 0..200 {
        h.sup.add_camera(h.now, false);
    }
    let acts = h.advance(20_000);
    let mut first: Vec<u64> = Vec::new();
    let mut h2 = H::new(s);
    for _ in 0..200 {
        h2.sup.add_camera(Millis(0), false);
    }
    // Re-run with time stamps: every login's time, in 100 ms buckets.
    while let Some(w) = h2.sup.next_wakeup() {
        if w > Millis(20_000) {
            break;
        }
        let t = w;
        h2.sup.tick(t, &mut h2.out);
        for a in h2.out.drain(..) {
            if let ActionKind::Login { token } = a.kind {
                first.push(t.0);
                // Answer at once so the cap never delays the next one.
                h2.sup.handle(
                    t,
                    a.cam,
                    Event::LoginOk {
                        token,
                        session: Session(i32::try_from(a.cam.0).unwrap_or(0)),
                    },
                    &mut Vec::new(),
                );
            }
        }
    }
    assert_eq!(logins(&acts), 8, "the login cap holds back the rest");
    assert_eq!(first.len(), 200);
    assert!(first.iter().all(|&t| t <= 10_000));
    let early = first.iter().filter(|&&t| t < 5_000).count();
    assert!(
        (60..140).contains(&early),
        "{early} of 200 in the first half"
    );
}

#[test]
fn login_ok_goes_online_and_heartbeats_on_the_interval() {
    let (mut h, c) = H::with_cam(settings(Strategy::Hybrid), false);
    assert_eq!(h.state(c), State::Starting);
    let token = h.next_login(c, 1_000);
    assert_eq!(h.state(c), State::Connecting);
    let acts = h.ev(
        c,
        Event::LoginOk {
            token,
            session: Session(7),
        },
    );
    assert!(has(&acts, |k| matches!(
        k,
        ActionKind::Alert(Alert::Recovered { .. })
    )));
    assert!(has(&acts, |k| matches!(k, ActionKind::Persist)));
    assert_eq!(h.state(c), State::Online);
    let t0 = h.now;
    let (t1, _) = h
        .until(c, 10_000, |k| matches!(k, ActionKind::Heartbeat { .. }))
        .expect("heartbeat");
    // One interval, rounded up to the fleet-wide heartbeat grid.
    let grid = camera::HEARTBEAT_GRID_MS;
    assert!((HB..HB + grid).contains(&t1.since(t0)), "{t0:?} → {t1:?}");
    assert_eq!(t1.0 % grid, 0, "{t1:?}");
    assert_eq!(h.sup.next_wakeup(), Some(t1.plus(HB).min(t1.plus(10_000))));
}

#[test]
fn heartbeats_of_a_fleet_share_grid_slots() {
    // 200 cameras logged in at spread-out times heartbeat in at most 20 slots per
    // interval: the daemon wakes up per slot, not per camera.
    let s = Settings {
        start_spread: Duration::from_secs(10),
        ..settings(Strategy::Hybrid)
    };
    let mut h = H::new(s);
    for _ in 0..200 {
        h.sup.add_camera(h.now, false);
    }
    let mut slots = std::collections::BTreeSet::new();
    let mut beats = 0;
    let mut session = 0;
    let (from, end) = (Millis(20_000), Millis(20_000 + HB - 1));
    let first = Vec::new();
    h.drive(first, end, |now, a| match a.kind {
        ActionKind::Login { token } => {
            session += 1;
            Some(Event::LoginOk {
                token,
                session: Session(session),
            })
        }
        ActionKind::Heartbeat { token, .. } => {
            if now >= from {
                beats += 1;
                slots.insert(now.0);
            }
            Some(Event::HeartbeatOk { token })
        }
        _ => None,
    });
    assert_eq!(beats, 200, "one heartbeat each per interval");
    let grid = camera::HEARTBEAT_GRID_MS;
    assert!(slots.len() <= (HB / grid) as usize, "{slots:?}");
    assert!(slots.iter().all(|t| t % grid == 0), "{slots:?}");
    assert!(
        slots.len() >= 10,
        "still spread over the interval: {slots:?}"
    );
}

#[test]
fn event_strategy_sends_no_heartbeats() {
    for strategy in [Strategy::Event, Strategy::Queue] {
        let (mut h, c) = H::with_cam(settings(strategy), false);
        h.online(c, 1);
        let acts = h.advance(120_000);
        assert!(
            !acts
                .iter()
                .any(|a| matches!(a.kind, ActionKind::Heartbeat { .. })),
            "{strategy}"
        );
        assert_eq!(h.state(c), State::Online);
    }
}

// ====================================================================== heartbeats

#[test]
fn one_missed_heartbeat_is_suspect_and_a_good_one_heals() {
    let (mut h, c) = H::with_cam(settings(Strategy::Poll), false);
    h.online(c, 1);
    let t = h.heartbeat(c);
    h.ev(
        c,
        Event::HeartbeatFailed {
            token: t,
            class: ErrorClass::Timeout,
            code: 10,
        },
    );
    assert_eq!(h.state(c), State::Suspect);
    let t = h.heartbeat(c);
    h.ev(c, Event::HeartbeatOk { token: t });
    assert_eq!(h.state(c), State::Online);
}

#[test]
fn n_missed_heartbeats_tear_down_then_back_off() {
    let (mut h, c) = H::with_cam(settings(Strategy::Poll), false);
    let s = h.online(c, 9);
    for k in 0..3 {
        let t = h.heartbeat(c);
        let acts = h.ev(
            c,
            Event::HeartbeatFailed {
                token: t,
                class: ErrorClass::Network,
                code: 7,
            },
        );
        if k < 2 {
            assert_eq!(h.state(c), State::Suspect);
        } else {
            assert!(has(&acts, is_logout(s)), "{acts:?}");
            assert_eq!(
                down(&acts),
                Some((LossCause::HeartbeatsMissed, ErrorClass::Network, 7))
            );
        }
    }
    assert_eq!(h.state(c), State::Backoff);
    assert_eq!(h.status(c).counters.drops, 1);
}

#[test]
fn heartbeat_past_its_deadline_counts_one_miss_per_interval() {
    let (mut h, c) = H::with_cam(settings(Strategy::Hybrid), false);
    h.online(c, 1);
    h.heartbeat(c); // never answered
    let acts = h.advance(10_000);
    assert!(acts.iter().any(|a| matches!(
        a.kind,
        ActionKind::Alert(Alert::Stuck {
            call: CallKind::Heartbeat
        })
    )));
    // Unanswered for two intervals: two misses (one counted by the slot in between), and
    // with the interval before it, three intervals without an answer since the login: the
    // session is over.
    assert_eq!(h.status(c).counters.heartbeat_misses, 2);
    assert_eq!(h.state(c), State::Backoff);
    assert_eq!(
        down(&kinds(&acts)),
        Some((LossCause::HeartbeatsMissed, ErrorClass::Timeout, 0))
    );
}

#[test]
fn a_silent_cut_is_found_within_interval_times_misses() {
    // The device stops answering right after the login: the SDK fails each heartbeat only
    // after its receive timeout (here just past the next slot, or past two) or never.
    // Either way the verdict comes within `heartbeat_interval × heartbeat_misses` (+ one
    // grid step) of the last answer.
    let grid = camera::HEARTBEAT_GRID_MS;
    for fails_after in [HB + 1, 2 * HB + 7, u64::MAX] {
        let (mut h, c) = H::with_cam(settings(Strategy::Poll), false);
        h.online(c, 1);
        let heard = h.now;
        let first = h.heartbeat(c);
        let sent = h.now;
        let mut pending = vec![(sent, first)];
        let mut lost = None;
        while lost.is_none() && h.now.since(sent) < 60_000 {
            // Answer (with a failure) every heartbeat whose time has come, then step.
            let due = pending
                .iter()
                .map(|(at, _)| at.plus(fails_after))
                .chain(h.sup.next_wakeup())
                .min()
                .expect("something is due");
            if let Some(i) = pending
                .iter()
                .position(|(at, _)| at.plus(fails_after) <= due)
            {
                let (_, token) = pending.remove(i);
                h.now = h.now.max(due);
                let acts = h.ev_raw(
                    c,
                    Event::HeartbeatFailed {
                        token,
                        class: ErrorClass::Network,
                        code: 7,
                    },
                );
                for a in acts {
                    match a.kind {
                        ActionKind::Heartbeat { token, .. } => pending.push((h.now, token)),
                        ActionKind::Alert(Alert::Down { .. }) => lost = Some(h.now),
                        _ => {}
                    }
                }
            } else {
                h.now = h.now.max(due);
                h.sup.tick(h.now, &mut h.out);
                for a in std::mem::take(&mut h.out) {
                    match a.kind {
                        ActionKind::Heartbeat { token, .. } => pending.push((h.now, token)),
                        ActionKind::Alert(Alert::Down { .. }) => lost = Some(h.now),
                        _ => {}
                    }
                }
            }
        }
        let lost = lost.unwrap_or_else(|| panic!("never lost (fails after {fails_after} ms)"));
        let took = lost.since(heard);
        assert!(
            took <= 3 * HB + grid,
            "fails after {fails_after} ms: lost {took} ms after the last answer"
        );
        assert!(h.status(c).counters.heartbeat_misses >= 2);
    }
}

#[test]
fn a_late_failure_of_an_overdue_heartbeat_is_not_counted_twice() {
    let (mut h, c) = H::with_cam(settings(Strategy::Poll), false);
    h.online(c, 1);
    let t = h.heartbeat(c);
    // The next slot finds it unanswered: one miss, and no second heartbeat beside it.
    let acts = h.advance(HB + camera::HEARTBEAT_GRID_MS);
    assert!(
        !acts
            .iter()
            .any(|a| matches!(a.kind, ActionKind::Heartbeat { .. }))
    );
    assert_eq!(h.status(c).counters.heartbeat_misses, 1);
    assert_eq!(h.state(c), State::Suspect);
    // Its failure arrives: still one miss, and a fresh heartbeat goes out at once.
    let acts = h.ev(
        c,
        Event::HeartbeatFailed {
            token: t,
            class: ErrorClass::Timeout,
            code: 10,
        },
    );
    assert_eq!(h.status(c).counters.heartbeat_misses, 1);
    let Some(ActionKind::Heartbeat { token, .. }) = acts
        .into_iter()
        .find(|k| matches!(k, ActionKind::Heartbeat { .. }))
    else {
        panic!("no fresh heartbeat");
    };
    h.ev(c, Event::HeartbeatOk { token });
    assert_eq!(h.state(c), State::Online);
}

#[test]
fn stale_heartbeat_results_are_ignored() {
    let (mut h, c) = H::with_cam(settings(Strategy::Hybrid), false);
    h.online(c, 1);
    let t = h.heartbeat(c);
    h.ev(
        c,
        Event::HeartbeatFailed {
            token: Token(t.0 + 100),
            class: ErrorClass::Network,
            code: 7,
        },
    );
    assert_eq!(h.state(c), State::Online);
}

// ====================================================================== exceptions

#[test]
fn hybrid_exception_confirms_with_one_heartbeat() {
    let (mut h, c) = H::with_cam(settings(Strategy::Hybrid), false);
    let s = h.online(c, 3);
    let acts = h.ev(
        c,
        Event::Exception {
            kind: ExceptionKind::from_code(0x8000),
            session: s,
        },
    );
    assert_eq!(h.state(c), State::Suspect);
    let token = confirming_heartbeat(&acts, "confirming heartbeat sent at once");
    let acts = h.ev(
        c,
        Event::HeartbeatFailed {
            token,
            class: ErrorClass::Network,
            code: 7,
        },
    );
    assert!(has(&acts, is_logout(s)));
    assert_eq!(h.state(c), State::Backoff);
    // Reported as the exception it confirmed, not as missed heartbeats.
    assert_eq!(
        down(&acts),
        Some((LossCause::BackendException, ErrorClass::Network, 0x8000))
    );
    assert_eq!(recorded_cause(&h, c), Some(LossCause::BackendException));
}

#[test]
fn hybrid_exception_then_good_heartbeat_stays_online() {
    let (mut h, c) = H::with_cam(settings(Strategy::Hybrid), false);
    let s = h.online(c, 3);
    let acts = h.ev(
        c,
        Event::Exception {
            kind: ExceptionKind::Exchange,
            session: s,
        },
    );
    let Some(ActionKind::Heartbeat { token, .. }) = acts
        .into_iter()
        .find(|k| matches!(k, ActionKind::Heartbeat { .. }))
    else {
        panic!("no confirming heartbeat");
    };
    h.ev(c, Event::HeartbeatOk { token });
    assert_eq!(h.state(c), State::Online);
}

#[test]
fn event_strategy_exception_drops_at_once() {
    for strategy in [Strategy::Event, Strategy::Queue] {
        let (mut h, c) = H::with_cam(settings(strategy), false);
        let s = h.online(c, 3);
        let acts = h.ev(
            c,
            Event::Exception {
                kind: ExceptionKind::Exchange,
                session: s,
            },
        );
        assert!(has(&acts, is_logout(s)), "{strategy}: {acts:?}");
        assert_eq!(h.state(c), State::Backoff);
        assert_eq!(
            down(&acts),
            Some((LossCause::BackendException, ErrorClass::Network, 0x8000))
        );
    }
}

#[test]
fn poll_ignores_exceptions_and_everyone_ignores_other_sessions() {
    let (mut h, c) = H::with_cam(settings(Strategy::Poll), false);
    let s = h.online(c, 3);
    let acts = h.ev(
        c,
        Event::Exception {
            kind: ExceptionKind::Exchange,
            session: s,
        },
    );
    assert!(acts.is_empty());
    assert_eq!(h.state(c), State::Online);
    let (mut h, c) = H::with_cam(settings(Strategy::Event), false);
    h.online(c, 3);
    h.ev(
        c,
        Event::Exception {
            kind: ExceptionKind::Exchange,
            session: Session(99),
        },
    );
    assert_eq!(h.state(c), State::Online);
}

#[test]
fn sdk_relogin_waits_for_its_verdict() {
    let (mut h, c) = H::with_cam(settings(Strategy::Event), false);
    let s = h.online(c, 3);
    h.ev(
        c,
        Event::Exception {
            kind: ExceptionKind::Relogin,
            session: s,
        },
    );
    assert_eq!(h.state(c), State::Suspect);
    h.ev(
        c,
        Event::Exception {
            kind: ExceptionKind::ReloginOk,
            session: s,
        },
    );
    assert_eq!(h.state(c), State::Online);

    // Relogin failed: the session is dead.
    h.ev(
        c,
        Event::Exception {
            kind: ExceptionKind::Relogin,
            session: s,
        },
    );
    let acts = h.ev(
        c,
        Event::Exception {
            kind: ExceptionKind::ReloginFailed,
            session: s,
        },
    );
    assert!(has(&acts, is_logout(s)));
    assert_eq!(h.state(c), State::Backoff);
    assert_eq!(
        down(&acts),
        Some((LossCause::BackendException, ErrorClass::Network, 0x8044))
    );

    // No verdict at all: bounded by the login deadline.
    let s = h.online(c, 4);
    h.ev(
        c,
        Event::Exception {
            kind: ExceptionKind::Relogin,
            session: s,
        },
    );
    let acts = h.advance(31_000);
    assert!(
        acts.iter()
            .any(|a| a.kind == ActionKind::Logout { session: s })
    );
    assert_eq!(h.state(c), State::Backoff);
    assert_eq!(
        down(&kinds(&acts)),
        Some((LossCause::ReloginUnfinished, ErrorClass::Timeout, 0x8040))
    );
}

/// One camera of `strategy`, online, given `e` for its session: the actions, the state
/// after, and the counters' exceptions.
fn lose_to(
    strategy: Strategy,
    e: impl Fn(Session) -> Event,
) -> (H, CamId, Session, Vec<ActionKind>) {
    let (mut h, c) = H::with_cam(settings(strategy), false);
    let s = h.online(c, 3);
    let acts = h.ev(c, e(s));
    (h, c, s, acts)
}

#[test]
fn a_lost_event_stream_takes_the_exchange_exception_rows_with_its_own_cause() {
    let exchange = |session| Event::Exception {
        kind: ExceptionKind::Exchange,
        session,
    };
    let lost = |session| Event::EventStreamLost { session };
    for strategy in Strategy::ALL {
        let (ha, ca, _, a) = lose_to(strategy, exchange);
        let (hb, cb, s, b) = lose_to(strategy, lost);
        // Same transition, same actions but the alert, same counters.
        assert_eq!(ha.state(ca), hb.state(cb), "{strategy}");
        assert_eq!(
            ha.status(ca).counters.exceptions,
            hb.status(cb).counters.exceptions,
            "{strategy}"
        );
        let calls = |v: &[ActionKind]| {
            v.iter()
                .filter(|k| !matches!(k, ActionKind::Alert(_) | ActionKind::Persist))
                .count()
        };
        assert_eq!(calls(&a), calls(&b), "{strategy}: {a:?} / {b:?}");
        match down(&b) {
            // Event, queue: a loss at once, without the SDK's exception code.
            Some(loss) => {
                assert_eq!(loss, (LossCause::EventStreamLost, ErrorClass::Network, 0));
                assert!(has(&b, is_logout(s)));
            }
            None if hb.state(cb) == State::Suspect => {
                // Hybrid: confirmed by one heartbeat; its failure is the stream's loss.
                let mut hb = hb;
                let token = confirming_heartbeat(&b, "confirming heartbeat");
                let acts = hb.ev(
                    cb,
                    Event::HeartbeatFailed {
                        token,
                        class: ErrorClass::Timeout,
                        code: 0,
                    },
                );
                assert_eq!(
                    down(&acts),
                    Some((LossCause::EventStreamLost, ErrorClass::Timeout, 0))
                );
                assert_eq!(recorded_cause(&hb, cb), Some(LossCause::EventStreamLost));
            }
            // Poll: ignored, as the exception is.
            None => assert_eq!(hb.state(cb), State::Online, "{strategy}"),
        }
    }
}

#[test]
fn a_healed_suspicion_does_not_name_a_later_loss() {
    // A lost link confirmed healthy, then heartbeats fail on their own: that loss is
    // missed heartbeats, not the old link alarm.
    let (mut h, c, _, acts) = lose_to(Strategy::Hybrid, |session| Event::LinkLost { session });
    let token = confirming_heartbeat(&acts, "confirming heartbeat");
    h.ev(c, Event::HeartbeatOk { token });
    let mut last = Vec::new();
    while h.state(c).has_session() {
        let token = h.heartbeat(c);
        last = h.ev(
            c,
            Event::HeartbeatFailed {
                token,
                class: ErrorClass::Network,
                code: 7,
            },
        );
    }
    assert_eq!(
        down(&last),
        Some((LossCause::HeartbeatsMissed, ErrorClass::Network, 7))
    );
}

#[test]
fn resume_heals_a_suspect_session() {
    let (mut h, c) = H::with_cam(settings(Strategy::Event), false);
    let s = h.online(c, 3);
    h.ev(
        c,
        Event::Exception {
            kind: ExceptionKind::Relogin,
            session: s,
        },
    );
    h.ev(
        c,
        Event::Exception {
            kind: ExceptionKind::Resume,
            session: s,
        },
    );
    assert_eq!(h.state(c), State::Online);
}

// ====================================================================== streams

fn online_with_stream(h: &mut H, c: CamId) -> (Session, StreamHandle) {
    let token = h.next_login(c, 60_000);
    let s = Session(11);
    let acts = h.ev(c, Event::LoginOk { token, session: s });
    let st = acts
        .iter()
        .find_map(|k| match k {
            ActionKind::StartStream { session, token } if *session == s => Some(*token),
            _ => None,
        })
        .expect("stream started after login");
    let handle = StreamHandle(5);
    h.ev(
        c,
        Event::StreamStarted {
            token: st,
            stream: handle,
        },
    );
    assert!(h.status(c).streaming);
    (s, handle)
}

#[test]
fn stream_data_gap_is_a_failure_with_stop_then_logout() {
    let (mut h, c) = H::with_cam(settings(Strategy::Hybrid), true);
    let (s, handle) = online_with_stream(&mut h, c);
    for _ in 0..5 {
        for a in h.advance(2_000) {
            if let ActionKind::Heartbeat { token, .. } = a.kind {
                h.ev(c, Event::HeartbeatOk { token });
            }
        }
        h.ev(c, Event::StreamData);
    }
    assert_eq!(h.state(c), State::Online);
    // Heartbeats answer fine, but data stops: the gap is the truth (before this test
    // checked the cause, unanswered heartbeats above ended the session instead).
    let mut acts = Vec::new();
    for _ in 0..6 {
        for a in h.advance(2_000) {
            if let ActionKind::Heartbeat { token, .. } = a.kind {
                h.ev(c, Event::HeartbeatOk { token });
            }
            acts.push(a.kind);
        }
    }
    let stop = acts
        .iter()
        .position(|k| *k == ActionKind::StopStream { stream: handle })
        .expect("stream stopped");
    let logout = acts
        .iter()
        .position(|k| *k == ActionKind::Logout { session: s })
        .expect("logged out");
    assert!(stop < logout, "stop the stream before the logout");
    assert_eq!(h.state(c), State::Backoff);
    assert_eq!(
        down(&acts),
        Some((LossCause::StreamGap, ErrorClass::Timeout, 0))
    );
}

#[test]
fn stream_failure_and_deadline_drop_the_session() {
    let (mut h, c) = H::with_cam(settings(Strategy::Hybrid), true);
    let token = h.next_login(c, 60_000);
    let acts = h.ev(
        c,
        Event::LoginOk {
            token,
            session: Session(1),
        },
    );
    let Some(ActionKind::StartStream { token: st, .. }) = acts
        .into_iter()
        .find(|k| matches!(k, ActionKind::StartStream { .. }))
    else {
        panic!("no stream start")
    };
    let acts = h.ev(
        c,
        Event::StreamFailed {
            token: st,
            class: ErrorClass::Network,
            code: 7,
        },
    );
    assert_eq!(h.state(c), State::Backoff);
    assert_eq!(
        down(&acts),
        Some((LossCause::StreamStartFailed, ErrorClass::Network, 7))
    );
    h.ev(
        c,
        Event::LogoutDone {
            session: Session(1),
        },
    );
    // Second time: the stream start never answers.
    let token = h.next_login(c, 60_000);
    h.ev(
        c,
        Event::LoginOk {
            token,
            session: Session(2),
        },
    );
    let acts = h.advance(15_000);
    assert!(acts.iter().any(|a| matches!(
        a.kind,
        ActionKind::Alert(Alert::Stuck {
            call: CallKind::StartStream
        })
    )));
    assert_eq!(h.state(c), State::Backoff);
    assert_eq!(
        down(&kinds(&acts)),
        Some((LossCause::StreamStartFailed, ErrorClass::Timeout, 0))
    );
}

#[test]
fn a_refused_stream_keeps_the_session_and_is_asked_for_again_after_the_throttle() {
    let s = settings(Strategy::Hybrid);
    let throttle = s.resource_throttle.as_millis() as u64;
    let (mut h, c) = H::with_cam(s, true);
    let token = h.next_login(c, 60_000);
    let acts = h.ev(
        c,
        Event::LoginOk {
            token,
            session: Session(1),
        },
    );
    let start = |acts: &[ActionKind]| {
        acts.iter().find_map(|k| match k {
            ActionKind::StartStream { token, .. } => Some(*token),
            _ => None,
        })
    };
    let st = start(&acts).expect("stream start");
    // The device's stream limit (RTSP 453 → 426, resource): twice in a row.
    let mut st = st;
    for round in 0..2 {
        let acts = h.ev(
            c,
            Event::StreamFailed {
                token: st,
                class: ErrorClass::Resource,
                code: 426,
            },
        );
        assert!(
            acts.contains(&ActionKind::Alert(Alert::StreamRefused {
                code: 426,
                retry_ms: throttle
            })),
            "round {round}: {acts:?}"
        );
        assert!(
            !acts.iter().any(|k| matches!(
                k,
                ActionKind::Logout { .. } | ActionKind::Alert(Alert::Down { .. })
            )),
            "round {round}: {acts:?}"
        );
        assert_eq!(h.state(c), State::Online);
        let t0 = h.now;
        let mut next = None;
        while next.is_none() {
            let acts = h.advance(1_000);
            for a in &acts {
                assert!(
                    !matches!(a.kind, ActionKind::Logout { .. } | ActionKind::Login { .. }),
                    "round {round}: {a:?}"
                );
                if let ActionKind::Heartbeat { token, .. } = a.kind {
                    h.ev(c, Event::HeartbeatOk { token });
                }
            }
            next = start(&acts.iter().map(|a| a.kind).collect::<Vec<_>>());
            assert!(h.now.since(t0) <= throttle + 1_000, "no retry");
        }
        assert!(h.now.since(t0) >= throttle, "retried too early");
        st = next.expect("retry");
    }
    // The third time the device has room: streaming, still the first session.
    h.ev(
        c,
        Event::StreamStarted {
            token: st,
            stream: StreamHandle(9),
        },
    );
    assert!(h.status(c).streaming);
    assert_eq!(h.state(c), State::Online);
}

#[test]
fn late_stream_is_stopped() {
    let (mut h, c) = H::with_cam(settings(Strategy::Hybrid), true);
    let (s, _) = online_with_stream(&mut h, c);
    let acts = h.ev(
        c,
        Event::StreamStarted {
            token: Token(999),
            stream: StreamHandle(77),
        },
    );
    assert_eq!(
        acts,
        [ActionKind::StopStream {
            stream: StreamHandle(77)
        }]
    );
    assert_eq!(h.status(c).session, Some(s));
}

#[test]
fn duplicated_results_do_not_tear_down_what_they_created() {
    let (mut h, c) = H::with_cam(settings(Strategy::Hybrid), true);
    let token = h.next_login(c, 1_000);
    let s = Session(4);
    let acts = h.ev(c, Event::LoginOk { token, session: s });
    let Some(ActionKind::StartStream { token: st, .. }) = acts
        .into_iter()
        .find(|k| matches!(k, ActionKind::StartStream { .. }))
    else {
        panic!("no stream start")
    };
    // The runtime delivers the same results twice: nothing is logged out or stopped.
    assert!(h.ev(c, Event::LoginOk { token, session: s }).is_empty());
    let started = Event::StreamStarted {
        token: st,
        stream: StreamHandle(9),
    };
    h.ev(c, started);
    assert!(h.ev(c, started).is_empty());
    let st = h.status(c);
    assert_eq!(
        (st.state, st.session, st.streaming),
        (State::Online, Some(s), true)
    );
}

#[test]
fn preview_exception_matters_only_with_a_stream() {
    let (mut h, c) = H::with_cam(settings(Strategy::Event), false);
    let s = h.online(c, 1);
    h.ev(
        c,
        Event::Exception {
            kind: ExceptionKind::Preview,
            session: s,
        },
    );
    assert_eq!(h.state(c), State::Online);
    let (mut h, c) = H::with_cam(settings(Strategy::Event), true);
    let (s, _) = online_with_stream(&mut h, c);
    h.ev(
        c,
        Event::Exception {
            kind: ExceptionKind::PreviewClosed,
            session: s,
        },
    );
    assert_eq!(h.state(c), State::Backoff);
}

// ====================================================================== error classes

#[test]
fn network_and_timeout_back_off_with_full_jitter() {
    let (mut h, c) = H::with_cam(settings(Strategy::Event), false);
    for (n, class) in [
        ErrorClass::Network,
        ErrorClass::Timeout,
        ErrorClass::Network,
    ]
    .into_iter()
    .enumerate()
    {
        h.fail_login(c, class, 7);
        let st = h.status(c);
        assert_eq!(st.state, State::Backoff);
        assert_eq!(st.consecutive_failures, u32::try_from(n + 1).unwrap_or(0));
        let delay = st.backoff_until.expect("scheduled").since(h.now);
        assert!(delay <= 1000 << n, "failure {n}: {delay} ms");
    }
}

#[test]
fn auth_with_tries_to_spare_backs_off_slowly() {
    let (mut h, c) = H::with_cam(settings(Strategy::Event), false);
    h.fail_login(
        c,
        ErrorClass::Auth {
            retries_left: Some(5),
        },
        1,
    );
    let st = h.status(c);
    assert_eq!(st.state, State::Backoff);
    assert!(st.backoff_until.expect("scheduled").since(h.now) >= 15_000);
}

#[test]
fn auth_with_last_try_left_or_unknown_holds_forever() {
    for retries_left in [Some(1), Some(0), None] {
        let (mut h, c) = H::with_cam(settings(Strategy::Hybrid), false);
        let acts = h.fail_login(c, ErrorClass::Auth { retries_left }, 1);
        assert!(has(&acts, |k| *k
            == ActionKind::Alert(Alert::AuthHold { retries_left })));
        assert_eq!(h.state(c), State::AuthHold);
        // A day later: not one authenticated call, not even a probe.
        let acts = h.advance(24 * 3_600_000);
        assert!(
            acts.iter().all(|a| a.cam != c),
            "{retries_left:?}: {acts:?}"
        );
        assert_eq!(h.state(c), State::AuthHold);
        // RetryNow alone is an operator asking: it releases (and logs in at once).
        assert!(logs_in(&h.ev(c, Event::RetryNow)));
    }
}

#[test]
fn auth_hold_is_released_by_credentials_or_operator() {
    for release in [Event::CredentialsChanged, Event::ReleaseHold] {
        let (mut h, c) = H::with_cam(settings(Strategy::Hybrid), false);
        h.fail_login(c, ErrorClass::Auth { retries_left: None }, 1);
        h.advance(60_000);
        assert!(logs_in(&h.ev(c, release)), "{release:?}");
        assert_eq!(h.state(c), State::Connecting);
    }
}

#[test]
fn device_retry_budget_is_never_used_up() {
    // The device reports 6, 5, …: we stop once it says 1 (never the 7th bad try).
    let (mut h, c) = H::with_cam(settings(Strategy::Hybrid), false);
    let mut tries = 0;
    for left in (1..=6u8).rev() {
        h.fail_login(
            c,
            ErrorClass::Auth {
                retries_left: Some(left),
            },
            1,
        );
        tries += 1;
        if h.state(c) == State::AuthHold {
            break;
        }
    }
    assert_eq!(tries, 6);
    assert_eq!(h.state(c), State::AuthHold);
}

#[test]
fn credentials_changed_during_a_login_beats_its_auth_failure() {
    let (mut h, c) = H::with_cam(settings(Strategy::Hybrid), false);
    let token = h.next_login(c, 1_000);
    h.ev(c, Event::CredentialsChanged);
    let acts = h.ev(
        c,
        Event::LoginFailed {
            token,
            class: ErrorClass::Auth { retries_left: None },
            code: 1,
        },
    );
    assert!(logs_in(&acts), "retried with the new credentials: {acts:?}");
    assert_ne!(h.state(c), State::AuthHold);
}

#[test]
fn locked_waits_the_device_time_plus_margin_and_sends_nothing() {
    let (mut h, c) = H::with_cam(settings(Strategy::Hybrid), false);
    let acts = h.fail_login(
        c,
        ErrorClass::Locked {
            secs_left: Some(1742),
        },
        153,
    );
    assert!(has(&acts, |k| *k
        == ActionKind::Alert(Alert::Locked { wait_ms: 1_802_000 })));
    let locked_at = h.now;
    assert_eq!(h.state(c), State::Locked);
    // RetryNow never breaks a lock.
    h.ev(c, Event::RetryNow);
    let (t, _) = h
        .until(c, 3_600_000, |k| {
            matches!(k, ActionKind::Login { .. } | ActionKind::Heartbeat { .. })
        })
        .expect("login after the lock");
    assert_eq!(t.since(locked_at), 1_802_000);
}

#[test]
fn lock_of_unknown_length_waits_the_conservative_default() {
    let (mut h, c) = H::with_cam(settings(Strategy::Event), false);
    h.fail_login(c, ErrorClass::Locked { secs_left: None }, 153);
    let at = h.now;
    let (t, _) = h
        .until(c, 7_200_000, |k| matches!(k, ActionKind::Login { .. }))
        .expect("login after the lock");
    assert_eq!(t.since(at), 35 * 60_000);
}

#[test]
fn operator_can_release_a_lock() {
    let (mut h, c) = H::with_cam(settings(Strategy::Event), false);
    h.fail_login(
        c,
        ErrorClass::Locked {
            secs_left: Some(600),
        },
        153,
    );
    assert!(logs_in(&h.ev(c, Event::ReleaseHold)));
}

#[test]
fn resource_errors_back_off_slowly_and_throttle_the_fleet() {
    let s = Settings {
        max_concurrent_logins: 8,
        ..settings(Strategy::Hybrid)
    };
    let (mut h, c) = H::with_cam(s, false);
    assert_eq!(h.sup.fleet_status().login_slots, 8);
    h.fail_login(c, ErrorClass::Resource, 52);
    let st = h.status(c);
    assert!(st.backoff_until.expect("scheduled").since(h.now) >= 15_000);
    let f = h.sup.fleet_status();
    assert!(f.throttled);
    assert_eq!(f.login_slots, 2);
    assert_eq!(f.resource_throttles, 1);
    // 20 more cameras: never more than 2 logins in flight while throttled.
    let ids: Vec<CamId> = (0..20).map(|_| h.sup.add_camera(h.now, false)).collect();
    let acts = h.advance(1_000);
    assert_eq!(logins(&acts), 2);
    assert_eq!(h.sup.fleet_status().logins_in_flight, 2);
    let _ = ids;
    h.advance(60_000);
    assert!(!h.sup.fleet_status().throttled);
}

#[test]
fn unsupported_and_fatal_alert_and_retry_very_slowly_forever() {
    for class in [ErrorClass::Unsupported, ErrorClass::Fatal] {
        let (mut h, c) = H::with_cam(settings(Strategy::Event), false);
        for _ in 0..5 {
            let at_fail = {
                let acts = h.fail_login(c, class, 29);
                assert!(has(&acts, |k| matches!(
                    k,
                    ActionKind::Alert(Alert::NeedsOperator { .. })
                )));
                h.now
            };
            let d = h.status(c).backoff_until.expect("scheduled").since(at_fail);
            assert!((15 * 60_000..=30 * 60_000).contains(&d), "{d}");
        }
        assert_eq!(h.state(c), State::Backoff);
    }
}

#[test]
fn unknown_codes_are_retried_conservatively() {
    let (mut h, c) = H::with_cam(settings(Strategy::Event), false);
    h.fail_login(c, ErrorClass::Unknown(4242), 4242);
    let d = h.status(c).backoff_until.expect("scheduled").since(h.now);
    assert!(d >= 15_000);
    h.next_login(c, 60_000);
}

// ====================================================================== backoff reset

#[test]
fn backoff_resets_only_after_a_stable_period() {
    let (mut h, c) = H::with_cam(settings(Strategy::Event), false);
    for _ in 0..3 {
        h.fail_login(c, ErrorClass::Network, 7);
    }
    assert_eq!(h.status(c).consecutive_failures, 3);
    // Online for 30 s, then dropped: the counter keeps climbing.
    let s = h.online(c, 1);
    h.advance(30_000);
    h.ev(
        c,
        Event::Exception {
            kind: ExceptionKind::Exchange,
            session: s,
        },
    );
    assert_eq!(h.status(c).consecutive_failures, 4);
    h.ev(c, Event::LogoutDone { session: s });
    // Online for the stable period: reset.
    let s = h.online(c, 2);
    let acts = h.advance(60_000);
    assert!(acts.iter().any(|a| a.kind == ActionKind::Persist));
    assert_eq!(h.status(c).consecutive_failures, 0);
    h.ev(
        c,
        Event::Exception {
            kind: ExceptionKind::Exchange,
            session: s,
        },
    );
    assert_eq!(h.status(c).consecutive_failures, 1);
    assert!(h.status(c).backoff_until.expect("scheduled").since(h.now) <= 1_000);
}

/// Without a probe nothing cuts a grown backoff short: however long the failures go on,
/// the next try is at most `backoff_cap` (60 s by default; + one ticker step for poll)
/// after the last one, so a camera that comes back after any outage is retried within
/// about the cap. With the former 10 min cap this failed after an hour of failures.
#[test]
fn without_a_probe_retries_stay_within_the_cap_after_hours_of_failures() {
    assert_eq!(Settings::default().backoff_cap, Duration::from_secs(60));
    let cap = 60_000;
    for strategy in [Strategy::Poll, Strategy::Event, Strategy::Queue] {
        let (mut h, c) = H::with_cam(settings(strategy), false);
        let first = h.advance(0);
        let mut at = Vec::new();
        h.drive(first, Millis(6 * 3_600_000), |now, a| match a.kind {
            ActionKind::Login { token } => {
                at.push(now.0);
                Some(Event::LoginFailed {
                    token,
                    class: ErrorClass::Network,
                    code: 7,
                })
            }
            _ => None,
        });
        let gaps: Vec<u64> = at.windows(2).map(|w| w[1] - w[0]).collect();
        let slack = if strategy == Strategy::Poll { HB } else { 0 };
        let worst = gaps.iter().copied().max().unwrap_or(0);
        assert!(
            worst <= cap + slack,
            "{strategy}: {worst} ms between two tries (cap {cap} ms)"
        );
        // The cap was reached (the ceiling stopped growing there), and the camera was
        // never given up: six hours of tries, about one per half cap.
        assert!(
            worst > cap / 2,
            "{strategy}: the cap was never reached ({worst})"
        );
        assert!(at.len() > 6 * 60, "{strategy}: {} tries in 6 h", at.len());
        assert!(h.status(c).consecutive_failures > 300, "{strategy}");
    }
}

// ====================================================================== teardown and sessions

#[test]
fn next_login_waits_for_the_logout() {
    let (mut h, c) = H::with_cam(settings(Strategy::Event), false);
    let s = h.online(c, 1);
    h.ev(
        c,
        Event::Exception {
            kind: ExceptionKind::Exchange,
            session: s,
        },
    );
    // Backoff is ≤ 1 s, but the logout has not returned.
    let acts = h.advance(5_000);
    assert_eq!(logins(&acts), 0);
    let acts = h.ev(c, Event::LogoutDone { session: s });
    assert!(has(&acts, |k| matches!(k, ActionKind::Login { .. })));
}

#[test]
fn a_hung_logout_is_abandoned_at_its_deadline() {
    let (mut h, c) = H::with_cam(settings(Strategy::Event), false);
    let s = h.online(c, 1);
    h.ev(
        c,
        Event::Exception {
            kind: ExceptionKind::Exchange,
            session: s,
        },
    );
    let at = h.now;
    let (t, _) = h
        .until(c, 60_000, |k| matches!(k, ActionKind::Login { .. }))
        .expect("login after the logout deadline");
    assert_eq!(t.since(at), 10_000);
    assert_eq!(h.status(c).counters.stuck_calls, 1);
    // The late LogoutDone changes nothing.
    h.ev(c, Event::LogoutDone { session: s });
    assert_eq!(h.state(c), State::Connecting);
}

#[test]
fn stuck_login_then_late_success_is_logged_out() {
    let (mut h, c) = H::with_cam(settings(Strategy::Event), false);
    let old = h.next_login(c, 1_000);
    let acts = h.advance(30_000);
    assert!(acts.iter().any(|a| matches!(
        a.kind,
        ActionKind::Alert(Alert::Stuck {
            call: CallKind::Login
        })
    )));
    assert_eq!(h.state(c), State::Stuck);
    assert_eq!(h.sup.fleet_status().logins_in_flight, 0, "slot released");
    let new = h.next_login(c, 60_000);
    assert_ne!(old, new);
    // The old login finally succeeds: log it out, keep waiting for the new one.
    let acts = h.ev(
        c,
        Event::LoginOk {
            token: old,
            session: Session(50),
        },
    );
    assert_eq!(
        acts,
        [ActionKind::Logout {
            session: Session(50)
        }]
    );
    assert_eq!(h.state(c), State::Connecting);
    h.ev(
        c,
        Event::LoginOk {
            token: new,
            session: Session(51),
        },
    );
    assert_eq!(h.status(c).session, Some(Session(51)));
    // And a late success while online is logged out too, never kept alongside.
    let acts = h.ev(
        c,
        Event::LoginOk {
            token: Token(1),
            session: Session(52),
        },
    );
    assert_eq!(
        acts,
        [ActionKind::Logout {
            session: Session(52)
        }]
    );
    assert_eq!(h.status(c).counters.late_sessions, 2);
}

#[test]
fn stuck_login_answering_before_a_retry_is_adopted() {
    let (mut h, c) = H::with_cam(settings(Strategy::Event), false);
    let old = h.next_login(c, 1_000);
    h.ev(c, Event::CallStuck { token: old });
    assert_eq!(h.state(c), State::Stuck);
    h.ev(
        c,
        Event::LoginOk {
            token: old,
            session: Session(5),
        },
    );
    assert_eq!(h.state(c), State::Online);
    assert_eq!(h.status(c).session, Some(Session(5)));
}

#[test]
fn stuck_login_late_auth_failure_still_holds() {
    let (mut h, c) = H::with_cam(settings(Strategy::Event), false);
    let old = h.next_login(c, 1_000);
    h.ev(c, Event::CallStuck { token: old });
    h.ev(
        c,
        Event::LoginFailed {
            token: old,
            class: ErrorClass::Auth {
                retries_left: Some(1),
            },
            code: 1,
        },
    );
    assert_eq!(h.state(c), State::AuthHold);
}

// ====================================================================== fleet limits

#[test]
fn logins_in_flight_never_exceed_the_cap_and_results_free_slots() {
    let s = Settings {
        max_concurrent_logins: 3,
        ..settings(Strategy::Event)
    };
    let mut h = H::new(s);
    let ids: Vec<CamId> = (0..20).map(|_| h.sup.add_camera(h.now, false)).collect();
    let acts = h.advance(1_000);
    let tokens: Vec<(CamId, Token)> = acts
        .iter()
        .filter_map(|a| match a.kind {
            ActionKind::Login { token } => Some((a.cam, token)),
            _ => None,
        })
        .collect();
    assert_eq!(tokens.len(), 3);
    assert_eq!(h.sup.fleet_status().logins_in_flight, 3);
    // One result frees one slot, and the next login goes out in the same call.
    let (cam, token) = tokens[0];
    h.sup.handle(
        h.now,
        cam,
        Event::LoginOk {
            token,
            session: Session(1),
        },
        &mut h.out,
    );
    assert_eq!(logins(&h.out), 1);
    h.out.clear();
    assert_eq!(h.sup.fleet_status().logins_in_flight, 3);
    assert_eq!(ids.len(), 20);
}

#[test]
fn workers_limit_queue_and_hybrid_only() {
    for (strategy, expect) in [
        (Strategy::Queue, 2),
        (Strategy::Hybrid, 2),
        (Strategy::Event, 8),
        (Strategy::Poll, 8),
    ] {
        let s = Settings {
            workers: Some(2),
            ..settings(strategy)
        };
        let mut h = H::new(s);
        for _ in 0..20 {
            h.sup.add_camera(h.now, false);
        }
        let acts = h.advance(5_000);
        assert_eq!(logins(&acts), expect, "{strategy}");
    }
}

#[test]
fn full_queue_overflows_are_counted_and_recovered() {
    let s = Settings {
        max_concurrent_logins: 4,
        ..settings(Strategy::Event)
    };
    let mut h = H::new(s);
    let n = JOB_QUEUE_CAPACITY + 100;
    for _ in 0..n {
        h.sup.add_camera(h.now, false);
    }
    let mut session = 0;
    let mut pending: Vec<Action> = Vec::new();
    for _ in 0..10_000 {
        pending.extend(h.advance(100));
        // Answer every login, including the ones each answer dispatches.
        while let Some(a) = pending.pop() {
            if let ActionKind::Login { token } = a.kind {
                session += 1;
                h.sup.handle(
                    h.now,
                    a.cam,
                    Event::LoginOk {
                        token,
                        session: Session(session),
                    },
                    &mut h.out,
                );
                pending.append(&mut h.out);
            }
        }
        if h.sup.fleet_status().states[State::Online.index()] as usize == n {
            break;
        }
    }
    let f = h.sup.fleet_status();
    assert_eq!(f.states[State::Online.index()] as usize, n);
    assert!(f.queue_overflows >= 90, "{f:?}");
    assert_eq!(f.queue_recovered, f.queue_overflows);
    assert_eq!(f.overflow_pending, 0);
    assert_eq!(f.queue_depth, 0);
}

#[test]
fn one_job_per_camera_however_often_it_is_poked() {
    let s = Settings {
        max_concurrent_logins: 1,
        ..settings(Strategy::Event)
    };
    let mut h = H::new(s);
    let a = h.sup.add_camera(h.now, false);
    let b = h.sup.add_camera(h.now, false);
    h.advance(1);
    assert_eq!(h.sup.fleet_status().queue_depth, 1);
    for _ in 0..50 {
        h.ev(b, Event::RetryNow);
        h.ev(a, Event::RetryNow);
    }
    assert_eq!(h.sup.fleet_status().queue_depth, 1);
}

// ====================================================================== probe gate (hybrid)

#[test]
fn probe_gate_skips_logins_while_closed_and_logs_in_on_reopen() {
    let (mut h, c) = H::with_cam(settings(Strategy::Hybrid), false);
    let s = h.online(c, 1);
    let down_at = h.now;
    // 50 minutes of "closed" (RST), then the port opens and logins succeed.
    let open_at = down_at.plus(50 * 60_000);
    let mut logins_at = Vec::new();
    let mut probes = 0;
    let first = h.ev_raw(
        c,
        Event::Exception {
            kind: ExceptionKind::ReloginFailed,
            session: s,
        },
    );
    h.drive(first, down_at.plus(55 * 60_000), |now, a| match a.kind {
        ActionKind::Logout { session } => Some(Event::LogoutDone { session }),
        ActionKind::Heartbeat { token, .. } => Some(Event::HeartbeatOk { token }),
        ActionKind::Probe { token } => {
            probes += 1;
            Some(Event::ProbeResult {
                token,
                open: now >= open_at,
            })
        }
        ActionKind::Login { token } => {
            logins_at.push(now);
            Some(if now >= open_at {
                Event::LoginOk {
                    token,
                    session: Session(2),
                }
            } else {
                Event::LoginFailed {
                    token,
                    class: ErrorClass::Network,
                    code: 7,
                }
            })
        }
        _ => None,
    });
    assert_eq!(h.state(c), State::Online);
    // While closed: the first attempt (right after the drop) plus blind ones every
    // 15–18.75 min.
    let closed: Vec<Millis> = logins_at.iter().copied().filter(|t| *t < open_at).collect();
    assert!((3..=4).contains(&closed.len()), "{logins_at:?}");
    assert!(closed[0].since(down_at) <= 1_000, "{logins_at:?}");
    for w in closed.windows(2) {
        let gap = w[1].since(w[0]);
        assert!((900_000..=1_125_000).contains(&gap), "blind gap {gap}");
    }
    // Probes every ~1 s while down.
    assert!(probes >= 2900, "{probes} probes in 50 min");
    // One login right after the port reopened, and it was the last one.
    assert_eq!(logins_at.len(), closed.len() + 1);
    let last = *logins_at.last().expect("logged in");
    assert!(
        last.since(open_at) <= 1_100,
        "login {} ms after reopen",
        last.since(open_at)
    );
}

#[test]
fn every_outage_gets_its_reopen_login() {
    // A device that reboots every 20 s (down 5 s each time): each outage ends with a
    // login within a probe period of the port reopening, although the reopen gap (30 s)
    // is longer than the cycle. The gap limits logins within one outage only.
    let (mut h, c) = H::with_cam(settings(Strategy::Hybrid), false);
    let s = h.online(c, 1);
    let t0 = h.now;
    let down = |now: Millis| (now.since(t0) % 20_000) < 5_000;
    let mut sessions = 1;
    let mut online_at = Vec::new();
    let first = h.ev_raw(
        c,
        Event::Exception {
            kind: ExceptionKind::ReloginFailed,
            session: s,
        },
    );
    let mut live = None;
    let end = t0.plus(200_000);
    let mut acts = first;
    let mut now = t0;
    while now < end {
        // Drop the live session at the start of each outage.
        if let Some(session) = live {
            if down(now) {
                live = None;
                acts.extend(h.ev_raw(
                    c,
                    Event::Exception {
                        kind: ExceptionKind::ReloginFailed,
                        session,
                    },
                ));
            }
        }
        let step_end = now.plus(250);
        h.drive(std::mem::take(&mut acts), step_end, |at, a| match a.kind {
            ActionKind::Logout { session } => Some(Event::LogoutDone { session }),
            ActionKind::Heartbeat { token, .. } => Some(Event::HeartbeatOk { token }),
            ActionKind::Probe { token } => Some(Event::ProbeResult {
                token,
                open: !down(at),
            }),
            ActionKind::Login { token } if down(at) => Some(Event::LoginFailed {
                token,
                class: ErrorClass::Network,
                code: 7,
            }),
            ActionKind::Login { token } => {
                sessions += 1;
                live = Some(Session(sessions));
                online_at.push(at);
                Some(Event::LoginOk {
                    token,
                    session: Session(sessions),
                })
            }
            _ => None,
        });
        now = step_end;
    }
    // Ten outages; every one recovered within ~1 s of the port reopening (5 s into it).
    assert_eq!(online_at.len(), 10, "{online_at:?}");
    for t in &online_at {
        let into = t.since(t0) % 20_000;
        assert!(
            (5_000..=6_500).contains(&into),
            "online {into} ms into the cycle"
        );
    }
}

/// A probe abandoned when a login goes out answers late, after the next probe went out:
/// that stale answer must not cancel the live probe (found by the million-hour
/// simulation: probing stopped, and the camera waited 17 min for a blind login although
/// its port had reopened a minute after the drop).
#[test]
fn a_stale_probe_result_does_not_stop_probing() {
    let (mut h, c) = H::with_cam(settings(Strategy::Hybrid), false);
    let s = h.online(c, 1);
    let acts = h.ev(c, Event::LinkLost { session: s });
    let acts2 = h.ev(
        c,
        Event::HeartbeatFailed {
            token: match acts
                .iter()
                .find(|k| matches!(k, ActionKind::Heartbeat { .. }))
            {
                Some(ActionKind::Heartbeat { token, .. }) => *token,
                other => panic!("no confirming heartbeat: {other:?} in {acts:?}"),
            },
            class: ErrorClass::Network,
            code: 7,
        },
    );
    assert_eq!(h.state(c), State::Backoff, "{acts2:?}");
    let probe_of = |acts: &[ActionKind]| {
        acts.iter().find_map(|k| match k {
            ActionKind::Probe { token } => Some(*token),
            _ => None,
        })
    };
    let first = probe_of(&acts2)
        .or_else(|| {
            h.until(c, 2_000, |k| matches!(k, ActionKind::Probe { .. }))
                .and_then(|(_, k)| probe_of(&[k]))
        })
        .expect("a probe after the drop");
    h.ev(c, Event::LogoutDone { session: s });
    // The first attempt after a drop goes out (probe verdict or not) and fails; the
    // probe in flight was abandoned with the backoff state, a new one replaces it.
    let token = h.next_login(c, 60_000);
    let acts = h.ev(
        c,
        Event::LoginFailed {
            token,
            class: ErrorClass::Network,
            code: 7,
        },
    );
    let second = probe_of(&acts)
        .or_else(|| {
            h.until(c, 2_000, |k| matches!(k, ActionKind::Probe { .. }))
                .and_then(|(_, k)| probe_of(&[k]))
        })
        .expect("a new probe after the failed login");
    assert_ne!(first, second);
    h.ev(
        c,
        Event::ProbeResult {
            token: first,
            open: false,
        },
    );
    h.ev(
        c,
        Event::ProbeResult {
            token: second,
            open: false,
        },
    );
    // Probing goes on: the next probe within the probe interval, and once the port is
    // open again the login follows at once.
    let (_, k) = h
        .until(c, 2_000, |k| matches!(k, ActionKind::Probe { .. }))
        .expect("probing stopped after a stale probe result");
    let third = probe_of(&[k]).expect("probe");
    let acts = h.ev(
        c,
        Event::ProbeResult {
            token: third,
            open: true,
        },
    );
    let acts = if logs_in(&acts) {
        acts
    } else {
        let (_, k) = h
            .until(c, 2_000, |k| matches!(k, ActionKind::Login { .. }))
            .expect("a login after the port reopened");
        vec![k]
    };
    assert!(logs_in(&acts), "{acts:?}");
}

/// Logins of a hybrid camera over 10 min of failing logins after a drop, while the
/// probe sees the port as `open_at(now)` says.
fn logins_in_ten_minutes(open_at: impl Fn(Millis) -> bool) -> u32 {
    let (mut h, c) = H::with_cam(settings(Strategy::Hybrid), false);
    let s = h.online(c, 1);
    let down_at = h.now;
    let mut logins = 0;
    let first = h.ev_raw(
        c,
        Event::Exception {
            kind: ExceptionKind::ReloginFailed,
            session: s,
        },
    );
    h.drive(first, down_at.plus(600_000), |now, a| match a.kind {
        ActionKind::Logout { session } => Some(Event::LogoutDone { session }),
        ActionKind::Probe { token } => Some(Event::ProbeResult {
            token,
            open: open_at(now),
        }),
        ActionKind::Login { token } => {
            logins += 1;
            Some(Event::LoginFailed {
                token,
                class: ErrorClass::Network,
                code: 7,
            })
        }
        _ => None,
    });
    logins
}

#[test]
fn reopen_logins_are_rate_limited_for_a_flapping_port() {
    // The port flips open/closed every 2 s (150 reopens in 10 min); logins always fail.
    let flapping = logins_in_ten_minutes(|now| (now.0 / 2_000) % 2 == 0);
    // The backoff's own pace, with the port open all along: a few tries up to the 60 s
    // cap, then one per 30 s on average.
    let steady = logins_in_ten_minutes(|_| true);
    assert!(
        steady <= 600 / 30 + 7,
        "{steady} logins in 10 min, port open"
    );
    // The flapping adds at most one login per reopen gap (30 s), not one per reopen.
    assert!(
        flapping <= steady + 600 / 30 + 1,
        "{flapping} logins in 10 min with a flapping port ({steady} with a steady one)"
    );
}
#[test]
fn probe_budget_is_fleet_wide() {
    let s = Settings {
        probe_rate: 50,
        ..settings(Strategy::Hybrid)
    };
    let mut h = H::new(s);
    let n = 500;
    let ids: Vec<CamId> = (0..n).map(|_| h.sup.add_camera(h.now, false)).collect();
    // Every login fails: every camera waits in backoff, probing.
    let mut probe_times = Vec::new();
    let end = Millis(120_000);
    while let Some(w) = h.sup.next_wakeup() {
        if w > end {
            break;
        }
        h.now = w;
        h.sup.tick(w, &mut h.out);
        let acts: Vec<Action> = h.out.drain(..).collect();
        for a in acts {
            match a.kind {
                ActionKind::Login { token } => h.sup.handle(
                    w,
                    a.cam,
                    Event::LoginFailed {
                        token,
                        class: ErrorClass::Network,
                        code: 7,
                    },
                    &mut h.out,
                ),
                ActionKind::Probe { token } => {
                    probe_times.push(w.0);
                    h.sup.handle(
                        w,
                        a.cam,
                        Event::ProbeResult { token, open: false },
                        &mut h.out,
                    );
                }
                _ => {}
            }
        }
    }
    // Over any 10 s window after the start: at most rate × 10 + burst.
    for start in (20_000..100_000).step_by(10_000) {
        let n = probe_times
            .iter()
            .filter(|t| (start..start + 10_000).contains(*t))
            .count();
        assert!(n <= 50 * 10 + 50, "{n} probes in 10 s");
        assert!(n >= 50 * 9, "budget unused: {n}");
    }
    // And every camera got probed (FIFO: nobody starves).
    for c in ids {
        assert!(h.status(c).counters.probes >= 2, "{c:?}");
    }
}

// ====================================================================== poll cadence

#[test]
fn poll_reconnects_on_its_ticker() {
    let (mut h, c) = H::with_cam(settings(Strategy::Poll), false);
    let mut times = Vec::new();
    for _ in 0..4 {
        let token = h.next_login(c, 3_600_000);
        times.push(h.now.0);
        h.ev(
            c,
            Event::LoginFailed {
                token,
                class: ErrorClass::Network,
                code: 7,
            },
        );
    }
    let phase = times[0] % HB;
    assert!(times.iter().all(|t| t % HB == phase), "{times:?}");
}

// ====================================================================== config changes

#[test]
fn address_change_tears_down_and_starts_fresh() {
    let (mut h, c) = H::with_cam(settings(Strategy::Hybrid), false);
    for _ in 0..2 {
        // Probes go unanswered (→ closed): the second login is a blind one, 15+ min on.
        h.fail_login(c, ErrorClass::Network, 7);
    }
    let token = h.next_login(c, 3_600_000);
    let s = Session(1);
    h.ev(c, Event::LoginOk { token, session: s });
    let acts = h.ev(c, Event::AddressChanged);
    assert!(has(&acts, is_logout(s)));
    assert_eq!(h.state(c), State::Stopping);
    let acts = h.ev(c, Event::LogoutDone { session: s });
    assert_eq!(h.status(c).consecutive_failures, 0);
    // Fresh start (start_spread is 0 here): the login goes out at once, no probe
    // verdict needed for a first attempt.
    assert!(logs_in(&acts), "{acts:?}");
}

#[test]
fn removed_camera_is_torn_down_and_its_slot_reused() {
    let (mut h, c) = H::with_cam(settings(Strategy::Hybrid), false);
    let old = h.next_login(c, 1_000);
    h.ev(c, Event::Removed);
    assert_eq!(h.state(c), State::Stopping, "waits for the login in flight");
    h.ev(
        c,
        Event::LoginOk {
            token: old,
            session: Session(3),
        },
    );
    assert_eq!(h.state(c), State::Removed);
    let acts = h.advance(3_600_000);
    assert!(acts.iter().all(|a| a.cam != c));
    let c2 = h.sup.add_camera(h.now, false);
    assert_eq!(c2, c, "slot reused");
    let t = h.next_login(c2, 1_000);
    assert!(t > old, "tokens keep counting up across reuse");
}

// ====================================================================== persistence

#[test]
fn persist_is_emitted_on_state_changes_only() {
    let (mut h, c) = H::with_cam(settings(Strategy::Hybrid), false);
    h.online(c, 1);
    // Heartbeats in a steady state: no persist.
    for _ in 0..5 {
        let t = h.heartbeat(c);
        let acts = h.ev(c, Event::HeartbeatOk { token: t });
        assert!(!acts.contains(&ActionKind::Persist));
    }
    let acts = h.fail_login_after_drop(c);
    assert!(acts.contains(&ActionKind::Persist));
}

impl H {
    fn fail_login_after_drop(&mut self, c: CamId) -> Vec<ActionKind> {
        let s = self.status(c).session.expect("online");
        let mut acts = self.ev(
            c,
            Event::Exception {
                kind: ExceptionKind::ReloginFailed,
                session: s,
            },
        );
        acts.extend(self.ev(c, Event::LogoutDone { session: s }));
        acts
    }
}

#[test]
fn persisted_view_round_trips_through_restore() {
    let (mut h, c) = H::with_cam(settings(Strategy::Hybrid), false);
    h.fail_login(
        c,
        ErrorClass::Locked {
            secs_left: Some(600),
        },
        153,
    );
    h.advance(60_000);
    let p = h.sup.persisted(c, h.now).expect("camera");
    assert_eq!(p.lock_left, Some(Duration::from_secs(600)));
    assert!(!p.auth_hold);
    assert_eq!(p.login_attempts, 1);
    assert_eq!(p.last_error.map(|e| e.1), Some(153));

    // A restart: a new supervisor restores it; nothing is sent until the lock is over.
    let mut h2 = H::new(settings(Strategy::Hybrid));
    let c2 = h2.sup.add_camera(h2.now, false);
    h2.sup.restore(c2, &p, h2.now).expect("fresh camera");
    assert_eq!(h2.state(c2), State::Locked);
    let (t, _) = h2
        .until(c2, 3_600_000, |k| matches!(k, ActionKind::Login { .. }))
        .expect("login after the lock");
    assert_eq!(t.0, 600_000);
    assert_eq!(
        h2.sup.restore(c2, &p, h2.now),
        Err(Error::NotFresh(c2.0)),
        "only before the first attempt"
    );
    assert_eq!(
        h2.sup.restore(CamId(99), &p, h2.now),
        Err(Error::UnknownCamera(99))
    );
}

#[test]
fn restored_hold_and_backoff() {
    let hold = Persisted {
        consecutive_failures: 2,
        next_attempt_in: None,
        auth_hold: true,
        lock_left: None,
        last_error: Some((ErrorClass::Auth { retries_left: None }, 1)),
        login_attempts: 4,
        reconnects: 1,
        last_online_ago: None,
    };
    let mut h = H::new(Settings::default());
    let c = h.sup.add_camera(h.now, false);
    h.sup.restore(c, &hold, h.now).expect("fresh");
    assert_eq!(h.state(c), State::AuthHold);
    assert!(h.sup.persisted(c, h.now).expect("camera").auth_hold);
    assert!(h.advance(3_600_000).iter().all(|a| a.cam != c));

    // A long remaining backoff is kept; a short one is never earlier than a spread slot.
    let mut h = H::new(Settings::default());
    let long = Persisted {
        next_attempt_in: Some(Duration::from_secs(300)),
        auth_hold: false,
        ..hold
    };
    let c = h.sup.add_camera(h.now, false);
    h.sup.restore(c, &long, h.now).expect("fresh");
    let (t, _) = h
        .until(c, 3_600_000, |k| matches!(k, ActionKind::Login { .. }))
        .expect("login");
    assert_eq!(t.0, 300_000);
    assert_eq!(h.status(c).consecutive_failures, 2);

    let mut h = H::new(Settings::default());
    let short = Persisted {
        next_attempt_in: Some(Duration::ZERO),
        ..long
    };
    let mut at = Vec::new();
    for _ in 0..50 {
        let c = h.sup.add_camera(h.now, false);
        h.sup.restore(c, &short, h.now).expect("fresh");
        at.push(h.status(c).backoff_until.expect("scheduled").0);
    }
    assert!(at.iter().all(|&t| t <= 10_000));
    assert!(
        at.iter().filter(|&&t| t > 5_000).count() > 10,
        "spread: {at:?}"
    );
}

// ====================================================================== API edges

#[test]
fn time_never_goes_backwards_and_unknown_cameras_are_ignored() {
    let (mut h, c) = H::with_cam(settings(Strategy::Hybrid), false);
    h.online(c, 1);
    let now = h.now;
    h.sup
        .handle(Millis(0), CamId(77), Event::RetryNow, &mut h.out);
    assert!(h.out.is_empty());
    h.sup.tick(Millis(0), &mut h.out); // earlier than before: treated as `now`
    assert!(h.sup.next_wakeup().expect("heartbeat") > now);
    assert_eq!(h.sup.status(CamId(77)), None);
    assert_eq!(h.sup.persisted(CamId(77), now), None);
}

#[test]
fn empty_supervisor_sleeps() {
    let sup = Supervisor::new(&Settings::default(), 1).expect("valid");
    assert_eq!(sup.next_wakeup(), None);
    assert_eq!(sup.fleet_status().login_slots, 8);
    assert!(
        Supervisor::new(
            &Settings {
                heartbeat_misses: 0,
                ..Settings::default()
            },
            1
        )
        .is_err()
    );
}

// ====================================================================== benchmark peers

/// Runs to `until`, answering every login with success at once; returns when each login
/// was issued.
fn timed_logins(h: &mut H, cams: usize, until: u64) -> Vec<(u64, CamId)> {
    let mut seen = Vec::new();
    let mut session = 100;
    while let Some(w) = h.sup.next_wakeup() {
        if w.0 > until {
            break;
        }
        h.now = h.now.max(w);
        h.sup.tick(h.now, &mut h.out);
        let mut pending: Vec<Action> = h.out.drain(..).collect();
        while let Some(a) = pending.pop() {
            if let ActionKind::Login { token } = a.kind {
                seen.push((h.now.0, a.cam));
                session += 1;
                let e = Event::LoginOk {
                    token,
                    session: Session(session),
                };
                h.sup.handle(h.now, a.cam, e, &mut h.out);
                pending.append(&mut h.out);
            }
        }
    }
    assert_eq!(seen.len(), cams, "{seen:?}");
    seen
}

#[test]
fn naive_peer_starts_every_camera_at_once_and_heartbeats_on_one_grid() {
    let s = Settings {
        start_spread: Duration::from_secs(10), // ignored: no jitter
        ..settings(Strategy::Naive)
    };
    let mut h = H::new(s);
    let cams: Vec<CamId> = (0..20)
        .map(|_| h.sup.add_camera(Millis(0), false))
        .collect();
    let logins = timed_logins(&mut h, cams.len(), 1_000);
    assert!(logins.iter().all(|&(t, _)| t <= 1), "{logins:?}");
    // Every heartbeat of every camera lands on the same 5 s grid (lockstep).
    let beats = |acts: &[Action]| {
        acts.iter()
            .filter(|a| matches!(a.kind, ActionKind::Heartbeat { .. }))
            .count()
    };
    let before = h.advance(4_999 - h.now.0);
    assert_eq!(beats(&before), 0, "{before:?}");
    let at_tick = h.advance(1);
    assert_eq!(h.now, Millis(5_000));
    assert_eq!(beats(&at_tick), 20, "all at the tick: {at_tick:?}");
    assert_eq!(h.status(cams[3]).state, State::Online);
}

#[test]
fn naive_peer_drops_at_the_first_miss_and_logs_in_again_at_once() {
    let (mut h, c) = H::with_cam(settings(Strategy::Naive), false);
    let s = h.online(c, 1);
    let token = h.heartbeat(c);
    assert_eq!(h.now, Millis(HB), "the grid's first tick");
    let acts = h.ev(
        c,
        Event::HeartbeatFailed {
            token,
            class: ErrorClass::Network,
            code: 7,
        },
    );
    assert!(has(&acts, is_logout(s)), "{acts:?}");
    assert!(
        has(&acts, |k| matches!(
            k,
            ActionKind::Alert(Alert::Down { .. })
        )),
        "{acts:?}"
    );
    assert_eq!(h.state(c), State::Backoff);
    // The logout returns: the re-login follows in the same instant, no backoff.
    let acts = h.ev(c, Event::LogoutDone { session: s });
    assert!(logs_in(&acts), "{acts:?}");
}

#[test]
fn naive_peer_retries_every_tick_whatever_the_error_and_never_holds() {
    let (mut h, c) = H::with_cam(settings(Strategy::Naive), false);
    let mut times = Vec::new();
    for class in [
        ErrorClass::Auth {
            retries_left: Some(1),
        },
        ErrorClass::Auth { retries_left: None },
        ErrorClass::Locked {
            secs_left: Some(1800),
        },
        ErrorClass::Resource,
        ErrorClass::Fatal,
        ErrorClass::Network,
    ] {
        let acts = h.fail_login(c, class, 1);
        times.push(h.now.0);
        assert_eq!(h.state(c), State::Backoff, "{class:?}");
        assert!(
            !has(&acts, |k| matches!(
                k,
                ActionKind::Alert(Alert::AuthHold { .. } | Alert::Locked { .. })
            )),
            "{class:?}: {acts:?}"
        );
    }
    // The first attempt at start, then one per 5 s tick: a lockout in 35 s on a device
    // that locks after 7 wrong passwords.
    assert_eq!(times, [1, 5_000, 10_000, 15_000, 20_000, 25_000]);
    assert!(!h.sup.fleet_status().throttled, "no resource throttle");
}

#[test]
fn sdk_peer_follows_the_callbacks_and_never_logs_in_again() {
    let (mut h, c) = H::with_cam(settings(Strategy::Sdk), false);
    let s = h.online(c, 7);
    let exc = |kind| Event::Exception { kind, session: s };
    let is_down = |k: &ActionKind| matches!(k, ActionKind::Alert(Alert::Down { .. }));
    let is_back = |k: &ActionKind| matches!(k, ActionKind::Alert(Alert::Recovered { .. }));

    // 0x8000: down, the handle is kept (no logout), no login.
    let acts = h.ev(c, exc(ExceptionKind::Exchange));
    assert!(has(&acts, is_down), "{acts:?}");
    assert!(!has(&acts, is_logout(s)) && !logs_in(&acts), "{acts:?}");
    assert_eq!(h.state(c), State::Suspect);
    assert_eq!(h.status(c).session, Some(s));
    // Repeated 0x8000 while down: nothing new.
    assert!(h.ev(c, exc(ExceptionKind::Exchange)).is_empty());
    // Nothing of ours while the SDK works: no heartbeat, no login, no logout, for an hour.
    let acts = h.advance(3_600_000);
    assert!(
        !acts.iter().any(|a| matches!(
            a.kind,
            ActionKind::Login { .. } | ActionKind::Heartbeat { .. } | ActionKind::Logout { .. }
        )),
        "{acts:?}"
    );
    // 0x8017: back, same session.
    let acts = h.ev(c, exc(ExceptionKind::Resume));
    assert!(has(&acts, is_back), "{acts:?}");
    assert_eq!(h.state(c), State::Online);

    // The SDK's re-login after a reboot: 0x8040 down, 0x8041 back.
    assert!(has(&h.ev(c, exc(ExceptionKind::Relogin)), is_down));
    assert_eq!(h.state(c), State::Suspect);
    assert!(has(&h.ev(c, exc(ExceptionKind::ReloginOk)), is_back));
    assert_eq!(h.state(c), State::Online);

    // 0x8044: the SDK gave up; so does the peer (it never logs in again).
    assert!(has(&h.ev(c, exc(ExceptionKind::ReloginFailed)), is_down));
    let acts = h.advance(3_600_000);
    assert_eq!(logins(&acts), 0);
    assert_eq!(h.state(c), State::Suspect);
    assert_eq!(h.status(c).counters.drops, 3);
    assert_eq!(h.status(c).counters.login_attempts, 1);
}

#[test]
fn sdk_peer_keeps_the_backoff_until_its_first_login() {
    let (mut h, c) = H::with_cam(settings(Strategy::Sdk), false);
    h.fail_login(c, ErrorClass::Network, 7);
    assert_eq!(h.state(c), State::Backoff);
    let acts = h.fail_login(
        c,
        ErrorClass::Auth {
            retries_left: Some(1),
        },
        1,
    );
    assert!(
        has(&acts, |k| matches!(
            k,
            ActionKind::Alert(Alert::AuthHold { .. })
        )),
        "the safety policy still guards the first login: {acts:?}"
    );
    assert_eq!(h.state(c), State::AuthHold);
}

// ====================================================================== link watch (hybrid)

#[test]
fn a_reset_link_is_confirmed_by_one_heartbeat_then_the_session_ends() {
    let (mut h, c) = H::with_cam(settings(Strategy::Hybrid), false);
    let s = h.online(c, 3);
    let acts = h.ev(c, Event::LinkLost { session: s });
    assert_eq!(h.state(c), State::Suspect);
    let token = acts
        .iter()
        .find_map(|k| match k {
            ActionKind::Heartbeat { token, session } if *session == s => Some(*token),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no confirming heartbeat at once: {acts:?}"));
    // The port is closed (the device rebooted): the confirmation fails, the session ends.
    let acts = h.ev(
        c,
        Event::HeartbeatFailed {
            token,
            class: ErrorClass::Network,
            code: 7,
        },
    );
    assert!(has(&acts, is_logout(s)), "{acts:?}");
    assert_eq!(h.state(c), State::Backoff);
    assert_eq!(
        down(&acts),
        Some((LossCause::LinkLost, ErrorClass::Network, 7))
    );
}

#[test]
fn a_false_link_alarm_keeps_the_session() {
    let (mut h, c) = H::with_cam(settings(Strategy::Hybrid), false);
    let s = h.online(c, 3);
    let acts = h.ev(c, Event::LinkLost { session: s });
    let token = confirming_heartbeat(&acts, "confirming heartbeat");
    let acts = h.ev(c, Event::HeartbeatOk { token });
    assert!(!has(&acts, is_logout(s)), "{acts:?}");
    assert_eq!(h.state(c), State::Online);
    assert_eq!(h.status(c).session, Some(s));
}

#[test]
fn a_silent_link_ends_the_session_at_once() {
    let (mut h, c) = H::with_cam(settings(Strategy::Hybrid), false);
    let s = h.online(c, 3);
    // The runtime already confirmed (keepalives unanswered, no fresh connection): no
    // heartbeat to wait for, the session ends and the camera backs off with a logout.
    let acts = h.ev(c, Event::LinkSilent { session: s });
    assert!(has(&acts, is_logout(s)), "{acts:?}");
    assert!(
        !acts
            .iter()
            .any(|k| matches!(k, ActionKind::Heartbeat { .. })),
        "{acts:?}"
    );
    assert_eq!(h.state(c), State::Backoff);
    assert_eq!(h.status(c).session, None);
    // Not an SDK exception code any more: the link watch is the runtime's own.
    assert_eq!(
        down(&acts),
        Some((LossCause::LinkSilent, ErrorClass::Timeout, 0))
    );
    assert_eq!(recorded_cause(&h, c), Some(LossCause::LinkSilent));
}

#[test]
fn a_silent_link_of_a_stale_session_or_another_strategy_is_ignored() {
    for strategy in Strategy::ALL.into_iter().chain(Strategy::PEERS) {
        let (mut h, c) = H::with_cam(settings(strategy), false);
        let s = h.online(c, 3);
        assert!(
            h.ev(
                c,
                Event::LinkSilent {
                    session: Session(99)
                }
            )
            .is_empty(),
            "{strategy}"
        );
        let acts = h.ev(c, Event::LinkSilent { session: s });
        if strategy.traits().link_watch {
            assert_eq!(h.state(c), State::Backoff, "{strategy}");
        } else {
            assert!(acts.is_empty(), "{strategy}: {acts:?}");
            assert_eq!(h.state(c), State::Online, "{strategy}");
        }
    }
}

#[test]
fn a_silent_link_while_suspect_ends_the_session() {
    let (mut h, c) = H::with_cam(settings(Strategy::Hybrid), false);
    let s = h.online(c, 3);
    h.ev(c, Event::LinkLost { session: s });
    assert_eq!(h.state(c), State::Suspect);
    let acts = h.ev(c, Event::LinkSilent { session: s });
    assert!(has(&acts, is_logout(s)), "{acts:?}");
    assert_eq!(h.state(c), State::Backoff);
}

#[test]
fn only_the_link_watching_strategy_acts_on_a_lost_link() {
    for strategy in Strategy::ALL.into_iter().chain(Strategy::PEERS) {
        let watches = strategy.traits().link_watch;
        assert_eq!(watches, strategy == Strategy::Hybrid, "{strategy}");
        let (mut h, c) = H::with_cam(settings(strategy), false);
        let s = h.online(c, 3);
        // A stale session's link: ignored by everyone.
        assert!(
            h.ev(
                c,
                Event::LinkLost {
                    session: Session(99)
                }
            )
            .is_empty()
        );
        let acts = h.ev(c, Event::LinkLost { session: s });
        if watches {
            assert_eq!(h.state(c), State::Suspect, "{strategy}");
        } else {
            assert!(acts.is_empty(), "{strategy}: {acts:?}");
            assert_eq!(h.state(c), State::Online, "{strategy}");
        }
    }
}
