//! The one error type of the SDK layer.

use std::fmt;
use std::path::PathBuf;

use super::elf::{ElfProblem, Machine};
use crate::backend::{BackendFailure, ErrorClass};

/// An SDK version as `major.minor.build.revision` (from `NET_DVR_GetSDKBuildVersion`,
/// one byte each: 0x06010930 is 6.1.9.48).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SdkVersion {
    /// Major version (6).
    pub major: u8,
    /// Minor version (1).
    pub minor: u8,
    /// Build (9).
    pub build: u8,
    /// Revision (48).
    pub revision: u8,
}

impl SdkVersion {
    /// Decodes `NET_DVR_GetSDKBuildVersion`.
    pub fn from_build_word(w: u32) -> SdkVersion {
        let [major, minor, build, revision] = w.to_be_bytes();
        SdkVersion {
            major,
            minor,
            build,
            revision,
        }
    }
}

impl fmt::Display for SdkVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}.{}",
            self.major, self.minor, self.build, self.revision
        )
    }
}

/// Everything that can go wrong in the SDK layer: loading, initialising and calling.
#[derive(Debug)]
#[non_exhaustive]
pub enum SdkError {
    /// The configured SDK folder does not exist or is not a directory.
    DirMissing {
        /// The folder.
        dir: PathBuf,
        /// Why it could not be used.
        source: std::io::Error,
    },
    /// A file or folder the SDK needs is missing from the SDK folder.
    FileMissing {
        /// What was looked for.
        path: PathBuf,
        /// What it is for.
        what: &'static str,
    },
    /// `libhcnetsdk.so` is not a readable ELF file.
    NotElf {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: ElfProblem,
    },
    /// Reading the library's header failed.
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `libhcnetsdk.so` is built for another CPU than this hikwatch build.
    WrongArch {
        /// The library.
        path: PathBuf,
        /// Its `e_machine`.
        found: Machine,
        /// This build's.
        expected: Machine,
    },
    /// `dlopen` failed (e.g. a dependency such as `libHCCore.so` or `libuuid.so.1` is
    /// missing).
    Open {
        /// The library.
        path: PathBuf,
        /// The loader's message.
        source: libloading::Error,
    },
    /// The library lacks a function hikwatch needs.
    MissingSymbol {
        /// The library.
        path: PathBuf,
        /// The missing symbol.
        symbol: &'static str,
    },
    /// The SDK is older than hikwatch supports.
    TooOld {
        /// The library.
        path: PathBuf,
        /// Its version.
        found: SdkVersion,
        /// The oldest supported version.
        minimum: SdkVersion,
    },
    /// Another [`super::Sdk`] is alive in this process; the SDK is process-global.
    AlreadyLoaded,
    /// An argument cannot be passed to the SDK (too long, contains NUL, …).
    InvalidArgument {
        /// Which argument.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// An SDK call failed; `code` is `NET_DVR_GetLastError` right after it.
    Call {
        /// The vendor function.
        call: &'static str,
        /// The vendor error code.
        code: u32,
        /// What the code means for reconnecting.
        class: ErrorClass,
        /// The SDK's own text for the code (`NET_DVR_GetErrorMsg`), if it gave one.
        message: Option<String>,
    },
    /// A device reply could not be understood (e.g. deviceInfo XML without `<model>`).
    BadReply {
        /// The request.
        request: String,
        /// What was wrong.
        reason: String,
    },
}

impl SdkError {
    /// The vendor error code, for [`SdkError::Call`].
    pub fn code(&self) -> Option<u32> {
        match self {
            SdkError::Call { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The reconnect class: the code's class for [`SdkError::Call`]; everything else is a
    /// deployment or programming problem ([`ErrorClass::Fatal`]), except a bad device
    /// reply, which is [`ErrorClass::Unsupported`].
    pub fn class(&self) -> ErrorClass {
        match self {
            SdkError::Call { class, .. } => *class,
            SdkError::BadReply { .. } => ErrorClass::Unsupported,
            _ => ErrorClass::Fatal,
        }
    }
}

impl BackendFailure for SdkError {
    fn class(&self) -> ErrorClass {
        SdkError::class(self)
    }

    fn code(&self) -> Option<u32> {
        SdkError::code(self)
    }
}

impl fmt::Display for SdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SdkError::DirMissing { dir, source } => {
                write!(f, "SDK folder {} is not usable: {source}", dir.display())
            }
            SdkError::FileMissing { path, what } => {
                write!(f, "{} is missing ({what})", path.display())
            }
            SdkError::NotElf { path, problem } => write!(f, "{}: {problem}", path.display()),
            SdkError::Read { path, source } => write!(f, "reading {}: {source}", path.display()),
            SdkError::WrongArch {
                path,
                found,
                expected,
            } => {
                let name = path.file_name().map_or_else(
                    || path.display().to_string(),
                    |n| n.to_string_lossy().into(),
                );
                write!(
                    f,
                    "{name} is {found} but this build runs on {expected} ({})",
                    path.display()
                )
            }
            SdkError::Open { path, source } => {
                write!(f, "cannot load {}: {source}", path.display())
            }
            SdkError::MissingSymbol { path, symbol } => {
                write!(f, "{} does not export {symbol}", path.display())
            }
            SdkError::TooOld {
                path,
                found,
                minimum,
            } => write!(
                f,
                "{} is HCNetSDK {found}, older than the oldest supported {minimum}",
                path.display()
            ),
            SdkError::AlreadyLoaded => f.write_str(
                "the SDK is already loaded in this process (one Sdk value owns Init/Cleanup)",
            ),
            SdkError::InvalidArgument { field, reason } => write!(f, "{field}: {reason}"),
            SdkError::Call {
                call,
                code,
                class,
                message,
            } => {
                write!(f, "{call} failed with error {code} ({})", class.name())?;
                if let Some(m) = message {
                    write!(f, ": {m}")?;
                }
                match class {
                    ErrorClass::Auth {
                        retries_left: Some(n),
                    } => write!(f, "; {n} attempts left before the device locks us out"),
                    ErrorClass::Locked { secs_left: Some(s) } => {
                        write!(f, "; locked for another {s} s")
                    }
                    _ => Ok(()),
                }
            }
            SdkError::BadReply { request, reason } => {
                write!(f, "bad device reply to {request}: {reason}")
            }
        }
    }
}

impl std::error::Error for SdkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SdkError::DirMissing { source, .. } | SdkError::Read { source, .. } => Some(source),
            SdkError::Open { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_decodes_the_build_word() {
        let v = SdkVersion::from_build_word(0x0601_0930);
        assert_eq!(v.to_string(), "6.1.9.48");
        assert!(v > SdkVersion::from_build_word(0x0601_0000));
        assert!(SdkVersion::from_build_word(0x0503_0000) < v);
    }

    #[test]
    fn wrong_arch_message_names_both_machines() {
        let e = SdkError::WrongArch {
            path: "/opt/sdk/libhcnetsdk.so".into(),
            found: Machine(62),
            expected: Machine(40),
        };
        assert_eq!(
            e.to_string(),
            "libhcnetsdk.so is x86_64 (EM 62) but this build runs on arm (EM 40) \
             (/opt/sdk/libhcnetsdk.so)"
        );
    }

    #[test]
    fn call_message_carries_code_class_and_lock_info() {
        let e = SdkError::Call {
            call: "NET_DVR_Login_V40",
            code: 1,
            class: ErrorClass::Auth {
                retries_left: Some(3),
            },
            message: Some("User name or password error.".into()),
        };
        assert_eq!(e.code(), Some(1));
        assert_eq!(
            e.to_string(),
            "NET_DVR_Login_V40 failed with error 1 (auth): User name or password error.; \
             3 attempts left before the device locks us out"
        );
    }
}
