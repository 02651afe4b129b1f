//! Integration tests for the descriptor budget: `aopen::{Budget, Permit}`.
//!
//! The storms check the invariant (never more holders than capacity, every unit back
//! at the end) under real executors; the hand-polled tests pin down the wake-up rules
//! of DESIGN.md rule 3 with counting wakers: a waiter must be *woken* when a unit
//! frees for it, not merely succeed if someone happens to poll it.

#[path = "support/common.rs"]
mod common;

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use aopen::{Budget, Permit};
use common::{within, yield_now, CountingWaker};

/// A test that runs longer than this is called hung (a lost wake-up).
const HANG_LIMIT: Duration = Duration::from_secs(30);

/// An `acquire()` future polled by hand with its own counting waker.
struct Waiter {
    name: String,
    future: Pin<Box<dyn Future<Output = Permit> + Send>>,
    counter: Arc<CountingWaker>,
    waker: Waker,
}

impl Waiter {
    fn new(name: impl Into<String>, budget: &Budget) -> Waiter {
        let counter = Arc::new(CountingWaker::default());
        Waiter {
            name: name.into(),
            future: Box::pin(budget.acquire()),
            waker: Waker::from(Arc::clone(&counter)),
            counter,
        }
    }

    fn poll(&mut self) -> Poll<Permit> {
        let mut cx = Context::from_waker(&self.waker);
        self.future.as_mut().poll(&mut cx)
    }

    /// Polls and expects `Pending`.
    fn poll_pending(&mut self) {
        assert!(
            self.poll().is_pending(),
            "{} got a permit too early",
            self.name
        );
    }

    /// Polls and expects a permit.
    fn poll_ready(&mut self) -> Permit {
        match self.poll() {
            Poll::Ready(permit) => permit,
            Poll::Pending => panic!("{} is still pending", self.name),
        }
    }

    fn wakes(&self) -> usize {
        self.counter.wakes()
    }
}

/// A small deterministic pseudo-random sequence (xorshift64*), seeded per task.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// Counts holders and remembers the most seen at once.
#[derive(Default)]
struct Holding {
    now: AtomicUsize,
    most: AtomicUsize,
    finished: AtomicUsize,
}

impl Holding {
    fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
    }

    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Asserts a budget is whole again and a fresh acquire of every unit completes.
fn assert_budget_whole(budget: &Budget) {
    assert_eq!(budget.available(), budget.capacity(), "{budget:?}");
    assert_eq!(budget.waiters(), 0, "{budget:?}");
    assert_eq!(budget.held(), 0, "{budget:?}");
    let permits: Vec<Permit> = (0..budget.capacity())
        .map(|_| {
            let mut waiter = Waiter::new("fresh", budget);
            waiter.poll_ready()
        })
        .collect();
    assert_eq!(budget.available(), 0);
    drop(permits);
    assert_eq!(budget.available(), budget.capacity());
}

// ---------------------------------------------------------------------------------
// Storms
// ---------------------------------------------------------------------------------

const STORM_TASKS: usize = 1_000;
const STORM_CAPACITY: usize = 8;

#[test]
fn a_thousand_tasks_on_tokio_never_exceed_capacity() {
    within(HANG_LIMIT, || {
        let budget = Budget::new(STORM_CAPACITY);
        let holding = Arc::new(Holding::default());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let handles: Vec<_> = (0..STORM_TASKS)
                .map(|index| {
                    let budget = budget.clone();
                    let holding = Arc::clone(&holding);
                    tokio::spawn(async move {
                        let permit = budget.acquire().await;
                        holding.enter();
                        match index % 3 {
                            0 => aopen::sleep(Duration::from_micros(100)).await,
                            1 => aopen::unblock(|| ()).await,
                            _ => tokio::task::yield_now().await,
                        }
                        holding.leave();
                        drop(permit);
                        holding.finished.fetch_add(1, Ordering::SeqCst);
                    })
                })
                .collect();
            for handle in handles {
                handle.await.unwrap();
            }
        });
        let most = holding.most.load(Ordering::SeqCst);
        assert!(
            most <= STORM_CAPACITY,
            "{most} held at once, capacity {STORM_CAPACITY}"
        );
        assert!(most > 0);
        assert_eq!(holding.finished.load(Ordering::SeqCst), STORM_TASKS);
        assert_eq!(budget.available(), STORM_CAPACITY);
        assert_budget_whole(&budget);
    });
}

#[test]
fn a_thousand_tasks_on_the_local_executor_never_exceed_capacity() {
    within(HANG_LIMIT, || {
        let budget = Budget::new(STORM_CAPACITY);
        // Not `Send`: the local executor does not need it.
        let now = Rc::new(Cell::new(0usize));
        let most = Rc::new(Cell::new(0usize));
        let finished = Rc::new(Cell::new(0usize));
        let ex = aopen::LocalExecutor::new();
        let tasks: Vec<_> = (0..STORM_TASKS)
            .map(|index| {
                let budget = budget.clone();
                let (now, most, finished) =
                    (Rc::clone(&now), Rc::clone(&most), Rc::clone(&finished));
                ex.spawn(async move {
                    let permit = budget.acquire().await;
                    now.set(now.get() + 1);
                    most.set(most.get().max(now.get()));
                    match index % 3 {
                        0 => aopen::sleep(Duration::from_micros(100)).await,
                        1 => aopen::unblock(|| ()).await,
                        _ => yield_now().await,
                    }
                    now.set(now.get() - 1);
                    drop(permit);
                    finished.set(finished.get() + 1);
                })
            })
            .collect();
        ex.run(async {
            for task in tasks {
                task.await;
            }
        });
        assert!(most.get() <= STORM_CAPACITY, "{} held at once", most.get());
        // Every task held a permit across an await, so they overlapped.
        assert!(most.get() > 1, "the storm never overlapped");
        assert_eq!(finished.get(), STORM_TASKS);
        assert_eq!(budget.available(), STORM_CAPACITY);
        assert_budget_whole(&budget);
    });
}

#[test]
fn cancelling_waiters_mid_storm_strands_no_permit() {
    within(HANG_LIMIT, || {
        const TASKS: usize = 2_000;
        const CAPACITY: usize = 4;
        let budget = Budget::new(CAPACITY);
        let holding = Arc::new(Holding::default());
        let acquired = Arc::new(AtomicUsize::new(0));
        let cancelled = Arc::new(AtomicUsize::new(0));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let handles: Vec<_> = (0..TASKS)
                .map(|index| {
                    let budget = budget.clone();
                    let holding = Arc::clone(&holding);
                    let acquired = Arc::clone(&acquired);
                    let cancelled = Arc::clone(&cancelled);
                    tokio::spawn(async move {
                        let mut rng = Rng::new(index as u64 + 1);
                        let permit = match rng.below(4) {
                            // Give up after a random tokio timeout.
                            0 => {
                                let limit = Duration::from_micros(rng.below(300));
                                tokio::time::timeout(limit, budget.acquire()).await.ok()
                            }
                            // Race the acquire against an aopen sleep; the loser
                            // is dropped.
                            1 => {
                                let acquire = budget.acquire();
                                let timer = aopen::sleep(Duration::from_micros(rng.below(300)));
                                futures::pin_mut!(acquire, timer);
                                match futures::future::select(acquire, timer).await {
                                    futures::future::Either::Left((permit, _)) => Some(permit),
                                    futures::future::Either::Right(((), _)) => None,
                                }
                            }
                            // Poll once, let others run (a release may notify us
                            // meanwhile), then drop without polling again: a
                            // notified waiter dropped before it took its unit.
                            2 => {
                                let mut acquire = Box::pin(budget.acquire());
                                let first = futures::poll!(acquire.as_mut());
                                for _ in 0..rng.below(3) {
                                    tokio::task::yield_now().await;
                                }
                                match first {
                                    Poll::Ready(permit) => Some(permit),
                                    Poll::Pending => None,
                                }
                            }
                            // Wait as long as it takes.
                            _ => Some(budget.acquire().await),
                        };
                        match permit {
                            Some(permit) => {
                                holding.enter();
                                acquired.fetch_add(1, Ordering::SeqCst);
                                for _ in 0..rng.below(3) {
                                    tokio::task::yield_now().await;
                                }
                                holding.leave();
                                drop(permit);
                            }
                            None => {
                                cancelled.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        holding.finished.fetch_add(1, Ordering::SeqCst);
                    })
                })
                .collect();
            for handle in handles {
                handle.await.unwrap();
            }
        });
        let most = holding.most.load(Ordering::SeqCst);
        assert!(most <= CAPACITY, "{most} held at once, capacity {CAPACITY}");
        assert_eq!(holding.finished.load(Ordering::SeqCst), TASKS);
        let (acquired, cancelled) = (
            acquired.load(Ordering::SeqCst),
            cancelled.load(Ordering::SeqCst),
        );
        assert_eq!(acquired + cancelled, TASKS);
        assert!(
            acquired > 0 && cancelled > 0,
            "acquired {acquired}, cancelled {cancelled}: the storm did not exercise both"
        );
        assert_budget_whole(&budget);
        // And under an executor, a fresh acquire completes.
        let permit = aopen::block_on(budget.acquire());
        assert_eq!(budget.available(), CAPACITY - 1);
        drop(permit);
    });
}

// ---------------------------------------------------------------------------------
// Wake-up rules, polled by hand
// ---------------------------------------------------------------------------------

/// Two releases before either notified waiter ran must wake (and serve) both. With a
/// plain `notify(1)` the second release finds one listener already notified and
/// notifies nobody, stranding a unit.
#[test]
fn two_releases_back_to_back_wake_two_waiters() {
    let budget = Budget::new(2);
    let first = budget.try_acquire().unwrap();
    let second = budget.try_acquire().unwrap();
    let mut a = Waiter::new("A", &budget);
    let mut b = Waiter::new("B", &budget);
    a.poll_pending();
    b.poll_pending();
    assert_eq!(budget.waiters(), 2);

    drop(first);
    drop(second);
    assert!(a.wakes() > 0, "A was not woken");
    assert!(b.wakes() > 0, "B was not woken by the second release");
    let permit_a = a.poll_ready();
    let permit_b = b.poll_ready();
    assert_eq!(budget.available(), 0);
    assert_eq!(budget.waiters(), 0);
    drop((permit_a, permit_b));
    assert_eq!(budget.available(), 2);
}

/// The same, with the waiters polled in the other order after the releases.
#[test]
fn two_releases_back_to_back_serve_waiters_polled_in_any_order() {
    let budget = Budget::new(2);
    let held = (budget.try_acquire().unwrap(), budget.try_acquire().unwrap());
    let mut a = Waiter::new("A", &budget);
    let mut b = Waiter::new("B", &budget);
    a.poll_pending();
    b.poll_pending();
    drop(held);
    assert!(
        a.wakes() > 0 && b.wakes() > 0,
        "A woken {}, B woken {}",
        a.wakes(),
        b.wakes()
    );
    let permit_b = b.poll_ready();
    let permit_a = a.poll_ready();
    assert_eq!(budget.waiters(), 0);
    drop((permit_a, permit_b));
    assert_budget_whole(&budget);
}

/// A waiter that was notified and then dropped (without taking its unit) passes the
/// wake-up on to the next waiter.
#[test]
fn a_notified_waiter_that_is_dropped_passes_the_wake_up_on() {
    let budget = Budget::new(1);
    let held = budget.try_acquire().unwrap();
    let mut a = Waiter::new("A", &budget);
    let mut b = Waiter::new("B", &budget);
    a.poll_pending();
    b.poll_pending();

    drop(held);
    assert!(a.wakes() > 0, "A, first in line, was not woken");
    let b_wakes_before = b.wakes();
    drop(a);
    assert!(
        b.wakes() > b_wakes_before,
        "dropping the notified waiter A did not wake B: a unit is stranded"
    );
    let permit = b.poll_ready();
    assert_eq!(budget.waiters(), 0);
    drop(permit);
    assert_budget_whole(&budget);
}

/// A waiter dropped before it was notified takes nothing and leaves the queue.
#[test]
fn a_waiter_dropped_before_notification_leaves_the_queue() {
    let budget = Budget::new(1);
    let held = budget.try_acquire().unwrap();
    let mut a = Waiter::new("A", &budget);
    let mut b = Waiter::new("B", &budget);
    a.poll_pending();
    b.poll_pending();
    assert_eq!(budget.waiters(), 2);
    drop(a);
    assert_eq!(budget.waiters(), 1);
    drop(held);
    assert!(b.wakes() > 0, "B was not woken");
    drop(b.poll_ready());
    assert_budget_whole(&budget);
}

/// Waiters queued in order are served in order, one release at a time, however the
/// executor orders its polls (here: newest first).
#[test]
fn waiters_are_served_in_arrival_order() {
    const WAITERS: usize = 10;
    let budget = Budget::new(1);
    let mut current = budget.try_acquire().unwrap();
    let mut waiters: Vec<Option<Waiter>> = (1..=WAITERS)
        .map(|n| Some(Waiter::new(format!("W{n}"), &budget)))
        .collect();
    for waiter in waiters.iter_mut().flatten() {
        waiter.poll_pending();
    }
    assert_eq!(budget.waiters(), WAITERS);

    let mut order = Vec::new();
    for _ in 0..WAITERS {
        drop(current);
        let mut next = None;
        for index in (0..WAITERS).rev() {
            let Some(waiter) = waiters[index].as_mut() else {
                continue;
            };
            if let Poll::Ready(permit) = waiter.poll() {
                assert!(
                    waiter.wakes() > 0,
                    "{} completed without being woken",
                    waiter.name
                );
                assert!(next.is_none(), "two waiters got the one unit");
                next = Some(permit);
                order.push(index + 1);
                waiters[index] = None;
            }
        }
        current = next.expect("a release served no waiter");
    }
    assert_eq!(order, (1..=WAITERS).collect::<Vec<_>>());
    drop(current);
    assert_budget_whole(&budget);
}

// ---------------------------------------------------------------------------------
// Basics
// ---------------------------------------------------------------------------------

#[test]
fn try_acquire_available_capacity_and_held() {
    let budget = Budget::new(3);
    assert_eq!(
        (budget.capacity(), budget.available(), budget.held()),
        (3, 3, 0)
    );
    let a = budget.try_acquire().unwrap();
    let b = budget.try_acquire().unwrap();
    let c = budget.try_acquire().unwrap();
    assert!(budget.try_acquire().is_none());
    assert_eq!(
        (budget.capacity(), budget.available(), budget.held()),
        (3, 0, 3)
    );
    assert_eq!(a.budget().capacity(), 3);
    drop(b);
    assert_eq!((budget.available(), budget.held()), (1, 2));

    // Clones share the counter.
    let clone = budget.clone();
    let d = clone.try_acquire().unwrap();
    assert_eq!(budget.available(), 0);
    assert!(budget.try_acquire().is_none());
    drop((a, c, d));
    assert_eq!(budget.available(), 3);
    assert_eq!(clone.available(), 3);
    assert_eq!(budget.waiters(), 0);
}

#[test]
fn acquire_completes_at_once_when_free() {
    let budget = Budget::new(2);
    let mut waiter = Waiter::new("W", &budget);
    let permit = waiter.poll_ready();
    assert_eq!((budget.available(), budget.waiters()), (1, 0));
    drop(permit);
    assert_eq!(budget.available(), 2);
}

#[test]
#[should_panic(expected = "capacity")]
fn a_zero_budget_panics() {
    let _ = Budget::new(0);
}

fn assert_send_static<T: Send + 'static>(_: &T) {}

#[test]
fn acquire_is_send_and_static_and_owns_its_budget() {
    let acquire = {
        let budget = Budget::new(1);
        budget.acquire()
    }; // the budget handle is gone; the future keeps the budget alive
    assert_send_static(&acquire);
    let permit = aopen::block_on(acquire);
    assert_send_static(&permit);
    assert_eq!(permit.budget().available(), 0);
    let budget = permit.budget().clone();
    drop(permit);
    assert_eq!(budget.available(), 1);

    // And it can be spawned on a multi-threaded runtime.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let permit = rt.block_on(rt.spawn(budget.acquire())).unwrap();
    assert_eq!(budget.available(), 0);
    drop(permit);
}
