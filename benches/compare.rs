//! `aopen` against its peers, one child process per measurement.
//!
//! ```text
//! cargo bench --bench compare              # full sizes, 5 repetitions
//! cargo bench --bench compare -- --quick   # ~1/10 sizes, 3 repetitions (CI smoke)
//! cargo bench --bench compare -- stat-64 readdir-100k   # only these workloads
//! cargo bench --bench compare -- --only slow-open --only heartbeat   # the same
//! ```
//!
//! The parent builds a file tree in a temporary directory, then re-executes its own
//! binary once per (workload, library, repetition) as `--child <workload> <library>
//! <root> <n>`. The child sets up (paths, runtime, a warm-cache `std` pass), times the
//! workload, and prints one `RESULT ...` line: wall time, CPU time, peak thread count
//! (a sampler thread reads `Threads:` of `/proc/self/status` every ~1 ms) and peak RSS
//! (`VmHWM`). Libraries are interleaved within each repetition (their order rotates
//! from one repetition to the next), ratios are taken against the row's reference
//! library within the same repetition, and the tables show medians. See
//! `benches/README.md` for what each cell measures.
//!
//! `slow-open` and `heartbeat` need a slow `open(2)`: the parent builds the
//! `LD_PRELOAD` fault shim of `tests/fault-shim` (`cargo build -p aopen-fault-shim`,
//! same target directory and profile as this binary) and runs their children with
//! `LD_PRELOAD=<shim>` and `AOPEN_FAULTS=open:delay=1ms:path=*slow*`. If the shim
//! cannot be built, those two workloads are skipped with a notice.
//!
//! Run without `--bench` (as `cargo test --all-targets` does) the binary is a smoke
//! test: 1/100 sizes, one repetition, and a non-zero exit if any child fails.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::future::Future;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::thread;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt, TryStreamExt};

/// Operations in flight for the concurrent workloads.
const IN_FLIGHT: usize = 64;
/// Operations in flight for the slow-open workloads (`slow-open`, `heartbeat`).
const SLOW_IN_FLIGHT: usize = 256;
/// How long the shim delays each `open` of a `*slow*` path.
const SLOW_DELAY: Duration = Duration::from_millis(1);
/// The shim's rules for the slow-open workloads (must agree with [`SLOW_DELAY`]).
const SLOW_FAULTS: &str = "open:delay=1ms:path=*slow*";
/// The directory of the slow-open files; its name matches the shim's `*slow*`.
const SLOW_DIR: &str = "slow-files";
/// The heartbeat's ticker period.
const TICK: Duration = Duration::from_millis(1);
/// How long the heartbeat's ticker runs before the opens start (its idle baseline).
const IDLE: Duration = Duration::from_millis(50);
/// Directories of the stat/open tree.
const STAT_DIRS: usize = 100;
/// Directories of the read tree.
const READ_DIRS: usize = 20;
/// Size of each file of the read tree.
const READ_SIZE: usize = 4096;
/// Environment variables that would change a library's defaults; children run
/// without them so every column shows what a user gets out of the box.
const CLEARED_ENV: [&str; 3] = [
    "AOPEN_MAX_THREADS",
    "AOPEN_DESCRIPTOR_BUDGET",
    "BLOCKING_MAX_THREADS",
];

// ---------------------------------------------------------------------------------
// Workloads and libraries
// ---------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Workload {
    Noop1,
    Noop64,
    Stat64,
    StatBatch,
    OpenClose,
    Read4k,
    ReadFile4k,
    ReadDir,
    SlowOpen,
    Heartbeat,
}

impl Workload {
    const ALL: [Workload; 10] = [
        Workload::Noop1,
        Workload::Noop64,
        Workload::Stat64,
        Workload::StatBatch,
        Workload::OpenClose,
        Workload::Read4k,
        Workload::ReadFile4k,
        Workload::ReadDir,
        Workload::SlowOpen,
        Workload::Heartbeat,
    ];

    fn name(self) -> &'static str {
        match self {
            Workload::Noop1 => "noop-1",
            Workload::Noop64 => "noop-64",
            Workload::Stat64 => "stat-64",
            Workload::StatBatch => "stat-batch",
            Workload::OpenClose => "open-close",
            Workload::Read4k => "read-4k",
            Workload::ReadFile4k => "read-file-4k",
            Workload::ReadDir => "readdir-100k",
            Workload::SlowOpen => "slow-open",
            Workload::Heartbeat => "heartbeat",
        }
    }

    fn from_name(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }

    /// Operations (or directory entries) at full size.
    fn full_size(self) -> usize {
        match self {
            Workload::Noop1 | Workload::Read4k | Workload::ReadFile4k => 20_000,
            Workload::Noop64 => 200_000,
            Workload::Stat64 | Workload::StatBatch | Workload::OpenClose | Workload::ReadDir => {
                100_000
            }
            Workload::SlowOpen => 2_000,
            Workload::Heartbeat => 10_000,
        }
    }

    /// Operations in flight (for the async libraries).
    fn in_flight(self) -> usize {
        match self {
            Workload::Noop1 => 1,
            Workload::SlowOpen | Workload::Heartbeat => SLOW_IN_FLIGHT,
            _ => IN_FLIGHT,
        }
    }

    /// Whether the children run under the fault shim (a slow `open`).
    fn needs_shim(self) -> bool {
        matches!(self, Workload::SlowOpen | Workload::Heartbeat)
    }

    /// The libraries that make sense for this workload.
    fn libs(self) -> &'static [Lib] {
        use Lib::*;
        match self {
            Workload::Noop1 | Workload::Noop64 => &[Aopen, AopenLocal, Blocking, TokioMt, TokioCt],
            Workload::Stat64 => &[
                Aopen, AopenLocal, Std, Std2t, Blocking, AsyncFs, TokioMt, TokioCt,
            ],
            Workload::OpenClose | Workload::Read4k | Workload::ReadFile4k => &[
                Aopen,
                AopenLocal,
                AopenUnblock,
                Std,
                Std2t,
                Blocking,
                AsyncFs,
                TokioMt,
                TokioCt,
            ],
            Workload::SlowOpen => &[
                Aopen,
                AopenLocal,
                AopenRaised,
                Std,
                Std2t,
                Blocking,
                AsyncFs,
                TokioMt,
                TokioCt,
            ],
            Workload::StatBatch => &[Aopen, Std, Std2t, Std2tKeep],
            Workload::ReadDir => &[Aopen, AopenLocal, Std, Blocking, AsyncFs, TokioMt, TokioCt],
            // One thread runs the executor, the ticker and the opens' futures; `std`
            // is the control (the opens themselves on that thread).
            Workload::Heartbeat => &[AopenLocal, Blocking, AsyncFs, TokioCt, Std],
        }
    }

    /// The column the row's ratios are taken against.
    fn reference(self) -> Lib {
        match self {
            Workload::StatBatch | Workload::ReadDir => Lib::Std,
            _ => Lib::Blocking,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Lib {
    Aopen,
    AopenLocal,
    /// `aopen` on a global pool built with `max_threads(256)`: what a user facing a
    /// slow mount sets (slow-open only).
    AopenRaised,
    /// `aopen::unblock` of the same closure as the `blocking` column: the pool's
    /// hand-off without the `File` API's one trip per call (read-4k, read-file-4k,
    /// open-close).
    AopenUnblock,
    Std,
    Std2t,
    /// stat-batch only: `std` on two threads that keep their `Metadata` and join
    /// them in input order, which is what `metadata_batch` returns (`std-2t` drops
    /// each result).
    Std2tKeep,
    Blocking,
    AsyncFs,
    TokioMt,
    TokioCt,
}

impl Lib {
    const ALL: [Lib; 11] = [
        Lib::Aopen,
        Lib::AopenLocal,
        Lib::AopenRaised,
        Lib::AopenUnblock,
        Lib::Std,
        Lib::Std2t,
        Lib::Std2tKeep,
        Lib::Blocking,
        Lib::AsyncFs,
        Lib::TokioMt,
        Lib::TokioCt,
    ];

    fn name(self) -> &'static str {
        match self {
            Lib::Aopen => "aopen",
            Lib::AopenLocal => "aopen-local",
            Lib::AopenRaised => "aopen-256t",
            Lib::AopenUnblock => "aopen-unblock",
            Lib::Std => "std",
            Lib::Std2t => "std-2t",
            Lib::Std2tKeep => "std-2t-keep",
            Lib::Blocking => "blocking",
            Lib::AsyncFs => "async-fs",
            Lib::TokioMt => "tokio-mt",
            Lib::TokioCt => "tokio-ct",
        }
    }

    fn from_name(name: &str) -> Option<Lib> {
        Lib::ALL.into_iter().find(|l| l.name() == name)
    }
}

// ---------------------------------------------------------------------------------
// The file tree
// ---------------------------------------------------------------------------------

/// `stat/dDDD/fFFFFF`: `n` empty files in [`STAT_DIRS`] directories (stat, open-close).
fn stat_paths(root: &Path, n: usize) -> Vec<PathBuf> {
    let per_dir = n / STAT_DIRS;
    let mut paths = Vec::with_capacity(n);
    for d in 0..STAT_DIRS {
        let dir = root.join("stat").join(format!("d{d:03}"));
        for f in 0..per_dir {
            paths.push(dir.join(format!("f{f:05}")));
        }
    }
    paths
}

/// `read/dDD/fFFFFF`: `n` files of [`READ_SIZE`] bytes in [`READ_DIRS`] directories;
/// every byte of file `i` is `read_byte(i)`.
fn read_paths(root: &Path, n: usize) -> Vec<PathBuf> {
    let per_dir = n / READ_DIRS;
    let mut paths = Vec::with_capacity(n);
    for d in 0..READ_DIRS {
        let dir = root.join("read").join(format!("d{d:02}"));
        for f in 0..per_dir {
            paths.push(dir.join(format!("f{f:05}")));
        }
    }
    paths
}

fn read_byte(i: usize) -> u8 {
    (i % 251) as u8
}

/// `slow-files/fFFFFF`: `n` empty files whose `open` the shim delays.
fn slow_paths(root: &Path, n: usize) -> Vec<PathBuf> {
    let dir = root.join(SLOW_DIR);
    (0..n).map(|f| dir.join(format!("f{f:05}"))).collect()
}

/// `flat/`: one directory of `n` empty files.
fn flat_dir(root: &Path) -> PathBuf {
    root.join("flat")
}

fn build_tree(root: &Path, workloads: &[Workload], divisor: usize) -> io::Result<()> {
    let size = |w: Workload| w.full_size() / divisor;
    let needs = |ws: &[Workload]| workloads.iter().any(|w| ws.contains(w));
    if needs(&[Workload::Stat64, Workload::StatBatch, Workload::OpenClose]) {
        let n = size(Workload::Stat64).max(size(Workload::OpenClose));
        create_files(&stat_paths(root, n), |_| &[])?;
    }
    if needs(&[Workload::Read4k, Workload::ReadFile4k]) {
        let n = size(Workload::Read4k).max(size(Workload::ReadFile4k));
        let contents: Vec<[u8; READ_SIZE]> = (0..251).map(|b| [b as u8; READ_SIZE]).collect();
        create_files(&read_paths(root, n), |i| {
            &contents[usize::from(read_byte(i))]
        })?;
    }
    if needs(&[Workload::ReadDir]) {
        let dir = flat_dir(root);
        let paths: Vec<PathBuf> = (0..size(Workload::ReadDir))
            .map(|i| dir.join(format!("f{i:06}")))
            .collect();
        create_files(&paths, |_| &[])?;
    }
    if needs(&[Workload::SlowOpen, Workload::Heartbeat]) {
        let n = size(Workload::SlowOpen).max(size(Workload::Heartbeat));
        create_files(&slow_paths(root, n), |_| &[])?;
    }
    // Flush the new inodes now, so that write-back does not run during measurements.
    // SAFETY: `sync(2)` takes no arguments and touches no memory of ours.
    unsafe { libc::sync() };
    Ok(())
}

/// Creates the files (and their parent directories) on two threads.
fn create_files<'a>(
    paths: &[PathBuf],
    contents: impl Fn(usize) -> &'a [u8] + Sync,
) -> io::Result<()> {
    for path in paths {
        let parent = path.parent().expect("bench paths have a parent");
        if !parent.exists() {
            fs::create_dir_all(parent)?;
        }
    }
    let half = paths.len() / 2;
    thread::scope(|s| {
        let contents = &contents;
        let workers: Vec<_> = [(0, half), (half, paths.len())]
            .into_iter()
            .map(|(start, end)| {
                s.spawn(move || -> io::Result<()> {
                    for (i, path) in paths.iter().enumerate().take(end).skip(start) {
                        fs::write(path, contents(i))?;
                    }
                    Ok(())
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().expect("tree builder panicked"))
    })
}

// ---------------------------------------------------------------------------------
// Child: measurement
// ---------------------------------------------------------------------------------

/// What a child reports.
#[derive(Clone, Copy, Debug)]
struct Sample {
    secs: f64,
    cpu_secs: f64,
    peak_threads: usize,
    peak_rss_kb: u64,
    /// The heartbeat's ticker (only for that workload).
    lateness: Option<Lateness>,
}

/// How late the heartbeat's ticker woke, in seconds.
#[derive(Clone, Copy, Debug)]
struct Lateness {
    /// The worst tick while the opens ran.
    worst: f64,
    /// The 99th percentile (nearest rank) of the ticks while the opens ran.
    p99: f64,
    /// The worst tick before the opens started: the timer's own floor.
    idle_worst: f64,
    /// Ticks while the opens ran.
    ticks: usize,
}

impl Lateness {
    fn of(ticks: &Ticks) -> Lateness {
        let mut loaded = ticks.loaded.clone();
        loaded.sort_by(f64::total_cmp);
        let rank = (loaded.len() as f64 * 0.99).ceil() as usize;
        Lateness {
            worst: loaded.last().copied().unwrap_or(0.0),
            p99: loaded.get(rank.saturating_sub(1)).copied().unwrap_or(0.0),
            idle_worst: ticks.idle.iter().copied().fold(0.0, f64::max),
            ticks: loaded.len(),
        }
    }
}

/// A thread that samples the process's thread count every ~1 ms.
struct Sampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicUsize>,
    /// CPU time the sampler thread itself used so far, in nanoseconds, so that it
    /// can be subtracted from the process's CPU time.
    own_cpu_ns: Arc<AtomicU64>,
    status: Option<fs::File>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Sampler {
    fn start() -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicUsize::new(0));
        let own_cpu_ns = Arc::new(AtomicU64::new(0));
        let status = fs::File::open("/proc/self/status").ok();
        let handle = status
            .as_ref()
            .and_then(|f| f.try_clone().ok())
            .map(|file| {
                let (stop, peak, own_cpu_ns) = (stop.clone(), peak.clone(), own_cpu_ns.clone());
                thread::spawn(move || {
                    let mut buf = vec![0; 8192];
                    while !stop.load(Ordering::Relaxed) {
                        if let Some(n) = status_field(&file, &mut buf, "Threads:") {
                            // Not counting the sampler itself.
                            peak.fetch_max(n.saturating_sub(1) as usize, Ordering::Relaxed);
                        }
                        own_cpu_ns.store(thread_cpu_ns(), Ordering::Relaxed);
                        thread::sleep(Duration::from_millis(1));
                    }
                })
            });
        Sampler {
            stop,
            peak,
            own_cpu_ns,
            status,
            handle,
        }
    }

    /// One more sample from the calling thread (so that a run shorter than the
    /// sampling period still counts).
    fn sample_now(&self) {
        if let Some(file) = &self.status {
            let mut buf = vec![0; 8192];
            if let Some(n) = status_field(file, &mut buf, "Threads:") {
                let sampler = usize::from(self.handle.is_some());
                self.peak
                    .fetch_max((n as usize).saturating_sub(sampler), Ordering::Relaxed);
            }
        }
    }

    fn finish(mut self) -> (usize, u64) {
        self.sample_now();
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
        let mut buf = vec![0; 8192];
        let rss = self
            .status
            .as_ref()
            .and_then(|f| status_field(f, &mut buf, "VmHWM:"))
            .unwrap_or(0);
        (self.peak.load(Ordering::Relaxed), rss)
    }
}

/// The number after `key` in `/proc/self/status` (re-read from offset 0 each time).
fn status_field(file: &fs::File, buf: &mut [u8], key: &str) -> Option<u64> {
    let n = file.read_at(buf, 0).ok()?;
    let text = std::str::from_utf8(&buf[..n]).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

fn rusage(who: libc::c_int) -> Duration {
    // SAFETY: `getrusage` fills the zeroed struct we pass; an all-zero `rusage` is a
    // valid value of this plain C struct.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(who, &mut usage) != 0 {
            return Duration::ZERO;
        }
        usage
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn process_cpu() -> Duration {
    rusage(libc::RUSAGE_SELF)
}

#[cfg(target_os = "linux")]
fn thread_cpu_ns() -> u64 {
    rusage(libc::RUSAGE_THREAD).as_nanos() as u64
}

#[cfg(not(target_os = "linux"))]
fn thread_cpu_ns() -> u64 {
    0
}

/// Wall and CPU time of `f` (CPU without the sampler's).
fn timed(sampler: &Sampler, f: impl FnOnce() -> io::Result<u64>) -> io::Result<(f64, f64, u64)> {
    let sampler_cpu0 = sampler.own_cpu_ns.load(Ordering::Relaxed);
    let cpu0 = process_cpu();
    let start = Instant::now();
    let items = f()?;
    let wall = start.elapsed();
    let cpu = process_cpu().saturating_sub(cpu0);
    sampler.sample_now();
    let sampler_cpu = sampler
        .own_cpu_ns
        .load(Ordering::Relaxed)
        .saturating_sub(sampler_cpu0);
    let cpu = cpu.saturating_sub(Duration::from_nanos(sampler_cpu));
    Ok((wall.as_secs_f64(), cpu.as_secs_f64(), items))
}

// ---------------------------------------------------------------------------------
// Child: drivers
// ---------------------------------------------------------------------------------

/// `op(0..n)` with at most `in_flight` futures at once, polled by the calling
/// executor (`buffer_unordered`; a plain loop for one in flight). Returns the sum.
async fn buffered<F, Fut>(n: usize, in_flight: usize, op: F) -> io::Result<u64>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = io::Result<u64>>,
{
    if in_flight == 1 {
        let mut sum = 0;
        for i in 0..n {
            sum += op(i).await?;
        }
        return Ok(sum);
    }
    stream::iter(0..n)
        .map(op)
        .buffer_unordered(in_flight)
        .try_fold(0, |sum, x| async move { Ok(sum + x) })
        .await
}

/// One spawned task of the worker pattern: takes the next index until none is left.
async fn worker<F, Fut>(next: Arc<AtomicUsize>, n: usize, op: F) -> io::Result<u64>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = io::Result<u64>>,
{
    let mut sum = 0;
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= n {
            return Ok(sum);
        }
        sum += op(i).await?;
    }
}

/// Runs `op(0..n)`, `in_flight` at a time, on `lib`'s executor; set-up (runtimes)
/// happens before the clock starts.
fn drive<F, Fut>(
    sampler: &Sampler,
    lib: Lib,
    n: usize,
    in_flight: usize,
    op: F,
) -> io::Result<(f64, f64, u64)>
where
    F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = io::Result<u64>> + Send + 'static,
{
    match lib {
        Lib::Aopen | Lib::AopenUnblock => {
            // Built from the defaults (no env overrides) before the clock starts;
            // its threads start on demand, inside the timed section.
            aopen::Pool::global();
            timed(sampler, || aopen::block_on(buffered(n, in_flight, op)))
        }
        Lib::AopenRaised => {
            aopen::Pool::builder()
                .max_threads(SLOW_IN_FLIGHT)
                .build_global()?;
            timed(sampler, || aopen::block_on(buffered(n, in_flight, op)))
        }
        Lib::AopenLocal => {
            aopen::Pool::global();
            let ex = aopen::LocalExecutor::new();
            timed(sampler, || {
                let next = Arc::new(AtomicUsize::new(0));
                let tasks: Vec<_> = (0..in_flight)
                    .map(|_| ex.spawn(worker(next.clone(), n, op.clone())))
                    .collect();
                ex.run(async {
                    let mut sum = 0;
                    for task in tasks {
                        sum += task.await?;
                    }
                    Ok(sum)
                })
            })
        }
        Lib::Blocking | Lib::AsyncFs => timed(sampler, || {
            futures::executor::block_on(buffered(n, in_flight, op))
        }),
        Lib::TokioCt => {
            let rt = tokio::runtime::Builder::new_current_thread().build()?;
            timed(sampler, || rt.block_on(buffered(n, in_flight, op)))
        }
        Lib::TokioMt => {
            let rt = tokio::runtime::Builder::new_multi_thread().build()?;
            timed(sampler, || {
                rt.block_on(async {
                    let next = Arc::new(AtomicUsize::new(0));
                    let tasks: Vec<_> = (0..in_flight)
                        .map(|_| tokio::spawn(worker(next.clone(), n, op.clone())))
                        .collect();
                    let mut sum = 0;
                    for task in tasks {
                        sum += task.await.map_err(io::Error::other)??;
                    }
                    Ok(sum)
                })
            })
        }
        Lib::Std | Lib::Std2t | Lib::Std2tKeep => unreachable!("std has no executor"),
    }
}

/// `op(0..n)` on the calling thread (`threads == 1`) or split in contiguous parts over
/// `threads` scoped threads (spawned inside the timed section).
fn run_std(
    sampler: &Sampler,
    n: usize,
    threads: usize,
    op: impl Fn(usize) -> io::Result<u64> + Sync,
) -> io::Result<(f64, f64, u64)> {
    timed(sampler, || {
        if threads == 1 {
            return (0..n).map(&op).sum();
        }
        thread::scope(|s| {
            let op = &op;
            let parts: Vec<_> = (0..threads)
                .map(|t| {
                    s.spawn(move || {
                        (t * n / threads..(t + 1) * n / threads)
                            .map(op)
                            .sum::<io::Result<u64>>()
                    })
                })
                .collect();
            // Count the short-lived workers while they surely exist.
            sampler.sample_now();
            parts
                .into_iter()
                .map(|p| p.join().expect("std worker panicked"))
                .sum::<io::Result<u64>>()
        })
    })
}

// ---------------------------------------------------------------------------------
// Child: the operations, per library
// ---------------------------------------------------------------------------------

fn check_bytes(buf: &[u8], i: usize) -> io::Result<u64> {
    // A branch-free fold, which the compiler vectorises (0.1 µs per 4 KiB in a
    // hot-cache loop): `all` stops at the first mismatch and so compares a byte at a
    // time (1.6 µs), time that lands on the executor thread for the async columns
    // and would be charged to the library under test.
    let expected = read_byte(i);
    let mismatched = buf.iter().fold(0u8, |acc, &b| acc | (b ^ expected));
    if buf.len() == READ_SIZE && mismatched == 0 {
        Ok(1)
    } else {
        Err(io::Error::other(format!("file {i}: unexpected contents")))
    }
}

fn std_stat(path: &Path) -> io::Result<u64> {
    fs::metadata(path).map(|_| 1)
}

fn std_open_close(path: &Path) -> io::Result<u64> {
    drop(fs::File::open(path)?);
    Ok(1)
}

fn std_read(path: &Path, i: usize) -> io::Result<u64> {
    let mut file = fs::File::open(path)?;
    let mut buf = vec![0; READ_SIZE];
    file.read_exact(&mut buf)?;
    drop(file);
    check_bytes(&buf, i)
}

fn std_read_file(path: &Path, i: usize) -> io::Result<u64> {
    check_bytes(&fs::read(path)?, i)
}

fn std_list(dir: &Path) -> io::Result<u64> {
    let mut count = 0;
    for entry in fs::read_dir(dir)? {
        std::hint::black_box(entry?.file_name());
        count += 1;
    }
    Ok(count)
}

/// `read_exact` on a tokio file through `poll_read` (the dev-dependency has no
/// `io-util`, so no `AsyncReadExt`).
async fn tokio_read_exact(file: &mut tokio::fs::File, buf: &mut [u8]) -> io::Result<()> {
    use tokio::io::AsyncRead;
    let mut filled = 0;
    while filled < buf.len() {
        let n = std::future::poll_fn(|cx| {
            let mut rb = tokio::io::ReadBuf::new(&mut buf[filled..]);
            match Pin::new(&mut *file).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
                Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        filled += n;
    }
    Ok(())
}

/// Runs one measurement; returns (wall secs, cpu secs, items done).
fn run_workload(
    sampler: &Sampler,
    w: Workload,
    lib: Lib,
    root: &Path,
    n: usize,
) -> io::Result<(f64, f64, u64)> {
    use Lib::*;
    let k = w.in_flight();
    match w {
        Workload::Noop1 | Workload::Noop64 => match lib {
            Aopen | AopenLocal | AopenRaised => drive(sampler, lib, n, k, |_| async {
                aopen::unblock(|| ()).await;
                Ok(1)
            }),
            Blocking => drive(sampler, lib, n, k, |_| async {
                blocking::unblock(|| ()).await;
                Ok(1)
            }),
            TokioMt | TokioCt => drive(sampler, lib, n, k, |_| async {
                tokio::task::spawn_blocking(|| ())
                    .await
                    .map_err(io::Error::other)?;
                Ok(1)
            }),
            _ => Err(unsupported(w, lib)),
        },
        Workload::Stat64 | Workload::StatBatch => {
            let paths = Arc::new(stat_paths(root, n));
            // Warm the dentry and inode caches.
            paths.iter().try_for_each(|p| std_stat(p).map(drop))?;
            match (w, lib) {
                (_, Std) => run_std(sampler, n, 1, |i| std_stat(&paths[i])),
                (_, Std2t) => run_std(sampler, n, 2, |i| std_stat(&paths[i])),
                (Workload::StatBatch, Aopen) => drive(sampler, lib, 1, 1, move |_| {
                    let batch = aopen::fs::metadata_batch(paths.iter());
                    async move {
                        let mut ok = 0;
                        for result in batch.await? {
                            result?;
                            ok += 1;
                        }
                        Ok(ok)
                    }
                }),
                (Workload::StatBatch, Std2tKeep) => timed(sampler, || {
                    let (front, back) = paths.split_at(n / 2);
                    let keep = |part: &[PathBuf]| -> Vec<io::Result<fs::Metadata>> {
                        part.iter().map(fs::metadata).collect()
                    };
                    let (front, back) = thread::scope(|s| {
                        let front = s.spawn(|| keep(front));
                        let back = s.spawn(|| keep(back));
                        // Count the short-lived workers while they surely exist.
                        sampler.sample_now();
                        (front.join(), back.join())
                    });
                    let mut results = front.expect("std worker panicked");
                    results.extend(back.expect("std worker panicked"));
                    results.into_iter().map(|result| result.map(|_| 1)).sum()
                }),
                (Workload::StatBatch, _) => Err(unsupported(w, lib)),
                (_, Std2tKeep | AopenUnblock) => Err(unsupported(w, lib)),
                (_, Aopen | AopenLocal | AopenRaised) => drive(sampler, lib, n, k, move |i| {
                    let stat = aopen::fs::metadata(&paths[i]);
                    async move { stat.await.map(|_| 1) }
                }),
                (_, Blocking) => drive(sampler, lib, n, k, move |i| {
                    let path = paths[i].clone();
                    blocking::unblock(move || std_stat(&path))
                }),
                (_, AsyncFs) => drive(sampler, lib, n, k, move |i| {
                    let path = paths[i].clone();
                    async move { async_fs::metadata(path).await.map(|_| 1) }
                }),
                (_, TokioMt | TokioCt) => drive(sampler, lib, n, k, move |i| {
                    let path = paths[i].clone();
                    async move { tokio::fs::metadata(path).await.map(|_| 1) }
                }),
            }
        }
        Workload::OpenClose | Workload::SlowOpen => {
            let paths = Arc::new(if w == Workload::SlowOpen {
                slow_paths(root, n)
            } else {
                stat_paths(root, n)
            });
            // Warm the caches with `stat`, which the shim does not slow down.
            paths.iter().try_for_each(|p| std_stat(p).map(drop))?;
            match lib {
                Std => run_std(sampler, n, 1, |i| std_open_close(&paths[i])),
                Std2t => run_std(sampler, n, 2, |i| std_open_close(&paths[i])),
                Std2tKeep => Err(unsupported(w, lib)),
                Aopen | AopenLocal | AopenRaised => drive(sampler, lib, n, k, move |i| {
                    let open = aopen::File::open(&paths[i]);
                    async move {
                        open.await?.close().await?;
                        Ok(1)
                    }
                }),
                Blocking => drive(sampler, lib, n, k, move |i| {
                    let path = paths[i].clone();
                    blocking::unblock(move || std_open_close(&path))
                }),
                AopenUnblock => drive(sampler, lib, n, k, move |i| {
                    let path = paths[i].clone();
                    aopen::unblock(move || std_open_close(&path))
                }),
                AsyncFs => drive(sampler, lib, n, k, move |i| {
                    let path = paths[i].clone();
                    async move {
                        drop(async_fs::File::open(path).await?);
                        Ok(1)
                    }
                }),
                TokioMt | TokioCt => drive(sampler, lib, n, k, move |i| {
                    let path = paths[i].clone();
                    async move {
                        drop(tokio::fs::File::open(path).await?);
                        Ok(1)
                    }
                }),
            }
        }
        Workload::Read4k => {
            let paths = Arc::new(read_paths(root, n));
            // Warm the page cache with a full std pass (which also checks the tree).
            (0..n).try_for_each(|i| std_read(&paths[i], i).map(drop))?;
            match lib {
                Std => run_std(sampler, n, 1, |i| std_read(&paths[i], i)),
                Std2t => run_std(sampler, n, 2, |i| std_read(&paths[i], i)),
                Std2tKeep => Err(unsupported(w, lib)),
                Aopen | AopenLocal | AopenRaised => drive(sampler, lib, n, k, move |i| {
                    let open = aopen::File::open(&paths[i]);
                    async move {
                        let mut file = open.await?;
                        let mut buf = vec![0; READ_SIZE];
                        file.read_exact(&mut buf).await?;
                        file.close().await?;
                        check_bytes(&buf, i)
                    }
                }),
                // One closure: what a user of `blocking` writes.
                Blocking => drive(sampler, lib, n, k, move |i| {
                    let path = paths[i].clone();
                    blocking::unblock(move || std_read(&path, i))
                }),
                AopenUnblock => drive(sampler, lib, n, k, move |i| {
                    let path = paths[i].clone();
                    aopen::unblock(move || std_read(&path, i))
                }),
                AsyncFs => drive(sampler, lib, n, k, move |i| {
                    let path = paths[i].clone();
                    async move {
                        use futures::AsyncReadExt;
                        let mut file = async_fs::File::open(path).await?;
                        let mut buf = vec![0; READ_SIZE];
                        file.read_exact(&mut buf).await?;
                        drop(file);
                        check_bytes(&buf, i)
                    }
                }),
                TokioMt | TokioCt => drive(sampler, lib, n, k, move |i| {
                    let path = paths[i].clone();
                    async move {
                        let mut file = tokio::fs::File::open(path).await?;
                        let mut buf = vec![0; READ_SIZE];
                        tokio_read_exact(&mut file, &mut buf).await?;
                        drop(file);
                        check_bytes(&buf, i)
                    }
                }),
            }
        }
        // The whole-file call each library offers: one call per file, as a user
        // who wants a file's bytes writes it.
        Workload::ReadFile4k => {
            let paths = Arc::new(read_paths(root, n));
            (0..n).try_for_each(|i| std_read_file(&paths[i], i).map(drop))?;
            match lib {
                Std => run_std(sampler, n, 1, |i| std_read_file(&paths[i], i)),
                Std2t => run_std(sampler, n, 2, |i| std_read_file(&paths[i], i)),
                Std2tKeep => Err(unsupported(w, lib)),
                Aopen | AopenLocal | AopenRaised => drive(sampler, lib, n, k, move |i| {
                    let read = aopen::fs::read(&paths[i]);
                    async move { check_bytes(&read.await?, i) }
                }),
                Blocking => drive(sampler, lib, n, k, move |i| {
                    let path = paths[i].clone();
                    blocking::unblock(move || std_read_file(&path, i))
                }),
                AopenUnblock => drive(sampler, lib, n, k, move |i| {
                    let path = paths[i].clone();
                    aopen::unblock(move || std_read_file(&path, i))
                }),
                AsyncFs => drive(sampler, lib, n, k, move |i| {
                    let path = paths[i].clone();
                    async move { check_bytes(&async_fs::read(path).await?, i) }
                }),
                TokioMt | TokioCt => drive(sampler, lib, n, k, move |i| {
                    let path = paths[i].clone();
                    async move { check_bytes(&tokio::fs::read(path).await?, i) }
                }),
            }
        }
        Workload::ReadDir => {
            let dir = Arc::new(flat_dir(root));
            std_list(&dir)?;
            match lib {
                Std => run_std(sampler, 1, 1, |_| std_list(&dir)),
                Aopen | AopenLocal | AopenRaised => drive(sampler, lib, 1, 1, move |_| {
                    let open = aopen::fs::read_dir(&*dir);
                    async move {
                        let mut entries = open.await?;
                        let mut count = 0;
                        while let Some(entry) = entries.next_entry().await? {
                            std::hint::black_box(entry.file_name());
                            count += 1;
                        }
                        Ok(count)
                    }
                }),
                // One closure: what a user of `blocking` writes.
                Blocking => drive(sampler, lib, 1, 1, move |_| {
                    let dir = dir.clone();
                    blocking::unblock(move || std_list(&dir))
                }),
                AsyncFs => drive(sampler, lib, 1, 1, move |_| {
                    let dir = dir.clone();
                    async move {
                        let mut entries = async_fs::read_dir(&*dir).await?;
                        let mut count = 0;
                        while let Some(entry) = entries.next().await {
                            std::hint::black_box(entry?.file_name());
                            count += 1;
                        }
                        Ok(count)
                    }
                }),
                TokioMt | TokioCt => drive(sampler, lib, 1, 1, move |_| {
                    let dir = dir.clone();
                    async move {
                        let mut entries = tokio::fs::read_dir(&*dir).await?;
                        let mut count = 0;
                        while let Some(entry) = entries.next_entry().await? {
                            std::hint::black_box(entry.file_name());
                            count += 1;
                        }
                        Ok(count)
                    }
                }),
                Std2t | Std2tKeep | AopenUnblock => Err(unsupported(w, lib)),
            }
        }
        Workload::Heartbeat => Err(io::Error::other("heartbeat runs in run_heartbeat")),
    }
}

// ---------------------------------------------------------------------------------
// Child: the heartbeat
// ---------------------------------------------------------------------------------

/// The heartbeat's phases, shared by the ticker and the main future.
const PHASE_IDLE: u8 = 0;
const PHASE_LOADED: u8 = 1;
const PHASE_STOP: u8 = 2;

/// The ticker's lateness samples, in seconds.
#[derive(Default)]
struct Ticks {
    /// Before the opens started.
    idle: Vec<f64>,
    /// Ticks that were due or woke while the opens ran.
    loaded: Vec<f64>,
}

/// The ticker task: sleeps [`TICK`] at a time with `sleep_until` (the library's own
/// timer) and records how late each sleep returned, until the phase is STOP.
async fn ticker<S, F>(phase: Arc<AtomicU8>, sleep_until: S) -> Ticks
where
    S: Fn(Instant) -> F,
    F: Future<Output = ()>,
{
    let mut ticks = Ticks::default();
    loop {
        let before = phase.load(Ordering::Relaxed);
        if before == PHASE_STOP {
            return ticks;
        }
        let due = Instant::now() + TICK;
        sleep_until(due).await;
        let late = due.elapsed().as_secs_f64();
        if before == PHASE_IDLE && phase.load(Ordering::Relaxed) == PHASE_IDLE {
            ticks.idle.push(late);
        } else {
            ticks.loaded.push(late);
        }
    }
}

/// The heartbeat's main future: `idle` (the ticker's baseline), then `opens`, then
/// stops the ticker and collects its samples. Returns (opens' wall secs, items, ticks).
async fn heartbeat_phases(
    phase: &AtomicU8,
    idle: impl Future<Output = ()>,
    opens: impl Future<Output = io::Result<u64>>,
    ticker: impl Future<Output = io::Result<Ticks>>,
) -> io::Result<(f64, u64, Ticks)> {
    idle.await;
    phase.store(PHASE_LOADED, Ordering::Relaxed);
    let start = Instant::now();
    let items = opens.await?;
    let secs = start.elapsed().as_secs_f64();
    phase.store(PHASE_STOP, Ordering::Relaxed);
    Ok((secs, items, ticker.await?))
}

/// Completes after one `Pending` (and an immediate wake): lets the executor run
/// other tasks, the ticker included.
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}

/// Awaits every task's count and sums them.
async fn sum_tasks<T>(tasks: Vec<T>) -> io::Result<u64>
where
    T: Future<Output = io::Result<u64>>,
{
    let mut sum = 0;
    for task in tasks {
        sum += task.await?;
    }
    Ok(sum)
}

/// One heartbeat measurement: `n` slow opens (+ close), [`SLOW_IN_FLIGHT`] worker
/// tasks on a single-threaded executor, next to a [`TICK`] ticker on the same
/// executor. Returns (opens' wall secs, CPU secs of the whole run, items, lateness).
fn run_heartbeat(
    sampler: &Sampler,
    lib: Lib,
    root: &Path,
    n: usize,
) -> io::Result<(f64, f64, u64, Lateness)> {
    let paths = Arc::new(slow_paths(root, n));
    paths.iter().try_for_each(|p| std_stat(p).map(drop))?;
    let k = SLOW_IN_FLIGHT;
    let phase = Arc::new(AtomicU8::new(PHASE_IDLE));
    let next = Arc::new(AtomicUsize::new(0));
    let measured = match lib {
        // aopen's executor and timer; `std` is the control: the same tasks call
        // `std::fs::File::open` on the executor's thread (and yield after each).
        Lib::AopenLocal | Lib::Std => {
            aopen::Pool::global();
            let ex = aopen::LocalExecutor::new();
            let tick = ex.spawn(ticker(phase.clone(), aopen::sleep_until));
            timed_heartbeat(sampler, || {
                ex.run(heartbeat_phases(
                    &phase,
                    aopen::sleep(IDLE),
                    async {
                        let spawn_worker = |paths: Arc<Vec<PathBuf>>| {
                            if lib == Lib::Std {
                                ex.spawn(worker(next.clone(), n, move |i| {
                                    let result = std_open_close(&paths[i]);
                                    async move {
                                        yield_now().await;
                                        result
                                    }
                                }))
                            } else {
                                ex.spawn(worker(next.clone(), n, move |i| {
                                    let open = aopen::File::open(&paths[i]);
                                    async move {
                                        open.await?.close().await?;
                                        Ok(1)
                                    }
                                }))
                            }
                        };
                        sum_tasks((0..k).map(|_| spawn_worker(paths.clone())).collect()).await
                    },
                    async { Ok(tick.await) },
                ))
            })
        }
        // smol's executor and timer (`async-io`), opens on `blocking`'s pool.
        Lib::Blocking | Lib::AsyncFs => {
            let ex = smol::LocalExecutor::new();
            let tick = ex.spawn(ticker(phase.clone(), |due| async move {
                smol::Timer::at(due).await;
            }));
            timed_heartbeat(sampler, || {
                smol::block_on(ex.run(heartbeat_phases(
                    &phase,
                    async {
                        smol::Timer::after(IDLE).await;
                    },
                    async {
                        let spawn_worker = |paths: Arc<Vec<PathBuf>>| {
                            if lib == Lib::AsyncFs {
                                ex.spawn(worker(next.clone(), n, move |i| {
                                    let path = paths[i].clone();
                                    async move {
                                        drop(async_fs::File::open(path).await?);
                                        Ok(1)
                                    }
                                }))
                            } else {
                                ex.spawn(worker(next.clone(), n, move |i| {
                                    let path = paths[i].clone();
                                    blocking::unblock(move || std_open_close(&path))
                                }))
                            }
                        };
                        sum_tasks((0..k).map(|_| spawn_worker(paths.clone())).collect()).await
                    },
                    async { Ok(tick.await) },
                )))
            })
        }
        // tokio's current-thread runtime and timer, opens on its blocking pool.
        Lib::TokioCt => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()?;
            let tick = rt.spawn(ticker(phase.clone(), |due| {
                tokio::time::sleep_until(tokio::time::Instant::from_std(due))
            }));
            timed_heartbeat(sampler, || {
                rt.block_on(heartbeat_phases(
                    &phase,
                    // Made inside `block_on`: a tokio timer needs the runtime's context.
                    async { tokio::time::sleep(IDLE).await },
                    async {
                        let tasks = (0..k)
                            .map(|_| {
                                let paths = paths.clone();
                                let task = tokio::spawn(worker(next.clone(), n, move |i| {
                                    let path = paths[i].clone();
                                    async move {
                                        drop(tokio::fs::File::open(path).await?);
                                        Ok(1)
                                    }
                                }));
                                async move { task.await.map_err(io::Error::other)? }
                            })
                            .collect();
                        sum_tasks(tasks).await
                    },
                    async { tick.await.map_err(io::Error::other) },
                ))
            })
        }
        _ => Err(unsupported(Workload::Heartbeat, lib)),
    }?;
    let (secs, cpu_secs, items, ticks) = measured;
    Ok((secs, cpu_secs, items, Lateness::of(&ticks)))
}

/// [`timed`] for the heartbeat: CPU time of the whole run, wall time of the opens.
fn timed_heartbeat(
    sampler: &Sampler,
    f: impl FnOnce() -> io::Result<(f64, u64, Ticks)>,
) -> io::Result<(f64, f64, u64, Ticks)> {
    let mut out = None;
    let (_, cpu_secs, items) = timed(sampler, || {
        let (secs, items, ticks) = f()?;
        out = Some((secs, ticks));
        Ok(items)
    })?;
    let (secs, ticks) = out.expect("set whenever timed returns Ok");
    Ok((secs, cpu_secs, items, ticks))
}

/// How many calls the shim's first rule acted on, or `None` if the shim is not
/// preloaded into this process.
fn shim_fired() -> Option<u64> {
    // SAFETY: `dlsym` with `RTLD_DEFAULT` and a NUL-terminated name.
    let found = unsafe { libc::dlsym(libc::RTLD_DEFAULT, b"aopen_fault_fired\0".as_ptr().cast()) };
    if found.is_null() {
        return None;
    }
    // SAFETY: the shim defines this symbol as `extern "C" fn(u64) -> u64`.
    let fired =
        unsafe { std::mem::transmute::<*mut libc::c_void, extern "C" fn(u64) -> u64>(found) };
    Some(fired(0))
}

fn unsupported(w: Workload, lib: Lib) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{} has no {} variant", w.name(), lib.name()),
    )
}

fn child_main(args: &[String]) -> io::Result<()> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad child arguments {args:?}"),
        )
    };
    let [w, lib, root, n] = args else {
        return Err(bad());
    };
    let w = Workload::from_name(w).ok_or_else(bad)?;
    let lib = Lib::from_name(lib).ok_or_else(bad)?;
    let n: usize = n.parse().map_err(|_| bad())?;
    if w.needs_shim() && shim_fired().is_none() {
        return Err(io::Error::other(format!(
            "{} needs the fault shim in LD_PRELOAD",
            w.name()
        )));
    }
    let sampler = Sampler::start();
    let (secs, cpu_secs, items, lateness) = if w == Workload::Heartbeat {
        let (secs, cpu_secs, items, lateness) = run_heartbeat(&sampler, lib, Path::new(root), n)?;
        (secs, cpu_secs, items, Some(lateness))
    } else {
        let (secs, cpu_secs, items) = run_workload(&sampler, w, lib, Path::new(root), n)?;
        (secs, cpu_secs, items, None)
    };
    let (peak_threads, peak_rss_kb) = sampler.finish();
    if let Some(fired) = shim_fired().filter(|_| w.needs_shim()) {
        // Every open was delayed (none bypassed the shim, e.g. through a raw syscall).
        if fired < n as u64 {
            return Err(io::Error::other(format!(
                "{} on {}: the shim delayed {fired} opens, expected {n}",
                w.name(),
                lib.name()
            )));
        }
    }
    if items != n as u64 {
        return Err(io::Error::other(format!(
            "{} on {}: {items} items done, expected {n}",
            w.name(),
            lib.name()
        )));
    }
    let mut line = format!(
        "RESULT secs={secs} cpu_secs={cpu_secs} peak_threads={peak_threads} peak_rss_kb={peak_rss_kb}"
    );
    if let Some(l) = lateness {
        let _ = write!(
            line,
            " worst={} p99={} idle_worst={} ticks={}",
            l.worst, l.p99, l.idle_worst, l.ticks
        );
    }
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}

// ---------------------------------------------------------------------------------
// Parent
// ---------------------------------------------------------------------------------

struct Config {
    divisor: usize,
    reps: usize,
    timeout: Duration,
    workloads: Vec<Workload>,
    mode: &'static str,
}

fn parse_sample(line: &str) -> Option<Sample> {
    let rest = line.strip_prefix("RESULT ")?;
    let mut fields = BTreeMap::new();
    for kv in rest.split_whitespace() {
        let (k, v) = kv.split_once('=')?;
        fields.insert(k, v);
    }
    Some(Sample {
        secs: fields.get("secs")?.parse().ok()?,
        cpu_secs: fields.get("cpu_secs")?.parse().ok()?,
        peak_threads: fields.get("peak_threads")?.parse().ok()?,
        peak_rss_kb: fields.get("peak_rss_kb")?.parse().ok()?,
        lateness: match fields.get("worst") {
            None => None,
            Some(worst) => Some(Lateness {
                worst: worst.parse().ok()?,
                p99: fields.get("p99")?.parse().ok()?,
                idle_worst: fields.get("idle_worst")?.parse().ok()?,
                ticks: fields.get("ticks")?.parse().ok()?,
            }),
        },
    })
}

/// Builds the fault shim with cargo (same target directory and profile as this
/// binary, like `tests/faults.rs`) and returns the path of the `.so`.
fn build_shim() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    // <target>/<profile>/deps/compare-<hash>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot find the profile directory")?;
    let target_dir = profile_dir
        .parent()
        .ok_or("cannot find the target directory")?;
    let profile = profile_dir
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or("the profile directory has no name")?;
    // `cargo bench` sets CARGO for the binary it runs; else the one that built us.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--quiet", "-p", "aopen-fault-shim", "--target-dir"])
        .arg(target_dir)
        .stdin(Stdio::null());
    match profile {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let output = cmd.output().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let mut err = format!(
            "`cargo build -p aopen-fault-shim` failed ({})",
            output.status
        );
        if !stderr.trim().is_empty() {
            let _ = write!(err, ": {}", stderr.trim());
        }
        return Err(err);
    }
    let so = profile_dir.join("libaopen_fault_shim.so");
    if so.is_file() {
        Ok(so)
    } else {
        Err(format!(
            "the shim was built but {} is missing",
            so.display()
        ))
    }
}

/// Runs one measurement in a child process (under the fault shim if `shim` is set).
fn run_child(
    exe: &Path,
    w: Workload,
    lib: Lib,
    root: &Path,
    n: usize,
    timeout: Duration,
    shim: Option<&Path>,
) -> Result<Sample, String> {
    let mut cmd = Command::new(exe);
    if let Some(shim) = shim {
        cmd.env("LD_PRELOAD", shim).env("AOPEN_FAULTS", SLOW_FAULTS);
    }
    cmd.arg("--child")
        .args([w.name(), lib.name()])
        .arg(root)
        .arg(n.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for var in CLEARED_ENV {
        cmd.env_remove(var);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start child: {e}"))?;
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {timeout:?}"));
            }
            Ok(None) => thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("wait failed: {e}")),
        }
    };
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut out);
    }
    if !status.success() {
        return Err(format!("child exited with {status}"));
    }
    out.lines()
        .find_map(parse_sample)
        .ok_or_else(|| format!("no RESULT line in {out:?}"))
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    Some(if xs.len() % 2 == 1 {
        xs[mid]
    } else {
        (xs[mid - 1] + xs[mid]) / 2.0
    })
}

fn fmt_secs(secs: f64) -> String {
    if secs < 1e-3 {
        format!("{:.0} µs", secs * 1e6)
    } else if secs < 1.0 {
        format!("{:.1} ms", secs * 1e3)
    } else {
        format!("{secs:.2} s")
    }
}

fn fmt_count(n: usize) -> String {
    if n >= 1000 && n % 1000 == 0 {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// `/proc/version`'s first three words ("Linux version 6.x").
fn kernel() -> String {
    fs::read_to_string("/proc/version")
        .map(|v| v.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| std::env::consts::OS.to_string())
}

/// The 1-minute load average (`/proc/loadavg`), to judge how busy the machine was.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".to_string())
}

/// The file system type of the mount that holds `dir` (from `/proc/self/mounts`).
fn fs_type(dir: &Path) -> String {
    let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (_dev, point, kind) = (it.next()?, it.next()?, it.next()?);
            dir.starts_with(point)
                .then(|| (point.len(), kind.to_string()))
        })
        .max()
        .map_or_else(|| "unknown".to_string(), |(_, kind)| kind)
}

/// One repetition's samples of one workload, by library.
type Rep = BTreeMap<Lib, Result<Sample, String>>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        if let Err(err) = child_main(&args[1..]) {
            eprintln!("compare child {:?}: {err}", &args[1..]);
            std::process::exit(1);
        }
        // Skip runtime and pool tear-down: the measurement is done.
        std::process::exit(0);
    }
    match parent_main(&args) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(err) => {
            eprintln!("compare: {err}");
            std::process::exit(2);
        }
    }
}

fn parse_args(args: &[String]) -> io::Result<Config> {
    let bench = args.iter().any(|a| a == "--bench");
    let quick = args.iter().any(|a| a == "--quick");
    let mut reps = None;
    let mut workloads = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            // `--only <workload>` is the same as naming the workload.
            "--bench" | "--quick" | "--only" => {}
            "--reps" => {
                let n = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n: &usize| n > 0);
                reps = Some(n.ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "--reps needs a positive number",
                    )
                })?);
            }
            name => workloads.push(Workload::from_name(name).ok_or_else(|| {
                let names: Vec<_> = Workload::ALL.iter().map(|w| w.name()).collect();
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "unknown argument {name:?}; workloads are {}",
                        names.join(", ")
                    ),
                )
            })?),
        }
    }
    if workloads.is_empty() {
        workloads = Workload::ALL.to_vec();
    }
    workloads.sort();
    workloads.dedup();
    let (divisor, default_reps, timeout, mode) = match (bench, quick) {
        (true, false) => (1, 5, Duration::from_secs(300), "full"),
        (true, true) => (10, 3, Duration::from_secs(60), "quick"),
        // `cargo test --all-targets` runs bench binaries without `--bench`.
        (false, _) => (
            100,
            1,
            Duration::from_secs(120),
            "test (no --bench: tiny sizes)",
        ),
    };
    Ok(Config {
        divisor,
        reps: reps.unwrap_or(default_reps),
        timeout,
        workloads,
        mode,
    })
}

fn parent_main(args: &[String]) -> io::Result<bool> {
    let mut config = parse_args(args)?;
    let exe = std::env::current_exe()?;
    let mut notices = Vec::new();
    let shim = if config.workloads.iter().any(|w| w.needs_shim()) {
        eprintln!("[compare] building the fault shim (cargo build -p aopen-fault-shim)");
        match build_shim() {
            Ok(so) => Some(so),
            Err(err) => {
                let skipped: Vec<_> = config
                    .workloads
                    .iter()
                    .filter(|w| w.needs_shim())
                    .map(|w| w.name())
                    .collect();
                let notice = format!(
                    "notice: skipped {} — they need the LD_PRELOAD fault shim, which could \
                     not be built: {err}",
                    skipped.join(", ")
                );
                eprintln!("[compare] {notice}");
                notices.push(notice);
                config.workloads.retain(|w| !w.needs_shim());
                None
            }
        }
    } else {
        None
    };
    let base = std::env::var_os("AOPEN_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::Builder::new()
        .prefix("aopen-bench-")
        .tempdir_in(&base)?;
    let root = tmp.path();

    let load_before = load_average();
    let started = Instant::now();
    eprintln!("[compare] building the file tree in {}", root.display());
    build_tree(root, &config.workloads, config.divisor)?;
    let tree_secs = started.elapsed().as_secs_f64();
    eprintln!("[compare] tree ready in {tree_secs:.1} s");

    let mut all: Vec<(Workload, Vec<Rep>)> = Vec::new();
    let mut ok = true;
    for &w in &config.workloads {
        let n = w.full_size() / config.divisor;
        let libs = w.libs();
        let mut reps = Vec::new();
        for rep in 0..config.reps {
            eprintln!("[compare] {} rep {}/{}", w.name(), rep + 1, config.reps);
            let mut samples = Rep::new();
            // Rotate the order so that no library always runs first (or last).
            for &lib in libs.iter().cycle().skip(rep % libs.len()).take(libs.len()) {
                let preload = shim.as_deref().filter(|_| w.needs_shim());
                let result = run_child(&exe, w, lib, root, n, config.timeout, preload);
                if let Err(err) = &result {
                    eprintln!("[compare] {} / {}: {err}", w.name(), lib.name());
                    ok = false;
                }
                samples.insert(lib, result);
            }
            reps.push(samples);
        }
        all.push((w, reps));
    }
    let elapsed = started.elapsed();

    let shown: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--bench")
        .collect();
    let command = if shown.is_empty() {
        "cargo bench --bench compare".to_string()
    } else {
        format!("cargo bench --bench compare -- {}", shown.join(" "))
    };
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    let defaults = aopen::Pool::builder().build()?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "machine: {cores} cores (available_parallelism), {}, bench dir on {} ({}), \
         load average {load_before} before / {} after",
        kernel(),
        fs_type(root),
        base.display(),
        load_average()
    );
    let _ = writeln!(
        out,
        "command: `{command}` — mode {}, {} repetitions, {} in flight ({} for slow-open and \
         heartbeat), {:.0} s (of which {:.0} s building the tree)",
        config.mode,
        config.reps,
        IN_FLIGHT,
        SLOW_IN_FLIGHT,
        elapsed.as_secs_f64(),
        tree_secs
    );
    let _ = writeln!(
        out,
        "defaults: aopen max_threads {} / descriptor budget {}; blocking 500 threads; \
         tokio-mt {cores} workers + 512 blocking; {} unset in children",
        defaults.max_threads(),
        defaults.budget().capacity(),
        CLEARED_ENV.join(", ")
    );
    if let Some(shim) = &shim {
        let _ = writeln!(
            out,
            "shim: slow-open and heartbeat children run with LD_PRELOAD={} \
             AOPEN_FAULTS={SLOW_FAULTS}",
            shim.display()
        );
    }
    for notice in &notices {
        let _ = writeln!(out, "{notice}");
    }
    // The heartbeat reports lateness, not time: its own table.
    let (heartbeat, timed_rows): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|(w, _)| *w == Workload::Heartbeat);
    if !timed_rows.is_empty() {
        out.push('\n');
        write_time_table(&mut out, &timed_rows, config.divisor);
        write_ideal(
            &mut out,
            &timed_rows,
            config.divisor,
            defaults.max_threads(),
        );
    }
    if let Some((_, reps)) = heartbeat.first() {
        out.push('\n');
        write_heartbeat_table(&mut out, reps, config.divisor);
    }
    let all: Vec<_> = timed_rows.into_iter().chain(heartbeat).collect();
    out.push('\n');
    write_resource_table(&mut out, &all);
    write_noise(&mut out, &all);
    print!("{out}");
    Ok(ok)
}

fn columns(all: &[(Workload, Vec<Rep>)]) -> Vec<Lib> {
    Lib::ALL
        .into_iter()
        .filter(|lib| all.iter().any(|(w, _)| w.libs().contains(lib)))
        .collect()
}

fn header(out: &mut String, first: &str, cols: &[Lib]) {
    let _ = write!(out, "| {first} |");
    for lib in cols {
        let _ = write!(out, " {} |", lib.name());
    }
    let _ = write!(out, "\n|---|");
    for _ in cols {
        out.push_str("---:|");
    }
    out.push('\n');
}

fn write_time_table(out: &mut String, all: &[(Workload, Vec<Rep>)], divisor: usize) {
    let cols = columns(all);
    let _ = writeln!(
        out,
        "Wall time, median; (×) = median over repetitions of time / reference time in the same repetition (lower is faster)."
    );
    out.push('\n');
    header(out, "workload (n) · reference", &cols);
    for (w, reps) in all {
        let reference = w.reference();
        let _ = write!(
            out,
            "| {} ({}) · {} |",
            w.name(),
            fmt_count(w.full_size() / divisor),
            reference.name()
        );
        for &lib in &cols {
            if !w.libs().contains(&lib) {
                out.push_str(" — |");
                continue;
            }
            let secs = median(
                reps.iter()
                    .filter_map(|r| r.get(&lib)?.as_ref().ok().map(|s| s.secs))
                    .collect(),
            );
            let ratio = median(
                reps.iter()
                    .filter_map(|r| {
                        let mine = r.get(&lib)?.as_ref().ok()?;
                        let base = r.get(&reference)?.as_ref().ok()?;
                        Some(mine.secs / base.secs)
                    })
                    .collect(),
            );
            let cell = match (secs, ratio) {
                (None, _) => "failed".to_string(),
                (Some(s), _) if lib == reference => format!("{} (ref)", fmt_secs(s)),
                (Some(s), Some(r)) => format!("{} ({r:.2}×)", fmt_secs(s)),
                (Some(s), None) => fmt_secs(s),
            };
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }
}

fn write_resource_table(out: &mut String, all: &[(Workload, Vec<Rep>)]) {
    let cols = columns(all);
    let _ = writeln!(
        out,
        "Peak threads (whole process, max over repetitions) · peak RSS (VmHWM, max) · CPU time (user+sys of the timed section, median)."
    );
    out.push('\n');
    header(out, "workload", &cols);
    for (w, reps) in all {
        let _ = write!(out, "| {} |", w.name());
        for &lib in &cols {
            if !w.libs().contains(&lib) {
                out.push_str(" — |");
                continue;
            }
            let samples: Vec<Sample> = reps
                .iter()
                .filter_map(|r| r.get(&lib)?.as_ref().ok().copied())
                .collect();
            if samples.is_empty() {
                out.push_str(" failed |");
                continue;
            }
            let threads = samples.iter().map(|s| s.peak_threads).max().unwrap_or(0);
            let rss_mib = samples.iter().map(|s| s.peak_rss_kb).max().unwrap_or(0) as f64 / 1024.0;
            let cpu = median(samples.iter().map(|s| s.cpu_secs).collect()).unwrap_or(0.0);
            let _ = write!(out, " {threads} · {rss_mib:.0} MiB · {} |", fmt_secs(cpu));
        }
        out.push('\n');
    }
}

/// For `slow-open`: the ideal time (every open takes [`SLOW_DELAY`], [`SLOW_IN_FLIGHT`]
/// at a time, nothing else costs) and each column's median time over it.
fn write_ideal(
    out: &mut String,
    rows: &[(Workload, Vec<Rep>)],
    divisor: usize,
    aopen_threads: usize,
) {
    let Some((w, reps)) = rows.iter().find(|(w, _)| *w == Workload::SlowOpen) else {
        return;
    };
    let n = w.full_size() / divisor;
    let delay = SLOW_DELAY.as_secs_f64();
    let ideal = n as f64 * delay / SLOW_IN_FLIGHT as f64;
    let ratios: Vec<String> = w
        .libs()
        .iter()
        .filter_map(|&lib| {
            let secs = median(
                reps.iter()
                    .filter_map(|r| r.get(&lib)?.as_ref().ok().map(|s| s.secs))
                    .collect(),
            )?;
            Some(format!("{} {:.1}×", lib.name(), secs / ideal))
        })
        .collect();
    let _ = writeln!(
        out,
        "\nslow-open: ideal = {n} × {} / {SLOW_IN_FLIGHT} in flight = {}; median time / ideal: {}.",
        fmt_secs(delay),
        fmt_secs(ideal),
        ratios.join(", ")
    );
    let threads = aopen_threads.min(SLOW_IN_FLIGHT);
    let _ = writeln!(
        out,
        "A pool can only overlap as many opens as it has threads: aopen's default pool has \
         {aopen_threads}, so its floor is {n} × {} / {threads} = {}; std's is {}, std-2t's half.",
        fmt_secs(delay),
        fmt_secs(n as f64 * delay / threads as f64),
        fmt_secs(n as f64 * delay)
    );
}

/// A lateness in milliseconds (the heartbeat table's unit).
fn fmt_ms(secs: f64) -> String {
    let ms = secs * 1e3;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// What each heartbeat column runs: executor · timer · opens.
fn heartbeat_setup(lib: Lib) -> &'static str {
    match lib {
        Lib::AopenLocal => "`aopen::LocalExecutor` · `aopen::sleep_until` · `aopen::File::open` + `close`",
        Lib::Blocking => "`smol::LocalExecutor` · `smol::Timer` · `blocking::unblock(std open)`",
        Lib::AsyncFs => "`smol::LocalExecutor` · `smol::Timer` · `async_fs::File::open`",
        Lib::TokioCt => "tokio current-thread · `tokio::time::sleep_until` · `tokio::fs::File::open`",
        Lib::Std => "control: `aopen::LocalExecutor` · `aopen::sleep_until` · `std::fs::File::open` in the tasks",
        _ => "?",
    }
}

/// The heartbeat's own table: the ticker's lateness per library.
fn write_heartbeat_table(out: &mut String, reps: &[Rep], divisor: usize) {
    let w = Workload::Heartbeat;
    let _ = writeln!(
        out,
        "heartbeat: lateness of a {} ticker on the executor's thread while {} opens ({} each \
         via the shim) run, {SLOW_IN_FLIGHT} in flight. Medians over repetitions (worst: median \
         / max); idle = worst tick in the {} before the opens (the timer's own floor); opens = \
         their wall time.",
        fmt_secs(TICK.as_secs_f64()),
        fmt_count(w.full_size() / divisor),
        fmt_secs(SLOW_DELAY.as_secs_f64()),
        fmt_secs(IDLE.as_secs_f64()),
    );
    out.push('\n');
    out.push_str("| library | executor · timer · opens | worst (median / max) | p99 | idle | ticks | opens |\n");
    out.push_str("|---|---|---:|---:|---:|---:|---:|\n");
    for &lib in w.libs() {
        let samples: Vec<(Sample, Lateness)> = reps
            .iter()
            .filter_map(|r| {
                let s = r.get(&lib)?.as_ref().ok()?;
                Some((*s, s.lateness?))
            })
            .collect();
        let _ = write!(out, "| {} | {} |", lib.name(), heartbeat_setup(lib));
        if samples.is_empty() {
            out.push_str(" failed | | | | |\n");
            continue;
        }
        let med = |f: fn(&(Sample, Lateness)) -> f64| {
            median(samples.iter().map(f).collect()).unwrap_or(0.0)
        };
        let max_worst = samples.iter().map(|(_, l)| l.worst).fold(0.0, f64::max);
        let _ = writeln!(
            out,
            " {} / {} | {} | {} | {:.0} | {} |",
            fmt_ms(med(|(_, l)| l.worst)),
            fmt_ms(max_worst),
            fmt_ms(med(|(_, l)| l.p99)),
            fmt_ms(med(|(_, l)| l.idle_worst)),
            med(|(_, l)| l.ticks as f64),
            fmt_secs(med(|(s, _)| s.secs)),
        );
    }
}

/// Summarises how much the repetitions of each cell spread (max / min − 1).
fn write_noise(out: &mut String, all: &[(Workload, Vec<Rep>)]) {
    let mut spreads = Vec::new();
    // The heartbeat's cells are latenesses, not times.
    for (w, reps) in all.iter().filter(|(w, _)| *w != Workload::Heartbeat) {
        for &lib in w.libs() {
            let secs: Vec<f64> = reps
                .iter()
                .filter_map(|r| r.get(&lib)?.as_ref().ok().map(|s| s.secs))
                .collect();
            if secs.len() > 1 {
                let min = secs.iter().copied().fold(f64::INFINITY, f64::min);
                let max = secs.iter().copied().fold(0.0, f64::max);
                spreads.push((max / min - 1.0, format!("{}/{}", w.name(), lib.name())));
            }
        }
    }
    let Some(median_spread) = median(spreads.iter().map(|(s, _)| *s).collect()) else {
        return;
    };
    spreads.sort_by(|a, b| b.0.total_cmp(&a.0));
    let worst: Vec<String> = spreads
        .iter()
        .take(3)
        .map(|(s, cell)| format!("{cell} {:.0} %", s * 100.0))
        .collect();
    let _ = writeln!(
        out,
        "\nspread between repetitions (max/min − 1): median cell {:.0} %, widest {}; \
         read differences smaller than that as noise.",
        median_spread * 100.0,
        worst.join(", ")
    );
}
