//! File system side of the store: a bounded, never-blocking read; the atomic replace; and
//! setting a bad file aside.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::format::{self, FormatError, StateFile};

/// Why a state file could not be loaded. Every variant names the file.
#[derive(Debug)]
pub struct LoadError {
    /// The state file.
    pub path: PathBuf,
    /// What went wrong.
    pub cause: LoadCause,
}

/// The cause inside a [`LoadError`].
#[derive(Debug)]
pub enum LoadCause {
    /// Opening or reading failed (permission denied, I/O error, ...).
    Read(io::Error),
    /// Something other than a regular file is in its place.
    NotRegular(&'static str),
    /// The bytes are not a valid state file.
    Format(FormatError),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "state file {}: ", self.path.display())?;
        match &self.cause {
            LoadCause::Read(e) => write!(f, "cannot read it: {e}"),
            LoadCause::NotRegular(kind) => write!(f, "a {kind} is in its place, not a file"),
            LoadCause::Format(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.cause {
            LoadCause::Read(e) => Some(e),
            LoadCause::NotRegular(_) => None,
            LoadCause::Format(e) => Some(e),
        }
    }
}

fn kind_name(ft: fs::FileType) -> &'static str {
    if ft.is_dir() {
        "directory"
    } else if ft.is_fifo() {
        "FIFO"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_block_device() {
        "block device"
    } else if ft.is_char_device() {
        "character device"
    } else {
        "special file"
    }
}

/// Reads at most [`format::MAX_FILE_LEN`] + 1 bytes of `path` without ever blocking:
/// `O_NONBLOCK` so a FIFO in our place cannot hang start-up, and a check that the opened
/// thing is a regular file. `Ok(None)` when there is no file (first start).
///
/// # Errors
///
/// [`LoadCause::Read`] or [`LoadCause::NotRegular`].
pub fn read_bounded(path: &Path) -> Result<Option<Vec<u8>>, LoadError> {
    let err = |cause| LoadError {
        path: path.to_owned(),
        cause,
    };
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(LoadCause::Read(e))),
    };
    let meta = file.metadata().map_err(|e| err(LoadCause::Read(e)))?;
    if !meta.is_file() {
        return Err(err(LoadCause::NotRegular(kind_name(meta.file_type()))));
    }
    if meta.len() > format::MAX_FILE_LEN as u64 {
        return Err(err(LoadCause::Format(FormatError::TooLarge {
            len: meta.len(),
        })));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(format::MAX_FILE_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| err(LoadCause::Read(e)))?;
    Ok(Some(bytes))
}

/// Reads and decodes `path`: `Ok(None)` when it does not exist.
///
/// # Errors
///
/// A [`LoadError`] naming the file and the cause.
pub fn load(path: &Path) -> Result<Option<(StateFile, usize)>, LoadError> {
    let Some(bytes) = read_bounded(path)? else {
        return Ok(None);
    };
    match format::decode(&bytes) {
        Ok(f) => Ok(Some((f, bytes.len()))),
        Err(e) => Err(LoadError {
            path: path.to_owned(),
            cause: LoadCause::Format(e),
        }),
    }
}

/// One step of [`write_atomic`] failed.
#[derive(Debug)]
pub struct WriteError {
    /// What we were doing: "create temp file", "write", "fsync", "rename", "fsync folder".
    pub op: &'static str,
    /// The file or folder it was done on.
    pub path: PathBuf,
    /// The OS error.
    pub source: io::Error,
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.op, self.path.display(), self.source)
    }
}

impl std::error::Error for WriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The folder holding `path` ("." for a bare file name).
pub fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The temporary file [`write_atomic`] uses for `path`: `.<name>.tmp` in the same folder
/// (same file system, so the rename is atomic).
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    folder_of(path).join(format!(".{name}.tmp"))
}

/// Replaces `path` with `bytes` so that a reader (or a reboot) sees either the old or the
/// new file, never a mix: write a temporary file in the same folder, fsync it, rename it
/// over `path`, fsync the folder (so the rename itself survives power loss). The file is
/// created with mode 0600. Blocking I/O: an fsync on flash takes milliseconds to tens of
/// milliseconds.
///
/// # Errors
///
/// The failing step, its path and the OS error; the temporary file is removed on failure.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let tmp = temp_path(path);
    let fail = |op, p: &Path, source| WriteError {
        op,
        path: p.to_owned(),
        source,
    };
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| fail("create temp file", &tmp, e))?;
        f.write_all(bytes).map_err(|e| fail("write", &tmp, e))?;
        f.sync_all().map_err(|e| fail("fsync", &tmp, e))?;
        drop(f);
        fs::rename(&tmp, path).map_err(|e| fail("rename", path, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_folder(folder_of(path)).map_err(|e| fail("fsync folder", folder_of(path), e))
}

fn sync_folder(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Moves a bad state file (or whatever is in its place) to `<name>.corrupt-<unix_secs>`
/// (`.1`, `.2`, ... appended if taken) so it can be inspected later and is never read
/// again. Returns the new name.
///
/// # Errors
///
/// The rename's error (for example a read-only folder).
pub fn set_aside(path: &Path, unix_secs: u64) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?
        .to_string_lossy()
        .into_owned();
    let base = format!("{name}.corrupt-{unix_secs}");
    let mut target = folder_of(path).join(&base);
    let mut n = 0;
    while fs::symlink_metadata(&target).is_ok() {
        n += 1;
        if n > 99 {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{base}.1 to {base}.99 all exist"),
            ));
        }
        target = folder_of(path).join(format!("{base}.{n}"));
    }
    fs::rename(path, &target)?;
    let _ = sync_folder(folder_of(path));
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "hikwatch-fsio-{tag}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        fs::create_dir_all(&d).expect("create temp dir");
        d
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let d = tempdir("write");
        let p = d.join("state");
        write_atomic(&p, b"one").expect("first write");
        write_atomic(&p, b"two two").expect("second write");
        assert_eq!(fs::read(&p).expect("read"), b"two two");
        assert!(!temp_path(&p).exists());
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&fs::metadata(&p).expect("meta").permissions());
        assert_eq!(mode & 0o777, 0o600);
        fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn failed_write_names_the_step_and_keeps_the_old_file() {
        let d = tempdir("fail");
        let p = d.join("state");
        write_atomic(&p, b"old").expect("write");
        // A directory where the temp file goes: creating it fails.
        fs::create_dir(temp_path(&p)).expect("mkdir");
        let e = write_atomic(&p, b"new").expect_err("must fail");
        assert_eq!(e.op, "create temp file");
        assert!(e.to_string().contains(".state.tmp"), "{e}");
        assert_eq!(fs::read(&p).expect("read"), b"old");
        fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn missing_is_none_and_fifo_does_not_block() {
        let d = tempdir("fifo");
        assert!(
            read_bounded(&d.join("nope"))
                .expect("missing is fine")
                .is_none()
        );
        let fifo = d.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo");
        let e = read_bounded(&fifo).expect_err("fifo is refused");
        assert!(matches!(e.cause, LoadCause::NotRegular("FIFO")), "{e}");
        let e = read_bounded(&d).expect_err("dir is refused");
        assert!(e.to_string().contains("directory"), "{e}");
        fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn set_aside_picks_a_free_name() {
        let d = tempdir("aside");
        let p = d.join("state");
        fs::write(&p, b"x").expect("write");
        assert_eq!(
            set_aside(&p, 77).expect("moved"),
            d.join("state.corrupt-77")
        );
        fs::write(&p, b"y").expect("write");
        assert_eq!(
            set_aside(&p, 77).expect("moved"),
            d.join("state.corrupt-77.1")
        );
        assert!(!p.exists());
        fs::remove_dir_all(&d).ok();
    }
}
