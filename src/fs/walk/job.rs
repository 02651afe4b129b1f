//! The unit of work of a walk: one directory, read whole by one pool job.
//!
//! A job opens its directory (holding the budget permit the [`Walk`](super::Walk)
//! acquired for it), reads every name, stats each entry relative to the directory's
//! own descriptor, closes the directory and gives the permit back, all on the pool
//! thread; then it hands its [`Listing`] to the walk's mailbox. So no descriptor ever
//! leaves the pool thread that opened it, and a walk that is dropped holds none.
//!
//! Metadata: `std::fs::Metadata` has no public constructor, so it can only come from
//! std. std's `DirEntry::metadata` is `statx(dirfd, name, AT_SYMLINK_NOFOLLOW)` on
//! Linux (`fstatat` where `statx` is missing): relative to the open directory, no
//! path resolved again, and a real `Metadata`. That is what a job calls. Measured on
//! `/usr` (132,631 entries, warm cache, one thread, `benches/walk.rs`'s
//! `stat-variants`): see the README's "Walking a tree".

use std::fs::{FileType, Metadata};
use std::io;
use std::path::{Path, PathBuf};
use std::task::Waker;

use super::{Config, Shared, WalkEntry};
use crate::budget::Permit;
use crate::fs::error::{retry_interrupted, with_path};
use crate::sync::{lock, DynArc as Arc, Ordering};

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
}

/// One entry of a listing, and whether its contents are to follow.
pub(super) struct Item {
    pub(super) entry: io::Result<WalkEntry>,
    /// The entry is a directory the walk descends into; its [`DirTask`] is the
    /// listing's next child.
    pub(super) descend: bool,
}

/// What a job hands back: the directory's entries (in name order in a sorted walk)
/// and the subdirectories to read next, in the order of their items.
pub(super) struct Listing {
    pub(super) id: u64,
    pub(super) items: Vec<Item>,
    pub(super) children: Vec<DirTask>,
}

/// The walk's root: one stat (following a symlink, as walkdir does for its root),
/// and the root's listing is its single item.
pub(super) fn stat_root(config: &Config, path: PathBuf, id: u64) -> (Listing, Option<DirTask>) {
    let mut listing = Listing {
        id,
        items: Vec::with_capacity(1),
        children: Vec::new(),
    };
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

/// Reads the directory of `task` whole, then gives `permit` back. `None` if the walk
/// was dropped before or while it ran (nobody is left to hand the listing to).
pub(super) fn read_directory(shared: &Shared, task: DirTask, permit: Permit) -> Option<Listing> {
    let config = &shared.config;
    let mut listing = Listing {
        id: task.id,
        items: Vec::new(),
        children: Vec::new(),
    };
    let stream = match retry_interrupted(|| std::fs::read_dir(&task.path)) {
        Ok(stream) => stream,
        Err(err) => {
            drop(permit);
            listing.items.push(Item {
                entry: Err(with_path("open directory", &task.path, err)),
                descend: false,
            });
            return Some(listing);
        }
    };
    // All names first: a sorted walk needs them all before the first stat, and the
    // directory is stat'ed in the order its items will be handed out.
    let mut names = Vec::new();
    let mut read_error = None;
    for entry in stream {
        match entry {
            Ok(entry) => {
                let path = entry.path();
                names.push((entry, path));
            }
            Err(err) => {
                // std's stream ends after an error; report it once, after the names.
                read_error = Some(with_path("read directory", &task.path, err));
                break;
            }
        }
        if names.len() % STOP_CHECK_EVERY == 0 && shared.stopped.load(Ordering::Relaxed) {
            return None; // closes the stream, then drops the permit (declaration order)
        }
    }
    if config.sorted {
        // Every path has the same parent, so byte order of the paths is byte order
        // of the names: walkdir's `sort_by_file_name`.
        // (`as_encoded_bytes` is the bytes on Unix, and sorts like the names elsewhere.)
        names.sort_unstable_by(|a, b| {
            a.1.as_os_str()
                .as_encoded_bytes()
                .cmp(b.1.as_os_str().as_encoded_bytes())
        });
    }
    listing
        .items
        .reserve_exact(names.len() + usize::from(read_error.is_some()));
    let depth = task.depth + 1;
    for (i, (entry, path)) in names.into_iter().enumerate() {
        if i % STOP_CHECK_EVERY == 0 && shared.stopped.load(Ordering::Relaxed) {
            return None;
        }
        let item = examine(config, &task, depth, &entry, path, &mut listing.children);
        listing.items.push(item);
    }
    // Every `DirEntry` (each holds the stream open) is gone: this is the close.
    // std asserts that `closedir` succeeded, and its only error (EBADF) cannot happen
    // on a stream it owns; the job's `catch_unwind` turns a panic into an error.
    drop(permit);
    if let Some(err) = read_error {
        listing.items.push(Item {
            entry: Err(err),
            descend: false,
        });
    }
    Some(listing)
}

/// One entry: its stat (relative to the open directory), the link it may point
/// through, and whether the walk goes into it.
fn examine(
    config: &Config,
    task: &DirTask,
    depth: usize,
    entry: &std::fs::DirEntry,
    path: PathBuf,
    children: &mut Vec<DirTask>,
) -> Item {
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
        children.push(DirTask {
            id: 0,
            path: path.clone(),
            depth,
            ancestors,
            root_dev: task.root_dev,
        });
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

/// Hands a finished listing to the walk (unless it was dropped) and wakes it.
pub(super) fn deliver(shared: &Shared, listing: Listing) {
    shared.progress.count(&listing);
    let waker: Option<Waker> = {
        let mut mailbox = lock(&shared.mailbox);
        if shared.stopped.load(Ordering::Relaxed) {
            return;
        }
        mailbox.listings.push_back(listing);
        mailbox.waker.take()
    };
    if let Some(waker) = waker {
        waker.wake();
    }
}
