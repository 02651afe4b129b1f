//! The work-stealing blocking pool.
//!
//! # Why a pool
//!
//! `open`, `stat`, `close`, `read` and `readdir` block the calling thread, and no
//! runtime has an asynchronous version of them. The pool runs them on threads of its
//! own and hands the result back through a future ([`BlockingTask`]), so the caller's
//! event loop keeps running while an NFS server thinks.
//!
//! # How threads come and go
//!
//! - **Queues.** Callers outside the pool push to one global `Injector`; a job pushed
//!   from inside a pool thread goes to that thread's own `Worker` deque, and idle
//!   threads steal from the others' deques when the injector is empty
//!   (`crossbeam-deque`; see `queue.rs`).
//! - **Start.** No thread runs until there is work. When a job is pushed and no thread
//!   is *searching* (awake and looking for work), the pushing thread wakes one sleeping
//!   thread, or starts a new one if none sleeps and fewer than `eager_threads` run
//!   (one per core, at least 2). Past that, every thread is busy, and more threads
//!   only help if the busy ones are *asleep in the kernel* (a slow mount) rather than
//!   computing, or have computed one job for so long that the queue should not wait
//!   for it: the watcher (`watch.rs`) checks that every few hundred microseconds
//!   and starts threads, up to `max_threads`, only then.
//! - **No thundering herd.** A woken or new thread counts as searching from the moment
//!   it is chosen, so a burst of pushes wakes one thread, not one per push. When a
//!   searching thread finds a job it stops searching, and if more jobs are left than
//!   threads search, it wakes up to two sleepers for them (`growth::on_take`): the
//!   woken threads double at each wake-up, so a burst reaches hundreds of sleeping
//!   threads in a few wake-ups rather than hundreds one after another, and the pool
//!   never has more threads awake than it has work for.
//! - **No lost wake-ups.** A thread moves from searching to sleeping under the
//!   sleep lock, and only then looks at the queue once more. A pusher pushes, then
//!   reads `searching`: either it sees a searcher (which will look at the queue after
//!   it stops searching, and so see the job) or it takes the sleep lock after the
//!   thread counted itself sleeping (and so wakes it). A thread that finished a job
//!   counts itself searching again *before* it wakes the job's waiter, so the
//!   waiter's next push finds it. The loom model `pool_handoff_never_strands_a_job`
//!   checks this.
//! - **Retire.** A thread that sleeps `idle_timeout` without being woken exits. A
//!   thread only sleeps when its own deque is empty, so retiring drops no job.
//! - **Turns.** A thread that has run jobs for a quarter of a millisecond without
//!   sleeping yields its core between two jobs (`turn.rs`), so an event loop that
//!   shares the core waits for it about that long, not until the kernel's next
//!   clock tick ends the thread's time slice (up to 4 ms).
//! - **Panics.** A panic in a job is caught; the thread lives on and the panic is
//!   resumed at the job's `.await`.
//!
//! # Caveats
//!
//! - A call that hangs (a dead NFS server with a `hard` mount) holds its thread for
//!   as long as it hangs. Dropping the future does not interrupt the system call; it
//!   only makes sure the result is cleaned up (a descriptor closed) when the call
//!   returns. [`PoolStats::threads_asleep`] shows such threads in a log line.
//! - A push (and so a drop that queues a close) may start a pool thread on the
//!   pushing thread: `clone(2)` and a stack `mmap`, never a file system call.
//! - If the OS refuses to start any thread while none is alive (a stack size it
//!   cannot map, a thread limit), the queued jobs run on the thread that queued them,
//!   rather than wait for a thread that may never come (a dropped file's close would
//!   hold its descriptor and permit, an awaited task would hang).

mod builder;
mod growth;
mod handle;
pub(crate) mod job;
mod queue;
mod sched;
mod turn;
mod watch;

pub use self::builder::{
    default_max_threads, parse_env_value, PoolBuilder, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_THREADS_PER_CORE, DEFAULT_THREAD_NAME, DESCRIPTOR_BUDGET_ENV, MAX_THREADS_ENV,
    MIN_DEFAULT_MAX_THREADS,
};
#[cfg(not(loom))]
pub use self::handle::unblock;
pub use self::handle::{Pool, PoolStats};
pub use self::job::BlockingTask;
