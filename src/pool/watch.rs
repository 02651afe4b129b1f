//! The watcher and its sampler: what the growth rule (`growth.rs`) needs to see.
//!
//! While every thread is busy and jobs wait, a push raises the watcher's *demand*
//! (`growth::on_push`), starting the watcher thread if none runs. Each tick the
//! watcher samples every pool thread (its step count, and, while it runs a job, its
//! state in the kernel: [`sample_state`]), hands the samples to `growth::look` and
//! `growth::on_tick`, and starts the threads they ask for.
//!
//! - Ticks start at [`MIN_TICK`] and double up to [`MAX_TICK`] while nothing is
//!   started, so a pool busy with cheap jobs pays about 500 wake-ups a second for the
//!   watcher; starting threads snaps the tick back.
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
//!   pool grows until they meet.
//! - **At most `max_threads` workers.** The watcher is not one of them; it exits as
//!   soon as the pool has all its workers.
//! - If the OS refuses the watcher thread, the pool starts a worker instead, as a
//!   pool without a watcher would.
//! - Each look at a thread's state opens its `/proc` file for a moment: one
//!   descriptor outside the budget, well inside the headroom the default budget
//!   leaves under `RLIMIT_NOFILE`.
//!
//! A thread waiting on a lock is told from one waiting on I/O where the system says
//! which call a thread sleeps in (Linux: a futex wait is `Waiting`); elsewhere both
//! are asleep, and lock-bound jobs grow the pool, as any blocking pool's would.
//!
//! Under loom the pool starts every thread eagerly (`eager_threads == max_threads`),
//! so the watcher never runs in a model: its decisions depend on timing and on
//! `/proc`, which a model cannot see. The rule itself is a pure function, tested on
//! tables in `growth.rs`; `tests/pool.rs` checks the whole on real threads.
//!
//! [`Pool::shutdown`]: super::Pool::shutdown

use std::time::Duration;
#[cfg(not(loom))]
use std::time::Instant;

#[cfg(not(loom))]
use super::growth::{self, RunState, Sample, TickView};
#[cfg(not(loom))]
use super::sched::Inner;
#[cfg(not(loom))]
use crate::sync::{lock, thread, wait_timeout, Arc};
use crate::sync::{DynArc, HintUsize, Ordering};
use crate::sys;

/// The first tick after demand appears, and the tick after a blocked thread was seen.
#[cfg_attr(loom, allow(dead_code))]
pub(super) const MIN_TICK: Duration = Duration::from_micros(200);

/// The longest tick: how long a newly blocked thread can wait before the watcher
/// notices it, once the pool has been busy for a while with nothing blocked.
#[cfg_attr(loom, allow(dead_code))]
pub(super) const MAX_TICK: Duration = Duration::from_millis(2);

/// What the watcher can see of one pool thread: its kernel thread id, and how many
/// jobs it started and finished (odd while it runs one).
///
/// Only the owning thread writes; the watcher reads. The counts feed a heuristic,
/// not a synchronisation, so they are relaxed atomics that loom need not see.
pub(super) struct Progress {
    /// The kernel thread id (Linux's `gettid`), 0 until registered or where the
    /// system has none to read states by (`sys::current_thread_id`).
    tid: HintUsize,
    /// The thread's `pthread_t` on Unix, for its CPU clock (the census without
    /// `/proc`); 0 where the system gives none (`sys::current_thread_clock`).
    pthread: HintUsize,
    steps: HintUsize,
}

impl Drop for Progress {
    fn drop(&mut self) {
        // The thread's clock handle on Windows; nothing on Unix.
        sys::release_thread_clock(self.pthread.load(Ordering::Relaxed));
    }
}

impl Progress {
    pub(super) fn new() -> DynArc<Progress> {
        DynArc::new(Progress {
            tid: HintUsize::new(0),
            pthread: HintUsize::new(0),
            steps: HintUsize::new(0),
        })
    }

    /// Called once by the pool thread this belongs to, on that thread.
    pub(super) fn register_current_thread(&self) {
        self.tid.store(sys::current_thread_id(), Ordering::Relaxed);
        // An opaque number, only ever given back to `sys::thread_cpu_time`.
        self.pthread
            .store(sys::current_thread_clock(), Ordering::Relaxed);
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
/// The state of kernel thread `tid` of this process: `Running` on a core or ready
/// for one, `Waiting` asleep in a futex (a lock, a condition, a channel: another
/// thread of this process), `Asleep` in any other call (a slow `open`, NFS or disk
/// I/O), `Unknown` when it cannot be read (no `/proc`, or `census` off).
pub(super) fn sample_state(tid: usize, census: bool) -> RunState {
    if !census {
        return RunState::Unknown;
    }
    // `/proc/self/task/<tid>/wchan` (or `stat`) on Linux; unknown elsewhere (`sys/`).
    match sys::thread_state(tid) {
        sys::ThreadState::Running => RunState::Running,
        sys::ThreadState::Asleep => RunState::Asleep,
        sys::ThreadState::Waiting => RunState::Waiting,
        sys::ThreadState::Unknown => RunState::Unknown,
    }
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
            .stack_size(WATCHER_STACK)
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
        let mut last_seen = Vec::new();
        let mut clocks = CpuClocks::default();
        // The threads' step counts at the last look that saw one change, and when:
        // how long the pool has made no progress at all (see `growth::STALL`).
        let mut progress = (usize::MAX, Instant::now());
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
                sleep = wait_timeout(&this.watch, sleep, idle_deadline - now);
                tick = MIN_TICK;
                // What the threads did while nobody waited says nothing about the
                // jobs to come.
                last_seen.clear();
                progress = (usize::MAX, Instant::now());
                continue;
            }
            // Demand: look again after one tick (a retire wakes us early; pushes
            // do not, they only raise the demand, which is already up).
            sleep = wait_timeout(&this.watch, sleep, tick);
            drop(sleep);
            let samples = this.samples(Some(&mut clocks));
            let now = Instant::now();
            let steps = samples
                .iter()
                .fold(0usize, |sum, sample| sum.wrapping_add(sample.steps));
            if steps != progress.0 {
                progress = (steps, now);
            }
            let stalled_for = now.saturating_duration_since(progress.1);
            let census = growth::look(&samples, &mut last_seen, now, stalled_for);
            sleep = lock(&this.sleep);
            idle_deadline = Instant::now() + this.config.idle_timeout;
            let view = TickView {
                queued: this.queued.load(Ordering::SeqCst),
                optional_queued: this.optional_queued.load(Ordering::Relaxed),
                searching: this.searching.load(Ordering::SeqCst),
                alive: sleep.alive,
                max_threads: this.config.max_threads,
                cores: this.eager_threads,
                stalled_for,
            };
            if view.queued == 0 {
                // Drained: wait for the next time every thread is busy.
                sleep.watch_demand = false;
                continue;
            }
            let start = growth::on_tick(view, &census);
            if start == 0 {
                tick = (tick * 2).min(MAX_TICK);
                continue;
            }
            tick = MIN_TICK;
            growth::mark_answered(&mut last_seen);
            // A stall answered: the next one is counted from now.
            progress.1 = now;
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

    /// One sample per pool thread: its step count and, while it runs a job, its
    /// state. With the sleep census on, states come from `/proc` (read without the
    /// lock: a kernel thread id stays a harmless number after the thread exits).
    /// Otherwise, if `clocks` is given, from each thread's CPU clock against the
    /// last look's ([`CpuClocks`]), read under the stealers lock, which a thread
    /// leaves before it exits, so its `pthread_t` is alive while we use it.
    pub(super) fn samples(&self, clocks: Option<&mut CpuClocks>) -> Vec<Sample> {
        let now = Instant::now();
        let stealers = lock(&self.stealers);
        let mut threads: Vec<(usize, usize, usize, Option<Duration>)> = stealers
            .iter()
            .map(|(id, _, progress)| {
                let steps = progress.steps.load(Ordering::Relaxed);
                (*id, steps, progress.tid.load(Ordering::Relaxed), None)
            })
            .collect();
        if !self.config.sleep_census && clocks.is_some() {
            for ((_, _, _, cpu), (_, _, progress)) in threads.iter_mut().zip(stealers.iter()) {
                *cpu = cpu_time(progress.pthread.load(Ordering::Relaxed));
            }
        }
        drop(stealers);
        match clocks {
            Some(clocks) if !self.config.sleep_census => {
                clocks.states(&threads, now, self.eager_threads)
            }
            _ => threads
                .into_iter()
                .map(|(id, steps, tid, _)| Sample {
                    id,
                    steps,
                    state: (steps % 2 == 1).then(|| sample_state(tid, self.config.sleep_census)),
                })
                .collect(),
        }
    }
}

/// The census without `/proc`, from each thread's CPU clock: a thread busy at both
/// ends of a window of at least [`CPU_WINDOW`] whose clock advanced by less than
/// [`ASLEEP_CPU_SHARE`] of the window was asleep (in one job or in several short
/// ones); one that advanced more was running. Each verdict stands until the next
/// window closes; before a thread's first window closes it is unknown.
///
/// A CPU clock cannot tell a thread asleep from one preempted, waiting for a core.
/// The window is long against the scheduler's time slices, so a thread sharing a
/// core with a few others still shows its share; and while the whole process used
/// at least [`BUSY_PROCESS_SHARE`] of its cores in the window, no thread counts as
/// asleep (the cores are what they wait for). The price, said plainly: this census
/// sees a slow mount a few milliseconds later than `/proc` does, a process busy
/// computing elsewhere does not grow the pool for its slow calls, and a machine
/// loaded many times over by *other* processes can look like sleep.
#[cfg(not(loom))]
#[derive(Default)]
pub(super) struct CpuClocks {
    /// Per thread number: CPU time and wall time at the start of its window, and
    /// the verdict of its last closed window.
    threads: Vec<(usize, Duration, Instant, Option<RunState>)>,
    /// The process's CPU time and wall time at the start of its window, and whether
    /// it kept its cores busy in its last closed one.
    process: Option<(Duration, Instant)>,
    process_busy: bool,
}

/// The shortest window over which [`CpuClocks`] judges a thread.
#[cfg(not(loom))]
const CPU_WINDOW: Duration = longer(
    Duration::from_millis(4),
    // Windows counts CPU time in clock ticks of 15.6 ms: judged over less than a
    // few ticks, a computing thread would often show none and look asleep.
    Duration::from_nanos(4 * sys::THREAD_CLOCK_RESOLUTION.as_nanos() as u64),
);

/// The longer of two durations, in a `const`.
#[cfg(not(loom))]
const fn longer(a: Duration, b: Duration) -> Duration {
    if a.as_nanos() >= b.as_nanos() {
        a
    } else {
        b
    }
}

/// The share of wall time below which a busy thread counts as asleep by its CPU
/// clock: a thread making 1 ms calls to a slow mount uses 1–2 % of it (10–20 µs of
/// CPU a call), one computing on a machine oversubscribed 30 times still gets 3 %.
#[cfg(not(loom))]
const ASLEEP_CPU_SHARE: f64 = 0.03;

/// See [`CpuClocks`]: the share of the process's cores in use above which threads
/// that did not advance count as preempted rather than asleep.
#[cfg(not(loom))]
const BUSY_PROCESS_SHARE: f64 = 0.5;

#[cfg(not(loom))]
impl CpuClocks {
    fn states(
        &mut self,
        threads: &[(usize, usize, usize, Option<Duration>)],
        now: Instant,
        cores: usize,
    ) -> Vec<Sample> {
        if let Some(cpu) = process_cpu_time() {
            match self.process {
                Some((before, since)) if now.saturating_duration_since(since) >= CPU_WINDOW => {
                    let wall = now.saturating_duration_since(since).as_secs_f64() * cores as f64;
                    let used = cpu.saturating_sub(before).as_secs_f64();
                    self.process_busy = used >= BUSY_PROCESS_SHARE * wall;
                    self.process = Some((cpu, now));
                }
                Some(_) => {}
                None => self.process = Some((cpu, now)),
            }
        }
        let mut next = Vec::with_capacity(threads.len());
        let samples = threads
            .iter()
            .map(|&(id, steps, _, cpu)| {
                let busy = steps % 2 == 1;
                let entry = self.threads.iter().find(|entry| entry.0 == id).copied();
                let mut kept = match (entry, cpu) {
                    // Not busy: its window starts again at its next job.
                    (_, None) => None,
                    (_, Some(_)) if !busy => None,
                    (None, Some(cpu)) => Some((id, cpu, now, None)),
                    (Some((_, before, since, verdict)), Some(cpu)) => {
                        let wall = now.saturating_duration_since(since);
                        if wall >= CPU_WINDOW {
                            let used = cpu.saturating_sub(before).as_secs_f64();
                            let asleep =
                                used < ASLEEP_CPU_SHARE * wall.as_secs_f64() && !self.process_busy;
                            let verdict = if asleep {
                                RunState::Asleep
                            } else {
                                RunState::Running
                            };
                            Some((id, cpu, now, Some(verdict)))
                        } else {
                            Some((id, before, since, verdict))
                        }
                    }
                };
                let state = busy.then(|| {
                    kept.as_ref()
                        .and_then(|entry| entry.3)
                        .unwrap_or(RunState::Unknown)
                });
                if let Some(entry) = kept.take() {
                    next.push(entry);
                }
                Sample { id, steps, state }
            })
            .collect();
        self.threads = next;
        samples
    }
}

/// The CPU time this whole process has used, if the system will say (`sys/`).
#[cfg(not(loom))]
fn process_cpu_time() -> Option<Duration> {
    sys::process_cpu_time()
}

/// The CPU time of the thread `pthread` names (a live pool thread's
/// `sys::current_thread_clock`), if the system will say: its clock on Linux and
/// FreeBSD, `thread_info` on macOS, unknown on Windows (`sys/`). The caller holds
/// the lock the thread leaves before it exits.
#[cfg(not(loom))]
fn cpu_time(pthread: usize) -> Option<Duration> {
    sys::thread_cpu_time(pthread)
}

/// The watcher's stack: it only samples and starts threads.
#[cfg(not(loom))]
const WATCHER_STACK: usize = 64 * 1024;
