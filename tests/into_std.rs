//! Handing a descriptor to std: `File::into_std` and `File::try_into_std`.
//!
//! The rules under test: the hand-over waits for (or, `try_`, refuses while) every
//! operation queued on the file; the crate never closes a descriptor it gave away;
//! the permit goes back exactly once; and an `into_std` future dropped after it
//! queued the hand-over leaves no descriptor behind. A one-thread pool whose thread
//! is held by a blocker job keeps queued operations from running, so "queued" is a
//! fact here, not a race.

use std::future::Future;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::pin::pin;
use std::sync::mpsc;
use std::task::{Context, Waker};
use std::time::Duration;

use aopen::{block_on, BlockingTask, Pool};

/// How long `shutdown` may take to finish the few queued jobs of a test.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// Occupies the pool's one thread until the returned sender is used (or dropped).
fn hold_the_only_thread(pool: &Pool) -> (mpsc::Sender<()>, BlockingTask<()>) {
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let blocker = pool.unblock(move || {
        started_tx.send(()).expect("the test waits for this");
        let _ = release_rx.recv();
    });
    started_rx.recv().expect("the blocker started");
    (release_tx, blocker)
}

fn one_thread_pool() -> io::Result<Pool> {
    Pool::builder().max_threads(1).descriptor_budget(4).build()
}

fn scratch_file(
    name: &str,
    contents: &[u8],
) -> io::Result<(tempfile::TempDir, std::path::PathBuf)> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(name);
    std::fs::write(&path, contents)?;
    Ok((dir, path))
}

#[test]
fn try_into_std_refuses_while_an_operation_is_queued() -> io::Result<()> {
    let (_dir, path) = scratch_file("a", b"hello")?;
    let pool = one_thread_pool()?;
    let file = block_on(pool.fs().open(&path))?;
    let (release, blocker) = hold_the_only_thread(&pool);

    let pending = file.metadata(); // queued now; cannot run while the thread is held
    let file = file
        .try_into_std()
        .expect_err("a queued fstat still needs the descriptor");
    assert_eq!(pool.budget().held(), 1, "refused: nothing changed");

    release.send(()).expect("the blocker waits");
    block_on(blocker);
    assert_eq!(block_on(pending)?.len(), 5);
    let mut std_file = file.try_into_std().expect("nothing queued any more");
    assert_eq!(pool.budget().held(), 0, "the permit went back once");
    let mut text = String::new();
    std_file.read_to_string(&mut text)?;
    assert_eq!(text, "hello");
    Ok(())
}

#[test]
fn into_std_waits_for_queued_operations_and_the_crate_never_closes_it() -> io::Result<()> {
    let (_dir, path) = scratch_file("a", b"")?;
    let pool = one_thread_pool()?;
    let mut file = block_on(pool.fs().options().read(true).write(true).open(&path))?;
    block_on(file.write_all(b"0123456789"))?;
    let (release, blocker) = hold_the_only_thread(&pool);

    // Queued before the hand-over: it must run first, on the descriptor.
    let length = file.metadata();
    let handing = std::thread::spawn(move || block_on(file.into_std()));
    release.send(()).expect("the blocker waits");
    block_on(blocker);
    let mut std_file = handing.join().expect("into_std does not panic");
    assert_eq!(block_on(length)?.len(), 10);
    assert_eq!(pool.budget().held(), 0, "the permit went back once");

    // Every job of the pool is done and every descriptor it holds is closed; ours
    // is std's, so it is still open, at the position the async writes left.
    pool.shutdown(SHUTDOWN_TIMEOUT)?;
    assert_eq!(std_file.stream_position()?, 10);
    std_file.write_all(b"!")?;
    std_file.seek(SeekFrom::Start(0))?;
    let mut text = String::new();
    std_file.read_to_string(&mut text)?;
    assert_eq!(text, "0123456789!");
    Ok(())
}

#[test]
fn a_dropped_into_std_closes_the_descriptor_on_the_pool() -> io::Result<()> {
    let (_dir, path) = scratch_file("a", b"x")?;
    let pool = one_thread_pool()?;
    let file = block_on(pool.fs().open(&path))?;
    let (release, blocker) = hold_the_only_thread(&pool);

    {
        // Polled once: the hand-over is queued behind the held thread; then dropped.
        let mut handing = pin!(file.into_std());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(handing.as_mut().poll(&mut cx).is_pending());
    }
    assert_eq!(
        pool.budget().held(),
        1,
        "the descriptor is still the crate's"
    );
    release.send(()).expect("the blocker waits");
    block_on(blocker);
    // `shutdown` returns once queued work is done and every descriptor is closed.
    pool.shutdown(SHUTDOWN_TIMEOUT)?;
    assert_eq!(
        pool.budget().held(),
        0,
        "closed on the pool, permit after close"
    );
    Ok(())
}

/// `from_std` adopts a descriptor that is open already, so it cannot wait: on a full
/// budget it overdraws it, and the next close repays the overdraft before a waiting
/// open is served. Dropping the adopted file closes the descriptor on the pool (a
/// pipe shows it: once every write end is closed, a read of the other end sees end of
/// file instead of `WouldBlock`).
#[cfg(unix)]
#[test]
fn from_std_on_a_full_budget_overdraws_and_the_next_close_repays() -> io::Result<()> {
    use std::os::fd::{AsRawFd, OwnedFd};

    let (_dir, path) = scratch_file("a", b"x")?;
    let pool = Pool::builder()
        .max_threads(1)
        .descriptor_budget(1)
        .build()?;
    let holder = block_on(pool.fs().open(&path))?; // holds the only permit
    let (mut reader, writer) = std::io::pipe()?;
    // SAFETY: `fcntl` on a descriptor this test owns (`reader` is alive); it only
    // sets the status flag that makes an empty read return `WouldBlock`.
    let set = unsafe { libc::fcntl(reader.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    assert_eq!(set, 0, "{}", io::Error::last_os_error());
    let writer = std::fs::File::from(OwnedFd::from(writer));

    let adopted = pool.fs().from_std(writer); // at once, no waiting
    assert_eq!(pool.budget().held(), 2, "one over the budget of 1");
    let mut opening = pin!(pool.fs().open(&path));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(
        opening.as_mut().poll(&mut cx).is_pending(),
        "full: it waits"
    );
    block_on(holder.close())?;
    assert_eq!(pool.budget().held(), 1, "the close repaid the overdraft");
    assert!(
        opening.as_mut().poll(&mut cx).is_pending(),
        "still at the cap: the open waits on"
    );
    drop(adopted); // its close is queued on the pool, permit after close
    let reopened = block_on(opening)?;
    assert_eq!(pool.budget().held(), 1);
    block_on(reopened.close())?;
    pool.shutdown(SHUTDOWN_TIMEOUT)?;
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest)?; // `WouldBlock` here if the write end leaked
    assert!(rest.is_empty());
    assert_eq!(pool.budget().held(), 0);
    Ok(())
}

#[test]
fn from_std_and_into_std_round_trip_with_one_permit() -> io::Result<()> {
    let (_dir, path) = scratch_file("a", b"")?;
    let pool = one_thread_pool()?;
    let std_file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)?;
    let mut file = pool.fs().from_std(std_file);
    assert_eq!(pool.budget().held(), 1);
    block_on(file.write_all(b"round trip"))?;
    let mut std_file = block_on(file.into_std());
    assert_eq!(pool.budget().held(), 0);
    std_file.seek(SeekFrom::Start(0))?;
    let mut text = String::new();
    std_file.read_to_string(&mut text)?;
    assert_eq!(text, "round trip");
    Ok(())
}

/// `From<std::fs::File>` is `from_std` on the global pool.
#[test]
fn a_std_file_converts_into_a_file_of_the_global_pool() -> io::Result<()> {
    let (_dir, path) = scratch_file("a", b"converted")?;
    let mut file: aopen::File = std::fs::File::open(&path)?.into();
    let mut text = String::new();
    block_on(file.read_to_string(&mut text))?;
    assert_eq!(text, "converted");
    block_on(file.close())
}

/// The descriptor traits lend the lane's own descriptor, also while an operation on
/// it is queued, and it stays open while lent; `FromRawFd` adopts one.
#[cfg(unix)]
#[test]
fn the_descriptor_is_lent_while_operations_are_queued() -> io::Result<()> {
    use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd};

    let (_dir, path) = scratch_file("a", b"12345")?;
    let pool = one_thread_pool()?;
    let file = block_on(pool.fs().open(&path))?;
    let raw = file.as_raw_fd();
    let (release, blocker) = hold_the_only_thread(&pool);
    let queued = file.metadata(); // cannot run while the thread is held
                                  // The borrowed descriptor is the file's own, open: fstat through it sees the file.
    let std_view = std::fs::File::from(file.as_fd().try_clone_to_owned()?);
    assert_eq!(std_view.metadata()?.len(), 5);
    assert_eq!(file.as_fd().as_raw_fd(), raw);
    drop(std_view);
    release.send(()).expect("the blocker waits");
    block_on(blocker);
    assert_eq!(block_on(queued)?.len(), 5);
    let std_file = block_on(file.into_std());
    assert_eq!(
        std_file.as_raw_fd(),
        raw,
        "the number it lent was the lane's"
    );

    // And back in through the raw number; the adopted file holds a permit.
    let fd = std_file.into_raw_fd();
    // SAFETY: `fd` is open and owned by nobody else (`into_raw_fd` gave it up).
    let adopted = unsafe { aopen::File::from_raw_fd(fd) };
    assert_eq!(adopted.as_raw_fd(), fd);
    assert_eq!(block_on(adopted.metadata())?.len(), 5);
    block_on(adopted.close())
}

/// After `poll_close` the descriptor is gone: `as_raw_fd` says -1, and the calls that
/// promise an open descriptor (`as_fd`, `into_std`) panic instead of handing out a
/// number that may belong to another file by now.
#[cfg(all(unix, feature = "futures-io"))]
#[test]
fn after_poll_close_nothing_lends_the_old_descriptor() -> io::Result<()> {
    use std::os::fd::{AsFd, AsRawFd};

    let (_dir, path) = scratch_file("a", b"x")?;
    let mut file = block_on(aopen::File::open(&path))?;
    assert!(file.as_raw_fd() >= 0);
    block_on(futures::io::AsyncWriteExt::close(&mut file))?;
    assert_eq!(file.as_raw_fd(), -1);
    let lent = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = file.as_fd();
    }));
    let message = lent.expect_err("as_fd after poll_close must not lend");
    let message = message
        .downcast_ref::<String>()
        .expect("a formatted message");
    assert!(message.contains("poll_close"), "{message}");
    let handed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = block_on(file.into_std());
    }));
    assert!(
        handed.is_err(),
        "into_std after poll_close must not hand out a descriptor"
    );
    Ok(())
}

/// The handle traits on Windows: the lane's own handle, lent while an operation is
/// queued; `FromRawHandle` and `From<OwnedHandle>` adopt one.
#[cfg(windows)]
#[test]
fn the_handle_is_lent_while_operations_are_queued() -> io::Result<()> {
    use std::os::windows::io::{AsHandle, AsRawHandle, FromRawHandle, IntoRawHandle, OwnedHandle};

    let (_dir, path) = scratch_file("a", b"12345")?;
    let pool = one_thread_pool()?;
    let file = block_on(pool.fs().open(&path))?;
    let raw = file.as_raw_handle();
    let (release, blocker) = hold_the_only_thread(&pool);
    let queued = file.metadata();
    let std_view = std::fs::File::from(file.as_handle().try_clone_to_owned()?);
    assert_eq!(std_view.metadata()?.len(), 5);
    drop(std_view);
    release.send(()).expect("the blocker waits");
    block_on(blocker);
    assert_eq!(block_on(queued)?.len(), 5);
    let std_file = block_on(file.into_std());
    assert_eq!(
        std_file.as_raw_handle(),
        raw,
        "the handle it lent was the lane's"
    );

    let handle = std_file.into_raw_handle();
    // SAFETY: `handle` is open and owned by nobody else (`into_raw_handle` gave it up).
    let adopted = unsafe { aopen::File::from_raw_handle(handle) };
    assert_eq!(adopted.as_raw_handle(), handle);
    let owned = OwnedHandle::from(block_on(adopted.into_std()));
    let adopted = aopen::File::from(owned);
    assert_eq!(block_on(adopted.metadata())?.len(), 5);
    block_on(adopted.close())
}
