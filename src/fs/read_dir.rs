//! [`ReadDir`]: a directory listing that comes from the pool in batches.
//!
//! A directory stream is a descriptor like any other: a `ReadDir` holds a permit of
//! the pool's budget from before `opendir` until after the stream is closed, and its
//! stream lives in a [`Lane`], so the close runs after the last batch and never on
//! the caller's thread. Each pool trip reads up to [`READ_DIR_BATCH`] entries; the
//! stream is closed as soon as it is exhausted (or when the `ReadDir` is dropped).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::fs::{FileType, Metadata};
use std::io;
use std::os::unix::fs::DirEntryExt;
use std::path::{Path, PathBuf};

use super::error::with_path;
use super::lane::{Lane, Resource};
use crate::pool::Pool;
use crate::sync::DynArc as Arc;

/// Entries read per pool trip.
pub const READ_DIR_BATCH: usize = 128;

impl Resource for std::fs::ReadDir {
    fn close(self) -> io::Result<()> {
        // std closes the stream in its `Drop`, and panics there if `closedir` fails
        // (with anything but EINTR). Turn that into the error it stands for; the
        // descriptor is released by `closedir` either way.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(self)))
            .map_err(|_| io::Error::other("closedir failed (std reported it by panicking)"))
    }
}

/// The entries of a directory; made by [`read_dir`](super::read_dir).
pub struct ReadDir {
    /// The open stream, until it is exhausted.
    lane: Option<Lane<std::fs::ReadDir>>,
    /// Entries fetched and not yet handed out.
    buffered: VecDeque<io::Result<DirEntry>>,
    path: Arc<Path>,
    pool: Pool,
}

impl ReadDir {
    pub(crate) fn new(lane: Lane<std::fs::ReadDir>, path: Arc<Path>, pool: Pool) -> ReadDir {
        ReadDir {
            lane: Some(lane),
            buffered: VecDeque::new(),
            path,
            pool,
        }
    }

    /// The next entry, or `None` when the directory is exhausted. `.` and `..` are
    /// skipped.
    ///
    /// An error from `readdir(3)` is returned once; like std's `ReadDir`, the listing
    /// ends after it (the next call returns `Ok(None)`).
    pub async fn next_entry(&mut self) -> io::Result<Option<DirEntry>> {
        loop {
            if let Some(entry) = self.buffered.pop_front() {
                return entry.map(Some);
            }
            let Some(lane) = self.lane.as_ref() else {
                return Ok(None);
            };
            let pool = self.pool.clone();
            let (batch, exhausted) = lane
                .submit(move |stream| {
                    let mut batch = Vec::with_capacity(READ_DIR_BATCH);
                    for _ in 0..READ_DIR_BATCH {
                        match stream.next() {
                            Some(Ok(entry)) => batch.push(Ok(DirEntry::from_std(&entry, &pool))),
                            Some(Err(err)) => batch.push(Err(err)),
                            None => return (batch, true),
                        }
                    }
                    (batch, false)
                })
                .await;
            if exhausted {
                // Dropping the lane queues the close behind this batch.
                self.lane = None;
            }
            let path = &self.path;
            self.buffered.extend(
                batch
                    .into_iter()
                    .map(|entry| entry.map_err(|err| with_path("read directory", path, err))),
            );
        }
    }
}

impl fmt::Debug for ReadDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadDir")
            .field("path", &self.path)
            .field("open", &self.lane.is_some())
            .field("buffered", &self.buffered.len())
            .finish()
    }
}

/// One entry of a [`ReadDir`], shaped like tokio's.
pub struct DirEntry {
    path: PathBuf,
    ino: u64,
    /// The type the listing gave (`d_type`), if it gave one.
    file_type: Option<FileType>,
    pool: Pool,
}

impl DirEntry {
    fn from_std(entry: &std::fs::DirEntry, pool: &Pool) -> DirEntry {
        // On Linux std answers `file_type` from `d_type` when the file system filled
        // it in, and falls back to `lstat` (we are on a pool thread, so that is fine).
        DirEntry {
            path: entry.path(),
            ino: entry.ino(),
            file_type: entry.file_type().ok(),
            pool: pool.clone(),
        }
    }

    /// The full path: the directory's path joined with [`file_name`](Self::file_name).
    pub fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// The entry's name within its directory.
    pub fn file_name(&self) -> OsString {
        self.path
            .file_name()
            .map(|name| name.to_os_string())
            .unwrap_or_default()
    }

    /// The inode number the listing gave.
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// The entry's type, without following symlinks. Answered without a pool trip
    /// when the listing gave the type.
    pub async fn file_type(&self) -> io::Result<FileType> {
        if let Some(file_type) = self.file_type {
            return Ok(file_type);
        }
        Ok(self.metadata().await?.file_type())
    }

    /// The entry's metadata, without following symlinks (`lstat(2)`), like std's.
    pub async fn metadata(&self) -> io::Result<Metadata> {
        let path = self.path.clone();
        self.pool
            .unblock(move || {
                std::fs::symlink_metadata(&path).map_err(|err| with_path("stat", &path, err))
            })
            .await
    }
}

impl fmt::Debug for DirEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirEntry")
            .field("path", &self.path)
            .finish()
    }
}
