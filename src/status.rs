//! status: placeholder, see ARCHITECTURE.md.
