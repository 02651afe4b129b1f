//! Reading one directory: std's `read_dir`, or on Linux, for a directory on a slow
//! mount, a listing of our own that saves a round trip and never follows a link.
//!
//! std's `read_dir` is glibc's `opendir`, which `fstat`s the directory it opened
//! (to size its buffer). On a slow mount that is one more round trip (FUSE's
//! `GETATTR`, the attribute timeout being 0 there) on the path to every entry
//! below: measured on the walk's 5 ms mount, a directory's first names came 15 ms
//! after its job started, of which 5 ms were that `fstat`. And `read_dir` opens by
//! path, following a symlink put where the directory was after it was listed.
//!
//! So a directory that is expected to be slow (its parent opened slowly, or it is
//! the root) is opened with `open(O_DIRECTORY | O_NOFOLLOW)` (no `O_NOFOLLOW` when
//! links are followed, or for the root, which is followed as walkdir does) and
//! listed with `getdents64`. If that open turns out quick (a cached directory),
//! the job closes it and reads the directory with std as any other. Each entry's
//! metadata must be a `std::fs::Metadata`, which only std makes: it comes from
//! `symlink_metadata("/proc/self/fd/<dir>/<name>")`, which resolves the name
//! relative to the open directory as `statx(dirfd, name)` does (the same `LOOKUP`
//! and `GETATTR` on FUSE, measured; no `LOOKUP` of the directory again). Only for
//! walks that ask for metadata (std's `FileType`, what a walk without metadata
//! hands out, comes only from a std `DirEntry` or a stat) and only where
//! `/proc/self/fd` is there.
//!
//! Invariants: an entry holds its directory open (an `Arc` of it), as std's
//! `DirEntry` does, so the last entry dropped closes it; `.` and `..` are never
//! listed; a malformed record from the kernel is an error, never a panic.

use std::fs::{FileType, Metadata};
use std::io;
use std::path::{Path, PathBuf};

/// One entry of a directory being read.
pub(super) enum Entry {
    Std(std::fs::DirEntry),
    #[cfg(target_os = "linux")]
    Own(own::Entry),
}

impl Entry {
    /// The entry's metadata, not following a symlink, relative to the open directory.
    pub(super) fn metadata(&self) -> io::Result<Metadata> {
        match self {
            Entry::Std(entry) => entry.metadata(),
            #[cfg(target_os = "linux")]
            Entry::Own(entry) => entry.metadata(),
        }
    }

    /// The entry's type: the listing's, or a stat's when the listing has none.
    pub(super) fn file_type(&self) -> io::Result<FileType> {
        match self {
            Entry::Std(entry) => entry.file_type(),
            #[cfg(target_os = "linux")]
            Entry::Own(entry) => entry.metadata().map(|meta| meta.file_type()),
        }
    }

    /// Whether the listing says the entry is a directory, if it can tell without a
    /// stat (`None`: std's listing, which cannot say whether it has the type, or an
    /// own listing without types).
    pub(super) fn listed_as_dir(&self) -> Option<bool> {
        match self {
            Entry::Std(_) => None,
            #[cfg(target_os = "linux")]
            Entry::Own(entry) => entry.listed_as_dir(),
        }
    }

    /// Whether this entry came from std's listing.
    pub(super) fn is_std(&self) -> bool {
        matches!(self, Entry::Std(_))
    }
}

/// A directory being read, and how long its open took.
pub(super) enum Reader {
    Std(std::fs::ReadDir),
    #[cfg(target_os = "linux")]
    Own(own::Reader),
}

impl Reader {
    /// Opens the directory at `path`, with a listing of our own if `own` (and the
    /// platform has one; `follow` says whether a symlink there is followed), and
    /// with std's when not, or when that open was quicker than `slow` (then it is
    /// a cached directory, which std reads best). Returns the reader and how long
    /// the first open took.
    pub(super) fn open(
        path: &Path,
        own: bool,
        follow: bool,
        slow: std::time::Duration,
    ) -> io::Result<(Reader, std::time::Duration)> {
        let started = std::time::Instant::now();
        #[cfg(target_os = "linux")]
        if own && own::available() {
            let dir = own::Reader::open(path, follow)?;
            let opened = started.elapsed();
            if opened >= slow {
                return Ok((Reader::Own(dir), opened));
            }
            drop(dir);
            return Ok((Reader::Std(std::fs::read_dir(path)?), opened));
        }
        let _ = (own, follow, slow);
        let dir = std::fs::read_dir(path)?;
        Ok((Reader::Std(dir), started.elapsed()))
    }
}

impl Iterator for Reader {
    /// An entry and its path (`parent` joined with its name).
    type Item = io::Result<(Entry, PathBuf)>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Reader::Std(dir) => dir.next().map(|entry| {
                entry.map(|entry| {
                    let path = entry.path();
                    (Entry::Std(entry), path)
                })
            }),
            #[cfg(target_os = "linux")]
            Reader::Own(dir) => dir.next(),
        }
    }
}

#[cfg(target_os = "linux")]
mod own {
    use super::*;
    use crate::sync::DynArc as Arc;
    use std::ffi::OsStr;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;

    /// The bytes of a name, as a path component.
    fn name_of(bytes: &[u8]) -> &OsStr {
        std::os::unix::ffi::OsStrExt::from_bytes(bytes)
    }

    /// The buffer of one `getdents64` call (glibc's `readdir` uses up to this).
    const BUFFER: usize = 32 * 1024;

    /// Whether `/proc/self/fd` is there to stat entries through (checked once).
    pub(super) fn available() -> bool {
        static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *AVAILABLE.get_or_init(|| std::fs::metadata("/proc/self/fd").is_ok_and(|m| m.is_dir()))
    }

    /// An open directory: closed when its reader and its last entry are gone.
    struct Dir {
        file: std::fs::File,
        /// `/proc/self/fd/<fd>`: the directory, for stats relative to it.
        proc_path: PathBuf,
    }

    /// A directory read with `getdents64`.
    pub(in crate::fs::walk) struct Reader {
        dir: Arc<Dir>,
        parent: PathBuf,
        buffer: Vec<u8>,
        /// The records of the last call: `buffer[at..filled]` not yet handed out.
        at: usize,
        filled: usize,
        done: bool,
    }

    impl Reader {
        pub(super) fn open(path: &Path, follow: bool) -> io::Result<Reader> {
            let flags = libc::O_DIRECTORY | if follow { 0 } else { libc::O_NOFOLLOW };
            let file = crate::fs::error::retry_interrupted(|| {
                std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(flags)
                    .open(path)
            })?;
            let proc_path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
            Ok(Reader {
                dir: Arc::new(Dir { file, proc_path }),
                parent: path.to_path_buf(),
                buffer: vec![0; BUFFER],
                at: 0,
                filled: 0,
                done: false,
            })
        }

        /// Fills the buffer with the next records; false at the directory's end.
        fn fill(&mut self) -> io::Result<bool> {
            let fd = self.dir.file.as_raw_fd();
            let read = crate::fs::error::retry_interrupted(|| {
                // SAFETY: `buffer` is valid for writes of its length, and `fd` is an
                // open directory that `self.dir` owns for the whole call.
                let n = unsafe {
                    libc::syscall(
                        libc::SYS_getdents64,
                        fd,
                        self.buffer.as_mut_ptr(),
                        self.buffer.len(),
                    )
                };
                match n {
                    n if n < 0 => Err(io::Error::last_os_error()),
                    n => Ok(n as usize),
                }
            })?;
            self.at = 0;
            self.filled = read.min(self.buffer.len());
            Ok(self.filled > 0)
        }

        /// The record at `at`: its length, type, and where its name is in `buffer`.
        fn record(&self) -> io::Result<(usize, u8, std::ops::Range<usize>)> {
            let malformed =
                || io::Error::new(io::ErrorKind::InvalidData, "a malformed directory record");
            let rest = &self.buffer[self.at..self.filled];
            // `struct linux_dirent64`: ino (8), off (8), reclen (2), type (1), name.
            let reclen = rest.get(16..18).ok_or_else(malformed)?;
            let reclen = usize::from(u16::from_ne_bytes([reclen[0], reclen[1]]));
            let record = rest
                .get(..reclen)
                .filter(|_| reclen > 19)
                .ok_or_else(malformed)?;
            let end = record[19..]
                .iter()
                .position(|&b| b == 0)
                .ok_or_else(malformed)?;
            let name = self.at + 19..self.at + 19 + end;
            Ok((reclen, record[18], name))
        }
    }

    impl Iterator for Reader {
        type Item = io::Result<(super::Entry, PathBuf)>;

        fn next(&mut self) -> Option<Self::Item> {
            loop {
                if self.done {
                    return None;
                }
                if self.at >= self.filled {
                    match self.fill() {
                        Ok(true) => {}
                        Ok(false) => {
                            self.done = true;
                            return None;
                        }
                        Err(err) => {
                            self.done = true;
                            return Some(Err(err));
                        }
                    }
                }
                let (reclen, d_type, name) = match self.record() {
                    Ok(record) => record,
                    Err(err) => {
                        self.done = true;
                        return Some(Err(err));
                    }
                };
                self.at += reclen;
                let name = &self.buffer[name];
                if name == b"." || name == b".." {
                    continue;
                }
                let name = name_of(name).to_os_string();
                let path = self.parent.join(&name);
                let entry = Entry {
                    dir: self.dir.clone(),
                    name,
                    d_type,
                };
                return Some(Ok((super::Entry::Own(entry), path)));
            }
        }
    }

    /// An entry of an own listing; holds its directory open.
    pub(in crate::fs::walk) struct Entry {
        dir: Arc<Dir>,
        name: std::ffi::OsString,
        d_type: u8,
    }

    impl Entry {
        pub(super) fn metadata(&self) -> io::Result<Metadata> {
            std::fs::symlink_metadata(self.dir.proc_path.join(&self.name))
        }

        pub(super) fn listed_as_dir(&self) -> Option<bool> {
            match self.d_type {
                libc::DT_UNKNOWN => None,
                d_type => Some(d_type == libc::DT_DIR),
            }
        }
    }
}

#[cfg(all(test, not(loom), target_os = "linux"))]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;

    /// Each entry's name, and its inode, size and whether it is a directory.
    type Seen = BTreeMap<Vec<u8>, (u64, u64, bool)>;

    fn read_own(path: &Path, follow: bool) -> io::Result<Seen> {
        let mut seen = Seen::new();
        for entry in own::Reader::open(path, follow)? {
            let (entry, full) = entry?;
            let meta = entry.metadata()?;
            assert_eq!(entry.listed_as_dir(), Some(meta.is_dir()), "{full:?}");
            let name = full.file_name().unwrap().as_bytes().to_vec();
            seen.insert(name, (meta.ino(), meta.len(), meta.is_dir()));
        }
        Ok(seen)
    }

    fn read_std(path: &Path) -> Seen {
        std::fs::read_dir(path)
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let meta = std::fs::symlink_metadata(entry.path()).unwrap();
                let name = entry.file_name().as_bytes().to_vec();
                (name, (meta.ino(), meta.len(), meta.is_dir()))
            })
            .collect()
    }

    #[test]
    fn an_own_listing_has_std_s_entries_and_metadata() {
        let dir = tempfile::tempdir().unwrap();
        // Names long enough that the records take several `getdents64` calls.
        for i in 0..1_500 {
            let name = format!("{i:04}-{}", "x".repeat(40));
            std::fs::write(dir.path().join(name), vec![0; i % 7]).unwrap();
        }
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join(OsStr::from_bytes(b"not-utf8-\xff")), "1").unwrap();
        let own = read_own(dir.path(), false).unwrap();
        assert_eq!(own.len(), 1_502);
        assert!(!own.contains_key(&b"."[..]) && !own.contains_key(&b".."[..]));
        assert_eq!(own, read_std(dir.path()));
    }

    #[test]
    fn an_own_listing_follows_a_symlink_only_when_told_to() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::fs::write(dir.path().join("real/file"), "12").unwrap();
        std::os::unix::fs::symlink("real", dir.path().join("link")).unwrap();
        let link = dir.path().join("link");
        // A directory replaced by a link after it was listed is not entered (Linux
        // says ENOTDIR for `O_DIRECTORY | O_NOFOLLOW` on a link).
        let err = read_own(&link, false).unwrap_err();
        assert!(
            matches!(err.raw_os_error(), Some(libc::ENOTDIR | libc::ELOOP)),
            "{err}"
        );
        assert_eq!(read_own(&link, true).unwrap().len(), 1);
        // Not a directory.
        let err = read_own(&dir.path().join("real/file"), true).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOTDIR), "{err}");
    }
}
