//! simcam at scale: idle CPU with many cameras, then CPU under a heartbeat load.
//!
//! Run with:
//! `cargo run -p simcam --release --example bench -- --cameras 1000 --period-ms 2000`
//!
//! Server CPU is the user+system time of simcam's own threads (`simcam-*` and the
//! `async-io` reactor thread), read from `/proc/self/task/*/stat`, so the load generator's
//! CPU (plain blocking client threads named `client-*`) is not counted. Numbers go to
//! stdout; nothing here asserts on speed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use simcam::{Fleet, FleetConfig};

/// Kernel clock ticks per second for /proc stat times (USER_HZ, 100 on Linux).
const TICKS: f64 = 100.0;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds used so far by threads whose name starts with one of `prefixes`.
fn thread_cpu(prefixes: &[&str]) -> f64 {
    let mut ticks = 0u64;
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    for t in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
            continue;
        };
        let (Some(l), Some(r)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[l + 1..r];
        if !prefixes.iter().any(|p| comm.starts_with(p)) {
            continue;
        }
        let f: Vec<&str> = stat[r + 2..].split(' ').collect();
        // After "pid (comm) ": state is field 3, utime 14, stime 15 (1-based).
        let ut: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
        let st: u64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
        ticks += ut + st;
    }
    ticks as f64 / TICKS
}

fn rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

const SERVER: &[&str] = &["simcam-", "async-io"];

fn request(s: &mut TcpStream, buf: &mut Vec<u8>, req: &str) -> std::io::Result<String> {
    s.write_all(req.as_bytes())?;
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(h) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..h]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= h + 4 + len {
                return Ok(String::from_utf8_lossy(buf).into_owned());
            }
        }
    }
}

fn tag<'a>(s: &'a str, t: &str) -> &'a str {
    let o = format!("<{t}>");
    let a = s.find(&o).map_or(0, |i| i + o.len());
    let b = s[a..].find('<').map_or(a, |i| i + a);
    &s[a..b]
}

/// Logs in on a fresh keep-alive connection; returns it and the cookie.
fn login(addr: std::net::SocketAddr) -> std::io::Result<(TcpStream, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut buf = Vec::new();
    let cap = request(
        &mut s,
        &mut buf,
        "GET /ISAPI/Security/sessionLogin/capabilities?username=admin&random=1 HTTP/1.1\r\nHost: c\r\n\r\n",
    )?;
    let sid = tag(&cap, "sessionID").to_owned();
    let hash = simcam::irreversible_hash(
        "admin",
        tag(&cap, "salt"),
        "hik12345",
        tag(&cap, "challenge"),
        tag(&cap, "iterations").parse().unwrap_or(100),
    );
    let body = format!(
        "<SessionLogin><userName>admin</userName><password>{hash}</password><sessionID>{sid}</sessionID></SessionLogin>"
    );
    let r = request(
        &mut s,
        &mut buf,
        &format!(
            "POST /ISAPI/Security/sessionLogin HTTP/1.1\r\nHost: c\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )?;
    if !r.starts_with("HTTP/1.1 200") {
        return Err(std::io::Error::other(format!("login failed: {r}")));
    }
    Ok((s, format!("WebSession={sid};")))
}

fn main() {
    let cameras = arg("--cameras", 1000) as usize;
    let idle_secs = arg("--idle-secs", 10);
    let load_secs = arg("--load-secs", 20);
    let period = Duration::from_millis(arg("--period-ms", 2000));
    let threads = arg("--threads", 1) as usize;
    let clients = arg("--clients", 4) as usize;

    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let mut lim = getrlimit(Resource::Nofile);
        lim.current = lim.maximum;
        let _ = setrlimit(Resource::Nofile, lim);
        println!(
            "RLIMIT_NOFILE soft = {:?}",
            getrlimit(Resource::Nofile).current
        );
    }

    let t0 = Instant::now();
    let fleet = Fleet::start(FleetConfig {
        cameras,
        threads,
        ..Default::default()
    })
    .expect("fleet starts");
    println!(
        "start: {cameras} cameras listening in {:.0} ms, RSS {:.1} MiB, {} fds",
        t0.elapsed().as_secs_f64() * 1e3,
        rss_mib(),
        fds()
    );

    let c0 = thread_cpu(SERVER);
    std::thread::sleep(Duration::from_secs(idle_secs));
    let idle = (thread_cpu(SERVER) - c0) / idle_secs as f64 * 100.0;
    println!("idle: {idle:.2} % of one core over {idle_secs} s");

    // One session and keep-alive connection per camera, spread over client threads.
    let addrs = fleet.addrs();
    let t1 = Instant::now();
    let chunks: Vec<Vec<std::net::SocketAddr>> = addrs
        .chunks(addrs.len().div_ceil(clients).max(1))
        .map(|c| c.to_vec())
        .collect();
    let c1 = thread_cpu(SERVER);
    let handles: Vec<_> = chunks
        .into_iter()
        .enumerate()
        .map(|(k, chunk)| {
            std::thread::Builder::new()
                .name(format!("client-{k}"))
                .spawn(move || {
                    let mut sessions: Vec<(TcpStream, String)> =
                        chunk.iter().map(|a| login(*a).expect("login")).collect();
                    let login_done = Instant::now();
                    let mut lat = Vec::new();
                    let end = login_done + Duration::from_secs(load_secs);
                    let mut buf = Vec::new();
                    let mut next = login_done;
                    while Instant::now() < end {
                        for (s, cookie) in sessions.iter_mut() {
                            let t = Instant::now();
                            let r = request(
                                s,
                                &mut buf,
                                &format!(
                                    "PUT /ISAPI/Security/sessionHeartbeat HTTP/1.1\r\nHost: c\r\nCookie: {cookie}\r\nContent-Length: 0\r\n\r\n"
                                ),
                            )
                            .expect("heartbeat");
                            assert!(r.starts_with("HTTP/1.1 200"), "{r}");
                            lat.push(t.elapsed());
                        }
                        next += period;
                        if let Some(d) = next.checked_duration_since(Instant::now()) {
                            std::thread::sleep(d);
                        }
                    }
                    lat
                })
                .expect("spawn client")
        })
        .collect();
    let mut lat: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("client"))
        .collect();
    let wall = t1.elapsed().as_secs_f64();
    let load_cpu = (thread_cpu(SERVER) - c1) / wall * 100.0;
    lat.sort();
    let pct = |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)));
    let s = fleet.total_stats();
    println!(
        "load: {} sessions, heartbeat every {} ms for {load_secs} s: {} heartbeats ({:.0}/s), \
         server CPU {load_cpu:.2} % of one core",
        s.sessions,
        period.as_millis(),
        s.heartbeats_ok,
        s.heartbeats_ok as f64 / wall,
    );
    println!(
        "heartbeat round trip: p50 {:?} p99 {:?} max {:?}",
        pct(0.5).copied().unwrap_or_default(),
        pct(0.99).copied().unwrap_or_default(),
        lat.last().copied().unwrap_or_default()
    );
    println!(
        "peak: {} connections, RSS {:.1} MiB, {} fds, events logged {} (dropped {})",
        s.connections_hwm,
        rss_mib(),
        fds(),
        fleet.next_seq(),
        fleet.events_dropped()
    );
    let t2 = Instant::now();
    drop(fleet);
    println!("shutdown: {:.0} ms", t2.elapsed().as_secs_f64() * 1e3);
}
