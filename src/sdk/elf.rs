//! Reads the ELF header of `libhcnetsdk.so` before `dlopen`, so a wrong-architecture SDK
//! gives a clear error instead of the loader's "wrong ELF class" or "cannot open".
//!
//! Only the identification bytes and `e_machine` are read (first 20 bytes); that is all
//! the check needs and works for 32- and 64-bit files alike.

use std::fmt;
use std::io::Read;
use std::path::Path;

/// `e_machine` values hikwatch knows by name.
const MACHINES: &[(u16, &str)] = &[
    (3, "x86"),
    (8, "mips"),
    (20, "powerpc"),
    (21, "powerpc64"),
    (40, "arm"),
    (62, "x86_64"),
    (183, "aarch64"),
    (243, "riscv"),
];

/// An ELF `e_machine` value with a readable name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Machine(pub u16);

impl Machine {
    /// The machine this build runs on (its `target_arch`).
    pub const fn current() -> Machine {
        Machine(if cfg!(target_arch = "x86_64") {
            62
        } else if cfg!(target_arch = "aarch64") {
            183
        } else if cfg!(target_arch = "arm") {
            40
        } else if cfg!(target_arch = "x86") {
            3
        } else if cfg!(target_arch = "riscv64") {
            243
        } else {
            0
        })
    }

    /// The architecture name (`x86_64`, `arm`, …) or `unknown`.
    pub fn name(self) -> &'static str {
        MACHINES
            .iter()
            .find(|(m, _)| *m == self.0)
            .map_or("unknown", |(_, n)| n)
    }
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (EM {})", self.name(), self.0)
    }
}

/// Why a file is not a usable ELF object.
#[derive(Debug, PartialEq, Eq)]
pub enum ElfProblem {
    /// Shorter than an ELF identification.
    TooShort,
    /// No `\x7fELF` magic.
    NotElf,
    /// `EI_DATA` is neither little nor big endian.
    BadEncoding(u8),
}

impl fmt::Display for ElfProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElfProblem::TooShort => f.write_str("file is too short for an ELF header"),
            ElfProblem::NotElf => f.write_str("not an ELF file (no \\x7fELF magic)"),
            ElfProblem::BadEncoding(b) => write!(f, "unknown ELF data encoding {b}"),
        }
    }
}

/// Parses `e_machine` from the first bytes of an ELF file.
pub fn machine_of(header: &[u8]) -> Result<Machine, ElfProblem> {
    if header.len() < 20 {
        return Err(ElfProblem::TooShort);
    }
    if header[..4] != *b"\x7fELF" {
        return Err(ElfProblem::NotElf);
    }
    let raw = [header[18], header[19]];
    match header[5] {
        1 => Ok(Machine(u16::from_le_bytes(raw))),
        2 => Ok(Machine(u16::from_be_bytes(raw))),
        other => Err(ElfProblem::BadEncoding(other)),
    }
}

/// Reads the machine of the ELF file at `path`.
pub fn read_machine(path: &Path) -> std::io::Result<Result<Machine, ElfProblem>> {
    let mut header = [0u8; 20];
    let mut f = std::fs::File::open(path)?;
    let mut n = 0;
    while n < header.len() {
        match f.read(&mut header[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(machine_of(&header[..n]))
}

/// A 64-byte ELF header for `machine` (tests use it to fake a foreign library).
pub fn fake_header(machine: u16, class64: bool) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = if class64 { 2 } else { 1 };
    h[5] = 1; // little endian
    h[6] = 1; // EV_CURRENT
    h[16] = 3; // ET_DYN
    h[18..20].copy_from_slice(&machine.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_machine_little_and_big_endian() {
        assert_eq!(machine_of(&fake_header(62, true)), Ok(Machine(62)));
        assert_eq!(machine_of(&fake_header(40, false)), Ok(Machine(40)));
        let mut be = fake_header(0, true);
        be[5] = 2;
        be[18] = 0;
        be[19] = 183;
        assert_eq!(machine_of(&be), Ok(Machine(183)));
    }

    #[test]
    fn rejects_non_elf() {
        assert_eq!(machine_of(b"short"), Err(ElfProblem::TooShort));
        assert_eq!(machine_of(&[b'#'; 64]), Err(ElfProblem::NotElf));
        let mut h = fake_header(62, true);
        h[5] = 9;
        assert_eq!(machine_of(&h), Err(ElfProblem::BadEncoding(9)));
    }

    #[test]
    fn names() {
        assert_eq!(Machine(62).to_string(), "x86_64 (EM 62)");
        assert_eq!(Machine(40).to_string(), "arm (EM 40)");
        assert_eq!(Machine(9999).to_string(), "unknown (EM 9999)");
        assert_ne!(
            Machine::current().0,
            0,
            "this build's architecture has a known EM"
        );
    }

    #[test]
    fn the_running_executable_is_our_machine() {
        let exe = std::env::current_exe().expect("current_exe");
        let m = read_machine(&exe).expect("read").expect("elf");
        assert_eq!(m, Machine::current());
    }
}
