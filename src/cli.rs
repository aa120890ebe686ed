//! The command line: one parser for every subcommand ([`parse`], built on `lexopt`), the
//! help texts, and the dispatch to the modules that do the work ([`main`]).
//!
//! Every subcommand takes its options the same way: `-c FILE`, `-cFILE`, `--config FILE`
//! and `--config=FILE` are one option; an unknown option, a missing value or a stray
//! argument is a usage error (the command's usage on stderr, exit 64). `run`,
//! `check-config` and `status` read [`DEFAULT_CONFIG`] when no `-c` is given, where the
//! Debian package installs the config.

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lexopt::prelude::*;

use crate::config::LoadOptions;
use crate::probe::{ProbeArgs, ProbeBackend};
#[cfg(feature = "sdk")]
use crate::sdk::SdkLoginMode;
use crate::status::{Format, StatusSource};

/// The config file `run`, `check-config` and `status` read when no `-c FILE` is given.
pub const DEFAULT_CONFIG: &str = "/etc/hikwatch/hikwatch.toml";

/// A subcommand, as documented by its help text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    /// `hikwatch run`.
    Run,
    /// `hikwatch check-config`.
    CheckConfig,
    /// `hikwatch status`.
    Status,
    /// `hikwatch state show`.
    State,
    /// `hikwatch probe`.
    Probe,
}

impl Topic {
    const ALL: [Topic; 5] = [
        Topic::Run,
        Topic::CheckConfig,
        Topic::Status,
        Topic::State,
        Topic::Probe,
    ];

    /// The subcommand's name on the command line.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Topic::Run => "run",
            Topic::CheckConfig => "check-config",
            Topic::Status => "status",
            Topic::State => "state",
            Topic::Probe => "probe",
        }
    }

    fn from_name(s: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.name() == s)
    }

    /// The usage line(s), starting with `Usage: `.
    #[must_use]
    pub const fn usage(self) -> &'static str {
        match self {
            Topic::Run => "Usage: hikwatch run [-c FILE]\n",
            Topic::CheckConfig => "Usage: hikwatch check-config [-c FILE]\n",
            Topic::Status => "Usage: hikwatch status [-c FILE | --socket PATH] [--json]\n",
            Topic::State => "Usage: hikwatch state show FILE [--json] [--now UNIX_SECONDS]\n",
            Topic::Probe => {
                "Usage: hikwatch probe [--backend sdk] --sdk DIR --host H --port P --user U\n\
                 \x20                     --password-file F [--mode private|isapi|auto] [--json]\n\
                 \x20      hikwatch probe --backend isapi --host H --port P --user U\n\
                 \x20                     --password-file F [--json]\n\
                 \x20      hikwatch probe -c FILE --camera ID [--json]\n"
            }
        }
    }

    /// What follows the usage in `hikwatch help CMD`.
    const fn details(self) -> &'static str {
        match self {
            Topic::Run => {
                "\n\
Runs the daemon: keeps every camera of the config logged in until SIGTERM or SIGINT
(graceful stop); SIGHUP reloads the config. Under systemd it sends READY=1 and watchdog
pings (Type=notify).
  -c, --config FILE   the config (default /etc/hikwatch/hikwatch.toml)
Exit status: 0 after a clean stop, 78 for an unusable config or SDK folder, 64 usage
error, 1 otherwise.
"
            }
            Topic::CheckConfig => {
                "\n\
Validates a config file as the daemon would load it and reports every problem, one per
line on stderr, as FILE:LINE: FIELD: MESSAGE; a summary line on stdout when it is usable.
  -c, --config FILE   the config (default /etc/hikwatch/hikwatch.toml)
Exit status: 0 usable (warnings allowed), 78 unusable, 64 usage error.
"
            }
            Topic::Status => {
                "\n\
Shows the running daemon's cameras: a table, or the JSON document of docs/interface.md.
Camera passwords are not read.
  -c, --config FILE   find the status socket in this config's [status] socket
                      (default /etc/hikwatch/hikwatch.toml)
  --socket PATH       ask this socket instead; no config is read
  --json              one-line JSON instead of the table
Exit status: 0 ok, 69 no daemon answers, 78 the config cannot be loaded, 64 usage error.
"
            }
            Topic::State => {
                "\n\
Decodes a hikwatch state file and prints every camera's persisted backoff state. Read-only.
  --json              machine-readable output
  --now UNIX_SECONDS  evaluate remaining waits as if the wall clock read this
Exit status: 0 decoded, 1 missing or bad file, 64 usage error.
"
            }
            Topic::Probe => {
                "\n\
One login, one heartbeat, device info and a logout against one camera, with the SDK
error code or HTTP failure, its class and advice when a step fails.
  --backend B          sdk (default): the vendor HCNetSDK; isapi: hikwatch's own ISAPI
                       client over plain HTTP (session login or Digest), no SDK needed
  --sdk DIR            the vendor HCNetSDK folder (holding libhcnetsdk.so); sdk only
  --host H, --port P   the camera's address and port (SDK private protocol usually 8000,
                       ISAPI/HTTP 80)
  --user U             the user name
  --password-file F    a file holding the password (never on the command line)
  --mode M             SDK login mode: private (default), isapi or auto; sdk only
  --json               one-line JSON instead of the summary
  -c FILE --camera ID  the camera of a config file, with its backend (the camera's
                       `backend`, else the file's), address, user and password
Exit status: 0 every step worked, 1 a step failed, 64 usage error, 78 the config cannot
be loaded.
"
            }
        }
    }
}

const OVERVIEW: &str = "\
hikwatch: keeps every Hikvision camera on a site logged in

Usage:
  hikwatch run [-c FILE]                 run the daemon
  hikwatch check-config [-c FILE]        validate a config file, report every problem
  hikwatch status [-c FILE] [--json]     show the running daemon's cameras
  hikwatch state show FILE [--json]      decode a state file
  hikwatch probe [--backend sdk|isapi] [--sdk DIR] --host H --port P --user U
                 --password-file F [--mode private|isapi|auto] [--json]
  hikwatch probe -c FILE --camera ID [--json]
                                         one login, heartbeat, device info and logout
  hikwatch help [COMMAND]                this text, or a command's options
  hikwatch --version

FILE defaults to /etc/hikwatch/hikwatch.toml. Usage errors exit with 64.
";

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub enum Command {
    /// `hikwatch run`.
    Run {
        /// The config file.
        config: PathBuf,
    },
    /// `hikwatch check-config`.
    CheckConfig {
        /// The config file.
        config: PathBuf,
    },
    /// `hikwatch status`.
    Status {
        /// Where the daemon is asked.
        source: StatusSource,
        /// Table or JSON.
        format: Format,
    },
    /// `hikwatch state show`.
    StateShow {
        /// The state file.
        file: PathBuf,
        /// JSON output.
        json: bool,
        /// The wall clock to evaluate remaining waits at (default: now).
        now: Option<SystemTime>,
    },
    /// `hikwatch probe`.
    Probe(ProbeArgs),
    /// `hikwatch probe -c FILE --camera ID`: a camera of a config file.
    ProbeCamera {
        /// The config file.
        config: PathBuf,
        /// The camera's id.
        camera: String,
        /// JSON output.
        json: bool,
    },
    /// `hikwatch help [COMMAND]`, `--help`, `CMD --help`: the overview or one command's.
    Help(Option<Topic>),
    /// `hikwatch --version`.
    Version,
}

/// A usage error: what was wrong, and the command whose usage to show.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError {
    /// The command being parsed (`None`: the overview's usage).
    pub topic: Option<Topic>,
    /// What was wrong.
    pub message: String,
}

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.topic {
            Some(t) => write!(
                f,
                "hikwatch {}: {}\n{}Run 'hikwatch help {}' for the options.",
                t.name(),
                self.message,
                t.usage(),
                t.name()
            ),
            None => write!(f, "hikwatch: {}\n\n{}", self.message, OVERVIEW.trim_end()),
        }
    }
}

impl std::error::Error for UsageError {}

/// One subcommand's parse: usage errors carry the topic added by [`parse`].
type Parsed<T> = Result<T, String>;

/// Parses the arguments after the program name.
///
/// # Errors
/// A [`UsageError`] for an unknown command or option, a missing or bad value, or a
/// missing required option.
pub fn parse(args: Vec<OsString>) -> Result<Command, UsageError> {
    let mut p = lexopt::Parser::from_args(args);
    let first = p.next().map_err(|e| UsageError {
        topic: None,
        message: e.to_string(),
    })?;
    let topic = match first {
        None => {
            return Err(UsageError {
                topic: None,
                message: "missing command".into(),
            });
        }
        Some(Short('h') | Long("help")) => return Ok(Command::Help(None)),
        Some(Short('V') | Long("version")) => return Ok(Command::Version),
        Some(Value(cmd)) if cmd == "help" => return help_topic(&mut p),
        Some(Value(cmd)) => match cmd.to_str().and_then(Topic::from_name) {
            Some(t) => t,
            None => {
                return Err(UsageError {
                    topic: None,
                    message: format!("unknown command {:?}", cmd.to_string_lossy()),
                });
            }
        },
        Some(other) => {
            return Err(UsageError {
                topic: None,
                message: other.unexpected().to_string(),
            });
        }
    };
    let parsed = match topic {
        Topic::Run => config_only(&mut p).map(|c| c.map(|config| Command::Run { config })),
        Topic::CheckConfig => {
            config_only(&mut p).map(|c| c.map(|config| Command::CheckConfig { config }))
        }
        Topic::Status => status(&mut p),
        Topic::State => state(&mut p),
        Topic::Probe => probe(&mut p),
    };
    match parsed {
        Ok(Some(cmd)) => Ok(cmd),
        Ok(None) => Ok(Command::Help(Some(topic))),
        Err(message) => Err(UsageError {
            topic: Some(topic),
            message,
        }),
    }
}

/// `hikwatch help [COMMAND]`.
fn help_topic(p: &mut lexopt::Parser) -> Result<Command, UsageError> {
    let err = |message: String| UsageError {
        topic: None,
        message,
    };
    let topic = match p.next().map_err(|e| err(e.to_string()))? {
        None => None,
        Some(Value(v)) => match v.to_str().and_then(Topic::from_name) {
            Some(t) => Some(t),
            None => return Err(err(format!("no help for {:?}", v.to_string_lossy()))),
        },
        Some(other) => return Err(err(other.unexpected().to_string())),
    };
    if let Some(extra) = p.next().map_err(|e| err(e.to_string()))? {
        return Err(err(extra.unexpected().to_string()));
    }
    Ok(Command::Help(topic))
}

/// `run` and `check-config`: `[-c FILE]`. `Ok(None)` asks for the command's help.
fn config_only(p: &mut lexopt::Parser) -> Parsed<Option<PathBuf>> {
    let mut config = None;
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Short('c') | Long("config") => config = Some(path_value(p)?),
            Short('h') | Long("help") => return Ok(None),
            other => return Err(other.unexpected().to_string()),
        }
    }
    Ok(Some(
        config.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG)),
    ))
}

fn path_value(p: &mut lexopt::Parser) -> Parsed<PathBuf> {
    p.value().map(PathBuf::from).map_err(|e| e.to_string())
}

fn text_value(p: &mut lexopt::Parser) -> Parsed<String> {
    p.value()
        .and_then(|v| v.string())
        .map_err(|e| e.to_string())
}

/// `status [-c FILE | --socket PATH] [--json]`.
fn status(p: &mut lexopt::Parser) -> Parsed<Option<Command>> {
    let (mut config, mut socket, mut format) = (None, None, Format::Text);
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Short('c') | Long("config") => config = Some(path_value(p)?),
            Long("socket") => socket = Some(path_value(p)?),
            Long("json") => format = Format::Json,
            Short('h') | Long("help") => return Ok(None),
            other => return Err(other.unexpected().to_string()),
        }
    }
    let source = match (config, socket) {
        (Some(_), Some(_)) => return Err("-c and --socket exclude each other".into()),
        (_, Some(s)) => StatusSource::Socket(s),
        (c, None) => StatusSource::Config(c.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG))),
    };
    Ok(Some(Command::Status { source, format }))
}

/// `state show FILE [--json] [--now UNIX_SECONDS]`.
fn state(p: &mut lexopt::Parser) -> Parsed<Option<Command>> {
    match p.next().map_err(|e| e.to_string())? {
        Some(Value(v)) if v == "show" => {}
        Some(Value(v)) if v == "help" => return Ok(None),
        Some(Short('h') | Long("help")) => return Ok(None),
        Some(Value(v)) => return Err(format!("unknown state command {:?}", v.to_string_lossy())),
        Some(other) => return Err(other.unexpected().to_string()),
        None => return Err("expected `show`".into()),
    }
    let (mut file, mut json, mut now) = (None, false, None);
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Long("json") => json = true,
            Long("now") => {
                let secs: u64 = p
                    .value()
                    .and_then(|v| v.parse())
                    .map_err(|e| format!("--now needs seconds since 1970: {e}"))?;
                now = Some(
                    UNIX_EPOCH
                        .checked_add(Duration::from_secs(secs))
                        .ok_or("--now is out of range")?,
                );
            }
            Short('h') | Long("help") => return Ok(None),
            Value(v) if file.is_none() => file = Some(PathBuf::from(v)),
            Value(_) => return Err("only one FILE".into()),
            other => return Err(other.unexpected().to_string()),
        }
    }
    let file = file.ok_or("missing FILE")?;
    Ok(Some(Command::StateShow { file, json, now }))
}

/// The SDK probe's settings: `--sdk` required, `--mode` checked.
#[cfg(feature = "sdk")]
fn sdk_probe(sdk: Option<PathBuf>, mode: Option<&str>) -> Parsed<ProbeBackend> {
    let mode = match mode {
        None => SdkLoginMode::Private,
        Some(t) => SdkLoginMode::parse(t)
            .ok_or_else(|| format!("--mode: {t:?} is not private, isapi or auto"))?,
    };
    let sdk = sdk.ok_or_else(|| "--sdk is required".to_string())?;
    Ok(ProbeBackend::Sdk { sdk, mode })
}

/// A build without the SDK backend has only `--backend isapi`.
#[cfg(not(feature = "sdk"))]
fn sdk_probe(_sdk: Option<PathBuf>, _mode: Option<&str>) -> Parsed<ProbeBackend> {
    Err(
        "this hikwatch was built without the SDK backend (cargo feature `sdk`); use \
         --backend isapi"
            .into(),
    )
}

/// `probe [--backend sdk|isapi] [--sdk DIR] --host H --port P --user U --password-file F
/// [--mode M] [--json]`: `--sdk` is required with the SDK backend, and `--sdk`/`--mode`
/// are refused with the ISAPI backend (they would silently do nothing).
fn probe(p: &mut lexopt::Parser) -> Parsed<Option<Command>> {
    let (mut sdk, mut host, mut port, mut user, mut pwf) = (None, None, None, None, None);
    let (mut mode, mut json, mut backend) = (None, false, None);
    let (mut config, mut camera) = (None, None);
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Short('c') | Long("config") => config = Some(path_value(p)?),
            Long("camera") => camera = Some(text_value(p)?),
            Long("sdk") => sdk = Some(path_value(p)?),
            Long("password-file") => pwf = Some(path_value(p)?),
            Long("host") => host = Some(text_value(p)?),
            Long("user") => user = Some(text_value(p)?),
            Long("port") => {
                let t = text_value(p)?;
                let n = t.parse::<u16>().ok().filter(|n| *n != 0);
                port =
                    Some(n.ok_or_else(|| format!("--port: {t:?} is not a port number (1-65535)"))?);
            }
            Long("mode") => mode = Some(text_value(p)?),
            Long("backend") => {
                let t = text_value(p)?;
                backend = Some(match t.as_str() {
                    "sdk" => false,
                    "isapi" => true,
                    _ => return Err(format!("--backend: {t:?} is not sdk or isapi")),
                });
            }
            Long("json") => json = true,
            Short('h') | Long("help") => return Ok(None),
            other => return Err(other.unexpected().to_string()),
        }
    }
    fn need<T>(v: Option<T>, flag: &str) -> Parsed<T> {
        v.ok_or_else(|| format!("{flag} is required"))
    }
    if config.is_some() || camera.is_some() {
        let given = [
            (sdk.is_some(), "--sdk"),
            (host.is_some(), "--host"),
            (port.is_some(), "--port"),
            (user.is_some(), "--user"),
            (pwf.is_some(), "--password-file"),
            (mode.is_some(), "--mode"),
            (backend.is_some(), "--backend"),
        ];
        if let Some((_, flag)) = given.iter().find(|(set, _)| *set) {
            return Err(format!(
                "{flag} cannot be combined with --camera (the config file says it)"
            ));
        }
        return Ok(Some(Command::ProbeCamera {
            config: config.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG)),
            camera: need(camera, "--camera")?,
            json,
        }));
    }
    let backend = if backend == Some(true) {
        if sdk.is_some() {
            return Err("--sdk applies to --backend sdk only".into());
        }
        if mode.is_some() {
            return Err("--mode applies to --backend sdk only".into());
        }
        ProbeBackend::Isapi
    } else {
        sdk_probe(sdk, mode.as_deref())?
    };
    Ok(Some(Command::Probe(ProbeArgs {
        backend,
        host: need(host, "--host")?,
        port: need(port, "--port")?,
        user: need(user, "--user")?,
        password_file: need(pwf, "--password-file")?,
        json,
    })))
}

/// The help text for `topic` (`None`: the overview).
#[must_use]
pub fn help_text(topic: Option<Topic>) -> String {
    match topic {
        None => OVERVIEW.to_string(),
        Some(t) => format!("{}{}", t.usage(), t.details()),
    }
}

/// Parses `args` (the arguments after the program name) and runs the command.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let cmd = match parse(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(crate::exit::USAGE);
        }
    };
    match cmd {
        Command::Run { config } => crate::runtime::cli_main(&config),
        Command::CheckConfig { config } => {
            let opts = LoadOptions {
                check_only: true,
                ..LoadOptions::from_env()
            };
            ExitCode::from(crate::config::check_config(
                &config,
                &opts,
                &mut io::stdout().lock(),
                &mut io::stderr().lock(),
            ))
        }
        Command::Status { source, format } => ExitCode::from(crate::status::status_command(
            &source,
            format,
            &mut io::stdout().lock(),
            &mut io::stderr().lock(),
        )),
        Command::StateShow { file, json, now } => crate::store::show(&file, json, now),
        Command::Probe(a) => crate::probe::main(&a),
        Command::ProbeCamera {
            config,
            camera,
            json,
        } => crate::probe::main_camera(&config, &camera, json),
        Command::Help(topic) => {
            print!("{}", help_text(topic));
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("hikwatch {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<OsString> {
        s.iter().map(OsString::from).collect()
    }

    fn ok(s: &[&str]) -> Command {
        parse(argv(s)).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn err(s: &[&str]) -> UsageError {
        match parse(argv(s)) {
            Ok(c) => panic!("{s:?} parsed as {c:?}"),
            Err(e) => e,
        }
    }

    fn run(path: &str) -> Command {
        Command::Run {
            config: PathBuf::from(path),
        }
    }

    #[test]
    fn the_config_defaults_to_etc_hikwatch() {
        assert_eq!(ok(&["run"]), run("/etc/hikwatch/hikwatch.toml"));
        assert_eq!(
            ok(&["check-config"]),
            Command::CheckConfig {
                config: PathBuf::from(DEFAULT_CONFIG)
            }
        );
        assert_eq!(
            ok(&["status", "--json"]),
            Command::Status {
                source: StatusSource::Config(PathBuf::from(DEFAULT_CONFIG)),
                format: Format::Json
            }
        );
        for t in [Topic::Run, Topic::CheckConfig, Topic::Status] {
            assert!(help_text(Some(t)).contains(DEFAULT_CONFIG), "{t:?}");
        }
        assert!(help_text(None).contains(DEFAULT_CONFIG));
    }

    #[test]
    fn every_spelling_of_the_config_option_works_for_every_command() {
        for spelling in [
            &["-c", "/x.toml"][..],
            &["-c/x.toml"],
            &["--config", "/x.toml"],
            &["--config=/x.toml"],
        ] {
            let with = |cmd: &str| {
                let mut a = vec![cmd];
                a.extend_from_slice(spelling);
                ok(&a)
            };
            assert_eq!(with("run"), run("/x.toml"));
            assert_eq!(
                with("check-config"),
                Command::CheckConfig {
                    config: PathBuf::from("/x.toml")
                }
            );
            assert_eq!(
                with("status"),
                Command::Status {
                    source: StatusSource::Config(PathBuf::from("/x.toml")),
                    format: Format::Text
                }
            );
        }
        assert_eq!(
            ok(&["status", "--socket=/s", "--json"]),
            Command::Status {
                source: StatusSource::Socket(PathBuf::from("/s")),
                format: Format::Json
            }
        );
    }

    #[test]
    fn usage_errors_name_the_command_and_the_problem() {
        let e = err(&["status", "--yaml"]);
        assert_eq!(e.topic, Some(Topic::Status));
        assert!(e.message.contains("--yaml"), "{e}");
        let shown = e.to_string();
        assert!(shown.starts_with("hikwatch status: "), "{shown}");
        assert!(shown.contains("Usage: hikwatch status"), "{shown}");
        assert!(shown.contains("hikwatch help status"), "{shown}");
        assert!(err(&["run", "-c"]).message.contains("-c"));
        assert!(err(&["run", "extra"]).message.contains("extra"));
        assert!(err(&["check-config", "-x"]).message.contains("-x"));
        assert!(
            err(&["status", "-c", "a", "--socket", "b"])
                .message
                .contains("exclude")
        );
        assert!(err(&["frobnicate"]).message.contains("frobnicate"));
        assert_eq!(err(&[]).topic, None);
        assert_eq!(err(&["--bogus"]).topic, None);
        assert!(err(&["help", "nope"]).message.contains("nope"));
    }

    #[test]
    fn help_for_every_command() {
        assert_eq!(ok(&["help"]), Command::Help(None));
        assert_eq!(ok(&["--help"]), Command::Help(None));
        assert_eq!(ok(&["-h"]), Command::Help(None));
        assert_eq!(ok(&["-V"]), Command::Version);
        for t in Topic::ALL {
            assert_eq!(ok(&["help", t.name()]), Command::Help(Some(t)));
            assert_eq!(ok(&[t.name(), "--help"]), Command::Help(Some(t)));
            let text = help_text(Some(t));
            assert!(text.starts_with(t.usage()), "{text}");
            assert!(text.contains("Exit status:"), "{text}");
            assert!(help_text(None).contains(&format!("hikwatch {}", t.name())));
        }
        assert_eq!(
            ok(&["state", "show", "--help"]),
            Command::Help(Some(Topic::State))
        );
    }

    #[test]
    fn state_show() {
        assert_eq!(
            ok(&["state", "show", "f", "--json", "--now", "10"]),
            Command::StateShow {
                file: PathBuf::from("f"),
                json: true,
                now: Some(UNIX_EPOCH + Duration::from_secs(10))
            }
        );
        for bad in [
            &["state"][..],
            &["state", "show"],
            &["state", "show", "a", "b"],
            &["state", "show", "a", "--bogus"],
            &["state", "show", "a", "--now", "soon"],
            &["state", "frobnicate"],
        ] {
            assert_eq!(err(bad).topic, Some(Topic::State), "{bad:?}");
        }
    }

    #[test]
    fn probe_parses_all_flags_and_names_the_bad_one() {
        let Command::Probe(a) = ok(&[
            "probe",
            "--sdk",
            "/s",
            "--host",
            "h",
            "--port",
            "80",
            "--user",
            "u",
            "--password-file=/p",
            "--mode",
            "isapi",
            "--json",
        ]) else {
            panic!("not a probe");
        };
        assert_eq!(
            (a.port, &a.backend, a.json),
            (
                80,
                &ProbeBackend::Sdk {
                    sdk: PathBuf::from("/s"),
                    mode: SdkLoginMode::Isapi
                },
                true
            )
        );
        assert_eq!(a.password_file, PathBuf::from("/p"));
        let e = err(&["probe", "--sdk", "/s"]);
        assert!(e.message.contains("--host is required"), "{e}");
        assert!(
            err(&["probe", "--port", "99999"])
                .message
                .contains("--port")
        );
        let e = err(&["probe", "--mode", "x"]);
        assert!(e.message.contains("private, isapi or auto"), "{e}");
        // An unknown option is an error, not a flag taking the next word as its value.
        let e = err(&["probe", "--bogus", "1"]);
        assert!(e.message.contains("--bogus"), "{e}");
        assert!(err(&["probe", "--json=yes"]).message.contains("--json"));
        // The ISAPI backend needs no SDK and refuses the SDK-only options.
        let isapi = [
            "probe",
            "--backend",
            "isapi",
            "--host",
            "h",
            "--port",
            "80",
            "--user",
            "u",
            "--password-file",
            "/p",
        ];
        let Command::Probe(a) = ok(&isapi) else {
            panic!("not a probe");
        };
        assert_eq!(a.backend, ProbeBackend::Isapi);
        let e = err(&[&isapi[..], &["--sdk", "/s"]].concat());
        assert!(
            e.message.contains("--sdk applies to --backend sdk only"),
            "{e}"
        );
        let e = err(&[&isapi[..], &["--mode", "auto"]].concat());
        assert!(e.message.contains("--mode applies"), "{e}");
        let e = err(&["probe", "--backend", "onvif"]);
        assert!(e.message.contains("not sdk or isapi"), "{e}");
    }

    #[test]
    fn probe_takes_a_camera_from_a_config_file() {
        assert_eq!(
            ok(&["probe", "-c", "/h.toml", "--camera", "gate", "--json"]),
            Command::ProbeCamera {
                config: PathBuf::from("/h.toml"),
                camera: "gate".into(),
                json: true,
            }
        );
        let Command::ProbeCamera { config, .. } = ok(&["probe", "--camera", "gate"]) else {
            panic!("not a config probe");
        };
        assert_eq!(config, PathBuf::from(DEFAULT_CONFIG));
        let e = err(&["probe", "-c", "/h.toml"]);
        assert!(e.message.contains("--camera is required"), "{e}");
        for flag in [["--host", "h"], ["--backend", "isapi"], ["--sdk", "/s"]] {
            let e = err(&[&["probe", "--camera", "gate"][..], &flag[..]].concat());
            assert!(
                e.message.contains("cannot be combined with --camera"),
                "{e}"
            );
        }
    }
}
