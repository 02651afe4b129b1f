//! `metadata_batch`: stat many paths in few pool trips, with as many threads as help.
//!
//! The tree-compare workload of the first seed stats millions of files; one pool
//! trip per `stat` costs more than the `stat` itself on a local disk. So the paths
//! are packed into one buffer (one allocation for the whole batch, not one per
//! path) and a few *workers*, each one pool job, claim runs of paths from a shared
//! cursor until none are left.
//!
//! How many workers: as many as there are cores to start with. A `stat` served from
//! the cache is pure CPU, and more threads than cores only add context switches
//! (the first version sent one job per chunk and woke 27 threads on 2 cores). A
//! worker whose run of paths made it *sleep* in the kernel (voluntary context
//! switches, as on NFS or a cold disk) starts one more worker, up to the pool's
//! `max_threads`, so a slow mount gets the parallelism it needs within a few runs.
//!
//! Results are put in input order by the workers themselves, as runs finish (a run
//! that finishes before the one in front of it waits in a short list), so the
//! copying happens on the pool, in parallel with other stats, and each worker
//! reuses one buffer for all its runs instead of allocating one per run. Measured on
//! 100,000 cached paths (2 cores, 5 runs each): collecting every run and copying
//! them into place at the end took 109–129 ms and 11,400 page faults; this takes
//! 95–106 ms and 7,300 (`std` on one thread: 162–171 ms, on two: 81–96 ms).
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
use crate::sync::{lock, AtomicBool, AtomicUsize, DynArc as Arc, Mutex, Ordering};

/// The fewest paths a worker of [`metadata_batch`](super::Fs::metadata_batch)
/// claims at once (its first run, and every run after one that slept).
///
/// # Examples
///
/// ```
/// use aopen::fs::MIN_BATCH_CHUNK;
///
/// let pool = aopen::Pool::builder().max_threads(2).build()?;
/// // Up to MIN_BATCH_CHUNK paths are one run: one pool job, so one thread.
/// let paths = vec![std::env::temp_dir(); MIN_BATCH_CHUNK];
/// let results = aopen::block_on(pool.fs().metadata_batch(&paths))?;
/// assert!(results.iter().all(|meta| meta.as_ref().is_ok_and(|m| m.is_dir())));
/// assert_eq!(pool.stats().threads_alive, 1);
/// # Ok::<(), std::io::Error>(())
/// ```
pub const MIN_BATCH_CHUNK: usize = 64;

/// The most paths a worker claims at once: runs that never sleep double up to
/// this, so that fast stats pay for few claims, while slow paths hold back little.
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
        let task = self.pool.unblock(move || batch.work());
        lock(&self.tasks).push(task);
    }

    /// One worker: claims runs of paths until none are left.
    fn work(self: &Arc<Self>) {
        let total = self.paths.len();
        let mut run = Vec::new();
        let mut claim = MIN_BATCH_CHUNK;
        while !self.stopped.load(Ordering::Relaxed) {
            let start = self.cursor.fetch_add(claim, Ordering::Relaxed);
            if start >= total {
                break;
            }
            let range: Range<usize> = start..(start + claim).min(total);
            let len = range.len();
            let sleeps_before = voluntary_switches();
            run.extend(range.map(|i| {
                let path = self.paths.get(i);
                std::fs::metadata(path).map_err(|err| with_path("stat", path, err))
            }));
            lock(&self.assembly).deliver(start, &mut run);
            let slept = voluntary_switches().saturating_sub(sleeps_before);
            if slept.saturating_mul(4) >= len as u64 {
                // A quarter or more of these stats waited on I/O: another thread
                // can use the time this one spends asleep.
                claim = MIN_BATCH_CHUNK;
                if self.cursor.load(Ordering::Relaxed) < total {
                    self.start_worker();
                }
            } else {
                claim = (claim * 2).min(MAX_BATCH_CHUNK);
            }
        }
    }
}

/// How often this thread has slept in the kernel so far (`ru_nvcsw` on Linux), or 0
/// if the system will not say (outside Linux: then the batch just stays at one
/// worker per core).
fn voluntary_switches() -> u64 {
    crate::sys::voluntary_switches().unwrap_or(0)
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
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let max_workers = pool
            .max_threads()
            .min(total.div_ceil(MIN_BATCH_CHUNK))
            .max(1);
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
        for _ in 0..cores.min(max_workers) {
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
