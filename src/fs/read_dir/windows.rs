//! Windows listing: std's `ReadDir` (`FindFirstFileW` / `FindNextFileW`) on the pool.
//!
//! Each entry comes with its type from the find data, so `file_type` is answered
//! without a pool trip, as from `d_type` on Unix. std's `ReadDir` closes its find
//! handle in `Drop` (`FindClose`, whose result std ignores; it fails only for a
//! handle that is not valid), so [`Dir`]'s close reports nothing.
//!
//! The names of a batch are packed as their encoded bytes
//! (`OsStr::as_encoded_bytes`), one whole name after another, and cut apart again
//! at exactly those boundaries, which is what makes
//! `OsStr::from_encoded_bytes_unchecked` sound on the way back.

use std::io;
use std::path::Path;

use super::super::lane::Resource;
use super::{Batch, RawEntry, READ_DIR_BATCH};

/// An open directory listing: std's `ReadDir`.
pub(crate) struct Dir(std::fs::ReadDir);

impl Resource for Dir {
    fn close(self) -> io::Result<()> {
        // `FindClose` in std's `Drop`.
        drop(self.0);
        Ok(())
    }
}

/// Opens the directory `path` for listing (`FindFirstFileW` of `path\*`).
pub(crate) fn open_dir(path: &Path) -> io::Result<Dir> {
    std::fs::read_dir(path).map(Dir)
}

/// One pool trip: up to [`READ_DIR_BATCH`] entries.
pub(super) fn read_batch(stream: &mut Dir, _path: &Path) -> Batch {
    let mut entries = Vec::with_capacity(READ_DIR_BATCH);
    let mut names = Vec::with_capacity(READ_DIR_BATCH * 16);
    let mut exhausted = false;
    for _ in 0..READ_DIR_BATCH {
        match stream.0.next() {
            Some(Ok(entry)) => {
                let start = names.len();
                names.extend_from_slice(entry.file_name().as_encoded_bytes());
                entries.push(Ok(RawEntry {
                    name: (start, names.len()),
                    // From the find data: no extra call.
                    file_type: entry.file_type().ok(),
                }));
            }
            Some(Err(err)) => {
                entries.push(Err(err));
                exhausted = true;
                break;
            }
            None => {
                exhausted = true;
                break;
            }
        }
    }
    Batch {
        entries,
        names,
        exhausted,
    }
}
