//! [`Password`]: a camera password that never prints and is zeroed when dropped.
//!
//! The one password type of the crate: the config loader makes it, the SDK layer copies
//! it into its login struct (and wipes that copy with [`wipe`]), the probe reads it from a
//! file.

use std::fmt;
use std::path::Path;

use zeroize::Zeroize;

/// Overwrites `buf` with zeros in a way the optimiser may not remove (`zeroize`: volatile
/// writes and a compiler fence). For copies of a password outside a [`Password`], such
/// as the SDK's login struct.
#[cfg_attr(not(feature = "sdk"), allow(dead_code))] // its user is the SDK's login struct
pub(crate) fn wipe(buf: &mut [u8]) {
    buf.zeroize();
}

/// A camera password.
///
/// - `Debug` prints `Password(***)`; there is no `Display`, so it cannot end up in a log
///   line, the status output or the state file by accident.
/// - The bytes, spare capacity included, are overwritten with zeros when the value is
///   dropped (with `zeroize`, whose volatile writes the optimiser may not remove). Clones
///   are independent copies, wiped on their own drop.
/// - The text is valid UTF-8 (the ISAPI login hashes it as a string); the config loader
///   and [`Password::from_file`] reject anything else.
/// - Equality compares without an early exit on the first differing byte.
#[derive(Clone, Default)]
pub struct Password {
    /// The password. Never shrunk or reallocated after construction, so there is exactly
    /// one heap copy to zero.
    text: String,
}

impl Password {
    /// Takes ownership of `text` (its buffer becomes the password's; no copy is left
    /// behind). The caller should not keep other copies.
    pub fn new(text: String) -> Password {
        Password { text }
    }

    /// Reads a password file: the whole content, without one trailing `\n` or `\r\n`.
    ///
    /// # Errors
    ///
    /// The I/O error of reading `path`, or `InvalidData` if the content is not UTF-8
    /// (the bytes read are wiped before returning).
    pub fn from_file(path: &Path) -> std::io::Result<Password> {
        let mut bytes = std::fs::read(path)?;
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
        }
        match String::from_utf8(bytes) {
            Ok(text) => Ok(Password { text }),
            Err(e) => {
                let mut bytes = e.into_bytes();
                bytes.zeroize();
                Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "the password is not valid UTF-8",
                ))
            }
        }
    }

    /// The password, for the one place that must send it (the SDK login call) and the
    /// checks of the config loader.
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

impl PartialEq for Password {
    /// Compares without an early exit on the first differing byte.
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.text.as_bytes(), other.text.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl Eq for Password {}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

impl Drop for Password {
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
        let p = Password::new("hunter2".to_string());
        assert_eq!(format!("{p:?}"), "Password(***)");
        assert_eq!(format!("{:?}", Some(p.clone())), "Some(Password(***))");
        assert_eq!(format!("{:#?}", Some(&p)), "Some(\n    Password(***),\n)");
        assert_eq!(p.expose(), "hunter2");
    }

    #[test]
    fn equality_compares_contents() {
        let a = Password::new("abc".into());
        assert_eq!(a, Password::new("abc".into()));
        assert_ne!(a, Password::new("abd".into()));
        assert_ne!(a, Password::new("abcd".into()));
        assert_ne!(a, Password::default());
    }

    #[test]
    fn zeroize_clears_the_buffer() {
        // What Drop calls; observable here because we keep the String alive.
        let mut s = String::with_capacity(16);
        s.push_str("topsecret");
        let mut p = Password::new(s);
        p.text.zeroize();
        assert!(p.is_empty());
        assert!(p.text.capacity() >= 9);
    }

    #[test]
    fn wipe_zeroes() {
        let mut b = *b"secret";
        wipe(&mut b);
        assert_eq!(b, [0; 6]);
    }

    #[test]
    fn file_strips_one_newline_and_wants_utf8() {
        let dir = std::env::temp_dir().join(format!("hikwatch-pw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let f = dir.join("pw");
        std::fs::write(&f, b"a b\r\n").expect("write");
        assert_eq!(Password::from_file(&f).expect("read").expose(), "a b");
        std::fs::write(&f, b"x\n\n").expect("write");
        assert_eq!(Password::from_file(&f).expect("read").expose(), "x\n");
        std::fs::write(&f, b"\xff\xfe").expect("write");
        let err = Password::from_file(&f).expect_err("not UTF-8");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
