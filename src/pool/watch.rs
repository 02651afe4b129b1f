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
//! - Each tick the watcher looks at every pool thread, and counts as *stuck* one that
//!   - is not running (any state but `R` in `/proc/self/task/<tid>/stat`: asleep on
//!     I/O, on a slow `open`, or on a lock or channel, where it may be waiting for a
//!     job still in the queue), and either is on the same job as at the last look or
//!     was asleep in a job at that look too (jobs shorter than a tick, such as NFS
//!     `stat`s the server answers in 0.1 ms, are never seen twice, but their thread
//!     is asleep at look after look), or
//!   - has computed one job for [`LONG_JOB`], so the jobs queued behind it would
//!     otherwise wait for its whole run.
//!
//!   A thread that runs a short job, or was only preempted (state `R`), is busy, not
//!   stuck: that is exactly the case where another thread cannot help.
//! - For each asleep stuck thread it starts up to two threads; for long computations
//!   one thread a tick, and only while fewer than two per core compute, so the cores
//!   are shared without being flooded. If *every* thread is asleep, the work is
//!   waiting rather than computing, and it starts a thread for each waiting job at
//!   once, so a pool facing a slow mount grows in one step instead of doubling per
//!   tick. Never more than jobs wait, never past `max_threads`.
//! - A stuck thread is counted once per job: the threads started on its account are
//!   its answer, and it counts again only on its next job. (Counting it at every tick
//!   made 300 jobs of 200 ms of CPU grow the pool to 64 threads within 80 ms.) A
//!   thread asleep in short jobs is on a new job at every look, so it counts at every
//!   look while jobs wait: sleeping jobs are what more threads are for. One asleep
//!   sample alone never counts, so a cached `stat` that sleeps on a lock now and then
//!   does not grow the pool.
//! - Ticks start at [`MIN_TICK`] and double up to [`MAX_TICK`] while nothing is
//!   started, so a pool busy with cheap jobs pays about 500 wake-ups a second for the
//!   watcher; starting threads snaps the tick back. (That a thread asleep at two
//!   looks in a row counts even on a new job matters here too: judged by one job at
//!   a time, jobs that sleep about 1 ms were never seen twice once the tick had grown
//!   to 2 ms, and the pool stayed at one thread per core: one bench run of 2,000
//!   slow opens in a few dozen took a second, not 40 ms.)
//! - With no demand the watcher waits. It exits after `idle_timeout` without demand,
//!   once the pool has `max_threads` workers, or, when the pool retires its threads
//!   (last handle dropped, [`Pool::shutdown`]), as soon as the queue is empty: a
//!   dropped pool still finishes its queue, and the watcher keeps growing it for that.
//!
//! # Invariants
//!
//! - **No job is stranded.** Demand is raised under the sleep lock whenever a job
//!   waits and every thread is busy; only the watcher clears it, only when it sees
//!   the queue empty or the pool at `max_threads`, and when it exits it clears it
//!   under the same lock, so the next busy push starts a new watcher. While demand is
//!   up, each busy thread either finishes its job (and then searches, and finds the
//!   queued one) or gets stuck (and then the watcher starts a thread). Jobs that wait
//!   for each other (a channel or barrier between `unblock` closures) sleep, so the
//!   pool grows until they meet, as it did without a watcher.
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
//! Limits: a thread waiting on a contended lock looks like one waiting on I/O (both
//! sleep), so lock-bound jobs still grow the pool to `max_threads`, as any blocking
//! pool would; and without `/proc` every stuck thread counts as asleep.
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
use super::sched::{wait_until, Inner};
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
/// Whether kernel thread `tid` of this process is not running: any state but `R`,
/// in practice `S` (interruptible, e.g. a futex or a slow `open`) or `D`
/// (uninterruptible, e.g. NFS or disk I/O). A thread whose state cannot be read
/// counts as asleep, so without `/proc` the pool grows as eagerly as a pool without
/// a watcher.
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
                Inner::start_workers(this, sleep, 1);
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
            if !sleep.watch_demand {
                // Nothing waits for us: leave if the pool is retiring or we idled
                // long enough. (With demand up we stay, retiring or not: a dropped
                // pool still finishes its queue.)
                let retiring =
                    sleep.retire_epoch != epoch || this.handles.load(Ordering::SeqCst) == 0;
                let now = Instant::now();
                if retiring || now >= idle_deadline {
                    break;
                }
                sleep = wait_until(&this.watch, sleep, idle_deadline - now);
                tick = MIN_TICK;
                // What the threads did while nobody waited says nothing about the
                // jobs to come.
                last_seen.clear();
                continue;
            }
            // Demand: look again after one tick (a retire wakes us early; pushes
            // do not, they only raise the demand, which is already up).
            sleep = wait_until(&this.watch, sleep, tick);
            drop(sleep);
            let census = this.census(&mut last_seen);
            sleep = lock(&this.sleep);
            idle_deadline = Instant::now() + this.config.idle_timeout;
            let queued = this.queued.load(Ordering::SeqCst);
            if queued == 0 {
                // Drained: wait for the next time every thread is busy.
                sleep.watch_demand = false;
                continue;
            }
            let room = this.config.max_threads.saturating_sub(sleep.alive);
            let start = if this.searching.load(Ordering::SeqCst) > 0 {
                // A thread is about to take a job; look again next tick.
                0
            } else {
                census.wanted(queued, 2 * this.eager_threads).min(room)
            };
            if start == 0 {
                tick = (tick * 2).min(MAX_TICK);
                continue;
            }
            tick = MIN_TICK;
            for seen in last_seen.iter_mut() {
                seen.answered |= seen.stuck;
            }
            Inner::start_workers(&this, sleep, start);
            sleep = lock(&this.sleep);
            if sleep.alive >= this.config.max_threads {
                // Nothing left to decide. Demand cannot rise again before a thread
                // retires, and a thread retires only with nothing queued.
                break;
            }
        }
        sleep.watcher_running = false;
        sleep.watch_demand = false;
        if this.shutdown_waiters.load(Ordering::SeqCst) > 0 {
            this.quiet.notify_all();
        }
    }

    /// Looks at every pool thread: which are stuck and not yet answered with new
    /// threads, either asleep in a job now and at the last look (one job or two), or
    /// computing one job for longer than [`LONG_JOB`]. Updates `last_seen` to what
    /// this look saw.
    fn census(&self, last_seen: &mut Vec<Seen>) -> Census {
        // A snapshot under the lock; the `/proc` reads below happen without it.
        let threads: Vec<(usize, usize, usize)> = lock(&self.stealers)
            .iter()
            .map(|(id, _, progress)| {
                let steps = progress.steps.load(Ordering::Relaxed);
                (*id, steps, progress.tid.load(Ordering::Relaxed))
            })
            .collect();
        let now = Instant::now();
        let mut census = Census {
            threads: threads.len(),
            asleep: 0,
            long: 0,
            computing: 0,
            asleep_stuck: 0,
        };
        let mut seen = Vec::with_capacity(threads.len());
        for (id, steps, tid) in threads {
            let busy = steps % 2 == 1;
            let previous = last_seen.iter().find(|seen| seen.id == id);
            // The same job as at the last look.
            let before = previous.filter(|seen| seen.steps == steps);
            let mut entry = Seen {
                id,
                steps,
                since: before.map_or(now, |seen| seen.since),
                answered: before.is_some_and(|seen| seen.answered),
                stuck: false,
                asleep: false,
            };
            if busy {
                let asleep = tid == 0 || asleep_in_kernel(tid);
                entry.asleep = asleep;
                // Asleep in a job at the last look too: whether one long job or many
                // short ones, this thread spends its jobs waiting.
                let slept_before = previous.is_some_and(|seen| seen.asleep);
                if asleep {
                    census.asleep += 1;
                    if (before.is_some() || slept_before) && !entry.answered {
                        entry.stuck = true;
                        census.asleep_stuck += 1;
                    }
                } else {
                    census.computing += 1;
                    if before.is_some()
                        && !entry.answered
                        && now.duration_since(entry.since) >= LONG_JOB
                    {
                        entry.stuck = true;
                        census.long += 1;
                    }
                }
            }
            seen.push(entry);
        }
        *last_seen = seen;
        census
    }
}

/// What the watcher saw of one thread at its last look.
#[cfg(not(loom))]
struct Seen {
    id: usize,
    /// Its step count (odd while it runs a job), and since when it shows it.
    steps: usize,
    since: Instant,
    /// Stuck at this look (see [`Inner::census`]), and not answered yet.
    stuck: bool,
    /// Threads were started on account of this job already.
    answered: bool,
    /// Busy and asleep in the kernel at that look.
    asleep: bool,
}

/// One look at the pool's threads ([`Inner::census`]).
#[cfg(not(loom))]
struct Census {
    /// Threads that exist.
    threads: usize,
    /// Busy threads not running (asleep in the kernel), stuck or not.
    asleep: usize,
    /// Busy threads running.
    computing: usize,
    /// Asleep threads stuck (asleep at the last look too) and not answered yet.
    asleep_stuck: usize,
    /// Running threads on one job for [`LONG_JOB`] and not answered yet.
    long: usize,
}

#[cfg(not(loom))]
impl Census {
    /// Threads to start for `queued` waiting jobs, while at most `computing_cap`
    /// threads may compute at once.
    fn wanted(&self, queued: usize, computing_cap: usize) -> usize {
        let wanted = if self.asleep_stuck > 0 && self.asleep == self.threads {
            // Every thread asleep: the work waits rather than computes.
            queued
        } else {
            let for_long = usize::from(self.long > 0 && self.computing < computing_cap);
            2 * self.asleep_stuck + for_long
        };
        wanted.min(queued)
    }
}
