//! The descriptor budget: an async counting semaphore built on `event-listener`.
//!
//! # The problem
//!
//! A program that opens files faster than it closes them runs into `EMFILE`, and on a
//! slow network mount the gap between "asked to open" and "closed" can be seconds. A
//! pool of threads makes this worse, because it lets hundreds of opens be in flight at
//! once. The budget is the back pressure: every descriptor the crate holds owns one
//! [`Permit`], taken *before* `open(2)` and given back only *after* `close(2)` returned.
//!
//! # Invariants
//!
//! - `available + permits alive == capacity`, always; a [`Permit`] gives its unit back
//!   exactly once, in its `Drop`.
//! - No lost wake-ups. A release first makes the unit available, then notifies one
//!   *additional* listener (`notify(1.additional())`): two releases in a row wake two
//!   waiters, even if the first one has not run yet. A waiter that was notified but is
//!   dropped before it took a unit passes the notification on (event-listener does this
//!   when a notified listener is dropped), so a cancelled waiter never strands a permit.
//! - A waiter re-checks for a unit *after* it started listening, so a release that lands
//!   between its failed attempt and its `listen` is never missed.
//! - Roughly first come, first served: a task that arrives while others wait does not try
//!   the fast path, it queues behind them; event-listener notifies in listening order.
//!   A newcomer's one look after it started listening (needed so a release between
//!   its attempt and its `listen` is not missed) can still take a unit that was just
//!   freed for a woken waiter, which then queues again: "roughly" means that.
//! - A waiter for several units (a `copy` holds two descriptors) that is woken while
//!   fewer are free passes its wake-up on, so a waiter behind it that needs fewer is
//!   not left asleep next to a free unit.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use event_listener::{Event, EventListener, IntoNotification};

use crate::sync::{Arc, AtomicUsize, Ordering};

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
    /// Units not held by any [`Permit`]: `capacity - permits alive`.
    available: AtomicUsize,
    /// [`Acquire`] futures that have failed the fast path and are queued (or about to
    /// queue) on `event`; what [`Budget::waiters`] reports.
    waiters: AtomicUsize,
    /// Where waiters listen and releases notify.
    event: Event,
    /// Releases so far; lets a multi-unit waiter pass a wake-up on once per release.
    releases: AtomicUsize,
    /// Listeners of cancelled waiters, kept alive by the seeded bug of the loom model
    /// `budget_cancelled_waiter_passes_wakeup_on`.
    #[cfg(aopen_mutant = "acquire_drop_swallows_wakeup")]
    graveyard: crate::sync::Mutex<Vec<EventListener>>,
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
                available: AtomicUsize::new(capacity),
                waiters: AtomicUsize::new(0),
                event: Event::new(),
                releases: AtomicUsize::new(0),
                #[cfg(aopen_mutant = "acquire_drop_swallows_wakeup")]
                graveyard: crate::sync::Mutex::new(Vec::new()),
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
            listener: None,
            queued: false,
            passed_on_at: None,
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
    /// This does not queue behind tasks waiting in [`acquire`](Budget::acquire); it is
    /// meant for callers that have something better to do than wait.
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
        if self.inner.take_units(1) {
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
        self.inner.available.load(Ordering::SeqCst)
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
        self.capacity() - self.available()
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
        self.inner.waiters.load(Ordering::SeqCst)
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
    /// Takes `units` units if that many are free. Never blocks.
    fn take_units(&self, units: usize) -> bool {
        let mut current = self.available.load(Ordering::SeqCst);
        while current >= units {
            match self.available.compare_exchange_weak(
                current,
                current - units,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
        false
    }

    /// Gives `units` units back and wakes that many more waiters.
    fn release_units(&self, units: usize) {
        if units == 0 {
            return;
        }
        // Make the units visible *before* notifying: a woken waiter must find them.
        self.available.fetch_add(units, Ordering::SeqCst);
        self.releases.fetch_add(1, Ordering::SeqCst);
        #[cfg(not(aopen_mutant = "budget_plain_notify"))]
        self.event.notify(units.additional());
        // Seeded bug for the loom model: plain `notify(n)` is a no-op while n other
        // listeners are notified and have not run yet, so a second release strands
        // a unit.
        #[cfg(aopen_mutant = "budget_plain_notify")]
        self.event.notify(units);
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
    /// Our place in the event's queue, once we have one.
    listener: Option<EventListener>,
    /// Whether this future is counted in `waiters`.
    queued: bool,
    /// The release count when this waiter last passed a wake-up on.
    passed_on_at: Option<usize>,
}

impl Acquire {
    fn finish(&mut self) -> Poll<Permit> {
        self.listener = None;
        if self.queued {
            self.queued = false;
            self.budget.inner.waiters.fetch_sub(1, Ordering::SeqCst);
        }
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
        let inner = &*this.budget.inner;
        loop {
            match this.listener.as_mut() {
                None => {
                    // First poll, or woken and beaten to the unit by another task.
                    // Newcomers take the fast path only when nobody is queued.
                    if (this.queued || inner.waiters.load(Ordering::SeqCst) == 0)
                        && inner.take_units(this.units)
                    {
                        return this.finish();
                    }
                    if !this.queued {
                        this.queued = true;
                        inner.waiters.fetch_add(1, Ordering::SeqCst);
                    }
                    this.listener = Some(inner.event.listen());
                    // A release may have landed between the attempt and `listen`:
                    // look again now that any later release will notify us.
                    if inner.take_units(this.units) {
                        return this.finish();
                    }
                }
                Some(listener) => match Pin::new(listener).poll(cx) {
                    Poll::Ready(()) => {
                        // Notified: a unit was released. Try for it; if another task
                        // took it, queue again (loop back to the `None` arm).
                        this.listener = None;
                        if inner.take_units(this.units) {
                            return this.finish();
                        }
                        // Units are free, just not as many as we need (we wait for
                        // several at once): the wake-up we used up was meant for
                        // them, so pass it on before queueing again, or a waiter that
                        // needs fewer would sleep next to a free unit.
                        // Once per release: two such waiters must not wake each other
                        // forever while the units they need are not there.
                        let releases = inner.releases.load(Ordering::SeqCst);
                        if inner.available.load(Ordering::SeqCst) > 0
                            && this.passed_on_at != Some(releases)
                        {
                            this.passed_on_at = Some(releases);
                            inner.event.notify(1.additional());
                        }
                    }
                    Poll::Pending => return Poll::Pending,
                },
            }
        }
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        // Dropping the listener (if it was notified) passes the notification on.
        #[cfg(not(aopen_mutant = "acquire_drop_swallows_wakeup"))]
        drop(self.listener.take());
        // Seeded bug for the loom model: a cancelled waiter keeps its wake-up (its
        // listener is parked in the budget until the budget is dropped).
        #[cfg(aopen_mutant = "acquire_drop_swallows_wakeup")]
        if let Some(listener) = self.listener.take() {
            crate::sync::lock(&self.budget.inner.graveyard).push(listener);
        }
        if self.queued {
            self.budget.inner.waiters.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl fmt::Debug for Acquire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("queued", &self.queued)
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

    /// Two waiters that each need two units, one unit free: they may pass the
    /// wake-up on once, but must not wake each other forever.
    #[test]
    fn multi_unit_waiters_do_not_ping_pong() {
        use std::sync::atomic::AtomicUsize as Count;
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

    #[test]
    #[should_panic(expected = "capacity must be at least 1")]
    fn zero_panics() {
        let _ = Budget::new(0);
    }
}
