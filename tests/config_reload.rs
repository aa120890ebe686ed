//! A SIGHUP reload in miniature: load, edit files on disk, load again, diff.

mod daemon_support;

use std::os::unix::fs::PermissionsExt;

use daemon_support::TempDir;
use hikwatch::config::{CameraChange, Config, LoadOptions, credentials_changed, diff};

fn write_pass(dir: &TempDir, name: &str, pw: &str) {
    let p = dir.write(name, pw);
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn camera(id: &str, host: &str, pass: &str) -> String {
    format!(
        "[[camera]]\nid = \"{id}\"\nhost = \"{host}\"\nuser = \"admin\"\npassword_file = \"{pass}\"\n"
    )
}

#[test]
fn reload_detects_added_removed_and_changed_cameras() {
    let dir = TempDir::new("reload");
    dir.fake_sdk();
    write_pass(&dir, "a.pass", "pa");
    write_pass(&dir, "b.pass", "pb");
    write_pass(&dir, "c.pass", "pc");
    let head = "[sdk]\ndir = \"sdk\"\n[supervisor]\nbackoff_cap = \"2m\"\n";
    let path = dir.write(
        "hikwatch.toml",
        &format!(
            "{head}{}{}{}",
            camera("a", "192.0.2.1", "a.pass"),
            camera("b", "192.0.2.2", "b.pass"),
            camera("c", "192.0.2.3", "c.pass")
        ),
    );
    let opts = LoadOptions::default();
    let old = Config::load_with(&path, &opts).unwrap().config;

    // Nothing changed on disk: empty diff.
    let same = Config::load_with(&path, &opts).unwrap().config;
    assert!(diff(&old, &same).is_empty());

    // The password file of "a" is rewritten in place (same path), "b" moves host,
    // "c" is removed, "d" is added, and a tuning value changes.
    write_pass(&dir, "a.pass", "pa-new\n");
    write_pass(&dir, "d.pass", "pd");
    dir.write(
        "hikwatch.toml",
        &format!(
            "[sdk]\ndir = \"sdk\"\n[supervisor]\nbackoff_cap = \"5m\"\n{}{}{}",
            camera("a", "192.0.2.1", "a.pass"),
            camera("b", "192.0.2.20", "b.pass"),
            camera("d", "192.0.2.4", "d.pass")
        ),
    );
    let new = Config::load_with(&path, &opts).unwrap().config;
    let d = diff(&old, &new);
    assert_eq!(d.added, vec!["d"]);
    assert_eq!(d.removed, vec!["c"]);
    assert_eq!(
        d.changed,
        vec![
            CameraChange {
                id: "a".into(),
                credentials: true,
                endpoint: false,
                stream: false,
                backend: false,
            },
            CameraChange {
                id: "b".into(),
                credentials: false,
                endpoint: true,
                stream: false,
                backend: false,
            },
        ]
    );
    assert_eq!(d.global, vec!["supervisor.backoff_cap"]);
    assert!(d.restart_required().is_empty());
    assert!(credentials_changed(
        old.camera("a").unwrap(),
        new.camera("a").unwrap()
    ));
    assert!(!credentials_changed(
        old.camera("b").unwrap(),
        new.camera("b").unwrap()
    ));
    // The diff never carries a password.
    assert!(!format!("{d:?}").contains("pa-new"));
}
