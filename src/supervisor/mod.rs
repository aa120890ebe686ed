//! The pure per-camera state machine: placeholder.
