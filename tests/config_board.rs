//! Board profiles: built-in names, paths, precedence (defaults < profile < config file),
//! and problems that name the profile file.

mod daemon_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use daemon_support::TempDir;
use hikwatch::config::{
    BUILTIN_BOARDS, Config, ConfigError, LoadOptions, StatusConfig, SupervisorConfig, builtin_board,
};

fn load(dir: &TempDir, text: &str) -> Result<hikwatch::config::LoadedConfig, ConfigError> {
    let path = dir.write("hikwatch.toml", text);
    Config::load_with(&path, &LoadOptions::default())
}

fn problems(err: ConfigError) -> Vec<String> {
    match err {
        ConfigError::Invalid { problems } => problems.iter().map(|p| p.to_string()).collect(),
        other => panic!("expected Invalid, got {other}"),
    }
}

/// A config selecting `board` that only overrides the SDK folder (the profiles point at
/// /opt/hikwatch/sdk, which does not exist here) plus `extra`.
fn with_board(board: &str, extra: &str) -> String {
    format!(
        "board = \"{board}\"\n[sdk]\ndir = \"sdk\"\n{extra}\n[[camera]]\nid = \"a\"\nhost = \"192.0.2.1\"\nuser = \"u\"\npassword_credential = \"a\"\n"
    )
}

#[test]
fn every_board_file_is_built_in_and_valid() {
    let board_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("board");
    let mut on_disk: Vec<String> = std::fs::read_dir(&board_dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".toml").map(str::to_string)
        })
        .collect();
    on_disk.sort();
    let mut built_in: Vec<String> = BUILTIN_BOARDS.iter().map(|(n, _)| n.to_string()).collect();
    built_in.sort();
    assert_eq!(on_disk, built_in);
    for name in ["armv7-generic", "aarch64-generic", "x86_64-dev"] {
        assert!(built_in.contains(&name.to_string()), "{name}");
        // The compiled-in text is the file's text.
        let file = std::fs::read_to_string(board_dir.join(format!("{name}.toml"))).unwrap();
        assert_eq!(builtin_board(name), Some(file.as_str()));

        let dir = TempDir::new("board-valid");
        dir.fake_sdk();
        let opts = LoadOptions {
            credentials_dir: None,
            check_only: true,
            skip_secrets: false,
        };
        let path = dir.write("hikwatch.toml", &with_board(name, ""));
        let loaded = Config::load_with(&path, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Only the "credential not checked" warning.
        assert_eq!(loaded.warnings.len(), 1, "{name}: {:?}", loaded.warnings);
        let c = loaded.config;
        assert_eq!(c.board.as_deref(), Some(name));
        // Each profile sets the state path, the watchdog device and resource hints.
        assert!(c.state.path.is_absolute());
        assert!(c.sdk.threads >= 2);
        assert!(u32::from(c.supervisor.settings.max_concurrent_logins) <= c.sdk.threads);
        assert_ne!(
            c.supervisor.max_cameras,
            SupervisorConfig::default().max_cameras
        );
    }
}

#[test]
fn profile_values_apply_under_the_config_file() {
    let dir = TempDir::new("board-prec");
    dir.fake_sdk();
    let opts = LoadOptions {
        credentials_dir: None,
        check_only: true,
        skip_secrets: false,
    };
    // Profile only.
    let path = dir.write("hikwatch.toml", &with_board("armv7-generic", ""));
    let c = Config::load_with(&path, &opts).unwrap().config;
    assert_eq!(c.state.path, PathBuf::from("/var/lib/hikwatch/state.bin"));
    assert_eq!(c.state.flush_interval, Duration::from_secs(30));
    assert_eq!(c.watchdog.device, Some(PathBuf::from("/dev/watchdog0")));
    assert_eq!(c.supervisor.max_cameras, 32);
    assert_eq!(c.sdk.threads, 4);
    assert_eq!(c.supervisor.settings.max_concurrent_logins, 2);
    assert_eq!(c.log.level, log::LevelFilter::Info);
    // Not in the profile: built-in default.
    assert_eq!(
        c.supervisor.settings.heartbeat_interval,
        Duration::from_secs(5)
    );
    assert_eq!(c.status, StatusConfig::default());
    // The config file wins key by key; the rest of the section still comes from the
    // profile.
    let path = dir.write(
        "hikwatch.toml",
        &with_board(
            "armv7-generic",
            "threads = 6\n[state]\nflush_interval = \"1m\"\n[watchdog]\ndevice = \"\"",
        ),
    );
    let c = Config::load_with(&path, &opts).unwrap().config;
    assert_eq!(c.state.flush_interval, Duration::from_secs(60));
    assert_eq!(c.state.path, PathBuf::from("/var/lib/hikwatch/state.bin"));
    assert_eq!(c.watchdog.device, None);
    assert_eq!(c.watchdog.keepalive, Duration::from_secs(5));
    assert_eq!(c.sdk.threads, 6);
    assert_eq!(c.supervisor.max_cameras, 32);
    // x86_64-dev turns metrics on and moves the socket.
    let path = dir.write("hikwatch.toml", &with_board("x86_64-dev", ""));
    let c = Config::load_with(&path, &opts).unwrap().config;
    assert_eq!(c.status.metrics, Some("127.0.0.1:9184".parse().unwrap()));
    assert_eq!(c.status.socket, PathBuf::from("/tmp/hikwatch/status.sock"));
    assert_eq!(c.watchdog.device, None);
    assert_eq!(c.log.level, log::LevelFilter::Debug);
}

#[test]
fn profile_from_a_path_with_relative_paths() {
    let dir = TempDir::new("board-path");
    dir.fake_sdk();
    // The profile lives in a sub folder; its relative paths resolve against that folder.
    dir.write(
        "boards/mine.toml",
        "[state]\npath = \"../data/state.bin\"\n[sdk]\nthreads = 2\n[supervisor]\nmax_cameras = 3\nmax_concurrent_logins = 1\n",
    );
    let text = "board = \"boards/mine.toml\"\n[sdk]\ndir = \"sdk\"\n[[camera]]\nid = \"a\"\nhost = \"192.0.2.1\"\nuser = \"u\"\npassword = \"p\"\n";
    let loaded = load(&dir, text).unwrap();
    let c = loaded.config;
    assert_eq!(
        c.board,
        Some(dir.join("boards/mine.toml").display().to_string())
    );
    assert_eq!(c.state.path, dir.join("boards").join("../data/state.bin"));
    assert_eq!(c.supervisor.max_cameras, 3);
}

#[test]
fn profile_problems_name_the_profile_file() {
    let dir = TempDir::new("board-bad");
    dir.fake_sdk();
    let prof = dir.write(
        "bad-board.toml",
        "[sdk]\nthreads = 100\n[[camera]]\nid = \"x\"\n",
    );
    let text = "board = \"bad-board.toml\"\n[sdk]\ndir = \"sdk\"\n[[camera]]\nid = \"a\"\nhost = \"192.0.2.1\"\nuser = \"u\"\nport = 0\npassword = \"p\"\n";
    let got = problems(load(&dir, text).unwrap_err());
    let f = dir.join("hikwatch.toml");
    let (f, p) = (f.display(), prof.display());
    assert_eq!(
        got,
        vec![
            format!("{f}:8: camera[0].port: 0 is out of range 1..=65535"),
            format!(
                "{f}:9: warning: camera[0].password: inline password in the config file; prefer password_file or password_credential"
            ),
            format!("{p}:2: sdk.threads: 100 is out of range 1..=64"),
            format!("{p}:3: camera: board profiles cannot define cameras"),
        ],
        "\ngot:\n{}\n",
        got.join("\n")
    );
}

#[test]
fn unknown_or_unreadable_board() {
    let dir = TempDir::new("board-unknown");
    dir.fake_sdk();
    let got = problems(load(&dir, &with_board("armv7-generc", "")).unwrap_err());
    let f = dir.join("hikwatch.toml");
    assert!(got[0].starts_with(&format!(
        "{}:1: board: unknown board \"armv7-generc\" (built-in: armv7-generic, aarch64-generic, x86_64-dev; or a path to a .toml profile); did you mean \"armv7-generic\"?",
        f.display()
    )), "{got:?}");
    let got = problems(load(&dir, &with_board("./nope.toml", "")).unwrap_err());
    assert!(
        got[0].contains(":1: board: cannot read board profile "),
        "{got:?}"
    );
    assert!(
        got[0].ends_with("nope.toml: No such file or directory (os error 2)"),
        "{got:?}"
    );
    // A profile with a syntax error.
    dir.write("broken.toml", "[state\n");
    let got = problems(load(&dir, &with_board("broken.toml", "")).unwrap_err());
    assert!(
        got.iter().any(|p| p.starts_with(&format!(
            "{}:1: syntax error",
            dir.join("broken.toml").display()
        ))),
        "{got:?}"
    );
}
