//! `Style::detect`: `$JOURNAL_STREAM` must name our actual stderr. One test in this file:
//! the environment is process-global.

use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use hikwatch::logging::Style;

#[test]
fn journal_stream_must_match_stderr() {
    let fd = std::io::stderr().as_fd().try_clone_to_owned().unwrap();
    let meta = std::fs::File::from(fd).metadata().unwrap();
    // SAFETY: the only test in this file; no other thread of this process reads or
    // writes the environment while it runs.
    unsafe { std::env::remove_var("JOURNAL_STREAM") };
    assert_eq!(Style::detect(), Style::Plain);
    // SAFETY: as above.
    unsafe { std::env::set_var("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino())) };
    assert_eq!(Style::detect(), Style::Journal);
    // Inherited from a parent whose stderr was the journal, but ours is elsewhere.
    // SAFETY: as above.
    unsafe {
        std::env::set_var(
            "JOURNAL_STREAM",
            format!("{}:{}", meta.dev(), meta.ino() + 1),
        )
    };
    assert_eq!(Style::detect(), Style::Plain);
}
