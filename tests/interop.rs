//! The interop features (`futures-io`, `tokio`) under every executor.
//!
//! Each scenario is one `async fn`; [`on_every_executor!`] turns it into a module with
//! one test per executor: tokio's current-thread and multi-thread runtimes (the
//! scenario is spawned, so it runs on a worker and must be `Send`), `smol::block_on`,
//! `futures::executor::block_on` and `pollster::block_on`. Run with
//! `cargo test --all-features --test interop`.
//!
//! `File`'s inherent methods (`read`, `seek`, `close`, ...) win method calls over the
//! traits', so the traits' methods are called by path here (`FRead::read(&mut file,
//! ..)`), or the file is handed to generic code (`copy`, `BufReader`).
//!
//! Scenarios that need an operation to be in flight at a known point use a private
//! pool of one thread and occupy that thread (`common::occupy`): the job then waits in
//! the queue, so the first poll is `Pending` for sure, and releasing the thread lets it
//! run. Nothing sleeps to synchronise.
#![cfg(all(feature = "futures-io", feature = "tokio"))]

#[path = "support/common.rs"]
mod common;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::future::Future;
use std::io::{ErrorKind, SeekFrom};
use std::path::{Path, PathBuf};
use std::task::Poll;
use std::time::Duration;

use aopen::fs::OpenOptions;
use aopen::{File, Pool};
#[cfg(target_os = "linux")]
use common::{fault_shim, rerun_test};
use common::{fds_to, occupy, pool, tempdir};
use futures::io::{AsyncReadExt as FRead, AsyncSeekExt as FSeek, AsyncWriteExt as FWrite};
use futures::stream::FusedStream;
use futures::{StreamExt, TryStreamExt};
use tokio::io::{AsyncReadExt as TRead, AsyncSeekExt as TSeek, AsyncWriteExt as TWrite};

// ---------------------------------------------------------------------------------
// executors
// ---------------------------------------------------------------------------------

/// One test per executor for each scenario named.
macro_rules! on_every_executor {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[test]
            fn tokio_current_thread() {
                super::on_tokio_current_thread(super::$scenario());
            }

            #[test]
            fn tokio_multi_thread() {
                super::on_tokio_multi_thread(super::$scenario());
            }

            #[test]
            fn smol_block_on() {
                smol::block_on(super::$scenario());
            }

            #[test]
            fn futures_block_on() {
                futures::executor::block_on(super::$scenario());
            }

            #[test]
            fn pollster_block_on() {
                pollster::block_on(super::$scenario());
            }
        }
    )*};
}

fn on_tokio_current_thread(scenario: impl Future<Output = ()>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(scenario);
}

fn on_tokio_multi_thread(scenario: impl Future<Output = ()> + Send + 'static) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("a multi-thread runtime");
    runtime.block_on(async {
        if let Err(err) = tokio::spawn(scenario).await {
            std::panic::resume_unwind(err.into_panic());
        }
    });
}

on_every_executor!(
    futures_copy_file_to_vec,
    futures_copy_slice_to_file,
    tokio_copy_both_ways,
    futures_bufreader_lines,
    tokio_bufreader_lines,
    seek_then_read,
    close_then_every_operation_fails,
    leftover_is_served_first_and_seeks_count_it,
    write_at_and_set_len_make_kept_bytes_stale,
    dropped_read_future_loses_nothing,
    dropped_write_future_still_writes,
    write_ok_means_written,
    repolled_write_is_not_written_twice,
    dropped_file_with_read_in_flight_closes_after_it,
    read_dir_stream_matches_std,
    vectored_writes_take_every_slice_in_one_trip,
);

// ---------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------

/// `len` bytes of a pattern that repeats only every 251 bytes (a prime, so a chunk
/// boundary never lines up with it).
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A file `name` in `dir` with `contents`, written with std.
fn file_with(dir: &Path, name: &str, contents: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write the test file");
    path
}

/// Opens `path` for reading and writing on `pool`.
async fn open_rw(pool: &Pool, path: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .pool(pool)
        .open(path)
        .await
        .expect("open read-write")
}

/// Polls `future` once; it must be `Pending` (its job waits behind an occupied pool
/// thread), and is dropped after.
async fn poll_once_pending<F: Future + Unpin>(mut future: F) {
    assert!(
        futures::poll!(&mut future).is_pending(),
        "the pool's only thread is occupied, so the job cannot have run"
    );
}

/// Starts a futures-io read of `big` bytes while the pool's only thread is busy, gives
/// the read up after its first (`Pending`) poll, lets the pool go on, then reads with a
/// `small` buffer: the job of the given-up read brings `big` bytes, `small` of them
/// are returned and the rest is kept in the file. Returns the `small` bytes.
async fn leave_leftover(file: &mut File, pool: &Pool, big: usize, small: usize) -> Vec<u8> {
    let (release, blocker) = occupy(pool);
    let mut big_buf = vec![0; big];
    poll_once_pending(FRead::read(file, &mut big_buf)).await;
    release.send(()).expect("release the pool thread");
    blocker.await;
    let mut small_buf = vec![0; small];
    let n = FRead::read(file, &mut small_buf)
        .await
        .expect("read the small buffer");
    assert_eq!(
        n, small,
        "the job read {big} bytes; a {small}-byte buffer is filled"
    );
    small_buf
}

/// Asserts `err` is the error of an operation on a file closed by `poll_close`.
fn assert_closed_error(err: std::io::Error, path: &Path, what: &str) {
    assert_eq!(err.kind(), ErrorKind::Other, "{what}: {err}");
    let message = err.to_string();
    assert!(message.contains("closed"), "{what}: {message}");
    // Paths are quoted with Rust's escapes (`C:\\dir` on Windows).
    assert!(
        message.contains(&format!("{:?}", path.display().to_string())),
        "{what}: the message names the path: {message}"
    );
}

// ---------------------------------------------------------------------------------
// copy, lines, seek
// ---------------------------------------------------------------------------------

async fn futures_copy_file_to_vec() {
    let (_guard, dir) = tempdir();
    let data = pattern(200_003);
    let path = file_with(&dir, "source.bin", &data);
    let mut file = File::open(&path).await.expect("open");
    let mut out = Vec::new();
    let copied = futures::io::copy(&mut file, &mut out).await.expect("copy");
    assert_eq!(copied, data.len() as u64);
    assert!(out == data, "the copy equals the file");
    file.close().await.expect("close");
}

async fn futures_copy_slice_to_file() {
    let (_guard, dir) = tempdir();
    let data = pattern(100_000);
    let path = dir.join("target.bin");
    let mut file = File::create(&path).await.expect("create");
    let copied = futures::io::copy(&data[..], &mut file).await.expect("copy");
    assert_eq!(copied, data.len() as u64);
    // No write-behind: every byte is in the file before the close.
    assert!(std::fs::read(&path).expect("read back") == data);
    FWrite::close(&mut file).await.expect("poll_close");
    assert!(
        fds_to(&path).is_empty(),
        "poll_close returned after close(2)"
    );
    assert!(std::fs::read(&path).expect("read back") == data);
}

async fn tokio_copy_both_ways() {
    let (_guard, dir) = tempdir();
    let data = pattern(150_001);
    let source = file_with(&dir, "source.bin", &data);
    let mut file = File::open(&source).await.expect("open");
    let mut out = Vec::new();
    let copied = tokio::io::copy(&mut file, &mut out)
        .await
        .expect("copy out");
    assert_eq!(copied, data.len() as u64);
    assert!(out == data, "the copy equals the file");
    TWrite::shutdown(&mut file).await.expect("poll_shutdown");
    assert!(
        fds_to(&source).is_empty(),
        "poll_shutdown returned after close(2)"
    );

    let target = dir.join("target.bin");
    let mut file = File::create(&target).await.expect("create");
    let copied = tokio::io::copy(&mut &data[..], &mut file)
        .await
        .expect("copy in");
    assert_eq!(copied, data.len() as u64);
    TWrite::shutdown(&mut file).await.expect("poll_shutdown");
    assert!(
        fds_to(&target).is_empty(),
        "poll_shutdown returned after close(2)"
    );
    assert!(std::fs::read(&target).expect("read back") == data);
}

/// The lines of the test text: 500 of them, of varied lengths.
fn lines() -> Vec<String> {
    (0..500)
        .map(|i| format!("line {i} {}", "x".repeat(i % 37)))
        .collect()
}

async fn futures_bufreader_lines() {
    let (_guard, dir) = tempdir();
    let expected = lines();
    let path = file_with(&dir, "lines.txt", (expected.join("\n") + "\n").as_bytes());
    let file = File::open(&path).await.expect("open");
    // A tiny buffer: many reads, lines split across them.
    let mut reader = futures::io::BufReader::with_capacity(7, file);
    let got: Vec<String> = futures::io::AsyncBufReadExt::lines(&mut reader)
        .try_collect()
        .await
        .expect("lines");
    assert_eq!(got, expected);
    FWrite::close(reader.get_mut()).await.expect("close");
}

async fn tokio_bufreader_lines() {
    let (_guard, dir) = tempdir();
    let expected = lines();
    let path = file_with(&dir, "lines.txt", (expected.join("\n") + "\n").as_bytes());
    let file = File::open(&path).await.expect("open");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::with_capacity(7, file));
    let mut got = Vec::new();
    while let Some(line) = lines.next_line().await.expect("next line") {
        got.push(line);
    }
    assert_eq!(got, expected);
    TWrite::shutdown(lines.get_mut().get_mut())
        .await
        .expect("shutdown");
}

async fn seek_then_read() {
    let (_guard, dir) = tempdir();
    let data = pattern(10_000);
    let path = file_with(&dir, "data.bin", &data);
    let mut file = File::open(&path).await.expect("open");
    let mut buf = [0u8; 10];

    // futures-io: poll_seek.
    assert_eq!(
        FSeek::seek(&mut file, SeekFrom::Start(100)).await.unwrap(),
        100
    );
    FRead::read_exact(&mut file, &mut buf).await.unwrap();
    assert_eq!(buf[..], data[100..110]);
    assert_eq!(
        FSeek::seek(&mut file, SeekFrom::Current(-5)).await.unwrap(),
        105
    );
    FRead::read_exact(&mut file, &mut buf[..5]).await.unwrap();
    assert_eq!(buf[..5], data[105..110]);

    // tokio: start_seek + poll_complete.
    assert_eq!(
        TSeek::seek(&mut file, SeekFrom::End(-3)).await.unwrap(),
        9_997
    );
    let mut tail = Vec::new();
    TRead::read_to_end(&mut file, &mut tail).await.unwrap();
    assert_eq!(tail[..], data[9_997..]);
    assert_eq!(TSeek::seek(&mut file, SeekFrom::Start(7)).await.unwrap(), 7);
    TRead::read_exact(&mut file, &mut buf).await.unwrap();
    assert_eq!(buf[..], data[7..17]);

    // The inherent methods see the same position.
    assert_eq!(file.seek(SeekFrom::Current(0)).await.unwrap(), 17);
    file.close().await.expect("close");
}

// ---------------------------------------------------------------------------------
// close
// ---------------------------------------------------------------------------------

async fn close_then_every_operation_fails() {
    let (_guard, dir) = tempdir();
    let pool = pool(2, 4);
    let path = dir.join("closed.txt");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .pool(&pool)
        .open(&path)
        .await
        .expect("open");
    FWrite::write_all(&mut file, b"abc").await.expect("write");
    FWrite::close(&mut file)
        .await
        .expect("poll_close reports close(2): Ok");
    // close(2) ran and the permit came back before poll_close returned.
    assert!(
        fds_to(&path).is_empty(),
        "descriptor still open after poll_close"
    );
    assert_eq!(pool.budget().available(), pool.budget().capacity());
    assert_eq!(std::fs::read(&path).unwrap(), b"abc");

    let mut buf = [0u8; 3];
    let err = FWrite::write(&mut file, b"more").await.unwrap_err();
    assert_closed_error(err, &path, "futures write");
    let err = FRead::read(&mut file, &mut buf).await.unwrap_err();
    assert_closed_error(err, &path, "futures read");
    let err = FSeek::seek(&mut file, SeekFrom::Start(0))
        .await
        .unwrap_err();
    assert_closed_error(err, &path, "futures seek");
    let err = FWrite::flush(&mut file).await.unwrap_err();
    assert_closed_error(err, &path, "futures flush");
    let err = TRead::read(&mut file, &mut buf).await.unwrap_err();
    assert_closed_error(err, &path, "tokio read");
    let err = TWrite::write(&mut file, b"more").await.unwrap_err();
    assert_closed_error(err, &path, "tokio write");
    let err = TSeek::seek(&mut file, SeekFrom::Start(0))
        .await
        .unwrap_err();
    assert_closed_error(err, &path, "tokio seek");
    // The inherent methods, `&mut self` and `&self` ones, too (no panic).
    let err = file.read(&mut buf).await.unwrap_err();
    assert_closed_error(err, &path, "inherent read");
    let err = file.write_all(b"more").await.unwrap_err();
    assert_closed_error(err, &path, "inherent write_all");
    let err = file.metadata().await.unwrap_err();
    assert_closed_error(err, &path, "inherent metadata");
    let err = file.read_to_end(&mut Vec::new()).await.unwrap_err();
    assert_closed_error(err, &path, "inherent read_to_end");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"abc",
        "nothing more was written"
    );

    // A second close, by either trait or the inherent method, is Ok.
    FWrite::close(&mut file).await.expect("second poll_close");
    TWrite::shutdown(&mut file)
        .await
        .expect("poll_shutdown after poll_close");
    file.close().await.expect("inherent close after poll_close");
    assert_eq!(pool.budget().available(), pool.budget().capacity());
    pool.shutdown(Duration::from_secs(30))
        .expect("pool shutdown");
}

// ---------------------------------------------------------------------------------
// leftover and cancellation
// ---------------------------------------------------------------------------------

async fn leftover_is_served_first_and_seeks_count_it() {
    let (_guard, dir) = tempdir();
    let pool = pool(1, 4);
    let data = pattern(1_000);
    let path = file_with(&dir, "data.bin", &data);
    let mut file = open_rw(&pool, &path).await;

    // 100 read, 10 returned, 90 kept: the caller is at 10.
    assert_eq!(leave_leftover(&mut file, &pool, 100, 10).await, data[..10]);
    assert_eq!(
        FSeek::seek(&mut file, SeekFrom::Current(0)).await.unwrap(),
        10
    );
    let mut buf = [0u8; 5];
    FRead::read_exact(&mut file, &mut buf).await.unwrap();
    assert_eq!(buf[..], data[10..15]);

    // Kept bytes come first for the inherent read too, and its seek counts them.
    assert_eq!(
        leave_leftover(&mut file, &pool, 100, 10).await,
        data[15..25]
    );
    let mut four = [0u8; 4];
    assert_eq!(file.read(&mut four).await.unwrap(), 4);
    assert_eq!(four[..], data[25..29]);
    assert_eq!(file.seek(SeekFrom::Current(0)).await.unwrap(), 29);

    // tokio's start_seek from Current counts them.
    assert_eq!(
        leave_leftover(&mut file, &pool, 100, 10).await,
        data[29..39]
    );
    assert_eq!(
        TSeek::seek(&mut file, SeekFrom::Current(3)).await.unwrap(),
        42
    );
    TRead::read_exact(&mut file, &mut buf).await.unwrap();
    assert_eq!(buf[..], data[42..47]);

    // A write lands at the caller's position, not after the kept bytes.
    assert_eq!(
        leave_leftover(&mut file, &pool, 100, 10).await,
        data[47..57]
    );
    FWrite::write_all(&mut file, b"XYZ").await.unwrap();
    let mut after = [0u8; 3];
    FRead::read_exact(&mut file, &mut after).await.unwrap();
    assert_eq!(after[..], data[60..63]);
    // The inherent write and read_to_end, too.
    assert_eq!(
        leave_leftover(&mut file, &pool, 100, 10).await,
        data[63..73]
    );
    file.write_all(b"UVW").await.unwrap();
    assert_eq!(
        leave_leftover(&mut file, &pool, 100, 10).await,
        data[76..86]
    );
    let mut rest = Vec::new();
    assert_eq!(file.read_to_end(&mut rest).await.unwrap(), 1_000 - 86);
    assert_eq!(rest[..], data[86..]);

    FWrite::close(&mut file).await.expect("close");
    let mut expected = data.clone();
    expected[57..60].copy_from_slice(b"XYZ");
    expected[73..76].copy_from_slice(b"UVW");
    assert!(
        std::fs::read(&path).unwrap() == expected,
        "the writes went to the caller's position"
    );
    pool.shutdown(Duration::from_secs(30))
        .expect("pool shutdown");
}

/// Bytes kept from a read are not served after a `write_at` or `set_len` changed the
/// file: the next read (of either kind) sees the file as it is now, at the caller's
/// position.
async fn write_at_and_set_len_make_kept_bytes_stale() {
    let (_guard, dir) = tempdir();
    let pool = pool(1, 4);
    let data = pattern(1_000);
    let path = file_with(&dir, "data.bin", &data);
    let mut file = open_rw(&pool, &path).await;

    // 100 read, 10 returned, 90 kept; then bytes 10..13 change behind the position.
    assert_eq!(leave_leftover(&mut file, &pool, 100, 10).await, data[..10]);
    assert_eq!(file.write_at(b"abc", 10).await.unwrap(), 3);
    let mut buf = [0u8; 5];
    FRead::read_exact(&mut file, &mut buf).await.unwrap();
    assert_eq!(buf[..], [b'a', b'b', b'c', data[13], data[14]]);
    assert_eq!(file.seek(SeekFrom::Current(0)).await.unwrap(), 15);

    // The inherent read, after a write_at.
    assert_eq!(
        leave_leftover(&mut file, &pool, 100, 10).await,
        data[15..25]
    );
    assert_eq!(file.write_at(b"Q", 25).await.unwrap(), 1);
    let mut one = [0u8; 1];
    assert_eq!(file.read(&mut one).await.unwrap(), 1);
    assert_eq!(one, *b"Q");

    // set_len below the caller's position: the kept bytes are gone with the file's
    // end, and a read finds the end (as std would), with the position unchanged.
    assert_eq!(
        leave_leftover(&mut file, &pool, 100, 10).await,
        data[26..36]
    );
    file.set_len(30).await.unwrap();
    let mut tail = Vec::new();
    assert_eq!(TRead::read_to_end(&mut file, &mut tail).await.unwrap(), 0);
    assert_eq!(
        TSeek::seek(&mut file, SeekFrom::Current(0)).await.unwrap(),
        36
    );

    FWrite::close(&mut file).await.expect("close");
    pool.shutdown(Duration::from_secs(30))
        .expect("pool shutdown");
}

async fn dropped_read_future_loses_nothing() {
    let (_guard, dir) = tempdir();
    let pool = pool(1, 4);
    let data = pattern(5_000);
    let path = file_with(&dir, "data.bin", &data);

    // futures-io read given up, then the rest with the same trait.
    let mut file = open_rw(&pool, &path).await;
    let (release, blocker) = occupy(&pool);
    let mut buf = vec![0; 1_000];
    poll_once_pending(FRead::read(&mut file, &mut buf)).await;
    release.send(()).unwrap();
    blocker.await;
    let mut all = Vec::new();
    FRead::read_to_end(&mut file, &mut all).await.unwrap();
    assert!(all == data, "every byte, once, in order");
    file.close().await.unwrap();

    // tokio read given up, then the rest with the inherent method.
    let mut file = open_rw(&pool, &path).await;
    let (release, blocker) = occupy(&pool);
    poll_once_pending(Box::pin(TRead::read(&mut file, &mut buf))).await;
    release.send(()).unwrap();
    blocker.await;
    let mut all = Vec::new();
    file.read_to_end(&mut all).await.unwrap();
    assert!(all == data, "every byte, once, in order");
    file.close().await.unwrap();

    // A given-up futures-io read, then the inherent read with a smaller buffer and
    // tokio's read_to_end: still every byte once, in order.
    let mut file = open_rw(&pool, &path).await;
    let (release, blocker) = occupy(&pool);
    poll_once_pending(FRead::read(&mut file, &mut buf)).await;
    release.send(()).unwrap();
    blocker.await;
    let mut head = [0u8; 7];
    assert_eq!(file.read(&mut head).await.unwrap(), 7);
    assert_eq!(head[..], data[..7]);
    let mut all = head.to_vec();
    TRead::read_to_end(&mut file, &mut all).await.unwrap();
    assert!(all == data, "every byte, once, in order");
    file.close().await.unwrap();
    pool.shutdown(Duration::from_secs(30))
        .expect("pool shutdown");
}

async fn dropped_write_future_still_writes() {
    let (_guard, dir) = tempdir();
    let pool = pool(1, 4);
    let path = file_with(&dir, "out.txt", b"");
    let mut file = open_rw(&pool, &path).await;
    let (release, blocker) = occupy(&pool);
    poll_once_pending(FWrite::write_all(&mut file, b"hello")).await;
    // The job belongs to the file, so giving up the future did not cancel it.
    release.send(()).unwrap();
    blocker.await;
    FWrite::flush(&mut file)
        .await
        .expect("flush waits for the write in flight");
    assert_eq!(std::fs::read(&path).unwrap(), b"hello");
    FWrite::write_all(&mut file, b", world").await.unwrap();
    FWrite::close(&mut file).await.expect("close");
    assert_eq!(std::fs::read(&path).unwrap(), b"hello, world");
    pool.shutdown(Duration::from_secs(30))
        .expect("pool shutdown");
}

async fn write_ok_means_written() {
    let (_guard, dir) = tempdir();
    let path = dir.join("out.bin");
    let mut file = File::create(&path).await.expect("create");
    let mut expected = Vec::new();
    for (i, chunk) in pattern(40_000).chunks(3_001).enumerate() {
        // No flush, no close: an `Ok(n)` alone means write(2) took the bytes.
        let n = if i % 2 == 0 {
            FWrite::write(&mut file, chunk).await.unwrap()
        } else {
            TWrite::write(&mut file, chunk).await.unwrap()
        };
        assert!(n > 0);
        expected.extend_from_slice(&chunk[..n]);
        assert!(
            std::fs::read(&path).unwrap() == expected,
            "write {i} returned Ok({n}) but the bytes are not in the file"
        );
    }
    file.close().await.expect("close");
}

async fn repolled_write_is_not_written_twice() {
    let (_guard, dir) = tempdir();
    let pool = pool(1, 4);
    let path = file_with(&dir, "out.txt", b"");
    let mut file = open_rw(&pool, &path).await;
    let (release, blocker) = occupy(&pool);
    // AsyncWrite's contract: after `Pending`, the caller polls again with the same
    // bytes; the write in flight is reported against that call, not repeated.
    poll_once_pending(FWrite::write(&mut file, b"hello")).await;
    release.send(()).unwrap();
    blocker.await;
    assert_eq!(TWrite::write(&mut file, b"hello").await.unwrap(), 5);
    assert_eq!(std::fs::read(&path).unwrap(), b"hello", "written once");
    FWrite::close(&mut file).await.expect("close");
    pool.shutdown(Duration::from_secs(30))
        .expect("pool shutdown");
}

async fn dropped_file_with_read_in_flight_closes_after_it() {
    let (_guard, dir) = tempdir();
    let pool = pool(1, 2);
    let path = file_with(&dir, "data.bin", &pattern(4_096));
    let mut file = open_rw(&pool, &path).await;
    let (release, blocker) = occupy(&pool);
    let mut buf = vec![0; 4_096];
    poll_once_pending(FRead::read(&mut file, &mut buf)).await;
    drop(file);
    // The read is still queued, so its descriptor must still be open.
    assert_eq!(fds_to(&path).len(), 1, "closed before the read in flight");
    assert_eq!(pool.budget().available(), 1);
    release.send(()).unwrap();
    blocker.await;
    // Shutdown waits until queued work is done and every descriptor is closed.
    pool.shutdown(Duration::from_secs(30))
        .expect("pool shutdown");
    assert!(fds_to(&path).is_empty(), "the descriptor was closed");
    assert_eq!(pool.budget().available(), pool.budget().capacity());
}

// ---------------------------------------------------------------------------------
// ReadDir as a Stream
// ---------------------------------------------------------------------------------

async fn read_dir_stream_matches_std() {
    let (_guard, dir) = tempdir();
    // More than two batches of `READ_DIR_BATCH` (so read-ahead is exercised).
    let count = 2 * aopen::fs::READ_DIR_BATCH + 88;
    for i in 0..count {
        std::fs::write(dir.join(format!("f{i:04}")), b"").unwrap();
    }
    let expected: BTreeSet<OsString> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(expected.len(), count);

    let pool = pool(2, 4);
    let names: Vec<OsString> = pool
        .fs()
        .read_dir(&dir)
        .await
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect()
        .await;
    assert_eq!(names.len(), count, "no entry twice");
    assert_eq!(names.into_iter().collect::<BTreeSet<_>>(), expected);

    // A `next()` given up after one poll loses no entry; the stream fuses.
    let mut entries = pool.fs().read_dir(&dir).await.unwrap();
    let mut names = Vec::new();
    for _ in 0..3 {
        if let Poll::Ready(Some(entry)) = futures::poll!(entries.next()) {
            names.push(entry.unwrap().file_name());
        }
    }
    assert!(!entries.is_terminated());
    while let Some(entry) = entries.next().await {
        names.push(entry.unwrap().file_name());
    }
    assert!(entries.is_terminated());
    assert!(entries.next().await.is_none());
    assert_eq!(names.len(), count, "no entry lost or repeated");
    assert_eq!(names.into_iter().collect::<BTreeSet<_>>(), expected);
    drop(entries);
    pool.shutdown(Duration::from_secs(30))
        .expect("pool shutdown");
    assert_eq!(pool.budget().available(), pool.budget().capacity());
}

// ---------------------------------------------------------------------------------
// close(2)'s error through poll_close, under the fault shim
// ---------------------------------------------------------------------------------

#[cfg(target_os = "linux")]
/// Names the child run of [`child_poll_close_reports_eio`].
const CHILD_ENV: &str = "AOPEN_INTEROP_CHILD";

#[cfg(target_os = "linux")]
/// The child's test directory.
const DIR_ENV: &str = "AOPEN_INTEROP_DIR";

#[cfg(target_os = "linux")]
/// What the child prints once every executor passed.
const CHILD_DONE: &str = "AOPEN-INTEROP-CLOSE-EIO-DONE";

#[cfg(target_os = "linux")]
/// `poll_close` and `poll_shutdown` return the error `close(2)` reported (the shim
/// makes every close in the test directory fail with `EIO`), under every executor.
#[test]
fn poll_close_reports_close_eio() {
    let shim = fault_shim();
    let dir = tempfile::Builder::new()
        .prefix("aopen-interop-fault-")
        .tempdir()
        .expect("the test directory");
    let canonical = dir.path().canonicalize().expect("canonicalize");
    let output = rerun_test("child_poll_close_reports_eio")
        .env("LD_PRELOAD", shim)
        .env(
            "AOPEN_FAULTS",
            "close:errno=EIO:path=*aopen-interop-fault-*",
        )
        .env(CHILD_ENV, "1")
        .env(DIR_ENV, &canonical)
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains(CHILD_DONE),
        "child failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        output.status
    );
}

#[cfg(target_os = "linux")]
/// The child side of [`poll_close_reports_close_eio`]; does nothing in a normal run.
#[test]
fn child_poll_close_reports_eio() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let dir = PathBuf::from(std::env::var_os(DIR_ENV).expect("the child's directory"));
    let run = |name: &str| close_eio_scenario(dir.join(name));
    on_tokio_current_thread(run("tokio-current"));
    on_tokio_multi_thread(run("tokio-multi"));
    smol::block_on(run("smol"));
    futures::executor::block_on(run("futures"));
    pollster::block_on(run("pollster"));
    println!("{CHILD_DONE}");
}

#[cfg(target_os = "linux")]
async fn close_eio_scenario(dir: PathBuf) {
    std::fs::create_dir(&dir).expect("the scenario's directory");
    let pool = pool(2, 4);
    let assert_eio = |err: std::io::Error, path: &Path, what: &str| {
        assert_eq!(aopen::fs::os_error(&err), Some(libc::EIO), "{what}: {err}");
        let message = err.to_string();
        assert!(message.contains("close"), "{what}: {message}");
        assert!(
            message.contains(&*path.to_string_lossy()),
            "{what}: {message}"
        );
        // The shim ran the real close first: the descriptor is gone, the permit back.
        assert!(fds_to(path).is_empty(), "{what}: descriptor left");
        assert_eq!(
            pool.budget().available(),
            pool.budget().capacity(),
            "{what}"
        );
    };
    let open = |path: PathBuf| {
        let pool = pool.clone();
        async move {
            OpenOptions::new()
                .write(true)
                .create(true)
                .pool(&pool)
                .open(path)
                .await
                .expect("open")
        }
    };

    let path = dir.join("futures.txt");
    let mut file = open(path.clone()).await;
    FWrite::write_all(&mut file, b"data").await.unwrap();
    let err = FWrite::close(&mut file).await.unwrap_err();
    assert_eio(err, &path, "poll_close");
    FWrite::close(&mut file)
        .await
        .expect("a second poll_close is Ok");
    let err = FWrite::write(&mut file, b"more").await.unwrap_err();
    assert_closed_error(err, &path, "write after a failed close");

    let path = dir.join("tokio.txt");
    let mut file = open(path.clone()).await;
    TWrite::write_all(&mut file, b"data").await.unwrap();
    let err = TWrite::shutdown(&mut file).await.unwrap_err();
    assert_eio(err, &path, "poll_shutdown");
    file.close()
        .await
        .expect("the inherent close after poll_shutdown is Ok");
    pool.shutdown(Duration::from_secs(30))
        .expect("pool shutdown");
}

/// A vectored write, through either trait, gathers every slice into one job (tokio's
/// own `write_vectored` test wants the sum); the cap still bounds it.
async fn vectored_writes_take_every_slice_in_one_trip() {
    use std::io::IoSlice;

    let (_guard, dir) = tempdir();
    let path = dir.join("vectored");
    let mut file = File::create(&path).await.expect("create");
    assert!(tokio::io::AsyncWrite::is_write_vectored(&file));
    let slices = [
        IoSlice::new(b"hello "),
        IoSlice::new(b""),
        IoSlice::new(b"world"),
    ];
    assert_eq!(
        TWrite::write_vectored(&mut file, &slices)
            .await
            .expect("tokio"),
        11
    );
    assert_eq!(
        FWrite::write_vectored(&mut file, &slices)
            .await
            .expect("futures"),
        11
    );
    file.set_max_buf_size(8);
    assert_eq!(
        TWrite::write_vectored(&mut file, &slices)
            .await
            .expect("capped"),
        8
    );
    file.close().await.expect("close");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"hello worldhello worldhello wo"
    );
}
