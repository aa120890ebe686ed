//! A C stand-in for libhcnetsdk.so: placeholder.
#![forbid(unsafe_code)]
