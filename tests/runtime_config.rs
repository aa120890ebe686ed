//! `[supervisor]` is the supervisor's `Settings`, key by key: one source of truth.

mod daemon_support;

use std::time::Duration;

use daemon_support::TempDir;
use hikwatch::config::{Config, LoadOptions, diff};
use hikwatch::supervisor::{Settings, Strategy};

fn load(dir: &TempDir, supervisor: &str) -> Config {
    dir.fake_sdk();
    let text = format!(
        "[sdk]\ndir = \"sdk\"\n{supervisor}\n[[camera]]\nid = \"a\"\nhost = \"192.0.2.1\"\nuser = \"u\"\npassword = \"p\"\n"
    );
    let path = dir.write("hikwatch.toml", &text);
    Config::load_with(&path, &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{e}"))
        .config
}

#[test]
fn an_empty_supervisor_table_is_exactly_the_supervisor_defaults() {
    let dir = TempDir::new("rt-cfg-empty");
    assert_eq!(
        load(&dir, "[supervisor]\n").supervisor.settings(),
        Settings::default()
    );
    assert_eq!(load(&dir, "").supervisor.settings(), Settings::default());
    // The designed policy, as the supervisor documents it (not a copy of the config's).
    let d = Settings::default();
    assert_eq!(d.max_concurrent_logins, 8);
    assert_eq!(d.backoff_cap, Duration::from_secs(60));
    assert_eq!(d.stable_period, Duration::from_secs(60));
    assert_eq!(d.probe_interval, Duration::from_secs(1));
}

#[test]
fn every_setting_is_configurable_under_its_own_name() {
    let dir = TempDir::new("rt-cfg-all");
    let c = load(
        &dir,
        r#"[supervisor]
strategy = "queue"
heartbeat_interval = "2s"
heartbeat_misses = 4
max_concurrent_logins = 5
workers = 3
backoff_initial = "200ms"
backoff_multiplier = 1.5
backoff_cap = "90s"
slow_backoff_floor = "7s"
fatal_retry = "11m"
stable_period = "45s"
start_spread = "3s"
lock_margin = "13s"
lock_unknown = "41m"
probe_interval = "1500ms"
probe_rate = 17
blind_login_interval = "7m"
reopen_login_gap = "12s"
stream_gap = "6s"
resource_throttle = "33s"
login_deadline = "21s"
heartbeat_deadline = "2500ms"
logout_deadline = "4s"
stream_deadline = "8s"
probe_deadline = "700ms"
link_watch_timeout = "6s"
max_cameras = 9
"#,
    );
    let ms = Duration::from_millis;
    let secs = Duration::from_secs;
    // A struct literal without `..`: a new `Settings` field breaks this test until the
    // config learns it.
    let want = Settings {
        strategy: Strategy::Queue,
        heartbeat_interval: secs(2),
        heartbeat_misses: 4,
        max_concurrent_logins: 5,
        workers: Some(3),
        backoff_initial: ms(200),
        backoff_multiplier: 1.5,
        backoff_cap: secs(90),
        slow_backoff_floor: secs(7),
        fatal_retry: secs(660),
        stable_period: secs(45),
        start_spread: secs(3),
        lock_margin: secs(13),
        lock_unknown: secs(41 * 60),
        probe_interval: ms(1500),
        probe_rate: 17,
        blind_login_interval: secs(420),
        reopen_login_gap: secs(12),
        stream_gap: secs(6),
        resource_throttle: secs(33),
        login_deadline: secs(21),
        heartbeat_deadline: ms(2500),
        logout_deadline: secs(4),
        stream_deadline: secs(8),
        probe_deadline: ms(700),
        link_watch_timeout: secs(6),
    };
    assert_eq!(c.supervisor.settings(), want);
    assert_eq!(c.supervisor.max_cameras, 9);
    want.validate().expect("valid");

    // A reload names every changed knob.
    let d = diff(&load(&dir, ""), &c);
    for name in [
        "supervisor.strategy",
        "supervisor.workers",
        "supervisor.probe_rate",
        "supervisor.probe_deadline",
        "supervisor.link_watch_timeout",
        "supervisor.max_cameras",
    ] {
        assert!(
            d.global.contains(&name),
            "{name} missing from {:?}",
            d.global
        );
    }
    assert_eq!(d.global.len(), 27, "{:?}", d.global);
}

#[test]
fn the_supervisor_refuses_what_the_loader_refuses() {
    let dir = TempDir::new("rt-cfg-bad");
    dir.fake_sdk();
    let path = dir.write(
        "hikwatch.toml",
        "[sdk]\ndir = \"sdk\"\n[supervisor]\nstrategy = \"ticker\"\nprobe_rate = 0\n",
    );
    let err = Config::load_with(&path, &LoadOptions::default()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(
            ":4: supervisor.strategy: \"ticker\" is not one of poll | event | queue | hybrid"
        ),
        "{text}"
    );
    assert!(
        text.contains(":5: supervisor.probe_rate: 0 is out of range 1..=100000"),
        "{text}"
    );
}
