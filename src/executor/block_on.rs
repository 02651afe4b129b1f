//! [`block_on`]: run one future to completion on the calling thread.
//!
//! The future is pinned on this function's stack and polled with a waker that
//! unparks this thread; between polls the thread sleeps on a
//! `Parker`. It never busy-spins: a poll happens only after a
//! wake (or, rarely, after a stale wake left over from an earlier call, which costs one
//! extra poll and nothing else).
//!
//! Each thread caches one `(Arc<Parker>, Waker)` pair in a thread-local, so repeated
//! calls allocate nothing. Invariants:
//! - the cached pair is used by at most one `block_on` at a time (it sits in a
//!   `RefCell` borrowed for the whole call); a nested `block_on` (one called from
//!   inside a future that an outer `block_on` is polling) finds it borrowed and makes
//!   a fresh pair, so the inner and outer calls never consume each other's wakes;
//! - during thread teardown, when the thread-local is gone, a fresh pair is made too;
//! - under `--cfg loom` nothing is cached: loom objects must not outlive the model
//!   run that created them, so every call makes a fresh pair.

#[cfg(not(loom))]
use std::cell::RefCell;
use std::future::Future;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};

use super::parker::{self, Parker};
use crate::sync::Arc;

/// Runs `fut` to completion on the current thread and returns its output.
///
/// The thread sleeps while `fut` is pending and wakes when `fut`'s waker is woken,
/// from any thread. Calls may nest (a future driven by `block_on` may itself call
/// `block_on`), and `block_on` works on any thread, including a pool thread.
///
/// This is for tests, examples and `main` functions: places where blocking the
/// calling thread is the point. Do **not** call it on an async runtime's worker
/// thread (inside a tokio task, a smol task, or a [`LocalExecutor`] task): it
/// blocks that worker, and with it every other task the worker would have run; if
/// `fut` waits for one of those tasks, the program deadlocks.
///
/// # Examples
///
/// ```
/// let answer = aopen::block_on(async { 6 * 7 });
/// assert_eq!(answer, 42);
/// ```
///
/// [`LocalExecutor`]: super::LocalExecutor
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    with_parker(|parker, waker| drive(fut.as_mut(), parker, waker))
}

/// Calls `f` with this thread's cached parker and waker, or with a fresh pair when
/// the cache is busy (nested call) or gone (thread teardown).
#[cfg(not(loom))]
fn with_parker<R>(f: impl FnOnce(&Parker, &Waker) -> R) -> R {
    std::thread_local! {
        /// This thread's parker and a waker for it, reused by every non-nested
        /// `block_on` on this thread.
        static CACHE: RefCell<(Arc<Parker>, Waker)> = RefCell::new(fresh_pair());
    }

    // `Some` until `f` is called; the cache closure may not get to call it.
    let mut f = Some(f);
    let cached = CACHE.try_with(|cache| match cache.try_borrow_mut() {
        // The common case: reuse this thread's pair for the whole call.
        Ok(pair) => f.take().map(|f| f(&pair.0, &pair.1)),
        // Nested inside another `block_on` on this thread: its pair is busy.
        Err(_) => None,
    });
    match (cached, f.take()) {
        (Ok(Some(output)), _) => output,
        // Nested call, or the thread-local was already destroyed: `f` was not called.
        (_, Some(f)) => {
            let (parker, waker) = fresh_pair();
            f(&parker, &waker)
        }
        (_, None) => unreachable!("aopen block_on: the cache took the future but gave no output"),
    }
}

/// Calls `f` with a fresh parker and waker: loom objects must not outlive the model
/// run that made them, so nothing is cached.
#[cfg(loom)]
fn with_parker<R>(f: impl FnOnce(&Parker, &Waker) -> R) -> R {
    let (parker, waker) = fresh_pair();
    f(&parker, &waker)
}

/// A new parker and a waker that unparks it.
fn fresh_pair() -> (Arc<Parker>, Waker) {
    let parker = Arc::new(Parker::new());
    let waker = parker::waker(&parker);
    (parker, waker)
}

/// Polls `fut` until it is ready, parking on `parker` between polls. `waker` must
/// unpark `parker`.
fn drive<F: Future + ?Sized>(mut fut: Pin<&mut F>, parker: &Parker, waker: &Waker) -> F::Output {
    let mut cx = Context::from_waker(waker);
    loop {
        super::fire_due_timers();
        if let Poll::Ready(output) = fut.as_mut().poll(&mut cx) {
            return output;
        }
        super::park(parker);
    }
}

#[cfg(all(test, not(loom)))]
mod pool_tests {
    /// `block_on` on a pool thread, waiting for another job of the same pool: the
    /// inner job lands in the blocked thread's own deque and another thread steals it.
    #[test]
    fn works_inside_a_pool_job() {
        let pool = crate::Pool::builder().max_threads(2).build().unwrap();
        let inner = pool.clone();
        let answer =
            super::block_on(pool.unblock(move || super::block_on(inner.unblock(|| 21)) * 2));
        assert_eq!(answer, 42);
    }
}
