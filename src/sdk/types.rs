//! `#[repr(C)]` mirrors of the HCNetSDK structs hikwatch passes across FFI.
//!
//! Field names follow the vendor header (`HCNetSDK.h`) so they can be checked against it
//! line by line. Sizes and offsets come from docs/hcnetsdk.md §2 (gcc on x86_64, i386
//! and arm-linux-gnueabihf); the `const` assertions below stop the build when a layout
//! drifts, for 64-bit (x86_64, aarch64) and 32-bit (armv7) targets alike, and the unit
//! tests print every offset on the target they run on. Linux types: `BOOL`/`LONG` = i32,
//! `DWORD`/`UINT` = u32, `WORD` = u16, `BYTE` = u8, `HWND` = u32.
#![allow(non_snake_case, non_camel_case_types)]
#![allow(
    missing_docs,
    reason = "struct fields carry the vendor header's names one to one (the byte layout is the contract, checked by the assertions below); a doc line per field would only repeat the name"
)]

use std::ffi::c_void;
use std::mem::{offset_of, size_of};

/// `BOOL` (int).
pub type BOOL = i32;
/// `LONG` (int, also on LP64).
pub type LONG = i32;
/// `DWORD` (unsigned int).
pub type DWORD = u32;
/// `WORD`.
pub type WORD = u16;
/// `BYTE`.
pub type BYTE = u8;

/// `fLoginResultCallBack`: the asynchronous login result.
pub type LoginResultCallback =
    unsafe extern "C" fn(LONG, DWORD, *mut NET_DVR_DEVICEINFO_V30, *mut c_void);
/// The exception callback of `NET_DVR_SetExceptionCallBack_V30`.
pub type ExceptionCallback = unsafe extern "C" fn(DWORD, LONG, LONG, *mut c_void);
/// `REALDATACALLBACK`: stream data of `NET_DVR_RealPlay_V40`.
pub type RealDataCallback = unsafe extern "C" fn(LONG, DWORD, *mut BYTE, DWORD, *mut c_void);

/// `NET_DVR_DEVICEINFO_V30` (80 bytes on every target).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NET_DVR_DEVICEINFO_V30 {
    pub sSerialNumber: [BYTE; 48],
    pub byAlarmInPortNum: BYTE,
    pub byAlarmOutPortNum: BYTE,
    pub byDiskNum: BYTE,
    pub byDVRType: BYTE,
    pub byChanNum: BYTE,
    pub byStartChan: BYTE,
    pub byAudioChanNum: BYTE,
    pub byIPChanNum: BYTE,
    pub byZeroChanNum: BYTE,
    pub byMainProto: BYTE,
    pub bySubProto: BYTE,
    pub bySupport: BYTE,
    pub bySupport1: BYTE,
    pub bySupport2: BYTE,
    pub wDevType: WORD,
    pub bySupport3: BYTE,
    pub byMultiStreamProto: BYTE,
    pub byStartDChan: BYTE,
    pub byStartDTalkChan: BYTE,
    pub byHighDChanNum: BYTE,
    pub bySupport4: BYTE,
    pub byLanguageType: BYTE,
    pub byVoiceInChanNum: BYTE,
    pub byStartVoiceInChanNo: BYTE,
    pub bySupport5: BYTE,
    pub bySupport6: BYTE,
    pub byMirrorChanNum: BYTE,
    pub wStartMirrorChanNo: WORD,
    pub bySupport7: BYTE,
    pub byRes2: BYTE,
}

/// `NET_DVR_DEVICEINFO_V40` (344 bytes on every target). Filled by a login, also on
/// failure (`bySupportLock`, `byRetryLoginTime`, `dwSurplusLockTime`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NET_DVR_DEVICEINFO_V40 {
    pub struDeviceV30: NET_DVR_DEVICEINFO_V30,
    pub bySupportLock: BYTE,
    pub byRetryLoginTime: BYTE,
    pub byPasswordLevel: BYTE,
    pub byProxyType: BYTE,
    pub dwSurplusLockTime: DWORD,
    pub byCharEncodeType: BYTE,
    pub bySupportDev5: BYTE,
    pub bySupport: BYTE,
    pub byLoginMode: BYTE,
    pub dwOEMCode: DWORD,
    pub iResidualValidity: i32,
    pub byResidualValidity: BYTE,
    pub bySingleStartDTalkChan: BYTE,
    pub bySingleDTalkChanNums: BYTE,
    pub byPassWordResetLevel: BYTE,
    pub bySupportStreamEncrypt: BYTE,
    pub byMarketType: BYTE,
    pub byTLSCap: BYTE,
    pub byRes2: [BYTE; 237],
}

/// `NET_DVR_USER_LOGIN_INFO` (416 bytes on LP64, 400 on 32-bit ARM): the only struct here
/// whose layout depends on the pointer size.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NET_DVR_USER_LOGIN_INFO {
    pub sDeviceAddress: [u8; 129],
    pub byUseTransport: BYTE,
    pub wPort: WORD,
    pub sUserName: [u8; 64],
    pub sPassword: [u8; 64],
    pub cbLoginResult: Option<LoginResultCallback>,
    pub pUser: *mut c_void,
    pub bUseAsynLogin: BOOL,
    pub byProxyType: BYTE,
    pub byUseUTCTime: BYTE,
    /// 0 private protocol, 1 ISAPI, 2 adaptive.
    pub byLoginMode: BYTE,
    /// 0 no TLS, 1 TLS, 2 adaptive.
    pub byHttps: BYTE,
    pub iProxyID: LONG,
    pub byVerifyMode: BYTE,
    pub byRes3: [BYTE; 119],
}

/// `NET_DVR_PREVIEWINFO` (280 bytes on every Linux target; `HWND` is `unsigned int`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NET_DVR_PREVIEWINFO {
    pub lChannel: LONG,
    /// 0 main stream, 1 sub stream, …
    pub dwStreamType: DWORD,
    /// 0 TCP, 1 UDP, 2 multicast, 3 RTP, 4 RTP/RTSP, 5 RTSP/HTTP.
    pub dwLinkMode: DWORD,
    /// 0: no decoding or display.
    pub hPlayWnd: u32,
    pub bBlocked: DWORD,
    pub bPassbackRecord: DWORD,
    pub byPreviewMode: BYTE,
    pub byStreamID: [BYTE; 32],
    pub byProtoType: BYTE,
    pub byRes1: BYTE,
    pub byVideoCodingType: BYTE,
    pub dwDisplayBufNum: DWORD,
    pub byNPQMode: BYTE,
    pub byRecvMetaData: BYTE,
    pub byDataType: BYTE,
    pub byRes: [BYTE; 213],
}

/// `NET_DVR_LOCAL_SDK_PATH` (384 bytes): `SetSDKInitCfg(2, …)`, the folder that holds
/// `HCNetSDKCom/`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NET_DVR_LOCAL_SDK_PATH {
    pub sPath: [u8; 256],
    pub byRes: [BYTE; 128],
}

/// `NET_DVR_XML_CONFIG_INPUT` (72 bytes LP64, 56 on 32-bit) for `NET_DVR_STDXMLConfig`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NET_DVR_XML_CONFIG_INPUT {
    pub dwSize: DWORD,
    pub lpRequestUrl: *mut c_void,
    pub dwRequestUrlLen: DWORD,
    pub lpInBuffer: *mut c_void,
    pub dwInBufferSize: DWORD,
    /// ms; 0 = the SDK's default (5 s).
    pub dwRecvTimeOut: DWORD,
    pub byForceEncrpt: BYTE,
    pub byNumOfMultiPart: BYTE,
    pub byMIMEType: BYTE,
    pub byRes1: BYTE,
    pub dwSendTimeOut: DWORD,
    pub byRes: [BYTE; 24],
}

/// `NET_DVR_XML_CONFIG_OUTPUT` (72 bytes LP64, 56 on 32-bit).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NET_DVR_XML_CONFIG_OUTPUT {
    pub dwSize: DWORD,
    pub lpOutBuffer: *mut c_void,
    pub dwOutBufferSize: DWORD,
    pub dwReturnedXMLSize: DWORD,
    pub lpStatusBuffer: *mut c_void,
    pub dwStatusSize: DWORD,
    pub byRes: [BYTE; 32],
}

/// `NET_DVR_SDKSTATE` (84 bytes): what the SDK currently holds, for leak checks.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct NET_DVR_SDKSTATE {
    pub dwTotalLoginNum: DWORD,
    pub dwTotalRealPlayNum: DWORD,
    pub dwTotalPlayBackNum: DWORD,
    pub dwTotalAlarmChanNum: DWORD,
    pub dwTotalFormatNum: DWORD,
    pub dwTotalFileSearchNum: DWORD,
    pub dwTotalLogSearchNum: DWORD,
    pub dwTotalSerialNum: DWORD,
    pub dwTotalUpgradeNum: DWORD,
    pub dwTotalVoiceComNum: DWORD,
    pub dwTotalBroadCastNum: DWORD,
    pub dwRes: [DWORD; 10],
}

/// `NET_DVR_LOCAL_CHECK_DEV` (264 bytes on every target): `Set/GetSDKLocalCfg` type 10,
/// the SDK's own session heartbeat ("check device online").
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NET_DVR_LOCAL_CHECK_DEV {
    /// Heartbeat period in ms; the header allows 30 000–120 000 (0 = 120 000).
    pub dwCheckOnlineTimeout: DWORD,
    /// Failed heartbeats before the exception callback fires.
    pub dwCheckOnlineNetFailMax: DWORD,
    pub byRes: [BYTE; 256],
}

/// Implements `zeroed()` for plain-data structs.
macro_rules! zeroed {
    ($($t:ty),*) => {$(
        impl $t {
            /// All fields zero (no callback, null pointers): what the vendor samples get
            /// from `memset(&s, 0, sizeof s)`.
            pub fn zeroed() -> Self {
                // SAFETY: the type is `repr(C)` and made only of integers, byte arrays, raw
                // pointers and `Option<extern fn>`; all-zero bytes are a valid value of each
                // (0, null, `None`).
                unsafe { std::mem::zeroed() }
            }
        }
    )*};
}
zeroed!(
    NET_DVR_DEVICEINFO_V30,
    NET_DVR_DEVICEINFO_V40,
    NET_DVR_USER_LOGIN_INFO,
    NET_DVR_PREVIEWINFO,
    NET_DVR_LOCAL_SDK_PATH,
    NET_DVR_XML_CONFIG_INPUT,
    NET_DVR_XML_CONFIG_OUTPUT,
    NET_DVR_LOCAL_CHECK_DEV
);

const LP64: bool = cfg!(target_pointer_width = "64");
const fn by_width(lp64: usize, ilp32: usize) -> usize {
    if LP64 { lp64 } else { ilp32 }
}

// Compile-time layout checks (docs/hcnetsdk.md §2). A mismatch stops the build for that target.
const _: () = assert!(size_of::<NET_DVR_DEVICEINFO_V30>() == 80);
const _: () = assert!(offset_of!(NET_DVR_DEVICEINFO_V30, wDevType) == 62);
const _: () = assert!(offset_of!(NET_DVR_DEVICEINFO_V30, wStartMirrorChanNo) == 76);
const _: () = assert!(size_of::<NET_DVR_DEVICEINFO_V40>() == 344);
const _: () = assert!(offset_of!(NET_DVR_DEVICEINFO_V40, dwSurplusLockTime) == 84);
const _: () = assert!(offset_of!(NET_DVR_DEVICEINFO_V40, byTLSCap) == 106);
const _: () = assert!(size_of::<NET_DVR_USER_LOGIN_INFO>() == by_width(416, 400));
const _: () = assert!(offset_of!(NET_DVR_USER_LOGIN_INFO, cbLoginResult) == by_width(264, 260));
const _: () = assert!(offset_of!(NET_DVR_USER_LOGIN_INFO, byRes3) == by_width(293, 281));
const _: () = assert!(size_of::<NET_DVR_PREVIEWINFO>() == 280);
const _: () = assert!(offset_of!(NET_DVR_PREVIEWINFO, byRes) == 67);
const _: () = assert!(size_of::<NET_DVR_LOCAL_SDK_PATH>() == 384);
const _: () = assert!(size_of::<NET_DVR_XML_CONFIG_INPUT>() == by_width(72, 56));
const _: () = assert!(size_of::<NET_DVR_XML_CONFIG_OUTPUT>() == by_width(72, 56));
const _: () = assert!(size_of::<NET_DVR_SDKSTATE>() == 84);
const _: () = assert!(size_of::<NET_DVR_LOCAL_CHECK_DEV>() == 264);
const _: () = assert!(offset_of!(NET_DVR_LOCAL_CHECK_DEV, byRes) == 8);

impl std::fmt::Debug for NET_DVR_USER_LOGIN_INFO {
    /// Never prints `sPassword`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NET_DVR_USER_LOGIN_INFO")
            .field("wPort", &self.wPort)
            .field("bUseAsynLogin", &self.bUseAsynLogin)
            .field("byLoginMode", &self.byLoginMode)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for NET_DVR_LOCAL_SDK_PATH {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let end = self.sPath.iter().position(|&b| b == 0).unwrap_or(256);
        f.debug_struct("NET_DVR_LOCAL_SDK_PATH")
            .field("sPath", &String::from_utf8_lossy(&self.sPath[..end]))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (field, offset) pairs for the running target, checked against docs/hcnetsdk.md.
    macro_rules! offsets {
        ($t:ty { $($f:ident: $o:expr),* $(,)? }) => {{
            $( assert_eq!(offset_of!($t, $f), $o, concat!(stringify!($t), ".", stringify!($f))); )*
        }};
    }

    #[test]
    fn user_login_info_layout() {
        assert_eq!(size_of::<NET_DVR_USER_LOGIN_INFO>(), by_width(416, 400));
        offsets!(NET_DVR_USER_LOGIN_INFO {
            sDeviceAddress: 0,
            byUseTransport: 129,
            wPort: 130,
            sUserName: 132,
            sPassword: 196,
            cbLoginResult: by_width(264, 260),
            pUser: by_width(272, 264),
            bUseAsynLogin: by_width(280, 268),
            byProxyType: by_width(284, 272),
            byUseUTCTime: by_width(285, 273),
            byLoginMode: by_width(286, 274),
            byHttps: by_width(287, 275),
            iProxyID: by_width(288, 276),
            byVerifyMode: by_width(292, 280),
            byRes3: by_width(293, 281),
        });
    }

    #[test]
    fn deviceinfo_v30_layout() {
        assert_eq!(size_of::<NET_DVR_DEVICEINFO_V30>(), 80);
        offsets!(NET_DVR_DEVICEINFO_V30 {
            sSerialNumber: 0,
            byAlarmInPortNum: 48,
            byChanNum: 52,
            byStartChan: 53,
            bySupport2: 61,
            wDevType: 62,
            bySupport3: 64,
            byMirrorChanNum: 75,
            wStartMirrorChanNo: 76,
            bySupport7: 78,
            byRes2: 79,
        });
    }

    #[test]
    fn deviceinfo_v40_layout() {
        assert_eq!(size_of::<NET_DVR_DEVICEINFO_V40>(), 344);
        offsets!(NET_DVR_DEVICEINFO_V40 {
            struDeviceV30: 0,
            bySupportLock: 80,
            byRetryLoginTime: 81,
            byPasswordLevel: 82,
            byProxyType: 83,
            dwSurplusLockTime: 84,
            byCharEncodeType: 88,
            bySupportDev5: 89,
            bySupport: 90,
            byLoginMode: 91,
            dwOEMCode: 92,
            iResidualValidity: 96,
            byResidualValidity: 100,
            bySingleStartDTalkChan: 101,
            bySingleDTalkChanNums: 102,
            byPassWordResetLevel: 103,
            bySupportStreamEncrypt: 104,
            byMarketType: 105,
            byTLSCap: 106,
            byRes2: 107,
        });
    }

    #[test]
    fn previewinfo_layout() {
        assert_eq!(size_of::<NET_DVR_PREVIEWINFO>(), 280);
        offsets!(NET_DVR_PREVIEWINFO {
            lChannel: 0,
            dwStreamType: 4,
            dwLinkMode: 8,
            hPlayWnd: 12,
            bBlocked: 16,
            bPassbackRecord: 20,
            byPreviewMode: 24,
            byStreamID: 25,
            byProtoType: 57,
            byRes1: 58,
            byVideoCodingType: 59,
            dwDisplayBufNum: 60,
            byNPQMode: 64,
            byRecvMetaData: 65,
            byDataType: 66,
            byRes: 67,
        });
    }

    #[test]
    fn local_sdk_path_layout() {
        assert_eq!(size_of::<NET_DVR_LOCAL_SDK_PATH>(), 384);
        offsets!(NET_DVR_LOCAL_SDK_PATH {
            sPath: 0,
            byRes: 256
        });
    }

    #[test]
    fn xml_config_layout() {
        offsets!(NET_DVR_XML_CONFIG_INPUT {
            dwSize: 0,
            lpRequestUrl: by_width(8, 4),
            dwRequestUrlLen: by_width(16, 8),
            lpInBuffer: by_width(24, 12),
            dwInBufferSize: by_width(32, 16),
            dwRecvTimeOut: by_width(36, 20),
            byForceEncrpt: by_width(40, 24),
            dwSendTimeOut: by_width(44, 28),
        });
        offsets!(NET_DVR_XML_CONFIG_OUTPUT {
            dwSize: 0,
            lpOutBuffer: by_width(8, 4),
            dwOutBufferSize: by_width(16, 8),
            dwReturnedXMLSize: by_width(20, 12),
            lpStatusBuffer: by_width(24, 16),
            dwStatusSize: by_width(32, 20),
        });
    }

    #[test]
    fn zeroed_is_empty() {
        let l = NET_DVR_USER_LOGIN_INFO::zeroed();
        assert!(l.cbLoginResult.is_none());
        assert!(l.pUser.is_null());
        assert!(l.sPassword.iter().all(|&b| b == 0));
    }
}
