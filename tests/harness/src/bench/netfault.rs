//! The `netfault` scenario: every strategy behind the network fault lab
//! ([`crate::netlab`]), one lab, one daemon and one six-camera fleet per strategy, all
//! strategies side by side:
//!
//! 1. **loss**: cameras 0-1 at 20 % loss, 2-3 at 50 %, for `loss_secs`: false drops per
//!    camera-hour (every `session lost` is false: the cameras are healthy).
//! 2. **black hole**: cameras 4-5 black-holed (both directions) for `hole_secs`, then
//!    healed: detection and recovery times, logins per outage-hour.
//! 3. **link flap**: cameras 4-5 down 8 s / up 12 s for `flap_secs`: drops, logins per
//!    outage-hour, and whether they end online.
//!
//! Needs root and `/dev/net/tun` (see [`crate::netlab`]).

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, SystemTime};

use simcam::FleetConfig;

use crate::netlab::{BlackHole, Impairment, NetLab};
use crate::{CameraSpec, Daemon, DaemonConfig, SpawnOptions, TempDir, events, secs};

/// How long each phase runs.
#[derive(Clone, Copy, Debug)]
pub struct NetfaultPlan {
    /// The loss phase.
    pub loss_secs: u64,
    /// The black hole's length.
    pub hole_secs: u64,
    /// The flapping phase.
    pub flap_secs: u64,
    /// Seed of the lab's random impairments.
    pub seed: u64,
}

impl NetfaultPlan {
    /// The published run: 3 min of loss, a 30 s black hole, 2 min of flapping.
    pub fn full(seed: u64) -> NetfaultPlan {
        NetfaultPlan {
            loss_secs: 180,
            hole_secs: 30,
            flap_secs: 120,
            seed,
        }
    }

    /// A pipeline check: 30 s, 10 s, 30 s.
    pub fn quick(seed: u64) -> NetfaultPlan {
        NetfaultPlan {
            loss_secs: 30,
            hole_secs: 10,
            flap_secs: 30,
            seed,
        }
    }
}

/// The figures of one strategy.
#[derive(Clone, Debug, Default)]
pub struct NetfaultRow {
    /// The strategy.
    pub strategy: String,
    /// False drops per camera-hour at 20 % and 50 % loss.
    pub false_drops: [f64; 2],
    /// Black hole: detection per camera, seconds (`None`: not detected).
    pub hole_detect: Vec<Option<f64>>,
    /// Black hole: online again after the heal, seconds.
    pub hole_recover: Vec<Option<f64>>,
    /// Black hole: login attempts at the two cameras per outage-hour.
    pub hole_logins_per_hour: f64,
    /// Flap: drops on the two cameras.
    pub flap_drops: usize,
    /// Flap: login attempts per outage-hour (the down phases).
    pub flap_logins_per_hour: f64,
    /// Flap: both cameras online within 60 s after the flapping stopped.
    pub flap_online_after: bool,
}

const CAMERAS: usize = 6;

fn ip(a: SocketAddr) -> Ipv4Addr {
    match a {
        SocketAddr::V4(v) => *v.ip(),
        SocketAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    }
}

fn lost(d: &Daemon, cursor: usize, i: usize) -> usize {
    d.lines_with(cursor, &format!("cam-{i}: session lost"))
        .len()
}

/// Runs the scenario for `strategy` with the daemon `hikwatch` and the SDK in `sdk`.
///
/// # Errors
/// When the lab cannot be made or the fleet never comes online, as text.
pub fn run_strategy(
    strategy: &str,
    hikwatch: &Path,
    sdk: &Path,
    plan: NetfaultPlan,
) -> Result<NetfaultRow, String> {
    let mut lab = NetLab::start(plan.seed)?;
    let f = lab.fleet(FleetConfig {
        cameras: CAMERAS,
        threads: 2,
        ..FleetConfig::default()
    });
    let mut cfg = DaemonConfig::new(sdk).set("strategy", &format!("{strategy:?}"));
    for i in 0..CAMERAS {
        cfg = cfg.camera(CameraSpec::of(&f, i, &format!("cam-{i}")));
    }
    let dir = TempDir::new(&format!("netfault-{strategy}"));
    let d = lab.spawn_daemon(hikwatch, &dir, &cfg, SpawnOptions::default());
    let ids: Vec<String> = (0..CAMERAS).map(|i| format!("cam-{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    d.wait_states(Duration::from_secs(90), &refs, "online")
        .ok_or_else(|| format!("{strategy}: the fleet did not come online"))?;
    std::thread::sleep(Duration::from_secs(5));
    let mut row = NetfaultRow {
        strategy: strategy.to_string(),
        ..NetfaultRow::default()
    };

    // 1. Loss.
    let cursor = d.log_len();
    let loss = |p: f64| Impairment {
        loss: p,
        ..Impairment::default()
    };
    lab.set_many([ip(f.addr(0)), ip(f.addr(1))], &loss(0.2));
    lab.set_many([ip(f.addr(2)), ip(f.addr(3))], &loss(0.5));
    std::thread::sleep(Duration::from_secs(plan.loss_secs));
    let hours = plan.loss_secs as f64 / 3600.0;
    for (k, cams) in [[0, 1], [2, 3]].iter().enumerate() {
        let n: usize = cams.iter().map(|&i| lost(&d, cursor, i)).sum();
        row.false_drops[k] = n as f64 / (2.0 * hours);
    }
    lab.clear_all();
    d.wait_states(Duration::from_secs(120), &refs, "online");

    // 2. Black hole.
    let cursor = d.log_len();
    let seq = f.next_seq();
    let cut = SystemTime::now();
    let hole = Impairment {
        black_hole: BlackHole::Both,
        ..Impairment::default()
    };
    lab.set_many([ip(f.addr(4)), ip(f.addr(5))], &hole);
    std::thread::sleep(Duration::from_secs(plan.hole_secs));
    let healed = SystemTime::now();
    lab.clear_all();
    d.wait_states(Duration::from_secs(90), &refs, "online");
    std::thread::sleep(Duration::from_secs(2));
    for i in [4, 5] {
        let at = |needle: &str| {
            d.lines_with(cursor, &format!("cam-{i}: {needle}"))
                .first()
                .map(|l| l.at)
        };
        row.hole_detect
            .push(at("session lost").map(|t| secs(cut, t)));
        row.hole_recover
            .push(at("online again").map(|t| secs(healed, t)));
    }
    let evs = f.events_since(seq);
    let logins = events::login_attempts(&evs, 4) + events::login_attempts(&evs, 5);
    row.hole_logins_per_hour = logins as f64 / (2.0 * plan.hole_secs as f64 / 3600.0);

    // 3. Link flap.
    let cursor = d.log_len();
    let seq = f.next_seq();
    let flap = Impairment {
        flap: Some((Duration::from_secs(8), Duration::from_secs(12))),
        ..Impairment::default()
    };
    lab.set_many([ip(f.addr(4)), ip(f.addr(5))], &flap);
    std::thread::sleep(Duration::from_secs(plan.flap_secs));
    lab.clear_all();
    row.flap_online_after = d
        .wait_states(Duration::from_secs(60), &refs, "online")
        .is_some();
    row.flap_drops = lost(&d, cursor, 4) + lost(&d, cursor, 5);
    let evs = f.events_since(seq);
    let logins = events::login_attempts(&evs, 4) + events::login_attempts(&evs, 5);
    let down_secs = plan.flap_secs as f64 * 8.0 / 20.0;
    row.flap_logins_per_hour = logins as f64 / (2.0 * down_secs / 3600.0);
    let mut d = d;
    d.signal(crate::Signal::SIGTERM);
    d.wait_exit(Duration::from_secs(30));
    Ok(row)
}

fn opt(v: Option<f64>) -> String {
    v.map_or("not found".into(), |s| format!("{s:.1}"))
}

/// The markdown table of `rows`.
pub fn report(rows: &[NetfaultRow], plan: NetfaultPlan, machine: &str) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# netfault: strategies behind a lossy, black-holed, flapping network path\n\n\
         The real daemon and the real x86_64 SDK in one network namespace, six simcam \
         cameras in another, and between them only the fault lab's user-space router \
         (`harness::netlab`): real IP packets, real TCP on both sides. Default settings \
         except the strategy. Loss {} s (cameras 0-1 at 20 %, 2-3 at 50 %), black hole {} s \
         on cameras 4-5, link flap (down 8 s, up 12 s) {} s on cameras 4-5; seed {}.\n\n{machine}\n",
        plan.loss_secs, plan.hole_secs, plan.flap_secs, plan.seed
    );
    o.push_str(
        "| strategy | false drops /cam-h at 20 % loss | at 50 % loss | black hole: detected (s) | \
         online after heal (s) | logins /outage-h | flap: drops | flap: logins /outage-h | \
         online after flapping |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let _ = writeln!(
            o,
            "| {} | {:.0} | {:.0} | {} | {} | {:.0} | {} | {:.0} | {} |",
            r.strategy,
            r.false_drops[0],
            r.false_drops[1],
            r.hole_detect
                .iter()
                .map(|v| opt(*v))
                .collect::<Vec<_>>()
                .join(", "),
            r.hole_recover
                .iter()
                .map(|v| opt(*v))
                .collect::<Vec<_>>()
                .join(", "),
            r.hole_logins_per_hour,
            r.flap_drops,
            r.flap_logins_per_hour,
            if r.flap_online_after { "yes" } else { "no" }
        );
    }
    o
}
