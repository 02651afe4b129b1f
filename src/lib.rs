//! Asynchronous `open`, `close`, `stat`, `read`, `write` and `readdir`, with no
//! runtime of its own to impose.
//!
//! # Why
//!
//! Operating systems give async programs no asynchronous `open(2)`, `stat(2)` or
//! `close(2)`: they block the calling thread, and on an NFS mount a single call can
//! take seconds, stalling every task on that event loop. The classic answer is a pool
//! of threads that makes the calls instead. Done naively it has four holes: a
//! descriptor opened after its caller gave up is never closed; nothing stops a
//! program from opening more files than it may; a close can race with a read still
//! running on another thread (and the reused number sends the read to another file);
//! and the error `close(2)` reports on NFS is thrown away.
//!
//! # What this crate does
//!
//! - [`fs`] mirrors `std::fs` with futures. Every open descriptor lives in a *lane*:
//!   its operations run in issue order, one at a time, and its close runs last, on the
//!   pool, after every operation, also after futures that were dropped mid-flight.
//!   [`File::close`] returns the error of `close(2)`.
//! - [`Budget`] caps the descriptors held at once (by default from
//!   `RLIMIT_NOFILE`); an open waits for a permit instead of failing with `EMFILE`.
//! - [`Pool`] is a work-stealing pool of threads (`crossbeam-deque`) that grows on
//!   demand, shrinks when idle, and reports [`PoolStats`].
//! - [`block_on`], [`LocalExecutor`] and [`sleep`] let you run it all without a
//!   runtime; under tokio, smol or `futures::executor` the same futures just work.
//!
//! ```
//! # let dir = std::env::temp_dir().join(format!("aopen-doc-lib-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! use aopen::fs::{self, OpenOptions};
//!
//! aopen::block_on(async {
//!     let path = dir.join("greeting.txt");
//!     let mut file = OpenOptions::new().write(true).create(true).open(&path).await?;
//!     file.write_all(b"hello").await?; // Ok: write(2) took every byte
//!     file.close().await?; // the error of close(2), if any
//!
//!     assert_eq!(fs::read_to_string(&path).await?, "hello");
//!     let sizes = fs::metadata_batch([&path]).await?;
//!     assert_eq!(sizes[0].as_ref().map(|m| m.len()).ok(), Some(5));
//!     std::io::Result::Ok(())
//! })?;
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The rules this crate keeps, and how each is tested and model-checked, are in the
//! README and in the module docs of [`fs`], [`pool`] and [`budget`].
#![deny(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod budget;
pub mod executor;
pub mod fs;
pub mod pool;
mod sync;
#[cfg(not(loom))]
pub mod time;

pub use budget::{Budget, Permit};
pub use executor::{block_on, LocalExecutor, Task};
pub use fs::{File, OpenOptions};
#[cfg(not(loom))]
pub use pool::unblock;
pub use pool::{BlockingTask, Pool, PoolBuilder, PoolStats};
#[cfg(not(loom))]
pub use time::{sleep, sleep_until, Sleep};

/// Not API: what the loom models (`loom-tests/`), the property tests and the fuzz
/// targets reach inside the crate, so that they drive the real parker, lanes and
/// open path with a counting fake descriptor. No semver promise.
#[doc(hidden)]
pub mod __internals {
    pub use crate::executor::parker::{waker, Parker};
    pub use crate::fs::lane::{open_in_lane, Lane, Resource};
}
