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
//! # The model, for a newcomer
//!
//! Four pieces work together. None of them needs a runtime; each is a plain type you
//! can hold, log and test.
//!
//! **The pool** ([`Pool`], module [`pool`]). A set of threads that make the blocking
//! calls for you. A job pushed from outside the pool goes to one shared FIFO, the
//! *injector*; a job pushed by a pool thread (a lane re-queuing itself, say) goes to
//! that thread's own deque. A thread with nothing to do takes from the injector, then
//! *steals* from the other threads' deques, so no thread idles while another has a
//! backlog. Threads start on demand, up to [`PoolBuilder::max_threads`], and exit
//! after [`PoolBuilder::idle_timeout`] without work; [`Pool::stats`] shows how many
//! are alive, busy, queued. The free functions use [`Pool::global`]; [`Pool::fs`]
//! and [`OpenOptions::pool`] pick another pool.
//!
//! **The budget** ([`Budget`], module [`budget`]). An async counting semaphore, one
//! per pool. Every descriptor the crate holds owns one [`Permit`], taken *before*
//! `open(2)` and given back only *after* `close(2)` returned. When none is free, an
//! open waits (the task sleeps, its thread keeps running other tasks) instead of
//! failing with `EMFILE`; the next close wakes it. Calls that hold no descriptor
//! (`stat`, `rename`, `mkdir`) skip the budget; [`fs::copy`] takes two permits.
//!
//! **The lane** (one per open [`File`] or [`fs::ReadDir`]). A FIFO of the operations
//! issued on that descriptor, run on the pool one at a time, in issue order, by a
//! single drainer job. The close is pushed into the same FIFO, so it runs *after*
//! every operation issued before it, and nothing can be issued after it
//! ([`File::close`] takes `self`). The permit is dropped after the close returned.
//! That gives the lifecycle rules:
//!
//! 1. *close after open*: a lane exists only once `open(2)` returned; if the caller
//!    gave up meanwhile, the unclaimed lane is dropped, which queues the close;
//! 2. *close after every operation*: one FIFO, one drainer, close last;
//! 3. *budget*: a permit per descriptor, returned after `close(2)`;
//! 4. *never block the caller*: dropping a `File` only pushes the close job.
//!
//! The other three rules (no write-behind, memory safety across cancellation, clear
//! errors) are about each operation; [`fs`] lists all seven.
//!
//! **The waker.** A future of this crate never blocks: it pushes a job and returns
//! `Pending`. The pool thread that finishes the job stores the result and calls the
//! task's [`Waker`](std::task::Waker); the executor (tokio, smol, [`block_on`],
//! [`LocalExecutor`], anything) then polls the task again and it takes the result.
//! That is all the crate asks of an executor, which is why it needs none of its own.
//!
//! One call's path, `File::open(path).await` then `file.close().await`:
//!
//! ```text
//! caller's task                          aopen
//! ─────────────                          ─────
//! File::open(path).await      FsFuture: Send + 'static, owns the path
//!   │
//!   ▼
//! ① budget.acquire()    no unit free: the task sleeps here (no EMFILE);
//!   │ Permit            a close elsewhere drops its permit and wakes it
//!   ▼
//! ② push the job ──▶ ┌──────────────────── Pool ────────────────────┐
//!   │ Pending        │ injector (FIFO) ──pop──▶ thread A: open(2)   │
//!   │                │ thread A's deque ◀──steal── idle thread B    │
//!   │                │ ③ open(2) returned fd:                       │
//!   │                │   Lane { fd, Permit, FIFO of ops }           │
//!   │                └───────────────────────┬──────────────────────┘
//!   │                                        │ result stored,
//!   ▼                                        │ waker.wake()
//! ④ executor polls the task again ◀──────────┘
//!   │ Ok(File)   (if the future was dropped meanwhile, the lane is
//!   │             dropped instead, and that queues the close)
//!   ▼
//! file.read(&mut buf).await ──┐   ┌──── lane FIFO ───────────────────┐
//! file.write_all(b"..").await ┼─▶ │ read │ write │ close (last)      │
//! file.close().await ─────────┘   └──────┬───────────────────────────┘
//!                                        │ one drainer job on the pool runs them in
//!                                        │ order: each op, then close(2), then
//!                                        │ drop(Permit): a unit is free, a waiter woken
//!                                        ▼ result stored, waker.wake()
//! Ok(()) or close(2)'s error at file.close().await ◀── executor polls
//! ```
//!
//! # Why `close` is async
//!
//! `close(2)` is a blocking call like any other: on NFS it flushes the file's dirty
//! pages to the server and waits for the answer, and it is where deferred write
//! errors (`EIO`, `ENOSPC`, `EDQUOT`) are reported. A `Drop` can neither wait without
//! stalling the caller's thread nor return an error. So dropping a [`File`] queues
//! the close on the pool and returns at once (its error is lost), and
//! [`File::close`]`(self).await` runs the same close, after every queued operation,
//! and gives you what `close(2)` said. Use it wherever a lost write would matter.
//!
//! ```
//! # let dir = std::env::temp_dir().join(format!("aopen-doc-lib-close-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! aopen::block_on(async {
//!     let mut file = aopen::File::create(dir.join("report.csv")).await?;
//!     file.write_all(b"a,b\n1,2\n").await?;
//!     // Not `drop(file)`: that would close it too, but throw close(2)'s error away.
//!     file.close().await
//! })?;
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Coming from `tokio::fs`, `async-fs` or `std::fs`
//!
//! The names and arguments are std's, so most code ports by changing the import
//! (`tests/migration.rs` runs one program against both `tokio::fs` and `aopen::fs`).
//! What differs: `File`'s I/O methods are inherent `async fn`s (no extension traits,
//! no `flush`: a write returns once `write(2)` took the bytes, nothing is buffered);
//! [`File::close`] exists; an open waits for the budget instead of failing with
//! `EMFILE`; errors name the operation and path ([`fs::PathError`]), so use
//! [`fs::os_error`] instead of `raw_os_error()` for the errno. The README has the
//! full table.
//!
//! # What the compiler refuses
//!
//! The rules above are not only checked at run time. A closure sent to the pool must
//! be `Send` (it runs on another thread), so this does not compile:
//!
//! ```compile_fail,E0277
//! use std::rc::Rc;
//!
//! let shared = Rc::new(5);
//! // error: `Rc<i32>` cannot be sent between threads safely
//! let task = aopen::unblock(move || *shared + 1);
//! ```
//!
//! A closure sent to the pool must own what it uses (`'static`): the caller may drop
//! the future and free its stack frame while the job still runs.
//!
//! ```compile_fail,E0373
//! let name = String::from("a.txt");
//! // error: closure may outlive the current function, but it borrows `name`
//! let task = aopen::unblock(|| name.len());
//! # drop(task);
//! ```
//!
//! [`File::close`] takes `self`: a closed file cannot be used, so no operation can
//! be queued behind its close.
//!
//! ```compile_fail,E0382
//! # aopen::block_on(async {
//! let mut file = aopen::File::open("/etc/hostname").await?;
//! file.close().await?;
//! // error: borrow of moved value: `file`
//! let _ = file.metadata().await;
//! # Ok::<(), std::io::Error>(())
//! # });
//! ```
//!
//! A buffer lent to a `read` stays borrowed until the read's future is done (or
//! dropped), so the caller cannot touch it while the pool fills it; the pool fills an
//! owned buffer and copies, so dropping the future never leaves a thread writing into
//! the caller's memory (rule 6).
//!
//! ```compile_fail,E0499
//! # aopen::block_on(async {
//! let mut file = aopen::File::open("/etc/hostname").await?;
//! let mut buf = [0u8; 16];
//! let read = file.read(&mut buf);
//! // error: cannot borrow `buf` as mutable more than once at a time
//! buf.fill(0);
//! read.await?;
//! # Ok::<(), std::io::Error>(())
//! # });
//! ```
//!
//! [`LocalExecutor`] runs `!Send` futures on one thread, so neither it nor its
//! [`Task`] handles may move to another thread:
//!
//! ```compile_fail,E0277
//! let ex = aopen::LocalExecutor::new();
//! let task = ex.spawn(async { 1 });
//! // error: `Rc<...>` cannot be sent between threads safely
//! std::thread::spawn(move || ex.run(task));
//! ```
//!
//! # Optional features
//!
//! Off by default; each adds one interface crate, never a runtime.
//!
//! - `futures-io`: [`File`] implements `futures_io::AsyncRead`, `AsyncWrite` and
//!   `AsyncSeek`, and [`fs::ReadDir`] is a `futures_core::Stream` of entries, so
//!   `futures::io::copy`, `BufReader` and `StreamExt` work on them.
//! - `tokio`: [`File`] implements `tokio::io::AsyncRead`, `AsyncWrite` and
//!   `AsyncSeek` (the traits only: no tokio runtime is needed), so `tokio::io::copy`
//!   and tokio's `BufReader` work on it.
//!
//! The rules hold through the traits too: `poll_write` returns `Ok(n)` only once
//! `write(2)` took the bytes, `poll_close` / `poll_shutdown` closes the file and
//! returns `close(2)`'s error, and an operation whose poll was given up keeps its job
//! in the `File`, so nothing is lost (the trait impls' docs on [`File`] say more).
//!
//! The rules this crate keeps, and how each is tested and model-checked, are in the
//! README and in the module docs of [`fs`], [`pool`] and [`budget`].
#![deny(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod budget;
pub mod executor;
pub mod fs;
pub mod pool;
mod sync;
mod sys;
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

    /// A waiter for `units` units at once (what a `copy` takes), for the models.
    pub fn acquire_units(budget: &crate::Budget, units: usize) -> crate::budget::Acquire {
        budget.acquire_units(units)
    }

    /// A permit taken at once, overdrawing a full budget (what `File::from_std`
    /// takes for a descriptor that is open already), for the models.
    pub fn overdraw(budget: &crate::Budget) -> crate::Permit {
        budget.overdraw()
    }
}
