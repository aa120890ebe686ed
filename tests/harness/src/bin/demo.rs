//! `demo`: hikwatch's main job on one machine, with no camera and no config
//! (`scripts/demo.sh` builds and runs it; docs/demo.md shows what it prints).
//!
//! 1. Starts a simcam fleet (16 cameras by default) in this process: ISAPI login with the
//!    real password hash, heartbeats, logout, a lockout after `LOCKOUT` wrong passwords.
//! 2. Writes an embedded default config into a temp folder (hybrid strategy, short but
//!    realistic timings; state file, status socket and password files in the folder) and
//!    runs the real `hikwatch run` binary on the real x86_64 HCNetSDK (`--backend isapi`:
//!    hikwatch's own ISAPI client, no SDK).
//! 3. Injects faults on a fixed schedule, cameras picked by a seed: a power-off, a
//!    password changed on the camera, a group power-off, a silent cut (freeze, no RST);
//!    then the repairs: power-on, the password fixed in the config + SIGHUP, thaw.
//! 4. Shows a live status table (from `hikwatch status` over the socket), redrawn in
//!    place on a terminal, periodic plain lines otherwise.
//! 5. Stops the daemon with SIGTERM and prints a summary: per fault when it was injected,
//!    detected and recovered; login attempts per camera; lockouts at the cameras (must be
//!    0); cameras online at the end; logouts at SIGTERM.
//!
//! Where the times come from: injections and repairs from simcam's event log
//! (`power_off`, `password_changed`, `frozen`, `listening`, `thawed`; the SIGHUP when it
//! was sent), detection and recovery from the daemon's status, polled every 100 ms:
//! *detected* is the first poll at which the camera's session was declared lost (its state
//! is neither `online` nor `suspect`, or its `reconnects` counter grew), *recovered* the
//! first poll after the repair at which it is `online` again.
//!
//! Exit code: 0 when every check passed, 1 when one failed, 130 when ended early by a
//! signal (Ctrl-C; the summary is still printed and the daemon stopped with SIGTERM),
//! 2 for bad usage, 3 when the demo cannot start (SDK or binary missing, ...).
//! The daemon is killed and the temp folder removed on every exit path this process
//! survives to handle (normal end, Ctrl-C/SIGTERM/SIGHUP/SIGQUIT, errors, panics).
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use harness::{CameraSpec, Daemon, DaemonConfig, Signal, SpawnOptions, TempDir, Value, events};
use nix::sys::signal::SigSet;
use simcam::{EventKind, Fleet, FleetConfig};

const USAGE: &str = "\
usage: demo [--quick | --duration D] [--cameras N] [--seed N] [--backend sdk|isapi]
            [--sdk DIR] [--hikwatch BIN] [--plain] [--log FILE] [--print-config]

Runs the real `hikwatch run` against a simulated camera fleet, injects faults on a
schedule, shows a live status table and ends with a summary. No camera, no config.

  --duration D     fault phase length (default 115s; total run about 2 minutes);
                   D is seconds (\"90\", \"90s\") or minutes (\"2m\"); at least 30s
  --quick          --duration 35s
  --cameras N      simulated cameras (default 16, 8..=64)
  --seed N         picks which cameras get which fault (default 1)
  --backend B      sdk (default): the vendor HCNetSDK; isapi: hikwatch's own ISAPI client,
                   no SDK needed
  --sdk DIR        HCNetSDK folder (default $HIKWATCH_TEST_SDK, else vendor/hcnetsdk-linux64)
  --hikwatch BIN   the daemon binary (default: `hikwatch` next to this program)
  --plain          periodic plain lines even on a terminal
  --log FILE       save hikwatch's log (stderr) there at the end
  --print-config   print the embedded hikwatch.toml and exit

Ctrl-C ends early: the summary is still printed and the daemon stopped with SIGTERM.";

/// Wrong passwords (per client IP) after which a simulated camera locks the client out:
/// 7, the Hikvision default.
const LOCKOUT: u32 = 7;
/// The cameras' password, and the new one the "password changed" fault sets.
const PASSWORD: &str = "hik12345";
const NEW_PASSWORD: &str = "rotated-2024";
/// Status poll period (the resolution of the detection and recovery times).
const POLL: Duration = Duration::from_millis(100);
/// How long a repair waits past its slot for the fault to be detected first (and, for the
/// wrong password, for the auth-hold).
const REPAIR_GATE: Duration = Duration::from_secs(20);
/// How long the end waits past `--duration` for cameras still recovering.
const END_GRACE: Duration = Duration::from_secs(30);

/// The embedded default `[supervisor]` table: hybrid, short but realistic timings so
/// that every fault is detected and repaired within the demo.
const SUPERVISOR: &[(&str, &str)] = &[
    ("strategy", "\"hybrid\""),
    ("heartbeat_interval", "\"2s\""),
    ("heartbeat_misses", "3"),
    ("heartbeat_deadline", "\"2s\""),
    ("max_concurrent_logins", "4"),
    ("backoff_initial", "\"1s\""),
    ("backoff_multiplier", "2.0"),
    ("backoff_cap", "\"5s\""),
    ("slow_backoff_floor", "\"1s\""),
    ("stable_period", "\"10s\""),
    ("start_spread", "\"2s\""),
    ("probe_interval", "\"1s\""),
    ("reopen_login_gap", "\"5s\""),
    ("blind_login_interval", "\"20s\""),
    ("login_deadline", "\"10s\""),
    ("logout_deadline", "\"3s\""),
    ("lock_margin", "\"10s\""),
];

// ---- process-wide cleanup ---------------------------------------------------------------

/// The signal that asked us to stop (0: none yet).
static STOP: AtomicI32 = AtomicI32::new(0);
/// Stop signals received (a second one while stopping kills the daemon at once).
static STOPS: AtomicU32 = AtomicU32::new(0);
/// The daemon's pid while it runs, for the panic hook.
static DAEMON_PID: AtomicI32 = AtomicI32::new(0);
/// The temp folder while it exists, for the panic hook.
static WORKDIR: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Blocks SIGINT, SIGTERM, SIGHUP and SIGQUIT in every thread (call before any thread
/// starts) and takes them on one thread with `sigwait`, which records the first in
/// [`STOP`]. Children get an empty mask again (std resets it at spawn).
fn catch_signals() -> Result<(), String> {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        set.add(s);
    }
    set.thread_block()
        .map_err(|e| format!("blocking signals: {e}"))?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            loop {
                if let Ok(sig) = set.wait() {
                    let _ =
                        STOP.compare_exchange(0, sig as i32, Ordering::SeqCst, Ordering::SeqCst);
                    STOPS.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
        .map_err(|e| format!("signal thread: {e}"))?;
    Ok(())
}

fn stop_requested() -> Option<Signal> {
    Signal::try_from(STOP.load(Ordering::SeqCst)).ok()
}

/// On a panic (the release profile aborts, so no destructor runs): kill the daemon and
/// remove the temp folder before the process goes.
fn install_panic_cleanup() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        let pid = DAEMON_PID.swap(0, Ordering::SeqCst);
        if pid > 0 {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
        }
        let dir = WORKDIR.lock().ok().and_then(|mut g| g.take());
        if let Some(dir) = dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }));
}

// ---- arguments ----------------------------------------------------------------------------

#[derive(Debug)]
struct Args {
    duration: Duration,
    cameras: usize,
    seed: u64,
    /// `--backend isapi`: hikwatch's own ISAPI client, no SDK.
    isapi: bool,
    sdk: Option<PathBuf>,
    hikwatch: Option<PathBuf>,
    plain: bool,
    print_config: bool,
    log: Option<PathBuf>,
}

/// `90`, `90s`, `2m`, `1m30s`.
fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return Some(Duration::from_secs(n));
    }
    let mut total = 0u64;
    let mut num = String::new();
    for ch in s.chars() {
        if ch.is_ascii_digit() {
            num.push(ch);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        total += match ch {
            's' => n,
            'm' => n.checked_mul(60)?,
            _ => return None,
        };
    }
    num.is_empty().then_some(Duration::from_secs(total))
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut a = Args {
        duration: Duration::from_secs(115),
        cameras: 16,
        seed: 1,
        isapi: false,
        sdk: None,
        hikwatch: None,
        plain: false,
        print_config: false,
        log: None,
    };
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--quick" => a.duration = Duration::from_secs(35),
            "--duration" => {
                let v = value("--duration")?;
                a.duration = parse_duration(&v)
                    .filter(|d| *d >= Duration::from_secs(30) && *d <= Duration::from_secs(3600))
                    .ok_or(format!("--duration {v:?}: give 30s..60m, e.g. 90s or 2m"))?;
            }
            "--cameras" => {
                let v = value("--cameras")?;
                a.cameras = v
                    .parse()
                    .ok()
                    .filter(|n| (8..=64).contains(n))
                    .ok_or(format!("--cameras {v:?}: give 8..=64"))?;
            }
            "--seed" => {
                let v = value("--seed")?;
                a.seed = v
                    .parse()
                    .map_err(|_| format!("--seed {v:?}: not a number"))?;
            }
            "--backend" => {
                let v = value("--backend")?;
                a.isapi = match v.as_str() {
                    "sdk" => false,
                    "isapi" => true,
                    _ => return Err(format!("--backend {v:?}: give sdk or isapi")),
                };
            }
            "--sdk" => a.sdk = Some(PathBuf::from(value("--sdk")?)),
            "--hikwatch" => a.hikwatch = Some(PathBuf::from(value("--hikwatch")?)),
            "--plain" => a.plain = true,
            "--log" => a.log = Some(PathBuf::from(value("--log")?)),
            "--print-config" => a.print_config = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if a.isapi && a.sdk.is_some() {
        return Err("--sdk applies to --backend sdk only".into());
    }
    Ok(Some(a))
}

// ---- the fault schedule -------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// One camera loses power (RST to open connections, connects refused).
    PowerOff,
    /// Someone changed the camera's password; its sessions end.
    WrongPassword,
    /// A PoE switch with several cameras loses power.
    GroupPowerOff,
    /// The path to the camera goes silent: no RST, nothing answers.
    Freeze,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::PowerOff => "power-off",
            Kind::WrongPassword => "wrong password",
            Kind::GroupPowerOff => "group power-off",
            Kind::Freeze => "silent cut",
        }
    }

    fn injection(self) -> &'static str {
        match self {
            Kind::PowerOff => "camera loses power (connections reset, connects refused)",
            Kind::WrongPassword => {
                "password changed on the camera, its sessions dropped (config still has the old one)"
            }
            Kind::GroupPowerOff => "PoE switch loses power (connections reset, connects refused)",
            Kind::Freeze => "silent cut: no RST, nothing answers (frozen)",
        }
    }

    fn repair(self) -> &'static str {
        match self {
            Kind::PowerOff | Kind::GroupPowerOff => "power back on",
            Kind::WrongPassword => "password file corrected, SIGHUP (reload)",
            Kind::Freeze => "path restored (thawed)",
        }
    }
}

/// One fault: what, where, when, and what was seen.
#[derive(Debug)]
struct Fault {
    kind: Kind,
    cams: Vec<usize>,
    /// Offsets from the moment every camera was first online.
    inject_at: Duration,
    repair_at: Duration,
    injected: Option<SystemTime>,
    repaired: Option<SystemTime>,
    /// `reconnects` per camera when injected.
    base_reconnects: Vec<u64>,
    detected: Vec<Option<SystemTime>>,
    /// Wrong password: when the auth-hold was first seen.
    held: Option<SystemTime>,
    recovered: Vec<Option<SystemTime>>,
}

impl Fault {
    fn new(kind: Kind, cams: Vec<usize>, d: Duration, inject: f64, repair: f64) -> Fault {
        let n = cams.len();
        Fault {
            kind,
            cams,
            inject_at: d.mul_f64(inject),
            repair_at: d.mul_f64(repair),
            injected: None,
            repaired: None,
            base_reconnects: vec![0; n],
            detected: vec![None; n],
            held: None,
            recovered: vec![None; n],
        }
    }

    fn all_detected(&self) -> bool {
        self.detected.iter().all(Option::is_some)
    }

    fn all_recovered(&self) -> bool {
        self.recovered.iter().all(Option::is_some)
    }

    /// Whether the repair may come: the fault was seen (the wrong password: held).
    fn ready_for_repair(&self) -> bool {
        self.all_detected() && (self.kind != Kind::WrongPassword || self.held.is_some())
    }

    fn done(&self) -> bool {
        self.repaired.is_some() && self.all_recovered()
    }
}

/// splitmix64: a tiny seeded generator for picking cameras (no dependency needed).
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The schedule: which cameras (from the seed) and when (fractions of the fault phase).
/// Four faults injected in the first third, repaired in the second, then quiet time in
/// which everything must come back and stay.
fn plan(cameras: usize, seed: u64, d: Duration) -> Vec<Fault> {
    let mut rng = Mix(seed);
    // A PoE switch feeds 4 neighbouring cameras.
    let g0 = rng.below(cameras - 3);
    let group: Vec<usize> = (g0..g0 + 4).collect();
    let mut others: Vec<usize> = (0..cameras).filter(|i| !group.contains(i)).collect();
    let mut pick = || others.swap_remove(rng.below(others.len()));
    let (single, wrong, frozen) = (pick(), pick(), pick());
    // The wrong password goes first: the device allows LOCKOUT - 1 tries and hikwatch
    // spends all but one of them (with its slow backoff) before it holds.
    vec![
        Fault::new(Kind::WrongPassword, vec![wrong], d, 0.04, 0.60),
        Fault::new(Kind::PowerOff, vec![single], d, 0.12, 0.46),
        Fault::new(Kind::GroupPowerOff, group, d, 0.20, 0.52),
        Fault::new(Kind::Freeze, vec![frozen], d, 0.28, 0.66),
    ]
}

// ---- the daemon's view --------------------------------------------------------------------

/// One camera's row from `hikwatch status --json`.
#[derive(Clone, Debug, Default)]
struct Row {
    state: String,
    since: u64,
    logins: u64,
    reconnects: u64,
    last_error: String,
}

fn rows(ids: &[String], v: &Value) -> Vec<Row> {
    ids.iter()
        .map(|id| {
            let Some(c) = harness::camera(v, id) else {
                return Row {
                    state: "?".into(),
                    ..Row::default()
                };
            };
            let last_error = match &c["last_error"] {
                Value::Null => String::new(),
                e => {
                    let msg = e["message"].as_str().unwrap_or("");
                    match e["code"].as_u64() {
                        Some(code) if !msg.contains(&code.to_string()) => {
                            format!("{msg} (error {code})")
                        }
                        _ => msg.to_string(),
                    }
                }
            };
            Row {
                state: c["state"].as_str().unwrap_or("?").to_string(),
                since: c["since"].as_u64().unwrap_or(0),
                logins: c["login_attempts"].as_u64().unwrap_or(0),
                reconnects: c["reconnects"].as_u64().unwrap_or(0),
                last_error,
            }
        })
        .collect()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

// ---- output -------------------------------------------------------------------------------

/// Live output: a table redrawn in place on a terminal, plain lines otherwise.
struct Screen {
    tty: bool,
    t0: SystemTime,
    /// Lines of the last frame (to move back over them).
    drawn: usize,
    last_frame: Instant,
    last_table: Instant,
    table_every: Duration,
    /// Terminal size (rows, columns), refreshed every few seconds.
    size: (usize, usize),
    size_at: Instant,
    /// The fault being injected or repaired now (the ticker).
    current: String,
    /// Everything said so far, stamped.
    said: Vec<String>,
}

/// The terminal's size from `stty size` on /dev/tty (24 x 80 when unknown).
fn terminal_size() -> (usize, usize) {
    let size = std::fs::File::open("/dev/tty").ok().and_then(|tty| {
        let out = std::process::Command::new("stty")
            .arg("size")
            .stdin(tty)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut it = text.split_whitespace().map(|n| n.parse::<usize>().ok());
        Some((it.next()??, it.next()??))
    });
    match size {
        Some((r, c)) if r > 0 && c > 0 => (r, c),
        _ => (24, 80),
    }
}

/// `line` cut to `cols` visible characters (ANSI colour sequences pass uncounted), so no
/// line wraps and the cursor can move back over the frame exactly.
fn fit(line: &str, cols: usize) -> String {
    let mut out = String::new();
    let (mut seen, mut in_esc, mut coloured) = (0usize, false, false);
    for ch in line.chars() {
        if in_esc {
            out.push(ch);
            in_esc = ch != 'm';
            continue;
        }
        if ch == '\x1b' {
            out.push(ch);
            in_esc = true;
            coloured = true;
            continue;
        }
        if seen + 1 >= cols {
            break;
        }
        out.push(ch);
        seen += 1;
    }
    if coloured {
        out.push_str("\x1b[0m");
    }
    out
}

impl Screen {
    fn new(tty: bool, table_every: Duration) -> Screen {
        Screen {
            tty,
            t0: SystemTime::now(),
            drawn: 0,
            last_frame: Instant::now(),
            last_table: Instant::now(),
            table_every,
            size: if tty { terminal_size() } else { (24, 80) },
            size_at: Instant::now(),
            current: String::new(),
            said: Vec::new(),
        }
    }

    /// `t+12.3s` for a wall-clock time.
    fn stamp(&self, at: SystemTime) -> String {
        format!("t+{:.1}s", harness::secs(self.t0, at))
    }

    /// A line about what happens (printed at once in plain mode, listed on the terminal).
    fn say(&mut self, line: &str) {
        let stamped = format!("[{:>8}] {line}", self.stamp(SystemTime::now()));
        if !self.tty {
            println!("{stamped}");
        }
        self.said.push(stamped);
    }

    /// A fault injected or repaired: the ticker shows it until the next one.
    fn act(&mut self, line: &str) {
        self.current = format!("{line}  ({})", self.stamp(SystemTime::now()));
        self.say(line);
    }

    fn colour(&self, state: &str, text: String) -> String {
        if !self.tty {
            return text;
        }
        let code = match state {
            "online" => "32",
            "suspect" | "connecting" | "starting" | "backoff" | "stuck" => "33",
            "auth-hold" | "locked" => "31;1",
            _ => return text,
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    fn table(&self, ids: &[String], rows: &[Row]) -> Vec<String> {
        let now = unix_now();
        let mut out = vec![format!(
            "{:<8} {:<11} {:>6} {:>7} {:>10}  {}",
            "camera", "state", "since", "logins", "reconnects", "last error"
        )];
        for (id, r) in ids.iter().zip(rows) {
            let since = if r.since == 0 {
                "-".to_string()
            } else {
                format!("{}s", now.saturating_sub(r.since))
            };
            let mut err = r.last_error.clone();
            if err.chars().count() > 48 {
                err = err.chars().take(47).collect::<String>() + "…";
            }
            let state = self.colour(&r.state, format!("{:<11}", r.state));
            out.push(format!(
                "{id:<8} {state} {since:>6} {:>7} {:>10}  {}",
                r.logins,
                r.reconnects,
                if err.is_empty() { "-" } else { &err }
            ));
        }
        out
    }

    fn counts(rows: &[Row]) -> String {
        let mut by: Vec<(&str, usize)> = Vec::new();
        for r in rows {
            match by.iter_mut().find(|(s, _)| *s == r.state) {
                Some((_, n)) => *n += 1,
                None => by.push((&r.state, 1)),
            }
        }
        let online = by
            .iter()
            .find(|(s, _)| *s == "online")
            .map_or(0, |(_, n)| *n);
        let mut s = format!("online {online}/{}", rows.len());
        for (state, n) in by.iter().filter(|(s, _)| *s != "online") {
            let _ = write!(s, ", {state} {n}");
        }
        s
    }

    /// Terminal: redraws the frame (at most every 400 ms unless `force`). Plain: prints
    /// the table every `table_every` (or now with `force`).
    fn frame(&mut self, title: &str, ids: &[String], rows: &[Row], force: bool) {
        if rows.is_empty() {
            return; // no status yet
        }
        let now = Instant::now();
        if !self.tty {
            if force || now.duration_since(self.last_table) >= self.table_every {
                self.last_table = now;
                println!(
                    "[{:>8}] status: {}",
                    self.stamp(SystemTime::now()),
                    Screen::counts(rows)
                );
                for l in self.table(ids, rows) {
                    println!("           {l}");
                }
            }
            return;
        }
        if !force && now.duration_since(self.last_frame) < Duration::from_millis(400) {
            return;
        }
        self.last_frame = now;
        if now.duration_since(self.size_at) >= Duration::from_secs(2) {
            self.size = terminal_size();
            self.size_at = now;
        }
        let (height, cols) = self.size;
        let mut lines = vec![
            format!("\x1b[1m{title}\x1b[0m   {}", self.stamp(SystemTime::now())),
            format!(
                "now: \x1b[1m{}\x1b[0m",
                if self.current.is_empty() {
                    "(no fault yet)"
                } else {
                    &self.current
                }
            ),
        ];
        lines.extend(self.table(ids, rows));
        lines.push(format!("status: {}", Screen::counts(rows)));
        // The latest lines that still fit on the screen.
        let room = height.saturating_sub(lines.len() + 1).min(6);
        lines.extend(
            self.said[self.said.len().saturating_sub(room)..]
                .iter()
                .cloned(),
        );
        lines.truncate(height.saturating_sub(1).max(1));
        let mut out = String::new();
        if self.drawn > 0 {
            let _ = write!(out, "\r\x1b[{}A", self.drawn);
        }
        for l in &lines {
            let _ = writeln!(out, "\x1b[2K{}", fit(l, cols));
        }
        out.push_str("\x1b[J");
        self.drawn = lines.len();
        let mut so = std::io::stdout().lock();
        let _ = so.write_all(out.as_bytes());
        let _ = so.flush();
    }

    /// State changes, as plain lines (the terminal frame shows them in the table).
    fn transitions(&mut self, ids: &[String], old: &[Row], new: &[Row]) {
        if self.tty || old.len() != new.len() {
            return;
        }
        for ((id, o), n) in ids.iter().zip(old).zip(new) {
            if o.state != n.state {
                // The error that came with this change (not an older one).
                let why = if n.last_error != o.last_error && !n.last_error.is_empty() {
                    format!(" ({})", n.last_error)
                } else {
                    String::new()
                };
                println!(
                    "[{:>8}]   {id}: {} -> {}{why}",
                    self.stamp(SystemTime::now()),
                    o.state,
                    n.state
                );
            }
        }
    }

    /// Ends the live frame: what follows prints below it.
    fn finish(&mut self) {
        self.drawn = 0;
    }
}

// ---- the run ------------------------------------------------------------------------------

fn sdk_dir(args: &Args) -> Result<PathBuf, String> {
    let candidates: Vec<PathBuf> = match (&args.sdk, std::env::var_os("HIKWATCH_TEST_SDK")) {
        (Some(d), _) => vec![d.clone()],
        (None, Some(d)) => vec![PathBuf::from(d)],
        (None, None) => vec![
            PathBuf::from("vendor/hcnetsdk-linux64"),
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../vendor/hcnetsdk-linux64"),
        ],
    };
    for c in &candidates {
        if c.join("libhcnetsdk.so").is_file() {
            return std::path::absolute(c).map_err(|e| format!("{}: {e}", c.display()));
        }
    }
    Err(format!(
        "the real HCNetSDK (libhcnetsdk.so) is not in {}: run scripts/fetch-sdk.sh, or pass --sdk DIR",
        candidates[0].display()
    ))
}

fn hikwatch_bin(args: &Args) -> Result<PathBuf, String> {
    let bin = match &args.hikwatch {
        Some(b) => b.clone(),
        None => std::env::current_exe()
            .map_err(|e| format!("where am I: {e}"))?
            .with_file_name("hikwatch"),
    };
    if bin.is_file() {
        std::path::absolute(&bin).map_err(|e| format!("{}: {e}", bin.display()))
    } else {
        Err(format!(
            "the hikwatch binary is not at {}: build it (cargo build --release --bin hikwatch) \
             or pass --hikwatch BIN",
            bin.display()
        ))
    }
}

/// Where `name` is on `$PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A launcher in `dir` that execs `bin` (same pid, same arguments) under
/// `setpriv --pdeathsig KILL` (util-linux, essential on Debian): should this program be
/// killed outright (SIGKILL, the one exit it cannot handle), the kernel kills the daemon
/// too. `bin` itself when setpriv is missing or the launcher cannot run (a `noexec` temp
/// folder).
fn launcher(dir: &TempDir, bin: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let Some(setpriv) = on_path("setpriv") else {
        return bin.to_path_buf();
    };
    let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', "'\\''"));
    let script = dir.write(
        "hikwatch-launcher.sh",
        &format!(
            "#!/bin/sh\n[ \"$1\" = --launcher-check ] && exit 0\n\
             exec {} --pdeathsig KILL -- {} \"$@\"\n",
            quote(&setpriv),
            quote(bin)
        ),
    );
    let runs = std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).is_ok()
        && std::process::Command::new(&script)
            .arg("--launcher-check")
            .status()
            .is_ok_and(|s| s.success());
    if runs { script } else { bin.to_path_buf() }
}

/// The daemon's config: the SDK in `sdk`, or the ISAPI backend (no `[sdk]` table) when
/// `sdk` is `None`.
fn demo_config(sdk: Option<&Path>, ids: &[String], fleet: &Fleet) -> DaemonConfig {
    let mut cfg = sdk.map_or_else(DaemonConfig::isapi, DaemonConfig::new);
    for (k, v) in SUPERVISOR {
        cfg = cfg.set(k, v);
    }
    cfg.flush_interval = "2s".into();
    cfg.repeat_window = "10s".into();
    for (i, id) in ids.iter().enumerate() {
        cfg = cfg.camera(CameraSpec::of(fleet, i, id));
    }
    cfg
}

/// What the end of the run found.
struct End {
    rows: Vec<Row>,
    exit_code: Option<i32>,
    stop_secs: f64,
    logouts: Vec<usize>,
    sessions_left: usize,
}

struct Run<'a> {
    args: &'a Args,
    fleet: &'a Fleet,
    dir: &'a TempDir,
    daemon: Daemon,
    ids: Vec<String>,
    screen: Screen,
    rows: Vec<Row>,
    title: String,
    failures: Vec<String>,
}

impl Run<'_> {
    /// One status poll; updates the table rows (kept as they were when nothing answers).
    fn poll(&mut self) -> Option<SystemTime> {
        let v = self.daemon.status().ok()?;
        let at = SystemTime::now();
        let new = rows(&self.ids, &v);
        self.screen.transitions(&self.ids, &self.rows, &new);
        self.rows = new;
        Some(at)
    }

    /// Sends `sig` to the daemon; false when it is gone.
    fn send(&mut self, sig: Signal) -> bool {
        if self.daemon_gone() {
            return false;
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.daemon.pid()), sig).is_ok()
    }

    fn daemon_gone(&mut self) -> bool {
        self.daemon.wait_exit(Duration::ZERO).is_some()
    }

    fn online(&self) -> usize {
        self.rows.iter().filter(|r| r.state == "online").count()
    }

    fn names(&self, cams: &[usize]) -> String {
        match cams {
            [one] => self.ids[*one].clone(),
            [first, .., last] if last - first + 1 == cams.len() => {
                format!("{}..{}", self.ids[*first], self.ids[*last])
            }
            _ => cams
                .iter()
                .map(|&c| self.ids[c].as_str())
                .collect::<Vec<_>>()
                .join(","),
        }
    }

    /// Waits until every camera is online (or a stop, or the daemon dies).
    fn start(&mut self, timeout: Duration) -> Result<(), String> {
        let end = Instant::now() + timeout;
        loop {
            self.poll();
            self.screen.frame(&self.title, &self.ids, &self.rows, false);
            if self.online() == self.ids.len() {
                return Ok(());
            }
            if stop_requested().is_some() {
                return Err("stopped before every camera was online".into());
            }
            if self.daemon_gone() {
                return Err("hikwatch exited during start-up".into());
            }
            if Instant::now() >= end {
                return Err(format!(
                    "only {}/{} cameras online after {}s",
                    self.online(),
                    self.ids.len(),
                    timeout.as_secs()
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    fn event_time(&self, seq: u64, cam: usize, kind: EventKind) -> SystemTime {
        self.fleet
            .camera(cam)
            .wait_event(seq, kind, Duration::from_secs(5))
            .map_or_else(SystemTime::now, |e| events::at(&e))
    }

    fn inject(&mut self, f: &mut Fault) {
        let seq = self.fleet.next_seq();
        let first = f.cams[0];
        for (k, &c) in f.cams.iter().enumerate() {
            f.base_reconnects[k] = self.rows.get(c).map_or(0, |r| r.reconnects);
        }
        let at = match f.kind {
            Kind::PowerOff | Kind::GroupPowerOff => {
                for &c in &f.cams {
                    self.fleet.camera(c).power_off();
                }
                self.event_time(seq, first, EventKind::PowerOff)
            }
            Kind::WrongPassword => {
                let cam = self.fleet.camera(first);
                cam.set_password(NEW_PASSWORD);
                cam.drop_sessions();
                self.event_time(seq, first, EventKind::PasswordChanged)
            }
            Kind::Freeze => {
                self.fleet.camera(first).freeze();
                self.event_time(seq, first, EventKind::Frozen)
            }
        };
        f.injected = Some(at);
        let line = format!(
            ">> {} {}: {}",
            f.kind.name(),
            self.names(&f.cams),
            f.kind.injection()
        );
        self.screen.act(&line);
    }

    fn repair(&mut self, f: &mut Fault) {
        let seq = self.fleet.next_seq();
        let first = f.cams[0];
        let at = match f.kind {
            Kind::PowerOff | Kind::GroupPowerOff => {
                for &c in &f.cams {
                    if let Err(e) = self.fleet.camera(c).power_on() {
                        self.failures
                            .push(format!("{}: power on failed: {e}", self.ids[c]));
                    }
                }
                self.event_time(seq, first, EventKind::Listening)
            }
            Kind::WrongPassword => {
                let id = self.ids[first].clone();
                self.dir.write(&format!("{id}.pass"), NEW_PASSWORD);
                let at = SystemTime::now();
                if !self.send(Signal::SIGHUP) {
                    self.failures.push("SIGHUP: hikwatch is gone".into());
                }
                at
            }
            Kind::Freeze => {
                self.fleet.camera(first).thaw();
                self.event_time(seq, first, EventKind::Thawed)
            }
        };
        f.repaired = Some(at);
        let mut line = format!(
            "<< {} {}: {}",
            f.kind.name(),
            self.names(&f.cams),
            f.kind.repair()
        );
        if !f.ready_for_repair() {
            line.push_str(" (before the daemon noticed it!)");
        }
        self.screen.act(&line);
    }

    /// Detection, hold and recovery marks from the latest poll (taken at `at`).
    fn observe(&mut self, faults: &mut [Fault], at: SystemTime) {
        for f in faults.iter_mut().filter(|f| f.injected.is_some()) {
            for (k, &c) in f.cams.iter().enumerate() {
                let Some(r) = self.rows.get(c) else { continue };
                let lost = !matches!(r.state.as_str(), "online" | "suspect")
                    || r.reconnects > f.base_reconnects[k];
                if f.detected[k].is_none() && lost {
                    f.detected[k] = Some(at);
                    let line = format!(
                        "   {} detected by hikwatch: {} ({:+.1}s after the injection)",
                        self.ids[c],
                        r.state,
                        harness::secs(f.injected.unwrap_or(at), at)
                    );
                    self.screen.say(&line);
                }
                if f.kind == Kind::WrongPassword && f.held.is_none() && r.state == "auth-hold" {
                    f.held = Some(at);
                    let line = format!(
                        "   {} auth-hold: no more logins until the password changes in the config",
                        self.ids[c]
                    );
                    self.screen.say(&line);
                }
                if f.repaired.is_some()
                    && f.detected[k].is_some()
                    && f.recovered[k].is_none()
                    && r.state == "online"
                {
                    f.recovered[k] = Some(at);
                    let line = format!(
                        "   {} online again ({:+.1}s after the repair)",
                        self.ids[c],
                        harness::secs(f.repaired.unwrap_or(at), at)
                    );
                    self.screen.say(&line);
                }
            }
        }
    }

    /// The fault phase: inject and repair on schedule until `duration` (plus a grace for
    /// cameras still recovering). Returns false when ended early.
    fn faults(&mut self, faults: &mut [Fault]) -> bool {
        let t_ready = Instant::now();
        let mut next_inject = 0usize;
        let mut waiting = false;
        loop {
            let at = self.poll();
            if let Some(at) = at {
                self.observe(faults, at);
            }
            let elapsed = t_ready.elapsed();
            // Injections in order; repairs when due and the fault was seen (or the gate ran out).
            while next_inject < faults.len() && elapsed >= faults[next_inject].inject_at {
                self.inject(&mut faults[next_inject]);
                next_inject += 1;
            }
            for f in faults.iter_mut() {
                if f.injected.is_none() || f.repaired.is_some() || elapsed < f.repair_at {
                    continue;
                }
                if f.ready_for_repair() || elapsed >= f.repair_at + REPAIR_GATE {
                    self.repair(f);
                }
            }
            self.screen.frame(&self.title, &self.ids, &self.rows, false);
            if let Some(sig) = stop_requested() {
                self.screen.say(&format!("{sig} received: ending early"));
                return false;
            }
            if self.daemon_gone() {
                self.failures.push("hikwatch exited during the run".into());
                return false;
            }
            let settled = faults.iter().all(Fault::done) && self.online() == self.ids.len();
            let duration = self.args.duration;
            if elapsed >= duration && (settled || elapsed >= duration + END_GRACE) {
                return true;
            }
            if elapsed >= duration && !settled && !waiting {
                waiting = true;
                self.screen
                    .say("time is up; waiting up to 30 s for the last cameras to recover");
            }
            std::thread::sleep(POLL);
        }
    }

    /// SIGTERM, then wait for the exit; what the cameras saw.
    fn stop(&mut self) -> End {
        self.poll();
        if !self.rows.is_empty() {
            self.screen.frame(&self.title, &self.ids, &self.rows, true);
        }
        let rows = self.rows.clone();
        let seq = self.fleet.next_seq();
        let t = Instant::now();
        if self.daemon_gone() {
            self.screen.say("hikwatch has already exited");
        } else {
            self.screen
                .say("stopping hikwatch with SIGTERM (it logs every camera out)");
            if !self.send(Signal::SIGTERM) {
                self.failures
                    .push("hikwatch was gone before the SIGTERM".into());
            }
        }
        let stops = STOPS.load(Ordering::SeqCst);
        let deadline = t + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = self.daemon.wait_exit(POLL) {
                break Some(s);
            }
            if STOPS.load(Ordering::SeqCst) > stops.max(1) {
                self.failures
                    .push("a second stop signal: hikwatch killed (SIGKILL)".into());
                break None;
            }
            if Instant::now() >= deadline {
                self.failures
                    .push("hikwatch did not exit within 30 s of SIGTERM; killed".into());
                break None;
            }
        };
        let stop_secs = t.elapsed().as_secs_f64();
        if status.is_none() {
            self.daemon.kill9();
        }
        DAEMON_PID.store(0, Ordering::SeqCst);
        let line = format!(
            "hikwatch exited ({}) after {stop_secs:.1}s",
            status.map_or("killed".into(), |s| s.to_string())
        );
        self.screen.say(&line);
        if self.screen.tty {
            self.screen.frame(&self.title, &self.ids, &rows, true);
        }
        let log = self.fleet.events_since(seq);
        let logouts = (0..self.ids.len())
            .map(|c| events::count(&log, c, EventKind::Logout))
            .collect();
        End {
            rows,
            exit_code: status.and_then(|s| s.code()),
            stop_secs,
            logouts,
            sessions_left: self.fleet.total_stats().sessions,
        }
    }
}

fn fmt_t(screen: &Screen, t: Option<SystemTime>) -> String {
    t.map_or_else(|| "never".into(), |t| screen.stamp(t))
}

/// The latest of the per-camera times (all must be there), relative to `from`.
fn delay(from: Option<SystemTime>, times: &[Option<SystemTime>]) -> String {
    let (Some(from), Some(last)) = (from, times.iter().copied().collect::<Option<Vec<_>>>()) else {
        return "never".into();
    };
    let worst = last.into_iter().max().unwrap_or(from);
    format!("+{:.1}s", harness::secs(from, worst))
}

fn summary(run: &Run<'_>, faults: &[Fault], end: &End, early: bool) -> bool {
    let s = &run.screen;
    let all = run.fleet.events_since(0);
    let n = run.ids.len();
    let mut ok = !early && run.failures.is_empty();
    println!();
    println!("==================== summary ====================");
    println!(
        "faults (t+ = since hikwatch started; injected, repaired: simcam's event log;\n\
         \x20       detected, recovered: hikwatch status, polled every {} ms)",
        POLL.as_millis()
    );
    println!(
        "  {:<16} {:<15} {:>9} {:>9} {:>9} {:>10}",
        "fault", "cameras", "injected", "detected", "repaired", "recovered"
    );
    for f in faults {
        let mut notes = Vec::new();
        if f.kind == Kind::WrongPassword {
            let c = f.cams[0];
            let bad = events::count(&all, c, EventKind::LoginBad);
            match f.held {
                Some(h) => notes.push(format!(
                    "auth-hold {}; {bad} wrong passwords at the camera (it locks at {LOCKOUT})",
                    delay(f.injected, &[Some(h)])
                )),
                None => {
                    notes.push(format!(
                        "no auth-hold seen; {bad} wrong passwords at the camera"
                    ));
                    ok = false;
                }
            }
        }
        if f.injected.is_none() {
            notes.push("not injected (ended early)".into());
        } else if f.repaired.is_none() {
            notes.push("not repaired (ended early)".into());
        }
        if !f.done() || !f.all_detected() {
            ok = false;
        }
        println!(
            "  {:<16} {:<15} {:>9} {:>9} {:>9} {:>10}",
            f.kind.name(),
            run.names(&f.cams),
            fmt_t(s, f.injected),
            delay(f.injected, &f.detected),
            fmt_t(s, f.repaired),
            delay(f.repaired, &f.recovered),
        );
        if !notes.is_empty() {
            println!("  {:<16} {}", "", notes.join("; "));
        }
    }
    println!("  detected: injection -> session declared lost; recovered: repair -> online again");
    println!("  (for a group: its last camera)");

    println!();
    println!("login attempts, hikwatch / camera");
    println!("  (hikwatch counts every attempt, also those that never reached a camera that was");
    println!(
        "  off or frozen; a camera counts every login it answered, also the SDK's own re-login)"
    );
    let mut line = String::new();
    let (mut total_d, mut total_c) = (0u64, 0usize);
    for (i, id) in run.ids.iter().enumerate() {
        let d = end.rows.get(i).map_or(0, |r| r.logins);
        let c = events::login_attempts(&all, i);
        total_d += d;
        total_c += c;
        let _ = write!(line, "  {id:<7} {:>3} / {:<3}", d, c);
        if i % 4 == 3 || i + 1 == n {
            println!("{}", line.trim_end());
            line.clear();
        }
    }
    println!("  total   {total_d} / {total_c}");
    let locks = events::count_all(&all, EventKind::LockEngaged)
        + events::count_all(&all, EventKind::LoginLocked);
    println!("lockouts at the cameras: {locks}");
    if locks != 0 {
        ok = false;
    }
    let online_end = end.rows.iter().filter(|r| r.state == "online").count();
    println!("cameras online at the end: {online_end}/{n}");
    if online_end != n {
        ok = false;
    }
    let logouts: usize = end.logouts.iter().sum();
    let logged_out = end.logouts.iter().filter(|&&l| l > 0).count();
    println!("logouts at SIGTERM: {logouts} ({logged_out}/{n} cameras)");
    println!("sessions left at the cameras: {}", end.sessions_left);
    println!(
        "hikwatch exit code: {} ({:.1}s after SIGTERM)",
        end.exit_code.map_or("none".into(), |c| c.to_string()),
        end.stop_secs
    );
    if logged_out < online_end || end.sessions_left != 0 || end.exit_code != Some(0) {
        ok = false;
    }
    // A check: hikwatch keeps at most one session per camera, so no camera may ever have
    // held two at once (an old session that outlived its logout).
    let doubled: Vec<String> = (0..n)
        .filter_map(|c| {
            let hwm = run.fleet.camera(c).stats().sessions_hwm;
            (hwm > 1).then(|| format!("{} ({hwm})", run.ids[c]))
        })
        .collect();
    println!(
        "cameras that held more than one session at once: {}",
        if doubled.is_empty() {
            "none".to_string()
        } else {
            doubled.join(", ")
        }
    );
    if !doubled.is_empty() {
        ok = false;
    }
    let dropped = run.fleet.events_dropped();
    if dropped > 0 {
        println!("note: simcam's event log dropped {dropped} events; camera-side counts are low");
    }
    for f in &run.failures {
        println!("problem: {f}");
    }
    let result = if early {
        "ENDED EARLY"
    } else if ok {
        "PASS"
    } else {
        "FAIL"
    };
    println!("result: {result}");
    if !ok && !early {
        println!("--- last lines of the hikwatch log ---");
        let logs = run.daemon.logs();
        for l in logs.iter().skip(logs.len().saturating_sub(40)) {
            println!("{}", l.text);
        }
    }
    ok
}

fn run(args: &Args) -> Result<ExitCode, String> {
    let sdk = if args.isapi {
        None
    } else {
        Some(sdk_dir(args)?)
    };
    let bin = hikwatch_bin(args)?;
    let ids = camera_ids(args.cameras);
    let mut faults = plan(args.cameras, args.seed, args.duration);

    let fleet = Fleet::start(FleetConfig {
        cameras: args.cameras,
        threads: 2,
        user: "admin".into(),
        password: PASSWORD.into(),
        lockout_threshold: LOCKOUT,
        ..FleetConfig::default()
    })
    .map_err(|e| format!("starting the simulated cameras: {e}"))?;
    let dir = TempDir::new("demo");
    if let Ok(mut g) = WORKDIR.lock() {
        *g = Some(dir.path().to_path_buf());
    }
    let cfg = demo_config(sdk.as_deref(), &ids, &fleet);
    let tty = std::io::stdout().is_terminal() && !args.plain;
    println!(
        "hikwatch demo: {} simulated cameras (simcam on 127.0.0.1, ISAPI login,\n\
         \x20 lockout after {LOCKOUT} wrong passwords), {}, no config needed",
        args.cameras,
        backend_name(args)
    );
    match &sdk {
        Some(sdk) => println!("  SDK:     {}", sdk.display()),
        None => println!("  backend: isapi (no SDK loaded)"),
    }
    println!("  config:  {}", dir.join("hikwatch.toml").display());
    println!(
        "           hybrid, heartbeat 2s x 3, backoff 1s..5s, probes 1s (demo --print-config)"
    );
    println!(
        "  faults:  over {}s on a fixed schedule, cameras picked by --seed {}",
        args.duration.as_secs(),
        args.seed
    );
    println!("  Ctrl-C ends early (summary, then hikwatch stopped with SIGTERM)");
    let screen = Screen::new(
        tty,
        if args.duration < Duration::from_secs(60) {
            Duration::from_secs(10)
        } else {
            Duration::from_secs(20)
        },
    );
    let config = cfg.write(&dir);
    // A process group of its own: a Ctrl-C at the terminal reaches only this program,
    // which then stops the daemon with SIGTERM.
    let daemon = Daemon::spawn_adjusted(
        launcher(&dir, &bin),
        &dir,
        &config,
        SpawnOptions::default(),
        |cmd| {
            std::os::unix::process::CommandExt::process_group(cmd, 0);
        },
    );
    DAEMON_PID.store(daemon.pid(), Ordering::SeqCst);
    println!(
        "  daemon:  {} run -c hikwatch.toml (pid {})",
        bin.display(),
        daemon.pid()
    );
    let mut run = Run {
        args,
        fleet: &fleet,
        dir: &dir,
        daemon,
        title: format!(
            "hikwatch demo: {} cameras, {}, hybrid strategy",
            args.cameras,
            backend_name(args)
        ),
        ids,
        screen,
        rows: Vec::new(),
        failures: Vec::new(),
    };
    run.screen
        .say("starting hikwatch; waiting for every camera to be online");
    let early = match run.start(Duration::from_secs(60)) {
        Ok(()) => {
            let line = format!("all {} cameras online; faults begin", run.ids.len());
            run.screen.say(&line);
            run.screen.frame(&run.title, &run.ids, &run.rows, true);
            !run.faults(&mut faults)
        }
        Err(e) => {
            run.failures.push(e);
            true
        }
    };
    let ended_by_signal = stop_requested().is_some();
    let end = run.stop();
    run.screen.finish();
    let ok = summary(&run, &faults, &end, ended_by_signal);
    if let Some(path) = &args.log {
        if let Err(e) = std::fs::write(path, run.daemon.log_text()) {
            eprintln!("demo: --log {}: {e}", path.display());
        }
    }
    drop(run);
    if let Ok(mut g) = WORKDIR.lock() {
        *g = None;
    }
    drop(dir);
    drop(fleet);
    Ok(if ended_by_signal {
        ExitCode::from(130)
    } else if ok && !early {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `--print-config`: the config a run writes (ports and the temp folder differ per run).
fn print_config(args: &Args) -> ExitCode {
    let fleet = match Fleet::start(FleetConfig {
        cameras: args.cameras,
        ..FleetConfig::default()
    }) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("demo: starting the simulated cameras: {e}");
            return ExitCode::from(3);
        }
    };
    let dir = TempDir::new("demo-config");
    let sdk = (!args.isapi)
        .then(|| sdk_dir(args).unwrap_or_else(|_| PathBuf::from("vendor/hcnetsdk-linux64")));
    let cfg = demo_config(sdk.as_deref(), &camera_ids(args.cameras), &fleet);
    println!(
        "# The hikwatch.toml a demo run writes into its temp folder (ports and the folder\n\
         # differ per run; each <id>.pass holds the camera's password).\n{}",
        cfg.toml(&dir)
    );
    ExitCode::SUCCESS
}

/// How the daemon talks to the cameras, for the headings.
fn backend_name(args: &Args) -> &'static str {
    if args.isapi {
        "the ISAPI backend (no SDK)"
    } else {
        "the real HCNetSDK"
    }
}

fn camera_ids(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("cam-{i:02}")).collect()
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("demo: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if args.print_config {
        return print_config(&args);
    }
    if let Err(e) = catch_signals() {
        eprintln!("demo: {e}");
        return ExitCode::from(3);
    }
    install_panic_cleanup();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::from(3)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Option<Args>, String> {
        parse_args(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn durations_and_arguments() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        for bad in ["", "s", "2h", "1m30", "-5", "1.5m"] {
            assert_eq!(
                parse_duration(bad).filter(|d| !d.is_zero()),
                None,
                "{bad:?}"
            );
        }
        let a = args(&[]).unwrap().unwrap();
        assert_eq!((a.duration.as_secs(), a.cameras, a.seed), (115, 16, 1));
        let a = args(&["--quick", "--seed", "7", "--cameras", "8", "--plain"])
            .unwrap()
            .unwrap();
        assert_eq!(
            (a.duration.as_secs(), a.cameras, a.seed, a.plain),
            (35, 8, 7, true)
        );
        assert!(args(&["--help"]).unwrap().is_none());
        assert!(args(&["--backend", "isapi"]).unwrap().unwrap().isapi);
        assert!(!args(&["--backend", "sdk"]).unwrap().unwrap().isapi);
        for (bad, why) in [
            (&["--duration", "10s"][..], "30s..60m"),
            (&["--duration"][..], "needs a value"),
            (&["--cameras", "7"][..], "8..=64"),
            (&["--seed", "x"][..], "not a number"),
            (&["--what"][..], "unknown argument"),
            (&["--backend", "onvif"][..], "give sdk or isapi"),
            (
                &["--backend", "isapi", "--sdk", "/s"][..],
                "--backend sdk only",
            ),
        ] {
            let e = args(bad).err().unwrap_or_default();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn the_plan_uses_distinct_cameras_and_a_group_of_neighbours() {
        let d = Duration::from_secs(100);
        for n in [8, 16, 64] {
            for seed in 0..300 {
                let p = plan(n, seed, d);
                let mut all: Vec<usize> = p.iter().flat_map(|f| f.cams.clone()).collect();
                assert_eq!(all.len(), 7);
                assert!(all.iter().all(|&c| c < n));
                all.sort_unstable();
                all.dedup();
                assert_eq!(all.len(), 7, "n {n} seed {seed}: a camera twice");
                let g = &p[2].cams;
                assert_eq!(p[2].kind, Kind::GroupPowerOff);
                assert!(g.windows(2).all(|w| w[1] == w[0] + 1), "{g:?}");
                // Every fault is repaired after all are injected, in the phase.
                let last_inject = p.iter().map(|f| f.inject_at).max().unwrap();
                assert!(
                    p.iter()
                        .all(|f| f.repair_at > last_inject && f.repair_at < d)
                );
            }
        }
        // The seed picks the cameras, the same way every time.
        let cams =
            |seed| -> Vec<Vec<usize>> { plan(16, seed, d).into_iter().map(|f| f.cams).collect() };
        assert_eq!(cams(1), cams(1));
        assert!((2..20).any(|s| cams(s) != cams(1)));
    }

    #[test]
    fn lines_are_cut_to_the_terminal_width_ignoring_colours() {
        assert_eq!(fit("abcdef", 5), "abcd");
        assert_eq!(fit("abc", 80), "abc");
        let coloured = "\x1b[32monline\x1b[0m rest";
        assert_eq!(fit(coloured, 4), "\x1b[32monl\x1b[0m");
        assert_eq!(fit(coloured, 80), format!("{coloured}\x1b[0m"));
    }

    #[test]
    fn counts_and_delays_read_plainly() {
        let row = |s: &str| Row {
            state: s.into(),
            ..Row::default()
        };
        let rows = [
            row("online"),
            row("backoff"),
            row("online"),
            row("auth-hold"),
        ];
        assert_eq!(Screen::counts(&rows), "online 2/4, backoff 1, auth-hold 1");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let later = |ms| Some(t + Duration::from_millis(ms));
        assert_eq!(delay(Some(t), &[later(1500), later(300)]), "+1.5s");
        assert_eq!(delay(Some(t), &[later(1500), None]), "never");
        assert_eq!(delay(None, &[later(1)]), "never");
    }
}
