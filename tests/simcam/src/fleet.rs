//! The fleet: N cameras on one executor with its own threads.

use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use smol::Executor;
use smol::channel::Sender;

use crate::camera::{CamShared, Camera, CameraStats, Common};
use crate::config::{FleetConfig, Identity};
use crate::events::{Event, EventLog};

/// A running fleet of simulated cameras. Dropping it powers every camera off (resetting
/// open connections) and joins its threads.
///
/// ```
/// let fleet = simcam::Fleet::start(simcam::FleetConfig {
///     cameras: 2,
///     ..Default::default()
/// })
/// .unwrap();
/// let addr = fleet.addr(1);
/// assert_eq!(addr.ip().to_string(), "127.0.0.1");
/// ```
#[derive(Debug)]
pub struct Fleet {
    cameras: Vec<Arc<CamShared>>,
    log: Arc<EventLog>,
    /// Dropped on shutdown: the executor threads return.
    stop: Option<Sender<()>>,
    threads: Vec<JoinHandle<()>>,
    config: FleetConfig,
}

impl Fleet {
    /// Reserves every camera's port, powers all cameras on and returns once they listen.
    ///
    /// # Errors
    /// A port that cannot be bound (with a fixed `base_port`: already in use, or
    /// `base_port + cameras` beyond 65535), or thread creation failure.
    pub fn start(config: FleetConfig) -> std::io::Result<Fleet> {
        let common = Arc::new(Common {
            user: config.user.clone(),
            iterations: config.iterations.max(2),
            lockout_threshold: config.lockout_threshold,
            lock_duration: config.lock_duration,
            session_idle_timeout: config.session_idle_timeout,
            backlog: config.backlog,
            shut_down: std::sync::atomic::AtomicBool::new(false),
            exchanges_now: std::sync::atomic::AtomicUsize::new(0),
            exchanges_hwm: std::sync::atomic::AtomicUsize::new(0),
        });
        let log = Arc::new(EventLog::new(config.event_capacity));
        let ex = Arc::new(Executor::new());
        let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
        let mut threads = Vec::new();
        for t in 0..config.threads.max(1) {
            let ex = ex.clone();
            let rx = stop_rx.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("simcam-{t}"))
                    .spawn(move || {
                        smol::block_on(ex.run(async move { while rx.recv().await.is_ok() {} }))
                    })?,
            );
        }
        let mut fleet = Fleet {
            cameras: Vec::with_capacity(config.cameras),
            log: log.clone(),
            stop: Some(stop_tx),
            threads,
            config: config.clone(),
        };
        for i in 0..config.cameras {
            let port = if config.base_port == 0 {
                0
            } else {
                u16::try_from(usize::from(config.base_port) + i).map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!("base_port {} + camera {i} exceeds 65535", config.base_port),
                    )
                })?
            };
            let ip = config.bind_ips.get(i).copied().unwrap_or(config.bind_ip);
            let want = SocketAddr::V4(SocketAddrV4::new(ip, port));
            let identity = config
                .identities
                .get(i)
                .cloned()
                .unwrap_or_else(|| Identity::for_index(i));
            let cam = Arc::new(
                CamShared::new(
                    i,
                    want,
                    identity,
                    config.password.clone(),
                    common.clone(),
                    log.clone(),
                    ex.clone(),
                )
                .map_err(|e| std::io::Error::new(e.kind(), format!("camera {i} on {want}: {e}")))?,
            );
            cam.lock().session_limit = config.session_limit;
            crate::rtsp::spawn(&cam);
            cam.power_on(Duration::ZERO)
                .map_err(|e| std::io::Error::new(e.kind(), format!("camera {i} listen: {e}")))?;
            fleet.cameras.push(cam);
        }
        Ok(fleet)
    }

    /// Number of cameras.
    pub fn len(&self) -> usize {
        self.cameras.len()
    }

    /// Whether the fleet has no cameras.
    pub fn is_empty(&self) -> bool {
        self.cameras.is_empty()
    }

    /// Address of camera `i`.
    ///
    /// # Panics
    /// If `i >= len()` (a bug in the calling test).
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.cameras[i].addr
    }

    /// Every camera's address, in index order.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.cameras.iter().map(|c| c.addr).collect()
    }

    /// Handle to camera `i`.
    ///
    /// # Panics
    /// If `i >= len()` (a bug in the calling test).
    pub fn camera(&self, i: usize) -> Camera {
        Camera {
            cam: self.cameras[i].clone(),
        }
    }

    /// Handle to camera `i`, or `None` if out of range.
    pub fn get(&self, i: usize) -> Option<Camera> {
        self.cameras.get(i).map(|c| Camera { cam: c.clone() })
    }

    /// The configuration the fleet was started with.
    pub fn config(&self) -> &FleetConfig {
        &self.config
    }

    /// Counters of every camera summed (high-water marks are summed too; see
    /// [`Camera::stats`] for per-camera values).
    pub fn total_stats(&self) -> CameraStats {
        let mut t = CameraStats::default();
        for c in &self.cameras {
            let s = Camera { cam: c.clone() }.stats();
            t.logins_ok += s.logins_ok;
            t.logins_bad += s.logins_bad;
            t.logins_locked += s.logins_locked;
            t.logins_rejected_limit += s.logins_rejected_limit;
            t.logins_stale += s.logins_stale;
            t.heartbeats_ok += s.heartbeats_ok;
            t.heartbeats_rejected += s.heartbeats_rejected;
            t.logouts += s.logouts;
            t.sessions += s.sessions;
            t.sessions_hwm += s.sessions_hwm;
            t.connections += s.connections;
            t.connections_hwm += s.connections_hwm;
            t.accepted += s.accepted;
            t.requests += s.requests;
            t.exchanges_in_flight += s.exchanges_in_flight;
            t.exchanges_hwm += s.exchanges_hwm;
            t.boot_id += s.boot_id;
        }
        t
    }

    /// Login exchanges in flight across the whole fleet right now (capabilities answered,
    /// `sessionLogin` not yet received), summed over every camera at one instant.
    pub fn exchanges_in_flight(&self) -> usize {
        self.common().map_or(0, |c| {
            c.exchanges_now.load(std::sync::atomic::Ordering::SeqCst)
        })
    }

    /// The most login exchanges that were in flight across the fleet at the same time
    /// since the start (or the last [`Fleet::reset_exchanges_hwm`]): how many logins a
    /// client ran concurrently, as the cameras saw it. Unlike the summed per-camera
    /// high-water marks of [`Fleet::total_stats`], this is one fleet-wide instant.
    pub fn exchanges_hwm(&self) -> usize {
        self.common().map_or(0, |c| {
            c.exchanges_hwm.load(std::sync::atomic::Ordering::SeqCst)
        })
    }

    /// Restarts the fleet-wide high-water mark from the exchanges in flight now.
    pub fn reset_exchanges_hwm(&self) {
        if let Some(c) = self.common() {
            let now = c.exchanges_now.load(std::sync::atomic::Ordering::SeqCst);
            c.exchanges_hwm
                .store(now, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn common(&self) -> Option<&crate::camera::Common> {
        self.cameras.first().map(|c| &*c.common)
    }

    /// Sequence number the next event will get: a cursor for [`Fleet::events_since`] and
    /// [`Fleet::wait_event`] that ignores everything logged before.
    pub fn next_seq(&self) -> u64 {
        self.log.next_seq()
    }

    /// Events with `seq >= from` still in the ring buffer, oldest first.
    pub fn events_since(&self, from: u64) -> Vec<Event> {
        self.log.since(from)
    }

    /// Events discarded because the ring buffer was full.
    pub fn events_dropped(&self) -> u64 {
        self.log.dropped()
    }

    /// Blocks until an event with `seq >= from` satisfies `pred`, or `timeout` passes.
    pub fn wait_event(
        &self,
        from: u64,
        timeout: Duration,
        pred: impl FnMut(&Event) -> bool,
    ) -> Option<Event> {
        self.log.wait_for(from, timeout, pred)
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if let Some(c) = self.cameras.first() {
            c.common
                .shut_down
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
        for c in &self.cameras {
            c.power_off();
        }
        self.stop = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
