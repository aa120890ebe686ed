//! The scenarios: fleet sizes, phase lengths and the seeded fault schedules. Pure data, so
//! a schedule is the same on every machine and every strategy of a comparison sees the
//! same faults.

use std::time::Duration;

/// A benchmark scenario (`--scenario NAME`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// 64 cameras, random power-offs of 1–60 s for several minutes.
    Flap,
    /// 256 cameras off together for 2 min, back staggered over 5 s.
    Storm,
    /// A quarter of 64 cameras frozen (no RST, nothing answers) for 75 s, then thawed.
    Silent,
    /// 4 cameras with a wrong password among 60 healthy ones.
    Badpass,
    /// 1,000 cameras online: cost only.
    Steady,
    /// 16 cameras off for an hour (`--outage-mins`): full logins per outage-hour. Not part
    /// of the default set (it takes an hour, at almost no CPU).
    Outage,
    /// 64 cameras each watching its sub stream; a quarter of the streams stall (session
    /// and RTSP connection alive, no data) for 15 s. Not part of the default set.
    Stream,
}

impl Scenario {
    /// What `scripts/bench.sh` runs without `--scenario`.
    pub const DEFAULT: [Scenario; 5] = [
        Scenario::Flap,
        Scenario::Storm,
        Scenario::Silent,
        Scenario::Badpass,
        Scenario::Steady,
    ];

    /// Every scenario.
    pub const ALL: [Scenario; 7] = [
        Scenario::Flap,
        Scenario::Storm,
        Scenario::Silent,
        Scenario::Badpass,
        Scenario::Steady,
        Scenario::Outage,
        Scenario::Stream,
    ];

    /// The command-line spelling.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Flap => "flap",
            Scenario::Storm => "storm",
            Scenario::Silent => "silent",
            Scenario::Badpass => "badpass",
            Scenario::Steady => "steady",
            Scenario::Outage => "outage",
            Scenario::Stream => "stream",
        }
    }

    /// Parses the command-line spelling.
    pub fn from_name(s: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|x| x.name() == s)
    }
}

/// How a fault silences a camera.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// `power_off` (connections reset, connects refused, sessions forgotten), then
    /// `power_on` at `until`.
    PowerOff,
    /// `freeze` (no RST: connections stay open, nothing answers), then `thaw` at `until`.
    Freeze,
    /// `halt_stream` (the session and the RTSP connection live, no pictures), then
    /// `resume_stream` at `until`.
    Stall,
}

/// One scheduled fault, relative to the start of the fault phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Camera index.
    pub cam: usize,
    /// What happens to it.
    pub kind: FaultKind,
    /// When it starts.
    pub at: Duration,
    /// When the camera is back (power on, thaw).
    pub until: Duration,
}

/// Everything one run of a scenario needs besides the strategy.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The scenario.
    pub scenario: Scenario,
    /// Cameras in the fleet.
    pub cameras: usize,
    /// Cameras configured with a wrong password.
    pub bad_password: Vec<usize>,
    /// Every camera watches its sub stream (`[camera.stream] type = "sub"`).
    pub streams: bool,
    /// The faults, sorted by start.
    pub faults: Vec<Fault>,
    /// Length of the fault phase (after the warm-up).
    pub phase: Duration,
    /// After the phase, how long to wait at most for every camera to be online again.
    pub settle: Duration,
    /// Longest warm-up (every healthy camera online).
    pub warmup: Duration,
    /// How often the daemon's status is read during the phase (the storm's timeline needs
    /// it often; the steady scenario reads it rarely to keep the CPU numbers clean).
    pub status_every: Duration,
    /// Start offset between the strategies running side by side, so their bursts (start,
    /// power-on) do not meet on the 2 cores.
    pub stagger: Duration,
}

/// Run length: the real benchmark, or a tiny version for the smoke test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// The numbers for `bench/results/`.
    Full,
    /// A few cameras, seconds: proves the pipeline (smoke test, `--quick`).
    Quick,
}

/// A small deterministic PRNG (SplitMix64): the schedule must not depend on a crate's
/// version.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi` milliseconds.
    pub fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        let span = hi.saturating_sub(lo) + 1;
        Duration::from_millis(lo + self.next_u64() % span)
    }

    /// Shuffles `v` (Fisher–Yates).
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

const S: u64 = 1000;

impl Plan {
    /// The plan of `scenario` at `scale`; `seed` fixes the fault schedule, `outage` the
    /// length of the `outage` scenario.
    pub fn new(scenario: Scenario, scale: Scale, seed: u64, outage: Duration) -> Plan {
        let quick = scale == Scale::Quick;
        let mut rng = Rng::new(
            seed ^ scenario
                .name()
                .bytes()
                .fold(0, |h, b| h * 31 + u64::from(b)),
        );
        let secs = Duration::from_secs;
        let mut p = Plan {
            scenario,
            cameras: 0,
            bad_password: Vec::new(),
            streams: false,
            faults: Vec::new(),
            phase: Duration::ZERO,
            settle: secs(90),
            warmup: secs(90),
            status_every: secs(1),
            stagger: secs(3),
        };
        match scenario {
            Scenario::Flap => {
                // Each camera: a first outage somewhere in the first 40 s, then outages of
                // 1–60 s separated by 15–60 s up, inside the phase.
                let (cams, phase, max_off, gap) = if quick {
                    (4, 20 * S, 4 * S, (3 * S, 6 * S))
                } else {
                    (64, 240 * S, 60 * S, (15 * S, 60 * S))
                };
                p.cameras = cams;
                p.phase = Duration::from_millis(phase);
                for cam in 0..cams {
                    let mut t = rng.ms(0, gap.1 * 2 / 3).as_millis() as u64;
                    loop {
                        let off = rng.ms(S, max_off).as_millis() as u64;
                        if t + off > phase {
                            break;
                        }
                        p.faults.push(Fault {
                            cam,
                            kind: FaultKind::PowerOff,
                            at: Duration::from_millis(t),
                            until: Duration::from_millis(t + off),
                        });
                        t += off + rng.ms(gap.0, gap.1).as_millis() as u64;
                    }
                }
                p.settle = secs(if quick { 40 } else { 90 });
            }
            Scenario::Storm => {
                // All off at once; back one by one in a shuffled order over 5 s.
                let (cams, off, spread) = if quick {
                    (8, 10 * S, 2 * S)
                } else {
                    (256, 120 * S, 5 * S)
                };
                p.cameras = cams;
                let mut order: Vec<usize> = (0..cams).collect();
                rng.shuffle(&mut order);
                for (k, &cam) in order.iter().enumerate() {
                    p.faults.push(Fault {
                        cam,
                        kind: FaultKind::PowerOff,
                        at: Duration::ZERO,
                        until: Duration::from_millis(off + spread * k as u64 / cams as u64),
                    });
                }
                p.phase = Duration::from_millis(off + spread);
                // Backoff ceilings reach 64–128 s after a 2-minute outage.
                p.settle = secs(if quick { 40 } else { 180 });
                p.status_every = Duration::from_millis(500);
                p.stagger = secs(if quick { 1 } else { 20 });
            }
            Scenario::Silent => {
                // A quarter of the fleet frozen at once (a switch losing a port group);
                // long enough for the SDK's own 30 s heartbeat + 5 s receive timeout.
                let (cams, frozen, hold) = if quick {
                    (4, 2, 20 * S)
                } else {
                    (64, 16, 75 * S)
                };
                p.cameras = cams;
                let mut order: Vec<usize> = (0..cams).collect();
                rng.shuffle(&mut order);
                for &cam in &order[..frozen] {
                    p.faults.push(Fault {
                        cam,
                        kind: FaultKind::Freeze,
                        at: Duration::ZERO,
                        until: Duration::from_millis(hold),
                    });
                }
                p.phase = Duration::from_millis(hold);
                p.settle = secs(if quick { 40 } else { 90 });
            }
            Scenario::Badpass => {
                let (cams, bad, phase) = if quick { (4, 1, 30) } else { (64, 4, 150) };
                p.cameras = cams;
                let mut order: Vec<usize> = (0..cams).collect();
                rng.shuffle(&mut order);
                p.bad_password = order[..bad].to_vec();
                p.bad_password.sort_unstable();
                p.phase = secs(phase);
                p.settle = Duration::ZERO;
            }
            Scenario::Steady => {
                p.cameras = if quick { 20 } else { 1000 };
                p.phase = secs(if quick { 10 } else { 60 });
                p.settle = Duration::ZERO;
                p.warmup = secs(if quick { 60 } else { 180 });
                p.status_every = secs(20);
                p.stagger = secs(if quick { 1 } else { 10 });
            }
            Scenario::Outage => {
                let (cams, off) = if quick { (4, secs(20)) } else { (16, outage) };
                p.cameras = cams;
                for cam in 0..cams {
                    p.faults.push(Fault {
                        cam,
                        kind: FaultKind::PowerOff,
                        at: Duration::ZERO,
                        until: off,
                    });
                }
                p.phase = off;
                p.settle = secs(if quick { 40 } else { 120 });
                p.status_every = secs(5);
            }
            Scenario::Stream => {
                // A quarter of the cameras, one stall each, starting anywhere in the first
                // 60 s (3 s in the quick run); 15 s is longer than the default stream_gap
                // (10 s) and shorter than two of them, so each stall deserves one verdict.
                let (cams, stalled, spread, hold, phase) = if quick {
                    (4, 2, 3 * S, 12 * S, 25 * S)
                } else {
                    (64, 16, 60 * S, 15 * S, 120 * S)
                };
                p.cameras = cams;
                p.streams = true;
                let mut order: Vec<usize> = (0..cams).collect();
                rng.shuffle(&mut order);
                for &cam in &order[..stalled] {
                    let at = rng.ms(0, spread);
                    p.faults.push(Fault {
                        cam,
                        kind: FaultKind::Stall,
                        at,
                        until: at + Duration::from_millis(hold),
                    });
                }
                p.phase = Duration::from_millis(phase);
                p.settle = secs(if quick { 40 } else { 60 });
                p.stagger = secs(if quick { 1 } else { 5 });
            }
        }
        p.faults.sort_by_key(|f| (f.at, f.cam));
        p
    }

    /// Cameras expected online at the end (all but the wrong passwords).
    pub fn healthy(&self) -> Vec<usize> {
        (0..self.cameras)
            .filter(|c| !self.bad_password.contains(c))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_seeded_and_inside_the_phase() {
        let a = Plan::new(Scenario::Flap, Scale::Full, 7, Duration::ZERO);
        let b = Plan::new(Scenario::Flap, Scale::Full, 7, Duration::ZERO);
        let c = Plan::new(Scenario::Flap, Scale::Full, 8, Duration::ZERO);
        assert_eq!(a, b);
        assert_ne!(a.faults, c.faults);
        assert!(a.faults.len() > 150, "{} outages", a.faults.len());
        for f in &a.faults {
            let off = f.until - f.at;
            assert!(off >= Duration::from_secs(1) && off <= Duration::from_secs(60));
            assert!(f.until <= a.phase);
        }
        // A camera's outages never overlap and are at least 15 s apart.
        for cam in 0..a.cameras {
            let mine: Vec<_> = a.faults.iter().filter(|f| f.cam == cam).collect();
            for w in mine.windows(2) {
                assert!(w[1].at >= w[0].until + Duration::from_secs(15));
            }
        }
    }

    #[test]
    fn storm_is_all_at_once_and_back_within_five_seconds() {
        let p = Plan::new(Scenario::Storm, Scale::Full, 1, Duration::ZERO);
        assert_eq!(p.faults.len(), 256);
        assert!(p.faults.iter().all(|f| f.at == Duration::ZERO));
        let first = p.faults.iter().map(|f| f.until).min().unwrap();
        let last = p.faults.iter().map(|f| f.until).max().unwrap();
        assert_eq!(first, Duration::from_secs(120));
        assert!(last - first < Duration::from_secs(5));
        let mut cams: Vec<usize> = p.faults.iter().map(|f| f.cam).collect();
        cams.sort_unstable();
        cams.dedup();
        assert_eq!(cams.len(), 256);
    }

    #[test]
    fn other_scenarios() {
        let s = Plan::new(Scenario::Silent, Scale::Full, 1, Duration::ZERO);
        assert_eq!(s.faults.len(), 16);
        assert!(s.faults.iter().all(|f| f.kind == FaultKind::Freeze));
        let b = Plan::new(Scenario::Badpass, Scale::Full, 1, Duration::ZERO);
        assert_eq!(b.bad_password.len(), 4);
        assert_eq!(b.healthy().len(), 60);
        assert_eq!(
            Plan::new(Scenario::Steady, Scale::Full, 1, Duration::ZERO).cameras,
            1000
        );
        let st = Plan::new(Scenario::Stream, Scale::Full, 1, Duration::ZERO);
        assert!(st.streams && st.cameras == 64 && st.faults.len() == 16);
        assert!(st.faults.iter().all(|f| f.kind == FaultKind::Stall
            && f.until - f.at == Duration::from_secs(15)
            && f.until <= st.phase));
        let o = Plan::new(Scenario::Outage, Scale::Full, 1, Duration::from_secs(3720));
        assert_eq!(o.phase, Duration::from_secs(3720));
        for s in Scenario::ALL {
            assert_eq!(Scenario::from_name(s.name()), Some(s));
            assert!(Plan::new(s, Scale::Quick, 1, Duration::ZERO).cameras <= 20);
        }
    }
}
