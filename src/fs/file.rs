//! [`File`] and [`OpenOptions`]: std's shapes, with an asynchronous close.
//!
//! A `File` is a [`Lane`] around a `std::fs::File`: every method queues one job in
//! the lane (so they run in the order they were called, one at a time) and awaits it.
//! Buffers never cross to the pool: a read fills an owned buffer on the pool thread
//! and copies it into the caller's slice after the job finished; a write copies the
//! caller's bytes into an owned buffer first. A dropped future therefore never leaves
//! a pool thread writing into freed memory.
//!
//! Cancellation: dropping an operation's future before it started skips it; after it
//! started, it runs to the end on the pool and its result is dropped. Bytes a dropped
//! `read` took from the file are lost (the file position moved), as with any reader
//! that is cancelled; a dropped `write` may or may not have happened, but a write that
//! returned `Ok(n)` did hand `n` bytes to `write(2)`.

use std::fmt;
use std::fs::Metadata;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::IntoRawFd;
use std::path::Path;

use super::error::{retry_interrupted, with_path};
use super::lane::{open_in_lane, Lane, Resource};
use super::FsFuture;
use crate::pool::Pool;
use crate::sync::DynArc as Arc;

/// The most bytes one `read` or `write` moves in one pool trip; longer buffers are
/// done in pieces of this size (`read_exact`, `write_all`) or shortened (`read`,
/// `write`, as std allows).
pub const MAX_TRANSFER: usize = 2 * 1024 * 1024;

impl Resource for std::fs::File {
    fn close(self) -> io::Result<()> {
        let fd = self.into_raw_fd();
        // SAFETY: `into_raw_fd` gave us sole ownership of `fd`; nothing else closes it
        // or uses it after this call.
        let rc = unsafe { libc::close(fd) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            // On Linux the descriptor is released even when close reports EINTR;
            // retrying could close a descriptor another thread just opened.
            return Ok(());
        }
        Err(err)
    }
}

/// An open file on a [`Pool`]: `std::fs::File`'s methods, as futures.
///
/// Dropping a `File` queues its close on the pool and returns at once; the close runs
/// after every operation issued before it, and any error it reports is lost. To see
/// that error (NFS reports deferred write errors there), call [`File::close`].
pub struct File {
    lane: Lane<std::fs::File>,
    path: Arc<Path>,
    /// A buffer kept between reads, so a read does not allocate every time.
    spare: Option<Vec<u8>>,
}

impl File {
    /// Opens a file for reading, like `std::fs::File::open`.
    pub fn open(path: impl AsRef<Path>) -> FsFuture<File> {
        OpenOptions::new().read(true).open(path)
    }

    /// Creates or truncates a file for writing, like `std::fs::File::create`.
    pub fn create(path: impl AsRef<Path>) -> FsFuture<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
    }

    /// The path this file was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pool this file's operations run on.
    pub fn pool(&self) -> &Pool {
        self.lane.pool()
    }

    /// Runs `op` on the file in its lane and names the path in its error.
    async fn run<T, F>(&self, operation: &'static str, op: F) -> io::Result<T>
    where
        F: FnOnce(&mut std::fs::File) -> io::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let path = self.path.clone();
        self.lane
            .submit(op)
            .await
            .map_err(|err| with_path(operation, &path, err))
    }

    /// Reads up to `buf.len()` bytes (at most [`MAX_TRANSFER`]); `Ok(0)` at end of
    /// file. Retries on `EINTR`.
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len().min(MAX_TRANSFER);
        let mut owned = self.spare.take().unwrap_or_default();
        owned.resize(len, 0);
        let (owned, result) = self
            .lane
            .submit(move |file| {
                let result = retry_interrupted(|| file.read(&mut owned));
                (owned, result)
            })
            .await;
        let n = result.map_err(|err| with_path("read", &self.path, err))?;
        buf[..n].copy_from_slice(&owned[..n]);
        self.spare = Some(owned);
        Ok(n)
    }

    /// Reads exactly `buf.len()` bytes; `UnexpectedEof` if the file ends first.
    /// Short reads are continued on the pool thread.
    pub async fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        for chunk in buf.chunks_mut(MAX_TRANSFER) {
            let len = chunk.len();
            let data = self
                .run("read", move |file| {
                    let mut owned = vec![0; len];
                    file.read_exact(&mut owned)?;
                    Ok(owned)
                })
                .await?;
            chunk.copy_from_slice(&data);
        }
        Ok(())
    }

    /// Reads to the end of the file, appending to `buf`; returns the bytes read.
    pub async fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let data = self
            .run("read", |file| {
                let mut owned = Vec::new();
                file.read_to_end(&mut owned)?;
                Ok(owned)
            })
            .await?;
        buf.extend_from_slice(&data);
        Ok(data.len())
    }

    /// Reads to the end of the file, appending to `buf`; `InvalidData` (and `buf`
    /// unchanged) if the bytes are not UTF-8.
    pub async fn read_to_string(&mut self, buf: &mut String) -> io::Result<usize> {
        let data = self
            .run("read", |file| {
                let mut owned = Vec::new();
                file.read_to_end(&mut owned)?;
                String::from_utf8(owned).map_err(|err| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("not UTF-8: {err}"))
                })
            })
            .await?;
        buf.push_str(&data);
        Ok(data.len())
    }

    /// Writes up to `buf.len()` bytes (at most [`MAX_TRANSFER`]) with one `write(2)`.
    /// `Ok(n)` means the system took those `n` bytes. Retries on `EINTR`.
    pub async fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let owned = buf[..buf.len().min(MAX_TRANSFER)].to_vec();
        self.run("write", move |file| {
            retry_interrupted(|| file.write(&owned))
        })
        .await
    }

    /// Writes all of `buf`, continuing short writes on the pool thread. When it
    /// returns `Ok(())`, `write(2)` took every byte.
    pub async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        for chunk in buf.chunks(MAX_TRANSFER) {
            let owned = chunk.to_vec();
            self.run("write", move |file| file.write_all(&owned))
                .await?;
        }
        Ok(())
    }

    /// Moves the file position, like `std::io::Seek::seek`.
    pub async fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.run("seek", move |file| file.seek(pos)).await
    }

    /// Flushes data and metadata to the device (`fsync(2)`).
    pub async fn sync_all(&self) -> io::Result<()> {
        self.run("fsync", |file| file.sync_all()).await
    }

    /// Flushes data to the device (`fdatasync(2)`).
    pub async fn sync_data(&self) -> io::Result<()> {
        self.run("fdatasync", |file| file.sync_data()).await
    }

    /// Truncates or extends the file to `size` bytes.
    pub async fn set_len(&self, size: u64) -> io::Result<()> {
        self.run("truncate", move |file| file.set_len(size)).await
    }

    /// The file's metadata (`fstat(2)`).
    pub async fn metadata(&self) -> io::Result<Metadata> {
        self.run("stat", |file| file.metadata()).await
    }

    /// Changes the file's permissions (`fchmod(2)`).
    pub async fn set_permissions(&self, perm: std::fs::Permissions) -> io::Result<()> {
        self.run("chmod", move |file| file.set_permissions(perm))
            .await
    }

    /// A second `File` for the same open file description (`dup(2)`), with its own
    /// permit of the pool's budget (this waits for one).
    pub async fn try_clone(&self) -> io::Result<File> {
        let pool = self.pool().clone();
        let permit = pool.budget().acquire().await;
        let path = self.path.clone();
        let lane_pool = pool.clone();
        let clone_path = path.clone();
        self.run("dup", move |file| {
            let copy = file.try_clone()?;
            Ok(File {
                lane: Lane::new(lane_pool, copy, permit),
                path: clone_path,
                spare: None,
            })
        })
        .await
    }

    /// Reads up to `buf.len()` bytes at `offset` (`pread(2)`), without moving the
    /// file position.
    pub async fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let len = buf.len().min(MAX_TRANSFER);
        let data = self
            .run("read", move |file| {
                let mut owned = vec![0; len];
                let n = retry_interrupted(|| file.read_at(&mut owned, offset))?;
                owned.truncate(n);
                Ok(owned)
            })
            .await?;
        buf[..data.len()].copy_from_slice(&data);
        Ok(data.len())
    }

    /// Writes up to `buf.len()` bytes at `offset` (`pwrite(2)`), without moving the
    /// file position.
    pub async fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        let owned = buf[..buf.len().min(MAX_TRANSFER)].to_vec();
        self.run("write", move |file| {
            retry_interrupted(|| file.write_at(&owned, offset))
        })
        .await
    }

    /// Closes the file after every operation issued before, and reports what
    /// `close(2)` said (on NFS, deferred write errors show up here).
    ///
    /// If this future is dropped, the close still happens (on the pool); only its
    /// result is lost.
    pub async fn close(self) -> io::Result<()> {
        let File { lane, path, .. } = self;
        lane.close()
            .await
            .map_err(|err| with_path("close", &path, err))
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File").field("path", &self.path).finish()
    }
}

/// Options for opening a file, like `std::fs::OpenOptions`, plus the [`Pool`] to open
/// it on.
#[derive(Clone)]
pub struct OpenOptions {
    std: std::fs::OpenOptions,
    pool: Option<Pool>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions::new()
    }
}

impl OpenOptions {
    /// Options with every flag off, on the global pool.
    pub fn new() -> OpenOptions {
        OpenOptions {
            std: std::fs::OpenOptions::new(),
            pool: None,
        }
    }

    /// Open for reading.
    pub fn read(&mut self, read: bool) -> &mut Self {
        self.std.read(read);
        self
    }

    /// Open for writing.
    pub fn write(&mut self, write: bool) -> &mut Self {
        self.std.write(write);
        self
    }

    /// Open for appending (`O_APPEND`).
    pub fn append(&mut self, append: bool) -> &mut Self {
        self.std.append(append);
        self
    }

    /// Truncate the file to zero length on open.
    pub fn truncate(&mut self, truncate: bool) -> &mut Self {
        self.std.truncate(truncate);
        self
    }

    /// Create the file if it does not exist.
    pub fn create(&mut self, create: bool) -> &mut Self {
        self.std.create(create);
        self
    }

    /// Create the file, failing with `AlreadyExists` if it exists (`O_EXCL`).
    pub fn create_new(&mut self, create_new: bool) -> &mut Self {
        self.std.create_new(create_new);
        self
    }

    /// The permission bits of a file this call creates (default `0o666`, less the
    /// umask).
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        self.std.mode(mode);
        self
    }

    /// Extra `open(2)` flags, such as `libc::O_NOFOLLOW` or `libc::O_NONBLOCK`.
    pub fn custom_flags(&mut self, flags: i32) -> &mut Self {
        self.std.custom_flags(flags);
        self
    }

    /// Open on `pool` (and count against its budget) instead of the global pool.
    pub fn pool(&mut self, pool: &Pool) -> &mut Self {
        self.pool = Some(pool.clone());
        self
    }

    /// Opens `path` with these options.
    ///
    /// Waits for a permit of the pool's budget first, then runs `open(2)` on the pool.
    /// If this future is dropped while the open runs, the descriptor it returns is
    /// closed on the pool.
    pub fn open(&self, path: impl AsRef<Path>) -> FsFuture<File> {
        let options = self.std.clone();
        let pool = self.pool.clone();
        let path: Arc<Path> = Arc::from(path.as_ref());
        FsFuture::new(async move {
            let pool = super::resolve_pool(pool)?;
            let permit = pool.budget().acquire().await;
            let open_path = path.clone();
            let lane = open_in_lane(&pool, permit, move || {
                options
                    .open(&open_path)
                    .map_err(|err| with_path("open", &open_path, err))
            })
            .await?;
            Ok(File {
                lane,
                path,
                spare: None,
            })
        })
    }

    /// Opens `path`, runs `body` on the file, then closes it asynchronously: the
    /// scoped form of Python's `async with aopen(path) as f:`.
    ///
    /// Returns `body`'s error if it failed, else `close(2)`'s. The file is closed
    /// either way (if this future is dropped midway, the close still happens on the
    /// pool, and only its error is lost).
    ///
    /// ```
    /// # aopen::block_on(async {
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-scoped-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("hello.txt");
    /// aopen::fs::OpenOptions::new()
    ///     .write(true)
    ///     .create(true)
    ///     .scoped(&path, |file| Box::pin(async move { file.write_all(b"hello").await }))
    ///     .await?;
    /// assert_eq!(std::fs::read(&path)?, b"hello");
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn scoped<T, F>(&self, path: impl AsRef<Path>, body: F) -> FsFuture<T>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a mut File) -> super::ScopedFuture<'a, T> + Send + 'static,
    {
        let open = self.open(path);
        FsFuture::new(async move {
            let mut file = open.await?;
            let result = body(&mut file).await;
            let closed = file.close().await;
            let value = result?;
            closed?;
            Ok(value)
        })
    }
}

impl fmt::Debug for OpenOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenOptions")
            .field("options", &self.std)
            .field("pool", &self.pool)
            .finish()
    }
}
