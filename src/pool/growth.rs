//! The growth rule: how many threads the pool runs, decided in one place.
//!
//! # The rule
//!
//! A job that *runs* (a cached `stat`, an `open` of a warm inode) keeps a core busy;
//! a job that *sleeps* (an NFS server thinking, a slow disk, a hung mount) keeps only
//! a thread. On the first kind, more threads than cores only take turns on the same
//! cores and pay for it in context switches (measured on 2 cores: `open`+`close` with
//! 64 in flight ran 15–25 % faster on 2 threads than on 6). On the second kind,
//! threads are what overlaps the waits: on a mount that answers in 10 ms, 256 calls
//! in flight take 10 ms on 256 threads and 40 ms on 64. So:
//!
//! 1. **At a push** ([`on_push`]): a searching thread will find the job (do nothing);
//!    else wake a sleeping thread; else, below `eager_threads` (one per core, at least
//!    2), start one; else every thread is busy: raise *demand*, which starts or wakes
//!    the watcher (`watch.rs`).
//!
//!    **At a take** ([`on_take`]): a thread that has just taken a job, while more jobs
//!    wait than threads search, wakes up to [`WAKE_FANOUT`] sleepers more (never more
//!    than the jobs no searcher is counted for). A push wakes one thread, and each
//!    woken thread that finds work wakes the next ones, so a burst of N jobs reaches
//!    N sleeping threads in about log₂ N wake-ups instead of N one after another.
//!    Measured on the slow FUSE mount (5 ms a round trip, 2 cores, load 1.5), a
//!    `metadata_batch` of 256 paths on 256 sleeping threads, whose stats take 15 ms
//!    at best: its last worker reached a thread 8–18 ms after the batch began with
//!    one wake-up per take, 4–8 ms with two. A pool with no sleepers (cached work on
//!    its threads per core) does nothing here, and reads one relaxed atomic.
//! 2. **At each watcher tick** ([`on_tick`]), while demand is up, the sampler reports
//!    each busy thread's state (running, asleep in the kernel, or unknown where the
//!    OS will not say) and [`look`] classifies it against the last look:
//!    - *asleep-stuck*: asleep now and at the last look (the same job, or short jobs
//!      one after another, such as NFS `stat`s answered in 0.1 ms: those are never
//!      seen twice, but their thread is asleep at look after look). One asleep sample
//!      alone never counts, so a cached `stat` that sleeps on a lock now and then does
//!      not grow the pool;
//!    - *waiting*: asleep in a futex wait, for another thread of this process (a
//!      lock, a condition, a channel), where the census can tell (Linux). That counts
//!      as asleep-stuck only once the same job has waited at every look for
//!      [`LONG_WAIT`] and no job started or finished meanwhile: a lock is held for
//!      a moment, or taken by others again and again (more threads would wait for
//!      the same lock), while jobs that wait for each other stop the pool and need
//!      more threads to meet;
//!    - *long*: running one job for [`LONG_JOB`], so the jobs queued behind it would
//!      otherwise wait for its whole run;
//!    - a thread whose state cannot be read (*unknown*) is treated as computing:
//!      the long-job rule and the cap of two computing threads per core apply to
//!      it, and it never counts as asleep. Unknown means unknown: counting it as
//!      asleep would grow a pool of CPU-bound jobs to `max_threads`.
//!
//!    Then it starts: if every thread is asleep and one is stuck, a thread for each
//!    queued job at once (the work waits rather than computes, so a pool facing a slow
//!    mount grows in one step instead of doubling per tick); otherwise two threads per
//!    asleep-stuck thread, and one for long jobs while fewer than two threads per
//!    core compute and a queued job must run (not only *optional* ones, the
//!    parallelism a batch offers for slow calls: those wait for the cores). Never more than jobs wait, never past
//!    `max_threads`, nothing while a thread is searching (it is about to take a job).
//!
//!    And whatever the states: while jobs wait and no thread started or finished one
//!    for [`STALL`], a thread (the safety valve for systems without a census).
//! 3. **A stuck thread is answered once per job**: the threads started on its account
//!    are its answer, and it counts again only on its next job (counting it at every
//!    tick made 300 jobs of 200 ms of CPU grow the pool to 64 threads within 80 ms).
//!    A thread asleep in short jobs is on a new job at every look, so it counts at
//!    every look while jobs wait: sleeping jobs are what more threads are for.
//! 4. **Retiring** is not decided here: a thread that sleeps `idle_timeout` without
//!    being woken exits (`sched.rs`), and sleepers are woken newest first, so the
//!    threads a burst started are the ones that go once the burst is over.
//!
//! The states come from a *sleep census* (`watch.rs`): on Linux each thread's state
//! in `/proc/self/task` (running; waiting in a futex; asleep in any other call); without `/proc` (other
//! systems, or [`PoolBuilder::sleep_census`](super::PoolBuilder::sleep_census) off),
//! each thread's CPU clock over windows of a few milliseconds (under 3 % of the
//! wall time: asleep). Until a thread's first window closes it is unknown, so that
//! census sees a sleeping thread a few milliseconds later, and it takes a thread
//! preempted on a machine oversubscribed 30 times by other processes for one asleep
//! (see `CpuClocks` in `watch.rs`).
//!
//! # Why a pure function
//!
//! The functions here take a snapshot and return an action: no locks, no clocks, no
//! `/proc`. The scheduler and the watcher gather the snapshot and carry the action
//! out; the tests below check the rule on a table of snapshots instead of timing.

// Under loom every thread starts eagerly and the watcher never runs (`watch.rs`).
#![cfg_attr(loom, allow(dead_code))]

use std::time::{Duration, Instant};

/// A job that keeps its thread computing this long gets company: jobs queued
/// behind it start on a new thread and share the cores, instead of waiting for it.
/// Much longer than a scheduler time slice, so a cheap job that was only preempted
/// never counts; short enough that a small job queued behind a long hash waits
/// tens of milliseconds, not the hash's whole run.
pub(super) const LONG_JOB: Duration = Duration::from_millis(50);

/// A job that waits this long for another thread of this process (a futex: a lock,
/// a condition, a channel), while no job starts or finishes for as long, counts as
/// asleep, as one waiting for I/O does at once.
/// A lock's wait is short: its holder is computing, or was preempted for a
/// scheduler slice (a few milliseconds); each thread started for it would only wait
/// for the same lock (seen on a cached tree walk: pool threads asleep on the
/// allocator's and the walk's locks grew the pool to 30-260 threads on 2 cores,
/// and the caller's loop waited in their run queue). Jobs that wait for each other
/// (a barrier) meet only on more threads, and get them after this long.
pub(super) const LONG_WAIT: Duration = Duration::from_millis(20);

/// The safety valve: while jobs wait and no thread has started or finished one for
/// this long, a tick starts one thread, whatever the states (and starts the count
/// again). It keeps jobs that wait for each other meeting where no census can tell
/// a sleeping thread (Windows; unknown states count as computing), at a thread per
/// stall, as .NET's thread pool answers starvation; with a census the asleep rules
/// come first by far. Long computations that stall the queue this long get a thread
/// per stall too, past the cores.
pub(super) const STALL: Duration = Duration::from_millis(250);

/// How many threads may compute at once per core before long jobs stop getting
/// company: the cores are shared without being flooded.
pub(super) const COMPUTING_PER_CORE: usize = 2;

/// Threads started for each asleep-stuck thread when not every thread sleeps.
pub(super) const STARTS_PER_ASLEEP_STUCK: usize = 2;

/// The most sleepers a thread that has just taken a job wakes (rule 1, at a take):
/// two, so that the threads woken for a burst double at each wake-up, as a binary
/// tree, and no thread pays for more than two wake-ups before its own job.
pub(super) const WAKE_FANOUT: usize = 2;

/// What a push should do (see rule 1 in the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PushAction {
    /// A thread is searching and will find the job; or every thread is busy, the
    /// pool is full or the watcher already has demand.
    Nothing,
    /// Grant a wake-up to a sleeping thread.
    Wake,
    /// Start one thread.
    Start,
    /// Raise the watcher's demand (starting the watcher if none runs).
    RaiseDemand,
}

/// The state a push sees, under the sleep lock.
#[derive(Clone, Copy, Debug)]
pub(super) struct PushView {
    /// Threads awake and looking for a job.
    pub(super) searching: usize,
    /// Threads asleep with no wake-up granted yet.
    pub(super) unwoken_sleepers: usize,
    /// Threads that exist.
    pub(super) alive: usize,
    /// Threads started without asking the watcher.
    pub(super) eager_threads: usize,
    pub(super) max_threads: usize,
    /// The watcher's demand is already up.
    pub(super) demand_up: bool,
}

/// Rule 1: what a push does.
pub(super) fn on_push(view: PushView) -> PushAction {
    if view.searching > 0 {
        // A searcher looks at the queues again after it stops searching, and the push
        // happened before the pusher saw it searching: it will find the job.
        PushAction::Nothing
    } else if view.unwoken_sleepers > 0 {
        PushAction::Wake
    } else if view.alive < view.eager_threads.min(view.max_threads) {
        PushAction::Start
    } else if view.alive < view.max_threads && !view.demand_up {
        // Every thread is busy: the first to finish will find the job; if they sleep
        // in the kernel instead, the watcher starts more.
        PushAction::RaiseDemand
    } else {
        PushAction::Nothing
    }
}

/// The state a thread sees just after it took a job (rule 1, at a take).
#[derive(Clone, Copy, Debug)]
pub(super) struct TakeView {
    /// Jobs still queued, the taken one no longer counted.
    pub(super) queued: usize,
    /// Threads searching, the taker no longer counted (woken ones counted).
    pub(super) searching: usize,
    /// Threads asleep with no wake-up granted yet.
    pub(super) unwoken_sleepers: usize,
}

/// Rule 1, at a take: how many sleepers the taker wakes, each of them counted as
/// searching from then on. Only jobs that no searcher is counted for get one, so
/// the pool never has more threads awake than work for them.
pub(super) fn on_take(view: TakeView) -> usize {
    view.queued
        .saturating_sub(view.searching)
        .min(view.unwoken_sleepers)
        .min(WAKE_FANOUT)
}

/// What the sampler could tell of a busy thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RunState {
    /// On a core, or ready to run (`R`).
    Running,
    /// Asleep in the kernel: on I/O, a slow `open`; where the system cannot tell
    /// (no futex census), also on a lock or a channel.
    Asleep,
    /// Asleep in a futex wait: for another thread of this process (a lock, a
    /// condition variable, a channel), not for a device or a server.
    Waiting,
    /// The system would not say.
    Unknown,
}

/// One pool thread at one look.
#[derive(Clone, Copy, Debug)]
pub(super) struct Sample {
    /// The thread's number in the pool.
    pub(super) id: usize,
    /// Jobs started plus jobs finished: odd while it runs one.
    pub(super) steps: usize,
    /// Its state, sampled only while busy (`None` when idle).
    pub(super) state: Option<RunState>,
}

/// What the rule remembers of one thread from the last look.
#[derive(Clone, Copy, Debug)]
pub(super) struct Seen {
    id: usize,
    /// Its step count at that look, and since when it showed it.
    steps: usize,
    since: Instant,
    /// Stuck at that look and not answered before it.
    stuck: bool,
    /// Threads were started on account of this job already.
    answered: bool,
    /// Busy and asleep in the kernel at that look (not in a futex wait).
    asleep: bool,
    /// Since when it has been waiting in a futex in this job, at every look.
    waiting_since: Option<Instant>,
}

/// One look at the pool's threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Census {
    /// Threads that exist.
    pub(super) threads: usize,
    /// Busy threads asleep in the kernel, stuck or not, and those waiting for
    /// another thread for [`LONG_WAIT`] (not those waiting less).
    pub(super) asleep: usize,
    /// Busy threads waiting for another thread, for less than [`LONG_WAIT`].
    pub(super) waiting: usize,
    /// Busy threads running.
    pub(super) computing: usize,
    /// Asleep threads stuck (asleep at the last look too, or waiting for another
    /// thread for [`LONG_WAIT`]) and not answered yet.
    pub(super) asleep_stuck: usize,
    /// Running threads on one job for [`LONG_JOB`] and not answered yet.
    pub(super) long: usize,
}

/// Classifies each thread of `samples` against `last_seen` (see rule 2), and
/// replaces `last_seen` with this look. `stalled_for`: how long no thread has
/// started or finished a job.
pub(super) fn look(
    samples: &[Sample],
    last_seen: &mut Vec<Seen>,
    now: Instant,
    stalled_for: Duration,
) -> Census {
    let mut census = Census {
        threads: samples.len(),
        ..Census::default()
    };
    let mut seen = Vec::with_capacity(samples.len());
    for sample in samples {
        let previous = last_seen.iter().find(|seen| seen.id == sample.id);
        // The same job as at the last look.
        let same_job = previous.filter(|seen| seen.steps == sample.steps);
        let mut entry = Seen {
            id: sample.id,
            steps: sample.steps,
            since: same_job.map_or(now, |seen| seen.since),
            answered: same_job.is_some_and(|seen| seen.answered),
            stuck: false,
            asleep: false,
            waiting_since: None,
        };
        let on_one_job_for = now.saturating_duration_since(entry.since);
        let busy = sample.steps % 2 == 1;
        match sample.state.filter(|_| busy) {
            None => {}
            Some(RunState::Asleep) => {
                entry.asleep = true;
                census.asleep += 1;
                // Asleep in a job at the last look too: whether one long job or many
                // short ones, this thread spends its jobs waiting.
                let slept_before = previous.is_some_and(|seen| seen.asleep);
                if (same_job.is_some() || slept_before) && !entry.answered {
                    entry.stuck = true;
                    census.asleep_stuck += 1;
                }
            }
            Some(RunState::Waiting) => {
                // Waiting for another thread of this process: a lock held a moment
                // (a preempted holder, the allocator's arena) is no reason for a
                // thread, nor a lock others keep taking (an unfair lock starves a
                // waiter for as long as they do); only a wait of LONG_WAIT in one
                // job while no job started or finished counts: jobs waiting for
                // each other, which only more threads can meet.
                let since = same_job.and_then(|seen| seen.waiting_since).unwrap_or(now);
                entry.waiting_since = Some(since);
                let waited = now.saturating_duration_since(since);
                if waited < LONG_WAIT || stalled_for < LONG_WAIT {
                    census.waiting += 1;
                } else {
                    census.asleep += 1;
                    if !entry.answered {
                        entry.stuck = true;
                        census.asleep_stuck += 1;
                    }
                }
            }
            // Unknown is treated as computing: it never counts as asleep.
            Some(RunState::Running | RunState::Unknown) => {
                census.computing += 1;
                if same_job.is_some() && !entry.answered && on_one_job_for >= LONG_JOB {
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

/// The pool as a tick sees it, beside the census.
#[derive(Clone, Copy, Debug)]
pub(super) struct TickView {
    /// Jobs queued, not yet taken.
    pub(super) queued: usize,
    /// Of those, optional ones (parallelism offered for slow calls, see
    /// `Pool::unblock_optional`): worth a thread only while threads sleep.
    pub(super) optional_queued: usize,
    /// Threads searching (about to take a job).
    pub(super) searching: usize,
    /// Threads that exist.
    pub(super) alive: usize,
    pub(super) max_threads: usize,
    /// Cores the pool may compute on (its eager threads).
    pub(super) cores: usize,
    /// How long no thread has started or finished a job (see [`STALL`]).
    pub(super) stalled_for: Duration,
}

/// Rule 2: how many threads a tick starts.
pub(super) fn on_tick(view: TickView, census: &Census) -> usize {
    if view.queued == 0 || view.searching > 0 {
        return 0;
    }
    let wanted = if census.asleep_stuck > 0 && census.asleep == census.threads {
        // Every thread asleep: the work waits rather than computes.
        view.queued
    } else {
        // Only a job that must run waits for a long computation; an optional one
        // can wait for the cores as well as on them.
        let required = view.queued > view.optional_queued;
        let for_long = usize::from(
            required && census.long > 0 && census.computing < COMPUTING_PER_CORE * view.cores,
        );
        STARTS_PER_ASLEEP_STUCK * census.asleep_stuck + for_long
    };
    // Whatever the states say: a queue that made no progress at all for STALL gets
    // a thread.
    let wanted = wanted.max(usize::from(view.stalled_for >= STALL));
    wanted
        .min(view.queued)
        .min(view.max_threads.saturating_sub(view.alive))
}

/// Rule 3: once a tick started threads, every thread stuck at this look has had
/// its answer.
pub(super) fn mark_answered(last_seen: &mut [Seen]) {
    for seen in last_seen {
        seen.answered |= seen.stuck;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Option<RunState> = None;
    const RUN: Option<RunState> = Some(RunState::Running);
    const SLEEP: Option<RunState> = Some(RunState::Asleep);
    const UNKNOWN: Option<RunState> = Some(RunState::Unknown);
    const WAIT: Option<RunState> = Some(RunState::Waiting);

    /// A look: milliseconds since the first, and `(steps, state)` of threads 0, 1, ...
    type Looks<'a> = &'a [(u64, &'a [(usize, Option<RunState>)])];

    fn push(searching: usize, unwoken: usize, alive: usize, demand_up: bool) -> PushAction {
        on_push(PushView {
            searching,
            unwoken_sleepers: unwoken,
            alive,
            eager_threads: 2,
            max_threads: 512,
            demand_up,
        })
    }

    #[test]
    fn a_push_wakes_starts_or_raises_demand_in_that_order() {
        use PushAction::*;
        // (searching, unwoken sleepers, alive, demand up) -> action
        let table = [
            ((1, 1, 2, false), Nothing),
            ((0, 1, 2, false), Wake),
            ((0, 0, 0, false), Start),
            ((0, 0, 1, false), Start),
            ((0, 0, 2, false), RaiseDemand),
            ((0, 0, 2, true), Nothing),
            ((0, 0, 300, false), RaiseDemand),
            ((0, 0, 512, false), Nothing),
        ];
        for ((searching, unwoken, alive, demand), action) in table {
            assert_eq!(
                push(searching, unwoken, alive, demand),
                action,
                "searching {searching}, unwoken {unwoken}, alive {alive}, demand {demand}"
            );
        }
    }

    #[test]
    fn a_take_wakes_sleepers_for_the_jobs_no_searcher_will_take() {
        // (queued, searching, unwoken sleepers) -> sleepers woken
        let table = [
            // A burst: jobs wait, threads sleep, nobody searches: a tree of wake-ups.
            ((300, 0, 255), WAKE_FANOUT),
            // One searcher already on its way: still jobs for more.
            ((300, 1, 255), WAKE_FANOUT),
            // Two jobs left, one searcher for them: one more thread.
            ((2, 1, 255), 1),
            // As many searchers as jobs: nobody.
            ((3, 3, 255), 0),
            ((0, 0, 255), 0),
            // No sleepers (cached work on the threads per core): nothing to wake.
            ((300, 0, 0), 0),
            ((300, 0, 1), 1),
        ];
        for ((queued, searching, unwoken), woken) in table {
            let view = TakeView {
                queued,
                searching,
                unwoken_sleepers: unwoken,
            };
            assert_eq!(
                on_take(view),
                woken,
                "queued {queued}, searching {searching}, unwoken {unwoken}"
            );
        }
    }

    #[test]
    fn eager_threads_never_pass_max_threads() {
        let view = PushView {
            searching: 0,
            unwoken_sleepers: 0,
            alive: 1,
            eager_threads: 2,
            max_threads: 1,
            demand_up: false,
        };
        assert_eq!(on_push(view), PushAction::Nothing);
    }

    /// Runs a sequence of looks, each `(ms since start, [(steps, state)])` for
    /// threads 0, 1, ..., and returns how many threads each look's tick starts,
    /// with `queued` jobs waiting and `alive` = the number of threads.
    fn ticks(queued: usize, looks: Looks<'_>) -> Vec<usize> {
        ticks_with(queued, looks, false)
    }

    /// [`ticks`], and with `stalled` no job started or finished since the first look.
    fn ticks_with(queued: usize, looks: Looks<'_>, stalled: bool) -> Vec<usize> {
        let start = Instant::now();
        let mut last_seen = Vec::new();
        looks
            .iter()
            .map(|(ms, threads)| {
                let samples: Vec<Sample> = threads
                    .iter()
                    .enumerate()
                    .map(|(id, &(steps, state))| Sample { id, steps, state })
                    .collect();
                let now = start + Duration::from_millis(*ms);
                let stalled_for = match stalled {
                    true => now - start,
                    false => Duration::ZERO,
                };
                let census = look(&samples, &mut last_seen, now, stalled_for);
                let view = TickView {
                    queued,
                    optional_queued: 0,
                    searching: 0,
                    alive: samples.len(),
                    max_threads: 512,
                    cores: 2,
                    stalled_for,
                };
                let started = on_tick(view, &census);
                if started > 0 {
                    mark_answered(&mut last_seen);
                }
                started
            })
            .collect()
    }

    #[test]
    fn one_asleep_sample_never_grows_the_pool() {
        // A cached stat that slept on a lock once: seen asleep at one look only.
        assert_eq!(ticks(100, &[(0, &[(1, SLEEP), (1, RUN)])]), [0]);
        assert_eq!(
            ticks(
                100,
                &[(0, &[(1, SLEEP), (1, RUN)]), (1, &[(3, RUN), (3, RUN)])]
            ),
            [0, 0]
        );
    }

    #[test]
    fn short_waits_for_a_lock_never_grow_the_pool() {
        // A cached walk on 2 threads: one holds a lock (or was preempted holding
        // it), the other waits for it, at look after look, on new jobs and on one.
        let looks: Looks<'_> = &[
            (0, &[(1, RUN), (1, WAIT)]),
            (1, &[(3, WAIT), (3, WAIT)]),
            (2, &[(5, WAIT), (3, WAIT)]),
            (LONG_WAIT.as_millis() as u64 - 1, &[(5, RUN), (3, WAIT)]),
        ];
        assert_eq!(ticks(300, looks), [0, 0, 0, 0]);
        // A waiter starved by an unfair lock that the other thread keeps taking:
        // the same job waiting look after look while jobs finish.
        let starved: Looks<'_> = &[
            (0, &[(1, WAIT), (1, RUN)]),
            (10, &[(1, WAIT), (31, RUN)]),
            (30, &[(1, WAIT), (91, RUN)]),
            (60, &[(1, WAIT), (181, WAIT)]),
        ];
        assert_eq!(ticks(300, starved), [0, 0, 0, 0]);
        // The same looks with the waits taken for sleeps in the kernel (a census
        // that cannot tell them apart) grew it at once.
        let as_sleeps: Looks<'_> = &[
            (0, &[(1, RUN), (1, SLEEP)]),
            (1, &[(3, SLEEP), (3, SLEEP)]),
            (2, &[(5, SLEEP), (3, SLEEP)]),
            (LONG_WAIT.as_millis() as u64 - 1, &[(5, RUN), (3, SLEEP)]),
        ];
        assert_ne!(ticks(300, as_sleeps), [0, 0, 0, 0]);
    }

    #[test]
    fn a_wait_as_long_as_long_wait_in_one_job_counts_as_asleep() {
        // Jobs that wait for each other (a barrier): each thread waits in its job
        // at every look and no job starts or finishes; at LONG_WAIT they are
        // asleep, and every thread is.
        let long = LONG_WAIT.as_millis() as u64;
        let looks: Looks<'_> = &[
            (0, &[(1, WAIT), (1, WAIT)]),
            (long / 2, &[(1, WAIT), (1, WAIT)]),
            (long, &[(1, WAIT), (1, WAIT)]),
            // Answered: not again for the same jobs.
            (long + 1, &[(1, WAIT), (1, WAIT)]),
        ];
        assert_eq!(ticks_with(300, looks, true), [0, 0, 300, 0]);
        // The same waits while jobs start and finish elsewhere: no thread.
        assert_eq!(ticks(300, looks), [0, 0, 0, 0]);
        // A wait that was interrupted (the job ran between two looks) starts again.
        let looks: Looks<'_> = &[
            (0, &[(1, WAIT), (1, RUN)]),
            (long / 2, &[(1, RUN), (1, RUN)]),
            (long, &[(1, WAIT), (1, RUN)]),
        ];
        assert_eq!(ticks_with(300, looks, true), [0, 0, 0]);
        // Beside a thread computing one long job: two for the waiter, as for a
        // sleeper.
        let looks: Looks<'_> = &[(0, &[(1, WAIT), (1, RUN)]), (long, &[(1, WAIT), (1, RUN)])];
        assert_eq!(ticks_with(300, looks, true), [0, STARTS_PER_ASLEEP_STUCK]);
        // A sleep in the kernel after a wait in the last job is not "asleep twice".
        let looks: Looks<'_> = &[(0, &[(1, WAIT), (1, RUN)]), (1, &[(3, SLEEP), (3, RUN)])];
        assert_eq!(ticks(300, looks), [0, 0]);
    }

    #[test]
    fn every_thread_asleep_twice_starts_a_thread_per_queued_job() {
        // A slow mount: both threads asleep at two looks, 300 jobs waiting.
        let looks: Looks<'_> = &[
            (0, &[(1, SLEEP), (1, SLEEP)]),
            (1, &[(1, SLEEP), (1, SLEEP)]),
        ];
        assert_eq!(ticks(300, looks), [0, 300]);
        // Never more than the queue.
        assert_eq!(ticks(5, looks), [0, 5]);
    }

    #[test]
    fn short_sleeping_jobs_count_even_when_the_job_changed() {
        // Jobs shorter than a tick: a new job at every look, asleep at each.
        let looks: Looks<'_> = &[
            (0, &[(1, SLEEP), (1, SLEEP)]),
            (1, &[(5, SLEEP), (9, SLEEP)]),
        ];
        assert_eq!(ticks(300, looks), [0, 300]);
    }

    #[test]
    fn some_threads_asleep_start_two_each() {
        // Thread 0 asleep on one job, thread 1 computing: two threads for thread 0.
        let looks: Looks<'_> = &[(0, &[(1, SLEEP), (1, RUN)]), (1, &[(1, SLEEP), (3, RUN)])];
        assert_eq!(ticks(300, looks), [0, STARTS_PER_ASLEEP_STUCK]);
    }

    #[test]
    fn a_stuck_thread_is_answered_once_per_job() {
        let looks: Looks<'_> = &[
            (0, &[(1, SLEEP), (1, RUN)]),
            (1, &[(1, SLEEP), (3, RUN)]),
            (2, &[(1, SLEEP), (5, RUN)]),
            // Its next job, asleep again: counts again.
            (3, &[(3, SLEEP), (7, RUN)]),
        ];
        assert_eq!(ticks(300, looks), [0, 2, 0, 2]);
    }

    #[test]
    fn cached_work_never_grows_the_pool() {
        // Busy threads that run, on new jobs at every look.
        let looks: Looks<'_> = &[
            (0, &[(1, RUN), (1, RUN)]),
            (1, &[(3, RUN), (5, RUN)]),
            (2, &[(9, RUN), (7, RUN)]),
            (100, &[(11, RUN), (13, RUN)]),
        ];
        assert_eq!(ticks(300, looks), [0, 0, 0, 0]);
    }

    #[test]
    fn a_long_computation_gets_one_thread_while_cores_are_not_flooded() {
        let looks: Looks<'_> = &[
            (0, &[(1, RUN), (1, RUN)]),
            (LONG_JOB.as_millis() as u64, &[(1, RUN), (3, RUN)]),
        ];
        assert_eq!(ticks(300, looks), [0, 1]);
        // Already COMPUTING_PER_CORE per core computing: no more.
        let crowded: Vec<(usize, Option<RunState>)> = vec![(1, RUN); COMPUTING_PER_CORE * 2];
        let looks: Looks<'_> = &[(0, &crowded), (LONG_JOB.as_millis() as u64, &crowded)];
        assert_eq!(ticks(300, looks), [0, 0]);
    }

    #[test]
    fn unknown_state_is_treated_as_computing() {
        let long = LONG_JOB.as_millis() as u64;
        // Unknown threads, however long on one job and however many looks: never
        // the all-asleep burst, only the long-job rule's one thread.
        let looks: Looks<'_> = &[
            (0, &[(1, UNKNOWN), (1, UNKNOWN)]),
            (1, &[(1, UNKNOWN), (1, UNKNOWN)]),
            (long, &[(1, UNKNOWN), (1, UNKNOWN)]),
        ];
        assert_eq!(ticks(300, looks), [0, 0, 1]);
        // And not while two threads per core compute (or might).
        let crowded: Vec<(usize, Option<RunState>)> = vec![(1, UNKNOWN); COMPUTING_PER_CORE * 2];
        let looks: Looks<'_> = &[(0, &crowded), (long, &crowded)];
        assert_eq!(ticks(300, looks), [0, 0]);
        // An unknown thread beside asleep ones keeps the burst off: two per asleep.
        let looks: Looks<'_> = &[
            (0, &[(1, SLEEP), (1, UNKNOWN)]),
            (1, &[(1, SLEEP), (1, UNKNOWN)]),
        ];
        assert_eq!(ticks(300, looks), [0, STARTS_PER_ASLEEP_STUCK]);
    }

    #[test]
    fn idle_threads_are_not_classified() {
        let looks: Looks<'_> = &[(0, &[(2, IDLE), (1, SLEEP)]), (1, &[(2, IDLE), (1, SLEEP)])];
        // Thread 1 asleep-stuck, thread 0 idle: not every thread asleep, so two.
        assert_eq!(ticks(300, looks), [0, 2]);
    }

    #[test]
    fn optional_jobs_wait_for_long_computations_but_not_for_sleepers() {
        let long = Census {
            threads: 2,
            computing: 2,
            long: 1,
            ..Census::default()
        };
        let view = TickView {
            queued: 3,
            optional_queued: 3,
            searching: 0,
            alive: 2,
            max_threads: 512,
            cores: 2,
            stalled_for: Duration::ZERO,
        };
        assert_eq!(on_tick(view, &long), 0);
        assert_eq!(
            on_tick(
                TickView {
                    optional_queued: 2,
                    ..view
                },
                &long
            ),
            1
        );
        let asleep = Census {
            threads: 2,
            asleep: 2,
            asleep_stuck: 2,
            ..Census::default()
        };
        assert_eq!(on_tick(view, &asleep), 3);
    }

    #[test]
    fn a_stalled_queue_gets_a_thread_whatever_the_states() {
        // Four unknown (so: computing) threads at the cap of two per core, on their
        // jobs for a second: the long-job rule says no more, the stall says one.
        let census = Census {
            threads: 4,
            computing: 4,
            ..Census::default()
        };
        let view = TickView {
            queued: 8,
            optional_queued: 0,
            searching: 0,
            alive: 4,
            max_threads: 512,
            cores: 2,
            stalled_for: STALL - Duration::from_millis(1),
        };
        assert_eq!(on_tick(view, &census), 0);
        assert_eq!(
            on_tick(
                TickView {
                    stalled_for: STALL,
                    ..view
                },
                &census
            ),
            1
        );
        // Never past max_threads, never while a thread searches.
        let full = TickView {
            stalled_for: STALL,
            max_threads: 4,
            ..view
        };
        assert_eq!(on_tick(full, &census), 0);
        let searching = TickView {
            stalled_for: STALL,
            searching: 1,
            ..view
        };
        assert_eq!(on_tick(searching, &census), 0);
    }

    #[test]
    fn a_tick_never_starts_past_max_threads_or_while_a_thread_searches() {
        let census = Census {
            threads: 2,
            asleep: 2,
            asleep_stuck: 2,
            ..Census::default()
        };
        let view = TickView {
            queued: 1000,
            optional_queued: 0,
            searching: 0,
            alive: 500,
            max_threads: 512,
            cores: 2,
            stalled_for: Duration::ZERO,
        };
        assert_eq!(on_tick(view, &census), 12);
        assert_eq!(
            on_tick(
                TickView {
                    searching: 1,
                    ..view
                },
                &census
            ),
            0
        );
        assert_eq!(on_tick(TickView { queued: 0, ..view }, &census), 0);
    }
}
