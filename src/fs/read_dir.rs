//! [`ReadDir`]: a directory listing that comes from the pool in batches.
//!
//! A directory stream is a descriptor like any other: a `ReadDir` holds a permit of
//! the pool's budget from before `opendir` until after the stream is closed, and its
//! stream lives in a [`Lane`], so the close runs after the last batch and never on
//! the caller's thread. Each pool trip reads up to [`READ_DIR_BATCH`] entries; the
//! stream is closed as soon as it is exhausted (or when the `ReadDir` is dropped).

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::{FileType, Metadata};
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

#[cfg(unix)]
use super::dir::Dir;
use super::error::with_path;
use super::lane::Lane;
#[cfg(unix)]
use super::lane::Resource;
use crate::pool::{BlockingTask, Pool};
use crate::sync::DynArc as Arc;
#[cfg(unix)]
use crate::sync::OnceLock;

// Unix lists with the crate's own `readdir(3)` stream (`dir.rs`: `d_type`, `d_ino`,
// closedir's error); Windows with std's `ReadDir` (`read_dir/windows.rs`), whose
// entries carry their type from `FindNextFileW` already.
#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::open_dir;
#[cfg(windows)]
use windows::{read_batch, Dir};

/// Entries read per pool trip.
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("aopen-doc-read-dir-batch-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// use aopen::fs::READ_DIR_BATCH;
///
/// for i in 0..=READ_DIR_BATCH {
///     std::fs::write(dir.join(i.to_string()), "")?;
/// }
/// let count = aopen::block_on(async {
///     let mut entries = aopen::fs::read_dir(&dir).await?; // READ_DIR_BATCH a trip
///     let mut count = 0;
///     while entries.next_entry().await?.is_some() {
///         count += 1;
///     }
///     Ok::<_, std::io::Error>(count)
/// })?;
/// assert_eq!(count, READ_DIR_BATCH + 1); // two trips, one seamless listing
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub const READ_DIR_BATCH: usize = 256;

/// Batches a [`ReadDir`] keeps asked for ahead of the caller. With two, the pool
/// thread finds the next batch queued when it finishes one, instead of idling while
/// the caller wakes up and asks. Measured on 100,000 entries on ext4 (2 cores): one
/// batch ahead 51–64 ms, two ahead (and entries that keep only their name) 35–38 ms,
/// std's own `read_dir` 31–39 ms.
const READ_AHEAD: usize = 2;

#[cfg(unix)]
impl Resource for Dir {
    fn close(self) -> io::Result<()> {
        // `closedir`'s error, returned (std's `ReadDir` asserts on it in `Drop`).
        Dir::close(self)
    }
}

/// Opens the directory `path` as a stream, as `opendir(3)` does (`O_DIRECTORY`,
/// `O_NONBLOCK` so a FIFO swapped in cannot block the open, close-on-exec); std's
/// open retries `EINTR`.
#[cfg(unix)]
pub(crate) fn open_dir(path: &Path) -> io::Result<Dir> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    crate::sys::set_custom_flags(&mut options, crate::sys::OPEN_DIR_FLAGS);
    Dir::new(crate::sys::into_owned_fd(options.open(path)?))
}

/// Slots of [`KNOWN_TYPES`]: one per `d_type` value (`DT_*` are 4-bit).
#[cfg(unix)]
const D_TYPES: usize = 16;

/// std's `FileType` for each `d_type`, learned from the first entry of that type this
/// process listed (one `lstat` each, at most [`D_TYPES`] in all).
///
/// std has no way to make a `FileType` from a `d_type`, and [`DirEntry::file_type`]
/// returns std's type; a `FileType` says only the type, so one learned from any
/// entry of a type serves every entry of it. (Its `==` also compares the permission
/// bits of the entry it came from; std's own `FileType`s from a listing and from a
/// `stat` already differ there.)
#[cfg(unix)]
static KNOWN_TYPES: [OnceLock<FileType>; D_TYPES] = [NOT_LEARNED; D_TYPES];

/// An entry of [`KNOWN_TYPES`] before its type is learned. A `const`, not an
/// inline `const { }` block, which the crate's MSRV (1.75) lacks; each array element
/// is a copy of its own, which is what the lint warns about and what we want.
#[cfg(unix)]
#[allow(clippy::declare_interior_mutable_const)]
const NOT_LEARNED: OnceLock<FileType> = OnceLock::new();

#[cfg(unix)]
use crate::sys::d_type_of;

/// The type of the entry `name` of `dir` that the listing gave as `d_type`; `None` if
/// the file system gave none (or the entry vanished before its first-of-a-type
/// `lstat`): [`DirEntry::file_type`] then asks with `lstat`.
#[cfg(unix)]
fn file_type_from(d_type: u8, dir: &Path, name: &OsStr) -> Option<FileType> {
    let slot = KNOWN_TYPES.get(usize::from(d_type))?;
    if d_type == crate::sys::DT_UNKNOWN {
        return None;
    }
    if let Some(known) = slot.get() {
        return Some(*known);
    }
    let file_type = std::fs::symlink_metadata(dir.join(name)).ok()?.file_type();
    // Learn it only if the entry is still what the listing said (not swapped since).
    if d_type_of(file_type) == d_type {
        let _ = slot.set(file_type);
    }
    Some(file_type)
}

/// What one pool trip brings back: entries, and whether the stream is exhausted.
struct Batch {
    entries: Vec<io::Result<RawEntry>>,
    /// Every entry's name, one after another (see [`RawEntry::name`]).
    names: Vec<u8>,
    exhausted: bool,
}

/// An entry as the pool thread read it; [`ReadDir`] turns it into a [`DirEntry`].
///
/// The names of a batch travel in one buffer: the pool thread allocates one per
/// batch instead of one per entry, and every per-entry allocation happens on the
/// caller's thread, which also frees it, so no allocation crosses threads (which in
/// glibc means the two threads contend for the pool thread's arena). Measured on
/// 100,000 entries (2 cores, 6 runs, the bench's `readdir-100k` child): one name
/// allocation per entry on the pool, freed by the caller, 37–47 ms wall and 51–55 ms
/// CPU; packed names 36–39 ms and 40–44 ms; std's own loop 32–33 ms.
struct RawEntry {
    /// `names[name.0..name.1]` of its batch.
    name: (usize, usize),
    #[cfg(unix)]
    ino: u64,
    file_type: Option<FileType>,
}

/// The entries of a directory; made by [`read_dir`](super::read_dir).
///
/// While the caller works through one batch, the next ones are already being read on
/// the pool (read-ahead). A batch that was asked for belongs to the
/// `ReadDir`, not to a `next_entry` future, so cancelling `next_entry` loses no
/// entries: the next call picks the batch up.
///
/// A `ReadDir` holds one descriptor, and so one permit of its pool's budget, until
/// the listing is exhausted or the `ReadDir` is dropped; both queue the close on the
/// pool.
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("aopen-doc-read-dir-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # std::fs::write(dir.join("a"), "")?;
/// # std::fs::write(dir.join("b"), "")?;
/// # std::fs::write(dir.join("c"), "")?;
/// let pool = aopen::Pool::builder().max_threads(2).descriptor_budget(4).build()?;
/// aopen::block_on(async {
///     let mut entries = pool.fs().read_dir(&dir).await?;
///     assert_eq!(pool.budget().held(), 1); // the open directory stream
///     let mut files = 0;
///     while let Some(entry) = entries.next_entry().await? {
///         if entry.file_type().await?.is_file() {
///             files += 1;
///         }
///     }
///     assert_eq!(files, 3);
///     drop(entries); // exhausted: the stream is closed, or being closed, on the pool
///     pool.shutdown(std::time::Duration::from_secs(5))?; // waits for that close
///     assert_eq!(pool.budget().held(), 0);
///     Ok::<(), std::io::Error>(())
/// })?;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct ReadDir {
    /// The open stream, until it is exhausted.
    lane: Option<Lane<Dir>>,
    /// Batches asked for and not yet taken, oldest first (at most [`READ_AHEAD`]).
    pending: VecDeque<BlockingTask<Batch>>,
    /// Entries fetched and not yet handed out.
    buffered: VecDeque<io::Result<RawEntry>>,
    /// The names of the entries in `buffered` (they all come from one batch).
    names: Vec<u8>,
    path: Arc<Path>,
    /// Shared by every entry (one reference count, not a pool handle per entry).
    pool: Arc<Pool>,
}

impl ReadDir {
    pub(crate) fn new(lane: Lane<Dir>, path: Arc<Path>, pool: Pool) -> ReadDir {
        let mut read_dir = ReadDir {
            lane: Some(lane),
            pending: VecDeque::with_capacity(READ_AHEAD),
            buffered: VecDeque::new(),
            names: Vec::new(),
            path,
            pool: Arc::new(pool),
        };
        read_dir.read_ahead();
        read_dir
    }

    /// Queues batch reads until [`READ_AHEAD`] are asked for (none once the stream
    /// is done). They run in order in the stream's lane.
    fn read_ahead(&mut self) {
        if let Some(lane) = &self.lane {
            while self.pending.len() < READ_AHEAD {
                let path = self.path.clone();
                self.pending
                    .push_back(lane.submit(move |dir| read_batch(dir, &path)));
            }
        }
    }

    /// The next entry, or `None` when the directory is exhausted. `.` and `..` are
    /// skipped.
    ///
    /// An error from `readdir(3)` is returned once; like std's `ReadDir`, the listing
    /// ends after it (the next call returns `Ok(None)`).
    ///
    /// Cancel-safe: if this future is dropped, the batch it was waiting for stays with
    /// the `ReadDir`, and the next call returns its entries.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-next-entry-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("only"), "")?;
    /// aopen::block_on(async {
    ///     let mut entries = aopen::fs::read_dir(&dir).await?;
    ///     let first = entries.next_entry().await?.expect("one entry");
    ///     assert_eq!(first.file_name(), "only");
    ///     assert!(entries.next_entry().await?.is_none()); // and after the end: None again
    ///     assert!(entries.next_entry().await?.is_none());
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn next_entry(&mut self) -> io::Result<Option<DirEntry>> {
        std::future::poll_fn(|cx| self.poll_next_entry(cx)).await
    }

    /// The poll form of [`next_entry`](Self::next_entry), shaped like tokio's: `Ready`
    /// with the next entry, `Ok(None)` when the directory is exhausted, or `Pending`
    /// (and `cx` is woken) while the next batch is on its way.
    ///
    /// Batches asked for belong to the `ReadDir`, so giving up after a `Pending`
    /// loses no entries: the next poll picks the batch up.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-poll-next-entry-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("only"), "")?;
    /// use std::future::poll_fn;
    ///
    /// aopen::block_on(async {
    ///     let mut entries = aopen::fs::read_dir(&dir).await?;
    ///     // What `next_entry` does; a hand-written `Stream` or `poll_*` method calls it so.
    ///     let entry = poll_fn(|cx| entries.poll_next_entry(cx)).await?.unwrap();
    ///     assert_eq!(entry.file_name(), "only");
    ///     assert!(poll_fn(|cx| entries.poll_next_entry(cx)).await?.is_none());
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn poll_next_entry(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<DirEntry>>> {
        loop {
            if let Some(entry) = self.buffered.pop_front() {
                return Poll::Ready(match entry {
                    Ok(raw) => Ok(Some(DirEntry {
                        dir: self.path.clone(),
                        // SAFETY: on Unix any bytes are an `OsStr`; on Windows
                        // `names[name.0..name.1]` are the encoded bytes of one whole
                        // name, pushed by `read_dir/windows.rs` in this process.
                        name: unsafe {
                            OsStr::from_encoded_bytes_unchecked(&self.names[raw.name.0..raw.name.1])
                        }
                        .to_owned(),
                        #[cfg(unix)]
                        ino: raw.ino,
                        file_type: raw.file_type,
                        pool: self.pool.clone(),
                    })),
                    Err(err) => Err(with_path("read directory", &self.path, err)),
                });
            }
            self.read_ahead();
            let Some(oldest) = self.pending.front_mut() else {
                return Poll::Ready(Ok(None));
            };
            // The batch stays in `pending` until it is ready, so a `Pending` here
            // loses nothing.
            let batch = ready!(Pin::new(oldest).poll(cx));
            self.pending.pop_front();
            if batch.exhausted {
                // Dropping the lane queues the close behind the batches asked for;
                // those that have not run yet are skipped when dropped here.
                self.lane = None;
                self.pending.clear();
            } else {
                // Keep the pool reading while the caller works through this batch.
                self.read_ahead();
            }
            // `buffered` is empty here, so no entry still points into the old names.
            self.buffered.extend(batch.entries);
            self.names = batch.names;
        }
    }
}

/// With the `futures-io` feature, a `ReadDir` is a [`Stream`](futures_core::Stream) of
/// entries (each an `io::Result`), so `StreamExt`'s combinators work on it. It is the
/// same machinery as [`next_entry`](ReadDir::next_entry): a dropped `next()` loses no
/// entries.
///
/// ```
/// # aopen::block_on(async {
/// use futures::StreamExt;
///
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("a.txt"), "a")?;
/// let entries: Vec<_> = aopen::fs::read_dir(dir.path()).await?.collect().await;
/// let names: Vec<_> = entries.into_iter().map(|entry| entry.map(|e| e.file_name())).collect::<Result<_, _>>()?;
/// assert_eq!(names, ["a.txt"]);
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
#[cfg(feature = "futures-io")]
#[cfg_attr(docsrs, doc(cfg(feature = "futures-io")))]
impl futures_core::Stream for ReadDir {
    type Item = io::Result<DirEntry>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // `ReadDir` is `Unpin`: its state is tasks and queues, nothing self-referential.
        self.get_mut().poll_next_entry(cx).map(Result::transpose)
    }
}

/// Ended once the directory is exhausted (and every entry was handed out).
#[cfg(feature = "futures-io")]
#[cfg_attr(docsrs, doc(cfg(feature = "futures-io")))]
impl futures_core::FusedStream for ReadDir {
    fn is_terminated(&self) -> bool {
        self.lane.is_none() && self.pending.is_empty() && self.buffered.is_empty()
    }
}

/// One pool trip: up to [`READ_DIR_BATCH`] entries of the stream of `path`. An error
/// ends the listing (as std's `ReadDir` does): it is the batch's last entry.
#[cfg(unix)]
fn read_batch(stream: &mut Dir, path: &Path) -> Batch {
    let mut entries = Vec::with_capacity(READ_DIR_BATCH);
    let mut names = Vec::with_capacity(READ_DIR_BATCH * 16);
    let mut exhausted = false;
    for _ in 0..READ_DIR_BATCH {
        match stream.next_raw() {
            Ok(Some(entry)) => {
                let start = names.len();
                names.extend_from_slice(entry.name.to_bytes());
                let name = crate::sys::os_str_from_bytes(&names[start..]);
                let file_type = file_type_from(entry.d_type, path, name);
                entries.push(Ok(RawEntry {
                    name: (start, names.len()),
                    ino: entry.ino,
                    file_type,
                }));
            }
            Ok(None) => {
                // The end, or a directory removed while it was listed (glibc
                // reports that `ENOENT` as the end): say which.
                match stream.removed() {
                    Ok(false) => {}
                    Ok(true) => entries.push(Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        "the directory was removed while it was being listed: \
                         entries may be missing",
                    ))),
                    Err(err) => entries.push(Err(err)),
                }
                exhausted = true;
                break;
            }
            Err(err) => {
                entries.push(Err(err));
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

impl fmt::Debug for ReadDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadDir")
            .field("path", &self.path)
            .field("open", &self.lane.is_some())
            .field("buffered", &self.buffered.len())
            .field("reading_ahead", &self.pending.len())
            .finish()
    }
}

/// One entry of a [`ReadDir`], shaped like tokio's.
///
/// The name, inode number and (usually) type come with the listing; [`metadata`]
/// (and [`file_type`] when the file system did not give the type) is one `lstat(2)`
/// on the pool. An entry holds no descriptor.
///
/// [`metadata`]: DirEntry::metadata
/// [`file_type`]: DirEntry::file_type
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("aopen-doc-dir-entry-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # std::fs::write(dir.join("file.txt"), "four")?;
/// std::fs::create_dir(dir.join("sub"))?;
/// aopen::block_on(async {
///     let mut entries = aopen::fs::read_dir(&dir).await?;
///     while let Some(entry) = entries.next_entry().await? {
///         assert_eq!(entry.path(), dir.join(entry.file_name()));
///         assert!(entry.ino() > 0);
///         let kind = entry.file_type().await?; // no pool trip when the listing had it
///         match entry.file_name().to_str() {
///             Some("file.txt") => {
///                 assert!(kind.is_file());
///                 assert_eq!(entry.metadata().await?.len(), 4);
///             }
///             Some("sub") => assert!(kind.is_dir()),
///             other => unreachable!("{other:?}"),
///         }
///     }
///     Ok::<(), std::io::Error>(())
/// })?;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct DirEntry {
    /// The directory's path as given to `read_dir`, shared by its entries.
    dir: Arc<Path>,
    name: OsString,
    #[cfg(unix)]
    ino: u64,
    /// The type the listing gave (`d_type`), if it gave one.
    file_type: Option<FileType>,
    /// The pool of the `ReadDir` it came from.
    pool: Arc<Pool>,
}

impl DirEntry {
    /// The full path: the directory's path joined with [`file_name`](Self::file_name).
    /// See the [type's example](DirEntry#examples) for this and the other accessors.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-dir-entry-path-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("a.txt"), "")?;
    /// aopen::block_on(async {
    ///     let mut entries = aopen::fs::read_dir(&dir).await?;
    ///     let entry = entries.next_entry().await?.expect("one entry");
    ///     assert_eq!(entry.path(), dir.join("a.txt")); // the directory as given, joined
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    /// The entry's name within its directory.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-dir-entry-file-name-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("a.txt"), "")?;
    /// aopen::block_on(async {
    ///     let mut entries = aopen::fs::read_dir(&dir).await?;
    ///     let entry = entries.next_entry().await?.expect("one entry");
    ///     assert_eq!(entry.file_name(), "a.txt"); // the name alone, no directory
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn file_name(&self) -> OsString {
        self.name.clone()
    }

    /// The inode number the listing gave. Unix only (a Windows listing gives none).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-dir-entry-ino-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("a.txt"), "")?;
    /// use std::os::unix::fs::MetadataExt;
    ///
    /// aopen::block_on(async {
    ///     let mut entries = aopen::fs::read_dir(&dir).await?;
    ///     let entry = entries.next_entry().await?.expect("one entry");
    ///     let inode = entry.ino(); // from the listing itself: no stat, no pool trip
    ///     assert_eq!(inode, std::fs::metadata(entry.path())?.ino());
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(unix)]
    #[cfg_attr(docsrs, doc(cfg(unix)))]
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// The entry's type, without following symlinks. Answered without a pool trip
    /// when the listing gave the type.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-dir-entry-file-type-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// std::os::unix::fs::symlink("nowhere", dir.join("link"))?;
    /// aopen::block_on(async {
    ///     let mut entries = aopen::fs::read_dir(&dir).await?;
    ///     let entry = entries.next_entry().await?.unwrap();
    ///     assert!(entry.file_type().await?.is_symlink()); // the link, not its target
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn file_type(&self) -> io::Result<FileType> {
        if let Some(file_type) = self.file_type {
            return Ok(file_type);
        }
        Ok(self.metadata().await?.file_type())
    }

    /// The entry's metadata, without following symlinks (`lstat(2)`), like std's.
    ///
    /// It is an `lstat` of the entry's full [`path`](DirEntry::path): a `ReadDir`
    /// gives its descriptor and permit back once it is exhausted, so the entry has no
    /// directory descriptor to `fstatat` against, as std's (which keep the directory
    /// open while any entry lives) do. Where every lookup reaches the server (a mount
    /// without lookup caching) that is one round trip more per entry: on the slow
    /// FUSE mount of `benches/sweep.rs`, 3 instead of 2, about 1.5× the peers' time
    /// for a listing with a stat of each entry. To list *and* stat, use
    /// [`fs::walk`](crate::fs::walk) with `max_depth(1)`: it stats each entry
    /// relative to the directory's descriptor, in the same pool trip as the names.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-dir-entry-metadata-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("abc"), "abc")?;
    /// aopen::block_on(async {
    ///     let mut entries = aopen::fs::read_dir(&dir).await?;
    ///     let entry = entries.next_entry().await?.unwrap();
    ///     assert_eq!(entry.metadata().await?.len(), 3);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn metadata(&self) -> io::Result<Metadata> {
        let path = self.path();
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
            .field("path", &self.path())
            .finish()
    }
}
