//! The watcher: the pool grows past one thread per core only while its threads sleep
//! in the kernel.
//!
//! # Why
//!
//! A job that *runs* (a cached `stat`, an `open` of a warm inode) keeps a core busy;
//! a job that *sleeps* (an NFS server thinking, a `hard` mount, a slow disk) keeps only
//! a thread. On the first kind, more threads than cores only take turns on the same
//! cores and pay for it in context switches and cache misses (measured on 2 cores:
//! `open`+`close` with 64 in flight ran 15–25 % faster on 2 threads than on 6). On the
//! second kind, threads are what overlaps the waits. So the pool starts up to
//! `eager_threads` (one per core, at least 2) as soon as work waits, and hands the
//! decision about more to this watcher.
//!
//! # How
//!
//! - While every thread is busy and jobs wait, [`Inner::notify_work`] raises the
//!   watcher's *demand* (starting the watcher if none runs) instead of a thread.
//! - Each tick the watcher looks at every pool thread: one that is on the *same job*
//!   as at the last tick and is asleep in the kernel (state `S` or `D` in
//!   `/proc/self/task/<tid>/stat`) counts as blocked. For each blocked thread it starts
//!   up to two threads (no more than jobs wait, and never past `max_threads`). A thread that runs, or was only preempted (state `R`), counts
//!   as busy, not blocked: that is exactly the case where another thread cannot help
//!   — unless it has been on the same job for [`LONG_JOB`]: then the jobs queued
//!   behind it would wait for its whole run, so it counts as stuck too, and the cores
//!   are shared instead.
//!   If *every* thread is blocked, the work is waiting rather than computing, and
//!   the watcher starts a thread for each waiting job at once (up to `max_threads`),
//!   so a pool facing a slow mount grows in one step instead of doubling per tick.
//! - Ticks start at [`MIN_TICK`] and double up to [`MAX_TICK`] while nothing is
//!   blocked, so a pool busy with cheap jobs pays about 500 wake-ups a second for the
//!   watcher; a blocked thread snaps the tick back.
//! - With no demand the watcher waits, and it exits after `idle_timeout` without any,
//!   or when the pool retires its threads (last handle dropped, [`Pool::shutdown`]).
//!
//! # Invariants
//!
//! - **No job is stranded.** A job waits for the watcher only while every thread is
//!   busy, and each busy thread either finishes its job (and then searches, and finds
//!   the queued one) or sleeps in the kernel (and then the watcher starts a thread).
//!   Jobs that wait for each other (a channel between two `unblock` closures) sleep,
//!   so the pool grows until they meet, as it did without a watcher.
//! - **At most `max_threads` workers.** The watcher is not one of them (a pool of
//!   `max_threads(4)` still runs 4 jobs at once); it exits as soon as the pool has
//!   all its workers, so the pool has `max_threads + 1` threads only while the
//!   watcher starts the last ones.
//! - If the OS refuses the watcher thread, the pool starts a worker instead, as a
//!   pool without a watcher would.
//! - Each look at a thread's state opens its `/proc` file for a moment: one
//!   descriptor outside the budget, well inside the headroom the default budget
//!   leaves under `RLIMIT_NOFILE`.
//!
//! Under loom the pool starts every thread eagerly (`eager_threads == max_threads`),
//! so the watcher never runs in a model: its decisions depend on timing and on
//! `/proc`, which a model cannot see. `tests/pool.rs` checks it on real threads.
//!
//! [`Pool::shutdown`]: super::Pool::shutdown

use std::time::Duration;
#[cfg(not(loom))]
use std::time::Instant;

#[cfg(not(loom))]
use super::Inner;
#[cfg(not(loom))]
use crate::sync::{lock, thread, Arc};
use crate::sync::{DynArc, HintUsize, Ordering};

/// The first tick after demand appears, and the tick after a blocked thread was seen.
#[cfg_attr(loom, allow(dead_code))]
pub(super) const MIN_TICK: Duration = Duration::from_micros(200);

/// The longest tick: how long a newly blocked thread can wait before the watcher
/// notices it, once the pool has been busy for a while with nothing blocked.
#[cfg_attr(loom, allow(dead_code))]
pub(super) const MAX_TICK: Duration = Duration::from_millis(2);

/// A job that keeps its thread computing this long gets company: jobs queued
/// behind it start on a new thread and share the cores, instead of waiting for it.
/// Much longer than a scheduler time slice, so a cheap job that was only preempted
/// never counts; short enough that a small job queued behind a long hash waits
/// tens of milliseconds, not the hash's whole run.
#[cfg_attr(loom, allow(dead_code))]
pub(super) const LONG_JOB: Duration = Duration::from_millis(50);

/// What the watcher can see of one pool thread: its kernel thread id, and how many
/// jobs it started and finished (odd while it runs one).
///
/// Only the owning thread writes; the watcher reads. The counts feed a heuristic,
/// not a synchronisation, so they are relaxed atomics that loom need not see.
pub(super) struct Progress {
    tid: HintUsize,
    steps: HintUsize,
}

impl Progress {
    pub(super) fn new() -> DynArc<Progress> {
        DynArc::new(Progress {
            tid: HintUsize::new(0),
            steps: HintUsize::new(0),
        })
    }

    /// Called once by the pool thread this belongs to, on that thread.
    pub(super) fn register_current_thread(&self) {
        // SAFETY: `gettid(2)` takes no arguments, touches no memory and cannot fail.
        let tid = unsafe { libc::gettid() };
        self.tid
            .store(usize::try_from(tid).unwrap_or(0), Ordering::Relaxed);
    }

    /// The owning thread took a job (the count turns odd).
    pub(super) fn job_started(&self) {
        let steps = self.steps.load(Ordering::Relaxed);
        self.steps.store(steps.wrapping_add(1), Ordering::Relaxed);
    }

    /// The owning thread finished its job (the count turns even).
    pub(super) fn job_finished(&self) {
        self.job_started();
    }
}

#[cfg(not(loom))]
/// Whether kernel thread `tid` of this process is asleep in the kernel: state `S`
/// (interruptible, e.g. a futex or a slow `open`) or `D` (uninterruptible, e.g. NFS
/// or disk I/O). A thread whose state cannot be read counts as asleep, so without
/// `/proc` the pool grows as a pool without a watcher would.
fn asleep_in_kernel(tid: usize) -> bool {
    let Ok(stat) = std::fs::read(format!("/proc/self/task/{tid}/stat")) else {
        return true;
    };
    // `pid (comm) state ...`: the name may hold spaces and parentheses, so the state
    // is the first byte after the *last* `) `.
    let state = stat
        .iter()
        .rposition(|&byte| byte == b')')
        .and_then(|close| stat.get(close + 2));
    !matches!(state, Some(b'R'))
}

#[cfg(not(loom))]
impl Inner {
    /// Starts the watcher thread. Called with `watcher_running` already set, and
    /// without the sleep lock. If the OS refuses the thread, starts a worker instead.
    pub(super) fn start_watcher(this: &Arc<Self>, epoch: u64) {
        let inner = this.clone();
        let name = format!("{}-watch", this.config.thread_name);
        let spawned = thread::Builder::new()
            .name(name)
            .stack_size(64 * 1024)
            .spawn(move || Inner::watcher_main(inner, epoch));
        if spawned.is_err() {
            let mut sleep = lock(&this.sleep);
            sleep.watcher_running = false;
            sleep.watch_demand = false;
            if sleep.alive < this.config.max_threads {
                Inner::start_worker(this, sleep);
            }
            this.notify_quiet();
        }
    }

    fn watcher_main(this: Arc<Self>, epoch: u64) {
        let mut last_seen: Vec<Seen> = Vec::new();
        let mut tick = MIN_TICK;
        let mut idle_deadline = Instant::now() + this.config.idle_timeout;
        let mut sleep = lock(&this.sleep);
        loop {
            if sleep.retire_epoch != epoch || this.handles.load(Ordering::SeqCst) == 0 {
                break;
            }
            if !sleep.watch_demand {
                let now = Instant::now();
                if now >= idle_deadline {
                    break;
                }
                sleep = super::wait_until(&this.watch, sleep, idle_deadline - now);
                tick = MIN_TICK;
                continue;
            }
            // Demand: look again after one tick (a retire wakes us early; pushes
            // do not, they only raise the demand, which is already up).
            sleep = super::wait_until(&this.watch, sleep, tick);
            if sleep.retire_epoch != epoch {
                break;
            }
            drop(sleep);
            let census = this.census(&mut last_seen);
            let blocked = census.asleep + census.long;
            sleep = lock(&this.sleep);
            idle_deadline = Instant::now() + this.config.idle_timeout;
            let queued = this.queued.load(Ordering::SeqCst);
            if queued == 0 {
                // Drained: wait for the next time every thread is busy.
                sleep.watch_demand = false;
                continue;
            }
            if blocked == 0 || this.searching.load(Ordering::SeqCst) > 0 {
                // Busy, or about to take the job: another thread would not help.
                tick = (tick * 2).min(MAX_TICK);
                continue;
            }
            tick = MIN_TICK;
            let room = this.config.max_threads.saturating_sub(sleep.alive);
            // Every thread asleep: the work is waiting, not computing, so start a
            // thread for each waiting job at once (one burst instead of a ramp over
            // many ticks). Otherwise two per stuck thread.
            let wanted = if census.asleep == census.threads {
                queued
            } else {
                2 * blocked
            };
            let start = wanted.min(room);
            let mut started = Vec::with_capacity(start);
            for _ in 0..start {
                sleep.alive += 1;
                started.push(sleep.next_id);
                sleep.next_id += 1;
                this.searching.fetch_add(1, Ordering::SeqCst);
            }
            let worker_epoch = sleep.retire_epoch;
            drop(sleep);
            for id in started {
                Inner::start_thread(&this, id, worker_epoch);
            }
            sleep = lock(&this.sleep);
            if sleep.alive >= this.config.max_threads {
                // Nothing left to decide; `notify_work` starts a watcher again if
                // threads retire and every remaining one is busy.
                break;
            }
        }
        sleep.watcher_running = false;
        sleep.watch_demand = false;
        if this.shutdown_waiters.load(Ordering::SeqCst) > 0 {
            this.quiet.notify_all();
        }
    }

    /// Looks at every pool thread: which are stuck on one job since the last call,
    /// asleep in the kernel or computing for longer than [`LONG_JOB`]. Updates
    /// `last_seen` to what this call saw.
    fn census(&self, last_seen: &mut Vec<Seen>) -> Census {
        let threads: Vec<(usize, DynArc<Progress>)> = lock(&self.stealers)
            .iter()
            .map(|(id, _, progress)| (*id, progress.clone()))
            .collect();
        let now = Instant::now();
        let mut census = Census {
            threads: threads.len(),
            asleep: 0,
            long: 0,
        };
        let mut seen = Vec::with_capacity(threads.len());
        for (id, progress) in threads {
            let steps = progress.steps.load(Ordering::Relaxed);
            let tid = progress.tid.load(Ordering::Relaxed);
            let busy = steps % 2 == 1;
            let since = last_seen
                .iter()
                .find(|seen| seen.id == id && seen.steps == steps)
                .map(|seen| seen.since);
            if let (true, Some(since)) = (busy, since) {
                if tid == 0 || asleep_in_kernel(tid) {
                    census.asleep += 1;
                } else if now.duration_since(since) >= LONG_JOB {
                    census.long += 1;
                }
            }
            seen.push(Seen {
                id,
                steps,
                since: since.unwrap_or(now),
            });
        }
        *last_seen = seen;
        census
    }
}

/// What the watcher saw of one thread: its number, its step count, and since when
/// it has shown that count.
#[cfg(not(loom))]
struct Seen {
    id: usize,
    steps: usize,
    since: Instant,
}

/// One look at the pool's threads ([`Inner::census`]).
#[cfg(not(loom))]
struct Census {
    /// Threads that exist.
    threads: usize,
    /// Threads on the same job as at the last look, asleep in the kernel.
    asleep: usize,
    /// Threads on the same job for [`LONG_JOB`] or more, computing.
    long: usize,
}
