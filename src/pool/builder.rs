//! `Pool::builder()`: the settings of a pool, their defaults, and the environment
//! variables that fill in what the global pool's builder left unset.
//!
//! Bad values are errors, never silent defaults: zero threads, a zero budget, or an
//! environment variable that is not a positive integer each give an
//! [`io::ErrorKind::InvalidInput`] error whose message names the setting and the value.

use std::fmt;
use std::io;
use std::time::Duration;

use super::Pool;

/// The environment variable that sets the global pool's `max_threads`.
///
/// # Examples
///
/// ```
/// use aopen::pool::MAX_THREADS_ENV;
///
/// // As if the program was started with AOPEN_MAX_THREADS=3:
/// std::env::set_var(MAX_THREADS_ENV, "3");
/// // read when the global pool is first used.
/// assert_eq!(aopen::Pool::global().max_threads(), 3);
/// ```
pub const MAX_THREADS_ENV: &str = "AOPEN_MAX_THREADS";

/// The environment variable that sets the global pool's `descriptor_budget`.
///
/// # Examples
///
/// ```
/// use aopen::pool::DESCRIPTOR_BUDGET_ENV;
///
/// std::env::set_var(DESCRIPTOR_BUDGET_ENV, "100"); // as if started with it set to 100
/// // It fills in what the global pool's builder leaves unset.
/// let global = aopen::Pool::builder().max_threads(2).build_global()?;
/// assert_eq!(global.budget().capacity(), 100);
/// # Ok::<(), std::io::Error>(())
/// ```
pub const DESCRIPTOR_BUDGET_ENV: &str = "AOPEN_DESCRIPTOR_BUDGET";

/// Threads per core in the default thread cap (see [`default_max_threads`]).
///
/// # Examples
///
/// ```
/// use aopen::pool::DEFAULT_THREADS_PER_CORE;
///
/// let cores = std::thread::available_parallelism()?.get();
/// let pool = aopen::Pool::builder().build()?; // no `max_threads`: the default cap
/// assert!(pool.max_threads() >= DEFAULT_THREADS_PER_CORE * cores);
/// # Ok::<(), std::io::Error>(())
/// ```
pub const DEFAULT_THREADS_PER_CORE: usize = 2;

/// The floor of the default thread cap, sized for latency-bound work: on a slow
/// mount concurrency is the throughput, and every call in flight holds a thread
/// asleep in the kernel. The peers allow about as many (`blocking` 500, tokio's
/// blocking pool 512). Cached and CPU-bound work never gets near it: the pool grows
/// past one thread per core only while its threads sleep in the kernel (see the
/// growth rule in `pool/growth.rs`). A pool thread asleep in a call costs about
/// 12 KiB of resident memory (its touched stack pages and thread-local state):
/// measured, 512 threads each asleep in a job after a `stat` took the process from
/// 2.0 to 8.2 MiB of RSS, the same with std's default 2 MiB stacks as with 256 KiB
/// or 64 KiB ones (the kernel's own 16 KiB per thread is not in RSS). So the default
/// stack stays std's: the 1 GiB that 512 of them reserve is address space, not
/// memory, and a caller's `unblock` closure may need the depth.
///
/// # Examples
///
/// ```
/// use aopen::pool::MIN_DEFAULT_MAX_THREADS;
///
/// // However few cores, the default cap is at least the floor...
/// assert!(aopen::Pool::builder().build()?.max_threads() >= MIN_DEFAULT_MAX_THREADS);
/// // ...which binds the default only: a cap asked for explicitly may be lower.
/// assert_eq!(aopen::Pool::builder().max_threads(2).build()?.max_threads(), 2);
/// # Ok::<(), std::io::Error>(())
/// ```
pub const MIN_DEFAULT_MAX_THREADS: usize = 512;

/// How long a pool thread with nothing to do waits before it exits.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let pool = aopen::Pool::builder().max_threads(2).build()?; // idle timeout: the default
/// aopen::block_on(pool.unblock(|| ()));
/// // The thread stays for the next job, for up to DEFAULT_IDLE_TIMEOUT (10 s)...
/// assert_eq!(pool.stats().threads_alive, 1);
/// pool.shutdown(Duration::from_secs(5))?; // ...unless the pool lets it go sooner
/// assert_eq!(pool.stats().threads_alive, 0);
/// # Ok::<(), std::io::Error>(())
/// ```
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The default name of pool threads.
///
/// # Examples
///
/// ```
/// use aopen::pool::DEFAULT_THREAD_NAME;
///
/// let pool = aopen::Pool::builder().max_threads(2).build()?;
/// let name = aopen::block_on(pool.unblock(|| std::thread::current().name().map(str::to_owned)));
/// assert_eq!(name.as_deref(), Some(DEFAULT_THREAD_NAME));
/// # Ok::<(), std::io::Error>(())
/// ```
pub const DEFAULT_THREAD_NAME: &str = "aopen-pool";

/// The default thread cap: `max(DEFAULT_THREADS_PER_CORE × cores, MIN_DEFAULT_MAX_THREADS)`.
///
/// # Examples
///
/// ```
/// use aopen::pool::{default_max_threads, MIN_DEFAULT_MAX_THREADS};
///
/// assert!(default_max_threads() >= MIN_DEFAULT_MAX_THREADS);
/// ```
pub fn default_max_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (DEFAULT_THREADS_PER_CORE * cores).max(MIN_DEFAULT_MAX_THREADS)
}

/// Settings for a [`Pool`]; made by [`Pool::builder`].
///
/// Each setter takes and returns the builder by value, so they chain:
///
/// ```
/// let pool = aopen::Pool::builder()
///     .max_threads(8)
///     .descriptor_budget(128)
///     .thread_name("my-fs")
///     .build()?;
/// assert_eq!(pool.budget().capacity(), 128);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct PoolBuilder {
    pub(crate) max_threads: Option<usize>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) descriptor_budget: Option<usize>,
    pub(crate) thread_name: Option<String>,
    pub(crate) stack_size: Option<usize>,
    pub(crate) sleep_census: Option<bool>,
}

impl PoolBuilder {
    /// The most threads the pool runs at once (default: [`default_max_threads`]).
    /// Zero is an error at [`build`](PoolBuilder::build).
    ///
    /// The pool starts one thread per core (at least 2) as soon as work waits; it
    /// grows past that, up to this cap, only while its threads are asleep in the
    /// kernel (a slow mount, a job waiting on another) or, up to two per core, have
    /// computed one job for 50 ms, because on short jobs that keep a core busy more
    /// threads only take turns. While it grows, one extra *watcher*
    /// thread (named `<thread_name>-watch`) decides how far; it is not a worker, and
    /// exits once the cap is reached or the pool has been idle for `idle_timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = aopen::Pool::builder().max_threads(2).build()?;
    /// let tasks: Vec<_> = (0..8).map(|i| pool.unblock(move || i * 2)).collect();
    /// let sum: i32 = tasks.into_iter().map(aopen::block_on).sum();
    /// assert_eq!(sum, 56);
    /// assert!(pool.stats().threads_alive <= 2); // eight jobs, never more than two threads
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn max_threads(mut self, n: usize) -> Self {
        self.max_threads = Some(n);
        self
    }

    /// How long an idle thread waits for work before it exits (default:
    /// [`DEFAULT_IDLE_TIMEOUT`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let pool = aopen::Pool::builder()
    ///     .max_threads(2)
    ///     .idle_timeout(Duration::from_millis(20))
    ///     .build()?;
    /// aopen::block_on(pool.unblock(|| ()));
    /// let start = Instant::now();
    /// while pool.stats().threads_alive > 0 {
    ///     // The idle thread exits by itself once it has waited 20 ms for work.
    ///     assert!(start.elapsed() < Duration::from_secs(5), "still alive");
    ///     std::thread::yield_now();
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// The most descriptors the pool's files and directories hold at once (default:
    /// from `RLIMIT_NOFILE`, see [`default_capacity`](crate::budget::default_capacity)).
    /// Zero is an error at [`build`](PoolBuilder::build).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-builder-descriptor-budget-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("a.txt"), "x")?;
    /// let pool = aopen::Pool::builder().max_threads(2).descriptor_budget(1).build()?;
    /// let file = aopen::block_on(pool.fs().open(dir.join("a.txt")))?;
    /// assert_eq!(pool.budget().available(), 0); // another open now waits for this close
    /// aopen::block_on(file.close())?;
    /// assert_eq!(pool.budget().available(), 1);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn descriptor_budget(mut self, n: usize) -> Self {
        self.descriptor_budget = Some(n);
        self
    }

    /// The name of the pool's threads (default: [`DEFAULT_THREAD_NAME`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = aopen::Pool::builder().max_threads(2).thread_name("nfs-home").build()?;
    /// let job = pool.unblock(|| std::thread::current().name().map(String::from));
    /// assert_eq!(aopen::block_on(job).as_deref(), Some("nfs-home")); // in `top -H`, gdb, panics
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.thread_name = Some(name.into());
        self
    }

    /// The stack size of the pool's threads, in bytes (default: std's, 2 MiB of
    /// address space; see [`MIN_DEFAULT_MAX_THREADS`] for what it costs in memory).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = aopen::Pool::builder().max_threads(2).stack_size(16 << 20).build()?;
    /// let last = aopen::block_on(pool.unblock(|| {
    ///     let big = [7u8; 4 << 20]; // 4 MiB on the stack: more than std's default 2 MiB
    ///     big[big.len() - 1]
    /// }));
    /// assert_eq!(last, 7);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Whether the pool reads its threads' states from `/proc/self/task` to decide
    /// when to grow (default: on; it matters only on Linux, the one system with that
    /// census).
    ///
    /// With it, the pool grows past one thread per core as soon as its threads are
    /// seen asleep in the kernel at two looks in a row (a fraction of a
    /// millisecond), and never for jobs that compute, however loaded the machine;
    /// a thread asleep in a futex wait (a lock, a condition, a channel: waiting for
    /// another thread, not for I/O) counts only after 20 ms in one job while no job
    /// started or finished (jobs that wait for each other).
    /// Off, it uses what other systems get: each thread's CPU clock between two looks
    /// over a few milliseconds (less than 3 % of the wall time: asleep). That sees a
    /// sleeping thread a few milliseconds later, and takes a thread preempted on a
    /// machine oversubscribed 30 times by other processes for one asleep. Turning it off runs that
    /// fallback on Linux (for tests, or where reading `/proc` is not allowed).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = aopen::Pool::builder().max_threads(4).sleep_census(false).build()?;
    /// assert_eq!(aopen::block_on(pool.unblock(|| 1 + 1)), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn sleep_census(mut self, on: bool) -> Self {
        self.sleep_census = Some(on);
        self
    }

    /// Builds the pool. No thread starts until the first job.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `max_threads` or `descriptor_budget` is zero, or
    /// `thread_name` contains a NUL byte.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::ErrorKind;
    ///
    /// let err = aopen::Pool::builder().max_threads(0).build().unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidInput);
    /// assert!(err.to_string().contains("max_threads"), "{err}");
    ///
    /// let pool = aopen::Pool::builder().stack_size(256 * 1024).build()?;
    /// assert_eq!(pool.stats().threads_alive, 0); // threads start with the first job
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn build(self) -> io::Result<Pool> {
        let config = self.validate()?;
        Ok(Pool::from_config(config))
    }

    /// Fills the settings left unset from [`MAX_THREADS_ENV`] and
    /// [`DESCRIPTOR_BUDGET_ENV`].
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn with_env(mut self) -> io::Result<Self> {
        if self.max_threads.is_none() {
            self.max_threads = read_env(MAX_THREADS_ENV)?;
        }
        if self.descriptor_budget.is_none() {
            self.descriptor_budget = read_env(DESCRIPTOR_BUDGET_ENV)?;
        }
        Ok(self)
    }

    fn validate(self) -> io::Result<Config> {
        let max_threads = match self.max_threads {
            Some(0) => return Err(invalid("max_threads", "0", "must be at least 1")),
            Some(n) => n,
            None => default_max_threads(),
        };
        let descriptor_budget = match self.descriptor_budget {
            Some(0) => return Err(invalid("descriptor_budget", "0", "must be at least 1")),
            Some(n) => n,
            None => crate::budget::default_capacity(),
        };
        let thread_name = self
            .thread_name
            .unwrap_or_else(|| DEFAULT_THREAD_NAME.to_string());
        if thread_name.contains('\0') {
            return Err(invalid(
                "thread_name",
                &format!("{thread_name:?}"),
                "must not contain a NUL byte",
            ));
        }
        Ok(Config {
            max_threads,
            idle_timeout: self.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT),
            descriptor_budget,
            thread_name,
            stack_size: self.stack_size,
            // On by default where there is a `/proc` to read (Linux).
            sleep_census: self.sleep_census.unwrap_or(crate::sys::HAS_THREAD_STATES),
        })
    }
}

impl fmt::Debug for PoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("max_threads", &self.max_threads)
            .field("idle_timeout", &self.idle_timeout)
            .field("descriptor_budget", &self.descriptor_budget)
            .field("thread_name", &self.thread_name)
            .field("stack_size", &self.stack_size)
            .field("sleep_census", &self.sleep_census)
            .finish()
    }
}

/// A validated [`PoolBuilder`].
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) max_threads: usize,
    pub(crate) idle_timeout: Duration,
    pub(crate) descriptor_budget: usize,
    pub(crate) thread_name: String,
    pub(crate) stack_size: Option<usize>,
    /// Read the threads' states (see [`PoolBuilder::sleep_census`]).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) sleep_census: bool,
}

fn invalid(setting: &str, value: &str, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("aopen pool setting `{setting}` = {value}: {why}"),
    )
}

/// Reads a positive integer from the environment variable `name`; unset is `None`.
#[cfg_attr(loom, allow(dead_code))]
fn read_env(name: &str) -> io::Result<Option<usize>> {
    match std::env::var_os(name) {
        None => Ok(None),
        Some(value) => match value.to_str() {
            Some(text) => parse_env_value(name, text).map(Some),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("environment variable {name}={value:?}: not valid UTF-8"),
            )),
        },
    }
}

/// Parses the value of an aopen environment variable: a positive decimal integer,
/// surrounding whitespace allowed. Public so the fuzz targets can reach it.
///
/// # Errors
///
/// `InvalidInput`, naming the variable and the value, for anything else.
///
/// # Examples
///
/// ```
/// use aopen::pool::{parse_env_value, MAX_THREADS_ENV};
///
/// assert_eq!(parse_env_value(MAX_THREADS_ENV, " 8 ")?, 8);
/// let err = parse_env_value(MAX_THREADS_ENV, "0").unwrap_err();
/// assert!(err.to_string().contains("AOPEN_MAX_THREADS=\"0\""), "{err}");
/// # Ok::<(), std::io::Error>(())
/// ```
#[doc(hidden)]
pub fn parse_env_value(name: &str, text: &str) -> io::Result<usize> {
    let bad = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("environment variable {name}={text:?}: {why}"),
        )
    };
    match text.trim().parse::<usize>() {
        Ok(0) => Err(bad("must be at least 1")),
        Ok(n) => Ok(n),
        Err(_) => Err(bad("expected a positive integer")),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn env_values() {
        assert_eq!(parse_env_value("X", " 12 ").unwrap(), 12);
        let err = parse_env_value("AOPEN_MAX_THREADS", "0").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("AOPEN_MAX_THREADS=\"0\""), "{err}");
        let err = parse_env_value("AOPEN_DESCRIPTOR_BUDGET", "many").unwrap_err();
        assert!(
            err.to_string().contains("AOPEN_DESCRIPTOR_BUDGET=\"many\""),
            "{err}"
        );
        assert!(parse_env_value("X", "-3").is_err());
    }
}
