//! loom models of the rules aopen promises, run against the crate's real code.
//!
//! Each model builds real `Pool`s, `Budget`s, lanes and parkers; under `--cfg loom`
//! their atomics, locks and threads are loom's (the crate's `sync.rs` switch), so loom
//! explores every interleaving of them up to the preemption bound. Descriptors are a
//! counting fake ([`FakeFd`]) behind the crate's `Resource` trait, so the models see
//! each open, operation and close.
//!
//! Each model has a seeded bug in `src/` (`--cfg aopen_mutant="..."`) that it must
//! reject; `loom-tests/run` checks both directions.
#![cfg(loom)]

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::AtomicUsize as StdAtomicUsize;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use std::time::Duration;

use aopen::__internals::{acquire_units, open_in_lane, overdraw, waker, Lane, Parker, Resource};
use aopen::{Budget, LocalExecutor, Pool};
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

/// Long enough that it never fires; loom's timed waits never time out anyway.
const NEVER: Duration = Duration::from_secs(3600);

/// Runs `body` under loom with the preemption bound from `LOOM_MAX_PREEMPTIONS`
/// (default 2), and prints how many interleavings it explored.
fn model<F>(name: &str, body: F)
where
    F: Fn() + Sync + Send + 'static,
{
    static ITERATIONS: StdAtomicUsize = StdAtomicUsize::new(0);
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    let bound = builder.preemption_bound;
    let started = std::time::Instant::now();
    let before = ITERATIONS.load(std::sync::atomic::Ordering::SeqCst);
    builder.check(move || {
        ITERATIONS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        body();
    });
    let explored = ITERATIONS.load(std::sync::atomic::Ordering::SeqCst) - before;
    eprintln!(
        "model {name}: {explored} interleavings, preemption bound {bound:?}, {:.1?}",
        started.elapsed()
    );
}

/// What the fake descriptor saw, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    Open,
    OpStart(u32),
    OpEnd(u32),
    CloseStart,
    CloseEnd,
}

#[derive(Default)]
struct Log {
    events: Mutex<Vec<Event>>,
}

impl Log {
    fn push(&self, event: Event) {
        self.events.lock().unwrap().push(event);
    }

    fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }
}

/// A descriptor that records its life in a [`Log`].
struct FakeFd {
    log: Arc<Log>,
}

impl FakeFd {
    fn open(log: &Arc<Log>) -> io::Result<FakeFd> {
        log.push(Event::Open);
        Ok(FakeFd { log: log.clone() })
    }

    fn op(&mut self, id: u32) {
        self.log.push(Event::OpStart(id));
        self.log.push(Event::OpEnd(id));
    }
}

impl Resource for FakeFd {
    fn close(self) -> io::Result<()> {
        self.log.push(Event::CloseStart);
        self.log.push(Event::CloseEnd);
        Ok(())
    }
}

fn pool(threads: usize, budget: usize) -> Pool {
    Pool::builder()
        .max_threads(threads)
        .descriptor_budget(budget)
        .idle_timeout(NEVER)
        .build()
        .unwrap()
}

/// Checks the life of one descriptor: if it was opened, it was closed exactly once,
/// after the open and after every operation; operations never overlap and run in
/// issue order.
fn assert_lifecycle(events: &[Event]) {
    if events.is_empty() {
        return;
    }
    let closes = events.iter().filter(|e| **e == Event::CloseEnd).count();
    assert_eq!(closes, 1, "closed {closes} times: {events:?}");
    assert_eq!(
        &events[events.len() - 2..],
        &[Event::CloseStart, Event::CloseEnd],
        "close is not last: {events:?}"
    );
    let mut last_op = 0;
    let mut i = 0;
    while i < events.len() - 2 {
        match events[i] {
            Event::Open => assert_eq!(i, 0, "open is not first: {events:?}"),
            Event::OpStart(id) => {
                assert_eq!(events[i + 1], Event::OpEnd(id), "ops overlap: {events:?}");
                assert!(id > last_op, "ops out of issue order: {events:?}");
                last_op = id;
                i += 1;
            }
            other => panic!("unexpected {other:?} before the close: {events:?}"),
        }
        i += 1;
    }
}

/// A waker that does nothing, for polling a future by hand.
fn noop_waker() -> Waker {
    fn clone(_: *const ()) -> RawWaker {
        RawWaker::new(std::ptr::null(), &VTABLE)
    }
    fn noop(_: *const ()) {}
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, noop);
    // SAFETY: every function of the vtable ignores the (null) data pointer.
    unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) }
}

/// Rule 1. An open runs on the pool while its caller drops the future: whether the
/// job was still queued (skipped: nothing opened), running (the result is dropped on
/// the pool) or done (dropped by the caller), the descriptor is closed exactly once,
/// after its open, and its permit comes back.
///
/// Mutant `abandoned_result_leaked` (the naive pool: an unwanted result is
/// forgotten) leaves the descriptor open.
#[test]
fn close_after_open() {
    model("close_after_open", || {
        let pool = pool(1, 1);
        let log = Arc::new(Log::default());
        let permit = pool.budget().try_acquire().unwrap();
        let opener = log.clone();
        let task = open_in_lane(&pool, permit, move || FakeFd::open(&opener));
        drop(task);
        pool.shutdown(NEVER).unwrap();
        let events = log.events();
        assert!(
            events.is_empty() || events.first() == Some(&Event::Open),
            "{events:?}"
        );
        assert_lifecycle(&events);
        assert_eq!(pool.budget().available(), 1, "permit lost: {events:?}");
    });
}

/// Rule 2. Two operations are queued on an open descriptor, the first one's future
/// dropped at once, then the file is dropped while the second runs: on a pool of two
/// threads, the close never precedes or overlaps an operation, and operations run
/// in issue order.
///
/// Mutant `lane_close_bypasses_queue` (the close goes straight to the pool) lets the
/// second thread close while an operation is still queued or running.
#[test]
fn close_after_every_operation() {
    model("close_after_every_operation", || {
        let pool = pool(2, 1);
        let log = Arc::new(Log::default());
        let permit = pool.budget().try_acquire().unwrap();
        let lane = Lane::new(pool.clone(), FakeFd::open(&log).unwrap(), permit);
        drop(lane.submit(|fd| fd.op(1)));
        let second = lane.submit(|fd| fd.op(2));
        drop(lane);
        aopen::block_on(second);
        pool.shutdown(NEVER).unwrap();
        let events = log.events();
        assert!(events.contains(&Event::OpEnd(2)), "{events:?}");
        assert_lifecycle(&events);
    });
}

/// Rule 3. A permit comes back only after `close` returned: whoever gets the unit
/// next finds the descriptor closed, so the budget is never exceeded.
///
/// Mutant `permit_before_close` gives the unit back first.
#[test]
fn permit_after_close() {
    model("permit_after_close", || {
        let pool = pool(1, 1);
        let log = Arc::new(Log::default());
        let permit = pool.budget().try_acquire().unwrap();
        let lane = Lane::new(pool.clone(), FakeFd::open(&log).unwrap(), permit);
        drop(lane);
        let next = aopen::block_on(pool.budget().acquire());
        let events = log.events();
        assert_eq!(
            events.last(),
            Some(&Event::CloseEnd),
            "a permit came back before its close returned: {events:?}"
        );
        drop(next);
        pool.shutdown(NEVER).unwrap();
    });
}

/// Rule 3, wake-ups. Two waiters, two releases back to back: both waiters get a
/// unit, even when the second release lands before the first woken waiter ran.
///
/// Mutant `budget_plain_notify` (a release serves nobody while another waiter's
/// grant is untaken, as a plain `notify(1)` of event-listener did) strands the
/// second unit: loom reports the deadlock.
#[test]
fn budget_two_releases_wake_two_waiters() {
    model("budget_two_releases_wake_two_waiters", || {
        let budget = Budget::new(2);
        let first = budget.try_acquire().unwrap();
        let second = budget.try_acquire().unwrap();
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let budget = budget.clone();
                // Each waiter keeps its permit (hands it back through `join`), so a
                // unit it got cannot be released again to rescue the other waiter.
                thread::spawn(move || aopen::block_on(budget.acquire()))
            })
            .collect();
        drop(first);
        drop(second);
        let permits: Vec<_> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
        assert_eq!(budget.available(), 0);
        drop(permits);
        assert_eq!(budget.available(), 2);
    });
}

/// Rule 3, with an adopted descriptor. The budget of one is full and overdrawn by a
/// descriptor adopted synchronously (`File::from_std`); a waiter queues. Whichever of
/// the two permits comes back first only repays the overdraft: the waiter is served
/// by the second release, never while the crate still holds more than the budget,
/// and never left waiting (no lost wake-up), whatever the order of the two releases
/// on two threads.
///
/// Mutant `budget_overdraft_not_repaid` (a release frees its unit while the budget
/// is overdrawn) serves the waiter at the first release: its check fails.
#[test]
fn budget_overdraft_is_repaid_before_a_waiter() {
    model("budget_overdraft_is_repaid_before_a_waiter", || {
        let budget = Budget::new(1);
        let held = budget.try_acquire().unwrap();
        let adopted = overdraw(&budget);
        let released = Arc::new(loom::sync::atomic::AtomicUsize::new(0));
        let waiter = {
            let budget = budget.clone();
            let released = released.clone();
            thread::spawn(move || {
                let permit = aopen::block_on(budget.acquire());
                assert_eq!(
                    released.load(Ordering::SeqCst),
                    2,
                    "served while the budget was still overdrawn"
                );
                permit
            })
        };
        let dropper = {
            let released = released.clone();
            thread::spawn(move || {
                released.fetch_add(1, Ordering::SeqCst);
                drop(adopted);
            })
        };
        released.fetch_add(1, Ordering::SeqCst);
        drop(held);
        dropper.join().unwrap();
        let permit = waiter.join().unwrap();
        assert_eq!(budget.held(), 1);
        drop(permit);
        assert_eq!(budget.held(), 0);
    });
}

/// Rule 3, fairness. A waiter for two units (a `copy`) queued while the budget is
/// full is served before a single-unit newcomer that arrives while it waits, in
/// whatever order the two units come back and the newcomer runs.
///
/// Mutant `budget_newcomer_jumps_queue` (a newcomer takes free units past the
/// queue) lets the newcomer take the first unit freed: its check fails.
#[test]
fn budget_multi_unit_waiter_is_served_first() {
    model("budget_multi_unit_waiter_is_served_first", || {
        let budget = Budget::new(2);
        let first = budget.try_acquire().unwrap();
        let second = budget.try_acquire().unwrap();
        let mut copy = acquire_units(&budget, 2);
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        // Queued first: the budget is full.
        assert!(Pin::new(&mut copy).poll(&mut cx).is_pending());
        let copy_served = Arc::new(AtomicBool::new(false));
        let newcomer = {
            let budget = budget.clone();
            let copy_served = copy_served.clone();
            thread::spawn(move || {
                let permit = aopen::block_on(budget.acquire());
                assert!(
                    copy_served.load(Ordering::SeqCst),
                    "a newcomer took a unit before the copy queued ahead of it"
                );
                drop(permit);
            })
        };
        let releaser = thread::spawn(move || {
            drop(first);
            drop(second);
        });
        let permit = aopen::block_on(&mut copy);
        copy_served.store(true, Ordering::SeqCst);
        drop(permit);
        releaser.join().unwrap();
        newcomer.join().unwrap();
        assert_eq!(budget.available(), 2);
    });
}

/// Rule 3, cancellation. A waiter that is cancelled, perhaps after it was notified,
/// passes the wake-up on: the other waiter always gets the released unit.
///
/// Mutant `acquire_drop_swallows_wakeup` (a cancelled waiter keeps its
/// notification) leaves the other waiter asleep next to a free unit.
#[test]
fn budget_cancelled_waiter_passes_wakeup_on() {
    model("budget_cancelled_waiter_passes_wakeup_on", || {
        let budget = Budget::new(1);
        let held = budget.try_acquire().unwrap();
        let cancelled = {
            let budget = budget.clone();
            thread::spawn(move || {
                let mut acquire = budget.acquire();
                let waker = noop_waker();
                let mut cx = Context::from_waker(&waker);
                // One poll queues it (or takes the unit, if it is already back).
                let got = Pin::new(&mut acquire).poll(&mut cx);
                drop(got);
                drop(acquire);
            })
        };
        let patient = {
            let budget = budget.clone();
            thread::spawn(move || drop(aopen::block_on(budget.acquire())))
        };
        drop(held);
        cancelled.join().unwrap();
        patient.join().unwrap();
        assert_eq!(budget.available(), 1);
    });
}

/// A one-shot signal fired from another thread: the waiting side's future publishes
/// its waker, then looks at the flag; the firing side sets the flag, then wakes
/// whatever waker it finds. Either the look sees the flag or the fire finds the waker.
struct Signal {
    done: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Signal {
    fn new() -> Arc<Signal> {
        Arc::new(Signal {
            done: AtomicBool::new(false),
            waker: Mutex::new(None),
        })
    }

    /// Ready once fired; registers `cx`'s waker first.
    fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
        *self.waker.lock().unwrap() = Some(cx.waker().clone());
        if self.done.load(Ordering::SeqCst) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Fires the signal from a new thread.
    fn fire_from_another_thread(this: &Arc<Signal>) -> thread::JoinHandle<()> {
        let signal = this.clone();
        thread::spawn(move || {
            signal.done.store(true, Ordering::SeqCst);
            if let Some(waker) = signal.waker.lock().unwrap().take() {
                waker.wake();
            }
        })
    }
}

/// The parker under `block_on`: a wake from another thread is never lost, whether
/// it lands before the park, during it, or after.
///
/// Mutant `parker_notify_without_lock` notifies without taking the parker's lock,
/// so the notify can fall between the parker's state change and its wait.
#[test]
fn parker_never_loses_a_wakeup() {
    model("parker_never_loses_a_wakeup", || {
        let parker = Arc::new(Parker::new());
        let ready = Arc::new(AtomicBool::new(false));
        let wake = waker(&parker);
        let setter = {
            let ready = ready.clone();
            thread::spawn(move || {
                ready.store(true, Ordering::SeqCst);
                wake.wake();
            })
        };
        while !ready.load(Ordering::SeqCst) {
            parker.park();
        }
        setter.join().unwrap();
    });
}

/// `block_on` itself, woken by a waker fired from another thread.
#[test]
fn block_on_woken_from_another_thread() {
    model("block_on_woken_from_another_thread", || {
        let signal = Signal::new();
        let setter = Signal::fire_from_another_thread(&signal);
        aopen::block_on(std::future::poll_fn(|cx| signal.poll(cx)));
        setter.join().unwrap();
    });
}

/// The pool's sleep/wake hand-off. The only thread finishes a job and goes to sleep
/// while the next job is pushed; then the last handle is dropped, which retires the
/// thread: the job always runs, and retiring never drops it.
///
/// Mutant `pool_sleep_without_recheck` lets the thread sleep without looking at the
/// queue once more under the sleep lock: the job is stranded.
#[test]
fn pool_handoff_never_strands_a_job() {
    model("pool_handoff_never_strands_a_job", || {
        let pool = pool(1, 1);
        assert_eq!(aopen::block_on(pool.unblock(|| 1)), 1);
        let second = pool.unblock(|| 2);
        drop(pool);
        assert_eq!(aopen::block_on(second), 2);
    });
}

/// `jobs_queued` never wraps: a job is counted before a thread can take it, so an
/// observer never sees more jobs queued than were pushed.
///
/// Mutant `pool_count_after_push` counts the job after making it visible: the pool
/// thread takes it and subtracts first, and the observer reads 2^64 - 1.
#[test]
fn pool_queued_count_never_wraps() {
    model("pool_queued_count_never_wraps", || {
        let pool = pool(1, 1);
        // A first job starts the pool's thread, which then searches for the next.
        assert_eq!(aopen::block_on(pool.unblock(|| 1)), 1);
        let observer = {
            let pool = pool.clone();
            thread::spawn(move || {
                let queued = pool.stats().jobs_queued;
                assert!(queued <= 1, "jobs_queued wrapped: {queued}");
            })
        };
        assert_eq!(aopen::block_on(pool.unblock(|| 2)), 2);
        observer.join().unwrap();
    });
}

/// `LocalExecutor`: a spawned task woken from another thread, before, during or after
/// its poll, is queued again and polled on the executor's thread, and `run` returns.
///
/// Mutant `local_clear_scheduled_after_poll` clears the task's "queued" flag after
/// polling it, so a wake that lands during the poll is swallowed.
#[test]
fn local_executor_never_loses_a_cross_thread_wake() {
    model("local_executor_never_loses_a_cross_thread_wake", || {
        let signal = Signal::new();
        let setter = Signal::fire_from_another_thread(&signal);
        let executor = LocalExecutor::new();
        let task = executor.spawn(std::future::poll_fn(move |cx| signal.poll(cx).map(|()| 7)));
        assert_eq!(executor.run(task), 7);
        setter.join().unwrap();
    });
}
