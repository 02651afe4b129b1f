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

/// Descriptors of this process whose target satisfies `pred` (Linux: `/proc/self/fd`).
#[cfg(unix)]
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
#[cfg(unix)]
pub fn fds_to(path: &Path) -> Vec<i32> {
    fds_where(|target| target == path)
        .into_iter()
        .map(|(fd, _)| fd)
        .collect()
}

/// Handles open on exactly `path`, as far as Windows can tell: one (shown as `-1`)
/// if some handle holds the file open, none if not. Windows lists no handles by
/// path; an open that shares nothing (`share_mode(0)`) fails with a sharing
/// violation exactly while another handle is open on the file.
#[cfg(windows)]
pub fn fds_to(path: &Path) -> Vec<i32> {
    if win::held_open(path) {
        vec![-1]
    } else {
        Vec::new()
    }
}

/// Paths at or below `dir` that some handle holds open (each shown as `-1`), by a
/// probe per path (see [`fds_to`]). The probe itself shares nothing, so an open of
/// the same file racing with it fails: call it only while nothing else opens files
/// there.
#[cfg(windows)]
pub fn held_under(dir: &Path) -> Vec<(i32, PathBuf)> {
    let mut held = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(path) = todo.pop() {
        if win::held_open(&path) {
            held.push((-1, path.clone()));
        }
        if let Ok(entries) = std::fs::read_dir(&path) {
            todo.extend(entries.flatten().map(|entry| entry.path()));
        }
    }
    held
}

/// The handles this process holds (`GetProcessHandleCount`): the Windows stand-in
/// for counting `/proc/self/fd`. Meaningful only in a process that runs one test.
#[cfg(windows)]
pub fn handle_count() -> usize {
    win::handle_count()
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
#[cfg(unix)]
pub fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("list /proc/self/task")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end_matches('\n') == name)
        .count()
}

/// Threads of this process whose name (`GetThreadDescription`, which std's
/// `thread::Builder::name` sets) is `name`.
#[cfg(windows)]
pub fn threads_named(name: &str) -> usize {
    win::thread_names()
        .into_iter()
        .filter(|thread| thread == name)
        .count()
}

/// The number of threads in this process.
#[cfg(unix)]
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// The number of threads in this process (a Toolhelp snapshot).
#[cfg(windows)]
pub fn thread_count() -> usize {
    win::thread_names().len()
}

/// The Windows calls behind [`fds_to`], [`handle_count`], [`threads_named`].
#[cfg(windows)]
mod win {
    use std::ffi::c_void;
    use std::os::windows::ffi::OsStringExt;
    use std::os::windows::fs::OpenOptionsExt;
    use std::path::Path;

    type Handle = *mut c_void;

    /// `THREADENTRY32` of `tlhelp32.h`.
    #[repr(C)]
    struct ThreadEntry32 {
        size: u32,
        usage: u32,
        thread_id: u32,
        owner_process_id: u32,
        base_priority: i32,
        delta_priority: i32,
        flags: u32,
    }

    const TH32CS_SNAPTHREAD: u32 = 0x4;
    const THREAD_QUERY_LIMITED_INFORMATION: u32 = 0x0800;
    const ERROR_SHARING_VIOLATION: i32 = 32;
    /// Lets `CreateFileW` open a directory too.
    const FILE_FLAG_BACKUP_SEMANTICS: u32 = 0x0200_0000;

    #[link(name = "kernel32")]
    extern "system" {
        fn CreateToolhelp32Snapshot(flags: u32, process_id: u32) -> Handle;
        fn Thread32First(snapshot: Handle, entry: *mut ThreadEntry32) -> i32;
        fn Thread32Next(snapshot: Handle, entry: *mut ThreadEntry32) -> i32;
        fn OpenThread(access: u32, inherit: i32, thread_id: u32) -> Handle;
        fn GetThreadDescription(thread: Handle, description: *mut *mut u16) -> i32;
        fn LocalFree(memory: *mut c_void) -> *mut c_void;
        fn CloseHandle(handle: Handle) -> i32;
        fn GetCurrentProcess() -> Handle;
        fn GetProcessHandleCount(process: Handle, count: *mut u32) -> i32;
    }

    pub fn held_open(path: &Path) -> bool {
        let probe = std::fs::OpenOptions::new()
            .read(true)
            .share_mode(0)
            .custom_flags(FILE_FLAG_BACKUP_SEMANTICS)
            .open(path);
        matches!(probe, Err(err) if err.raw_os_error() == Some(ERROR_SHARING_VIOLATION))
    }

    pub fn handle_count() -> usize {
        let mut count = 0u32;
        // SAFETY: the pseudo-handle of this process needs no closing; `count` is
        // writable.
        let ok = unsafe { GetProcessHandleCount(GetCurrentProcess(), &mut count) };
        assert_ne!(
            ok,
            0,
            "GetProcessHandleCount: {}",
            std::io::Error::last_os_error()
        );
        count as usize
    }

    /// The name of every thread of this process ("" for one without a name).
    pub fn thread_names() -> Vec<String> {
        let me = std::process::id();
        // SAFETY: a plain call; the snapshot handle is closed below.
        let snapshot = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0) };
        assert!(
            !snapshot.is_null() && snapshot as isize != -1,
            "CreateToolhelp32Snapshot: {}",
            std::io::Error::last_os_error()
        );
        let mut entry = ThreadEntry32 {
            size: std::mem::size_of::<ThreadEntry32>() as u32,
            usage: 0,
            thread_id: 0,
            owner_process_id: 0,
            base_priority: 0,
            delta_priority: 0,
            flags: 0,
        };
        let mut names = Vec::new();
        // SAFETY: `entry` is a writable THREADENTRY32 with its size filled in.
        let mut more = unsafe { Thread32First(snapshot, &mut entry) } != 0;
        while more {
            if entry.owner_process_id == me {
                names.push(thread_name(entry.thread_id));
            }
            // SAFETY: as above.
            more = unsafe { Thread32Next(snapshot, &mut entry) } != 0;
        }
        // SAFETY: the snapshot is ours and closed once.
        unsafe { CloseHandle(snapshot) };
        names
    }

    fn thread_name(thread_id: u32) -> String {
        // SAFETY: a plain call; the handle is closed below.
        let thread = unsafe { OpenThread(THREAD_QUERY_LIMITED_INFORMATION, 0, thread_id) };
        if thread.is_null() {
            return String::new(); // exited since the snapshot
        }
        let mut description: *mut u16 = std::ptr::null_mut();
        // SAFETY: `thread` is open; on success `description` points to a
        // NUL-terminated string we free with LocalFree.
        let hr = unsafe { GetThreadDescription(thread, &mut description) };
        let mut name = String::new();
        if hr >= 0 && !description.is_null() {
            let mut len = 0;
            // SAFETY: the string is NUL-terminated.
            while unsafe { *description.add(len) } != 0 {
                len += 1;
            }
            // SAFETY: `len` units before the NUL are initialized.
            let wide = unsafe { std::slice::from_raw_parts(description, len) };
            name = std::ffi::OsString::from_wide(wide)
                .to_string_lossy()
                .into_owned();
            // SAFETY: allocated by GetThreadDescription, freed once.
            unsafe { LocalFree(description.cast()) };
        }
        // SAFETY: opened above, closed once.
        unsafe { CloseHandle(thread) };
        name
    }
}

/// A command that re-runs only the test `test` of this test binary, on one thread
/// and with its output shown: for tests that play both parent and child.
pub fn rerun_test(test: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("the test binary's path"));
    command.args(["--exact", test, "--nocapture", "--test-threads=1"]);
    command
}

#[cfg(unix)]
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
