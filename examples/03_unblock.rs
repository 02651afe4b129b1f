//! The blocking pool: `unblock` runs a closure on a pool thread and hands back a
//! future of its result.
//!
//! Run it with `cargo run --example 03_unblock`.
//!
//! A job is a closure plus a result slot shared with the caller's future. `unblock`
//! pushes the job on a queue *at once* (before any poll) and, if no pool thread is
//! awake to take it, wakes a sleeping one or starts a new one, up to `max_threads`.
//! A thread pops the job, runs it, stores the result and calls the waker the future
//! left in the slot; the caller's executor polls again and takes the result. Jobs
//! beyond `max_threads` wait in the queue (`jobs_queued`). A thread with nothing to
//! do for `idle_timeout` exits, so an idle pool costs nothing.
//!
//! A panic in a job is caught on the pool thread, stored in the slot like a result,
//! and resumed at the caller's `.await`: the pool thread survives.
//!
//! Exits non-zero if the pool runs more threads than allowed, swallows the panic,
//! loses its thread to it, or does not wind down.

use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use aopen::{BlockingTask, Pool, PoolStats};

/// The pool's thread cap; we give it more jobs than that.
const MAX_THREADS: usize = 2;
/// Jobs we queue at once.
const JOBS: usize = 6;
/// Idle pool threads exit after this long (longer than this demo needs).
const IDLE_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest we wait for the pool to reach a state before failing loudly.
const DEADLINE: Duration = Duration::from_secs(5);

/// A gate the jobs block on, standing in for a slow `open(2)` on a dead NFS server.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn pass(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
    }
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

/// Queues `n` jobs that block on a new gate and return the id of the thread that ran
/// them; waits until every pool thread is busy with one.
fn gated_jobs(pool: &Pool, n: usize) -> (Arc<Gate>, Vec<BlockingTask<ThreadId>>) {
    let gate = Arc::new(Gate::default());
    let tasks = (0..n)
        .map(|_| {
            let gate = Arc::clone(&gate);
            pool.unblock(move || {
                gate.pass();
                thread::current().id()
            })
        })
        .collect();
    wait_for(pool, "all threads busy", |s| s.threads_busy == MAX_THREADS);
    (gate, tasks)
}

/// Opens the gate and collects the jobs' thread ids.
fn release(gate: &Gate, tasks: Vec<BlockingTask<ThreadId>>) -> Vec<ThreadId> {
    gate.open();
    tasks.into_iter().map(aopen::block_on).collect()
}

/// Checks `pool.stats()` until `ok` holds; panics with the last stats after [`DEADLINE`].
fn wait_for(pool: &Pool, what: &str, ok: impl Fn(&PoolStats) -> bool) -> PoolStats {
    let start = Instant::now();
    loop {
        let stats = pool.stats();
        if ok(&stats) {
            return stats;
        }
        assert!(start.elapsed() < DEADLINE, "{what}: still {stats:?}");
        thread::yield_now();
    }
}

fn main() -> std::io::Result<()> {
    // The global pool: `aopen::unblock` is `Pool::global().unblock`.
    let on = aopen::block_on(aopen::unblock(|| {
        thread::current().name().unwrap_or("?").to_owned()
    }));
    println!("global pool:  aopen::unblock ran on a thread named {on:?}");

    let pool = Pool::builder()
        .max_threads(MAX_THREADS)
        .idle_timeout(IDLE_TIMEOUT)
        .thread_name("demo-pool")
        .build()?;
    let fresh = pool.stats();
    println!("new pool:     {fresh:?} (max_threads {MAX_THREADS})");
    assert_eq!(fresh.threads_alive, 0, "a thread before the first job");

    // Six jobs that block until the gate opens. The tasks are not polled yet: the
    // jobs are on the queue anyway, and two of them are already running.
    let (gate, tasks) = gated_jobs(&pool, JOBS);
    let busy = pool.stats();
    println!("{JOBS} jobs:       {busy:?}");
    assert_eq!(busy.threads_alive, MAX_THREADS, "threads vs max_threads");
    assert_eq!(busy.jobs_queued, JOBS - MAX_THREADS);
    let ids = release(&gate, tasks);
    println!("gate opened:  the jobs ran on {ids:?}");
    let distinct: HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), MAX_THREADS, "jobs ran on {distinct:?}");

    // A panicking job. The panic hook runs where the panic happens (a pool thread);
    // ours records that thread instead of printing std's default message.
    let panicked_on = Arc::new(Mutex::new(None));
    let record = Arc::clone(&panicked_on);
    panic::set_hook(Box::new(move |_| {
        *record.lock().unwrap() = Some(thread::current().id())
    }));
    let task = pool.unblock(|| -> u32 { panic!("the disk is on fire") });
    // The payload travels to the caller: block_on(task) panics *here*, with it.
    let caught = panic::catch_unwind(AssertUnwindSafe(|| aopen::block_on(task)));
    let _ = panic::take_hook(); // back to std's hook
    let payload = caught.expect_err("the job's panic did not resume at the await");
    let message = payload.downcast_ref::<&str>().copied().unwrap_or("?");
    let panicked_on = panicked_on.lock().unwrap().expect("no panic hook ran");
    println!("panic:        on {panicked_on:?}, resumed at the await on main: {message:?}");
    assert_eq!(message, "the disk is on fire");

    // The thread survived: with every thread busy again, it is one of them.
    let (gate, tasks) = gated_jobs(&pool, MAX_THREADS);
    println!("after panic:  {:?}", pool.stats());
    let ids = release(&gate, tasks);
    println!("              the two busy threads were {ids:?}");
    assert!(
        ids.contains(&panicked_on),
        "the panicked thread was replaced"
    );

    // Wind down: `shutdown` waits for queued work and lets the idle threads exit.
    // (Left alone, they would exit by themselves after IDLE_TIMEOUT.)
    pool.shutdown(DEADLINE)?;
    let end = pool.stats();
    println!("shutdown:     {end:?}");
    assert_eq!(end.threads_alive, 0, "threads alive after shutdown");
    Ok(())
}
