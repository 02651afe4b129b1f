//! Heartbeat: the event loop keeps ticking while hundreds of `open(2)` calls hang.
//!
//! Run it with `cargo run --release --example heartbeat` (set `HEARTBEAT_OPENS=<n>`
//! to change the number of opens, default 300).
//!
//! The slow file system is a FIFO: opening one for reading blocks in `open(2)` until
//! some process opens it for writing, which is what a hung NFS server looks like to
//! the caller. A ticker task on a `LocalExecutor` sleeps 5 ms at a time and records
//! how late it woke. Meanwhile:
//!
//! 1. **aopen**: every FIFO is opened with `aopen` on a private pool of 64 threads; a
//!    writer thread appears after 200 ms and the opens complete. The ticker stays on
//!    time, because the blocked calls sit on pool threads, not on the loop's thread.
//!    The pool's descriptor budget (256) makes the opens beyond it wait for a permit.
//! 2. **control**: one FIFO is opened with `std::fs::File::open` inside a task on the
//!    same executor. The loop's only thread is stuck in `open(2)` for 200 ms, and so
//!    is the ticker.
//!
//! With `--shim` (`cargo run --release --example heartbeat -- --shim`), the slow file
//! system is the seed's `LD_PRELOAD` trick instead: the example builds the fault shim
//! (`cargo build -p aopen-fault-shim`) and re-runs itself under it with
//! `AOPEN_FAULTS=open:delay=20ms:path=*aopen-heartbeat*`, so every `open(2)` of the
//! regular files it made takes 20 ms. The control opens 10 of them with `std`.
//!
//! Exits non-zero if an open failed or aopen's ticker was over 100 ms late.

use std::cell::Cell;
use std::error::Error;
use std::ffi::CString;
use std::future::Future;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::thread;
use std::time::{Duration, Instant};

use aopen::{LocalExecutor, OpenOptions, Pool, Task};

/// How often the ticker wants to run.
const TICK: Duration = Duration::from_millis(5);
/// How long the FIFOs have no writer, so the opens hang.
const HANG: Duration = Duration::from_millis(200);
/// The opens in flight, unless `HEARTBEAT_OPENS` says otherwise.
const DEFAULT_OPENS: usize = 300;
const OPENS_ENV: &str = "HEARTBEAT_OPENS";
/// Pool threads: this many opens hang inside `open(2)`; the rest wait in the queue.
const POOL_THREADS: usize = 64;
/// The pool's descriptor budget: opens beyond it wait for a permit (back pressure).
const POOL_BUDGET: usize = 256;
/// The loose bound on the ticker's lateness under aopen (it is a few ms in practice).
const MAX_LATENESS: Duration = Duration::from_millis(100);
/// `--shim`: the shim's rule; the files live in an `aopen-heartbeat-*` directory.
const SHIM_FAULTS: &str = "open:delay=20ms:path=*aopen-heartbeat*";
const SHIM_DELAY: Duration = Duration::from_millis(20);
/// `--shim`: the control's `std` opens on the executor's thread.
const CONTROL_OPENS: usize = 10;
/// `--shim`: set (to the files' directory) in the child that runs under the shim.
const SHIM_DIR_ENV: &str = "HEARTBEAT_SHIM_DIR";

type Result<T> = std::result::Result<T, Box<dyn Error>>;

fn main() -> Result<()> {
    let shim = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--shim") => true,
        Some(other) => {
            return Err(format!("unknown argument {other:?}; usage: heartbeat [--shim]").into())
        }
    };
    let opens = match std::env::var(OPENS_ENV) {
        Err(_) => DEFAULT_OPENS,
        Ok(text) => match text.trim().parse() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("{OPENS_ENV}={text:?}: expected a count above 0").into()),
        },
    };
    match (shim, std::env::var_os(SHIM_DIR_ENV)) {
        (false, _) => fifo_demo(opens),
        (true, None) => shim_parent(opens),
        (true, Some(dir)) => shim_child(opens, Path::new(&dir)),
    }
}

/// The default demo: hundreds of FIFO opens that hang until a writer appears.
fn fifo_demo(opens: usize) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let fifos = (0..opens)
        .map(|i| mkfifo(&tmp.path().join(format!("fifo{i}"))))
        .collect::<Result<Vec<_>>>()?;
    let pool = small_pool()?;
    let ex = LocalExecutor::new();

    println!("aopen: {opens} FIFO opens on {POOL_THREADS} pool threads, writers after {HANG:?}");
    let writers = release_after(HANG, fifos.clone());
    let ((completed, blocked, took), ticks, worst) = with_heartbeat(&ex, async {
        let start = Instant::now();
        let tasks = spawn_opens(&ex, &pool, &fifos);
        aopen::sleep(HANG / 2).await;
        // Expect: every thread busy (hung in open), more opens queued for a thread,
        // and the opens beyond the budget waiting for a permit.
        let blocked = pool.stats();
        (count_ok(tasks).await, blocked, start.elapsed())
    });
    drop(writers.join().expect("writer thread panicked"));
    // Every descriptor closed and every thread gone, or an error that says what not.
    pool.shutdown(Duration::from_secs(5))?;
    println!("  pool while blocked:  {blocked:?}");
    println!("  pool after shutdown: {:?}", pool.stats());
    println!("  opened and closed {completed}/{opens} in {took:.0?}");
    println!("  ticker: {ticks} ticks of {TICK:?}, worst lateness {worst:.1?}");

    let writers = release_after(HANG, vec![fifos[0].clone()]);
    let std_worst = control(&ex, &fifos[..1], "of one FIFO");
    drop(writers.join().expect("writer thread panicked"));
    report(completed, opens, worst, std_worst?)
}

/// `--shim`, first process: builds the shim, makes the files (not slowed down here),
/// and re-runs this example under the shim.
fn shim_parent(opens: usize) -> Result<()> {
    let so = fault_shim()?;
    let dir = tempfile::Builder::new()
        .prefix("aopen-heartbeat-")
        .tempdir()?;
    for i in 0..opens {
        std::fs::write(dir.path().join(format!("file{i}")), b"")?;
    }
    let status = Command::new(std::env::current_exe()?)
        .arg("--shim")
        .env("LD_PRELOAD", &so)
        .env("AOPEN_FAULTS", SHIM_FAULTS)
        .env(SHIM_DIR_ENV, dir.path())
        .status()?;
    drop(dir); // remove the files before exiting
    std::process::exit(status.code().unwrap_or(1));
}

/// `--shim`, under the shim: every open of the files takes [`SHIM_DELAY`].
fn shim_child(opens: usize, dir: &Path) -> Result<()> {
    // SAFETY: `dlsym` with `RTLD_DEFAULT` and a NUL-terminated name.
    if unsafe {
        libc::dlsym(
            libc::RTLD_DEFAULT,
            b"aopen_fault_rule_count\0".as_ptr().cast(),
        )
    }
    .is_null()
    {
        return Err("the fault shim is not preloaded".into());
    }
    let files: Vec<PathBuf> = (0..opens).map(|i| dir.join(format!("file{i}"))).collect();
    let pool = small_pool()?;
    let ex = LocalExecutor::new();
    println!("shim: {SHIM_FAULTS} (files in {})", dir.display());
    println!("aopen: {opens} opens of regular files on {POOL_THREADS} pool threads");
    let ((completed, took), ticks, worst) = with_heartbeat(&ex, async {
        let start = Instant::now();
        (
            count_ok(spawn_opens(&ex, &pool, &files)).await,
            start.elapsed(),
        )
    });
    pool.shutdown(Duration::from_secs(5))?;
    let serial = SHIM_DELAY * opens as u32;
    println!("  opened and closed {completed}/{opens} in {took:.0?} ({serial:.1?} one by one)");
    println!("  ticker: {ticks} ticks of {TICK:?}, worst lateness {worst:.1?}");
    let control_files = &files[..CONTROL_OPENS.min(opens)];
    let what = format!("of {} of those files, one by one", control_files.len());
    let std_worst = control(&ex, control_files, &what)?;
    report(completed, opens, worst, std_worst)
}

/// The shim's `.so` in `target/<profile>/`, built with `$CARGO` (else `cargo`).
fn fault_shim() -> Result<PathBuf> {
    let exe = std::env::current_exe()?; // target/<profile>/examples/heartbeat
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("no target/<profile>")?;
    let profile = if profile_dir.ends_with("release") {
        "--release"
    } else {
        "--profile=dev"
    };
    let target_dir = profile_dir.parent().ok_or("no target directory")?;
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo.current_dir(env!("CARGO_MANIFEST_DIR"));
    cargo.args(["build", "--quiet", "-p", "aopen-fault-shim", profile]);
    // If the build fails, cargo says why (and a shim built earlier still works).
    let _ = cargo.arg("--target-dir").arg(target_dir).status();
    let so = profile_dir.join("libaopen_fault_shim.so");
    if !so.is_file() {
        let hint = format!("run `cargo build {profile} -p aopen-fault-shim`");
        return Err(format!("{} is missing: {hint}", so.display()).into());
    }
    Ok(so)
}

/// The private pool: [`POOL_THREADS`] threads, a budget of [`POOL_BUDGET`].
fn small_pool() -> io::Result<Pool> {
    Pool::builder()
        .max_threads(POOL_THREADS)
        .descriptor_budget(POOL_BUDGET)
        .build()
}

/// One task per path: open it, then close it, which frees the permit that a task
/// still waiting for one needs.
fn spawn_opens(ex: &LocalExecutor, pool: &Pool, paths: &[PathBuf]) -> Vec<Task<io::Result<()>>> {
    let spawn = |path| {
        let open = OpenOptions::new().read(true).pool(pool).open(path);
        ex.spawn(async move { open.await?.close().await })
    };
    paths.iter().map(spawn).collect()
}

/// Awaits the open-and-close tasks; returns how many succeeded.
async fn count_ok(tasks: Vec<Task<io::Result<()>>>) -> usize {
    let mut completed = 0;
    for task in tasks {
        match task.await {
            Ok(()) => completed += 1,
            Err(err) => eprintln!("error: {err}"),
        }
    }
    completed
}

/// The control: `std::fs::File::open` of `paths` in a task on the executor's own
/// thread. Returns the ticker's worst lateness.
fn control(ex: &LocalExecutor, paths: &[PathBuf], what: &str) -> Result<Duration> {
    println!("control: std::fs::File::open {what}, in a task on the same executor");
    let paths = paths.to_vec();
    let (opened, ticks, worst) = with_heartbeat(ex, async {
        ex.spawn(async move {
            paths
                .iter()
                .try_for_each(|p| std::fs::File::open(p).map(drop))
        })
        .await
    });
    opened?;
    println!("  ticker: {ticks} ticks of {TICK:?}, worst lateness {worst:.1?}");
    Ok(worst)
}

/// Prints both latenesses; an error unless every open succeeded and aopen's ticker
/// kept time.
fn report(completed: usize, opens: usize, worst: Duration, std_worst: Duration) -> Result<()> {
    println!("worst lateness: aopen {worst:.1?}, blocking std {std_worst:.1?}");
    if completed != opens || worst > MAX_LATENESS {
        return Err(format!("expected {opens} opens and lateness under {MAX_LATENESS:?}").into());
    }
    Ok(())
}

/// Runs `work` on `ex` next to a ticker task; returns its output, the ticks, and
/// the ticker's worst lateness.
fn with_heartbeat<T>(ex: &LocalExecutor, work: impl Future<Output = T>) -> (T, u32, Duration) {
    let seen = Rc::new((Cell::new(0), Cell::new(Duration::ZERO)));
    let ticker = ex.spawn({
        let seen = Rc::clone(&seen);
        async move {
            loop {
                // Lateness is measured per tick, from the moment the sleep was due.
                let due = Instant::now() + TICK;
                aopen::sleep_until(due).await;
                seen.0.set(seen.0.get() + 1);
                seen.1.set(seen.1.get().max(due.elapsed()));
            }
        }
    });
    let output = ex.run(async {
        let output = work.await;
        // Two more ticks' time, so a ticker that was held up gets to report it.
        aopen::sleep(TICK * 2).await;
        output
    });
    drop(ticker); // dropping a Task cancels it
    (output, seen.0.get(), seen.1.get())
}

/// After `delay`, opens every FIFO for writing from a plain thread, which lets the
/// readers' `open(2)` return. The caller joins the thread after the readers are done
/// and drops the writers then: readers still queued in the pool open later.
fn release_after(delay: Duration, fifos: Vec<PathBuf>) -> thread::JoinHandle<Vec<std::fs::File>> {
    thread::spawn(move || {
        thread::sleep(delay);
        // `O_RDWR`: on Linux that never blocks on a FIFO, whereas `O_WRONLY` would
        // wait for a reader, and readers queued in the pool have not started yet.
        let mut writers = Vec::new();
        for path in &fifos {
            match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
            {
                Ok(file) => writers.push(file),
                Err(err) => {
                    // A reader whose writer never comes hangs for good: open(2) cannot
                    // be cancelled (the caveat of every blocking pool). Give up loudly,
                    // after freeing descriptors so the clean-up can run (EMFILE).
                    eprintln!("error: cannot open writer {}: {err}", path.display());
                    drop(writers);
                    let _ = std::fs::remove_dir_all(path.parent().unwrap_or(path));
                    std::process::exit(1);
                }
            }
        }
        writers
    })
}

/// Makes a FIFO at `path`.
fn mkfifo(path: &Path) -> Result<PathBuf> {
    let c_path = CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call.
    if unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) } != 0 {
        return Err(format!("mkfifo {}: {}", path.display(), io::Error::last_os_error()).into());
    }
    Ok(path.to_path_buf())
}
