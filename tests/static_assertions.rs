//! Compile-time checks of the auto traits the design promises.
//!
//! Every future the crate returns for file system work must be `Send` (so it can be
//! spawned on a multi-threaded runtime), the handles (`Pool`, `Budget`, `PoolStats`)
//! are `Send + Sync + Clone`, and `File` is `Send + Sync` (its `&self` methods, such
//! as `sync_all` and `read_at`, hold a `&File` across an `.await`; their futures are
//! `Send` only because `File` is `Sync`). Nothing here runs a system call: the
//! futures are built and dropped unpolled, or only named by type.
//!
//! The negative side (`LocalExecutor` and `Task` are `!Send`, `unblock` refuses a
//! non-`Send` closure, a closed `File` is moved) is asserted by `compile_fail`
//! doctests in the crate docs, since a test file cannot assert that something does
//! not compile.

use std::future::Future;
use std::io;
use std::path::PathBuf;

use aopen::budget::{Acquire, Permit};
use aopen::fs::{DirEntry, Fs, FsFuture, PathError, ReadDir};
use aopen::{BlockingTask, Budget, File, OpenOptions, Pool, PoolBuilder, PoolStats, Sleep};

fn assert_send<T: Send>() {}
fn assert_sync<T: Sync>() {}
fn assert_clone<T: Clone>() {}
fn assert_static<T: 'static>() {}
fn assert_unpin<T: Unpin>() {}

/// Asserts that a value (typically a constructed-but-not-awaited future) is `Send`.
fn is_send<T: Send>(_: &T) {}

/// Asserts that a value is `Send + 'static`: spawnable on a multi-threaded runtime.
fn is_spawnable<T: Future + Send + 'static>(_: &T) {}

#[test]
fn handles_are_send_sync_clone() {
    assert_send::<Pool>();
    assert_sync::<Pool>();
    assert_clone::<Pool>();

    assert_send::<Budget>();
    assert_sync::<Budget>();
    assert_clone::<Budget>();

    assert_send::<PoolStats>();
    assert_sync::<PoolStats>();
    assert_clone::<PoolStats>();

    assert_send::<PoolBuilder>();
    assert_sync::<PoolBuilder>();
    assert_clone::<PoolBuilder>();

    assert_send::<OpenOptions>();
    assert_sync::<OpenOptions>();
    assert_clone::<OpenOptions>();

    assert_send::<Fs>();
    assert_sync::<Fs>();
    assert_clone::<Fs>();

    // `Pool::global()` hands out a `&'static Pool` that any thread may use.
    let global: fn() -> &'static Pool = Pool::global;
    let _ = global;
}

#[test]
fn permits_move_between_threads() {
    assert_send::<Permit>();
    assert_sync::<Permit>();
    assert_send::<Acquire>();
    assert_static::<Acquire>();
    assert_unpin::<Acquire>();

    let budget = Budget::new(1);
    is_spawnable(&budget.acquire());
}

#[test]
fn file_and_listing_types_are_send() {
    assert_send::<File>();
    assert_sync::<File>();
    assert_send::<ReadDir>();
    assert_sync::<ReadDir>();
    assert_send::<DirEntry>();
    assert_sync::<DirEntry>();
    // Errors cross threads inside `io::Error`, which requires `Send + Sync`.
    assert_send::<PathError>();
    assert_sync::<PathError>();
}

#[test]
fn fs_futures_are_send_static_and_unpin() {
    assert_send::<FsFuture<File>>();
    assert_static::<FsFuture<File>>();
    assert_unpin::<FsFuture<File>>();
    assert_send::<BlockingTask<io::Result<Vec<u8>>>>();
    assert_static::<BlockingTask<io::Result<Vec<u8>>>>();
    assert_unpin::<BlockingTask<io::Result<Vec<u8>>>>();
    assert_send::<Sleep>();
    assert_unpin::<Sleep>();
}

/// The path-taking functions own their arguments: their futures are `'static` even
/// when the path given was a borrowed `&PathBuf`, and they are `Send`. None of these
/// futures is polled, so no system call runs.
#[test]
fn free_function_futures_are_spawnable() {
    use aopen::fs;

    let path = PathBuf::from("/nonexistent/aopen-static-assertions");
    let other = path.join("other");
    is_spawnable(&File::open(&path));
    is_spawnable(&File::create(&path));
    is_spawnable(&OpenOptions::new().read(true).open(&path));
    is_spawnable(&fs::metadata(&path));
    is_spawnable(&fs::symlink_metadata(&path));
    is_spawnable(&fs::read(&path));
    is_spawnable(&fs::read_to_string(&path));
    is_spawnable(&fs::write(&path, b"x"));
    is_spawnable(&fs::create_dir(&path));
    is_spawnable(&fs::create_dir_all(&path));
    is_spawnable(&fs::remove_file(&path));
    is_spawnable(&fs::remove_dir(&path));
    is_spawnable(&fs::remove_dir_all(&path));
    is_spawnable(&fs::rename(&path, &other));
    is_spawnable(&fs::copy(&path, &other));
    is_spawnable(&fs::hard_link(&path, &other));
    is_spawnable(&fs::canonicalize(&path));
    is_spawnable(&fs::try_exists(&path));
    is_spawnable(&fs::set_permissions(&path, some_permissions()));
    is_spawnable(&fs::read_dir(&path));
    is_spawnable(&fs::metadata_batch([&path, &other]));
    is_spawnable(&fs::with_file(&path, |file| {
        Box::pin(async move { file.metadata().await.map(|m| m.len()) })
    }));
    is_spawnable(&aopen::unblock(|| 1 + 1));
    is_spawnable(&aopen::sleep(std::time::Duration::ZERO));
}

/// The same calls through a private pool's [`Fs`] handle.
#[test]
fn pool_fs_futures_are_spawnable() {
    let pool = Pool::builder().max_threads(1).build().unwrap();
    let fs = pool.fs();
    let path = PathBuf::from("/nonexistent/aopen-static-assertions");
    is_spawnable(&fs.open(&path));
    is_spawnable(&fs.options().write(true).open(&path));
    is_spawnable(&fs.metadata(&path));
    is_spawnable(&fs.read(&path));
    is_spawnable(&fs.read_dir(&path));
    is_spawnable(&fs.metadata_batch(vec![path.clone()]));
    is_spawnable(&pool.unblock(|| String::from("x")));
}

/// The `async fn` methods of `File`, `ReadDir` and `DirEntry` borrow their receiver
/// (and buffers) across an `.await`, so their futures are not `'static`, but they
/// must be `Send`: a task holding a `File` can move between a runtime's threads.
/// The `&self` methods that queue their job at the call and borrow no buffer
/// (`metadata`, `sync_all`, `set_len`, `write_at`, ...) are `'static` too.
/// The functions below are never called; type-checking them is the assertion.
#[allow(dead_code)]
fn method_futures_are_send(mut file: File, mut dir: ReadDir, entry: DirEntry) {
    let mut buf = [0u8; 8];
    let mut vec = Vec::new();
    let mut string = String::new();

    is_send(&file.read(&mut buf));
    is_send(&file.read_exact(&mut buf));
    is_send(&file.read_to_end(&mut vec));
    is_send(&file.read_to_string(&mut string));
    is_send(&file.write(b"x"));
    is_send(&file.write_all(b"x"));
    is_send(&file.seek(std::io::SeekFrom::Start(0)));
    is_spawnable(&file.sync_all());
    is_spawnable(&file.sync_data());
    is_spawnable(&file.set_len(0));
    is_spawnable(&file.metadata());
    is_spawnable(&file.set_permissions(some_permissions()));
    is_spawnable(&file.set_times(std::fs::FileTimes::new()));
    is_spawnable(&file.set_modified(std::time::SystemTime::UNIX_EPOCH));
    is_send(&file.try_clone());
    is_send(&file.read_at(&mut buf, 0));
    is_spawnable(&file.write_at(b"x", 0));
    is_spawnable(&file.close());

    is_send(&dir.next_entry());
    is_send(&entry.file_type());
    is_send(&entry.metadata());
}

/// A whole task that opens, reads, lists and closes is `Send + 'static`: it can be
/// handed to `tokio::spawn` on the multi-threaded runtime.
#[test]
fn a_task_using_the_api_is_spawnable() {
    async fn task(dir: PathBuf) -> io::Result<usize> {
        let mut file = File::open(dir.join("a")).await?;
        let mut buf = vec![0; 16];
        let n = file.read(&mut buf).await?;
        file.sync_all().await?;
        file.close().await?;
        let mut listing = aopen::fs::read_dir(&dir).await?;
        while let Some(entry) = listing.next_entry().await? {
            let _ = entry.file_type().await?;
        }
        Ok(n)
    }
    is_spawnable(&task(PathBuf::from("/nonexistent")));
}

/// A `Permissions` value on any system (Unix modes are not portable).
fn some_permissions() -> std::fs::Permissions {
    std::fs::metadata(std::env::temp_dir())
        .expect("the temporary directory")
        .permissions()
}
