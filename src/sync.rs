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
    atomic::{AtomicBool, AtomicUsize, Ordering},
    Arc, Condvar, Mutex, MutexGuard,
};

#[cfg(not(loom))]
pub(crate) use std::thread;

#[cfg(loom)]
pub(crate) use loom::sync::{
    atomic::{AtomicBool, AtomicUsize, Ordering},
    Arc, Condvar, Mutex, MutexGuard,
};

#[cfg(loom)]
pub(crate) use loom::thread;

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

/// Waits on `condvar`, ignoring poisoning (see [`lock`]).
pub(crate) fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    match condvar.wait(guard) {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// A reference-counted pointer that can be unsized into a trait object
/// (`Arc<JobCell<F, T>>` into `Arc<dyn Runnable>`), in both builds.
///
/// loom's `Arc` cannot be unsized (that needs the unstable `CoerceUnsized`), so pool
/// jobs are always counted with std's `Arc`. What the models check lives *inside*
/// the job (its state lock, which is loom's), not in its reference count.
pub(crate) use std::sync::Arc as DynArc;
