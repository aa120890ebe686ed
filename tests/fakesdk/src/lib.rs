//! A C stand-in for Hikvision's `libhcnetsdk.so`, built for whatever target is being
//! built (the host, or armv7/aarch64 under qemu), with scriptable behaviour.
//!
//! `build.rs` compiles `csrc/fakesdk.c` with the `cc` crate's compiler for the target into
//! SDK folders laid out like the vendor package:
//!
//! ```text
//! <dir>/libhcnetsdk.so
//! <dir>/libcrypto.so.1.1      placeholder (the loader passes its path to SetSDKInitCfg 3)
//! <dir>/libssl.so.1.1         placeholder (SetSDKInitCfg 4)
//! <dir>/HCNetSDKCom/          the component folder (SetSDKInitCfg 2 names <dir>)
//! ```
//!
//! A login fails with error 107 when the SDK path does not hold `HCNetSDKCom/`, and with
//! 157 / 156 when the libcrypto / libssl paths do not name files, so a successful login
//! proves the loader set all three.
//!
//! # Scripts
//!
//! Behaviour is encoded in the login's device address, tokens separated by `;`, so tests
//! need no unsafe code. Anything unknown (e.g. `127.0.0.1`) is ignored.
//!
//! | Token | Effect |
//! |---|---|
//! | `hang` / `hang=MS` | the login (sync or async) blocks forever (until Cleanup) / for MS ms |
//! | `delay=MS` | the login succeeds after MS ms |
//! | `err=N` | the login fails with error N |
//! | `auth=N` | error 1 with `bySupportLock=1`, `byRetryLoginTime=N` |
//! | `lock=S` | error 153 with `bySupportLock=1`, `dwSurplusLockTime=S` |
//! | `pw=SECRET` | error 1 unless the password is SECRET |
//! | `exc=0x8000@500ms` / `exc=0x8000@500msx1000` | one / 1000 exception callbacks 500 ms after login |
//! | `down@MS` | the device powers off MS ms after login: one 0x8000, then heartbeats fail with 7 (each failed heartbeat fires another 0x8000, like the real SDK) |
//! | `hb=N` | every heartbeat fails with error N |
//! | `stream=25fps` | RealPlay_V40 delivers a header then 25 data callbacks per second |
//! | `gap=3000ms@2s` | ... pausing once for 3000 ms, 2 s after the first frame |
//! | `frame=BYTES` | bytes per data callback (default 4000) |
//! | `rp=N` | RealPlay_V40 fails with error N |
//! | `serial=S`, `model=M` | device info (DEVICEINFO serial, `/ISAPI/System/deviceInfo`) |
//! | `logout_hang=MS` | Logout blocks for MS ms |
//!
//! An SDK folder whose path contains `FAKE-INIT-FAILS` makes `NET_DVR_Init` fail with
//! error 41; a `NET_DVR_Cleanup` that pairs with no successful Init creates the file
//! `UNPAIRED-CLEANUP` in the SDK folder.
//!
//! `NET_DVR_STDXMLConfig` answers `GET /ISAPI/System/deviceInfo` and, for tests,
//! `GET /fake/config` with the loader's settings (`sdk_path=`, `crypto=`, `ssl=`,
//! `connect_ms=`, `recv_ms=`, `reconnect=`, `reconnect_ms=`, `check_online_ms=`,
//! `check_online_fail=`, one per line). `NET_DVR_Set/GetSDKLocalCfg` model type 10
//! (`NET_DVR_LOCAL_CHECK_DEV`) with the header's 30–120 s range.
#![forbid(unsafe_code)]

use std::path::PathBuf;

/// The SDK build version the stand-in reports (`NET_DVR_GetSDKBuildVersion` 0x06016300).
/// No vendor release has it, so tests can tell which library they ran against.
pub const VERSION: &str = "6.1.99.0";

/// The SDK folder with the stand-in (SDK build version [`VERSION`]).
pub fn sdk_dir() -> PathBuf {
    PathBuf::from(env!("FAKESDK_DIR_SDK"))
}

/// The same stand-in reporting SDK build version 5.3.0.0 (older than hikwatch supports).
pub fn old_sdk_dir() -> PathBuf {
    PathBuf::from(env!("FAKESDK_DIR_SDK_OLD"))
}

/// The same stand-in without the `NET_DVR_STDXMLConfig` export (a missing symbol).
pub fn missing_symbol_sdk_dir() -> PathBuf {
    PathBuf::from(env!("FAKESDK_DIR_SDK_NOSYM"))
}
