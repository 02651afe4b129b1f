//! aopen's executors fire their own sleeps: a sleep polled under `block_on` or a
//! `LocalExecutor` completes even while the global timer thread cannot run.
//!
//! The timer thread is held inside a waker it is waking (a "hostage" waker that
//! blocks until the test lets it go), so it fires nothing else meanwhile. A separate
//! test binary, because every other sleep in the process waits while it is held.

use std::future::Future;
use std::pin::Pin;
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Wake, Waker};
use std::time::{Duration, Instant};

/// How long each sleep under test sleeps.
const SLEEP: Duration = Duration::from_millis(5);

/// Far longer than the sleeps take: a sleep not done by then was never fired.
const LIMIT: Duration = Duration::from_secs(20);

/// A waker whose `wake` says it was entered, then blocks until released.
struct Hostage {
    entered: Mutex<mpsc::Sender<()>>,
    release: Mutex<mpsc::Receiver<()>>,
}

impl Wake for Hostage {
    fn wake(self: Arc<Self>) {
        let _ = self.entered.lock().unwrap().send(());
        let _ = self.release.lock().unwrap().recv();
    }
}

/// Registers a sleep whose waker holds the timer thread, and waits until it does.
/// Dropping the returned sender lets the timer thread go.
fn hold_the_timer_thread() -> mpsc::Sender<()> {
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let waker = Waker::from(Arc::new(Hostage {
        entered: Mutex::new(entered_tx),
        release: Mutex::new(release_rx),
    }));
    let mut sleep = aopen::sleep(Duration::from_millis(1));
    let pending = Pin::new(&mut sleep)
        .poll(&mut Context::from_waker(&waker))
        .is_pending();
    assert!(pending, "a 1 ms sleep is pending at its first poll");
    entered
        .recv_timeout(LIMIT)
        .expect("the timer thread fires the hostage sleep");
    release
}

#[test]
fn sleeps_on_aopen_executors_complete_while_the_timer_thread_is_held() {
    let release = hold_the_timer_thread();
    let (done_tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        let start = Instant::now();
        aopen::block_on(aopen::sleep(SLEEP));
        let block_on = start.elapsed();
        let executor = aopen::LocalExecutor::new();
        let task = executor.spawn(aopen::sleep(SLEEP));
        let start = Instant::now();
        executor.run(async {
            aopen::sleep(SLEEP).await;
            task.await;
        });
        let _ = done_tx.send((block_on, start.elapsed()));
    });
    let outcome = done.recv_timeout(LIMIT);
    drop(release);
    let (block_on, local) = outcome
        .expect("sleeps under block_on and LocalExecutor completed only when the timer thread ran");
    assert!(
        block_on >= SLEEP && local >= SLEEP,
        "{block_on:?} {local:?}"
    );
}
