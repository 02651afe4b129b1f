//! `metadata_batch`: stat many paths in few pool trips, with as many threads as help.
//!
//! The tree-compare workload of the first seed stats millions of files; one pool
//! trip per `stat` costs more than the `stat` itself on a local disk. So the paths
//! are packed into one buffer (one allocation for the whole batch, not one per
//! path) and *workers*, each one pool job, claim runs of paths from a shared cursor
//! until none are left.
//!
//! # How many workers, how long their runs
//!
//! The batch does not decide how many threads it gets: it *offers* work, and the
//! pool's growth rule (`pool/growth.rs`) decides. The batch starts with one worker
//! per thread the pool has idle (at least one), and each worker, as it starts,
//! queues [`WORKER_FANOUT`] more while paths are left (at most one worker per path,
//! and at most the pool's `max_threads`). On cached paths the pool keeps one thread
//! per core, asleep between calls: the batch starts that many workers, the few they
//! queue run once those are done, find nothing left and end (a handful of jobs for a
//! whole batch). On a slow mount every thread sleeps in the kernel, so the pool
//! starts a thread for each queued worker, each of those queues more, and the batch
//! reaches hundreds of stats in flight within a few of the watcher's ticks; once
//! the pool has grown, its threads sleep between batches and the next batch has a
//! worker for each from its start, woken as a tree (`growth::on_take`), instead of
//! waiting for workers to start workers. A batch of N paths at latency L with room
//! for C calls at once takes about N × L / C. Measured on the slow FUSE mount (5 ms
//! a round trip, batches of 256 paths on 256 sleeping threads, 2 cores, load 1.5):
//! with one first worker starting the others, the last of the 256 reached a thread
//! 4–13 ms after the batch began; with a worker per idle thread from the start,
//! 4–5 ms. A batch still ends with its slowest stat (15 ms at best, 19–20 ms for
//! the slowest of 256 there), and has no next paths to overlap that tail with: in
//! `benches/sweep.rs` (5 ms × 256, load 4–6) batches of exactly 256 paths one after
//! another took 1.8–1.9× ideal, one batch of all 5,119 paths on 256 threads
//! 1.13–1.24×.
//!
//! A worker's runs start at one path and double, up to [`MAX_BATCH_CHUNK`] and to a
//! fair share of what is left (`left / (CLAIM_SHARES × workers)`, guided
//! self-scheduling). Cached stats thus pay for few claims, while on a slow mount,
//! where hundreds of workers share the paths, runs stay at a path or two and no
//! worker is left with a long tail of slow stats.
//!
//! Results are put in input order by the workers themselves, as runs finish (a run
//! that finishes before the one in front of it waits in a short list), so the
//! copying happens on the pool, in parallel with other stats, and each worker
//! reuses one buffer for its runs.
//!
//! Invariants: every path is claimed by exactly one worker (one `fetch_add` cursor);
//! results go back in input order; dropping the future stops workers at their next
//! claim and skips those not started yet.

use std::ffi::OsStr;
use std::fs::Metadata;
use std::io;
use std::ops::Range;
use std::path::Path;

use super::error::with_path;
use crate::pool::{BlockingTask, Pool};
use crate::sync::{lock, try_lock, AtomicBool, AtomicUsize, DynArc as Arc, Mutex, Ordering};

/// The paths a worker of [`metadata_batch`](super::Fs::metadata_batch) claims in
/// its first run; later runs double, up to [`MAX_BATCH_CHUNK`] and a fair share of
/// the paths left.
///
/// # Examples
///
/// ```
/// use aopen::fs::MIN_BATCH_CHUNK;
///
/// let pool = aopen::Pool::builder().max_threads(2).build()?;
/// let paths = vec![std::env::temp_dir(); 64 * MIN_BATCH_CHUNK];
/// let results = aopen::block_on(pool.fs().metadata_batch(&paths))?;
/// assert!(results.iter().all(|meta| meta.as_ref().is_ok_and(|m| m.is_dir())));
/// assert!(pool.stats().threads_alive <= 2); // never past max_threads
/// # Ok::<(), std::io::Error>(())
/// ```
pub const MIN_BATCH_CHUNK: usize = 1;

/// Workers each starting worker queues while paths are left (see the module docs).
const WORKER_FANOUT: usize = 2;

/// A run is at most `1 / (CLAIM_SHARES × workers)` of the paths left.
const CLAIM_SHARES: usize = 4;

/// The most paths a worker claims at once: runs double up to this (and to a fair
/// share of what is left), so that fast stats pay for few claims.
///
/// # Examples
///
/// ```
/// use aopen::fs::MAX_BATCH_CHUNK;
///
/// let here = std::env::temp_dir();
/// let nowhere = here.join(format!("aopen-doc-no-such-path-{}", std::process::id()));
/// // Three maximal runs' worth of paths, every other one missing:
/// let paths: Vec<_> = (0..3 * MAX_BATCH_CHUNK).map(|i| [&here, &nowhere][i % 2]).collect();
/// let pool = aopen::Pool::builder().max_threads(2).build()?;
/// let results = aopen::block_on(pool.fs().metadata_batch(&paths))?;
/// // The runs are put back together in input order.
/// assert!(results.iter().enumerate().all(|(i, meta)| meta.is_ok() == (i % 2 == 0)));
/// # Ok::<(), std::io::Error>(())
/// ```
pub const MAX_BATCH_CHUNK: usize = 1024;

/// Many paths in one buffer: path `i` is `bytes[ends[i - 1]..ends[i]]`.
struct PackedPaths {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl PackedPaths {
    fn new<I>(paths: I) -> PackedPaths
    where
        I: IntoIterator,
        I::Item: AsRef<Path>,
    {
        let paths = paths.into_iter();
        let mut packed = PackedPaths {
            bytes: Vec::new(),
            ends: Vec::with_capacity(paths.size_hint().0),
        };
        for path in paths {
            packed
                .bytes
                .extend_from_slice(path.as_ref().as_os_str().as_encoded_bytes());
            packed.ends.push(packed.bytes.len());
        }
        packed
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn get(&self, i: usize) -> &Path {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        // SAFETY: `bytes[start..ends[i]]` are the encoded bytes of one whole path,
        // pushed by `new` on this process.
        Path::new(unsafe { OsStr::from_encoded_bytes_unchecked(&self.bytes[start..self.ends[i]]) })
    }
}

/// The results of one claimed run: its first index and one result per path.
type Run = (usize, Vec<io::Result<Metadata>>);

/// The batch's results, put in input order as runs finish.
struct Assembly {
    /// Results of paths `0..results.len()`, in order.
    results: Vec<io::Result<Metadata>>,
    /// Runs that finished before the run in front of them (at most about one per
    /// worker).
    early: Vec<Run>,
}

impl Assembly {
    /// Takes the results of the run that starts at `start` (leaving `run` empty,
    /// with its capacity, for the worker's next run).
    fn deliver(&mut self, start: usize, run: &mut Vec<io::Result<Metadata>>) {
        if start != self.results.len() {
            self.early.push((start, std::mem::take(run)));
            return;
        }
        self.results.append(run);
        while let Some(i) = self
            .early
            .iter()
            .position(|(start, _)| *start == self.results.len())
        {
            let (_, mut next) = self.early.swap_remove(i);
            self.results.append(&mut next);
        }
    }
}

/// What the workers of one batch share.
struct Batch {
    paths: PackedPaths,
    /// The next unclaimed index.
    cursor: AtomicUsize,
    /// Workers started so far, and the most there may be.
    workers: AtomicUsize,
    max_workers: usize,
    /// Set when the caller dropped the batch's future.
    stopped: AtomicBool,
    /// Every worker's task, so the caller can await workers that workers started.
    tasks: Mutex<Vec<BlockingTask<()>>>,
    assembly: Mutex<Assembly>,
    pool: Pool,
}

impl Batch {
    /// Starts one more worker unless there are enough.
    fn start_worker(self: &Arc<Self>) {
        let started = self.workers.fetch_add(1, Ordering::Relaxed);
        if started >= self.max_workers {
            self.workers.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        let batch = self.clone();
        // Optional: the pool starts a thread for it only while its threads sleep in
        // the kernel, never because the other workers compute for long.
        let task = self.pool.unblock_optional(move || batch.work());
        lock(&self.tasks).push(task);
    }

    /// One worker: queues more workers while paths are left, then claims runs of
    /// paths until none are left.
    fn work(self: &Arc<Self>) {
        let total = self.paths.len();
        for _ in 0..WORKER_FANOUT {
            if self.stopped.load(Ordering::Relaxed) || self.cursor.load(Ordering::Relaxed) >= total
            {
                break;
            }
            self.start_worker();
        }
        let mut run = Vec::new();
        // Runs finished while another worker held the assembly: delivered with the
        // next run, so no worker waits for the lock (a thread asleep on a lock looks
        // like one asleep on I/O to the pool, which would grow for it).
        let mut undelivered: Vec<Run> = Vec::new();
        let mut claim = MIN_BATCH_CHUNK;
        while !self.stopped.load(Ordering::Relaxed) {
            let start = self.cursor.fetch_add(claim, Ordering::Relaxed);
            if start >= total {
                break;
            }
            let range: Range<usize> = start..(start + claim).min(total);
            run.extend(range.map(|i| {
                let path = self.paths.get(i);
                std::fs::metadata(path).map_err(|err| with_path("stat", path, err))
            }));
            match try_lock(&self.assembly) {
                Some(mut assembly) => {
                    for (start, mut early) in undelivered.drain(..) {
                        assembly.deliver(start, &mut early);
                    }
                    assembly.deliver(start, &mut run);
                }
                None => undelivered.push((start, std::mem::take(&mut run))),
            }
            let left = total.saturating_sub(self.cursor.load(Ordering::Relaxed));
            let workers = self.workers.load(Ordering::Relaxed).max(1);
            let fair_share = (left / (CLAIM_SHARES * workers)).max(MIN_BATCH_CHUNK);
            claim = (claim * 2).min(MAX_BATCH_CHUNK).min(fair_share);
        }
        if !undelivered.is_empty() {
            let mut assembly = lock(&self.assembly);
            for (start, mut early) in undelivered {
                assembly.deliver(start, &mut early);
            }
        }
    }
}

/// Stops the workers of a batch whose future was dropped (or finished).
struct StopOnDrop(Arc<Batch>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stopped.store(true, Ordering::Relaxed);
        // Workers not started yet are skipped; running ones stop at their next claim.
        drop(std::mem::take(&mut *lock(&self.0.tasks)));
    }
}

/// Stats `paths` on `pool`; results in input order.
pub(crate) fn metadata_batch<I>(
    pool: Pool,
    paths: I,
) -> impl std::future::Future<Output = Vec<io::Result<Metadata>>> + Send + 'static
where
    I: IntoIterator,
    I::Item: AsRef<Path>,
{
    let paths = PackedPaths::new(paths);
    async move {
        let total = paths.len();
        if total == 0 {
            return Vec::new();
        }
        let max_workers = pool.max_threads().min(total).max(1);
        let batch = Arc::new(Batch {
            paths,
            cursor: AtomicUsize::new(0),
            workers: AtomicUsize::new(0),
            max_workers,
            stopped: AtomicBool::new(false),
            tasks: Mutex::new(Vec::new()),
            assembly: Mutex::new(Assembly {
                results: Vec::with_capacity(total),
                early: Vec::new(),
            }),
            pool,
        });
        let guard = StopOnDrop(batch.clone());
        // A worker per idle thread; they queue the next ones (see the module docs).
        for _ in 0..batch.pool.idle_threads().clamp(1, max_workers) {
            batch.start_worker();
        }
        // A worker pushes the task of any worker it starts before its own task
        // completes, so once the list is empty after a completed await, every
        // worker has finished.
        loop {
            let next = lock(&batch.tasks).pop();
            match next {
                Some(task) => task.await,
                None => break,
            }
        }
        drop(guard);
        let mut assembly = lock(&batch.assembly);
        debug_assert!(assembly.early.is_empty() && assembly.results.len() == total);
        std::mem::take(&mut assembly.results)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn packed_paths_round_trip() {
        let paths = ["a", "", "/b/c", "d\u{e9}"];
        let packed = PackedPaths::new(paths);
        assert_eq!(packed.len(), 4);
        for (i, path) in paths.iter().enumerate() {
            assert_eq!(packed.get(i), Path::new(path));
        }
    }
}
