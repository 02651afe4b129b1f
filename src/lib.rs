//! aopen
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
