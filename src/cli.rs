//! Command-line entry: picks the subcommand and hands it the rest of the arguments.
//!
//! Each subcommand parses its own flags (`fn main(args: Vec<OsString>) -> ExitCode` in its
//! module), so modules stay independent and testable.

use std::ffi::OsString;
use std::process::ExitCode;

/// Exit code for a bad configuration (sysexits.h `EX_CONFIG`); the systemd unit sets
/// `RestartPreventExitStatus=78` so a broken config does not restart-loop.
pub const EX_CONFIG: u8 = 78;
/// Exit code for bad command-line usage (sysexits.h `EX_USAGE`).
pub const EX_USAGE: u8 = 64;

const USAGE: &str = "\
hikwatch: keeps every Hikvision camera on a site logged in

Usage:
  hikwatch run -c FILE                 run the daemon
  hikwatch check-config -c FILE        validate a config file, report every problem
  hikwatch status -c FILE [--json]     show the running daemon's cameras
  hikwatch state show FILE [--json]    decode a state file
  hikwatch probe --sdk DIR --host H --port P --user U --password-file F
                 [--mode private|isapi|auto] [--json]
                                       one login, heartbeat, device info and logout
  hikwatch --version | --help
";

/// Runs the subcommand named by `args[0]`.
pub fn main(mut args: Vec<OsString>) -> ExitCode {
    if args.is_empty() {
        eprint!("{USAGE}");
        return ExitCode::from(EX_USAGE);
    }
    let cmd = args.remove(0);
    match cmd.to_str() {
        Some("run") => crate::runtime::cli_main(args),
        Some("probe") => crate::probe::main(args),
        Some("check-config") => crate::config::cli_main(args),
        Some("status") => crate::status::cli_main(args),
        Some("state") => crate::store::cli_main(args),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some("-V" | "--version") => {
            println!("hikwatch {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("hikwatch: unknown command {:?}\n\n{USAGE}", cmd);
            ExitCode::from(EX_USAGE)
        }
    }
}
