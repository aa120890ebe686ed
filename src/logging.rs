//! logging: placeholder, see ARCHITECTURE.md.
