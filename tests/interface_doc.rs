//! docs/interface.md stays true: its status JSON example has exactly the keys the running
//! daemon sends (and the queue capacity the code has), its metrics table names exactly the
//! series the daemon exposes, and its plain log-line example has the shape the daemon
//! prints. The real daemon, the real SDK and simcam; x86_64 only (the real SDK there).
#![cfg(target_arch = "x86_64")]

use std::collections::BTreeSet;
use std::time::Duration;

use harness::{CameraSpec, Daemon, DaemonConfig, SpawnOptions, TempDir, Value};
use simcam::{Fleet, FleetConfig};

const BIN: &str = env!("CARGO_BIN_EXE_hikwatch");
const DOC: &str = include_str!("../docs/interface.md");

/// The text of the first fenced block with `lang` after the heading `heading`.
fn fenced_after(heading: &str, lang: &str) -> String {
    let from = DOC
        .find(heading)
        .unwrap_or_else(|| panic!("docs/interface.md has no heading {heading:?}"));
    let rest = &DOC[from..];
    let open = format!("```{lang}\n");
    let start = rest
        .find(&open)
        .unwrap_or_else(|| panic!("no ```{lang} block after {heading:?}"))
        + open.len();
    let len = rest[start..].find("```").expect("unterminated block");
    rest[start..start + len].to_string()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

/// Every key path of an object tree (`cameras[].last_error.code`), arrays merged.
fn shape(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{prefix}{k}");
                out.insert(p.clone());
                shape(x, &format!("{p}."), out);
            }
        }
        Value::Array(a) => {
            for x in a {
                shape(x, &format!("{}[].", prefix.trim_end_matches('.')), out);
            }
        }
        _ => {}
    }
}

/// Metric names in the table of the "## Metrics" section.
fn documented_metrics() -> BTreeSet<String> {
    let from = DOC.find("## Metrics").expect("## Metrics");
    DOC[from..]
        .lines()
        .filter_map(|l| l.strip_prefix("| `hikwatch_"))
        .map(|l| format!("hikwatch_{}", &l[..l.find('`').expect("closing backtick")]))
        .collect()
}

/// Metric family names in an exposition (histogram series folded into their family).
fn exposed_metrics(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
        .collect()
}

/// A line's shape: every run of digits becomes one `9`, so `2024-05-01T12:00:00.123Z`
/// and a real time compare whatever the values and the length of the fraction.
fn digits_folded(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if !c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('9') {
            out.push('9');
        }
    }
    out
}

#[test]
fn status_metrics_and_log_examples_match_the_running_daemon() {
    let fleet = Fleet::start(FleetConfig {
        cameras: 2,
        threads: 1,
        ..FleetConfig::default()
    })
    .expect("simcam fleet");
    let dir = TempDir::new("interface-doc");
    let mut cfg = DaemonConfig::new(&harness::real_sdk_dir(env!("CARGO_MANIFEST_DIR")))
        .set("heartbeat_interval", "\"1s\"")
        .camera(CameraSpec::of(&fleet, 0, "gate-1"))
        // A wrong password: auth-hold with a last_error, so its keys are checked too.
        .camera(CameraSpec::of(&fleet, 1, "lobby").password("not-the-password"));
    cfg.metrics = Some(std::net::SocketAddr::from((
        [127, 0, 0, 1],
        harness::free_port(),
    )));
    let d = Daemon::spawn(BIN, &dir, &cfg, SpawnOptions::default());
    // gate-1 online; lobby failed a login, so its last_error is an object and its next
    // attempt is scheduled (the example's second camera).
    let ready = d.wait_status(Duration::from_secs(60), |v| {
        let gate = harness::camera(v, "gate-1");
        let lobby = harness::camera(v, "lobby");
        gate.is_some_and(|c| c["state"] == "online")
            && lobby.is_some_and(|c| c["last_error"].is_object() && c["next_attempt"].is_u64())
    });
    assert!(ready.is_some(), "{:?}", d.status());

    // Status JSON: the documented example and the live document have the same key paths.
    let doc: Value = serde_json::from_str(&fenced_after("### JSON document", "json"))
        .expect("the JSON example in docs/interface.md parses");
    let live = d.status().expect("status JSON");
    let (mut want, mut got) = (BTreeSet::new(), BTreeSet::new());
    shape(&doc, "", &mut want);
    shape(&live, "", &mut got);
    assert_eq!(
        want, got,
        "docs/interface.md JSON example vs the daemon: {live}"
    );
    assert_eq!(keys(&doc["queue"]), keys(&live["queue"]));
    assert_eq!(
        doc["queue"]["capacity"], live["queue"]["capacity"],
        "the documented queue capacity is the daemon's"
    );
    assert_eq!(
        live["queue"]["capacity"].as_u64(),
        Some(hikwatch::supervisor::JOB_QUEUE_CAPACITY as u64)
    );

    // Metrics: the table names every family the daemon exposes, and nothing else.
    let (code, text) = harness::http_get(cfg.metrics.unwrap(), "/metrics").expect("GET /metrics");
    assert_eq!(code, 200, "{text}");
    assert_eq!(documented_metrics(), exposed_metrics(&text), "{text}");

    // Plain log lines (no journald): the documented example has the daemon's shape up to
    // the level, e.g. `2024-05-01T12:00:00.123456789Z [WARN] `.
    let logs = "otherwise lines look like `";
    let at = DOC.find(logs).expect("log example") + logs.len();
    let example = &DOC[at..at + DOC[at..].find('`').expect("closing backtick")];
    let prefix = |l: &str| l[..l.find("] ").map_or(0, |i| i + 2)].to_string();
    let want = digits_folded(&prefix(example));
    assert!(
        !want.is_empty(),
        "the log example has no `[LEVEL] `: {example}"
    );
    let level = &example[example.find('[').expect("[LEVEL]")..example.find("] ").unwrap_or(0) + 2];
    let lines = d.logs();
    let line = lines
        .iter()
        .find(|l| l.text.contains(level))
        .unwrap_or_else(|| panic!("no {level:?} line (lobby's wrong password logs a warning)"));
    assert_eq!(
        want,
        digits_folded(&prefix(&line.text)),
        "documented log example {example:?} vs a real line {:?}",
        line.text
    );
}
