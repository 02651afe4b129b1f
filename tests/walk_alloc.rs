//! `aopen::fs::walk` frees no large block on its caller's thread that a pool thread
//! allocated (the buffers of its listings): glibc frees a block into the arena of the
//! thread that allocated it, under that arena's lock, so on the loop's thread such a
//! free could sleep until a preempted pool thread let go of the lock.
//!
//! Its own test binary: it installs a global allocator that tags every block with the
//! thread that allocated it and counts, on the watched thread, frees of large blocks
//! that another thread allocated.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use aopen::fs::WalkOptions;
use aopen::Pool;

/// A block this large or larger counts (glibc's per-thread cache takes smaller ones
/// without the arena's lock; a path is far smaller, a listing's buffer far larger).
const LARGE: usize = 4096;
/// The tag stored before each block: at least this many bytes.
const HEADER: usize = 16;
/// Directories and files per directory of the test tree: several chunks each.
const DIRS: usize = 8;
const FILES: usize = 600;

/// Numbers threads for the tags, from 1 (0: not numbered yet, or no thread-local).
static NEXT_TAG: AtomicU64 = AtomicU64::new(1);
/// The thread whose frees are counted (0: none).
static WATCHED: AtomicU64 = AtomicU64::new(0);
/// Large blocks another thread allocated, freed on the watched thread.
static FOREIGN_FREES: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static TAG: Cell<u64> = const { Cell::new(0) };
}

/// This thread's tag (0 while its thread-locals are being torn down).
fn tag() -> u64 {
    TAG.try_with(|tag| {
        if tag.get() == 0 {
            tag.set(NEXT_TAG.fetch_add(1, Ordering::Relaxed));
        }
        tag.get()
    })
    .unwrap_or(0)
}

/// The system allocator, each block preceded by the tag of the thread that made it.
struct Tagging;

fn padded(layout: Layout) -> (Layout, usize) {
    let header = HEADER.max(layout.align());
    let padded = Layout::from_size_align(layout.size() + header, layout.align().max(HEADER))
        .expect("a layout that fits");
    (padded, header)
}

// SAFETY: every block comes from `System` with room for the header in front, and is
// given back to it with the same padded layout; the header is written before the
// block is handed out and read only in `dealloc`, while the block is still ours.
unsafe impl GlobalAlloc for Tagging {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let (padded, header) = padded(layout);
        // SAFETY: `padded` has a nonzero size (the header).
        let base = unsafe { System.alloc(padded) };
        if base.is_null() {
            return base;
        }
        // SAFETY: `base` is aligned to at least `HEADER` (16) and has `header` bytes
        // before the block; a `u64` fits there.
        unsafe {
            (base as *mut u64).write(tag());
            base.add(header)
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let (padded, header) = padded(layout);
        // SAFETY: `ptr` came from `alloc` with this layout, `header` bytes after the
        // base, where the tag was written.
        let base = unsafe { ptr.sub(header) };
        // SAFETY: `alloc` wrote the tag at `base`, aligned for a `u64`, and the block
        // is still allocated.
        let owner = unsafe { (base as *const u64).read() };
        let me = tag();
        if layout.size() >= LARGE && me != 0 && me == WATCHED.load(Ordering::Relaxed) && owner != me
        {
            FOREIGN_FREES.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: `base` was allocated by `System` with `padded`.
        unsafe { System.dealloc(base, padded) }
    }
}

#[global_allocator]
static ALLOCATOR: Tagging = Tagging;

/// Walks a tree of [`DIRS`] × [`FILES`] on this thread, dropping each entry as it
/// comes; returns the entries and the foreign large frees counted meanwhile.
fn walk_counting(sorted: bool) -> (usize, usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    for d in 0..DIRS {
        let sub = dir.path().join(format!("d{d}"));
        std::fs::create_dir(&sub).unwrap();
        for f in 0..FILES {
            std::fs::File::create(sub.join(format!("f{f}"))).unwrap();
        }
    }
    let pool = Pool::builder().max_threads(4).build().unwrap();
    let mut walk = WalkOptions::new()
        .pool(&pool)
        .sorted(sorted)
        .walk(dir.path());
    FOREIGN_FREES.store(0, Ordering::Relaxed);
    WATCHED.store(tag(), Ordering::Relaxed);
    let entries = aopen::block_on(async {
        let mut entries = 0;
        while let Some(entry) = walk.next_entry().await.unwrap() {
            drop(entry);
            entries += 1;
        }
        entries
    });
    WATCHED.store(0, Ordering::Relaxed);
    drop(walk); // what is left of it may be freed here: the walk is over
    (entries, FOREIGN_FREES.load(Ordering::Relaxed))
}

#[test]
fn a_walk_frees_no_pool_allocated_buffer_on_its_caller_thread() {
    for sorted in [false, true] {
        let (entries, foreign) = walk_counting(sorted);
        assert_eq!(entries, 1 + DIRS * (1 + FILES));
        assert_eq!(
            foreign, 0,
            "sorted({sorted}): {foreign} large blocks of pool threads freed on the walk's thread"
        );
    }
}
