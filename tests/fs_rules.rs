//! One or more tests per rule of DESIGN.md ("Rules that must hold"), on real files
//! and FIFOs.
//!
//! Every test uses a private pool, and counts only descriptors whose
//! `/proc/self/fd` target lies inside its own temporary directory, so tests running
//! in parallel in this process do not disturb each other.
//!
//! A FIFO gives real blocking system calls: `open(O_RDONLY)` blocks until a writer
//! appears, and `read` on a FIFO opened `O_RDWR` blocks until someone writes.

#[path = "support/common.rs"]
mod common;

#[cfg(unix)]
use std::ffi::CString;
use std::future::Future;
use std::io;
#[cfg(unix)]
use std::io::Write;
#[cfg(unix)]
use std::os::unix::ffi::OsStrExt;
#[cfg(unix)]
use std::os::unix::fs::OpenOptionsExt;
#[cfg(unix)]
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use aopen::fs::{os_error, OpenOptions, PathError};
use aopen::Pool;
#[cfg(unix)]
use common::fds_where;
use common::{fds_to, occupy, pool, rerun_test, tempdir, wait_for, DEADLINE};
use futures::executor::block_on;

// ---------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------

/// Descriptors pointing at `dir` or anything below it.
#[cfg(unix)]
fn fds_under(dir: &Path) -> Vec<(i32, PathBuf)> {
    fds_where(|target| target.starts_with(dir))
}

/// Handles held open on `dir` or anything below it, as far as Windows can tell
/// (`common::held_under`: a probe per path, so never while the crate opens files).
#[cfg(windows)]
fn fds_under(dir: &Path) -> Vec<(i32, PathBuf)> {
    common::held_under(dir)
}

/// Waits until every descriptor under `dir` is closed and every permit of `pool` is
/// back.
fn wait_all_closed(what: &str, pool: &Pool, dir: &Path) {
    let capacity = pool.budget().capacity();
    wait_for(what, || {
        let fds = fds_under(dir);
        let available = pool.budget().available();
        let stats = pool.stats();
        if fds.is_empty() && available == capacity && stats.descriptors_held == 0 {
            Ok(())
        } else {
            Err(format!(
                "fds under dir: {fds:?}; budget available {available}/{capacity}; {stats:?}"
            ))
        }
    });
}

#[cfg(unix)]
fn wait_busy(pool: &Pool, at_least: usize) {
    wait_for("pool threads busy", || {
        let stats = pool.stats();
        if stats.threads_busy >= at_least {
            Ok(())
        } else {
            Err(format!("want threads_busy >= {at_least}: {stats:?}"))
        }
    });
}

#[cfg(unix)]
fn wait_quiet(pool: &Pool) {
    wait_for("pool quiet", || {
        let stats = pool.stats();
        if stats.threads_busy == 0 && stats.jobs_queued == 0 {
            Ok(())
        } else {
            Err(format!("{stats:?}"))
        }
    });
}

/// Polls `fut` once with a no-op waker.
fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    Pin::new(fut).poll(&mut cx)
}

/// A future running to completion on its own thread.
struct Running<T>(mpsc::Receiver<T>);

fn spawn_block_on<T, F>(fut: F) -> Running<T>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(block_on(fut));
    });
    Running(rx)
}

impl<T> Running<T> {
    fn wait(self, what: &str, timeout: Duration) -> T {
        match self.0.recv_timeout(timeout) {
            Ok(value) => value,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("{what}: did not complete within {timeout:?}")
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
        }
    }
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    let c_path = CString::new(path.as_os_str().as_bytes()).expect("no NUL in temp path");
    // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call.
    let rc = unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) };
    assert_eq!(rc, 0, "mkfifo {path:?}: {}", io::Error::last_os_error());
}

#[cfg(unix)]
/// Opens a FIFO for reading and writing from the test: never blocks on Linux, and
/// counts as a writer for pending readers.
fn fifo_rdwr(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open FIFO O_RDWR")
}

#[cfg(unix)]
/// Writes `data` into a FIFO that has a reader, from the test.
fn fifo_put(path: &Path, data: &[u8]) {
    let mut writer = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .expect("open FIFO O_WRONLY|O_NONBLOCK (is a reader in?)");
    writer.write_all(data).expect("write into FIFO");
}

#[cfg(unix)]
/// Waits until some thread of this process is blocked in `read(2)` on `fd` (read
/// from `/proc/self/task/*/syscall`): proof that a pool read is in flight.
fn wait_in_read(pool: &Pool, fd: i32) {
    wait_for("a pool thread blocked in read(2)", || {
        let tasks = std::fs::read_dir("/proc/self/task").map_err(|e| e.to_string())?;
        for task in tasks.flatten() {
            let Ok(text) = std::fs::read_to_string(task.path().join("syscall")) else {
                continue;
            };
            let mut fields = text.split_whitespace();
            let nr = fields.next().and_then(|nr| nr.parse::<i64>().ok());
            let arg0 = fields
                .next()
                .and_then(|a| i64::from_str_radix(a.trim_start_matches("0x"), 16).ok());
            if nr == Some(libc::SYS_read) && arg0 == Some(i64::from(fd)) {
                return Ok(());
            }
        }
        Err(format!("no thread in read({fd}); {:?}", pool.stats()))
    });
}

#[cfg(unix)]
/// The one descriptor pointing at `path`.
fn only_fd(path: &Path) -> i32 {
    let fds = fds_to(path);
    assert_eq!(fds.len(), 1, "descriptors to {path:?}: {fds:?}");
    fds[0]
}

// ---------------------------------------------------------------------------------
// Rule 1: close after open, also when the open's future was dropped mid-flight
// ---------------------------------------------------------------------------------

#[cfg(unix)]
#[test]
fn rule1_dropped_opens_never_leak_descriptors() {
    const MAX_THREADS: usize = 64;
    const TOTAL: usize = 1000;
    const PER_ROUND: usize = 100;
    let (_guard, dir) = tempdir();
    let fifo = dir.join("fifo");
    mkfifo(&fifo);
    let pool = pool(MAX_THREADS, 4 * TOTAL);
    let capacity = pool.budget().capacity();

    let mut issued = 0;
    let mut round = 0;
    while issued < TOTAL {
        let n = PER_ROUND.min(TOTAL - issued);
        issued += n;
        let mut opens: Vec<_> = (0..n).map(|_| pool.fs().open(&fifo)).collect();
        for open in &mut opens {
            assert!(
                poll_once(open).is_pending(),
                "an O_RDONLY open of a FIFO without a writer completed"
            );
        }
        // Many of them are now blocked inside open(2) on pool threads.
        wait_busy(&pool, MAX_THREADS.min(n) / 2);
        let writer = if round % 2 == 0 {
            // Drop every future while its open is blocked or queued, then let the
            // blocked opens succeed: nobody takes their descriptors.
            drop(opens);
            fifo_rdwr(&fifo)
        } else {
            // Let the opens succeed first, then drop the futures while the results
            // are landing (some done, some running, some still queued).
            let writer = fifo_rdwr(&fifo);
            opens.truncate(n / 2);
            std::thread::yield_now();
            drop(opens);
            writer
        };
        // Keep the writer until no open can still be on its way into open(2).
        wait_quiet(&pool);
        let writer_fd = writer.as_raw_fd();
        drop(writer);
        let _ = writer_fd;
        round += 1;
    }

    wait_for("every FIFO descriptor closed and every permit back", || {
        let fds = fds_to(&fifo);
        let available = pool.budget().available();
        let stats = pool.stats();
        if fds.is_empty() && available == capacity && stats.descriptors_held == 0 {
            Ok(())
        } else {
            Err(format!(
                "{} descriptors still point at the FIFO ({fds:?}); budget available \
                 {available}/{capacity}; {stats:?}",
                fds.len()
            ))
        }
    });
    pool.shutdown(Duration::from_secs(10))
        .expect("pool goes quiet");
}

#[test]
fn rule1_dropped_regular_opens_never_leak() {
    // The same with quick opens of regular files: futures dropped at every stage.
    let (_guard, dir) = tempdir();
    let pool = pool(8, 64);
    for i in 0..32 {
        std::fs::write(dir.join(format!("f{i}")), b"x").unwrap();
    }
    for round in 0..50 {
        let mut opens: Vec<_> = (0..32)
            .map(|i| pool.fs().open(dir.join(format!("f{i}"))))
            .collect();
        for (i, open) in opens.iter_mut().enumerate() {
            if (i + round) % 3 != 0 {
                let _ = poll_once(open);
            }
        }
        drop(opens);
    }
    wait_all_closed("dropped regular opens closed", &pool, &dir);
    pool.shutdown(Duration::from_secs(10))
        .expect("pool goes quiet");
}

// ---------------------------------------------------------------------------------
// Rule 2: close after every operation; operations in issue order
// ---------------------------------------------------------------------------------

#[cfg(unix)]
#[test]
fn rule2_close_waits_for_a_dropped_read_in_flight() {
    let (_guard, dir) = tempdir();
    let fifo = dir.join("fifo");
    mkfifo(&fifo);
    let pool = pool(4, 16);
    let mut file = block_on(pool.fs().options().read(true).write(true).open(&fifo))
        .expect("open FIFO O_RDWR on the pool");
    assert_eq!(fds_to(&fifo).len(), 1, "the pool's FIFO descriptor");

    let mut buf = vec![0u8; 16];
    {
        let mut read = Box::pin(file.read(&mut buf));
        assert!(
            poll_once(&mut read).is_pending(),
            "read of an empty FIFO completed"
        );
        // The read is now blocked in read(2) on a pool thread.
        wait_in_read(&pool, only_fd(&fifo));
        drop(read);
    }
    drop(file);

    // While the read is blocked, the close must not run.
    for check in 0..25 {
        let fds = fds_to(&fifo);
        assert_eq!(
            fds.len(),
            1,
            "check {check}: the descriptor was closed while a read on it was still \
             running ({:?})",
            pool.stats()
        );
        assert_eq!(pool.stats().descriptors_held, 1);
        std::thread::sleep(Duration::from_millis(8));
    }

    // Release the read: now, and only now, the close runs.
    fifo_put(&fifo, b"z");
    wait_all_closed("the FIFO closed after its read returned", &pool, &dir);
    pool.shutdown(Duration::from_secs(10))
        .expect("pool goes quiet");
}

/// A marker of fixed width: kind letter and issue number.
fn marker(kind: char, seq: usize) -> Vec<u8> {
    format!("<{kind}{seq:07}>").into_bytes()
}
const MARKER_LEN: usize = 10;

#[test]
fn rule2_writes_land_in_issue_order_with_dropped_futures() {
    let (_guard, dir) = tempdir();
    let path = dir.join("ordered");
    // One thread, so a blocked thread makes "dropped before it started" certain.
    let pool = pool(1, 8);
    let mut file = block_on(pool.fs().options().write(true).create(true).open(&path)).unwrap();

    let mut seq = 0;
    let mut required = Vec::new(); // issue numbers whose write was awaited
    let mut forbidden = Vec::new(); // issue numbers dropped before they could start
    let mut next = |kind: char| {
        seq += 1;
        (seq, marker(kind, seq))
    };

    block_on(async {
        for round in 0..200 {
            match round % 5 {
                0 => {
                    // A awaited; B polled once and dropped; C awaited.
                    let (a, data) = next('A');
                    assert_eq!(file.write(&data).await.unwrap(), MARKER_LEN);
                    required.push(a);
                    let (_b, data) = next('B');
                    let mut write_b = Box::pin(file.write(&data));
                    let _ = poll_once(&mut write_b);
                    drop(write_b);
                    let (c, data) = next('C');
                    assert_eq!(file.write(&data).await.unwrap(), MARKER_LEN);
                    required.push(c);
                }
                1 => {
                    // B made but never polled: never issued.
                    let (a, data) = next('A');
                    file.write_all(&data).await.unwrap();
                    required.push(a);
                    let (b, data) = next('B');
                    drop(file.write(&data));
                    forbidden.push(b);
                    let (c, data) = next('C');
                    file.write_all(&data).await.unwrap();
                    required.push(c);
                }
                2 => {
                    // Several B's polled and dropped back to back, then C.
                    for _ in 0..3 {
                        let (_b, data) = next('B');
                        let mut write_b = Box::pin(file.write(&data));
                        // Polled again only while pending: a future that finished at
                        // its first poll (the pool thread was that quick; seen under
                        // Wine) must not be polled after it.
                        if poll_once(&mut write_b).is_pending() {
                            let _ = poll_once(&mut write_b);
                        }
                    }
                    let (c, data) = next('C');
                    file.write_all(&data).await.unwrap();
                    required.push(c);
                }
                3 => {
                    // The only pool thread is busy: B is certainly queued when it is
                    // dropped, and (as the docs say) skipped. C issued after it.
                    let (release, blocker) = occupy(&pool);
                    let (b, data) = next('B');
                    let mut write_b = Box::pin(file.write(&data));
                    assert!(poll_once(&mut write_b).is_pending());
                    drop(write_b);
                    forbidden.push(b);
                    let (c, data) = next('C');
                    let mut write_c = Box::pin(file.write(&data));
                    assert!(poll_once(&mut write_c).is_pending());
                    release.send(()).unwrap();
                    blocker.await;
                    assert_eq!(write_c.await.unwrap(), MARKER_LEN);
                    required.push(c);
                }
                _ => {
                    // A write_all of several markers, dropped after one poll, between
                    // two awaited writes.
                    let (a, data) = next('A');
                    file.write_all(&data).await.unwrap();
                    required.push(a);
                    let mut many = Vec::new();
                    for _ in 0..4 {
                        many.extend(next('B').1);
                    }
                    let mut write_b = Box::pin(file.write_all(&many));
                    let _ = poll_once(&mut write_b);
                    drop(write_b);
                    let (c, data) = next('C');
                    file.write_all(&data).await.unwrap();
                    required.push(c);
                }
            }
        }
    });
    block_on(file.close()).expect("close");

    let content = std::fs::read(&path).unwrap();
    assert_eq!(content.len() % MARKER_LEN, 0, "torn marker in the file");
    let mut last = 0;
    let mut present = std::collections::HashSet::new();
    for (i, chunk) in content.chunks(MARKER_LEN).enumerate() {
        let text = std::str::from_utf8(chunk).expect("marker is ASCII");
        assert!(
            text.starts_with('<') && text.ends_with('>'),
            "chunk {i} is not a marker: {text:?}"
        );
        let seq: usize = text[2..9].parse().expect("marker number");
        assert!(
            seq > last,
            "chunk {i}: {text} written after #{last}: operations ran out of issue order"
        );
        last = seq;
        present.insert(seq);
    }
    for seq in &required {
        assert!(present.contains(seq), "awaited write #{seq} is missing");
    }
    for seq in &forbidden {
        assert!(
            !present.contains(seq),
            "write #{seq} was dropped before it started but was written"
        );
    }
    wait_all_closed("ordered file closed", &pool, &dir);
}

/// Issue order is call order: the `&self` methods join the file's lane when they are
/// called, not when their future is first polled. Each pair below is called in one
/// order and awaited in the other; the lane must run them in call order.
#[test]
fn rule2_issue_order_is_call_order_not_first_poll_order() {
    let (_guard, dir) = tempdir();
    let pool = pool(4, 8);
    let path = dir.join("order");
    std::fs::write(&path, b"old").unwrap();
    block_on(async {
        let file = pool
            .fs()
            .options()
            .read(true)
            .write(true)
            .open(&path)
            .await?;
        let write = file.write_at(b"new", 0);
        let mut buf = [0u8; 3];
        let read = file.read_at(&mut buf, 0);
        let n = read.await?;
        assert_eq!(write.await?, 3);
        assert_eq!(
            &buf[..n],
            b"new",
            "the read ran before the write called first"
        );

        // The shape of the issue: a write, then an fsync awaited first.
        let write = file.write_at(b"0123456789", 0);
        let sync = file.sync_data();
        let stat = file.metadata();
        sync.await?;
        assert_eq!(stat.await?.len(), 10, "the stat ran before the write");
        write.await?;

        let truncate = file.set_len(4);
        let stat = file.metadata();
        assert_eq!(stat.await?.len(), 4, "the stat ran before the truncate");
        truncate.await?;
        file.close().await
    })
    .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"0123");
}

/// What a `&self` method's future dropped before its job started means: the job is
/// skipped. One pool thread, kept busy, makes "before it started" certain: the
/// dropped write never lands, the awaited one called after it does.
#[test]
fn rule2_a_write_at_dropped_before_it_started_never_happens() {
    let (_guard, dir) = tempdir();
    let pool = pool(1, 8);
    let path = dir.join("skipped");
    let file = block_on(pool.fs().options().write(true).create(true).open(&path)).unwrap();
    let (release, blocker) = occupy(&pool);
    let dropped = file.write_at(b"dropped", 0);
    let kept = file.write_at(b"kept", 10);
    drop(dropped);
    release.send(()).unwrap();
    block_on(blocker);
    assert_eq!(block_on(kept).unwrap(), 4);
    block_on(file.close()).unwrap();
    let mut want = vec![0u8; 10];
    want.extend_from_slice(b"kept");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        want,
        "the dropped write happened"
    );
}

// ---------------------------------------------------------------------------------
// Rule 3: the budget
// ---------------------------------------------------------------------------------

#[test]
fn rule3_budget_caps_descriptors_under_load() {
    const FILES: usize = 200;
    const BUDGET: usize = 4;
    let (_guard, dir) = tempdir();
    for i in 0..FILES {
        std::fs::write(dir.join(format!("f{i}")), format!("file number {i}")).unwrap();
    }
    let pool = pool(16, BUDGET);

    let stop = Arc::new(AtomicBool::new(false));
    let sampled_max = Arc::new(AtomicUsize::new(0));
    let held_max = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let stop = stop.clone();
        let sampled_max = sampled_max.clone();
        let held_max = held_max.clone();
        let dir = dir.clone();
        let pool = pool.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                // Windows lists no handles by path; its probe (an open that shares
                // nothing) would make the crate's concurrent opens fail.
                #[cfg(unix)]
                sampled_max.fetch_max(fds_under(&dir).len(), Ordering::SeqCst);
                #[cfg(windows)]
                let _ = (&sampled_max, &dir);
                held_max.fetch_max(pool.stats().descriptors_held, Ordering::SeqCst);
                std::thread::yield_now();
            }
        })
    };

    let live = Arc::new(AtomicUsize::new(0));
    let live_max = Arc::new(AtomicUsize::new(0));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    rt.block_on(async {
        let mut handles = Vec::new();
        for i in 0..FILES {
            let pool = pool.clone();
            let path = dir.join(format!("f{i}"));
            let live = live.clone();
            let live_max = live_max.clone();
            handles.push(tokio::spawn(async move {
                let mut file = pool.fs().open(&path).await?;
                let now = live.fetch_add(1, Ordering::SeqCst) + 1;
                live_max.fetch_max(now, Ordering::SeqCst);
                let mut buf = [0u8; 64];
                let n = file.read(&mut buf).await?;
                assert_eq!(&buf[..n], format!("file number {i}").as_bytes());
                tokio::task::yield_now().await;
                let _ = file.metadata().await?;
                live.fetch_sub(1, Ordering::SeqCst);
                if i % 2 == 0 {
                    file.close().await
                } else {
                    drop(file);
                    Ok(())
                }
            }));
        }
        for (i, handle) in handles.into_iter().enumerate() {
            handle
                .await
                .expect("task panicked")
                .unwrap_or_else(|err| panic!("file {i}: {err}"));
        }
    });
    wait_all_closed("all 200 files closed", &pool, &dir);
    stop.store(true, Ordering::SeqCst);
    sampler.join().unwrap();

    let sampled = sampled_max.load(Ordering::SeqCst);
    assert!(
        sampled <= BUDGET,
        "saw {sampled} descriptors into the test dir at once; budget {BUDGET}"
    );
    let live = live_max.load(Ordering::SeqCst);
    assert!(live <= BUDGET, "{live} files open at once; budget {BUDGET}");
    assert!(held_max.load(Ordering::SeqCst) <= BUDGET);
    assert_eq!(pool.budget().available(), BUDGET);
    pool.shutdown(Duration::from_secs(10))
        .expect("pool goes quiet");
}

#[cfg(target_os = "linux")]
#[test]
fn rule3_remove_dir_all_stays_within_the_budget() {
    // remove_dir_all holds descriptors while it walks the tree; with a budget of 4
    // the crate must never hold more than 4 into the test directory.
    const BUDGET: usize = 4;
    const DEPTH: usize = 40;
    let (_guard, dir) = tempdir();
    let mut deep = dir.join("tree");
    for level in 0..DEPTH {
        deep = deep.join(format!("d{level}"));
    }
    std::fs::create_dir_all(&deep).unwrap();
    for i in 0..4000 {
        std::fs::write(deep.join(format!("f{i}")), b"").unwrap();
    }
    let pool = pool(4, BUDGET);
    let stop = Arc::new(AtomicBool::new(false));
    let sampled_max = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (stop, sampled_max, dir) = (stop.clone(), sampled_max.clone(), dir.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                sampled_max.fetch_max(fds_under(&dir).len(), Ordering::SeqCst);
            }
        })
    };
    block_on(pool.fs().remove_dir_all(dir.join("tree"))).expect("remove_dir_all");
    stop.store(true, Ordering::SeqCst);
    sampler.join().unwrap();
    assert!(!dir.join("tree").exists());
    let max = sampled_max.load(Ordering::SeqCst);
    assert!(
        max <= BUDGET,
        "remove_dir_all held {max} descriptors into the test dir at once; budget {BUDGET}"
    );
}

#[test]
fn rule3_permit_returns_only_after_close() {
    let (_guard, dir) = tempdir();
    let path_a = dir.join("a");
    let path_b = dir.join("b");
    std::fs::write(&path_a, b"a").unwrap();
    std::fs::write(&path_b, b"b").unwrap();
    let pool = pool(4, 1);

    for round in 0..20 {
        let file_a = block_on(pool.fs().open(&path_a)).unwrap();
        assert_eq!(fds_to(&path_a).len(), 1);
        let mut open_b = pool.fs().open(&path_b);
        assert!(
            poll_once(&mut open_b).is_pending(),
            "round {round}: B opened while A held the only permit"
        );
        assert_eq!(pool.stats().permit_waiters, 1);
        assert!(fds_to(&path_b).is_empty());

        let watched = path_a.clone();
        let b = spawn_block_on(async move {
            let file_b = open_b.await;
            // Checked the moment B's open completes.
            (file_b, fds_to(&watched))
        });
        drop(file_a);
        let (file_b, a_fds) = b.wait("open of B after A was dropped", DEADLINE);
        let file_b = file_b.expect("open B");
        assert!(
            a_fds.is_empty(),
            "round {round}: B got its permit while A's descriptor was still open: {a_fds:?}"
        );
        drop(file_b);
        wait_all_closed("B closed", &pool, &dir);
    }
}

#[test]
fn rule3_cancelled_waiter_passes_its_wakeup_on() {
    let (_guard, dir) = tempdir();
    for name in ["a", "b", "c"] {
        std::fs::write(dir.join(name), name).unwrap();
    }
    let pool = pool(4, 1);
    for round in 0..20 {
        let file_a = block_on(pool.fs().open(dir.join("a"))).unwrap();
        let mut first = pool.fs().open(dir.join("b"));
        assert!(poll_once(&mut first).is_pending());
        let second = spawn_block_on(pool.fs().open(dir.join("c")));
        wait_for("two permit waiters", || {
            let stats = pool.stats();
            if stats.permit_waiters == 2 {
                Ok(())
            } else {
                Err(format!("{stats:?}"))
            }
        });
        drop(file_a);
        // The permit is released (and the first waiter notified); the first waiter
        // gives up without taking it.
        wait_for("A's permit back", || {
            if pool.budget().available() == 1 || pool.stats().permit_waiters < 2 {
                Ok(())
            } else {
                Err(format!("{:?}", pool.stats()))
            }
        });
        drop(first);
        let file_c = second
            .wait(
                &format!("round {round}: second waiter after the first was cancelled"),
                DEADLINE,
            )
            .expect("open c");
        drop(file_c);
        wait_all_closed("c closed", &pool, &dir);
    }
}

#[test]
fn rule3_two_releases_wake_two_waiters() {
    // Two permits freed back to back wake two waiters, even while the first waiter
    // has been notified but has not run yet (here: it is never polled until later).
    let (_guard, dir) = tempdir();
    for name in ["a", "b", "c", "d"] {
        std::fs::write(dir.join(name), name).unwrap();
    }
    let pool = pool(4, 2);
    for round in 0..10 {
        let file_a = block_on(pool.fs().open(dir.join("a"))).unwrap();
        let file_b = block_on(pool.fs().open(dir.join("b"))).unwrap();
        let mut slow = pool.fs().open(dir.join("c"));
        assert!(poll_once(&mut slow).is_pending());
        let quick = spawn_block_on(pool.fs().open(dir.join("d")));
        wait_for("two permit waiters", || {
            let stats = pool.stats();
            if stats.permit_waiters == 2 {
                Ok(())
            } else {
                Err(format!("{stats:?}"))
            }
        });
        drop(file_a);
        drop(file_b);
        let file_d = quick
            .wait(
                &format!("round {round}: second waiter after two releases"),
                Duration::from_secs(10),
            )
            .expect("open d");
        let file_c = spawn_block_on(slow)
            .wait("first waiter", DEADLINE)
            .expect("open c");
        drop((file_c, file_d));
        wait_all_closed("all closed", &pool, &dir);
    }
}

#[test]
fn rule3_multi_unit_waiter_keeps_freed_units_until_it_is_served() {
    // Budget 2, both units held by A and B. `copy` (which takes two units) waits
    // first, then an open of C (one unit). A is closed: one unit is free, and it is
    // the copy's (the head of the queue keeps what comes free until it has all it
    // needs), so C, which came later, does not take it: steady single-unit traffic
    // cannot starve a copy. B is closed: the copy runs, then C gets a unit.
    let (_guard, dir) = tempdir();
    for name in ["a", "b", "c", "src"] {
        std::fs::write(dir.join(name), name).unwrap();
    }
    let pool = pool(4, 2);
    let file_a = block_on(pool.fs().open(dir.join("a"))).unwrap();
    let file_b = block_on(pool.fs().open(dir.join("b"))).unwrap();
    // Both waiters run on real executors (each on its own thread), so a woken
    // waiter is polled at once.
    let copy = spawn_block_on(pool.fs().copy(dir.join("src"), dir.join("dst")));
    wait_for("copy waiting", || {
        let stats = pool.stats();
        if stats.permit_waiters == 1 {
            Ok(())
        } else {
            Err(format!("{stats:?}"))
        }
    });
    let open_c = spawn_block_on(pool.fs().open(dir.join("c")));
    wait_for("two permit waiters", || {
        let stats = pool.stats();
        if stats.permit_waiters == 2 {
            Ok(())
        } else {
            Err(format!("{stats:?}"))
        }
    });
    drop(file_a);
    // The close runs on the pool; once its unit is back, it stays free for the copy.
    wait_for("A's unit back", || match pool.budget().available() {
        1 => Ok(()),
        n => Err(format!("available {n}, {:?}", pool.stats())),
    });
    assert_eq!(
        pool.stats().permit_waiters,
        2,
        "C took the unit the copy queued for first: {:?}",
        pool.stats()
    );
    drop(file_b);
    let copied = copy.wait("copy", DEADLINE).expect("copy");
    assert_eq!(copied, 3);
    drop(open_c.wait("C after the copy", DEADLINE).expect("open c"));
    wait_all_closed("all closed", &pool, &dir);
}

// ---------------------------------------------------------------------------------
// Rule 4: never block the caller
// ---------------------------------------------------------------------------------

#[cfg(unix)]
#[test]
fn rule4_dropping_a_file_with_a_blocked_read_returns_at_once() {
    let (_guard, dir) = tempdir();
    let fifo = dir.join("fifo");
    mkfifo(&fifo);
    let pool = pool(4, 16);
    for round in 0..5 {
        let mut file = block_on(pool.fs().options().read(true).write(true).open(&fifo)).unwrap();
        let mut buf = [0u8; 8];
        {
            let mut read = Box::pin(file.read(&mut buf));
            assert!(poll_once(&mut read).is_pending());
            wait_in_read(&pool, only_fd(&fifo));
            drop(read);
        }
        let start = Instant::now();
        drop(file);
        let took = start.elapsed();
        assert!(
            took < Duration::from_millis(50),
            "round {round}: dropping the File took {took:?}"
        );
        assert_eq!(
            fds_to(&fifo).len(),
            1,
            "round {round}: the close ran on the caller's thread (or before the read)"
        );
        fifo_put(&fifo, b"!");
        wait_all_closed("FIFO closed on the pool", &pool, &dir);
    }
}

#[test]
fn rule4_drops_queue_their_close_on_the_pool() {
    // With the only pool thread busy, a close that ran inline would show at once as
    // a missing descriptor; queued on the pool, it waits for the thread.
    let (_guard, dir) = tempdir();
    let sub = dir.join("sub");
    std::fs::create_dir(&sub).unwrap();
    // More entries than the listing reads ahead, so the stream is still open when
    // it is dropped (under Wine, a find handle that listed its last entry closes).
    for i in 0..(4 * aopen::fs::READ_DIR_BATCH) {
        std::fs::write(sub.join(format!("e{i}")), b"").unwrap();
    }
    let file_path = dir.join("file");
    std::fs::write(&file_path, b"data").unwrap();
    let pool = pool(1, 16);

    let file = block_on(pool.fs().open(&file_path)).unwrap();
    let mut read_dir = block_on(pool.fs().read_dir(&sub)).unwrap();
    assert!(block_on(read_dir.next_entry()).unwrap().is_some());
    assert_eq!(fds_to(&file_path).len(), 1);
    assert_eq!(fds_to(&sub).len(), 1);

    let (release, blocker) = occupy(&pool);
    let start = Instant::now();
    drop(file);
    drop(read_dir);
    let took = start.elapsed();
    assert!(took < Duration::from_millis(50), "drops took {took:?}");
    assert_eq!(
        fds_to(&file_path).len(),
        1,
        "File's close ran on the caller's thread"
    );
    assert_eq!(
        fds_to(&sub).len(),
        1,
        "ReadDir's close ran on the caller's thread"
    );
    release.send(()).unwrap();
    block_on(blocker);
    wait_all_closed("closes ran on the pool", &pool, &dir);
}

#[cfg(unix)]
#[test]
fn rule4_dropping_a_blocked_open_returns_at_once() {
    let (_guard, dir) = tempdir();
    let fifo = dir.join("fifo");
    mkfifo(&fifo);
    let pool = pool(4, 16);
    let mut open = pool.fs().open(&fifo);
    assert!(poll_once(&mut open).is_pending());
    wait_busy(&pool, 1);
    let start = Instant::now();
    drop(open);
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(50),
        "dropping a blocked open took {took:?}"
    );
    let writer = fifo_rdwr(&fifo);
    wait_quiet(&pool);
    drop(writer);
    wait_all_closed("late open closed", &pool, &dir);
}

// ---------------------------------------------------------------------------------
// Rule 5: no write-behind
// ---------------------------------------------------------------------------------

#[test]
fn rule5_written_bytes_are_visible_at_once_and_survive_drop() {
    let (_guard, dir) = tempdir();
    let pool = pool(4, 16);
    for round in 0..10 {
        let path = dir.join(format!("w{round}"));
        let mut expected = Vec::new();
        block_on(async {
            let mut file = pool
                .fs()
                .options()
                .write(true)
                .create_new(true)
                .open(&path)
                .await?;
            for i in 0..20 {
                let chunk = format!("[round {round} write {i}]").repeat(i + 1);
                let n = file.write(chunk.as_bytes()).await?;
                assert!(n > 0);
                expected.extend_from_slice(&chunk.as_bytes()[..n]);
                // Before any close: the bytes are already in the file.
                let now = std::fs::read(&path)?;
                assert_eq!(
                    now, expected,
                    "write returned Ok({n}) but the bytes are not there"
                );
            }
            let tail = vec![b'#'; 3 * 1024 * 1024 + 17];
            file.write_all(&tail).await?;
            expected.extend_from_slice(&tail);
            assert_eq!(std::fs::read(&path)?.len(), expected.len());
            // Dropped, not closed.
            drop(file);
            Ok::<_, io::Error>(())
        })
        .unwrap();
        pool.shutdown(Duration::from_secs(10))
            .expect("pool goes quiet");
        assert_eq!(std::fs::read(&path).unwrap(), expected);
    }
    assert!(fds_under(&dir).is_empty());
}

// ---------------------------------------------------------------------------------
// Rule 6: memory safety across cancellation
// ---------------------------------------------------------------------------------

#[cfg(unix)]
#[test]
fn rule6_dropped_read_never_writes_into_the_callers_buffer() {
    let (_guard, dir) = tempdir();
    let fifo = dir.join("fifo");
    mkfifo(&fifo);
    let pool = pool(2, 8);
    let mut file = block_on(pool.fs().options().read(true).write(true).open(&fifo)).unwrap();
    for case in 0..40usize {
        let size = 1 + (case * 997) % 4096;
        let mut buf = vec![0u8; size];
        {
            let mut read = Box::pin(file.read(&mut buf));
            assert!(
                poll_once(&mut read).is_pending(),
                "case {case}: FIFO had data"
            );
            // The read is blocked in read(2) on the pool.
            wait_in_read(&pool, only_fd(&fifo));
            drop(read);
        }
        buf.fill(0xAB);
        // Let the abandoned read complete with data that differs from the canary.
        fifo_put(&fifo, &vec![0x11; size]);
        // Operations are ordered: once this returns, the read has finished.
        block_on(file.metadata()).unwrap();
        assert!(
            buf.iter().all(|&b| b == 0xAB),
            "case {case}: the pool wrote into the caller's buffer after its future was dropped"
        );
        // Freeing the buffer now must be fine too (nothing else refers to it).
        drop(buf);
    }
    block_on(file.close()).unwrap();
    wait_all_closed("FIFO closed", &pool, &dir);
}

// ---------------------------------------------------------------------------------
// Rule 7: bad input gets a clear error
// ---------------------------------------------------------------------------------

fn path_error(err: &io::Error) -> &PathError {
    err.get_ref()
        .and_then(|inner| inner.downcast_ref::<PathError>())
        .unwrap_or_else(|| panic!("error does not carry a PathError: {err:?}"))
}

#[test]
fn rule7_nul_in_path_is_invalid_input_naming_the_path() {
    let (_guard, dir) = tempdir();
    let pool = pool(2, 8);
    let bad = dir.join("bad\0name");
    // The directory as the message quotes it (Rust's escapes: doubled backslashes on
    // Windows), without the closing quote: the path goes on after it.
    let quoted = format!("{:?}", dir.display().to_string());
    let dir_text = quoted.trim_end_matches('"');
    let errors = [
        ("open", block_on(pool.fs().open(&bad)).map(drop)),
        ("metadata", block_on(pool.fs().metadata(&bad)).map(drop)),
        ("read_dir", block_on(pool.fs().read_dir(&bad)).map(drop)),
        ("write", block_on(pool.fs().write(&bad, b"x")).map(drop)),
    ];
    for (what, result) in errors {
        let err = result.expect_err(what);
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{what}: {err}");
        let msg = err.to_string();
        assert!(
            msg.contains(dir_text) && msg.contains("bad"),
            "{what}: {msg}"
        );
        assert_eq!(path_error(&err).path(), bad.as_path(), "{what}");
    }
    let batch = block_on(pool.fs().metadata_batch(vec![bad.clone()])).unwrap();
    assert_eq!(
        batch[0].as_ref().unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    wait_all_closed("nothing held", &pool, &dir);
}

#[test]
fn rule7_missing_file_and_directory_for_writing() {
    let (_guard, dir) = tempdir();
    let pool = pool(2, 8);
    let missing = dir.join("no-such-file");
    let err = block_on(pool.fs().open(&missing)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert!(
        err.to_string()
            .contains(&format!("{:?}", missing.display().to_string())),
        "{err}"
    );
    assert_eq!(os_error(&err), Some(libc::ENOENT));

    let err = block_on(pool.fs().options().write(true).open(&dir)).unwrap_err();
    #[cfg(unix)]
    assert_eq!(err.kind(), io::ErrorKind::IsADirectory, "{err}");
    assert!(
        err.to_string()
            .contains(&format!("{:?}", dir.display().to_string())),
        "{err}"
    );
    #[cfg(unix)]
    assert_eq!(os_error(&err), Some(libc::EISDIR));
    // Windows refuses to open a directory as a file: ERROR_ACCESS_DENIED.
    #[cfg(windows)]
    assert_eq!(os_error(&err), Some(5), "{err}");
    wait_all_closed("nothing held", &pool, &dir);
}

#[cfg(unix)]
#[test]
fn rule7_unreadable_directory() {
    let (_guard, dir) = tempdir();
    let pool = pool(2, 8);
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        use std::os::unix::fs::PermissionsExt;
        let locked = dir.join("locked");
        std::fs::create_dir(&locked).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
        let err = block_on(pool.fs().read_dir(&locked)).unwrap_err();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
        assert!(err.to_string().contains(locked.to_str().unwrap()), "{err}");
    }
    // Root bypasses permissions: a regular file is the unreadable "directory".
    let file = dir.join("plain");
    std::fs::write(&file, b"x").unwrap();
    let err = block_on(pool.fs().read_dir(&file)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotADirectory, "{err}");
    assert!(err.to_string().contains(file.to_str().unwrap()), "{err}");
    assert_eq!(os_error(&err), Some(libc::ENOTDIR));
    wait_all_closed("nothing held after failed read_dir", &pool, &dir);
}

#[test]
fn rule7_zero_threads_or_budget_is_invalid_input() {
    for builder in [
        Pool::builder().max_threads(0),
        Pool::builder().descriptor_budget(0),
    ] {
        let err = builder.build().expect_err("zero setting accepted");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(!err.to_string().is_empty());
    }
}

#[cfg(unix)]
const EMFILE_CHILD_ENV: &str = "AOPEN_FS_RULES_EMFILE_CHILD";
#[cfg(unix)]
const EMFILE_CHILD_DONE: &str = "EMFILE-CHILD-DONE";

#[cfg(unix)]
#[test]
fn rule7_emfile_from_the_os_despite_the_budget() {
    let output = rerun_test("rule7_emfile_child")
        .env(EMFILE_CHILD_ENV, "1")
        .output()
        .expect("re-run this test binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains(EMFILE_CHILD_DONE),
        "child failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
}

#[cfg(unix)]
fn all_fds() -> Vec<i32> {
    let listing = std::fs::read_dir("/proc/self/fd").unwrap();
    let mut fds: Vec<i32> = listing
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
        .collect();
    fds.sort();
    // One of them is the listing's own descriptor, closed by now.
    fds.retain(|fd| std::fs::read_link(format!("/proc/self/fd/{fd}")).is_ok());
    fds
}

#[cfg(unix)]
/// The child of [`rule7_emfile_from_the_os_despite_the_budget`]; does nothing unless
/// run by it.
#[test]
fn rule7_emfile_child() {
    if std::env::var_os(EMFILE_CHILD_ENV).is_none() {
        return;
    }
    let (_guard, dir) = tempdir();
    for i in 0..64 {
        std::fs::write(dir.join(format!("f{i}")), b"x").unwrap();
    }
    let pool = pool(4, 1000);
    // Start the pool's threads before the limit goes down.
    block_on(pool.fs().metadata(&dir)).unwrap();
    let baseline = all_fds();
    // The lowest limit that leaves exactly 5 free descriptor numbers below it
    // (inherited descriptors can sit high, with holes below them).
    let mut limit = 0i32;
    while limit - (baseline.iter().filter(|&&fd| fd < limit).count() as i32) < 5 {
        limit += 1;
    }

    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `old` is a valid, writable rlimit.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut old) }, 0);
    let low = libc::rlimit {
        rlim_cur: limit as libc::rlim_t,
        rlim_max: old.rlim_max,
    };
    // SAFETY: `low` is a valid rlimit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &low) }, 0);

    let mut files = Vec::new();
    let mut failure = None;
    for i in 0..64 {
        let path = dir.join(format!("f{i}"));
        match block_on(pool.fs().open(&path)) {
            Ok(file) => files.push(file),
            Err(err) => {
                failure = Some((path, err));
                break;
            }
        }
    }
    let opened = files.len();
    drop(files);
    pool.shutdown(Duration::from_secs(10))
        .expect("pool goes quiet");
    // SAFETY: `old` is the valid rlimit read above.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &old) }, 0);

    let (path, err) = failure.expect("no EMFILE although the limit was lowered");
    assert!(
        (1..=6).contains(&opened),
        "opened {opened} files under the lowered limit"
    );
    assert_eq!(os_error(&err), Some(libc::EMFILE), "{err:?}");
    assert_eq!(
        err.kind(),
        io::Error::from_raw_os_error(libc::EMFILE).kind()
    );
    let msg = err.to_string();
    assert!(msg.contains("descriptor"), "no hint in {msg:?}");
    assert!(
        msg.contains(path.to_str().unwrap()),
        "path not named in {msg:?}"
    );
    assert_eq!(pool.budget().available(), pool.budget().capacity());
    assert_eq!(pool.stats().descriptors_held, 0);
    assert_eq!(all_fds(), baseline, "descriptors leaked");
    println!("{EMFILE_CHILD_DONE}");
}

// ---------------------------------------------------------------------------------
// close() and the scoped form
// ---------------------------------------------------------------------------------

#[test]
fn close_reports_ok_and_releases_at_once() {
    let (_guard, dir) = tempdir();
    let pool = pool(2, 4);
    let path = dir.join("f");
    let file = block_on(pool.fs().options().write(true).create(true).open(&path)).unwrap();
    assert_eq!(fds_to(&path).len(), 1);
    block_on(file.close()).expect("close of a normal file");
    assert!(
        fds_to(&path).is_empty(),
        "close returned before the descriptor was closed"
    );
    assert_eq!(
        pool.budget().available(),
        4,
        "close returned before the permit"
    );
}

#[test]
fn scoped_closes_the_file_and_returns_the_body_error() {
    let (_guard, dir) = tempdir();
    let pool = pool(2, 4);
    let path = dir.join("scoped");
    block_on(
        OpenOptions::new()
            .pool(&pool)
            .write(true)
            .create(true)
            .scoped(&path, |f| Box::pin(async move { f.write_all(b"x").await })),
    )
    .expect("scoped write");
    assert!(
        fds_to(&path).is_empty(),
        "scoped returned with the file open"
    );
    assert_eq!(pool.budget().available(), 4);
    assert_eq!(std::fs::read(&path).unwrap(), b"x");

    let err = block_on(
        OpenOptions::new()
            .pool(&pool)
            .write(true)
            .scoped(&path, |f| {
                Box::pin(async move {
                    f.write_all(b"y").await?;
                    Err::<(), _>(io::Error::other("body"))
                })
            }),
    )
    .expect_err("body error");
    assert_eq!(err.kind(), io::ErrorKind::Other);
    assert_eq!(err.to_string(), "body");
    assert!(
        fds_to(&path).is_empty(),
        "scoped returned with the file open"
    );
    assert_eq!(pool.budget().available(), 4);

    // An open error comes back as such.
    let err = block_on(
        OpenOptions::new()
            .pool(&pool)
            .read(true)
            .scoped(dir.join("missing"), |_f| Box::pin(async move { Ok(()) })),
    )
    .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
}

const BAD_ENV_CHILD_ENV: &str = "AOPEN_FS_RULES_BAD_ENV_CHILD";

#[test]
fn rule7_bad_environment_value_is_a_clear_error() {
    for (var, value) in [
        ("AOPEN_DESCRIPTOR_BUDGET", "0"),
        ("AOPEN_MAX_THREADS", "0"),
        ("AOPEN_MAX_THREADS", "many"),
    ] {
        let output = rerun_test("rule7_bad_environment_child")
            .env(BAD_ENV_CHILD_ENV, var)
            .env(var, value)
            .output()
            .expect("re-run this test binary");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("BAD-ENV-CHILD-DONE"),
            "{var}={value}: child failed ({:?})\nstdout:\n{stdout}\nstderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// The child of [`rule7_bad_environment_value_is_a_clear_error`]: the global pool
/// cannot be built, and the file system functions say why instead of panicking.
#[test]
fn rule7_bad_environment_child() {
    let Some(var) = std::env::var_os(BAD_ENV_CHILD_ENV) else {
        return;
    };
    let var = var.into_string().unwrap();
    let (_guard, dir) = tempdir();
    let err = block_on(aopen::fs::metadata(&dir)).expect_err("bad environment accepted");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains(&var), "{var} not named in {err}");
    let err = block_on(aopen::File::open(&dir)).expect_err("bad environment accepted");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert!(Pool::try_global().is_err());
    println!("BAD-ENV-CHILD-DONE");
}
