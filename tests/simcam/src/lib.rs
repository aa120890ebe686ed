//! simcam: a fleet of simulated Hikvision cameras on loopback.
//!
//! Each camera speaks the ISAPI subset that HCNetSDK uses with `byLoginMode = 1`
//! (session login with the irreversible salted, iterated SHA-256 scheme, heartbeat,
//! logout, `deviceInfo`, the resources the SDK reads after login) and lockout replies
//! that the real SDK turns into error 1 / 153. Faults (power, freeze, latency, password
//! change, session limit, accept-then-close) are driven from tests through [`Camera`] or
//! from other processes through the `simcam` binary's stdin commands.
//!
//! # Layout
//! - `config`: [`FleetConfig`], [`Identity`].
//! - `fleet`: [`Fleet`] owns the executor threads and the cameras.
//! - `camera`: per-camera state, fault controls ([`Camera`]) and counters ([`CameraStats`]).
//! - `server`: accept loop and one task per connection.
//! - `http`: request parsing (`httparse`) and single-buffer responses.
//! - `isapi`: the login exchange, sessions, lockout and resources.
//! - `auth`: the password hash ([`irreversible_hash`]).
//! - `digest`: HTTP Digest mode (a camera without session login).
//! - `alert`: the `alertStream` event stream and its fault hooks.
//! - `events`: the bounded event log ([`Event`], [`EventKind`]).
//! - `stream`, `rtsp`, `h264`: live video (`adminAccesses`, an RTSP server per camera, a
//!   synthetic H.264 stream) and its faults ([`StreamProfile`], [`StreamStats`]).
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

mod alert;
mod auth;
mod camera;
mod config;
mod digest;
mod events;
mod fleet;
mod h264;
mod http;
mod isapi;
mod rtsp;
mod server;
mod stream;

pub use auth::{irreversible_hash, sha256_hex};
pub use camera::{Camera, CameraStats, Power};
pub use config::{FleetConfig, Identity};
pub use events::{Event, EventKind, json_escape};
pub use fleet::Fleet;
pub use stream::{StreamKind, StreamProfile, StreamStats};
