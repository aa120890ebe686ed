//! Board profiles: the files in `board/`, compiled in so a named profile works without
//! installing anything next to the binary.

/// Every built-in board profile: `(name, TOML text)`.
pub const BUILTIN_BOARDS: &[(&str, &str)] = &[
    (
        "armv7-generic",
        include_str!("../../board/armv7-generic.toml"),
    ),
    (
        "aarch64-generic",
        include_str!("../../board/aarch64-generic.toml"),
    ),
    ("x86_64-dev", include_str!("../../board/x86_64-dev.toml")),
];

/// The text of the built-in profile `name`.
pub fn builtin_board(name: &str) -> Option<&'static str> {
    BUILTIN_BOARDS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

/// Whether a `board = "…"` value is a path rather than a built-in name.
pub(crate) fn is_path(value: &str) -> bool {
    value.contains('/') || value.ends_with(".toml")
}
