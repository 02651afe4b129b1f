//! Asynchronous `std::fs`: files that are closed exactly once, after their open and
//! after every operation on them.
//!
//! Every call here runs its system calls on a [`Pool`] (the global one unless you
//! pick another with [`Pool::fs`] or [`OpenOptions::pool`]) and never on the caller's
//! thread. Each open descriptor owns one permit of the pool's [`Budget`], taken before
//! `open(2)` and returned after `close(2)`.
//!
//! # Rules kept
//!
//! 1. **Close after open.** If an `open` future is dropped while `open(2)` runs, the
//!    descriptor it returns is closed on the pool (see `lane.rs`).
//! 2. **Close after every operation.** Operations on one [`File`] run in the order
//!    they were called; the close runs after all of them, also after operations
//!    whose futures were dropped once they had started.
//! 3. **Budget.** At most `budget.capacity()` descriptors are held at once.
//! 4. **Never block the caller.** Dropping a [`File`] or [`ReadDir`] queues the close.
//! 5. **No write-behind.** `write` returns `Ok(n)` only after `write(2)` took `n` bytes.
//! 6. **Memory safety.** Buffers are copied through owned ones; no pool thread holds a
//!    borrow of the caller's memory.
//! 7. **Clear errors.** Errors keep the system's kind and name the operation and path
//!    ([`PathError`]).
//!
//! [`Budget`]: crate::Budget

mod batch;
mod error;
mod file;
pub(crate) mod lane;
mod read_dir;
mod remove;

use std::fmt;
use std::fs::{Metadata, Permissions};
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

pub use self::batch::{MAX_BATCH_CHUNK, MIN_BATCH_CHUNK};
pub use self::error::{os_error, PathError};
pub use self::file::{File, OpenOptions, MAX_TRANSFER};
pub use self::read_dir::{DirEntry, ReadDir, READ_DIR_BATCH};

use self::error::{retry_interrupted, with_path};
use crate::pool::Pool;
use crate::sync::DynArc as Arc;

/// The future of a file system call: `Send`, `'static`, and it owns its arguments,
/// so it can be spawned on any runtime.
#[must_use = "futures do nothing unless polled"]
pub struct FsFuture<T> {
    inner: Pin<Box<dyn Future<Output = io::Result<T>> + Send + 'static>>,
}

impl<T> FsFuture<T> {
    pub(crate) fn new(future: impl Future<Output = io::Result<T>> + Send + 'static) -> Self {
        FsFuture {
            inner: Box::pin(future),
        }
    }
}

impl<T> Future for FsFuture<T> {
    type Output = io::Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        self.inner.as_mut().poll(cx)
    }
}

impl<T> fmt::Debug for FsFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FsFuture").finish_non_exhaustive()
    }
}

/// The future a [`OpenOptions::scoped`] body returns: it may borrow the file.
pub type ScopedFuture<'a, T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send + 'a>>;

/// The given pool, or the global one (whose environment settings may be bad).
#[cfg(not(loom))]
pub(crate) fn resolve_pool(pool: Option<Pool>) -> io::Result<Pool> {
    match pool {
        Some(pool) => Ok(pool),
        None => Pool::try_global().cloned(),
    }
}

#[cfg(loom)]
pub(crate) fn resolve_pool(pool: Option<Pool>) -> io::Result<Pool> {
    pool.ok_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "no global pool under loom"))
}

/// The file system functions on one [`Pool`]; made by [`Pool::fs`]. The free
/// functions of this module are the same calls on the global pool.
#[derive(Clone, Default)]
pub struct Fs {
    /// `None`: the global pool, resolved when a call runs.
    pool: Option<Pool>,
}

impl Pool {
    /// The file system functions, running on this pool and counting against its
    /// budget.
    pub fn fs(&self) -> Fs {
        Fs {
            pool: Some(self.clone()),
        }
    }
}

impl fmt::Debug for Fs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fs").field("pool", &self.pool).finish()
    }
}

/// Runs one path call on the pool, holding `descriptors` permits while it runs.
fn path_call<T, F>(
    pool: Option<Pool>,
    operation: &'static str,
    path: &Path,
    descriptors: usize,
    call: F,
) -> FsFuture<T>
where
    T: Send + 'static,
    F: FnOnce(&Path) -> io::Result<T> + Send + 'static,
{
    let path = path.to_path_buf();
    FsFuture::new(async move {
        let pool = resolve_pool(pool)?;
        let budget = pool.budget();
        if descriptors > budget.capacity() {
            let err = io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "needs {descriptors} descriptors at once but the pool's budget is {}",
                    budget.capacity()
                ),
            );
            return Err(with_path(operation, &path, err));
        }
        // Calls that hold no descriptor (stat, rename, ...) skip the budget entirely:
        // no permit future, and no touch of the budget's shared counters per call.
        let permits = match descriptors {
            0 => None,
            n => Some(budget.acquire_units(n).await),
        };
        pool.unblock(move || {
            let result = call(&path).map_err(|err| with_path(operation, &path, err));
            drop(permits);
            result
        })
        .await
    })
}

impl Fs {
    /// Opens a file for reading on this pool.
    pub fn open(&self, path: impl AsRef<Path>) -> FsFuture<File> {
        self.options().read(true).open(path)
    }

    /// `OpenOptions` set to this pool.
    pub fn options(&self) -> OpenOptions {
        let mut options = OpenOptions::new();
        if let Some(pool) = &self.pool {
            options.pool(pool);
        }
        options
    }

    /// Metadata of `path`, following symlinks (`stat(2)`).
    pub fn metadata(&self, path: impl AsRef<Path>) -> FsFuture<Metadata> {
        path_call(self.pool.clone(), "stat", path.as_ref(), 0, |path| {
            std::fs::metadata(path)
        })
    }

    /// Metadata of `path` itself, not following a symlink (`lstat(2)`).
    pub fn symlink_metadata(&self, path: impl AsRef<Path>) -> FsFuture<Metadata> {
        path_call(self.pool.clone(), "lstat", path.as_ref(), 0, |path| {
            std::fs::symlink_metadata(path)
        })
    }

    /// The whole contents of a file.
    pub fn read(&self, path: impl AsRef<Path>) -> FsFuture<Vec<u8>> {
        path_call(self.pool.clone(), "read", path.as_ref(), 1, |path| {
            std::fs::read(path)
        })
    }

    /// The whole contents of a file, as UTF-8 (`InvalidData` if it is not).
    pub fn read_to_string(&self, path: impl AsRef<Path>) -> FsFuture<String> {
        path_call(self.pool.clone(), "read", path.as_ref(), 1, |path| {
            std::fs::read_to_string(path)
        })
    }

    /// Creates or truncates a file and writes `contents` to it.
    pub fn write(&self, path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> FsFuture<()> {
        let contents = contents.as_ref().to_vec();
        path_call(self.pool.clone(), "write", path.as_ref(), 1, move |path| {
            std::fs::write(path, contents)
        })
    }

    /// Creates a directory.
    pub fn create_dir(&self, path: impl AsRef<Path>) -> FsFuture<()> {
        path_call(self.pool.clone(), "mkdir", path.as_ref(), 0, |path| {
            std::fs::create_dir(path)
        })
    }

    /// Creates a directory and any missing parents.
    pub fn create_dir_all(&self, path: impl AsRef<Path>) -> FsFuture<()> {
        path_call(self.pool.clone(), "mkdir -p", path.as_ref(), 0, |path| {
            std::fs::create_dir_all(path)
        })
    }

    /// Removes a file (or symlink).
    pub fn remove_file(&self, path: impl AsRef<Path>) -> FsFuture<()> {
        path_call(self.pool.clone(), "unlink", path.as_ref(), 0, |path| {
            std::fs::remove_file(path)
        })
    }

    /// Removes an empty directory.
    pub fn remove_dir(&self, path: impl AsRef<Path>) -> FsFuture<()> {
        path_call(self.pool.clone(), "rmdir", path.as_ref(), 0, |path| {
            std::fs::remove_dir(path)
        })
    }

    /// Removes a directory and everything in it, not following symlinks (a symlink
    /// `path` is removed itself, as in std).
    ///
    /// Holds at most one descriptor at a time (one permit), however deep the tree:
    /// each directory is opened by path, emptied and closed before the next one is
    /// opened. It refuses to follow symlinks swapped in mid-walk: a directory
    /// replaced by a symlink or by another directory while the walk runs is never
    /// entered (an error, or the link itself is removed), so nothing outside the
    /// tree is deleted. (On Linux; elsewhere this is std's `remove_dir_all`.)
    pub fn remove_dir_all(&self, path: impl AsRef<Path>) -> FsFuture<()> {
        path_call(self.pool.clone(), "rm -r", path.as_ref(), 1, |path| {
            remove::remove_dir_all_bounded(path)
        })
    }

    /// Renames `from` to `to`, replacing `to` if it exists.
    pub fn rename(&self, from: impl AsRef<Path>, to: impl AsRef<Path>) -> FsFuture<()> {
        let to = to.as_ref().to_path_buf();
        path_call(self.pool.clone(), "rename", from.as_ref(), 0, move |from| {
            std::fs::rename(from, &to)
        })
    }

    /// Copies the contents and permissions of `from` to `to`; returns the bytes
    /// copied. Holds two descriptors (two permits) while it runs.
    pub fn copy(&self, from: impl AsRef<Path>, to: impl AsRef<Path>) -> FsFuture<u64> {
        let to = to.as_ref().to_path_buf();
        path_call(self.pool.clone(), "copy", from.as_ref(), 2, move |from| {
            std::fs::copy(from, &to)
        })
    }

    /// Makes `link` a new name for the file `original` (`link(2)`).
    pub fn hard_link(&self, original: impl AsRef<Path>, link: impl AsRef<Path>) -> FsFuture<()> {
        let link = link.as_ref().to_path_buf();
        path_call(
            self.pool.clone(),
            "link",
            original.as_ref(),
            0,
            move |original| std::fs::hard_link(original, &link),
        )
    }

    /// The absolute path with every symlink, `.` and `..` resolved.
    pub fn canonicalize(&self, path: impl AsRef<Path>) -> FsFuture<PathBuf> {
        path_call(
            self.pool.clone(),
            "canonicalize",
            path.as_ref(),
            0,
            |path| std::fs::canonicalize(path),
        )
    }

    /// Whether `path` exists: `Ok(false)` if it does not, an error if that cannot be
    /// told (a permission error on a parent, say).
    pub fn try_exists(&self, path: impl AsRef<Path>) -> FsFuture<bool> {
        path_call(self.pool.clone(), "stat", path.as_ref(), 0, |path| {
            path.try_exists()
        })
    }

    /// Changes the permissions of `path` (`chmod(2)`).
    pub fn set_permissions(&self, path: impl AsRef<Path>, perm: Permissions) -> FsFuture<()> {
        path_call(self.pool.clone(), "chmod", path.as_ref(), 0, move |path| {
            std::fs::set_permissions(path, perm)
        })
    }

    /// The entries of a directory, fetched from the pool in batches of
    /// [`READ_DIR_BATCH`]. The `ReadDir` holds a descriptor (and permit) until it is
    /// exhausted or dropped.
    pub fn read_dir(&self, path: impl AsRef<Path>) -> FsFuture<ReadDir> {
        let pool = self.pool.clone();
        let path: Arc<Path> = Arc::from(path.as_ref());
        FsFuture::new(async move {
            let pool = resolve_pool(pool)?;
            let permit = pool.budget().acquire().await;
            let open_path = path.clone();
            let lane = lane::open_in_lane(&pool, permit, move || {
                // `opendir` can report EINTR (std's `File::open` retries; its
                // `read_dir` does not): retry, as for every other open.
                retry_interrupted(|| std::fs::read_dir(&open_path))
                    .map_err(|err| with_path("open directory", &open_path, err))
            })
            .await?;
            Ok(ReadDir::new(lane, path, pool))
        })
    }

    /// Stats many paths (following symlinks) in few pool trips: the paths are cut
    /// into chunks that run in parallel, one trip each. Results come back in input
    /// order, one `io::Result` per path.
    pub fn metadata_batch<I>(&self, paths: I) -> FsFuture<Vec<io::Result<Metadata>>>
    where
        I: IntoIterator,
        I::Item: AsRef<Path>,
    {
        // The paths are packed now (the future must own them); the pool is looked up
        // now too, so a bad environment value is reported by the first poll.
        match resolve_pool(self.pool.clone()) {
            Ok(pool) => {
                let batch = batch::metadata_batch(pool, paths);
                FsFuture::new(async move { Ok(batch.await) })
            }
            Err(err) => FsFuture::new(async move { Err(err) }),
        }
    }
}

macro_rules! global_fn {
    ($(#[$doc:meta])* $name:ident($($arg:ident : $ty:ty),*) -> $out:ty) => {
        $(#[$doc])*
        ///
        /// Runs on the global pool; see [`Fs`] to pick another.
        pub fn $name($($arg: $ty),*) -> FsFuture<$out> {
            Fs::default().$name($($arg),*)
        }
    };
}

global_fn!(/// Metadata of `path`, following symlinks (`stat(2)`).
    metadata(path: impl AsRef<Path>) -> Metadata);
global_fn!(/// Metadata of `path` itself, not following a symlink (`lstat(2)`).
    symlink_metadata(path: impl AsRef<Path>) -> Metadata);
global_fn!(/// The whole contents of a file.
    read(path: impl AsRef<Path>) -> Vec<u8>);
global_fn!(/// The whole contents of a file, as UTF-8.
    read_to_string(path: impl AsRef<Path>) -> String);
global_fn!(/// Creates or truncates a file and writes `contents` to it.
    write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> ());
global_fn!(/// Creates a directory.
    create_dir(path: impl AsRef<Path>) -> ());
global_fn!(/// Creates a directory and any missing parents.
    create_dir_all(path: impl AsRef<Path>) -> ());
global_fn!(/// Removes a file (or symlink).
    remove_file(path: impl AsRef<Path>) -> ());
global_fn!(/// Removes an empty directory.
    remove_dir(path: impl AsRef<Path>) -> ());
global_fn!(/// Removes a directory and everything in it, not following symlinks.
    remove_dir_all(path: impl AsRef<Path>) -> ());
global_fn!(/// Renames `from` to `to`, replacing `to` if it exists.
    rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> ());
global_fn!(/// Copies the contents and permissions of `from` to `to`.
    copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> u64);
global_fn!(/// Makes `link` a new name for the file `original`.
    hard_link(original: impl AsRef<Path>, link: impl AsRef<Path>) -> ());
global_fn!(/// The absolute path with every symlink, `.` and `..` resolved.
    canonicalize(path: impl AsRef<Path>) -> PathBuf);
global_fn!(/// Whether `path` exists.
    try_exists(path: impl AsRef<Path>) -> bool);
global_fn!(/// Changes the permissions of `path`.
    set_permissions(path: impl AsRef<Path>, perm: Permissions) -> ());
global_fn!(/// The entries of a directory, fetched from the pool in batches.
    read_dir(path: impl AsRef<Path>) -> ReadDir);

/// Stats many paths in few pool trips; results in input order. Runs on the global
/// pool; see [`Fs::metadata_batch`].
pub fn metadata_batch<I>(paths: I) -> FsFuture<Vec<io::Result<Metadata>>>
where
    I: IntoIterator,
    I::Item: AsRef<Path>,
{
    Fs::default().metadata_batch(paths)
}

/// Opens `path` for reading, runs `body` on it, then closes it asynchronously and
/// returns the first error (the body's, else the close's). See
/// [`OpenOptions::scoped`] for other modes.
pub fn with_file<T, F>(path: impl AsRef<Path>, body: F) -> FsFuture<T>
where
    T: Send + 'static,
    F: for<'a> FnOnce(&'a mut File) -> ScopedFuture<'a, T> + Send + 'static,
{
    OpenOptions::new().read(true).scoped(path, body)
}
