//! Tree compare, the first seed's job: rsync's quick check (same size, same mtime?)
//! over two trees, streaming, with a 1 ms ticker on the same thread that must keep
//! ticking throughout.
//!
//! `cargo run --release --example tree_compare -- [DIR_A DIR_B | --million | --slowfs]`
//! - no arguments: two generated trees of 20 × 500 files in a temporary directory;
//! - `--million`: two trees of 1,000 × 1,000 files, made once under
//!   `$AOPEN_TREE_CACHE` (default `/var/tmp/aopen-tree-compare`) and kept;
//! - `--slowfs`: two slow FUSE mounts of 1,000 × 1,000 files (1 ms a request, 256
//!   served at once; Linux, root and `/dev/fuse`).
//!
//! Generated trees differ in four planted ways (a size, an mtime, a missing and an
//! extra file); the example exits non-zero unless it finds exactly those, or if any
//! path could not be read.
//!
//! Two sorted walks (`aopen::fs::WalkOptions::sorted`) hand out entries in the same
//! order, depth first and by name, so one merge pass compares them: memory grows
//! with the directories the walks read ahead, not with the trees.

use std::cell::Cell;
use std::cmp::Ordering;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use aopen::fs::{Walk, WalkEntry, WalkOptions};
use aopen::{LocalExecutor, Pool};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// The ticker's period, and how often it prints a progress line.
const TICK: Duration = Duration::from_millis(1);
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// Differences printed one per line; the rest are only counted.
const MAX_SHOWN: usize = 20;

/// What the compare and the ticker share (one thread: `Cell`s suffice).
#[derive(Default)]
struct Shared {
    compared: Cell<u64>,
    done: Cell<bool>,
    worst_lateness: Cell<Duration>,
    peak_threads: Cell<u64>,
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let _keep; // a temporary directory or two mounts, alive until the end
    let (a, b, planted): (PathBuf, PathBuf, Option<Vec<PathBuf>>) = match args.as_slice() {
        [] => {
            let tmp = tempfile::tempdir()?;
            let planted = make_trees(tmp.path(), 20, 500)?;
            let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
            _keep = Box::new(tmp) as Box<dyn std::any::Any>;
            (a, b, Some(planted))
        }
        [flag] if flag == "--million" => {
            let cache = std::env::var_os("AOPEN_TREE_CACHE").map_or_else(
                || PathBuf::from("/var/tmp/aopen-tree-compare"),
                PathBuf::from,
            );
            let planted = cached_trees(&cache, 1000, 1000)?;
            _keep = Box::new(()) as Box<dyn std::any::Any>;
            (cache.join("a"), cache.join("b"), Some(planted))
        }
        #[cfg(target_os = "linux")]
        [flag] if flag == "--slowfs" => {
            let (mounts, planted) = slow::mount(1000, 1000)?;
            let (a, b) = (mounts.0.root().to_path_buf(), mounts.1.root().to_path_buf());
            _keep = Box::new(mounts) as Box<dyn std::any::Any>;
            (a, b, Some(planted))
        }
        [a, b] => (a.into(), b.into(), None),
        _ => return Err("usage: tree_compare [DIR_A DIR_B | --million | --slowfs]".into()),
    };
    println!("comparing {} with {}", a.display(), b.display());

    let shared = Rc::new(Shared::default());
    let executor = LocalExecutor::new();
    let ticker = executor.spawn(ticker(shared.clone()));
    let start = Instant::now();
    let (diffs, errors) = executor.run(compare(&a, &b, &shared))?;
    let elapsed = start.elapsed();
    shared.done.set(true);
    executor.run(ticker);

    let compared = shared.compared.get();
    println!(
        "compared {compared} entries in {elapsed:.2?}: {:.0} entries/s",
        compared as f64 / elapsed.as_secs_f64()
    );
    println!("{} differences, {errors} errors", diffs.len());
    println!(
        "peak RSS {:.1} MiB, peak threads {}, worst ticker lateness {:.2?}",
        status_field("VmHWM") as f64 / 1024.0,
        shared.peak_threads.get(),
        shared.worst_lateness.get()
    );
    println!("pool: {:?}", Pool::global().stats());
    match planted {
        _ if errors > 0 => Err(format!("{errors} paths could not be read").into()),
        Some(mut planted) => {
            planted.sort();
            match diffs == planted {
                true => Ok(()),
                false => Err(format!("found {diffs:?}, planted {planted:?}").into()),
            }
        }
        None => Ok(()),
    }
}

/// Merges two sorted walks; returns the differing paths (relative, in walk order)
/// and how many errors there were.
async fn compare(a: &Path, b: &Path, shared: &Shared) -> Result<(Vec<PathBuf>, u64)> {
    let mut options = WalkOptions::new();
    options.sorted(true);
    let (mut walk_a, mut walk_b) = (options.walk(a), options.walk(b));
    let (mut diffs, mut errors) = (Vec::new(), 0);
    let (mut next_a, mut next_b) = (
        next(&mut walk_a, &mut errors).await,
        next(&mut walk_b, &mut errors).await,
    );
    loop {
        let (what, path) = match (&next_a, &next_b) {
            (None, None) => break,
            (Some(x), Some(y)) => {
                let (rel_x, rel_y) = (relative(x, a), relative(y, b));
                match rel_x.cmp(rel_y) {
                    Ordering::Less => ("only in A", rel_x.to_path_buf()),
                    Ordering::Greater => ("only in B", rel_y.to_path_buf()),
                    Ordering::Equal => {
                        let what = quick_check(x, y);
                        let path = rel_x.to_path_buf();
                        next_a = next(&mut walk_a, &mut errors).await;
                        next_b = next(&mut walk_b, &mut errors).await;
                        shared.compared.set(shared.compared.get() + 1);
                        match what {
                            Some(what) => (what, path),
                            None => continue,
                        }
                    }
                }
            }
            (Some(x), None) => ("only in A", relative(x, a).to_path_buf()),
            (None, Some(y)) => ("only in B", relative(y, b).to_path_buf()),
        };
        // An entry on one side only: step past it on that side.
        match what {
            "only in A" => next_a = next(&mut walk_a, &mut errors).await,
            "only in B" => next_b = next(&mut walk_b, &mut errors).await,
            _ => {}
        }
        if diffs.len() < MAX_SHOWN {
            println!("  {what}: {}", path.display());
        }
        diffs.push(path);
    }
    Ok((diffs, errors))
}

/// The next entry of `walk`, counting (and printing) errors, which name their path.
async fn next(walk: &mut Walk, errors: &mut u64) -> Option<WalkEntry> {
    loop {
        match walk.next_entry().await {
            Ok(entry) => return entry,
            Err(err) => {
                eprintln!("error: {err}");
                *errors += 1;
            }
        }
    }
}

fn relative<'a>(entry: &'a WalkEntry, root: &Path) -> &'a Path {
    entry.path().strip_prefix(root).unwrap_or(entry.path())
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

/// Ticks every [`TICK`] on the compare's thread, keeping the worst lateness, the
/// peak thread count, and a progress line every [`PROGRESS_EVERY`].
async fn ticker(shared: Rc<Shared>) {
    let (start, mut last_line) = (Instant::now(), Instant::now());
    while !shared.done.get() {
        let deadline = Instant::now() + TICK;
        aopen::sleep(TICK).await;
        let late = Instant::now().saturating_duration_since(deadline);
        shared
            .worst_lateness
            .set(shared.worst_lateness.get().max(late));
        if last_line.elapsed() >= PROGRESS_EVERY {
            last_line = Instant::now();
            let threads = status_field("Threads");
            shared
                .peak_threads
                .set(shared.peak_threads.get().max(threads));
            let (n, secs) = (shared.compared.get(), start.elapsed().as_secs_f64());
            // Not `Pool::stats`: its count of threads asleep reads /proc per thread.
            println!(
                "  {n} compared, {:.0}/s, worst tick {:.2?}, {threads} threads, RSS {:.1} MiB",
                n as f64 / secs,
                shared.worst_lateness.get(),
                status_field("VmRSS") as f64 / 1024.0
            );
        }
    }
    shared
        .peak_threads
        .set(shared.peak_threads.get().max(status_field("Threads")));
}

/// A number from `/proc/self/status` (`VmHWM` in KiB, `Threads`), or 0.
fn status_field(name: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|line| line.starts_with(name));
    line.and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Makes `a` and `b` under `root` (`dirs` × `files`), equal but for four planted
/// differences, which it returns. Plain `std::fs`: setting up is not the lesson.
fn make_trees(root: &Path, dirs: usize, files: usize) -> std::io::Result<Vec<PathBuf>> {
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for side in ["a", "b"] {
        std::thread::scope(|scope| {
            let parts: Vec<_> = (0..4)
                .map(|part| {
                    scope.spawn(move || -> std::io::Result<()> {
                        for d in (part..dirs).step_by(4) {
                            let dir = root.join(format!("{side}/d{d:04}"));
                            std::fs::create_dir_all(&dir)?;
                            for f in 0..files {
                                let file = std::fs::File::create(dir.join(format!("f{f:04}")))?;
                                file.set_len(((d * 7919 + f * 104_729) % 8192) as u64)?; // sparse
                                file.set_modified(
                                    base + Duration::from_secs((d * files + f) as u64),
                                )?;
                            }
                        }
                        Ok(())
                    })
                })
                .collect();
            parts
                .into_iter()
                .try_for_each(|part| part.join().expect("a maker thread"))
        })?;
    }
    let (b, planted) = (
        root.join("b"),
        ["d0003/f0042", "d0007/f0100", "d0011/extra", "d0015/f0250"],
    );
    let open = |path: &str| std::fs::OpenOptions::new().write(true).open(b.join(path));
    let grown = open(planted[0])?;
    grown.set_len(grown.metadata()?.len() + 1)?; // 1. another size (same mtime)
    grown.set_modified(std::fs::metadata(root.join("a").join(planted[0]))?.modified()?)?;
    std::fs::remove_file(b.join(planted[1]))?; // 2. missing from B
    std::fs::File::create(b.join(planted[2]))?; // 3. only in B
    let touched = open(planted[3])?; // 4. same size, another mtime
    touched.set_modified(base)?;
    Ok(planted.iter().map(PathBuf::from).collect())
}

/// The trees of [`make_trees`] under `cache`, made once (a `complete` marker says so).
fn cached_trees(cache: &Path, dirs: usize, files: usize) -> std::io::Result<Vec<PathBuf>> {
    let marker = cache.join(format!("complete-{dirs}x{files}"));
    if !marker.exists() {
        println!(
            "making 2 × {} files under {} (once)",
            dirs * files,
            cache.display()
        );
        let _ = std::fs::remove_dir_all(cache);
        let planted = make_trees(cache, dirs, files)?;
        std::fs::write(&marker, "")?;
        return Ok(planted);
    }
    let names = ["d0003/f0042", "d0007/f0100", "d0011/extra", "d0015/f0250"];
    Ok(names.iter().map(PathBuf::from).collect())
}

/// Two slow FUSE mounts of the same generated tree, four plants in the second.
#[cfg(target_os = "linux")]
mod slow {
    use aopen_slowfs::{Latency, Plant, SlowFs, Tree};
    use std::path::PathBuf;
    use std::time::Duration;

    pub fn mount(dirs: u64, files: u64) -> super::Result<((SlowFs, SlowFs), Vec<PathBuf>)> {
        SlowFs::available()?;
        let tree = Tree::flat(dirs, files);
        let plants = [
            Plant::Size { dir: 4, file: 42 },
            Plant::Mtime { dir: 16, file: 250 },
            Plant::Missing { dir: 8, file: 100 },
            Plant::Extra {
                dir: 12,
                name: "extra".into(),
            },
        ];
        let planted = plants.iter().map(|plant| plant.path(&tree)).collect();
        let builder = || {
            SlowFs::builder()
                .tree(tree.clone())
                .latency(Latency::uniform(Duration::from_millis(1)))
                .concurrency(256)
        };
        let a = builder().mount()?;
        let b = plants
            .into_iter()
            .fold(builder(), |b, plant| b.plant(plant))
            .mount()?;
        Ok(((a, b), planted))
    }
}
