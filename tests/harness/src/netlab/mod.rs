//! The network fault lab: simcam cameras behind a path that loses, delays, duplicates,
//! reorders and black-holes real IP packets, with the daemon on the other side.
//!
//! Each [`NetLab`] makes two network namespaces, `hwlab-<pid>-<n>-d` (the daemon's) and
//! `hwlab-<pid>-<n>-c` (the cameras'), each with a TUN device (`hwd0`, `hwc0`). The only
//! way between them is the lab's user-space [`router`], which reads every IPv4 packet
//! from one device and writes it to the other after applying the [`Impairment`] set for
//! that camera's address. Both kernels see real packets and run real TCP: a black hole
//! swallows segments without RST or ICMP, so the daemon's sockets retransmit into
//! nothing exactly as on a site with a dead switch port.
//!
//! Addresses come only from 198.18.0.0/15 (set aside for network benchmarks): the daemon
//! is 198.18.0.1, camera `i` is [`camera_ip`]`(i)` in 198.19.0.0/16.
//!
//! The daemon side and the camera side are entered per thread (`setns`): the lab runs a
//! closure in a fresh thread inside a namespace ([`NetLab::in_daemon_ns`],
//! [`NetLab::in_camera_ns`]); sockets, processes and threads made there stay there. So a
//! simcam fleet started with [`NetLab::fleet`] listens (and its executor threads power
//! cameras back on) in the camera namespace, and [`NetLab::spawn_daemon`] starts the real
//! binary in the daemon namespace. A camera powered on from the test's own thread would
//! listen in the wrong namespace: use [`NetLab::power_on`].
//!
//! Clean-up: dropping the lab (also while a failing test unwinds) stops the router and
//! deletes both namespaces; a new lab first deletes the `hwlab-<pid>-*` namespaces of
//! processes that no longer run (a test that was killed).
//!
//! Needs root, `/dev/net/tun` and `ip` (iproute2). [`NetLab::start_or_skip`] prints one
//! line and returns `None` where they are missing, and panics instead with `CI=true`.
//! `tc netem`, iptables and nftables are not used (this project's CI kernel lacks them).

pub mod router;

pub use router::{BlackHole, Direction, Impairment, PathStats, QUEUE_LIMIT};

use std::fs::File;
use std::io::Write as _;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use nix::sched::{CloneFlags, setns};

use crate::{Daemon, DaemonConfig, SpawnOptions, TempDir};
use router::{Arrival, FaultTable, Scheduler};

/// The daemon's address in its namespace.
pub const DAEMON_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// The router's own address on the camera side (the source of its wake-up datagram).
const CAMERA_SIDE_IP: Ipv4Addr = Ipv4Addr::new(198, 19, 255, 1);

/// The address of camera `i` (0-based): 198.19.x.y, up to 50,000 cameras.
pub fn camera_ip(i: usize) -> Ipv4Addr {
    let i = u32::try_from(i).unwrap_or(u32::MAX).min(49_999);
    Ipv4Addr::new(198, 19, (i / 200) as u8, (i % 200 + 10) as u8)
}

const NETNS_DIR: &str = "/run/netns";

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// `ip -n ns -batch -` with `lines`.
fn ip_batch(ns: &str, lines: &str) -> Result<(), String> {
    let mut child = Command::new("ip")
        .args(["-n", ns, "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("ip -batch: {e}"))?;
    if let Some(mut i) = child.stdin.take() {
        i.write_all(lines.as_bytes())
            .map_err(|e| format!("ip -batch: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("ip -batch: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip -n {ns} -batch: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs `f` in a new thread inside the network namespace at `ns_path` and returns its
/// result (a panic in `f` is resumed here).
fn in_netns<T: Send>(ns_path: &Path, f: impl FnOnce() -> T + Send) -> Result<T, String> {
    std::thread::scope(|s| {
        let h = s.spawn(|| {
            let fd = File::open(ns_path).map_err(|e| format!("{}: {e}", ns_path.display()))?;
            setns(&fd, CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("setns {}: {e}", ns_path.display()))?;
            Ok(f())
        });
        h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Deletes the `hwlab-<pid>-*` namespaces of processes that are gone.
pub fn sweep_stale() {
    let Ok(rd) = std::fs::read_dir(NETNS_DIR) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("hwlab-") else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", &name]);
        }
    }
}

/// Why the lab cannot run here, or `None` when it can (root, `/dev/net/tun`, `ip`).
pub fn unavailable() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("the network fault lab needs root (network namespaces)".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("the network fault lab needs /dev/net/tun".into());
    }
    if Command::new("ip")
        .arg("-V")
        .output()
        .map_or(true, |o| !o.status.success())
    {
        return Some("the network fault lab needs `ip` (iproute2)".into());
    }
    None
}

/// A running lab: two namespaces, two TUN devices, the router. See the module docs.
#[derive(Debug)]
pub struct NetLab {
    name: String,
    daemon_ns: String,
    camera_ns: String,
    table: Arc<Mutex<FaultTable>>,
    stop: Arc<AtomicBool>,
    scheduler: Option<JoinHandle<()>>,
    next_camera: usize,
    created: Vec<String>,
}

impl NetLab {
    /// A lab for this test, or `None` after one line on stderr saying why it is skipped
    /// (not root, no `/dev/net/tun`, namespaces refused).
    ///
    /// # Panics
    /// Instead of skipping, when `CI=true`.
    pub fn start_or_skip(seed: u64) -> Option<NetLab> {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        let why = match unavailable() {
            Some(why) => why,
            None => match NetLab::start(seed) {
                Ok(l) => return Some(l),
                Err(e) => format!("the network fault lab cannot be made: {e}"),
            },
        };
        assert!(!ci, "{why} (CI=true: the lab must run)");
        eprintln!("skipped: {why} (CI=true makes this a failure)");
        None
    }

    /// Makes the namespaces and devices and starts the router; `seed` drives every random
    /// impairment (the same seed and traffic give the same faults).
    ///
    /// # Errors
    /// Any step that fails, as text (what was made is removed again).
    pub fn start(seed: u64) -> Result<NetLab, String> {
        static N: AtomicUsize = AtomicUsize::new(0);
        sweep_stale();
        let name = format!(
            "hwlab-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut lab = NetLab {
            daemon_ns: format!("{name}-d"),
            camera_ns: format!("{name}-c"),
            name,
            table: Arc::default(),
            stop: Arc::default(),
            scheduler: None,
            next_camera: 0,
            created: Vec::new(),
        };
        for ns in [lab.daemon_ns.clone(), lab.camera_ns.clone()] {
            ip(&["netns", "add", &ns])?;
            lab.created.push(ns);
        }
        let mk = |ns: &str, dev: &str| -> Result<Arc<tun::Device>, String> {
            in_netns(&Path::new(NETNS_DIR).join(ns), || {
                let mut c = tun::Configuration::default();
                c.tun_name(dev).mtu(1500).up();
                tun::create(&c).map_err(|e| format!("TUN {dev} in {ns}: {e}"))
            })?
            .map(Arc::new)
        };
        let dev_d = mk(&lab.daemon_ns, "hwd0")?;
        let dev_c = mk(&lab.camera_ns, "hwc0")?;
        ip_batch(
            &lab.daemon_ns,
            &format!(
                "link set lo up\nlink set hwd0 up\naddr add {DAEMON_IP}/32 dev hwd0\n\
                 route add 198.19.0.0/16 dev hwd0 src {DAEMON_IP}\n"
            ),
        )?;
        ip_batch(
            &lab.camera_ns,
            &format!(
                "link set lo up\nlink set hwc0 up\naddr add {CAMERA_SIDE_IP}/32 dev hwc0\n\
                 route add 198.18.0.0/16 dev hwc0\n"
            ),
        )?;
        let (tx, rx) = std::sync::mpsc::channel::<Arrival>();
        for (dev, dir, tag) in [
            (dev_d.clone(), Direction::ToCamera, "d"),
            (dev_c.clone(), Direction::ToDaemon, "c"),
        ] {
            let (tx, stop) = (tx.clone(), lab.stop.clone());
            std::thread::Builder::new()
                .name(format!("netlab-read-{tag}"))
                .spawn(move || router::read_loop(dev, dir, tx, stop))
                .map_err(|e| format!("reader thread: {e}"))?;
        }
        drop(tx);
        let sched = Scheduler::new(lab.table.clone(), seed);
        let stop = lab.stop.clone();
        lab.scheduler = Some(
            std::thread::Builder::new()
                .name("netlab-router".into())
                .spawn(move || {
                    router::run(sched, rx, stop, |dir, p| {
                        let _ = match dir {
                            Direction::ToCamera => dev_c.send(p),
                            Direction::ToDaemon => dev_d.send(p),
                        };
                    });
                })
                .map_err(|e| format!("router thread: {e}"))?,
        );
        Ok(lab)
    }

    /// `hwlab-<pid>-<n>`; the namespaces are this with `-d` and `-c`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The daemon side's namespace name.
    pub fn daemon_ns(&self) -> &str {
        &self.daemon_ns
    }

    /// The camera side's namespace name.
    pub fn camera_ns(&self) -> &str {
        &self.camera_ns
    }

    /// Runs `f` in a fresh thread inside the daemon's namespace.
    ///
    /// # Panics
    /// When the namespace cannot be entered (or `f` panics).
    pub fn in_daemon_ns<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        in_netns(&Path::new(NETNS_DIR).join(&self.daemon_ns), f).expect("enter the daemon ns")
    }

    /// Runs `f` in a fresh thread inside the cameras' namespace.
    ///
    /// # Panics
    /// When the namespace cannot be entered (or `f` panics).
    pub fn in_camera_ns<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        in_netns(&Path::new(NETNS_DIR).join(&self.camera_ns), f).expect("enter the camera ns")
    }

    /// Starts a simcam fleet in the camera namespace, every camera on an address of its
    /// own ([`camera_ip`], numbered on across the lab's fleets); `config.bind_ips` is
    /// replaced.
    ///
    /// # Panics
    /// When the addresses cannot be added or the fleet does not start.
    pub fn fleet(&mut self, mut config: simcam::FleetConfig) -> simcam::Fleet {
        let ips: Vec<Ipv4Addr> = (self.next_camera..self.next_camera + config.cameras)
            .map(camera_ip)
            .collect();
        self.next_camera += config.cameras;
        let batch: String = ips
            .iter()
            .map(|a| format!("addr add {a}/32 dev hwc0\n"))
            .collect();
        ip_batch(&self.camera_ns, &batch).expect("camera addresses");
        config.bind_ips = ips;
        self.in_camera_ns(|| simcam::Fleet::start(config))
            .expect("simcam fleet in the camera namespace")
    }

    /// Powers `cam` on from inside the camera namespace (its new listener must be there).
    ///
    /// # Panics
    /// When the camera cannot listen.
    pub fn power_on(&self, cam: &simcam::Camera) -> bool {
        self.in_camera_ns(|| cam.power_on())
            .expect("power the camera on")
    }

    /// Starts the daemon binary in the daemon namespace (see [`Daemon::spawn`]).
    pub fn spawn_daemon(
        &self,
        bin: impl AsRef<Path> + Send,
        dir: &TempDir,
        cfg: &DaemonConfig,
        opts: SpawnOptions,
    ) -> Daemon {
        self.in_daemon_ns(|| Daemon::spawn(bin, dir, cfg, opts))
    }

    /// Sets the impairment of the path to the camera at `addr` (replacing the former one).
    pub fn set(&self, addr: Ipv4Addr, imp: Impairment) {
        self.table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .per_camera
            .insert(addr, (imp, Instant::now()));
    }

    /// Sets the same impairment on several cameras' paths.
    pub fn set_many(&self, addrs: impl IntoIterator<Item = Ipv4Addr>, imp: &Impairment) {
        let now = Instant::now();
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        for a in addrs {
            t.per_camera.insert(a, (imp.clone(), now));
        }
    }

    /// Heals the path to `addr`.
    pub fn clear(&self, addr: Ipv4Addr) {
        self.table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .per_camera
            .remove(&addr);
    }

    /// Heals every path.
    pub fn clear_all(&self) {
        self.table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .per_camera
            .clear();
    }

    /// The packet counters of the path to `addr` so far.
    pub fn stats(&self, addr: Ipv4Addr) -> PathStats {
        self.table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stats
            .get(&addr)
            .copied()
            .unwrap_or_default()
    }

    /// The folder of the named namespaces (for diagnostics).
    pub fn netns_dir() -> PathBuf {
        PathBuf::from(NETNS_DIR)
    }
}

impl Drop for NetLab {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocked TUN readers: a datagram out of each device.
        if self.created.len() == 2 {
            let _ = in_netns(&Path::new(NETNS_DIR).join(&self.daemon_ns), || {
                UdpSocket::bind((DAEMON_IP, 0))
                    .and_then(|s| s.send_to(b"x", (Ipv4Addr::new(198, 19, 255, 254), 9)))
            });
            let _ = in_netns(&Path::new(NETNS_DIR).join(&self.camera_ns), || {
                UdpSocket::bind((CAMERA_SIDE_IP, 0))
                    .and_then(|s| s.send_to(b"x", (Ipv4Addr::new(198, 18, 255, 254), 9)))
            });
        }
        if let Some(h) = self.scheduler.take() {
            let _ = h.join();
        }
        for ns in self.created.drain(..) {
            let _ = ip(&["netns", "del", &ns]);
        }
    }
}
