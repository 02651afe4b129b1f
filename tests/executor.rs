//! Integration tests for `aopen::{block_on, LocalExecutor, Task, sleep}`.
//!
//! Synchronisation is done with channels and flags, never with sleeps; timing
//! assertions are one-sided or generous. Tests that would hang if a wake were lost
//! run under [`within`], which turns a hang into a failure.

#[path = "support/common.rs"]
mod common;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use aopen::{block_on, sleep, LocalExecutor, Task};
use common::{
    drop_flag, panic_message, rerun_test, thread_count, threads_named, within, yield_now,
    CountingWaker,
};

/// How long a test may take before [`within`] calls it hung.
const HANG_LIMIT: Duration = Duration::from_secs(60);

/// The duration the runtime-compatibility tests sleep for.
const SHORT_SLEEP: Duration = Duration::from_millis(20);

/// The generous upper bound for [`SHORT_SLEEP`] to complete in.
const SHORT_SLEEP_LIMIT: Duration = Duration::from_secs(5);

/// The one-shot value slot [`Remote`] shares with the thread that fills it.
#[derive(Default)]
struct RemoteSlot {
    value: Option<u32>,
    waker: Option<Waker>,
}

/// A future completed from another thread: on its first pending poll it sends its
/// shared slot over `registered`; whoever receives it fills it and wakes the waker.
struct Remote {
    slot: Arc<Mutex<RemoteSlot>>,
    registered: Option<mpsc::Sender<Arc<Mutex<RemoteSlot>>>>,
    polls: Arc<AtomicUsize>,
}

impl Future for Remote {
    type Output = u32;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        let mut slot = self.slot.lock().unwrap();
        if let Some(value) = slot.value.take() {
            return Poll::Ready(value);
        }
        slot.waker = Some(cx.waker().clone());
        drop(slot);
        if let Some(tx) = self.registered.take() {
            tx.send(Arc::clone(&self.slot)).unwrap();
        }
        Poll::Pending
    }
}

/// A [`Remote`] and a thread that completes it with `value` once it registered.
/// The thread returns its own id.
fn remote(value: u32) -> (Remote, Arc<AtomicUsize>, thread::JoinHandle<ThreadId>) {
    let (tx, rx) = mpsc::channel::<Arc<Mutex<RemoteSlot>>>();
    let polls = Arc::new(AtomicUsize::new(0));
    let future = Remote {
        slot: Arc::default(),
        registered: Some(tx),
        polls: Arc::clone(&polls),
    };
    let completer = thread::spawn(move || {
        // Blocks until the future was polled once and is pending: a handshake, not a
        // sleep.
        let slot = rx.recv().expect("the future registered");
        let waker = {
            let mut slot = slot.lock().unwrap();
            slot.value = Some(value);
            slot.waker.take().expect("a waker was stored")
        };
        waker.wake();
        thread::current().id()
    });
    (future, polls, completer)
}

// ---------------------------------------------------------------- block_on

#[test]
fn block_on_reuses_across_many_calls() {
    within(HANG_LIMIT, || {
        let mut sum = 0u64;
        for i in 0..10_000u64 {
            sum += block_on(async move {
                yield_now().await;
                i
            });
        }
        assert_eq!(sum, (0..10_000).sum());
    });
}

#[test]
fn block_on_nests() {
    within(HANG_LIMIT, || {
        let total = block_on(async {
            let a = block_on(async {
                yield_now().await;
                1
            });
            yield_now().await;
            // Three deep, and the innermost waits for another thread.
            let b = block_on(async {
                let (future, _, completer) = remote(2);
                let value = block_on(future);
                completer.join().unwrap();
                value
            });
            yield_now().await;
            a + b
        });
        assert_eq!(total, 3);
        // The outer call's cache is usable again afterwards.
        assert_eq!(block_on(async { 7 }), 7);
    });
}

#[test]
fn block_on_is_woken_from_another_thread_without_spinning() {
    within(HANG_LIMIT, || {
        let (future, polls, completer) = remote(42);
        assert_eq!(block_on(future), 42);
        assert_ne!(completer.join().unwrap(), thread::current().id());
        // One pending poll, one ready poll: it parked in between instead of spinning.
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    });
}

// ------------------------------------------------------------ LocalExecutor

#[test]
fn spawned_tasks_run_and_can_spawn_more() {
    within(HANG_LIMIT, || {
        let ex = Rc::new(LocalExecutor::new());
        let not_send = Rc::new(Cell::new(0));
        let outer = ex.spawn({
            let ex = Rc::clone(&ex);
            let not_send = Rc::clone(&not_send);
            async move {
                let inner: Vec<Task<u32>> = (0..10)
                    .map(|i| {
                        let not_send = Rc::clone(&not_send);
                        ex.spawn(async move {
                            yield_now().await;
                            not_send.set(not_send.get() + 1);
                            i
                        })
                    })
                    .collect();
                let mut sum = 0;
                for task in inner {
                    sum += task.await;
                }
                sum
            }
        });
        assert_eq!(ex.run(outer), 45);
        assert_eq!(not_send.get(), 10);
    });
}

#[test]
fn dropping_a_task_drops_its_future_at_once() {
    within(HANG_LIMIT, || {
        let ex = LocalExecutor::new();

        // Never polled.
        let (dropped, guard) = drop_flag();
        let task = ex.spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        });
        assert!(!dropped.load(Ordering::SeqCst));
        drop(task);
        assert!(dropped.load(Ordering::SeqCst), "dropped inside Task::drop");

        // Polled and pending.
        let (dropped, guard) = drop_flag();
        let polled = Rc::new(Cell::new(false));
        let task = ex.spawn({
            let polled = Rc::clone(&polled);
            async move {
                let _guard = guard;
                polled.set(true);
                std::future::pending::<()>().await;
            }
        });
        ex.run(async {
            while !polled.get() {
                yield_now().await;
            }
        });
        assert!(!dropped.load(Ordering::SeqCst));
        drop(task);
        assert!(dropped.load(Ordering::SeqCst), "dropped inside Task::drop");
    });
}

#[test]
fn a_task_may_drop_other_handles_and_its_own() {
    within(HANG_LIMIT, || {
        let ex = Rc::new(LocalExecutor::new());

        let (victim_dropped, guard) = drop_flag();
        let victim = ex.spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        });

        let (self_dropped, self_guard) = drop_flag();
        let own_handle: Rc<RefCell<Option<Task<()>>>> = Rc::default();
        let polls_after_cancel = Rc::new(Cell::new(0));
        let killer = ex.spawn({
            let own_handle = Rc::clone(&own_handle);
            let victim_dropped = Arc::clone(&victim_dropped);
            let polls_after_cancel = Rc::clone(&polls_after_cancel);
            async move {
                let _guard = self_guard;
                yield_now().await;
                drop(victim);
                assert!(victim_dropped.load(Ordering::SeqCst));
                // Cancel ourselves while being polled, then ask to be polled again:
                // the executor must drop us after this poll instead.
                drop(own_handle.borrow_mut().take());
                loop {
                    yield_now().await;
                    polls_after_cancel.set(polls_after_cancel.get() + 1);
                }
            }
        });
        *own_handle.borrow_mut() = Some(killer);

        ex.run(async {
            while !self_dropped.load(Ordering::SeqCst) {
                yield_now().await;
            }
        });
        assert!(victim_dropped.load(Ordering::SeqCst));
        assert_eq!(
            polls_after_cancel.get(),
            0,
            "a cancelled task was polled again"
        );
    });
}

#[test]
fn a_detached_task_runs_to_completion_and_its_output_is_dropped() {
    within(HANG_LIMIT, || {
        let ex = LocalExecutor::new();
        let (output_dropped, output) = drop_flag();
        let (tx, rx) = futures::channel::oneshot::channel();
        ex.spawn(async move {
            for _ in 0..10 {
                yield_now().await;
            }
            tx.send(()).unwrap();
            output
        })
        .detach();
        ex.run(async { rx.await.expect("the detached task finished") });
        assert!(output_dropped.load(Ordering::SeqCst));
    });
}

#[test]
fn a_task_woken_from_another_thread_is_polled_on_the_executor_thread() {
    within(HANG_LIMIT, || {
        let ex = LocalExecutor::new();
        let executor_thread = thread::current().id();
        let poll_threads: Rc<RefCell<Vec<ThreadId>>> = Rc::default();

        let mut completers = Vec::new();
        let tasks: Vec<Task<u32>> = (0..16)
            .map(|i| {
                let (future, _, completer) = remote(i);
                completers.push(completer);
                let poll_threads = Rc::clone(&poll_threads);
                ex.spawn(async move {
                    poll_threads.borrow_mut().push(thread::current().id());
                    let value = future.await;
                    poll_threads.borrow_mut().push(thread::current().id());
                    value
                })
            })
            .collect();

        let values = ex.run(async {
            let mut values = Vec::new();
            for task in tasks {
                values.push(task.await);
            }
            values
        });
        assert_eq!(values, (0..16).collect::<Vec<_>>());
        for completer in completers {
            assert_ne!(completer.join().unwrap(), executor_thread);
        }
        let poll_threads = poll_threads.borrow();
        assert_eq!(poll_threads.len(), 32);
        assert!(poll_threads.iter().all(|&id| id == executor_thread));
    });
}

#[test]
fn many_cross_thread_wakes_are_not_lost() {
    const TASKS: usize = 1_000;
    const WAKER_THREADS: usize = 4;
    within(HANG_LIMIT, || {
        let ex = LocalExecutor::new();
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..TASKS)
            .map(|_| futures::channel::oneshot::channel::<usize>())
            .unzip();
        let tasks: Vec<Task<usize>> = receivers
            .into_iter()
            .map(|rx| ex.spawn(async move { rx.await.unwrap() }))
            .collect();

        // Senders are spread over threads that fire as soon as they start, racing
        // with the executor's first polls.
        let mut chunks: Vec<Vec<_>> = (0..WAKER_THREADS).map(|_| Vec::new()).collect();
        for (i, tx) in senders.into_iter().enumerate() {
            chunks[i % WAKER_THREADS].push((i, tx));
        }
        let threads: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                thread::spawn(move || {
                    for (i, tx) in chunk {
                        tx.send(i).unwrap();
                    }
                })
            })
            .collect();

        let sum = ex.run(async {
            let mut sum = 0;
            for task in tasks {
                sum += task.await;
            }
            sum
        });
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(sum, (0..TASKS).sum());
    });
}

#[test]
fn a_flood_of_ready_tasks_does_not_starve_the_main_future() {
    within(HANG_LIMIT, || {
        let ex = LocalExecutor::new();
        let spins = Rc::new(Cell::new(0u64));
        for _ in 0..1_000 {
            let spins = Rc::clone(&spins);
            ex.spawn(async move {
                loop {
                    spins.set(spins.get() + 1);
                    yield_now().await;
                }
            })
            .detach();
        }
        // A task that needs a timer wake from another thread, and a main future that
        // needs both its own re-polls and that task.
        let sleeper = ex.spawn(async {
            sleep(Duration::from_millis(10)).await;
            5
        });
        let out = ex.run(async {
            for _ in 0..100 {
                yield_now().await;
            }
            sleep(Duration::from_millis(10)).await;
            sleeper.await
        });
        assert_eq!(out, 5);
        assert!(spins.get() > 0, "the flood ran too");
    });
}

#[test]
fn the_main_future_does_not_starve_tasks() {
    within(HANG_LIMIT, || {
        let ex = LocalExecutor::new();
        let done = Rc::new(Cell::new(false));
        ex.spawn({
            let done = Rc::clone(&done);
            async move {
                for _ in 0..100 {
                    yield_now().await;
                }
                done.set(true);
            }
        })
        .detach();
        // Always ready to be polled again until the task is done.
        ex.run(async {
            while !done.get() {
                yield_now().await;
            }
        });
    });
}

#[test]
fn tasks_left_over_continue_at_the_next_run() {
    within(HANG_LIMIT, || {
        let ex = LocalExecutor::new();
        let (tx, rx) = futures::channel::oneshot::channel::<u32>();
        let task = ex.spawn(async move { rx.await.unwrap() + 1 });
        ex.run(yield_now());
        tx.send(1).unwrap();
        assert_eq!(ex.run(task), 2);
    });
}

#[test]
fn dropping_the_executor_drops_tasks_and_awaiting_them_panics() {
    within(HANG_LIMIT, || {
        let ex = LocalExecutor::new();
        let (dropped, guard) = drop_flag();
        let task = ex.spawn(async move {
            let _guard = guard;
            std::future::pending::<u32>().await
        });
        ex.run(yield_now());
        drop(ex);
        assert!(dropped.load(Ordering::SeqCst));

        let payload = panic::catch_unwind(AssertUnwindSafe(|| block_on(task)))
            .expect_err("awaiting a task of a dropped executor panics");
        let message = panic_message(&*payload);
        assert!(
            message.contains("LocalExecutor was dropped"),
            "unexpected panic message: {message}"
        );
    });
}

#[test]
fn nested_run_of_the_same_executor_panics_and_the_executor_stays_usable() {
    within(HANG_LIMIT, || {
        let ex = Rc::new(LocalExecutor::new());
        let task = ex.spawn({
            let ex = Rc::clone(&ex);
            async move { ex.run(async { 1 }) }
        });
        let payload = panic::catch_unwind(AssertUnwindSafe(|| ex.run(task)))
            .expect_err("a nested run panics");
        let message = panic_message(&*payload);
        assert!(message.contains("already running"), "{message}");
        assert_eq!(ex.run(async { 2 }), 2);
        assert_eq!(ex.run(ex.spawn(async { 3 })), 3);
    });
}

// -------------------------------------------------------------------- sleep

/// Sleeps [`SHORT_SLEEP`] and returns how long that took.
async fn timed_short_sleep() -> Duration {
    let start = Instant::now();
    sleep(SHORT_SLEEP).await;
    start.elapsed()
}

fn assert_short_sleep(elapsed: Duration) {
    assert!(elapsed >= SHORT_SLEEP, "woke early: {elapsed:?}");
    assert!(elapsed < SHORT_SLEEP_LIMIT, "woke late: {elapsed:?}");
}

#[test]
fn sleep_under_aopen_block_on_and_local_executor() {
    within(HANG_LIMIT, || {
        assert_short_sleep(block_on(timed_short_sleep()));
        let ex = LocalExecutor::new();
        let task = ex.spawn(timed_short_sleep());
        assert_short_sleep(ex.run(task));
    });
}

#[test]
fn sleep_under_tokio_current_thread() {
    within(HANG_LIMIT, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_short_sleep(rt.block_on(timed_short_sleep()));
        let handle = rt.spawn(timed_short_sleep());
        assert_short_sleep(rt.block_on(handle).unwrap());
    });
}

#[test]
fn sleep_under_tokio_multi_thread() {
    within(HANG_LIMIT, || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        rt.block_on(async {
            let handles: Vec<_> = (0..8).map(|_| tokio::spawn(timed_short_sleep())).collect();
            for handle in handles {
                assert_short_sleep(handle.await.unwrap());
            }
        });
    });
}

#[test]
fn sleep_under_smol_and_async_executor() {
    within(HANG_LIMIT, || {
        assert_short_sleep(smol::block_on(timed_short_sleep()));
        let ex = async_executor::Executor::new();
        let elapsed = smol::block_on(ex.run(async {
            let tasks: Vec<_> = (0..8).map(|_| ex.spawn(timed_short_sleep())).collect();
            let mut all = Vec::new();
            for task in tasks {
                all.push(task.await);
            }
            all
        }));
        elapsed.into_iter().for_each(assert_short_sleep);
    });
}

#[test]
fn sleep_under_futures_executor_and_pollster() {
    within(HANG_LIMIT, || {
        assert_short_sleep(futures::executor::block_on(timed_short_sleep()));
        assert_short_sleep(pollster::block_on(timed_short_sleep()));
    });
}

#[test]
fn a_zero_sleep_is_ready_at_once() {
    let waker = futures::task::noop_waker();
    let mut zero = sleep(Duration::ZERO);
    assert!(Pin::new(&mut zero)
        .poll(&mut Context::from_waker(&waker))
        .is_ready());
}

/// Reports a wake on a channel.
struct ChannelWaker(Mutex<mpsc::Sender<()>>);

impl Wake for ChannelWaker {
    fn wake(self: Arc<Self>) {
        let _ = self.0.lock().unwrap().send(());
    }
}

#[test]
fn sleep_wakes_the_waker_of_its_latest_poll() {
    let first = Arc::new(CountingWaker::default());
    let first_waker = Waker::from(Arc::clone(&first));
    let (tx, rx) = mpsc::channel();
    let second_waker = Waker::from(Arc::new(ChannelWaker(Mutex::new(tx))));

    let mut timer = sleep(SHORT_SLEEP);
    let pending = |timer: &mut aopen::Sleep, waker: &Waker| {
        Pin::new(timer)
            .poll(&mut Context::from_waker(waker))
            .is_pending()
    };
    assert!(pending(&mut timer, &first_waker));
    assert!(pending(&mut timer, &second_waker));
    rx.recv_timeout(SHORT_SLEEP_LIMIT)
        .expect("the second waker was woken");
    assert_eq!(first.wakes(), 0, "the replaced waker was woken");
    assert!(!pending(&mut timer, &second_waker));
}

/// Set in the child process that [`ten_thousand_sleeps_share_one_timer_thread`]
/// starts, so the thread count is measured with no other test running.
const CHILD_ENV: &str = "AOPEN_EXECUTOR_TESTS_CHILD";

#[test]
fn ten_thousand_sleeps_share_one_timer_thread() {
    if std::env::var_os(CHILD_ENV).is_none() {
        // Re-run just this test in a child process: other tests start threads
        // concurrently, which would make a thread count meaningless here.
        let output = rerun_test("ten_thousand_sleeps_share_one_timer_thread")
            .env(CHILD_ENV, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "child failed:\n{stdout}\n{stderr}"
        );
        return;
    }

    const SLEEPS: u64 = 10_000;
    let before = thread_count();
    let ex = LocalExecutor::new();
    let started = Rc::new(Cell::new(0));
    let finished = Rc::new(Cell::new(0));
    let tasks: Vec<Task<()>> = (0..SLEEPS)
        .map(|i| {
            let started = Rc::clone(&started);
            let finished = Rc::clone(&finished);
            ex.spawn(async move {
                started.set(started.get() + 1);
                sleep(Duration::from_millis(10 + i % 41)).await;
                finished.set(finished.get() + 1);
            })
        })
        .collect();

    let start = Instant::now();
    let during = ex.run(async {
        // Every task has polled its sleep once after this.
        while started.get() < SLEEPS {
            yield_now().await;
        }
        let during = thread_count();
        for task in tasks {
            task.await;
        }
        during
    });
    let elapsed = start.elapsed();
    let after = thread_count();

    assert_eq!(finished.get(), SLEEPS);
    assert!(elapsed >= Duration::from_millis(10), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");
    assert!(
        during <= before + 1,
        "threads: {before} before, {during} while sleeping"
    );
    assert!(
        after <= before + 1,
        "threads: {before} before, {after} after"
    );
    assert_eq!(threads_named("aopen-timer"), 1);
}
