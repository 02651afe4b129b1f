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
pub const MAX_THREADS_ENV: &str = "AOPEN_MAX_THREADS";

/// The environment variable that sets the global pool's `descriptor_budget`.
pub const DESCRIPTOR_BUDGET_ENV: &str = "AOPEN_DESCRIPTOR_BUDGET";

/// Threads per core in the default thread cap (see [`default_max_threads`]).
pub const DEFAULT_THREADS_PER_CORE: usize = 2;

/// The floor of the default thread cap: enough threads that 64 slow calls (a hung
/// NFS server, say) do not stall everything else.
pub const MIN_DEFAULT_MAX_THREADS: usize = 64;

/// How long a pool thread with nothing to do waits before it exits.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The default name of pool threads.
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
}

impl PoolBuilder {
    /// The most threads the pool runs at once (default: [`default_max_threads`]).
    /// Zero is an error at [`build`](PoolBuilder::build).
    pub fn max_threads(mut self, n: usize) -> Self {
        self.max_threads = Some(n);
        self
    }

    /// How long an idle thread waits for work before it exits (default:
    /// [`DEFAULT_IDLE_TIMEOUT`]).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// The most descriptors the pool's files and directories hold at once (default:
    /// from `RLIMIT_NOFILE`, see [`default_capacity`](crate::budget::default_capacity)).
    /// Zero is an error at [`build`](PoolBuilder::build).
    pub fn descriptor_budget(mut self, n: usize) -> Self {
        self.descriptor_budget = Some(n);
        self
    }

    /// The name of the pool's threads (default: [`DEFAULT_THREAD_NAME`]).
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.thread_name = Some(name.into());
        self
    }

    /// The stack size of the pool's threads, in bytes (default: std's).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
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
