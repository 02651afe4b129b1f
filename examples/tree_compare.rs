//! Tree compare: rsync's quick check (same size, same mtime?) over two directory
//! trees, with every `readdir` and `stat` on the pool.
//!
//! Run it with `cargo run --release --example tree_compare -- DIR_A DIR_B`, or with no
//! arguments to compare two generated trees (20 dirs × 500 files each, in a temporary
//! directory) that differ in four planted ways: a size, a missing file, an extra file
//! and an mtime. It exits non-zero if a path could not be read, or if the generated
//! trees' differences are not exactly the planted ones.
//!
//! Both trees are walked at once, recursively. Each directory is listed with
//! `read_dir` (entries come back in batches) and its files are stat'ed with one
//! `metadata_batch` (a few pool trips, not one per file). An async semaphore, the
//! crate's own `Budget` used as a plain counter, keeps at most 64 directories in
//! flight, so a tree of a million directories does not queue a million jobs.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::error::Error;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use aopen::{fs, Budget, Pool};
use futures::future::{join, join_all, LocalBoxFuture};

/// Directories in each generated tree, and files in each directory.
const DIRS: usize = 20;
/// Files in each generated directory.
const FILES_PER_DIR: usize = 500;
/// Directories being listed and stat'ed at once, across both trees.
const IN_FLIGHT: usize = 64;
/// Print a progress line each time this many more files were stat'ed.
const PROGRESS_EVERY: usize = 5000;
/// Differences printed one per line; the rest are only counted.
const MAX_SHOWN: usize = 20;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// What the quick check compares, per path relative to the tree's root.
#[derive(PartialEq)]
struct Stamp {
    len: u64,
    mtime: SystemTime,
}

/// One tree: its root, and the files found under it so far.
struct Tree {
    root: PathBuf,
    files: RefCell<BTreeMap<PathBuf, Stamp>>,
}

impl Tree {
    fn new(root: &Path) -> Tree {
        let (root, files) = (root.to_path_buf(), RefCell::default());
        Tree { root, files }
    }
}

/// What both walks share: the in-flight limit, and counters for the progress lines.
struct Walk {
    limit: Budget,
    stated: Cell<usize>,
    errors: Cell<usize>,
    start: Instant,
}

impl Walk {
    fn error(&self, err: io::Error) {
        eprintln!("error: {err}"); // aopen's errors name the operation and the path
        self.errors.set(self.errors.get() + 1);
    }

    fn stated(&self, files: usize) {
        let (before, now) = (self.stated.get(), self.stated.get() + files);
        self.stated.set(now);
        if before / PROGRESS_EVERY != now / PROGRESS_EVERY {
            let rate = now as f64 / self.start.elapsed().as_secs_f64();
            let stats = Pool::global().stats();
            println!("  {now} files stat'ed, {rate:.0} files/s, {stats:?}");
        }
    }
}

/// Walks `dir` and everything under it into `tree`. Boxed, because it awaits itself.
fn walk_dir<'a>(walk: &'a Walk, tree: &'a Tree, dir: PathBuf) -> LocalBoxFuture<'a, ()> {
    Box::pin(async move {
        let permit = walk.limit.acquire().await;
        let subdirs = match list_and_stat(walk, tree, &dir).await {
            Ok(subdirs) => subdirs,
            Err(err) => return walk.error(err),
        };
        // Let go of the permit before waiting on the subdirectories: parents holding
        // permits while their children wait for one would deadlock a deep tree.
        drop(permit);
        join_all(subdirs.into_iter().map(|sub| walk_dir(walk, tree, sub))).await;
    })
}

/// Lists `dir`, stats its files in one batch, records them; returns its subdirectories.
async fn list_and_stat(walk: &Walk, tree: &Tree, dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut entries = fs::read_dir(dir).await?;
    let (mut subdirs, mut paths) = (Vec::new(), Vec::new());
    while let Some(entry) = entries.next_entry().await? {
        // Answered from the listing (d_type): no pool trip, no stat.
        match entry.file_type().await?.is_dir() {
            true => subdirs.push(entry.path()),
            false => paths.push(entry.path()),
        }
    }
    let stats = fs::metadata_batch(&paths).await?;
    for (path, meta) in paths.iter().zip(stats) {
        match meta.and_then(|m| Ok((m.len(), m.modified()?))) {
            Ok((len, mtime)) => {
                let relative = path.strip_prefix(&tree.root).unwrap_or(path);
                let stamp = Stamp { len, mtime };
                tree.files
                    .borrow_mut()
                    .insert(relative.to_path_buf(), stamp);
            }
            Err(err) => walk.error(err),
        }
    }
    walk.stated(paths.len());
    Ok(subdirs)
}

fn main() -> Result<()> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let tmp;
    let (a, b, planted) = match args.as_slice() {
        [a, b] => (a.clone(), b.clone(), None),
        [] => {
            tmp = tempfile::tempdir()?;
            let planted = make_trees(tmp.path())?;
            (tmp.path().join("a"), tmp.path().join("b"), Some(planted))
        }
        _ => return Err("usage: tree_compare [DIR_A DIR_B]".into()),
    };
    println!("comparing {} with {}", a.display(), b.display());

    let walk = Walk {
        limit: Budget::new(IN_FLIGHT),
        stated: Cell::new(0),
        errors: Cell::new(0),
        start: Instant::now(),
    };
    let (tree_a, tree_b) = (Tree::new(&a), Tree::new(&b));
    // Both trees at once, from this one thread: the pool does the waiting.
    aopen::block_on(join(
        walk_dir(&walk, &tree_a, a.clone()),
        walk_dir(&walk, &tree_b, b.clone()),
    ));
    let elapsed = walk.start.elapsed();
    let (tree_a, tree_b) = (tree_a.files.into_inner(), tree_b.files.into_inner());

    let all: BTreeSet<&PathBuf> = tree_a.keys().chain(tree_b.keys()).collect();
    let mut diffs = 0;
    for path in &all {
        let what = match (tree_a.get(*path), tree_b.get(*path)) {
            (Some(_), None) => "only in A",
            (None, Some(_)) => "only in B",
            (Some(x), Some(y)) if x.len != y.len => "size differs",
            (Some(x), Some(y)) if x.mtime != y.mtime => "mtime differs",
            _ => continue,
        };
        diffs += 1;
        if diffs <= MAX_SHOWN {
            println!("  {what}: {}", path.display());
        }
    }
    if diffs > MAX_SHOWN {
        println!("  ... and {} more", diffs - MAX_SHOWN);
    }
    let (stated, errors) = (walk.stated.get(), walk.errors.get());
    let rate = stated as f64 / elapsed.as_secs_f64();
    println!(
        "compared {} files, {diffs} differences, {errors} errors",
        all.len()
    );
    println!("stat'ed {stated} files in {elapsed:.1?}: {rate:.0} files/s");
    println!("pool: {:?}", Pool::global().stats());
    match planted {
        _ if errors > 0 => Err(format!("{errors} paths could not be read").into()),
        Some(planted) if planted != diffs => Err(format!("planted {planted} differences").into()),
        _ => Ok(()),
    }
}

/// Makes trees `a` and `b` under `root`, equal but for the planted differences;
/// returns how many were planted. Plain `std::fs`: setting up is not the lesson.
fn make_trees(root: &Path) -> io::Result<usize> {
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for side in ["a", "b"] {
        for d in 0..DIRS {
            let dir = root.join(format!("{side}/dir{d:02}"));
            std::fs::create_dir_all(&dir)?;
            for f in 0..FILES_PER_DIR {
                let mut file = std::fs::File::create(dir.join(format!("file{f:04}")))?;
                file.write_all(format!("{d} {f}\n").repeat(f % 5 + 1).as_bytes())?;
                file.set_modified(base + Duration::from_secs(f as u64))?;
            }
        }
    }
    let b = root.join("b");
    // 1. Another size (and mtime: a size difference is reported as such).
    std::fs::write(b.join("dir03/file0042"), "changed\n")?;
    // 2. A file missing from B, 3. a file only in B.
    std::fs::remove_file(b.join("dir07/file0100"))?;
    std::fs::write(b.join("dir11/extra"), "extra\n")?;
    // 4. Same size, another mtime: touched, or copied without keeping times.
    let touched = std::fs::OpenOptions::new()
        .write(true)
        .open(b.join("dir15/file0250"))?;
    touched.set_modified(base + Duration::from_secs(3600))?;
    Ok(4)
}
