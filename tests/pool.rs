//! Integration tests for the blocking pool: `aopen::{Pool, PoolBuilder, PoolStats,
//! unblock}`.
//!
//! Jobs that must stay running while the test looks at the pool block on a [`Gate`]
//! the test opens; "the pool reached state X" is a bounded polling loop that reports
//! the pool's stats when it gives up. No sleep stands in for synchronisation, and no
//! assertion depends on how fast the machine is.
//!
//! The global pool's environment variables are tested in child processes: the test
//! re-executes its own binary with `--exact <test>` and `AOPEN_TEST_CHILD=<mode>`, and
//! the same test function, seeing the variable, plays the child.

#[path = "support/common.rs"]
mod common;

use std::future::Future;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use aopen::pool::{parse_env_value, DESCRIPTOR_BUDGET_ENV, MAX_THREADS_ENV};
use aopen::{block_on, BlockingTask, Pool, PoolStats};
use common::{drop_flag, panic_message, rerun_test, threads_named, DropFlag};

/// How long a bounded wait may take before the test calls the pool stuck.
const DEADLINE: Duration = Duration::from_secs(10);

/// An idle timeout no test outlives: threads only go when a test makes them.
const FOREVER: Duration = Duration::from_secs(3600);

/// The variable that tells a re-executed test binary it plays the child.
const CHILD_ENV: &str = "AOPEN_TEST_CHILD";

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

/// A gate jobs wait at until the test opens it. Opening is permanent; a gate dropped
/// while closed opens itself, so a failing test never leaves pool threads stuck.
#[derive(Clone, Default)]
struct Gate {
    inner: Arc<GateInner>,
}

#[derive(Default)]
struct GateInner {
    open: Mutex<bool>,
    opened: Condvar,
    /// Jobs that reached the gate (running, waiting or passed).
    arrived: AtomicUsize,
}

impl Gate {
    /// Called by a job: counts itself as arrived, then waits until the gate opens.
    fn wait(&self) {
        self.inner.arrived.fetch_add(1, Ordering::SeqCst);
        let mut open = self.inner.open.lock().unwrap();
        while !*open {
            open = self.inner.opened.wait(open).unwrap();
        }
    }

    fn open(&self) {
        *self.inner.open.lock().unwrap() = true;
        self.inner.opened.notify_all();
    }

    fn arrived(&self) -> usize {
        self.inner.arrived.load(Ordering::SeqCst)
    }

    /// A guard that opens the gate when the test ends, failed or not.
    fn open_on_drop(&self) -> OpenOnDrop {
        OpenOnDrop(self.clone())
    }
}

struct OpenOnDrop(Gate);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// Polls `done` until it holds or [`DEADLINE`] passes; then fails with `state()`.
fn wait_for(what: &str, mut done: impl FnMut() -> bool, state: impl Fn() -> String) {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > DEADLINE {
            panic!(
                "gave up after {DEADLINE:?} waiting for {what}; state: {}",
                state()
            );
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// Runs `fut` to completion on a helper thread, failing the test (with the pool's
/// stats) if it takes longer than [`DEADLINE`]: a lost wake-up or a dead pool shows
/// up as a failure, not a hang. A panic in `fut` is passed on.
fn block_on_bounded<F>(pool: &Pool, fut: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    block_on_within(fut, || format!("{:?}", pool.stats()))
}

/// Like [`block_on_bounded`], reporting `state()` on a time-out.
fn block_on_within<F>(fut: F, state: impl Fn() -> String) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        let _ = tx.send(block_on(fut));
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Err(payload) => panic::resume_unwind(payload),
            Ok(()) => unreachable!("the helper thread ended without sending"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!(
                "a pool job did not complete within {DEADLINE:?}; state: {}",
                state()
            )
        }
    }
}

/// Marks result `index` as seen in `seen`; fails if it was seen before.
fn mark(seen: &[AtomicBool], index: usize) {
    assert!(
        !seen[index].swap(true, Ordering::SeqCst),
        "result {index} came back twice"
    );
}

fn assert_all_seen(seen: &[AtomicBool]) {
    let missing: Vec<usize> = seen
        .iter()
        .enumerate()
        .filter(|(_, bit)| !bit.load(Ordering::SeqCst))
        .map(|(index, _)| index)
        .take(10)
        .collect();
    assert!(
        missing.is_empty(),
        "results never came back: {missing:?}..."
    );
}

/// The numbers in `text`, in order.
fn numbers_in(text: &str) -> Vec<u64> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .filter_map(|part| part.parse().ok())
        .collect()
}

// ---------------------------------------------------------------------------------
// Panics
// ---------------------------------------------------------------------------------

#[test]
fn a_panic_in_a_job_resumes_at_the_await_and_the_thread_survives() {
    let pool = Pool::builder()
        .max_threads(1)
        .idle_timeout(FOREVER)
        .thread_name("aopen-t-panic")
        .build()
        .unwrap();
    let before: ThreadId = block_on_bounded(&pool, pool.unblock(|| thread::current().id()));

    let task: BlockingTask<u32> = pool.unblock(|| panic!("boom"));
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| block_on(task)));
    let payload = outcome.expect_err("the job's panic must resume at the await");
    assert_eq!(panic_message(&*payload), "boom");

    // A formatted panic (a `String` payload) comes through as well.
    let task: BlockingTask<u32> = pool.unblock(|| panic!("boom {}", 2));
    let payload = panic::catch_unwind(AssertUnwindSafe(|| block_on(task))).unwrap_err();
    assert_eq!(panic_message(&*payload), "boom 2");

    // The same single thread runs the next jobs: it survived both panics.
    let after = block_on_bounded(&pool, pool.unblock(|| thread::current().id()));
    assert_eq!(before, after, "the pool thread was replaced after a panic");
    assert_eq!(block_on_bounded(&pool, pool.unblock(|| 40 + 2)), 42);
    let stats = pool.stats();
    assert_eq!(stats.threads_alive, 1, "{stats:?}");
    assert_eq!(threads_named("aopen-t-panic"), 1);
    wait_for(
        "the pool to be idle",
        || pool.stats().threads_busy == 0,
        || format!("{:?}", pool.stats()),
    );
}

#[test]
fn a_panic_in_a_global_job_resumes_at_the_await() {
    let task: BlockingTask<()> = aopen::unblock(|| panic!("global boom"));
    let payload = panic::catch_unwind(AssertUnwindSafe(|| block_on(task))).unwrap_err();
    assert_eq!(panic_message(&*payload), "global boom");
    assert_eq!(block_on(aopen::unblock(|| 7)), 7);
}

/// A result dropped on the pool thread (its task was dropped while the job ran) runs
/// user code there; if that code panics, the thread must still count correctly and
/// the pool must keep running jobs.
#[test]
fn a_panic_dropping_an_abandoned_result_does_not_kill_the_pool() {
    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            panic!("PanicOnDrop dropped");
        }
    }

    let pool = Pool::builder()
        .max_threads(1)
        .idle_timeout(FOREVER)
        .thread_name("aopen-t-pdrop")
        .build()
        .unwrap();
    let gate = Gate::default();
    let _guard = gate.open_on_drop();
    let task = pool.unblock({
        let gate = gate.clone();
        move || {
            gate.wait();
            PanicOnDrop
        }
    });
    wait_for(
        "the job to start",
        || gate.arrived() == 1,
        || format!("{:?}", pool.stats()),
    );
    drop(task); // abandoned while running: the result is dropped on the pool thread
    gate.open();

    assert_eq!(block_on_bounded(&pool, pool.unblock(|| 5)), 5);
    wait_for(
        "the pool's counts to settle",
        || {
            let stats = pool.stats();
            stats.threads_busy == 0 && stats.threads_alive <= 1
        },
        || format!("{:?}", pool.stats()),
    );
    pool.shutdown(DEADLINE)
        .expect("a pool whose result drop panicked must still shut down");
}

// ---------------------------------------------------------------------------------
// Storms
// ---------------------------------------------------------------------------------

const STORM_JOBS: usize = 100_000;

#[test]
fn a_storm_of_jobs_from_many_threads_returns_every_result_once() {
    const SUBMITTERS: usize = 4;
    let pool = Pool::builder()
        .max_threads(8)
        .thread_name("aopen-t-storm")
        .build()
        .unwrap();
    let seen: Arc<Vec<AtomicBool>> =
        Arc::new((0..STORM_JOBS).map(|_| AtomicBool::new(false)).collect());
    let start = Arc::new(std::sync::Barrier::new(SUBMITTERS));
    let submitters: Vec<_> = (0..SUBMITTERS)
        .map(|s| {
            let pool = pool.clone();
            let seen = Arc::clone(&seen);
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                let tasks: Vec<BlockingTask<usize>> = (s..STORM_JOBS)
                    .step_by(SUBMITTERS)
                    .map(|index| pool.unblock(move || index))
                    .collect();
                for task in tasks {
                    mark(&seen, block_on(task));
                }
            })
        })
        .collect();
    for submitter in submitters {
        submitter.join().expect("a submitter failed");
    }
    assert_all_seen(&seen);
    let stats = pool.stats();
    assert_eq!(stats.jobs_queued, 0, "{stats:?}");
    assert!(stats.threads_alive <= 8, "{stats:?}");
}

#[test]
fn a_storm_of_jobs_submitted_from_inside_jobs_returns_every_result_once() {
    // Half the results come from outer jobs submitted by outside threads, the other
    // half from inner jobs each outer job submits from its pool thread (they go to
    // that thread's own deque, where others steal them). The caller awaits both,
    // outside the pool, so no pool thread ever blocks on another job.
    const SUBMITTERS: usize = 2;
    const OUTER: usize = STORM_JOBS / 2;
    let pool = Pool::builder()
        .max_threads(4)
        .thread_name("aopen-t-nest")
        .build()
        .unwrap();
    let seen: Arc<Vec<AtomicBool>> =
        Arc::new((0..STORM_JOBS).map(|_| AtomicBool::new(false)).collect());
    let submitters: Vec<_> = (0..SUBMITTERS)
        .map(|s| {
            let pool = pool.clone();
            let seen = Arc::clone(&seen);
            thread::spawn(move || {
                let tasks: Vec<_> = (s..OUTER)
                    .step_by(SUBMITTERS)
                    .map(|outer| {
                        let inner_pool = pool.clone();
                        pool.unblock(move || {
                            let inner = inner_pool.unblock(move || OUTER + outer);
                            (outer, inner)
                        })
                    })
                    .collect();
                for task in tasks {
                    let (outer, inner) = block_on(task);
                    mark(&seen, outer);
                    mark(&seen, block_on(inner));
                }
            })
        })
        .collect();
    for submitter in submitters {
        submitter.join().expect("a submitter failed");
    }
    assert_all_seen(&seen);
    assert_eq!(pool.stats().jobs_queued, 0, "{:?}", pool.stats());
}

// ---------------------------------------------------------------------------------
// Threads
// ---------------------------------------------------------------------------------

#[test]
fn threads_never_exceed_max_threads() {
    const MAX: usize = 4;
    const JOBS: usize = 64;
    const NAME: &str = "aopen-t-max";
    let pool = Pool::builder()
        .max_threads(MAX)
        .idle_timeout(FOREVER)
        .thread_name(NAME)
        .build()
        .unwrap();
    let gate = Gate::default();
    let _guard = gate.open_on_drop();
    let concurrency = Concurrency::default();
    let tasks: Vec<BlockingTask<usize>> = (0..JOBS)
        .map(|index| {
            let (gate, concurrency) = (gate.clone(), concurrency.clone());
            pool.unblock(move || {
                concurrency.run(|| gate.wait());
                index
            })
        })
        .collect();

    wait_for(
        "max_threads jobs to be held at the gate",
        || gate.arrived() >= MAX,
        || format!("arrived {}, {:?}", gate.arrived(), pool.stats()),
    );
    // Every thread the pool may have is held; nothing else can start.
    let stats = pool.stats();
    assert!(stats.threads_alive <= MAX, "{stats:?}");
    assert_eq!(stats.threads_busy, MAX, "{stats:?}");
    assert_eq!(stats.jobs_queued, JOBS - MAX, "{stats:?}");
    assert_eq!(
        gate.arrived(),
        MAX,
        "more jobs started than threads allowed"
    );
    let named = threads_named(NAME);
    assert!(named <= MAX, "{named} OS threads named {NAME} (max {MAX})");
    assert_eq!(named, MAX, "the held jobs run on threads named {NAME}");

    gate.open();
    let results: Vec<usize> = tasks
        .into_iter()
        .map(|task| block_on_bounded(&pool, task))
        .collect();
    assert_eq!(results, (0..JOBS).collect::<Vec<_>>());
    assert!(concurrency.most() <= MAX);
    assert!(pool.stats().threads_alive <= MAX, "{:?}", pool.stats());
    assert!(threads_named(NAME) <= MAX);
}

/// Keeps this thread computing for `time`: spinning on the clock, no system call
/// that sleeps (state `R` throughout). Returns how many rounds it spun.
fn compute_for(time: Duration) -> u64 {
    let start = Instant::now();
    let mut spins = 0u64;
    while start.elapsed() < time {
        spins = std::hint::black_box(spins + 1);
    }
    spins
}

/// Counts the jobs that run at once, and the most that ever did.
#[derive(Clone, Default)]
struct Concurrency {
    running: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

impl Concurrency {
    /// Runs `job`, counted as running meanwhile.
    fn run<T>(&self, job: impl FnOnce() -> T) -> T {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        let output = job();
        self.running.fetch_sub(1, Ordering::SeqCst);
        output
    }

    /// Queues `count` runs of `job` on `pool`, each counted while it runs.
    fn queue<T: Send + 'static>(
        &self,
        pool: &Pool,
        count: usize,
        job: impl Fn() -> T + Clone + Send + 'static,
    ) -> Vec<BlockingTask<T>> {
        (0..count)
            .map(|_| {
                let (concurrency, job) = (self.clone(), job.clone());
                pool.unblock(move || concurrency.run(job))
            })
            .collect()
    }

    fn most(&self) -> usize {
        self.most.load(Ordering::SeqCst)
    }
}

/// Threads the pool starts as soon as work waits: one per core, at least 2, at most
/// `max_threads` (the watcher decides about more).
fn eager_threads(max_threads: usize) -> usize {
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    cores.max(2).min(max_threads)
}

/// Queues `jobs` jobs on `pool` that each wait at one barrier for all the others and
/// then return their index: they can only finish once all of them run at once.
fn meet_at_a_barrier(pool: &Pool, jobs: usize) -> Vec<BlockingTask<usize>> {
    let barrier = Arc::new(std::sync::Barrier::new(jobs));
    (0..jobs)
        .map(|index| {
            let barrier = barrier.clone();
            pool.unblock(move || {
                barrier.wait();
                index
            })
        })
        .collect()
}

#[test]
fn the_pool_grows_past_one_thread_per_core_while_its_threads_sleep() {
    // Every job waits at a barrier for all the others, so they can only finish if
    // all of them run at once: more threads than cores. Without a watcher that
    // counts sleeping threads, the pool would stop at one thread per core and this
    // would never finish.
    const NAME: &str = "grow-test";
    let max = eager_threads(usize::MAX) + 4;
    let pool = Pool::builder()
        .max_threads(max)
        .thread_name(NAME)
        .build()
        .unwrap();
    let jobs = max;
    let tasks = meet_at_a_barrier(&pool, jobs);
    for (index, task) in tasks.into_iter().enumerate() {
        assert_eq!(block_on_bounded(&pool, task), index);
    }
    let named = threads_named(NAME);
    assert!(named <= max, "{named} threads for max_threads {max}");
    // The watcher is a pool thread like the others: shutdown waits for it too (its
    // bookkeeping; the OS thread ends a moment later).
    pool.shutdown(DEADLINE).unwrap();
    let watcher = format!("{NAME}-watch");
    wait_for(
        "the workers and the watcher to exit",
        || threads_named(NAME) == 0 && threads_named(&watcher) == 0,
        || {
            format!(
                "{} workers, {} watchers",
                threads_named(NAME),
                threads_named(&watcher)
            )
        },
    );
}

// Not on Windows (tests marked `cfg(not(windows))`): there the watcher judges threads
// by CPU clocks that advance in clock ticks (15.6 ms; under Wine, Linux's 10 ms),
// over windows of four ticks, so naps shorter than that do not grow the pool, and
// on a loaded machine a preempted computation can look asleep: the tests that bound
// growth for computations and the short-nap tests would only measure the host's
// load. That sleeping jobs grow the pool, and jobs waiting for each other meet, is
// tested there.
#[cfg(not(windows))]
#[test]
fn sleeping_jobs_shorter_than_the_watchers_longest_tick_still_grow_the_pool() {
    // Short computations first: while they keep every thread busy the watcher looks
    // and finds nothing to do, so it looks less and less often (up to every 2 ms).
    // Then jobs that each sleep 1 ms: at that pace no look sees a thread on the same
    // job as the look before, yet every thread spends its time asleep. Judged by one
    // job at a time, the pool stayed at one thread per core: 300 sleeps of 1 ms on 2
    // threads (seen in the bench, where one slow-open repetition in a few dozen took
    // a second instead of 40 ms). Two looks in a row that find a thread asleep in a
    // job count, whatever the jobs.
    assert_naps_overlap(true, 400, 300, Duration::from_millis(1));
}

#[cfg(not(windows))]
#[test]
fn jobs_that_each_sleep_a_tenth_of_a_millisecond_grow_the_pool() {
    // Each job sleeps 0.1 ms, less than the watcher's shortest tick, so no look sees
    // a thread on the job it was on at the look before; yet the threads are asleep
    // at nearly every look. (An NFS server that answers each `stat` in 0.1 ms looks
    // like this.) Two looks in a row that find a thread asleep in a job are enough:
    // judged by one job at a time, these 2,000 sleeps ran two at a time (this test
    // took 0.27 s instead of 0.12 s).
    assert_naps_overlap(true, 0, 2000, Duration::from_micros(100));
}

/// Queues `computations` jobs that compute for 50 µs, then `naps` jobs that sleep for
/// `nap`, on a pool of up to 32 threads (with or without the sleep census), and
/// checks that more of the naps ran at once than twice the threads the pool starts
/// eagerly: the watcher grew the pool.
fn assert_naps_overlap(census: bool, computations: usize, naps: usize, nap: Duration) {
    let max = 32;
    let eager = eager_threads(max);
    let pool = Pool::builder()
        .max_threads(max)
        .sleep_census(census)
        .build()
        .unwrap();
    let napping = Concurrency::default();
    let mut tasks: Vec<_> = (0..computations)
        .map(|_| {
            pool.unblock(|| {
                compute_for(Duration::from_micros(50));
            })
        })
        .collect();
    tasks.extend(napping.queue(&pool, naps, move || thread::sleep(nap)));
    for task in tasks {
        block_on_bounded(&pool, task);
    }
    let most = napping.most();
    assert!(
        most > 2 * eager,
        "at most {most} of the {nap:?} naps ran at once ({eager} threads start eagerly, \
         max_threads {max})"
    );
}

#[test]
fn without_the_sleep_census_slow_jobs_still_overlap() {
    // The fallback of systems without `/proc` (forced here): a thread's state is
    // unknown, and a job that keeps its thread for 2 ms counts as stuck. Jobs that
    // sleep 5 ms (a slow mount) still overlap. Treating unknown as "never stuck"
    // leaves them at one thread per core.
    assert_naps_overlap(false, 0, 600, Duration::from_millis(5));
}

#[test]
fn without_the_sleep_census_jobs_waiting_for_each_other_still_meet() {
    // Every job waits at a barrier for all the others: they only finish once all of
    // them run at once, so the fallback must grow the pool to `max_threads`.
    let max = eager_threads(usize::MAX) + 6;
    let pool = Pool::builder()
        .max_threads(max)
        .sleep_census(false)
        .build()
        .unwrap();
    let tasks = meet_at_a_barrier(&pool, max);
    for (index, task) in tasks.into_iter().enumerate() {
        assert_eq!(block_on_bounded(&pool, task), index);
    }
}

#[cfg(not(windows))]
#[test]
fn without_the_sleep_census_short_jobs_do_not_grow_the_pool_to_its_cap() {
    // Unknown means unknown: short computations, whose threads' states cannot be
    // read from `/proc`, do not look asleep to the CPU-clock census while the
    // process keeps its cores busy. (Counting an unreadable thread as asleep, as the
    // watcher once did, grows this pool to its cap of 32 within milliseconds, every
    // time.) The CPU clock cannot tell a thread asleep from one preempted by *other*
    // processes (see `CpuClocks` in `pool/watch.rs`), so on a machine loaded many
    // times over by them one attempt can fail: the rule must hold in one of three.
    const ATTEMPTS: usize = 3;
    let max = 32;
    let mut seen = Vec::new();
    for _ in 0..ATTEMPTS {
        let pool = Pool::builder()
            .max_threads(max)
            .sleep_census(false)
            .build()
            .unwrap();
        let concurrency = Concurrency::default();
        let tasks = concurrency.queue(&pool, 4000, || compute_for(Duration::from_micros(50)));
        for task in tasks {
            block_on_bounded(&pool, task);
        }
        seen.push(concurrency.most());
        if concurrency.most() <= max / 2 {
            return;
        }
    }
    panic!("{seen:?} short computations ran at once without the census (cap {max}), in {ATTEMPTS} attempts");
}

#[cfg(not(windows))]
#[test]
fn jobs_that_keep_a_core_busy_get_one_thread_per_core() {
    // Jobs that compute (state R, never asleep in the kernel) gain nothing from more
    // threads than cores, so the pool does not start more even though jobs wait.
    const JOBS: usize = 8;
    let max = 16;
    let eager = eager_threads(max);
    let pool = Pool::builder().max_threads(max).build().unwrap();
    let concurrency = Concurrency::default();
    let tasks = concurrency.queue(&pool, JOBS, || compute_for(Duration::from_millis(25)));
    for task in tasks {
        assert!(block_on_bounded(&pool, task) > 0);
    }
    let most = concurrency.most();
    assert!(
        most <= eager,
        "{most} computing jobs ran at once; one thread per core would be {eager}"
    );
    assert!(pool.stats().threads_alive <= eager, "{:?}", pool.stats());
}

/// A fair lock: served in the order asked (a ticket each), so no waiter is starved
/// for longer than the holders before it take. Waiters sleep on a condition
/// variable, a futex wait.
#[derive(Default)]
struct TicketLock {
    /// The next ticket to hand out, and the ticket being served.
    tickets: Mutex<(u64, u64)>,
    turn: Condvar,
}

impl TicketLock {
    fn with<T>(&self, critical: impl FnOnce() -> T) -> T {
        let mut tickets = self.tickets.lock().unwrap();
        let mine = tickets.0;
        tickets.0 += 1;
        while tickets.1 != mine {
            tickets = self.turn.wait(tickets).unwrap();
        }
        drop(tickets);
        let result = critical();
        self.tickets.lock().unwrap().1 += 1;
        self.turn.notify_all();
        result
    }
}

// Linux only: elsewhere no census tells a wait for a lock from a sleep in the kernel.
#[cfg(target_os = "linux")]
#[test]
fn jobs_that_wait_a_moment_for_a_lock_do_not_grow_the_pool() {
    // Each job computes for a moment holding one shared (fair) lock, so while one
    // thread holds it the others sleep in a futex wait, at look after look, each
    // for a moment. Those are not sleeps a thread would help with (every new thread
    // would wait for the same lock): counted as asleep, as the census did before it
    // told the two apart, they grew this pool to all 32 threads.
    const JOBS: usize = 600;
    let max = 32;
    let eager = eager_threads(max);
    let pool = Pool::builder().max_threads(max).build().unwrap();
    let lock = Arc::new(TicketLock::default());
    let tasks: Vec<_> = (0..JOBS)
        .map(|_| {
            let lock = lock.clone();
            pool.unblock(move || lock.with(|| compute_for(Duration::from_micros(300))))
        })
        .collect();
    let mut peak = 0;
    for task in tasks {
        assert!(block_on_bounded(&pool, task) > 0);
        peak = peak.max(pool.stats().threads_alive);
    }
    assert!(
        peak <= eager,
        "jobs waiting a moment for one lock grew the pool to {peak} threads (one per core: {eager})"
    );
}

#[test]
fn a_job_queued_behind_long_computations_gets_a_thread() {
    // Every eager thread computes, and only the job queued behind them can tell
    // them to stop. More threads than cores would not make the computations faster,
    // but once they have run for a while (LONG_JOB, 50 ms) the queued job must get
    // a thread of its own instead of waiting for them to end.
    const GIVE_UP: Duration = Duration::from_secs(5);
    let max = 8;
    let eager = eager_threads(max);
    let pool = Pool::builder().max_threads(max).build().unwrap();
    let released = Arc::new(AtomicBool::new(false));
    let spinners: Vec<_> = (0..eager)
        .map(|_| {
            let released = released.clone();
            pool.unblock(move || {
                let start = Instant::now();
                while !released.load(Ordering::SeqCst) {
                    if start.elapsed() > GIVE_UP {
                        return false;
                    }
                    std::hint::spin_loop();
                }
                true
            })
        })
        .collect();
    let release = {
        let released = released.clone();
        pool.unblock(move || released.store(true, Ordering::SeqCst))
    };
    block_on_bounded(&pool, release);
    for spinner in spinners {
        assert!(
            block_on_bounded(&pool, spinner),
            "the queued job ran only after the computations gave up"
        );
    }
}

#[test]
fn a_dropped_pool_still_grows_to_finish_its_queue() {
    // Jobs that can only finish together, queued on a pool whose last handle is
    // dropped at once: the queue must still be run, so the pool must still grow
    // past one thread per core for it.
    let max = eager_threads(usize::MAX) + 2;
    let pool = Pool::builder().max_threads(max).build().unwrap();
    let tasks = meet_at_a_barrier(&pool, max);
    drop(pool);
    for (index, task) in tasks.into_iter().enumerate() {
        let answer = block_on_within(task, || "the dropped pool stranded its queue".to_owned());
        assert_eq!(answer, index);
    }
}

#[cfg(not(windows))]
#[test]
fn long_computations_share_the_cores_without_flooding_them() {
    // Jobs that each compute for longer than LONG_JOB (50 ms): the pool may add
    // threads so that queued jobs do not wait for whole runs, but no more than two
    // per core compute at once. (Counting a long job again at every tick grew the
    // pool to its cap within tens of milliseconds.)
    const JOBS: usize = 10;
    let max = 32;
    let eager = eager_threads(max);
    let pool = Pool::builder().max_threads(max).build().unwrap();
    let concurrency = Concurrency::default();
    let tasks = concurrency.queue(&pool, JOBS, || compute_for(Duration::from_millis(80)));
    for task in tasks {
        block_on_bounded(&pool, task);
    }
    let most = concurrency.most();
    assert!(
        most <= 2 * eager,
        "{most} computing jobs ran at once; at most two per core ({}) may",
        2 * eager
    );
}

#[cfg(not(windows))]
#[test]
fn a_sleeping_job_is_answered_with_threads_once() {
    // One job sleeps for a while; short computations keep every other thread busy.
    // The sleeper is worth two more threads (they keep the queue moving), and then
    // nothing more: counting it again at every look would grow the pool to its cap
    // while the computations gain nothing from more threads.
    const SHORT_JOBS: usize = 300;
    let max = 32;
    let eager = eager_threads(max);
    let pool = Pool::builder().max_threads(max).build().unwrap();
    // The threads that ran a job: at least as many as were ever alive and took
    // work. Counted without a lock (a contended lock puts threads to sleep, which
    // the watcher would rightly count), and not with `stats()` inside the jobs (its
    // census reads `/proc` for every busy thread).
    thread_local!(static COUNTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
    let ran_on = Arc::new(AtomicUsize::new(0));
    let sleeper = pool.unblock(|| thread::sleep(Duration::from_millis(400)));
    let tasks: Vec<_> = (0..SHORT_JOBS)
        .map(|_| {
            let ran_on = ran_on.clone();
            pool.unblock(move || {
                if !COUNTED.with(|counted| counted.replace(true)) {
                    ran_on.fetch_add(1, Ordering::SeqCst);
                }
                compute_for(Duration::from_millis(2));
            })
        })
        .collect();
    for task in tasks {
        block_on_bounded(&pool, task);
    }
    block_on_bounded(&pool, sleeper);
    // The sleeper's thread ran no short job while it slept (it may have after).
    let most = ran_on.load(Ordering::SeqCst);
    // Two for the sleeper, and one the long-job rule may add on a loaded machine,
    // where a 2 ms computation preempted for long enough keeps its thread for
    // LONG_JOB of wall time. Counting the sleeper at every look reaches the cap.
    let allowed = eager + 2 + 1;
    assert!(
        most <= allowed,
        "{most} threads for one sleeper and short computations; {allowed} expected at most"
    );
}

#[test]
fn idle_threads_retire_after_idle_timeout() {
    const NAME: &str = "aopen-t-idle";
    let pool = Pool::builder()
        .max_threads(3)
        .idle_timeout(Duration::from_millis(50))
        .thread_name(NAME)
        .build()
        .unwrap();
    // Hold three jobs at once so that three threads exist.
    let gate = Gate::default();
    let _guard = gate.open_on_drop();
    let tasks: Vec<_> = (0..3)
        .map(|index| {
            let gate = gate.clone();
            pool.unblock(move || {
                gate.wait();
                index
            })
        })
        .collect();
    wait_for(
        "three threads",
        || gate.arrived() == 3,
        || format!("{:?}", pool.stats()),
    );
    assert_eq!(pool.stats().threads_alive, 3);
    gate.open();
    for (index, task) in tasks.into_iter().enumerate() {
        assert_eq!(block_on_bounded(&pool, task), index);
    }

    // The handle is alive, so only the idle timeout can make them go.
    wait_for(
        "idle threads to retire",
        || pool.stats().threads_alive == 0 && threads_named(NAME) == 0,
        || {
            format!(
                "{:?}, {} OS threads named {NAME}",
                pool.stats(),
                threads_named(NAME)
            )
        },
    );
    // And the pool starts threads again for new work.
    assert_eq!(block_on_bounded(&pool, pool.unblock(|| 9)), 9);
}

#[test]
fn dropping_the_last_handle_finishes_queued_work_then_threads_exit() {
    const NAME: &str = "aopen-t-drop";
    let pool = Pool::builder()
        .max_threads(2)
        .idle_timeout(FOREVER)
        .thread_name(NAME)
        .build()
        .unwrap();
    let gate = Gate::default();
    let _guard = gate.open_on_drop();
    let tasks: Vec<_> = (0..10)
        .map(|index| {
            let gate = gate.clone();
            pool.unblock(move || {
                gate.wait();
                index
            })
        })
        .collect();
    wait_for(
        "both threads busy",
        || gate.arrived() == 2,
        || format!("{:?}", pool.stats()),
    );
    drop(pool);
    gate.open();
    let results: Vec<usize> = tasks
        .into_iter()
        .map(|task| {
            block_on_within(task, || {
                format!("{} threads named {NAME}", threads_named(NAME))
            })
        })
        .collect();
    assert_eq!(results, (0..10).collect::<Vec<_>>());
    let start = Instant::now();
    while threads_named(NAME) != 0 {
        assert!(
            start.elapsed() < DEADLINE,
            "{} threads of a dropped pool still exist",
            threads_named(NAME)
        );
        thread::sleep(Duration::from_millis(2));
    }
}

// ---------------------------------------------------------------------------------
// Cancellation
// ---------------------------------------------------------------------------------

#[test]
fn dropping_the_future_before_the_job_ran_skips_it_and_drops_the_closure() {
    let pool = Pool::builder()
        .max_threads(1)
        .idle_timeout(FOREVER)
        .thread_name("aopen-t-skip")
        .build()
        .unwrap();
    let gate = Gate::default();
    let _guard = gate.open_on_drop();
    let first = pool.unblock({
        let gate = gate.clone();
        move || gate.wait()
    });
    wait_for(
        "the first job to occupy the thread",
        || gate.arrived() == 1,
        || format!("{:?}", pool.stats()),
    );

    let ran = Arc::new(AtomicBool::new(false));
    let (dropped, guard) = drop_flag();
    let skipped = pool.unblock({
        let ran = Arc::clone(&ran);
        move || {
            let _guard = guard;
            ran.store(true, Ordering::SeqCst);
        }
    });
    assert!(!dropped.load(Ordering::SeqCst));
    drop(skipped);
    // The closure (and what it owns: a file, say) is dropped on the pool, not on
    // this thread (rule 4); the pool's one thread is busy, so not yet.
    assert!(
        !dropped.load(Ordering::SeqCst),
        "the skipped job's closure was dropped on the dropping thread"
    );

    gate.open();
    wait_for(
        "the skipped job's closure to be dropped on the pool",
        || dropped.load(Ordering::SeqCst),
        || format!("{:?}", pool.stats()),
    );
    // The queue is FIFO: the skipped job would have run before this one.
    block_on_bounded(&pool, pool.unblock(|| ()));
    block_on_bounded(&pool, first);
    assert!(
        !ran.load(Ordering::SeqCst),
        "a job whose future was dropped ran"
    );
    wait_for(
        "the queue to drain",
        || pool.stats().jobs_queued == 0,
        || format!("{:?}", pool.stats()),
    );
}

#[test]
fn dropping_the_future_while_the_job_runs_drops_its_result_on_the_pool() {
    let pool = Pool::builder()
        .max_threads(1)
        .idle_timeout(FOREVER)
        .thread_name("aopen-t-abandon")
        .build()
        .unwrap();
    let gate = Gate::default();
    let _guard = gate.open_on_drop();
    let (dropped, guard) = drop_flag();
    let dropped_on = Arc::new(Mutex::new(None::<String>));
    // Drop sets the thread name first, then the field drop sets the flag.
    struct Tracked {
        _flag: DropFlag,
        dropped_on: Arc<Mutex<Option<String>>>,
    }
    impl Drop for Tracked {
        fn drop(&mut self) {
            *self.dropped_on.lock().unwrap() = thread::current().name().map(str::to_string);
        }
    }
    let task = pool.unblock({
        let gate = gate.clone();
        let dropped_on = Arc::clone(&dropped_on);
        move || {
            gate.wait();
            Tracked {
                _flag: guard,
                dropped_on,
            }
        }
    });
    wait_for(
        "the job to start",
        || gate.arrived() == 1,
        || format!("{:?}", pool.stats()),
    );
    drop(task);
    assert!(!dropped.load(Ordering::SeqCst), "the job is still running");
    gate.open();
    wait_for(
        "the abandoned result to be dropped",
        || dropped.load(Ordering::SeqCst),
        || format!("{:?}", pool.stats()),
    );
    assert_eq!(
        dropped_on.lock().unwrap().as_deref(),
        Some("aopen-t-abandon")
    );
}

#[test]
fn dropping_a_finished_task_drops_its_result_on_the_pool() {
    // Rule 4: the job finished, nobody took the result, the task is dropped. The
    // result's Drop (here a std file's close) runs on a pool thread, not on the
    // thread that dropped the task. (Dropped in place, it ran on the test thread.)
    let pool = Pool::builder()
        .max_threads(1)
        .idle_timeout(FOREVER)
        .thread_name("aopen-t-finished")
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("held");
    std::fs::write(&path, "x").unwrap();
    let (dropped, guard) = drop_flag();
    let dropped_on = Arc::new(Mutex::new(None::<String>));
    struct Tracked {
        _flag: DropFlag,
        _file: std::fs::File,
        dropped_on: Arc<Mutex<Option<String>>>,
    }
    impl Drop for Tracked {
        fn drop(&mut self) {
            *self.dropped_on.lock().unwrap() = thread::current().name().map(str::to_string);
        }
    }
    let task = pool.unblock({
        let dropped_on = Arc::clone(&dropped_on);
        move || Tracked {
            _flag: guard,
            _file: std::fs::File::open(&path).unwrap(),
            dropped_on,
        }
    });
    // The job has run and stored its result once no thread is busy.
    wait_for(
        "the job to finish",
        || pool.stats().threads_busy == 0 && pool.stats().jobs_queued == 0,
        || format!("{:?}", pool.stats()),
    );
    drop(task);
    wait_for(
        "the untaken result to be dropped",
        || dropped.load(Ordering::SeqCst),
        || format!("{:?}", pool.stats()),
    );
    assert_eq!(
        dropped_on.lock().unwrap().as_deref(),
        Some("aopen-t-finished")
    );
}

// ---------------------------------------------------------------------------------
// Builder and environment
// ---------------------------------------------------------------------------------

fn assert_invalid_input(err: &io::Error, needles: &[&str]) {
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    let message = err.to_string();
    for needle in needles {
        assert!(
            message.contains(needle),
            "{message:?} does not mention {needle:?}"
        );
    }
}

#[test]
fn builder_rejects_bad_settings() {
    let err = Pool::builder().max_threads(0).build().unwrap_err();
    assert_invalid_input(&err, &["max_threads", "0"]);
    let err = Pool::builder().descriptor_budget(0).build().unwrap_err();
    assert_invalid_input(&err, &["descriptor_budget", "0"]);
    let err = Pool::builder().thread_name("a\0b").build().unwrap_err();
    assert_invalid_input(&err, &["thread_name"]);
}

#[test]
fn builder_settings_chain_and_take_effect() {
    let pool = Pool::builder()
        .max_threads(2)
        .idle_timeout(FOREVER)
        .descriptor_budget(5)
        .thread_name("aopen-t-set")
        .stack_size(512 * 1024)
        .build()
        .unwrap();
    assert_eq!(pool.max_threads(), 2);
    assert_eq!(pool.budget().capacity(), 5);
    assert_eq!(pool.budget().available(), 5);
    let name = block_on_bounded(
        &pool,
        pool.unblock(|| thread::current().name().map(str::to_string)),
    );
    assert_eq!(name.as_deref(), Some("aopen-t-set"));
}

#[test]
fn env_values_are_parsed_strictly() {
    assert_eq!(parse_env_value(MAX_THREADS_ENV, "12").unwrap(), 12);
    assert_eq!(parse_env_value(MAX_THREADS_ENV, " 3\n").unwrap(), 3);
    for (name, value) in [
        (MAX_THREADS_ENV, "x"),
        (MAX_THREADS_ENV, "0"),
        (MAX_THREADS_ENV, ""),
        (MAX_THREADS_ENV, "-1"),
        (MAX_THREADS_ENV, "1.5"),
        (DESCRIPTOR_BUDGET_ENV, "banana"),
        (DESCRIPTOR_BUDGET_ENV, "0"),
        (DESCRIPTOR_BUDGET_ENV, "99999999999999999999999999"),
    ] {
        let err = parse_env_value(name, value).unwrap_err();
        assert_invalid_input(&err, &[name, value]);
    }
}

/// The mode this process plays, if it is a child started by [`run_child`].
fn child_mode() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// Re-executes this test binary to run only `test`, as a child in `mode`, with the
/// aopen variables set to `env` (and nothing else inherited for them); fails unless
/// the child passed and reported that it ran.
fn run_child(test: &str, mode: &str, env: &[(&str, &str)]) {
    let mut command = rerun_test(test);
    command
        .env(CHILD_ENV, mode)
        .env_remove(MAX_THREADS_ENV)
        .env_remove(DESCRIPTOR_BUDGET_ENV);
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("re-executing the test binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "child {mode} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    let marker = format!("CHILD OK: {mode}");
    assert!(
        stdout.contains(&marker),
        "child {mode} did not run its checks:\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
}

fn child_done(mode: &str) {
    println!("CHILD OK: {mode}");
}

/// In a child whose environment holds a bad value: `build_global`, the lazily built
/// global pool, the file system functions and `unblock` all report it.
fn child_bad_env(mode: &str, variable: &str, value: &str) {
    let needles = [variable, value];
    let err = Pool::builder().build_global().unwrap_err();
    assert_invalid_input(&err, &needles);
    let err = Pool::try_global().unwrap_err();
    assert_invalid_input(&err, &needles);
    let err = block_on(aopen::fs::metadata(".")).unwrap_err();
    assert_invalid_input(&err, &needles);
    let payload = panic::catch_unwind(|| aopen::unblock(|| 1)).unwrap_err();
    let message = panic_message(&*payload);
    assert!(
        message.contains(variable) && message.contains(value),
        "unblock's panic {message:?} does not name {variable}={value}"
    );
    println!("error as reported: {err}");
    child_done(mode);
}

#[test]
fn a_bad_max_threads_variable_is_a_clear_error() {
    match child_mode().as_deref() {
        Some(mode @ "bad-max-threads") => child_bad_env(mode, MAX_THREADS_ENV, "banana"),
        Some(other) => panic!("unexpected child mode {other}"),
        None => run_child(
            "a_bad_max_threads_variable_is_a_clear_error",
            "bad-max-threads",
            &[(MAX_THREADS_ENV, "banana")],
        ),
    }
}

#[test]
fn a_zero_descriptor_budget_variable_is_a_clear_error() {
    match child_mode().as_deref() {
        Some(mode @ "zero-budget") => child_bad_env(mode, DESCRIPTOR_BUDGET_ENV, "0"),
        Some(other) => panic!("unexpected child mode {other}"),
        None => run_child(
            "a_zero_descriptor_budget_variable_is_a_clear_error",
            "zero-budget",
            &[(DESCRIPTOR_BUDGET_ENV, "0")],
        ),
    }
}

#[test]
fn build_global_twice_is_already_exists() {
    match child_mode().as_deref() {
        Some(mode @ "twice") => {
            let first = Pool::builder().max_threads(3).build_global().unwrap();
            assert!(std::ptr::eq(first, Pool::global()));
            assert_eq!(Pool::global().max_threads(), 3);
            let err = Pool::builder().max_threads(5).build_global().unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
            assert_eq!(Pool::global().max_threads(), 3, "the first pool stays");
            assert_eq!(block_on(aopen::unblock(|| 1 + 1)), 2);
            child_done(mode);
        }
        Some(mode @ "after-use") => {
            assert_eq!(block_on(aopen::unblock(|| 1 + 1)), 2);
            let err = Pool::builder().build_global().unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
            child_done(mode);
        }
        Some(other) => panic!("unexpected child mode {other}"),
        None => {
            let test = "build_global_twice_is_already_exists";
            run_child(test, "twice", &[]);
            run_child(test, "after-use", &[]);
        }
    }
}

#[test]
fn env_fills_what_build_global_left_unset_and_explicit_settings_win() {
    match child_mode().as_deref() {
        Some(mode @ "env-fills") => {
            Pool::builder().build_global().unwrap();
            assert_eq!(Pool::global().budget().capacity(), 7);
            assert_eq!(Pool::global().max_threads(), 3);
            child_done(mode);
        }
        Some(mode @ "explicit-wins") => {
            Pool::builder()
                .descriptor_budget(9)
                .max_threads(5)
                .build_global()
                .unwrap();
            assert_eq!(Pool::global().budget().capacity(), 9);
            assert_eq!(Pool::global().max_threads(), 5);
            child_done(mode);
        }
        Some(mode @ "lazy") => {
            // No build_global: the first use reads the environment too.
            assert_eq!(block_on(aopen::unblock(|| 4)), 4);
            assert_eq!(Pool::global().budget().capacity(), 7);
            assert_eq!(Pool::global().max_threads(), 3);
            child_done(mode);
        }
        Some(other) => panic!("unexpected child mode {other}"),
        None => {
            let test = "env_fills_what_build_global_left_unset_and_explicit_settings_win";
            let env = [(DESCRIPTOR_BUDGET_ENV, "7"), (MAX_THREADS_ENV, "3")];
            run_child(test, "env-fills", &env);
            run_child(test, "explicit-wins", &env);
            run_child(test, "lazy", &env);
        }
    }
}

// ---------------------------------------------------------------------------------
// Shutdown and stats
// ---------------------------------------------------------------------------------

#[test]
fn shutdown_times_out_while_jobs_run_then_succeeds() {
    const NAME: &str = "aopen-t-shut";
    let pool = Pool::builder()
        .max_threads(2)
        .idle_timeout(FOREVER)
        .thread_name(NAME)
        .build()
        .unwrap();
    let gate = Gate::default();
    let _guard = gate.open_on_drop();
    let tasks: Vec<_> = (0..5)
        .map(|index| {
            let gate = gate.clone();
            pool.unblock(move || {
                gate.wait();
                index
            })
        })
        .collect();
    wait_for(
        "two jobs running",
        || gate.arrived() == 2,
        || format!("{:?}", pool.stats()),
    );

    let timeout = Duration::from_millis(100);
    let start = Instant::now();
    let err = pool.shutdown(timeout).unwrap_err();
    assert!(start.elapsed() >= timeout, "shutdown gave up early");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    let message = err.to_string();
    assert!(
        message.contains("queued") && message.contains("running"),
        "{message:?} should say what is queued and running"
    );
    let numbers = numbers_in(&message);
    assert!(
        numbers.contains(&3) && numbers.contains(&2),
        "{message:?} should give the counts: 3 queued, 2 running"
    );

    gate.open();
    pool.shutdown(DEADLINE)
        .expect("shutdown after the jobs were released");
    let stats = pool.stats();
    assert_eq!(stats.threads_alive, 0, "{stats:?}");
    assert_eq!(stats.threads_busy, 0, "{stats:?}");
    assert_eq!(stats.jobs_queued, 0, "{stats:?}");
    for (index, task) in tasks.into_iter().enumerate() {
        assert_eq!(block_on(task), index);
    }
    wait_for(
        "the OS threads to exit",
        || threads_named(NAME) == 0,
        || format!("{} left", threads_named(NAME)),
    );
    // The pool stays usable.
    assert_eq!(block_on_bounded(&pool, pool.unblock(|| 11)), 11);
}

#[test]
fn shutdown_waits_for_descriptors_held() {
    let pool = Pool::builder()
        .max_threads(1)
        .descriptor_budget(4)
        .build()
        .unwrap();
    let permit = pool.budget().try_acquire().unwrap();
    let err = pool.shutdown(Duration::from_millis(50)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(err.to_string().contains("descriptor"), "{err}");
    drop(permit);
    pool.shutdown(DEADLINE).unwrap();
}

#[test]
fn stats_debug_prints_all_fields_on_one_line() {
    let stats = PoolStats {
        threads_alive: 11,
        threads_busy: 12,
        threads_asleep: 16,
        jobs_queued: 13,
        descriptors_held: 14,
        permit_waiters: 15,
    };
    for text in [format!("{stats:?}"), format!("{stats:#?}")] {
        assert!(!text.contains('\n'), "{text:?} spans lines");
        for field in [
            "threads_alive: 11",
            "threads_busy: 12",
            "threads_asleep: 16",
            "jobs_queued: 13",
            "descriptors_held: 14",
            "permit_waiters: 15",
        ] {
            assert!(text.contains(field), "{text:?} lacks {field:?}");
        }
    }
}

#[test]
fn stats_count_descriptors_and_permit_waiters() {
    let pool = Pool::builder().descriptor_budget(1).build().unwrap();
    assert_eq!(pool.stats(), PoolStats::default());
    let permit = pool.budget().try_acquire().unwrap();
    assert_eq!(pool.stats().descriptors_held, 1);
    let mut waiter = Box::pin(pool.budget().acquire());
    let waker = futures::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    assert!(waiter.as_mut().poll(&mut cx).is_pending());
    assert_eq!(pool.stats().permit_waiters, 1);
    drop(permit);
    let second = match waiter.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(permit) => permit,
        std::task::Poll::Pending => panic!("the waiter did not get the released permit"),
    };
    let stats = pool.stats();
    assert_eq!(
        (stats.descriptors_held, stats.permit_waiters),
        (1, 0),
        "{stats:?}"
    );
    drop(second);
    assert_eq!(pool.stats().descriptors_held, 0);
}

// ---------------------------------------------------------------------------------
// Runtimes
// ---------------------------------------------------------------------------------

/// A global job that reports the name of the thread it ran on.
fn pool_thread_name() -> BlockingTask<Option<String>> {
    aopen::unblock(|| thread::current().name().map(str::to_string))
}

fn assert_ran_on_pool(name: Option<String>) {
    assert_eq!(name.as_deref(), Some(aopen::pool::DEFAULT_THREAD_NAME));
}

#[test]
fn unblock_under_tokio_multi_thread() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    // Spawning the bare future proves it is `Send + 'static`.
    let handles: Vec<_> = (0..16).map(|_| rt.spawn(pool_thread_name())).collect();
    for handle in handles {
        assert_ran_on_pool(rt.block_on(handle).unwrap());
    }
    let value = rt.block_on(async { aopen::unblock(|| 3).await + aopen::unblock(|| 4).await });
    assert_eq!(value, 7);
}

#[test]
fn unblock_under_tokio_current_thread() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_ran_on_pool(rt.block_on(pool_thread_name()));
    let handle = rt.spawn(pool_thread_name());
    assert_ran_on_pool(rt.block_on(handle).unwrap());
}

#[test]
fn unblock_under_smol() {
    assert_ran_on_pool(smol::block_on(pool_thread_name()));
    let ex = smol::Executor::new();
    let task = ex.spawn(pool_thread_name());
    assert_ran_on_pool(smol::block_on(ex.run(task)));
}

#[test]
fn unblock_under_futures_executor_and_pollster() {
    assert_ran_on_pool(futures::executor::block_on(pool_thread_name()));
    assert_ran_on_pool(pollster::block_on(pool_thread_name()));
    assert_ran_on_pool(block_on(pool_thread_name()));
    let ex = aopen::LocalExecutor::new();
    let task = ex.spawn(pool_thread_name());
    assert_ran_on_pool(ex.run(task));
}

#[test]
fn a_pool_that_cannot_start_a_thread_still_runs_its_jobs() {
    // A stack no OS can map: every thread the pool tries to start is refused. With
    // no thread alive, nothing would ever take a queued job (an awaited task hung,
    // a dropped file's close never ran); so the jobs run on the thread that queued
    // them instead.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a");
    std::fs::write(&path, "x").unwrap();
    let pool = Pool::builder()
        .max_threads(2)
        .stack_size(1 << 50)
        .build()
        .unwrap();
    assert_eq!(block_on_bounded(&pool, pool.unblock(|| 7)), 7);
    let file = block_on_bounded(&pool, pool.fs().open(path)).unwrap();
    assert_eq!(pool.stats().descriptors_held, 1);
    drop(file); // queues the close
    assert_eq!(pool.stats().descriptors_held, 0, "{:?}", pool.stats());
    assert_eq!(pool.stats().threads_alive, 0);
    pool.shutdown(DEADLINE).unwrap();
}

/// A resource for lane tests: nothing to close.
struct Nothing;

impl aopen::__internals::Resource for Nothing {
    fn close(self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_busy_lane_yields_its_thread_to_work_queued_behind_it() {
    // One thread; a lane with many operations queued. After each turn of
    // LANE_BATCH operations the lane's drainer goes to the back of the shared
    // queue, so a job queued meanwhile runs before the lane is done. (Requeued on
    // the thread's own deque, which the thread takes from first, the lane kept the
    // thread until its last operation: the job saw all of them done.)
    const OPS: usize = 200;
    let pool = Pool::builder().max_threads(1).build().unwrap();
    let permit = pool.budget().try_acquire().unwrap();
    let lane = block_on_bounded(
        &pool,
        aopen::__internals::open_in_lane(&pool, permit, || Ok(Nothing)),
    )
    .unwrap();
    let (release, gate) = mpsc::channel::<()>();
    let done = Arc::new(AtomicUsize::new(0));
    // The first operation holds the only thread until the rest are queued.
    let first = lane.submit(move |_| gate.recv().unwrap());
    let ops: Vec<_> = (0..OPS)
        .map(|_| {
            let done = done.clone();
            lane.submit(move |_| {
                done.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    let seen_by_other_work = {
        let done = done.clone();
        pool.unblock(move || done.load(Ordering::SeqCst))
    };
    release.send(()).unwrap();
    let seen = block_on_bounded(&pool, seen_by_other_work);
    block_on_bounded(&pool, first);
    for op in ops {
        block_on_bounded(&pool, op);
    }
    block_on_bounded(&pool, lane.close()).unwrap();
    assert!(
        seen < OPS,
        "the job queued behind the lane ran only after all {OPS} of its operations"
    );
}

#[test]
fn threads_a_burst_started_retire_under_a_trickle_of_work() {
    // A burst grows the pool (jobs that wait for each other at a barrier need a
    // thread each); then work keeps trickling in, one short job at a time, for five
    // idle timeouts. Sleepers are woken newest first, so one or two threads take the
    // trickle and the rest sleep until they retire. Woken in turn (oldest first),
    // every thread was woken again before its idle timeout and all of them stayed.
    const BURST: usize = 12;
    const IDLE: Duration = Duration::from_millis(200);
    let pool = Pool::builder()
        .max_threads(BURST)
        .idle_timeout(IDLE)
        .build()
        .unwrap();
    let burst = meet_at_a_barrier(&pool, BURST);
    for task in burst {
        block_on_bounded(&pool, task);
    }
    assert_eq!(pool.stats().threads_alive, BURST, "{:?}", pool.stats());
    let trickle_until = Instant::now() + 5 * IDLE;
    while Instant::now() < trickle_until {
        block_on_bounded(&pool, pool.unblock(|| ()));
        // The pace of the trickle (well over BURST jobs per idle timeout), not a
        // synchronisation.
        thread::sleep(Duration::from_millis(2));
    }
    let alive = pool.stats().threads_alive;
    assert!(
        alive <= 3,
        "{alive} of the {BURST} threads of the burst are still alive under a trickle of work"
    );
}
