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
//!    they were called (a `&self` method joins the file's lane at the call, not at
//!    its first poll); the close runs after all of them, also after operations
//!    whose futures were dropped once they had started. An operation whose future
//!    was dropped before its job started is skipped.
//! 3. **Budget.** At most `budget.capacity()` descriptors are held at once. Waiters
//!    are served in arrival order, a `copy` waiting for two permits included; a call
//!    that could never get its permits (a `try_clone` on a budget of one, which its
//!    file holds) is an `InvalidInput` error instead of a wait.
//! 4. **Never block the caller.** Dropping a [`File`] or [`ReadDir`] queues the close;
//!    no file system call runs on the dropping thread (a drop may start a pool thread;
//!    see the pool's caveats for the one case where jobs run on the caller).
//! 5. **No write-behind.** `write` returns `Ok(n)` only after `write(2)` took `n` bytes.
//! 6. **Memory safety.** Buffers are copied through owned ones; no pool thread holds a
//!    borrow of the caller's memory.
//! 7. **Clear errors.** Errors keep the system's kind and name the operation and path
//!    ([`PathError`]). Every call that opens a descriptor closes it explicitly and
//!    returns `close(2)`'s error ([`write()`], [`copy`], [`read()`], ...; a dropped
//!    [`File`] is the one place it is lost), and a directory removed while it is
//!    listed ends its listing with an error.
//!
//! [`Budget`]: crate::Budget

mod batch;
mod close;
#[cfg(unix)]
pub(crate) mod dir;
mod dir_builder;
mod error;
mod file;
mod file_op;
mod file_os;
mod file_parity;
#[cfg(any(feature = "futures-io", feature = "tokio"))]
mod file_traits;
mod in_flight;
pub(crate) mod lane;
mod links;
mod read_dir;
mod remove;
mod walk;

use std::fmt;
use std::fs::{Metadata, Permissions};
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

pub use self::batch::{MAX_BATCH_CHUNK, MIN_BATCH_CHUNK};
pub use self::dir_builder::DirBuilder;
pub use self::error::{os_error, PathError};
pub use self::file::{File, OpenOptions, MAX_TRANSFER};
pub use self::links::read_link;
#[cfg(unix)]
pub use self::links::symlink;
#[cfg(windows)]
pub use self::links::{symlink_dir, symlink_file};
pub use self::read_dir::{DirEntry, ReadDir, READ_DIR_BATCH};
pub use self::walk::{
    walk, Walk, WalkEntry, WalkOptions, WalkProgress, COOP_BUDGET, MAX_BUFFERED_ENTRIES,
    MAX_CHUNK_RUNNERS, MAX_DIRS_IN_FLIGHT, MAX_ENTRIES_IN_FLIGHT, SLOW_DIR_PARTS, STAT_CHUNK,
};
/// std's `FileTimes`, for [`File::set_times`]: its builder has the shape of tokio's
/// `fs::FileTimes` (tokio 1.54).
pub use std::fs::FileTimes;

use self::error::with_path;
use crate::pool::Pool;
use crate::sync::DynArc as Arc;

/// The future of a file system call: `Send`, `'static`, and it owns its arguments,
/// so it can be spawned on any runtime.
///
/// It does nothing until polled. Dropping it cancels the call: an open that had not
/// started is skipped, one that had is closed on the pool when it returns.
///
/// # Arguments are copied at the call
///
/// A path argument is read once, at the call, into a path the future owns; the
/// argument itself is dropped when the call returns the future. That is what makes
/// the future `'static` even for a borrowed path (`File::open(&path)` can be
/// spawned). tokio's futures instead keep the argument until the call finishes, so
/// a value whose drop matters, a `tempfile::NamedTempFile` passed by value, lives
/// through a tokio open but is deleted before aopen's runs (`NotFound`). One
/// signature cannot do both: keeping the argument needs it to be `'static`, which a
/// borrowed path is not, and Rust cannot tell the two apart in a generic
/// (no specialisation). Pass such a value by reference and keep it alive across the
/// `.await`: `open(&temp)`.
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-future-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # std::fs::write(dir.join("a.txt"), "hello")?;
/// // Made on this thread, awaited on another: the future owns its path.
/// let future = aopen::fs::read_to_string(dir.join("a.txt"));
/// let text = std::thread::spawn(move || aopen::block_on(future)).join().unwrap()?;
/// assert_eq!(text, "hello");
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
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
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("aopen-doc-scoped-future-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # std::fs::write(dir.join("a.txt"), "hello")?;
/// use aopen::fs::{File, ScopedFuture};
///
/// // A named body: takes the borrowed file, returns a boxed future that borrows it.
/// fn length(file: &mut File) -> ScopedFuture<'_, u64> {
///     Box::pin(async move { Ok(file.metadata().await?.len()) })
/// }
/// let len = aopen::block_on(aopen::fs::with_file(dir.join("a.txt"), length))?;
/// assert_eq!(len, 5);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
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
///
/// Its methods have the names, arguments and documentation of the free functions
/// ([`metadata`], [`read_dir`], [`metadata_batch`], ...); only the pool differs.
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-handle-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// // A pool for one slow mount, with its own threads and descriptor budget.
/// let pool = aopen::Pool::builder().max_threads(4).descriptor_budget(16).build()?;
/// let fs = pool.fs();
/// aopen::block_on(async {
///     fs.create_dir_all(dir.join("out")).await?;
///     fs.write(dir.join("out/a"), "1").await?;
///     fs.copy(dir.join("out/a"), dir.join("out/b")).await?;
///     let mut file = fs.options().append(true).open(dir.join("out/b")).await?;
///     file.write_all(b"2").await?;
///     file.close().await?;
///     assert_eq!(fs.read_to_string(dir.join("out/b")).await?, "12");
///
///     let mut entries = fs.read_dir(dir.join("out")).await?;
///     let mut count = 0;
///     while let Some(_entry) = entries.next_entry().await? {
///         count += 1;
///     }
///     assert_eq!(count, 2);
///     let sizes = fs.metadata_batch([dir.join("out/a"), dir.join("out/b")]).await?;
///     assert_eq!(sizes[1].as_ref().unwrap().len(), 2);
///     fs.remove_dir_all(dir.join("out")).await
/// })?;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct Fs {
    /// `None`: the global pool, resolved when a call runs.
    pool: Option<Pool>,
}

impl Pool {
    /// The file system functions, running on this pool and counting against its
    /// budget.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-pool-fs-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("a.txt"), "hello")?;
    /// let pool = aopen::Pool::builder().descriptor_budget(8).build()?;
    /// let text = aopen::block_on(pool.fs().read_to_string(dir.join("a.txt")))?;
    /// assert_eq!(text, "hello");
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
        // Calls that hold no descriptor (stat, rename, ...) skip the budget entirely:
        // no permit future, and no touch of the budget's shared counters per call.
        let permits = match descriptors {
            0 => None,
            n => {
                let acquire = pool
                    .budget()
                    .acquire_beside(0, n)
                    .map_err(|err| with_path(operation, &path, err))?;
                Some(acquire.await)
            }
        };
        pool.unblock(move || {
            let result = call(&path).map_err(|err| with_path(operation, &path, err));
            drop(permits);
            result
        })
        .await
    })
}

/// The first read of [`read_whole`]: files up to this size take no `statx`.
const SMALL_FILE: usize = 8 * 1024;

/// The whole contents of the file at `path`, like `std::fs::read`, in one system
/// call fewer for small files.
///
/// std asks `statx` for the size first, then reads: `openat`, `statx`, `read`,
/// `read` (end of file), `close`. Most files a program reads whole are small, so
/// this reads up to [`SMALL_FILE`] bytes first and asks for the size only when they
/// were all there: `openat`, `read`, `read`, `close`. Measured on 20,000 files of
/// 4 KiB (one thread, warm cache, 5 runs): std 92–93 ms, this 82–83 ms. A file of
/// exactly or more than `SMALL_FILE` bytes pays one `read` more than std's way.
/// A short result keeps no spare capacity.
fn read_whole(path: &Path) -> io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    close::then_close(file, path, read_open)
}

/// [`read_whole`] once the file is open.
fn read_open(file: &std::fs::File) -> io::Result<Vec<u8>> {
    use std::io::Read;

    let mut contents = Vec::with_capacity(SMALL_FILE);
    file.take(SMALL_FILE as u64).read_to_end(&mut contents)?;
    if contents.len() < SMALL_FILE {
        // End of file (`read_to_end` stops at a `read` of 0, not at a short one).
        contents.shrink_to_fit();
        return Ok(contents);
    }
    // A larger file: now the size is worth a `statx`, to read the rest in one go.
    let size = file.metadata().map_or(0, |meta| meta.len());
    let rest = usize::try_from(size)
        .unwrap_or(0)
        .saturating_sub(SMALL_FILE);
    contents.try_reserve_exact(rest).map_err(|_| {
        io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!("no memory for the {size} bytes of the file"),
        )
    })?;
    let mut file = file;
    file.read_to_end(&mut contents)?;
    Ok(contents)
}

/// Creates or truncates `path` and writes `contents`, like `std::fs::write`, but
/// returns `close(2)`'s error (a `close` error naming `path`) instead of dropping it.
fn write_whole(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write;

    let file = std::fs::File::create(path)?;
    close::then_close(file, path, |mut file| file.write_all(contents))
}

/// Copies `from` to `to` like `std::fs::copy` on Linux (the permissions of `from`,
/// `copy_file_range` or `sendfile` through `io::copy`), closing both files
/// explicitly: a failed close of `to` is a `close` error naming `to`.
fn copy_whole(from: &Path, to: &Path) -> io::Result<u64> {
    let reader = std::fs::File::open(from)?;
    close::then_close(reader, from, |mut reader| {
        let meta = reader.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the source path is neither a regular file nor a symlink to a regular file",
            ));
        }
        let perm = meta.permissions();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        // Created with the source's permission bits, as std does (Windows has no
        // mode: its read-only flag is set below).
        #[cfg(unix)]
        crate::sys::set_mode(&mut options, crate::sys::mode_of(&perm));
        let writer = options
            .open(to)
            .map_err(|err| with_path("create", to, err))?;
        close::then_close(writer, to, |mut writer| {
            // The target may have existed with other permissions: set them, as std.
            if writer.metadata()?.is_file() {
                writer.set_permissions(perm)?;
            }
            io::copy(&mut reader, &mut writer)
        })
    })
}

impl Fs {
    /// Opens a file for reading on this pool.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-handle-open-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("a.txt"), "hello")?;
    /// let pool = aopen::Pool::builder().max_threads(2).descriptor_budget(4).build()?;
    /// let file = aopen::block_on(pool.fs().open(dir.join("a.txt")))?;
    /// assert_eq!(pool.budget().held(), 1); // a permit of this pool's budget, not the global one
    /// aopen::block_on(file.close())?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open(&self, path: impl AsRef<Path>) -> FsFuture<File> {
        self.options().read(true).open(path)
    }

    /// `OpenOptions` set to this pool.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-handle-options-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let pool = aopen::Pool::builder().max_threads(2).descriptor_budget(4).build()?;
    /// let mut options = pool.fs().options();
    /// let file = aopen::block_on(options.write(true).create(true).open(dir.join("new.txt")))?;
    /// assert_eq!(pool.stats().descriptors_held, 1); // opened on this pool
    /// aopen::block_on(file.close())?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn options(&self) -> OpenOptions {
        let mut options = OpenOptions::new();
        if let Some(pool) = &self.pool {
            options.pool(pool);
        }
        options
    }

    /// Metadata of `path`, following symlinks (`stat(2)`).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = aopen::Pool::builder().max_threads(2).build()?;
    /// let meta = aopen::block_on(pool.fs().metadata(std::env::temp_dir()))?;
    /// assert!(meta.is_dir());
    /// assert_eq!(pool.stats().threads_alive, 1); // the stat ran on this pool's thread
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn metadata(&self, path: impl AsRef<Path>) -> FsFuture<Metadata> {
        path_call(self.pool.clone(), "stat", path.as_ref(), 0, |path| {
            std::fs::metadata(path)
        })
    }

    /// Metadata of `path` itself, not following a symlink (`lstat(2)`).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-handle-symlink-metadata-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// std::os::unix::fs::symlink("nowhere", dir.join("link"))?;
    /// let pool = aopen::Pool::builder().max_threads(2).build()?;
    /// let meta = aopen::block_on(pool.fs().symlink_metadata(dir.join("link")))?;
    /// assert!(meta.file_type().is_symlink()); // the link itself, dangling or not
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn symlink_metadata(&self, path: impl AsRef<Path>) -> FsFuture<Metadata> {
        path_call(self.pool.clone(), "lstat", path.as_ref(), 0, |path| {
            std::fs::symlink_metadata(path)
        })
    }

    /// The whole contents of a file.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-handle-read-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("a.bin"), [1u8, 2, 3])?;
    /// let pool = aopen::Pool::builder().max_threads(2).descriptor_budget(1).build()?;
    /// assert_eq!(aopen::block_on(pool.fs().read(dir.join("a.bin")))?, [1, 2, 3]);
    /// assert_eq!(pool.budget().held(), 0); // its one descriptor is closed again
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read(&self, path: impl AsRef<Path>) -> FsFuture<Vec<u8>> {
        path_call(self.pool.clone(), "read", path.as_ref(), 1, read_whole)
    }

    /// The whole contents of a file, as UTF-8 (`InvalidData` if it is not).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-handle-read-to-string-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("a.txt"), "hello")?;
    /// let pool = aopen::Pool::builder().max_threads(2).build()?;
    /// let text = aopen::block_on(pool.fs().read_to_string(dir.join("a.txt")))?;
    /// assert_eq!(text, "hello");
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_to_string(&self, path: impl AsRef<Path>) -> FsFuture<String> {
        path_call(self.pool.clone(), "read", path.as_ref(), 1, |path| {
            String::from_utf8(read_whole(path)?).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    "stream did not contain valid UTF-8",
                )
            })
        })
    }

    /// Creates or truncates a file and writes `contents` to it.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-handle-write-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let pool = aopen::Pool::builder().max_threads(2).build()?;
    /// aopen::block_on(pool.fs().write(dir.join("a.txt"), "hello"))?;
    /// assert_eq!(std::fs::read_to_string(dir.join("a.txt"))?, "hello");
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write(&self, path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> FsFuture<()> {
        let contents = contents.as_ref().to_vec();
        path_call(self.pool.clone(), "write", path.as_ref(), 1, move |path| {
            write_whole(path, &contents)
        })
    }

    /// Creates a directory.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-handle-create-dir-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let pool = aopen::Pool::builder().max_threads(2).build()?;
    /// aopen::block_on(pool.fs().create_dir(dir.join("sub")))?;
    /// assert!(dir.join("sub").is_dir());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create_dir(&self, path: impl AsRef<Path>) -> FsFuture<()> {
        path_call(self.pool.clone(), "mkdir", path.as_ref(), 0, |path| {
            std::fs::create_dir(path)
        })
    }

    /// Creates a directory and any missing parents.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-handle-create-dir-all-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let pool = aopen::Pool::builder().max_threads(2).build()?;
    /// aopen::block_on(pool.fs().create_dir_all(dir.join("a/b/c")))?;
    /// assert!(dir.join("a/b/c").is_dir());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create_dir_all(&self, path: impl AsRef<Path>) -> FsFuture<()> {
        path_call(self.pool.clone(), "mkdir -p", path.as_ref(), 0, |path| {
            std::fs::create_dir_all(path)
        })
    }

    /// Removes a file (or symlink).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-handle-remove-file-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("a.txt"), "hello")?;
    /// let pool = aopen::Pool::builder().max_threads(2).build()?;
    /// aopen::block_on(pool.fs().remove_file(dir.join("a.txt")))?;
    /// assert!(!dir.join("a.txt").exists());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn remove_file(&self, path: impl AsRef<Path>) -> FsFuture<()> {
        path_call(self.pool.clone(), "unlink", path.as_ref(), 0, |path| {
            std::fs::remove_file(path)
        })
    }

    /// Removes an empty directory.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-handle-remove-dir-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::create_dir(dir.join("empty"))?;
    /// let pool = aopen::Pool::builder().max_threads(2).build()?;
    /// aopen::block_on(pool.fs().remove_dir(dir.join("empty")))?;
    /// assert!(!dir.join("empty").exists());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-handle-remove-dir-all-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// std::fs::create_dir_all(dir.join("tree/a/b/c"))?;
    /// let pool = aopen::Pool::builder().max_threads(2).descriptor_budget(1).build()?;
    /// aopen::block_on(pool.fs().remove_dir_all(dir.join("tree")))?; // a budget of one suffices
    /// assert!(!dir.join("tree").exists());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn remove_dir_all(&self, path: impl AsRef<Path>) -> FsFuture<()> {
        path_call(self.pool.clone(), "rm -r", path.as_ref(), 1, |path| {
            remove::remove_dir_all_bounded(path)
        })
    }

    /// Renames `from` to `to`, replacing `to` if it exists.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-handle-rename-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("a.txt"), "hello")?;
    /// let pool = aopen::Pool::builder().max_threads(2).build()?;
    /// aopen::block_on(pool.fs().rename(dir.join("a.txt"), dir.join("b.txt")))?;
    /// assert!(dir.join("b.txt").exists() && !dir.join("a.txt").exists());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn rename(&self, from: impl AsRef<Path>, to: impl AsRef<Path>) -> FsFuture<()> {
        let to = to.as_ref().to_path_buf();
        path_call(self.pool.clone(), "rename", from.as_ref(), 0, move |from| {
            std::fs::rename(from, &to)
        })
    }

    /// Copies the contents and permissions of `from` to `to`; returns the bytes
    /// copied. Holds two descriptors (two permits) while it runs.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-handle-copy-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("a.txt"), "hello")?;
    /// let (from, to) = (dir.join("a.txt"), dir.join("b.txt"));
    /// let tiny = aopen::Pool::builder().max_threads(2).descriptor_budget(1).build()?;
    /// let err = aopen::block_on(tiny.fs().copy(&from, &to)).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput); // needs 2 permits at once
    /// let pool = aopen::Pool::builder().max_threads(2).descriptor_budget(2).build()?;
    /// assert_eq!(aopen::block_on(pool.fs().copy(&from, &to))?, 5);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn copy(&self, from: impl AsRef<Path>, to: impl AsRef<Path>) -> FsFuture<u64> {
        let to = to.as_ref().to_path_buf();
        path_call(self.pool.clone(), "copy", from.as_ref(), 2, move |from| {
            copy_whole(from, &to)
        })
    }

    /// Makes `link` a new name for the file `original` (`link(2)`).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-handle-hard-link-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("a.txt"), "hello")?;
    /// use std::os::unix::fs::MetadataExt;
    ///
    /// let pool = aopen::Pool::builder().max_threads(2).build()?;
    /// aopen::block_on(pool.fs().hard_link(dir.join("a.txt"), dir.join("b.txt")))?;
    /// assert_eq!(std::fs::metadata(dir.join("a.txt"))?.nlink(), 2);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-handle-canonicalize-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::create_dir(dir.join("sub"))?;
    /// let pool = aopen::Pool::builder().max_threads(2).build()?;
    /// let path = aopen::block_on(pool.fs().canonicalize(dir.join("sub/..")))?;
    /// assert_eq!(path, std::fs::canonicalize(&dir)?);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-handle-try-exists-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let pool = aopen::Pool::builder().max_threads(2).build()?;
    /// assert!(aopen::block_on(pool.fs().try_exists(&dir))?);
    /// assert!(!aopen::block_on(pool.fs().try_exists(dir.join("missing")))?);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_exists(&self, path: impl AsRef<Path>) -> FsFuture<bool> {
        path_call(self.pool.clone(), "stat", path.as_ref(), 0, |path| {
            path.try_exists()
        })
    }

    /// Changes the permissions of `path` (`chmod(2)`).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-handle-set-permissions-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("a.txt"), "hello")?;
    /// use std::os::unix::fs::PermissionsExt;
    ///
    /// let pool = aopen::Pool::builder().max_threads(2).build()?;
    /// let read_only = std::fs::Permissions::from_mode(0o444);
    /// aopen::block_on(pool.fs().set_permissions(dir.join("a.txt"), read_only))?;
    /// assert_eq!(std::fs::metadata(dir.join("a.txt"))?.permissions().mode() & 0o777, 0o444);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_permissions(&self, path: impl AsRef<Path>, perm: Permissions) -> FsFuture<()> {
        path_call(self.pool.clone(), "chmod", path.as_ref(), 0, move |path| {
            std::fs::set_permissions(path, perm)
        })
    }

    /// The entries of a directory, fetched from the pool in batches of
    /// [`READ_DIR_BATCH`]. The `ReadDir` holds a descriptor (and permit) until it is
    /// exhausted or dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-handle-read-dir-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("a"), "")?;
    /// let pool = aopen::Pool::builder().max_threads(2).descriptor_budget(4).build()?;
    /// let mut entries = aopen::block_on(pool.fs().read_dir(&dir))?;
    /// assert_eq!(pool.budget().held(), 1); // the open stream holds one of this pool's permits
    /// let first = aopen::block_on(entries.next_entry())?.expect("one entry");
    /// assert_eq!(first.file_name(), "a");
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_dir(&self, path: impl AsRef<Path>) -> FsFuture<ReadDir> {
        let pool = self.pool.clone();
        let path: Arc<Path> = Arc::from(path.as_ref());
        FsFuture::new(async move {
            let pool = resolve_pool(pool)?;
            let permit = pool.budget().acquire().await;
            let open_path = path.clone();
            let lane = lane::open_in_lane(&pool, permit, move || {
                // A stream of our own (`dir.rs`), so `closedir`'s error is returned,
                // not asserted on as std's `ReadDir` does; its open retries EINTR.
                read_dir::open_dir(&open_path)
                    .map_err(|err| with_path("open directory", &open_path, err))
            })
            .await?;
            Ok(ReadDir::new(lane, path, pool))
        })
    }

    /// Stats many paths (following symlinks) in few pool trips: the paths are cut
    /// into chunks that run in parallel, one trip each. Results come back in input
    /// order, one `io::Result` per path.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-handle-metadata-batch-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("a"), "1")?;
    /// # std::fs::write(dir.join("b"), "22")?;
    /// let pool = aopen::Pool::builder().max_threads(2).build()?;
    /// let results = aopen::block_on(pool.fs().metadata_batch([dir.join("a"), dir.join("b")]))?;
    /// let sizes: Vec<u64> = results.iter().map(|meta| meta.as_ref().unwrap().len()).collect();
    /// assert_eq!(sizes, [1, 2]); // in input order
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
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

global_fn!(
    /// Metadata of `path`, following symlinks (`stat(2)`).
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-metadata-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("a.txt"), "hello")?;
    /// aopen::block_on(async {
    ///     let meta = aopen::fs::metadata(dir.join("a.txt")).await?;
    ///     assert!(meta.is_file());
    ///     assert_eq!(meta.len(), 5);
    ///     assert!(aopen::fs::metadata(&dir).await?.is_dir());
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    metadata(path: impl AsRef<Path>) -> Metadata
);
global_fn!(
    /// Metadata of `path` itself, not following a symlink (`lstat(2)`).
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-symlink-metadata-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("target.txt"), "x")?;
    /// std::os::unix::fs::symlink(dir.join("target.txt"), dir.join("link"))?;
    /// aopen::block_on(async {
    ///     let link = aopen::fs::symlink_metadata(dir.join("link")).await?;
    ///     assert!(link.file_type().is_symlink());
    ///     let target = aopen::fs::metadata(dir.join("link")).await?; // follows the link
    ///     assert!(target.is_file());
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    symlink_metadata(path: impl AsRef<Path>) -> Metadata
);
global_fn!(
    /// The whole contents of a file.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-read-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("a.bin"), [1u8, 2, 3])?;
    /// let bytes = aopen::block_on(aopen::fs::read(dir.join("a.bin")))?;
    /// assert_eq!(bytes, [1, 2, 3]);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    read(path: impl AsRef<Path>) -> Vec<u8>
);
global_fn!(
    /// The whole contents of a file, as UTF-8.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-read-to-string-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("a.txt"), "hello")?;
    /// let text = aopen::block_on(aopen::fs::read_to_string(dir.join("a.txt")))?;
    /// assert_eq!(text, "hello");
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    read_to_string(path: impl AsRef<Path>) -> String
);
global_fn!(
    /// Creates or truncates a file and writes `contents` to it.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-write-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// aopen::block_on(async {
    ///     let path = dir.join("greeting.txt");
    ///     aopen::fs::write(&path, "hello, world").await?;
    ///     aopen::fs::write(&path, b"bye").await?; // replaces the contents
    ///     assert_eq!(aopen::fs::read_to_string(&path).await?, "bye");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> ()
);
global_fn!(
    /// Creates a directory.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-create-dir-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// aopen::block_on(async {
    ///     aopen::fs::create_dir(dir.join("sub")).await?;
    ///     let again = aopen::fs::create_dir(dir.join("sub")).await.unwrap_err();
    ///     assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    create_dir(path: impl AsRef<Path>) -> ()
);
global_fn!(
    /// Creates a directory and any missing parents.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-create-dir-all-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// aopen::block_on(async {
    ///     aopen::fs::create_dir_all(dir.join("a/b/c")).await?;
    ///     aopen::fs::create_dir_all(dir.join("a/b/c")).await?; // exists already: fine
    ///     assert!(aopen::fs::metadata(dir.join("a/b/c")).await?.is_dir());
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    create_dir_all(path: impl AsRef<Path>) -> ()
);
global_fn!(
    /// Removes a file (or symlink).
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-remove-file-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("old.txt"), "x")?;
    /// aopen::block_on(async {
    ///     aopen::fs::remove_file(dir.join("old.txt")).await?;
    ///     assert!(!aopen::fs::try_exists(dir.join("old.txt")).await?);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    remove_file(path: impl AsRef<Path>) -> ()
);
global_fn!(
    /// Removes an empty directory.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-remove-dir-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// std::fs::create_dir_all(dir.join("full"))?;
    /// std::fs::write(dir.join("full/file"), "x")?;
    /// aopen::block_on(async {
    ///     aopen::fs::create_dir(dir.join("empty")).await?;
    ///     aopen::fs::remove_dir(dir.join("empty")).await?;
    ///     assert!(aopen::fs::remove_dir(dir.join("full")).await.is_err()); // not empty
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    remove_dir(path: impl AsRef<Path>) -> ()
);
global_fn!(
    /// Removes a directory and everything in it, not following symlinks.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-remove-dir-all-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// std::fs::create_dir_all(dir.join("tree/a/b"))?;
    /// std::fs::write(dir.join("tree/a/b/leaf"), "x")?;
    /// aopen::block_on(async {
    ///     aopen::fs::remove_dir_all(dir.join("tree")).await?; // one descriptor at a time
    ///     assert!(!aopen::fs::try_exists(dir.join("tree")).await?);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    remove_dir_all(path: impl AsRef<Path>) -> ()
);
global_fn!(
    /// Renames `from` to `to`, replacing `to` if it exists.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-rename-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("config"), "old")?;
    /// aopen::block_on(async {
    ///     // The classic atomic replace: write a temporary file, then rename it over.
    ///     aopen::fs::write(dir.join("config.tmp"), "new").await?;
    ///     aopen::fs::rename(dir.join("config.tmp"), dir.join("config")).await?;
    ///     assert_eq!(aopen::fs::read_to_string(dir.join("config")).await?, "new");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> ()
);
global_fn!(
    /// Copies the contents and permissions of `from` to `to`.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-copy-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("a.txt"), "hello")?;
    /// aopen::block_on(async {
    ///     let bytes = aopen::fs::copy(dir.join("a.txt"), dir.join("b.txt")).await?;
    ///     assert_eq!(bytes, 5);
    ///     assert_eq!(aopen::fs::read(dir.join("b.txt")).await?, b"hello");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> u64
);
global_fn!(
    /// Makes `link` a new name for the file `original`.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-hard-link-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("a.txt"), "hello")?;
    /// use std::os::unix::fs::MetadataExt;
    ///
    /// aopen::block_on(async {
    ///     aopen::fs::hard_link(dir.join("a.txt"), dir.join("b.txt")).await?;
    ///     assert_eq!(aopen::fs::metadata(dir.join("a.txt")).await?.nlink(), 2);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    hard_link(original: impl AsRef<Path>, link: impl AsRef<Path>) -> ()
);
global_fn!(
    /// The absolute path with every symlink, `.` and `..` resolved.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-canonicalize-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// std::fs::create_dir_all(dir.join("sub"))?;
    /// aopen::block_on(async {
    ///     let path = aopen::fs::canonicalize(dir.join("sub/../sub/.")).await?;
    ///     assert!(path.is_absolute() && path.ends_with("sub"));
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    canonicalize(path: impl AsRef<Path>) -> PathBuf
);
global_fn!(
    /// Whether `path` exists.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-try-exists-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("a.txt"), "x")?;
    /// aopen::block_on(async {
    ///     assert!(aopen::fs::try_exists(dir.join("a.txt")).await?);
    ///     assert!(!aopen::fs::try_exists(dir.join("b.txt")).await?);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    try_exists(path: impl AsRef<Path>) -> bool
);
global_fn!(
    /// Changes the permissions of `path`.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-set-permissions-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("script.sh"), "#!/bin/sh\n")?;
    /// use std::os::unix::fs::PermissionsExt;
    ///
    /// aopen::block_on(async {
    ///     let path = dir.join("script.sh");
    ///     aopen::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).await?;
    ///     let mode = aopen::fs::metadata(&path).await?.permissions().mode();
    ///     assert_eq!(mode & 0o777, 0o755);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    set_permissions(path: impl AsRef<Path>, perm: Permissions) -> ()
);
global_fn!(
    /// The entries of a directory, fetched from the pool in batches.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-read-dir-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("a"), "")?;
    /// # std::fs::write(dir.join("b"), "")?;
    /// let names = aopen::block_on(async {
    ///     let mut names = Vec::new();
    ///     let mut entries = aopen::fs::read_dir(&dir).await?;
    ///     while let Some(entry) = entries.next_entry().await? {
    ///         names.push(entry.file_name().into_string().unwrap());
    ///     }
    ///     names.sort(); // the order is the file system's
    ///     Ok::<_, std::io::Error>(names)
    /// })?;
    /// assert_eq!(names, ["a", "b"]);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    read_dir(path: impl AsRef<Path>) -> ReadDir
);

/// Stats many paths in few pool trips; results in input order. Runs on the global
/// pool; see [`Fs::metadata_batch`].
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-metadata-batch-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # std::fs::write(dir.join("a"), "1")?;
/// # std::fs::write(dir.join("b"), "22")?;
/// let paths = vec![dir.join("a"), dir.join("missing"), dir.join("b")];
/// let results = aopen::block_on(aopen::fs::metadata_batch(&paths))?;
/// // One result per path, in input order; a missing path is an error in its slot.
/// assert_eq!(results.len(), 3);
/// assert_eq!(results[0].as_ref().unwrap().len(), 1);
/// assert_eq!(results[1].as_ref().unwrap_err().kind(), std::io::ErrorKind::NotFound);
/// assert_eq!(results[2].as_ref().unwrap().len(), 2);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
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
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-with-file-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # std::fs::write(dir.join("data.txt"), "header\nrow\n")?;
/// let path = dir.join("data.txt");
/// let first_line = aopen::block_on(aopen::fs::with_file(path, |file| {
///     Box::pin(async move {
///         let mut text = String::new();
///         file.read_to_string(&mut text).await?;
///         Ok(text.lines().next().unwrap_or_default().to_owned())
///     })
/// }))?; // the file is closed here, and a close error would have been returned
/// assert_eq!(first_line, "header");
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// The body only borrows the file, so it cannot smuggle it out past the close:
///
/// ```compile_fail
/// // error: lifetime may not live long enough (the `&mut File` would outlive the body)
/// let escaped = aopen::fs::with_file("/etc/hostname", |file| Box::pin(async move { Ok(file) }));
/// ```
pub fn with_file<T, F>(path: impl AsRef<Path>, body: F) -> FsFuture<T>
where
    T: Send + 'static,
    F: for<'a> FnOnce(&'a mut File) -> ScopedFuture<'a, T> + Send + 'static,
{
    OpenOptions::new().read(true).scoped(path, body)
}
