//! What a reload (SIGHUP) changed: pure functions over two [`Config`]s.

use super::{CameraConfig, Config, Settings};

/// Whether a camera's credentials changed: user name or password (the password is
/// compared by content, so a rewritten `password_file` counts even when its path did not
/// change). A camera parked on an authentication failure may retry only when this is
/// true.
pub fn credentials_changed(old: &CameraConfig, new: &CameraConfig) -> bool {
    old.user != new.user || old.password != new.password
}

/// How one camera that exists in both configurations changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CameraChange {
    /// The camera id.
    pub id: String,
    /// User name or password changed ([`credentials_changed`]).
    pub credentials: bool,
    /// Host, port or login mode changed: the session must be re-established.
    pub endpoint: bool,
    /// The watched stream changed (added, removed, channel or type).
    pub stream: bool,
    /// The backend changed (`sdk` ↔ `isapi`): the camera is removed and added afresh.
    pub backend: bool,
}

/// The difference between two configurations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigDiff {
    /// Ids only in the new configuration, in its order.
    pub added: Vec<String>,
    /// Ids only in the old configuration, in its order.
    pub removed: Vec<String>,
    /// Cameras present in both whose settings changed, in the new order.
    pub changed: Vec<CameraChange>,
    /// Global settings that changed, as field names (`supervisor.backoff_cap`,
    /// `sdk.dir`, ...), in a fixed order. A running daemon applies `log.*` at once; the
    /// others take effect at the next start (the supervisor's settings are fixed for its
    /// life, so that the backoff of every camera stays consistent).
    pub global: Vec<&'static str>,
}

/// Global settings a running daemon cannot apply without a restart: they own open
/// resources (the loaded SDK, the state file, sockets, the thread pool, the hardware
/// watchdog).
pub(super) const RESTART_REQUIRED: &[&str] = &[
    "sdk.dir",
    "sdk.threads",
    "state.path",
    "status.socket",
    "status.metrics",
    "watchdog.device",
];

/// Compares one supervisor setting of two configurations.
type FieldChanged = fn(&Settings, &Settings) -> bool;

/// Every [`Settings`] field with its config name, in `[supervisor]` order.
const SUPERVISOR_FIELDS: &[(&str, FieldChanged)] = &[
    ("supervisor.strategy", |a, b| a.strategy != b.strategy),
    ("supervisor.heartbeat_interval", |a, b| {
        a.heartbeat_interval != b.heartbeat_interval
    }),
    ("supervisor.heartbeat_misses", |a, b| {
        a.heartbeat_misses != b.heartbeat_misses
    }),
    ("supervisor.max_concurrent_logins", |a, b| {
        a.max_concurrent_logins != b.max_concurrent_logins
    }),
    ("supervisor.workers", |a, b| a.workers != b.workers),
    ("supervisor.backoff_initial", |a, b| {
        a.backoff_initial != b.backoff_initial
    }),
    ("supervisor.backoff_multiplier", |a, b| {
        a.backoff_multiplier != b.backoff_multiplier
    }),
    ("supervisor.backoff_cap", |a, b| {
        a.backoff_cap != b.backoff_cap
    }),
    ("supervisor.slow_backoff_floor", |a, b| {
        a.slow_backoff_floor != b.slow_backoff_floor
    }),
    ("supervisor.fatal_retry", |a, b| {
        a.fatal_retry != b.fatal_retry
    }),
    ("supervisor.stable_period", |a, b| {
        a.stable_period != b.stable_period
    }),
    ("supervisor.start_spread", |a, b| {
        a.start_spread != b.start_spread
    }),
    ("supervisor.lock_margin", |a, b| {
        a.lock_margin != b.lock_margin
    }),
    ("supervisor.lock_unknown", |a, b| {
        a.lock_unknown != b.lock_unknown
    }),
    ("supervisor.probe_interval", |a, b| {
        a.probe_interval != b.probe_interval
    }),
    ("supervisor.probe_rate", |a, b| a.probe_rate != b.probe_rate),
    ("supervisor.blind_login_interval", |a, b| {
        a.blind_login_interval != b.blind_login_interval
    }),
    ("supervisor.reopen_login_gap", |a, b| {
        a.reopen_login_gap != b.reopen_login_gap
    }),
    ("supervisor.stream_gap", |a, b| a.stream_gap != b.stream_gap),
    ("supervisor.resource_throttle", |a, b| {
        a.resource_throttle != b.resource_throttle
    }),
    ("supervisor.login_deadline", |a, b| {
        a.login_deadline != b.login_deadline
    }),
    ("supervisor.heartbeat_deadline", |a, b| {
        a.heartbeat_deadline != b.heartbeat_deadline
    }),
    ("supervisor.logout_deadline", |a, b| {
        a.logout_deadline != b.logout_deadline
    }),
    ("supervisor.stream_deadline", |a, b| {
        a.stream_deadline != b.stream_deadline
    }),
    ("supervisor.probe_deadline", |a, b| {
        a.probe_deadline != b.probe_deadline
    }),
    ("supervisor.link_watch_timeout", |a, b| {
        a.link_watch_timeout != b.link_watch_timeout
    }),
];

impl ConfigDiff {
    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.global.is_empty()
    }

    /// The changed global settings that need a restart ([`RESTART_REQUIRED`]).
    pub fn restart_required(&self) -> Vec<&'static str> {
        self.global
            .iter()
            .copied()
            .filter(|g| RESTART_REQUIRED.contains(g))
            .collect()
    }
}

/// Compares two configurations for a reload.
pub fn diff(old: &Config, new: &Config) -> ConfigDiff {
    let mut out = ConfigDiff::default();
    for n in &new.cameras {
        match old.camera(&n.id) {
            None => out.added.push(n.id.clone()),
            Some(o) => {
                let change = CameraChange {
                    id: n.id.clone(),
                    credentials: credentials_changed(o, n),
                    endpoint: o.host != n.host || o.port != n.port || o.login_mode != n.login_mode,
                    stream: o.stream != n.stream,
                    backend: o.backend != n.backend,
                };
                if change.credentials || change.endpoint || change.stream || change.backend {
                    out.changed.push(change);
                }
            }
        }
    }
    out.removed = old
        .cameras
        .iter()
        .filter(|o| new.camera(&o.id).is_none())
        .map(|o| o.id.clone())
        .collect();

    let (o, n) = (old, new);
    let (os, ns) = (&o.supervisor.settings, &n.supervisor.settings);
    let mut checks: Vec<(&'static str, bool)> = vec![
        ("board", o.board != n.board),
        ("sdk.dir", o.sdk.dir != n.sdk.dir),
        ("sdk.threads", o.sdk.threads != n.sdk.threads),
        ("state.path", o.state.path != n.state.path),
        (
            "state.flush_interval",
            o.state.flush_interval != n.state.flush_interval,
        ),
        ("status.socket", o.status.socket != n.status.socket),
        ("status.metrics", o.status.metrics != n.status.metrics),
    ];
    checks.extend(
        SUPERVISOR_FIELDS
            .iter()
            .map(|(name, changed)| (*name, changed(os, ns))),
    );
    checks.extend([
        (
            "supervisor.max_cameras",
            o.supervisor.max_cameras != n.supervisor.max_cameras,
        ),
        ("log.level", o.log.level != n.log.level),
        (
            "log.repeat_window",
            o.log.repeat_window != n.log.repeat_window,
        ),
        ("watchdog.device", o.watchdog.device != n.watchdog.device),
        (
            "watchdog.keepalive",
            o.watchdog.keepalive != n.watchdog.keepalive,
        ),
    ]);
    out.global = checks
        .iter()
        .filter(|(_, changed)| *changed)
        .map(|(name, _)| *name)
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::config::{
        BackendKind, LogConfig, LoginMode, Password, PasswordSource, SdkConfig, StateConfig,
        StatusConfig, StreamConfig, StreamType, SupervisorConfig, WatchdogConfig,
    };

    fn cam(id: &str, pw: &str) -> CameraConfig {
        CameraConfig {
            id: id.into(),
            host: "192.0.2.10".into(),
            port: 8000,
            user: "admin".into(),
            password: Password::new(pw.into()),
            password_source: PasswordSource::Inline,
            backend: BackendKind::Sdk,
            login_mode: LoginMode::Private,
            stream: None,
        }
    }

    fn config(cameras: Vec<CameraConfig>) -> Config {
        Config {
            path: PathBuf::from("/etc/hikwatch.toml"),
            board: None,
            backend: BackendKind::Sdk,
            sdk: SdkConfig::default(),
            state: StateConfig::default(),
            status: StatusConfig::default(),
            supervisor: SupervisorConfig::default(),
            log: LogConfig::default(),
            watchdog: WatchdogConfig::default(),
            cameras,
        }
    }

    #[test]
    fn identical_configs_have_an_empty_diff() {
        let a = config(vec![cam("a", "x"), cam("b", "y")]);
        let d = diff(&a, &a.clone());
        assert!(d.is_empty(), "{d:?}");
    }

    #[test]
    fn added_removed_changed() {
        let old = config(vec![cam("a", "x"), cam("b", "y"), cam("c", "z")]);
        let mut b2 = cam("b", "y2");
        b2.host = "192.0.2.11".into();
        let mut c2 = cam("c", "z");
        c2.stream = Some(StreamConfig {
            channel: 1,
            stream_type: StreamType::Sub,
            rtsp_port: None,
        });
        let new = config(vec![c2, b2, cam("d", "w")]);
        let d = diff(&old, &new);
        assert_eq!(d.added, vec!["d"]);
        assert_eq!(d.removed, vec!["a"]);
        assert_eq!(
            d.changed,
            vec![
                CameraChange {
                    id: "c".into(),
                    credentials: false,
                    endpoint: false,
                    stream: true,
                    backend: false,
                },
                CameraChange {
                    id: "b".into(),
                    credentials: true,
                    endpoint: true,
                    stream: false,
                    backend: false,
                },
            ]
        );
        assert!(d.global.is_empty());
    }

    #[test]
    fn a_backend_change_is_a_camera_change_not_a_global_one() {
        let old = config(vec![cam("a", "x"), cam("b", "y")]);
        let mut a2 = cam("a", "x");
        a2.backend = BackendKind::Isapi;
        let mut new = config(vec![a2, cam("b", "y")]);
        new.backend = BackendKind::Isapi; // the file's default; "b" kept its own
        let d = diff(&old, &new);
        assert_eq!(
            d.changed,
            vec![CameraChange {
                id: "a".into(),
                credentials: false,
                endpoint: false,
                stream: false,
                backend: true,
            }]
        );
        assert!(d.global.is_empty(), "{:?}", d.global);
    }

    #[test]
    fn credentials_change_on_user_or_password_only() {
        let a = cam("a", "x");
        let mut b = a.clone();
        assert!(!credentials_changed(&a, &b));
        b.port = 8001;
        b.login_mode = LoginMode::Isapi;
        assert!(!credentials_changed(&a, &b));
        b.password = Password::new("x2".into());
        assert!(credentials_changed(&a, &b));
        let mut c = a.clone();
        c.user = "operator".into();
        assert!(credentials_changed(&a, &c));
        // Same password from another source is not a change.
        let mut d = a.clone();
        d.password_source = PasswordSource::File("/etc/hikwatch/a.pass".into());
        assert!(!credentials_changed(&a, &d));
    }

    #[test]
    fn global_changes_and_restart_set() {
        let old = config(vec![]);
        let mut new = old.clone();
        new.supervisor.settings.backoff_cap = Duration::from_secs(300);
        new.log.level = log::LevelFilter::Debug;
        new.sdk.dir = PathBuf::from("/opt/other");
        let d = diff(&old, &new);
        assert_eq!(
            d.global,
            vec!["sdk.dir", "supervisor.backoff_cap", "log.level"]
        );
        assert_eq!(d.restart_required(), vec!["sdk.dir"]);
        assert!(!d.is_empty());
    }
}
