//! `aopen::fs::walk` against the walkers people use, each with an `lstat` of every
//! entry: ripgrep's `ignore` (parallel), `jwalk` (parallel), `walkdir`, std
//! recursion on one thread, `tokio::fs` recursion with 64 directories in flight, and
//! `async-walkdir`.
//!
//! `cargo bench --bench walk -- [--usr] [--million] [--slowfs] [--variants]` (no
//! flag: all but `--million`). Trees: `/usr` (warm cache); the million-file tree of
//! `examples/tree_compare --million` (its `a` side, under `$AOPEN_TREE_CACHE`,
//! default `/var/tmp/aopen-tree-compare`; made by that example); a slow FUSE mount
//! (`aopen-slowfs`, 64 × 64 files, 256 requests served at once) at 1 and 5 ms a
//! request, where the ideal is the requests aopen's walk made × the latency / 256.
//! One process, the walkers side by side, interleaved: [`CACHED_RUNS`] rounds on a
//! cached tree, [`RUNS`] on the slow mount (a walker whose first run takes over
//! [`SLOW_RUN`] runs once). Times are medians; each ratio between two walkers is the
//! median of their ratios within a round, so a round the machine slowed for both
//! counts once, and each run's time is shown in order. `--variants`: the ways to get a
//! `std::fs::Metadata` for each entry of `/usr`, on one thread.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};

/// Rounds per walker on the slow mount.
const RUNS: usize = 3;
/// Rounds per walker on a cached tree: cheaper, and noisier from round to round.
const CACHED_RUNS: usize = 5;
/// A walker whose first run took longer than this runs only once.
const SLOW_RUN: Duration = Duration::from_secs(15);
/// Directories the `tokio::fs` recursion lists at once.
const TOKIO_IN_FLIGHT: usize = 64;
/// The slow mount: its shape, and requests it serves at once.
const FUSE_DIRS: u64 = 64;
const FUSE_FILES: u64 = 64;
const FUSE_CONCURRENCY: usize = 256;

type Walker = fn(&Path) -> usize;

const WALKERS: [(&str, Walker); 7] = [
    ("aopen fs::walk", aopen_walk),
    ("ignore (parallel)", ignore_walk),
    ("jwalk (parallel)", jwalk_walk),
    ("walkdir", walkdir_walk),
    ("std recursion", std_walk),
    ("tokio::fs, 64 dirs in flight", tokio_walk),
    ("async-walkdir", async_walkdir_walk),
];

fn aopen_walk(root: &Path) -> usize {
    aopen::block_on(async {
        let mut walk = aopen::fs::walk(root);
        let mut count = 0;
        while let Some(entry) = walk.next_entry().await.transpose() {
            count += usize::from(entry.is_ok_and(|e| e.metadata().is_some()));
        }
        count
    })
}

fn ignore_walk(root: &Path) -> usize {
    let count = Arc::new(AtomicUsize::new(0));
    let walker = ignore::WalkBuilder::new(root)
        .standard_filters(false)
        .build_parallel();
    walker.run(|| {
        let count = count.clone();
        Box::new(move |entry| {
            if entry.is_ok_and(|e| e.metadata().is_ok()) {
                count.fetch_add(1, Ordering::Relaxed);
            }
            ignore::WalkState::Continue
        })
    });
    count.load(Ordering::Relaxed)
}

fn jwalk_walk(root: &Path) -> usize {
    let walk = jwalk::WalkDir::new(root).skip_hidden(false);
    walk.into_iter()
        .filter(|e| e.as_ref().is_ok_and(|e| e.metadata().is_ok()))
        .count()
}

fn walkdir_walk(root: &Path) -> usize {
    let walk = walkdir::WalkDir::new(root).into_iter();
    walk.filter(|e| e.as_ref().is_ok_and(|e| e.metadata().is_ok()))
        .count()
}

fn std_walk(root: &Path) -> usize {
    fn visit(dir: &Path) -> usize {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        let mut count = 0;
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            count += 1;
            if meta.is_dir() {
                count += visit(&entry.path());
            }
        }
        count
    }
    1 + visit(root)
}

fn tokio_walk(root: &Path) -> usize {
    async fn list(dir: PathBuf) -> io::Result<(usize, Vec<PathBuf>)> {
        let (mut count, mut subdirs) = (0, Vec::new());
        let mut entries = tokio::fs::read_dir(&dir).await?;
        while let Some(entry) = entries.next_entry().await? {
            let meta = entry.metadata().await?;
            count += 1;
            if meta.is_dir() {
                subdirs.push(entry.path());
            }
        }
        Ok((count, subdirs))
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (mut count, mut todo, mut running) =
            (1, vec![root.to_path_buf()], FuturesUnordered::new());
        loop {
            while running.len() < TOKIO_IN_FLIGHT {
                let Some(dir) = todo.pop() else { break };
                running.push(list(dir));
            }
            let Some(done) = running.next().await else {
                break;
            };
            if let Ok((n, subdirs)) = done {
                count += n;
                todo.extend(subdirs);
            }
        }
        count
    })
}

fn async_walkdir_walk(root: &Path) -> usize {
    futures::executor::block_on(async {
        let mut walk = async_walkdir::WalkDir::new(root);
        let mut count = 1; // it does not hand out the root
        while let Some(entry) = walk.next().await {
            if let Ok(entry) = entry {
                count += usize::from(entry.metadata().await.is_ok());
            }
        }
        count
    })
}

/// One row: a walker's median and the entries it saw.
struct Row {
    name: &'static str,
    median: Duration,
    /// Each run's time, in the order they ran.
    times: Vec<Duration>,
    entries: usize,
}

impl Row {
    /// This walker's time over `base`'s: the median of the ratios of the runs made
    /// in the same round (so a round the machine made slower for both counts as
    /// one), or of the medians when one of them ran only once.
    fn ratio(&self, base: &Row) -> f64 {
        if self.times.len() != base.times.len() || self.times.len() < 2 {
            return self.median.as_secs_f64() / base.median.as_secs_f64();
        }
        let mut ratios: Vec<f64> = self
            .times
            .iter()
            .zip(&base.times)
            .map(|(own, base)| own.as_secs_f64() / base.as_secs_f64())
            .collect();
        ratios.sort_by(f64::total_cmp);
        ratios[ratios.len() / 2]
    }
}

/// Runs every walker on `root`, interleaved, and prints the table. A cached tree is
/// walked once first, to warm the cache; the slow mount (`ideal` given) is not: its
/// kernel side caches nothing, and a std walk of it takes 48 s at 5 ms.
fn table(title: &str, root: &Path, runs: usize, ideal: Option<&dyn Fn() -> Duration>) {
    if ideal.is_none() {
        std_walk(root);
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); WALKERS.len()];
    let mut entries = vec![0; WALKERS.len()];
    // `AOPEN_WALKERS=aopen,ignore`: only the walkers whose names start so.
    let only = std::env::var("AOPEN_WALKERS").unwrap_or_default();
    let chosen = |name: &str| only.is_empty() || only.split(',').any(|w| name.starts_with(w));
    for run in 0..runs {
        for (i, (name, walker)) in WALKERS.iter().enumerate() {
            if !chosen(name) || (run > 0 && times[i][0] > SLOW_RUN) {
                continue;
            }
            let start = Instant::now();
            entries[i] = walker(root);
            times[i].push(start.elapsed());
        }
    }
    let rows: Vec<Row> = WALKERS
        .iter()
        .zip(times.iter_mut().zip(&entries))
        .filter(|(_, (times, _))| !times.is_empty())
        .map(|((name, _), (times, &entries))| {
            let times = std::mem::take(times);
            let mut sorted = times.clone();
            sorted.sort();
            Row {
                name,
                median: sorted[sorted.len() / 2],
                times,
                entries,
            }
        })
        .collect();
    let ideal = ideal.map(|ideal| ideal());
    let peers = || rows.iter().filter(|row| !row.name.starts_with("aopen"));
    let ignore = peers()
        .find(|row| row.name.starts_with("ignore"))
        .unwrap_or(&rows[0]);
    let fastest_peer = peers().min_by_key(|row| row.median).unwrap_or(ignore);
    println!("\n### {title}\n");
    println!(
        "| walker | entries | median of {runs} | each run, in order | vs ignore | vs fastest peer |{}",
        if ideal.is_some() { " vs ideal |" } else { "" }
    );
    println!(
        "|---|--:|--:|--:|--:|--:|{}",
        if ideal.is_some() { "--:|" } else { "" }
    );
    let ms = |time: &Duration| format!("{:.0}", time.as_secs_f64() * 1e3);
    for row in &rows {
        let once = if row.times.len() < runs {
            format!(" ({} run)", row.times.len())
        } else {
            String::new()
        };
        let each: Vec<String> = row.times.iter().map(ms).collect();
        let vs_ideal = ideal.map_or(String::new(), |ideal| {
            format!(" {:.2}× |", row.median.as_secs_f64() / ideal.as_secs_f64())
        });
        println!(
            "| {} | {} | {:.1} ms{once} | {} | {:.2}× | {:.2}× |{vs_ideal}",
            row.name,
            row.entries,
            row.median.as_secs_f64() * 1e3,
            each.join(", "),
            row.ratio(ignore),
            row.ratio(fastest_peer)
        );
    }
    if let Some(ideal) = ideal {
        println!("\nideal: {:.1} ms", ideal.as_secs_f64() * 1e3);
    }
}

/// Ways to get a `std::fs::Metadata` for every entry of `root`'s tree, one thread.
fn variants(root: &Path) {
    fn dirs(root: &Path, out: &mut Vec<PathBuf>) {
        out.push(root.to_path_buf());
        for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs(&entry.path(), out);
            }
        }
    }
    let mut all = Vec::new();
    dirs(root, &mut all);
    type Stat = fn(&std::fs::DirEntry, &Path, i32) -> bool;
    let ways: [(&str, Stat); 3] = [
        (
            "DirEntry::metadata (statx at the directory's fd)",
            |entry, _, _| entry.metadata().is_ok(),
        ),
        ("symlink_metadata(full path)", |entry, _, _| {
            std::fs::symlink_metadata(entry.path()).is_ok()
        }),
        ("symlink_metadata(/proc/self/fd/N/name)", |entry, _, fd| {
            let path = format!("/proc/self/fd/{fd}/{}", entry.file_name().to_string_lossy());
            std::fs::symlink_metadata(path).is_ok()
        }),
    ];
    println!(
        "\n### Metadata per entry of {} ({} directories), one thread\n",
        root.display(),
        all.len()
    );
    for _ in 0..2 {
        for (name, stat) in &ways {
            let (start, mut count) = (Instant::now(), 0);
            for dir in &all {
                let Ok(file) = std::fs::File::open(dir) else {
                    continue;
                };
                let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
                for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                    count += usize::from(stat(&entry, dir, fd));
                }
            }
            println!(
                "- {name}: {count} entries in {:.1} ms",
                start.elapsed().as_secs_f64() * 1e3
            );
        }
    }
}

#[cfg(target_os = "linux")]
fn fuse_tables() {
    use aopen_slowfs::{Latency, SlowFs, Tree};
    if let Err(why) = SlowFs::available() {
        println!("\nslow FUSE mount skipped: {why}");
        return;
    }
    for ms in [1, 5] {
        let latency = Duration::from_millis(ms);
        let fs = SlowFs::builder()
            .tree(Tree::flat(FUSE_DIRS, FUSE_FILES))
            .latency(Latency::uniform(latency))
            .concurrency(FUSE_CONCURRENCY)
            .mount()
            .expect("mount the slow file system");
        let ideal = || {
            fs.reset_stats();
            aopen_walk(fs.root());
            let requests = fs.stats().served_total() as u32;
            latency * requests / FUSE_CONCURRENCY as u32
        };
        let title = format!("Slow FUSE mount, {FUSE_DIRS} × {FUSE_FILES} files, {ms} ms a request, {FUSE_CONCURRENCY} served at once");
        table(&title, fs.root(), RUNS, Some(&ideal));
    }
}

/// `--trace`: one aopen walk of the slow mount at 5 ms, sampled every
/// [`TRACE_EVERY`] from another thread: requests at the server (in flight and waiting
/// for a slot), the pool's threads (alive, busy) and jobs queued, and the directories
/// the walk holds open (the pool's descriptors held). One line per [`TRACE_LINE`].
#[cfg(target_os = "linux")]
fn trace() {
    use aopen_slowfs::{Latency, SlowFs, Tree};
    use std::sync::atomic::AtomicBool;
    if let Err(why) = SlowFs::available() {
        println!("\nslow FUSE mount skipped: {why}");
        return;
    }
    // `Pool::stats` reads /proc per busy thread: sampled often, it would slow the walk.
    const TRACE_EVERY: Duration = Duration::from_millis(5);
    const TRACE_LINE: Duration = Duration::from_millis(20);
    type Sample = (Duration, aopen_slowfs::Stats, aopen::PoolStats);
    let latency = Duration::from_millis(5);
    let fs = SlowFs::builder()
        .tree(Tree::flat(FUSE_DIRS, FUSE_FILES))
        .latency(Latency::uniform(latency))
        .concurrency(FUSE_CONCURRENCY)
        .mount()
        .expect("mount the slow file system");
    for run in 0..RUNS {
        fs.reset_stats();
        let done = AtomicBool::new(false);
        let start = Instant::now();
        let samples: Vec<Sample> = std::thread::scope(|scope| {
            let sampler = scope.spawn(|| {
                let mut samples = Vec::new();
                while !done.load(Ordering::Relaxed) {
                    let (server, pool) = (fs.stats(), aopen::Pool::global().stats());
                    samples.push((start.elapsed(), server, pool));
                    std::thread::sleep(TRACE_EVERY);
                }
                samples
            });
            aopen_walk(fs.root());
            done.store(true, Ordering::Relaxed);
            sampler.join().unwrap()
        });
        let (elapsed, served) = (start.elapsed(), fs.stats().served_total());
        println!(
            "\n### trace, run {run}: {:.1} ms, {served} requests (ideal {:.1} ms)\n",
            elapsed.as_secs_f64() * 1e3,
            (latency * served as u32 / FUSE_CONCURRENCY as u32).as_secs_f64() * 1e3
        );
        println!("| ms | at server (max) | waiting for a slot | threads alive | busy | jobs queued | dirs open |");
        println!("|--:|--:|--:|--:|--:|--:|--:|");
        let bucket = |sample: &Sample| sample.0.as_millis() / TRACE_LINE.as_millis();
        let mut rest = &samples[..];
        while let Some(first) = rest.first() {
            let n = rest
                .iter()
                .take_while(|s| bucket(s) == bucket(first))
                .count();
            let (line, next) = rest.split_at(n);
            rest = next;
            let max = |f: fn(&Sample) -> u64| line.iter().map(f).max().unwrap_or(0);
            println!(
                "| {} | {} | {} | {} | {} | {} | {} |",
                first.0.as_millis(),
                max(|s| s.1.in_flight),
                max(|s| s.1.waiting),
                max(|s| s.2.threads_alive as u64),
                max(|s| s.2.threads_busy as u64),
                max(|s| s.2.jobs_queued as u64),
                max(|s| s.2.descriptors_held as u64),
            );
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a.starts_with("--") && a != "--bench")
        .collect();
    let all = args.is_empty();
    let wants = |flag: &str| args.iter().any(|a| a == flag);
    if all || wants("--variants") {
        variants(Path::new("/usr"));
    }
    if all || wants("--usr") {
        table("/usr, warm cache", Path::new("/usr"), CACHED_RUNS, None);
    }
    if wants("--million") {
        let cache = std::env::var_os("AOPEN_TREE_CACHE").map_or_else(
            || PathBuf::from("/var/tmp/aopen-tree-compare"),
            PathBuf::from,
        );
        match cache.join("a").is_dir() {
            true => table(
                "1,000 × 1,000 files, warm cache",
                &cache.join("a"),
                CACHED_RUNS,
                None,
            ),
            false => println!("\nno million-file tree: make it with `cargo run --release --example tree_compare -- --million`"),
        }
    }
    #[cfg(target_os = "linux")]
    if wants("--trace") {
        trace();
    }
    #[cfg(target_os = "linux")]
    if all || wants("--slowfs") {
        fuse_tables();
    }
}
