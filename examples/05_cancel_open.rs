//! Drop an open in flight, and watch the crate close the descriptor nobody wants.
//!
//! Run it with `cargo run --example 05_cancel_open`.
//!
//! Dropping a future cannot stop a system call: once a pool thread is inside
//! `open(2)`, it stays there until the kernel answers. A pool that passes back a raw
//! descriptor number (as many C and Python wrappers do) then leaves it in a result
//! slot nobody reads: one leak per cancelled open, until `EMFILE`. In aopen the
//! open's result is a *lane*, which owns the descriptor and its budget permit. When
//! the caller's future is gone, the pool thread that finishes the open drops the
//! lane right there; dropping a lane queues its `close(2)` on the pool, and the
//! permit comes back after that close.
//!
//! To hold an open inside `open(2)` we use a FIFO: opening one for reading blocks
//! until some process opens it for writing (like a hung NFS server). The steps: count
//! our descriptors, start the open, drop its future, open the write end (the open
//! returns on the pool thread), let `Pool::shutdown` wait until every descriptor the
//! pool held is closed, and count again. Exits non-zero if a descriptor leaked.

use std::ffi::CString;
use std::future::Future;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Wake, Waker};
use std::time::{Duration, Instant};

use aopen::{Pool, PoolStats};

/// A small private pool: one thread will hang in `open(2)`; one permit is enough.
const THREADS: usize = 2;
const BUDGET: usize = 4;
/// The longest we wait for the pool to reach a state before failing loudly.
const DEADLINE: Duration = Duration::from_secs(5);

/// Removes the example's directory when dropped, also if the demo fails.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A waker that does nothing: we poll the open once by hand and never again.
struct NoopWaker;

impl Wake for NoopWaker {
    fn wake(self: Arc<Self>) {}
}

/// Our open descriptors, from `/proc/self/fd` (the listing's own descriptor counts
/// too, the same every time, so counts compare).
fn fd_count() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/fd")?.count())
}

/// Our descriptors that point at `path`.
fn fds_to(path: &Path) -> io::Result<usize> {
    let mut n = 0;
    for entry in std::fs::read_dir("/proc/self/fd")? {
        n += usize::from(std::fs::read_link(entry?.path()).is_ok_and(|target| target == path));
    }
    Ok(n)
}

/// Checks `pool.stats()` until `ok` holds; panics with the last stats after [`DEADLINE`].
fn wait_for(pool: &Pool, what: &str, ok: impl Fn(&PoolStats) -> bool) -> PoolStats {
    let start = Instant::now();
    loop {
        let stats = pool.stats();
        if ok(&stats) {
            return stats;
        }
        assert!(start.elapsed() < DEADLINE, "{what}: still {stats:?}");
        std::thread::yield_now();
    }
}

/// Makes a FIFO at `path`: std has no call for that.
fn mkfifo(path: &Path) -> io::Result<()> {
    let c_path = CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call.
    if unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn main() -> io::Result<()> {
    let dir = std::env::temp_dir().join(format!("aopen-example-05-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    // `/proc/self/fd` shows canonical paths; compare against the same.
    let dir = TempDir(dir.canonicalize()?);
    let fifo = dir.0.join("fifo");
    mkfifo(&fifo)?;
    let pool = Pool::builder()
        .max_threads(THREADS)
        .descriptor_budget(BUDGET)
        .build()?;

    let baseline = fd_count()?;
    println!("descriptors before: {baseline}");

    // Poll the open once: it takes a permit and queues `open(2)` on the pool, where
    // a thread blocks in it (no writer yet).
    let mut open = pool.fs().open(&fifo);
    let waker = Waker::from(Arc::new(NoopWaker));
    let first = Pin::new(&mut open).poll(&mut Context::from_waker(&waker));
    assert!(first.is_pending(), "a FIFO opened without a writer");
    let blocked = wait_for(&pool, "open(2) running", |s| s.threads_busy == 1);
    println!("open in flight:   {blocked:?}");

    // Drop it. This returns at once: the blocked thread is not waited for.
    let start = Instant::now();
    drop(open);
    println!("dropped the open future in {:.1?}", start.elapsed());
    let dropped = pool.stats();
    println!("after the drop:   {dropped:?}");
    assert_eq!(
        dropped.descriptors_held, 1,
        "the permit stays with the open in flight"
    );

    // Open the write end (O_RDWR never blocks on a FIFO on Linux). The reader's
    // open(2) now returns a descriptor on the pool thread; nobody is waiting for it.
    let writer = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)?;
    // 1 or 2 at the FIFO: our writer, plus the pool's reader if not yet closed.
    println!(
        "opened the write end; descriptors at the FIFO: {}",
        fds_to(&fifo)?
    );

    // `shutdown` returns once no job is queued or running and every descriptor the
    // pool held is closed (or fails with a message saying what is left).
    pool.shutdown(DEADLINE)?;
    let after = fd_count()?;
    let at_fifo = fds_to(&fifo)?;
    println!("after shutdown:   {:?}", pool.stats());
    println!("descriptors: {after} (baseline + our writer), {at_fifo} at the FIFO");
    assert_eq!(at_fifo, 1, "only our writer should point at the FIFO");
    assert_eq!(after, baseline + 1, "a descriptor leaked");

    drop(writer);
    let end = fd_count()?;
    println!("writer closed: descriptors {end}, back to the baseline of {baseline}");
    assert_eq!(end, baseline);
    assert_eq!(pool.budget().available(), pool.budget().capacity());
    Ok(())
}
