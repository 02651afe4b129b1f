//! The one switch between std and loom synchronisation types.
//!
//! Everything in this crate that shares state between threads takes its atomics,
//! locks, condition variables, `Arc` and `thread` from here. A normal build gets
//! `std`'s; a build with `RUSTFLAGS="--cfg loom"` gets [loom]'s, so the models in
//! `loom-tests/` explore the interleavings of the *real* code, not of a copy.
//!
//! Rules this module keeps:
//! - no other module in `src/` names `std::sync` or `std::thread` for shared state;
//! - the two halves export the same names with the same signatures, so callers
//!   never need a `cfg` of their own (the few that do, timers and thread retirement,
//!   say why where they do it).
//!
//! [loom]: https://docs.rs/loom

#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic::{fence, AtomicBool, AtomicUsize, Ordering},
    Arc, Condvar, Mutex, MutexGuard,
};

#[cfg(not(loom))]
pub(crate) use std::thread;

#[cfg(loom)]
pub(crate) use loom::sync::{
    atomic::{fence, AtomicBool, AtomicUsize, Ordering},
    Arc, Condvar, Mutex, MutexGuard,
};

#[cfg(loom)]
pub(crate) use loom::thread;

/// A store-then-load hand-off between two threads (each writes one variable, then
/// reads the other's) needs a `SeqCst` fence between its write and its read, so that
/// at least one of the two threads sees the other's write. On x86 a `SeqCst` load
/// after a read-modify-write would do, but C11 (and loom, which models `SeqCst`
/// accesses as `AcqRel`) only promises it with the fence. Every such hand-off in the
/// crate calls this and says which two variables it orders.
pub(crate) fn store_load_fence() {
    fence(Ordering::SeqCst);
}

/// Locks `mutex`, ignoring poisoning.
///
/// Every critical section in this crate leaves its data consistent before it can
/// panic (user code never runs under our locks), so a poisoned lock still guards
/// valid state and recovering it is sound.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Locks `mutex` if nobody holds it, ignoring poisoning (see [`lock`]).
pub(crate) fn try_lock<T>(mutex: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match mutex.try_lock() {
        Ok(guard) => Some(guard),
        Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

/// Waits on `condvar`, ignoring poisoning (see [`lock`]).
pub(crate) fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    match condvar.wait(guard) {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Waits on `condvar` for at most `timeout`, ignoring poisoning (see [`lock`]).
/// Whether it timed out is not said: callers look at the clock or their state.
#[cfg(not(loom))]
pub(crate) fn wait_timeout<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: std::time::Duration,
) -> MutexGuard<'a, T> {
    match condvar.wait_timeout(guard, timeout) {
        Ok((guard, _)) => guard,
        Err(poisoned) => poisoned.into_inner().0,
    }
}

/// loom's `wait_timeout` never times out; models never rely on timeouts, so under
/// loom a timed wait is a plain wait.
#[cfg(loom)]
pub(crate) fn wait_timeout<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    _timeout: std::time::Duration,
) -> MutexGuard<'a, T> {
    wait(condvar, guard)
}

/// std's `AtomicUsize` in both builds: for counters that only feed a heuristic (the
/// pool watcher's view of each thread's progress) and synchronise nothing, so the
/// models need not explore their interleavings.
pub(crate) use std::sync::atomic::AtomicUsize as HintUsize;

/// std's `AtomicU64` in both builds: the timer's earliest deadline, which executors
/// read without the timer's lock (`time.rs`, which is not built under loom: its
/// timed waits would never time out there).
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::AtomicU64;

/// std's `OnceLock` in both builds: for process-wide facts computed once (the
/// `FileType` of each `d_type`, `read_dir.rs`) that no model checks.
// Only Unix listings learn `FileType`s (`fs/read_dir.rs`) so far.
#[cfg_attr(not(unix), allow(unused_imports))]
pub(crate) use std::sync::OnceLock;

/// std's `Arc` in both builds: for pointers that are unsized into trait objects
/// (`Arc<JobCell<F, T>>` into `Arc<dyn Runnable>`) and for plain shared data such
/// as a file's `Arc<Path>`.
///
/// loom's `Arc` cannot be unsized (that needs the unstable `CoerceUnsized`), so pool
/// jobs and lanes are always counted with std's `Arc`. What the models check lives
/// *inside* them (their locks and atomics, which are loom's), not in reference counts.
pub(crate) use std::sync::Arc as DynArc;
