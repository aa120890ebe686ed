//! Per-camera backoff state on flash: placeholder.

use std::ffi::OsString;
use std::process::ExitCode;

/// Entry point of `hikwatch state …`.
pub fn cli_main(_args: Vec<OsString>) -> ExitCode {
    eprintln!("hikwatch state: not implemented yet");
    ExitCode::FAILURE
}
