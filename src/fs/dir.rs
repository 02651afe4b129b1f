//! `Dir`: a directory stream over a descriptor the crate owns, read with `readdir(3)`
//! on a pool thread, and `fstatat` relative to it.
//!
//! std's `ReadDir` asserts that `closedir` succeeds, so closing one can panic; this
//! type closes its stream in `Drop` and ignores nothing it could report (closedir's
//! only documented error is `EBADF`, impossible for a stream we own). Blocking: every
//! method, and the drop, runs on the pool.
//!
//! Invariant: the stream owns its descriptor from `Dir::new` on, and `closedir` runs
//! exactly once, in `Drop`.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;

/// `fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW)`: the entry `name` of the open directory
/// `dirfd` itself, not what a symlink there points to.
pub(crate) fn fstatat_nofollow(dirfd: RawFd, name: &CStr) -> io::Result<libc::stat> {
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `dirfd` is open for the call; `name` is NUL-terminated; `stat` is
    // writable memory of the right type, initialized when `fstatat` returns 0.
    let rc = unsafe {
        libc::fstatat(
            dirfd,
            name.as_ptr(),
            stat.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fstatat` returned 0, so it filled `stat`.
    Ok(unsafe { stat.assume_init() })
}

/// A directory stream; `closedir` (which closes its descriptor) on drop.
pub(crate) struct Dir {
    stream: NonNull<libc::DIR>,
}

impl Dir {
    pub(crate) fn new(fd: OwnedFd) -> io::Result<Dir> {
        let raw = fd.into_raw_fd();
        // SAFETY: `raw` is an open directory descriptor we own; on success the
        // stream owns it.
        let stream = unsafe { libc::fdopendir(raw) };
        match NonNull::new(stream) {
            Some(stream) => Ok(Dir { stream }),
            None => {
                let err = io::Error::last_os_error();
                // SAFETY: `fdopendir` failed, so `raw` is still open and ours;
                // closing it here is its only close.
                drop(unsafe { OwnedFd::from_raw_fd(raw) });
                Err(err)
            }
        }
    }

    pub(crate) fn fd(&self) -> RawFd {
        // SAFETY: `stream` is a valid open stream until drop.
        unsafe { libc::dirfd(self.stream.as_ptr()) }
    }

    /// The next entry other than `.` and `..`: its name and whether it is a
    /// directory (`None`: the file system did not say).
    pub(crate) fn next_entry(&mut self) -> io::Result<Option<(CString, Option<bool>)>> {
        loop {
            // SAFETY: errno is thread-local; clearing it tells the end of the
            // stream (errno unchanged) from an error.
            unsafe { *libc::__errno_location() = 0 };
            // SAFETY: `stream` is a valid open stream used by this thread only
            // (`&mut self`).
            let entry = unsafe { libc::readdir(self.stream.as_ptr()) };
            if entry.is_null() {
                let err = io::Error::last_os_error();
                return match err.raw_os_error() {
                    Some(0) => Ok(None),
                    _ => Err(err),
                };
            }
            // SAFETY: `entry` points to a dirent valid until the next `readdir`
            // or `closedir`; `d_name` is NUL-terminated within the record.
            // Raw places only: no reference to the (possibly short) record.
            let (name, d_type) = unsafe {
                (
                    CStr::from_ptr(std::ptr::addr_of!((*entry).d_name).cast()),
                    (*entry).d_type,
                )
            };
            let bytes = name.to_bytes();
            if bytes == b"." || bytes == b".." {
                continue;
            }
            let is_dir = match d_type {
                libc::DT_DIR => Some(true),
                libc::DT_UNKNOWN => None,
                _ => Some(false),
            };
            return Ok(Some((name.to_owned(), is_dir)));
        }
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        // SAFETY: `stream` is valid and closed only here; this closes its
        // descriptor. On a pool thread, so blocking is fine.
        unsafe { libc::closedir(self.stream.as_ptr()) };
    }
}
