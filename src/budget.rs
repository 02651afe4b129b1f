//! The descriptor budget: an async counting semaphore with a FIFO queue of waiters.
//!
//! # The problem
//!
//! A program that opens files faster than it closes them runs into `EMFILE`, and on a
//! slow network mount the gap between "asked to open" and "closed" can be seconds. A
//! pool of threads makes this worse, because it lets hundreds of opens be in flight at
//! once. The budget is the back pressure: every descriptor the crate holds owns one
//! [`Permit`], taken *before* `open(2)` and given back only *after* `close(2)` returned.
//!
//! # The answer: one lock, one queue
//!
//! The budget's state is a count of free units and a FIFO queue of waiters, under one
//! mutex. Waiters are served strictly in arrival order: a release gives units to the
//! head of the queue while the head's whole need fits, and stops at the first waiter
//! it cannot serve. So a waiter for several units (a `copy` holds two descriptors) at
//! the head keeps the units that come free until it has all it needs; single-unit
//! acquirers that arrive later queue behind it instead of taking them, and steady
//! single-unit traffic cannot starve it.
//!
//! # Invariants
//!
//! - `available + granted-not-yet-taken + permits alive == capacity + overdrawn`,
//!   always; a [`Permit`] gives its units back exactly once, in its `Drop`.
//! - Overdraft, for descriptors that exist already: adopting a descriptor the program
//!   opened itself, synchronously (`From<std::fs::File>`, `FromRawFd`), cannot wait,
//!   so it takes a unit even when none is free, and the budget is *overdrawn*. A
//!   release repays the overdraft before anything else: while it lasts nobody is
//!   served, so no new descriptor is opened until the crate holds fewer than
//!   `capacity` again. (The adopted descriptor was open before the crate had it: the
//!   process never has more descriptors because of the budget's overdraft.)
//! - After every change of the state, under the lock: the queue is empty, or its head
//!   needs more units than are free. (Nothing can be served and is not.)
//! - No lost wake-ups. A waiter is granted its units under the lock, removed from the
//!   queue and woken after the lock is released; its next poll finds itself gone from
//!   the queue and takes the units. Two releases in a row grant two waiters, whether
//!   or not the first has run.
//! - A cancelled waiter passes its wake-up on: dropping a waiter that was granted and
//!   not yet polled gives its units back and serves the queue again; dropping the head
//!   of the queue serves the waiters behind it if they now fit.
//! - First come, first served: a newcomer (an [`Acquire`] polled for the first time,
//!   or [`Budget::try_acquire`]) takes free units only when nobody is queued.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use std::collections::VecDeque;
use std::task::Waker;

use crate::sync::{lock, Arc, Mutex};

/// Descriptors left to the rest of the program when the budget is sized from
/// `RLIMIT_NOFILE`: at least this many, or a quarter of the soft limit if that is more.
///
/// # Examples
///
/// ```
/// use aopen::budget::{default_capacity, MIN_HEADROOM};
///
/// // Lower this process's soft RLIMIT_NOFILE to 200.
/// let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
/// // SAFETY: `limit` is a valid `rlimit`; getrlimit writes it, setrlimit reads it.
/// assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
/// limit.rlim_cur = 200;
/// assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
/// // A quarter of 200 is 50, less than the floor: the budget leaves 64 to the program.
/// assert_eq!(default_capacity(), 200 - MIN_HEADROOM);
/// ```
pub const MIN_HEADROOM: usize = 64;

/// The smallest default budget, used when `RLIMIT_NOFILE` is tiny or cannot be read.
///
/// # Examples
///
/// ```
/// use aopen::budget::{default_capacity, MIN_DEFAULT_CAPACITY};
///
/// // Lower this process's soft RLIMIT_NOFILE to 40, less than the headroom alone.
/// let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
/// // SAFETY: `limit` is a valid `rlimit`; getrlimit writes it, setrlimit reads it.
/// assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
/// limit.rlim_cur = 40;
/// assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
/// assert_eq!(aopen::Budget::from_rlimit().capacity(), MIN_DEFAULT_CAPACITY);
/// assert_eq!(default_capacity(), MIN_DEFAULT_CAPACITY);
/// ```
pub const MIN_DEFAULT_CAPACITY: usize = 16;

/// The largest default budget, used when `RLIMIT_NOFILE` is unlimited or huge.
///
/// # Examples
///
/// ```
/// use aopen::budget::{default_capacity, MAX_DEFAULT_CAPACITY};
///
/// // However high RLIMIT_NOFILE is, the default budget stays within the cap...
/// assert!(default_capacity() <= MAX_DEFAULT_CAPACITY);
/// // ...which binds the default only: a budget asked for explicitly may be larger.
/// let pool = aopen::Pool::builder().descriptor_budget(2 * MAX_DEFAULT_CAPACITY).build()?;
/// assert_eq!(pool.budget().capacity(), 2 * MAX_DEFAULT_CAPACITY);
/// # Ok::<(), std::io::Error>(())
/// ```
pub const MAX_DEFAULT_CAPACITY: usize = 1 << 16;

/// An async counting semaphore that caps how many descriptors the crate holds.
///
/// Cloning a `Budget` gives another handle to the same counter.
///
/// Each [`Pool`](crate::Pool) has one ([`Pool::budget`](crate::Pool::budget)); its
/// files and directory listings take their permits from it. You can also use a
/// `Budget` on its own, to bound any resource: it is `Send + Sync + Clone`, and its
/// [`acquire`](Budget::acquire) future works under any executor.
///
/// # Examples
///
/// ```
/// use aopen::Budget;
///
/// let budget = Budget::new(2);
/// let a = budget.try_acquire().expect("two free");
/// let b = aopen::block_on(budget.acquire()); // a unit is free: completes at once
/// assert_eq!((budget.available(), budget.held()), (0, 2));
/// assert!(budget.try_acquire().is_none());
///
/// // A waiter sleeps until a permit is dropped, on any thread.
/// let waiter = std::thread::spawn({
///     let budget = budget.clone();
///     move || aopen::block_on(budget.acquire())
/// });
/// while budget.waiters() == 0 {
///     std::thread::yield_now();
/// }
/// drop(a); // gives the unit back and wakes the waiter
/// let c = waiter.join().unwrap();
/// drop((b, c));
/// assert_eq!(budget.available(), budget.capacity());
/// ```
#[derive(Clone)]
pub struct Budget {
    inner: Arc<Inner>,
}

struct Inner {
    /// The number of units this budget was created with; never changes.
    capacity: usize,
    /// Free units and the queue of waiters.
    state: Mutex<State>,
}

/// What the budget's lock guards.
struct State {
    /// Units neither held by a [`Permit`] nor granted to a waiter that has not taken
    /// them yet.
    available: usize,
    /// Waiters not yet served, in arrival order (so in increasing `id`).
    queue: VecDeque<Waiter>,
    /// The `id` the next waiter gets.
    next_id: u64,
    /// Waiters granted their units (gone from the queue) that have not taken them
    /// yet: their next poll takes them, their drop gives them back.
    granted: usize,
    /// Units held beyond `capacity` by permits taken with [`Budget::overdraw`]; repaid
    /// first by every release.
    overdrawn: usize,
}

/// One queued [`Acquire`].
struct Waiter {
    /// Its place in line; an `Acquire` finds itself by it.
    id: u64,
    /// Units it needs at once.
    units: usize,
    /// Woken when it is granted.
    waker: Waker,
}

impl State {
    /// Takes `units` free units for a newcomer, only if nobody is queued (they came
    /// first): the one first-come rule of `try_acquire`, a first poll and `overdraw`.
    fn take_as_newcomer(&mut self, units: usize) -> bool {
        // Seeded bug for the loom model `budget_multi_unit_waiter_is_served_first`: a
        // newcomer takes free units past the waiters queued before it.
        #[cfg(aopen_mutant = "budget_newcomer_jumps_queue")]
        let nobody_first = true;
        #[cfg(not(aopen_mutant = "budget_newcomer_jumps_queue"))]
        let nobody_first = self.queue.is_empty();
        if nobody_first && self.available >= units {
            self.available -= units;
            return true;
        }
        false
    }

    /// The position of waiter `id` in the queue; `None` once it was granted.
    fn position(&self, id: u64) -> Option<usize> {
        self.queue
            .binary_search_by_key(&id, |waiter| waiter.id)
            .ok()
    }

    /// Grants the head of the queue its units if they are all free, removing it from
    /// the queue; returns its waker, to wake once the lock is released.
    fn grant_head(&mut self) -> Option<Waker> {
        let head = self.queue.front()?;
        if head.units > self.available {
            // FIFO: the head keeps what is free until it has all it needs.
            return None;
        }
        self.available -= head.units;
        self.granted += 1;
        self.queue.pop_front().map(|waiter| waiter.waker)
    }
}

impl Budget {
    /// Creates a budget of `capacity` units.
    ///
    /// # Panics
    ///
    /// Panics if `capacity` is zero: a budget that can never be met would make every
    /// acquire wait forever, which is a programmer's error. The pool builder and the
    /// `AOPEN_DESCRIPTOR_BUDGET` variable report zero as an `InvalidInput` error instead.
    ///
    /// # Examples
    ///
    /// ```
    /// let budget = aopen::Budget::new(8);
    /// assert_eq!(budget.capacity(), 8);
    /// assert_eq!(budget.available(), 8);
    /// ```
    ///
    /// ```should_panic
    /// let never = aopen::Budget::new(0); // panics: capacity must be at least 1
    /// ```
    pub fn new(capacity: usize) -> Budget {
        assert!(
            capacity > 0,
            "aopen::Budget::new: capacity must be at least 1, got 0"
        );
        Budget {
            inner: Arc::new(Inner {
                capacity,
                state: Mutex::new(State {
                    available: capacity,
                    queue: VecDeque::new(),
                    next_id: 0,
                    granted: 0,
                    overdrawn: 0,
                }),
            }),
        }
    }

    /// Creates a budget sized from this process's `RLIMIT_NOFILE` (see
    /// [`default_capacity`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let budget = aopen::Budget::from_rlimit();
    /// assert_eq!(budget.capacity(), aopen::budget::default_capacity());
    /// ```
    pub fn from_rlimit() -> Budget {
        Budget::new(default_capacity())
    }

    /// Waits until a unit is free and takes it.
    ///
    /// The future is `Send`, owns a handle to the budget (it is `'static`), and is
    /// cancel-safe: dropping it before it completes takes nothing, and a wake-up it had
    /// already received is passed to the next waiter.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let budget = aopen::Budget::new(1);
    /// let ex = aopen::LocalExecutor::new();
    /// ex.run(async {
    ///     let held = budget.acquire().await;
    ///     // A second acquire waits; give the unit back a little later from another task.
    ///     ex.spawn(async move {
    ///         aopen::sleep(Duration::from_millis(5)).await;
    ///         drop(held);
    ///     })
    ///     .detach();
    ///     let permit = budget.acquire().await; // woken by that drop
    ///     assert_eq!(budget.available(), 0);
    ///     drop(permit);
    /// });
    /// assert_eq!(budget.available(), 1);
    /// ```
    pub fn acquire(&self) -> Acquire {
        self.acquire_units(1)
    }

    /// Waits for `units` units at once (a call that holds two descriptors takes two).
    /// The caller checks `units <= capacity`; zero units complete at once.
    pub(crate) fn acquire_units(&self, units: usize) -> Acquire {
        debug_assert!(units <= self.capacity());
        Acquire {
            budget: self.clone(),
            units,
            stage: Stage::New,
        }
    }

    /// Waits for `units` more units for a caller that holds `held` units of this
    /// budget already (a `try_clone` holds its file's, a `copy` nothing yet).
    ///
    /// The one rule for every call that needs permits while it may hold some: if
    /// `held + units` exceeds the capacity the wait could never end (the caller's own
    /// units never come back while it waits), so this is an `InvalidInput` error at
    /// once instead of a hang. Units held by *other* handles of the same task are
    /// not known here: a task that keeps every permit in files and then asks for one
    /// more waits for itself, as with any semaphore.
    pub(crate) fn acquire_beside(&self, held: usize, units: usize) -> io::Result<Acquire> {
        let capacity = self.capacity();
        if held.saturating_add(units) > capacity {
            let holding = match held {
                0 => String::new(),
                n => format!(" besides the {n} it holds"),
            };
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "needs {units} descriptor(s){holding}, but the pool's budget is {capacity}: \
                     the wait could never end (raise the descriptor budget)"
                ),
            ));
        }
        Ok(self.acquire_units(units))
    }

    /// Takes a unit if one is free right now.
    ///
    /// It never waits, and it does not jump the queue: while tasks wait in
    /// [`acquire`](Budget::acquire), the units that come free are theirs, and this
    /// returns `None`. It is meant for callers that have something better to do than
    /// wait.
    ///
    /// # Examples
    ///
    /// ```
    /// let budget = aopen::Budget::new(1);
    /// let permit = budget.try_acquire().expect("one free");
    /// assert!(budget.try_acquire().is_none()); // none left: no waiting, just None
    /// drop(permit);
    /// assert!(budget.try_acquire().is_some());
    /// ```
    pub fn try_acquire(&self) -> Option<Permit> {
        if self.inner.take_as_newcomer(1) {
            Some(Permit {
                budget: self.clone(),
                units: 1,
            })
        } else {
            None
        }
    }

    /// Units free right now (a snapshot; it can change at once).
    ///
    /// # Examples
    ///
    /// ```
    /// let budget = aopen::Budget::new(3);
    /// let _permit = budget.try_acquire();
    /// assert_eq!(budget.available(), 2);
    /// ```
    pub fn available(&self) -> usize {
        lock(&self.inner.state).available
    }

    /// The number of units this budget was created with.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = aopen::Pool::builder().descriptor_budget(100).build()?;
    /// assert_eq!(pool.budget().capacity(), 100);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    /// Units held by live [`Permit`]s right now (a snapshot).
    ///
    /// # Examples
    ///
    /// ```
    /// let budget = aopen::Budget::new(3);
    /// let permits: Vec<_> = (0..2).filter_map(|_| budget.try_acquire()).collect();
    /// assert_eq!(budget.held(), 2);
    /// drop(permits);
    /// assert_eq!(budget.held(), 0);
    /// ```
    pub fn held(&self) -> usize {
        let state = lock(&self.inner.state);
        self.capacity() - state.available + state.overdrawn
    }

    /// A permit now, even if none is free: then the budget is overdrawn by one until
    /// some permit is dropped (see the module docs). For a descriptor that is open
    /// already and must be adopted without waiting; never for one the crate is
    /// about to open. Takes a free unit only when nobody is queued, so it never
    /// jumps the queue either: a waiter is served once the overdraft is repaid.
    pub(crate) fn overdraw(&self) -> Permit {
        let mut state = lock(&self.inner.state);
        if !state.take_as_newcomer(1) {
            state.overdrawn += 1;
        }
        Permit {
            budget: self.clone(),
            units: 1,
        }
    }

    /// Tasks waiting in [`acquire`](Budget::acquire) right now (a snapshot).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::future::Future;
    /// use std::pin::pin;
    /// use std::task::Context;
    ///
    /// let budget = aopen::Budget::new(1);
    /// let _held = budget.try_acquire().unwrap();
    /// let mut waiting = pin!(budget.acquire());
    /// let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    /// assert!(waiting.as_mut().poll(&mut cx).is_pending());
    /// assert_eq!(budget.waiters(), 1);
    /// ```
    pub fn waiters(&self) -> usize {
        lock(&self.inner.state).queue.len()
    }
}

impl fmt::Debug for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Budget")
            .field("capacity", &self.capacity())
            .field("available", &self.available())
            .field("waiters", &self.waiters())
            .finish()
    }
}

impl Inner {
    /// Takes `units` units for a newcomer: only if nobody is queued (they were first)
    /// and that many are free. Never blocks.
    fn take_as_newcomer(&self, units: usize) -> bool {
        lock(&self.state).take_as_newcomer(units)
    }

    /// Gives `units` units back (a dropped permit, or a cancelled waiter's grant) and
    /// serves the queue with them.
    fn release_units(&self, units: usize) {
        if units == 0 {
            return;
        }
        let mut state = lock(&self.state);
        // An overdraft is repaid first: nobody is served while the crate holds more
        // than `capacity`.
        #[cfg(not(aopen_mutant = "budget_overdraft_not_repaid"))]
        let repaid = units.min(state.overdrawn);
        // Seeded bug for the loom model `budget_overdraft_is_repaid_before_a_waiter`:
        // the release frees its unit for a waiter while the budget is still overdrawn.
        #[cfg(aopen_mutant = "budget_overdraft_not_repaid")]
        let repaid = 0;
        state.overdrawn -= repaid;
        state.available += units - repaid;
        // Seeded bug for the loom model `budget_two_releases_wake_two_waiters`: like a
        // plain `notify(n)`, which is a no-op while another notified listener has not
        // run yet, this release serves nobody while a grant is untaken.
        #[cfg(aopen_mutant = "budget_plain_notify")]
        if state.granted > 0 {
            return;
        }
        drop(state);
        self.serve();
    }

    /// Grants queued waiters in order while the head's need fits, waking each after
    /// the lock is released.
    fn serve(&self) {
        loop {
            let granted = lock(&self.state).grant_head();
            match granted {
                Some(waker) => waker.wake(),
                None => return,
            }
        }
    }
}

/// One unit of a [`Budget`]; gives it back when dropped.
///
/// The crate keeps one `Permit` per open descriptor, from before `open(2)` until after
/// `close(2)` returned.
///
/// # Examples
///
/// ```
/// let budget = aopen::Budget::new(1);
/// let permit: aopen::Permit = budget.try_acquire().unwrap();
/// assert_eq!(permit.budget().held(), 1);
/// // A permit may move to another thread, and gives its unit back where it is dropped.
/// std::thread::spawn(move || drop(permit)).join().unwrap();
/// assert_eq!(budget.available(), 1);
/// ```
pub struct Permit {
    budget: Budget,
    /// Units this permit holds: 1 for every permit a user sees.
    units: usize,
}

impl Permit {
    /// The budget this permit belongs to.
    ///
    /// # Examples
    ///
    /// ```
    /// let budget = aopen::Budget::new(4);
    /// let permit = budget.try_acquire().unwrap();
    /// assert_eq!(permit.budget().capacity(), 4);
    /// ```
    pub fn budget(&self) -> &Budget {
        &self.budget
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.budget.inner.release_units(self.units);
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").finish_non_exhaustive()
    }
}

/// The future returned by [`Budget::acquire`].
///
/// `Send`, `'static` and `Unpin`; dropping it before it completes takes nothing and
/// passes on a wake-up it had received.
///
/// # Examples
///
/// ```
/// let budget = aopen::Budget::new(1);
/// let acquire: aopen::budget::Acquire = budget.acquire();
/// // It owns a handle to the budget, so it can outlive this scope and move threads.
/// let permit = std::thread::spawn(move || aopen::block_on(acquire)).join().unwrap();
/// assert_eq!(budget.held(), 1);
/// drop(permit);
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Acquire {
    budget: Budget,
    /// Units to take at once.
    units: usize,
    /// Where this waiter is in its life.
    stage: Stage,
}

/// The life of an [`Acquire`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Not polled yet: a newcomer.
    New,
    /// In the queue as waiter `id`, or granted (gone from the queue) and not polled
    /// since.
    Queued(u64),
    /// Completed: its permit was handed out.
    Done,
}

impl Acquire {
    fn permit(&mut self) -> Poll<Permit> {
        self.stage = Stage::Done;
        Poll::Ready(Permit {
            budget: self.budget.clone(),
            units: self.units,
        })
    }
}

impl Future for Acquire {
    type Output = Permit;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Permit> {
        let this = self.get_mut();
        match this.stage {
            Stage::New => {
                if this.units == 0 || this.budget.inner.take_as_newcomer(this.units) {
                    // Nobody queued and enough free: taken at once.
                    return this.permit();
                }
                let mut state = lock(&this.budget.inner.state);
                // Looked again under the lock: a release may have come in between.
                if state.take_as_newcomer(this.units) {
                    drop(state);
                    return this.permit();
                }
                // Queue at the back; a release grants us in turn and wakes `cx`.
                let id = state.next_id;
                state.next_id += 1;
                state.queue.push_back(Waiter {
                    id,
                    units: this.units,
                    waker: cx.waker().clone(),
                });
                this.stage = Stage::Queued(id);
                Poll::Pending
            }
            Stage::Queued(id) => {
                let mut state = lock(&this.budget.inner.state);
                match state.position(id) {
                    // Still waiting (a spurious poll): keep the newest waker.
                    Some(at) => {
                        let waiter = &mut state.queue[at];
                        if !waiter.waker.will_wake(cx.waker()) {
                            waiter.waker = cx.waker().clone();
                        }
                        Poll::Pending
                    }
                    // Gone from the queue: a release granted us our units.
                    None => {
                        state.granted -= 1;
                        drop(state);
                        this.permit()
                    }
                }
            }
            Stage::Done => panic!("aopen::budget::Acquire polled after it completed"),
        }
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        let Stage::Queued(id) = self.stage else {
            // Never queued, or completed: nothing of the budget's to give back.
            return;
        };
        let inner = &self.budget.inner;
        let mut state = lock(&inner.state);
        match state.position(id) {
            Some(at) => {
                // Still waiting: leave the line. If it was the head, those behind it
                // may fit now.
                state.queue.remove(at);
                drop(state);
                if at == 0 {
                    inner.serve();
                }
            }
            None => {
                // Granted and never taken: the units go back, to the next in line.
                state.granted -= 1;
                drop(state);
                // Seeded bug for the loom model
                // `budget_cancelled_waiter_passes_wakeup_on`: a cancelled waiter keeps
                // the units it was granted, and the next waiter sleeps on.
                #[cfg(not(aopen_mutant = "acquire_drop_swallows_wakeup"))]
                inner.release_units(self.units);
            }
        }
    }
}

impl fmt::Debug for Acquire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("units", &self.units)
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}

/// The default budget for this process:
/// `clamp(soft − max(MIN_HEADROOM, soft / 4), MIN_DEFAULT_CAPACITY, MAX_DEFAULT_CAPACITY)`,
/// where `soft` is the soft `RLIMIT_NOFILE` (unlimited counts as `MAX_DEFAULT_CAPACITY`
/// plus headroom). A soft limit of 1024 gives 768; 65536 gives 49152.
///
/// # Examples
///
/// ```
/// use aopen::budget::{default_capacity, MAX_DEFAULT_CAPACITY, MIN_DEFAULT_CAPACITY};
///
/// let capacity = default_capacity();
/// assert!((MIN_DEFAULT_CAPACITY..=MAX_DEFAULT_CAPACITY).contains(&capacity));
/// ```
pub fn default_capacity() -> usize {
    capacity_for_limit(soft_nofile_limit().ok())
}

/// The formula of [`default_capacity`], for a given soft limit (`None`: unknown).
pub(crate) fn capacity_for_limit(soft: Option<u64>) -> usize {
    let soft = match soft {
        Some(soft) => usize::try_from(soft).unwrap_or(usize::MAX),
        None => return MIN_DEFAULT_CAPACITY,
    };
    let headroom = MIN_HEADROOM.max(soft / 4);
    soft.saturating_sub(headroom)
        .clamp(MIN_DEFAULT_CAPACITY, MAX_DEFAULT_CAPACITY)
}

/// Reads the soft `RLIMIT_NOFILE` of this process (on macOS at most `OPEN_MAX`; on
/// Windows, which has no such limit, a fixed count of handles: `sys/windows.rs`).
pub(crate) fn soft_nofile_limit() -> io::Result<u64> {
    crate::sys::descriptor_limit()
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::task::Waker;

    #[test]
    fn formula() {
        assert_eq!(capacity_for_limit(Some(1024)), 768);
        assert_eq!(capacity_for_limit(Some(65536)), 49152);
        assert_eq!(capacity_for_limit(Some(10)), MIN_DEFAULT_CAPACITY);
        assert_eq!(capacity_for_limit(Some(u64::MAX)), MAX_DEFAULT_CAPACITY);
        assert_eq!(capacity_for_limit(None), MIN_DEFAULT_CAPACITY);
    }

    #[test]
    fn try_acquire_counts() {
        let budget = Budget::new(2);
        let a = budget.try_acquire().unwrap();
        let _b = budget.try_acquire().unwrap();
        assert!(budget.try_acquire().is_none());
        assert_eq!(budget.held(), 2);
        drop(a);
        assert_eq!(budget.available(), 1);
    }

    /// An overdraft is repaid before anyone is served: with the budget full and one
    /// adopted descriptor over it, the first release only repays, the second serves
    /// the waiter. (Without the repayment the waiter would be served at once and the
    /// crate would hold `capacity + 1` with a new open on top.)
    #[test]
    fn an_overdraft_is_repaid_before_a_waiter_is_served() {
        let budget = Budget::new(2);
        let a = budget.try_acquire().unwrap();
        let b = budget.try_acquire().unwrap();
        let adopted = budget.overdraw();
        assert_eq!((budget.held(), budget.available()), (3, 0));
        let mut waiter = budget.acquire();
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        assert!(Pin::new(&mut waiter).poll(&mut cx).is_pending());
        drop(a);
        assert_eq!(budget.held(), 2, "the release repaid the overdraft");
        assert!(Pin::new(&mut waiter).poll(&mut cx).is_pending());
        drop(adopted);
        let permit = match Pin::new(&mut waiter).poll(&mut cx) {
            Poll::Ready(permit) => permit,
            Poll::Pending => panic!("back under capacity, the waiter must be served"),
        };
        assert_eq!(budget.held(), 2);
        // An overdraw with a free unit and nobody queued takes that unit.
        drop((b, permit));
        let c = budget.overdraw();
        assert_eq!((budget.held(), budget.available()), (1, 1));
        drop(c);
        assert_eq!(budget.available(), 2);
    }

    /// An overdraw never takes a free unit past a queued waiter.
    #[test]
    fn an_overdraw_does_not_jump_the_queue() {
        let budget = Budget::new(2);
        let a = budget.try_acquire().unwrap();
        let mut waiter = budget.acquire_units(2);
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        assert!(Pin::new(&mut waiter).poll(&mut cx).is_pending());
        let adopted = budget.overdraw();
        assert_eq!(budget.available(), 1, "the free unit stays for the waiter");
        drop(a);
        assert!(
            Pin::new(&mut waiter).poll(&mut cx).is_pending(),
            "repaid only"
        );
        drop(adopted);
        assert!(Pin::new(&mut waiter).poll(&mut cx).is_ready());
    }

    /// Two waiters that each need two units, one unit free: they may pass the
    /// wake-up on once, but must not wake each other forever.
    #[test]
    fn multi_unit_waiters_do_not_ping_pong() {
        use std::sync::atomic::{AtomicUsize as Count, Ordering};
        use std::sync::Arc as StdArc;
        use std::task::Wake;

        struct Counter(Count);
        impl Wake for Counter {
            fn wake(self: StdArc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }

        let budget = Budget::new(3);
        let held: Vec<_> = (0..3).map(|_| budget.try_acquire().unwrap()).collect();
        let counters = [
            StdArc::new(Counter(Count::new(0))),
            StdArc::new(Counter(Count::new(0))),
        ];
        let wakers: Vec<Waker> = counters.iter().map(|c| Waker::from(c.clone())).collect();
        let mut waiters = [budget.acquire_units(2), budget.acquire_units(2)];
        let mut seen = [0, 0];
        for (i, waiter) in waiters.iter_mut().enumerate() {
            let mut cx = Context::from_waker(&wakers[i]);
            assert!(Pin::new(waiter).poll(&mut cx).is_pending());
        }
        let mut held = held.into_iter();
        drop(held.next());
        // Poll whoever was woken, until nobody is; a ping-pong never settles.
        let mut rounds = 0;
        loop {
            let mut woken = false;
            for (i, waiter) in waiters.iter_mut().enumerate() {
                let now = counters[i].0.load(Ordering::SeqCst);
                if now != seen[i] {
                    seen[i] = now;
                    woken = true;
                    let mut cx = Context::from_waker(&wakers[i]);
                    assert!(Pin::new(waiter).poll(&mut cx).is_pending());
                }
            }
            if !woken {
                break;
            }
            rounds += 1;
            assert!(
                rounds < 10,
                "multi-unit waiters keep waking each other: {seen:?}"
            );
        }
        // A second free unit wakes one of them, and it gets through.
        drop(held.next());
        let woken: Vec<usize> = (0..2)
            .filter(|&i| counters[i].0.load(Ordering::SeqCst) != seen[i])
            .collect();
        assert_eq!(woken.len(), 1, "{seen:?}");
        let mut cx = Context::from_waker(&wakers[woken[0]]);
        assert!(Pin::new(&mut waiters[woken[0]]).poll(&mut cx).is_ready());
    }

    /// A `copy` (two units at once) behind steady single-unit traffic: every round
    /// one single-unit holder leaves and a new one arrives. Without FIFO grants the
    /// newcomer takes the freed unit each time and the copy never sees two.
    #[test]
    fn a_multi_unit_waiter_is_not_starved_by_single_unit_traffic() {
        const ROUNDS: usize = 100;
        let budget = Budget::new(2);
        let mut held: VecDeque<Permit> = (0..2).map(|_| budget.try_acquire().unwrap()).collect();
        let mut cx = Context::from_waker(Waker::noop());
        let mut copy = budget.acquire_units(2);
        assert!(Pin::new(&mut copy).poll(&mut cx).is_pending());
        let mut newcomers = Vec::new();
        let mut served_in = None;
        for round in 0..ROUNDS {
            drop(held.pop_front());
            let mut newcomer = budget.acquire();
            match Pin::new(&mut newcomer).poll(&mut cx) {
                Poll::Ready(permit) => held.push_back(permit),
                Poll::Pending => newcomers.push(newcomer),
            }
            if let Poll::Ready(permit) = Pin::new(&mut copy).poll(&mut cx) {
                served_in = Some(round);
                drop(permit);
                break;
            }
        }
        assert_eq!(
            served_in,
            Some(1),
            "the copy was not served in {ROUNDS} rounds of single-unit traffic"
        );
        // Its units went to the newcomers queued behind it, in order.
        for mut newcomer in newcomers {
            assert!(Pin::new(&mut newcomer).poll(&mut cx).is_ready());
        }
    }

    #[test]
    #[should_panic(expected = "capacity must be at least 1")]
    fn zero_panics() {
        let _ = Budget::new(0);
    }
}
