//! Raw declarations: the vendor functions hikwatch uses and the one table that resolves
//! them from `libhcnetsdk.so`.
//!
//! This is the "unsafe but flexible" layer (like libloading's `os::unix`): plain function
//! pointers with the vendor's C signatures (docs/hcnetsdk.md §1: `extern "C"`, `BOOL`/`LONG` = i32,
//! `DWORD` = u32). Nothing here checks arguments; [`super::Sdk`] is the safe layer.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::ffi::{c_char, c_int, c_void};
use std::mem::ManuallyDrop;
use std::path::Path;

use libloading::Library;

use super::error::SdkError;
use super::types::*;

/// Every vendor function hikwatch calls, resolved once at load.
///
/// # Invariant
///
/// Each pointer was obtained from `lib` by name with the signature the vendor header
/// declares, and `lib` is never unloaded (it sits in a `ManuallyDrop` that is never
/// dropped), so the pointers stay valid for the rest of the process. The SDK must not be
/// unloaded anyway: `NET_DVR_Init` installs a process-wide SIGPIPE handler inside the
/// vendor libraries that outlives `NET_DVR_Cleanup` (docs/hcnetsdk.md §7), and unmapping it would
/// turn the next SIGPIPE into a crash.
pub(crate) struct Api {
    pub init: unsafe extern "C" fn() -> BOOL,
    pub cleanup: unsafe extern "C" fn() -> BOOL,
    pub set_sdk_init_cfg: unsafe extern "C" fn(c_int, *mut c_void) -> BOOL,
    pub set_connect_time: unsafe extern "C" fn(DWORD, DWORD) -> BOOL,
    pub set_reconnect: unsafe extern "C" fn(DWORD, BOOL) -> BOOL,
    pub set_recv_timeout: unsafe extern "C" fn(DWORD) -> BOOL,
    pub set_log_to_file: unsafe extern "C" fn(DWORD, *mut c_char, BOOL) -> BOOL,
    pub set_exception_callback_v30:
        unsafe extern "C" fn(u32, *mut c_void, Option<ExceptionCallback>, *mut c_void) -> BOOL,
    pub login_v40:
        unsafe extern "C" fn(*mut NET_DVR_USER_LOGIN_INFO, *mut NET_DVR_DEVICEINFO_V40) -> LONG,
    pub logout: unsafe extern "C" fn(LONG) -> BOOL,
    pub get_last_error: unsafe extern "C" fn() -> DWORD,
    pub get_error_msg: unsafe extern "C" fn(*mut LONG) -> *mut c_char,
    pub remote_control: unsafe extern "C" fn(LONG, DWORD, *mut c_void, DWORD) -> BOOL,
    pub real_play_v40: unsafe extern "C" fn(
        LONG,
        *mut NET_DVR_PREVIEWINFO,
        Option<RealDataCallback>,
        *mut c_void,
    ) -> LONG,
    pub stop_real_play: unsafe extern "C" fn(LONG) -> BOOL,
    pub get_sdk_version: unsafe extern "C" fn() -> DWORD,
    pub get_sdk_build_version: unsafe extern "C" fn() -> DWORD,
    pub std_xml_config: unsafe extern "C" fn(
        LONG,
        *mut NET_DVR_XML_CONFIG_INPUT,
        *mut NET_DVR_XML_CONFIG_OUTPUT,
    ) -> BOOL,
    pub get_sdk_state: unsafe extern "C" fn(*mut NET_DVR_SDKSTATE) -> BOOL,
    pub set_sdk_local_cfg: unsafe extern "C" fn(c_int, *mut c_void) -> BOOL,
    pub get_sdk_local_cfg: unsafe extern "C" fn(c_int, *mut c_void) -> BOOL,
    /// Kept loaded for the rest of the process (see the invariant).
    _lib: ManuallyDrop<Library>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").finish_non_exhaustive()
    }
}

/// Resolves `name` (without the trailing NUL) from `lib` as a `T`.
///
/// # Safety
///
/// `T` must be the function-pointer type matching the C declaration of `name` in the
/// vendor header; a wrong type makes every later call undefined behaviour.
unsafe fn sym<T: Copy>(lib: &Library, path: &Path, name: &'static str) -> Result<T, SdkError> {
    let mut c_name = Vec::with_capacity(name.len() + 1);
    c_name.extend_from_slice(name.as_bytes());
    c_name.push(0);
    // SAFETY: the caller guarantees `T` is the declared type of `name` (this fn's contract).
    let s = unsafe { lib.get::<T>(&c_name) };
    match s {
        Ok(s) => Ok(*s),
        Err(_) => Err(SdkError::MissingSymbol {
            path: path.to_path_buf(),
            symbol: name,
        }),
    }
}

impl Api {
    /// Opens `path` and resolves every symbol.
    ///
    /// # Safety
    ///
    /// `path` must be a Hikvision `libhcnetsdk.so` (checked by the caller: the ELF
    /// machine matches this build). Loading runs the library's initialisers, i.e. vendor
    /// code; hikwatch trusts the SDK folder it is configured with, as it must to call the
    /// SDK at all.
    pub(crate) unsafe fn load(path: &Path) -> Result<Api, SdkError> {
        // SAFETY: the caller vouches that `path` is the vendor SDK (fn contract above);
        // its initialisers are the vendor's and take no arguments from us.
        let lib = unsafe { Library::new(path) }.map_err(|source| SdkError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        // SAFETY: for every `sym` call below the type is copied from the signature table
        // in docs/hcnetsdk.md §1 (vendor header), with BOOL/LONG = i32 and DWORD = u32.
        unsafe {
            Ok(Api {
                init: sym(&lib, path, "NET_DVR_Init")?,
                cleanup: sym(&lib, path, "NET_DVR_Cleanup")?,
                set_sdk_init_cfg: sym(&lib, path, "NET_DVR_SetSDKInitCfg")?,
                set_connect_time: sym(&lib, path, "NET_DVR_SetConnectTime")?,
                set_reconnect: sym(&lib, path, "NET_DVR_SetReconnect")?,
                set_recv_timeout: sym(&lib, path, "NET_DVR_SetRecvTimeOut")?,
                set_log_to_file: sym(&lib, path, "NET_DVR_SetLogToFile")?,
                set_exception_callback_v30: sym(&lib, path, "NET_DVR_SetExceptionCallBack_V30")?,
                login_v40: sym(&lib, path, "NET_DVR_Login_V40")?,
                logout: sym(&lib, path, "NET_DVR_Logout")?,
                get_last_error: sym(&lib, path, "NET_DVR_GetLastError")?,
                get_error_msg: sym(&lib, path, "NET_DVR_GetErrorMsg")?,
                remote_control: sym(&lib, path, "NET_DVR_RemoteControl")?,
                real_play_v40: sym(&lib, path, "NET_DVR_RealPlay_V40")?,
                stop_real_play: sym(&lib, path, "NET_DVR_StopRealPlay")?,
                get_sdk_version: sym(&lib, path, "NET_DVR_GetSDKVersion")?,
                get_sdk_build_version: sym(&lib, path, "NET_DVR_GetSDKBuildVersion")?,
                std_xml_config: sym(&lib, path, "NET_DVR_STDXMLConfig")?,
                get_sdk_state: sym(&lib, path, "NET_DVR_GetSDKState")?,
                set_sdk_local_cfg: sym(&lib, path, "NET_DVR_SetSDKLocalCfg")?,
                get_sdk_local_cfg: sym(&lib, path, "NET_DVR_GetSDKLocalCfg")?,
                _lib: ManuallyDrop::new(lib),
            })
        }
    }
}
