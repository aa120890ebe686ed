//! End to end: the ISAPI backend remembers the device session each login holds in the
//! state file and ends it after a restart, so a daemon killed with `kill -9` (a watchdog
//! abort, a power loss) never piles up sessions at the camera. simcam's sessions here
//! never expire on their own: every session left behind and not ended would still count.
//! No vendor SDK: runs on every target (armv7 and aarch64 under qemu too).
//!
//! `HIKWATCH_KILL_LOOPS` sets how many `kill -9` rounds (5 by default).

use std::path::Path;
use std::time::Duration;

use harness::{CameraSpec, Daemon, DaemonConfig, SpawnOptions, TempDir, events, target_command};
use simcam::{EventKind, Fleet, FleetConfig};

const BIN: &str = env!("CARGO_BIN_EXE_hikwatch");
const IDS: [&str; 3] = ["c0", "c1", "c2"];
/// The config's `[state] flush_interval`.
const FLUSH: Duration = Duration::from_secs(1);

/// Whether the state file remembers a device session for every camera.
fn all_remembered(path: &Path) -> bool {
    let out = target_command(BIN)
        .args(["state", "show", "--json"])
        .arg(path)
        .output()
        .expect("run hikwatch state show");
    let Ok(v) = serde_json::from_slice::<harness::Value>(&out.stdout) else {
        return false;
    };
    IDS.iter().all(|id| {
        v["cameras"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["id"] == *id))
            .is_some_and(|c| c["device_session"] == true)
    })
}

#[test]
fn a_kill_9_loop_never_piles_up_sessions_at_the_camera() {
    let rounds: usize = std::env::var("HIKWATCH_KILL_LOOPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let fleet = Fleet::start(FleetConfig {
        cameras: IDS.len(),
        threads: 2,
        ..FleetConfig::default()
    })
    .expect("simcam");
    assert_eq!(fleet.config().session_idle_timeout, None);
    let dir = TempDir::new("e2e-isapi-sessions");
    // No camera uses the SDK: `[sdk] dir` is not checked.
    let mut cfg =
        DaemonConfig::new(Path::new("/nonexistent-sdk")).set("heartbeat_interval", "\"1s\"");
    cfg.flush_interval = "1s".into();
    for (i, id) in IDS.iter().enumerate() {
        cfg = cfg.camera(CameraSpec::of(&fleet, i, id));
    }
    let config = cfg.write(&dir);
    let text = std::fs::read_to_string(&config).expect("read config");
    std::fs::write(&config, format!("backend = \"isapi\"\n{text}")).expect("write config");

    // The session each camera held when the daemon was killed.
    let mut left: Vec<Option<String>> = vec![None; IDS.len()];
    for round in 0..=rounds {
        let seq = fleet.next_seq();
        let mut d = Daemon::spawn_with_config(BIN, &dir, &config, SpawnOptions::default());
        assert!(
            d.wait_states(Duration::from_secs(60), &IDS, "online")
                .is_some(),
            "round {round}: {:?}",
            d.status()
        );
        let evs = fleet.events_since(seq);
        for (i, id) in IDS.iter().enumerate() {
            // Never two at once: the left session is ended in the login call itself,
            // before the new login, on the camera's serial lane.
            let st = fleet.camera(i).stats();
            assert_eq!(st.sessions, 1, "round {round}, {id}: {st:?}");
            assert_eq!(st.sessions_hwm, 1, "round {round}, {id}: {st:?}");
            let Some(old) = &left[i] else { continue };
            // The session the killed run held was logged out, before the new login.
            let pos = |kind: EventKind, detail: &str| {
                evs.iter()
                    .position(|e| e.camera == i && e.kind == kind && e.detail == detail)
            };
            let ended = pos(EventKind::Logout, old);
            let new = events::sessions(&evs, i);
            assert!(
                ended.is_some(),
                "round {round}, {id}: {old} not ended: {evs:?}"
            );
            let new_login = new.first().and_then(|s| pos(EventKind::LoginOk, s));
            assert!(ended < new_login, "round {round}, {id}: {evs:?}");
        }
        if round > 0 {
            let log = d.log_text();
            for id in IDS {
                assert!(
                    log.contains(&format!(
                        "{id}: ended the device session a previous login left"
                    )),
                    "round {round}: {log}"
                );
            }
        }
        if round == rounds {
            eprintln!(
                "{rounds} kill -9 rounds: each left session ended before the next login; \
                 sessions now {:?}, most at once {:?}",
                (0..IDS.len())
                    .map(|i| fleet.camera(i).stats().sessions)
                    .collect::<Vec<_>>(),
                (0..IDS.len())
                    .map(|i| fleet.camera(i).stats().sessions_hwm)
                    .collect::<Vec<_>>(),
            );
            break;
        }
        // The state file must hold the sessions before the kill: longer than the flush
        // interval, then until `state show` says so.
        std::thread::sleep(FLUSH + Duration::from_millis(500));
        let on_disk =
            harness::wait_for(Duration::from_secs(20), Duration::from_millis(200), || {
                all_remembered(d.state_path()).then_some(())
            });
        assert!(
            on_disk.is_some(),
            "round {round}: state file without the sessions"
        );
        let evs = fleet.events_since(seq);
        for (i, slot) in left.iter_mut().enumerate() {
            *slot = events::sessions(&evs, i).last().cloned();
            assert!(slot.is_some(), "round {round}: camera {i} has no session");
        }
        d.kill9();
    }
}
