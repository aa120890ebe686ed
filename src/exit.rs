//! Process exit codes shared by every subcommand (sysexits.h values where one fits).
//!
//! A leaf module: it imports nothing, so the modules that report an exit code (config,
//! runtime, status, probe, store) do not depend on the command line that calls them.

/// Bad command-line usage (`EX_USAGE`).
pub const USAGE: u8 = 64;
/// The daemon does not answer on its status socket (`EX_UNAVAILABLE`).
pub const UNAVAILABLE: u8 = 69;
/// A bad configuration (`EX_CONFIG`); the systemd unit sets `RestartPreventExitStatus=78`
/// so a broken config does not restart-loop.
pub const CONFIG: u8 = 78;
