//! Walks the span-preserving TOML tree, applies the board profile and the defaults, and
//! collects every problem with its file, line and field.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::board;
use super::duration::{format_duration, parse_duration};
use super::{
    BackendKind, CameraConfig, Config, ConfigError, LoadOptions, LoadedConfig, LogConfig,
    LoginMode, Password, PasswordSource, Problem, SdkConfig, Settings, Severity, StateConfig,
    StatusConfig, Strategy, StreamConfig, StreamType, SupervisorConfig, WatchdogConfig,
};

/// Index of the config file in [`Ctx::sources`].
const CONFIG: usize = 0;

const TOP_KEYS: &[&str] = &[
    "board",
    "backend",
    "sdk",
    "state",
    "status",
    "supervisor",
    "log",
    "watchdog",
    "camera",
];
const SECTIONS: &[(&str, &[&str])] = &[
    ("sdk", &["dir", "threads"]),
    ("state", &["path", "flush_interval"]),
    ("status", &["socket", "metrics"]),
    (
        "supervisor",
        &[
            "strategy",
            "heartbeat_interval",
            "heartbeat_misses",
            "max_concurrent_logins",
            "workers",
            "backoff_initial",
            "backoff_multiplier",
            "backoff_cap",
            "slow_backoff_floor",
            "fatal_retry",
            "stable_period",
            "start_spread",
            "lock_margin",
            "lock_unknown",
            "probe_interval",
            "probe_rate",
            "blind_login_interval",
            "reopen_login_gap",
            "stream_gap",
            "resource_throttle",
            "login_deadline",
            "heartbeat_deadline",
            "logout_deadline",
            "stream_deadline",
            "probe_deadline",
            "link_watch_timeout",
            "max_cameras",
        ],
    ),
    ("log", &["level", "repeat_window"]),
    ("watchdog", &["device", "keepalive"]),
];
const CAMERA_KEYS: &[&str] = &[
    "id",
    "host",
    "port",
    "user",
    "password",
    "password_file",
    "password_credential",
    "backend",
    "login_mode",
    "stream",
];
/// The `backend` values.
const BACKENDS: &[(&str, BackendKind)] =
    &[("sdk", BackendKind::Sdk), ("isapi", BackendKind::Isapi)];
const STREAM_KEYS: &[&str] = &["channel", "type", "rtsp_port"];

/// Longest password and user name the SDK's `char[64]` fields hold with a NUL.
const MAX_CREDENTIAL_LEN: usize = 63;
/// A password file larger than this is surely the wrong file.
const MAX_SECRET_FILE: u64 = 4096;
/// `sun_path` holds 108 bytes including the NUL.
const MAX_SOCKET_PATH: usize = 107;

/// One file taking part in the load.
struct SourceInfo {
    /// Shown in problems.
    name: String,
    /// Byte offsets where lines start, for offset -> line.
    line_starts: Vec<usize>,
    /// Base for relative paths; `None` for built-in profiles (relative paths refused).
    dir: Option<PathBuf>,
}

/// Problem collector.
struct Ctx<'o> {
    sources: Vec<SourceInfo>,
    problems: Vec<Problem>,
    /// Where each field's effective value was written: `(source, offset)`.
    locations: HashMap<String, (usize, usize)>,
    opts: &'o LoadOptions,
}

/// A value and the file it came from.
#[derive(Clone, Copy)]
struct SourcedValue<'a, 'i> {
    src: usize,
    value: &'a Spanned<DeValue<'i>>,
}

impl SourcedValue<'_, '_> {
    fn offset(&self) -> usize {
        self.value.span().start
    }
}

/// A table after unknown-key checks; for the global sections, the board profile's keys
/// overlaid with the config file's.
struct Section<'a, 'i> {
    /// Field path prefix: `supervisor`, `camera[2]`.
    path: String,
    items: BTreeMap<String, SourcedValue<'a, 'i>>,
    /// Where to point problems about missing keys: `(source, offset)`.
    header: Option<(usize, usize)>,
}

impl<'a, 'i> Section<'a, 'i> {
    fn empty(path: &str) -> Self {
        Section {
            path: path.to_string(),
            items: BTreeMap::new(),
            header: None,
        }
    }

    fn get(&self, key: &str) -> Option<SourcedValue<'a, 'i>> {
        self.items.get(key).copied()
    }

    fn field(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    fn overlay(&mut self, other: Section<'a, 'i>) {
        self.items.extend(other.items);
        if other.header.is_some() {
            self.header = other.header;
        }
    }
}

impl<'o> Ctx<'o> {
    fn add_source(&mut self, name: String, text: &str, dir: Option<PathBuf>) -> usize {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        self.sources.push(SourceInfo {
            name,
            line_starts,
            dir,
        });
        self.sources.len() - 1
    }

    fn line(&self, src: usize, offset: usize) -> usize {
        let starts = &self.sources[src].line_starts;
        starts.partition_point(|&s| s <= offset).max(1)
    }

    fn push(
        &mut self,
        severity: Severity,
        at: Option<(usize, usize)>,
        src: usize,
        field: &str,
        msg: String,
    ) {
        let (src, line) = match at {
            Some((s, off)) => (s, Some(self.line(s, off))),
            None => (src, None),
        };
        self.problems.push(Problem {
            severity,
            file: self.sources[src].name.clone(),
            line,
            field: field.to_string(),
            message: msg,
        });
    }

    fn error(&mut self, src: usize, offset: usize, field: &str, msg: impl Into<String>) {
        self.push(Severity::Error, Some((src, offset)), src, field, msg.into());
    }

    fn warn(&mut self, src: usize, offset: usize, field: &str, msg: impl Into<String>) {
        self.push(
            Severity::Warning,
            Some((src, offset)),
            src,
            field,
            msg.into(),
        );
    }

    /// A problem about `field`, placed where its value was written, else nowhere in the
    /// config file.
    fn at_field(&mut self, severity: Severity, field: &str, msg: impl Into<String>) {
        let at = self.locations.get(field).copied();
        self.push(severity, at, CONFIG, field, msg.into());
    }

    fn error_at_item(&mut self, item: SourcedValue<'_, '_>, field: &str, msg: impl Into<String>) {
        self.error(item.src, item.offset(), field, msg);
    }

    fn record(&mut self, field: &str, item: SourcedValue<'_, '_>) {
        self.locations
            .insert(field.to_string(), (item.src, item.offset()));
    }

    /// Checks that `value` is a table and that its keys are known; reports the rest.
    fn section<'a, 'i>(
        &mut self,
        src: usize,
        path: &str,
        value: &'a Spanned<DeValue<'i>>,
        known: &[&str],
    ) -> Option<Section<'a, 'i>> {
        let DeValue::Table(table) = value.get_ref() else {
            self.error(
                src,
                value.span().start,
                path,
                format!("expected a table, found {}", value.get_ref().type_str()),
            );
            return None;
        };
        let mut sec = Section::empty(path);
        sec.header = Some((src, value.span().start));
        for (key, v) in table.iter() {
            let k: &str = key.get_ref();
            if known.contains(&k) {
                sec.items
                    .insert(k.to_string(), SourcedValue { src, value: v });
            } else {
                let field = format!("{path}.{k}");
                let msg = unknown_key_message(k, known);
                self.error(src, key.span().start, &field, msg);
            }
        }
        Some(sec)
    }

    // ---- typed getters: on a problem they record it and return the default ----------

    fn string<'a>(&mut self, item: SourcedValue<'a, '_>, field: &str) -> Option<&'a str> {
        match item.value.get_ref() {
            DeValue::String(s) => Some(s.as_ref()),
            other => {
                self.error_at_item(
                    item,
                    field,
                    format!("expected a string, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn integer(&mut self, item: SourcedValue<'_, '_>, field: &str) -> Option<i128> {
        match item.value.get_ref() {
            DeValue::Integer(i) => match i128::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.error_at_item(item, field, format!("{} is too large", i.as_str()));
                    None
                }
            },
            other => {
                self.error_at_item(
                    item,
                    field,
                    format!("expected an integer, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn uint(&mut self, sec: &Section<'_, '_>, key: &str, default: u64, min: u64, max: u64) -> u64 {
        let Some(item) = sec.get(key) else {
            return default;
        };
        let field = sec.field(key);
        self.record(&field, item);
        match self.integer(item, &field) {
            Some(n) if n >= i128::from(min) && n <= i128::from(max) => n as u64,
            Some(n) => {
                self.error_at_item(item, &field, format!("{n} is out of range {min}..={max}"));
                default
            }
            None => default,
        }
    }

    fn float(&mut self, sec: &Section<'_, '_>, key: &str, default: f64, min: f64, max: f64) -> f64 {
        let Some(item) = sec.get(key) else {
            return default;
        };
        let field = sec.field(key);
        self.record(&field, item);
        let v = match item.value.get_ref() {
            DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
            DeValue::Integer(_) => self.integer(item, &field).map(|n| n as f64),
            other => {
                self.error_at_item(
                    item,
                    &field,
                    format!("expected a number, found {}", other.type_str()),
                );
                return default;
            }
        };
        match v {
            Some(x) if x.is_finite() && x >= min && x <= max => x,
            Some(x) => {
                self.error_at_item(item, &field, format!("{x} is out of range {min}..={max}"));
                default
            }
            None => {
                self.error_at_item(item, &field, "not a number");
                default
            }
        }
    }

    fn duration(
        &mut self,
        sec: &Section<'_, '_>,
        key: &str,
        default: Duration,
        min: Duration,
        max: Duration,
    ) -> Duration {
        let Some(item) = sec.get(key) else {
            return default;
        };
        let field = sec.field(key);
        self.record(&field, item);
        let text = match item.value.get_ref() {
            DeValue::String(s) => s.as_ref(),
            DeValue::Integer(i) => {
                let n = i.as_str();
                self.error_at_item(
                    item,
                    &field,
                    format!("durations are strings with a unit: write \"{n}s\" or \"{n}ms\""),
                );
                return default;
            }
            other => {
                self.error_at_item(
                    item,
                    &field,
                    format!(
                        "expected a duration like \"5s\", found {}",
                        other.type_str()
                    ),
                );
                return default;
            }
        };
        match parse_duration(text) {
            Ok(d) if d >= min && d <= max => d,
            Ok(_) => {
                self.error_at_item(
                    item,
                    &field,
                    format!(
                        "{text:?} is out of range {}..={}",
                        format_duration(min),
                        format_duration(max)
                    ),
                );
                default
            }
            Err(msg) => {
                self.error_at_item(item, &field, msg);
                default
            }
        }
    }

    fn choice<T: Copy>(
        &mut self,
        sec: &Section<'_, '_>,
        key: &str,
        default: T,
        options: &[(&str, T)],
    ) -> T {
        let Some(item) = sec.get(key) else {
            return default;
        };
        let field = sec.field(key);
        self.record(&field, item);
        let Some(s) = self.string(item, &field) else {
            return default;
        };
        if let Some((_, v)) = options.iter().find(|(name, _)| *name == s) {
            return *v;
        }
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let mut msg = format!("{s:?} is not one of {}", names.join(" | "));
        if let Some(best) = suggest(s, &names) {
            msg.push_str(&format!("; did you mean {best:?}?"));
        }
        self.error_at_item(item, &field, msg);
        default
    }

    /// A path; relative paths resolve against the folder of the file that wrote them.
    /// `Ok(None)` for an empty string when `empty_is_none`.
    fn path(
        &mut self,
        item: SourcedValue<'_, '_>,
        field: &str,
        empty_is_none: bool,
    ) -> Option<PathBuf> {
        let s = self.string(item, field)?;
        if s.is_empty() {
            if !empty_is_none {
                self.error_at_item(item, field, "must not be empty");
            }
            return None;
        }
        if s.contains('\0') {
            self.error_at_item(item, field, "contains a NUL byte");
            return None;
        }
        let p = Path::new(s);
        if p.is_absolute() {
            return Some(p.to_path_buf());
        }
        match &self.sources[item.src].dir {
            Some(dir) => Some(dir.join(p)),
            None => {
                self.error_at_item(
                    item,
                    field,
                    format!("{s:?}: built-in board profiles must use absolute paths"),
                );
                None
            }
        }
    }

    fn opt_path(
        &mut self,
        sec: &Section<'_, '_>,
        key: &str,
        default: Option<PathBuf>,
    ) -> Option<PathBuf> {
        let Some(item) = sec.get(key) else {
            return default;
        };
        let field = sec.field(key);
        self.record(&field, item);
        self.path(item, &field, true)
    }

    fn req_path(&mut self, sec: &Section<'_, '_>, key: &str, default: PathBuf) -> PathBuf {
        let Some(item) = sec.get(key) else {
            return default;
        };
        let field = sec.field(key);
        self.record(&field, item);
        self.path(item, &field, false).unwrap_or(default)
    }

    /// A required string; a missing key is reported at the section header.
    fn required_str<'a, 'i>(
        &mut self,
        sec: &Section<'a, 'i>,
        key: &str,
    ) -> Option<(&'a str, SourcedValue<'a, 'i>)> {
        let field = sec.field(key);
        match sec.get(key) {
            Some(item) => {
                self.record(&field, item);
                let s = self.string(item, &field)?;
                Some((s, item))
            }
            None => {
                let msg = format!("missing required key {key:?}");
                self.push(Severity::Error, sec.header, CONFIG, &field, msg);
                None
            }
        }
    }
}

/// Edit distance counting an adjacent swap as one edit (optimal string alignment), for
/// "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev2: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 0..a.len() {
        let mut cur = vec![i + 1; b.len() + 1];
        for j in 0..b.len() {
            let cost = usize::from(a[i] != b[j]);
            let mut d = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
            if i > 0 && j > 0 && a[i] == b[j - 1] && a[i - 1] == b[j] {
                d = d.min(prev2[j - 1] + 1);
            }
            cur[j + 1] = d;
        }
        prev2 = std::mem::replace(&mut prev, cur);
    }
    prev[b.len()]
}

/// The closest candidate within a small edit distance.
fn suggest<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn unknown_key_message(key: &str, known: &[&str]) -> String {
    let mut msg = format!("unknown key {key:?}");
    if let Some(best) = suggest(key, known) {
        msg.push_str(&format!("; did you mean {best:?}?"));
    } else if let Some((section, _)) = SECTIONS.iter().find(|(_, keys)| keys.contains(&key)) {
        msg.push_str(&format!("; it belongs in [{section}]"));
    } else if CAMERA_KEYS.contains(&key) {
        msg.push_str("; it belongs in a [[camera]] table");
    }
    msg
}

/// Loads config `text` read from `path`: the board profile, the global sections (profile
/// first, config file on top), the cameras, then the checks across them.
pub(super) fn load_text(
    text: &str,
    path: &Path,
    opts: &LoadOptions,
) -> Result<LoadedConfig, ConfigError> {
    let mut ctx = Ctx {
        sources: Vec::new(),
        problems: Vec::new(),
        locations: HashMap::new(),
        opts,
    };
    let dir = path
        .parent()
        .map(|d| {
            if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            }
        })
        .map(Path::to_path_buf);
    ctx.add_source(path.display().to_string(), text, dir);

    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        // A recovered tree after a syntax error would produce misleading follow-up
        // problems; report every syntax error and stop there.
        report_syntax_errors(&mut ctx, CONFIG, syntax);
        return Err(finish_err(ctx));
    }
    let doc = doc.into_inner();
    check_top_keys(&mut ctx, &doc);

    let board = board_profile(&mut ctx, &doc);
    let profile_doc = parse_board_profile(&mut ctx, &board);
    let sections = global_sections(&mut ctx, profile_doc.as_ref(), &doc);
    let sec = |n: &str| &sections[n];
    let backend = global_backend(&mut ctx, &doc);
    let sdk = sdk_section(&mut ctx, sec("sdk"));
    let state = state_section(&mut ctx, sec("state"));
    let status = status_section(&mut ctx, sec("status"));
    let supervisor = supervisor_section(&mut ctx, sec("supervisor"));
    let log = log_section(&mut ctx, sec("log"));
    let watchdog = watchdog_section(&mut ctx, sec("watchdog"));
    let cameras = camera_tables(&mut ctx, &doc, &backend);

    let config = Config {
        path: path.to_path_buf(),
        board: board.label,
        backend: backend.kind,
        sdk,
        state,
        status,
        supervisor,
        log,
        watchdog,
        cameras: cameras.cameras,
    };
    cross_checks(&mut ctx, &config, &cameras.offsets, &cameras.ids);

    if ctx.problems.iter().any(|p| p.severity == Severity::Error) {
        return Err(finish_err(ctx));
    }
    let config_name = ctx.sources[CONFIG].name.clone();
    let mut warnings = ctx.problems;
    sort_problems(&mut warnings, &config_name);
    Ok(LoadedConfig { config, warnings })
}

/// Reports every syntax error of source `src`.
fn report_syntax_errors(ctx: &mut Ctx<'_>, src: usize, errors: Vec<toml::de::Error>) {
    for e in errors {
        let off = e.span().map_or(0, |s| s.start);
        ctx.error(src, off, "", format!("syntax error: {}", e.message()));
    }
}

/// Unknown top-level keys of the config file.
fn check_top_keys(ctx: &mut Ctx<'_>, doc: &DeTable<'_>) {
    for (key, _) in doc.iter() {
        let k: &str = key.get_ref();
        if !TOP_KEYS.contains(&k) {
            ctx.error(
                CONFIG,
                key.span().start,
                k,
                unknown_key_message(k, TOP_KEYS),
            );
        }
    }
}

/// The board profile `board = ...` selects: a built-in one or a file.
#[derive(Default)]
struct BoardProfile {
    /// What `Config::board` shows: the built-in name or the file's path.
    label: Option<String>,
    /// The profile's TOML text.
    text: Option<Cow<'static, str>>,
    /// Its index in [`Ctx::sources`].
    src: Option<usize>,
}

/// Finds and reads the board profile, if the config selects one.
fn board_profile(ctx: &mut Ctx<'_>, doc: &DeTable<'_>) -> BoardProfile {
    let mut profile = BoardProfile::default();
    let Some(v) = doc.get("board") else {
        return profile;
    };
    let item = SourcedValue {
        src: CONFIG,
        value: v,
    };
    let Some(name) = ctx.string(item, "board") else {
        return profile;
    };
    if board::is_path(name) {
        if let Some(p) = ctx.path(item, "board", false) {
            match std::fs::read_to_string(&p) {
                Ok(t) => {
                    let dir = p.parent().map(Path::to_path_buf);
                    profile.src = Some(ctx.add_source(p.display().to_string(), &t, dir));
                    profile.text = Some(Cow::Owned(t));
                    profile.label = Some(p.display().to_string());
                }
                Err(e) => ctx.error_at_item(
                    item,
                    "board",
                    format!("cannot read board profile {}: {e}", p.display()),
                ),
            }
        }
    } else if let Some(t) = board::builtin_board(name) {
        profile.src = Some(ctx.add_source(format!("<built-in board {name}>"), t, None));
        profile.text = Some(Cow::Borrowed(t));
        profile.label = Some(name.to_string());
    } else {
        let names: Vec<&str> = board::BUILTIN_BOARDS.iter().map(|(n, _)| *n).collect();
        let mut msg = format!(
            "unknown board {name:?} (built-in: {}; or a path to a .toml profile)",
            names.join(", ")
        );
        if let Some(best) = suggest(name, &names) {
            msg.push_str(&format!("; did you mean {best:?}?"));
        }
        ctx.error_at_item(item, "board", msg);
    }
    profile
}

/// Parses the board profile and reports what a profile may not contain; `None` without
/// a (syntactically valid) profile.
fn parse_board_profile<'p>(
    ctx: &mut Ctx<'_>,
    board: &'p BoardProfile,
) -> Option<(usize, DeTable<'p>)> {
    let (Some(body), Some(src)) = (board.text.as_deref(), board.src) else {
        return None;
    };
    let (pdoc, perr) = DeTable::parse_recoverable(body);
    if !perr.is_empty() {
        report_syntax_errors(ctx, src, perr);
        return None;
    }
    let pdoc = pdoc.into_inner();
    for (key, _) in pdoc.iter() {
        let k: &str = key.get_ref();
        if SECTIONS.iter().any(|(s, _)| *s == k) {
            continue;
        }
        let msg = match k {
            "camera" => "board profiles cannot define cameras".to_string(),
            "board" => "a board profile cannot select another board".to_string(),
            _ => unknown_key_message(k, TOP_KEYS),
        };
        ctx.error(src, key.span().start, k, msg);
    }
    Some((src, pdoc))
}

/// The file's `backend` (the default of its cameras) and where it was written.
struct GlobalBackend {
    kind: BackendKind,
    /// The offset of the value in the config file; `None` when it was not written.
    at: Option<usize>,
}

/// `backend = ...` at the top of the config file.
fn global_backend(ctx: &mut Ctx<'_>, doc: &DeTable<'_>) -> GlobalBackend {
    let mut out = GlobalBackend {
        kind: BackendKind::Sdk,
        at: None,
    };
    let Some(v) = doc.get("backend") else {
        return out;
    };
    let item = SourcedValue {
        src: CONFIG,
        value: v,
    };
    ctx.record("backend", item);
    let Some(s) = ctx.string(item, "backend") else {
        return out;
    };
    out.at = Some(item.offset());
    match BACKENDS.iter().find(|(name, _)| *name == s) {
        Some(&(_, kind)) => out.kind = kind,
        None => {
            let names: Vec<&str> = BACKENDS.iter().map(|(n, _)| *n).collect();
            let mut msg = format!("{s:?} is not one of {}", names.join(" | "));
            if let Some(best) = suggest(s, &names) {
                msg.push_str(&format!("; did you mean {best:?}?"));
            }
            ctx.error_at_item(item, "backend", msg);
        }
    }
    if !out.kind.compiled_in() {
        ctx.error_at_item(item, "backend", without_backend(out.kind));
    }
    out
}

/// The problem of a backend this build does not have.
fn without_backend(kind: BackendKind) -> String {
    format!(
        "{:?}: this hikwatch was built without the {} backend (cargo feature `{kind}`); use \
         backend = \"isapi\" or a build with the feature",
        kind.as_str(),
        kind.as_str().to_uppercase()
    )
}

/// The global sections: the profile's keys first, the config file's on top.
fn global_sections<'a, 'i>(
    ctx: &mut Ctx<'_>,
    profile_doc: Option<&'a (usize, DeTable<'i>)>,
    doc: &'a DeTable<'i>,
) -> HashMap<&'static str, Section<'a, 'i>> {
    let mut sections = HashMap::new();
    for (name, keys) in SECTIONS {
        let mut merged = Section::empty(name);
        if let Some((src, pdoc)) = profile_doc {
            if let Some(v) = pdoc.get(*name) {
                if let Some(s) = ctx.section(*src, name, v, keys) {
                    merged.overlay(s);
                }
            }
        }
        if let Some(v) = doc.get(*name) {
            if let Some(s) = ctx.section(CONFIG, name, v, keys) {
                merged.overlay(s);
            }
        }
        sections.insert(*name, merged);
    }
    sections
}

/// `[sdk]`.
fn sdk_section(ctx: &mut Ctx<'_>, sec: &Section<'_, '_>) -> SdkConfig {
    let d = SdkConfig::default();
    SdkConfig {
        dir: ctx.req_path(sec, "dir", d.dir),
        threads: ctx.uint(sec, "threads", d.threads.into(), 1, 64) as u32,
    }
}

/// `[state]`.
fn state_section(ctx: &mut Ctx<'_>, sec: &Section<'_, '_>) -> StateConfig {
    let d = StateConfig::default();
    StateConfig {
        path: ctx.req_path(sec, "path", d.path),
        flush_interval: ctx.duration(
            sec,
            "flush_interval",
            d.flush_interval,
            Duration::from_secs(1),
            Duration::from_secs(3600),
        ),
    }
}

/// `[status]`.
fn status_section(ctx: &mut Ctx<'_>, sec: &Section<'_, '_>) -> StatusConfig {
    let d = StatusConfig::default();
    let socket = ctx.req_path(sec, "socket", d.socket);
    let metrics = match sec.get("metrics") {
        None => None,
        Some(item) => {
            ctx.record("status.metrics", item);
            match ctx.string(item, "status.metrics") {
                Some("") | None => None,
                Some(s) => match s.parse::<SocketAddr>() {
                    Ok(a) => Some(a),
                    Err(_) => {
                        ctx.error_at_item(
                            item,
                            "status.metrics",
                            format!("{s:?} is not IP:PORT (e.g. \"127.0.0.1:9184\")"),
                        );
                        None
                    }
                },
            }
        }
    };
    StatusConfig { socket, metrics }
}

/// `[log]`.
fn log_section(ctx: &mut Ctx<'_>, sec: &Section<'_, '_>) -> LogConfig {
    let d = LogConfig::default();
    LogConfig {
        level: ctx.choice(
            sec,
            "level",
            d.level,
            &[
                ("off", log::LevelFilter::Off),
                ("error", log::LevelFilter::Error),
                ("warn", log::LevelFilter::Warn),
                ("info", log::LevelFilter::Info),
                ("debug", log::LevelFilter::Debug),
                ("trace", log::LevelFilter::Trace),
            ],
        ),
        repeat_window: ctx.duration(
            sec,
            "repeat_window",
            d.repeat_window,
            Duration::from_secs(1),
            Duration::from_secs(3600),
        ),
    }
}

/// `[watchdog]`.
fn watchdog_section(ctx: &mut Ctx<'_>, sec: &Section<'_, '_>) -> WatchdogConfig {
    let d = WatchdogConfig::default();
    WatchdogConfig {
        device: ctx.opt_path(sec, "device", d.device),
        keepalive: ctx.duration(
            sec,
            "keepalive",
            d.keepalive,
            Duration::from_secs(1),
            Duration::from_secs(600),
        ),
    }
}

/// The `[[camera]]` tables, and what the cross-checks need to place their problems.
struct CameraTables {
    /// The cameras that loaded.
    cameras: Vec<CameraConfig>,
    /// `(index, offset of the table)` of each of `cameras`.
    offsets: Vec<(usize, usize)>,
    /// `(index, id, offset of the id)` for every camera with a readable id, valid or not
    /// otherwise, so duplicates are found even among broken cameras.
    ids: Vec<(usize, String, usize)>,
}

/// Loads every `[[camera]]` table.
fn camera_tables(ctx: &mut Ctx<'_>, doc: &DeTable<'_>, backend: &GlobalBackend) -> CameraTables {
    let mut t = CameraTables {
        cameras: Vec::new(),
        offsets: Vec::new(),
        ids: Vec::new(),
    };
    let Some(v) = doc.get("camera") else {
        return t;
    };
    match v.get_ref() {
        DeValue::Array(arr) => {
            for (i, elem) in arr.iter().enumerate() {
                if let Some(id) = elem.get_ref().get("id") {
                    if let Some(s) = id.get_ref().as_str() {
                        t.ids.push((i, s.to_string(), id.span().start));
                    }
                }
                if let Some(c) = camera(ctx, i, elem, backend) {
                    t.cameras.push(c);
                    t.offsets.push((i, elem.span().start));
                }
            }
        }
        other => ctx.error(
            CONFIG,
            v.span().start,
            "camera",
            format!("expected [[camera]] tables, found {}", other.type_str()),
        ),
    }
    t
}

/// Config file first, then the profile; by line, problems without a line last.
fn sort_problems(p: &mut Vec<Problem>, config_name: &str) {
    crate::stable_sort::sort_by(p, |a, b| {
        let key = |x: &Problem| {
            (
                x.file != config_name,
                x.file.clone(),
                x.line.is_none(),
                x.line,
            )
        };
        key(a).cmp(&key(b))
    });
}

fn finish_err(ctx: Ctx<'_>) -> ConfigError {
    let mut problems = ctx.problems;
    sort_problems(&mut problems, &ctx.sources[CONFIG].name);
    ConfigError::Invalid { problems }
}

fn supervisor_section(ctx: &mut Ctx<'_>, s: &Section<'_, '_>) -> SupervisorConfig {
    let d = SupervisorConfig::default();
    let ds = d.settings;
    let secs = Duration::from_secs;
    let ms = Duration::from_millis;
    let zero = Duration::ZERO;
    let day = secs(86_400);
    let workers = match s.get("workers") {
        None => ds.workers,
        Some(_) => Some(ctx.uint(s, "workers", 1, 1, 1024) as u16),
    };
    let settings = Settings {
        strategy: ctx.choice(
            s,
            "strategy",
            ds.strategy,
            // The benchmark-only peers are accepted too (with the warning below), but
            // not offered in the message about a wrong value.
            &Strategy::ALL
                .into_iter()
                .chain(Strategy::PEERS.into_iter().filter(|p| {
                    s.get("strategy")
                        .is_some_and(|it| matches!(it.value.get_ref(), DeValue::String(v) if v.as_ref() == p.name()))
                }))
                .map(|st| (st.name(), st))
                .collect::<Vec<_>>(),
        ),
        heartbeat_interval: ctx.duration(
            s,
            "heartbeat_interval",
            ds.heartbeat_interval,
            secs(1),
            secs(600),
        ),
        heartbeat_misses: ctx.uint(s, "heartbeat_misses", ds.heartbeat_misses.into(), 1, 100) as u8,
        max_concurrent_logins: ctx.uint(
            s,
            "max_concurrent_logins",
            ds.max_concurrent_logins.into(),
            1,
            1024,
        ) as u16,
        workers,
        backoff_initial: ctx.duration(s, "backoff_initial", ds.backoff_initial, ms(100), secs(600)),
        backoff_multiplier: ctx.float(s, "backoff_multiplier", ds.backoff_multiplier, 1.0, 10.0),
        backoff_cap: ctx.duration(s, "backoff_cap", ds.backoff_cap, secs(1), secs(3600)),
        slow_backoff_floor: ctx.duration(
            s,
            "slow_backoff_floor",
            ds.slow_backoff_floor,
            zero,
            secs(3600),
        ),
        fatal_retry: ctx.duration(s, "fatal_retry", ds.fatal_retry, secs(1), day),
        stable_period: ctx.duration(s, "stable_period", ds.stable_period, zero, day),
        start_spread: ctx.duration(s, "start_spread", ds.start_spread, zero, secs(600)),
        lock_margin: ctx.duration(s, "lock_margin", ds.lock_margin, zero, day),
        lock_unknown: ctx.duration(s, "lock_unknown", ds.lock_unknown, secs(1), day),
        probe_interval: ctx.duration(s, "probe_interval", ds.probe_interval, ms(100), secs(3600)),
        probe_rate: ctx.uint(s, "probe_rate", ds.probe_rate.into(), 1, 100_000) as u32,
        blind_login_interval: ctx.duration(
            s,
            "blind_login_interval",
            ds.blind_login_interval,
            secs(1),
            day,
        ),
        reopen_login_gap: ctx.duration(
            s,
            "reopen_login_gap",
            ds.reopen_login_gap,
            zero,
            secs(3600),
        ),
        stream_gap: ctx.duration(s, "stream_gap", ds.stream_gap, secs(1), secs(600)),
        resource_throttle: ctx.duration(
            s,
            "resource_throttle",
            ds.resource_throttle,
            zero,
            secs(3600),
        ),
        login_deadline: ctx.duration(s, "login_deadline", ds.login_deadline, secs(1), secs(300)),
        heartbeat_deadline: ctx.duration(
            s,
            "heartbeat_deadline",
            ds.heartbeat_deadline,
            ms(100),
            secs(300),
        ),
        logout_deadline: ctx.duration(s, "logout_deadline", ds.logout_deadline, ms(100), secs(300)),
        stream_deadline: ctx.duration(s, "stream_deadline", ds.stream_deadline, ms(100), secs(300)),
        probe_deadline: ctx.duration(s, "probe_deadline", ds.probe_deadline, ms(100), secs(60)),
        link_watch_timeout: ctx.duration(
            s,
            "link_watch_timeout",
            ds.link_watch_timeout,
            zero,
            secs(300),
        ),
    };
    #[cfg(feature = "bench-peers")]
    if settings.strategy.is_benchmark_peer() {
        ctx.at_field(
            Severity::Warning,
            "supervisor.strategy",
            format!(
                "{:?} is a BENCHMARK-ONLY peer (scripts/bench.sh), never for production: {}",
                settings.strategy.name(),
                match settings.strategy {
                    Strategy::Naive => {
                        "no backoff, jitter or error classes; a wrong password is retried \
                         every tick and locks the camera's account"
                    }
                    _ => {
                        "hikwatch logs in once and leaves reconnects to the SDK; a session \
                         the SDK gives up on stays down"
                    }
                }
            ),
        );
    }
    SupervisorConfig {
        settings,
        max_cameras: max_cameras(ctx, s, d.max_cameras),
    }
}

/// `[supervisor] max_cameras`: 1 up to hikwatch's one camera limit, [`crate::MAX_CAMERAS`].
fn max_cameras(ctx: &mut Ctx<'_>, s: &Section<'_, '_>, default: u32) -> u32 {
    let n = ctx.uint(s, "max_cameras", default.into(), 1, u32::MAX.into());
    if n > crate::MAX_CAMERAS as u64 {
        let e = crate::CameraLimitExceeded { count: n as usize };
        ctx.at_field(Severity::Error, "supervisor.max_cameras", e.to_string());
        return default;
    }
    n as u32
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("must not be empty".into());
    }
    if host.len() > 128 {
        return Err(format!("{} bytes is longer than the SDK's 128", host.len()));
    }
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    if host.starts_with('[') {
        return Err(format!("{host:?}: write IPv6 addresses without brackets"));
    }
    if host.contains(':') {
        return Err(format!("{host:?}: put the port in `port`, not in `host`"));
    }
    let ok = host.split('.').all(|l| {
        !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if ok {
        Ok(())
    } else {
        Err(format!("{host:?} is neither an IP address nor a host name"))
    }
}

/// Rules every password and user name must follow.
fn check_credential_text(what: &str, s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if s.len() > MAX_CREDENTIAL_LEN {
        return Err(format!(
            "{what} is {} bytes; the SDK takes at most {MAX_CREDENTIAL_LEN}",
            s.len()
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(format!(
            "{what} contains a control character (newline, NUL, ...)"
        ));
    }
    Ok(())
}

/// Reads a password file: at most one trailing newline is removed. Reads into a buffer of
/// the right size so no reallocation leaves a copy behind.
fn read_secret_file(path: &Path) -> Result<(Password, bool), String> {
    let mut f = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let meta = f
        .metadata()
        .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    if meta.len() > MAX_SECRET_FILE {
        return Err(format!(
            "{} is {} bytes, too large for a password file",
            path.display(),
            meta.len()
        ));
    }
    let world_readable = meta.permissions().mode() & 0o004 != 0;
    let mut buf = Vec::with_capacity(meta.len() as usize + 1);
    f.read_to_end(&mut buf)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    let text = match String::from_utf8(buf) {
        Ok(t) => t,
        Err(e) => {
            let mut bytes = e.into_bytes();
            zeroize::Zeroize::zeroize(&mut bytes);
            return Err(format!("{} is not UTF-8 text", path.display()));
        }
    };
    let secret = Password::new(text);
    check_credential_text("the password", secret.expose())
        .map_err(|m| format!("{}: {m}", path.display()))?;
    Ok((secret, world_readable))
}

fn camera<'a, 'i>(
    ctx: &mut Ctx<'_>,
    idx: usize,
    elem: &'a Spanned<DeValue<'i>>,
    global: &GlobalBackend,
) -> Option<CameraConfig> {
    let path = format!("camera[{idx}]");
    let sec = ctx.section(CONFIG, &path, elem, CAMERA_KEYS)?;
    let backend = camera_backend(ctx, &sec, global);

    let id = match ctx.required_str(&sec, "id") {
        Some((s, _)) if valid_id(s) => Some(s.to_string()),
        Some((s, item)) => {
            ctx.error_at_item(
                item,
                &sec.field("id"),
                format!("{s:?}: ids are 1 to 64 characters of A-Z a-z 0-9 . _ -"),
            );
            None
        }
        None => None,
    };
    let host = match ctx.required_str(&sec, "host") {
        Some((s, item)) => match check_host(s) {
            Ok(()) => Some(s.to_string()),
            Err(m) => {
                ctx.error_at_item(item, &sec.field("host"), m);
                None
            }
        },
        None => None,
    };
    let login_mode = ctx.choice(
        &sec,
        "login_mode",
        LoginMode::Private,
        &[
            ("private", LoginMode::Private),
            ("isapi", LoginMode::Isapi),
            ("auto", LoginMode::Auto),
        ],
    );
    if backend == BackendKind::Isapi && login_mode != LoginMode::Isapi {
        if let Some(item) = sec.get("login_mode") {
            let msg = "applies to the SDK backend only; the ISAPI backend always speaks ISAPI";
            ctx.warn(item.src, item.offset(), &sec.field("login_mode"), msg);
        }
    }
    let default_port = match backend {
        BackendKind::Sdk => login_mode.default_port(),
        BackendKind::Isapi => LoginMode::Isapi.default_port(),
    };
    let port = ctx.uint(&sec, "port", default_port.into(), 1, 65535) as u16;
    let user = match ctx.required_str(&sec, "user") {
        Some((s, item)) => match check_credential_text("the user name", s) {
            Ok(()) => Some(s.to_string()),
            Err(m) => {
                ctx.error_at_item(item, &sec.field("user"), m);
                None
            }
        },
        None => None,
    };
    let (password, password_source) = password(ctx, &sec)?;

    let stream = match sec.get("stream") {
        None => None,
        Some(item) => {
            let spath = sec.field("stream");
            let ssec = ctx.section(item.src, &spath, item.value, STREAM_KEYS)?;
            Some(StreamConfig {
                channel: ctx.uint(&ssec, "channel", 1, 1, 512) as u32,
                stream_type: ctx.choice(
                    &ssec,
                    "type",
                    StreamType::Main,
                    &[
                        ("main", StreamType::Main),
                        ("sub", StreamType::Sub),
                        ("third", StreamType::Third),
                    ],
                ),
                rtsp_port: rtsp_port(ctx, &ssec, backend),
            })
        }
    };

    Some(CameraConfig {
        id: id?,
        host: host?,
        port,
        user: user?,
        password,
        password_source,
        backend,
        login_mode,
        stream,
    })
}

/// `[camera.stream] rtsp_port`: the device's RTSP port for the ISAPI backend's stream
/// client (`None`: the default, 554). The SDK asks the device for its port itself, so the
/// field is a problem on an SDK camera.
fn rtsp_port(ctx: &mut Ctx<'_>, ssec: &Section<'_, '_>, backend: BackendKind) -> Option<u16> {
    let item = ssec.get("rtsp_port")?;
    if backend != BackendKind::Isapi {
        ctx.error_at_item(
            item,
            &ssec.field("rtsp_port"),
            "only for backend = \"isapi\" (the SDK takes the RTSP port from the device)",
        );
        return None;
    }
    Some(ctx.uint(ssec, "rtsp_port", 554, 1, 65535) as u16)
}

/// The camera's `backend`, else the file's; a backend this build lacks is a problem (once:
/// at the camera's own key, or at the file's, or at the camera when it took the default).
fn camera_backend(ctx: &mut Ctx<'_>, sec: &Section<'_, '_>, global: &GlobalBackend) -> BackendKind {
    let field = sec.field("backend");
    let own = sec.get("backend").is_some();
    let kind = ctx.choice(sec, "backend", global.kind, BACKENDS);
    if !kind.compiled_in() {
        if own {
            if let Some(item) = sec.get("backend") {
                ctx.error_at_item(item, &field, without_backend(kind));
            }
        } else if global.at.is_none() {
            let msg = format!(
                "uses the {} backend (the default), which this hikwatch was built without \
                 (cargo feature `{kind}`); set backend = \"isapi\"",
                kind.as_str().to_uppercase()
            );
            ctx.push(Severity::Error, sec.header, CONFIG, &field, msg);
        }
    }
    kind
}

fn password(ctx: &mut Ctx<'_>, sec: &Section<'_, '_>) -> Option<(Password, PasswordSource)> {
    let sources: Vec<&str> = ["password_file", "password_credential", "password"]
        .into_iter()
        .filter(|k| sec.get(k).is_some())
        .collect();
    let field = sec.field("password");
    match sources.as_slice() {
        [] => {
            ctx.push(
                Severity::Error,
                sec.header,
                CONFIG,
                &field,
                "no password source: set password_file, password_credential (systemd \
                 LoadCredential=) or password"
                    .into(),
            );
            None
        }
        [one] => {
            let key = *one;
            let item = sec.get(key)?;
            let field = sec.field(key);
            ctx.record(&field, item);
            match key {
                "password_file" => {
                    let p = ctx.path(item, &field, false)?;
                    if ctx.opts.skip_secrets {
                        return Some((Password::default(), PasswordSource::File(p)));
                    }
                    match read_secret_file(&p) {
                        Ok((secret, world_readable)) => {
                            if world_readable {
                                ctx.warn(
                                    item.src,
                                    item.offset(),
                                    &field,
                                    format!(
                                        "{} is readable by every user; chmod o-rwx it",
                                        p.display()
                                    ),
                                );
                            }
                            Some((secret, PasswordSource::File(p)))
                        }
                        Err(m) => {
                            ctx.error_at_item(item, &field, m);
                            None
                        }
                    }
                }
                "password_credential" => {
                    let name = ctx.string(item, &field)?;
                    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                        ctx.error_at_item(
                            item,
                            &field,
                            format!("{name:?} is not a credential name (no '/', not empty)"),
                        );
                        return None;
                    }
                    let source = PasswordSource::Credential(name.to_string());
                    if ctx.opts.skip_secrets {
                        return Some((Password::default(), source));
                    }
                    match ctx.opts.credentials_dir.clone() {
                        Some(dir) => match read_secret_file(&dir.join(name)) {
                            Ok((secret, _)) => Some((secret, source)),
                            Err(m) => {
                                ctx.error_at_item(
                                    item,
                                    &field,
                                    format!("credential {name:?}: {m}"),
                                );
                                None
                            }
                        },
                        None if ctx.opts.check_only => {
                            ctx.warn(
                                item.src,
                                item.offset(),
                                &field,
                                format!(
                                    "credential {name:?} not checked: $CREDENTIALS_DIRECTORY is \
                                     only set inside the service (LoadCredential=)"
                                ),
                            );
                            Some((Password::default(), source))
                        }
                        None => {
                            ctx.error_at_item(
                                item,
                                &field,
                                format!(
                                    "credential {name:?}: $CREDENTIALS_DIRECTORY is not set \
                                     (systemd sets it for LoadCredential=; the shipped unit \
                                     passes /etc/hikwatch/credentials/NAME as camera_NAME)"
                                ),
                            );
                            None
                        }
                    }
                }
                _ => {
                    let text = ctx.string(item, &field)?;
                    if let Err(m) = check_credential_text("the password", text) {
                        ctx.error_at_item(item, &field, m);
                        return None;
                    }
                    ctx.warn(
                        item.src,
                        item.offset(),
                        &field,
                        "inline password in the config file; prefer password_file or \
                         password_credential",
                    );
                    Some((Password::new(text.to_string()), PasswordSource::Inline))
                }
            }
        }
        many => {
            ctx.push(
                Severity::Error,
                sec.header,
                CONFIG,
                &field,
                format!("set only one password source, found {}", many.join(", ")),
            );
            None
        }
    }
}

fn cross_checks(
    ctx: &mut Ctx<'_>,
    c: &Config,
    camera_offsets: &[(usize, usize)],
    ids: &[(usize, String, usize)],
) {
    let s = &c.supervisor.settings;
    if s.backoff_initial > s.backoff_cap {
        ctx.at_field(
            Severity::Error,
            "supervisor.backoff_cap",
            format!(
                "{} is below backoff_initial {}",
                format_duration(s.backoff_cap),
                format_duration(s.backoff_initial)
            ),
        );
    }
    // Whatever else the supervisor itself refuses (its checks are the reference), unless
    // that field already has a problem.
    if let Err(crate::supervisor::Error::Setting { field, reason }) = s.validate() {
        let name = format!("supervisor.{field}");
        if !ctx.problems.iter().any(|p| p.field == name) {
            ctx.at_field(Severity::Error, &name, reason);
        }
    }
    if c.uses_sdk() && u32::from(s.max_concurrent_logins) > c.sdk.threads {
        ctx.at_field(
            Severity::Warning,
            "supervisor.max_concurrent_logins",
            format!(
                "{} exceeds [sdk] threads = {}: at most {} logins can run at once",
                s.max_concurrent_logins, c.sdk.threads, c.sdk.threads
            ),
        );
    }
    let s = &c.supervisor;
    if c.cameras.len() > s.max_cameras as usize {
        let at = camera_offsets
            .get(s.max_cameras as usize)
            .map(|(_, off)| (CONFIG, *off));
        let msg = format!(
            "{} cameras configured but max_cameras is {}{}; raise [supervisor] max_cameras if \
             the board can take more",
            c.cameras.len(),
            s.max_cameras,
            c.board
                .as_deref()
                .map(|b| format!(" (board {b})"))
                .unwrap_or_default()
        );
        ctx.push(Severity::Error, at, CONFIG, "camera", msg);
    }
    if c.cameras.is_empty() && !ctx.problems.iter().any(|p| p.field.starts_with("camera")) {
        ctx.push(
            Severity::Warning,
            None,
            CONFIG,
            "camera",
            "no [[camera]] configured; the daemon will have nothing to do".into(),
        );
    }

    // Duplicate ids.
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (idx, id, off) in ids {
        if let Some(first) = seen.get(id.as_str()) {
            let msg = format!("duplicate id {id:?} (already used by camera[{first}])");
            ctx.error(CONFIG, *off, &format!("camera[{idx}].id"), msg);
        } else {
            seen.insert(id, *idx);
        }
    }

    // The SDK folder, when some camera needs it (a build without the SDK backend has
    // reported those cameras already).
    if c.uses_sdk() && cfg!(feature = "sdk") {
        check_sdk_dir(ctx, &c.sdk.dir);
    }

    let sock = c.status.socket.as_os_str().len();
    if sock > MAX_SOCKET_PATH {
        ctx.at_field(
            Severity::Error,
            "status.socket",
            format!("{sock} bytes is longer than a unix socket path may be ({MAX_SOCKET_PATH})"),
        );
    }
    if let Some(addr) = c.status.metrics {
        if !addr.ip().is_loopback() {
            ctx.at_field(
                Severity::Warning,
                "status.metrics",
                format!("{addr} is not a loopback address; metrics are unauthenticated"),
            );
        }
    }
}

/// `[sdk] dir` must hold the SDK.
fn check_sdk_dir(ctx: &mut Ctx<'_>, dir: &Path) {
    let lib = dir.join("libhcnetsdk.so");
    if !dir.is_dir() {
        ctx.at_field(
            Severity::Error,
            "sdk.dir",
            format!(
                "{} is not a folder (install the SDK there: sdk-arm/README.md, \
                 scripts/fetch-sdk.sh)",
                dir.display()
            ),
        );
    } else if !lib.is_file() {
        ctx.at_field(
            Severity::Error,
            "sdk.dir",
            format!("{} holds no libhcnetsdk.so", dir.display()),
        );
    } else if !dir.join("HCNetSDKCom").is_dir() {
        ctx.at_field(
            Severity::Warning,
            "sdk.dir",
            format!(
                "{} has no HCNetSDKCom/ folder; the SDK loads its components from there",
                dir.display()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("heartbeat_intervall", SECTIONS[3].1),
            Some("heartbeat_interval")
        );
        assert_eq!(suggest("prot", CAMERA_KEYS), Some("port"));
        assert_eq!(suggest("zzzzzz", CAMERA_KEYS), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("prot", "port"), 1);
    }

    #[test]
    fn hosts() {
        assert!(check_host("192.0.2.10").is_ok());
        assert!(check_host("2001:db8::1").is_ok());
        assert!(check_host("cam-1.example.net").is_ok());
        assert!(check_host("[2001:db8::1]").is_err());
        assert!(check_host("10.0.0.1:8000").unwrap_err().contains("port"));
        assert!(check_host("bad host").is_err());
        assert!(check_host("").is_err());
    }

    #[test]
    fn ids() {
        assert!(valid_id("gate-1"));
        assert!(valid_id("Lobby_2.east"));
        assert!(!valid_id(""));
        assert!(!valid_id("gate 1"));
        assert!(!valid_id("gate/1"));
        assert!(!valid_id(&"x".repeat(65)));
    }
}
