//! Helpers shared by the integration tests.
//!
//! Included by path (`#[path = "support/common.rs"] mod common;`) from each test file
//! that needs it; every test binary uses a different subset.

#![allow(dead_code)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake};
use std::thread;
use std::time::{Duration, Instant};

use aopen::{BlockingTask, Pool};

/// The generous deadline of every bounded wait of [`wait_for`] and [`occupy`].
pub const DEADLINE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------
// Pools, directories and descriptors
// ---------------------------------------------------------------------------------

/// A private pool of at most `threads` threads and a budget of `budget` descriptors.
pub fn pool(threads: usize, budget: usize) -> Pool {
    Pool::builder()
        .max_threads(threads)
        .descriptor_budget(budget)
        .build()
        .expect("build a private pool")
}

/// A temporary directory and its canonical path (what `/proc/self/fd` shows).
pub fn tempdir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().canonicalize().expect("canonicalize tempdir");
    (dir, path)
}

/// Descriptors of this process whose target satisfies `pred`.
pub fn fds_where(pred: impl Fn(&Path) -> bool) -> Vec<(i32, PathBuf)> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir("/proc/self/fd") {
        Ok(entries) => entries,
        Err(err) => panic!("cannot list /proc/self/fd: {err}"),
    };
    for entry in entries.flatten() {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // A descriptor can close between the listing and the readlink: skip it.
        if let Ok(target) = std::fs::read_link(entry.path()) {
            if pred(&target) {
                out.push((fd, target));
            }
        }
    }
    out
}

/// Descriptors pointing exactly at `path`.
pub fn fds_to(path: &Path) -> Vec<i32> {
    fds_where(|target| target == path)
        .into_iter()
        .map(|(fd, _)| fd)
        .collect()
}

/// Occupies one pool thread until the returned sender is used (or dropped).
pub fn occupy(pool: &Pool) -> (mpsc::Sender<()>, BlockingTask<()>) {
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (tx, rx) = mpsc::channel::<()>();
    let task = pool.unblock(move || {
        let _ = started_tx.send(());
        let _ = rx.recv();
    });
    started_rx
        .recv_timeout(DEADLINE)
        .expect("the blocker job did not start on the pool");
    (tx, task)
}

// ---------------------------------------------------------------------------------
// Bounded waits
// ---------------------------------------------------------------------------------

/// Polls until `check` says yes; panics with its last report after [`DEADLINE`].
pub fn wait_for(what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let start = Instant::now();
    loop {
        match check() {
            Ok(()) => return,
            Err(state) if start.elapsed() > DEADLINE => {
                panic!("timed out after {DEADLINE:?} waiting for {what}; last state: {state}")
            }
            Err(_) => thread::sleep(Duration::from_millis(2)),
        }
    }
}

/// Runs `f` on a fresh thread and returns its result, failing the test if it takes
/// longer than `limit` (a lost wake-up shows up as a hang). A panic in `f` is passed
/// on.
pub fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Err(payload) => std::panic::resume_unwind(payload),
            Ok(()) => unreachable!("the test thread ended without sending"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("the test did not finish within {limit:?}: a lost wake-up?")
        }
    }
}

// ---------------------------------------------------------------------------------
// Futures and wakers
// ---------------------------------------------------------------------------------

/// Returns `Pending` once (waking itself first), then `Ready`: lets other tasks run.
#[derive(Default)]
pub struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

pub fn yield_now() -> YieldNow {
    YieldNow::default()
}

/// A waker that counts its wakes.
#[derive(Default)]
pub struct CountingWaker {
    wakes: AtomicUsize,
}

impl CountingWaker {
    /// How often it was woken so far.
    pub fn wakes(&self) -> usize {
        self.wakes.load(Ordering::SeqCst)
    }
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}

/// Sets its flag when dropped.
pub struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A flag and a guard that sets it on drop.
pub fn drop_flag() -> (Arc<AtomicBool>, DropFlag) {
    let flag = Arc::new(AtomicBool::new(false));
    (Arc::clone(&flag), DropFlag(flag))
}

// ---------------------------------------------------------------------------------
// Panics, threads and child processes
// ---------------------------------------------------------------------------------

/// The message of a panic payload (`panic!` with a literal gives `&str`, with
/// arguments `String`).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "<non-string panic payload>".to_string()
    }
}

/// Threads of this process whose name (`comm`, truncated by Linux to 15 bytes) is
/// `name`.
pub fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("list /proc/self/task")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end_matches('\n') == name)
        .count()
}

/// A command that re-runs only the test `test` of this test binary, on one thread
/// and with its output shown: for tests that play both parent and child.
pub fn rerun_test(test: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("the test binary's path"));
    command.args(["--exact", test, "--nocapture", "--test-threads=1"]);
    command
}

/// Builds the `LD_PRELOAD` fault shim of `tests/fault-shim` (once per test process,
/// same target directory and profile as the running test binary) and returns the
/// path of its `.so`.
pub fn fault_shim() -> &'static Path {
    static SHIM: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    SHIM.get_or_init(|| {
        let exe = std::env::current_exe().expect("current_exe");
        // target/<profile>/deps/<test>-<hash>
        let deps = exe.parent().expect("the test binary's directory");
        let profile_dir = deps.parent().expect("target/<profile>");
        let target_dir = profile_dir.parent().expect("the target directory");
        let profile = profile_dir
            .file_name()
            .and_then(|name| name.to_str())
            .expect("a profile directory name");
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["build", "--quiet", "-p", "aopen-fault-shim", "--target-dir"])
            .arg(target_dir);
        match profile {
            "debug" => {}
            "release" => {
                cargo.arg("--release");
            }
            other => {
                cargo.args(["--profile", other]);
            }
        }
        let output = cargo.output().expect("run cargo build for the shim");
        assert!(
            output.status.success(),
            "building the fault shim failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let so = profile_dir.join("libaopen_fault_shim.so");
        assert!(
            so.is_file(),
            "the shim was built but {} is missing",
            so.display()
        );
        so
    })
}
