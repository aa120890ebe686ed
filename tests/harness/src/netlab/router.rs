//! The lab's user-space router: moves IPv4 packets between the daemon side's TUN device
//! and the camera side's, applying the impairment set for the camera each packet belongs
//! to (its destination on the way to the cameras, its source on the way back).
//!
//! Two reader threads (one per TUN device, blocking reads) hand every packet to one
//! scheduler thread, which decides its fate (lost, held back, duplicated, delayed) and
//! writes it to the other device when its time comes. The kernels on both sides see real
//! IP packets and do real TCP: nothing here acknowledges anything.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which way a packet travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the daemon to a camera.
    ToCamera,
    /// From a camera to the daemon.
    ToDaemon,
}

/// Which directions a black hole swallows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BlackHole {
    /// None: packets pass.
    #[default]
    Off,
    /// Both directions: a dead switch port.
    Both,
    /// Requests are lost; answers would pass (there are none).
    ToCamera,
    /// Requests reach the camera; its answers are lost (asymmetric).
    ToDaemon,
}

impl BlackHole {
    fn swallows(self, dir: Direction) -> bool {
        match self {
            BlackHole::Off => false,
            BlackHole::Both => true,
            BlackHole::ToCamera => dir == Direction::ToCamera,
            BlackHole::ToDaemon => dir == Direction::ToDaemon,
        }
    }
}

/// What the path to one camera does to its packets (both directions unless said).
/// `Impairment::default()` is a clean path.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Impairment {
    /// Probability (0..=1) that a packet is lost, per direction.
    pub loss: f64,
    /// One-way delay added to every packet.
    pub delay: Duration,
    /// Uniform jitter: each packet's delay is `delay ± jitter`. Packets of one camera and
    /// direction keep their order (a packet never leaves before the one ahead of it);
    /// reordering is [`Impairment::reorder`].
    pub jitter: Duration,
    /// Probability that a packet is sent twice.
    pub duplicate: f64,
    /// Probability that a packet is held back by [`Impairment::reorder_gap`], so the
    /// packets after it overtake it.
    pub reorder: f64,
    /// How long a reordered packet is held back (10 ms when zero).
    pub reorder_gap: Duration,
    /// A black hole: no RST, no ICMP, packets vanish.
    pub black_hole: BlackHole,
    /// Link flapping: down for `.0`, up for `.1`, repeating from when it was set. While
    /// down, packets vanish and those already queued for the camera are lost with it.
    pub flap: Option<(Duration, Duration)>,
    /// Bandwidth cap per direction, bits per second; a packet that would wait more than
    /// [`QUEUE_LIMIT`] behind the others is dropped (tail drop).
    pub rate_bps: Option<u64>,
    /// Path MTU: packets longer than this with "don't fragment" set are dropped and the
    /// ICMP "fragmentation needed" that a router would send is lost (a PMTU black hole).
    /// Packets without DF pass whole (TCP on Linux always sets DF).
    pub mtu: Option<usize>,
}

/// The longest a packet may queue behind a bandwidth cap before it is dropped.
pub const QUEUE_LIMIT: Duration = Duration::from_millis(500);

/// Packet counters of one camera's path, per direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PathStats {
    /// Packets (and bytes) that arrived at the router, towards the camera.
    pub to_camera_in: u64,
    /// Bytes of those.
    pub to_camera_bytes: u64,
    /// Of those, written to the camera side (duplicates count twice).
    pub to_camera_out: u64,
    /// Packets from the camera that arrived at the router.
    pub to_daemon_in: u64,
    /// Bytes of those.
    pub to_daemon_bytes: u64,
    /// Of those, written to the daemon side.
    pub to_daemon_out: u64,
}

impl PathStats {
    /// Packets in either direction that arrived at the router.
    pub fn packets(&self) -> u64 {
        self.to_camera_in + self.to_daemon_in
    }
}

/// The faults currently set, shared between the lab and the router.
#[derive(Debug, Default)]
pub(crate) struct FaultTable {
    /// Per camera address, with when it was set (the flap phase starts there).
    pub per_camera: HashMap<Ipv4Addr, (Impairment, Instant)>,
    pub stats: HashMap<Ipv4Addr, PathStats>,
}

/// A packet with where it goes.
pub(crate) struct Arrival {
    pub dir: Direction,
    pub data: Vec<u8>,
}

struct Queued {
    at: Instant,
    seq: u64,
    dir: Direction,
    camera: Ipv4Addr,
    data: Vec<u8>,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// What an IPv4 header says that the router needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ipv4Head {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub len: usize,
    pub dont_fragment: bool,
}

/// Parses the fixed part of an IPv4 header; `None` for anything else (IPv6, runts).
pub(crate) fn parse_ipv4(p: &[u8]) -> Option<Ipv4Head> {
    if p.len() < 20 || p[0] >> 4 != 4 {
        return None;
    }
    Some(Ipv4Head {
        src: Ipv4Addr::new(p[12], p[13], p[14], p[15]),
        dst: Ipv4Addr::new(p[16], p[17], p[18], p[19]),
        len: p.len(),
        dont_fragment: p[6] & 0x40 != 0,
    })
}

/// Per camera and direction: when its last packet leaves (order keeping) and when its
/// bandwidth cap frees up.
#[derive(Default)]
struct Lane {
    last_release: Option<Instant>,
    link_free: Option<Instant>,
}

/// The scheduler: decides each packet's fate and keeps the timed queue.
pub(crate) struct Scheduler {
    table: Arc<Mutex<FaultTable>>,
    rng: fastrand::Rng,
    queue: BinaryHeap<Reverse<Queued>>,
    lanes: HashMap<(Ipv4Addr, Direction), Lane>,
    seq: u64,
}

fn chance(rng: &mut fastrand::Rng, p: f64) -> bool {
    p > 0.0 && rng.f64() < p
}

fn is_down(imp: &Impairment, since: Instant, now: Instant) -> bool {
    let Some((down, up)) = imp.flap else {
        return false;
    };
    let cycle = (down + up).as_nanos().max(1);
    let phase = now.saturating_duration_since(since).as_nanos() % cycle;
    phase < down.as_nanos()
}

impl Scheduler {
    pub(crate) fn new(table: Arc<Mutex<FaultTable>>, seed: u64) -> Scheduler {
        Scheduler {
            table,
            rng: fastrand::Rng::with_seed(seed),
            queue: BinaryHeap::new(),
            lanes: HashMap::new(),
            seq: 0,
        }
    }

    /// Decides the fate of a packet that arrived `now`.
    pub(crate) fn admit(&mut self, a: Arrival, now: Instant) {
        let Some(h) = parse_ipv4(&a.data) else {
            return;
        };
        let camera = match a.dir {
            Direction::ToCamera => h.dst,
            Direction::ToDaemon => h.src,
        };
        let (imp, since) = {
            let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
            let st = t.stats.entry(camera).or_default();
            match a.dir {
                Direction::ToCamera => {
                    st.to_camera_in += 1;
                    st.to_camera_bytes += h.len as u64;
                }
                Direction::ToDaemon => {
                    st.to_daemon_in += 1;
                    st.to_daemon_bytes += h.len as u64;
                }
            }
            t.per_camera
                .get(&camera)
                .cloned()
                .unwrap_or((Impairment::default(), now))
        };
        if imp.black_hole.swallows(a.dir)
            || is_down(&imp, since, now)
            || chance(&mut self.rng, imp.loss)
            || imp.mtu.is_some_and(|m| h.len > m && h.dont_fragment)
        {
            return;
        }
        let lane = self.lanes.entry((camera, a.dir)).or_default();
        // Bandwidth: serialisation behind the packets already on the wire.
        let mut at = now;
        if let Some(bps) = imp.rate_bps.filter(|b| *b > 0) {
            let start = lane.link_free.map_or(now, |f| f.max(now));
            if start.saturating_duration_since(now) > QUEUE_LIMIT {
                return;
            }
            let tx = Duration::from_nanos((h.len as u64 * 8).saturating_mul(1_000_000_000) / bps);
            at = start + tx;
            lane.link_free = Some(at);
        }
        // Delay and jitter, order kept within the lane.
        let mut d = imp.delay;
        if !imp.jitter.is_zero() {
            let j = imp.jitter.as_nanos() as i128;
            let off = self.rng.i128(-j..=j);
            d = Duration::from_nanos((d.as_nanos() as i128 + off).max(0) as u64);
        }
        at += d;
        if let Some(last) = lane.last_release {
            at = at.max(last);
        }
        if chance(&mut self.rng, imp.reorder) {
            // Held back: not part of the lane's order.
            let gap = if imp.reorder_gap.is_zero() {
                Duration::from_millis(10)
            } else {
                imp.reorder_gap
            };
            at += gap;
        } else {
            lane.last_release = Some(at);
        }
        let copies = if chance(&mut self.rng, imp.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            self.seq += 1;
            self.queue.push(Reverse(Queued {
                at,
                seq: self.seq,
                dir: a.dir,
                camera,
                data: a.data.clone(),
            }));
        }
    }

    /// When the next queued packet is due.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse(q)| q.at)
    }

    /// Takes every packet due at `now`, in order; packets of a camera whose link went down
    /// meanwhile are lost.
    pub(crate) fn due(&mut self, now: Instant) -> Vec<(Direction, Vec<u8>)> {
        let mut out = Vec::new();
        while self.next_due().is_some_and(|t| t <= now) {
            let Some(Reverse(q)) = self.queue.pop() else {
                break;
            };
            let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
            let lost = t.per_camera.get(&q.camera).is_some_and(|(imp, since)| {
                is_down(imp, *since, now) || imp.black_hole.swallows(q.dir)
            });
            if lost {
                continue;
            }
            let st = t.stats.entry(q.camera).or_default();
            match q.dir {
                Direction::ToCamera => st.to_camera_out += 1,
                Direction::ToDaemon => st.to_daemon_out += 1,
            }
            out.push((q.dir, q.data));
        }
        out
    }
}

/// Runs the scheduler until `stop`: packets from `rx`, due packets handed to `send`.
pub(crate) fn run(
    mut sched: Scheduler,
    rx: Receiver<Arrival>,
    stop: Arc<AtomicBool>,
    mut send: impl FnMut(Direction, &[u8]),
) {
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        for (dir, p) in sched.due(now) {
            send(dir, &p);
        }
        let wait = sched
            .next_due()
            .map_or(Duration::from_millis(100), |t| {
                t.saturating_duration_since(Instant::now())
            })
            .min(Duration::from_millis(100));
        match rx.recv_timeout(wait) {
            Ok(a) => sched.admit(a, Instant::now()),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
}

/// A blocking reader of one TUN device: every packet to `tx` until `stop`.
pub(crate) fn read_loop(
    dev: Arc<tun::Device>,
    dir: Direction,
    tx: Sender<Arrival>,
    stop: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::SeqCst) {
        match dev.recv(&mut buf) {
            Ok(n) => {
                if tx
                    .send(Arrival {
                        dir,
                        data: buf[..n].to_vec(),
                    })
                    .is_err()
                {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(src: [u8; 4], dst: [u8; 4], len: usize, df: bool) -> Vec<u8> {
        let mut p = vec![0u8; len];
        p[0] = 0x45;
        p[6] = if df { 0x40 } else { 0 };
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&dst);
        p
    }

    const CAM: [u8; 4] = [198, 19, 0, 1];
    const D: [u8; 4] = [198, 18, 0, 1];

    fn sched_with(imp: Impairment) -> Scheduler {
        let t = Arc::new(Mutex::new(FaultTable::default()));
        t.lock()
            .unwrap()
            .per_camera
            .insert(Ipv4Addr::from(CAM), (imp, Instant::now()));
        Scheduler::new(t, 7)
    }

    fn push(s: &mut Scheduler, dir: Direction, len: usize, df: bool, now: Instant) {
        let (src, dst) = match dir {
            Direction::ToCamera => (D, CAM),
            Direction::ToDaemon => (CAM, D),
        };
        s.admit(
            Arrival {
                dir,
                data: packet(src, dst, len, df),
            },
            now,
        );
    }

    #[test]
    fn clean_path_passes_everything_at_once() {
        let mut s = sched_with(Impairment::default());
        let now = Instant::now();
        for _ in 0..10 {
            push(&mut s, Direction::ToCamera, 60, true, now);
        }
        assert_eq!(s.due(now).len(), 10);
    }

    #[test]
    fn loss_rate_is_near_the_setting() {
        let mut s = sched_with(Impairment {
            loss: 0.2,
            ..Impairment::default()
        });
        let now = Instant::now();
        for _ in 0..10_000 {
            push(&mut s, Direction::ToCamera, 60, true, now);
        }
        let passed = s.due(now).len();
        assert!((7_600..8_400).contains(&passed), "{passed}");
    }

    #[test]
    fn one_way_black_hole_swallows_only_its_direction() {
        let mut s = sched_with(Impairment {
            black_hole: BlackHole::ToDaemon,
            ..Impairment::default()
        });
        let now = Instant::now();
        push(&mut s, Direction::ToCamera, 60, true, now);
        push(&mut s, Direction::ToDaemon, 60, true, now);
        let out = s.due(now);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, Direction::ToCamera);
    }

    #[test]
    fn delay_with_jitter_keeps_order_and_bounds() {
        let mut s = sched_with(Impairment {
            delay: Duration::from_millis(200),
            jitter: Duration::from_millis(50),
            ..Impairment::default()
        });
        let now = Instant::now();
        for _ in 0..50 {
            push(&mut s, Direction::ToCamera, 60, true, now);
        }
        assert!(s.due(now + Duration::from_millis(149)).is_empty());
        assert_eq!(s.due(now + Duration::from_millis(251)).len(), 50);
    }

    #[test]
    fn mtu_drops_big_df_packets_only() {
        let mut s = sched_with(Impairment {
            mtu: Some(576),
            ..Impairment::default()
        });
        let now = Instant::now();
        push(&mut s, Direction::ToDaemon, 1500, true, now);
        push(&mut s, Direction::ToDaemon, 1500, false, now);
        push(&mut s, Direction::ToDaemon, 576, true, now);
        assert_eq!(s.due(now).len(), 2);
    }

    #[test]
    fn duplication_and_rate_cap() {
        let mut s = sched_with(Impairment {
            duplicate: 1.0,
            ..Impairment::default()
        });
        let now = Instant::now();
        push(&mut s, Direction::ToCamera, 60, true, now);
        assert_eq!(s.due(now).len(), 2);
        // 1000 bytes at 80 kbit/s: 100 ms each; the sixth would wait 500 ms: dropped.
        let mut s = sched_with(Impairment {
            rate_bps: Some(80_000),
            ..Impairment::default()
        });
        for _ in 0..8 {
            push(&mut s, Direction::ToCamera, 1000, true, now);
        }
        assert_eq!(s.due(now + Duration::from_millis(99)).len(), 0);
        assert_eq!(s.due(now + Duration::from_secs(2)).len(), 6);
    }

    #[test]
    fn flap_alternates_down_and_up() {
        let imp = Impairment {
            flap: Some((Duration::from_secs(1), Duration::from_secs(2))),
            ..Impairment::default()
        };
        let t0 = Instant::now();
        assert!(is_down(&imp, t0, t0));
        assert!(!is_down(&imp, t0, t0 + Duration::from_millis(1500)));
        assert!(is_down(&imp, t0, t0 + Duration::from_millis(3500)));
    }

    #[test]
    fn reordered_packets_are_overtaken() {
        let mut s = sched_with(Impairment {
            reorder: 1.0,
            reorder_gap: Duration::from_millis(5),
            ..Impairment::default()
        });
        let now = Instant::now();
        push(&mut s, Direction::ToCamera, 60, true, now);
        s.table
            .lock()
            .unwrap()
            .per_camera
            .insert(Ipv4Addr::from(CAM), (Impairment::default(), now));
        push(&mut s, Direction::ToCamera, 61, true, now);
        let out = s.due(now + Duration::from_millis(10));
        assert_eq!(out.iter().map(|p| p.1.len()).collect::<Vec<_>>(), [61, 60]);
    }
}
