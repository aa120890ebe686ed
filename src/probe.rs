//! `hikwatch probe`: one login, one heartbeat, device info and a logout.

use std::ffi::OsString;
use std::process::ExitCode;

/// Entry point of `hikwatch probe`.
pub fn main(_args: Vec<OsString>) -> ExitCode {
    eprintln!("hikwatch probe: not implemented yet");
    ExitCode::FAILURE
}
