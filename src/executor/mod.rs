//! A runtime-free way to drive futures: [`block_on`] and [`LocalExecutor`].
//!
//! `aopen`'s futures run under any executor, but tests, examples and small programs
//! need *something* to drive them without pulling in a runtime. This module is that
//! something, kept deliberately small:
//!
//! - [`block_on`] runs one future on the calling thread. Between polls the thread
//!   parks on a `Parker` (a mutex, a condition variable and a three-state
//!   flag); a wake from any thread unparks it. It never busy-spins.
//! - [`LocalExecutor`] runs many `!Send` futures on one thread. Spawned futures live in
//!   a slab owned by the executor; their wakers are `Send + Sync` and, when woken from
//!   any thread, put the task's key on a shared run queue and unpark the executor's
//!   thread, so every poll of a task happens on the thread that called
//!   [`LocalExecutor::run`].
//! - Both drive aopen's timers too: each turn wakes the sleeps that are due, and a
//!   park lasts until the earliest deadline at most (`time.rs`), so a sleep polled
//!   here fires when this thread gets a core, without waiting for the timer thread.
//! - [`set_time_slice`] asks the kernel (Linux) to give the executor's thread a core
//!   soon after it wakes, while pool threads keep every core busy.
//!
//! Invariants this module keeps:
//! - a wake is never lost: a wake that lands before the park makes the park return at
//!   once (the parker's `Notified` state), and a task woken while it is being polled is
//!   queued again (its `scheduled` flag is cleared *before* the poll);
//! - a task is queued at most once at a time (the `scheduled` flag dedupes wakes), so
//!   the run queue is bounded by the number of live tasks;
//! - no `RefCell` borrow of executor state is held while user code runs (a task's
//!   future is taken out of the slab for its poll), so tasks may spawn tasks and drop
//!   other tasks' handles from inside a poll.
//!
//! Wakers are built from a hand-written [`RawWakerVTable`] over `Arc::into_raw` and
//! `Arc::from_raw` rather than `std::task::Wake`, because under `--cfg loom` the `Arc`
//! is loom's, which `Wake` does not accept.

mod block_on;
mod local;
pub(crate) mod parker;
mod time_slice;

pub use block_on::block_on;
pub use local::{LocalExecutor, Task};
pub use time_slice::{set_time_slice, MAX_TIME_SLICE, MIN_TIME_SLICE};

use std::mem::ManuallyDrop;
use std::task::{RawWaker, RawWakerVTable, Waker};

use crate::sync::Arc;
use parker::Parker;

/// The start of an executor's turn: wakes the sleeps that are due (`time.rs`), so
/// that their tasks are polled this turn. (No timers under loom.)
fn fire_due_timers() {
    #[cfg(not(loom))]
    crate::time::fire_due();
}

/// Parks `parker` until it is unparked. If sleeps polled on this thread are pending,
/// the park ends at the earliest deadline among them too, and the sleeps due then
/// are woken here (which unparks `parker` if one of them is this executor's).
/// Threads that polled no sleep are never woken for one.
fn park(parker: &Parker) {
    #[cfg(not(loom))]
    while let Some(deadline) = crate::time::local_deadline() {
        if parker.park_until(deadline) {
            return;
        }
        crate::time::fire_due();
        crate::time::forget_local_deadline(deadline);
    }
    parker.park();
}

/// Something that can be woken through an `Arc`, turned into a [`Waker`] by
/// [`arc_waker`].
///
/// `Send + Sync + 'static` because a [`Waker`] may be cloned to, kept on and woken
/// from any thread for as long as anyone likes.
pub(crate) trait ArcWake: Send + Sync + 'static {
    /// Wakes without consuming a reference.
    fn wake_by_ref(this: &Arc<Self>);
}

/// Builds a [`Waker`] that owns `this` (one strong count) and calls
/// [`ArcWake::wake_by_ref`] when woken.
pub(crate) fn arc_waker<W: ArcWake>(this: Arc<W>) -> Waker {
    let data = Arc::into_raw(this).cast::<()>();
    // SAFETY: `data` came from `Arc::<W>::into_raw` and carries one strong count that
    // the waker now owns; `vtable::<W>()` interprets `data` as exactly that, and its
    // functions uphold the `RawWaker` contract (see each one below). `W` is
    // `Send + Sync`, as a `Waker` requires.
    unsafe { Waker::from_raw(RawWaker::new(data, vtable::<W>())) }
}

/// The vtable for wakers over `Arc<W>`; promoted to a `'static` constant.
fn vtable<W: ArcWake>() -> &'static RawWakerVTable {
    &RawWakerVTable::new(
        clone_raw::<W>,
        wake_raw::<W>,
        wake_by_ref_raw::<W>,
        drop_raw::<W>,
    )
}

/// `RawWakerVTable::clone`: one more strong count, same data pointer.
unsafe fn clone_raw<W: ArcWake>(data: *const ()) -> RawWaker {
    // SAFETY: `data` is a live `Arc<W>` pointer owned by the waker being cloned (the
    // waker outlives this call); `ManuallyDrop` keeps that count with the original.
    let this = ManuallyDrop::new(unsafe { Arc::from_raw(data.cast::<W>()) });
    let clone: Arc<W> = Arc::clone(&this);
    RawWaker::new(Arc::into_raw(clone).cast::<()>(), vtable::<W>())
}

/// `RawWakerVTable::wake`: wake, then release the waker's strong count.
unsafe fn wake_raw<W: ArcWake>(data: *const ()) {
    // SAFETY: `wake` consumes the waker, so we take over its strong count and drop it
    // at the end of this function.
    let this = unsafe { Arc::from_raw(data.cast::<W>()) };
    W::wake_by_ref(&this);
}

/// `RawWakerVTable::wake_by_ref`: wake, keep the count.
unsafe fn wake_by_ref_raw<W: ArcWake>(data: *const ()) {
    // SAFETY: the waker is borrowed, not consumed: `ManuallyDrop` leaves its strong
    // count untouched.
    let this = ManuallyDrop::new(unsafe { Arc::from_raw(data.cast::<W>()) });
    W::wake_by_ref(&this);
}

/// `RawWakerVTable::drop`: release the waker's strong count.
unsafe fn drop_raw<W: ArcWake>(data: *const ()) {
    // SAFETY: the waker is being dropped; its strong count is released exactly once,
    // here.
    drop(unsafe { Arc::from_raw(data.cast::<W>()) });
}
