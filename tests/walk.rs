//! `aopen::fs::walk`: the entries it hands out, in the order it promises, within the
//! descriptors it may hold, and what it does on loops, errors, mounts and drops.
//!
//! The reference is a plain recursive std walk (`lstat` of every entry, the root
//! followed), compared as a set for unsorted walks and as a sequence for sorted ones.
//! Scenarios that need slow or failing calls run in a child process under the fault
//! shim (`tests/fault-shim`); the mount scenario runs in a child with its own mount
//! namespace (root only; it prints a line and skips otherwise).

// Built around Unix descriptors (`/proc/self/fd`), the fault shim, symlinks and mount
// namespaces: Linux only. (The walk itself builds everywhere, and is linted for
// every target, but is tested on Linux only.)
#![cfg(target_os = "linux")]

#[path = "support/common.rs"]
mod common;

use std::cell::Cell;
use std::collections::BTreeSet;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use aopen::fs::{
    PathError, Walk, WalkEntry, WalkOptions, COOP_BUDGET, MAX_BUFFERED_ENTRIES, MAX_DIRS_IN_FLIGHT,
    STAT_CHUNK,
};
use aopen::{LocalExecutor, Pool};
use common::{fault_shim, fds_where, pool, rerun_test, tempdir, yield_now};

/// How long a pool may take to finish its jobs and closes after a walk.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(30);

/// Names the scenario a child process runs, and its test directory.
const CHILD_ENV: &str = "AOPEN_WALK_CHILD";
const DIR_ENV: &str = "AOPEN_WALK_DIR";

/// What the comparisons look at, per entry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    path: PathBuf,
    depth: usize,
    kind: &'static str,
    /// Size and inode, when metadata was asked for.
    stat: Option<(u64, u64)>,
}

fn kind(file_type: std::fs::FileType) -> &'static str {
    match () {
        _ if file_type.is_symlink() => "link",
        _ if file_type.is_dir() => "dir",
        _ if file_type.is_file() => "file",
        _ => "other",
    }
}

fn seen(entry: &WalkEntry) -> Seen {
    Seen {
        path: entry.path().to_path_buf(),
        depth: entry.depth(),
        kind: kind(entry.file_type()),
        stat: entry.metadata().map(|m| (m.len(), m.ino())),
    }
}

/// The reference: std, depth first, names in byte order, the root followed.
fn std_walk(root: &Path, max_depth: usize, with_stat: bool) -> Vec<Seen> {
    fn visit(dir: &Path, depth: usize, max: usize, stat: bool, out: &mut Vec<Seen>) {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|err| panic!("std read_dir {}: {err}", dir.display()))
            .map(|entry| entry.expect("std readdir").path())
            .collect();
        names.sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
        for path in names {
            let meta = std::fs::symlink_metadata(&path).expect("std lstat");
            out.push(Seen {
                path: path.clone(),
                depth,
                kind: kind(meta.file_type()),
                stat: stat.then(|| (meta.len(), meta.ino())),
            });
            if meta.is_dir() && depth < max {
                visit(&path, depth + 1, max, stat, out);
            }
        }
    }
    let meta = std::fs::metadata(root).expect("std stat of the root");
    let mut out = vec![Seen {
        path: root.to_path_buf(),
        depth: 0,
        kind: kind(meta.file_type()),
        stat: with_stat.then(|| (meta.len(), meta.ino())),
    }];
    if meta.is_dir() && max_depth > 0 {
        visit(root, 1, max_depth, with_stat, &mut out);
    }
    out
}

/// Every entry of `walk`, in order; panics on an error.
fn collect(mut walk: Walk) -> Vec<Seen> {
    aopen::block_on(async move {
        let mut out = Vec::new();
        while let Some(entry) = walk.next_entry().await.expect("a walk entry") {
            out.push(seen(&entry));
        }
        out
    })
}

/// Every entry of `walk`, errors included, in order.
fn collect_all(mut walk: Walk) -> Vec<io::Result<WalkEntry>> {
    aopen::block_on(async move {
        let mut out = Vec::new();
        while let Some(entry) = walk.next_entry().await.transpose() {
            out.push(entry);
        }
        out
    })
}

/// Every directory came before its contents: each entry's parent was handed out
/// before it (the root, depth 0, has none in the walk).
fn assert_parents_first(entries: &[io::Result<WalkEntry>]) {
    let mut seen = std::collections::HashSet::new();
    for entry in entries.iter().flatten() {
        if entry.depth() > 0 {
            let parent = entry.path().parent().expect("a path below the root");
            assert!(
                seen.contains(parent),
                "{} came before its directory {}",
                entry.path().display(),
                parent.display()
            );
        }
        seen.insert(entry.path().to_path_buf());
    }
}

fn as_set(entries: Vec<Seen>) -> BTreeSet<Seen> {
    entries.into_iter().collect()
}

/// Compares a walk of `root` with std's: unsorted as a set, sorted as a sequence,
/// with and without metadata.
fn assert_walks_like_std(root: &Path, max_depth: usize) {
    for with_stat in [true, false] {
        let expected = std_walk(root, max_depth, with_stat);
        let mut options = WalkOptions::new();
        options.max_depth(max_depth).metadata(with_stat);
        let unsorted = collect(options.walk(root));
        assert_eq!(
            unsorted.len(),
            expected.len(),
            "{} (unsorted)",
            root.display()
        );
        assert_eq!(
            as_set(unsorted),
            as_set(expected.clone()),
            "{}",
            root.display()
        );
        let sorted = collect(options.sorted(true).walk(root));
        assert_eq!(sorted.len(), expected.len(), "{} (sorted)", root.display());
        if let Some(at) = sorted.iter().zip(&expected).position(|(a, b)| a != b) {
            panic!(
                "sorted walk of {} differs from std's at entry {at}: {:?} vs {:?}",
                root.display(),
                sorted[at],
                expected[at]
            );
        }
    }
}

/// A tree with some of everything: nested and empty directories, a directory larger
/// than a listing batch, symlinks (to a file, a directory, nowhere), names that sort
/// differently as bytes and as strings.
fn make_mixed_tree(root: &Path) {
    std::fs::create_dir_all(root.join("a/b/c/d/e")).unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    std::fs::create_dir_all(root.join("big")).unwrap();
    for i in 0..3000 {
        std::fs::write(root.join(format!("big/f{i}")), vec![b'x'; i % 17]).unwrap();
    }
    for name in ["Z", "a.txt", "a-b", "a0", "\u{e9}t\u{e9}", "_"] {
        std::fs::write(root.join("a").join(name), name).unwrap();
    }
    std::fs::write(root.join("a/b/c/d/e/leaf"), "leaf").unwrap();
    symlink("a.txt", root.join("a/to-file")).unwrap();
    symlink("../big", root.join("a/to-dir")).unwrap();
    symlink("nowhere", root.join("a/dangling")).unwrap();
    for d in 0..40 {
        let dir = root.join(format!("wide/d{d:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..(d % 7) {
            std::fs::write(dir.join(format!("f{f}")), "").unwrap();
        }
    }
}

#[test]
fn entries_equal_a_std_walk_of_a_system_tree() {
    let root = Path::new("/usr/share");
    if !root.is_dir() {
        println!("skipped: no {}", root.display());
        return;
    }
    assert_walks_like_std(root, usize::MAX);
}

#[test]
fn entries_equal_a_std_walk_of_generated_trees() {
    let (_guard, root) = tempdir();
    make_mixed_tree(&root);
    assert_walks_like_std(&root, usize::MAX);
    // A deep chain, and a root that is a file.
    let (_guard, deep) = tempdir();
    let mut dir = deep.clone();
    for i in 0..100 {
        dir.push(format!("level{i}"));
    }
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bottom"), "b").unwrap();
    assert_walks_like_std(&deep, usize::MAX);
    assert_walks_like_std(&root.join("a/a.txt"), usize::MAX);
}

#[test]
fn max_depth_stops_at_its_depth() {
    let (_guard, root) = tempdir();
    make_mixed_tree(&root);
    for depth in 0..=5 {
        assert_walks_like_std(&root, depth);
        let deepest = collect(WalkOptions::new().max_depth(depth).walk(&root))
            .iter()
            .map(|entry| entry.depth)
            .max();
        assert_eq!(deepest, Some(depth));
    }
}

#[test]
fn a_missing_root_is_one_error_naming_it() {
    let (_guard, root) = tempdir();
    let missing = root.join("missing");
    let entries = collect_all(aopen::fs::walk(&missing));
    assert_eq!(entries.len(), 1);
    let err = entries.into_iter().next().unwrap().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert_eq!(path_of(&err), missing);
}

#[test]
fn a_file_root_is_one_entry_and_no_error() {
    // An unsorted walk opens its root while it stats it: the open's `ENOTDIR` is
    // not an error of the walk, whose stat says the root is a file.
    let (_guard, root) = tempdir();
    let file = root.join("file");
    std::fs::write(&file, "four").unwrap();
    for sorted in [false, true] {
        let entries = collect_all(WalkOptions::new().sorted(sorted).walk(&file));
        assert_eq!(entries.len(), 1, "sorted: {sorted}: {entries:?}");
        let entry = entries.into_iter().next().unwrap().unwrap();
        assert!(entry.file_type().is_file());
        assert_eq!(entry.metadata().map(|m| m.len()), Some(4));
    }
}

/// The path a crate error names.
fn path_of(err: &io::Error) -> PathBuf {
    err.get_ref()
        .and_then(|e| e.downcast_ref::<PathError>())
        .unwrap_or_else(|| panic!("not a PathError: {err}"))
        .path()
        .to_path_buf()
}

#[test]
fn follow_links_walks_through_links_and_reports_a_loop_once() {
    let (_guard, root) = tempdir();
    std::fs::create_dir_all(root.join("real/sub")).unwrap();
    std::fs::write(root.join("real/sub/file"), "12345").unwrap();
    symlink("real", root.join("link")).unwrap(); // a directory reached twice
    symlink("../..", root.join("real/sub/up")).unwrap(); // back to the root: a loop
    symlink("nowhere", root.join("dangling")).unwrap();
    for sorted in [false, true] {
        let walk = WalkOptions::new()
            .follow_links(true)
            .sorted(sorted)
            .walk(&root);
        // Without loop detection this walk never ends: a hang is a failure here.
        let entries = common::within(Duration::from_secs(60), move || collect_all(walk));
        let (mut ok, mut errors) = (BTreeSet::new(), Vec::new());
        for entry in entries {
            match entry {
                Ok(entry) => {
                    let relative = entry.path().strip_prefix(&root).unwrap().to_path_buf();
                    ok.insert((relative, kind(entry.file_type())));
                }
                Err(err) => errors.push(path_of(&err)),
            }
        }
        let expected: BTreeSet<_> = [
            ("", "dir"),
            ("real", "dir"),
            ("real/sub", "dir"),
            ("real/sub/file", "file"),
            ("link", "dir"), // followed: the link is what it points to
            ("link/sub", "dir"),
            ("link/sub/file", "file"),
        ]
        .into_iter()
        .map(|(path, kind)| (PathBuf::from(path), kind))
        .collect();
        assert_eq!(ok, expected, "sorted: {sorted}");
        errors.sort();
        let expected_errors = ["dangling", "link/sub/up", "real/sub/up"].map(|p| root.join(p));
        assert_eq!(errors, expected_errors, "sorted: {sorted}");
    }
    // Not following, the links are links and nothing loops.
    let plain = collect(aopen::fs::walk(&root));
    assert_eq!(plain.iter().filter(|entry| entry.kind == "link").count(), 3);
}

#[test]
fn a_walk_is_send_and_so_is_its_future() {
    fn assert_send<T: Send>(_: &T) {}
    let mut walk = aopen::fs::walk("/");
    assert_send(&walk);
    let future = walk.next_entry();
    assert_send(&future);
}

#[test]
fn a_walk_yields_to_other_tasks_when_its_entries_are_all_ready() {
    let (_guard, root) = tempdir();
    const FILES: usize = 4 * COOP_BUDGET;
    for i in 0..FILES {
        std::fs::write(root.join(format!("f{i}")), "").unwrap();
    }
    let executor = LocalExecutor::new();
    let ticks = Rc::new(Cell::new(0usize));
    let stop = Rc::new(Cell::new(false));
    let ticker = executor.spawn({
        let (ticks, stop) = (ticks.clone(), stop.clone());
        async move {
            while !stop.get() {
                ticks.set(ticks.get() + 1);
                yield_now().await;
            }
        }
    });
    let longest_run = executor.run(async {
        let mut walk = aopen::fs::walk(&root);
        let first = walk.next_entry().await.unwrap();
        assert!(first.is_some()); // the root; the directory's job is started
                                  // Every entry is read and waiting before we take the next one.
        while walk.progress().files < FILES as u64 {
            thread::yield_now();
        }
        let (mut run, mut longest, mut last_tick) = (0, 0, ticks.get());
        while walk.next_entry().await.unwrap().is_some() {
            if ticks.get() == last_tick {
                run += 1;
            } else {
                (run, last_tick) = (1, ticks.get());
            }
            longest = longest.max(run);
        }
        stop.set(true);
        longest
    });
    executor.run(ticker);
    assert!(
        longest_run <= COOP_BUDGET,
        "{longest_run} entries in a row without letting the ticker run"
    );
}

// ---------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------

/// Runs the test `child_<scenario>` in a child process with `env`, its test
/// directory made by `setup`; asserts it passed.
fn run_child(scenario: &str, env: &[(&str, &str)], setup: impl FnOnce(&Path)) {
    let dir = tempfile::Builder::new()
        .prefix(&format!("aopen-walk-{scenario}-"))
        .tempdir()
        .expect("make the test directory");
    setup(dir.path());
    let mut command = rerun_test(&format!("child_{scenario}"));
    command
        .env(CHILD_ENV, scenario)
        .env(DIR_ENV, dir.path())
        .env("RUST_BACKTRACE", "1");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("run the child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child {scenario}: {}\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("walk-child-{scenario}-passed")),
        "child {scenario} did not run its scenario:\n{stdout}"
    );
    // The harness may have printed "test child_x ... " on the same line.
    for line in stdout.lines() {
        if let Some(at) = line.find("skipped:").or_else(|| line.find("report:")) {
            println!("{}", &line[at..]);
        }
    }
}

/// Runs `scenario` under the fault shim with the rules `faults`.
fn run_shim_child(scenario: &str, faults: &str, setup: impl FnOnce(&Path)) {
    let shim = fault_shim().to_str().expect("a UTF-8 shim path").to_owned();
    run_child(
        scenario,
        &[("LD_PRELOAD", &shim), ("AOPEN_FAULTS", faults)],
        setup,
    );
}

/// The test directory if this process is the child for `scenario`.
fn child_dir(scenario: &str) -> Option<PathBuf> {
    if std::env::var(CHILD_ENV).ok()? != scenario {
        return None;
    }
    Some(PathBuf::from(std::env::var_os(DIR_ENV).expect("DIR_ENV")))
}

fn child_passed(scenario: &str) {
    println!("walk-child-{scenario}-passed");
}

/// Descriptors of this process open on something under `dir`.
fn fds_under(dir: &Path) -> usize {
    fds_where(|target| target.starts_with(dir)).len()
}

/// The shim's count of calls that matched rule `rule` so far.
fn shim_matched(rule: u64) -> u64 {
    let name = c"aopen_fault_matched";
    // SAFETY: `dlsym` with `RTLD_DEFAULT` and a NUL-terminated name.
    let found = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    assert!(!found.is_null(), "the fault shim is not preloaded");
    // SAFETY: the shim defines this symbol as `extern "C" fn(u64) -> u64`.
    let matched =
        unsafe { std::mem::transmute::<*mut libc::c_void, extern "C" fn(u64) -> u64>(found) };
    matched(rule)
}

/// Shuts `pool` down and asserts nothing under `dir` is open and every permit is back.
fn assert_nothing_held(pool: &Pool, dir: &Path) {
    pool.shutdown(SHUTDOWN_LIMIT)
        .expect("the pool's jobs and closes finish");
    assert_eq!(
        fds_under(dir),
        0,
        "descriptors left open under {}",
        dir.display()
    );
    let budget = pool.budget();
    assert_eq!(budget.available(), budget.capacity(), "{:?}", pool.stats());
}

/// Budget for the deep-tree scenario.
const SMALL_BUDGET: usize = 4;

#[test]
fn a_deep_tree_on_a_budget_of_four_never_holds_more_than_four() {
    // Each `readdir` sleeps, so directories stay open long enough to overlap.
    run_shim_child(
        "budget",
        "readdir:delay=1ms:path=*aopen-walk-budget-*",
        |dir| {
            // Depth 6, three subdirectories and two files in each directory.
            fn grow(dir: &Path, levels: usize) {
                for f in 0..2 {
                    std::fs::write(dir.join(format!("file{f}")), "").unwrap();
                }
                if levels > 0 {
                    for d in 0..3 {
                        let sub = dir.join(format!("dir{d}"));
                        std::fs::create_dir(&sub).unwrap();
                        grow(&sub, levels - 1);
                    }
                }
            }
            grow(dir, 6);
            // And directories stat'ed in several chunks, which share one descriptor.
            for d in 0..4 {
                let big = dir.join(format!("big{d}"));
                std::fs::create_dir(&big).unwrap();
                for f in 0..=3 * STAT_CHUNK {
                    std::fs::write(big.join(format!("f{f}")), "").unwrap();
                }
            }
        },
    );
}

#[test]
fn child_budget() {
    let Some(dir) = child_dir("budget") else {
        return;
    };
    let dir = dir.canonicalize().unwrap();
    let pool = pool(16, SMALL_BUDGET);
    let done = Arc::new(AtomicBool::new(false));
    let (most_fds, most_held) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    // A sampler beside the walk, looking at the descriptors while jobs hold them.
    let sampler = thread::spawn({
        let (done, most_fds, most_held, dir, pool) = (
            done.clone(),
            most_fds.clone(),
            most_held.clone(),
            dir.clone(),
            pool.clone(),
        );
        move || {
            while !done.load(Ordering::SeqCst) {
                most_fds.fetch_max(fds_under(&dir), Ordering::SeqCst);
                most_held.fetch_max(pool.stats().descriptors_held, Ordering::SeqCst);
            }
        }
    });
    let entries = collect(pool.fs().walk(&dir));
    done.store(true, Ordering::SeqCst);
    sampler.join().unwrap();
    assert_eq!(as_set(entries), as_set(std_walk(&dir, usize::MAX, true)));
    let (fds, held) = (
        most_fds.load(Ordering::SeqCst),
        most_held.load(Ordering::SeqCst),
    );
    println!("report: most descriptors open under the tree: {fds}, most permits held: {held}");
    assert!(fds <= SMALL_BUDGET, "{fds} descriptors open at once");
    assert!(held <= SMALL_BUDGET, "{held} permits held at once");
    assert!(
        fds > 0,
        "the sampler never saw a directory open: the scenario tests nothing"
    );
    assert_nothing_held(&pool, &dir);
    child_passed("budget");
}

/// Subdirectories of the dropped walk's tree.
const DROP_DIRS: usize = 500;
/// Threads of the dropped walk's pool: at most this many jobs run when it is dropped.
const DROP_THREADS: usize = 4;

#[test]
fn a_dropped_walk_stops_and_leaks_nothing() {
    run_shim_child("drop", "open:delay=2ms:path=*aopen-walk-drop-*/d*", |dir| {
        for d in 0..DROP_DIRS {
            let sub = dir.join(format!("d{d:03}"));
            std::fs::create_dir(&sub).unwrap();
            std::fs::write(sub.join("file"), "x").unwrap();
        }
    });
}

#[test]
fn child_drop() {
    let Some(dir) = child_dir("drop") else {
        return;
    };
    let dir = dir.canonicalize().unwrap();
    let pool = pool(DROP_THREADS, 64);
    let mut walk = pool.fs().walk(&dir);
    aopen::block_on(async {
        // The root, then a subdirectory: by now the root's listing is in and its
        // subdirectories' jobs are queued (as many as the budget allows).
        for _ in 0..2 {
            walk.next_entry().await.unwrap().unwrap();
        }
    });
    let opened_before = shim_matched(0);
    drop(walk);
    assert_nothing_held(&pool, &dir);
    let opened_after = shim_matched(0) - opened_before;
    println!("report: directories opened before the drop: {opened_before}, after: {opened_after}");
    // Only jobs already running may still open their directory.
    assert!(
        opened_after <= DROP_THREADS as u64,
        "{opened_after} directories opened after the walk was dropped"
    );
    assert!((opened_before as usize) < DROP_DIRS);
    child_passed("drop");
}

#[test]
fn errors_name_their_paths_and_the_walk_goes_on() {
    // `opendir` of `locked` fails as it would for another user; `gone` vanishes
    // between the listing and its stat.
    let faults = "open:errno=EACCES:path=*aopen-walk-errors-*/locked;\
                  stat:errno=ENOENT:path=gone";
    run_shim_child("errors", faults, |dir| {
        std::fs::create_dir_all(dir.join("locked")).unwrap();
        std::fs::write(dir.join("locked/hidden"), "").unwrap();
        std::fs::create_dir_all(dir.join("open/inner")).unwrap();
        for name in ["a", "gone", "z"] {
            std::fs::write(dir.join("open").join(name), name).unwrap();
        }
        std::fs::write(dir.join("open/inner/deep"), "").unwrap();
    });
}

#[test]
fn a_listing_without_types_is_not_stat_ed_twice() {
    // A slow directory enters the subdirectories its listing names before their
    // stat; a listing without types (`DT_UNKNOWN`) would make std stat each entry
    // for its type, on the listing's thread, as well as after. The first such
    // round trip stops that for the walk. Every open and stat here is slow.
    let faults = "stat:delay=1ms:path=*aopen-walk-untyped-*;\
                  readdir:dtype=unknown:path=*aopen-walk-untyped-*;\
                  open:delay=1ms:path=*aopen-walk-untyped-*";
    run_shim_child("untyped", faults, |dir| {
        for d in 0..UNTYPED_DIRS {
            let sub = dir.join(format!("d{d}"));
            std::fs::create_dir(&sub).unwrap();
            for f in 0..UNTYPED_FILES {
                std::fs::write(sub.join(format!("f{f}")), "").unwrap();
            }
        }
    });
}

const UNTYPED_DIRS: usize = 4;
const UNTYPED_FILES: usize = 12;

#[test]
fn child_untyped() {
    let Some(dir) = child_dir("untyped") else {
        return;
    };
    let stats_before = shim_matched(0);
    let entries = collect(aopen::fs::walk(&dir));
    let stats = shim_matched(0) - stats_before;
    let expected = 1 + UNTYPED_DIRS * (1 + UNTYPED_FILES);
    assert_eq!(entries.len(), expected);
    assert!(entries.iter().all(|e| e.stat.is_some()));
    // One stat an entry, and a few more: the directories whose first entries were
    // read before the first type's stat ended ask once each.
    assert!(
        stats as usize <= expected + 1 + UNTYPED_DIRS,
        "{stats} stats for {expected} entries"
    );
    child_passed("untyped");
}

#[test]
fn a_walk_of_slow_directories_equals_a_std_walk() {
    // Every open is slow (1 ms), so each directory the walk enters is read with its
    // own listing (`getdents64`, entries stat'ed through `/proc/self/fd`): it must
    // give std's entries and metadata. Rule 1 counts those stats.
    let faults = "open:delay=1ms:path=*aopen-walk-slowopen-*;\
                  stat:delay=1us:path=/proc/self/fd/*";
    run_shim_child("slowopen", faults, make_mixed_tree);
}

#[test]
fn child_slowopen() {
    let Some(dir) = child_dir("slowopen") else {
        return;
    };
    assert_walks_like_std(&dir, usize::MAX);
    assert!(
        shim_matched(1) > 3_000,
        "the entries were not stat'ed through the walk's own listing: {}",
        shim_matched(1)
    );
    child_passed("slowopen");
}

#[test]
fn child_errors() {
    let Some(dir) = child_dir("errors") else {
        return;
    };
    for sorted in [false, true] {
        let entries = collect_all(WalkOptions::new().sorted(sorted).walk(&dir));
        let mut ok = Vec::new();
        let mut errors = Vec::new();
        for entry in &entries {
            match entry {
                Ok(entry) => ok.push(entry.path().strip_prefix(&dir).unwrap().to_path_buf()),
                Err(err) => errors.push((path_of(err), err.kind())),
            }
        }
        errors.sort();
        assert_eq!(
            errors,
            [
                (dir.join("locked"), io::ErrorKind::PermissionDenied),
                (dir.join("open/gone"), io::ErrorKind::NotFound),
            ],
            "sorted: {sorted}"
        );
        let mut expected = [
            "",
            "locked",
            "open",
            "open/a",
            "open/inner",
            "open/inner/deep",
            "open/z",
        ]
        .map(PathBuf::from)
        .to_vec();
        if !sorted {
            ok.sort();
            expected.sort();
        }
        assert_eq!(ok, expected, "sorted: {sorted}");
        if sorted {
            // Each error where its entry would be: `locked`'s right after `locked`.
            let at = |i: usize| entries[i].as_ref().err().map(path_of);
            assert_eq!(at(2), Some(dir.join("locked")));
            assert_eq!(at(5), Some(dir.join("open/gone")));
        }
        // A root that is a directory and cannot be opened: the root, then its
        // error (an unsorted walk opens it while it stats it; the open may fail
        // before or after the stat is done).
        let locked = dir.join("locked");
        let entries = collect_all(WalkOptions::new().sorted(sorted).walk(&locked));
        assert_eq!(entries.len(), 2, "sorted: {sorted}: {entries:?}");
        assert_eq!(entries[0].as_ref().unwrap().path(), locked);
        let err = entries[1].as_ref().unwrap_err();
        assert_eq!(
            (path_of(err), err.kind()),
            (locked.clone(), io::ErrorKind::PermissionDenied)
        );
    }
    child_passed("errors");
}

#[test]
fn same_file_system_lists_a_mount_point_but_does_not_enter_it() {
    run_child("mount", &[], |dir| {
        std::fs::create_dir_all(dir.join("mnt")).unwrap();
        std::fs::write(dir.join("here"), "").unwrap();
    });
}

#[test]
fn child_mount() {
    let Some(dir) = child_dir("mount") else {
        return;
    };
    // A mount namespace of our own, so the mount is private and gone when we exit.
    // SAFETY: plain system calls with valid, NUL-terminated arguments.
    let private = unsafe {
        libc::unshare(libc::CLONE_NEWNS) == 0
            && libc::mount(
                c"none".as_ptr(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) == 0
    };
    if !private {
        println!(
            "skipped: no mount namespace ({})",
            io::Error::last_os_error()
        );
        child_passed("mount");
        return;
    }
    let mnt = std::ffi::CString::new(dir.join("mnt").as_os_str().as_bytes()).unwrap();
    // SAFETY: as above.
    let rc = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            mnt.as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "mount tmpfs: {}", io::Error::last_os_error());
    std::fs::write(dir.join("mnt/inside"), "").unwrap();
    let relative = |entries: Vec<Seen>| -> BTreeSet<PathBuf> {
        entries
            .into_iter()
            .map(|e| e.path.strip_prefix(&dir).unwrap().to_path_buf())
            .collect()
    };
    for sorted in [false, true] {
        for metadata in [true, false] {
            let mut options = WalkOptions::new();
            options.sorted(sorted).metadata(metadata);
            let across = relative(collect(options.walk(&dir)));
            let staying = relative(collect(options.same_file_system(true).walk(&dir)));
            let paths = |list: &[&str]| list.iter().map(PathBuf::from).collect::<BTreeSet<_>>();
            assert_eq!(across, paths(&["", "here", "mnt", "mnt/inside"]));
            assert_eq!(staying, paths(&["", "here", "mnt"]));
        }
    }
    child_passed("mount");
}

#[test]
fn a_sorted_walk_reads_the_directory_it_waits_for_even_with_its_buffer_full() {
    // `a/sub` is found when `big` has been read ahead already: more entries than the
    // walk buffers. The output needs `a/sub` first, so the walk must still read it.
    let (_guard, root) = tempdir();
    std::fs::create_dir_all(root.join("a/sub")).unwrap();
    std::fs::write(root.join("a/sub/leaf"), "").unwrap();
    std::fs::create_dir(root.join("big")).unwrap();
    let big = MAX_BUFFERED_ENTRIES + 100;
    for i in 0..big {
        std::fs::File::create(root.join(format!("big/{i}"))).unwrap();
    }
    let expected = std_walk(&root, usize::MAX, false);
    let mut walk = WalkOptions::new().sorted(true).metadata(false).walk(&root);
    let entries = common::within(Duration::from_secs(120), move || {
        aopen::block_on(async move {
            let mut entries = Vec::new();
            // The root, then `a`: by now the jobs of `a` and `big` are started.
            for _ in 0..2 {
                entries.push(seen(&walk.next_entry().await.unwrap().unwrap()));
            }
            // Both listings are in before the walk looks again (root, a, big, a/sub).
            while walk.progress().dirs < 4 || walk.progress().files < big as u64 {
                thread::yield_now();
            }
            while let Some(entry) = walk.next_entry().await.unwrap() {
                entries.push(seen(&entry));
            }
            entries
        })
    });
    assert_eq!(entries, expected);
}

#[test]
fn a_consumer_that_reads_slowly_holds_back_the_walk() {
    // A consumer slower than the walk: a burst of entries, then it waits until every
    // job the walk started is done, again and again. Each burst (COOP_BUDGET
    // entries, more than the walk hands out between two looks at its mailbox) lets
    // the walk take in what finished and start directories, so without
    // back-pressure it reads on, up to MAX_DIRS_IN_FLIGHT directories a burst, and
    // holds the whole tree after a few bursts.
    const DIRS: usize = 2_000;
    const FILES: usize = 20;
    const BURSTS: usize = 20;
    // In memory where it can be: this machine's /tmp took 750 µs a file.
    let shm = std::path::Path::new("/dev/shm");
    let guard = match shm.is_dir() {
        true => tempfile::tempdir_in(shm),
        false => tempfile::tempdir(),
    }
    .unwrap();
    let root = guard.path().to_path_buf();
    for d in 0..DIRS {
        let dir = root.join(format!("d{d:04}"));
        std::fs::create_dir(&dir).unwrap();
        for f in 0..FILES {
            std::fs::File::create(dir.join(format!("f{f:02}"))).unwrap();
        }
    }
    let total = 1 + DIRS * (1 + FILES);
    let pool = pool(4, 512);
    let jobs_done = || {
        common::wait_for("the walk's jobs to finish", || {
            let stats = pool.stats();
            match stats.threads_busy == 0 && stats.jobs_queued == 0 {
                true => Ok(()),
                false => Err(format!("{stats:?}")),
            }
        })
    };
    let mut walk = WalkOptions::new().pool(&pool).metadata(false).walk(&root);
    let handed_out = BURSTS * COOP_BUDGET;
    for _ in 0..BURSTS {
        for _ in 0..COOP_BUDGET {
            aopen::block_on(walk.next_entry()).unwrap().unwrap();
        }
        jobs_done();
    }
    let progress = walk.progress();
    let read = (progress.dirs + progress.files) as usize;
    // Handed out; at most MAX_BUFFERED_ENTRIES waiting when the walk stopped
    // starting directories; and the directories in flight then, each read whole.
    let bound = handed_out + MAX_BUFFERED_ENTRIES + MAX_DIRS_IN_FLIGHT * (1 + FILES);
    assert!(
        read <= bound && read < total,
        "{read} of {total} entries read while {handed_out} were handed out (bound {bound})"
    );
    // And it goes on when read again.
    let rest = common::within(Duration::from_secs(120), move || {
        let mut rest = 0;
        while aopen::block_on(walk.next_entry()).unwrap().is_some() {
            rest += 1;
        }
        rest
    });
    assert_eq!(handed_out + rest, total);
}

/// Which requests of a kind [`walk_holding`] holds at the server.
#[derive(Clone, Copy)]
enum Held {
    Everywhere,
    /// Those about the entries of directory `k`.
    In(u64),
    /// Those about the root itself.
    Root,
}

/// Runs `walk` to its end while `fs` holds requests (`holds`: kinds, and which
/// requests of each: [`Held`]); a watcher thread lets them go once `reached(server, pool)` holds, or
/// at [`common::DEADLINE`]. Returns how many entries the walk handed out (all `Ok`,
/// each directory before its contents), whether the condition was reached, and the
/// counters when the gate opened.
fn walk_holding(
    fs: &aopen_slowfs::SlowFs,
    holds: &[(aopen_slowfs::Kind, Held)],
    pool: &Pool,
    reached: impl Fn(&aopen_slowfs::Stats, &aopen::PoolStats) -> bool + Send + Sync,
    walk: Walk,
) -> (usize, bool, aopen_slowfs::Stats, aopen::PoolStats) {
    fs.reset_stats();
    for &(kind, held) in holds {
        match held {
            Held::In(dir) => fs.hold_in(kind, dir),
            Held::Root => fs.hold_root(kind),
            Held::Everywhere => fs.hold(kind),
        }
    }
    thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            let start = std::time::Instant::now();
            loop {
                let (server, threads) = (fs.stats(), pool.stats());
                let ok = reached(&server, &threads);
                if ok || start.elapsed() > common::DEADLINE {
                    for &(kind, _) in holds {
                        fs.release(kind);
                    }
                    return (ok, server, threads);
                }
                thread::sleep(Duration::from_millis(1));
            }
        });
        let entries = collect_all(walk);
        assert!(entries.iter().all(Result::is_ok), "{entries:?}");
        assert_parents_first(&entries);
        let (ok, server, threads) = watcher.join().expect("the watcher");
        (entries.len(), ok, server, threads)
    })
}

/// A latency for the walk's slow-mount tests: a directory's open (a lookup and an
/// opendir) takes well over `SLOW_OPEN` (250 µs), so each directory counts as slow.
const SLOW_MOUNT_LATENCY: Duration = Duration::from_millis(2);

/// Requests the test mounts serve at once: more than the walks send.
const SLOW_MOUNT_CONCURRENCY: usize = 1024;

fn slow_mount(dirs: u64, files: u64) -> aopen_slowfs::SlowFs {
    slow_mount_with(
        dirs,
        files,
        aopen_slowfs::Latency::uniform(SLOW_MOUNT_LATENCY),
    )
}

/// [`slow_mount`] with latencies of its own.
fn slow_mount_with(dirs: u64, files: u64, latency: aopen_slowfs::Latency) -> aopen_slowfs::SlowFs {
    aopen_slowfs::SlowFs::builder()
        .tree(aopen_slowfs::Tree::flat(dirs, files))
        .latency(latency)
        .concurrency(SLOW_MOUNT_CONCURRENCY)
        .mount()
        .expect("mount the slow file system")
}

#[test]
fn a_slow_directory_has_all_its_stats_at_the_server_at_once() {
    // The walk's first directory is alone in flight: its stats are what keeps a slow
    // server busy. In chunks of 16, 64 entries had 4 stats at the server at once.
    let name = "walk::a_slow_directory_has_all_its_stats_at_the_server_at_once";
    if !aopen_slowfs::SlowFs::announce(name) {
        return;
    }
    const DIRS: u64 = 64;
    let fs = slow_mount(DIRS, 1);
    let pool = Pool::builder().max_threads(256).build().unwrap();
    // Each stat of a root entry is a lookup in the root (directory 0), held there.
    let (entries, reached, server, threads) = walk_holding(
        &fs,
        &[(aopen_slowfs::Kind::Lookup, Held::In(0))],
        &pool,
        |server, _| server.held >= DIRS,
        WalkOptions::new().pool(&pool).walk(fs.root()),
    );
    assert!(
        reached,
        "the {DIRS} stats of the root's entries never were at the server at once: {server:?}, {threads:?}"
    );
    assert_eq!(entries as u64, 1 + DIRS * 2);
}

#[test]
fn a_walk_runs_at_most_max_chunk_runners_chunks_at_once() {
    // Two slow directories of 512 files: 255 chunks each past their first. With a
    // pool job per chunk they filled the pool (its cap of threads, here 320) and its
    // queue; the walk runs them on at most MAX_CHUNK_RUNNERS runners.
    let name = "walk::a_walk_runs_at_most_max_chunk_runners_chunks_at_once";
    if !aopen_slowfs::SlowFs::announce(name) {
        return;
    }
    use aopen::fs::MAX_CHUNK_RUNNERS;
    use aopen_slowfs::Kind;
    const FILES: u64 = 512;
    const POOL_THREADS: usize = 320;
    let fs = slow_mount(2, FILES);
    let pool = Pool::builder().max_threads(POOL_THREADS).build().unwrap();
    // Stats in `d0` (directory 1) wait at their lookup, those in `d1` at their
    // getattr: every stat of both directories is held. The runners hold one each;
    // a directory job, which hands its entries to the runners as it reads them (a
    // slow directory), holds at most one more, its last part's. The gate opens once
    // that is all that happens: every busy thread waits at it and no job is queued,
    // so no more stats can come.
    let most = 2 + MAX_CHUNK_RUNNERS as u64;
    let (entries, reached, server, threads) = walk_holding(
        &fs,
        &[(Kind::Lookup, Held::In(1)), (Kind::Getattr, Held::In(2))],
        &pool,
        |server, threads| {
            server.held >= MAX_CHUNK_RUNNERS as u64
                && server.held == threads.threads_busy as u64
                && threads.jobs_queued == 0
        },
        WalkOptions::new().pool(&pool).walk(fs.root()),
    );
    assert!(
        reached,
        "never {MAX_CHUNK_RUNNERS} stats held with nothing else running: {server:?}, {threads:?}"
    );
    assert!(
        server.held <= most && threads.jobs_queued == 0,
        "more than {MAX_CHUNK_RUNNERS} runners: {server:?}, {threads:?}"
    );
    assert_eq!(entries as u64, 1 + 2 + 2 * FILES);
}

#[test]
fn a_slow_directory_is_stat_ed_while_it_is_still_being_read() {
    // On a slow mount the listing is round trips too: a READDIR per page of names,
    // and one more that finds the end. The stats of the names read so far need not
    // wait for them (they did: a round trip a directory, dozens for a large one).
    let name = "walk::a_slow_directory_is_stat_ed_while_it_is_still_being_read";
    if !aopen_slowfs::SlowFs::announce(name) {
        return;
    }
    use aopen_slowfs::Kind;
    const FILES: u64 = 64;
    // READDIRs slow enough that a stat's lookup, held at the server, is seen there
    // long before the directory's last READDIR is answered.
    let latency = aopen_slowfs::Latency::uniform(SLOW_MOUNT_LATENCY)
        .with(Kind::Readdir, Duration::from_millis(200));
    let fs = slow_mount_with(1, FILES, latency);
    let pool = Pool::builder().max_threads(64).build().unwrap();
    // Stats of `d0`'s entries (directory 1) wait at their lookup: the first one
    // there opens the gate.
    let (entries, reached, at_first_stat, threads) = walk_holding(
        &fs,
        &[(Kind::Lookup, Held::In(1))],
        &pool,
        |server, _| server.held >= 1,
        WalkOptions::new().pool(&pool).walk(fs.root()),
    );
    assert!(
        reached,
        "no stat of d0's entries: {at_first_stat:?}, {threads:?}"
    );
    assert_eq!(entries as u64, 1 + 1 + FILES);
    let listings = fs.stats().served_of(Kind::Readdir);
    assert!(
        at_first_stat.served_of(Kind::Readdir) < listings,
        "the first stat of d0's entries waited for every READDIR ({listings}): {at_first_stat:?}"
    );
}

#[test]
fn a_slow_directory_s_subdirectories_are_entered_before_their_stat() {
    // A subdirectory's stat is a round trip or two (LOOKUP, GETATTR); entering it
    // needs nothing of it unless links are followed or the walk stays on one file
    // system, so a slow directory enters each subdirectory the listing names at
    // once (it waited for the stat: every entry below came a stat later).
    let name = "walk::a_slow_directory_s_subdirectories_are_entered_before_their_stat";
    if !aopen_slowfs::SlowFs::announce(name) {
        return;
    }
    use aopen_slowfs::Kind;
    const FILES: u64 = 8;
    let fs = slow_mount(2, FILES);
    let pool = Pool::builder().max_threads(64).build().unwrap();
    // The GETATTRs of the root's entries (the subdirectories) wait at the server:
    // no subdirectory's stat can end, but its open (LOOKUP, OPENDIR) can, and the
    // stats of its files. They are held until both subdirectories' files are
    // stat'ed: `walk_holding` checks that the subdirectories still came first.
    let (entries, reached, at_open, threads) = walk_holding(
        &fs,
        &[(Kind::Getattr, Held::In(0))],
        &pool,
        |server, _| {
            server.served_of(Kind::Opendir) >= 3 && server.served_of(Kind::Getattr) >= 2 * FILES
        },
        WalkOptions::new().pool(&pool).walk(fs.root()),
    );
    assert!(
        reached,
        "the subdirectories were not opened and read before their stat: {at_open:?}, {threads:?}"
    );
    assert_eq!(entries as u64, 1 + 2 + 2 * FILES);
    // With links followed the walk needs each directory's identity first.
    let (entries, reached, at_open, _) = walk_holding(
        &fs,
        &[(Kind::Getattr, Held::In(0))],
        &pool,
        |server, _| server.held >= 2,
        WalkOptions::new()
            .pool(&pool)
            .follow_links(true)
            .walk(fs.root()),
    );
    assert!(reached, "the stats never reached the server: {at_open:?}");
    assert_eq!(
        at_open.served_of(Kind::Opendir),
        1,
        "a subdirectory opened before its stat with links followed: {at_open:?}"
    );
    assert_eq!(entries as u64, 1 + 2 + 2 * FILES);
}

#[test]
fn the_root_is_opened_while_it_is_stat_ed() {
    // On a slow mount the root's stat is a round trip before everything else; an
    // unsorted walk that needs nothing of it to enter the root opens the root at
    // the same time.
    let name = "walk::the_root_is_opened_while_it_is_stat_ed";
    if !aopen_slowfs::SlowFs::announce(name) {
        return;
    }
    use aopen_slowfs::Kind;
    const FILES: u64 = 4;
    let fs = slow_mount(1, FILES);
    let pool = Pool::builder().max_threads(64).build().unwrap();
    // Every GETATTR waits: the root's stat cannot end, its open can.
    let (entries, reached, at_open, threads) = walk_holding(
        &fs,
        &[(Kind::Getattr, Held::Everywhere)],
        &pool,
        |server, _| server.served_of(Kind::Opendir) >= 1,
        WalkOptions::new().pool(&pool).walk(fs.root()),
    );
    assert!(
        reached,
        "the root was not opened before its stat ended: {at_open:?}, {threads:?}"
    );
    assert_eq!(entries as u64, 1 + 1 + FILES);
    // Only the root's GETATTR waits, until its entry `d0` is stat'ed (a LOOKUP and
    // a GETATTR in the root): `walk_holding` checks the root still came first.
    let (entries, reached, at_stat, threads) = walk_holding(
        &fs,
        &[(Kind::Getattr, Held::Root)],
        &pool,
        |server, _| server.held >= 1 && server.served_of(Kind::Getattr) >= 1,
        WalkOptions::new().pool(&pool).walk(fs.root()),
    );
    assert!(
        reached,
        "the root's entries were not stat'ed while its stat was held: {at_stat:?}, {threads:?}"
    );
    assert_eq!(entries as u64, 1 + 1 + FILES);
}
