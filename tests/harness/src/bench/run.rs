//! One run: a simcam fleet in this process, the real daemon as a child process, the
//! scenario's faults on schedule, and everything recorded for [`super::analyze`].

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use simcam::{Event, EventKind, Fleet, FleetConfig};

use super::analyze::{self, Happened, Verdict};
use super::plan::{FaultKind, Plan};
use super::procfs::{self, MachineLoad, ProcSample};
use crate::{CameraSpec, Daemon, DaemonConfig, Signal, SpawnOptions, TempDir, Value};

/// What a run needs.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The `hikwatch` binary (a release build for real numbers).
    pub hikwatch: PathBuf,
    /// The SDK folder (the real x86_64 HCNetSDK).
    pub sdk_dir: PathBuf,
    /// `strategy = …`.
    pub strategy: String,
    /// `backend = …` (`"sdk"`, `"isapi"`).
    pub backend: String,
    /// The run's name in the report and in file names (`sdk/hybrid`, `isapi/poll`).
    pub label: String,
    /// The scenario's plan.
    pub plan: Plan,
    /// Wait this long before starting (strategies side by side are staggered).
    pub delay: Duration,
    /// Print progress lines to stderr.
    pub verbose: bool,
}

/// The states of `docs/interface.md`, in the supervisor's order: a status sample stores
/// each camera's state as an index into this list.
pub const STATES: [&str; 10] = [
    "starting",
    "connecting",
    "online",
    "suspect",
    "backoff",
    "auth-hold",
    "locked",
    "stuck",
    "stopping",
    "removed",
];

/// The daemon's status at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatusSample {
    /// When it was read, µs since the epoch.
    pub t: u64,
    /// Each camera's state ([`STATES`] index; 255 if unknown).
    pub states: Vec<u8>,
    /// Each camera's `login_attempts`.
    pub logins: Vec<u64>,
    /// `state_writes`.
    pub state_writes: u64,
    /// `sdk.logins` (SDK login handles), if the daemon reports it.
    pub sdk_logins: Option<u64>,
}

impl StatusSample {
    fn from_json(v: &Value, t: u64, n: usize) -> Option<StatusSample> {
        let cams = v["cameras"].as_array()?;
        let mut s = StatusSample {
            t,
            states: vec![255; n],
            logins: vec![0; n],
            state_writes: v["state_writes"].as_u64().unwrap_or(0),
            sdk_logins: v["sdk"]["logins"].as_u64(),
        };
        for c in cams {
            let Some(i) = c["id"]
                .as_str()
                .and_then(|id| id.strip_prefix("cam-"))
                .and_then(|i| i.parse::<usize>().ok())
                .filter(|&i| i < n)
            else {
                continue;
            };
            let st = c["state"].as_str().unwrap_or("");
            s.states[i] = STATES
                .iter()
                .position(|x| *x == st)
                .map_or(255, |p| p as u8);
            s.logins[i] = c["login_attempts"].as_u64().unwrap_or(0);
        }
        Some(s)
    }

    /// Cameras in `online` among `cams`.
    pub fn online(&self, cams: &[usize]) -> usize {
        cams.iter()
            .filter(|&&c| self.states.get(c) == Some(&2))
            .count()
    }
}

/// A process snapshot plus the status at the same moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// µs since the epoch.
    pub t: u64,
    /// The daemon's `/proc` numbers.
    pub proc: ProcSample,
    /// The daemon's status.
    pub status: Option<StatusSample>,
}

/// Everything one run recorded.
#[derive(Debug, Default)]
pub struct RawRun {
    /// The run's label (backend and strategy, `sdk/hybrid`).
    pub strategy: String,
    /// The plan it ran.
    pub plan: Option<Plan>,
    /// Login, fault and lock events of simcam (every kind is counted in `event_counts`).
    pub events: Vec<Event>,
    /// simcam events by kind, all of them.
    pub event_counts: std::collections::BTreeMap<String, u64>,
    /// Events lost by simcam's ring buffer (must be 0).
    pub events_dropped: u64,
    /// The fleet-wide high-water mark of login exchanges, as simcam counted it live.
    pub exchanges_hwm: usize,
    /// The daemon's per-camera verdict lines.
    pub verdicts: Vec<Verdict>,
    /// Verdict lines the rate limiter folded (`(repeated N times)`): verdicts it hid.
    pub repeated_lines: usize,
    /// Status samples.
    pub status: Vec<StatusSample>,
    /// The faults as they happened.
    pub faults: Vec<Happened>,
    /// `/proc` samples of the daemon, (µs, sample), about once a second.
    pub proc: Vec<(u64, ProcSample)>,
    /// Busiest second of the machine during the run (0–1 of all cores).
    pub machine_busy_max: f64,
    /// Mean machine load during the run (0–1).
    pub machine_busy_mean: f64,
    /// When the daemon was started, the warm-up ended, the phase ended, the settle ended.
    pub t_start: u64,
    /// See `t_start`.
    pub t_phase: u64,
    /// See `t_start`.
    pub t_phase_end: u64,
    /// See `t_start`.
    pub t_end: u64,
    /// Every healthy camera was online before the phase.
    pub warmup_ok: bool,
    /// Seconds from the daemon's start to every healthy camera online.
    pub warmup_secs: f64,
    /// After warm-up and at the end.
    pub start: Snapshot,
    /// See `start`.
    pub end: Snapshot,
    /// The daemon's exit code after SIGTERM (`None`: killed or did not stop).
    pub exit_code: Option<i32>,
    /// Seconds from SIGTERM to exit.
    pub stop_secs: f64,
    /// Sessions simcam still held after the daemon stopped (logouts missing).
    pub sessions_after_stop: usize,
    /// Logouts simcam saw after SIGTERM.
    pub logouts_at_stop: u64,
    /// The daemon's whole log (stderr and stdout, as it arrived).
    pub log_text: String,
    /// The SDK version the daemon reported at start (`HCNetSDK 6.1.9.48`).
    pub sdk_version: Option<String>,
    /// Something that went wrong (the run still returns what it has).
    pub errors: Vec<String>,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn to_us(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Kinds the analysis needs one by one (the rest are only counted).
fn keep(kind: EventKind) -> bool {
    analyze::is_login(kind)
        || matches!(
            kind,
            EventKind::PowerOff
                | EventKind::PowerOn
                | EventKind::Listening
                | EventKind::Frozen
                | EventKind::Thawed
                | EventKind::Capabilities
                | EventKind::LockExpired
                | EventKind::Logout
                | EventKind::StreamFault
                | EventKind::StreamStart
        )
}

/// What the sampler thread collected.
#[derive(Debug, Default)]
struct Sampled {
    proc: Vec<(u64, ProcSample)>,
    status: Vec<StatusSample>,
    busy_max: f64,
    busy_sum: f64,
    busy_n: u32,
}

/// When a fault was injected and back (wall clock, µs), and the daemon's login counter
/// of the camera just before each.
#[derive(Clone, Copy, Debug, Default)]
struct Injected {
    off: u64,
    on: Option<u64>,
    logins_off: Option<u64>,
    logins_on: Option<u64>,
}

/// One scheduled action of the phase.
#[derive(Clone, Copy, Debug)]
struct Step {
    at: Duration,
    fault: usize,
    back: bool,
}

/// Runs `cfg` to the end and returns what it recorded.
///
/// # Errors
/// When the fleet cannot start (ports, descriptors).
pub fn run(cfg: &RunConfig) -> Result<RawRun, String> {
    std::thread::sleep(cfg.delay);
    let plan = &cfg.plan;
    let tag = format!("{}/{}", plan.scenario.name(), cfg.label);
    let say = |msg: &str| {
        if cfg.verbose {
            eprintln!("[{tag}] {msg}");
        }
    };
    let fleet = Fleet::start(FleetConfig {
        cameras: plan.cameras,
        threads: 1,
        event_capacity: 1 << 17,
        ..FleetConfig::default()
    })
    .map_err(|e| format!("{tag}: simcam fleet: {e}"))?;

    let dir = TempDir::new(&format!(
        "bench-{}-{}",
        plan.scenario.name(),
        cfg.label.replace('/', "-")
    ));
    let mut dc = DaemonConfig::new(&cfg.sdk_dir);
    dc.backend = Some(cfg.backend.clone());
    // The daemon's defaults, except the strategy and what the measurement needs: every
    // per-camera line logged (the shortest repeat window), info level.
    dc.supervisor = vec![
        ("strategy".into(), format!("\"{}\"", cfg.strategy)),
        // The default board allows 64 cameras; an operator raises it like this.
        ("max_cameras".into(), plan.cameras.max(64).to_string()),
    ];
    dc.flush_interval = "10s".into();
    dc.repeat_window = "1s".into();
    dc.log_level = "info".into();
    for i in 0..plan.cameras {
        let mut c = CameraSpec::of(&fleet, i, &format!("cam-{i}"));
        if plan.bad_password.contains(&i) {
            c = c.password("wrong-password");
        }
        if plan.streams {
            c = c.stream("sub");
        }
        dc = dc.camera(c);
    }

    let mut raw = RawRun {
        strategy: cfg.label.clone(),
        plan: Some(plan.clone()),
        ..RawRun::default()
    };
    let healthy = plan.healthy();
    let n = plan.cameras;
    let stop = AtomicBool::new(false);
    let events: Collected = Mutex::new((Vec::new(), std::collections::BTreeMap::new(), 0));
    let samples: Mutex<Sampled> = Mutex::new(Sampled::default());
    let status_every = Mutex::new(Duration::from_millis(500));

    let mut injected: Vec<Injected> = vec![Injected::default(); plan.faults.len()];
    let cursor = std::sync::atomic::AtomicU64::new(0);
    raw.t_start = now_us();
    let started = Instant::now();
    let mut d = Daemon::spawn(&cfg.hikwatch, &dir, &dc, SpawnOptions::default());
    let pid = d.pid();
    say(&format!("daemon pid {pid}, {n} cameras"));

    std::thread::scope(|s| {
        // simcam's log, drained often enough that its ring never wraps.
        s.spawn(|| {
            loop {
                let done = stop.load(Ordering::Acquire);
                drain(&fleet, &cursor, &events);
                if done {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        // The daemon's /proc numbers every second, its status as often as the phase
        // wants, and how busy the machine is.
        s.spawn(|| {
            let mut load = MachineLoad::new();
            let mut next_proc = Instant::now();
            let mut next_status = Instant::now();
            while !stop.load(Ordering::Acquire) {
                let now = Instant::now();
                if now >= next_proc {
                    next_proc = now + Duration::from_secs(1);
                    let p = procfs::sample(pid);
                    let busy = load.busy();
                    let mut g = samples.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(p) = p {
                        g.proc.push((now_us(), p));
                    }
                    if let Some(b) = busy {
                        g.busy_max = g.busy_max.max(b);
                        g.busy_sum += b;
                        g.busy_n += 1;
                    }
                }
                if now >= next_status {
                    let every = *status_every.lock().unwrap_or_else(|p| p.into_inner());
                    next_status = now + every;
                    let t = now_us();
                    if let Some(st) = d
                        .status()
                        .ok()
                        .and_then(|v| StatusSample::from_json(&v, t, n))
                    {
                        samples
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .status
                            .push(st);
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });

        // ---- warm-up: every healthy camera online.
        let deadline = started + plan.warmup;
        let mut dead = false;
        loop {
            if !procfs::alive(pid) {
                let log = d.log_text();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                raw.errors.push(format!(
                    "the daemon exited during the warm-up: {}",
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                ));
                dead = true;
                break;
            }
            let st = d
                .status()
                .ok()
                .and_then(|v| StatusSample::from_json(&v, now_us(), n));
            if st
                .as_ref()
                .is_some_and(|s| s.online(&healthy) == healthy.len())
            {
                raw.warmup_ok = true;
                break;
            }
            if Instant::now() >= deadline {
                raw.errors.push(format!(
                    "warm-up: only {} of {} healthy cameras online after {:?}",
                    st.map_or(0, |s| s.online(&healthy)),
                    healthy.len(),
                    plan.warmup
                ));
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        raw.warmup_secs = started.elapsed().as_secs_f64();
        say(&format!("warm-up done in {:.1} s", raw.warmup_secs));
        // Let the start settle (first heartbeats, the SDK's own checks, state writes).
        std::thread::sleep(Duration::from_secs(5));
        *status_every.lock().unwrap_or_else(|p| p.into_inner()) = plan.status_every;
        raw.start = snapshot(&d, pid, n);
        raw.t_phase = raw.start.t;
        let phase_start = Instant::now();

        // ---- the fault phase.
        let mut steps: Vec<Step> = Vec::new();
        for (i, f) in plan.faults.iter().enumerate().filter(|_| !dead) {
            steps.push(Step {
                at: f.at,
                fault: i,
                back: false,
            });
            steps.push(Step {
                at: f.until,
                fault: i,
                back: true,
            });
        }
        steps.sort_by_key(|s| (s.at, s.back, s.fault));
        let mut k = 0;
        while k < steps.len() {
            let at = steps[k].at;
            if let Some(wait) = (phase_start + at).checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            // One status read for every step due now (the logins counter before it).
            let before = d
                .status()
                .ok()
                .and_then(|v| StatusSample::from_json(&v, now_us(), n));
            while k < steps.len() && steps[k].at <= at + Duration::from_millis(100) {
                let st = steps[k];
                let f = plan.faults[st.fault];
                let cam = fleet.camera(f.cam);
                let logins = before.as_ref().map(|b| b.logins[f.cam]);
                if st.back {
                    injected[st.fault].on = Some(now_us());
                    injected[st.fault].logins_on = logins;
                    let r = match f.kind {
                        FaultKind::PowerOff => {
                            cam.power_on().map(|_| ()).map_err(|e| e.to_string())
                        }
                        FaultKind::Freeze => {
                            cam.thaw();
                            Ok(())
                        }
                        FaultKind::Stall => {
                            cam.resume_stream();
                            Ok(())
                        }
                    };
                    if let Err(e) = r {
                        raw.errors.push(format!("camera {}: power on: {e}", f.cam));
                    }
                } else {
                    injected[st.fault].off = now_us();
                    injected[st.fault].logins_off = logins;
                    match f.kind {
                        FaultKind::PowerOff => {
                            cam.power_off();
                        }
                        FaultKind::Freeze => cam.freeze(),
                        FaultKind::Stall => cam.halt_stream(),
                    }
                }
                k += 1;
            }
        }
        if let Some(wait) = (phase_start + plan.phase)
            .checked_duration_since(Instant::now())
            .filter(|_| !dead)
        {
            std::thread::sleep(wait);
        }
        raw.t_phase_end = now_us();
        say("phase over; waiting for recovery");

        // ---- settle: every healthy camera online again, really: the daemon says so and
        // every camera that was powered off has a new session at simcam (a daemon that
        // never noticed the outage still shows "online" over a session the reboot killed).
        let deadline = Instant::now() + plan.settle;
        while !plan.settle.is_zero() && !dead {
            let daemon_ok = d
                .status()
                .ok()
                .and_then(|v| StatusSample::from_json(&v, now_us(), n))
                .is_some_and(|s| s.online(&healthy) == healthy.len());
            let all = daemon_ok && {
                let g = events.lock().unwrap_or_else(|p| p.into_inner());
                plan.faults.iter().zip(&injected).all(|(f, inj)| {
                    f.kind != FaultKind::PowerOff
                        || inj.on.is_none_or(|back| {
                            g.0.iter().any(|e| {
                                e.camera == f.cam
                                    && e.kind == EventKind::LoginOk
                                    && e.unix_us >= back
                            })
                        })
                })
            };
            if all || Instant::now() >= deadline {
                if !all {
                    raw.errors.push(format!(
                        "not every camera online {:?} after the phase",
                        plan.settle
                    ));
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        if !plan.settle.is_zero() && !dead {
            std::thread::sleep(Duration::from_secs(3)); // the last log lines
        }
        raw.end = snapshot(&d, pid, n);
        raw.t_end = raw.end.t;
        raw.exchanges_hwm = fleet.exchanges_hwm();

        stop.store(true, Ordering::Release);
    });

    // The faults with simcam's own times.
    {
        let evs = events.lock().unwrap_or_else(|p| p.into_inner());
        for (i, f) in plan.faults.iter().enumerate() {
            let Injected {
                off: off_wall,
                on: on_wall,
                logins_off: l0,
                logins_on: l1,
            } = injected[i];
            if off_wall == 0 {
                continue; // never injected (the run was cut short)
            }
            let (start_kind, back_kind) = match f.kind {
                FaultKind::PowerOff => (EventKind::PowerOff, EventKind::Listening),
                FaultKind::Freeze => (EventKind::Frozen, EventKind::Thawed),
                FaultKind::Stall => (EventKind::StreamFault, EventKind::StreamFault),
            };
            let find = |kind: EventKind, from: u64| {
                evs.0
                    .iter()
                    .find(|e| e.camera == f.cam && e.kind == kind && e.unix_us + 1_000 >= from)
                    .map(|e| e.unix_us)
            };
            raw.faults.push(Happened {
                cam: f.cam,
                kind: f.kind,
                at: find(start_kind, off_wall).unwrap_or(off_wall),
                back: on_wall.and_then(|w| find(back_kind, w)),
                logins: l0.zip(l1),
            });
        }
    }

    // ---- graceful stop: every session logged out?
    let logouts = fleet.total_stats().logouts;
    let t_stop = Instant::now();
    d.signal(Signal::SIGTERM);
    raw.exit_code = d.wait_exit(Duration::from_secs(30)).and_then(|s| s.code());
    raw.stop_secs = t_stop.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(300));
    let after = fleet.total_stats();
    raw.sessions_after_stop = after.sessions;
    raw.logouts_at_stop = after.logouts.saturating_sub(logouts);

    drain(&fleet, &cursor, &events); // the logouts of the stop
    let (evs, counts, dropped) = events.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut evs = evs;
    // The last events (logouts at the stop) after the collector's final pass.
    evs.sort_by_key(|e| e.seq);
    raw.events = evs;
    raw.event_counts = counts;
    raw.events_dropped = dropped.max(fleet.events_dropped());
    let sampled = samples.into_inner().unwrap_or_else(|p| p.into_inner());
    raw.proc = sampled.proc;
    raw.status = sampled.status;
    raw.machine_busy_max = sampled.busy_max;
    raw.machine_busy_mean = if sampled.busy_n > 0 {
        sampled.busy_sum / f64::from(sampled.busy_n)
    } else {
        0.0
    };
    raw.log_text = d.log_text();
    for l in d.logs() {
        if raw.sdk_version.is_none() {
            raw.sdk_version = crate::vendor_sdk::version_named_in(&l.text).map(str::to_string);
        }
        if l.text.contains("(repeated ")
            && (l.text.contains(": session lost") || l.text.contains(": online again"))
        {
            raw.repeated_lines += 1;
        }
        if let Some(v) = analyze::parse_line(&l.text, to_us(l.at)) {
            raw.verdicts.push(v);
        }
    }
    raw.verdicts.sort_by_key(|v| v.t);
    if raw.events_dropped > 0 {
        raw.errors.push(format!(
            "simcam dropped {} events: the numbers are incomplete",
            raw.events_dropped
        ));
    }
    say(&format!(
        "done: exit {:?}, {} errors",
        raw.exit_code,
        raw.errors.len()
    ));
    drop(d);
    drop(fleet);
    Ok(raw)
}

type Collected = Mutex<(Vec<Event>, std::collections::BTreeMap<String, u64>, u64)>;

/// Moves simcam's new events into `into` (kept ones one by one, all of them counted).
fn drain(fleet: &Fleet, cursor: &std::sync::atomic::AtomicU64, into: &Collected) {
    let batch = fleet.events_since(cursor.load(Ordering::Acquire));
    if let Some(last) = batch.last() {
        cursor.store(last.seq + 1, Ordering::Release);
    }
    let mut g = into.lock().unwrap_or_else(|p| p.into_inner());
    for e in batch {
        *g.1.entry(e.kind.as_str().to_string()).or_insert(0) += 1;
        if keep(e.kind) {
            g.0.push(e);
        }
    }
    g.2 = fleet.events_dropped();
}

fn snapshot(d: &Daemon, pid: i32, n: usize) -> Snapshot {
    let t = now_us();
    Snapshot {
        t,
        proc: procfs::sample(pid).unwrap_or_default(),
        status: d
            .status()
            .ok()
            .and_then(|v| StatusSample::from_json(&v, t, n)),
    }
}
