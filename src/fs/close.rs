//! Closing a descriptor and hearing what `close(2)` said.
//!
//! std closes in `Drop` and throws `close(2)`'s result away. On NFS that is where a
//! deferred write error (`EIO`, `ENOSPC`, `EDQUOT`) arrives, so a whole-file write
//! that closes through `Drop` can say `Ok` after the data was lost. Every descriptor
//! this crate opens is closed through [`close_file`] or `close_fd` instead (a
//! directory stream through `Dir::close`, which follows the same rule), and the
//! error is returned.
//!
//! `EINTR` counts as closed: Linux releases the descriptor before it reports the
//! interruption, so a retry could close a descriptor another thread just opened.
//! (POSIX leaves the state unspecified; every Unix this crate targets behaves like
//! Linux here, and a leaked descriptor is the lesser harm next to closing another
//! thread's.) The calls themselves are per OS (`sys/`): `close(2)` on Unix,
//! `CloseHandle` on Windows.

use std::io;
use std::path::Path;

use super::error::with_path;
#[cfg(target_os = "linux")]
pub(crate) use crate::sys::close_fd;
pub(crate) use crate::sys::close_file;
#[cfg(unix)]
pub(crate) use crate::sys::closed_anyway;

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
