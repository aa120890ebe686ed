//! The footprint on ARM: the armv7 footprint (the stripped release binary's
//! size, and the memory of the armv7 daemon under qemu-arm with the C stand-in SDK at 64
//! cameras, and with the ISAPI backend and no SDK against simcam cameras, [`run_isapi`]),
//! and the aarch64 daemon with the vendor's own aarch64 HCNetSDK under
//! qemu-aarch64 against simcam cameras ([`run_vendor`]).
//!
//! Under qemu-user the guest lives inside the emulator's process, so `/proc` shows the
//! emulator: its RSS is the guest's plus qemu's own (translated code, its heap). The
//! guest's share is what the guest maps at its own addresses: below 4 GiB for a 32-bit
//! guest (qemu-arm on a 64-bit host, `guest_base` 0), below [`GUEST64_LIMIT`] for a 64-bit
//! one (qemu-aarch64 loads the program at 0x55_0000_0000 and its libraries just above,
//! while qemu's own binary, heap and translated code sit at 0x55…_…/0x7f… of the host,
//! 12 hex digits; checked with `/proc/PID/maps`).

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
    /// Open descriptors of the qemu process (the guest's, plus a few of qemu's own).
    pub fds: u64,
    /// Cameras online at the end.
    pub online: usize,
}

/// Where a 64-bit guest's own mappings end under qemu-aarch64 on x86_64 (16 TiB).
pub const GUEST64_LIMIT: u64 = 1 << 44;

/// One mapping of a `/proc/PID/smaps` text: start address, file (empty for anonymous,
/// `[heap]` and the like kept as written) and `Rss:` in KiB.
fn smaps_entries(smaps: &str) -> Vec<(u64, String, u64)> {
    let mut out: Vec<(u64, String, u64)> = Vec::new();
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if let Some((start, _)) = first.split_once('-') {
            if let Ok(a) = u64::from_str_radix(start, 16) {
                // address perms offset dev inode [path]
                let path = words.nth(4).unwrap_or("").to_string();
                out.push((a, path, 0));
                continue;
            }
        }
        if let (Some(v), Some(last)) = (line.strip_prefix("Rss:"), out.last_mut()) {
            last.2 += v
                .split_whitespace()
                .next()
                .and_then(|x| x.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    out
}

/// Sums `Rss:` of the mappings that start below `limit` in a `/proc/PID/smaps` text.
pub fn guest_rss_kib_below(smaps: &str, limit: u64) -> u64 {
    smaps_entries(smaps)
        .iter()
        .filter(|(a, _, _)| *a < limit)
        .map(|(_, _, rss)| rss)
        .sum()
}

/// Sums `Rss:` of the mappings that start below 4 GiB (a 32-bit guest).
pub fn guest_rss_kib(smaps: &str) -> u64 {
    guest_rss_kib_below(smaps, 1 << 32)
}

/// A 64-bit guest's resident memory by owner, KiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuestRss {
    /// The `hikwatch` binary's own mappings (code, data).
    pub daemon: u64,
    /// The vendor SDK's library files (the SDK folder, `HCNetSDKCom/`, libuuid).
    pub sdk: u64,
    /// Other files: glibc, libstdc++, libgcc of the sysroot.
    pub system: u64,
    /// Anonymous memory: heaps and thread stacks of the daemon and the SDK together
    /// (malloc does not say who asked).
    pub anon: u64,
}

impl GuestRss {
    /// Everything the guest holds.
    pub fn total(&self) -> u64 {
        self.daemon + self.sdk + self.system + self.anon
    }
}

/// Splits the guest's mappings (below `limit`) of a `/proc/PID/smaps` text: `daemon` is
/// the file `bin`, SDK files start with one of `sdk_prefixes`.
pub fn guest_rss_by_owner(smaps: &str, limit: u64, bin: &str, sdk_prefixes: &[String]) -> GuestRss {
    let mut g = GuestRss::default();
    for (a, path, rss) in smaps_entries(smaps) {
        if a >= limit {
            continue;
        }
        let slot = if path == bin {
            &mut g.daemon
        } else if sdk_prefixes.iter().any(|p| path.starts_with(p.as_str())) {
            &mut g.sdk
        } else if path.starts_with('/') {
            &mut g.system
        } else {
            &mut g.anon
        };
        *slot += rss;
    }
    g
}

/// An executable script in `dir` that `exec`s `qemu -L sysroot bin "$@"`, so the daemon's
/// pid is the emulator's.
fn qemu_wrapper(
    dir: &TempDir,
    qemu: &str,
    sysroot: &str,
    bin: &Path,
) -> Result<std::path::PathBuf, String> {
    let wrapper = dir.write(
        &format!("hikwatch-{qemu}"),
        &format!(
            "#!/bin/sh\nexec {qemu} -L {sysroot} {:?} \"$@\"\n",
            bin.display().to_string()
        ),
    );
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .map_err(|e| e.to_string())?;
    Ok(wrapper)
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
    let wrapper = qemu_wrapper(&dir, "qemu-arm", "/usr/arm-linux-gnueabihf", bin)?;
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
            stream: None,
            rtsp_port: None,
        });
    }
    let mut d = Daemon::spawn(&wrapper, &dir, &cfg, SpawnOptions::default());
    let m = measure(&mut d, cameras, secs, "armv7 daemon under qemu-arm")?;
    Ok(Footprint {
        binary_bytes,
        cameras,
        secs: m.secs,
        qemu_rss_kib: (m.proc.rss_kib, m.proc.hwm_kib),
        guest_rss_kib: guest_rss_kib(&m.smaps),
        threads: m.proc.threads,
        fds: m.proc.fds,
        online: m.online,
    })
}

/// The armv7 daemon with the ISAPI backend under qemu-arm, at one fleet size.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IsapiFootprint {
    /// Cameras configured (simcam, `backend = "isapi"`).
    pub cameras: usize,
    /// Cameras online at the end.
    pub online: usize,
    /// Seconds it ran with every camera online.
    pub secs: f64,
    /// The guest's resident memory by owner (no SDK: `sdk` stays 0).
    pub guest: GuestRss,
    /// The qemu-arm process: RSS at the end and peak, KiB.
    pub qemu_rss_kib: (u64, u64),
    /// Threads of the emulated daemon (qemu adds one of its own).
    pub threads: u64,
    /// Open descriptors of the qemu process (the guest's, plus a few of qemu's own).
    pub fds: u64,
}

/// Runs the armv7 `bin` under `qemu-arm` with `backend = "isapi"` (no `[sdk]`, so no SDK
/// of any kind is loaded) against `cameras` simcam cameras, for `secs` once all are online.
///
/// # Errors
/// When simcam or the daemon do not start, not every camera comes online, or `/proc`
/// cannot be read.
pub fn run_isapi(bin: &Path, cameras: usize, secs: Duration) -> Result<IsapiFootprint, String> {
    let bin = &std::fs::canonicalize(bin).map_err(|e| format!("{}: {e}", bin.display()))?;
    let fleet = simcam::Fleet::start(simcam::FleetConfig {
        cameras,
        threads: 2,
        ..simcam::FleetConfig::default()
    })
    .map_err(|e| format!("simcam: {e}"))?;
    let dir = TempDir::new("footprint-isapi");
    let wrapper = qemu_wrapper(&dir, "qemu-arm", "/usr/arm-linux-gnueabihf", bin)?;
    let mut cfg = crate::DaemonConfig::new(Path::new("/nonexistent-no-sdk"));
    cfg.backend = Some("isapi".into());
    cfg.supervisor.clear();
    cfg.flush_interval = "10s".into();
    cfg.repeat_window = "1s".into();
    for i in 0..cameras {
        cfg = cfg.camera(crate::CameraSpec::of(&fleet, i, &format!("cam-{i}")));
    }
    let mut d = Daemon::spawn(&wrapper, &dir, &cfg, SpawnOptions::default());
    let m = measure(&mut d, cameras, secs, "armv7 daemon (ISAPI) under qemu-arm")?;
    Ok(IsapiFootprint {
        cameras,
        online: m.online,
        secs: m.secs,
        guest: guest_rss_by_owner(&m.smaps, 1 << 32, &bin.display().to_string(), &[]),
        qemu_rss_kib: (m.proc.rss_kib, m.proc.hwm_kib),
        threads: m.proc.threads,
        fds: m.proc.fds,
    })
}

/// The report's subsection for the armv7 ISAPI runs (smallest fleet first): one row per
/// fleet size and the cost per camera between the first and the last.
pub fn markdown_isapi(runs: &[IsapiFootprint]) -> String {
    let mut s = String::from(
        "\n### armv7 with the ISAPI backend (no SDK)\n\n\
         The same armv7 release binary under `qemu-arm` with `backend = \"isapi\"` and no \
         `[sdk]` table (no SDK and no stand-in is loaded), against simcam cameras (session \
         login, heartbeat every 5 s, one event stream per camera; product defaults). Guest \
         memory by owner from `/proc/PID/smaps` (mappings below 4 GiB); descriptors are the \
         qemu process's (the guest's plus a few of qemu's own).\n\n\
         | cameras online | daemon binary | system libraries | anonymous (heaps, stacks) | guest total | whole qemu process (peak) | threads | fds |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for r in runs {
        s.push_str(&format!(
            "| {}/{} | {:.1} MiB | {:.1} MiB | {:.1} MiB | **{:.1} MiB** | {:.1} MiB ({:.1} MiB) | {} | {} |\n",
            r.online,
            r.cameras,
            mib(r.guest.daemon),
            mib(r.guest.system),
            mib(r.guest.anon),
            mib(r.guest.total()),
            mib(r.qemu_rss_kib.0),
            mib(r.qemu_rss_kib.1),
            r.threads,
            r.fds,
        ));
    }
    if let (Some(a), Some(b)) = (runs.first(), runs.last()) {
        if b.cameras > a.cameras {
            let n = (b.cameras - a.cameras) as f64;
            let per = |x: u64, y: u64| (y as f64 - x as f64) / n;
            s.push_str(&format!(
                "\nCost per logged-in camera ({} → {} cameras): guest memory {:.1} KiB \
                 (anonymous {:.1} KiB), threads {:.2}, descriptors {:.2}.\n",
                a.cameras,
                b.cameras,
                per(a.guest.total(), b.guest.total()),
                per(a.guest.anon, b.guest.anon),
                per(a.threads, b.threads),
                per(a.fds, b.fds),
            ));
        }
    }
    s
}

/// What [`measure`] read from a running daemon.
struct Measured {
    proc: super::procfs::ProcSample,
    smaps: String,
    online: usize,
    secs: f64,
}

/// Waits until all `cameras` of `d` are online, lets it run `secs`, reads `/proc` and the
/// status, and stops it (SIGTERM).
fn measure(d: &mut Daemon, cameras: usize, secs: Duration, what: &str) -> Result<Measured, String> {
    let ids: Vec<String> = (0..cameras).map(|i| format!("cam-{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let up = crate::wait_for(Duration::from_secs(300), Duration::from_millis(250), || {
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
            "{what}: not all {cameras} cameras online: {:?}\n{}",
            d.status(),
            d.log_text()
        ));
    }
    let start = Instant::now();
    std::thread::sleep(secs);
    let pid = d.pid();
    let proc = super::procfs::sample(pid).ok_or("the qemu process is gone")?;
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
    let secs = start.elapsed().as_secs_f64();
    d.signal(crate::Signal::SIGTERM);
    let _ = d.wait_exit(Duration::from_secs(60));
    Ok(Measured {
        proc,
        smaps,
        online,
        secs,
    })
}

/// The aarch64 daemon with the vendor's aarch64 SDK under qemu-aarch64, at one fleet size.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VendorFootprint {
    /// Which SDK (`HCNetSDK 6.1.8.101`, from the daemon's start line).
    pub sdk: String,
    /// Cameras configured (simcam, ISAPI).
    pub cameras: usize,
    /// Cameras online at the end.
    pub online: usize,
    /// Seconds it ran with every camera online.
    pub secs: f64,
    /// The guest's resident memory by owner.
    pub guest: GuestRss,
    /// The qemu-aarch64 process: RSS at the end and peak, KiB.
    pub qemu_rss_kib: (u64, u64),
    /// Threads of the emulated daemon, SDK threads included (qemu-user runs guest threads
    /// as host threads; qemu adds one of its own).
    pub threads: u64,
}

/// Runs the aarch64 `bin` under `qemu-aarch64` with the vendor's aarch64 SDK folder
/// `vendor_dir` (laid out with libuuid as the tests do,
/// [`crate::vendor_sdk::with_arm64_libs`]) against `cameras` simcam cameras, for `secs`
/// once all are online.
///
/// # Errors
/// When simcam or the daemon do not start, not every camera comes online, or `/proc`
/// cannot be read.
pub fn run_vendor(
    bin: &Path,
    vendor_dir: &Path,
    cameras: usize,
    secs: Duration,
) -> Result<VendorFootprint, String> {
    let bin = &std::fs::canonicalize(bin).map_err(|e| format!("{}: {e}", bin.display()))?;
    let staged =
        crate::vendor_sdk::with_arm64_libs(vendor_dir, &crate::vendor_sdk::SDK_6_1_8_101_AARCH64);
    let sdk_dir = staged.as_path();
    // The SDK's files as the mappings name them (symbolic links resolved).
    let entries = std::fs::read_dir(sdk_dir).map_err(|e| format!("{}: {e}", sdk_dir.display()))?;
    let sdk_prefixes: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::canonicalize(e.path()).ok())
        .map(|p| p.display().to_string())
        .collect();
    let fleet = simcam::Fleet::start(simcam::FleetConfig {
        cameras,
        threads: 2,
        ..simcam::FleetConfig::default()
    })
    .map_err(|e| format!("simcam: {e}"))?;
    let dir = TempDir::new("footprint-vendor");
    let wrapper = qemu_wrapper(&dir, "qemu-aarch64", "/usr/aarch64-linux-gnu", bin)?;
    let mut cfg = crate::DaemonConfig::new(sdk_dir);
    cfg.supervisor.clear();
    cfg.flush_interval = "10s".into();
    cfg.repeat_window = "1s".into();
    for i in 0..cameras {
        cfg = cfg.camera(crate::CameraSpec::of(&fleet, i, &format!("cam-{i}")));
    }
    let mut d = Daemon::spawn(&wrapper, &dir, &cfg, SpawnOptions::default());
    let sdk = d
        .wait_log(0, Duration::from_secs(120), "HCNetSDK ")
        .and_then(|l| crate::vendor_sdk::version_named_in(&l.text).map(|v| format!("HCNetSDK {v}")))
        .unwrap_or_default();
    let m = measure(&mut d, cameras, secs, "aarch64 daemon under qemu-aarch64")?;
    Ok(VendorFootprint {
        sdk,
        cameras,
        online: m.online,
        secs: m.secs,
        guest: guest_rss_by_owner(
            &m.smaps,
            GUEST64_LIMIT,
            &bin.display().to_string(),
            &sdk_prefixes,
        ),
        qemu_rss_kib: (m.proc.rss_kib, m.proc.hwm_kib),
        threads: m.proc.threads,
    })
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The report's section for the aarch64 runs (smallest fleet first): one row per fleet
/// size and the cost per camera between the first and the last.
pub fn markdown_vendor(runs: &[VendorFootprint]) -> String {
    let mut s = String::from(
        "## aarch64 footprint with the vendor's SDK\n\n\
         The aarch64 release `hikwatch` with the vendor's own aarch64 HCNetSDK under \
         `qemu-aarch64`, against simcam cameras (ISAPI sessions, product defaults: heartbeat \
         every 5 s, the SDK's own check every 30 s). Guest memory by owner, from \
         `/proc/PID/smaps` of the emulator (the guest's own addresses); anonymous memory is \
         the heaps and stacks of the daemon and the SDK together.\n\n\
         | SDK | cameras online | daemon binary | SDK libraries | system libraries | anonymous (heaps, stacks) | guest total | whole qemu process (peak) | threads |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for r in runs {
        s.push_str(&format!(
            "| {} | {}/{} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} MiB | **{:.1} MiB** | {:.1} MiB ({:.1} MiB) | {} |\n",
            r.sdk,
            r.online,
            r.cameras,
            mib(r.guest.daemon),
            mib(r.guest.sdk),
            mib(r.guest.system),
            mib(r.guest.anon),
            mib(r.guest.total()),
            mib(r.qemu_rss_kib.0),
            mib(r.qemu_rss_kib.1),
            r.threads
        ));
    }
    if let (Some(a), Some(b)) = (runs.first(), runs.last()) {
        if b.cameras > a.cameras {
            let n = (b.cameras - a.cameras) as f64;
            let per = |x: u64, y: u64| (y as f64 - x as f64) / n;
            s.push_str(&format!(
                "\nCost per logged-in camera ({} → {} cameras): guest memory {:.0} KiB \
                 (anonymous {:.0} KiB), threads {:.2}.\n",
                a.cameras,
                b.cameras,
                per(a.guest.total(), b.guest.total()),
                per(a.guest.anon, b.guest.anon),
                per(a.threads, b.threads),
            ));
        }
    }
    s
}

/// The report's section.
pub fn markdown(f: &Footprint) -> String {
    format!(
        "## armv7 footprint\n\n\
         | | |\n|---|---|\n\
         | stripped release binary (`armv7-unknown-linux-gnueabihf`, opt-level z, LTO, panic=abort) | {} bytes ({:.1} KiB; limit 1 MiB) |\n\
         | daemon under `qemu-arm` with the C stand-in SDK, {} cameras online, after {:.0} s | guest mappings RSS **{:.1} MiB**; whole qemu-arm process RSS {:.1} MiB (peak {:.1} MiB) |\n\
         | threads, descriptors | {}, {} |\n\n\
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
        f.fds,
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

    #[test]
    fn guest64_mappings_split_by_owner() {
        let smaps = "5500000000-5500100000 r-xp 00000000 08:01 1 /t/hikwatch\n\
                     Rss: 300 kB\n\
                     5502000000-5502100000 r-xp 00000000 08:01 2 /v/sdk/libHCCore.so\n\
                     Rss: 2000 kB\n\
                     5502200000-5502300000 r-xp 00000000 08:01 3 /v/sdk/HCNetSDKCom/libHCPreview.so\n\
                     Rss: 100 kB\n\
                     5503000000-5503100000 r-xp 00000000 08:01 4 /usr/aarch64-linux-gnu/lib/libc.so.6\n\
                     Rss: 700 kB\n\
                     5504000000-5504100000 rw-p 00000000 00:00 0 \n\
                     Rss: 4000 kB\n\
                     563c00000000-563c00100000 r-xp 00000000 08:01 5 /usr/bin/qemu-aarch64\n\
                     Rss: 9000 kB\n";
        let g = guest_rss_by_owner(
            smaps,
            GUEST64_LIMIT,
            "/t/hikwatch",
            &["/v/sdk/libHCCore.so".into(), "/v/sdk/HCNetSDKCom".into()],
        );
        assert_eq!(
            g,
            GuestRss {
                daemon: 300,
                sdk: 2100,
                system: 700,
                anon: 4000
            }
        );
        assert_eq!(guest_rss_kib_below(smaps, GUEST64_LIMIT), 7100);
    }
}
