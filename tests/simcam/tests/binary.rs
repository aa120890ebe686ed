//! The `simcam` binary: ready line, stdin commands, JSON-lines replies.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

struct Bin {
    child: Child,
    stdin: ChildStdin,
    out: BufReader<ChildStdout>,
}

impl Bin {
    fn start(args: &[&str]) -> Bin {
        let exe = env!("CARGO_BIN_EXE_simcam");
        // Cross test runs execute under qemu-user without binfmt_misc: the child binary
        // is a target binary too, so start it through the same emulator.
        let mut cmd = if cfg!(all(target_arch = "arm", not(target_env = "musl"))) {
            let mut c = Command::new("qemu-arm");
            c.args(["-L", "/usr/arm-linux-gnueabihf", exe]);
            c
        } else if cfg!(target_arch = "aarch64") && std::env::var_os("SIMCAM_NATIVE").is_none() {
            let mut c = Command::new("qemu-aarch64");
            c.args(["-L", "/usr/aarch64-linux-gnu", exe]);
            c
        } else {
            Command::new(exe)
        };
        let mut child = cmd
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn simcam");
        let stdin = child.stdin.take().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        Bin { child, stdin, out }
    }

    fn line(&mut self) -> String {
        let mut s = String::new();
        self.out.read_line(&mut s).expect("read stdout");
        s
    }

    fn cmd(&mut self, c: &str) -> String {
        writeln!(self.stdin, "{c}").unwrap();
        self.stdin.flush().unwrap();
        self.line()
    }
}

/// The ports from the ready line.
fn ports(ready: &str) -> Vec<u16> {
    let s = ready.find("\"ports\":[").expect("ports") + 9;
    let e = ready[s..].find(']').unwrap() + s;
    ready[s..e].split(',').map(|p| p.parse().unwrap()).collect()
}

#[test]
fn ready_line_commands_and_quit() {
    let mut b = Bin::start(&["--cameras", "3", "--lockout", "2", "--password", "pw1"]);
    let ready = b.line();
    assert!(
        ready.starts_with("{\"ready\":true,\"cameras\":3"),
        "{ready}"
    );
    let ports = ports(&ready);
    assert_eq!(ports.len(), 3);
    let addr = |i: usize| std::net::SocketAddr::from(([127, 0, 0, 1], ports[i]));
    assert_eq!(login(addr(0), USER, "pw1").unwrap().resp.status, 200);

    let r = b.cmd("off 0");
    assert_eq!(r.trim(), "{\"ok\":true,\"cmd\":\"off\",\"cams\":1}");
    assert!(std::net::TcpStream::connect(addr(0)).is_err());
    assert!(b.cmd("on 0 50").contains("\"ok\":true"));
    let r = b.cmd("stats 0");
    assert!(r.contains("\"boot_id\":2"), "{r}");
    assert!(
        r.contains("\"power\":\"Booting\"") || r.contains("\"power\":\"On\""),
        "{r}"
    );

    assert!(b.cmd("passwd 1 pw2").contains("\"ok\":true"));
    assert_eq!(login(addr(1), USER, "pw2").unwrap().resp.status, 200);
    assert!(b.cmd("limit 1 1").contains("\"ok\":true"));
    assert_eq!(login(addr(1), USER, "pw2").unwrap().resp.status, 503);
    assert!(b.cmd("limit 1 none").contains("\"ok\":true"));

    // Lockout threshold 2 from the command line; unlock from stdin.
    login(addr(2), USER, "x").unwrap();
    let l = login(addr(2), USER, "x").unwrap();
    assert_eq!(l.resp.tag("lockStatus").as_deref(), Some("lock"));
    assert!(b.cmd("unlock 2").contains("\"ok\":true"));
    assert_eq!(login(addr(2), USER, "pw1").unwrap().resp.status, 200);

    for c in [
        "freeze all",
        "thaw all",
        "slow 0-2 0",
        "ace 2 on",
        "ace 2 off",
        "kick 1",
    ] {
        assert!(b.cmd(c).contains("\"ok\":true"), "{c}");
    }
    let r = b.cmd("stats");
    assert_eq!(r.matches("\"cam\":").count(), 3, "{r}");
    let r = b.cmd("total");
    assert!(r.contains("\"logins_ok\":"), "{r}");
    let r = b.cmd("events");
    assert!(r.contains("\"event\":\"lock_engaged\""), "{r}");
    assert!(r.contains("\"dropped\":0"), "{r}");
    // A second `events` only shows what is new.
    let r2 = b.cmd("events");
    assert!(!r2.contains("lock_engaged"), "{r2}");

    for bad in [
        "off 9",
        "off x",
        "frobnicate 1",
        "slow 1",
        "ace 1 maybe",
        "limit 1 -3",
    ] {
        let r = b.cmd(bad);
        assert!(r.starts_with("{\"ok\":false"), "{bad}: {r}");
        assert!(r.contains("\"error\":"), "{bad}: {r}");
    }
    assert!(b.cmd("quit").contains("\"cmd\":\"quit\""));
    assert!(b.child.wait().unwrap().success());
}

#[test]
fn follow_events_streams_json_lines() {
    let mut b = Bin::start(&["--cameras", "1", "--follow-events"]);
    let p = ports(&b.line())[0];
    login(std::net::SocketAddr::from(([127, 0, 0, 1], p)), USER, PASS).unwrap();
    let mut seen = Vec::new();
    for _ in 0..100 {
        let l = b.line();
        let done = l.contains("\"event\":\"login_ok\"");
        seen.push(l);
        if done {
            break;
        }
    }
    assert!(
        seen.iter()
            .any(|l| l.contains("\"event\":\"capabilities\"")),
        "{seen:?}"
    );
    assert!(seen.last().unwrap().contains("login_ok"), "{seen:?}");
    assert!(
        seen.iter()
            .all(|l| l.starts_with("{\"seq\":") && l.contains("\"unix_us\":"))
    );
    drop(b.stdin); // EOF quits
    assert!(b.child.wait().unwrap().success());
}

#[test]
fn bad_arguments_exit_2() {
    let mut b = Bin::start(&["--cameras", "nope"]);
    assert!(b.line().is_empty());
    assert_eq!(b.child.wait().unwrap().code(), Some(2));
}
