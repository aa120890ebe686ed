//! `hikwatch state show FILE [--json] [--now UNIX_SECONDS]`: decode a state file.
//!
//! Read-only: a bad file is reported (non-zero exit, message naming the file and the
//! cause) but not moved aside; only the daemon does that. Times are shown as the daemon
//! would restore them now, with the same wall-clock rule.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use super::clock::{self, Elapsed};
use super::format::{StateFile, StoredClass, StoredError};
use super::fsio;

/// `hikwatch state show FILE`: prints the decoded file (a table, or JSON with `json`),
/// evaluating remaining waits as if the wall clock read `now` (default: the real clock).
/// Exit 0 when decoded, 1 for a missing or bad file.
pub fn show(path: &Path, json: bool, now: Option<SystemTime>) -> ExitCode {
    let now = now.unwrap_or_else(SystemTime::now);
    match fsio::load(path) {
        Ok(Some((f, len))) => {
            let text = if json {
                render_json(path, &f, len, now)
            } else {
                render_table(path, &f, len, now)
            };
            out(&text);
            ExitCode::SUCCESS
        }
        Ok(None) => {
            eprintln!(
                "hikwatch state show: state file {}: no such file",
                path.display()
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("hikwatch state show: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn out(s: &str) {
    let _ = std::io::stdout().lock().write_all(s.as_bytes());
}

/// One camera as shown: the stored values after the wall-clock rule.
struct Shown {
    next_due: Option<Duration>,
    lock_left: Option<Duration>,
    last_online_ago: Option<Duration>,
}

fn shown(rec: &super::format::Record, elapsed: Duration) -> Shown {
    Shown {
        next_due: rec
            .next_due_ms
            .map(|ms| Duration::from_millis(ms).saturating_sub(elapsed)),
        lock_left: clock::remaining(rec.lock_left_ms, elapsed),
        last_online_ago: rec
            .last_online_ago_ms
            .map(|ms| Duration::from_millis(ms).saturating_add(elapsed)),
    }
}

fn error_text(e: &StoredError) -> String {
    match e.class {
        StoredClass::Auth {
            retries_left: Some(n),
        } => format!("auth ({}, {n} tries left)", e.code),
        StoredClass::Locked { secs_left: Some(s) } => format!(
            "locked ({}, device said {})",
            e.code,
            clock::human(Duration::from_secs(u64::from(s)))
        ),
        c => format!("{} ({})", c.name(), e.code),
    }
}

/// The human-readable table.
pub(super) fn render_table(path: &Path, f: &StateFile, len: usize, now: SystemTime) -> String {
    let elapsed = clock::elapsed_since_write(f.written_at_ms, now);
    let passed = elapsed.duration();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "state file {}: format v{}, {} camera{}, {} bytes",
        path.display(),
        f.version,
        f.records.len(),
        if f.records.len() == 1 { "" } else { "s" },
        len
    );
    let _ = writeln!(
        s,
        "written {} (wall clock); {}",
        clock::iso8601(f.written_at_ms),
        elapsed.describe()
    );
    if f.records.is_empty() {
        return s;
    }
    let header = [
        "CAMERA",
        "NEXT ATTEMPT",
        "HOLD",
        "LAST ERROR",
        "ATTEMPTS",
        "FAILS",
        "RECONNECTS",
        "LOGINS",
        "LAST ONLINE",
    ];
    let mut rows: Vec<[String; 9]> = Vec::with_capacity(f.records.len());
    for r in &f.records {
        let v = shown(r, passed);
        let next = match v.next_due {
            None => "-".to_owned(),
            Some(d) if d.is_zero() => "due now".to_owned(),
            Some(d) => format!("in {}", clock::human(d)),
        };
        let hold = match (r.auth_hold, v.lock_left) {
            (true, Some(l)) => format!("auth hold, locked {} left", clock::human(l)),
            (true, None) => "auth hold".to_owned(),
            (false, Some(l)) => format!("locked {} left", clock::human(l)),
            (false, None) => "-".to_owned(),
        };
        // A remembered device session is a login a previous process could not end; the
        // next start logs it out. Only its presence is shown: it is a credential.
        let hold = match &r.device_session {
            Some(_) if hold == "-" => "session to end".to_owned(),
            Some(_) => format!("{hold}, session to end"),
            None => hold,
        };
        rows.push([
            r.id.clone(),
            next,
            hold,
            r.last_error.as_ref().map_or("-".to_owned(), error_text),
            r.attempts.to_string(),
            r.consecutive_failures.to_string(),
            r.reconnects.to_string(),
            r.login_attempts.to_string(),
            v.last_online_ago
                .map_or("never".to_owned(), |d| format!("{} ago", clock::human(d))),
        ]);
    }
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                let _ = write!(l, "{cell:<w$}  ");
            }
        }
        let _ = writeln!(s, "{}", l.trim_end());
    };
    line(&header);
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&cells);
    }
    s
}

fn json_ms(d: Option<Duration>) -> String {
    d.map_or("null".to_owned(), |d| d.as_millis().to_string())
}

fn json_opt<T: ToString>(v: Option<T>) -> String {
    v.map_or("null".to_owned(), |v| v.to_string())
}

fn clock_name(e: &Elapsed) -> &'static str {
    match e {
        Elapsed::Measured(_) => "measured",
        Elapsed::NowUnset => "now_unset",
        Elapsed::NowAbsurd => "now_absurd",
        Elapsed::WrittenUnset => "written_unset",
        Elapsed::WrittenAbsurd => "written_absurd",
        Elapsed::ClockBehind { .. } => "clock_behind",
    }
}

/// The `--json` document: one object, times in milliseconds relative to now.
pub(super) fn render_json(path: &Path, f: &StateFile, len: usize, now: SystemTime) -> String {
    let elapsed = clock::elapsed_since_write(f.written_at_ms, now);
    let passed = elapsed.duration();
    let mut s = String::new();
    let _ = write!(
        s,
        "{{\"file\":{},\"version\":{},\"bytes\":{},\"written_at_ms\":{},\"written_at\":{},\
         \"clock\":{{\"judgement\":\"{}\",\"elapsed_ms\":{},\"note\":{}}},\"cameras\":[",
        crate::json::string(&path.display().to_string()),
        f.version,
        len,
        f.written_at_ms,
        crate::json::string(&clock::iso8601(f.written_at_ms)),
        clock_name(&elapsed),
        passed.as_millis(),
        crate::json::string(&elapsed.describe()),
    );
    for (i, r) in f.records.iter().enumerate() {
        let v = shown(r, passed);
        let err = match &r.last_error {
            None => "null".to_owned(),
            Some(e) => {
                let (retries, secs) = match e.class {
                    StoredClass::Auth { retries_left } => (retries_left.map(u32::from), None),
                    StoredClass::Locked { secs_left } => (None, secs_left),
                    _ => (None, None),
                };
                format!(
                    "{{\"class\":\"{}\",\"code\":{},\"retries_left\":{},\"secs_left\":{}}}",
                    e.class.name(),
                    e.code,
                    json_opt(retries),
                    json_opt(secs)
                )
            }
        };
        let _ = write!(
            s,
            "{}{{\"id\":{},\"attempts\":{},\"consecutive_failures\":{},\"next_due_in_ms\":{},\
             \"auth_hold\":{},\"lock_left_ms\":{},\"last_error\":{},\"reconnects\":{},\
             \"login_attempts\":{},\"last_online_ago_ms\":{},\"credential_fingerprint\":{},\
             \"device_session\":{}}}",
            if i == 0 { "" } else { "," },
            crate::json::string(&r.id),
            r.attempts,
            r.consecutive_failures,
            json_ms(v.next_due),
            r.auth_hold,
            json_ms(v.lock_left),
            err,
            r.reconnects,
            r.login_attempts,
            json_ms(v.last_online_ago),
            r.credential.is_some(),
            r.device_session.is_some(),
        );
    }
    s.push_str("]}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::super::format::{Record, StoredClass};
    use super::*;
    use std::time::UNIX_EPOCH;

    const W: u64 = 1_735_689_600_000;

    fn file() -> StateFile {
        let mut locked = Record::fresh("cam-1");
        locked.attempts = 4;
        locked.consecutive_failures = 4;
        locked.next_due_ms = Some(252_000 + 60_000);
        locked.lock_left_ms = Some(28 * 60_000);
        locked.last_error = Some(StoredError {
            class: StoredClass::Locked {
                secs_left: Some(1742),
            },
            code: 153,
        });
        locked.login_attempts = 9;
        locked.last_online_ago_ms = Some(3 * 3_600_000);
        let mut held = Record::fresh("door \"east\"");
        held.auth_hold = true;
        held.next_due_ms = Some(1000);
        held.last_error = Some(StoredError {
            class: StoredClass::Auth {
                retries_left: Some(2),
            },
            code: 1,
        });
        StateFile {
            version: 2,
            written_at_ms: W,
            salt: [0; 16],
            records: vec![locked, held, Record::fresh("gate")],
        }
    }

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn table_shows_human_times_one_minute_later() {
        let t = render_table(
            Path::new("/var/lib/hikwatch/state"),
            &file(),
            123,
            at(W + 60_000),
        );
        let expected = "\
state file /var/lib/hikwatch/state: format v2, 3 cameras, 123 bytes
written 2025-01-01T00:00:00Z (wall clock); 1m since the write
CAMERA       NEXT ATTEMPT  HOLD             LAST ERROR                        ATTEMPTS  FAILS  RECONNECTS  LOGINS  LAST ONLINE
cam-1        in 4m12s      locked 27m left  locked (153, device said 29m02s)  4         4      0           9       3h01m ago
door \"east\"  due now       auth hold        auth (1, 2 tries left)            0         0      0           0       never
gate         -             -                -                                 0         0      0           0       never
";
        assert_eq!(t, expected, "\n{t}");
    }

    #[test]
    fn table_keeps_full_waits_when_clock_unset() {
        let t = render_table(Path::new("s"), &file(), 1, at(5_000));
        assert!(t.contains("wall clock not set yet"), "{t}");
        assert!(t.contains("in 5m12s"), "{t}");
        assert!(t.contains("locked 28m left"), "{t}");
    }

    #[test]
    fn json_is_escaped_and_complete() {
        let j = render_json(Path::new("/tmp/a\"b"), &file(), 7, at(W + 60_000));
        assert!(
            j.starts_with("{\"file\":\"/tmp/a\\\"b\",\"version\":2,\"bytes\":7,"),
            "{j}"
        );
        assert!(
            j.contains("\"judgement\":\"measured\",\"elapsed_ms\":60000"),
            "{j}"
        );
        assert!(j.contains(
            "{\"id\":\"cam-1\",\"attempts\":4,\"consecutive_failures\":4,\"next_due_in_ms\":252000,\
             \"auth_hold\":false,\"lock_left_ms\":1620000,\"last_error\":{\"class\":\"locked\",\
             \"code\":153,\"retries_left\":null,\"secs_left\":1742},\"reconnects\":0,\
             \"login_attempts\":9,\"last_online_ago_ms\":10860000,\"credential_fingerprint\":false,\"device_session\":false}"
        ), "{j}");
        assert!(j.contains("\"id\":\"door \\\"east\\\"\""), "{j}");
        assert!(j.contains("\"next_due_in_ms\":0,"), "{j}");
        assert!(j.ends_with("]}\n"));
    }
}
