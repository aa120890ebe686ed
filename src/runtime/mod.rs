//! The smol shell around the supervisor core: placeholder.
