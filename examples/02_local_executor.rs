//! Spawn, join, cancel, detach: many futures on one thread with `aopen::LocalExecutor`.
//!
//! Run it with `cargo run --example 02_local_executor`.
//!
//! `block_on` drives one future. An executor drives many: `spawn` boxes a future and
//! puts it in the executor's table of tasks; each task gets its own waker, which
//! pushes the task's key on a run queue and unparks the executor's thread. `run`
//! pops keys and polls those tasks, and parks when the queue is empty. So a task is
//! polled only when it was woken, always on the thread that called `run`.
//!
//! Because every poll happens on that one thread, spawned futures need not be `Send`:
//! they may hold an `Rc` or a `RefCell` (a multi-threaded runtime would refuse them).
//!
//! The `Task` handle is a future of the task's output. Dropping it *cancels* the task:
//! the executor drops the task's future right there, so its destructors run and it
//! is never polled again. `detach()` gives the handle up and lets the task run on.
//!
//! Exits non-zero if a cancelled task is polled again or a detached one never ran.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use aopen::LocalExecutor;

/// How often the ticker task wakes up.
const TICK: Duration = Duration::from_millis(2);
/// Ticks the ticker does before we cancel it.
const TICKS_BEFORE_CANCEL: usize = 3;
/// How long we keep running after the cancel, to give a buggy executor the chance
/// to poll the dropped task anyway (this is an observation window, not a wait).
const WATCH_AFTER_CANCEL: Duration = Duration::from_millis(30);
/// The longest we wait for a signal before declaring the demonstration failed.
const DEADLINE: Duration = Duration::from_secs(5);

/// A one-shot, single-thread signal: `set` wakes whoever awaits `wait`. `Rc`-based,
/// so it is `!Send`, which the executor does not mind.
#[derive(Clone, Default)]
struct Signal(Rc<RefCell<(bool, Option<Waker>)>>);

impl Signal {
    fn set(&self) {
        let waker = {
            let mut state = self.0.borrow_mut();
            state.0 = true;
            state.1.take()
        };
        // Wake with no borrow held: the woken side will borrow again.
        if let Some(waker) = waker {
            waker.wake();
        }
    }
    async fn wait(&self) {
        poll_fn(|cx| {
            let mut state = self.0.borrow_mut();
            if state.0 {
                return Poll::Ready(());
            }
            // Remember who to wake, then say "not yet".
            state.1 = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
    }
}

/// Sets its flag when dropped: shows when a task's future is destroyed.
struct DropFlag(Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// Runs `fut` on `ex`, failing loudly (instead of hanging) if it takes over
/// [`DEADLINE`]. A tiny `select`: one future polls two and returns the first done;
/// both were given the same waker, so whichever is woken gets this future polled.
fn run_bounded(ex: &LocalExecutor, what: &str, fut: impl Future<Output = ()>) {
    let (mut fut, mut timer) = (pin!(fut), pin!(aopen::sleep(DEADLINE)));
    let done = ex.run(poll_fn(|cx| match fut.as_mut().poll(cx) {
        Poll::Ready(()) => Poll::Ready(true),
        Poll::Pending => timer.as_mut().poll(cx).map(|()| false),
    }));
    assert!(done, "{what}: not done after {DEADLINE:?}");
}

fn main() {
    let ex = LocalExecutor::new();

    // 1. Spawn and join. Nothing runs at `spawn`; the task first runs inside `run`.
    let ran = Rc::new(Cell::new(false));
    let data = Rc::new(vec![1, 2, 3]); // `Rc`: not `Send`, and that is fine here
    let sum = ex.spawn({
        let (ran, data) = (Rc::clone(&ran), Rc::clone(&data));
        async move {
            ran.set(true);
            data.iter().sum::<i32>()
        }
    });
    assert!(!ran.get(), "a task ran before `run`");
    println!("spawned a task that sums an Rc<Vec>: ran = {}", ran.get());
    let total = ex.run(sum); // the join: `run` drives tasks until this future is done
    println!("ran it and joined it: sum = {total}, ran = {}", ran.get());
    assert_eq!(total, 6);

    // 2. Cancel. A ticker counts its polls forever; dropping its `Task` must drop
    // its future (DropFlag) at once and stop the ticks.
    let ticks = Rc::new(Cell::new(0));
    let dropped = Rc::new(Cell::new(false));
    let reached = Signal::default();
    let ticker = ex.spawn({
        let (ticks, reached) = (Rc::clone(&ticks), reached.clone());
        let guard = DropFlag(Rc::clone(&dropped));
        async move {
            let _guard = guard; // lives as long as the future does
            loop {
                ticks.set(ticks.get() + 1);
                if ticks.get() == TICKS_BEFORE_CANCEL {
                    reached.set();
                }
                aopen::sleep(TICK).await;
            }
        }
    });
    run_bounded(&ex, "the ticker's first ticks", reached.wait());
    println!("ticker ticked {} times; {ex:?}", ticks.get());
    drop(ticker);
    let ticks_at_cancel = ticks.get();
    println!(
        "dropped its Task: future dropped = {}; {ex:?}",
        dropped.get()
    );
    assert!(dropped.get(), "the Task was dropped, its future was not");
    ex.run(aopen::sleep(WATCH_AFTER_CANCEL));
    let after = ticks.get();
    println!("ran {WATCH_AFTER_CANCEL:?} more: ticks = {after} (was {ticks_at_cancel})");
    assert_eq!(after, ticks_at_cancel, "a cancelled task was polled");

    // 3. Detach. The handle is gone, but the task runs on to the end; we learn that
    // it finished only through the signal it sets.
    let finished = Signal::default();
    ex.spawn({
        let finished = finished.clone();
        async move {
            aopen::sleep(TICK).await;
            finished.set();
        }
    })
    .detach();
    println!("detached a task; {ex:?}");
    run_bounded(&ex, "the detached task", finished.wait());
    println!("it finished on its own; {ex:?}");
    println!("ok: joined, cancelled (dropped, never polled again), detached (ran on)");
}
