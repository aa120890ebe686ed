//! A password that is wiped from memory when dropped and never printed.

use std::fmt;
use std::path::Path;

use zeroize::Zeroize;

/// Overwrites `buf` with zeros in a way the optimiser may not remove (`zeroize`: volatile
/// writes and a compiler fence).
pub(crate) fn wipe(buf: &mut [u8]) {
    buf.zeroize();
}

/// A camera password.
///
/// The bytes, spare capacity included, are zeroed (`zeroize`) when the value is dropped; `Debug` prints
/// `Password(***)` and there is no `Display`. Clones are independent copies that are
/// wiped on their own drop.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Password {
    bytes: Vec<u8>,
}

impl Password {
    /// Takes ownership of `s` (its buffer becomes the password's; no copy is left behind).
    pub fn new(s: String) -> Password {
        Password {
            bytes: s.into_bytes(),
        }
    }

    /// Reads a password file: the whole content, without one trailing `\n` or `\r\n`.
    ///
    /// # Errors
    ///
    /// The I/O error of reading `path`.
    pub fn from_file(path: &Path) -> std::io::Result<Password> {
        let mut bytes = std::fs::read(path)?;
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
        }
        Ok(Password { bytes })
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the password is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The secret bytes, for copying into the SDK's login struct.
    pub(crate) fn expose(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for Password {
    fn drop(&mut self) {
        // `Vec::zeroize` also wipes the spare capacity a shrinking edit may have left.
        self.bytes.zeroize();
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let p = Password::new("hunter2".into());
        assert_eq!(format!("{p:?}"), "Password(***)");
        assert_eq!(format!("{:#?}", Some(&p)), "Some(\n    Password(***),\n)");
    }

    #[test]
    fn wipe_zeroes() {
        let mut b = *b"secret";
        wipe(&mut b);
        assert_eq!(b, [0; 6]);
    }

    #[test]
    fn file_strips_one_newline() {
        let dir = std::env::temp_dir().join(format!("hikwatch-pw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let f = dir.join("pw");
        std::fs::write(&f, b"a b\r\n").expect("write");
        assert_eq!(Password::from_file(&f).expect("read").expose(), b"a b");
        std::fs::write(&f, b"x\n\n").expect("write");
        assert_eq!(Password::from_file(&f).expect("read").expose(), b"x\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
