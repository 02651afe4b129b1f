//! The scheduler: how a job gets from a push to a thread.
//!
//! [`Inner`] is the state every [`Pool`](super::Pool) handle shares: the queues, the
//! thread bookkeeping and the condition variables. This module pushes jobs, wakes or
//! starts threads, runs the pool threads' loop (search, run, sleep, retire) and finds
//! jobs (own deque, injector, then stealing). How many threads there should be is
//! decided in `growth.rs`; this module only carries the decisions out. The pool's
//! module docs (`pool/mod.rs`) describe the hand-offs these functions keep.

#[cfg(not(loom))]
use std::cell::RefCell;
use std::time::Instant;

use super::builder::Config;
use super::growth::{self, PushAction, PushView, TakeView};
use super::job::{self, ErasedJob};
use super::queue::{Injector, Steal, Stealer, Worker};
use super::turn::Turn;
use super::watch::Progress;
use crate::budget::Budget;
use crate::sync::{
    lock, store_load_fence, thread, wait_timeout, Arc, AtomicUsize, Condvar, DynArc, HintUsize,
    Mutex, MutexGuard, Ordering,
};

/// How many times a thread that found nothing looks again (yielding in between)
/// before it goes to sleep, while no more than [`MAX_SPINNING_PER_CORE`] threads
/// per core do so. Sleeping and being woken costs a context switch on each side
/// (several microseconds); when a caller keeps jobs coming back to back (64 stats
/// in flight), the next job usually arrives within these rounds. Measured on the
/// 2-core bench machine, `stat` with 64 in flight: 4 rounds 0.23–0.35 s, 64 rounds
/// 0.16–0.20 s per 100,000 (`benches/compare.rs`). Busy-waiting (`spin_loop`) in
/// the first rounds instead of yielding was slower: with 64 stats in flight, medians
/// of 9 interleaved runs went from 168 ms to 216–237 ms, and open+close from 275 ms
/// to 333–368 ms; a yield lets the caller's thread, which may share the core, submit
/// the next job. Under loom one round: extra rounds only repeat the same loads, and
/// each yield multiplies the interleavings.
const SEARCH_ROUNDS_BEFORE_SLEEP: usize = if cfg!(loom) { 1 } else { 64 };

/// Rounds for a searching thread beyond the spinning allowance: one look, then sleep.
const SEARCH_ROUNDS_WHEN_CROWDED: usize = 1;

/// Searching threads per core that may spin before sleeping; more would only take
/// turns on the same cores. Fewer were slower: one spinner in all on 2 cores took
/// open+close with 64 in flight from 273 to 321 ms (medians of 9 interleaved runs).
const MAX_SPINNING_PER_CORE: usize = 1;

pub(super) struct Inner {
    pub(super) config: Config,
    pub(super) budget: Budget,
    /// Where callers outside the pool push jobs.
    pub(super) injector: Injector<ErasedJob>,
    /// The live threads, by thread number: the stealing end of each one's own deque,
    /// and what the watcher sees of its progress.
    pub(super) stealers: Mutex<Vec<ThreadEntry>>,
    /// Jobs in any queue (injector or a thread's deque), not yet popped.
    pub(super) queued: AtomicUsize,
    /// Threads awake and looking for a job (including ones chosen to wake up that
    /// have not run yet). While this is non-zero, pushers wake nobody.
    pub(super) searching: AtomicUsize,
    /// Threads running a job.
    pub(super) busy: AtomicUsize,
    /// Of the queued jobs, the optional ones not started yet (see
    /// [`Pool::unblock_optional`](super::Pool::unblock_optional)). A hint for the
    /// growth rule, not a synchronisation.
    pub(super) optional_queued: AtomicUsize,
    /// How many searching threads may spin before sleeping (per-core allowance).
    pub(super) max_spinning: usize,
    /// Threads started as soon as work waits (one per core, at least 2, at most
    /// `max_threads`); past these, only the watcher starts threads (see `watch.rs`).
    pub(super) eager_threads: usize,
    /// The thread bookkeeping that must change together; see [`Sleep`].
    pub(super) sleep: Mutex<Sleep>,
    /// [`Sleep::unwoken`] as of its last change, readable without the lock: a
    /// thread that takes a job reads it to skip the lock when nobody sleeps (cached
    /// work), see [`growth::on_take`]. A hint: a stale value costs one needless
    /// lock or one wake-up left to the next taker, never a lost job.
    pub(super) unwoken_hint: DynArc<HintUsize>,
    /// The watcher waits here (for demand, or for its next tick).
    pub(super) watch: Condvar,
    /// Turns that ended in a yield between two jobs (see `turn.rs`), for its test.
    #[cfg(test)]
    pub(super) turns_ended: AtomicUsize,
    /// [`Pool`] handles alive; when it reaches zero, threads exit once idle.
    pub(super) handles: AtomicUsize,
    /// Callers of [`Pool::shutdown`] wait here for the pool to go quiet.
    pub(super) quiet: Condvar,
    /// Callers of [`Pool::shutdown`] waiting on `quiet`. Changed under the sleep
    /// lock; read without it after each job, so a busy pool with nobody shutting it
    /// down takes no lock per job.
    pub(super) shutdown_waiters: AtomicUsize,
}

/// A live pool thread: its number, the stealing end of its deque, its progress.
pub(super) type ThreadEntry = (usize, Stealer<ErasedJob>, DynArc<Progress>);

/// A sleeping thread, as the sleep lock sees it.
pub(super) struct Sleeper {
    /// The thread's number.
    id: usize,
    /// A wake-up was granted: the thread counts as searching already. A sleeper only
    /// leaves its wait by consuming its wake-up (or by retiring), so spurious
    /// wake-ups are harmless and no wake-up is counted twice.
    woken: bool,
    /// What it waits on.
    wake: Arc<Condvar>,
}

impl Sleep {
    /// Grants a wake-up to the newest sleeper without one. Returns whether there
    /// was one.
    pub(super) fn wake_newest(&mut self) -> bool {
        #[cfg(not(aopen_mutant = "pool_wake_oldest"))]
        let newest = self
            .sleepers
            .iter_mut()
            .rev()
            .find(|sleeper| !sleeper.woken);
        // Seeded bug for tests/pool.rs: first in, first out.
        #[cfg(aopen_mutant = "pool_wake_oldest")]
        let newest = self.sleepers.iter_mut().find(|sleeper| !sleeper.woken);
        match newest {
            Some(sleeper) => {
                sleeper.woken = true;
                sleeper.wake.notify_one();
                self.set_unwoken(self.unwoken - 1);
                true
            }
            None => false,
        }
    }

    /// Wakes every sleeper, to see that the pool retires (no wake-up granted).
    pub(super) fn wake_all_to_retire(&self) {
        for sleeper in &self.sleepers {
            sleeper.wake.notify_one();
        }
    }

    /// Takes sleeper `id` off the stack; returns whether it had been woken.
    fn leave(&mut self, id: usize) -> bool {
        let at = self
            .sleepers
            .iter()
            .rposition(|sleeper| sleeper.id == id)
            .expect("aopen: a sleeper left twice (a bug in aopen)");
        let sleeper = self.sleepers.remove(at);
        if !sleeper.woken {
            self.set_unwoken(self.unwoken - 1);
        }
        sleeper.woken
    }

    /// Changes [`unwoken`](Sleep::unwoken), and its lock-free copy with it.
    fn set_unwoken(&mut self, unwoken: usize) {
        self.unwoken = unwoken;
        self.unwoken_hint.store(unwoken, Ordering::Relaxed);
    }
}

/// Thread bookkeeping under the sleep lock.
pub(super) struct Sleep {
    /// Threads that exist: started and not yet exited.
    pub(super) alive: usize,
    /// Threads asleep, each on a condition variable of its own, oldest first. A
    /// push wakes the *newest* sleeper without a wake-up (last in, first out), so
    /// the threads a burst started and no longer needs are the ones that stay
    /// asleep and retire after `idle_timeout`; woken in turn (first in, first out)
    /// they would all stay alive under a trickle of work.
    pub(super) sleepers: Vec<Sleeper>,
    /// Sleepers with no wake-up granted yet. Changed only by `set_unwoken`.
    pub(super) unwoken: usize,
    /// The same number for readers without the lock ([`Inner::unwoken_hint`]).
    unwoken_hint: DynArc<HintUsize>,
    /// Bumped to make every sleeping thread exit (last handle dropped, or shutdown).
    pub(super) retire_epoch: u64,
    /// Number for the next thread (stealer bookkeeping).
    pub(super) next_id: usize,
    /// A watcher thread exists (see `watch.rs`).
    pub(super) watcher_running: bool,
    /// Every thread was busy when work was pushed, and the watcher has not seen the
    /// queue empty (or the pool full) since: it ticks while this is set. Only the
    /// watcher clears it, always under this lock, and on its way out.
    #[cfg_attr(loom, allow(dead_code))]
    pub(super) watch_demand: bool,
}

#[cfg(not(loom))]
thread_local! {
    /// The deque of the pool thread running on this thread, if any: jobs pushed from
    /// inside a job go here first. Keyed by the pool's address.
    static LOCAL: RefCell<Option<(usize, Worker<ErasedJob>)>> = const { RefCell::new(None) };
}

impl Inner {
    /// A pool's shared state, with no threads yet.
    pub(super) fn new(config: Config) -> Inner {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // Under loom every thread starts eagerly: the watcher's timing and `/proc`
        // are outside what a model can see (see `watch.rs`).
        let unwoken_hint = DynArc::new(HintUsize::new(0));
        let eager_threads = if cfg!(loom) {
            config.max_threads
        } else {
            cores.max(2).min(config.max_threads)
        };
        Inner {
            budget: Budget::new(config.descriptor_budget),
            config,
            injector: Injector::new(),
            stealers: Mutex::new(Vec::new()),
            queued: AtomicUsize::new(0),
            searching: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
            optional_queued: AtomicUsize::new(0),
            max_spinning: MAX_SPINNING_PER_CORE * cores,
            eager_threads,
            sleep: Mutex::new(Sleep {
                alive: 0,
                sleepers: Vec::new(),
                unwoken: 0,
                unwoken_hint: unwoken_hint.clone(),
                retire_epoch: 0,
                next_id: 0,
                watcher_running: false,
                watch_demand: false,
            }),
            unwoken_hint,
            watch: Condvar::new(),
            handles: AtomicUsize::new(1),
            quiet: Condvar::new(),
            shutdown_waiters: AtomicUsize::new(0),
            #[cfg(test)]
            turns_ended: AtomicUsize::new(0),
        }
    }
}

impl Inner {
    #[cfg(not(loom))]
    fn key(this: &Arc<Self>) -> usize {
        Arc::as_ptr(this) as *const () as usize
    }

    /// Queues `job` on the shared injector (not this thread's deque) and makes sure
    /// a thread will run it.
    pub(super) fn push_to_injector(this: &Arc<Self>, job: ErasedJob) {
        Inner::enqueue_counted(this, |_| Some(job));
    }

    /// Queues `job` (on this thread's own deque if it is one of our pool threads)
    /// and makes sure a thread will run it.
    pub(super) fn push(this: &Arc<Self>, job: ErasedJob) {
        Inner::enqueue_counted(this, |this| Inner::push_local(this, job));
    }

    /// Counts a job, makes it visible (`place` puts it on a deque, or gives it back
    /// for the injector), then hands it off to a thread.
    fn enqueue_counted(this: &Arc<Self>, place: impl FnOnce(&Arc<Self>) -> Option<ErasedJob>) {
        // Counted before it is visible: a thread that takes it subtracts after, so
        // `queued` never wraps below zero (counted after, a thief could take the job
        // and subtract first, and `jobs_queued` read 2^64 - 1 for a moment, which
        // the watcher would have answered with `max_threads` threads).
        #[cfg(not(aopen_mutant = "pool_count_after_push"))]
        this.queued.fetch_add(1, Ordering::SeqCst);
        if let Some(job) = place(this) {
            this.injector.push(job);
        }
        #[cfg(aopen_mutant = "pool_count_after_push")]
        this.queued.fetch_add(1, Ordering::SeqCst);
        // Hand-off with a thread that stops searching: we write `queued`, then read
        // `searching`; it writes `searching`, then reads `queued`.
        store_load_fence();
        Inner::notify_work(this);
    }

    /// Pushes to this thread's own deque if this is one of our pool threads; gives
    /// the job back otherwise.
    #[cfg(not(loom))]
    fn push_local(this: &Arc<Self>, job: ErasedJob) -> Option<ErasedJob> {
        let key = Inner::key(this);
        LOCAL.with(|local| match &*local.borrow() {
            Some((pool, worker)) if *pool == key => {
                worker.push(job);
                None
            }
            _ => Some(job),
        })
    }

    /// Under loom every push goes to the injector (loom threads are not OS threads,
    /// so a thread-local deque would be shared between them).
    #[cfg(loom)]
    fn push_local(_this: &Arc<Self>, job: ErasedJob) -> Option<ErasedJob> {
        Some(job)
    }

    /// Work was pushed: wake a sleeping thread or start one, unless a thread is
    /// already searching (it will find the work).
    pub(super) fn notify_work(this: &Arc<Self>) {
        if this.searching.load(Ordering::SeqCst) > 0 {
            // Checked once without the lock: the common case of a busy pool.
            return;
        }
        let mut sleep = lock(&this.sleep);
        let view = PushView {
            searching: this.searching.load(Ordering::SeqCst),
            unwoken_sleepers: sleep.unwoken,
            alive: sleep.alive,
            eager_threads: this.eager_threads,
            max_threads: this.config.max_threads,
            demand_up: sleep.watch_demand,
        };
        match growth::on_push(view) {
            PushAction::Nothing => {}
            PushAction::Wake => {
                // Someone sleeps and has no wake-up on the way: grant one. It counts
                // as searching from now on, so the next pushes wake nobody else.
                this.searching.fetch_add(1, Ordering::SeqCst);
                let woke = sleep.wake_newest();
                debug_assert!(woke, "an unwoken sleeper was counted");
            }
            PushAction::Start => Inner::start_workers(this, sleep, 1),
            // Under loom every thread is eager (see `Inner::new`): no watcher.
            #[cfg(loom)]
            PushAction::RaiseDemand => unreachable!("loom pools start every thread eagerly"),
            #[cfg(not(loom))]
            PushAction::RaiseDemand => {
                sleep.watch_demand = true;
                if sleep.watcher_running {
                    this.watch.notify_one();
                } else {
                    sleep.watcher_running = true;
                    let epoch = sleep.retire_epoch;
                    drop(sleep);
                    Inner::start_watcher(this, epoch);
                }
            }
        }
    }

    /// Rule 1 at a take (`growth::on_take`): a thread that has just taken a job, with
    /// `queued` jobs left, wakes sleepers for those no searcher is counted for. The
    /// lock is taken only if the hint says someone sleeps.
    fn wake_for_queued(this: &Arc<Self>, queued: usize) {
        let hint = this.unwoken_hint.load(Ordering::Relaxed);
        if hint == 0 || queued == 0 {
            // Nobody to wake, or nothing to wake anyone for: no lock, no more loads.
            return;
        }
        let view = |unwoken_sleepers| TakeView {
            queued,
            searching: this.searching.load(Ordering::SeqCst),
            unwoken_sleepers,
        };
        if growth::on_take(view(hint)) == 0 {
            return;
        }
        let mut sleep = lock(&this.sleep);
        for _ in 0..growth::on_take(view(sleep.unwoken)) {
            // Counted as searching before it runs, as a push's wake-up is.
            this.searching.fetch_add(1, Ordering::SeqCst);
            let woke = sleep.wake_newest();
            debug_assert!(woke, "an unwoken sleeper was counted");
        }
    }

    /// Counts `count` new threads (alive, and searching from now on) under the sleep
    /// lock, then starts them without it.
    pub(super) fn start_workers(this: &Arc<Self>, mut sleep: MutexGuard<'_, Sleep>, count: usize) {
        let first_id = sleep.next_id;
        sleep.next_id += count;
        sleep.alive += count;
        let epoch = sleep.retire_epoch;
        this.searching.fetch_add(count, Ordering::SeqCst);
        drop(sleep);
        for id in first_id..first_id + count {
            Inner::start_thread(this, id, epoch);
        }
    }

    fn start_thread(this: &Arc<Self>, id: usize, epoch: u64) {
        let inner = this.clone();
        let worker = Worker::new_fifo();
        let progress = Progress::new();
        lock(&this.stealers).push((id, worker.stealer(), progress.clone()));
        let mut builder = thread::Builder::new().name(this.config.thread_name.clone());
        if let Some(size) = this.config.stack_size {
            builder = builder.stack_size(size);
        }
        let spawned =
            builder.spawn(move || Inner::thread_main(inner, id, epoch, worker, &progress));
        if spawned.is_err() {
            // The OS refused a thread (EAGAIN, ENOMEM). Undo the bookkeeping; the job
            // stays queued for the threads that exist...
            lock(&this.stealers).retain(|(other, _, _)| *other != id);
            this.searching.fetch_sub(1, Ordering::SeqCst);
            let none_alive = {
                let mut sleep = lock(&this.sleep);
                sleep.alive -= 1;
                sleep.alive == 0
            };
            this.notify_quiet();
            // ...but if there are none, nothing would ever run it: a close queued by
            // a drop would hold its descriptor and permit, an awaited task would
            // hang. Then the jobs run here, on the thread that queued them.
            #[cfg(not(loom))]
            if none_alive {
                Inner::run_stranded(this);
            }
            #[cfg(loom)]
            let _ = none_alive;
        }
    }

    /// Runs the jobs of the injector on this thread, which is not a pool thread,
    /// because the OS refused to start any: the one case in which a pool job runs
    /// on the caller's thread (see "Caveats" in the pool's docs). Not re-entered: a
    /// job that queues another while running here leaves it to this loop.
    #[cfg(not(loom))]
    fn run_stranded(this: &Arc<Self>) {
        thread_local!(static RUNNING_STRANDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
        if RUNNING_STRANDED.with(|running| running.replace(true)) {
            return;
        }
        loop {
            let job = match this.injector.steal() {
                Steal::Success(job) => job,
                Steal::Retry => continue,
                Steal::Empty => break,
            };
            this.queued.fetch_sub(1, Ordering::SeqCst);
            this.busy.fetch_add(1, Ordering::SeqCst);
            let waiter = job.run();
            this.busy.fetch_sub(1, Ordering::SeqCst);
            this.notify_quiet();
            if let Some(waiter) = waiter {
                job::wake(waiter);
            }
        }
        RUNNING_STRANDED.with(|running| running.set(false));
    }

    /// The body of a pool thread. It starts out searching. `epoch` is the retire
    /// epoch when it was started: once that changes, the thread exits the next time
    /// it has nothing to do.
    fn thread_main(
        this: Arc<Self>,
        id: usize,
        epoch: u64,
        worker: Worker<ErasedJob>,
        progress: &Progress,
    ) {
        progress.register_current_thread();
        // What this thread sleeps on when it has nothing to do (see `Sleep`).
        let wake = Arc::new(Condvar::new());
        #[cfg(not(loom))]
        let worker = {
            let key = Inner::key(&this);
            LOCAL.with(|local| *local.borrow_mut() = Some((key, worker)));
            LocalWorker
        };
        #[cfg(loom)]
        let worker = LoomWorker(worker);
        let mut turn = Turn::starting(Instant::now());
        loop {
            // Searching.
            let mut found = None;
            let rounds = if this.searching.load(Ordering::SeqCst) <= this.max_spinning {
                SEARCH_ROUNDS_BEFORE_SLEEP
            } else {
                SEARCH_ROUNDS_WHEN_CROWDED
            };
            for _ in 0..rounds {
                found = this.find_job(&worker);
                if found.is_some() {
                    break;
                }
                thread::yield_now();
            }
            match found {
                Some(job) => {
                    this.queued.fetch_sub(1, Ordering::SeqCst);
                    this.busy.fetch_add(1, Ordering::SeqCst);
                    // Stop searching; if we were the last searcher and work is left,
                    // hand the search on so that job does not wait for us.
                    let was_last = this.searching.fetch_sub(1, Ordering::SeqCst) == 1;
                    // Hand-off with a pusher that saw us searching (see `push`).
                    store_load_fence();
                    let queued = this.queued.load(Ordering::SeqCst);
                    // More jobs wait than threads search: wake sleepers for them
                    // (a tree of wake-ups for a burst, `growth::on_take`).
                    Inner::wake_for_queued(&this, queued);
                    if was_last && queued > 0 {
                        // As a push would: wake, start a thread or raise demand
                        // (nothing if a thread woken just now searches already).
                        Inner::notify_work(&this);
                    }
                    progress.job_started();
                    let waiter = job.run();
                    progress.job_finished();
                    // Searching again *before* the waiter runs: its next push then
                    // finds us, instead of waking or starting another thread.
                    this.searching.fetch_add(1, Ordering::SeqCst);
                    this.busy.fetch_sub(1, Ordering::SeqCst);
                    this.notify_quiet();
                    if let Some(waiter) = waiter {
                        job::wake(waiter);
                    }
                    // After the wake, so a waiter woken on this core can have it.
                    #[cfg(not(aopen_mutant = "pool_never_yields"))]
                    if turn.is_over(Instant::now()) {
                        thread::yield_now();
                        #[cfg(test)]
                        this.turns_ended.fetch_add(1, Ordering::Relaxed);
                    }
                }
                None => {
                    // Still counted as searching: `sleep_until_woken` stops that only
                    // once it counts us as sleeping, so a pusher always sees one.
                    if !this.sleep_until_woken(id, epoch, &wake) {
                        break;
                    }
                    // The search yielded (and we may have slept): a new turn.
                    turn.restart(Instant::now());
                    // Woken: the waker counted us as searching already.
                }
            }
        }
        lock(&this.stealers).retain(|(other, _, _)| *other != id);
        #[cfg(not(loom))]
        LOCAL.with(|local| *local.borrow_mut() = None);
    }

    /// Something finished (a job, a thread): let a waiting [`Pool::shutdown`]
    /// re-check. A shutdown counts itself under the sleep lock and then checks, so
    /// either it sees what we finished or we see it and notify under the lock.
    pub(super) fn notify_quiet(&self) {
        // Hand-off with `shutdown`: we changed `busy`/`queued`/the budget, then read
        // `shutdown_waiters`; it writes `shutdown_waiters`, then reads those.
        store_load_fence();
        if self.shutdown_waiters.load(Ordering::SeqCst) > 0 {
            let _sleep = lock(&self.sleep);
            self.quiet.notify_all();
        }
    }

    /// Sleeps until woken (returns `true`, searching) or until it is time to exit
    /// (`false`: idle timeout, or the pool is retiring its threads). Called while
    /// searching, having found nothing.
    fn sleep_until_woken(&self, id: usize, epoch: u64, wake: &Arc<Condvar>) -> bool {
        let mut sleep = lock(&self.sleep);
        // From searching to sleeping under the lock, so a pusher always sees us as
        // one or the other (it reads `searching`, then takes this lock).
        sleep.sleepers.push(Sleeper {
            id,
            woken: false,
            wake: wake.clone(),
        });
        let unwoken = sleep.unwoken + 1;
        sleep.set_unwoken(unwoken);
        self.searching.fetch_sub(1, Ordering::SeqCst);
        // Hand-off with a pusher that saw us searching: we write `searching`, then
        // read `queued`; it writes `queued`, then reads `searching` (see `push`).
        store_load_fence();
        // Committed to sleep, but look once more: a pusher that saw us searching
        // pushed before this check, so we see its job here.
        #[cfg(not(aopen_mutant = "pool_sleep_without_recheck"))]
        if self.queued.load(Ordering::SeqCst) > 0 {
            if !sleep.leave(id) {
                // Not woken by anyone: we count ourselves searching again.
                self.searching.fetch_add(1, Ordering::SeqCst);
            }
            return true;
        }
        if sleep.retire_epoch != epoch || self.handles.load(Ordering::SeqCst) == 0 {
            if sleep.leave(id) {
                // A pusher woke us in the meantime and counted us as searching: we
                // stay for its job.
                return true;
            }
            return self.retire(sleep);
        }
        let deadline = Instant::now() + self.config.idle_timeout;
        loop {
            let woken = sleep
                .sleepers
                .iter()
                .rev()
                .find(|sleeper| sleeper.id == id)
                .is_some_and(|sleeper| sleeper.woken);
            if woken {
                // Woken by a pusher, which counted us as searching.
                sleep.leave(id);
                return true;
            }
            let now = Instant::now();
            if sleep.retire_epoch != epoch || (now >= deadline && !cfg!(loom)) {
                sleep.leave(id);
                return self.retire(sleep);
            }
            sleep = wait_timeout(wake, sleep, deadline.saturating_duration_since(now));
        }
    }

    /// Exits this thread's bookkeeping; the caller returns from `thread_main`.
    fn retire(&self, mut sleep: crate::sync::MutexGuard<'_, Sleep>) -> bool {
        sleep.alive -= 1;
        if self.shutdown_waiters.load(Ordering::SeqCst) > 0 {
            self.quiet.notify_all();
        }
        false
    }

    /// Finds a job: our own deque first, then the injector, then the other threads.
    fn find_job(&self, worker: &impl OwnDeque) -> Option<ErasedJob> {
        if let Some(job) = worker.pop() {
            return Some(job);
        }
        loop {
            match self.injector.steal() {
                Steal::Success(job) => return Some(job),
                Steal::Retry => continue,
                Steal::Empty => break,
            }
        }
        // Nothing queued in any thread's deque: a job is counted before it is
        // visible (see `enqueue_counted`), so none can be missed here, and one
        // pushed after this look is found by the next (or by
        // `sleep_until_woken`'s). Without this, each idle thread's search swept
        // every thread's deque under the stealers lock, and each steal pinned
        // crossbeam's epoch, whose collection walks every registered thread: with a
        // slow mount's 256 threads, 5 % of a walk's CPU. It comes after the
        // injector's steal, so a job counted late (the bug the order in
        // `enqueue_counted` prevents) can still be taken before it is counted: under
        // loom every push goes to the injector, and the model
        // `pool_queued_count_never_wraps` shows that bug this way.
        if self.queued.load(Ordering::SeqCst) == 0 {
            return None;
        }
        let stealers = lock(&self.stealers);
        let mut retry = true;
        while retry {
            retry = false;
            for (_, stealer, _) in stealers.iter() {
                match stealer.steal() {
                    Steal::Success(job) => return Some(job),
                    Steal::Retry => retry = true,
                    Steal::Empty => {}
                }
            }
        }
        None
    }
}

/// A pool thread's access to its own deque.
trait OwnDeque {
    fn pop(&self) -> Option<ErasedJob>;
}

/// Outside loom the deque lives in [`LOCAL`], where pushes from jobs can reach it.
#[cfg(not(loom))]
struct LocalWorker;

#[cfg(not(loom))]
impl OwnDeque for LocalWorker {
    fn pop(&self) -> Option<ErasedJob> {
        LOCAL.with(|local| local.borrow().as_ref().and_then(|(_, worker)| worker.pop()))
    }
}

#[cfg(loom)]
struct LoomWorker(Worker<ErasedJob>);

#[cfg(loom)]
impl OwnDeque for LoomWorker {
    fn pop(&self) -> Option<ErasedJob> {
        self.0.pop()
    }
}
