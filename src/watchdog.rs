//! watchdog: placeholder, see ARCHITECTURE.md.
