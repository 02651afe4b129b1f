//! The handle: [`Pool`], its statistics, [`Pool::shutdown`], the global pool and
//! [`unblock`].
//!
//! A `Pool` is an `Arc` of the scheduler's shared state (`sched.rs`) plus a count of
//! live handles: when the last handle goes, sleeping threads exit and busy ones
//! finish the queues first. Nothing here decides where a job runs.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use super::builder::{Config, PoolBuilder};
use super::job::{BlockingTask, ErasedJob, JobCell};
use super::sched::Inner;
use crate::budget::Budget;
use crate::sync::{lock, store_load_fence, wait_timeout, Arc, Ordering};

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
/// // PoolStats { threads_alive: 0, threads_busy: 0, threads_asleep: 0, jobs_queued: 0, descriptors_held: 0, permit_waiters: 0 }
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
    /// Busy threads asleep in the kernel right now: waiting on a slow or hung mount
    /// (or on a lock or channel inside a job). On a healthy local disk this is
    /// usually 0; a number that stays up in a log line is a stalled server. Read from
    /// Linux's `/proc/self/task` at each [`Pool::stats`] call (one small read per
    /// busy thread); 0 where the system does not say or
    /// [`PoolBuilder::sleep_census`] is off.
    pub threads_asleep: usize,
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
            "PoolStats {{ threads_alive: {}, threads_busy: {}, threads_asleep: {}, jobs_queued: {}, descriptors_held: {}, permit_waiters: {} }}",
            self.threads_alive,
            self.threads_busy,
            self.threads_asleep,
            self.jobs_queued,
            self.descriptors_held,
            self.permit_waiters
        )
    }
}

#[cfg(test)]
impl Pool {
    /// How many times this pool's threads yielded between two jobs because a turn
    /// was over (`turn.rs`).
    pub(super) fn turns_ended(&self) -> usize {
        self.inner.turns_ended.load(crate::sync::Ordering::Relaxed)
    }
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
        Pool {
            inner: Arc::new(Inner::new(config)),
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
        let (job, task) = JobCell::create_on(&self.inner, f);
        Inner::push(&self.inner, job);
        task
    }

    /// Like [`unblock`](Pool::unblock), for work that is worth a thread only while
    /// the pool's threads sleep in the kernel: parallelism a batch *offers* (more
    /// workers for `metadata_batch`), which the growth rule takes up on a slow mount
    /// and leaves queued while the cores compute. Such jobs never make the pool
    /// grow for long computations (`growth.rs`).
    pub(crate) fn unblock_optional<F, T>(&self, f: F) -> BlockingTask<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let queued = OptionalQueued::new(self.inner.clone());
        self.unblock(move || {
            // Started: no longer queued (dropped unstarted, it says so too).
            drop(queued);
            f()
        })
    }

    /// Queues a job made elsewhere in the crate (a lane's drainer, a close).
    pub(crate) fn push_job(&self, job: ErasedJob) {
        Inner::push(&self.inner, job);
    }

    /// Queues a job behind everything queued so far, for any thread to take: the
    /// shared injector, never the pushing pool thread's own deque (which that thread
    /// takes from first). For work that yields its thread to other work.
    pub(crate) fn push_job_to_back(&self, job: ErasedJob) {
        Inner::push_to_injector(&self.inner, job);
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

    /// Threads asleep with nothing to do and no wake-up on its way: what a batch can
    /// have at once without waiting for the pool to grow. A hint, read without a lock.
    pub(crate) fn idle_threads(&self) -> usize {
        self.inner.unwoken_hint.load(Ordering::Relaxed)
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
            threads_asleep: self.threads_asleep(),
            jobs_queued: self.inner.queued.load(Ordering::SeqCst),
            descriptors_held: self.inner.budget.held(),
            permit_waiters: self.inner.budget.waiters(),
        }
    }

    #[cfg(not(loom))]
    fn threads_asleep(&self) -> usize {
        use super::growth::RunState;
        let samples = self.inner.samples(None);
        samples
            .iter()
            .filter(|sample| matches!(sample.state, Some(RunState::Asleep | RunState::Waiting)))
            .count()
    }

    #[cfg(loom)]
    fn threads_asleep(&self) -> usize {
        0
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
            sleep = wait_timeout(&inner.quiet, sleep, deadline - now);
        };
        let result = result.and_then(|()| {
            // Quiet: let the idle threads go, and wait until they have.
            sleep.retire_epoch += 1;
            sleep.wake_all_to_retire();
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
                sleep = wait_timeout(&inner.quiet, sleep, deadline - now);
            }
        });
        inner.shutdown_waiters.fetch_sub(1, Ordering::SeqCst);
        result
    }

    /// The global pool, made on first use from [`MAX_THREADS_ENV`](super::MAX_THREADS_ENV) and
    /// [`DESCRIPTOR_BUDGET_ENV`](super::DESCRIPTOR_BUDGET_ENV) (or installed earlier by
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
    /// unset from [`MAX_THREADS_ENV`](super::MAX_THREADS_ENV) and [`DESCRIPTOR_BUDGET_ENV`](super::DESCRIPTOR_BUDGET_ENV).
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

/// Counts one optional job as queued until it starts or is dropped unstarted.
struct OptionalQueued(Arc<Inner>);

impl OptionalQueued {
    fn new(inner: Arc<Inner>) -> OptionalQueued {
        inner.optional_queued.fetch_add(1, Ordering::Relaxed);
        OptionalQueued(inner)
    }
}

impl Drop for OptionalQueued {
    fn drop(&mut self) {
        self.0.optional_queued.fetch_sub(1, Ordering::Relaxed);
    }
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
            sleep.wake_all_to_retire();
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
