//! config: placeholder, see ARCHITECTURE.md.
