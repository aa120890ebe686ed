//! simcam: a fleet of simulated Hikvision cameras on loopback: placeholder.
#![forbid(unsafe_code)]
