//! A semaphore with waiters: the descriptor budget makes opens wait, not fail.
//!
//! Run it with `cargo run --example 04_budget`.
//!
//! A process may hold only so many descriptors (`ulimit -n`); past that, `open(2)`
//! fails with `EMFILE`. A program that starts opens faster than it closes files hits
//! that wall. aopen puts a counting semaphore in front of it: every pool has a
//! `Budget` of N permits, an open takes one *before* `open(2)`, and the file gives it
//! back only *after* `close(2)` returned. With no permit free, the open's future
//! queues as a waiter and returns `Pending`; each close that returns a permit wakes
//! the next waiter, which takes it and goes on to `open(2)`. Back pressure instead of
//! an error, and the count of descriptors held can never pass N.
//!
//! Here the budget is 2, two files are held open, and four more opens are started:
//! they wait (`permit_waiters: 4`); when one held file closes, they go through one
//! after another on that single permit. Exits non-zero if the budget is ever
//! exceeded or an open fails.

use std::cell::Cell;
use std::io;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use aopen::{LocalExecutor, Pool, PoolStats};

/// Descriptors the pool may hold at once.
const BUDGET: usize = 2;
/// Pool threads: any number works; the budget, not the threads, limits the opens.
const THREADS: usize = 4;
/// Files we open in all: more than the budget.
const FILES: usize = 6;
/// The longest we wait for the pool to reach a state before failing loudly.
const DEADLINE: Duration = Duration::from_secs(5);

/// Awaits (polling `pool.stats()` between short sleeps) until `ok` holds; panics
/// with the last stats after [`DEADLINE`]. Sleeping here lets the executor run the
/// other tasks, whose progress we are watching.
async fn until(pool: &Pool, what: &str, ok: impl Fn(&PoolStats) -> bool) -> PoolStats {
    let start = Instant::now();
    loop {
        let stats = pool.stats();
        if ok(&stats) {
            return stats;
        }
        assert!(start.elapsed() < DEADLINE, "{what}: still {stats:?}");
        aopen::sleep(Duration::from_millis(1)).await;
    }
}

/// One task's work: open (waiting for a permit if need be), read, close. Records the
/// most descriptors the pool held while this task held one.
async fn open_read_close(pool: Pool, path: PathBuf, peak: Rc<Cell<usize>>) -> io::Result<()> {
    let mut file = pool.fs().open(&path).await?;
    let stats = pool.stats();
    peak.set(peak.get().max(stats.descriptors_held));
    let mut text = String::new();
    file.read_to_string(&mut text).await?;
    let (held, waiting) = (stats.descriptors_held, stats.permit_waiters);
    println!("  {text} opened: descriptors held {held}, opens still waiting {waiting}");
    file.close().await // the permit goes back after close(2) returned
}

/// Removes the example's directory when dropped, also if the demo fails.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn main() -> io::Result<()> {
    let dir = std::env::temp_dir().join(format!("aopen-example-04-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let dir = TempDir(dir);
    let paths: Vec<PathBuf> = (0..FILES).map(|i| dir.0.join(format!("f{i}"))).collect();
    for (i, path) in paths.iter().enumerate() {
        std::fs::write(path, format!("file {i}"))?;
    }
    let pool = Pool::builder()
        .max_threads(THREADS)
        .descriptor_budget(BUDGET)
        .build()?;
    let budget = pool.budget();
    println!("pool with a budget of {BUDGET}: {budget:?}");

    let ex = LocalExecutor::new();
    let peak = Rc::new(Cell::new(0));
    ex.run(async {
        // Take the whole budget and keep it.
        let first = pool.fs().open(&paths[0]).await?;
        let second = pool.fs().open(&paths[1]).await?;
        println!("holding 2 files:       {:?}", pool.stats());

        // Four more opens, each in its own task. They cannot get a permit, so each
        // queues on the budget and returns Pending: no open(2) runs, no EMFILE.
        let tasks: Vec<_> = paths[2..]
            .iter()
            .map(|path| {
                ex.spawn(open_read_close(
                    pool.clone(),
                    path.clone(),
                    Rc::clone(&peak),
                ))
            })
            .collect();
        let waiting = until(&pool, "4 waiters", |s| s.permit_waiters == FILES - 2).await;
        println!("4 more opens started:  {waiting:?}");
        // A caller that would rather not wait can ask without queueing: none free.
        let extra = budget.try_acquire();
        println!("  budget now: {budget:?}; try_acquire() = {extra:?}");
        assert_eq!(waiting.descriptors_held, BUDGET);
        assert!(extra.is_none(), "a permit beyond the budget");

        // Closing file 0 returns one permit and wakes one waiter. With file 1 still
        // held, that single permit is all the four share: each opens, reads, closes,
        // and its close wakes the next. They go through one at a time, held <= 2.
        first.close().await?;
        println!("closed file 0; its permit passes from waiter to waiter:");
        for task in tasks {
            task.await?;
        }
        println!("all four done:         {:?}", pool.stats());
        second.close().await?;
        io::Result::Ok(())
    })?;
    pool.shutdown(DEADLINE)?;
    println!("done:                  {:?}; {budget:?}", pool.stats());
    println!("peak descriptors held: {} (budget {BUDGET})", peak.get());
    assert!(peak.get() <= BUDGET, "the budget was exceeded");
    assert_eq!(budget.available(), BUDGET, "a permit was not returned");
    Ok(())
}
