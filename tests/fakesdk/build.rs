//! Builds the C stand-in `csrc/fakesdk.c` into `libhcnetsdk.so` for the target being built,
//! in three SDK folders laid out like the vendor package (see `src/lib.rs`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=csrc/fakesdk.c");
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let variants: [(&str, &[&str]); 3] = [
        ("sdk", &[]),
        ("sdk-old", &["-DFAKE_BUILD_VERSION=0x05030000u"]),
        ("sdk-nosym", &["-DFAKE_OMIT_STDXML"]),
    ];
    for (name, defines) in variants {
        let dir = out.join(name);
        build_variant(&dir, defines);
        println!(
            "cargo:rustc-env=FAKESDK_DIR_{}={}",
            name.replace('-', "_").to_uppercase(),
            dir.display()
        );
    }
}

fn build_variant(dir: &Path, defines: &[&str]) {
    fs::create_dir_all(dir.join("HCNetSDKCom")).expect("create the fake SDK folder");
    // The loader passes these paths to NET_DVR_SetSDKInitCfg(3/4); the stand-in only
    // checks that they name existing files.
    for f in ["libcrypto.so.1.1", "libssl.so.1.1", "HCNetSDKCom/README"] {
        fs::write(
            dir.join(f),
            b"placeholder written by tests/fakesdk/build.rs\n",
        )
        .expect("write a placeholder file");
    }
    let compiler = cc::Build::new()
        .warnings(true)
        .extra_warnings(true)
        .opt_level(1)
        .get_compiler();
    let mut cmd: Command = compiler.to_command();
    cmd.args([
        "-shared",
        "-fPIC",
        "-pthread",
        "-fvisibility=hidden",
        "-std=gnu11",
    ])
    .args(defines)
    .arg("-o")
    .arg(dir.join("libhcnetsdk.so"))
    .arg("csrc/fakesdk.c");
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(status.success(), "{cmd:?} failed with {status}");
}
