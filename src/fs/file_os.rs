//! The operating system's descriptor traits for [`File`]: `AsRawFd`, `AsFd`,
//! `FromRawFd` and `From<OwnedFd>` on Unix, `AsRawHandle`, `AsHandle`,
//! `FromRawHandle` and `From<OwnedHandle>` on Windows, as tokio's `File` has them.
//!
//! # What lending the descriptor keeps
//!
//! - **Close order (rules 1, 2).** Lending does not change who closes: the crate closes
//!   the descriptor, once, in the file's lane, after every operation queued on it. A
//!   [`BorrowedFd`](std::os::fd::BorrowedFd) borrows the `File`, and the descriptor
//!   stays open while any `&File` exists: the close needs the `File` itself (`close`,
//!   `into_std`, drop) or `&mut File` (`poll_close`). Operations still queued on the
//!   pool may use the descriptor at the same time as the borrower, as two threads may
//!   with a `std::fs::File`; the kernel serialises nothing for either.
//! - **After `poll_close`.** The descriptor is gone and its number may belong to
//!   another file: `as_raw_fd` returns -1 (an invalid number, which is what a
//!   `RawFd` may be), and `as_fd`, which promises an open descriptor, panics.
//! - **Budget (rule 3).** `from_raw_fd` adopts a descriptor that is open already, so it
//!   cannot wait for a permit: it takes one at once, overdrawing a full budget until
//!   the next close repays it (`Budget::overdraw`); the crate opens nothing new while
//!   the budget is overdrawn.
//!
//! The number is read once, when the `File` is made (on the pool, before any job of its
//! lane), so lending it never waits for an operation in flight.

use super::file::File;

/// The raw descriptor of a `File`'s lane, as a plain number: `RawFd` on Unix, the
/// handle's address on Windows (a `RawHandle` is a pointer, which is not `Send`).
#[cfg(unix)]
pub(super) type RawDescriptor = std::os::fd::RawFd;
#[cfg(windows)]
pub(super) type RawDescriptor = usize;

/// The number of an open `std::fs::File`.
pub(super) fn raw_descriptor(file: &std::fs::File) -> RawDescriptor {
    #[cfg(unix)]
    {
        std::os::fd::AsRawFd::as_raw_fd(file)
    }
    #[cfg(windows)]
    {
        std::os::windows::io::AsRawHandle::as_raw_handle(file) as usize
    }
}

impl File {
    /// The descriptor's number while the file is open; `None` after `poll_close`.
    fn open_descriptor(&self) -> Option<RawDescriptor> {
        (!self.poll.is_closed()).then_some(self.raw)
    }

    /// The open descriptor for the `As*` traits that promise one.
    fn lent_descriptor(&self) -> RawDescriptor {
        match self.open_descriptor() {
            Some(raw) => raw,
            None => panic!(
                "aopen: the descriptor of {:?} was lent after poll_close closed it",
                self.path
            ),
        }
    }
}

#[cfg(unix)]
mod unix {
    use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

    use super::File;

    /// The descriptor's number (tokio's `AsRawFd`). It stays this file's until the
    /// file is closed; after `poll_close` it is -1.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    ///
    /// let file = aopen::block_on(aopen::File::open("/"))?;
    /// assert!(file.as_raw_fd() >= 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    impl AsRawFd for File {
        fn as_raw_fd(&self) -> RawFd {
            self.open_descriptor().unwrap_or(-1)
        }
    }

    /// The descriptor, borrowed for as long as the `File` is (tokio's `AsFd`): it
    /// stays open meanwhile, since only the `File` itself, or `&mut File`, can close
    /// it. Operations queued on the pool may use it at the same time.
    ///
    /// # Panics
    ///
    /// Panics after `poll_close` (the `futures-io` trait's close) closed the file:
    /// there is no open descriptor to borrow.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::fd::AsFd;
    ///
    /// let file = aopen::block_on(aopen::File::open("/"))?;
    /// // A second descriptor of the same file, the caller's own (not in the budget).
    /// let duplicate = file.as_fd().try_clone_to_owned()?;
    /// drop(duplicate);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    impl AsFd for File {
        fn as_fd(&self) -> BorrowedFd<'_> {
            // SAFETY: `lent_descriptor` is the number of the descriptor this `File`'s
            // lane owns, still open (it panics once `poll_close` queued the close).
            // The lane closes it only through `close`/`into_std`/drop (which take the
            // `File`) or `poll_close` (which takes `&mut File`), none of which can run
            // while the returned borrow of `self` lives.
            unsafe { BorrowedFd::borrow_raw(self.lent_descriptor()) }
        }
    }

    /// Adopts an owned descriptor on the global pool (tokio's `From<OwnedFd>`): the
    /// same as [`File::from_std`]`(std::fs::File::from(fd))`.
    ///
    /// # Panics
    ///
    /// Panics if the global pool cannot be built from a bad environment value (see
    /// [`Pool::global`](crate::Pool::global)).
    ///
    /// # Examples
    ///
    /// ```
    /// let fd = std::os::fd::OwnedFd::from(std::fs::File::open("/")?);
    /// let file = aopen::File::from(fd);
    /// assert!(aopen::block_on(file.metadata())?.is_dir());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    impl From<OwnedFd> for File {
        fn from(fd: OwnedFd) -> File {
            File::from_std(std::fs::File::from(fd))
        }
    }

    /// Adopts an open descriptor on the global pool (tokio's `FromRawFd`), like
    /// `File::from_std(std::fs::File::from_raw_fd(fd))`.
    ///
    /// It takes a permit of the budget at once, overdrawing a full budget (the
    /// descriptor is open already; see `Budget`'s module docs). The file has no path.
    ///
    /// # Panics
    ///
    /// Panics if the global pool cannot be built from a bad environment value (see
    /// [`Pool::global`](crate::Pool::global)).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::fd::{FromRawFd, IntoRawFd};
    ///
    /// let fd = std::fs::File::open("/")?.into_raw_fd();
    /// // SAFETY: `fd` is an open descriptor that nothing else owns.
    /// let file = unsafe { aopen::File::from_raw_fd(fd) };
    /// assert!(aopen::block_on(file.metadata())?.is_dir());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    impl FromRawFd for File {
        unsafe fn from_raw_fd(fd: RawFd) -> File {
            // SAFETY: the caller promises what `std::fs::File::from_raw_fd` needs: `fd`
            // is open and owned by nobody else.
            File::from_std(unsafe { std::fs::File::from_raw_fd(fd) })
        }
    }
}

#[cfg(windows)]
mod windows {
    use std::os::windows::io::{
        AsHandle, AsRawHandle, BorrowedHandle, FromRawHandle, OwnedHandle, RawHandle,
    };

    use super::File;

    /// The handle (tokio's `AsRawHandle`); after `poll_close`, `INVALID_HANDLE_VALUE`.
    impl AsRawHandle for File {
        fn as_raw_handle(&self) -> RawHandle {
            // INVALID_HANDLE_VALUE is -1 as a pointer.
            self.open_descriptor().unwrap_or(usize::MAX) as RawHandle
        }
    }

    /// The handle, borrowed for as long as the `File` is (tokio's `AsHandle`).
    ///
    /// # Panics
    ///
    /// Panics after `poll_close` closed the file.
    impl AsHandle for File {
        fn as_handle(&self) -> BorrowedHandle<'_> {
            // SAFETY: as `AsFd` on Unix: the handle is the lane's, open, and only the
            // `File` itself or `&mut File` can close it, not while `self` is borrowed.
            unsafe { BorrowedHandle::borrow_raw(self.lent_descriptor() as RawHandle) }
        }
    }

    /// Adopts an owned handle on the global pool (tokio's `From<OwnedHandle>`), like
    /// [`File::from_std`].
    ///
    /// # Panics
    ///
    /// Panics if the global pool cannot be built from a bad environment value.
    impl From<OwnedHandle> for File {
        fn from(handle: OwnedHandle) -> File {
            File::from_std(std::fs::File::from(handle))
        }
    }

    /// Adopts an open handle on the global pool (tokio's `FromRawHandle`), taking a
    /// permit at once (overdrawing a full budget).
    ///
    /// # Panics
    ///
    /// Panics if the global pool cannot be built from a bad environment value.
    impl FromRawHandle for File {
        unsafe fn from_raw_handle(handle: RawHandle) -> File {
            // SAFETY: the caller promises what std's `from_raw_handle` needs.
            File::from_std(unsafe { std::fs::File::from_raw_handle(handle) })
        }
    }
}
