//! Config loading: defaults, every-problem reporting with file:line: field, passwords,
//! board profiles and precedence, the documented example, and `check-config`.

mod daemon_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use daemon_support::TempDir;
use hikwatch::config::{
    Config, ConfigError, LoadOptions, LogConfig, LoginMode, PasswordSource, SdkConfig, Severity,
    StateConfig, StatusConfig, Strategy, StreamType, SupervisorConfig, WatchdogConfig,
    check_config,
};

fn strict() -> LoadOptions {
    LoadOptions::default()
}

/// Loads `text` written to `dir/hikwatch.toml`.
fn load(
    dir: &TempDir,
    text: &str,
    opts: &LoadOptions,
) -> Result<hikwatch::config::LoadedConfig, ConfigError> {
    let path = dir.write("hikwatch.toml", text);
    Config::load_with(&path, opts)
}

fn problems(err: ConfigError) -> Vec<String> {
    match err {
        ConfigError::Invalid { problems } => problems.iter().map(|p| p.to_string()).collect(),
        other => panic!("expected Invalid, got {other}"),
    }
}

const MINIMAL: &str = r#"
[sdk]
dir = "sdk"
[[camera]]
id = "gate-1"
host = "192.0.2.10"
user = "admin"
password_file = "gate-1.pass"
"#;

#[test]
fn minimal_config_gets_every_default() {
    let dir = TempDir::new("cfg-min");
    dir.fake_sdk();
    dir.write("gate-1.pass", "s3cret\n");
    std::fs::set_permissions(
        dir.join("gate-1.pass"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let loaded = load(&dir, MINIMAL, &strict()).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = loaded.config;
    assert_eq!(c.sdk.dir, dir.join("sdk"));
    assert_eq!(c.state, StateConfig::default());
    assert_eq!(c.status, StatusConfig::default());
    assert_eq!(c.supervisor, SupervisorConfig::default());
    assert_eq!(c.log, LogConfig::default());
    assert_eq!(c.watchdog, WatchdogConfig::default());
    assert_eq!(c.board, None);
    assert_eq!(c.cameras.len(), 1);
    let cam = &c.cameras[0];
    assert_eq!(cam.id, "gate-1");
    assert_eq!(cam.port, 8000);
    assert_eq!(cam.login_mode, LoginMode::Private);
    // One trailing newline removed.
    assert_eq!(cam.password.expose(), "s3cret");
    assert_eq!(
        cam.password_source,
        PasswordSource::File(dir.join("gate-1.pass"))
    );
    assert_eq!(cam.stream, None);
    // The password never shows in Debug output of the whole config.
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("s3cret"), "{dbg}");
    assert!(dbg.contains("***"));
}

#[test]
fn every_problem_is_reported_with_file_line_and_field() {
    let dir = TempDir::new("cfg-bad");
    dir.fake_sdk();
    let text = "\
[sdk]
dir = \"sdk\"
[supervisor]
heartbeat_intervall = \"5s\"
backoff_cap = \"soon\"
heartbeat_misses = \"3\"
[[camera]]
id = \"gate-1\"
host = \"192.0.2.10\"
user = \"admin\"
password_file = \"missing.pass\"
[[camera]]
id = \"gate-1\"
host = \"192.0.2.11\"
user = \"admin\"
password = \"x\"
[[camera]]
id = \"gate-3\"
host = \"192.0.2.12\"
port = 70000
user = \"admin\"
[[camera]]
id = \"gate 4\"
hots = \"192.0.2.13\"
user = \"admin\"
password = \"x\"
login_mode = \"isap\"
";
    let f = dir.join("hikwatch.toml");
    let f = f.display();
    let got = problems(load(&dir, text, &strict()).unwrap_err());
    let missing = dir.join("missing.pass");
    let want = vec![
        format!(
            "{f}:4: supervisor.heartbeat_intervall: unknown key \"heartbeat_intervall\"; did you mean \"heartbeat_interval\"?"
        ),
        format!(
            "{f}:5: supervisor.backoff_cap: \"soon\" is not a duration; write e.g. \"5s\", \"500ms\", \"10m\", \"1h30m\""
        ),
        format!("{f}:6: supervisor.heartbeat_misses: expected an integer, found string"),
        format!(
            "{f}:11: camera[0].password_file: cannot read {}: No such file or directory (os error 2)",
            missing.display()
        ),
        format!("{f}:13: camera[1].id: duplicate id \"gate-1\" (already used by camera[0])"),
        format!(
            "{f}:16: warning: camera[1].password: inline password in the config file; prefer password_file or password_credential"
        ),
        format!(
            "{f}:17: camera[2].password: no password source: set password_file, password_credential (systemd LoadCredential=) or password"
        ),
        format!("{f}:20: camera[2].port: 70000 is out of range 1..=65535"),
        format!("{f}:22: camera[3].host: missing required key \"host\""),
        format!(
            "{f}:23: camera[3].id: \"gate 4\": ids are 1 to 64 characters of A-Z a-z 0-9 . _ -"
        ),
        format!("{f}:24: camera[3].hots: unknown key \"hots\"; did you mean \"host\"?"),
        format!(
            "{f}:26: warning: camera[3].password: inline password in the config file; prefer password_file or password_credential"
        ),
        format!(
            "{f}:27: camera[3].login_mode: \"isap\" is not one of private | isapi | auto; did you mean \"isapi\"?"
        ),
    ];
    assert_eq!(got, want, "\ngot:\n{}\n", got.join("\n"));
}

#[test]
fn syntax_errors_are_reported_with_their_line() {
    let dir = TempDir::new("cfg-syntax");
    let got = problems(
        load(
            &dir,
            "[sdk]\ndir = \"a\"\nx = \n[state]\npath = 'p'\npath = 'q'\n",
            &strict(),
        )
        .unwrap_err(),
    );
    let f = dir.join("hikwatch.toml");
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[0].starts_with(&format!("{}:3: syntax error: ", f.display())),
        "{got:?}"
    );
    assert!(
        got[1].starts_with(&format!("{}:6: syntax error: duplicate key", f.display())),
        "{got:?}"
    );
}

#[test]
fn wrong_types_ranges_and_cross_checks() {
    let dir = TempDir::new("cfg-types");
    dir.fake_sdk();
    let text = "\
[sdk]
dir = \"sdk\"
[state]
flush_interval = 10
[status]
metrics = \"localhost\"
socket = \"SOCKET\"
[supervisor]
backoff_initial = \"5m\"
backoff_cap = \"1m\"
backoff_multiplier = 0.5
heartbeat_interval = \"1.5s\"
workers = 0
strategy = 3
[log]
level = \"loud\"
[watchdog]
keepalive = \"0s\"
";
    let f = dir.join("hikwatch.toml");
    let f = f.display();
    let long_socket = format!("/run/{}.sock", "x".repeat(98));
    assert_eq!(long_socket.len(), 108);
    let text = text.replace("SOCKET", &long_socket);
    let got = problems(load(&dir, &text, &strict()).unwrap_err());
    let want = vec![
        format!(
            "{f}:4: state.flush_interval: durations are strings with a unit: write \"10s\" or \"10ms\""
        ),
        format!("{f}:6: status.metrics: \"localhost\" is not IP:PORT (e.g. \"127.0.0.1:9184\")"),
        format!("{f}:7: status.socket: 108 bytes is longer than a unix socket path may be (107)"),
        format!("{f}:10: supervisor.backoff_cap: 1m is below backoff_initial 5m"),
        format!("{f}:11: supervisor.backoff_multiplier: 0.5 is out of range 1..=10"),
        format!(
            "{f}:12: supervisor.heartbeat_interval: \"1.5s\": fractions are not supported; use a smaller unit (\"1500ms\")"
        ),
        format!("{f}:13: supervisor.workers: 0 is out of range 1..=1024"),
        format!("{f}:14: supervisor.strategy: expected a string, found integer"),
        format!(
            "{f}:16: log.level: \"loud\" is not one of off | error | warn | info | debug | trace"
        ),
        format!("{f}:18: watchdog.keepalive: \"0s\" is out of range 1s..=10m"),
        format!(
            "{f}: warning: camera: no [[camera]] configured; the daemon will have nothing to do"
        ),
    ];
    assert_eq!(got, want, "\ngot:\n{}\n", got.join("\n"));
}

#[test]
fn unknown_top_level_keys_and_misplaced_keys() {
    let dir = TempDir::new("cfg-top");
    dir.fake_sdk();
    let text = "socket = \"/run/x.sock\"\nboard_ = 1\n[sdk]\ndir = \"sdk\"\n[supervsor]\n";
    let got = problems(load(&dir, text, &strict()).unwrap_err());
    let f = dir.join("hikwatch.toml");
    let f = f.display();
    assert_eq!(
        got[..3],
        [
            format!("{f}:1: socket: unknown key \"socket\"; it belongs in [status]"),
            format!("{f}:2: board_: unknown key \"board_\"; did you mean \"board\"?"),
            format!("{f}:5: supervsor: unknown key \"supervsor\"; did you mean \"supervisor\"?"),
        ]
    );
}

#[test]
fn sdk_folder_is_checked() {
    let dir = TempDir::new("cfg-sdk");
    dir.write("gate-1.pass", "pw");
    std::fs::set_permissions(
        dir.join("gate-1.pass"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let f = dir.join("hikwatch.toml");
    // Missing folder.
    let got = problems(load(&dir, MINIMAL, &strict()).unwrap_err());
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with(&format!("{}:3: sdk.dir: ", f.display())),
        "{got:?}"
    );
    assert!(got[0].contains("is not a folder"), "{got:?}");
    // Folder without the library.
    std::fs::create_dir_all(dir.join("sdk")).unwrap();
    let got = problems(load(&dir, MINIMAL, &strict()).unwrap_err());
    assert!(got[0].ends_with("holds no libhcnetsdk.so"), "{got:?}");
    // Library but no HCNetSDKCom/: a warning only.
    dir.write("sdk/libhcnetsdk.so", "");
    let loaded = load(&dir, MINIMAL, &strict()).unwrap();
    assert_eq!(loaded.warnings.len(), 1);
    assert!(loaded.warnings[0].message.contains("HCNetSDKCom"));
}

#[test]
fn password_sources() {
    let dir = TempDir::new("cfg-pw");
    dir.fake_sdk();
    let creds = TempDir::new("cfg-creds");
    creds.write("lobby.pass", "from-credential\r\n");
    dir.write("world.pass", "pw\n");
    std::fs::set_permissions(
        dir.join("world.pass"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    dir.write("long.pass", &"x".repeat(64));
    dir.write("two-lines.pass", "a\nb\n");
    dir.write("empty.pass", "\n");
    let text = "\
[sdk]
dir = \"sdk\"
[[camera]]
id = \"lobby\"
host = \"192.0.2.10\"
user = \"admin\"
password_credential = \"lobby.pass\"
[[camera]]
id = \"world\"
host = \"192.0.2.11\"
user = \"admin\"
password_file = \"world.pass\"
";
    let opts = LoadOptions {
        credentials_dir: Some(creds.path().to_path_buf()),
        check_only: false,
        skip_secrets: false,
    };
    let loaded = load(&dir, text, &opts).unwrap();
    let c = &loaded.config;
    assert_eq!(c.cameras[0].password.expose(), "from-credential");
    assert_eq!(
        c.cameras[0].password_source,
        PasswordSource::Credential("lobby.pass".into())
    );
    assert_eq!(c.cameras[1].password.expose(), "pw");
    let w: Vec<String> = loaded.warnings.iter().map(|p| p.to_string()).collect();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains(":12: warning: camera[1].password_file: "),
        "{w:?}"
    );
    assert!(
        w[0].ends_with("is readable by every user; chmod o-rwx it"),
        "{w:?}"
    );

    // Daemon mode without $CREDENTIALS_DIRECTORY: an error naming the fix.
    let got = problems(load(&dir, text, &strict()).unwrap_err());
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].contains(":7: camera[0].password_credential: credential \"lobby.pass\": $CREDENTIALS_DIRECTORY is not set (systemd sets it for LoadCredential=; the shipped unit passes /etc/hikwatch/credentials/NAME as camera_NAME)"), "{got:?}");
    // check-config mode: a warning only.
    let lenient = LoadOptions {
        credentials_dir: None,
        check_only: true,
        skip_secrets: false,
    };
    let loaded = load(&dir, text, &lenient).unwrap();
    assert!(
        loaded
            .warnings
            .iter()
            .any(|p| p.field == "camera[0].password_credential"
                && p.severity == Severity::Warning
                && p.message.contains("not checked"))
    );

    // Bad files and more than one source.
    let text = "\
[sdk]
dir = \"sdk\"
[[camera]]
id = \"a\"
host = \"192.0.2.10\"
user = \"admin\"
password_file = \"long.pass\"
[[camera]]
id = \"b\"
host = \"192.0.2.10\"
user = \"admin\"
password_file = \"two-lines.pass\"
[[camera]]
id = \"c\"
host = \"192.0.2.10\"
user = \"admin\"
password_file = \"empty.pass\"
[[camera]]
id = \"d\"
host = \"192.0.2.10\"
user = \"admin\"
password_file = \"empty.pass\"
password = \"x\"
[[camera]]
id = \"e\"
host = \"192.0.2.10\"
user = \"admin\"
password_credential = \"../etc/shadow\"
[[camera]]
id = \"f\"
host = \"192.0.2.10\"
user = \"admin\"
password_file = \".\"
";
    let got = problems(load(&dir, text, &opts).unwrap_err());
    let f = dir.join("hikwatch.toml");
    let f = f.display();
    let d = dir.path().display();
    assert_eq!(
        got,
        vec![
            format!(
                "{f}:7: camera[0].password_file: {d}/long.pass: the password is 64 bytes; the SDK takes at most 63"
            ),
            format!(
                "{f}:12: camera[1].password_file: {d}/two-lines.pass: the password contains a control character (newline, NUL, ...)"
            ),
            format!("{f}:17: camera[2].password_file: {d}/empty.pass: the password is empty"),
            format!(
                "{f}:18: camera[3].password: set only one password source, found password_file, password"
            ),
            format!(
                "{f}:28: camera[4].password_credential: \"../etc/shadow\" is not a credential name (no '/', not empty)"
            ),
            format!("{f}:33: camera[5].password_file: {d}/. is not a regular file"),
        ],
        "\ngot:\n{}\n",
        got.join("\n")
    );
}

#[test]
fn streams_modes_and_default_ports() {
    let dir = TempDir::new("cfg-stream");
    dir.fake_sdk();
    let text = "\
[sdk]
dir = \"sdk\"
[[camera]]
id = \"a\"
host = \"cam-a.example\"
user = \"admin\"
password = \"x\"
login_mode = \"isapi\"
[camera.stream]
type = \"third\"
[[camera]]
id = \"b\"
host = \"2001:db8::7\"
port = 8443
user = \"admin\"
password = \"x\"
login_mode = \"auto\"
stream = { channel = 33 }
";
    let c = load(&dir, text, &strict()).unwrap().config;
    assert_eq!(c.cameras[0].port, 80);
    assert_eq!(c.cameras[0].login_mode, LoginMode::Isapi);
    let s = c.cameras[0].stream.unwrap();
    assert_eq!(
        (s.channel, s.stream_type, s.stream_type.sdk_value()),
        (1, StreamType::Third, 2)
    );
    assert_eq!(c.cameras[1].port, 8443);
    assert_eq!(c.cameras[1].login_mode, LoginMode::Auto);
    assert_eq!(c.cameras[1].stream.unwrap().channel, 33);
    assert_eq!(c.cameras[1].stream.unwrap().stream_type, StreamType::Main);
}

#[test]
fn too_many_cameras_for_the_board() {
    let dir = TempDir::new("cfg-max");
    dir.fake_sdk();
    let mut text = String::from(
        "[sdk]\ndir = \"sdk\"\nthreads = 2\n[supervisor]\nmax_cameras = 2\nmax_concurrent_logins = 3\n",
    );
    for i in 0..3 {
        text.push_str(&format!(
            "[[camera]]\nid = \"c{i}\"\nhost = \"192.0.2.{i}\"\nuser = \"u\"\npassword = \"p\"\n"
        ));
    }
    let got = problems(load(&dir, &text, &strict()).unwrap_err());
    let errors: Vec<&String> = got.iter().filter(|p| !p.contains("warning")).collect();
    assert_eq!(errors.len(), 1, "{got:?}");
    assert!(got.iter().any(|p| p.ends_with(":6: warning: supervisor.max_concurrent_logins: 3 exceeds [sdk] threads = 2: at most 2 logins can run at once")), "{got:?}");
    // Pointed at the first camera beyond the limit (line 17).
    assert!(
        errors[0].contains(":17: camera: 3 cameras configured but max_cameras is 2; raise"),
        "{got:?}"
    );
}

/// One camera limit: a config at it loads, every one of its cameras gets its state saved
/// and a stream slot, and one more is refused with the message the state file gives.
#[test]
fn config_state_file_and_stream_slots_share_one_camera_limit() {
    use hikwatch::store::{CameraKey, Store, StoreOptions, format::FormatError};
    let max = hikwatch::MAX_CAMERAS;
    let dir = TempDir::new("cfg-limit");
    dir.fake_sdk();
    let text = |max_cameras: usize, cameras: usize| {
        let mut t = format!(
            "[sdk]\ndir = \"sdk\"\n[state]\npath = \"state.bin\"\n\
             [supervisor]\nmax_cameras = {max_cameras}\n"
        );
        for i in 0..cameras {
            t.push_str(&format!(
                "[[camera]]\nid = \"c{i}\"\nhost = \"192.0.2.1\"\nuser = \"u\"\npassword = \"p\"\n\
                 stream = {{}}\n"
            ));
        }
        t
    };
    let c = load(&dir, &text(max, max), &strict())
        .expect("a config at the limit loads")
        .config;
    assert_eq!(c.cameras.len(), max);
    let keys: Vec<CameraKey<'_>> = c
        .cameras
        .iter()
        .map(|cam| CameraKey {
            id: &cam.id,
            user: &cam.user,
            password: b"p",
        })
        .collect();
    let (_store, loaded) = Store::open(
        dir.join("state.bin"),
        StoreOptions::default(),
        &keys,
        std::time::Instant::now(),
    );
    assert!(
        loaded.warnings.is_empty(),
        "{} warnings, the first: {:?}",
        loaded.warnings.len(),
        loaded.warnings.first()
    );
    assert!(
        hikwatch::sdk::events::MAX_STREAMS
            >= c.cameras.iter().filter(|c| c.stream.is_some()).count(),
        "fewer stream slots than cameras with a stream"
    );
    let got = problems(load(&dir, &text(max + 1, 1), &strict()).unwrap_err());
    let store_says = FormatError::TooManyCameras { count: max + 1 }.to_string();
    assert!(
        got.iter()
            .any(|p| p.contains("supervisor.max_cameras") && p.ends_with(&store_says)),
        "{store_says:?} not in {got:?}"
    );
}

#[test]
fn example_config_documents_the_defaults() {
    // examples/hikwatch.toml writes every global default explicitly: loading it must give
    // exactly the built-in defaults, so the documentation cannot drift from the code.
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hikwatch.toml"),
    )
    .unwrap();
    let dir = TempDir::new("cfg-example");
    let sdk = dir.fake_sdk();
    dir.write("gate-1.pass", "pw\n");
    std::fs::set_permissions(
        dir.join("gate-1.pass"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let creds = TempDir::new("cfg-example-creds");
    creds.write("camera_lobby", "pw2");
    let text = example
        .replace(
            "dir = \"/opt/hikwatch/sdk\"",
            &format!("dir = \"{}\"", sdk.display()),
        )
        .replace(
            "/etc/hikwatch/gate-1.pass",
            &dir.join("gate-1.pass").display().to_string(),
        );
    let opts = LoadOptions {
        credentials_dir: Some(creds.path().to_path_buf()),
        check_only: false,
        skip_secrets: false,
    };
    let loaded = load(&dir, &text, &opts).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = loaded.config;
    assert_eq!(
        c.sdk,
        SdkConfig {
            dir: sdk,
            threads: 8
        }
    );
    assert_eq!(c.state, StateConfig::default());
    assert_eq!(c.status, StatusConfig::default());
    assert_eq!(c.supervisor, SupervisorConfig::default());
    assert_eq!(c.log, LogConfig::default());
    assert_eq!(c.watchdog, WatchdogConfig::default());
    assert_eq!(c.cameras.len(), 2);
    assert_eq!(c.cameras[1].port, 80);
    assert_eq!(c.cameras[1].stream.unwrap().stream_type, StreamType::Sub);
    // The defaults themselves, as documented.
    let s = SupervisorConfig::default();
    assert_eq!(s.settings.strategy, Strategy::Hybrid);
    assert_eq!(s.settings.heartbeat_interval, Duration::from_secs(5));
    assert_eq!(
        StateConfig::default().flush_interval,
        Duration::from_secs(10)
    );
}

#[test]
fn check_config_reports_everything_and_exits_78() {
    let dir = TempDir::new("cfg-cli");
    dir.fake_sdk();
    let bad = dir.write(
        "bad.toml",
        "[sdk]\ndir = \"sdk\"\n[[camera]]\nid = \"a\"\nhost = \"192.0.2.1\"\nport = 0\nuser = \"u\"\n",
    );
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = check_config(&bad, &LoadOptions::default(), &mut out, &mut err);
    assert_eq!(code, hikwatch::exit::CONFIG);
    let err = String::from_utf8(err).unwrap();
    let b = bad.display();
    assert_eq!(
        err,
        format!(
            "{b}:3: camera[0].password: no password source: set password_file, password_credential (systemd LoadCredential=) or password\n\
             {b}:6: camera[0].port: 0 is out of range 1..=65535\n\
             {b}: 2 errors found\n"
        )
    );
    assert!(out.is_empty());

    let good = dir.write(
        "good.toml",
        "[sdk]\ndir = \"sdk\"\n[[camera]]\nid = \"a\"\nhost = \"192.0.2.1\"\nuser = \"u\"\npassword = \"p\"\n",
    );
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = check_config(&good, &LoadOptions::default(), &mut out, &mut err);
    assert_eq!(code, 0);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("{}: OK (1 camera, board none, 1 warning)\n", good.display())
    );
    assert!(
        String::from_utf8(err)
            .unwrap()
            .contains("warning: camera[0].password: inline password")
    );

    // Unreadable file.
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let missing = dir.join("nope.toml");
    let code = check_config(&missing, &LoadOptions::default(), &mut out, &mut err);
    assert_eq!(code, 78);
    assert!(
        String::from_utf8(err)
            .unwrap()
            .starts_with(&format!("{}: cannot read config: ", missing.display()))
    );
}

/// The real binary's exit codes (host only: under qemu-user an ARM test cannot exec the ARM
/// binary without binfmt_misc; the in-process test above covers every target).
#[cfg(target_arch = "x86_64")]
#[test]
fn binary_exits_78_on_a_bad_config() {
    let dir = TempDir::new("cfg-bin");
    let bad = dir.write("bad.toml", "[supervisor]\nworkers = -1\n");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hikwatch"))
        .args(["check-config", "-c"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:2: supervisor.workers: -1 is out of range 1..=1024",
            bad.display()
        )),
        "{err}"
    );

    // Usage errors exit 64 with the command's usage; help names the default config.
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_hikwatch"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["check-config", "--bogus"]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Usage: hikwatch check-config [-c FILE]"),
        "{err}"
    );
    let out = run(&["help", "check-config"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/etc/hikwatch/hikwatch.toml"), "{text}");
}

#[test]
fn passwords_never_appear_in_problems_or_debug_output() {
    let dir = TempDir::new("cfg-leak");
    dir.fake_sdk();
    let secret = "Sup3rS3cret-Passw0rd";
    dir.write("long.pass", &format!("{secret}{}", "x".repeat(60)));
    let text = format!(
        "[sdk]\ndir = \"sdk\"\n[[camera]]\nid = \"a\"\nhost = \"192.0.2.1\"\nuser = \"u\"\npassword = \"{secret}\"\nport = 0\n\
         [[camera]]\nid = \"b\"\nhost = \"192.0.2.2\"\nuser = \"u\"\npassword_file = \"long.pass\"\n\
         [[camera]]\nid = \"c\"\nhost = \"192.0.2.3\"\nuser = \"u\"\npassword = \"{secret}\\u0001\"\n"
    );
    let err = load(&dir, &text, &strict()).unwrap_err();
    let all = format!("{err}\n{err:?}");
    assert!(!all.contains("Sup3r"), "{all}");
    assert_eq!(err.errors().count(), 3, "{all}");
    // And a loaded config shows *** only.
    let ok = text
        .replace("port = 0\n", "")
        .replace("password_file = \"long.pass\"", "password = \"x\"")
        .replace("\\u0001", "");
    let loaded = load(&dir, &ok, &strict()).unwrap();
    let dbg = format!("{:?}", loaded.config);
    assert!(
        !dbg.contains("Sup3r") && dbg.matches("***").count() == 3,
        "{dbg}"
    );
}

#[test]
fn link_watch_timeout_is_parsed_range_checked_and_off_at_zero() {
    let dir = TempDir::new("cfg-lwt");
    dir.fake_sdk();
    dir.write("gate-1.pass", "s3cret\n");
    std::fs::set_permissions(
        dir.join("gate-1.pass"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let with = |v: &str| format!("[supervisor]\nlink_watch_timeout = {v}\n{MINIMAL}");
    let default = load(&dir, MINIMAL, &strict()).unwrap().config;
    assert_eq!(
        default.supervisor.settings.link_watch_timeout,
        Duration::from_secs(4)
    );
    for (text, want) in [("\"2500ms\"", 2500), ("\"0s\"", 0), ("\"5m\"", 300_000)] {
        let c = load(&dir, &with(text), &strict()).unwrap().config;
        assert_eq!(
            c.supervisor.settings.link_watch_timeout,
            Duration::from_millis(want),
            "{text}"
        );
    }
    let f = dir.join("hikwatch.toml");
    let got = problems(load(&dir, &with("\"6m\""), &strict()).unwrap_err());
    assert_eq!(
        got,
        vec![format!(
            "{}:2: supervisor.link_watch_timeout: \"6m\" is out of range 0s..=5m",
            f.display()
        )]
    );
}
