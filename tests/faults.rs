//! Fault injection: `aopen` under the `LD_PRELOAD` shim of `tests/fault-shim`, which
//! makes `open` slow and `close`, `read`, `write`, `stat`, `readdir` and `fsync` fail
//! or come up short (see its crate docs for the `AOPEN_FAULTS` syntax).
//!
//! # Fault matrix (observed on Linux/glibc, std's `File` underneath)
//!
//! | syscall   | fault                     | observed through `aopen`                                          |
//! |-----------|---------------------------|--------------------------------------------------------------------|
//! | `read`    | `short=3`                 | `read`/`read_at` return 3 (as std); `read_exact`, `read_to_end`, `read_to_string`, `fs::read` return all bytes |
//! | `write`   | `short=5`                 | `write`/`write_at` return 5 (as std); `write_all`, `fs::write` write all bytes |
//! | `read`    | `errno=EINTR:every=2`     | every read form retries and succeeds (aopen's loops, std's `read_exact`/`read_to_end`) |
//! | `write`   | `errno=EINTR:every=2`     | every write form retries and succeeds                             |
//! | `open`    | `errno=EINTR:count=1`     | `open` succeeds: std's `File::open` retries `EINTR` (the shim sees 2 calls) |
//! | `opendir` | `errno=EINTR` (once)      | `read_dir` retries (std's `opendir` path does not) and lists the directory |
//! | `close`   | `errno=EINTR`             | `File::close` is `Ok` (aopen treats `EINTR` on close as done; the fd is gone) |
//! | `close`   | `errno=EIO`               | `File::close` errs, `os_error == EIO`, message names `close` and the path; fd gone, permit back |
//! | `close`   | `errno=EIO` on drop       | error lost (as documented), fd gone |
//! | `close`   | `errno=EIO` on `target*`  | `fs::write`, `fs::copy` (the target's close), `fs::read`, `fs::read_to_string`, `remove_dir_all` err with `EIO` naming `close` and the path; fds gone, permits back |
//! | `closedir`| `errno=EIO`               | listing is fine; the stream's close error is lost like a dropped file's (aopen's own `Dir`, no panic: the child aborts on any panic, as under `panic = "abort"`); fd gone, permit back |
//! | `open`    | `errno=EMFILE`            | `open`/`create`/`fs::read`/`read_dir` err with `os_error == EMFILE`, the path and the descriptor hint; permits back, no fd leaked |
//! | `write`   | `errno=ENOSPC:nth=5`      | 5th `write` errs (`StorageFull`, `ENOSPC`), writes 1–4 and 6 are `Ok(10)`; file is 50 bytes |
//! | `open`    | `delay=20ms`, 200 in flight | all succeed on 64 threads in ~80–150 ms (4 s serially); a 2 ms ticker on `LocalExecutor` is at worst ~0.5–10 ms late. Control: 10 such opens with std on the executor thread make it ~200 ms late |
//! | `stat`    | `errno=EACCES`            | `metadata`, `symlink_metadata`, `metadata_batch` (each entry), `File::metadata` err with `EACCES` (`PermissionDenied`) and the path |
//! | `stat`    | `delay=2ms` on one subdirectory | `metadata_batch` starts more workers than cores for the slow paths (the workers sleep in `stat`), and no more than the cores for cached paths |
//! | `fsync`   | `errno=EIO`               | `sync_all` and `sync_data` err with `EIO` and the path; the close after is `Ok` |
//! | `readdir` | `errno=EIO:nth=1`         | `next_entry` gives `Err(EIO)` naming the directory, then `Ok(None)`: std ends a listing at its first `readdir` error, so the entries are not listed |
//! | `stat`    | `errno=ESTALE` / `EIO`    | `metadata`, `symlink_metadata`, `File::metadata` (`fstat`), `metadata_batch` err with that errno naming the path; nothing leaked, the pool serves the next read (without the shim's `statx` hook, std's `metadata` is `Ok`: the hook is what std calls) |
//! | `readdir` | `errno=ESTALE` / `EIO`    | `next_entry` errs with that errno naming the directory, then `Ok(None)` |
//! | `fsync`   | `errno=EIO`               | `sync_all`, `sync_data` err naming the path; the close after is `Ok` |
//! | (none)    | a directory removed mid-listing | the entries read come out, then a `NotFound` error naming the directory ("removed while it was being listed"), not the silent end glibc makes of `getdents`'s `ENOENT` |
//! | any       | bad `AOPEN_FAULTS`        | the shim prints one message and aborts the process at load       |
//!
//! Every scenario ends with `pool.shutdown(10 s)` and checks that no descriptor whose
//! `/proc/self/fd` link names the test directory is left and that every permit of the
//! budget is back.
//!
//! # How the tests run
//!
//! Each parent test builds the shim once (`common::fault_shim`: `cargo build -p aopen-fault-shim`, same
//! target directory and profile as this binary), makes a temp directory named
//! `aopen-fault-<scenario>-*` with the files it needs, and re-runs this test binary as
//! a child: `--exact child_<scenario>` with `LD_PRELOAD=<shim>`,
//! `AOPEN_FAULTS=<rules>`, [`CHILD_ENV`] naming the scenario and [`DIR_ENV`] the
//! directory. The `child_*` tests return at once unless [`CHILD_ENV`] names them; the
//! child asserts, then prints one `AOPEN-FAULT-RESULT key=value ...` line, which the
//! parent checks. Every rule selects the test directory with `path=`, so the harness's
//! own output is never touched (the shim only faults descriptors it saw opened anyway).

// The `LD_PRELOAD` shim interposes on glibc's calls: Linux only.
#![cfg(target_os = "linux")]

#[path = "support/common.rs"]
mod common;

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::CStr;
use std::io::{self, Read, SeekFrom};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::rc::Rc;
use std::thread;
use std::time::{Duration, Instant};

use aopen::fs::os_error;
use aopen::{LocalExecutor, Pool};
use common::{fault_shim, pool, rerun_test};

/// Names the scenario a child process runs.
const CHILD_ENV: &str = "AOPEN_FAULT_CHILD";

/// The child's test directory.
const DIR_ENV: &str = "AOPEN_FAULT_DIR";

/// The start of the line a child prints its results on.
const RESULT_TAG: &str = "AOPEN-FAULT-RESULT";

/// The glob every rule uses: the test directories' names contain it.
const IN_TEST_DIR: &str = "path=*aopen-fault-*";

/// How long a child may run before it counts as hung.
const CHILD_LIMIT: Duration = Duration::from_secs(180);

/// How long `pool.shutdown` may take at the end of a scenario.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(10);

/// The delay of the slow-open scenario.
const OPEN_DELAY: Duration = Duration::from_millis(20);

/// Opens in flight in the slow-open scenario.
const SLOW_OPENS: usize = 200;

/// The ticker's period in the slow-open scenario.
const TICK: Duration = Duration::from_millis(2);

// ---------------------------------------------------------------------------------
// Parent side
// ---------------------------------------------------------------------------------

/// What a child process did.
struct ChildRun {
    scenario: String,
    status: ExitStatus,
    stdout: String,
    stderr: String,
    results: HashMap<String, String>,
    /// The test directory (removed when this is dropped).
    dir: tempfile::TempDir,
}

impl ChildRun {
    fn context(&self) -> String {
        format!(
            "child {} exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.scenario, self.status, self.stdout, self.stderr
        )
    }

    /// Asserts the child passed and printed its result line.
    fn assert_passed(&self) -> &Self {
        assert!(self.status.success(), "{}", self.context());
        assert_eq!(
            self.results.get("done").map(String::as_str),
            Some("1"),
            "no result line\n{}",
            self.context()
        );
        self
    }

    fn get(&self, key: &str) -> &str {
        self.results
            .get(key)
            .unwrap_or_else(|| panic!("no {key}= in the result line\n{}", self.context()))
    }

    fn num(&self, key: &str) -> u64 {
        self.get(key)
            .parse()
            .unwrap_or_else(|_| panic!("{key}= is not a number\n{}", self.context()))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Runs `child_<scenario>` in a child process under the shim with `faults`, after
/// `setup` filled its test directory.
fn run_child(scenario: &str, faults: &str, setup: impl FnOnce(&Path)) -> ChildRun {
    let shim = fault_shim();
    let dir = tempfile::Builder::new()
        .prefix(&format!("aopen-fault-{scenario}-"))
        .tempdir()
        .expect("make the test directory");
    setup(dir.path());
    let mut child = rerun_test(&format!("child_{scenario}"))
        .env("LD_PRELOAD", shim)
        .env("AOPEN_FAULTS", faults)
        .env(CHILD_ENV, scenario)
        .env(DIR_ENV, dir.path())
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the child");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + CHILD_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let status = child.wait().expect("reap the child");
            panic!(
                "child {scenario} ran longer than {CHILD_LIMIT:?} and was killed ({status})\n\
                 --- stderr ---\n{}",
                stderr.join().unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(10));
    };
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    let mut results = HashMap::new();
    for line in stdout.lines() {
        // The harness may have printed "test child_x ... " on the same line.
        if let Some(at) = line.find(RESULT_TAG) {
            let rest = &line[at + RESULT_TAG.len()..];
            for pair in rest.split_whitespace() {
                if let Some((key, value)) = pair.split_once('=') {
                    results.insert(key.to_string(), value.to_string());
                }
            }
        }
    }
    ChildRun {
        scenario: scenario.to_string(),
        status,
        stdout,
        stderr,
        results,
        dir,
    }
}

/// Deterministic test bytes.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

// ---------------------------------------------------------------------------------
// Child side
// ---------------------------------------------------------------------------------

/// The test directory if this process is the child for `scenario`; `None` in the
/// parent (the `child_*` test then does nothing).
fn child_dir(scenario: &str) -> Option<PathBuf> {
    if std::env::var(CHILD_ENV).ok()? != scenario {
        return None;
    }
    Some(PathBuf::from(
        std::env::var_os(DIR_ENV).expect("the child's test directory"),
    ))
}

/// The shim's per-rule counters, found with `dlsym`: proof the shim is loaded.
struct Counters {
    matched: extern "C" fn(u64) -> u64,
    fired: extern "C" fn(u64) -> u64,
}

impl Counters {
    fn get() -> Counters {
        Counters {
            matched: shim_fn(b"aopen_fault_matched\0"),
            fired: shim_fn(b"aopen_fault_fired\0"),
        }
    }

    fn matched(&self, rule: u64) -> u64 {
        (self.matched)(rule)
    }

    fn fired(&self, rule: u64) -> u64 {
        (self.fired)(rule)
    }
}

fn shim_fn(name: &[u8]) -> extern "C" fn(u64) -> u64 {
    let name = CStr::from_bytes_with_nul(name).expect("a NUL-terminated name");
    // SAFETY: `dlsym` with `RTLD_DEFAULT` and a NUL-terminated name.
    let found = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    assert!(
        !found.is_null(),
        "{name:?} not found: the fault shim is not preloaded"
    );
    // SAFETY: the shim defines this symbol as `extern "C" fn(u64) -> u64`.
    unsafe { std::mem::transmute::<*mut libc::c_void, extern "C" fn(u64) -> u64>(found) }
}

/// The pool every scenario uses unless it needs more threads.
fn small_pool() -> Pool {
    pool(8, 16)
}

/// Descriptors of this process whose target names `dir`.
fn fds_under(dir: &Path) -> usize {
    let needle = dir.to_str().expect("a UTF-8 test directory");
    std::fs::read_dir("/proc/self/fd")
        .expect("list /proc/self/fd")
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().contains(needle))
        .count()
}

/// Asserts every permit of `pool` is free right now.
fn assert_budget_full(pool: &Pool) {
    assert_eq!(
        pool.budget().available(),
        pool.budget().capacity(),
        "permits still held: {:?}",
        pool.stats()
    );
}

/// Key-value results, printed on one line once the scenario passed.
#[derive(Default)]
struct Report(Vec<(String, String)>);

impl Report {
    fn add(&mut self, key: &str, value: impl ToString) {
        self.0.push((key.to_string(), value.to_string()));
    }

    /// The end of every scenario: shut the pool down, check nothing under `dir` is
    /// open and the budget is full, and print the result line.
    fn finish(mut self, pool: Pool, dir: &Path) {
        pool.shutdown(SHUTDOWN_LIMIT)
            .expect("the pool shuts down in time");
        assert_budget_full(&pool);
        assert_eq!(fds_under(dir), 0, "descriptors under {dir:?} left open");
        self.add("done", 1);
        let line: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("\n{RESULT_TAG} {}", line.join(" "));
    }
}

/// The message of `err`, with its path payload.
fn message(err: &io::Error) -> String {
    err.to_string()
}

// ---------------------------------------------------------------------------------
// Short reads
// ---------------------------------------------------------------------------------

#[test]
fn short_reads() {
    let run = run_child(
        "short_reads",
        &format!("read:short=3:{IN_TEST_DIR}"),
        |dir| {
            std::fs::write(dir.join("data.bin"), pattern(10_000)).unwrap();
            std::fs::write(dir.join("text.txt"), "short reads, whole strings\n").unwrap();
        },
    );
    run.assert_passed();
    assert_eq!(run.num("read"), 3, "a plain read is short, as std's");
    assert_eq!(run.num("read_at"), 3);
    assert!(run.num("fired") > 10_000 / 3, "{}", run.context());
}

#[test]
fn child_short_reads() {
    let Some(dir) = child_dir("short_reads") else {
        return;
    };
    let pool = small_pool();
    let fs = pool.fs();
    let path = dir.join("data.bin");
    let want = pattern(10_000);
    let mut report = Report::default();
    aopen::block_on(async {
        let mut file = fs.open(&path).await.unwrap();
        let mut buf = vec![0; want.len()];
        file.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, want, "read_exact");
        file.close().await.unwrap();

        let mut file = fs.open(&path).await.unwrap();
        let mut all = Vec::new();
        assert_eq!(file.read_to_end(&mut all).await.unwrap(), want.len());
        assert_eq!(all, want, "read_to_end");
        let mut small = [0u8; 100];
        let n = file.read_at(&mut small, 10).await.unwrap();
        assert_eq!(&small[..n], &want[10..10 + n]);
        report.add("read_at", n);
        file.close().await.unwrap();

        let mut file = fs.open(&path).await.unwrap();
        let n = file.read(&mut small).await.unwrap();
        assert_eq!(&small[..n], &want[..n]);
        report.add("read", n);
        drop(file);

        assert_eq!(fs.read(&path).await.unwrap(), want, "fs::read");
        assert_eq!(
            fs.read_to_string(dir.join("text.txt")).await.unwrap(),
            "short reads, whole strings\n"
        );
        let mut file = fs.open(dir.join("text.txt")).await.unwrap();
        let mut text = String::new();
        file.read_to_string(&mut text).await.unwrap();
        assert_eq!(text, "short reads, whole strings\n");
    });
    report.add("fired", Counters::get().fired(0));
    report.finish(pool, &dir);
}

// ---------------------------------------------------------------------------------
// Short writes
// ---------------------------------------------------------------------------------

#[test]
fn short_writes() {
    let run = run_child(
        "short_writes",
        &format!("write:short=5:{IN_TEST_DIR}"),
        |_| {},
    );
    run.assert_passed();
    assert_eq!(run.num("write"), 5);
    assert_eq!(run.num("write_at"), 5);
    assert!(run.num("fired") >= 2 * 100_000 / 5, "{}", run.context());
    // Checked again here, without the shim.
    let data = pattern(100_000);
    let mut want = data.clone();
    want.extend_from_slice(&data[..5]);
    want.extend_from_slice(&data[..5]);
    assert_eq!(std::fs::read(run.path("out.bin")).unwrap(), want);
    assert_eq!(std::fs::read(run.path("whole.bin")).unwrap(), data);
}

#[test]
fn child_short_writes() {
    let Some(dir) = child_dir("short_writes") else {
        return;
    };
    let pool = small_pool();
    let fs = pool.fs();
    let data = pattern(100_000);
    let mut report = Report::default();
    aopen::block_on(async {
        let path = dir.join("out.bin");
        let mut file = fs
            .options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .await
            .unwrap();
        file.write_all(&data).await.unwrap();
        report.add("write", file.write(&data[..100]).await.unwrap());
        report.add(
            "write_at",
            file.write_at(&data[..100], data.len() as u64 + 5)
                .await
                .unwrap(),
        );
        file.close().await.unwrap();
        // This read goes through the shim too, but only writes are shortened.
        let written = std::fs::read(&path).unwrap();
        assert_eq!(written.len(), data.len() + 10);
        assert_eq!(&written[..data.len()], &data[..], "write_all");

        fs.write(dir.join("whole.bin"), data.clone()).await.unwrap();
        assert_eq!(fs.read(dir.join("whole.bin")).await.unwrap(), data);
    });
    report.add("fired", Counters::get().fired(0));
    report.finish(pool, &dir);
}

// ---------------------------------------------------------------------------------
// EINTR on reads and writes
// ---------------------------------------------------------------------------------

#[test]
fn eintr_reads_and_writes() {
    let faults =
        format!("read:errno=EINTR:every=2:{IN_TEST_DIR};write:errno=EINTR:every=2:{IN_TEST_DIR}");
    let run = run_child("eintr_rw", &faults, |_| {});
    run.assert_passed();
    assert!(run.num("read_fired") > 0, "{}", run.context());
    assert!(run.num("write_fired") > 0, "{}", run.context());
    let data = pattern(10_000);
    assert_eq!(std::fs::read(run.path("rw.bin")).unwrap(), data);
    assert_eq!(std::fs::read(run.path("whole.bin")).unwrap(), data);
}

#[test]
fn child_eintr_rw() {
    let Some(dir) = child_dir("eintr_rw") else {
        return;
    };
    let pool = small_pool();
    let fs = pool.fs();
    let data = pattern(10_000);
    aopen::block_on(async {
        let path = dir.join("rw.bin");
        let mut file = fs
            .options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .await
            .unwrap();
        // Several single writes, so some hit the injected EINTR and are retried.
        for piece in data[..40].chunks(10) {
            assert_eq!(file.write(piece).await.unwrap(), piece.len());
        }
        file.write_all(&data[40..9_000]).await.unwrap();
        assert_eq!(file.write_at(&data[9_000..], 9_000).await.unwrap(), 1_000);
        assert_eq!(file.seek(SeekFrom::Start(0)).await.unwrap(), 0);

        let mut piece = [0u8; 10];
        for i in 0..4 {
            assert_eq!(file.read(&mut piece).await.unwrap(), 10);
            assert_eq!(&piece[..], &data[i * 10..i * 10 + 10]);
        }
        let mut middle = vec![0; 4_960];
        file.read_exact(&mut middle).await.unwrap();
        assert_eq!(&middle[..], &data[40..5_000]);
        let mut rest = Vec::new();
        file.read_to_end(&mut rest).await.unwrap();
        assert_eq!(&rest[..], &data[5_000..]);
        let mut at = [0u8; 100];
        assert_eq!(file.read_at(&mut at, 100).await.unwrap(), 100);
        assert_eq!(&at[..], &data[100..200]);
        file.close().await.unwrap();

        fs.write(dir.join("whole.bin"), data.clone()).await.unwrap();
        assert_eq!(fs.read(&path).await.unwrap(), data);
    });
    let counters = Counters::get();
    let mut report = Report::default();
    report.add("read_fired", counters.fired(0));
    report.add("write_fired", counters.fired(1));
    report.finish(pool, &dir);
}

// ---------------------------------------------------------------------------------
// EINTR on open, opendir and close
// ---------------------------------------------------------------------------------

#[test]
fn eintr_open_and_close() {
    // Rule 0 fails the 1st matching open, rule 1 the 3rd (the first `read_dir`'s
    // `opendir`); rule 2 fails every close with EINTR after really closing.
    let faults = format!(
        "open:errno=EINTR:nth=1:{IN_TEST_DIR};open:errno=EINTR:nth=3:{IN_TEST_DIR};\
         close:errno=EINTR:{IN_TEST_DIR}"
    );
    let run = run_child("eintr_open", &faults, |dir| {
        std::fs::write(dir.join("data.txt"), "eintr").unwrap();
    });
    run.assert_passed();
    // std's `File::open` retried: two calls, the first failed.
    assert_eq!(run.get("open"), "ok");
    assert_eq!(run.num("open_calls"), 2);
    assert_eq!(run.get("close"), "ok");
    assert_eq!(run.get("read_dir_first"), "ok");
    assert_eq!(run.num("listed"), 1);
}

#[test]
fn child_eintr_open() {
    let Some(dir) = child_dir("eintr_open") else {
        return;
    };
    let pool = small_pool();
    let fs = pool.fs();
    let counters = Counters::get();
    let mut report = Report::default();
    aopen::block_on(async {
        let mut file = fs.open(dir.join("data.txt")).await.unwrap();
        report.add("open", "ok");
        assert_eq!(counters.fired(0), 1);
        report.add("open_calls", counters.matched(0));
        let mut text = String::new();
        file.read_to_string(&mut text).await.unwrap();
        assert_eq!(text, "eintr");

        // The shim really closed, then said EINTR: aopen reports success.
        file.close().await.unwrap();
        assert_eq!(counters.fired(2), 1);
        report.add("close", "ok");
        assert_eq!(fds_under(&dir), 0);
        assert_budget_full(&pool);

        // `opendir` fails once with EINTR: std does not retry it, aopen does.
        let mut listing = fs.read_dir(&dir).await.unwrap();
        report.add("read_dir_first", "ok");
        // Its closedir "fails" with EINTR, which std accepts.
        let mut listed = 0;
        while let Some(entry) = listing.next_entry().await.unwrap() {
            assert_eq!(entry.file_name(), "data.txt");
            listed += 1;
        }
        drop(listing);
        report.add("listed", listed);
    });
    report.finish(pool, &dir);
}

// ---------------------------------------------------------------------------------
// EIO from close
// ---------------------------------------------------------------------------------

#[test]
fn close_eio() {
    let run = run_child(
        "close_eio",
        &format!("close:errno=EIO:{IN_TEST_DIR}"),
        |dir| {
            std::fs::write(dir.join("data.txt"), "deferred error").unwrap();
        },
    );
    run.assert_passed();
    assert_eq!(run.num("close_errno"), libc::EIO as u64);
    // The directory stream's close also got EIO: reported as an error (lost, as for
    // a dropped file), not as a panic, which under `panic = "abort"` (the child's
    // panic hook aborts) would have killed the process.
    assert!(
        !run.stderr.contains("closedir"),
        "a closedir error panicked\n{}",
        run.context()
    );
    assert_eq!(run.num("closedir_fired"), 1, "{}", run.context());
}

/// Makes every panic in this process abort it, as `panic = "abort"` would: a panic
/// that a `catch_unwind` used to hide now ends the child.
fn panic_aborts() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        std::process::abort();
    }));
}

#[test]
fn child_close_eio() {
    let Some(dir) = child_dir("close_eio") else {
        return;
    };
    panic_aborts();
    let pool = small_pool();
    let fs = pool.fs();
    let path = dir.join("data.txt");
    let mut report = Report::default();
    aopen::block_on(async {
        assert_eq!(fds_under(&dir), 0);
        let file = fs.open(&path).await.unwrap();
        assert_eq!(fds_under(&dir), 1);
        let err = file.close().await.unwrap_err();
        assert_eq!(os_error(&err), Some(libc::EIO), "{err}");
        let text = message(&err);
        assert!(text.contains("close"), "{text}");
        assert!(text.contains(path.to_str().unwrap()), "{text}");
        report.add("close_errno", os_error(&err).unwrap());
        // The shim ran the real close before reporting EIO: the fd is gone, and the
        // permit came back after it.
        assert_eq!(fds_under(&dir), 0);
        assert_budget_full(&pool);

        // Written file, explicit close: same.
        let mut file = fs
            .options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.join("out.txt"))
            .await
            .unwrap();
        file.write_all(b"lost?").await.unwrap();
        let err = file.close().await.unwrap_err();
        assert_eq!(os_error(&err), Some(libc::EIO), "{err}");

        // Dropped file: the error is lost, the descriptor still closed (checked by
        // `finish` after the shutdown).
        drop(fs.open(&path).await.unwrap());

        // Whole-file calls close explicitly and return close(2)'s error.
        let err = fs.read(&path).await.unwrap_err();
        assert_eq!(os_error(&err), Some(libc::EIO), "fs::read: {err}");

        // A directory stream's closedir fails too.
        let mut listing = fs.read_dir(&dir).await.unwrap();
        let mut listed = 0;
        while listing.next_entry().await.unwrap().is_some() {
            listed += 1;
        }
        assert_eq!(listed, 2);
    });
    let pool_done = pool.clone();
    pool_done
        .shutdown(SHUTDOWN_LIMIT)
        .expect("the pool shuts down in time");
    // Rule 0 fired for the 3 file closes, the 1 file close inside `fs::read` and
    // the listing's closedir.
    report.add("closedir_fired", Counters::get().fired(0) - 4);
    report.finish(pool, &dir);
}

// ---------------------------------------------------------------------------------
// EIO from the close of a whole-file call's target
// ---------------------------------------------------------------------------------

/// The close of every file named `target*` fails with EIO (after really closing).
const TARGET_CLOSE_EIO: &str = "close:errno=EIO:path=*aopen-fault-*/target*";

#[test]
fn whole_file_calls_return_close_errors() {
    let run = run_child("whole_close", TARGET_CLOSE_EIO, |dir| {
        std::fs::write(dir.join("source.txt"), "copied").unwrap();
        std::fs::write(dir.join("target-read.txt"), "read").unwrap();
        std::fs::create_dir_all(dir.join("target-tree/sub")).unwrap();
        std::fs::write(dir.join("target-tree/sub/leaf"), "x").unwrap();
    });
    run.assert_passed();
    assert_eq!(
        run.get("errors"),
        "write:EIO,copy:EIO,read:EIO,read_to_string:EIO,remove_dir_all:EIO"
    );
    // The data did reach the files: only the close "failed".
    assert_eq!(
        std::fs::read(run.path("target-write.txt")).unwrap(),
        b"written"
    );
    assert_eq!(
        std::fs::read(run.path("target-copy.txt")).unwrap(),
        b"copied"
    );
}

#[test]
fn child_whole_close() {
    let Some(dir) = child_dir("whole_close") else {
        return;
    };
    let pool = small_pool();
    let fs = pool.fs();
    let mut report = Report::default();
    let mut errors = Vec::new();
    let mut check = |what: &str, result: io::Result<()>, names: &Path| {
        let err = result.expect_err(what);
        assert_eq!(os_error(&err), Some(libc::EIO), "{what}: {err}");
        let text = message(&err);
        assert!(text.contains("close"), "{what}: {text}");
        assert!(text.contains(names.to_str().unwrap()), "{what}: {text}");
        errors.push(format!("{what}:EIO"));
        assert_eq!(fds_under(&dir), 0, "{what}: a descriptor left open");
        assert_budget_full(&pool);
    };
    aopen::block_on(async {
        let target = dir.join("target-write.txt");
        check("write", fs.write(&target, "written").await, &target);
        let target = dir.join("target-copy.txt");
        let copied = fs.copy(dir.join("source.txt"), &target).await;
        check("copy", copied.map(drop), &target);
        let target = dir.join("target-read.txt");
        check("read", fs.read(&target).await.map(drop), &target);
        let text = fs.read_to_string(&target).await;
        check("read_to_string", text.map(drop), &target);
        let target = dir.join("target-tree");
        let removed = fs.remove_dir_all(&target).await;
        check("remove_dir_all", removed, &target);
        // The pool still serves: an untouched file reads and writes fine.
        fs.write(dir.join("other.txt"), "ok").await.unwrap();
        assert_eq!(fs.read(dir.join("other.txt")).await.unwrap(), b"ok");
    });
    report.add("errors", errors.join(","));
    report.finish(pool, &dir);
}

// ---------------------------------------------------------------------------------
// EMFILE from the OS, despite the budget
// ---------------------------------------------------------------------------------

#[test]
fn emfile_from_os() {
    let run = run_child(
        "emfile",
        &format!("open:errno=EMFILE:{IN_TEST_DIR}"),
        |dir| {
            std::fs::write(dir.join("data.txt"), "unreachable").unwrap();
        },
    );
    run.assert_passed();
    assert_eq!(run.num("failed"), 100);
}

#[test]
fn child_emfile() {
    let Some(dir) = child_dir("emfile") else {
        return;
    };
    let pool = small_pool();
    let fs = pool.fs();
    let path = dir.join("data.txt");
    let mut report = Report::default();
    let check = |err: &io::Error, what: &str| {
        assert_eq!(os_error(err), Some(libc::EMFILE), "{what}: {err}");
        let text = message(err);
        assert!(text.contains(dir.to_str().unwrap()), "{what}: {text}");
        assert!(text.contains("out of file descriptors"), "{what}: {text}");
        assert_budget_full(&pool);
        assert_eq!(fds_under(&dir), 0, "{what}");
    };
    aopen::block_on(async {
        let baseline = fds_under(&dir);
        assert_eq!(baseline, 0);
        check(&fs.open(&path).await.unwrap_err(), "open");
        let create = fs
            .options()
            .write(true)
            .create(true)
            .open(dir.join("new.txt"))
            .await;
        check(&create.unwrap_err(), "create");
        check(&fs.read(&path).await.unwrap_err(), "fs::read");
        check(&fs.read_dir(&dir).await.unwrap_err(), "read_dir");

        // Many at once, more than the budget: each fails, each permit comes back.
        let opens: Vec<_> = (0..100).map(|_| fs.open(&path)).collect();
        let mut failed = 0;
        for result in futures::future::join_all(opens).await {
            check(&result.unwrap_err(), "concurrent open");
            failed += 1;
        }
        report.add("failed", failed);
    });
    report.finish(pool, &dir);
}

// ---------------------------------------------------------------------------------
// ENOSPC on the 5th write
// ---------------------------------------------------------------------------------

#[test]
fn enospc_on_fifth_write() {
    let run = run_child(
        "enospc",
        &format!("write:errno=ENOSPC:nth=5:{IN_TEST_DIR}"),
        |_| {},
    );
    run.assert_passed();
    assert_eq!(run.get("writes"), "ok,ok,ok,ok,ENOSPC,ok");
    assert_eq!(run.get("kind"), "StorageFull");
    assert_eq!(std::fs::read(run.path("out.txt")).unwrap().len(), 50);
}

#[test]
fn child_enospc() {
    let Some(dir) = child_dir("enospc") else {
        return;
    };
    let pool = small_pool();
    let fs = pool.fs();
    let path = dir.join("out.txt");
    let mut report = Report::default();
    aopen::block_on(async {
        let mut file = fs
            .options()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .unwrap();
        let mut outcomes = Vec::new();
        for call in 1..=6 {
            match file.write(b"0123456789").await {
                Ok(n) => {
                    assert_ne!(call, 5, "the 5th write should fail");
                    assert_eq!(n, 10);
                    outcomes.push("ok");
                }
                Err(err) => {
                    assert_eq!(call, 5, "only the 5th write fails: {err}");
                    assert_eq!(os_error(&err), Some(libc::ENOSPC), "{err}");
                    assert!(message(&err).contains(path.to_str().unwrap()), "{err}");
                    report.add("kind", format!("{:?}", err.kind()));
                    outcomes.push("ENOSPC");
                }
            }
        }
        report.add("writes", outcomes.join(","));
        file.close().await.unwrap();
    });
    report.finish(pool, &dir);
}

// ---------------------------------------------------------------------------------
// Slow open: the seed's heartbeat, with numbers
// ---------------------------------------------------------------------------------

#[test]
fn slow_open_keeps_the_executor_ticking() {
    let run = run_child("ticker", "open:delay=20ms:path=*slow*", |dir| {
        for i in 0..SLOW_OPENS {
            std::fs::write(dir.join(format!("slow-{i:03}")), "zzz").unwrap();
        }
    });
    run.assert_passed();
    let worst = Duration::from_micros(run.num("worst_us"));
    let total = Duration::from_micros(run.num("total_us"));
    let control = Duration::from_micros(run.num("control_worst_us"));
    println!(
        "slow open: {SLOW_OPENS} opens of {OPEN_DELAY:?} each on 64 threads took {total:?}; \
         the {TICK:?} ticker was at worst {worst:?} late ({} ticks). Control (std on the \
         executor thread): {control:?} late.",
        run.num("ticks")
    );
    assert!(worst < Duration::from_millis(200), "{}", run.context());
    assert!(total < OPEN_DELAY * SLOW_OPENS as u32, "{}", run.context());
    assert!(
        total >= OPEN_DELAY,
        "the delay did not happen\n{}",
        run.context()
    );
    assert!(control >= OPEN_DELAY, "{}", run.context());
}

/// Ticks every [`TICK`] until `stop`, recording the worst lateness.
async fn ticker(worst: Rc<Cell<Duration>>, stop: Rc<Cell<bool>>) -> u64 {
    let mut ticks = 0;
    while !stop.get() {
        let start = Instant::now();
        aopen::sleep(TICK).await;
        let late = start.elapsed().saturating_sub(TICK);
        worst.set(worst.get().max(late));
        ticks += 1;
    }
    ticks
}

#[test]
fn child_ticker() {
    let Some(dir) = child_dir("ticker") else {
        return;
    };
    let pool = pool(64, 256);
    let fs = pool.fs();
    let slow = |i: usize| dir.join(format!("slow-{i:03}"));
    let ex = LocalExecutor::new();
    let mut report = Report::default();

    // Through the pool.
    let worst = Rc::new(Cell::new(Duration::ZERO));
    let stop = Rc::new(Cell::new(false));
    let ticks = ex.spawn(ticker(worst.clone(), stop.clone()));
    let total = ex.run(async {
        aopen::sleep(Duration::from_millis(10)).await;
        let start = Instant::now();
        let opens: Vec<_> = (0..SLOW_OPENS).map(|i| fs.open(slow(i))).collect();
        let files: Vec<_> = futures::future::join_all(opens)
            .await
            .into_iter()
            .map(|result| result.expect("every slow open succeeds"))
            .collect();
        let total = start.elapsed();
        assert_eq!(files.len(), SLOW_OPENS);
        drop(files);
        aopen::sleep(Duration::from_millis(10)).await;
        stop.set(true);
        total
    });
    report.add("ticks", ex.run(ticks));
    report.add("worst_us", worst.get().as_micros());
    report.add("total_us", total.as_micros());

    // Control: the same kind of open, with std, on the executor thread.
    let control = Rc::new(Cell::new(Duration::ZERO));
    let stop = Rc::new(Cell::new(false));
    let ticks = ex.spawn(ticker(control.clone(), stop.clone()));
    ex.run(async {
        aopen::sleep(Duration::from_millis(10)).await;
        for i in 0..10 {
            std::fs::File::open(slow(i)).expect("std open");
        }
        aopen::sleep(Duration::from_millis(10)).await;
        stop.set(true);
    });
    ex.run(ticks);
    report.add("control_worst_us", control.get().as_micros());
    report.finish(pool, &dir);
}

// ---------------------------------------------------------------------------------
// metadata_batch: workers follow the paths' latency
// ---------------------------------------------------------------------------------

/// Paths per directory of the batch scenario: many more than a pool of
/// `batch_threads()` has threads, so growth has room to show.
fn batch_paths() -> usize {
    64 * (batch_threads() + 2)
}

fn batch_threads() -> usize {
    2 * cores() + 2
}

fn cores() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

#[test]
fn metadata_batch_grows_workers_only_for_slow_paths() {
    let faults = "stat:delay=2ms:path=*aopen-fault-*/slow/*";
    let run = run_child("batch_workers", faults, |dir| {
        for sub in ["fast", "slow"] {
            std::fs::create_dir(dir.join(sub)).unwrap();
            for i in 0..batch_paths() {
                std::fs::write(dir.join(sub).join(format!("f{i}")), "").unwrap();
            }
        }
    });
    run.assert_passed();
    let cores = cores();
    assert!(
        run.num("fast_threads") <= cores as u64,
        "cached stats started more threads than cores ({cores}): {}",
        run.context()
    );
    assert!(
        run.num("slow_threads") > cores as u64,
        "stats that sleep should start more workers than cores ({cores}): {}",
        run.context()
    );
    assert!(run.num("slow_fired") >= batch_paths() as u64);
}

#[test]
fn child_batch_workers() {
    let Some(dir) = child_dir("batch_workers") else {
        return;
    };
    let counters = Counters::get();
    let mut report = Report::default();
    for sub in ["fast", "slow"] {
        // A fresh pool per run, so its thread count is this batch's alone.
        let pool = pool(batch_threads(), 16);
        let paths: Vec<PathBuf> = (0..batch_paths())
            .map(|i| dir.join(sub).join(format!("f{i}")))
            .collect();
        let results = aopen::block_on(pool.fs().metadata_batch(&paths)).unwrap();
        assert_eq!(results.len(), paths.len());
        assert!(results.iter().all(|r| r.is_ok()), "{sub}: a stat failed");
        report.add(&format!("{sub}_threads"), pool.stats().threads_alive);
        pool.shutdown(Duration::from_secs(10)).unwrap();
    }
    report.add("slow_fired", counters.fired(0));
    let pool = small_pool();
    report.finish(pool, &dir);
}

// ---------------------------------------------------------------------------------
// stat, fsync and readdir errors
// ---------------------------------------------------------------------------------

#[test]
fn stat_fsync_readdir_errors() {
    let faults = format!(
        "stat:errno=EACCES:{IN_TEST_DIR};fsync:errno=EIO:{IN_TEST_DIR};\
         readdir:errno=EIO:nth=1:{IN_TEST_DIR}"
    );
    let run = run_child("stat_sync_dir", &faults, |dir| {
        std::fs::write(dir.join("a.txt"), "a").unwrap();
        std::fs::write(dir.join("b.txt"), "b").unwrap();
    });
    run.assert_passed();
    assert_eq!(run.get("stat_kind"), "PermissionDenied");
    assert_eq!(run.num("batch_errors"), 2);
    assert_eq!(run.get("listing"), "Err(EIO),None");
}

#[test]
fn child_stat_sync_dir() {
    let Some(dir) = child_dir("stat_sync_dir") else {
        return;
    };
    let pool = small_pool();
    let fs = pool.fs();
    let a = dir.join("a.txt");
    let mut report = Report::default();
    let expect = |result: io::Result<std::fs::Metadata>, errno: i32, what: &str| {
        let err = result.expect_err(what);
        assert_eq!(os_error(&err), Some(errno), "{what}: {err}");
        assert!(
            message(&err).contains(dir.to_str().unwrap()),
            "{what}: {err}"
        );
        err
    };
    aopen::block_on(async {
        let err = expect(fs.metadata(&a).await, libc::EACCES, "metadata");
        report.add("stat_kind", format!("{:?}", err.kind()));
        expect(fs.symlink_metadata(&a).await, libc::EACCES, "lstat");
        let batch = fs
            .metadata_batch([a.clone(), dir.join("b.txt")])
            .await
            .unwrap();
        let mut batch_errors = 0;
        for result in batch {
            expect(result, libc::EACCES, "metadata_batch");
            batch_errors += 1;
        }
        report.add("batch_errors", batch_errors);

        let file = fs.options().read(true).write(true).open(&a).await.unwrap();
        expect(file.metadata().await, libc::EACCES, "File::metadata");
        let err = file.sync_all().await.unwrap_err();
        assert_eq!(os_error(&err), Some(libc::EIO), "sync_all: {err}");
        assert!(message(&err).contains(a.to_str().unwrap()), "{err}");
        let err = file.sync_data().await.unwrap_err();
        assert_eq!(os_error(&err), Some(libc::EIO), "sync_data: {err}");
        file.close().await.unwrap();

        // The first readdir fails: std ends the listing there.
        let mut listing = fs.read_dir(&dir).await.unwrap();
        let mut seen = Vec::new();
        loop {
            match listing.next_entry().await {
                Ok(Some(entry)) => seen.push(format!("{:?}", entry.file_name())),
                Ok(None) => {
                    seen.push("None".to_string());
                    break;
                }
                Err(err) => {
                    assert_eq!(os_error(&err), Some(libc::EIO), "{err}");
                    assert!(message(&err).contains(dir.to_str().unwrap()), "{err}");
                    seen.push("Err(EIO)".to_string());
                }
            }
        }
        report.add("listing", seen.join(","));
    });
    report.finish(pool, &dir);
}

// ---------------------------------------------------------------------------------
// The NFS errors: ESTALE and EIO on stat and readdir, EIO on fsync, a directory that
// vanishes mid-listing
// ---------------------------------------------------------------------------------

/// Entries of the directory removed mid-listing: several `getdents` buffers' worth
/// (names of [`LONG_NAME`] bytes), so the removal lands between two of them.
const VANISHING_ENTRIES: usize = 1_500;

/// The length of those entries' names.
const LONG_NAME: usize = 48;

#[test]
fn nfs_errors_are_clear_and_leave_the_pool_serving() {
    let faults =
        "stat:errno=ESTALE:path=*aopen-fault-*/stale*;stat:errno=EIO:path=*aopen-fault-*/eio*;\
         readdir:errno=ESTALE:path=*aopen-fault-*/stale-dir;\
         readdir:errno=EIO:path=*aopen-fault-*/eio-dir;\
         fsync:errno=EIO:path=*aopen-fault-*/eio-sync.txt";
    let run = run_child("nfs", faults, |dir| {
        for name in ["stale.txt", "eio.txt", "eio-sync.txt", "fine.txt"] {
            std::fs::write(dir.join(name), name).unwrap();
        }
        for sub in ["stale-dir", "eio-dir"] {
            std::fs::create_dir(dir.join(sub)).unwrap();
            std::fs::write(dir.join(sub).join("entry"), "").unwrap();
        }
        let vanishing = dir.join("vanishing");
        std::fs::create_dir(&vanishing).unwrap();
        for i in 0..VANISHING_ENTRIES {
            std::fs::write(vanishing.join(format!("{i:0LONG_NAME$}")), "").unwrap();
        }
    });
    run.assert_passed();
    assert_eq!(
        run.get("errors"),
        "metadata:ESTALE,symlink_metadata:ESTALE,File::metadata:ESTALE,metadata_batch:ESTALE,\
         metadata:EIO,symlink_metadata:EIO,File::metadata:EIO,metadata_batch:EIO,\
         read_dir:ESTALE,read_dir:EIO,sync_all:EIO,sync_data:EIO",
        "{}",
        run.context()
    );
    assert_eq!(run.get("vanished"), "NotFound");
    assert!(run.num("listed_before_vanishing") < VANISHING_ENTRIES as u64);
}

#[test]
fn child_nfs() {
    let Some(dir) = child_dir("nfs") else {
        return;
    };
    let pool = small_pool();
    let fs = pool.fs();
    let mut report = Report::default();
    let mut errors = Vec::new();
    // Each error: the injected errno, a message naming `path`, nothing left open
    // under the test directory once its descriptors closed, every permit back, and
    // the pool still serving a call that is not faulted.
    let mut check = |what: &str, err: io::Error, errno: i32, path: &Path| {
        assert_eq!(os_error(&err), Some(errno), "{what}: {err}");
        let text = message(&err);
        assert!(text.contains(path.to_str().unwrap()), "{what}: {text}");
        let name = match errno {
            libc::ESTALE => "ESTALE",
            libc::EIO => "EIO",
            _ => "other",
        };
        errors.push(format!("{what}:{name}"));
    };
    aopen::block_on(async {
        for (name, errno) in [("stale.txt", libc::ESTALE), ("eio.txt", libc::EIO)] {
            let path = dir.join(name);
            check(
                "metadata",
                fs.metadata(&path).await.unwrap_err(),
                errno,
                &path,
            );
            let lstat = fs.symlink_metadata(&path).await.unwrap_err();
            check("symlink_metadata", lstat, errno, &path);
            let file = fs.open(&path).await.unwrap();
            check(
                "File::metadata",
                file.metadata().await.unwrap_err(),
                errno,
                &path,
            );
            file.close().await.unwrap();
            let batch = fs.metadata_batch([&path]).await.unwrap();
            let err = batch.into_iter().next().unwrap().unwrap_err();
            check("metadata_batch", err, errno, &path);
            assert_eq!(fds_under(&dir), 0);
            assert_budget_full(&pool);
            assert_eq!(fs.read(dir.join("fine.txt")).await.unwrap(), b"fine.txt");
        }

        for (name, errno) in [("stale-dir", libc::ESTALE), ("eio-dir", libc::EIO)] {
            let path = dir.join(name);
            let mut listing = fs.read_dir(&path).await.unwrap();
            let err = listing.next_entry().await.unwrap_err();
            check("read_dir", err, errno, &path);
            // The listing ends after its error, as std's does.
            assert!(listing.next_entry().await.unwrap().is_none());
            drop(listing);
            assert_eq!(fs.read(dir.join("fine.txt")).await.unwrap(), b"fine.txt");
        }

        let path = dir.join("eio-sync.txt");
        let file = fs
            .options()
            .read(true)
            .write(true)
            .open(&path)
            .await
            .unwrap();
        check(
            "sync_all",
            file.sync_all().await.unwrap_err(),
            libc::EIO,
            &path,
        );
        check(
            "sync_data",
            file.sync_data().await.unwrap_err(),
            libc::EIO,
            &path,
        );
        file.close().await.unwrap();

        // A directory removed while it is listed: the entries already read come out,
        // then an error, not the quiet end glibc makes of the dead directory's
        // `ENOENT`.
        let path = dir.join("vanishing");
        let mut listing = fs.read_dir(&path).await.unwrap();
        let mut listed = 0;
        assert!(listing.next_entry().await.unwrap().is_some());
        listed += 1;
        std::fs::remove_dir_all(&path).unwrap();
        let err = loop {
            match listing.next_entry().await {
                Ok(Some(_)) => listed += 1,
                Ok(None) => panic!("the listing of a removed directory ended without an error"),
                Err(err) => break err,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        let text = message(&err);
        assert!(text.contains(path.to_str().unwrap()), "{text}");
        assert!(text.contains("removed while it was being listed"), "{text}");
        report.add("vanished", format!("{:?}", err.kind()));
        assert!(listing.next_entry().await.unwrap().is_none());
        drop(listing);
        report.add("listed_before_vanishing", listed);
        assert_eq!(fs.read(dir.join("fine.txt")).await.unwrap(), b"fine.txt");
    });
    report.add("errors", errors.join(","));
    // `finish`: the pool shuts down in time, no descriptor under the directory is
    // left, every permit is back.
    report.finish(pool, &dir);
}

// ---------------------------------------------------------------------------------
// A typo in AOPEN_FAULTS
// ---------------------------------------------------------------------------------

#[test]
fn bad_spec_aborts() {
    let run = run_child("bad_spec", "open:dleay=2ms", |_| {});
    assert_eq!(
        run.status.signal(),
        Some(libc::SIGABRT),
        "{}",
        run.context()
    );
    assert!(
        run.stderr.contains("aopen-fault-shim: bad AOPEN_FAULTS"),
        "{}",
        run.context()
    );
    assert!(
        run.stderr.contains("unknown key \"dleay\""),
        "{}",
        run.context()
    );
}

#[test]
fn child_bad_spec() {
    // Never reached under the shim: it aborts while loading.
    if child_dir("bad_spec").is_some() {
        panic!("the shim accepted a bad AOPEN_FAULTS");
    }
}
