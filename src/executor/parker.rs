//! A thread parker: block one thread until another says "go on".
//!
//! [`block_on`](super::block_on) and [`LocalExecutor`](super::LocalExecutor) park
//! their thread when nothing is ready and unpark it from a waker. The parker is
//! pollster's `Signal` with an atomic fast path in front (the shape `std`'s generic
//! parker has): the state lives in an [`AtomicUsize`] so that an `unpark` with nobody
//! parked, and a `park` with a notification already pending, cost one atomic
//! operation and no lock. Only a thread that really sleeps takes the mutex, and only
//! an `unpark` that finds it sleeping takes it too.
//!
//! The state is one of:
//!
//! - `Empty`: nobody parked, no notification pending;
//! - `Parked`: the owner is asleep on the condition variable (or about to be: it set
//!   this state while holding the mutex and releases the mutex only inside `wait`);
//! - `Notified`: an `unpark` arrived that no `park` has consumed yet.
//!
//! Invariants:
//! - a notification is never lost: an `unpark` before the `park` leaves `Notified`,
//!   which the next `park` consumes without sleeping;
//! - notifications do not accumulate: many `unpark`s before one `park` make that one
//!   `park` return, no more (a later `park` sleeps);
//! - one thread parks on a given parker at a time (its owner); a second concurrent
//!   parker is a bug and panics;
//! - `park` never spins: it sleeps on the condition variable and treats a spurious
//!   wake-up of the condition variable as no wake-up at all.
//!
//! Everything here comes from [`crate::sync`], so the loom models check this code.

use std::task::Waker;
use std::time::Instant;

use super::{arc_waker, ArcWake};
use crate::sync::{self, thread, Arc, AtomicUsize, Condvar, Mutex, Ordering};

/// The parker's states; see the module docs. Stored as `usize` in an atomic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
enum State {
    /// Nobody parked, no notification pending.
    Empty = 0,
    /// The owner sleeps (or is about to) on the condition variable.
    Parked = 1,
    /// An `unpark` arrived that no `park` has consumed yet.
    Notified = 2,
}

impl State {
    /// Decodes a value read from [`Parker::state`].
    fn from_raw(raw: usize) -> State {
        match raw {
            0 => State::Empty,
            1 => State::Parked,
            2 => State::Notified,
            _ => unreachable!("aopen parker: corrupt state {raw}"),
        }
    }
}

/// How many times [`Parker::park`] yields the CPU, checking for a notification, before
/// it sleeps. A sleep and the wake-up that ends it cost a context switch each; a
/// yield costs one system call. Measured with 64 `stat`s in flight on 2 cores
/// (`benches/compare.rs`): context switches per stat fell from 1.4 to below 1.
/// 1 or 4 yields instead of 16 left the 4 KiB `File` read's median over 50
/// interleaved runs where it was (103–112 ms against 107 ms).
///
/// The yields have a price on a busy machine: under EEVDF a yield to a thread that
/// wants the core also gives up the rest of the yielder's slice, so an executor's
/// thread can wait behind computing pool threads until a clock tick (4 ms at 250 Hz).
/// In `examples/tree_compare --million` its 1 ms ticker was over 2 ms late on 15-20 %
/// of its ticks with the yields, 3-5 % without. Both ways were measured and the
/// yields kept: without them (or with yields that stop after one comes back late,
/// for a quiet period), a cached walk of `/usr` took 1.36× `ignore`'s time instead
/// of 0.92-1.00× (`AOPEN_WALKERS=aopen,ignore cargo bench --bench walk -- --usr`),
/// because the walk's thread, woken by each listing, then sleeps and is woken by a
/// futex each time.
/// Under loom no yields: they would only multiply the interleavings.
const YIELDS_BEFORE_SLEEP: usize = if cfg!(loom) { 0 } else { 16 };

/// Blocks one thread until it is unparked. See the module docs for the protocol.
#[derive(Debug)]
pub struct Parker {
    /// A [`State`] as `usize`. Changes to `Parked` only under `lock`; every other
    /// change may happen without it.
    state: AtomicUsize,
    /// Held by a thread going to sleep from the moment it sets `Parked` until
    /// `condvar.wait` releases it, so an `unpark` that takes it cannot notify before
    /// the sleeper waits.
    lock: Mutex<()>,
    /// Where the owner sleeps while `Parked`.
    condvar: Condvar,
}

impl Parker {
    /// Takes a pending notification (`Notified` to `Empty`), if there is one.
    fn try_consume_notification(&self) -> bool {
        self.state
            .compare_exchange(
                State::Notified as usize,
                State::Empty as usize,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// A parker in the `Empty` state.
    pub fn new() -> Parker {
        Parker {
            state: AtomicUsize::new(State::Empty as usize),
            lock: Mutex::new(()),
            condvar: Condvar::new(),
        }
    }

    /// Blocks until [`unpark`](Self::unpark) is called, or returns at once if an
    /// `unpark` already happened since the last `park` returned.
    ///
    /// Only one thread may park on a parker at a time.
    pub fn park(&self) {
        self.park_inner(None);
    }

    /// [`park`](Self::park), but returns at `deadline` at the latest (at once if it
    /// has passed): true if it consumed a notification, false at the deadline, when
    /// it consumed none. (Not under loom, whose timed waits never time out.)
    #[cfg(not(loom))]
    pub fn park_until(&self, deadline: Instant) -> bool {
        self.park_inner(Some(deadline))
    }

    /// Parks until notified (true) or until `deadline`, if there is one (false).
    fn park_inner(&self, deadline: Option<Instant>) -> bool {
        let due = || deadline.is_some_and(|deadline| Instant::now() >= deadline);
        // Fast path: consume a pending notification without touching the lock. When
        // there is none, give the CPU away a few times before going to sleep: a wake
        // that comes within those yields (a pool thread finishing a short job) then
        // costs no sleep and no futex wake-up. Bounded, so this never spins forever.
        for _ in 0..YIELDS_BEFORE_SLEEP {
            if self.try_consume_notification() {
                return true;
            }
            if due() {
                return false;
            }
            thread::yield_now();
        }
        if self.try_consume_notification() {
            return true;
        }

        let mut guard = sync::lock(&self.lock);
        match self.state.compare_exchange(
            State::Empty as usize,
            State::Parked as usize,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            // Empty -> Parked: nothing pending, so we go to sleep below. We hold the
            // lock, so an `unpark` that sees `Parked` waits for us to be in `wait`.
            Ok(_) => {}
            Err(raw) => match State::from_raw(raw) {
                // An `unpark` landed between the fast path and the lock: consume it.
                // A swap (not a store) so that we acquire what that `unpark` released.
                State::Notified => {
                    let old = self.state.swap(State::Empty as usize, Ordering::AcqRel);
                    debug_assert_eq!(State::from_raw(old), State::Notified);
                    return true;
                }
                // Someone else is asleep on this parker: only its owner may park.
                State::Parked => unreachable!("aopen parker: two threads parked at once"),
                // The compare-exchange failed, so the state was not Empty.
                State::Empty => unreachable!("aopen parker: compare-exchange failed on Empty"),
            },
        }

        loop {
            guard = match deadline {
                None => sync::wait(&self.condvar, guard),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        // Time is up: Parked -> Empty, under the lock, so an `unpark`
                        // either got in first (Notified: consumed here) or comes after
                        // and leaves its notification for the next park.
                        let old = self.state.swap(State::Empty as usize, Ordering::AcqRel);
                        return match State::from_raw(old) {
                            State::Notified => true,
                            State::Parked => false,
                            State::Empty => {
                                unreachable!("aopen parker: left Parked without a notify")
                            }
                        };
                    }
                    sync::wait_timeout(&self.condvar, guard, deadline - now)
                }
            };
            match self.state.compare_exchange(
                State::Notified as usize,
                State::Empty as usize,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                // Parked -> Notified -> Empty: a real wake-up, consumed.
                Ok(_) => return true,
                Err(raw) => match State::from_raw(raw) {
                    // Still Parked: a spurious condvar wake-up, or the deadline; look
                    // again.
                    State::Parked => {}
                    // Only this thread leaves Parked, and only via Notified.
                    State::Empty => unreachable!("aopen parker: left Parked without a notify"),
                    // The compare-exchange failed, so the state was not Notified.
                    State::Notified => {
                        unreachable!("aopen parker: compare-exchange failed on Notified")
                    }
                },
            }
        }
    }

    /// Wakes the thread parked on this parker, or makes its next `park` return at
    /// once if it is not parked. Callable from any thread, any number of times.
    pub fn unpark(&self) {
        match State::from_raw(self.state.swap(State::Notified as usize, Ordering::AcqRel)) {
            // Nobody sleeps: the notification stays pending for the next `park`.
            State::Empty => {}
            // Already notified and not yet consumed: one notification is enough.
            State::Notified => {}
            // The owner sleeps, or is between setting Parked and calling `wait` while
            // holding the lock. Taking the lock waits until it is inside `wait`, so the
            // notify below cannot be missed.
            State::Parked => {
                #[cfg(not(aopen_mutant = "parker_notify_without_lock"))]
                drop(sync::lock(&self.lock));
                // Seeded bug for the loom model: without taking the lock, the notify
                // can land between the parker's state change and its wait, and is lost.
                self.condvar.notify_one();
            }
        }
    }
}

impl Default for Parker {
    fn default() -> Parker {
        Parker::new()
    }
}

impl ArcWake for Parker {
    fn wake_by_ref(this: &Arc<Self>) {
        this.unpark();
    }
}

/// A [`Waker`] that unparks `parker` (and keeps it alive while the waker lives).
pub fn waker(parker: &Arc<Parker>) -> Waker {
    arc_waker(Arc::clone(parker))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Longer than any of these tests may take: a park that waited this long missed
    /// its wake.
    const NEVER: Duration = Duration::from_secs(60);

    #[test]
    fn park_until_returns_at_its_deadline_without_a_notification() {
        let parker = Parker::new();
        let deadline = Instant::now() + Duration::from_millis(5);
        assert!(!parker.park_until(deadline), "nothing unparked it");
        assert!(
            Instant::now() >= deadline,
            "it returned before its deadline"
        );
        // It left no state behind: it is not parked, and nothing is pending.
        assert_eq!(
            State::from_raw(parker.state.load(Ordering::Acquire)),
            State::Empty
        );
    }

    #[test]
    fn park_until_consumes_a_pending_notification_at_once() {
        let parker = Parker::new();
        parker.unpark();
        let start = Instant::now();
        assert!(parker.park_until(start + NEVER));
        assert!(start.elapsed() < NEVER / 2);
        // Consumed: the next timed park waits for its deadline.
        assert!(!parker.park_until(Instant::now()));
    }

    #[test]
    fn park_until_returns_when_another_thread_unparks_it() {
        let parker = Arc::new(Parker::new());
        let unparker = {
            let parker = Arc::clone(&parker);
            thread::spawn(move || parker.unpark())
        };
        let start = Instant::now();
        assert!(parker.park_until(start + NEVER), "the unpark was lost");
        assert!(start.elapsed() < NEVER / 2);
        unparker.join().unwrap();
    }

    #[test]
    fn an_unpark_after_a_timed_out_park_wakes_the_next_park() {
        let parker = Parker::new();
        assert!(!parker.park_until(Instant::now() + Duration::from_millis(1)));
        parker.unpark();
        assert!(parker.park_until(Instant::now() + NEVER));
    }
}
