//! [`walk`]: an asynchronous walk of a directory tree, its directories read in
//! parallel on the pool.
//!
//! # The problem
//!
//! A backup or a tree compare stats every file of a tree of millions. Listing and
//! stat'ing one directory after another leaves a slow mount idle between calls; a
//! future per file costs more than a cached `stat` itself; and a walk that reads
//! ahead without limit holds the whole tree in memory and every descriptor it may.
//!
//! # The answer
//!
//! - **Unit of work: one directory.** A pool job opens it (holding a budget permit
//!   from before the open until after the close), reads every name, and stats each
//!   entry relative to the directory's own descriptor (`statx(dirfd, name)` through
//!   std's `DirEntry::metadata`, so no path is resolved again per file). A directory
//!   of more than [`STAT_CHUNK`] entries is stat'ed in chunks, relative to the same
//!   open directory: the directory's job stats the first, and the others wait in the
//!   walk's chunk queue for one of at most [`MAX_CHUNK_RUNNERS`] runner jobs. A
//!   directory that opened slowly (a slow mount, where each stat is a round trip) is
//!   split into up to [`SLOW_DIR_PARTS`] parts, one per entry for most, so its stats
//!   are in flight at once; in an unsorted walk each entry is handed to the runners
//!   as it is read, so the stats do not wait for the rest of the listing (more round
//!   trips), and a subdirectory the listing says is one is entered at once, before
//!   its stat, when entering needs nothing of the stat (links not followed, any
//!   file system). The last chunk's end closes the directory and gives the
//!   permit back. Each chunk is one part of the directory's
//!   [`Listing`](job::Listing), put in the walk's mailbox (see `job.rs`). No
//!   descriptor ever leaves the pool.
//! - **Who owns the queue: the [`Walk`].** It keeps the directories still to read
//!   (`todo`: a stack, or in a sorted walk a heap ordered by position in the output)
//!   and starts their jobs from its own `poll`: as many directories in flight as
//!   hold about [`MAX_ENTRIES_IN_FLIGHT`] entries at the average directory size
//!   (at most [`MAX_DIRS_IN_FLIGHT`]), and as many as the budget has permits for.
//!   Jobs start only runners for chunks of their own directory: the subdirectories a listing
//!   names go to `todo` when the walk takes the listing in.
//! - **Back-pressure.** The walk starts no directory while [`MAX_BUFFERED_ENTRIES`] or
//!   more entries wait to be handed out (in a sorted walk it still starts the one its
//!   next entry waits for). So a consumer that stops reading stops the walk with at
//!   most `MAX_BUFFERED_ENTRIES` entries waiting plus the directories in flight (about
//!   `MAX_ENTRIES_IN_FLIGHT` entries, more while the average misjudges a large
//!   directory: each is read whole): memory grows with the largest directories,
//!   never with the tree.
//! - **The root** is stat'ed by a job of its own (its listing has the root as its
//!   only item); an unsorted walk that needs nothing of the stat to enter the root
//!   opens it at the same time, and an open that failed is an error only if the
//!   stat says the root is a directory (`job::RootOpen`).
//! - **A directory before its contents**, sorted or not: a directory entered before
//!   its own entry was delivered (early, or the root) holds its parts at a
//!   `job::EntryGate` until the part with its entry is in the mailbox.
//! - **When it ends.** When nothing is left to hand out, no directory is in flight
//!   and `todo` is empty; a sorted walk ends when its last frame is done, which
//!   implies the same. A dropped walk sets `stopped`: jobs that have not started
//!   return at once (dropping their entries and permit, on the pool), running ones
//!   stop within `STOP_CHECK_EVERY` entries or at their chunk's end and close their
//!   directory on the pool.
//!
//! `sorted(true)` reads ahead in the same way, but hands entries out depth first,
//! each directory's entries in name order and a directory's contents right after it
//! (walkdir's `sort_by_file_name` order). Each listing waits in `arrived` until the
//! output reaches it, and `todo` is ordered by each directory's *index path* (its
//! position in its parent, its parent's position, ...), as jwalk orders its queue, so
//! the directories read first are those the output needs first.
//!
//! A walk hands out at most [`COOP_BUDGET`] ready entries in a row, then yields once
//! (waking itself), so a task that consumes a walk whose entries are all buffered
//! still lets a ticker on the same executor run.
//!
//! The walk's thread is the caller's event loop, so its `poll` does little besides
//! moving entries: it never waits for a job's lock while it has entries to hand out
//! (its periodic look at the mailbox is a `try_lock`; it locks only when it has
//! nothing else to do), and it frees none of the jobs' buffers. glibc frees a block
//! into the arena of the thread that allocated it, under that arena's lock: `perf`
//! showed the loop of the tree compare asleep in `_int_free` a few hundred times a
//! run, behind pool threads preempted while holding the lock. So listing buffers the
//! walk has emptied wait in the mailbox (`Spent`) until the next job that delivers
//! frees them: at most the buffers of the listings handed out since the last
//! delivery, which the walk already held.

mod job;
mod listing;

pub use self::job::{MAX_CHUNK_RUNNERS, SLOW_DIR_PARTS, STAT_CHUNK};

use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::ffi::OsStr;
use std::fmt;
use std::fs::{FileType, Metadata};
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use self::job::{ChunkQueue, DirTask, Item, Listing};
use super::resolve_pool;
use crate::budget::Acquire;
use crate::pool::job::Detached;
use crate::pool::Pool;
use crate::sync::{lock, try_lock, AtomicBool, AtomicUsize, DynArc as Arc, Mutex, Ordering};

/// The most directory jobs one walk has in flight (queued on the pool or running).
/// Enough for a slow mount (at 5 ms a call, 256 directories stat'ing at once keep
/// 256 requests in flight), few enough that a cached tree does not queue its whole
/// breadth. The budget's free permits bound it further.
pub const MAX_DIRS_IN_FLIGHT: usize = 256;

/// About how many entries the directories in flight may hold: the walk has at most
/// this over the average directory's entries seen so far in flight (at least one,
/// at most [`MAX_DIRS_IN_FLIGHT`]). More in flight is more throughput on a slow
/// mount and costs a cached tree nothing but memory, so this bounds the memory.
pub const MAX_ENTRIES_IN_FLIGHT: usize = 16 * 1024;

/// The walk starts no new directory while this many entries wait to be handed out.
pub const MAX_BUFFERED_ENTRIES: usize = 16 * 1024;

/// Ready entries a walk hands out in a row before it yields to its executor once.
pub const COOP_BUDGET: usize = 128;

/// Entries handed out between two looks at the mailbox while entries are ready, so
/// listings that arrived meanwhile get their subdirectories started.
const COLLECT_EVERY: usize = 64;

/// The id of the root's listing (a stat of the root, its single item).
const ROOT_ID: u64 = 0;

/// What the jobs of a walk need to know of its options.
#[derive(Clone, Copy, Debug)]
struct Config {
    max_depth: usize,
    follow_links: bool,
    same_file_system: bool,
    metadata: bool,
    sorted: bool,
}

/// Options for a walk, shaped like walkdir's; [`walk`](WalkOptions::walk) starts it.
///
/// # Examples
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// std::fs::create_dir_all(dir.path().join("a/b/c"))?;
/// std::fs::write(dir.path().join("a/one"), "1")?;
/// let paths = aopen::block_on(async {
///     let mut walk = aopen::fs::WalkOptions::new().max_depth(2).sorted(true).walk(dir.path());
///     let mut paths = Vec::new();
///     while let Some(entry) = walk.next_entry().await? {
///         paths.push(entry.path().strip_prefix(dir.path()).unwrap().to_path_buf());
///     }
///     Ok::<_, std::io::Error>(paths)
/// })?;
/// // The root first (depth 0), then depth first, in name order, down to depth 2.
/// assert_eq!(paths, ["", "a", "a/b", "a/one"].map(std::path::PathBuf::from));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct WalkOptions {
    config: Config,
    pool: Option<Pool>,
}

impl Default for WalkOptions {
    fn default() -> Self {
        WalkOptions::new()
    }
}

impl WalkOptions {
    /// The defaults: no depth limit, symlinks not followed, across file systems,
    /// with metadata, in the order directories come back (not sorted; a directory
    /// always comes before its contents), on the global pool.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut options = aopen::fs::WalkOptions::new();
    /// options.max_depth(1); // setters take and return `&mut`, like `OpenOptions`
    /// let _walk = options.walk(std::env::temp_dir());
    /// ```
    pub fn new() -> WalkOptions {
        WalkOptions {
            config: Config {
                max_depth: usize::MAX,
                follow_links: false,
                same_file_system: false,
                metadata: true,
                sorted: false,
            },
            pool: None,
        }
    }

    /// Entries deeper than `depth` are not handed out (the root is depth 0, its
    /// entries 1); directories at `depth` are not read. `0`: the root alone.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// std::fs::create_dir_all(dir.path().join("a/b"))?;
    /// let depths = aopen::block_on(async {
    ///     let mut walk = aopen::fs::WalkOptions::new().max_depth(1).walk(dir.path());
    ///     let mut depths = Vec::new();
    ///     while let Some(entry) = walk.next_entry().await? {
    ///         depths.push(entry.depth());
    ///     }
    ///     Ok::<_, std::io::Error>(depths)
    /// })?;
    /// assert_eq!(depths, [0, 1]); // the root and `a`; `a/b` is too deep
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn max_depth(&mut self, depth: usize) -> &mut Self {
        self.config.max_depth = depth;
        self
    }

    /// Follow symlinks: an entry that is a link is reported as what it points to
    /// (its type and metadata), and a link to a directory is walked into. A link
    /// that leads back to one of its own ancestors is an error for that entry (a
    /// loop), never an endless walk; a dangling link is an error too. Ancestors are
    /// told apart by device and inode (on Windows, by canonical path).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// std::fs::create_dir(dir.path().join("sub"))?;
    /// std::os::unix::fs::symlink("..", dir.path().join("sub/up"))?; // a loop
    /// let (entries, errors) = aopen::block_on(async {
    ///     let mut walk = aopen::fs::WalkOptions::new().follow_links(true).walk(dir.path());
    ///     let (mut entries, mut errors) = (0, 0);
    ///     while let Some(entry) = walk.next_entry().await.transpose() {
    ///         match entry {
    ///             Ok(_) => entries += 1,
    ///             Err(_) => errors += 1,
    ///         }
    ///     }
    ///     (entries, errors)
    /// });
    /// assert_eq!((entries, errors), (2, 1)); // the root, `sub`, and the loop `sub/up`
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn follow_links(&mut self, yes: bool) -> &mut Self {
        self.config.follow_links = yes;
        self
    }

    /// Stay on the root's file system: a directory on another device (a mount
    /// point) is handed out, but not walked into. Unix only: on Windows std has no
    /// stable volume id, and this option changes nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut walk = aopen::fs::WalkOptions::new().same_file_system(true).max_depth(1).walk("/");
    /// let found_proc = aopen::block_on(async {
    ///     while let Some(entry) = walk.next_entry().await? {
    ///         if entry.path() == std::path::Path::new("/proc") {
    ///             return Ok::<_, std::io::Error>(true); // listed, never entered
    ///         }
    ///     }
    ///     Ok(false)
    /// })?;
    /// # let _ = found_proc;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn same_file_system(&mut self, yes: bool) -> &mut Self {
        self.config.same_file_system = yes;
        self
    }

    /// Stat every entry (on by default): [`WalkEntry::metadata`] is then `Some`.
    /// Off, the walk reads names and types only (the type from the listing where the
    /// file system gives it), which is cheaper.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut walk = aopen::fs::WalkOptions::new().metadata(false).max_depth(0).walk("/");
    /// let root = aopen::block_on(walk.next_entry())?.expect("the root");
    /// assert!(root.metadata().is_none() && root.file_type().is_dir());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn metadata(&mut self, yes: bool) -> &mut Self {
        self.config.metadata = yes;
        self
    }

    /// Hand entries out depth first, each directory's entries in name order (byte
    /// order), a directory's contents right after it: walkdir's
    /// `sort_by_file_name` order. Directories are still read ahead in parallel.
    ///
    /// # Examples
    ///
    /// See [`WalkOptions`].
    pub fn sorted(&mut self, yes: bool) -> &mut Self {
        self.config.sorted = yes;
        self
    }

    /// Run the walk's jobs on `pool`, with its budget (by default, the global pool).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = aopen::Pool::builder().max_threads(2).descriptor_budget(2).build()?;
    /// let mut walk = aopen::fs::WalkOptions::new().pool(&pool).walk(std::env::temp_dir());
    /// assert!(aopen::block_on(walk.next_entry())?.is_some());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pool(&mut self, pool: &Pool) -> &mut Self {
        self.pool = Some(pool.clone());
        self
    }

    /// Starts walking `root`. Nothing runs until the first
    /// [`next_entry`](Walk::next_entry); the root itself is the first entry (depth 0).
    ///
    /// # Examples
    ///
    /// See [`WalkOptions`].
    pub fn walk(&self, root: impl AsRef<Path>) -> Walk {
        let (pool, error) = match resolve_pool(self.pool.clone()) {
            Ok(pool) => (Some(pool), None),
            Err(err) => (None, Some(err)),
        };
        let shared = Arc::new(Shared {
            config: self.config,
            stopped: AtomicBool::new(false),
            mailbox: Mutex::new(Mailbox {
                listings: VecDeque::new(),
                waker: None,
                spent: Vec::new(),
            }),
            progress: Counters::default(),
            chunks: ChunkQueue::new(),
            types_need_a_stat: AtomicBool::new(false),
            root_open: job::RootOpen::new(),
        });
        let output = if self.config.sorted {
            Output::Sorted {
                frames: Vec::new(),
                waiting_for: Some((ROOT_ID, 0)),
                arrived: HashMap::new(),
            }
        } else {
            Output::Unsorted {
                current: Vec::new().into_iter(),
                arrived: VecDeque::new(),
            }
        };
        Walk {
            shared,
            pool,
            error,
            root: Some(root.as_ref().to_path_buf()),
            todo: if self.config.sorted {
                Todo::Ordered(BinaryHeap::new())
            } else {
                Todo::Stack(Vec::new())
            },
            keys: HashMap::new(),
            in_flight: 0,
            parts_left: HashMap::new(),
            listed_dirs: 0,
            listed_entries: 0,
            buffered: 0,
            acquire: None,
            next_id: ROOT_ID + 1,
            output,
            ready_in_a_row: 0,
            since_collect: 0,
            spent: Vec::new(),
        }
    }
}

/// What a walk and its jobs share.
struct Shared {
    config: Config,
    /// Set when the walk is dropped: jobs skip or stop their work.
    stopped: AtomicBool,
    mailbox: Mutex<Mailbox>,
    progress: Counters,
    /// Chunks of directories being read, waiting for a runner.
    chunks: ChunkQueue,
    /// Set once a listing's entry took a round trip to tell its type (the file
    /// system's listing has no types): slow directories then stop descending into
    /// subdirectories before their stat (see `job::read_directory`).
    types_need_a_stat: AtomicBool,
    /// What the root's stat and its open, which may run at once, tell each other.
    root_open: job::RootOpen,
}

/// Where jobs put their listings for the walk to take.
struct Mailbox {
    /// Listings done and not yet taken by the walk, in the order they finished.
    listings: VecDeque<Listing>,
    /// The walk's waker, while it waits for a listing.
    waker: Option<Waker>,
    /// Buffers the walk is done with, for the next job that delivers to free.
    spent: Vec<Spent>,
}

/// A buffer a pool job allocated that the walk has emptied. The walk hands these to
/// the jobs to free instead of freeing them itself: glibc frees a block into the
/// arena of the thread that allocated it, under that arena's lock, and a large block
/// may make it consolidate the arena's free lists. On the walk's thread that was
/// time on the loop, and sleeping on the lock while a preempted pool thread held it
/// (seen with `perf` in the tree compare: the loop asleep in `_int_free`).
// The fields are only held, to be dropped where the jobs run.
#[allow(dead_code)]
enum Spent {
    Items(std::vec::IntoIter<Item>),
    Children(Vec<(u32, DirTask)>),
    Listings(VecDeque<Listing>),
}

/// What the jobs have seen so far (see [`WalkProgress`]).
#[derive(Default)]
struct Counters {
    dirs: AtomicUsize,
    files: AtomicUsize,
    bytes: AtomicUsize,
    errors: AtomicUsize,
}

impl Counters {
    /// Counts a listing's items: one add per counter per listing.
    fn count(&self, listing: &Listing) {
        let (mut dirs, mut files, mut bytes, mut errors) = (0, 0, 0u64, 0);
        for item in &listing.items {
            match &item.entry {
                Ok(entry) if entry.file_type.is_dir() => dirs += 1,
                Ok(entry) => {
                    files += 1;
                    bytes += entry.metadata.as_ref().map_or(0, Metadata::len);
                }
                Err(_) => errors += 1,
            }
        }
        self.dirs.fetch_add(dirs, Ordering::Relaxed);
        self.files.fetch_add(files, Ordering::Relaxed);
        let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.errors.fetch_add(errors, Ordering::Relaxed);
    }
}

/// What a walk has seen so far: what its jobs read, whether handed out yet or not.
///
/// # Examples
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("a"), "four")?;
/// let mut walk = aopen::fs::walk(dir.path());
/// aopen::block_on(async {
///     while walk.next_entry().await?.is_some() {}
///     Ok::<(), std::io::Error>(())
/// })?;
/// let progress = walk.progress();
/// assert_eq!((progress.dirs, progress.files, progress.bytes, progress.errors), (1, 1, 4, 0));
/// println!("{progress:?}"); // WalkProgress { dirs: 1, files: 1, bytes: 4, errors: 0 }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalkProgress {
    /// Directories seen (the root included), read or not yet.
    pub dirs: u64,
    /// Entries seen that are not directories.
    pub files: u64,
    /// The sizes of those entries, summed (0 for each without metadata).
    pub bytes: u64,
    /// Errors seen: unreadable directories, vanished entries, loops.
    pub errors: u64,
}

/// One entry of a [`Walk`]: its path, depth, type and (unless turned off) metadata,
/// all read on the pool already.
///
/// # Examples
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("a.txt"), "four")?;
/// let mut walk = aopen::fs::walk(dir.path());
/// let root = aopen::block_on(walk.next_entry())?.unwrap();
/// assert_eq!((root.path(), root.depth()), (dir.path(), 0));
/// let file = aopen::block_on(walk.next_entry())?.unwrap();
/// assert_eq!(file.file_name(), "a.txt");
/// assert_eq!(file.depth(), 1);
/// assert!(file.file_type().is_file());
/// assert_eq!(file.metadata().map(|m| m.len()), Some(4));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct WalkEntry {
    path: PathBuf,
    depth: usize,
    file_type: FileType,
    metadata: Option<Metadata>,
}

impl WalkEntry {
    /// The entry's path: the root as given, joined with the names below it.
    ///
    /// # Examples
    ///
    /// See [`WalkEntry`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path, by value.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut walk = aopen::fs::WalkOptions::new().max_depth(0).walk("/");
    /// let root = aopen::block_on(walk.next_entry())?.unwrap();
    /// assert_eq!(root.into_path(), std::path::PathBuf::from("/"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_path(self) -> PathBuf {
        self.path
    }

    /// The last component of the path (the root's whole path if it has none, as
    /// walkdir does).
    ///
    /// # Examples
    ///
    /// See [`WalkEntry`].
    pub fn file_name(&self) -> &OsStr {
        self.path.file_name().unwrap_or(self.path.as_os_str())
    }

    /// How deep the entry is: the root is 0, its entries 1.
    ///
    /// # Examples
    ///
    /// See [`WalkEntry`].
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// The entry's type, not following a symlink (unless links are followed).
    ///
    /// # Examples
    ///
    /// See [`WalkEntry`].
    pub fn file_type(&self) -> FileType {
        self.file_type
    }

    /// The entry's metadata, `lstat`-like (what a symlink points to when links are
    /// followed, and for the root, which is always followed); `None` when metadata
    /// is turned off.
    ///
    /// # Examples
    ///
    /// See [`WalkEntry`].
    pub fn metadata(&self) -> Option<&Metadata> {
        self.metadata.as_ref()
    }
}

/// Directories still to read.
enum Todo {
    /// Unsorted: last found, first read (depth first keeps `todo` small).
    Stack(Vec<DirTask>),
    /// Sorted: the directory the output needs first, first.
    Ordered(BinaryHeap<Queued>),
}

/// A directory in a sorted walk's `todo`, ordered by its index path.
struct Queued {
    key: Arc<[u32]>,
    task: DirTask,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        // `BinaryHeap` pops the greatest: the smallest index path must be greatest.
        other.key.cmp(&self.key)
    }
}

impl Todo {
    fn peek_id(&self) -> Option<u64> {
        match self {
            Todo::Stack(stack) => stack.last().map(|task| task.id),
            Todo::Ordered(heap) => heap.peek().map(|queued| queued.task.id),
        }
    }

    fn pop(&mut self) -> Option<DirTask> {
        match self {
            Todo::Stack(stack) => stack.pop(),
            Todo::Ordered(heap) => heap.pop().map(|queued| queued.task),
        }
    }

    fn is_empty(&self) -> bool {
        self.peek_id().is_none()
    }
}

/// One part of a directory's listing in a sorted walk, being handed out.
struct Frame {
    part: Part,
    /// How many parts the directory's listing has.
    parts: u32,
    items: std::vec::IntoIter<Item>,
    /// The ids of the listings of the items that `descend`, in order.
    children: std::vec::IntoIter<u64>,
}

/// Listings taken in, and the order they are handed out in.
enum Output {
    /// In the order listings arrive.
    Unsorted {
        current: std::vec::IntoIter<Item>,
        arrived: VecDeque<Listing>,
    },
    /// Depth first, in name order.
    Sorted {
        /// The listings being handed out, outermost first.
        frames: Vec<Frame>,
        /// The part the output goes on with, once it is here.
        waiting_for: Option<Part>,
        /// Parts here before the output reached them: their frames.
        arrived: HashMap<Part, Frame>,
    },
}

/// A part of a directory's listing: the directory's id and the part's number.
type Part = (u64, u32);

/// What the output can do now. Only ever on the stack, moved out at once.
#[allow(clippy::large_enum_variant)]
enum Next {
    Entry(io::Result<WalkEntry>),
    /// Waiting for a listing.
    Wait,
    Done,
}

/// An asynchronous walk of a directory tree; made by [`walk`], [`WalkOptions::walk`]
/// or [`Fs::walk`](super::Fs::walk).
///
/// Entries come with their metadata, read on the pool. An unreadable directory or
/// an entry that vanished is one `Err` naming the path, and the walk goes on with the
/// next call.
///
/// # How it runs
///
/// Each directory is one pool job: open (holding a permit of the pool's budget), read
/// every name, stat each entry relative to the open directory, close, give the
/// permit back. The walk starts those jobs from its own `poll`, up to
/// [`MAX_DIRS_IN_FLIGHT`] at once, and none while [`MAX_BUFFERED_ENTRIES`] entries
/// wait to be handed out: a consumer that stops reading stops the walk, with at most
/// that many entries buffered plus the directories in flight (each read whole).
/// Dropping a walk stops it: jobs not started are skipped, running ones stop and
/// close their directory on the pool. The walk itself never holds a descriptor.
///
/// # Examples
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// std::fs::create_dir_all(dir.path().join("src/fs"))?;
/// std::fs::write(dir.path().join("src/lib.rs"), "//")?;
/// std::fs::write(dir.path().join("src/fs/mod.rs"), "// two")?;
/// let bytes = aopen::block_on(async {
///     let mut walk = aopen::fs::walk(dir.path());
///     let mut bytes = 0;
///     while let Some(entry) = walk.next_entry().await? {
///         if entry.file_type().is_file() {
///             bytes += entry.metadata().map_or(0, |m| m.len());
///         }
///     }
///     Ok::<_, std::io::Error>(bytes)
/// })?;
/// assert_eq!(bytes, 2 + 6);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Walk {
    shared: Arc<Shared>,
    /// `None` if the global pool could not be had (`error` says why).
    pool: Option<Pool>,
    error: Option<io::Error>,
    /// The root, until its job starts.
    root: Option<PathBuf>,
    todo: Todo,
    /// Sorted walks: each listing's index path, from when its job starts until it is
    /// taken in (its children's paths extend it).
    keys: HashMap<u64, Arc<[u32]>>,
    /// Directories whose job started and whose listing is not all in yet.
    in_flight: usize,
    /// Directories whose listing is partly in: the parts in, and how many there
    /// are (0 while no part that arrived knew).
    parts_left: HashMap<u64, (u32, u32)>,
    /// Directories whose listing is all in, and their entries: the average size.
    listed_dirs: usize,
    listed_entries: usize,
    /// Entries taken in and not yet handed out.
    buffered: usize,
    /// The permit the next job waits for, when none was free.
    acquire: Option<Acquire>,
    next_id: u64,
    output: Output,
    /// Entries handed out since the walk last returned `Pending`.
    ready_in_a_row: usize,
    /// Entries handed out since the walk last looked at its mailbox.
    since_collect: usize,
    /// Buffers emptied since then, handed to the mailbox at the next look.
    spent: Vec<Spent>,
}

impl Walk {
    /// The next entry, or `None` when the walk is over. An `Err` is one entry that
    /// could not be read (its message names the path); the next call goes on.
    ///
    /// Cancel-safe: listings belong to the walk, so dropping this future loses none.
    ///
    /// # Examples
    ///
    /// See [`Walk`].
    pub async fn next_entry(&mut self) -> io::Result<Option<WalkEntry>> {
        std::future::poll_fn(|cx| self.poll_next_entry(cx)).await
    }

    /// The poll form of [`next_entry`](Self::next_entry).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut walk = aopen::fs::WalkOptions::new().max_depth(0).walk("/");
    /// let root = aopen::block_on(std::future::poll_fn(|cx| walk.poll_next_entry(cx)))?;
    /// assert!(root.is_some());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn poll_next_entry(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<WalkEntry>>> {
        if let Some(err) = self.error.take() {
            return Poll::Ready(Err(err));
        }
        let Some(pool) = self.pool.clone() else {
            return Poll::Ready(Ok(None));
        };
        if self.ready_in_a_row >= COOP_BUDGET {
            self.ready_in_a_row = 0;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if let Some(root) = self.root.take() {
            self.start_root(&pool, root);
        }
        loop {
            if self.since_collect >= COLLECT_EVERY {
                // Only if no job holds the mailbox: entries are ready, so waiting
                // for a job preempted under its lock would only stall the loop.
                let taken = try_lock(&self.shared.mailbox)
                    .map(|mut mailbox| empty_mailbox(&mut mailbox, &mut self.spent));
                if let Some(listings) = taken {
                    self.collect(listings);
                }
            }
            self.start_jobs(&pool, cx);
            match self.next_from_output() {
                Next::Entry(entry) => {
                    self.ready_in_a_row += 1;
                    self.since_collect += 1;
                    return Poll::Ready(entry.map(Some));
                }
                Next::Done => return Poll::Ready(Ok(None)),
                Next::Wait => {
                    let mut mailbox = lock(&self.shared.mailbox);
                    if mailbox.listings.is_empty() {
                        mailbox.waker = Some(cx.waker().clone());
                        self.ready_in_a_row = 0;
                        return Poll::Pending;
                    }
                    let listings = empty_mailbox(&mut mailbox, &mut self.spent);
                    drop(mailbox);
                    self.collect(listings);
                }
            }
        }
    }

    /// What the walk's jobs have seen so far.
    ///
    /// # Examples
    ///
    /// See [`WalkProgress`].
    pub fn progress(&self) -> WalkProgress {
        let counters = &self.shared.progress;
        let read = |counter: &AtomicUsize| counter.load(Ordering::Relaxed) as u64;
        WalkProgress {
            dirs: read(&counters.dirs),
            files: read(&counters.files),
            bytes: read(&counters.bytes),
            errors: read(&counters.errors),
        }
    }

    /// How many directories may be in flight: about [`MAX_ENTRIES_IN_FLIGHT`]
    /// entries at the average directory size so far.
    fn window(&self) -> usize {
        let average = (self.listed_entries / self.listed_dirs.max(1)).max(1);
        (MAX_ENTRIES_IN_FLIGHT / average).clamp(1, MAX_DIRS_IN_FLIGHT)
    }

    /// The root's job: a stat; its listing has the root as its only item.
    ///
    /// An unsorted walk that needs nothing of the root's stat to enter it (links
    /// not followed, any file system) opens the root while it is stat'ed, instead of
    /// after: on a slow mount, a round trip less on the path to every entry. The
    /// root's directory job then goes to `todo` now, and the two jobs settle what
    /// an open that failed means through [`job::RootOpen`]: an error for a root
    /// that is a directory, nothing for one that is not (its stat says what it is).
    fn start_root(&mut self, pool: &Pool, root: PathBuf) {
        self.in_flight += 1;
        let config = self.shared.config;
        if config.sorted {
            self.keys.insert(ROOT_ID, Arc::from(Vec::new()));
        }
        let open_now = !config.sorted
            && !config.follow_links
            && !config.same_file_system
            && config.max_depth > 0;
        // The root's parts wait at its gate until the root's entry is delivered.
        let mut opens = None;
        if let (true, Todo::Stack(stack)) = (open_now, &mut self.todo) {
            let gate = job::EntryGate::new();
            stack.push(DirTask {
                id: self.next_id,
                path: root.clone(),
                depth: 0,
                ancestors: None,
                root_dev: None,
                own_listing: true,
                gate: Some(gate.clone()),
            });
            self.next_id += 1;
            opens = Some(gate);
        }
        let shared = self.shared.clone();
        pool.push_job(Detached::create(move || {
            let (mut listing, task) = job::stat_root(&config, root, ROOT_ID);
            let open_error = shared.root_open.stat_done(task.is_some());
            if !open_now {
                listing.children.extend(task.map(|task| (0, task)));
            }
            listing.items.extend(open_error.map(|err| Item {
                entry: Err(err),
                descend: false,
            }));
            listing.opens = opens;
            job::deliver(&shared, listing);
        }));
    }

    /// Starts jobs for `todo` while the limits allow and permits are free.
    fn start_jobs(&mut self, pool: &Pool, cx: &mut Context<'_>) {
        while self.in_flight < self.window() {
            let Some(next) = self.todo.peek_id() else {
                return;
            };
            let needed = match &self.output {
                Output::Sorted { waiting_for, .. } => *waiting_for == Some((next, 0)),
                Output::Unsorted { .. } => false,
            };
            if self.buffered >= MAX_BUFFERED_ENTRIES && !needed {
                return;
            }
            let permit = match self.acquire.as_mut() {
                Some(acquire) => match Pin::new(acquire).poll(cx) {
                    Poll::Ready(permit) => {
                        self.acquire = None;
                        permit
                    }
                    // Woken when a permit frees.
                    Poll::Pending => return,
                },
                None => match pool.budget().try_acquire() {
                    Some(permit) => permit,
                    None => {
                        self.acquire = Some(pool.budget().acquire());
                        continue;
                    }
                },
            };
            let Some(task) = self.todo.pop() else {
                return; // unreachable: `peek_id` saw one
            };
            self.in_flight += 1;
            let (shared, job_pool) = (self.shared.clone(), pool.clone());
            pool.push_job(Detached::create(move || {
                if shared.stopped.load(Ordering::Relaxed) {
                    return; // the walk is gone: the permit drops here, on the pool
                }
                job::read_directory(&shared, &job_pool, task, permit);
            }));
        }
    }

    /// Takes in `listings`: their entries to the output, their subdirectories to
    /// `todo`.
    fn collect(&mut self, mut listings: VecDeque<Listing>) {
        self.since_collect = 0;
        for mut listing in listings.drain(..) {
            // A directory is in flight until its last part is in: until as many
            // parts are in as one of them said there are (parts streamed while the
            // directory was read do not know; see `job::read_directory`).
            let (arrived, parts) = self.parts_left.entry(listing.id).or_insert((0, 0));
            *arrived += 1;
            if listing.parts != job::PARTS_NOT_KNOWN {
                *parts = listing.parts;
            }
            let last = *arrived == *parts;
            if last {
                self.parts_left.remove(&listing.id);
                self.in_flight -= 1;
                self.listed_dirs += 1;
            }
            self.buffered += listing.items.len();
            self.listed_entries += listing.items.len();
            let parent_key = match last {
                true => self.keys.remove(&listing.id),
                false => self.keys.get(&listing.id).cloned(),
            };
            let mut child_ids = Vec::with_capacity(listing.children.len());
            let mut children = std::mem::take(&mut listing.children);
            for (position, mut child) in children.drain(..) {
                child.id = self.next_id;
                self.next_id += 1;
                child_ids.push(child.id);
                match &mut self.todo {
                    Todo::Stack(stack) => stack.push(child),
                    Todo::Ordered(heap) => {
                        let mut key = parent_key.as_deref().unwrap_or(&[]).to_vec();
                        key.push(position);
                        let key: Arc<[u32]> = Arc::from(key);
                        self.keys.insert(child.id, key.clone());
                        heap.push(Queued { key, task: child });
                    }
                }
            }
            match &mut self.output {
                Output::Unsorted { arrived, .. } => arrived.push_back(listing),
                Output::Sorted { arrived, .. } => {
                    // A sorted walk reads each directory whole: every part knows.
                    debug_assert_ne!(listing.parts, job::PARTS_NOT_KNOWN);
                    let part = (listing.id, listing.part);
                    let frame = Frame {
                        part,
                        parts: listing.parts,
                        items: listing.items.into_iter(),
                        children: child_ids.into_iter(),
                    };
                    arrived.insert(part, frame);
                }
            }
            if children.capacity() > 0 {
                self.spent.push(Spent::Children(children));
            }
        }
        self.spent.push(Spent::Listings(listings));
    }

    /// The next entry the output order allows, if it is here.
    fn next_from_output(&mut self) -> Next {
        match &mut self.output {
            Output::Unsorted { current, arrived } => loop {
                if let Some(item) = current.next() {
                    self.buffered -= 1;
                    return Next::Entry(item.entry);
                }
                match arrived.pop_front() {
                    Some(listing) => {
                        let done = std::mem::replace(current, listing.items.into_iter());
                        self.spent.push(Spent::Items(done));
                    }
                    None if self.todo.is_empty() && self.in_flight == 0 => return Next::Done,
                    None => return Next::Wait,
                }
            },
            Output::Sorted {
                frames,
                waiting_for,
                arrived,
            } => loop {
                if let Some(part) = *waiting_for {
                    let Some(frame) = arrived.remove(&part) else {
                        return Next::Wait;
                    };
                    *waiting_for = None;
                    frames.push(frame);
                }
                let Some(top) = frames.last_mut() else {
                    return Next::Done;
                };
                match top.items.next() {
                    Some(item) => {
                        self.buffered -= 1;
                        if item.descend {
                            // Its contents come right after it.
                            *waiting_for = top.children.next().map(|id| (id, 0));
                        }
                        return Next::Entry(item.entry);
                    }
                    None => {
                        // This part is done; the directory's next one follows.
                        let ((id, part), parts) = (top.part, top.parts);
                        if part + 1 < parts {
                            *waiting_for = Some((id, part + 1));
                        }
                        if let Some(frame) = frames.pop() {
                            self.spent.push(Spent::Items(frame.items));
                        }
                    }
                }
            },
        }
    }
}

/// Takes the listings out of the (locked) mailbox, and leaves there the buffers the
/// walk spent since its last look, for the jobs to free.
fn empty_mailbox(mailbox: &mut Mailbox, spent: &mut Vec<Spent>) -> VecDeque<Listing> {
    mailbox.spent.append(spent);
    std::mem::take(&mut mailbox.listings)
}

impl Drop for Walk {
    fn drop(&mut self) {
        // Jobs check `stopped` and hand in nothing after it (see `job::deliver`, which
        // looks under the mailbox lock): so after this, nobody fills the mailbox.
        self.shared.stopped.store(true, Ordering::Relaxed);
        lock(&self.shared.mailbox).listings.clear();
    }
}

impl fmt::Debug for Walk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Walk")
            .field("config", &self.shared.config)
            .field("in_flight", &self.in_flight)
            .field("buffered", &self.buffered)
            .field("progress", &self.progress())
            .finish_non_exhaustive()
    }
}

/// With the `futures-io` feature, a `Walk` is a [`Stream`](futures_core::Stream) of
/// entries (each an `io::Result`); it is the same machinery as
/// [`next_entry`](Walk::next_entry).
///
/// ```
/// use futures::StreamExt;
///
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("a"), "")?;
/// let entries: Vec<_> = aopen::block_on(aopen::fs::walk(dir.path()).collect());
/// assert_eq!(entries.len(), 2); // the root and `a`
/// # Ok::<(), std::io::Error>(())
/// ```
#[cfg(feature = "futures-io")]
#[cfg_attr(docsrs, doc(cfg(feature = "futures-io")))]
impl futures_core::Stream for Walk {
    type Item = io::Result<WalkEntry>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // `Walk` is `Unpin`: queues, maps and an `Unpin` permit future.
        self.get_mut().poll_next_entry(cx).map(Result::transpose)
    }
}

/// Walks the tree under `root` on the global pool, with [`WalkOptions::new`]'s
/// defaults (metadata on, unsorted, links not followed).
///
/// # Examples
///
/// See [`Walk`].
pub fn walk(root: impl AsRef<Path>) -> Walk {
    WalkOptions::new().walk(root)
}

impl super::Fs {
    /// Walks the tree under `root` on this pool; see [`walk`] and [`WalkOptions`].
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// std::fs::create_dir_all(dir.path().join("a/b/c"))?;
    /// let pool = aopen::Pool::builder().max_threads(2).descriptor_budget(1).build()?;
    /// let mut walk = pool.fs().walk(dir.path()); // one directory open at a time
    /// let count = aopen::block_on(async {
    ///     let mut count = 0;
    ///     while walk.next_entry().await?.is_some() {
    ///         count += 1;
    ///     }
    ///     Ok::<_, std::io::Error>(count)
    /// })?;
    /// assert_eq!(count, 4);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn walk(&self, root: impl AsRef<Path>) -> Walk {
        let mut options = WalkOptions::new();
        if let Some(pool) = &self.pool {
            options.pool(pool);
        }
        options.walk(root)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// How long the test's helper holds the mailbox at most: far longer than a poll
    /// that does not wait for it takes.
    const HOLD_LIMIT: Duration = Duration::from_secs(10);

    #[test]
    fn a_walk_with_entries_ready_does_not_wait_for_a_job_holding_its_mailbox() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..3 * STAT_CHUNK {
            std::fs::File::create(dir.path().join(i.to_string())).unwrap();
        }
        let pool = Pool::builder().max_threads(2).build().unwrap();
        let mut walk = WalkOptions::new().pool(&pool).walk(dir.path());
        // The root; then every part of the listing delivered (the jobs count a part
        // as they deliver it), so the next entry takes them all in. (Not "the root
        // and one file": where every open is judged slow, under Wine, the listing
        // streams one entry a part, and that file's part may have been alone.)
        crate::block_on(walk.next_entry()).unwrap().unwrap();
        let start = Instant::now();
        while (walk.progress().files as usize) < 3 * STAT_CHUNK {
            assert!(start.elapsed() < HOLD_LIMIT, "{:?}", walk.progress());
            crate::sync::thread::yield_now();
        }
        crate::block_on(walk.next_entry()).unwrap().unwrap();
        assert!(walk.buffered > 0);
        // A job delivering, preempted under the mailbox's lock; and the walk due
        // for its periodic look at the mailbox.
        let shared = walk.shared.clone();
        let flags = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
        let [locked, release] = [0, 1];
        let holder = {
            let flags = flags.clone();
            crate::sync::thread::spawn(move || {
                let _mailbox = lock(&shared.mailbox);
                flags[locked].store(true, Ordering::SeqCst);
                let start = Instant::now();
                while !flags[release].load(Ordering::SeqCst) && start.elapsed() < HOLD_LIMIT {
                    crate::sync::thread::yield_now();
                }
                // Held until told, or past the limit: then the walk waited for it.
                !flags[release].load(Ordering::SeqCst)
            })
        };
        while !flags[locked].load(Ordering::SeqCst) {
            crate::sync::thread::yield_now();
        }
        walk.since_collect = COLLECT_EVERY;
        let entry = crate::block_on(walk.next_entry()).unwrap();
        flags[release].store(true, Ordering::SeqCst);
        let waited = holder.join().unwrap();
        assert!(entry.is_some());
        assert!(
            !waited,
            "the walk waited for the mailbox with entries ready"
        );
    }
}
