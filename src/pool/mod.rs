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
//!   searching thread finds a job it stops searching, and if it was the last searcher
//!   and work is left, it wakes the next thread: the pool ramps up one thread per job
//!   taken, and never has more threads awake than it has work for.
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
//! - **Panics.** A panic in a job is caught; the thread lives on and the panic is
//!   resumed at the job's `.await`.
//!
//! # Caveat
//!
//! A call that hangs (a dead NFS server with a `hard` mount) holds its thread for as
//! long as it hangs. Dropping the future does not interrupt the system call; it only
//! makes sure the result is cleaned up (a descriptor closed) when the call returns.

mod builder;
pub(crate) mod job;
mod queue;
mod watch;

#[cfg(not(loom))]
use std::cell::RefCell;
use std::fmt;
use std::io;
use std::time::{Duration, Instant};

pub use self::builder::{
    default_max_threads, parse_env_value, PoolBuilder, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_THREADS_PER_CORE, DEFAULT_THREAD_NAME, DESCRIPTOR_BUDGET_ENV, MAX_THREADS_ENV,
    MIN_DEFAULT_MAX_THREADS,
};
pub use self::job::BlockingTask;

use self::builder::Config;
use self::job::{ErasedJob, JobCell};
use self::queue::{Injector, Steal, Stealer, Worker};
use self::watch::Progress;
use crate::budget::Budget;
use crate::sync::{
    lock, store_load_fence, thread, Arc, AtomicUsize, Condvar, DynArc, Mutex, MutexGuard, Ordering,
};

/// How many times a thread that found nothing looks again (yielding in between)
/// before it goes to sleep, while no more than [`MAX_SPINNING_PER_CORE`] threads
/// per core do so. Sleeping and being woken costs a context switch on each side
/// (several microseconds); when a caller keeps jobs coming back to back (64 stats
/// in flight), the next job usually arrives within these rounds. Measured on the
/// 2-core bench machine, `stat` with 64 in flight: 4 rounds 0.23–0.35 s, 64 rounds
/// 0.16–0.20 s per 100,000 (`benches/compare.rs`). Busy-waiting (`spin_loop`) in
/// the first rounds instead of yielding was slower: with 64 stats in flight, medians
/// of 9 interleaved runs went from 168 ms to 216–237 ms, and open+close from 275 ms
/// to 333–368 ms; a yield lets the caller's thread, which may share the core, submit
/// the next job. Under loom one round: extra rounds only repeat the same loads, and
/// each yield multiplies the interleavings.
const SEARCH_ROUNDS_BEFORE_SLEEP: usize = if cfg!(loom) { 1 } else { 64 };

/// Rounds for a searching thread beyond the spinning allowance: one look, then sleep.
const SEARCH_ROUNDS_WHEN_CROWDED: usize = 1;

/// Searching threads per core that may spin before sleeping; more would only take
/// turns on the same cores. Fewer were slower: one spinner in all on 2 cores took
/// open+close with 64 in flight from 273 to 321 ms (medians of 9 interleaved runs).
const MAX_SPINNING_PER_CORE: usize = 1;

/// A pool of threads for blocking calls, with a descriptor budget.
///
/// `Pool` is a cheap handle: clones share the same threads, queues and budget. The
/// pool's threads exit when every handle is gone and the queues are empty (or after
/// `idle_timeout` of idleness, whichever is first).
///
/// `Pool` is `Send + Sync + Clone`. Most programs use the global pool (what the
/// free functions use, see [`Pool::global`]); a pool of its own gives one mount its
/// own threads and budget, so a stalled NFS server cannot take every thread.
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("aopen-doc-pool-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// use std::time::Duration;
///
/// let pool = aopen::Pool::builder()
///     .max_threads(4)
///     .descriptor_budget(32)
///     .idle_timeout(Duration::from_secs(1))
///     .build()?;
/// aopen::block_on(async {
///     // Any blocking closure, and the file system calls, on this pool.
///     let answer = pool.unblock(|| 6 * 7).await;
///     assert_eq!(answer, 42);
///     pool.fs().write(dir.join("a"), "x").await?;
///     let file = pool.fs().open(dir.join("a")).await?;
///     assert_eq!(pool.stats().descriptors_held, 1);
///     file.close().await
/// })?;
/// pool.shutdown(Duration::from_secs(5))?; // everything ran, every descriptor closed
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Pool {
    inner: Arc<Inner>,
}

/// A snapshot of a pool's state, for logs and progress lines.
///
/// # Examples
///
/// ```
/// let pool = aopen::Pool::builder().max_threads(2).descriptor_budget(8).build()?;
/// let stats = pool.stats();
/// assert_eq!(stats.threads_alive, 0); // no work yet, so no threads
/// assert_eq!(stats.descriptors_held, 0);
/// // Debug prints one line, fit for a log or a progress line:
/// // PoolStats { threads_alive: 0, threads_busy: 0, jobs_queued: 0, descriptors_held: 0, permit_waiters: 0 }
/// println!("{stats:?}");
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// The fields are read one after another while the pool runs, so they need not add
/// up exactly. Right after a future completes, its thread may still count as busy
/// for a moment (it is handing over the result), and a file or listing that was just
/// dropped or exhausted still counts its descriptor until its close ran on the pool;
/// [`Pool::shutdown`] waits for both.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Worker threads that exist right now (busy, searching or sleeping). The
    /// watcher thread, which runs only while a pool past one thread per core decides
    /// whether to grow, is not counted.
    pub threads_alive: usize,
    /// Threads running a job right now.
    pub threads_busy: usize,
    /// Jobs pushed and not yet taken by a thread (cancelled ones included until a
    /// thread pops and skips them).
    pub jobs_queued: usize,
    /// Descriptors the pool's files and directories hold: permits of its budget
    /// that are taken (an open in flight counts; a close counts until it returned).
    pub descriptors_held: usize,
    /// Tasks waiting for a permit of the pool's budget.
    pub permit_waiters: usize,
}

impl fmt::Debug for PoolStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PoolStats {{ threads_alive: {}, threads_busy: {}, jobs_queued: {}, descriptors_held: {}, permit_waiters: {} }}",
            self.threads_alive,
            self.threads_busy,
            self.jobs_queued,
            self.descriptors_held,
            self.permit_waiters
        )
    }
}

struct Inner {
    config: Config,
    budget: Budget,
    /// Where callers outside the pool push jobs.
    injector: Injector<ErasedJob>,
    /// The live threads, by thread number: the stealing end of each one's own deque,
    /// and what the watcher sees of its progress.
    stealers: Mutex<Vec<ThreadEntry>>,
    /// Jobs in any queue (injector or a thread's deque), not yet popped.
    queued: AtomicUsize,
    /// Threads awake and looking for a job (including ones chosen to wake up that
    /// have not run yet). While this is non-zero, pushers wake nobody.
    searching: AtomicUsize,
    /// Threads running a job.
    busy: AtomicUsize,
    /// How many searching threads may spin before sleeping (per-core allowance).
    max_spinning: usize,
    /// Threads started as soon as work waits (one per core, at least 2, at most
    /// `max_threads`); past these, only the watcher starts threads (see `watch.rs`).
    eager_threads: usize,
    /// The thread bookkeeping that must change together; see [`Sleep`].
    sleep: Mutex<Sleep>,
    /// Sleeping threads wait here.
    wake: Condvar,
    /// The watcher waits here (for demand, or for its next tick).
    watch: Condvar,
    /// [`Pool`] handles alive; when it reaches zero, threads exit once idle.
    handles: AtomicUsize,
    /// Callers of [`Pool::shutdown`] wait here for the pool to go quiet.
    quiet: Condvar,
    /// Callers of [`Pool::shutdown`] waiting on `quiet`. Changed under the sleep
    /// lock; read without it after each job, so a busy pool with nobody shutting it
    /// down takes no lock per job.
    shutdown_waiters: AtomicUsize,
}

/// A live pool thread: its number, the stealing end of its deque, its progress.
type ThreadEntry = (usize, Stealer<ErasedJob>, DynArc<Progress>);

/// Thread bookkeeping under the sleep lock.
struct Sleep {
    /// Threads that exist: started and not yet exited.
    alive: usize,
    /// Threads waiting on the `wake` condition variable.
    sleeping: usize,
    /// Wake-ups granted to sleepers and not yet consumed. A sleeper only leaves its
    /// wait by consuming one (or by retiring), so spurious wake-ups are harmless and
    /// no wake-up is counted twice.
    wakeups: usize,
    /// Bumped to make every sleeping thread exit (last handle dropped, or shutdown).
    retire_epoch: u64,
    /// Number for the next thread (stealer bookkeeping).
    next_id: usize,
    /// A watcher thread exists (see `watch.rs`).
    watcher_running: bool,
    /// Every thread was busy when work was pushed, and the watcher has not seen the
    /// queue empty (or the pool full) since: it ticks while this is set. Only the
    /// watcher clears it, always under this lock, and on its way out.
    #[cfg_attr(loom, allow(dead_code))]
    watch_demand: bool,
}

#[cfg(not(loom))]
thread_local! {
    /// The deque of the pool thread running on this thread, if any: jobs pushed from
    /// inside a job go here first. Keyed by the pool's address.
    static LOCAL: RefCell<Option<(usize, Worker<ErasedJob>)>> = const { RefCell::new(None) };
}

impl Pool {
    /// Starts configuring a pool.
    ///
    /// See [`PoolBuilder`] for the settings and their defaults.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = aopen::Pool::builder().max_threads(2).build()?;
    /// assert_eq!(pool.max_threads(), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn builder() -> PoolBuilder {
        PoolBuilder::default()
    }

    pub(crate) fn from_config(config: Config) -> Pool {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // Under loom every thread starts eagerly: the watcher's timing and `/proc`
        // are outside what a model can see (see `watch.rs`).
        let eager_threads = if cfg!(loom) {
            config.max_threads
        } else {
            cores.max(2).min(config.max_threads)
        };
        Pool {
            inner: Arc::new(Inner {
                budget: Budget::new(config.descriptor_budget),
                config,
                injector: Injector::new(),
                stealers: Mutex::new(Vec::new()),
                queued: AtomicUsize::new(0),
                searching: AtomicUsize::new(0),
                busy: AtomicUsize::new(0),
                max_spinning: MAX_SPINNING_PER_CORE * cores,
                eager_threads,
                sleep: Mutex::new(Sleep {
                    alive: 0,
                    sleeping: 0,
                    wakeups: 0,
                    retire_epoch: 0,
                    next_id: 0,
                    watcher_running: false,
                    watch_demand: false,
                }),
                wake: Condvar::new(),
                watch: Condvar::new(),
                handles: AtomicUsize::new(1),
                quiet: Condvar::new(),
                shutdown_waiters: AtomicUsize::new(0),
            }),
        }
    }

    /// Runs `f` on the pool; the returned future resolves to its result.
    ///
    /// A panic in `f` is resumed at the `.await`; the pool thread survives. Dropping
    /// the future before `f` started skips `f`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::panic::{catch_unwind, AssertUnwindSafe};
    ///
    /// let pool = aopen::Pool::builder().max_threads(2).build()?;
    /// let listing = aopen::block_on(pool.unblock(|| {
    ///     // Any blocking work: it runs on one of the pool's threads.
    ///     std::fs::read_dir("/").map(|entries| entries.count())
    /// }))?;
    /// assert!(listing > 0);
    ///
    /// // A panic is resumed where the task is awaited; the pool lives on.
    /// let task = pool.unblock(|| panic!("boom"));
    /// let panicked = catch_unwind(AssertUnwindSafe(|| aopen::block_on(task)));
    /// assert!(panicked.is_err());
    /// assert_eq!(aopen::block_on(pool.unblock(|| 1 + 1)), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn unblock<F, T>(&self, f: F) -> BlockingTask<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (job, task) = JobCell::create(f);
        Inner::push(&self.inner, job);
        task
    }

    /// Queues a job made elsewhere in the crate (a lane's drainer, a close).
    pub(crate) fn push_job(&self, job: ErasedJob) {
        Inner::push(&self.inner, job);
    }

    /// The pool's descriptor budget.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = aopen::Pool::builder().descriptor_budget(3).build()?;
    /// assert_eq!(pool.budget().capacity(), 3);
    /// assert_eq!(pool.budget().available(), 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn budget(&self) -> &Budget {
        &self.inner.budget
    }

    /// The most threads this pool runs at once.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = aopen::Pool::builder().build()?;
    /// assert_eq!(pool.max_threads(), aopen::pool::default_max_threads());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn max_threads(&self) -> usize {
        self.inner.config.max_threads
    }

    /// A snapshot of the pool's threads, queue and descriptors.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-pool-stats-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("a"), "x")?;
    /// let pool = aopen::Pool::builder().max_threads(2).descriptor_budget(8).build()?;
    /// aopen::block_on(async {
    ///     let a = pool.fs().open(dir.join("a")).await?;
    ///     let b = pool.fs().open(dir.join("a")).await?;
    ///     let stats = pool.stats();
    ///     assert_eq!(stats.descriptors_held, 2);
    ///     assert!(stats.threads_alive >= 1 && stats.threads_alive <= 2);
    ///     a.close().await?;
    ///     b.close().await
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stats(&self) -> PoolStats {
        let alive = lock(&self.inner.sleep).alive;
        PoolStats {
            threads_alive: alive,
            threads_busy: self.inner.busy.load(Ordering::SeqCst),
            jobs_queued: self.inner.queued.load(Ordering::SeqCst),
            descriptors_held: self.inner.budget.held(),
            permit_waiters: self.inner.budget.waiters(),
        }
    }

    /// Waits until every queued job has run and every descriptor the pool's files
    /// hold is closed, then lets the idle threads exit and waits for them.
    ///
    /// The pool stays usable: work pushed later starts threads again. Descriptors of
    /// `File`s the program still holds are not closed behind its back (that would
    /// race with its next operation); they keep the pool from going quiet, and the
    /// error says so.
    ///
    /// # Errors
    ///
    /// `TimedOut` after `timeout`, with a message that says how many jobs were still
    /// queued or running and how many descriptors were still open.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-pool-shutdown-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("a"), "x")?;
    /// use std::time::Duration;
    ///
    /// let pool = aopen::Pool::builder().max_threads(2).descriptor_budget(4).build()?;
    /// let file = aopen::block_on(pool.fs().open(dir.join("a")))?;
    /// // A file the program still holds keeps the pool from going quiet:
    /// let err = pool.shutdown(Duration::from_millis(50)).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    /// assert!(err.to_string().contains("1 descriptors still open"), "{err}");
    ///
    /// drop(file); // queues the close on the pool
    /// pool.shutdown(Duration::from_secs(5))?; // which shutdown waits for
    /// assert_eq!(pool.stats().threads_alive, 0);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&self, timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        let inner = &*self.inner;
        let mut sleep = lock(&inner.sleep);
        inner.shutdown_waiters.fetch_add(1, Ordering::SeqCst);
        // Hand-off with `notify_quiet` (see there).
        store_load_fence();
        let result = loop {
            let queued = inner.queued.load(Ordering::SeqCst);
            let busy = inner.busy.load(Ordering::SeqCst);
            let held = inner.budget.held();
            if queued == 0 && busy == 0 && held == 0 {
                break Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                break Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "aopen pool shutdown timed out after {timeout:?}: {queued} jobs queued, \
                         {busy} running, {held} descriptors still open"
                    ),
                ));
            }
            sleep = wait_until(&inner.quiet, sleep, deadline - now);
        };
        let result = result.and_then(|()| {
            // Quiet: let the idle threads go, and wait until they have.
            sleep.retire_epoch += 1;
            inner.wake.notify_all();
            inner.watch.notify_all();
            loop {
                let gone = sleep.alive == 0 && !sleep.watcher_running;
                if gone || inner.queued.load(Ordering::SeqCst) > 0 {
                    // Gone, or new work arrived meanwhile (its threads may stay).
                    return Ok(());
                }
                let now = Instant::now();
                if now >= deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "aopen pool shutdown timed out after {timeout:?}: {} threads \
                             had not exited",
                            sleep.alive
                        ),
                    ));
                }
                sleep = wait_until(&inner.quiet, sleep, deadline - now);
            }
        });
        inner.shutdown_waiters.fetch_sub(1, Ordering::SeqCst);
        result
    }

    /// The global pool, made on first use from [`MAX_THREADS_ENV`] and
    /// [`DESCRIPTOR_BUDGET_ENV`] (or installed earlier by
    /// [`PoolBuilder::build_global`]).
    ///
    /// # Panics
    ///
    /// Panics if one of the environment variables holds a bad value; the message names
    /// it. The file system functions report that as an `InvalidInput` error instead,
    /// and [`PoolBuilder::build_global`] lets a program check at start-up.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool: &'static aopen::Pool = aopen::Pool::global();
    /// println!("global pool: up to {} threads, {:?}", pool.max_threads(), pool.stats());
    /// ```
    #[cfg(not(loom))]
    pub fn global() -> &'static Pool {
        match global::get() {
            Ok(pool) => pool,
            Err(err) => panic!("aopen: cannot build the global pool: {err}"),
        }
    }

    /// The global pool, or the error that kept it from being built.
    ///
    /// The error is `InvalidInput` and names the environment variable and its value.
    ///
    /// # Examples
    ///
    /// ```
    /// match aopen::Pool::try_global() {
    ///     Ok(pool) => println!("budget: {}", pool.budget().capacity()),
    ///     Err(err) => eprintln!("bad aopen setting: {err}"), // e.g. AOPEN_MAX_THREADS=0
    /// }
    /// ```
    #[cfg(not(loom))]
    pub fn try_global() -> io::Result<&'static Pool> {
        global::get()
    }
}

#[cfg(not(loom))]
fn wait_until<'a, T>(
    condvar: &Condvar,
    guard: crate::sync::MutexGuard<'a, T>,
    timeout: Duration,
) -> crate::sync::MutexGuard<'a, T> {
    match condvar.wait_timeout(guard, timeout) {
        Ok((guard, _)) => guard,
        Err(poisoned) => poisoned.into_inner().0,
    }
}

/// loom's `wait_timeout` never times out; models never rely on timeouts, so under
/// loom a timed wait is a plain wait.
#[cfg(loom)]
fn wait_until<'a, T>(
    condvar: &Condvar,
    guard: crate::sync::MutexGuard<'a, T>,
    _timeout: Duration,
) -> crate::sync::MutexGuard<'a, T> {
    crate::sync::wait(condvar, guard)
}

#[cfg(not(loom))]
mod global {
    use std::io;
    use std::sync::OnceLock;

    use super::{Pool, PoolBuilder};

    static GLOBAL: OnceLock<Pool> = OnceLock::new();

    pub(super) fn get() -> io::Result<&'static Pool> {
        if let Some(pool) = GLOBAL.get() {
            return Ok(pool);
        }
        let pool = PoolBuilder::default().with_env()?.build()?;
        // Two threads may race here; the loser's pool has no threads yet and is
        // dropped unused.
        Ok(GLOBAL.get_or_init(|| pool))
    }

    pub(super) fn install(builder: PoolBuilder) -> io::Result<&'static Pool> {
        let pool = builder.with_env()?.build()?;
        let mut installed = false;
        let global = GLOBAL.get_or_init(|| {
            installed = true;
            pool
        });
        if installed {
            Ok(global)
        } else {
            Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "aopen: the global pool already exists (build_global must run before its first use)",
            ))
        }
    }
}

impl PoolBuilder {
    /// Builds the pool and installs it as the global pool, filling settings left
    /// unset from [`MAX_THREADS_ENV`] and [`DESCRIPTOR_BUDGET_ENV`].
    ///
    /// # Errors
    ///
    /// `AlreadyExists` if the global pool was already built (by an earlier call, or by
    /// the first use of [`unblock`] or the file system functions); `InvalidInput` for a
    /// bad setting or environment value (see [`build`](PoolBuilder::build)).
    ///
    /// # Examples
    ///
    /// ```
    /// // First thing in `main`, before any file system call:
    /// let pool = aopen::Pool::builder().max_threads(16).build_global()?;
    /// assert!(std::ptr::eq(pool, aopen::Pool::global()));
    ///
    /// // Too late now: the global pool exists.
    /// let err = aopen::Pool::builder().build_global().unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(not(loom))]
    pub fn build_global(self) -> io::Result<&'static Pool> {
        global::install(self)
    }
}

/// Runs `f` on the global pool; the returned future resolves to its result.
///
/// A panic in `f` is resumed at the `.await`; the pool thread survives.
///
/// # Panics
///
/// Panics if the global pool cannot be built from a bad environment value (see
/// [`Pool::global`]).
///
/// ```
/// let len = aopen::block_on(aopen::unblock(|| std::fs::metadata(".").map(|m| m.len())));
/// assert!(len.is_ok());
/// ```
#[cfg(not(loom))]
pub fn unblock<F, T>(f: F) -> BlockingTask<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Pool::global().unblock(f)
}

impl Clone for Pool {
    fn clone(&self) -> Pool {
        self.inner.handles.fetch_add(1, Ordering::SeqCst);
        Pool {
            inner: self.inner.clone(),
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if self.inner.handles.fetch_sub(1, Ordering::SeqCst) == 1 {
            // Last handle: nobody can push anymore. Sleeping threads exit now; busy
            // ones finish the queues first (they only sleep when the queues are empty).
            let mut sleep = lock(&self.inner.sleep);
            sleep.retire_epoch += 1;
            self.inner.wake.notify_all();
            self.inner.watch.notify_all();
        }
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("max_threads", &self.inner.config.max_threads)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Inner {
    #[cfg(not(loom))]
    fn key(this: &Arc<Self>) -> usize {
        Arc::as_ptr(this) as *const () as usize
    }

    /// Queues `job` and makes sure a thread will run it.
    fn push(this: &Arc<Self>, job: ErasedJob) {
        let job = Inner::push_local(this, job);
        if let Some(job) = job {
            this.injector.push(job);
        }
        this.queued.fetch_add(1, Ordering::SeqCst);
        // Hand-off with a thread that stops searching: we write `queued`, then read
        // `searching`; it writes `searching`, then reads `queued`.
        store_load_fence();
        Inner::notify_work(this);
    }

    /// Pushes to this thread's own deque if this is one of our pool threads; gives
    /// the job back otherwise.
    #[cfg(not(loom))]
    fn push_local(this: &Arc<Self>, job: ErasedJob) -> Option<ErasedJob> {
        let key = Inner::key(this);
        LOCAL.with(|local| match &*local.borrow() {
            Some((pool, worker)) if *pool == key => {
                worker.push(job);
                None
            }
            _ => Some(job),
        })
    }

    /// Under loom every push goes to the injector (loom threads are not OS threads,
    /// so a thread-local deque would be shared between them).
    #[cfg(loom)]
    fn push_local(_this: &Arc<Self>, job: ErasedJob) -> Option<ErasedJob> {
        Some(job)
    }

    /// Work was pushed: wake a sleeping thread or start one, unless a thread is
    /// already searching (it will find the work).
    fn notify_work(this: &Arc<Self>) {
        if this.searching.load(Ordering::SeqCst) > 0 {
            // A searcher looks at the queues again after it stops searching, and our
            // push happened before we saw it searching: it will find the job.
            return;
        }
        let mut sleep = lock(&this.sleep);
        if this.searching.load(Ordering::SeqCst) > 0 {
            return;
        }
        if sleep.sleeping > sleep.wakeups {
            // Someone sleeps and has no wake-up on the way: grant one. It counts as
            // searching from now on, so the next pushes wake nobody else.
            sleep.wakeups += 1;
            this.searching.fetch_add(1, Ordering::SeqCst);
            this.wake.notify_one();
            return;
        }
        if sleep.alive < this.eager_threads {
            Inner::start_workers(this, sleep, 1);
            return;
        }
        // Every thread is busy. The first to finish its job will search and find
        // this one; if they sleep in the kernel instead, the watcher starts more.
        #[cfg(not(loom))]
        if sleep.alive < this.config.max_threads && !sleep.watch_demand {
            sleep.watch_demand = true;
            if sleep.watcher_running {
                this.watch.notify_one();
            } else {
                sleep.watcher_running = true;
                let epoch = sleep.retire_epoch;
                drop(sleep);
                Inner::start_watcher(this, epoch);
            }
        }
    }

    /// Counts `count` new threads (alive, and searching from now on) under the sleep
    /// lock, then starts them without it.
    fn start_workers(this: &Arc<Self>, mut sleep: MutexGuard<'_, Sleep>, count: usize) {
        let first_id = sleep.next_id;
        sleep.next_id += count;
        sleep.alive += count;
        let epoch = sleep.retire_epoch;
        this.searching.fetch_add(count, Ordering::SeqCst);
        drop(sleep);
        for id in first_id..first_id + count {
            Inner::start_thread(this, id, epoch);
        }
    }

    fn start_thread(this: &Arc<Self>, id: usize, epoch: u64) {
        let inner = this.clone();
        let worker = Worker::new_fifo();
        let progress = Progress::new();
        lock(&this.stealers).push((id, worker.stealer(), progress.clone()));
        let mut builder = thread::Builder::new().name(this.config.thread_name.clone());
        if let Some(size) = this.config.stack_size {
            builder = builder.stack_size(size);
        }
        let spawned =
            builder.spawn(move || Inner::thread_main(inner, id, epoch, worker, &progress));
        if spawned.is_err() {
            // The OS refused a thread (EAGAIN). Undo the bookkeeping; the job stays
            // queued for the threads that exist, or for the next push to retry.
            lock(&this.stealers).retain(|(other, _, _)| *other != id);
            this.searching.fetch_sub(1, Ordering::SeqCst);
            lock(&this.sleep).alive -= 1;
            this.notify_quiet();
        }
    }

    /// The body of a pool thread. It starts out searching. `epoch` is the retire
    /// epoch when it was started: once that changes, the thread exits the next time
    /// it has nothing to do.
    fn thread_main(
        this: Arc<Self>,
        id: usize,
        epoch: u64,
        worker: Worker<ErasedJob>,
        progress: &Progress,
    ) {
        progress.register_current_thread();
        #[cfg(not(loom))]
        let worker = {
            let key = Inner::key(&this);
            LOCAL.with(|local| *local.borrow_mut() = Some((key, worker)));
            LocalWorker
        };
        #[cfg(loom)]
        let worker = LoomWorker(worker);
        loop {
            // Searching.
            let mut found = None;
            let rounds = if this.searching.load(Ordering::SeqCst) <= this.max_spinning {
                SEARCH_ROUNDS_BEFORE_SLEEP
            } else {
                SEARCH_ROUNDS_WHEN_CROWDED
            };
            for _ in 0..rounds {
                found = this.find_job(&worker);
                if found.is_some() {
                    break;
                }
                thread::yield_now();
            }
            match found {
                Some(job) => {
                    this.queued.fetch_sub(1, Ordering::SeqCst);
                    this.busy.fetch_add(1, Ordering::SeqCst);
                    // Stop searching; if we were the last searcher and work is left,
                    // hand the search on so that job does not wait for us.
                    let was_last = this.searching.fetch_sub(1, Ordering::SeqCst) == 1;
                    // Hand-off with a pusher that saw us searching (see `push`).
                    store_load_fence();
                    if was_last && this.queued.load(Ordering::SeqCst) > 0 {
                        Inner::notify_work(&this);
                    }
                    progress.job_started();
                    let waiter = job.run();
                    progress.job_finished();
                    // Searching again *before* the waiter runs: its next push then
                    // finds us, instead of waking or starting another thread.
                    this.searching.fetch_add(1, Ordering::SeqCst);
                    this.busy.fetch_sub(1, Ordering::SeqCst);
                    this.notify_quiet();
                    if let Some(waiter) = waiter {
                        job::wake(waiter);
                    }
                }
                None => {
                    // Still counted as searching: `sleep_until_woken` stops that only
                    // once it counts us as sleeping, so a pusher always sees one.
                    if !this.sleep_until_woken(epoch) {
                        break;
                    }
                    // Woken: the waker counted us as searching already.
                }
            }
        }
        lock(&this.stealers).retain(|(other, _, _)| *other != id);
        #[cfg(not(loom))]
        LOCAL.with(|local| *local.borrow_mut() = None);
    }

    /// Something finished (a job, a thread): let a waiting [`Pool::shutdown`]
    /// re-check. A shutdown counts itself under the sleep lock and then checks, so
    /// either it sees what we finished or we see it and notify under the lock.
    fn notify_quiet(&self) {
        // Hand-off with `shutdown`: we changed `busy`/`queued`/the budget, then read
        // `shutdown_waiters`; it writes `shutdown_waiters`, then reads those.
        store_load_fence();
        if self.shutdown_waiters.load(Ordering::SeqCst) > 0 {
            let _sleep = lock(&self.sleep);
            self.quiet.notify_all();
        }
    }

    /// Sleeps until woken (returns `true`, searching) or until it is time to exit
    /// (`false`: idle timeout, or the pool is retiring its threads). Called while
    /// searching, having found nothing.
    fn sleep_until_woken(&self, epoch: u64) -> bool {
        let mut sleep = lock(&self.sleep);
        // From searching to sleeping under the lock, so a pusher always sees us as
        // one or the other (it reads `searching`, then takes this lock).
        sleep.sleeping += 1;
        self.searching.fetch_sub(1, Ordering::SeqCst);
        // Hand-off with a pusher that saw us searching: we write `searching`, then
        // read `queued`; it writes `queued`, then reads `searching` (see `push`).
        store_load_fence();
        // Committed to sleep, but look once more: a pusher that saw us searching
        // pushed before this check, so we see its job here.
        #[cfg(not(aopen_mutant = "pool_sleep_without_recheck"))]
        if self.queued.load(Ordering::SeqCst) > 0 {
            sleep.sleeping -= 1;
            self.searching.fetch_add(1, Ordering::SeqCst);
            return true;
        }
        if sleep.retire_epoch != epoch || self.handles.load(Ordering::SeqCst) == 0 {
            sleep.sleeping -= 1;
            return self.retire(sleep);
        }
        let deadline = Instant::now() + self.config.idle_timeout;
        loop {
            if sleep.wakeups > 0 {
                // Woken by a pusher, which counted us as searching.
                sleep.wakeups -= 1;
                sleep.sleeping -= 1;
                return true;
            }
            if sleep.retire_epoch != epoch {
                sleep.sleeping -= 1;
                return self.retire(sleep);
            }
            let now = Instant::now();
            if now >= deadline && !cfg!(loom) {
                sleep.sleeping -= 1;
                return self.retire(sleep);
            }
            sleep = wait_until(&self.wake, sleep, deadline.saturating_duration_since(now));
        }
    }

    /// Exits this thread's bookkeeping; the caller returns from `thread_main`.
    fn retire(&self, mut sleep: crate::sync::MutexGuard<'_, Sleep>) -> bool {
        sleep.alive -= 1;
        if self.shutdown_waiters.load(Ordering::SeqCst) > 0 {
            self.quiet.notify_all();
        }
        false
    }

    /// Finds a job: our own deque first, then the injector, then the other threads.
    fn find_job(&self, worker: &impl OwnDeque) -> Option<ErasedJob> {
        if let Some(job) = worker.pop() {
            return Some(job);
        }
        loop {
            match self.injector.steal() {
                Steal::Success(job) => return Some(job),
                Steal::Retry => continue,
                Steal::Empty => break,
            }
        }
        let stealers = lock(&self.stealers);
        let mut retry = true;
        while retry {
            retry = false;
            for (_, stealer, _) in stealers.iter() {
                match stealer.steal() {
                    Steal::Success(job) => return Some(job),
                    Steal::Retry => retry = true,
                    Steal::Empty => {}
                }
            }
        }
        None
    }
}

/// A pool thread's access to its own deque.
trait OwnDeque {
    fn pop(&self) -> Option<ErasedJob>;
}

/// Outside loom the deque lives in [`LOCAL`], where pushes from jobs can reach it.
#[cfg(not(loom))]
struct LocalWorker;

#[cfg(not(loom))]
impl OwnDeque for LocalWorker {
    fn pop(&self) -> Option<ErasedJob> {
        LOCAL.with(|local| local.borrow().as_ref().and_then(|(_, worker)| worker.pop()))
    }
}

#[cfg(loom)]
struct LoomWorker(Worker<ErasedJob>);

#[cfg(loom)]
impl OwnDeque for LoomWorker {
    fn pop(&self) -> Option<ErasedJob> {
        self.0.pop()
    }
}
