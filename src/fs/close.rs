//! Closing a descriptor and hearing what `close(2)` said.
//!
//! std closes in `Drop` and throws `close(2)`'s result away. On NFS that is where a
//! deferred write error (`EIO`, `ENOSPC`, `EDQUOT`) arrives, so a whole-file write
//! that closes through `Drop` can say `Ok` after the data was lost. Every descriptor
//! this crate opens is closed through [`close_fd`] instead (a directory stream
//! through `Dir::close`, which follows the same rule), and the error is returned.
//!
//! `EINTR` counts as closed: Linux releases the descriptor before it reports the
//! interruption, so a retry could close a descriptor another thread just opened.
//! (POSIX leaves the state unspecified; every Unix this crate targets behaves like
//! Linux here, and a leaked descriptor is the lesser harm next to closing another
//! thread's.)

use std::io;
use std::os::fd::{IntoRawFd, OwnedFd};
use std::path::Path;

use super::error::with_path;

/// Closes `fd` and reports what `close(2)` said; `EINTR` counts as closed.
pub(crate) fn close_fd(fd: OwnedFd) -> io::Result<()> {
    let raw = fd.into_raw_fd();
    // SAFETY: `into_raw_fd` gave us sole ownership of `raw`; nothing else closes it
    // or uses it after this call.
    let rc = unsafe { libc::close(raw) };
    if rc == 0 {
        return Ok(());
    }
    closed_anyway(io::Error::last_os_error())
}

/// The result of a `close(2)` (or `closedir(3)`) that failed with `err`: `EINTR`
/// means the descriptor is gone all the same.
pub(crate) fn closed_anyway(err: io::Error) -> io::Result<()> {
    if err.kind() == io::ErrorKind::Interrupted {
        Ok(())
    } else {
        Err(err)
    }
}

/// Closes `file` and reports what `close(2)` said.
pub(crate) fn close_file(file: std::fs::File) -> io::Result<()> {
    close_fd(OwnedFd::from(file))
}

/// Runs `body` on `file` (opened from `path`), then closes it: `body`'s error if it
/// failed (the close's is then secondary and dropped), else the close's, as a
/// `close` error naming `path`.
pub(crate) fn then_close<T>(
    file: std::fs::File,
    path: &Path,
    body: impl FnOnce(&std::fs::File) -> io::Result<T>,
) -> io::Result<T> {
    let result = body(&file);
    let closed = close_file(file);
    let value = result?;
    closed.map_err(|err| with_path("close", path, err))?;
    Ok(value)
}
