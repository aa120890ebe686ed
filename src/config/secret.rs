//! [`Secret`]: a password that never prints and is zeroed when dropped.

use std::fmt;

use zeroize::Zeroize;

/// A camera password.
///
/// - `Debug` prints `***`; there is no `Display`, so it cannot end up in a log line, the
///   status output or the state file by accident.
/// - The bytes are overwritten with zeros when the value is dropped (with `zeroize`, whose
///   volatile writes the optimiser may not remove; safe code cannot promise that).
/// - The text is valid UTF-8 (the ISAPI login hashes it as a string); the config loader
///   rejects anything else.
///
/// The SDK layer copies it into its own login struct and is responsible for that copy.
#[derive(Clone, Default)]
pub struct Secret {
    /// The password. Never shrunk or reallocated after construction, so there is exactly
    /// one heap copy to zero.
    text: String,
}

impl Secret {
    /// Wraps `text`; the caller should not keep other copies.
    pub fn new(text: String) -> Self {
        Secret { text }
    }

    /// The password, for the one place that must send it (the SDK login call).
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// Whether the password is empty.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.text.len()
    }
}

impl PartialEq for Secret {
    /// Compares without an early exit on the first differing byte.
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.text.as_bytes(), other.text.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // Zeroes the whole capacity, not only the length.
        self.text.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let s = Secret::new("hunter2".to_string());
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(***)");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn equality_compares_contents() {
        let a = Secret::new("abc".into());
        assert_eq!(a, Secret::new("abc".into()));
        assert_ne!(a, Secret::new("abd".into()));
        assert_ne!(a, Secret::new("abcd".into()));
        assert_ne!(a, Secret::default());
    }

    #[test]
    fn zeroize_clears_the_buffer() {
        // What Drop calls; observable here because we keep the String alive.
        let mut s = String::with_capacity(16);
        s.push_str("topsecret");
        let mut secret = Secret::new(s);
        secret.text.zeroize();
        assert!(secret.is_empty());
        assert!(secret.text.capacity() >= 9);
    }
}
