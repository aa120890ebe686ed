//! The vendor HCNetSDK, loaded at run time. The only module with `unsafe`.
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod class;

pub use class::ErrorClass;
