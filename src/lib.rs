//! aopen
#![deny(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod budget;
pub mod fs;
pub mod executor;
pub mod pool;
mod sync;
pub mod time;

pub use budget::{Budget, Permit};
#[cfg(not(loom))]
pub use pool::unblock;
pub use pool::{BlockingTask, Pool, PoolBuilder, PoolStats};
pub use fs::{File, OpenOptions};
pub use executor::{block_on, LocalExecutor, Task};
pub use time::{sleep, Sleep};
