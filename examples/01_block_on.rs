//! A waker and a parker: what `aopen::block_on` does, written out by hand.
//!
//! Run it with `cargo run --example 01_block_on`.
//!
//! A future is a state machine that a caller *polls*. When it cannot finish yet it
//! returns `Pending`, and it promises to call the `Waker` it was handed once polling
//! again is worth it. `block_on` is the smallest possible caller:
//!
//! 1. poll the future with a waker that belongs to this thread;
//! 2. if `Pending`, park (sleep) until the waker is called, then go to 1.
//!
//! The waker sets a flag that the parker checks, so a wake that arrives *before* the
//! thread parks is not lost: park sees the flag and returns at once.
//!
//! `my_block_on` is that loop; `aopen::block_on` is the same with a parker cached
//! per thread (src/executor/). Exits non-zero if the polls or wakes are off.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

/// Steps the helper thread completes, each after [`STEP_WORK`] of pretend work.
const STEPS: usize = 3;
const STEP_WORK: Duration = Duration::from_millis(20);

/// A parker: a "notified" flag under a mutex, and a condition variable to sleep on.
/// It is also the waker (`std::task::Wake`), so waking = setting the flag + notify.
#[derive(Default)]
struct Parker {
    notified: Mutex<bool>,
    condvar: Condvar,
    /// Names of the threads that called the waker, to show who woke us.
    woken_by: Mutex<Vec<String>>,
}

impl Parker {
    /// Sleeps until the flag is set, then clears it (consumes the wake).
    fn park(&self) {
        let mut notified = self.notified.lock().unwrap();
        // A loop, because condition variables may wake spuriously: only the flag counts.
        while !*notified {
            notified = self.condvar.wait(notified).unwrap();
        }
        *notified = false;
    }
}

impl Wake for Parker {
    // (`wake_by_ref` has a default: clone the `Arc`, call this.)
    fn wake(self: Arc<Self>) {
        let name = thread::current().name().unwrap_or("unnamed").to_string();
        self.woken_by.lock().unwrap().push(name);
        // Set the flag under the lock `park` checks it under: either `park` has not
        // looked yet (and will see it), or it is inside `wait`, which released the
        // lock atomically, so the notify below reaches it. No window loses a wake.
        *self.notified.lock().unwrap() = true;
        self.condvar.notify_one();
    }
}

/// Our own `block_on`: poll, park, repeat. Returns the output and the polls it took.
fn my_block_on<F: Future>(fut: F) -> (F::Output, usize, Vec<String>) {
    let parker = Arc::new(Parker::default());
    // `Waker::from(Arc<impl Wake>)`: std builds the vtable; no unsafe needed.
    let waker = Waker::from(Arc::clone(&parker));
    let mut cx = Context::from_waker(&waker);
    // The future must not move once polled (it may point into itself): pin it here.
    let mut fut = pin!(fut);
    let mut polls = 0;
    loop {
        polls += 1;
        if let Poll::Ready(output) = fut.as_mut().poll(&mut cx) {
            let woken_by = std::mem::take(&mut *parker.woken_by.lock().unwrap());
            return (output, polls, woken_by);
        }
        parker.park();
    }
}

/// A future woken from another thread: a helper thread does [`STEPS`] steps and
/// calls the stored waker after each; the future is ready after the last.
fn helper_future() -> impl Future<Output = usize> {
    let shared = Arc::new(Mutex::new((0, None::<Waker>))); // (steps done, last waker)
    let helper = Arc::clone(&shared);
    thread::Builder::new()
        .name("helper".into())
        .spawn(move || {
            for _ in 0..STEPS {
                thread::sleep(STEP_WORK);
                let mut state = helper.lock().unwrap();
                state.0 += 1;
                // Wake outside our lock (`take` + drop the guard): wakers run any code.
                let waker = state.1.take();
                drop(state);
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
        })
        .expect("spawn the helper thread");
    std::future::poll_fn(move |cx| {
        let mut state = shared.lock().unwrap();
        if state.0 == STEPS {
            return Poll::Ready(state.0);
        }
        // Store the waker *before* returning Pending, under the same lock the helper
        // takes: a step that completes after this line will see it and wake us.
        state.1 = Some(cx.waker().clone());
        Poll::Pending
    })
}

/// A future that wakes itself, then returns `Pending` once: the wake lands before
/// the thread parks. A parker that lost such a wake would hang here forever.
fn yield_once() -> impl Future<Output = ()> {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if std::mem::replace(&mut yielded, true) {
            return Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    })
}

fn main() {
    println!("my_block_on, a future woken by a helper thread after each of {STEPS} steps:");
    let (steps, polls, woken_by) = my_block_on(helper_future());
    println!("  ready after {steps} steps: {polls} polls, woken by {woken_by:?}");
    // The first poll, then one per park, and each park was ended by one wake.
    assert_eq!(
        polls,
        woken_by.len() + 1,
        "a poll without a wake, or a lost wake"
    );
    assert!(woken_by.iter().all(|name| name == "helper"), "{woken_by:?}");

    println!("my_block_on, a future that wakes itself before returning Pending:");
    let ((), polls, woken_by) = my_block_on(yield_once());
    println!("  ready after {polls} polls, woken by {woken_by:?}: the flag kept the early wake");
    assert_eq!((polls, &woken_by[..]), (2, &["main".to_string()][..]));

    println!("aopen::block_on, the same two futures (same mechanism, same counts):");
    let (steps, polls) = aopen_block_on_counted(helper_future());
    println!("  helper future: ready after {steps} steps, {polls} polls");
    assert!((2..=STEPS + 1).contains(&polls), "{polls} polls");
    let ((), polls) = aopen_block_on_counted(yield_once());
    println!("  self-waking future: ready after {polls} polls");
    assert_eq!(polls, 2);
    println!("ok: every poll after the first was caused by a wake; none was lost");
}

/// `aopen::block_on`, counting the polls from outside with a wrapping future.
fn aopen_block_on_counted<F: Future>(fut: F) -> (F::Output, usize) {
    let mut polls = 0;
    let mut fut = pin!(fut);
    let output = aopen::block_on(std::future::poll_fn(|cx| {
        polls += 1;
        fut.as_mut().poll(cx)
    }));
    (output, polls)
}
