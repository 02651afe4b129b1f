//! `Dir`: a directory stream over a descriptor the crate owns, read with `readdir(3)`
//! on a pool thread, and `fstatat` relative to it.
//!
//! std's `ReadDir` asserts that `closedir` succeeds, so closing one can panic (and
//! under `panic = "abort"`, abort the process); this type reports `closedir`'s error
//! from [`Dir::close`] instead (`EINTR` counts as closed, as for `close(2)`, see
//! `close.rs`). A `Dir` dropped without `close` (an early `?`) still closes, and
//! loses only the error. Blocking: every method, and the drop, runs on the pool.
//!
//! Invariant: the stream owns its descriptor from `Dir::new` on, and `closedir` runs
//! exactly once: in `close`, or else in `Drop`.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;

/// `fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW)`: the entry `name` of the open directory
/// `dirfd` itself, not what a symlink there points to.
// Used by the Linux-only bounded `remove_dir_all` (`remove.rs`).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
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

/// Sets this thread's `errno` to 0.
fn clear_errno() {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: `__errno_location` points to this thread's errno, always writable.
    unsafe {
        *libc::__errno_location() = 0
    };
    #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
    // SAFETY: `__error` points to this thread's errno, always writable.
    unsafe {
        *libc::__error() = 0
    };
}

/// A directory stream; `closedir` (which closes its descriptor) in [`Dir::close`], or
/// on drop.
pub(crate) struct Dir {
    stream: NonNull<libc::DIR>,
}

// SAFETY: a `DIR` stream is not tied to the thread that opened it; `Dir` hands out
// its entries only through `&mut self`, so no two threads use the stream at once.
unsafe impl Send for Dir {}

/// One entry as `readdir(3)` gave it, borrowed from the stream until the next call.
pub(crate) struct RawDirent<'a> {
    /// The name, never `.` or `..`.
    pub(crate) name: &'a CStr,
    /// The inode number (`d_ino`).
    pub(crate) ino: u64,
    /// The type the file system gave (`d_type`; `DT_UNKNOWN` if none).
    pub(crate) d_type: u8,
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

    /// Whether the directory was removed (its link count is 0) while this stream
    /// was open.
    ///
    /// `getdents` of a removed directory fails with `ENOENT`, and glibc's `readdir`
    /// turns that into a plain end of the stream, so a listing cut short by a
    /// removal looks complete. A caller that must not mistake one for the other
    /// asks this at the end.
    pub(crate) fn removed(&self) -> io::Result<bool> {
        let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: `self.fd()` is open while `self` lives; `stat` is writable memory
        // of the right type, initialized by `fstat` when it returns 0.
        if unsafe { libc::fstat(self.fd(), stat.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fstat` returned 0, so it filled `stat`.
        Ok(unsafe { stat.assume_init() }.st_nlink == 0)
    }

    /// The next entry other than `.` and `..`: its name and whether it is a
    /// directory (`None`: the file system did not say).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn next_entry(&mut self) -> io::Result<Option<(CString, Option<bool>)>> {
        Ok(self.next_raw()?.map(|entry| {
            let is_dir = match entry.d_type {
                libc::DT_DIR => Some(true),
                libc::DT_UNKNOWN => None,
                _ => Some(false),
            };
            (entry.name.to_owned(), is_dir)
        }))
    }

    /// The next entry other than `.` and `..`, borrowed from the stream; `Ok(None)`
    /// at the end.
    pub(crate) fn next_raw(&mut self) -> io::Result<Option<RawDirent<'_>>> {
        loop {
            // Clearing errno tells the end of the stream (errno unchanged) from an
            // error.
            clear_errno();
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
            let (name, ino, d_type) = unsafe {
                (
                    CStr::from_ptr(std::ptr::addr_of!((*entry).d_name).cast()),
                    #[cfg(not(target_os = "freebsd"))]
                    (*entry).d_ino,
                    #[cfg(target_os = "freebsd")]
                    (*entry).d_fileno,
                    (*entry).d_type,
                )
            };
            let bytes = name.to_bytes();
            if bytes == b"." || bytes == b".." {
                continue;
            }
            return Ok(Some(RawDirent { name, ino, d_type }));
        }
    }

    /// Closes the stream (and its descriptor) and reports what `closedir` said.
    pub(crate) fn close(self) -> io::Result<()> {
        let stream = self.stream;
        // The close below is the stream's only one: `Drop` must not run.
        std::mem::forget(self);
        // SAFETY: `stream` is valid and, with `self` forgotten, closed only here.
        let rc = unsafe { libc::closedir(stream.as_ptr()) };
        if rc == 0 {
            return Ok(());
        }
        super::close::closed_anyway(io::Error::last_os_error())
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        // Only a `Dir` not given to `close` gets here (an early return on an error,
        // which is the error reported); closedir's own result is lost.
        // SAFETY: `stream` is valid and closed only here; this closes its
        // descriptor. On a pool thread, so blocking is fine.
        unsafe { libc::closedir(self.stream.as_ptr()) };
    }
}
