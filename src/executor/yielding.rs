//! Whether a thread about to park gives its core away first, and when it stops.
//!
//! Parking costs a sleep and a wake-up: a futex call on each side and two context
//! switches. A thread whose wake is microseconds away (a short pool job) does better
//! to yield its core a few times first ([`YIELDS`] `sched_yield`s), looking for the
//! wake after each: while no other thread wants the core a yield returns at once,
//! and a round trip to the pool costs about 1 µs instead of 6 (`benches/compare.rs`,
//! `noop-1`: 20,000 round trips one after another, 24 ms with yields, 128 ms without).
//!
//! But a yield on a core that another thread wants hands it over, and under EEVDF
//! (Linux 6.6 on) the yielding thread also gives up the rest of its slice: it waits
//! behind every thread that can run, while they compute until a clock tick (4 ms at
//! 250 Hz). An executor's thread on a machine busy with pool threads lost a tick that
//! way at many parks: in `examples/tree_compare --million` its 1 ms ticker was over
//! 2 ms late on 15-20 % of its ticks, against 3-5 % when it never yielded.
//!
//! So a yield that comes back late ([`LATE_YIELD`]: another thread ran) ends the
//! yields, and the thread parks without yielding for a quiet period: [`FIRST_QUIET`],
//! doubled by each late yield after it up to [`MAX_QUIET`], and back to the first
//! once a park's yields all come back at once. On a busy machine a thread then risks
//! a late yield about once per quiet period, and on an idle one it always yields.
//! Measured: 6-9 % of the compare's ticks over 2 ms late, and the round trips of
//! `benches/compare.rs` level with always yielding within that bench's noise. The
//! state is per thread ([`GATE`]): what a yield measures is the thread's own core.
//!
//! Under loom nothing yields: yields would only multiply the interleavings (so the
//! gate goes unused there).

#![cfg_attr(loom, allow(dead_code))]

use std::time::{Duration, Instant};

/// Yields before a park sleeps, at most.
pub(super) const YIELDS: usize = 16;

/// A yield that takes longer than this ran another thread: the core is wanted. (One
/// that finds no other thread to run returns in about a microsecond. 20 µs let
/// more late yields through: 8-11 % of the compare's ticks late, against 6-9 %.)
pub(super) const LATE_YIELD: Duration = Duration::from_micros(5);

/// The first quiet period after a late yield, and the longest one.
pub(super) const FIRST_QUIET: Duration = Duration::from_millis(10);
pub(super) const MAX_QUIET: Duration = Duration::from_secs(1);

/// A thread's yield state: when it may yield again, and the quiet period a late
/// yield starts then.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Gate {
    quiet_until: Option<Instant>,
    next_quiet: Duration,
}

impl Gate {
    /// Yielding, with no late yield seen.
    pub(super) const OPEN: Gate = Gate {
        quiet_until: None,
        next_quiet: FIRST_QUIET,
    };

    /// Whether a park at `now` may yield.
    pub(super) fn may_yield(self, now: Instant) -> bool {
        self.quiet_until.map_or(true, |until| now >= until)
    }

    /// The state after a park at `now` that yielded: `late` if one of its yields
    /// came back late (which ended its yields).
    pub(super) fn after_yields(self, now: Instant, late: bool) -> Gate {
        match late {
            true => Gate {
                quiet_until: Some(now + self.next_quiet),
                next_quiet: (self.next_quiet * 2).min(MAX_QUIET),
            },
            false => Gate::OPEN,
        }
    }
}

#[cfg(not(loom))]
thread_local! {
    /// This thread's [`Gate`].
    static GATE: std::cell::Cell<Gate> = const { std::cell::Cell::new(Gate::OPEN) };
}

/// Yields the core up to [`YIELDS`] times, calling `look` before each yield and
/// once after the last, until it returns `Some`; `None` if it never did (then the
/// caller sleeps). Yields not at all while this thread's gate is shut, and stops at
/// a late yield, shutting it.
pub(super) fn yield_until<T>(mut look: impl FnMut() -> Option<T>) -> Option<T> {
    if let Some(found) = look() {
        return Some(found);
    }
    #[cfg(not(loom))]
    {
        let gate = GATE.try_with(std::cell::Cell::get).unwrap_or(Gate::OPEN);
        let mut now = Instant::now();
        if !gate.may_yield(now) {
            return None;
        }
        let mut late = false;
        let mut found = None;
        for _ in 0..YIELDS {
            crate::sync::thread::yield_now();
            let before = now;
            now = Instant::now();
            found = look();
            if found.is_some() {
                break;
            }
            if now - before > LATE_YIELD {
                late = true;
                break;
            }
        }
        let _ = GATE.try_with(|cell| cell.set(gate.after_yields(now, late)));
        found
    }
    #[cfg(loom)]
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each row: a park's time (ms after the start) and whether one of its yields
    /// came back late, if it yielded; then whether it may yield.
    fn replay(rows: &[(u64, Option<bool>, bool)]) {
        let start = Instant::now();
        let mut gate = Gate::OPEN;
        for (i, &(at_ms, late, may)) in rows.iter().enumerate() {
            let now = start + Duration::from_millis(at_ms);
            assert_eq!(gate.may_yield(now), may, "row {i}: {rows:?}");
            if let Some(late) = late {
                assert!(may, "row {i} yields, so it must be allowed to");
                gate = gate.after_yields(now, late);
            }
        }
    }

    #[test]
    fn a_thread_whose_yields_return_at_once_always_yields() {
        replay(&[
            (0, Some(false), true),
            (1, Some(false), true),
            (2, Some(false), true),
        ]);
    }

    #[test]
    fn a_late_yield_stops_the_yields_for_the_first_quiet_period() {
        let quiet = FIRST_QUIET.as_millis() as u64;
        replay(&[
            (0, Some(true), true),
            (1, None, false),
            (quiet - 1, None, false),
            (quiet, Some(false), true),
            // Its yields came back at once: yielding again, and the next late one
            // starts the first quiet period over.
            (quiet + 1, Some(true), true),
            (2 * quiet, None, false),
            (2 * quiet + 1, Some(false), true),
        ]);
    }

    #[test]
    fn late_yields_in_a_row_double_the_quiet_period_up_to_the_most() {
        let mut rows = Vec::new();
        let (mut at, mut quiet) = (0, FIRST_QUIET.as_millis() as u64);
        for _ in 0..12 {
            rows.push((at, Some(true), true));
            rows.push((at + quiet - 1, None, false));
            at += quiet;
            quiet = (quiet * 2).min(MAX_QUIET.as_millis() as u64);
        }
        assert_eq!(
            quiet,
            MAX_QUIET.as_millis() as u64,
            "the table reaches the cap"
        );
        replay(&rows);
    }
}
