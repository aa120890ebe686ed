//! `scripts/check-sdk-arm.sh` accepts a complete SDK folder of the right architecture and
//! names the file and the machine when something is missing or built for another CPU.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const REQUIRED: &[&str] = &[
    "libhcnetsdk.so",
    "libHCCore.so",
    "libhpr.so",
    "libcrypto.so.1.1",
    "libssl.so.1.1",
    "HCNetSDKCom/libHCPreview.so",
    "HCNetSDKCom/libHCCoreDevCfg.so",
    "HCNetSDKCom/libHCGeneralCfgMgr.so",
    "HCNetSDKCom/libHCAlarm.so",
    "HCNetSDKCom/libStreamTransClient.so",
    "HCNetSDKCom/libSystemTransform.so",
];

/// A 64-byte ELF header with the given class (1 = 32-bit, 2 = 64-bit) and machine.
fn elf_header(class: u8, machine: u16) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = class;
    h[5] = 1; // little-endian
    h[6] = 1; // version
    h[16] = 3; // ET_DYN
    h[18..20].copy_from_slice(&machine.to_le_bytes());
    h
}

fn make_sdk(name: &str, class: u8, machine: u16) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("hikwatch-check-sdk-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("HCNetSDKCom")).expect("create temp SDK folder");
    for f in REQUIRED {
        fs::write(dir.join(f), elf_header(class, machine)).expect("write fake ELF");
    }
    dir
}

fn check(dir: &Path, arch: &str) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check-sdk-arm.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(dir)
        .arg(arch)
        .output()
        .expect("run bash");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn accepts_a_complete_armv7_folder() {
    let dir = make_sdk("armv7-ok", 1, 40);
    let (ok, text) = check(&dir, "armv7");
    assert!(ok, "{text}");
    assert!(text.contains("OK for armv7 (11 ELF files)"), "{text}");
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn names_a_wrong_machine() {
    let dir = make_sdk("x86-for-arm", 2, 62);
    let (ok, text) = check(&dir, "armv7");
    assert!(!ok, "{text}");
    assert!(
        text.contains("libhcnetsdk.so is x86_64 (machine 62), expected ARM (machine 40)"),
        "{text}"
    );
    let (ok, text) = check(&dir, "aarch64");
    assert!(!ok);
    assert!(text.contains("expected AArch64 (machine 183)"), "{text}");
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn names_a_wrong_class_and_a_missing_file() {
    let dir = make_sdk("class", 2, 40);
    fs::remove_file(dir.join("HCNetSDKCom/libHCAlarm.so")).expect("remove");
    let (ok, text) = check(&dir, "armv7");
    assert!(!ok, "{text}");
    assert!(
        text.contains("libhpr.so is ELF64, expected ELF32"),
        "{text}"
    );
    assert!(
        text.contains("HCNetSDKCom/libHCAlarm.so: missing"),
        "{text}"
    );
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn rejects_a_missing_folder() {
    let (ok, text) = check(Path::new("/nonexistent/hikwatch-sdk"), "aarch64");
    assert!(!ok);
    assert!(
        text.contains("/nonexistent/hikwatch-sdk: no such folder"),
        "{text}"
    );
}
