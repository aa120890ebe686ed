//! hikwatch keeps every Hikvision camera on a site logged in.
//!
//! # Layout
//!
//! - [`sdk`]: the only module with `unsafe`. Raw FFI to the vendor HCNetSDK (loaded at run
//!   time with libloading), a safe wrapper, callback trampolines and the vendor error-code
//!   table.
//! - [`backend`]: the seam the runtime drives (log in, heartbeat, log out, watched stream,
//!   neutral events), the error classes both backends map into, and the bounded blocking
//!   pool the SDK backend's calls run on.
//! - [`isapi`]: hikwatch's own ISAPI client over plain HTTP, no SDK and no `unsafe`:
//!   session login or Digest, heartbeat, device info, logout, the event stream. Used by
//!   `hikwatch probe --backend isapi`.
//! - [`supervisor`]: the pure, sans-IO per-camera state machine and the fleet-level job
//!   queue. Time and events go in, actions come out; deterministic simulation drives it.
//! - [`runtime`]: the smol shell that executes the supervisor's actions through a
//!   [`backend`].
//! - [`store`]: per-camera backoff state on flash (postcard + CRC32, atomic, wear-aware).
//! - [`config`], [`logging`], [`watchdog`], [`status`], [`metrics`]: thin shells for the
//!   daemon.
//! - [`cli`]: the one command-line parser and the subcommands' dispatch; `main.rs` only
//!   calls [`cli::main`]. [`exit`] holds the exit codes, [`json`] the one JSON string
//!   escaper, [`histogram`] the latency histogram of status and metrics.
//!
//! See ARCHITECTURE.md for how the pieces talk to each other.
#![deny(unsafe_code)]
#![warn(
    missing_debug_implementations,
    rust_2018_idioms,
    missing_docs,
    unreachable_pub
)]

pub mod backend;
pub mod cli;
pub mod config;
pub mod exit;
pub mod histogram;
pub mod isapi;
pub mod json;
pub mod logging;
pub mod metrics;
pub mod password;
pub mod probe;
pub mod runtime;
#[cfg(feature = "sdk")]
pub mod sdk;
mod stable_sort;
pub mod status;
pub mod store;
pub mod supervisor;
pub mod watchdog;

use std::fmt;

/// The most cameras one hikwatch process supervises: the HCNetSDK's default login limit
/// (it hands out user ids below 2048, and hikwatch does not raise the limit). This is the
/// one camera limit: the config refuses more (`[supervisor] max_cameras` and the camera
/// list), and the state file and the SDK layer's uid tables and stream slots are sized
/// for exactly this many, so every camera the config accepts gets its state saved and its
/// stream watched.
pub const MAX_CAMERAS: usize = 2048;

/// More cameras than [`MAX_CAMERAS`]: the one message for it, wherever it is caught.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CameraLimitExceeded {
    /// How many cameras there are (counting the one being added).
    pub count: usize,
}

impl fmt::Display for CameraLimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} cameras, but hikwatch supports at most {MAX_CAMERAS} (the HCNetSDK's login limit)",
            self.count
        )
    }
}
