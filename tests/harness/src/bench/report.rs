//! The results: a markdown report (the goals of `analyze::goals`, one table per scenario, the
//! machine), and one JSON file per run with its numbers.

use std::fmt::Write as _;

use super::analyze::Dist;
use super::{Finished, LOGIN_CAP, Metrics, Scenario};

/// Where and on what the benchmark ran, for the report's header.
#[derive(Clone, Debug, Default)]
pub struct Machine {
    /// CPU model.
    pub cpu: String,
    /// Logical cores.
    pub cores: usize,
    /// Memory, GiB.
    pub mem_gib: f64,
    /// Kernel release.
    pub kernel: String,
    /// UTC date and time of the run.
    pub date: String,
    /// hikwatch commit.
    pub commit: String,
    /// The command that produced the report.
    pub command: String,
    /// The fault schedule's seed.
    pub seed: u64,
}

impl Machine {
    /// This machine, from `/proc`.
    pub fn here(commit: &str, command: &str, seed: u64) -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|x| x.1.trim().to_string())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let cores = std::thread::available_parallelism().map_or(0, usize::from);
        let mem_kib = super::procfs::status_field(&read("/proc/meminfo"), "MemTotal").unwrap_or(0);
        Machine {
            cpu,
            cores,
            mem_gib: mem_kib as f64 / 1024.0 / 1024.0,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            date: utc_now(),
            commit: commit.to_string(),
            command: command.to_string(),
            seed,
        }
    }
}

/// `YYYY-MM-DD HH:MM UTC` now.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    // Civil date from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs % 86_400 / 3600,
        secs % 3600 / 60
    )
}

fn dist(d: &Dist) -> String {
    if d.n == 0 {
        return "–".into();
    }
    format!("{} / {} / {}", secs(d.p50), secs(d.p99), secs(d.max))
}

/// Seconds with a sensible precision.
pub fn secs(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else if s < 10.0 {
        format!("{s:.2} s")
    } else {
        format!("{s:.1} s")
    }
}

fn pair<T: std::fmt::Display>(a: Option<T>, b: Option<T>) -> String {
    let f = |x: Option<T>| x.map_or_else(|| "?".to_string(), |v| v.to_string());
    format!("{}→{}", f(a), f(b))
}

fn mark(ok: bool) -> &'static str {
    if ok { "✓" } else { "✗" }
}

/// A scenario's one-line description for its table heading.
fn describe(runs: &[&Finished]) -> String {
    let Some(f) = runs.first() else {
        return String::new();
    };
    let p = f.raw.plan.as_ref();
    let faults = p.map_or(0, |p| p.faults.len());
    let cams = f.metrics.cameras;
    let phase = p.map_or(0.0, |p| p.phase.as_secs_f64());
    match f.scenario {
        Scenario::Flap => {
            format!("{cams} cameras, {faults} power-offs of 1–60 s (RST) over {phase:.0} s")
        }
        Scenario::Storm => format!(
            "{cams} cameras off together for {:.0} s, back staggered over 5 s",
            p.and_then(|p| p.faults.iter().map(|f| f.until).min())
                .map_or(0.0, |d| d.as_secs_f64())
        ),
        Scenario::Silent => {
            format!("{faults} of {cams} cameras frozen (no RST, nothing answers) for {phase:.0} s")
        }
        Scenario::Badpass => format!(
            "{} of {cams} cameras with a wrong password, {phase:.0} s (simcam locks after 7 wrong tries for 30 min)",
            p.map_or(0, |p| p.bad_password.len())
        ),
        Scenario::Steady => format!("{cams} cameras online; CPU measured over {phase:.0} s"),
        Scenario::Outage => format!("{cams} cameras off for {:.0} min", phase / 60.0),
        Scenario::Stream => format!(
            "{cams} cameras each watching its sub stream (simcam: 10 fps, 64 kbit/s), {faults} \
             stalls of {:.0} s (session and RTSP connection alive, no data) over {phase:.0} s; \
             `stream_gap` 10 s (default)",
            p.and_then(|p| p.faults.first())
                .map_or(0.0, |f| (f.until - f.at).as_secs_f64())
        ),
    }
}

/// The markdown report of `runs` (every scenario that ran).
pub fn markdown(runs: &[Finished], m: &Machine, svg: Option<&str>) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# hikwatch benchmark results\n");
    let _ = writeln!(
        o,
        "**One run per scenario and strategy, on one machine: every figure below is a ratio \
         or a percentile from that single run**, not a statistic over repeated runs. \
         Definitions of every column: `bench/README.md`.\n"
    );
    let sdk = runs
        .iter()
        .find_map(|f| f.raw.sdk_version.clone())
        .unwrap_or_else(|| "?".into());
    let _ = writeln!(o, "| | |\n|---|---|");
    let _ = writeln!(
        o,
        "| machine | {} ({} cores), {:.1} GiB RAM, Linux {} |",
        m.cpu, m.cores, m.mem_gib, m.kernel
    );
    let _ = writeln!(o, "| date | {} |", m.date);
    let _ = writeln!(
        o,
        "| hikwatch | {} (release build), real HCNetSDK {sdk} (x86_64), simcam in the bench process |",
        m.commit
    );
    let _ = writeln!(o, "| command | `{}` (seed {}) |", m.command, m.seed);
    let _ = writeln!(
        o,
        "| daemon settings | defaults (`heartbeat_interval` 5 s × 3, login cap {LOGIN_CAP}, SDK heartbeat 30 s), \
         `backend/strategy` per row, `log.repeat_window` 1 s |"
    );
    let _ = writeln!(
        o,
        "| backends | `sdk/…` rows: the SDK backend (the vendor SDK, ISAPI login mode); `isapi/…` \
         rows: the ISAPI backend (`backend = \"isapi\"`, no SDK loaded: SDK handles `–`); the \
         peers `naive` and `sdk` exist on the SDK backend only |\n"
    );

    if !runs.is_empty() {
        goals(&mut o, runs);
    }

    for s in Scenario::ALL {
        let rows: Vec<&Finished> = runs.iter().filter(|f| f.scenario == s).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(o, "## {} — {}\n", s.name(), describe(&rows));
        table(&mut o, s, &rows);
        let errs: Vec<String> = rows
            .iter()
            .flat_map(|f| {
                f.metrics
                    .errors
                    .iter()
                    .map(move |e| format!("{}: {e}", f.strategy))
            })
            .collect();
        if !errs.is_empty() {
            let _ = writeln!(o, "\nNoticed during the runs:");
            for e in errs {
                let _ = writeln!(o, "- {e}");
            }
        }
        let busy = rows
            .iter()
            .map(|f| f.metrics.machine_busy.0)
            .fold(0.0, f64::max);
        let _ = writeln!(
            o,
            "\nMachine: busiest second {:.0} % of both cores (the runs of this table ran side by side, {} s apart).\n",
            busy * 100.0,
            rows.first()
                .and_then(|f| f.raw.plan.as_ref())
                .map_or(0, |p| p.stagger.as_secs())
        );
        if s == Scenario::Storm {
            if let Some(name) = svg {
                let _ = writeln!(
                    o,
                    "Timeline (cameras × time, coloured by state): [{name}]({name})\n"
                );
            }
        }
    }
    o
}

fn table(o: &mut String, s: Scenario, rows: &[&Finished]) {
    let extra = match s {
        Scenario::Storm => " all online after the last return |",
        Scenario::Steady => " CPU % of a core per 100 cameras |",
        Scenario::Stream => " false gaps | CPU % of a core per 100 streams |",
        Scenario::Badpass => " wrong-password logins | attempts while locked | auth-holds |",
        _ => "",
    };
    let _ = writeln!(
        o,
        "| strategy | detection p50 / p99 / max | missed | recovery p50 / p99 / max | not recovered | \
         logins / camera / outage-h | peak concurrent logins | peak logins/s | lockouts | \
         CPU s | peak RSS MiB | RSS Δ KiB | state writes | SDK handles | threads | fds | online at end |{extra}"
    );
    let cols = 17 + extra.matches('|').count();
    let _ = writeln!(o, "|{}", "---|".repeat(cols));
    for f in rows {
        let m = &f.metrics;
        let outage = m
            .outage_logins
            .map_or_else(|| "–".into(), |(r, _, n)| format!("{r:.0} ({n})"));
        let det_missed = if m.lat.faults_online > 0 {
            format!("{}/{}", m.lat.missed, m.lat.faults_online)
        } else {
            "–".into()
        };
        let _ = write!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.1} | {:+} | {} | {} | {} | {} | {}/{} |",
            f.strategy,
            dist(&m.lat.detection),
            det_missed,
            dist(&m.lat.recovery),
            if m.lat.recovery.n > 0 || m.lat.not_recovered > 0 {
                m.lat.not_recovered.to_string()
            } else {
                "–".into()
            },
            outage,
            m.peak_concurrent,
            m.peak_logins_per_s,
            m.lockouts,
            m.cpu_secs,
            m.peak_rss_kib as f64 / 1024.0,
            i128::from(m.rss_kib.1) - i128::from(m.rss_kib.0),
            m.state_writes,
            if f.strategy.starts_with("isapi/") {
                "–".to_string() // no SDK loaded
            } else {
                pair(m.sdk_handles.0, m.sdk_handles.1)
            },
            pair(Some(m.threads.0), Some(m.threads.1)),
            pair(Some(m.fds.0), Some(m.fds.1)),
            m.online_end.0,
            m.online_end.1,
        );
        match s {
            Scenario::Storm => {
                let _ = write!(
                    o,
                    " {} |",
                    m.all_online_after_last
                        .map_or_else(|| "not all".into(), secs)
                );
            }
            Scenario::Steady => {
                let _ = write!(o, " {:.2} |", m.cpu_pct_per_100());
            }
            Scenario::Stream => {
                let _ = write!(
                    o,
                    " {} | {:.2} |",
                    m.lat.false_verdicts,
                    m.cpu_pct_per_100()
                );
            }
            Scenario::Badpass => {
                let _ = write!(
                    o,
                    " {} | {} | {} |",
                    m.bad_logins, m.locked_attempts, m.auth_holds
                );
            }
            _ => {}
        }
        let _ = writeln!(o);
    }
}

/// p99 of a detection sample, or a dash when nothing was detected.
fn detected(d: &Dist) -> String {
    if d.n == 0 {
        "none detected".into()
    } else {
        secs(d.p99)
    }
}

fn missed(m: &Metrics) -> String {
    if m.lat.missed > 0 {
        format!(" ({}/{} missed)", m.lat.missed, m.lat.faults_online)
    } else {
        String::new()
    }
}

/// Looks up the metrics of `strategy` in `scenario`.
fn find<'a>(runs: &'a [Finished], s: Scenario, strategy: &str) -> Option<&'a Metrics> {
    runs.iter()
        .find(|f| f.scenario == s && f.strategy == strategy)
        .map(|f| &f.metrics)
}

fn goals(o: &mut String, runs: &[Finished]) {
    let mut strategies: Vec<&str> = Vec::new();
    for f in runs {
        if !strategies.contains(&f.strategy.as_str()) {
            strategies.push(&f.strategy);
        }
    }
    let _ = writeln!(o, "## Goals (reported, not asserted)\n");
    let _ = writeln!(
        o,
        "| strategy | recovery p99 ≤ 1.5 s (flap / storm) | detection p99 ≤ 200 ms after RST (flap / storm) | \
         silent detection p99 ≤ 5 s × 3 + 1 s | ≤ 6 full logins / camera / outage-h | zero lockouts | \
         peak concurrent logins ≤ {LOGIN_CAP} | CPU ≤ 1 % / 100 cameras (steady) | no RSS growth (flap) | \
         storm: all online ≤ 5 s after the last return |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|");
    for st in strategies {
        let cell = |v: Vec<String>| {
            if v.is_empty() {
                "–".to_string()
            } else {
                v.join(" / ")
            }
        };
        let rec = cell(
            [Scenario::Flap, Scenario::Storm]
                .iter()
                .filter_map(|&s| find(runs, s, st))
                .filter(|m| m.lat.recovery.n > 0)
                .map(|m| {
                    format!(
                        "{} {}",
                        secs(m.lat.recovery.p99),
                        mark(m.lat.recovery.p99 <= 1.5 && m.lat.not_recovered == 0)
                    )
                })
                .collect(),
        );
        // Detection p99 within `bound` seconds, nothing missed, over `scenarios`.
        let detection = |scenarios: &[Scenario], bound: f64| {
            cell(
                scenarios
                    .iter()
                    .filter_map(|&s| find(runs, s, st))
                    .filter(|m| m.lat.faults_online > 0)
                    .map(|m| {
                        format!(
                            "{}{} {}",
                            detected(&m.lat.detection),
                            missed(m),
                            mark(
                                m.lat.detection.n > 0
                                    && m.lat.detection.p99 <= bound
                                    && m.lat.missed == 0
                            )
                        )
                    })
                    .collect(),
            )
        };
        let det = detection(&[Scenario::Flap, Scenario::Storm], 0.2);
        let silent = detection(&[Scenario::Silent], 16.0);
        let outage = cell(
            [Scenario::Outage, Scenario::Storm, Scenario::Flap]
                .iter()
                .find_map(|&s| {
                    let m = find(runs, s, st)?;
                    let (r, h, _) = m.outage_logins?;
                    Some(format!(
                        "{r:.1} {} ({}, {:.1} camera-h)",
                        mark(r <= 6.0),
                        s.name(),
                        h
                    ))
                })
                .into_iter()
                .collect(),
        );
        let all: Vec<&Metrics> = runs
            .iter()
            .filter(|f| f.strategy == st)
            .map(|f| &f.metrics)
            .collect();
        let locks: u64 = all.iter().map(|m| m.lockouts).sum();
        let conc = all.iter().map(|m| m.peak_concurrent).max().unwrap_or(0);
        let cpu = cell(
            find(runs, Scenario::Steady, st)
                .map(|m| {
                    format!(
                        "{:.2} % {}",
                        m.cpu_pct_per_100(),
                        mark(m.cpu_pct_per_100() <= 1.0)
                    )
                })
                .into_iter()
                .collect(),
        );
        let rss = cell(
            find(runs, Scenario::Flap, st)
                .map(|m| {
                    let d = i128::from(m.rss_kib.1) - i128::from(m.rss_kib.0);
                    format!("{d:+} KiB {}", mark(d <= 1024))
                })
                .into_iter()
                .collect(),
        );
        let storm = cell(
            find(runs, Scenario::Storm, st)
                .map(|m| match m.all_online_after_last {
                    Some(s) => format!("{} {}", secs(s), mark(s <= 5.0)),
                    None => "not all ✗".into(),
                })
                .into_iter()
                .collect(),
        );
        let _ = writeln!(
            o,
            "| {st} | {rec} | {det} | {silent} | {outage} | {locks} {} | {conc} {} | {cpu} | {rss} | {storm} |",
            mark(locks == 0),
            mark(conc <= LOGIN_CAP)
        );
    }
    let _ = writeln!(
        o,
        "\nNo RSS growth = at most 1 MiB more at the end of the flap run than after its warm-up. \
         The logins-per-outage-hour goal is meant for long outages: with the `outage` scenario \
         missing, the storm's 2-minute outages stand in (a strategy that makes one failed login \
         per outage shows 30 per outage-hour there).\n"
    );
}

/// One run's numbers as JSON (for `bench/runs/…`).
pub fn json(f: &Finished) -> String {
    let m = &f.metrics;
    let d = |d: &Dist| serde_json::json!({"n": d.n, "p50": d.p50, "p99": d.p99, "max": d.max});
    let mut v = serde_json::Map::new();
    let mut put = |k: &str, x: serde_json::Value| {
        v.insert(k.to_string(), x);
    };
    put("scenario", serde_json::json!(f.scenario.name()));
    put("strategy", serde_json::json!(f.strategy));
    put("cameras", serde_json::json!(m.cameras));
    put("detection_s", serde_json::json!(d(&m.lat.detection)));
    put(
        "faults_on_online_cameras",
        serde_json::json!(m.lat.faults_online),
    );
    put("detection_missed", serde_json::json!(m.lat.missed));
    put("recovery_s", serde_json::json!(d(&m.lat.recovery)));
    put("not_recovered", serde_json::json!(m.lat.not_recovered));
    put(
        "logins_per_camera_per_outage_hour",
        serde_json::json!(m.outage_logins.map(|x| x.0)),
    );
    put(
        "outage_camera_hours",
        serde_json::json!(m.outage_logins.map(|x| x.1)),
    );
    put(
        "outage_logins",
        serde_json::json!(m.outage_logins.map(|x| x.2)),
    );
    put("logins_at_fleet", serde_json::json!(m.logins_at_fleet));
    put(
        "peak_concurrent_logins",
        serde_json::json!(m.peak_concurrent),
    );
    put("exchanges_hwm_live", serde_json::json!(m.exchanges_hwm));
    put("peak_logins_per_s", serde_json::json!(m.peak_logins_per_s));
    put("lockouts", serde_json::json!(m.lockouts));
    put(
        "attempts_while_locked",
        serde_json::json!(m.locked_attempts),
    );
    put("wrong_password_logins", serde_json::json!(m.bad_logins));
    put("auth_holds", serde_json::json!(m.auth_holds));
    put("cpu_s", serde_json::json!(m.cpu_secs));
    put("phase_cpu_s", serde_json::json!(m.phase_cpu_secs));
    put("phase_s", serde_json::json!(m.phase_secs));
    put(
        "cpu_pct_per_100_cameras",
        serde_json::json!(m.cpu_pct_per_100()),
    );
    put("peak_rss_kib", serde_json::json!(m.peak_rss_kib));
    put(
        "rss_kib_start_end",
        serde_json::json!([m.rss_kib.0, m.rss_kib.1]),
    );
    put("state_writes", serde_json::json!(m.state_writes));
    put(
        "sdk_handles_start_end",
        serde_json::json!([m.sdk_handles.0, m.sdk_handles.1]),
    );
    put(
        "threads_start_end",
        serde_json::json!([m.threads.0, m.threads.1]),
    );
    put("fds_start_end", serde_json::json!([m.fds.0, m.fds.1]));
    put("online_at_end", serde_json::json!(m.online_end.0));
    put("healthy", serde_json::json!(m.online_end.1));
    put(
        "storm_all_online_after_last_return_s",
        serde_json::json!(m.all_online_after_last),
    );
    put("machine_busy_max", serde_json::json!(m.machine_busy.0));
    put("machine_busy_mean", serde_json::json!(m.machine_busy.1));
    put("exit_code", serde_json::json!(m.stop.0));
    put("stop_s", serde_json::json!(m.stop.1));
    put("sessions_left_after_stop", serde_json::json!(m.stop.2));
    put("warmup_s", serde_json::json!(m.warmup_secs));
    put("events_dropped", serde_json::json!(f.raw.events_dropped));
    put(
        "repeated_log_lines",
        serde_json::json!(f.raw.repeated_lines),
    );
    put("event_counts", serde_json::json!(f.raw.event_counts));
    put(
        "rss_kib_series",
        serde_json::json!(
            f.raw
                .proc
                .iter()
                .map(|(t, p)| [*t / 1_000_000, p.rss_kib])
                .collect::<Vec<_>>()
        ),
    );
    put("errors", serde_json::json!(m.errors));
    let v = serde_json::Value::Object(v);
    serde_json::to_string_pretty(&v).unwrap_or_default()
}
