//! The armv7 footprint (issue 7 §5): the stripped release binary's size, and the memory
//! of the armv7 daemon under qemu-arm with the C stand-in SDK at 64 cameras.
//!
//! Under qemu-user the guest lives inside the emulator's process, so `/proc` shows the
//! emulator: its RSS is the guest's plus qemu's own (translated code, its heap). The
//! guest's share is what a 32-bit guest maps below 4 GiB (qemu-arm on a 64-bit host
//! places the guest at its own addresses there, `guest_base` 0); both are reported.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::{Daemon, SpawnOptions, TempDir};

/// What the footprint run measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Footprint {
    /// Size of the binary, bytes.
    pub binary_bytes: u64,
    /// Cameras configured (all online on the stand-in).
    pub cameras: usize,
    /// Seconds it ran with every camera online.
    pub secs: f64,
    /// The qemu-arm process: RSS at the end and peak, KiB.
    pub qemu_rss_kib: (u64, u64),
    /// The guest's mappings (below 4 GiB), RSS at the end, KiB.
    pub guest_rss_kib: u64,
    /// Threads of the emulated daemon (qemu-user runs guest threads as host threads).
    pub threads: u64,
    /// Cameras online at the end.
    pub online: usize,
}

/// Sums `Rss:` of the mappings that start below 4 GiB in a `/proc/PID/smaps` text.
pub fn guest_rss_kib(smaps: &str) -> u64 {
    let mut total = 0;
    let mut low = false;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((start, _)) = first.split_once('-') {
            if let Ok(a) = u64::from_str_radix(start, 16) {
                low = a < 1 << 32;
                continue;
            }
        }
        if low {
            if let Some(v) = line.strip_prefix("Rss:") {
                total += v
                    .split_whitespace()
                    .next()
                    .and_then(|x| x.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    total
}

/// Runs the armv7 `bin` under `qemu-arm` with the stand-in SDK in `sdk_dir` and
/// `cameras` cameras for `secs` seconds once all are online.
///
/// # Errors
/// When the daemon does not bring every camera online, or `/proc` cannot be read.
pub fn run(
    bin: &Path,
    sdk_dir: &Path,
    cameras: usize,
    secs: Duration,
) -> Result<Footprint, String> {
    let bin = &std::fs::canonicalize(bin).map_err(|e| format!("{}: {e}", bin.display()))?;
    let sdk_dir =
        &std::fs::canonicalize(sdk_dir).map_err(|e| format!("{}: {e}", sdk_dir.display()))?;
    let binary_bytes = std::fs::metadata(bin)
        .map_err(|e| format!("{}: {e}", bin.display()))?
        .len();
    let dir = TempDir::new("footprint");
    // qemu-user runs the guest in its own process: a wrapper keeps the pid (exec).
    let wrapper = dir.write(
        "hikwatch-armv7",
        &format!(
            "#!/bin/sh\nexec qemu-arm -L /usr/arm-linux-gnueabihf {:?} \"$@\"\n",
            bin.display().to_string()
        ),
    );
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .map_err(|e| e.to_string())?;
    let mut cfg = crate::DaemonConfig::new(sdk_dir);
    cfg.supervisor.clear();
    cfg.flush_interval = "10s".into();
    cfg.repeat_window = "1s".into();
    for i in 0..cameras {
        // The stand-in answers any address; distinct loopback hosts keep them apart.
        cfg = cfg.camera(crate::CameraSpec {
            id: format!("cam-{i}"),
            addr: ([127, 0, (i / 250) as u8, (i % 250 + 1) as u8], 8000).into(),
            user: "admin".into(),
            password: "pw".into(),
            login_mode: "isapi".into(),
        });
    }
    let mut d = Daemon::spawn(&wrapper, &dir, &cfg, SpawnOptions::default());
    let ids: Vec<String> = (0..cameras).map(|i| format!("cam-{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let up = crate::wait_for(Duration::from_secs(120), Duration::from_millis(250), || {
        if !super::procfs::alive(d.pid()) {
            return Some(false);
        }
        d.status()
            .ok()
            .filter(|v| {
                refs.iter()
                    .all(|id| crate::camera(v, id).is_some_and(|c| c["state"] == "online"))
            })
            .map(|_| true)
    });
    if up != Some(true) {
        return Err(format!(
            "armv7 daemon under qemu: not all {cameras} cameras online: {:?}\n{}",
            d.status(),
            d.log_text()
        ));
    }
    let start = Instant::now();
    std::thread::sleep(secs);
    let pid = d.pid();
    let p = super::procfs::sample(pid).ok_or("the qemu process is gone")?;
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).map_err(|e| e.to_string())?;
    let online = d
        .status()
        .ok()
        .and_then(|v| {
            v["cameras"]
                .as_array()
                .map(|c| c.iter().filter(|c| c["state"] == "online").count())
        })
        .unwrap_or(0);
    let f = Footprint {
        binary_bytes,
        cameras,
        secs: start.elapsed().as_secs_f64(),
        qemu_rss_kib: (p.rss_kib, p.hwm_kib),
        guest_rss_kib: guest_rss_kib(&smaps),
        threads: p.threads,
        online,
    };
    d.signal(crate::Signal::SIGTERM);
    let _ = d.wait_exit(Duration::from_secs(60));
    Ok(f)
}

/// The report's section.
pub fn markdown(f: &Footprint) -> String {
    format!(
        "## armv7 footprint (issue 7 §5)\n\n\
         | | |\n|---|---|\n\
         | stripped release binary (`armv7-unknown-linux-gnueabihf`, opt-level z, LTO, panic=abort) | {} bytes ({:.1} KiB; limit 1 MiB) |\n\
         | daemon under `qemu-arm` with the C stand-in SDK, {} cameras online, after {:.0} s | guest mappings RSS **{:.1} MiB**; whole qemu-arm process RSS {:.1} MiB (peak {:.1} MiB) |\n\
         | threads | {} |\n\n\
         The stand-in SDK (`tests/fakesdk`) is a few KiB of C; the vendor's ARM SDK (not \
         public for 32-bit ARM) adds its own libraries, threads and per-session buffers on a \
         real gateway. The qemu figure includes the emulator's translated code and heap; the \
         guest figure sums the mappings below 4 GiB, where qemu-arm places a 32-bit guest.\n",
        f.binary_bytes,
        f.binary_bytes as f64 / 1024.0,
        f.online,
        f.secs,
        f.guest_rss_kib as f64 / 1024.0,
        f.qemu_rss_kib.0 as f64 / 1024.0,
        f.qemu_rss_kib.1 as f64 / 1024.0,
        f.threads,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_mappings_are_the_low_ones() {
        let smaps = "00010000-00020000 r-xp 00000000 08:01 1 /bin/hikwatch\n\
                     Size: 64 kB\nRss: 40 kB\n\
                     40000000-40100000 rw-p 00000000 00:00 0\nRss: 1000 kB\n\
                     7f0000000000-7f0000100000 rw-p 00000000 00:00 0\nRss: 5000 kB\n\
                     ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]\nRss: 0 kB\n";
        assert_eq!(guest_rss_kib(smaps), 1040);
    }
}
