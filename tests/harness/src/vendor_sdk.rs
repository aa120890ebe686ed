//! Which real vendor HCNetSDK a real-SDK test runs against, and where it is.
//!
//! Three vendor releases are known. The C stand-in in `tests/fakesdk` reports a version
//! of its own (`fakesdk::VERSION`, 6.1.99.0, which no vendor release has), so a test that
//! checks the loaded library's version against [`RealSdk::release`] proves it ran the
//! vendor's code, and which release:
//!
//! | release | CPU | where |
//! |---|---|---|
//! | 6.1.9.48 | x86_64 | `vendor/hcnetsdk-linux64` (`scripts/fetch-sdk.sh`, from the hcnetsdk-python wheel) |
//! | 6.1.6.3 | x86_64 | `../shared/vendor-sdk/hcnetsdk-6.1.6.3-x86_64` (beside the repository) |
//! | 6.1.8.101 | aarch64 | `../shared/vendor-sdk/hcnetsdk-6.1.8.101-aarch64` (beside the repository) |
//!
//! The default is 6.1.9.48 on x86_64 and 6.1.8.101 on aarch64; `HIKWATCH_TEST_SDK_RELEASE`
//! picks another release of the same CPU (`scripts/test.sh` runs the release matrix that
//! way: one test process per release, because the SDK is process-global and its libraries
//! are never unloaded). `HIKWATCH_TEST_SDK` overrides the folder of the chosen release.
//!
//! The `../shared` folder exists on CI and the developers' machines, not in a user's clone:
//! there [`RealSdk::find`] returns `None` after one line on stderr saying what is skipped
//! and why, and with `CI=true` it panics instead. Nothing else in the test suite needs
//! `../shared`.
//!
//! The aarch64 build's `libHCCore.so` needs `libuuid.so.1`, which Debian's cross sysroot
//! lacks; `scripts/fetch-arm64-libs.sh` unpacks Debian's `libuuid1:arm64` into a cache
//! folder, and the harness lays out a folder of symbolic links (every vendor file plus
//! that library) so the SDK's own `RPATH=$ORIGIN` finds it. The vendor folder itself is
//! read-only and stays untouched.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A vendor SDK release the tests know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdkRelease {
    /// The vendor's name of the release (its package name), e.g. `6.1.6.3`.
    pub version: &'static str,
    /// What its `NET_DVR_GetSDKBuildVersion` reports (`Sdk::version()`): not always the
    /// package name (the 6.1.6.3 package reports 6.1.6.45).
    pub reports: &'static str,
    /// The CPU it is built for (`std::env::consts::ARCH` spelling).
    pub arch: &'static str,
    /// Folder name under `../shared/vendor-sdk/`, or `None` for the fetched 6.1.9.48.
    shared_folder: Option<&'static str>,
}

/// x86_64 6.1.9.48, fetched by `scripts/fetch-sdk.sh`.
pub const SDK_6_1_9_48_X86_64: SdkRelease = SdkRelease {
    version: "6.1.9.48",
    reports: "6.1.9.48",
    arch: "x86_64",
    shared_folder: None,
};

/// x86_64 6.1.6.3 (build 2020-09-25): OpenSSL 1.0 file names; reports 6.1.6.45.
pub const SDK_6_1_6_3_X86_64: SdkRelease = SdkRelease {
    version: "6.1.6.3",
    reports: "6.1.6.45",
    arch: "x86_64",
    shared_folder: Some("hcnetsdk-6.1.6.3-x86_64"),
};

/// aarch64 6.1.8.101 (build 2021-12-10).
pub const SDK_6_1_8_101_AARCH64: SdkRelease = SdkRelease {
    version: "6.1.8.101",
    reports: "6.1.8.101",
    arch: "aarch64",
    shared_folder: Some("hcnetsdk-6.1.8.101-aarch64"),
};

/// Every release, default of each CPU first.
pub const RELEASES: [SdkRelease; 3] = [
    SDK_6_1_9_48_X86_64,
    SDK_6_1_8_101_AARCH64,
    SDK_6_1_6_3_X86_64,
];

impl SdkRelease {
    /// `6.1.8.101 aarch64`.
    pub fn label(&self) -> String {
        format!("{} {}", self.version, self.arch)
    }

    /// Whether it comes from the `../shared` folder beside the repository.
    pub fn needs_shared(&self) -> bool {
        self.shared_folder.is_some()
    }
}

/// The release chosen for this test process: `HIKWATCH_TEST_SDK_RELEASE`, else the default
/// of this CPU. `None` on a CPU without a vendor build (armv7: the stand-in only).
///
/// # Panics
/// When `HIKWATCH_TEST_SDK_RELEASE` names no release of this CPU.
pub fn chosen_release() -> Option<SdkRelease> {
    let arch = std::env::consts::ARCH;
    match std::env::var("HIKWATCH_TEST_SDK_RELEASE") {
        Ok(v) if !v.is_empty() => {
            let r = RELEASES
                .iter()
                .find(|r| r.version == v && r.arch == arch)
                .unwrap_or_else(|| {
                    panic!(
                        "HIKWATCH_TEST_SDK_RELEASE={v}: no such release for {arch}; known: {}",
                        RELEASES
                            .iter()
                            .map(SdkRelease::label)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                });
            Some(*r)
        }
        _ => RELEASES.iter().find(|r| r.arch == arch).copied(),
    }
}

/// A real vendor SDK ready to load: its folder and which release it is.
#[derive(Clone, Debug)]
pub struct RealSdk {
    /// The folder to give `Sdk::load` or `[sdk] dir`.
    pub dir: PathBuf,
    /// Which release (tests assert the loaded library reports `release.version`).
    pub release: SdkRelease,
}

impl RealSdk {
    /// The chosen release (see the module docs) for the crate at `manifest_dir`, looked
    /// up once per process. `None` means "skip": the release lives in `../shared`, the
    /// folder is missing, and `CI` is not `true`; one line on stderr says so.
    ///
    /// # Panics
    /// When the SDK is missing and the test must not skip (6.1.9.48 not fetched, or
    /// `CI=true`), when the aarch64 helper library was not fetched, or on a CPU without a
    /// vendor build.
    pub fn find(manifest_dir: &str) -> Option<&'static RealSdk> {
        static FOUND: OnceLock<Option<RealSdk>> = OnceLock::new();
        FOUND.get_or_init(|| locate(manifest_dir)).as_ref()
    }

    /// Panics unless `reported` (what the loaded library says, e.g. `Sdk::version()`) is
    /// what this release reports (and so not the stand-in, whose version no release has).
    pub fn assert_version(&self, reported: &str) {
        assert_eq!(
            reported,
            self.release.reports,
            "the SDK in {} is not the expected vendor release {}",
            self.dir.display(),
            self.release.label()
        );
    }

    /// [`RealSdk::assert_version`] on the word after the first `HCNetSDK ` in `text` (how
    /// the daemon's start line and `hikwatch probe` name the loaded SDK).
    pub fn assert_named_in(&self, text: &str) {
        let version =
            version_named_in(text).unwrap_or_else(|| panic!("no `HCNetSDK <version>` in {text:?}"));
        self.assert_version(version);
    }
}

fn locate(manifest_dir: &str) -> Option<RealSdk> {
    let release = chosen_release().unwrap_or_else(|| {
        panic!(
            "no vendor HCNetSDK exists for {}; real-SDK tests are not built for it",
            std::env::consts::ARCH
        )
    });
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let dir = match std::env::var_os("HIKWATCH_TEST_SDK") {
        Some(d) => PathBuf::from(d),
        None => match release_dir(Path::new(manifest_dir), &release, ci) {
            Ok(Some(d)) => d,
            Ok(None) => return None,
            Err(why) => panic!("{why}"),
        },
    };
    assert!(
        dir.join("libhcnetsdk.so").is_file(),
        "the real HCNetSDK {} is missing at {}: run scripts/fetch-sdk.sh (or set HIKWATCH_TEST_SDK)",
        release.label(),
        dir.display()
    );
    let dir = if release.arch == "aarch64" {
        with_arm64_libs(&dir, &release)
    } else {
        dir
    };
    Some(RealSdk { dir, release })
}

/// Where `release` is for the repository at `root`: `Ok(None)` (after one line on stderr)
/// when it belongs beside the repository, is missing there, and this is not CI; `Err` when
/// it is missing on CI.
fn release_dir(root: &Path, release: &SdkRelease, ci: bool) -> Result<Option<PathBuf>, String> {
    let Some(folder) = release.shared_folder else {
        return Ok(Some(root.join("vendor/hcnetsdk-linux64")));
    };
    let d = shared_vendor_dir(root).join(folder);
    if d.join("libhcnetsdk.so").is_file() {
        return Ok(Some(d));
    }
    let why = format!(
        "real-SDK tests on HCNetSDK {}: {} not found",
        release.label(),
        d.display()
    );
    if ci {
        return Err(format!("{why} (CI=true: the folder must be there)"));
    }
    eprintln!("skipped: {why} (a clone without ../shared; CI=true makes this a failure)");
    Ok(None)
}

/// The word after the first `HCNetSDK ` in `text`: the SDK version as the daemon's start
/// line and `hikwatch probe` print it.
pub fn version_named_in(text: &str) -> Option<&str> {
    text.split_once("HCNetSDK ")?.1.split_whitespace().next()
}

/// `../shared/vendor-sdk` beside the repository at `root`.
pub fn shared_vendor_dir(root: &Path) -> PathBuf {
    root.join("../shared/vendor-sdk")
}

/// The cache folder of `scripts/fetch-arm64-libs.sh`.
pub fn arm64_libs_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("HIKWATCH_ARM64_LIBS") {
        return PathBuf::from(d);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/var/cache"));
    cache.join("hikwatch/arm64-libs")
}

/// A folder of symbolic links: every entry of the vendor folder `dir` plus
/// `libuuid.so.1` from [`arm64_libs_dir`]. Made once per release and user (atomically, so
/// parallel test processes share it).
///
/// # Panics
/// When `libuuid.so.1` was not fetched (the message names the script) or the folder
/// cannot be made.
pub fn with_arm64_libs(dir: &Path, release: &SdkRelease) -> PathBuf {
    let uuid = arm64_libs_dir().join("libuuid.so.1");
    assert!(
        uuid.exists(),
        "{} is missing: the vendor's aarch64 SDK needs it; run scripts/fetch-arm64-libs.sh",
        uuid.display()
    );
    let dir = std::fs::canonicalize(dir)
        .unwrap_or_else(|e| panic!("cannot resolve {}: {e}", dir.display()));
    let uid = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").map_or(0, |m| m.uid())
    };
    let staged = std::env::temp_dir().join(format!(
        "hikwatch-sdk-{}-{}-uid{uid}",
        release.version, release.arch
    ));
    if staged.join("libhcnetsdk.so").exists() && staged.join("libuuid.so.1").exists() {
        return staged;
    }
    let tmp = staged.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("create the staged SDK folder");
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(Result::ok);
    for e in entries {
        std::os::unix::fs::symlink(e.path(), tmp.join(e.file_name())).expect("symlink");
    }
    std::os::unix::fs::symlink(&uuid, tmp.join("libuuid.so.1")).expect("symlink libuuid");
    // Another process may have won the race; its folder is as good as this one.
    if std::fs::rename(&tmp, &staged).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    staged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_shared_folder_skips_except_on_ci() {
        let root = Path::new("/nonexistent/hikwatch");
        for r in [SDK_6_1_6_3_X86_64, SDK_6_1_8_101_AARCH64] {
            assert_eq!(release_dir(root, &r, false), Ok(None), "{r:?}");
            let e = release_dir(root, &r, true).expect_err("CI fails");
            assert!(e.contains("CI=true") && e.contains(r.version), "{e}");
        }
        // The fetched release never depends on the folder beside the repository.
        assert_eq!(
            release_dir(root, &SDK_6_1_9_48_X86_64, true),
            Ok(Some(root.join("vendor/hcnetsdk-linux64")))
        );
    }

    #[test]
    fn every_release_reports_a_version_the_stand_in_does_not() {
        // 6.1.99.0 is the stand-in's (tests/fakesdk).
        assert!(RELEASES.iter().all(|r| r.reports != "6.1.99.0"));
    }
}
