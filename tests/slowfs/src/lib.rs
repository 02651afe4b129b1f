//! A slow FUSE file system for aopen's tests and benches.
//!
//! # Why
//!
//! aopen exists for slow mounts: an NFS share of a NAS, a busy network drive, where one
//! `stat` takes milliseconds and concurrency is the throughput. A libc shim that delays
//! `open` misses every call that does not go through the wrapped symbol; this is a real
//! file system in the kernel's path, so every `stat`, `open`, `read` and `readdir` of any
//! library (std, tokio, blocking, aopen) pays the same latency, and the server can count
//! what reached it.
//!
//! # What it serves
//!
//! A generated, read-only [`Tree`]: `fanout` directories per level, `depth` levels,
//! `files_per_dir` files in every directory but the root. Names, inode numbers, sizes,
//! mtimes and bytes are functions of the position, so a tree of 1,000,000 files costs
//! neither memory nor disk, and two mounts of the same tree are identical except for
//! the [`Plant`]s given to one of them (a size, an mtime, a missing file, an extra file).
//! [`fill_content`] gives the bytes a read returns, to check them.
//!
//! # How slow
//!
//! Each request waits its kind's [`Latency`] once it holds one of `concurrency` slots;
//! requests beyond that wait in line, like requests at an NFS server with all its threads
//! busy. The kernel caches nothing (entry and attribute timeouts 0, `FOPEN_DIRECT_IO`),
//! so each `stat` of `d007/f0042` is a `LOOKUP` of `d007`, one of `f0042` and a
//! `GETATTR`. Requests do not take a thread each: four threads read `/dev/fuse` and
//! hand each answer to one timer thread (see `sched.rs`).
//!
//! With [`Builder::hung_dir`], the directory [`HUNG_DIR`] under the root never answers
//! a request on it or below it, until the [`SlowFs`] is dropped: the hung NAS.
//!
//! # What it counts
//!
//! [`SlowFs::stats`]: requests served per [`Kind`], requests in flight now, the most in
//! flight at once, requests parked, waiting for a slot and held; [`SlowFs::reset_stats`]
//! starts a new count.
//!
//! [`SlowFs::hold`] stops one kind of request at a gate until [`SlowFs::release`]
//! ([`SlowFs::hold_in`]: only those about one directory's entries): a test that wants
//! "N requests at the server at once" waits until [`Stats::held`] reaches N, a
//! condition instead of a race against the latency.
//!
//! # Mounting and unmounting
//!
//! [`Builder::mount`] mounts in a new directory under the temp dir; dropping the
//! [`SlowFs`] (also while a test panics) answers everything still pending (parked
//! requests with `ENOTCONN`), detaches the mount (`MNT_DETACH`) and waits for the kernel
//! to end the connection, aborting it through `/sys/fs/fuse/connections` if something
//! still holds the mount. If the process dies without dropping it, the kernel aborts the
//! connection when `/dev/fuse` closes (every call on it fails with `ENOTCONN`, none
//! hangs), and the next mount detaches such dead mounts. Where a thread of the dying
//! process waits on its own mount, the descriptors would never close (a FUSE request in
//! the server's hands survives even `SIGKILL`); a watchdog process per mount aborts the
//! connection then (see `mount.rs`).
//!
//! It needs Linux, root (the mount is made with `mount(2)` directly: no `fusermount`,
//! no libfuse) and `/dev/fuse`. Tests call [`SlowFs::announce`], which prints one line
//! saying whether they run or are skipped, and why. With `AOPEN_SLOWFS_REQUIRE=1`
//! ([`REQUIRE_ENV`]) a missing FUSE is a panic instead of a skip (CI sets it).
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use aopen_slowfs::{Kind, Latency, SlowFs, Tree};
//!
//! if !SlowFs::announce("example") {
//!     return;
//! }
//! let fs = SlowFs::builder()
//!     .tree(Tree::flat(10, 100))
//!     .latency(Latency::uniform(Duration::from_millis(5)))
//!     .concurrency(256)
//!     .mount()
//!     .unwrap();
//! let meta = std::fs::metadata(fs.file_path(3, 42)).unwrap();
//! assert_eq!(meta.len(), fs.tree().file_size(fs.tree().file_ino(3, 42)));
//! let stats = fs.stats();
//! assert_eq!(stats.served_of(Kind::Lookup), 2); // "d2", then "f42"
//! assert_eq!(stats.served_of(Kind::Getattr), 1);
//! ```
//!
//! # Caveats
//!
//! - Latency is a timer's: answers come a little late, never early. Each request also
//!   costs two thread wake-ups in the server (a reader, then the timer) besides the
//!   kernel's round trip: on the project's 2-core VM a sequential `stat` took
//!   0.1–0.3 ms more per request than the latency (benches/sweep.rs, `std` column),
//!   so sub-millisecond latencies are only roughly what they say.
//! - The `FLUSH` of the first `close` is answered `ENOSYS` (the kernel then stops sending
//!   flushes) and `RELEASE` is sent in the background, so `close(2)` does not wait for
//!   the server; `open` + `close` costs two round trips (`LOOKUP`, `OPEN`), a 4 KiB read
//!   after it one more.

#![warn(missing_docs)]
#![cfg(target_os = "linux")]

mod mount;
mod sched;
mod server;
mod tree;

pub use mount::{
    Builder, SlowFs, DEFAULT_CONCURRENCY, FS_NAME, READER_THREADS, REQUIRE_ENV, UNMOUNT_GRACE,
    WATCHDOG_PERIOD_SECS,
};
pub use sched::{Kind, Latency, Stats};
pub use tree::{
    content, fill_content, Plant, Tree, BLOCK_SIZE, DEFAULT_SIZE_MIN, DEFAULT_SIZE_SPREAD,
    DIR_SIZE, HUNG_DIR, MTIME_BASE_SECS, MTIME_SPREAD_SECS, PLANTED_MTIME_SHIFT,
    PLANTED_SIZE_DELTA, ROOT_INO,
};
