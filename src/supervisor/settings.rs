//! Supervisor settings: the knobs the config file maps onto, their defaults and reasons.

use core::fmt;
use core::time::Duration;

use super::time::ms;

/// How a camera's session is watched and how reconnects are scheduled.
///
/// The four real strategies ([`Strategy::ALL`]) share the same safety policy (backoff,
/// auth-hold, lock handling, the global login cap, teardown before redial). They differ
/// only in detection and pacing; [`Strategy::traits`] lists exactly how. The two
/// benchmark-only peers ([`Strategy::PEERS`]) deliberately drop parts of that policy to
/// show what it buys. They exist only in a build with the cargo feature `bench-peers`
/// (which `scripts/bench.sh` and the test builds switch on, the shipped binary never);
/// there the config accepts them with a warning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// The seed article's "Ticker": a heartbeat every interval, down after N consecutive
    /// misses, reconnect attempts aligned to the ticker. SDK exception callbacks are ignored.
    Poll,
    /// SDK exception callbacks (and failed logins) drive reconnects; no heartbeat of our own.
    Event,
    /// Like `Event` for detection; reconnects are jobs for a fixed pool of `workers`.
    Queue,
    /// Callbacks and stream gaps for fast detection, the heartbeat poll as a safety net,
    /// queue workers, and probe-gated login while a camera is down. The default.
    #[default]
    Hybrid,
    /// **Benchmark-only peer, never for production**: the plain timed-polling scheme as it is usually written. A
    /// fixed ticker (`heartbeat_interval`, 5 s) shared by the whole fleet, one missed
    /// heartbeat is a loss, the re-login follows at once, a failed login is retried on the
    /// next tick; no jitter, no start spread, no error classes (a wrong password is
    /// retried every tick until the device locks the client out: that is the point).
    /// Only the structural limits stay: one session per camera, logout before the next
    /// login, the login cap.
    #[cfg(feature = "bench-peers")]
    Naive,
    /// **Benchmark-only peer, never for production**: the SDK's built-in reconnect
    /// (`NET_DVR_SetReconnect` on, the SDK's own session heartbeat and re-login). hikwatch
    /// logs in until the first success, then never logs out or in again and only follows
    /// the exception callbacks: 0x8000 (and 0x8040/0x8044) mark the camera down
    /// (`suspect`, the handle is kept), 0x8017/0x8041 mark it online again.
    #[cfg(feature = "bench-peers")]
    Sdk,
}

impl Strategy {
    /// Every strategy, in documentation order.
    pub const ALL: [Strategy; 4] = [
        Strategy::Poll,
        Strategy::Event,
        Strategy::Queue,
        Strategy::Hybrid,
    ];

    /// The benchmark-only peers (`scripts/bench.sh` compares them with [`Strategy::ALL`]).
    /// The config accepts them with a loud warning; the deterministic simulation's
    /// invariants (no lockout, …) are only claimed for [`Strategy::ALL`]. Empty without
    /// the `bench-peers` feature.
    #[cfg(feature = "bench-peers")]
    pub const PEERS: [Strategy; 2] = [Strategy::Naive, Strategy::Sdk];
    /// The benchmark-only peers: none in this build (no `bench-peers` feature).
    #[cfg(not(feature = "bench-peers"))]
    pub const PEERS: [Strategy; 0] = [];

    /// The config-file spelling: `poll`, `event`, `queue`, `hybrid`, or the benchmark
    /// peers `naive` and `sdk`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Strategy::Poll => "poll",
            Strategy::Event => "event",
            Strategy::Queue => "queue",
            Strategy::Hybrid => "hybrid",
            #[cfg(feature = "bench-peers")]
            Strategy::Naive => "naive",
            #[cfg(feature = "bench-peers")]
            Strategy::Sdk => "sdk",
        }
    }

    /// Parses the config-file spelling (the benchmark peers included).
    #[must_use]
    pub fn from_name(s: &str) -> Option<Strategy> {
        Strategy::ALL
            .into_iter()
            .chain(Strategy::PEERS)
            .find(|st| st.name() == s)
    }

    /// Whether this is one of the benchmark-only [`Strategy::PEERS`].
    #[must_use]
    pub const fn is_benchmark_peer(self) -> bool {
        match self {
            Strategy::Poll | Strategy::Event | Strategy::Queue | Strategy::Hybrid => false,
            #[cfg(feature = "bench-peers")]
            Strategy::Naive | Strategy::Sdk => true,
        }
    }

    /// What this strategy switches on.
    #[must_use]
    pub const fn traits(self) -> StrategyTraits {
        const OFF: StrategyTraits = StrategyTraits {
            heartbeat: false,
            exceptions: false,
            confirm_exceptions: false,
            probe_gate: false,
            worker_slots: false,
            ticker_cadence: false,
            #[cfg(feature = "bench-peers")]
            naive: false,
            #[cfg(feature = "bench-peers")]
            sdk_owns_session: false,
            link_watch: false,
        };
        match self {
            Strategy::Poll => StrategyTraits {
                heartbeat: true,
                ticker_cadence: true,
                ..OFF
            },
            Strategy::Event => StrategyTraits {
                exceptions: true,
                ..OFF
            },
            Strategy::Queue => StrategyTraits {
                exceptions: true,
                worker_slots: true,
                ..OFF
            },
            Strategy::Hybrid => StrategyTraits {
                heartbeat: true,
                exceptions: true,
                confirm_exceptions: true,
                probe_gate: true,
                worker_slots: true,
                link_watch: true,
                ..OFF
            },
            // Benchmark-only peers, kept to two switches the core checks in a handful of
            // places (`Camera::step` and its helpers).
            #[cfg(feature = "bench-peers")]
            Strategy::Naive => StrategyTraits {
                heartbeat: true,
                naive: true,
                ..OFF
            },
            #[cfg(feature = "bench-peers")]
            Strategy::Sdk => StrategyTraits {
                exceptions: true,
                sdk_owns_session: true,
                ..OFF
            },
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The switches that make up a [`Strategy`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StrategyTraits {
    /// Send our own heartbeat every `heartbeat_interval`; down after `heartbeat_misses`.
    pub heartbeat: bool,
    /// Act on SDK exception callbacks.
    pub exceptions: bool,
    /// An exception makes the camera *suspect* and sends one confirming heartbeat at once
    /// (instead of dropping the session on the callback alone).
    pub confirm_exceptions: bool,
    /// While down, TCP-probe the port and skip logins while it is closed.
    pub probe_gate: bool,
    /// Concurrent logins are also limited by `workers`.
    pub worker_slots: bool,
    /// Reconnect attempts happen on the camera's heartbeat ticker.
    pub ticker_cadence: bool,
    /// While online, the runtime holds one idle TCP connection to the camera's port; a
    /// reset on it (or a closed one that cannot be reopened) is [`Event::LinkLost`],
    /// handled like an exception (confirmed by one heartbeat). A rebooting or crashing
    /// device resets its connections, so this sees it within milliseconds, where a
    /// heartbeat would take up to `heartbeat_interval`.
    ///
    /// [`Event::LinkLost`]: super::Event::LinkLost
    pub link_watch: bool,
    /// Benchmark-only ([`Strategy::Naive`]): one fleet-wide tick grid of
    /// `heartbeat_interval` (no per-camera phase, no start spread), one miss is a loss,
    /// re-login at once after a loss and on the next tick after a failed login, whatever
    /// the error. Error classes, backoff, auth-hold, lock waits and the resource throttle
    /// are all off. Only with the `bench-peers` feature; read it through [`StrategyTraits::naive`].
    #[cfg(feature = "bench-peers")]
    pub naive: bool,
    /// Benchmark-only ([`Strategy::Sdk`]): once logged in, the SDK owns the session. A
    /// loss never tears it down; the camera waits in `suspect` (handle kept) until the
    /// SDK reports it back (0x8017 or 0x8041). Only with the `bench-peers` feature; read
    /// it through [`StrategyTraits::sdk_owns_session`].
    #[cfg(feature = "bench-peers")]
    pub sdk_owns_session: bool,
}

impl StrategyTraits {
    /// Whether this is the `naive` peer; always `false` without the `bench-peers`
    /// feature, so the shipped binary compiles the peer's branches away.
    #[must_use]
    pub const fn naive(&self) -> bool {
        #[cfg(feature = "bench-peers")]
        return self.naive;
        #[cfg(not(feature = "bench-peers"))]
        false
    }

    /// Whether the SDK owns the session (the `sdk` peer); always `false` without the
    /// `bench-peers` feature.
    #[must_use]
    pub const fn sdk_owns_session(&self) -> bool {
        #[cfg(feature = "bench-peers")]
        return self.sdk_owns_session;
        #[cfg(not(feature = "bench-peers"))]
        false
    }
}

/// Supervisor tuning. `Settings::default()` holds the documented defaults; the daemon maps
/// the `[supervisor]` config table onto this struct.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// Detection and pacing strategy. Default `hybrid`.
    pub strategy: Strategy,
    /// Our heartbeat period. Default 5 s: with 3 misses a dead session is found within
    /// ~15 s, inside the 5–20 s band peers use for data gaps (docs/peers.md L4), and one
    /// `CHECK_USER_STATUS` per camera every 5 s is cheap.
    pub heartbeat_interval: Duration,
    /// Missed heartbeats before the session is declared dead. A heartbeat is missed when
    /// it fails, or when it is still unanswered a whole interval after it was sent; and
    /// while one is out, `heartbeat_misses` intervals without any answer end the session
    /// (so a silent cut is found within interval × misses, whatever the SDK's timeouts).
    /// Default 3: one lost reply on a busy network must not cost a reconnect.
    pub heartbeat_misses: u8,
    /// Fleet-wide cap on logins in flight. Default 8: a login is ~0.5 s of SDK work and a
    /// few TLS handshakes; 8 in parallel brings 1,000 cameras up in about a minute without
    /// saturating a 2-core gateway.
    pub max_concurrent_logins: u16,
    /// Worker slots for `queue` and `hybrid` (logins in flight ≤ min(workers, cap)).
    /// `None` = `max_concurrent_logins`.
    pub workers: Option<u16>,
    /// First backoff ceiling. Default 1 s (gRPC's initial backoff, docs/peers.md R1).
    pub backoff_initial: Duration,
    /// Ceiling growth per consecutive failure. Default 2.0. Accepted range 1.0–10.0.
    pub backoff_multiplier: f64,
    /// Largest backoff ceiling. Default 60 s (the cap of the plain polling scheme hikwatch started from): whatever the length of
    /// an outage, a camera that comes back is retried at the latest 60 s later. `poll`,
    /// `event` and `queue` have nothing else to cut a grown backoff short (no probe); with
    /// the former 10 min a two-minute outage cost them up to three minutes of waiting. The
    /// price, without a probe: a camera that stays dark gets a login every 30 s on average
    /// (about 120 per outage-hour, each refused or timed out at the TCP level, never a
    /// password try: auth failures hold by the device's count, not by time). `hybrid`'s
    /// probe gate keeps blind logins to one per `blind_login_interval` while the port is
    /// closed, whatever the cap.
    pub backoff_cap: Duration,
    /// Floor added to the jittered backoff for "slow" classes (resource limits, auth
    /// failures with tries left, unknown codes). Default 15 s.
    pub slow_backoff_floor: Duration,
    /// Retry period for `unsupported` and `fatal` errors (jittered in [½, 1] of it).
    /// Default 30 min: an operator has to fix something; we still never give up.
    pub fatal_retry: Duration,
    /// Time online before the backoff counter resets. Default 60 s: a camera that drops
    /// right after each login keeps escalating (the MiBeeNvr reconnect-storm root cause).
    pub stable_period: Duration,
    /// First attempts after start are spread uniformly over this window. Default 10 s.
    pub start_spread: Duration,
    /// Added to the device's remaining lock time. Default 60 s (clock skew, rounding).
    pub lock_margin: Duration,
    /// Lock wait when the device did not say how long. Default 35 min (30 min lock + 5).
    pub lock_unknown: Duration,
    /// Probe period per camera while down (`hybrid`). Default 1 s, so a login follows
    /// within about a second of the port reopening.
    pub probe_interval: Duration,
    /// Fleet-wide probe budget per second (token bucket, burst of a tenth of it).
    /// Default 200: at most ~200 half-open sockets with a 1 s probe timeout; beyond 200
    /// down cameras each is probed every N/200 s (FIFO, nobody starves).
    pub probe_rate: u32,
    /// Without an "open" probe verdict, a blind login is still made this often (+0–25 %
    /// jitter); the first attempt after a drop or start is always allowed. Default 15 min:
    /// with the first attempt that is ≤ 5 logins per outage-hour (target ≤ 6).
    pub blind_login_interval: Duration,
    /// A closed→open probe transition makes a login due at once, at most this often per
    /// camera. Default 30 s: a port flapping every few seconds cannot drive a login storm.
    pub reopen_login_gap: Duration,
    /// With a stream configured, no data for this long is a failure. Default 10 s
    /// (go2rtc 5 s, gortsplib 10 s, Frigate 20 s; docs/peers.md L4).
    pub stream_gap: Duration,
    /// After a resource/limit error, concurrent logins are cut to a quarter of the cap for
    /// this long. Default 60 s.
    pub resource_throttle: Duration,
    /// Deadline of one login call. Default 30 s: ISAPI login is ~12 requests, the SDK's
    /// own connect (3.5 s) and receive (5 s) timeouts normally end a call well before.
    pub login_deadline: Duration,
    /// Deadline of one heartbeat. Default 10 s (SDK receive timeout 5 s, doubled).
    pub heartbeat_deadline: Duration,
    /// Deadline of one logout; after it the next login may follow. Default 10 s.
    pub logout_deadline: Duration,
    /// Deadline of one stream start. Default 15 s.
    pub stream_deadline: Duration,
    /// Deadline of one TCP probe; a probe past it counts as "closed". Default 3 s.
    pub probe_deadline: Duration,
    /// The link watch's silence bound (strategies with [`Traits::link_watch`]): its idle
    /// connection sends a TCP keepalive every second after one idle second, and when
    /// nothing at all came back for this long (`TCP_USER_TIMEOUT`) and a fresh connection
    /// cannot be opened within a second either, the path is dead: [`Event::LinkSilent`]
    /// ends the session. Default 4 s: a black-holed camera is found within about 5 s,
    /// while a path with 1 s ± 300 ms of one-way delay (keepalive answers after up to
    /// 2.6 s) stays quiet. Costs about 2 packets per second per online camera. Zero turns
    /// the keepalive off (the watch then sees only resets).
    ///
    /// [`Event::LinkSilent`]: super::Event::LinkSilent
    pub link_watch_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            strategy: Strategy::Hybrid,
            heartbeat_interval: Duration::from_secs(5),
            heartbeat_misses: 3,
            max_concurrent_logins: 8,
            workers: None,
            backoff_initial: Duration::from_secs(1),
            backoff_multiplier: 2.0,
            backoff_cap: Duration::from_secs(60),
            slow_backoff_floor: Duration::from_secs(15),
            fatal_retry: Duration::from_secs(30 * 60),
            stable_period: Duration::from_secs(60),
            start_spread: Duration::from_secs(10),
            lock_margin: Duration::from_secs(60),
            lock_unknown: Duration::from_secs(35 * 60),
            probe_interval: Duration::from_secs(1),
            probe_rate: 200,
            blind_login_interval: Duration::from_secs(15 * 60),
            reopen_login_gap: Duration::from_secs(30),
            stream_gap: Duration::from_secs(10),
            resource_throttle: Duration::from_secs(60),
            login_deadline: Duration::from_secs(30),
            heartbeat_deadline: Duration::from_secs(10),
            logout_deadline: Duration::from_secs(10),
            stream_deadline: Duration::from_secs(15),
            probe_deadline: Duration::from_secs(3),
            link_watch_timeout: Duration::from_secs(4),
        }
    }
}

/// Everything that can go wrong at the supervisor's API edge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// A setting is out of range.
    Setting {
        /// The [`Settings`] field name.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No camera has this id.
    UnknownCamera(u32),
    /// `restore` was called on a camera that already started working.
    NotFresh(u32),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Setting { field, reason } => write!(f, "supervisor.{field}: {reason}"),
            Error::UnknownCamera(id) => write!(f, "no camera with supervisor id {id}"),
            Error::NotFresh(id) => write!(
                f,
                "camera {id}: persisted state can only be restored before its first attempt"
            ),
        }
    }
}

impl std::error::Error for Error {}

/// [`Settings`] validated and converted to milliseconds; what the core works with.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy {
    pub strategy: Strategy,
    pub traits: StrategyTraits,
    pub heartbeat_interval: u64,
    pub heartbeat_misses: u8,
    pub max_logins: u32,
    pub workers: u32,
    pub backoff_initial: u64,
    /// Multiplier in thousandths (2.0 → 2000): integer math keeps runs bit-identical on
    /// every target.
    pub backoff_mult_milli: u64,
    pub backoff_cap: u64,
    pub slow_floor: u64,
    pub fatal_retry: u64,
    pub stable_period: u64,
    pub start_spread: u64,
    pub lock_margin: u64,
    pub lock_unknown: u64,
    pub probe_interval: u64,
    pub probe_rate: u32,
    pub blind_interval: u64,
    pub reopen_gap: u64,
    pub stream_gap: u64,
    pub resource_throttle: u64,
    pub login_deadline: u64,
    pub heartbeat_deadline: u64,
    pub logout_deadline: u64,
    pub stream_deadline: u64,
    pub probe_deadline: u64,
}

fn positive(field: &'static str, d: Duration) -> Result<u64, Error> {
    let v = ms(d);
    if v == 0 {
        return Err(Error::Setting {
            field,
            reason: "must be at least 1 ms",
        });
    }
    Ok(v)
}

impl Settings {
    /// Checks every setting the way [`Supervisor::new`](super::Supervisor::new) does
    /// (the config loader reports the same problems at load time).
    ///
    /// # Errors
    /// [`Error::Setting`] naming the first setting that is out of range.
    pub fn validate(&self) -> Result<(), Error> {
        self.policy().map(|_| ())
    }

    /// Checks ranges and converts to the core's integer form.
    pub(crate) fn policy(&self) -> Result<Policy, Error> {
        let bad = |field, reason| Err(Error::Setting { field, reason });
        if self.heartbeat_misses == 0 {
            return bad("heartbeat_misses", "must be at least 1");
        }
        if self.max_concurrent_logins == 0 {
            return bad("max_concurrent_logins", "must be at least 1");
        }
        if self.workers == Some(0) {
            return bad("workers", "must be at least 1");
        }
        if !(self.backoff_multiplier >= 1.0 && self.backoff_multiplier <= 10.0) {
            return bad("backoff_multiplier", "must be between 1.0 and 10.0");
        }
        if self.probe_rate == 0 {
            return bad("probe_rate", "must be at least 1 per second");
        }
        let backoff_initial = positive("backoff_initial", self.backoff_initial)?;
        let backoff_cap = positive("backoff_cap", self.backoff_cap)?;
        if backoff_cap < backoff_initial {
            return bad("backoff_cap", "must not be smaller than backoff_initial");
        }
        // The multiplier is a validated float in [1, 10]; the cast is exact enough.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let backoff_mult_milli = (self.backoff_multiplier * 1000.0).round() as u64;
        let max_logins = u32::from(self.max_concurrent_logins);
        Ok(Policy {
            strategy: self.strategy,
            traits: self.strategy.traits(),
            heartbeat_interval: positive("heartbeat_interval", self.heartbeat_interval)?,
            heartbeat_misses: self.heartbeat_misses,
            max_logins,
            workers: self.workers.map_or(max_logins, u32::from),
            backoff_initial,
            backoff_mult_milli,
            backoff_cap,
            slow_floor: ms(self.slow_backoff_floor),
            fatal_retry: positive("fatal_retry", self.fatal_retry)?,
            stable_period: ms(self.stable_period),
            start_spread: ms(self.start_spread),
            lock_margin: ms(self.lock_margin),
            lock_unknown: positive("lock_unknown", self.lock_unknown)?,
            probe_interval: positive("probe_interval", self.probe_interval)?,
            probe_rate: self.probe_rate,
            blind_interval: positive("blind_login_interval", self.blind_login_interval)?,
            reopen_gap: ms(self.reopen_login_gap),
            stream_gap: positive("stream_gap", self.stream_gap)?,
            resource_throttle: ms(self.resource_throttle),
            login_deadline: positive("login_deadline", self.login_deadline)?,
            heartbeat_deadline: positive("heartbeat_deadline", self.heartbeat_deadline)?,
            logout_deadline: positive("logout_deadline", self.logout_deadline)?,
            stream_deadline: positive("stream_deadline", self.stream_deadline)?,
            probe_deadline: positive("probe_deadline", self.probe_deadline)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        let p = Settings::default().policy().expect("defaults are valid");
        assert_eq!(p.backoff_mult_milli, 2000);
        assert_eq!(p.workers, 8);
        assert_eq!(p.heartbeat_interval, 5000);
    }

    #[test]
    fn bad_settings_name_the_field() {
        type Breaker = fn(&mut Settings);
        let cases: [(Breaker, &str); 7] = [
            (|s| s.heartbeat_misses = 0, "heartbeat_misses"),
            (|s| s.max_concurrent_logins = 0, "max_concurrent_logins"),
            (|s| s.workers = Some(0), "workers"),
            (|s| s.backoff_multiplier = 0.5, "backoff_multiplier"),
            (|s| s.backoff_multiplier = f64::NAN, "backoff_multiplier"),
            (|s| s.backoff_cap = Duration::from_millis(10), "backoff_cap"),
            (
                |s| s.heartbeat_interval = Duration::ZERO,
                "heartbeat_interval",
            ),
        ];
        for (break_it, field) in cases {
            let mut s = Settings::default();
            break_it(&mut s);
            match s.policy() {
                Err(Error::Setting { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: expected a setting error, got {other:?}"),
            }
        }
        let e = Settings {
            probe_rate: 0,
            ..Settings::default()
        }
        .policy()
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "supervisor.probe_rate: must be at least 1 per second"
        );
    }

    #[test]
    fn strategy_names_round_trip() {
        for s in Strategy::ALL {
            assert_eq!(Strategy::from_name(s.name()), Some(s));
        }
        for s in Strategy::PEERS {
            assert_eq!(Strategy::from_name(s.name()), Some(s));
            assert!(s.is_benchmark_peer());
            assert!(!Strategy::ALL.contains(&s), "{s} must stay out of ALL");
        }
        assert!(!Strategy::ALL.iter().any(|s| s.is_benchmark_peer()));
        assert_eq!(Strategy::from_name("naïve"), None);
        assert_eq!(Strategy::default(), Strategy::Hybrid);
    }
}
