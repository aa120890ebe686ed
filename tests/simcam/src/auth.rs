//! The ISAPI "irreversible" password scheme and the illegal-login lock.

use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    let digest = Sha256::digest(data);
    let mut s = String::with_capacity(64);
    for b in digest {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The password hash a client sends in `POST /ISAPI/Security/sessionLogin` when the
/// capabilities said `isIrreversible=true`:
/// `r = H(user+salt+pwd); r = H(r+challenge); then r = H(r)` `iterations - 2` more times,
/// so `iterations` SHA-256 rounds in total (at least two).
pub fn irreversible_hash(
    user: &str,
    salt: &str,
    password: &str,
    challenge: &str,
    iterations: u32,
) -> String {
    let mut r = sha256_hex(format!("{user}{salt}{password}").as_bytes());
    r = sha256_hex(format!("{r}{challenge}").as_bytes());
    for _ in 2..iterations {
        r = sha256_hex(r.as_bytes());
    }
    r
}

/// `n` random lowercase hex digits.
pub(crate) fn random_hex(rng: &mut fastrand::Rng, n: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    (0..n).map(|_| HEX[rng.usize(..16)] as char).collect()
}

/// `n` random uppercase hex digits (Hikvision challenges and salts look like this).
pub(crate) fn random_hex_upper(rng: &mut fastrand::Rng, n: usize) -> String {
    random_hex(rng, n).to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_known_answer() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
