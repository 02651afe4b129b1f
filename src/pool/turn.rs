//! Turns: how long a pool thread keeps a core before it lets another thread have it.
//!
//! A pool thread that runs cached work back to back (a walk's stats, 128 to a job)
//! never sleeps, so the scheduler decides alone when it gives up its core. Linux's
//! (EEVDF) lets it run until its time slice is used up, and notices that at the next
//! clock tick: up to 4 ms at `HZ=250`. An event loop preempted on that core waits as
//! long, even with a short slice of its own (`executor::set_time_slice`), which only
//! helps it when it *wakes*. Measured beside a million-file compare, 3–5 % of a 1 ms
//! ticker's ticks were more than 2 ms late, and in every one of them the loop's
//! thread had been switched out while runnable, not asleep.
//!
//! So a pool thread that has run jobs for [`TURN`] since it last slept or yielded
//! yields its core between two jobs (`sched_yield`, `SwitchToThread`): the kernel
//! picks the thread owed the core, which is this one again when nobody else waits
//! (one system call, about a microsecond, once per turn).
//!
//! Invariants: a thread yields only between jobs, never inside one, and at most once
//! per [`TURN`] of running; jobs shorter than that in all (a caller's round trips)
//! never pay for a yield. Under loom turns never end: time is outside the model, and
//! every yield would multiply its interleavings.

use std::time::{Duration, Instant};

/// How long a pool thread runs jobs, without sleeping, before it yields its core
/// between two of them. A quarter of a millisecond bounds what a thread preempted on
/// the same core waits for it to about that plus one job, and costs a busy thread
/// one system call (and, when someone was waiting, one switch) per turn.
pub(super) const TURN: Duration = if cfg!(loom) {
    Duration::MAX
} else {
    Duration::from_micros(250)
};

/// One pool thread's current turn on its core.
#[derive(Debug)]
pub(super) struct Turn {
    /// When the thread last got its core back: it started, woke up, or yielded.
    started: Instant,
}

impl Turn {
    /// A turn that starts at `now`.
    pub(super) fn starting(now: Instant) -> Turn {
        Turn { started: now }
    }

    /// The thread let its core go and has it back at `now`: a new turn. Called
    /// after a search that found nothing, which yielded at least once between its
    /// rounds and may have slept too.
    pub(super) fn restart(&mut self, now: Instant) {
        self.started = now;
    }

    /// Called between two jobs at `now`: whether the turn is over, so the thread
    /// should yield now. If it is, the next turn starts at `now`.
    pub(super) fn is_over(&mut self, now: Instant) -> bool {
        let over = now.saturating_duration_since(self.started) >= TURN;
        if over {
            self.started = now;
        }
        over
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::Pool;

    #[test]
    fn a_turn_ends_after_turn_and_starts_again_there() {
        let t0 = Instant::now();
        let at = |micros| t0 + Duration::from_micros(micros);
        let mut turn = Turn::starting(t0);
        // (time between jobs, turn over?): over at 250 µs, then counted from there.
        let table = [
            (0, false),
            (100, false),
            (249, false),
            (250, true),
            (251, false),
            (499, false),
            (500, true),
            (2_000, true), // a long job: over once, not once per quarter it ran
            (2_100, false),
        ];
        for (micros, over) in table {
            assert_eq!(
                turn.is_over(at(micros)),
                over,
                "between jobs at {micros} µs"
            );
        }
        // Woken after a sleep: the turn counts from the wake-up.
        turn.restart(at(10_000));
        assert!(!turn.is_over(at(10_200)));
        assert!(turn.is_over(at(10_250)));
    }

    #[test]
    fn a_thread_that_runs_jobs_back_to_back_yields_between_them() {
        const JOBS: usize = 20;
        const JOB: Duration = Duration::from_micros(100);
        let pool = Pool::builder().max_threads(1).build().unwrap();
        let before = pool.turns_ended();
        // All queued before the first runs, so the one thread never sleeps between
        // them: 20 jobs of at least 100 µs each are at least 2 ms of one turn
        // after another, so at least 2 ms / (TURN + JOB) yields in all.
        let tasks: Vec<_> = (0..JOBS)
            .map(|_| {
                pool.unblock(|| {
                    let start = Instant::now();
                    while start.elapsed() < JOB {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        crate::block_on(async {
            for task in tasks {
                task.await;
            }
        });
        let yielded = pool.turns_ended() - before;
        let least = (JOBS as u128 * JOB.as_micros()) / (TURN + JOB).as_micros();
        assert!(
            yielded as u128 >= least,
            "{yielded} yields over {JOBS} jobs of {JOB:?}, expected at least {least}"
        );
    }
}
