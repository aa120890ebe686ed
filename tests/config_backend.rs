//! `backend = "sdk" | "isapi"`: the file's default and each camera's own choice, `[sdk]`
//! needed only by SDK cameras, and the problems a wrong choice gets (FILE:LINE: field).

mod daemon_support;

use daemon_support::TempDir;
use hikwatch::config::{BackendKind, Config, ConfigError, LoadOptions, LoadedConfig, Severity};

fn load(dir: &TempDir, text: &str) -> Result<LoadedConfig, ConfigError> {
    let path = dir.write("hikwatch.toml", text);
    Config::load_with(&path, &LoadOptions::default())
}

/// The errors (not the warnings) of a refused file.
fn problems(err: ConfigError) -> Vec<String> {
    match err {
        ConfigError::Invalid { problems } => problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .map(|p| p.to_string())
            .collect(),
        other => panic!("expected Invalid, got {other}"),
    }
}

#[test]
fn isapi_cameras_need_no_sdk_section_and_default_to_port_80() {
    // No [sdk] and no SDK folder anywhere: fine when no camera uses the SDK.
    let dir = TempDir::new("cfg-isapi-only");
    let text = "\
backend = \"isapi\"
[[camera]]
id = \"a\"
host = \"192.0.2.10\"
user = \"admin\"
password = \"x\"
[[camera]]
id = \"b\"
host = \"192.0.2.11\"
port = 8080
user = \"admin\"
password = \"x\"
";
    let loaded = load(&dir, text).unwrap();
    let c = loaded.config;
    // The inline passwords are the only warnings.
    assert!(
        loaded
            .warnings
            .iter()
            .all(|w| w.field.ends_with(".password")),
        "{:?}",
        loaded.warnings
    );
    assert_eq!(c.backend, BackendKind::Isapi);
    assert!(!c.uses_sdk());
    assert_eq!(c.cameras[0].backend, BackendKind::Isapi);
    assert_eq!(c.cameras[0].port, 80);
    assert_eq!(c.cameras[1].port, 8080);
}

#[test]
fn the_default_is_the_sdk_and_a_camera_overrides_the_files_backend() {
    let dir = TempDir::new("cfg-backend-mix");
    let f = dir.join("hikwatch.toml");
    // The file says isapi, one camera wants the SDK: now the SDK folder is checked.
    let text = "\
backend = \"isapi\"
[[camera]]
id = \"a\"
host = \"192.0.2.10\"
user = \"admin\"
password = \"x\"
[[camera]]
id = \"b\"
host = \"192.0.2.11\"
user = \"admin\"
password = \"x\"
backend = \"sdk\"
";
    let got = problems(load(&dir, text).unwrap_err());
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with(&format!("{}: sdk.dir: ", f.display())),
        "{got:?}"
    );
    dir.fake_sdk();
    let text = text.replace(
        "backend = \"isapi\"\n",
        "backend = \"isapi\"\n[sdk]\ndir = \"sdk\"\n",
    );
    let c = load(&dir, &text).unwrap().config;
    assert!(c.uses_sdk());
    assert_eq!(c.cameras[0].backend, BackendKind::Isapi);
    assert_eq!(c.cameras[1].backend, BackendKind::Sdk);
    assert_eq!(c.cameras[1].port, 8000);

    // Nothing said: the SDK, as before this setting existed.
    let text = "\
[sdk]
dir = \"sdk\"
[[camera]]
id = \"a\"
host = \"192.0.2.10\"
user = \"admin\"
password = \"x\"
[[camera]]
id = \"b\"
host = \"192.0.2.11\"
user = \"admin\"
password = \"x\"
backend = \"isapi\"
";
    let c = load(&dir, text).unwrap().config;
    assert_eq!(c.backend, BackendKind::Sdk);
    assert_eq!(c.cameras[0].backend, BackendKind::Sdk);
    assert_eq!(c.cameras[1].backend, BackendKind::Isapi);
    assert_eq!(c.cameras[1].port, 80);
}

#[test]
fn wrong_backends_are_reported_with_file_line_and_field() {
    let dir = TempDir::new("cfg-backend-bad");
    let f = dir.join("hikwatch.toml");
    let text = "\
backend = \"isap\"
[[camera]]
id = \"a\"
host = \"192.0.2.10\"
user = \"admin\"
password = \"x\"
backend = 3
[[camera]]
id = \"b\"
host = \"192.0.2.11\"
user = \"admin\"
password = \"x\"
backend = \"vendor\"
";
    let got = problems(load(&dir, text).unwrap_err());
    let f = f.display();
    assert!(
        got.contains(&format!(
            "{f}:1: backend: \"isap\" is not one of sdk | isapi; did you mean \"isapi\"?"
        )),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|p| p.starts_with(&format!("{f}:7: camera[0].backend: "))),
        "{got:?}"
    );
    assert!(
        got.contains(&format!(
            "{f}:13: camera[1].backend: \"vendor\" is not one of sdk | isapi"
        )),
        "{got:?}"
    );
}

/// An ISAPI file with cameras `a` (lines 2-6, then `a_tail` from line 7) and `b`
/// (`[[camera]]` and four keys, then `b_tail`).
fn two_cameras(a_tail: &str, b_tail: &str) -> String {
    let cam = |id: &str, n: u8| {
        format!(
            "[[camera]]\nid = \"{id}\"\nhost = \"192.0.2.1{n}\"\nuser = \"admin\"\npassword = \"x\"\n"
        )
    };
    format!(
        "backend = \"isapi\"\n{}{a_tail}{}{b_tail}",
        cam("a", 0),
        cam("b", 1)
    )
}

#[test]
fn an_isapi_camera_watches_a_stream_on_its_rtsp_port_and_ignores_login_mode() {
    let dir = TempDir::new("cfg-backend-stream");
    let f = dir.join("hikwatch.toml");
    let text = two_cameras(
        "[camera.stream]\nchannel = 1\ntype = \"sub\"\n",
        "[camera.stream]\nrtsp_port = 8554\n",
    );
    let c = load(&dir, &text).unwrap().config;
    let (a, b) = (c.cameras[0].stream.unwrap(), c.cameras[1].stream.unwrap());
    assert_eq!(
        (a.channel, a.stream_type.as_str(), a.rtsp_port),
        (1, "sub", None)
    );
    assert_eq!(
        (b.channel, b.stream_type.as_str(), b.rtsp_port),
        (1, "main", Some(8554))
    );

    // Out of range, and on an SDK camera (whose SDK asks the device for its port).
    let text = two_cameras(
        "[camera.stream]\nrtsp_port = 70000\n",
        "backend = \"sdk\"\n[camera.stream]\nrtsp_port = 554\n",
    );
    let got = problems(load(&dir, &text).unwrap_err());
    for want in [
        format!(
            "{}:8: camera[0].stream.rtsp_port: 70000 is out of range 1..=65535",
            f.display()
        ),
        format!(
            "{}:16: camera[1].stream.rtsp_port: only for backend = \"isapi\" (the SDK takes \
             the RTSP port from the device)",
            f.display()
        ),
    ] {
        assert!(got.contains(&want), "{want}\nnot in {got:#?}");
    }

    let text = "\
backend = \"isapi\"
[[camera]]
id = \"a\"
host = \"192.0.2.10\"
user = \"admin\"
password = \"x\"
login_mode = \"private\"
";
    let loaded = load(&dir, text).unwrap();
    assert!(
        loaded.warnings.iter().any(|w| w.line == Some(7)
            && w.field == "camera[0].login_mode"
            && w.message
                == "applies to the SDK backend only; the ISAPI backend always speaks ISAPI"),
        "{:?}",
        loaded.warnings
    );
    assert_eq!(loaded.config.cameras[0].port, 80);
}
