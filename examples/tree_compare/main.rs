//! Tree compare, the first seed's job: rsync's quick check (same size, same mtime?)
//! over two trees, streaming, with a 1 ms ticker on the same thread that must keep
//! ticking throughout.
//!
//! `cargo run --release --example tree_compare -- [DIR_A DIR_B | --million | --slowfs] [--default-slice]`
//! - no arguments: two generated trees of 20 × 500 files in a temporary directory;
//! - `--million`: two trees of 1,000 × 1,000 files, made once under
//!   `$AOPEN_TREE_CACHE` (default `/var/tmp/aopen-tree-compare`) and kept;
//! - `--slowfs`: two slow FUSE mounts of 1,000 × 1,000 files (1 ms a request, 256
//!   served at once; Linux, root and `/dev/fuse`);
//! - `--default-slice`: leave this thread's time slice as the kernel set it. By
//!   default the example asks for [`LOOP_SLICE`] with
//!   [`aopen::executor::set_time_slice`], so that the ticker's thread gets a core
//!   as soon as its sleep ends while pool threads keep both cores busy.
//!
//! Generated trees differ in four planted ways (`trees.rs`); the example exits
//! non-zero unless it finds exactly those, or if any path could not be read.
//!
//! Two sorted walks (`aopen::fs::WalkOptions::sorted`) hand out entries in the same
//! order, depth first and by name, so one merge pass compares them: memory grows
//! with the directories the walks read ahead, not with the trees.

mod trees;

use std::cell::Cell;
use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use aopen::fs::{Walk, WalkEntry, WalkOptions};
use aopen::{LocalExecutor, Pool};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The ticker's period, and how often it prints a progress line.
const TICK: Duration = Duration::from_millis(1);
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// How long the ticker runs alone first, to measure what this machine delays a
/// ticker by with nothing else running: the floor the compare's figures stand on.
const BASELINE: Duration = Duration::from_secs(1);
/// Lateness past which a tick counts as late.
const LATE: Duration = Duration::from_millis(2);
/// The time slice the compare's thread asks for (see `--default-slice`).
const LOOP_SLICE: Duration = Duration::from_micros(100);
/// Differences printed one per line; the rest are only counted.
const MAX_SHOWN: usize = 20;

fn main() -> Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let default_slice = args.iter().any(|arg| arg == "--default-slice");
    args.retain(|arg| arg != "--default-slice");
    let _keep: Box<dyn std::any::Any>; // a temporary directory or two mounts
    let (a, b, planted) = match args.as_slice() {
        [] => {
            let tmp = tempfile::tempdir()?;
            let planted = trees::make(tmp.path(), 20, 500)?;
            let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
            _keep = Box::new(tmp);
            (a, b, Some(planted))
        }
        [flag] if flag == "--million" => {
            let cache = std::env::var_os("AOPEN_TREE_CACHE").map_or_else(
                || PathBuf::from("/var/tmp/aopen-tree-compare"),
                PathBuf::from,
            );
            let planted = trees::cached(&cache, 1000, 1000)?;
            _keep = Box::new(());
            (cache.join("a"), cache.join("b"), Some(planted))
        }
        #[cfg(target_os = "linux")]
        [flag] if flag == "--slowfs" => {
            let (mounts, planted) = trees::slow_mounts(1000, 1000)?;
            let (a, b) = (mounts.0.root().to_path_buf(), mounts.1.root().to_path_buf());
            _keep = Box::new(mounts);
            (a, b, Some(planted))
        }
        [a, b] => (a.into(), b.into(), None),
        _ => {
            return Err(
                "usage: tree_compare [DIR_A DIR_B | --million | --slowfs] [--default-slice]".into(),
            )
        }
    };
    println!("comparing {} with {}", a.display(), b.display());
    match default_slice {
        true => println!("this thread's time slice: the kernel's default"),
        false => match aopen::executor::set_time_slice(LOOP_SLICE) {
            Ok(()) => println!("this thread's time slice: {LOOP_SLICE:?}"),
            Err(err) => println!("this thread's time slice: the kernel's default ({err})"),
        },
    }

    let (executor, counts) = (LocalExecutor::new(), Rc::new(Counts::default()));
    let baseline = Rc::new(Counts::default());
    let idle = executor.spawn(ticker(baseline.clone()));
    executor.run(aopen::sleep(BASELINE));
    baseline.done.set(true);
    executor.run(idle);
    let ticker = executor.spawn(ticker(counts.clone()));
    let start = Instant::now();
    let mut diffs = executor.run(compare(&a, &b, &counts));
    let elapsed = start.elapsed();
    counts.done.set(true);
    executor.run(ticker);

    let (compared, errors) = (counts.compared.get(), counts.errors.get());
    let rate = compared as f64 / elapsed.as_secs_f64();
    println!("compared {compared} entries in {elapsed:.2?}: {rate:.0} entries/s");
    println!("{} differences, {errors} errors", diffs.len());
    println!(
        "peak RSS {:.1} MiB, peak threads {}, worst ticker lateness {:.2?}",
        status_field("VmHWM") as f64 / 1024.0,
        counts.peak_threads.get(),
        counts.worst_lateness.get()
    );
    println!("ticker during the compare: {}", counts.lateness_summary());
    println!(
        "ticker alone for {BASELINE:?} before it: {}",
        baseline.lateness_summary()
    );
    println!("pool: {:?}", Pool::global().stats());
    // The same set, in any order: the walks hand differences out depth first by
    // name, and the slow mounts list their plants in another order.
    diffs.sort();
    let planted = planted.map(|mut planted| {
        planted.sort();
        planted
    });
    match planted {
        _ if errors > 0 => Err(format!("{errors} paths could not be read").into()),
        Some(planted) if diffs != planted => {
            Err(format!("found {diffs:?}, planted {planted:?}").into())
        }
        _ => Ok(()),
    }
}

/// What the compare and the ticker share (one thread: `Cell`s suffice).
#[derive(Default)]
struct Counts {
    compared: Cell<u64>,
    errors: Cell<u64>,
    done: Cell<bool>,
    worst_lateness: Cell<Duration>,
    /// Every tick's lateness, in order.
    lateness: std::cell::RefCell<Vec<Duration>>,
    peak_threads: Cell<u64>,
}

impl Counts {
    /// The ticks, how many were later than [`LATE`], and the 99th and 99.9th
    /// percentile and worst lateness.
    fn lateness_summary(&self) -> String {
        let mut all = self.lateness.borrow().clone();
        all.sort_unstable();
        let at = |q: f64| {
            let i = ((all.len() as f64 * q).ceil() as usize).clamp(1, all.len().max(1)) - 1;
            all.get(i).copied().unwrap_or_default()
        };
        let late = all.iter().filter(|&&l| l > LATE).count();
        format!(
            "{} ticks, {late} later than {LATE:?}, p99 {:.2?}, p99.9 {:.2?}, worst {:.2?}",
            all.len(),
            at(0.99),
            at(0.999),
            all.last().copied().unwrap_or_default()
        )
    }
}

/// One side of the compare: its walk and the entry it is at.
struct Side<'a> {
    root: &'a Path,
    walk: Walk,
    entry: Option<WalkEntry>,
}

impl Side<'_> {
    /// Steps to the next entry, counting (and printing) errors, which name their path.
    async fn advance(&mut self, counts: &Counts) {
        self.entry = loop {
            match self.walk.next_entry().await {
                Ok(entry) => break entry,
                Err(err) => {
                    eprintln!("error: {err}");
                    counts.errors.set(counts.errors.get() + 1);
                }
            }
        };
    }

    /// The current entry's path below the root (`None` once the walk is over).
    fn relative(&self) -> Option<&Path> {
        let path = self.entry.as_ref()?.path();
        Some(path.strip_prefix(self.root).unwrap_or(path))
    }

    fn relative_path(&self) -> PathBuf {
        self.relative().map(Path::to_path_buf).unwrap_or_default()
    }
}

/// Merges two sorted walks; returns the paths that differ, relative to the roots.
async fn compare(a: &Path, b: &Path, counts: &Counts) -> Vec<PathBuf> {
    let mut options = WalkOptions::new();
    options.sorted(true);
    let side = |root| Side {
        root,
        walk: options.walk(root),
        entry: None,
    };
    let (mut a, mut b) = (side(a), side(b));
    a.advance(counts).await;
    b.advance(counts).await;
    let mut diffs = Vec::new();
    loop {
        let order = match (a.relative(), b.relative()) {
            (None, None) => break,
            (Some(x), Some(y)) => x.cmp(y),
            (Some(_), None) => Ordering::Less, // B is over: the rest is only in A
            (None, Some(_)) => Ordering::Greater,
        };
        // An entry on one side only comes first in the order: step past it alone.
        let (what, path) = match order {
            Ordering::Less => {
                let path = a.relative_path();
                a.advance(counts).await;
                ("only in A", path)
            }
            Ordering::Greater => {
                let path = b.relative_path();
                b.advance(counts).await;
                ("only in B", path)
            }
            Ordering::Equal => {
                counts.compared.set(counts.compared.get() + 1);
                let found = match (&a.entry, &b.entry) {
                    (Some(x), Some(y)) => quick_check(x, y).map(|what| (what, a.relative_path())),
                    _ => None,
                };
                a.advance(counts).await;
                b.advance(counts).await;
                match found {
                    Some(found) => found,
                    None => continue,
                }
            }
        };
        if diffs.len() < MAX_SHOWN {
            println!("  {what}: {}", path.display());
        }
        diffs.push(path);
    }
    diffs
}

/// rsync's quick check: what differs between two entries at the same path, if anything.
fn quick_check(x: &WalkEntry, y: &WalkEntry) -> Option<&'static str> {
    let (mx, my) = (x.metadata()?, y.metadata()?);
    match () {
        _ if x.file_type() != y.file_type() => Some("type differs"),
        _ if x.file_type().is_dir() => None,
        _ if mx.len() != my.len() => Some("size differs"),
        _ if mx.modified().ok() != my.modified().ok() => Some("mtime differs"),
        _ => None,
    }
}

/// Ticks every [`TICK`] on the compare's thread, keeping the worst lateness and the
/// peak thread count, with a progress line every [`PROGRESS_EVERY`]. (Not
/// `Pool::stats` here: its count of threads asleep reads /proc once per busy thread,
/// blocking work this loop should not do.)
async fn ticker(counts: Rc<Counts>) {
    let (start, mut last_line) = (Instant::now(), Instant::now());
    while !counts.done.get() {
        let deadline = Instant::now() + TICK;
        aopen::sleep(TICK).await;
        let late = Instant::now().saturating_duration_since(deadline);
        counts.lateness.borrow_mut().push(late);
        counts
            .worst_lateness
            .set(counts.worst_lateness.get().max(late));
        if last_line.elapsed() >= PROGRESS_EVERY {
            last_line = Instant::now();
            let threads = status_field("Threads");
            counts
                .peak_threads
                .set(counts.peak_threads.get().max(threads));
            let (n, secs) = (counts.compared.get(), start.elapsed().as_secs_f64());
            println!(
                "  {n} compared, {:.0}/s, worst tick {:.2?}, {threads} threads, RSS {:.1} MiB",
                n as f64 / secs,
                counts.worst_lateness.get(),
                status_field("VmRSS") as f64 / 1024.0
            );
        }
    }
    let threads = status_field("Threads");
    counts
        .peak_threads
        .set(counts.peak_threads.get().max(threads));
}

/// A number from `/proc/self/status` (`VmHWM` in KiB, `Threads`), or 0.
fn status_field(name: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|line| line.starts_with(name));
    line.and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}
