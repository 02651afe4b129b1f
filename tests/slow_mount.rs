//! aopen on a real slow mount: the FUSE file system of `tests/slowfs`, with a latency
//! per request, room for many requests at once, and the kernel's caches off.
//!
//! "N requests at the server at once" is a condition, not a race: the server holds one
//! kind of request (`getattr`, the last step of a `stat`) at a gate, the test waits
//! until N callers wait there, then opens it. A pool that cannot have N calls in flight
//! never gets there, and the wait fails at its deadline with the server's counters.
//!
//! Each test prints one line saying that it runs on a FUSE mount, or that it is
//! skipped and why (no `/dev/fuse`, not root); see `aopen_slowfs::SlowFs::announce`.
#![cfg(target_os = "linux")]

#[path = "support/common.rs"]
mod common;

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use aopen::Pool;
use aopen_slowfs::{Kind, Latency, SlowFs, Stats, Tree};
use common::{wait_for, DEADLINE};
use futures::future::join_all;

/// The latency of every request: a NAS across a building.
const LATENCY: Duration = Duration::from_millis(5);
/// Calls in flight at once in the concurrency tests.
const IN_FLIGHT: usize = 256;
/// Requests the server serves at once: more than the tests ever send.
const SERVER_CONCURRENCY: usize = 1024;
/// Directories of the stat tree; each holds `IN_FLIGHT / DIRS` files.
const DIRS: u64 = 4;
/// Stats in flight while a listing runs: twice the old 64-thread cap.
const STATS_BESIDE_LISTING: usize = 128;
/// Entries of the listed directory.
const LISTED_FILES: u64 = 1000;
/// Calls that hang in the hung-mount test, and the pool's thread cap there.
const HUNG_CALLS: usize = 4;
const HUNG_POOL_THREADS: usize = 16;
/// Calls elsewhere that must complete while the hung ones hold their threads.
const CALLS_BESIDE_HUNG: usize = 200;
/// How long the hung-mount test gives `shutdown` (it must time out).
const SHUTDOWN_WAIT: Duration = Duration::from_millis(200);
/// The retire test's pool: threads idle this long exit.
const IDLE_TIMEOUT: Duration = Duration::from_millis(100);

fn cores() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

/// A mount of `DIRS` directories holding `files` files in all, with [`LATENCY`].
fn mount(files: u64) -> SlowFs {
    SlowFs::builder()
        .tree(Tree::flat(DIRS, files.div_ceil(DIRS)))
        .latency(Latency::uniform(LATENCY))
        .concurrency(SERVER_CONCURRENCY)
        .mount()
        .expect("mount the slow file system")
}

/// Paths of `n` files of the mount, spread over its directories.
fn paths(fs: &SlowFs, n: usize) -> Vec<PathBuf> {
    let per_dir = fs.tree().files_per_dir;
    (0..n as u64)
        .map(|i| fs.file_path(1 + i / per_dir, i % per_dir))
        .collect()
}

/// Check that `meta` is what the server says of `path`'s file.
fn check_meta(fs: &SlowFs, path: &Path, meta: &io::Result<std::fs::Metadata>) {
    let meta = meta
        .as_ref()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        meta.len(),
        fs.tree().file_size(meta.ino()),
        "{}",
        path.display()
    );
}

/// How a gate of [`holding`] opened.
struct Gate {
    /// The server's counters when it opened.
    stats: Stats,
    /// Whether the condition held then (false: [`DEADLINE`] passed).
    reached: bool,
}

/// Hold `kind` at the server while `work` runs; a watcher opens the gate once
/// `reached(stats)` holds, or at [`DEADLINE`] (so nothing hangs). Returns `work`'s
/// output and how the gate opened.
fn holding<T: Send>(
    fs: &SlowFs,
    kind: Kind,
    reached: impl Fn(&Stats) -> bool + Send + Sync,
    work: impl FnOnce() -> T + Send,
) -> (T, Gate) {
    fs.reset_stats();
    fs.hold(kind);
    thread::scope(|s| {
        let watcher = s.spawn(|| {
            let start = Instant::now();
            loop {
                let stats = fs.stats();
                let ok = reached(&stats);
                if ok || start.elapsed() > DEADLINE {
                    fs.release(kind);
                    return Gate { stats, reached: ok };
                }
                thread::sleep(Duration::from_millis(1));
            }
        });
        let out = work();
        (out, watcher.join().expect("watcher"))
    })
}

#[test]
fn stats_in_flight_reach_the_server_at_once() {
    if !SlowFs::announce("slow_mount::stats_in_flight_reach_the_server_at_once") {
        return;
    }
    let fs = mount(IN_FLIGHT as u64);
    let paths = paths(&fs, IN_FLIGHT);
    // The global pool, with its default thread cap: what a program gets.
    let (results, gate) = holding(
        &fs,
        Kind::Getattr,
        |s| s.held >= IN_FLIGHT as u64,
        || aopen::block_on(join_all(paths.iter().map(aopen::fs::metadata))),
    );
    assert!(gate.reached, "{IN_FLIGHT} aopen::fs::metadata calls in flight never had {IN_FLIGHT} requests at the server at once within {DEADLINE:?}: {:?}", gate.stats);
    for (path, meta) in paths.iter().zip(&results) {
        check_meta(&fs, path, meta);
    }
    assert!(
        fs.stats().max_in_flight >= IN_FLIGHT as u64,
        "{:?}",
        gate.stats
    );
}

#[test]
fn a_metadata_batch_has_all_its_paths_at_the_server_at_once() {
    if !SlowFs::announce("slow_mount::a_metadata_batch_has_all_its_paths_at_the_server_at_once") {
        return;
    }
    let fs = mount(IN_FLIGHT as u64);
    let paths = paths(&fs, IN_FLIGHT);
    let (results, gate) = holding(
        &fs,
        Kind::Getattr,
        |s| s.held >= IN_FLIGHT as u64,
        || aopen::block_on(aopen::fs::metadata_batch(&paths)),
    );
    assert!(gate.reached, "metadata_batch of {IN_FLIGHT} paths never had {IN_FLIGHT} requests at the server at once within {DEADLINE:?}: {:?}", gate.stats);
    let results = results.expect("a pool for the batch");
    assert_eq!(results.len(), IN_FLIGHT);
    for (path, meta) in paths.iter().zip(&results) {
        check_meta(&fs, path, meta);
    }
    assert!(
        fs.stats().max_in_flight >= IN_FLIGHT as u64,
        "{:?}",
        gate.stats
    );
}

#[test]
fn a_listing_is_served_while_stats_are_in_flight() {
    if !SlowFs::announce("slow_mount::a_listing_is_served_while_stats_are_in_flight") {
        return;
    }
    // Directory 1..=DIRS hold the stat targets; a listing of a directory of its own.
    let fs = SlowFs::builder()
        .tree(Tree::flat(2, LISTED_FILES))
        .latency(Latency::uniform(LATENCY))
        .concurrency(SERVER_CONCURRENCY)
        .mount()
        .expect("mount");
    let stat_paths: Vec<PathBuf> = (0..STATS_BESIDE_LISTING as u64)
        .map(|j| fs.file_path(1, j))
        .collect();
    let listed = fs.dir_path(2);
    let pool = Pool::builder()
        .build()
        .expect("a pool with the default cap");
    fs.reset_stats();
    // Only the stats of directory 1: the listing (of directory 2) may stat its own
    // directory.
    fs.hold_in(Kind::Getattr, 1);
    let (stat_results, names, during) = thread::scope(|s| {
        let stats =
            s.spawn(|| aopen::block_on(join_all(stat_paths.iter().map(|p| pool.fs().metadata(p)))));
        let release = || fs.release(Kind::Getattr);
        // Every stat waits at the server...
        let waited = Instant::now();
        while fs.stats().held < STATS_BESIDE_LISTING as u64 {
            if waited.elapsed() > DEADLINE {
                let (server, threads) = (fs.stats(), pool.stats());
                release();
                panic!("{STATS_BESIDE_LISTING} stats never all reached the server within {DEADLINE:?}: {server:?}; pool {threads:?}");
            }
            thread::sleep(Duration::from_millis(1));
        }
        // ... while the listing, on the same pool, runs to its end (bounded, so a
        // listing queued behind the stats fails instead of hanging).
        let (tx, rx) = std::sync::mpsc::channel();
        let (pool, listed) = (&pool, &listed);
        s.spawn(move || {
            let list = aopen::block_on(async {
                let mut dir = pool.fs().read_dir(listed).await?;
                let mut names = Vec::new();
                while let Some(entry) = dir.next_entry().await? {
                    names.push(entry.file_name().into_string().expect("UTF-8 names"));
                }
                io::Result::Ok(names)
            });
            let _ = tx.send(list);
        });
        let names = rx.recv_timeout(DEADLINE);
        let during = fs.stats();
        release();
        let names = names.unwrap_or_else(|_| {
            panic!("the listing did not finish within {DEADLINE:?} while {STATS_BESIDE_LISTING} stats were held: {during:?}; pool {:?}", pool.stats())
        });
        (stats.join().expect("stats"), names, during)
    });
    // The listing was served while every stat was still in flight at the server.
    assert_eq!(during.held, STATS_BESIDE_LISTING as u64, "{during:?}");
    assert!(
        during.served_of(Kind::Readdir) >= 2,
        "a listing of {LISTED_FILES} entries takes several readdirs: {during:?}"
    );
    let mut names = names.expect("list the slow directory");
    names.sort();
    let expected: Vec<String> = (0..LISTED_FILES).map(|j| fs.tree().file_name(j)).collect();
    assert_eq!(names, expected);
    for (path, meta) in stat_paths.iter().zip(&stat_results) {
        check_meta(&fs, path, meta);
    }
}

#[test]
fn threads_retire_to_one_per_core_once_the_slow_work_ends() {
    if !SlowFs::announce("slow_mount::threads_retire_to_one_per_core_once_the_slow_work_ends") {
        return;
    }
    let fs = mount(IN_FLIGHT as u64);
    let paths = paths(&fs, IN_FLIGHT);
    let pool = Pool::builder()
        .idle_timeout(IDLE_TIMEOUT)
        .build()
        .expect("pool");
    // Slow work that needs more threads than cores: the gate opens once more calls
    // than cores wait at the server at once.
    let grown = 4 * cores();
    let (results, gate) = holding(
        &fs,
        Kind::Getattr,
        |s| s.held >= grown as u64,
        || aopen::block_on(join_all(paths.iter().map(|p| pool.fs().metadata(p)))),
    );
    assert!(
        gate.reached,
        "the pool never had {grown} stats in flight: {:?}; {:?}",
        gate.stats,
        pool.stats()
    );
    assert!(gate.stats.held as usize > cores(), "{:?}", gate.stats);
    for (path, meta) in paths.iter().zip(&results) {
        check_meta(&fs, path, meta);
    }
    // The slow work is over: the extra threads go.
    wait_for("the pool's threads to retire to one per core", || {
        let stats = pool.stats();
        if stats.threads_alive <= cores() {
            Ok(())
        } else {
            Err(format!("{stats:?}"))
        }
    });
}

#[test]
fn a_hung_mount_holds_its_threads_and_nothing_else() {
    if !SlowFs::announce("slow_mount::a_hung_mount_holds_its_threads_and_nothing_else") {
        return;
    }
    let pool = Pool::builder()
        .max_threads(HUNG_POOL_THREADS)
        .build()
        .expect("pool");
    thread::scope(|s| {
        // Made inside the scope: a failed assertion drops it (releasing the hung
        // calls) before the scope joins their threads.
        let fs = SlowFs::builder()
            .tree(Tree::flat(DIRS, 64))
            .hung_dir(true)
            .latency(Latency::uniform(LATENCY))
            .concurrency(SERVER_CONCURRENCY)
            .mount()
            .expect("mount");
        let hung: Vec<_> = (0..HUNG_CALLS)
            .map(|i| {
                let path = fs.hung_path().join(format!("file-{i}"));
                let call = pool.fs().metadata(path.clone());
                (path, s.spawn(move || aopen::block_on(call)))
            })
            .collect();
        wait_for("the hung calls to reach the server", || {
            let stats = fs.stats();
            if stats.parked == HUNG_CALLS as u64 {
                Ok(())
            } else {
                Err(format!("{stats:?}"))
            }
        });

        // Calls elsewhere keep completing on the threads that remain.
        let others = paths(&fs, CALLS_BESIDE_HUNG);
        let results = aopen::block_on(join_all(others.iter().map(|p| pool.fs().metadata(p))));
        for (path, meta) in others.iter().zip(&results) {
            check_meta(&fs, path, meta);
        }

        // The pool shows the hung threads, and shutdown says what did not finish.
        let stats = pool.stats();
        assert!(stats.threads_busy >= HUNG_CALLS, "{stats:?}");
        assert!(stats.threads_asleep >= HUNG_CALLS, "{stats:?}");
        let err = pool
            .shutdown(SHUTDOWN_WAIT)
            .expect_err("shutdown must time out while calls hang");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        let message = err.to_string();
        assert!(
            message.contains(&format!("{HUNG_CALLS} running")),
            "{message}"
        );
        assert!(message.contains("0 jobs queued"), "{message}");

        // Dropping the mount releases the hung calls: each an error naming its path.
        assert!(hung.iter().all(|(_, call)| !call.is_finished()));
        drop(fs);
        for (path, call) in hung {
            let err = call
                .join()
                .expect("hung call's thread")
                .expect_err("a released hung call fails");
            assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
        }
    });
    // Nothing was lost: the pool goes quiet.
    pool.shutdown(DEADLINE)
        .expect("shutdown once the mount is gone");
    assert_eq!(pool.stats().descriptors_held, 0);
}
