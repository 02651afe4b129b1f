//! [`sleep`]: a timer future that works under any executor.
//!
//! Runtimes ship timers, but each only works inside its own runtime (a tokio `sleep`
//! panics under smol). `aopen` needs none: one global thread, named `aopen-timer`,
//! started on the first sleep that has to wait, serves every [`Sleep`] in the
//! process, whoever polls it (tokio, smol, `futures::executor`, pollster,
//! [`block_on`](crate::block_on), [`LocalExecutor`](crate::LocalExecutor)). Ten
//! thousand concurrent sleeps are ten thousand map entries and still one thread.
//!
//! The timer keeps, under one mutex, an ordered map from `(deadline, id)` to the
//! waker of the sleep that registered it: the first entry is the earliest deadline,
//! and a dropped sleep removes its own entry in `O(log n)` (a binary heap plus an
//! id-to-waker map would leave a tombstone per cancelled sleep). The thread waits on
//! a condition variable until the earliest deadline, removes every expired entry,
//! and wakes those wakers with the lock released.
//!
//! Invariants:
//! - a [`Sleep`] has at most one entry, present from its first pending poll until it
//!   fires, completes or is dropped; a later poll with a different waker replaces the
//!   stored waker (only if it would not wake the same task), so the task that polled
//!   last is the one woken;
//! - a [`Sleep`] whose deadline has passed completes without registering;
//! - registering an entry earlier than every other one notifies the thread, so it
//!   never sleeps past a deadline it has not seen;
//! - wakers are woken with the lock released, so a waker that polls inline or drops
//!   a sleep cannot deadlock.
//!
//! The timer thread, once started, lives until the process exits; it sleeps on the
//! condition variable while there is nothing to wait for.
//!
//! aopen's own executors ([`block_on`](crate::block_on),
//! [`LocalExecutor`](crate::LocalExecutor)) do the timer thread's work on their
//! thread as well: between polls they wake every sleep that is due (`fire_due`),
//! and when they park they park only until the earliest deadline among the sleeps
//! polled on their thread (`local_deadline`). A sleep polled there then fires on
//! time whenever its
//! executor's thread gets a core, instead of waiting for the timer thread to get
//! one too: on 2 cores busy with pool threads the timer thread waited up to a clock
//! tick (4 ms) twice a tick of a 1 ms ticker, once to learn the new deadline and once
//! to fire it (`perf sched timehist`, `examples/tree_compare --million`). The timer
//! thread stays, for sleeps polled by other executors and for an executor busy in a
//! long poll. The earliest deadline is kept in an atomic (`EARLIEST`), so a turn
//! with nothing due costs a load and a clock read, and no lock.
//!
//! Under `--cfg loom` this module is not compiled (loom's `Condvar::wait_timeout`
//! never times out, and a global thread cannot outlive a model run).

#![cfg(not(loom))]

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::sync::{self, thread, AtomicU64, Condvar, Mutex, OnceLock, Ordering};

/// The name of the global timer thread.
const TIMER_THREAD_NAME: &str = "aopen-timer";

/// How far ahead a deadline that overflows `Instant` is put instead (about 30
/// years): `sleep(Duration::MAX)` then never completes in practice, and never
/// panics.
const FAR_FUTURE: Duration = Duration::from_secs(60 * 60 * 24 * 365 * 30);

/// A map key: deadline first, so the map's first entry is the next to fire; the id
/// tells apart sleeps with equal deadlines.
type EntryKey = (Instant, u64);

/// The state of the global timer, guarded by [`TIMER`].
struct TimerState {
    /// Pending sleeps: `(deadline, id)` to the waker of the task to wake.
    entries: BTreeMap<EntryKey, Waker>,
    /// The id the next registration gets; ids are never reused.
    next_id: u64,
    /// Whether the timer thread has been started.
    thread_started: bool,
}

/// The global timer state. `const`-initialised, so no lazy cell is needed.
static TIMER: Mutex<TimerState> = Mutex::new(TimerState {
    entries: BTreeMap::new(),
    next_id: 0,
    thread_started: false,
});

/// Where the timer thread waits; notified when a new earliest deadline arrives.
static TIMER_CONDVAR: Condvar = Condvar::new();

/// [`EARLIEST`] when the timer has no entries.
const NO_DEADLINE: u64 = u64::MAX;

/// The earliest deadline among the timer's entries, in nanoseconds after [`epoch`]
/// (rounded up), or [`NO_DEADLINE`]. Written under [`TIMER`]'s lock after every change
/// to the entries ([`publish_earliest`]); read without it by executors. Relaxed: a
/// stale value only makes an executor look again a turn later, or park until a later
/// deadline than it could have (the timer thread still fires that sleep); an
/// executor always sees the deadlines its own thread registered.
static EARLIEST: AtomicU64 = AtomicU64::new(NO_DEADLINE);

/// The instant [`EARLIEST`] counts from: the first time one was needed, which is no
/// later than the first registration, so every registered deadline is after it.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// `at` as nanoseconds after [`epoch`], rounded down (0 for an instant before it).
fn nanos_after_epoch(at: Instant) -> u64 {
    let nanos = at.saturating_duration_since(epoch()).as_nanos();
    u64::try_from(nanos).unwrap_or(NO_DEADLINE - 1)
}

/// Stores the first entry's deadline in [`EARLIEST`]; called with the lock held.
fn publish_earliest(state: &TimerState) {
    let earliest = state
        .entries
        .keys()
        .next()
        .map_or(NO_DEADLINE, |&(deadline, _)| {
            // Rounded up, so "due" (the clock rounded down reaching it) is never early.
            nanos_after_epoch(deadline)
                .saturating_add(1)
                .min(NO_DEADLINE - 1)
        });
    EARLIEST.store(earliest, Ordering::Relaxed);
}

/// Removes the entries due at `now` and returns their wakers, to wake with the lock
/// released.
fn take_expired(state: &mut TimerState, now: Instant) -> Vec<Waker> {
    let mut expired = Vec::new();
    while let Some(entry) = state.entries.first_entry() {
        if entry.key().0 > now {
            break;
        }
        expired.push(entry.remove());
    }
    if !expired.is_empty() {
        publish_earliest(state);
    }
    expired
}

/// Wakes every sleep whose deadline has passed, on the calling thread: the timer
/// thread's work, done by an executor between polls (see the [module docs](self)).
/// With nothing due it costs an atomic load and a clock read; it locks the timer
/// only when something is due.
pub(crate) fn fire_due() {
    let earliest = EARLIEST.load(Ordering::Relaxed);
    if earliest == NO_DEADLINE {
        return;
    }
    let now = Instant::now();
    if nanos_after_epoch(now) < earliest {
        return;
    }
    let expired = take_expired(&mut sync::lock(&TIMER), now);
    // Woken with the lock released: a waker may run arbitrary code.
    for waker in expired {
        waker.wake();
    }
}

thread_local! {
    /// The earliest deadline of the sleeps polled (pending) on this thread since it
    /// was last forgotten: where an aopen executor's park on this thread ends. Sleeps
    /// dropped or fired early leave it as it is (the park then ends for nothing, once);
    /// after the earliest is forgotten, the next sleep polled here sets it again, and
    /// until then a later one is fired by the timer thread.
    static LOCAL_DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Notes that a sleep until `deadline` was polled on this thread.
fn note_local_deadline(deadline: Instant) {
    // `try_with`: a sleep polled while the thread's locals are torn down notes nothing.
    let _ = LOCAL_DEADLINE.try_with(|local| {
        if local.get().map_or(true, |earliest| deadline < earliest) {
            local.set(Some(deadline));
        }
    });
}

/// The earliest deadline of the sleeps polled on this thread ([`LOCAL_DEADLINE`]).
pub(crate) fn local_deadline() -> Option<Instant> {
    LOCAL_DEADLINE.try_with(Cell::get).ok().flatten()
}

/// Forgets this thread's earliest deadline once the park that waited for it is over
/// and [`fire_due`] ran: if it is still `deadline` (or earlier).
pub(crate) fn forget_local_deadline(deadline: Instant) {
    let _ = LOCAL_DEADLINE.try_with(|local| {
        if local.get().is_some_and(|earliest| earliest <= deadline) {
            local.set(None);
        }
    });
}

/// The body of the timer thread: wake expired sleeps, wait for the next deadline.
fn timer_thread() {
    let mut state = sync::lock(&TIMER);
    loop {
        let now = Instant::now();
        let expired = take_expired(&mut state, now);
        if !expired.is_empty() {
            // Wake with the lock released: a waker may run arbitrary code.
            drop(state);
            for waker in expired {
                waker.wake();
            }
            state = sync::lock(&TIMER);
            continue;
        }

        state = match state.entries.keys().next() {
            Some(&(deadline, _)) => sync::wait_timeout(
                &TIMER_CONDVAR,
                state,
                deadline.saturating_duration_since(now),
            ),
            None => sync::wait(&TIMER_CONDVAR, state),
        };
    }
}

/// Starts the timer thread if it is not running yet.
///
/// # Panics
///
/// If the thread cannot be spawned (the process is out of threads or memory): a
/// sleep cannot report an error, and without the thread it would never complete.
fn ensure_thread(state: &mut TimerState) {
    if state.thread_started {
        return;
    }
    let spawned = thread::Builder::new()
        .name(TIMER_THREAD_NAME.to_owned())
        .spawn(timer_thread);
    match spawned {
        Ok(_detached) => state.thread_started = true,
        Err(error) => panic!("aopen: cannot start the {TIMER_THREAD_NAME} thread: {error}"),
    }
}

/// Waits until `duration` has elapsed.
///
/// The returned [`Sleep`] works under any executor; see the [module docs](self).
/// A zero duration completes on the first poll.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let start = Instant::now();
/// aopen::block_on(aopen::sleep(Duration::from_millis(10)));
/// assert!(start.elapsed() >= Duration::from_millis(10));
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    let now = Instant::now();
    let deadline = now
        .checked_add(duration)
        .or_else(|| now.checked_add(FAR_FUTURE))
        .unwrap_or(now);
    sleep_until(deadline)
}

/// Waits until `deadline`. A deadline in the past completes on the first poll.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// // A ticker that does not drift: each deadline is the last one plus the period.
/// let period = Duration::from_millis(2);
/// let mut next = Instant::now();
/// for _ in 0..3 {
///     next += period;
///     aopen::block_on(aopen::sleep_until(next));
/// }
/// assert!(Instant::now() >= next);
/// ```
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep { deadline, id: None }
}

/// A future that completes at a deadline; made by [`sleep`] and [`sleep_until`].
///
/// `Send`, `Unpin`, and usable under any executor. Dropping it before it completes
/// removes it from the timer.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// // The same future type under tokio's runtime, which never sees aopen's timer thread.
/// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
/// let sleep: aopen::Sleep = aopen::sleep(Duration::from_millis(1));
/// runtime.block_on(sleep);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Panics
///
/// Polling panics if the global timer thread is not running yet and cannot be
/// started (the process is out of threads).
#[must_use = "futures do nothing unless polled"]
pub struct Sleep {
    /// When the sleep completes.
    deadline: Instant,
    /// The id of this sleep's entry in the timer, if registered (its key is
    /// `(deadline, id)`). The entry may already be gone: the timer removes it when
    /// it fires.
    id: Option<u64>,
}

impl Sleep {
    /// The instant this sleep completes at.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let deadline = Instant::now() + Duration::from_secs(60);
    /// assert_eq!(aopen::sleep_until(deadline).deadline(), deadline);
    /// ```
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Removes this sleep's entry from the timer, if it has one.
    fn deregister(&mut self) {
        if let Some(id) = self.id.take() {
            let mut state = sync::lock(&TIMER);
            if state.entries.remove(&(self.deadline, id)).is_some() {
                publish_earliest(&state);
            }
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if Instant::now() >= this.deadline {
            this.deregister();
            return Poll::Ready(());
        }

        let mut state = sync::lock(&TIMER);
        let registered = this
            .id
            .and_then(|id| state.entries.get_mut(&(this.deadline, id)));
        match registered {
            // Registered and not fired: keep the waker unless the poller changed.
            Some(waker) => {
                if !waker.will_wake(cx.waker()) {
                    *waker = cx.waker().clone();
                }
                note_local_deadline(this.deadline);
            }
            // First pending poll (or the timer fired a hair before our clock caught
            // up): register, and tell the thread if this is its new first deadline.
            None => {
                let id = state.next_id;
                state.next_id += 1;
                let earliest = state
                    .entries
                    .keys()
                    .next()
                    .map_or(true, |&(first, _)| this.deadline < first);
                state
                    .entries
                    .insert((this.deadline, id), cx.waker().clone());
                this.id = Some(id);
                publish_earliest(&state);
                note_local_deadline(this.deadline);
                ensure_thread(&mut state);
                if earliest {
                    TIMER_CONDVAR.notify_one();
                }
            }
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.deregister();
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .field("registered", &self.id.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::Arc;
    use std::task::Wake;

    /// A waker that counts its wakes and lets a test wait for one.
    #[derive(Default)]
    struct CountingWaker {
        wakes: Mutex<usize>,
        woken: Condvar,
    }

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            *sync::lock(&self.wakes) += 1;
            self.woken.notify_all();
        }
    }

    impl CountingWaker {
        /// Waits until woken at least once, for at most `limit`; true if woken.
        fn wait_woken(&self, limit: Duration) -> bool {
            let give_up = Instant::now() + limit;
            let mut wakes = sync::lock(&self.wakes);
            while *wakes == 0 {
                let now = Instant::now();
                if now >= give_up {
                    return false;
                }
                wakes = match self.woken.wait_timeout(wakes, give_up - now) {
                    Ok((wakes, _)) => wakes,
                    Err(poisoned) => poisoned.into_inner().0,
                };
            }
            true
        }
    }

    fn counting_waker() -> (Waker, Arc<CountingWaker>) {
        let counter = Arc::new(CountingWaker::default());
        (Waker::from(Arc::clone(&counter)), counter)
    }

    fn is_registered(sleep: &Sleep) -> bool {
        sleep.id.is_some_and(|id| {
            sync::lock(&TIMER)
                .entries
                .contains_key(&(sleep.deadline, id))
        })
    }

    #[test]
    fn past_deadline_completes_without_registering() {
        let (waker, _) = counting_waker();
        let mut sleep = sleep_until(Instant::now());
        let poll = Pin::new(&mut sleep).poll(&mut Context::from_waker(&waker));
        assert!(poll.is_ready());
        assert!(sleep.id.is_none());
    }

    #[test]
    fn drop_deregisters() {
        let (waker, _) = counting_waker();
        let mut sleep = sleep(Duration::from_secs(3600));
        assert!(Pin::new(&mut sleep)
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        assert!(is_registered(&sleep));
        let key = (sleep.deadline, sleep.id.expect("registered"));
        drop(sleep);
        assert!(!sync::lock(&TIMER).entries.contains_key(&key));
    }

    #[test]
    fn repoll_keeps_one_entry_and_fires() {
        let (waker, counter) = counting_waker();
        let mut sleep = sleep(Duration::from_millis(5));
        let mut cx = Context::from_waker(&waker);
        if Pin::new(&mut sleep).poll(&mut cx).is_pending() {
            let id = sleep.id;
            // A second pending poll with the same waker keeps the same entry.
            if Pin::new(&mut sleep).poll(&mut cx).is_pending() {
                assert_eq!(sleep.id, id);
            }
            assert!(
                counter.wait_woken(Duration::from_secs(10)),
                "timer woke the sleep"
            );
            assert!(!is_registered(&sleep), "a fired sleep leaves the timer");
        }
        assert!(Pin::new(&mut sleep).poll(&mut cx).is_ready());
    }

    #[test]
    fn overflowing_duration_does_not_panic() {
        let sleep = sleep(Duration::MAX);
        assert!(sleep.deadline() > Instant::now());
    }
}
