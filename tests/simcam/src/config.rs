//! Fleet configuration.

use std::net::Ipv4Addr;
use std::time::Duration;

/// Who a camera says it is (`/ISAPI/System/deviceInfo`, and via the SDK `sSerialNumber`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `deviceName`.
    pub name: String,
    /// `model`, e.g. `DS-2CD2143G2-I`.
    pub model: String,
    /// `serialNumber` (the SDK copies it into `sSerialNumber[48]`).
    pub serial: String,
    /// `macAddress`, `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// `firmwareVersion`, e.g. `V5.7.3`.
    pub firmware: String,
    /// `firmwareReleasedDate`, e.g. `build 220112`.
    pub firmware_date: String,
}

impl Identity {
    /// The default identity of camera `index`: a unique serial and MAC per index.
    pub fn for_index(index: usize) -> Identity {
        let model = "DS-2CD2143G2-I".to_owned();
        let i = index as u32;
        Identity {
            name: format!("simcam-{index}"),
            serial: format!("{model}20240101AAWRS{index:08}"),
            mac: format!(
                "44:19:b6:{:02x}:{:02x}:{:02x}",
                (i >> 16) & 0xff,
                (i >> 8) & 0xff,
                i & 0xff
            ),
            model,
            firmware: "V5.7.3".to_owned(),
            firmware_date: "build 220112".to_owned(),
        }
    }
}

/// Everything [`crate::Fleet::start`] needs. Build it with struct-update syntax:
/// `FleetConfig { cameras: 4, ..FleetConfig::default() }`.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// Number of cameras.
    pub cameras: usize,
    /// Camera `i` listens on `bind_ip:(base_port + i)`. `0` = ephemeral ports picked by
    /// the kernel (for tests running in parallel); a camera keeps its port across power
    /// cycles either way.
    pub base_port: u16,
    /// Address to listen on (default 127.0.0.1).
    pub bind_ip: Ipv4Addr,
    /// Per-camera addresses: camera `i` listens on `bind_ips[i]` when there is one, else
    /// on `bind_ip` (a network fault lab gives every camera an address of its own).
    pub bind_ips: Vec<Ipv4Addr>,
    /// The one user every camera knows.
    pub user: String,
    /// Initial password of every camera (change one with [`crate::Camera::set_password`]).
    pub password: String,
    /// `iterations` advertised in the login capabilities (SHA-256 rounds, at least 2).
    pub iterations: u32,
    /// Wrong passwords (per client IP) before the camera locks that IP; 0 = never lock.
    pub lockout_threshold: u32,
    /// How long a lock lasts; any login attempt during the lock restarts it.
    pub lock_duration: Duration,
    /// Maximum live sessions per camera; `None` = unlimited.
    pub session_limit: Option<usize>,
    /// Sessions with no request for this long are forgotten; `None` = never. Must exceed the
    /// SDK's heartbeat period (120 s by default) or live SDK sessions get dropped.
    pub session_idle_timeout: Option<Duration>,
    /// Per-camera identities; cameras beyond the vector's length use
    /// [`Identity::for_index`].
    pub identities: Vec<Identity>,
    /// Ring-buffer capacity of the event log (events, not bytes; about 150 bytes each).
    pub event_capacity: usize,
    /// Executor threads serving all cameras.
    pub threads: usize,
    /// `listen(2)` backlog of each camera.
    pub backlog: i32,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            cameras: 1,
            base_port: 0,
            bind_ip: Ipv4Addr::LOCALHOST,
            bind_ips: Vec::new(),
            user: "admin".to_owned(),
            password: "hik12345".to_owned(),
            iterations: 100,
            lockout_threshold: 7,
            lock_duration: Duration::from_secs(1800),
            session_limit: None,
            session_idle_timeout: None,
            identities: Vec::new(),
            event_capacity: 65_536,
            threads: 1,
            backlog: 1024,
        }
    }
}
