//! What `/proc` says about a process (CPU, memory, threads, descriptors) and the machine
//! (how busy its cores were): the benchmark's cost numbers.

use std::time::{Duration, Instant};

/// One look at a process.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcSample {
    /// CPU time (user + system) since the process started.
    pub cpu: Duration,
    /// Resident set size now, KiB (`VmRSS`).
    pub rss_kib: u64,
    /// Peak resident set size, KiB (`VmHWM`).
    pub hwm_kib: u64,
    /// Threads (`Threads`).
    pub threads: u64,
    /// Open file descriptors (entries of `/proc/PID/fd`).
    pub fds: u64,
}

/// Clock ticks per second of `/proc/PID/stat` times (`sysconf(_SC_CLK_TCK)`, 100 on every
/// Linux target hikwatch supports).
const CLK_TCK: u64 = 100;

/// Parses the CPU time (utime + stime) out of a `/proc/PID/stat` line. The command name
/// (field 2) may hold spaces and parentheses, so fields are counted after the last `)`.
pub fn parse_stat_cpu(stat: &str) -> Option<Duration> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 1000 / CLK_TCK))
}

/// A `Key:   123 kB` field of `/proc/PID/status`, in its unit (kB or a count).
pub fn status_field(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let v = l.strip_prefix(key)?.strip_prefix(':')?;
        v.split_whitespace().next()?.parse().ok()
    })
}

/// Reads everything about `pid`; `None` once the process is gone.
pub fn sample(pid: i32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    Some(ProcSample {
        cpu: parse_stat_cpu(&stat)?,
        rss_kib: status_field(&status, "VmRSS").unwrap_or(0),
        hwm_kib: status_field(&status, "VmHWM").unwrap_or(0),
        threads: status_field(&status, "Threads").unwrap_or(0),
        fds,
    })
}

/// Whether `pid` still runs (an exited child that was not reaped yet is a zombie).
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 1..];
            rest.split_whitespace()
                .next()
                .map(|st| st != "Z" && st != "X")
        })
        .unwrap_or(false)
}

/// Busy and total jiffies of all cores from the first line of `/proc/stat`.
pub fn parse_machine(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 5 {
        return None;
    }
    let total: u64 = v.iter().take(8).sum();
    let idle = v[3] + v[4]; // idle + iowait
    Some((total - idle, total))
}

/// How busy the machine's cores were between two calls (0–1 of all cores).
#[derive(Debug)]
pub struct MachineLoad {
    last: Option<(u64, u64)>,
    /// When the last reading was taken.
    pub at: Instant,
}

impl Default for MachineLoad {
    fn default() -> Self {
        MachineLoad::new()
    }
}

impl MachineLoad {
    /// Starts measuring now.
    pub fn new() -> MachineLoad {
        MachineLoad {
            last: read_machine(),
            at: Instant::now(),
        }
    }

    /// The busy fraction since the previous call (or since `new`).
    pub fn busy(&mut self) -> Option<f64> {
        let now = read_machine()?;
        let prev = self.last.replace(now)?;
        self.at = Instant::now();
        let (b, t) = (now.0.saturating_sub(prev.0), now.1.saturating_sub(prev.1));
        (t > 0).then(|| b as f64 / t as f64)
    }
}

fn read_machine() -> Option<(u64, u64)> {
    parse_machine(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// Raises this process's open-file limit as far as allowed (soft to hard, and the hard
/// limit to 65,536 when running as root): a run holds two descriptors per simulated camera
/// plus the connections, and the daemon inherits the limit. Returns the soft limit.
pub fn raise_nofile() -> nix::libc::rlim_t {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    const WANT: nix::libc::rlim_t = 65_536;
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 0;
    };
    if hard < WANT && setrlimit(Resource::RLIMIT_NOFILE, WANT, WANT).is_ok() {
        return WANT;
    }
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_line_with_a_strange_name() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        // utime stime ...
        let line =
            "4242 (hik watch) (x)) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 125 0 0 20 0 9 0";
        assert_eq!(parse_stat_cpu(line), Some(Duration::from_millis(3750)));
        assert_eq!(parse_stat_cpu("garbage"), None);
    }

    #[test]
    fn status_fields() {
        let s = "Name:\thikwatch\nVmHWM:\t   10240 kB\nVmRSS:\t    8192 kB\nThreads:\t17\n";
        assert_eq!(status_field(s, "VmRSS"), Some(8192));
        assert_eq!(status_field(s, "VmHWM"), Some(10240));
        assert_eq!(status_field(s, "Threads"), Some(17));
        assert_eq!(status_field(s, "VmSwap"), None);
    }

    #[test]
    fn machine_line() {
        let s = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3\n";
        assert_eq!(parse_machine(s), Some((150, 1000)));
    }

    #[test]
    fn this_process_is_visible() {
        let me = i32::try_from(std::process::id()).unwrap();
        let s = sample(me).expect("own /proc entry");
        assert!(s.rss_kib > 0 && s.hwm_kib >= s.rss_kib);
        assert!(s.threads >= 1 && s.fds >= 3);
        assert!(alive(me));
        assert!(!alive(i32::MAX));
    }
}
