//! The `tokio::fs::File` items beyond std's shape: the constructors
//! [`File::options`] and [`File::create_new`], the times [`File::set_times`] and
//! [`File::set_modified`], the transfer cap [`File::set_max_buf_size`] /
//! [`File::max_buf_size`], and the hand-over of the descriptor to std,
//! [`File::into_std`] and [`File::try_into_std`].
//!
//! The constructors are spelled through [`OpenOptions`], so they keep its rules: the
//! permit is taken before `open(2)`, an open whose future was dropped is closed on
//! the pool, and an error names the path.
//!
//! # The hand-over
//!
//! A descriptor given to std is no longer the crate's: the crate never closes it
//! (the lane is ended without a close), and its budget permit goes back exactly once,
//! when the caller receives it (the budget counts the descriptors the crate holds).
//! It is given only once no operation on it is queued or running (rule 2: nothing
//! of this `File` can still touch it), and with the OS position where the caller's
//! reads left it (bytes a given-up trait read brought back are stepped back over).
//! If the future of `into_std` is dropped after the hand-over was queued, the
//! descriptor is closed on the pool instead, permit after close.

use std::fs::FileTimes;
use std::future::Future;
use std::io;
use std::path::Path;
use std::time::SystemTime;

use super::file_op::Effect;
use super::lane::Lane;
use super::{resolve_pool, File, Fs, FsFuture, OpenOptions};
use crate::sync::DynArc as Arc;

impl Fs {
    /// Adopts an open `std::fs::File` on this pool (tokio's `from_std`): returns a
    /// [`File`] whose operations and close run on the pool, holding a permit of its
    /// budget. The descriptor is open already, so this does not wait for a permit: on
    /// a full budget it overdraws it by one until the next close (the crate opens
    /// nothing new meanwhile; see [`Budget`](crate::Budget)'s module docs). The file
    /// has no path ([`File::path`] is empty, and errors name none).
    ///
    /// # Panics
    ///
    /// Panics if this is the global pool's [`Fs`] and the global pool cannot be built
    /// from a bad environment value (see [`Pool::global`](crate::Pool::global)).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-from-std-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("a"), "hello")?;
    /// let pool = aopen::Pool::builder().max_threads(2).descriptor_budget(2).build()?;
    /// let std_file = std::fs::File::open(dir.join("a"))?;
    /// let mut file = pool.fs().from_std(std_file);
    /// assert_eq!(pool.budget().held(), 1); // counted against this pool's budget now
    /// let mut text = String::new();
    /// aopen::block_on(file.read_to_string(&mut text))?;
    /// assert_eq!(text, "hello");
    /// aopen::block_on(file.close())?;
    /// assert_eq!(pool.budget().held(), 0);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_std(&self, std_file: std::fs::File) -> File {
        let pool = resolve_pool(self.pool.clone())
            .unwrap_or_else(|err| panic!("aopen: cannot build the global pool: {err}"));
        let permit = pool.budget().overdraw();
        File::from_lane(Lane::new(pool, std_file, permit), Arc::from(Path::new("")))
    }
}

/// Adopts an open `std::fs::File` on the global pool: [`File::from_std`].
///
/// # Panics
///
/// Panics if the global pool cannot be built from a bad environment value (see
/// [`Pool::global`](crate::Pool::global)).
///
/// # Examples
///
/// ```
/// let file: aopen::File = std::fs::File::open("/")?.into();
/// assert!(aopen::block_on(file.metadata())?.is_dir());
/// # Ok::<(), std::io::Error>(())
/// ```
impl From<std::fs::File> for File {
    fn from(std_file: std::fs::File) -> File {
        File::from_std(std_file)
    }
}

impl File {
    /// Adopts an open `std::fs::File` on the global pool (tokio's `from_std`): see
    /// [`Fs::from_std`]. It takes a permit of the budget at once (overdrawing a full
    /// one: the descriptor exists already) and holds it until the file is closed on
    /// the pool.
    ///
    /// # Panics
    ///
    /// Panics if the global pool cannot be built from a bad environment value (see
    /// [`Pool::global`](crate::Pool::global)).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-file-from-std-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// aopen::block_on(async {
    ///     let std_file = std::fs::File::create(dir.join("a"))?;
    ///     let mut file = aopen::File::from_std(std_file);
    ///     file.write_all(b"adopted").await?;
    ///     // And back: into_std hands the descriptor out again.
    ///     let std_file = file.into_std().await;
    ///     assert_eq!(std_file.metadata()?.len(), 7);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_std(std_file: std::fs::File) -> File {
        Fs::default().from_std(std_file)
    }

    /// A blank [`OpenOptions`], like `std::fs::File::options` and tokio's.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-file-options-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("log.txt"), "a")?;
    /// aopen::block_on(async {
    ///     let mut file = aopen::File::options().append(true).open(dir.join("log.txt")).await?;
    ///     file.write_all(b"b").await?;
    ///     file.close().await
    /// })?;
    /// assert_eq!(std::fs::read_to_string(dir.join("log.txt"))?, "ab");
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Creates a new file for reading and writing; `AlreadyExists` if `path` exists
    /// (`O_CREAT | O_EXCL`: no race with another creator), like
    /// `std::fs::File::create_new` and tokio's.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-file-create-new-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// aopen::block_on(async {
    ///     let mut file = aopen::File::create_new(dir.join("lock")).await?;
    ///     file.write_all(b"1").await?;
    ///     file.close().await?;
    ///     let err = aopen::File::create_new(dir.join("lock")).await.unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    ///     assert!(err.to_string().contains("lock"));
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create_new(path: impl AsRef<Path>) -> FsFuture<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
    }

    /// Waits for every operation queued on this file, then hands its descriptor over
    /// as a `std::fs::File` (tokio's `into_std`). The crate will not close it; its
    /// permit is back in the budget when this returns. The OS position is where the
    /// caller's reads left it: bytes a given-up trait read brought back are stepped
    /// back over first (a file that cannot seek, a FIFO, loses them).
    ///
    /// Like tokio's, this cannot fail: the error of an operation a trait poll method
    /// started and nobody waited for to the end (a `poll_write` given up after
    /// `Pending`, whose caller was never told it was written) has nobody to go to and
    /// is dropped, as it would be with the `File`. To see it, finish the write (or
    /// `flush`, which waits for it) before `into_std`.
    ///
    /// # Panics
    ///
    /// Panics if `poll_close` (the `futures-io` trait's close) closed the file: it
    /// has no descriptor left to hand over.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-file-into-std-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// use std::io::Write;
    ///
    /// let pool = aopen::Pool::builder().max_threads(2).descriptor_budget(4).build()?;
    /// let mut std_file = aopen::block_on(async {
    ///     let mut file = pool.fs().options().write(true).create(true).open(dir.join("a")).await?;
    ///     file.write_all(b"async ").await?;
    ///     Ok::<_, std::io::Error>(file.into_std().await)
    /// })?;
    /// assert_eq!(pool.budget().held(), 0); // the descriptor is std's now
    /// std_file.write_all(b"then blocking")?; // at the position aopen left
    /// drop(std_file);
    /// assert_eq!(std::fs::read_to_string(dir.join("a"))?, "async then blocking");
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn into_std(mut self) -> std::fs::File {
        assert!(
            !self.poll.is_closed(),
            "aopen: File::into_std on {:?}, which poll_close closed",
            self.path
        );
        // A given-up operation's error: see the docs (nobody was told of it).
        let _ = self.settle("into_std").await;
        if self.poll.has_leftover() {
            self.poll.start_rewind(&self.lane);
            // A failed step back leaves the position where the read left it.
            let _ = self.settle("into_std").await;
        }
        let File { lane, .. } = self;
        lane.release().await.take()
    }

    /// The descriptor as a `std::fs::File` now, if no operation on this file is
    /// queued or running and none is pending from a poll method; else `Err(self)`,
    /// unchanged (tokio's `try_into_std`). Takes no pool trip. Its permit is back
    /// in the budget when it returns `Ok`.
    ///
    /// It is also `Err(self)` while a trait read keeps bytes it read ahead (the OS
    /// position is past the caller's), and after `poll_close` closed the file:
    /// [`File::into_std`] settles both.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-file-try-into-std-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("a"), "hello")?;
    /// use std::io::Read;
    ///
    /// let file = aopen::block_on(aopen::File::open(dir.join("a")))?;
    /// // Nothing queued on it: handed over at once, without a pool trip.
    /// let mut std_file = file.try_into_std().expect("nothing in flight");
    /// let mut text = String::new();
    /// std_file.read_to_string(&mut text)?;
    /// assert_eq!(text, "hello");
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    // tokio's shape: the file itself comes back, unboxed, when it is refused.
    #[allow(clippy::result_large_err)]
    pub fn try_into_std(mut self) -> Result<std::fs::File, File> {
        if !self.poll.is_settled() || self.poll.is_closed() {
            return Err(self);
        }
        match self.lane.try_release() {
            Some(std_file) => Ok(std_file),
            None => Err(self),
        }
    }

    /// Sets the file's access and modification times (`futimens(2)`), like std's
    /// `File::set_times`; times left unset in `times` are not changed. Queued in the
    /// file's lane at the call, like the other `&self` methods.
    ///
    /// [`FileTimes`](crate::fs::FileTimes) is std's, re-exported: its builder has
    /// the shape of tokio's `fs::FileTimes` (`new().set_accessed(t).set_modified(t)`).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-file-set-times-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// use std::time::{Duration, SystemTime};
    ///
    /// let then = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    /// aopen::block_on(async {
    ///     let file = aopen::File::create(dir.join("a")).await?;
    ///     let times = aopen::fs::FileTimes::new().set_accessed(then).set_modified(then);
    ///     file.set_times(times).await?;
    ///     let meta = file.metadata().await?;
    ///     assert_eq!(meta.modified()?, then);
    ///     assert_eq!(meta.accessed()?, then);
    ///     file.close().await
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_times(
        &self,
        times: FileTimes,
    ) -> impl Future<Output = io::Result<()>> + Send + 'static {
        self.queue(Effect::Plain, "futimens", move |file| file.set_times(times))
    }

    /// Sets the file's modification time, like std's `File::set_modified`: the
    /// same as [`set_times`](File::set_times) with only the modification time set.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-file-set-modified-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// use std::time::{Duration, SystemTime};
    ///
    /// let then = SystemTime::UNIX_EPOCH + Duration::from_secs(86_400);
    /// aopen::block_on(async {
    ///     let file = aopen::File::create(dir.join("a")).await?;
    ///     file.set_modified(then).await?;
    ///     assert_eq!(file.metadata().await?.modified()?, then);
    ///     file.close().await
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_modified(
        &self,
        time: SystemTime,
    ) -> impl Future<Output = io::Result<()>> + Send + 'static {
        self.queue(Effect::Plain, "futimens", move |file| {
            file.set_modified(time)
        })
    }

    /// Sets the most bytes one pool trip of this file reads or writes (default
    /// [`MAX_TRANSFER`](crate::fs::MAX_TRANSFER), 2 MiB; 0 is taken as 1).
    ///
    /// tokio's setting caps its write-behind buffer. aopen has none (a write returns
    /// once `write(2)` took the bytes), so here it caps what tokio's caps in effect:
    /// the bytes one `read`/`write` call (inherent or trait) moves in one job, and the
    /// pieces `read_exact`/`write_all` (and positional `read_at`/`write_at`) are cut
    /// into. A smaller cap means smaller owned copies and shorter jobs; a larger one,
    /// fewer trips for big buffers.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-file-max-buf-size-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// aopen::block_on(async {
    ///     let mut file = aopen::File::options()
    ///         .read(true).write(true).create(true)
    ///         .open(dir.join("a")).await?;
    ///     assert_eq!(file.max_buf_size(), aopen::fs::MAX_TRANSFER);
    ///     file.set_max_buf_size(4);
    ///     assert_eq!(file.write(b"0123456789").await?, 4); // one trip moves 4 bytes
    ///     file.write_all(b"456789").await?; // in pieces of 4, every byte
    ///     file.seek(std::io::SeekFrom::Start(0)).await?;
    ///     let mut buf = [0u8; 10];
    ///     assert_eq!(file.read(&mut buf).await?, 4);
    ///     assert_eq!(&buf[..4], b"0123");
    ///     file.set_max_buf_size(0);
    ///     assert_eq!(file.max_buf_size(), 1); // never 0
    ///     file.close().await
    /// })?;
    /// assert_eq!(std::fs::read(dir.join("a"))?, b"0123456789");
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_max_buf_size(&mut self, max_buf_size: usize) {
        self.poll.set_max_transfer(max_buf_size);
    }

    /// The most bytes one pool trip of this file reads or writes; see
    /// [`set_max_buf_size`](File::set_max_buf_size).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-file-max-buf-size-get-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let file = aopen::block_on(aopen::File::create(dir.join("a")))?;
    /// assert_eq!(file.max_buf_size(), 2 * 1024 * 1024); // tokio's default too
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn max_buf_size(&self) -> usize {
        self.poll.max_transfer()
    }
}
