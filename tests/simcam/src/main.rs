//! `simcam`: run a fleet of simulated Hikvision cameras, driven by stdin line commands.
//!
//! Run with: `cargo run -p simcam --release -- --cameras 3 --port 18000`
//!
//! Every output line is one JSON object: first a ready line with the ports, then one reply
//! per command (and, with `--follow-events`, one line per event). See `tests/simcam/README.md`
//! for the command list. End of stdin quits (unless `--stay`).

use std::io::{BufRead, Write};
use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use simcam::{Camera, CameraStats, Fleet, FleetConfig, json_escape};

const USAGE: &str =
    "usage: simcam [--cameras N] [--port BASE] [--bind IP] [--user U] [--password P]
              [--iterations N] [--lockout K] [--lock-secs L] [--session-limit N]
              [--idle-timeout SECS] [--threads T] [--event-capacity N]
              [--follow-events] [--stay]
commands on stdin (CAM is an index, A-B, or all):
  off CAM | on CAM [boot_ms] | freeze CAM | thaw CAM | slow CAM MS | passwd CAM NEW
  logindelay CAM MS | limit CAM N|none | ace CAM on|off | unlock CAM | kick CAM | stats [CAM] | total
  halt CAM | resume CAM | stall CAM MS | cut CAM | fpscap CAM N|none | streamlimit CAM N|none
  events | quit";

fn parse_args() -> Result<(FleetConfig, bool, bool), String> {
    let mut cfg = FleetConfig::default();
    let mut follow = false;
    let mut stay = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        fn num<T: std::str::FromStr>(name: &str, v: String) -> Result<T, String> {
            v.parse()
                .map_err(|_| format!("{name}: not a valid number: {v:?}"))
        }
        match a.as_str() {
            "--cameras" => cfg.cameras = num("--cameras", val("--cameras")?)?,
            "--port" => cfg.base_port = num("--port", val("--port")?)?,
            "--bind" => {
                let v = val("--bind")?;
                cfg.bind_ip = v
                    .parse::<Ipv4Addr>()
                    .map_err(|_| format!("--bind: bad IPv4 {v:?}"))?
            }
            "--user" => cfg.user = val("--user")?,
            "--password" => cfg.password = val("--password")?,
            "--iterations" => cfg.iterations = num("--iterations", val("--iterations")?)?,
            "--lockout" => cfg.lockout_threshold = num("--lockout", val("--lockout")?)?,
            "--lock-secs" => {
                cfg.lock_duration = Duration::from_secs(num("--lock-secs", val("--lock-secs")?)?)
            }
            "--session-limit" => {
                cfg.session_limit = Some(num("--session-limit", val("--session-limit")?)?)
            }
            "--idle-timeout" => {
                cfg.session_idle_timeout = Some(Duration::from_secs(num(
                    "--idle-timeout",
                    val("--idle-timeout")?,
                )?))
            }
            "--threads" => cfg.threads = num("--threads", val("--threads")?)?,
            "--event-capacity" => {
                cfg.event_capacity = num("--event-capacity", val("--event-capacity")?)?
            }
            "--follow-events" => follow = true,
            "--stay" => stay = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if cfg.iterations < 2 {
        return Err("--iterations must be at least 2".into());
    }
    Ok((cfg, follow, stay))
}

/// Raises the soft RLIMIT_NOFILE to the hard limit: 1,000 cameras need well over 1,024
/// descriptors. Returns the resulting soft limit.
fn raise_nofile() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current != lim.maximum {
        lim.current = lim.maximum;
        let _ = setrlimit(Resource::Nofile, lim);
    }
    getrlimit(Resource::Nofile).current
}

fn out(line: &str) {
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    let _ = writeln!(lock, "{line}");
    let _ = lock.flush();
}

fn err(cmd: &str, msg: &str) {
    out(&format!(
        "{{\"ok\":false,\"cmd\":\"{}\",\"error\":\"{}\"}}",
        json_escape(cmd),
        json_escape(msg)
    ));
}

fn stats_json(i: usize, s: &CameraStats, cam: Option<&Camera>) -> String {
    let extra = cam.map_or_else(String::new, |c| {
        format!(
            ",\"power\":\"{:?}\",\"frozen\":{}",
            c.power(),
            c.is_frozen()
        )
    });
    format!(
        "{{\"cam\":{i},\"boot_id\":{},\"logins_ok\":{},\"logins_bad\":{},\"logins_locked\":{},\
         \"logins_rejected_limit\":{},\"logins_stale\":{},\"heartbeats_ok\":{},\
         \"heartbeats_rejected\":{},\"logouts\":{},\"sessions\":{},\"sessions_hwm\":{},\
         \"connections\":{},\"connections_hwm\":{},\"accepted\":{},\"requests\":{},\
         \"exchanges_in_flight\":{},\"exchanges_hwm\":{}{extra}}}",
        s.boot_id,
        s.logins_ok,
        s.logins_bad,
        s.logins_locked,
        s.logins_rejected_limit,
        s.logins_stale,
        s.heartbeats_ok,
        s.heartbeats_rejected,
        s.logouts,
        s.sessions,
        s.sessions_hwm,
        s.connections,
        s.connections_hwm,
        s.accepted,
        s.requests,
        s.exchanges_in_flight,
        s.exchanges_hwm
    )
}

/// Parses a camera selector: `3`, `2-5` or `all`.
fn cams(fleet: &Fleet, sel: Option<&str>) -> Result<Vec<usize>, String> {
    let sel = sel.ok_or("missing camera index")?;
    let n = fleet.len();
    let range = if sel == "all" {
        0..n
    } else if let Some((a, b)) = sel.split_once('-') {
        let a: usize = a.parse().map_err(|_| format!("bad camera range {sel:?}"))?;
        let b: usize = b.parse().map_err(|_| format!("bad camera range {sel:?}"))?;
        a..b.saturating_add(1)
    } else {
        let i: usize = sel
            .parse()
            .map_err(|_| format!("bad camera index {sel:?}"))?;
        i..i + 1
    };
    if range.is_empty() || range.end > n {
        return Err(format!("camera {sel} out of range (fleet has {n})"));
    }
    Ok(range.collect())
}

/// Runs one command line; returns false on `quit`.
fn command(fleet: &Fleet, line: &str, events_cursor: &mut u64) -> bool {
    let mut words = line.split_whitespace();
    let Some(cmd) = words.next() else { return true };
    let arg1 = words.next();
    let arg2 = words.next();
    let result: Result<String, String> = (|| {
        Ok(match cmd {
            "quit" | "exit" => return Ok("quit".into()),
            "total" => format!(
                "\"total\":{}",
                stats_json(usize::MAX, &fleet.total_stats(), None)
            )
            .replace("\"cam\":18446744073709551615,", ""),
            "events" => {
                let evs = fleet.events_since(*events_cursor);
                if let Some(last) = evs.last() {
                    *events_cursor = last.seq + 1;
                }
                let body: Vec<String> = evs.iter().map(|e| e.to_json()).collect();
                format!(
                    "\"events\":[{}],\"dropped\":{}",
                    body.join(","),
                    fleet.events_dropped()
                )
            }
            "stats" => {
                let list = match arg1 {
                    None => (0..fleet.len()).collect(),
                    Some(s) => cams(fleet, Some(s))?,
                };
                let body: Vec<String> = list
                    .iter()
                    .map(|&i| {
                        let c = fleet.camera(i);
                        stats_json(i, &c.stats(), Some(&c))
                    })
                    .collect();
                format!("\"stats\":[{}]", body.join(","))
            }
            _ => {
                let list = cams(fleet, arg1)?;
                for &i in &list {
                    let c = fleet.camera(i);
                    match cmd {
                        "off" => {
                            c.power_off();
                        }
                        "on" => {
                            let ms: u64 = match arg2 {
                                Some(v) => v.parse().map_err(|_| format!("bad boot_ms {v:?}"))?,
                                None => 0,
                            };
                            c.power_on_after(Duration::from_millis(ms))
                                .map_err(|e| format!("camera {i}: {e}"))?;
                        }
                        "freeze" => c.freeze(),
                        "thaw" => c.thaw(),
                        "slow" => {
                            let v = arg2.ok_or("slow needs MS")?;
                            let ms: u64 = v.parse().map_err(|_| format!("bad MS {v:?}"))?;
                            c.set_slow(Duration::from_millis(ms));
                        }
                        "logindelay" => {
                            let v = arg2.ok_or("logindelay needs MS")?;
                            let ms: u64 = v.parse().map_err(|_| format!("bad MS {v:?}"))?;
                            c.set_login_delay(Duration::from_millis(ms));
                        }
                        "passwd" => c.set_password(arg2.ok_or("passwd needs NEW")?),
                        "limit" => match arg2 {
                            Some("none") => c.set_session_limit(None),
                            Some(v) => c.set_session_limit(Some(
                                v.parse().map_err(|_| format!("bad limit {v:?}"))?,
                            )),
                            None => return Err("limit needs N or none".into()),
                        },
                        "ace" => match arg2 {
                            Some("on") => c.set_accept_close(true),
                            Some("off") => c.set_accept_close(false),
                            _ => return Err("ace needs on or off".into()),
                        },
                        "halt" => c.halt_stream(),
                        "resume" => c.resume_stream(),
                        "cut" => c.cut_streams(),
                        "stall" => {
                            let v = arg2.ok_or("stall needs MS")?;
                            let ms: u64 = v.parse().map_err(|_| format!("bad MS {v:?}"))?;
                            c.stall_stream(Duration::from_millis(ms));
                        }
                        "fpscap" | "streamlimit" => {
                            let n = match arg2 {
                                Some("none") => None,
                                Some(v) => Some(v.parse().map_err(|_| format!("bad N {v:?}"))?),
                                None => return Err(format!("{cmd} needs N or none")),
                            };
                            if cmd == "fpscap" {
                                c.set_stream_fps_cap(n.map(|n: usize| n as u32));
                            } else {
                                c.set_stream_limit(n);
                            }
                        }
                        "unlock" => c.unlock(),
                        "kick" => c.drop_sessions(),
                        _ => return Err(format!("unknown command {cmd:?}")),
                    }
                }
                format!("\"cams\":{}", list.len())
            }
        })
    })();
    match result {
        Ok(s) if s == "quit" => {
            out("{\"ok\":true,\"cmd\":\"quit\"}");
            return false;
        }
        Ok(s) => out(&format!(
            "{{\"ok\":true,\"cmd\":\"{}\",{s}}}",
            json_escape(cmd)
        )),
        Err(e) => err(cmd, &e),
    }
    true
}

fn main() -> ExitCode {
    let (cfg, follow, stay) = match parse_args() {
        Ok(x) => x,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("simcam: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let nofile = raise_nofile();
    let fleet = match Fleet::start(cfg) {
        Ok(f) => Arc::new(f),
        Err(e) => {
            err("start", &e.to_string());
            eprintln!("simcam: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ports: Vec<String> = fleet.addrs().iter().map(|a| a.port().to_string()).collect();
    out(&format!(
        "{{\"ready\":true,\"cameras\":{},\"ip\":\"{}\",\"ports\":[{}],\"pid\":{},\"nofile\":{}}}",
        fleet.len(),
        fleet.config().bind_ip,
        ports.join(","),
        std::process::id(),
        nofile.map_or_else(|| "null".to_owned(), |n| n.to_string())
    ));
    if follow {
        let f = fleet.clone();
        let _ = std::thread::Builder::new()
            .name("events".into())
            .spawn(move || {
                // From 0: nothing logged since the fleet started is missed.
                let mut cursor = 0;
                loop {
                    if f.wait_event(cursor, Duration::from_millis(500), |_| true)
                        .is_some()
                    {
                        for e in f.events_since(cursor) {
                            out(&e.to_json());
                            cursor = e.seq + 1;
                        }
                    }
                }
            });
    }
    let mut cursor = 0;
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if !command(&fleet, line.trim(), &mut cursor) {
            return ExitCode::SUCCESS;
        }
    }
    if stay {
        loop {
            std::thread::park();
        }
    }
    ExitCode::SUCCESS
}
