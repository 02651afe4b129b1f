//! The unit of work of a walk: one directory, listed by one pool job and stat'ed in
//! chunks.
//!
//! A job opens its directory (holding the budget permit the [`Walk`](super::Walk)
//! acquired for it), reads every name, and stats the first chunk of entries relative
//! to the directory's own descriptor (a slow directory of an unsorted walk hands its
//! entries to the runners as it reads them: see [`read_directory`]); the other chunks go to the walk's
//! [`ChunkQueue`], whose runner jobs (at most [`MAX_CHUNK_RUNNERS`] a walk) stat
//! them relative to the same descriptor. The last chunk dropped closes the directory
//! and gives the permit back, on the pool thread; each chunk's [`Listing`] part goes
//! to the walk's mailbox. So no descriptor ever leaves the pool, and a walk that is
//! dropped holds none.
//!
//! Metadata: `std::fs::Metadata` has no public constructor, so it can only come from
//! std. std's `DirEntry::metadata` is `statx(dirfd, name, AT_SYMLINK_NOFOLLOW)` on
//! Linux (`fstatat` where `statx` is missing): relative to the open directory, no
//! path resolved again, and a real `Metadata`. That is what a job calls. Measured on
//! `/usr` (132,631 entries, warm cache, one thread, `benches/walk.rs`'s
//! `stat-variants`): see the README's "Walking a tree". A directory expected to be
//! on a slow mount (its parent opened slowly, or the root) is read with a listing of
//! our own on Linux, one round trip shorter, its entries stat'ed through
//! `/proc/self/fd`, still relative to the open directory (see `listing.rs`).
//!
//! Order: a directory is always handed out before its contents, also in an unsorted
//! walk. A directory entered before its own entry was stat'ed (entered early from
//! its listing's type, or the root opened while it is stat'ed) delivers its parts
//! through an [`EntryGate`], which holds them until the part with the directory's
//! entry is in the walk's mailbox.

use std::collections::VecDeque;
use std::fs::{FileType, Metadata};
use std::io;
use std::path::{Path, PathBuf};

use super::listing::{Entry, Reader};
use super::{Config, Shared, WalkEntry};
use crate::budget::Permit;
use crate::fs::error::{retry_interrupted, with_path};
use crate::pool::job::Detached;
use crate::pool::Pool;
use crate::sync::{lock, DynArc as Arc, Mutex, Ordering};

/// Entries between two looks at the walk's `stopped` flag while a job reads a
/// directory: a dropped walk stops a huge directory's job within this many stats.
const STOP_CHECK_EVERY: usize = 64;

/// What tells two directories apart: device and inode on Unix. Elsewhere std has no
/// stable file id, so the canonical path stands in (one `canonicalize` per directory
/// entered, only when links are followed).
#[cfg(unix)]
type DirId = (u64, u64);
#[cfg(not(unix))]
type DirId = PathBuf;

/// The identity of the directory at `path` whose metadata is `meta`.
#[cfg(unix)]
fn dir_id(_path: &Path, meta: &Metadata) -> io::Result<DirId> {
    use std::os::unix::fs::MetadataExt;
    Ok((meta.dev(), meta.ino()))
}
#[cfg(not(unix))]
fn dir_id(path: &Path, _meta: &Metadata) -> io::Result<DirId> {
    std::fs::canonicalize(path)
}

/// The device a directory is on, for `same_file_system` (Unix only: std has no
/// stable volume id elsewhere, so there the option changes nothing).
#[cfg(unix)]
pub(super) fn device(meta: &Metadata) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    Some(meta.dev())
}
#[cfg(not(unix))]
pub(super) fn device(_meta: &Metadata) -> Option<u64> {
    None
}

/// A directory an ancestor chain passes through, for finding symlink loops when
/// links are followed.
pub(super) struct Ancestor {
    id: DirId,
    parent: Option<Arc<Ancestor>>,
}

impl Ancestor {
    pub(super) fn new(
        path: &Path,
        meta: &Metadata,
        parent: Option<Arc<Ancestor>>,
    ) -> io::Result<Arc<Ancestor>> {
        Ok(Arc::new(Ancestor {
            id: dir_id(path, meta)?,
            parent,
        }))
    }

    /// Whether `id` is this directory or one of its ancestors.
    fn contains(self: &Arc<Self>, id: &DirId) -> bool {
        let mut next = Some(self);
        while let Some(dir) = next {
            if dir.id == *id {
                return true;
            }
            next = dir.parent.as_ref();
        }
        false
    }
}

/// A directory to read: what the walk queues, and what a job gets.
pub(super) struct DirTask {
    /// Names the listing in the walk's bookkeeping.
    pub(super) id: u64,
    pub(super) path: PathBuf,
    /// The directory's own depth (the root is 0; its entries are one deeper).
    pub(super) depth: usize,
    /// The directory and its ancestors, when links are followed.
    pub(super) ancestors: Option<Arc<Ancestor>>,
    /// The root's device, when the walk stays on one file system.
    pub(super) root_dev: Option<u64>,
    /// The directory is expected to be slow (its parent opened slowly, or it is the
    /// root): it is opened for a listing of our own (see [`listing`](super::listing)).
    pub(super) own_listing: bool,
    /// Entered before its own entry was delivered: its parts wait here until it is.
    pub(super) gate: Option<Arc<EntryGate>>,
}

/// One entry of a listing, and whether its contents are to follow.
pub(super) struct Item {
    pub(super) entry: io::Result<WalkEntry>,
    /// The entry is a directory the walk descends into; its [`DirTask`] is the
    /// listing's next child.
    pub(super) descend: bool,
}

/// What a job hands back: one part of a directory's entries (in name order in a
/// sorted walk) and the subdirectories among them, in the order of their items.
pub(super) struct Listing {
    pub(super) id: u64,
    /// Which part of the directory this is, of how many ([`PARTS_NOT_KNOWN`] in a
    /// part streamed while the directory was read: other parts say).
    pub(super) part: u32,
    pub(super) parts: u32,
    pub(super) items: Vec<Item>,
    /// Each with the position of its item in the whole directory.
    pub(super) children: Vec<(u32, DirTask)>,
    /// The gate of the directory this listing's one entry is, entered early: it
    /// opens once this listing is in the mailbox.
    pub(super) opens: Option<Arc<EntryGate>>,
}

/// Where the parts of a directory entered before its own entry was delivered wait
/// (see the module's "Order"): `Some` while closed, with the parts that came; `None`
/// once open, when parts go to the mailbox directly.
///
/// Invariant: a gate opens only after the listing with its directory's entry is in
/// the mailbox (that listing carries it in [`Listing::opens`], and
/// [`deliver`] opens it after pushing the listing), so everything of the directory
/// is behind its entry in the mailbox, which the walk hands out in order. It always
/// opens: the chunk with the entry is queued right after the part that enters the
/// directory, and every queued chunk is stat'ed and delivered (a failed stat is an
/// `Err` item in it), unless the walk is gone.
pub(super) struct EntryGate {
    held: Mutex<Option<Vec<Listing>>>,
}

impl EntryGate {
    pub(super) fn new() -> Arc<EntryGate> {
        Arc::new(EntryGate {
            held: Mutex::new(Some(Vec::new())),
        })
    }

    /// Holds `listing` if the gate is closed; gives it back if it is open.
    fn hold(&self, listing: Listing) -> Option<Listing> {
        match &mut *lock(&self.held) {
            Some(held) => {
                held.push(listing);
                None
            }
            None => Some(listing),
        }
    }

    /// Opens the gate: the parts it held, in the order they came.
    fn open(&self) -> Vec<Listing> {
        lock(&self.held).take().unwrap_or_default()
    }
}

impl Listing {
    /// A directory's only part.
    fn whole(id: u64, items: Vec<Item>) -> Listing {
        Listing {
            id,
            part: 0,
            parts: 1,
            items,
            children: Vec::new(),
            opens: None,
        }
    }
}

/// The walk's root: one stat (following a symlink, as walkdir does for its root),
/// and the root's listing is its single item.
pub(super) fn stat_root(config: &Config, path: PathBuf, id: u64) -> (Listing, Option<DirTask>) {
    let mut listing = Listing::whole(id, Vec::with_capacity(1));
    let meta = match std::fs::metadata(&path) {
        Ok(meta) => meta,
        Err(err) => {
            listing.items.push(Item {
                entry: Err(with_path("stat", &path, err)),
                descend: false,
            });
            return (listing, None);
        }
    };
    let descend = meta.is_dir() && config.max_depth > 0;
    let ancestors = match config.follow_links && descend {
        true => match Ancestor::new(&path, &meta, None) {
            Ok(chain) => Some(chain),
            Err(err) => {
                listing.items.push(Item {
                    entry: Err(with_path("canonicalize", &path, err)),
                    descend: false,
                });
                return (listing, None);
            }
        },
        false => None,
    };
    let task = descend.then(|| DirTask {
        id: 0,
        path: path.clone(),
        depth: 0,
        ancestors,
        root_dev: if config.same_file_system {
            device(&meta)
        } else {
            None
        },
        own_listing: true,
        gate: None,
    });
    listing.items.push(Item {
        entry: Ok(WalkEntry {
            path,
            depth: 0,
            file_type: meta.file_type(),
            metadata: config.metadata.then_some(meta),
        }),
        descend,
    });
    (listing, task)
}

/// What the root's stat and the root's open tell each other, when the walk opens
/// the root while it is stat'ed (see `Walk::start_root`): an open that failed is an
/// error of the walk only if the stat says the root is a directory (a file root is
/// one entry, and a root that is not there is the stat's error alone). Whichever
/// finishes second reports the error.
pub(super) struct RootOpen {
    state: Mutex<RootState>,
}

#[derive(Default)]
struct RootState {
    /// Whether the walk enters the root, once its stat is done.
    enters: Option<bool>,
    /// The open's error, while the stat is not done.
    error: Option<io::Error>,
}

impl RootOpen {
    pub(super) fn new() -> RootOpen {
        RootOpen {
            state: Mutex::new(RootState::default()),
        }
    }

    /// The root's stat is done and says whether the walk enters it: the open's
    /// error to report, if the open failed first.
    pub(super) fn stat_done(&self, enters: bool) -> Option<io::Error> {
        let mut state = lock(&self.state);
        state.enters = Some(enters);
        state.error.take().filter(|_| enters)
    }

    /// The root's open failed with `err`: the error to report now, if the stat is
    /// done and says the root is entered (if it is not done, the stat reports it).
    fn open_failed(&self, err: io::Error) -> Option<io::Error> {
        let mut state = lock(&self.state);
        match state.enters {
            Some(enters) => enters.then_some(err),
            None => {
                state.error = Some(err);
                None
            }
        }
    }
}

/// The entries a pool job stats in one go. A directory of more is stat'ed by several
/// jobs at once, each relative to the same open directory (every std `DirEntry` holds
/// it open): a large directory on a slow mount gets that many requests in flight, and
/// the walk needs fewer directories in flight, and so less memory, to fill a server.
pub const STAT_CHUNK: usize = 128;

/// How many parts a directory that opened slowly (in 250 µs or more) is stat'ed in, at
/// most: one entry a part when it has fewer entries. On a slow mount each stat is a
/// round trip, so a directory's stats should all be in flight at once: a walk's first
/// directory, alone in flight, otherwise keeps the server nearly idle (the root of 64
/// directories at 5 ms a request, in chunks of 16: 4 requests in flight for 160 ms, a
/// third of the whole walk). A cached directory whose open was slow only because its
/// thread was preempted costs at most this many chunks, which the walk's runners
/// share.
pub const SLOW_DIR_PARTS: usize = 256;

/// A directory whose open takes this long is on a slow mount (or a cold disk): the
/// open is a round trip there (FUSE's `LOOKUP` and `OPENDIR`, NFS's `GETATTR`), and
/// a few microseconds when cached. The open, not the listing: a cached directory of
/// thousands of entries lists in a millisecond on a busy machine (it used to be
/// taken for slow then, split into hundreds of parts, and the pool grew for them),
/// and a few microseconds are rarely where a thread is preempted.
const SLOW_OPEN: std::time::Duration = std::time::Duration::from_micros(250);

/// How many entries each part of a directory of `entries` holds, given how long its
/// open took.
fn chunk_size(entries: usize, open: std::time::Duration) -> usize {
    match open >= SLOW_OPEN {
        true => entries.div_ceil(SLOW_DIR_PARTS).max(1),
        false => STAT_CHUNK,
    }
}

/// A run of a directory's entries and what statting them needs. Fields drop in
/// order: the entries (the last one closes the directory), then the permit.
struct Chunk {
    entries: Vec<(Entry, PathBuf)>,
    task: Arc<DirTask>,
    part: u32,
    /// The directory's parts, or [`PARTS_NOT_KNOWN`].
    parts: u32,
    /// The first entry's position in the directory.
    first: usize,
    /// A `readdir` error, reported after the directory's last entry.
    trailing_error: Option<io::Error>,
    /// The chunk's one entry is a subdirectory the walk already entered, from the
    /// listing's type: its stat makes no task for it again, and its delivery opens
    /// this, the subdirectory's gate.
    opens: Option<Arc<EntryGate>>,
    /// The directory opened slowly: its subdirectories get a listing of our own.
    slow: bool,
    /// Held, never read: the directory's permit, until its last chunk is gone.
    _permit: Arc<Permit>,
}

/// Opens and lists the directory of `task`; stats its first chunk of entries here
/// ([`STAT_CHUNK`], or fewer if it opened slowly: see [`SLOW_DIR_PARTS`]) and hands
/// the others to the walk's [`ChunkQueue`], whose runners stat them on `pool`. Each part is delivered
/// to the walk's mailbox. The permit goes back after the last part's entries are
/// gone, which is when the directory is closed. Nothing is delivered if the walk was
/// dropped.
///
/// An unsorted walk's directory that opened slowly is stat'ed while it is still
/// being read: each of its first [`SLOW_DIR_PARTS`] entries is handed to the runners
/// as a part of its own as soon as it is read. On a slow mount the listing is round
/// trips too (one `READDIR` per page of names, and one more that finds the end), and
/// the entries' stats need not wait for them: a directory of 64 starts its stats a
/// round trip sooner, and one of thousands, whose listing takes dozens of round
/// trips, has its first stats done before its listing is. The walk learns how many
/// parts there are from the parts made after the listing, which all say so
/// (streamed parts say 0: not known yet). A sorted walk needs every name before the
/// first stat, so it reads the whole directory first.
pub(super) fn read_directory(shared: &Arc<Shared>, pool: &Pool, task: DirTask, permit: Permit) {
    let config = &shared.config;
    // A listing of our own where it saves a round trip (see `listing`); it never
    // follows a link where the walk does not (the root is followed, as by walkdir).
    let own = task.own_listing && config.metadata;
    let follow = config.follow_links || task.depth == 0;
    let open = || Reader::open(&task.path, own, follow, SLOW_OPEN);
    let (mut stream, opened) = match retry_interrupted(open) {
        Ok(opened) => opened,
        Err(err) => {
            drop(permit);
            let err = with_path("open directory", &task.path, err);
            // The root may be opened before its stat says it is a directory.
            let err = match task.depth {
                0 => shared.root_open.open_failed(err),
                _ => Some(err),
            };
            let items = err.map(|err| Item {
                entry: Err(err),
                descend: false,
            });
            let listing = Listing::whole(task.id, items.into_iter().collect());
            return deliver_part(shared, task.gate.as_deref(), listing);
        }
    };
    let (task, permit) = (Arc::new(task), Arc::new(permit));
    // Entries still to be streamed, one part each: the open, and each read of the
    // listing that waited for a round trip, allow [`SLOW_DIR_PARTS`] more. So a slow
    // directory streams every entry, and a cached one misjudged slow (its open was
    // preempted) at most that many.
    let mut stream_budget = match !config.sorted && opened >= SLOW_OPEN {
        true => SLOW_DIR_PARTS,
        false => 0,
    };
    // What was handed off while the directory was read.
    let mut streamed = Streamed {
        parts: 0,
        entries: 0,
        // Entries a listing says are directories are entered at once, when
        // entering needs nothing of their stat (see `descend_before_stat`).
        descend_early: !config.follow_links
            && !config.same_file_system
            && task.depth + 1 < config.max_depth,
    };
    // A sorted walk needs all names before the first stat, and the directory is
    // stat'ed in the order its items will be handed out.
    let mut names = Vec::new();
    let mut read_error = None;
    let mut read = 0;
    loop {
        let asked = (stream_budget > 0).then(std::time::Instant::now);
        let Some(entry) = stream.next() else {
            break;
        };
        if asked.is_some_and(|asked| asked.elapsed() >= SLOW_OPEN) {
            stream_budget += SLOW_DIR_PARTS;
        }
        let (entry, path) = match entry {
            Ok(entry) => entry,
            Err(err) => {
                // The stream ends after an error; report it once, after the names.
                read_error = Some(with_path("read directory", &task.path, err));
                break;
            }
        };
        match stream_budget > 0 {
            true => {
                stream_budget -= 1;
                streamed.hand_off(shared, pool, &task, &permit, (entry, path));
            }
            false => names.push((entry, path)),
        }
        read += 1;
        if read % STOP_CHECK_EVERY == 0 && shared.stopped.load(Ordering::Relaxed) {
            return; // closes the stream, then drops the permit (declaration order)
        }
    }
    // Closed now (once its entries are gone too), before the permit can go back.
    drop(stream);
    if config.sorted {
        // Every path has the same parent, so byte order of the paths is byte order
        // of the names: walkdir's `sort_by_file_name`. (`as_encoded_bytes` is the
        // bytes on Unix, and sorts like the names elsewhere.)
        names.sort_unstable_by(|a, b| {
            a.1.as_os_str()
                .as_encoded_bytes()
                .cmp(b.1.as_os_str().as_encoded_bytes())
        });
    }
    // The rest: at least one part, which carries a read error (and, when every
    // entry was streamed, tells the walk how many parts there are).
    let chunk_size = chunk_size(names.len(), opened);
    let rest = names.len().div_ceil(chunk_size).max(1);
    let parts = streamed.parts + rest;
    let mut names = names.into_iter();
    let (mut first, mut later) = (None, Vec::with_capacity(rest - 1));
    // In order: the pool runs a thread's own jobs first in, first out, so the parts
    // a sorted walk needs first are stat'ed first.
    for part in streamed.parts..parts {
        let chunk = Chunk {
            entries: names.by_ref().take(chunk_size).collect(),
            task: task.clone(),
            part: part as u32,
            parts: parts as u32,
            first: streamed.entries + (part - streamed.parts) * chunk_size,
            trailing_error: if part + 1 == parts {
                read_error.take()
            } else {
                None
            },
            opens: None,
            slow: opened >= SLOW_OPEN,
            _permit: permit.clone(),
        };
        if part == streamed.parts {
            first = Some(chunk);
            continue;
        }
        later.push(chunk);
    }
    drop((task, permit));
    ChunkQueue::hand_off(shared, pool, later);
    if let Some(chunk) = first {
        stat_chunk(shared, chunk);
    }
}

/// What a slow directory's job handed off while it read the directory.
struct Streamed {
    /// Parts: one an entry, and one more for each subdirectory entered early.
    parts: usize,
    entries: usize,
    /// Whether subdirectories may be entered before their stat.
    descend_early: bool,
}

impl Streamed {
    /// Hands `entry` to the runners as a part of its own. A subdirectory (by the
    /// listing's type) is entered at once, when [`descend_before_stat`] allows: its
    /// task goes to the walk in a part of its own, ahead of the entry's stat.
    fn hand_off(
        &mut self,
        shared: &Arc<Shared>,
        pool: &Pool,
        task: &Arc<DirTask>,
        permit: &Arc<Permit>,
        entry: (Entry, PathBuf),
    ) {
        let position = self.entries;
        let mut opens = None;
        if self.descend_early && descend_before_stat(shared, &entry.0) {
            let gate = EntryGate::new();
            let child = DirTask {
                id: 0,
                path: entry.1.clone(),
                depth: task.depth + 1,
                ancestors: None,
                root_dev: None,
                own_listing: true,
                gate: Some(gate.clone()),
            };
            let listing = Listing {
                id: task.id,
                part: self.parts as u32,
                parts: PARTS_NOT_KNOWN,
                items: Vec::new(),
                children: vec![(position as u32, child)],
                opens: None,
            };
            self.parts += 1;
            deliver_part(shared, task.gate.as_deref(), listing);
            opens = Some(gate);
        }
        let chunk = Chunk {
            entries: vec![entry],
            task: task.clone(),
            part: self.parts as u32,
            parts: PARTS_NOT_KNOWN,
            first: position,
            trailing_error: None,
            opens,
            // Only a directory that opened slowly streams.
            slow: true,
            _permit: permit.clone(),
        };
        self.parts += 1;
        self.entries += 1;
        ChunkQueue::hand_off(shared, pool, [chunk]);
    }
}

/// Whether the walk enters `entry` before its stat: the listing says it is a
/// directory, and told so without a round trip.
///
/// On a slow mount a subdirectory's stat is a round trip or two (FUSE's `LOOKUP`
/// and `GETATTR`), and entering it only after the stat put them on the path to
/// every entry below it: the stats of a tree of 64 directories at 5 ms started
/// 10 ms later. Entering needs nothing of the stat unless links are followed (the
/// loop check needs the directory's identity) or the walk stays on one file system
/// (the device), which the callers rule out; the walk still stats the entry, and
/// hands it out with its stat as before. Like entering after the stat, the
/// directory is opened by path, so an entry replaced between the listing and the
/// open is read as what it is then.
///
/// A listing without types (`DT_UNKNOWN`: std's `file_type` then stats the entry,
/// here a round trip on the job's thread) is seen by the time that took, and
/// stops early entering for the rest of the walk.
fn descend_before_stat(shared: &Shared, entry: &Entry) -> bool {
    if !entry.is_std() {
        // An own listing says whether it has the type.
        return entry.listed_as_dir() == Some(true);
    }
    if shared.types_need_a_stat.load(Ordering::Relaxed) {
        return false;
    }
    let asked = std::time::Instant::now();
    let file_type = entry.file_type();
    if asked.elapsed() >= SLOW_OPEN {
        shared.types_need_a_stat.store(true, Ordering::Relaxed);
        return false;
    }
    file_type.is_ok_and(|file_type| file_type.is_dir())
}

/// What a part streamed from a directory still being read says of the number of
/// parts ([`Listing::parts`]): not known yet.
pub(super) const PARTS_NOT_KNOWN: u32 = 0;

/// The most chunk jobs (runners) one walk runs at once, besides its directory jobs
/// (each of which stats its directory's first chunk itself). A slow mount's
/// directories split into a part per entry ([`SLOW_DIR_PARTS`]), so 64 directories
/// of 64 make 4,096 jobs: pushed to the pool one each, they grew it to its cap (512
/// threads), which served requests at 5 ms no faster than 256 threads did (the
/// server is the limit) and spent the cores on switching between them.
pub const MAX_CHUNK_RUNNERS: usize = 256;

/// A walk's chunks waiting for a runner: the parts of directories after their first,
/// in the order their directories were listed (and each directory's in order, so the
/// parts a sorted walk needs first are stat'ed first).
///
/// Invariant (under the lock): chunks wait only while a runner exists, because a
/// runner leaves only when it finds the queue empty, and a hand-off starts runners
/// for what it queued up to [`MAX_CHUNK_RUNNERS`]. So every queued chunk is stat'ed,
/// or dropped on the pool once the walk is gone: none ever drops with the walk.
pub(super) struct ChunkQueue {
    state: Mutex<ChunkState>,
}

struct ChunkState {
    queue: VecDeque<Chunk>,
    /// Runner jobs pushed and not yet gone.
    runners: usize,
}

impl ChunkQueue {
    pub(super) fn new() -> ChunkQueue {
        ChunkQueue {
            state: Mutex::new(ChunkState {
                queue: VecDeque::new(),
                runners: 0,
            }),
        }
    }

    /// Queues `chunks` and starts the runners they need, up to the cap.
    fn hand_off(shared: &Arc<Shared>, pool: &Pool, chunks: impl IntoIterator<Item = Chunk>) {
        let start = {
            let mut state = lock(&shared.chunks.state);
            state.queue.extend(chunks);
            let start = state
                .queue
                .len()
                .min(MAX_CHUNK_RUNNERS.saturating_sub(state.runners));
            state.runners += start;
            start
        };
        for _ in 0..start {
            let shared = shared.clone();
            pool.push_job(Detached::create(move || ChunkQueue::run(&shared)));
        }
    }

    /// A runner: stats queued chunks until there are none.
    fn run(shared: &Shared) {
        loop {
            let chunk = {
                let mut state = lock(&shared.chunks.state);
                match state.queue.pop_front() {
                    Some(chunk) => chunk,
                    None => {
                        // Leaving under the lock: a hand-off that queues after this
                        // sees one runner fewer and starts its own.
                        state.runners -= 1;
                        return;
                    }
                }
            };
            stat_chunk(shared, chunk);
        }
    }
}

/// Stats one chunk of a directory and delivers it as one part of its listing.
fn stat_chunk(shared: &Shared, mut chunk: Chunk) {
    if shared.stopped.load(Ordering::Relaxed) {
        return; // the entries, then the permit, drop here, on the pool
    }
    let config = &shared.config;
    let mut items = Vec::with_capacity(chunk.entries.len() + 1);
    let mut children = Vec::new();
    for (i, (entry, path)) in std::mem::take(&mut chunk.entries).into_iter().enumerate() {
        let position = u32::try_from(chunk.first + i).unwrap_or(u32::MAX);
        let item = examine(
            config,
            &chunk.task,
            chunk.slow,
            &entry,
            path,
            position,
            &mut children,
        );
        items.push(item);
    }
    let opens = chunk.opens.take();
    if opens.is_some() {
        children.clear();
    }
    if let Some(err) = chunk.trailing_error.take() {
        items.push(Item {
            entry: Err(err),
            descend: false,
        });
    }
    let listing = Listing {
        id: chunk.task.id,
        part: chunk.part,
        parts: chunk.parts,
        items,
        children,
        opens,
    };
    let gate = chunk.task.gate.clone();
    // Every entry of this chunk is gone; if it was the directory's last, so is the
    // directory. std asserts that its `closedir` succeeded (its only error, EBADF,
    // cannot happen on a stream it owns); were it to panic, the part is still
    // delivered, so the walk never waits for it. Then this chunk's share of the permit.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(chunk)));
    deliver_part(shared, gate.as_deref(), listing);
}

/// One entry: its stat (relative to the open directory), the link it may point
/// through, and whether the walk goes into it.
fn examine(
    config: &Config,
    task: &DirTask,
    slow: bool,
    entry: &Entry,
    path: PathBuf,
    position: u32,
    children: &mut Vec<(u32, DirTask)>,
) -> Item {
    let depth = task.depth + 1;
    let failed = |operation, path: &PathBuf, err| Item {
        entry: Err(with_path(operation, path, err)),
        descend: false,
    };
    // What may be needed: the metadata if asked for, else the type the listing gave.
    let mut meta = None;
    let mut file_type: FileType = if config.metadata {
        match entry.metadata() {
            Ok(m) => {
                let file_type = m.file_type();
                meta = Some(m);
                file_type
            }
            Err(err) => return failed("stat", &path, err),
        }
    } else {
        match entry.file_type() {
            Ok(file_type) => file_type,
            Err(err) => return failed("stat", &path, err),
        }
    };
    if config.follow_links && file_type.is_symlink() {
        match std::fs::metadata(&path) {
            Ok(target) => {
                file_type = target.file_type();
                meta = Some(target);
            }
            Err(err) => return failed("stat (following the symlink)", &path, err),
        }
    }
    let mut descend = file_type.is_dir() && depth < config.max_depth;
    if descend && (task.root_dev.is_some() || task.ancestors.is_some()) && meta.is_none() {
        // Without metadata asked for, a directory still needs its device and inode.
        match entry.metadata() {
            Ok(m) => meta = Some(m),
            Err(err) => return failed("stat", &path, err),
        }
    }
    if let (true, Some(dev), Some(m)) = (descend, task.root_dev, &meta) {
        // Another file system: listed, not entered.
        descend = device(m) == Some(dev);
    }
    let mut ancestors = None;
    if let (true, Some(chain), Some(m)) = (descend, &task.ancestors, &meta) {
        let id = match dir_id(&path, m) {
            Ok(id) => id,
            Err(err) => return failed("canonicalize", &path, err),
        };
        if chain.contains(&id) {
            let err = io::Error::other("a symlink loop: this directory is its own ancestor");
            return failed("walk", &path, err);
        }
        ancestors = Some(Arc::new(Ancestor {
            id,
            parent: Some(chain.clone()),
        }));
    }
    if descend {
        let child = DirTask {
            id: 0,
            path: path.clone(),
            depth,
            ancestors,
            root_dev: task.root_dev,
            own_listing: slow,
            gate: None,
        };
        children.push((position, child));
    }
    Item {
        entry: Ok(WalkEntry {
            path,
            depth,
            file_type,
            metadata: if config.metadata { meta } else { None },
        }),
        descend,
    }
}

/// Delivers a part of a directory's listing, or holds it at the directory's `gate`
/// while its entry is not delivered yet.
fn deliver_part(shared: &Shared, gate: Option<&EntryGate>, listing: Listing) {
    let listing = match gate {
        Some(gate) => gate.hold(listing),
        None => Some(listing),
    };
    if let Some(listing) = listing {
        deliver(shared, listing);
    }
}

/// Hands a finished listing to the walk (unless it was dropped) and wakes it; frees
/// the buffers the walk is done with. If the listing opens a gate, what the gate
/// held follows it (and what gates those open, in turn).
pub(super) fn deliver(shared: &Shared, listing: Listing) {
    // Allocated only if a gate opens: most deliveries are one listing.
    let (mut next, mut queue) = (Some(listing), VecDeque::new());
    while let Some(mut listing) = next.take().or_else(|| queue.pop_front()) {
        let opens = listing.opens.take();
        shared.progress.count(&listing);
        let (waker, spent) = {
            let mut mailbox = lock(&shared.mailbox);
            if shared.stopped.load(Ordering::Relaxed) {
                return;
            }
            mailbox.listings.push_back(listing);
            (mailbox.waker.take(), std::mem::take(&mut mailbox.spent))
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        // The buffers the walk emptied, freed here rather than on its thread (`Spent`).
        drop(spent);
        if let Some(gate) = opens {
            queue.extend(gate.open());
        }
    }
}

// Not on Windows: under Wine (CI's Windows run) every open of a directory takes long
// enough to be judged slow, so the judgement these check cannot be made there (a run
// failed with [254, 254, 254] parts, and creating the 20,000 files took two minutes).
#[cfg(all(test, not(loom), not(windows)))]
mod tests {
    use super::*;
    use crate::fs::walk::WalkOptions;

    /// A cached directory this large takes a millisecond or more to list on this
    /// machine (std allocates a path per entry), but opens in microseconds.
    const LARGE_DIR: usize = 20_000;
    /// Reads of it, of which one must be judged right.
    const READS: usize = 3;

    #[test]
    fn a_large_cached_directory_is_stat_ed_in_chunks_not_split_as_if_slow() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..LARGE_DIR {
            std::fs::File::create(dir.path().join(i.to_string())).unwrap();
        }
        std::fs::read_dir(dir.path()).unwrap().for_each(drop); // cached now
        let pool = Pool::builder().max_threads(2).build().unwrap();
        // The rule is a judgement of time: an open preempted for 250 µs misjudges
        // one directory. So the best of a few reads; with the listing judged (the
        // old rule), every read of this directory split it.
        let parts_of_one_read = || {
            let walk = WalkOptions::new()
                .pool(&pool)
                .metadata(false)
                .walk(dir.path());
            let task = DirTask {
                id: 1,
                path: dir.path().to_path_buf(),
                depth: 0,
                ancestors: None,
                root_dev: None,
                own_listing: true,
                gate: None,
            };
            let permit = pool.budget().try_acquire().unwrap();
            read_directory(&walk.shared, &pool, task, permit);
            // The first part was delivered on this thread, others by the runners.
            let parts = lock(&walk.shared.mailbox).listings[0].parts as usize;
            parts
        };
        let parts: Vec<usize> = (0..READS).map(|_| parts_of_one_read()).collect();
        assert!(
            parts.contains(&LARGE_DIR.div_ceil(STAT_CHUNK)),
            "a cached directory of {LARGE_DIR} split as if on a slow mount: {parts:?} parts"
        );
    }
}

#[cfg(all(test, not(loom)))]
mod root_open_tests {
    use super::*;

    fn denied() -> io::Error {
        io::Error::from(io::ErrorKind::PermissionDenied)
    }

    #[test]
    fn a_failed_open_of_a_root_the_walk_enters_is_reported_once_whichever_ends_first() {
        // The open first: the stat reports it.
        let root = RootOpen::new();
        assert!(root.open_failed(denied()).is_none());
        assert_eq!(
            root.stat_done(true).map(|err| err.kind()),
            Some(io::ErrorKind::PermissionDenied)
        );
        // The stat first: the open reports it.
        let root = RootOpen::new();
        assert!(root.stat_done(true).is_none());
        assert_eq!(
            root.open_failed(denied()).map(|err| err.kind()),
            Some(io::ErrorKind::PermissionDenied)
        );
    }

    #[test]
    fn a_failed_open_of_a_root_the_walk_does_not_enter_is_no_error_whichever_ends_first() {
        let root = RootOpen::new();
        assert!(root.open_failed(denied()).is_none());
        assert!(root.stat_done(false).is_none());
        let root = RootOpen::new();
        assert!(root.stat_done(false).is_none());
        assert!(root.open_failed(denied()).is_none());
    }
}

#[cfg(all(test, not(loom)))]
mod entry_gate_tests {
    use super::*;
    use crate::fs::walk::WalkOptions;

    fn part(id: u64, opens: Option<Arc<EntryGate>>) -> Listing {
        Listing {
            id,
            part: 0,
            parts: 1,
            items: Vec::new(),
            children: Vec::new(),
            opens,
        }
    }

    #[test]
    fn a_directory_s_parts_wait_for_the_part_with_its_entry_and_follow_it() {
        let pool = Pool::builder().max_threads(1).build().unwrap();
        // Never polled: its root job never starts, the mailbox is the test's.
        let walk = WalkOptions::new().pool(&pool).walk("unused");
        let shared = &walk.shared;
        let in_mailbox = || -> Vec<u64> {
            let mailbox = lock(&shared.mailbox);
            mailbox.listings.iter().map(|listing| listing.id).collect()
        };
        // Directory 2 was entered early from directory 1's listing, and 3 from 2's.
        let (two, three) = (EntryGate::new(), EntryGate::new());
        deliver_part(shared, Some(&three), part(3, None));
        deliver_part(shared, Some(&two), part(2, None));
        deliver_part(shared, Some(&two), part(2, Some(three.clone()))); // 3's entry
        assert_eq!(in_mailbox(), [0u64; 0], "a part went ahead of its entry");
        // Directory 1's part with 2's entry: then 2's parts, then 3's.
        deliver_part(shared, None, part(1, Some(two.clone())));
        assert_eq!(in_mailbox(), [1, 2, 2, 3]);
        // Open gates hold nothing.
        deliver_part(shared, Some(&two), part(2, None));
        deliver_part(shared, Some(&three), part(3, None));
        assert_eq!(in_mailbox(), [1, 2, 2, 3, 2, 3]);
    }
}
