//! The operation in flight on a [`File`](super::File) and its close: the one state
//! machine behind the poll-based reads, writes and seeks of the optional `futures-io`
//! and `tokio` trait impls (`file_traits.rs`, thin adapters onto this), behind
//! `File::close`, and behind the settling every async method of `File` does first
//! (`file_op.rs`). It knows lanes and buffers, not `File`: nothing here imports it.
//!
//! # The problem
//!
//! `poll_read` and `poll_write` lend the caller's buffer for one poll only, but the
//! system call behind them runs on a pool thread and may outlive that poll by
//! seconds. A caller may also give up after `Pending` (a `select!`, a timeout) and come
//! back with another buffer, or switch to `File`'s async methods.
//!
//! # The answer
//!
//! A `File` has at most one such operation in flight, kept in its [`PollState`]: the
//! job's [`BlockingTask`] lives in the `File`, not in a future, so a `Pending` poll or a
//! dropped future of an extension trait (`AsyncReadExt::read`, ...) loses nothing;
//! the next operation on the file, of either kind, finishes it first.
//!
//! `File`'s own async methods keep their own jobs and their documented cancellation
//! (a future dropped before its job started skips it), and are made aware of this
//! state: each first finishes a poll operation in flight, the reads serve kept bytes
//! first, and a write or seek corrects for them through this state (so a dropped
//! future cannot leave the kept bytes and the OS position out of step).
//!
//! Invariants (the rules of [`fs`](super)):
//!
//! - **Memory (rule 6).** The pool never sees a caller's buffer: a read fills an owned
//!   buffer that the poll finding the job done copies out; a write copies the
//!   caller's bytes into an owned buffer before it submits.
//! - **No write-behind (rule 5).** `poll_write` returns `Ok(n)` only after its job ran
//!   and `write(2)` took those `n` bytes. Polled again while that write is in flight,
//!   with whatever buffer, it keeps polling that write and reports its result against
//!   the new call, as `tokio::fs` and `async-fs` do. A caller that keeps `AsyncWrite`'s
//!   contract passes the same bytes again, so `Ok(n)` means "the first `n` bytes of
//!   this buffer" (the count is capped at the new buffer's length).
//! - **Close order (rules 1, 2).** Every job goes through the file's lane.
//!   `poll_close` waits for the operation in flight, queues the close in the lane and
//!   returns `close(2)`'s error, naming the path. After it every operation fails with
//!   an [`Other`](io::ErrorKind::Other) error that names the path and says the file was
//!   closed; a second `poll_close` returns `Ok(())`. A `File` dropped with an operation
//!   in flight is closed once, after that operation (the lane queues the close behind
//!   it; a close `poll_close` queued is never queued again).
//! - **Leftover.** A read job asks for as many bytes as the caller's buffer holds (at
//!   most [`MAX_TRANSFER`](super::MAX_TRANSFER)); nothing is read ahead. If the poll that finds the job
//!   done brings a smaller buffer, the rest is kept in the `File` and served first by
//!   the next read of any form. While bytes are kept the OS position is ahead of the
//!   caller's by their count, so what depends on the position corrects for them: a
//!   seek from `Current` subtracts them, any seek drops them once it succeeded, and a
//!   write first moves the position back over them (`poll_write` in its own job, the
//!   inherent writes in a job before theirs); a file that cannot seek, like a FIFO,
//!   keeps them instead: its reads and writes are separate streams. A successful
//!   [`File::write_at`](super::File::write_at) or [`File::set_len`](super::File::set_len) on this `File` makes kept bytes (and
//!   those of a read queued before it) stale: the next read drops them, queues the
//!   step back over them, and reads the file as it is now (tokio's `set_len` drops
//!   its read buffer the same way).
//!
//!   Caveats, as with a `BufReader`'s buffer: a write through another handle does
//!   not refresh kept bytes (a seek drops them), and [`File::try_clone`](super::File::try_clone) shares the
//!   OS position, so a clone made while bytes are kept starts after them. Bytes are
//!   only kept after a trait read was given up and a later read brought a smaller
//!   buffer.
//! - **Given-up operations.** An operation whose poll was given up still runs to the
//!   end. Its bytes are not lost (a read's become leftover) and its error is returned
//!   by the next operation on the file; a given-up write's error by `poll_close` too.

use std::future::Future;
use std::io::{self, Seek, SeekFrom};
use std::path::Path;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use super::error::with_path;
use super::lane::Lane;
use crate::pool::BlockingTask;
use crate::sync::{Arc, AtomicUsize, Ordering};

// What only the trait impls' own read and write jobs use.
#[cfg(any(feature = "futures-io", feature = "tokio"))]
use {
    super::error::retry_interrupted,
    std::io::{IoSlice, Read, Write},
};

/// What a read job brings back: its owned buffer and what `read(2)` said.
type ReadDone = (Vec<u8>, io::Result<usize>);

/// What a write job brings back.
// Without the trait features nothing makes a read or write job (the inherent
// methods run their own); the state machine stays one piece all the same.
#[cfg_attr(not(any(feature = "futures-io", feature = "tokio")), allow(dead_code))]
struct WriteDone {
    /// The owned buffer, kept for the next job.
    buf: Vec<u8>,
    /// The job moved the position back over the leftover (or there was none): the
    /// leftover is stale now and must go.
    rewound: bool,
    /// What `write(2)` said, or the error of the seek before it.
    result: io::Result<usize>,
}

/// The operation in flight. One at a time: each poll method first finishes whatever
/// another left here.
#[cfg_attr(not(any(feature = "futures-io", feature = "tokio")), allow(dead_code))]
enum Op {
    /// Nothing in flight.
    Idle,
    /// A read into an owned buffer of the length the caller asked for.
    Read(BlockingTask<ReadDone>),
    /// A write of owned bytes, after moving back over the leftover.
    Write(BlockingTask<WriteDone>),
    /// A seek whose target was already corrected for the leftover.
    Seek(BlockingTask<io::Result<u64>>),
    /// Moves the position back over the leftover before an inherent write; `true`
    /// if it did (a FIFO cannot, and keeps the bytes).
    Rewind(BlockingTask<io::Result<bool>>),
    /// The close is queued in the lane (the lane is closed); its result is not
    /// taken yet.
    Close(BlockingTask<io::Result<()>>),
    /// Closed, and `close(2)`'s result was handed out.
    Closed,
}

/// Counts the changes of a file's bytes by its `&self` methods; see
/// [`PollState::change_note`].
pub(super) struct ChangeNote(Arc<AtomicUsize>);

impl ChangeNote {
    /// The file's bytes changed.
    pub(super) fn note(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The poll-side state of a [`File`](super::File).
pub(super) struct PollState {
    op: Op,
    /// Bytes a read job brought back that no caller took yet; `leftover[taken..]` are
    /// still owed. Only filled when a read job finishes, and a read job is only
    /// submitted when this is empty.
    leftover: Vec<u8>,
    /// How many bytes at the front of `leftover` were handed out.
    taken: usize,
    /// The position the last finished seek returned: what tokio's `poll_complete`
    /// reports when no seek is in flight (tokio leaves that value unspecified).
    last_seek: u64,
    /// The error of a given-up write that `poll_close` found; returned by the close
    /// in place of `close(2)`'s result.
    deferred: Option<io::Error>,
    /// An owned buffer kept between jobs, so a read or write does not allocate.
    spare: Vec<u8>,
    /// The most bytes one read or write job moves: [`MAX_TRANSFER`](super::MAX_TRANSFER) unless
    /// `File::set_max_buf_size` changed it; at least 1.
    max_transfer: usize,
    /// Bumped by the `&self` methods that change the file's bytes (`write_at`,
    /// `set_len`) once they succeeded.
    changes: Arc<AtomicUsize>,
    /// `changes` when the read in flight was queued.
    read_changes: usize,
    /// `changes` when the read that filled `leftover` was queued: if it moved since,
    /// the kept bytes may be stale, and they are dropped instead of served.
    leftover_changes: usize,
}

impl PollState {
    /// The state of a file with nothing in flight, moving at most `max_transfer`
    /// bytes per read or write job.
    pub(super) fn new(max_transfer: usize) -> PollState {
        PollState {
            op: Op::Idle,
            leftover: Vec::new(),
            taken: 0,
            last_seek: 0,
            deferred: None,
            spare: Vec::new(),
            max_transfer: max_transfer.max(1),
            changes: Arc::new(AtomicUsize::new(0)),
            read_changes: 0,
            leftover_changes: 0,
        }
    }

    /// A handle for a job that changes the file's bytes (`pwrite`, `ftruncate`): it
    /// notes the change on the pool, right after the system call succeeded, so bytes
    /// kept from a read before it are known to be stale (also when the future that
    /// asked for the job was dropped while it ran).
    pub(super) fn change_note(&self) -> ChangeNote {
        ChangeNote(self.changes.clone())
    }

    /// Whether kept bytes were read before a `write_at` or `set_len` that changed
    /// the file.
    fn leftover_is_stale(&self) -> bool {
        self.has_leftover() && self.changes.load(Ordering::SeqCst) != self.leftover_changes
    }

    /// Drops kept bytes that a later `write_at` or `set_len` may have changed, and
    /// queues the step back over them (the OS position is ahead of the caller's by
    /// their count). No one waits for that step: every later job that uses the
    /// position runs after it in the lane. Only seekable files get here (those two
    /// calls fail on a stream, so they note no change).
    pub(super) fn drop_stale_leftover(&mut self, lane: &Lane<std::fs::File>) {
        if self.leftover_is_stale() {
            let back = self.leftover_len();
            lane.submit_detached(move |file| {
                // A failed step back shows in the next operation's own seek or read;
                // nothing here could report it.
                let _ = rewind(file, back);
            });
            self.drop_leftover();
        }
    }

    /// Bytes kept and not yet handed out.
    fn leftover_len(&self) -> usize {
        self.leftover.len() - self.taken
    }

    /// Whether bytes are kept (the OS position is ahead of the caller's).
    pub(super) fn has_leftover(&self) -> bool {
        self.leftover_len() > 0
    }

    /// The owned buffer kept between jobs, for an inherent `read`'s job.
    pub(super) fn take_spare(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.spare)
    }

    /// Gives a job's owned buffer back for the next job.
    pub(super) fn put_spare(&mut self, buf: Vec<u8>) {
        self.spare = buf;
    }

    /// Hands out up to `want` kept bytes through `put`; returns how many.
    pub(super) fn take_leftover(&mut self, want: usize, put: impl FnOnce(&[u8])) -> usize {
        let n = want.min(self.leftover_len());
        put(&self.leftover[self.taken..self.taken + n]);
        self.taken += n;
        if self.taken == self.leftover.len() {
            self.drop_leftover();
        }
        n
    }

    /// Every kept byte, for `read_to_end` and `read_to_string`.
    pub(super) fn take_all_leftover(&mut self) -> Vec<u8> {
        let mut kept = std::mem::take(&mut self.leftover);
        kept.drain(..self.taken);
        self.taken = 0;
        kept
    }

    fn drop_leftover(&mut self) {
        self.leftover.clear();
        self.taken = 0;
    }

    /// The most bytes one read or write job of this file moves.
    pub(super) fn max_transfer(&self) -> usize {
        self.max_transfer
    }

    /// Sets [`max_transfer`](PollState::max_transfer); 0 is taken as 1 (a job that
    /// may move nothing would end every read and stall every write).
    pub(super) fn set_max_transfer(&mut self, max: usize) {
        self.max_transfer = max.max(1);
    }

    /// The close was queued (or ran): nothing more may go into the lane.
    pub(super) fn is_closed(&self) -> bool {
        matches!(self.op, Op::Close(_) | Op::Closed)
    }

    /// Nothing a poll method or a dropped future started is in flight, and no bytes
    /// are kept: the OS position is the caller's.
    pub(super) fn is_settled(&self) -> bool {
        matches!(self.op, Op::Idle) && !self.has_leftover()
    }

    /// A read job finished: `want` bytes (at most) go to `put`, the rest is kept.
    fn finish_read(
        &mut self,
        (buf, result): ReadDone,
        want: usize,
        put: impl FnOnce(&[u8]),
        path: &Path,
    ) -> io::Result<usize> {
        let result = result.map(|n| {
            let given = want.min(n);
            put(&buf[..given]);
            debug_assert_eq!(self.leftover_len(), 0, "a read was submitted over leftover");
            self.leftover.extend_from_slice(&buf[given..n]);
            self.leftover_changes = self.read_changes;
            given
        });
        self.spare = buf;
        result.map_err(|err| with_path("read", path, err))
    }

    /// A write job finished: drop the leftover it moved back over.
    fn finish_write(&mut self, done: WriteDone, path: &Path) -> io::Result<usize> {
        if done.rewound {
            self.drop_leftover();
        }
        self.spare = done.buf;
        done.result.map_err(|err| with_path("write", path, err))
    }

    /// A seek job finished: on success the leftover is stale.
    fn finish_seek(&mut self, result: io::Result<u64>, path: &Path) -> io::Result<u64> {
        let pos = result.map_err(|err| with_path("seek", path, err))?;
        self.drop_leftover();
        self.last_seek = pos;
        Ok(pos)
    }

    /// Finishes the operation in flight and folds its result in (a read's bytes
    /// become leftover); `Ready(Err)` with its error, or with the closed error if
    /// the file is closing or closed.
    pub(super) fn poll_settle(
        &mut self,
        cx: &mut Context<'_>,
        operation: &'static str,
        path: &Path,
    ) -> Poll<io::Result<()>> {
        let result = match &mut self.op {
            Op::Idle => Ok(()),
            // The lane is closed: whatever the caller wanted cannot run.
            Op::Close(_) | Op::Closed => Err(closed_error(operation, path)),
            Op::Read(task) => {
                let done = ready!(Pin::new(task).poll(cx));
                self.op = Op::Idle;
                self.finish_read(done, 0, |_| {}, path).map(drop)
            }
            Op::Write(task) => {
                let done = ready!(Pin::new(task).poll(cx));
                self.op = Op::Idle;
                // Taken but not reported: the poll that asked was given up.
                self.finish_write(done, path).map(drop)
            }
            Op::Seek(task) => {
                let result = ready!(Pin::new(task).poll(cx));
                self.op = Op::Idle;
                self.finish_seek(result, path).map(drop)
            }
            Op::Rewind(task) => {
                let result = ready!(Pin::new(task).poll(cx));
                self.op = Op::Idle;
                match result {
                    Ok(true) => {
                        self.drop_leftover();
                        Ok(())
                    }
                    // Not seekable: the kept bytes stay valid (see `write_job`).
                    Ok(false) => Ok(()),
                    Err(err) => Err(with_path("seek", path, err)),
                }
            }
        };
        Poll::Ready(result)
    }

    /// Reads up to `want` bytes, handed to `put`: kept bytes first, else the result of
    /// the read in flight, else a new read job of `want` bytes (at most
    /// `MAX_TRANSFER`).
    #[cfg(any(feature = "futures-io", feature = "tokio"))]
    pub(super) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        lane: &Lane<std::fs::File>,
        path: &Path,
        want: usize,
        put: impl FnOnce(&[u8]),
    ) -> Poll<io::Result<usize>> {
        loop {
            let kept = self.leftover_len();
            let stale = self.leftover_is_stale();
            match &mut self.op {
                Op::Close(_) | Op::Closed => return Poll::Ready(Err(closed_error("read", path))),
                // An empty buffer asks for nothing; a read in flight stays for later.
                _ if want == 0 => return Poll::Ready(Ok(0)),
                // A read in flight (maybe for a bigger buffer): its bytes come first.
                Op::Read(task) => {
                    let done = ready!(Pin::new(task).poll(cx));
                    self.op = Op::Idle;
                    if self.changes.load(Ordering::SeqCst) == self.read_changes {
                        return Poll::Ready(self.finish_read(done, want, put, path));
                    }
                    // A `write_at` or `set_len` ran after this read: its bytes may be
                    // stale. Keep them all; the next turn drops them (stepping back).
                    if let Err(err) = self.finish_read(done, 0, |_| {}, path) {
                        return Poll::Ready(Err(err));
                    }
                }
                // Another kind in flight: finish it (it moves the position), then read.
                Op::Write(_) | Op::Seek(_) | Op::Rewind(_) => {
                    if let Err(err) = ready!(self.poll_settle(cx, "read", path)) {
                        return Poll::Ready(Err(err));
                    }
                }
                // Kept bytes the file may no longer hold: drop them, then read.
                Op::Idle if stale => self.drop_stale_leftover(lane),
                // Kept bytes are the next ones in the file: no pool trip.
                Op::Idle if kept > 0 => {
                    return Poll::Ready(Ok(self.take_leftover(want, put)));
                }
                Op::Idle => {
                    self.read_changes = self.changes.load(Ordering::SeqCst);
                    let mut owned = std::mem::take(&mut self.spare);
                    owned.resize(want.min(self.max_transfer), 0);
                    self.op = Op::Read(lane.submit(move |file| {
                        let result = retry_interrupted(|| file.read(&mut owned));
                        (owned, result)
                    }));
                }
            }
        }
    }

    /// Queues a job that moves the position back over the leftover, for the
    /// inherent writes (whose own jobs may be cancelled, so the rewind and the
    /// leftover it makes stale must be settled here, not in them). Must be idle.
    pub(super) fn start_rewind(&mut self, lane: &Lane<std::fs::File>) {
        debug_assert!(
            matches!(self.op, Op::Idle),
            "a rewind started over another operation"
        );
        let back = self.leftover_len();
        self.op = Op::Rewind(lane.submit(move |file| rewind(file, back)));
    }

    /// Writes `bufs`, one after another, with one `write(2)` of at most
    /// `max_transfer` bytes, or reports the write in flight against this call (see
    /// the module docs); `Ok(n)` only once `write(2)` took `n` bytes. (The slices are
    /// gathered into the job's owned buffer, so a vectored write costs one pool trip,
    /// as a plain one.)
    #[cfg(any(feature = "futures-io", feature = "tokio"))]
    pub(super) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        lane: &Lane<std::fs::File>,
        path: &Path,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let total: usize = bufs.iter().map(|buf| buf.len()).sum();
        loop {
            match &mut self.op {
                Op::Close(_) | Op::Closed => return Poll::Ready(Err(closed_error("write", path))),
                Op::Write(task) => {
                    let done = ready!(Pin::new(task).poll(cx));
                    self.op = Op::Idle;
                    let result = self.finish_write(done, path);
                    return Poll::Ready(result.map(|n| n.min(total)));
                }
                Op::Read(_) | Op::Seek(_) | Op::Rewind(_) => {
                    if let Err(err) = ready!(self.poll_settle(cx, "write", path)) {
                        return Poll::Ready(Err(err));
                    }
                }
                Op::Idle if total == 0 => return Poll::Ready(Ok(0)),
                // One job: back over the leftover, then one `write(2)`.
                Op::Idle => {
                    let mut owned = std::mem::take(&mut self.spare);
                    owned.clear();
                    for buf in bufs {
                        let room = self.max_transfer - owned.len();
                        owned.extend_from_slice(&buf[..buf.len().min(room)]);
                    }
                    let back = self.leftover_len();
                    self.op = Op::Write(lane.submit(move |file| write_job(file, owned, back)));
                }
            }
        }
    }

    /// Queues a seek to `pos`, corrected for the leftover. Fails if another
    /// operation is in flight (tokio's contract: call `poll_complete` first).
    pub(super) fn start_seek(
        &mut self,
        lane: &Lane<std::fs::File>,
        path: &Path,
        pos: SeekFrom,
    ) -> io::Result<()> {
        match self.op {
            Op::Idle => {}
            Op::Close(_) | Op::Closed => return Err(closed_error("seek", path)),
            Op::Read(_) | Op::Write(_) | Op::Seek(_) | Op::Rewind(_) => {
                let err = io::Error::other(
                    "another operation is in flight on this file: call poll_complete before start_seek",
                );
                return Err(with_path("seek", path, err));
            }
        }
        let target = match pos {
            SeekFrom::Current(offset) => {
                let kept = i64::try_from(self.leftover_len()).unwrap_or(i64::MAX);
                let offset = offset.checked_sub(kept).ok_or_else(|| {
                    let err = io::Error::new(io::ErrorKind::InvalidInput, "seek offset overflows");
                    with_path("seek", path, err)
                })?;
                SeekFrom::Current(offset)
            }
            other => other,
        };
        self.op = Op::Seek(lane.submit(move |file| file.seek(target)));
        Ok(())
    }

    /// The position the seek in flight reached; with none in flight, finishes any
    /// other operation and returns the last seek's result (tokio's contract leaves
    /// this value unspecified).
    pub(super) fn poll_complete(
        &mut self,
        cx: &mut Context<'_>,
        path: &Path,
    ) -> Poll<io::Result<u64>> {
        loop {
            match &mut self.op {
                Op::Seek(task) => {
                    let result = ready!(Pin::new(task).poll(cx));
                    self.op = Op::Idle;
                    return Poll::Ready(self.finish_seek(result, path));
                }
                Op::Idle => return Poll::Ready(Ok(self.last_seek)),
                Op::Close(_) | Op::Closed => return Poll::Ready(Err(closed_error("seek", path))),
                Op::Read(_) | Op::Write(_) | Op::Rewind(_) => {
                    if let Err(err) = ready!(self.poll_settle(cx, "seek", path)) {
                        return Poll::Ready(Err(err));
                    }
                }
            }
        }
    }

    /// Seeks to `pos` (the one-call form of futures-io); a seek in flight is reported
    /// against this call, like a write.
    #[cfg(feature = "futures-io")]
    pub(super) fn poll_seek(
        &mut self,
        cx: &mut Context<'_>,
        lane: &Lane<std::fs::File>,
        path: &Path,
        pos: SeekFrom,
    ) -> Poll<io::Result<u64>> {
        loop {
            match &mut self.op {
                Op::Seek(_) => return self.poll_complete(cx, path),
                Op::Close(_) | Op::Closed => return Poll::Ready(Err(closed_error("seek", path))),
                Op::Read(_) | Op::Write(_) | Op::Rewind(_) => {
                    if let Err(err) = ready!(self.poll_settle(cx, "seek", path)) {
                        return Poll::Ready(Err(err));
                    }
                }
                Op::Idle => {
                    if let Err(err) = self.start_seek(lane, path, pos) {
                        return Poll::Ready(Err(err));
                    }
                }
            }
        }
    }

    /// Finishes the operation in flight, closes the lane (once) and returns
    /// `close(2)`'s error, or the error of a given-up write found on the way; after
    /// that, `Ok(())`.
    pub(super) fn poll_close(
        &mut self,
        cx: &mut Context<'_>,
        lane: &mut Lane<std::fs::File>,
        path: &Path,
    ) -> Poll<io::Result<()>> {
        loop {
            match &mut self.op {
                // Closed before, and that close's result was handed out.
                Op::Closed => return Poll::Ready(Ok(())),
                Op::Close(task) => {
                    let result = ready!(Pin::new(task).poll(cx));
                    self.op = Op::Closed;
                    self.drop_leftover();
                    let result = match self.deferred.take() {
                        Some(err) => Err(err),
                        None => result.map_err(|err| with_path("close", path, err)),
                    };
                    return Poll::Ready(result);
                }
                // A write the caller gave up on may have failed: that must not vanish.
                Op::Write(_) => {
                    if let Err(err) = ready!(self.poll_settle(cx, "close", path)) {
                        self.deferred = Some(err);
                    }
                }
                // Given-up reads and seeks change nothing a close reports.
                Op::Read(_) | Op::Seek(_) | Op::Rewind(_) => {
                    let _ = ready!(self.poll_settle(cx, "close", path));
                }
                // Queued behind every job issued before; it runs even if this task
                // is dropped (and the lane's drop then queues nothing).
                Op::Idle => self.op = Op::Close(lane.close_in_place()),
            }
        }
    }
}

/// The error of an operation on a file that was closed by `poll_close` /
/// `poll_shutdown`.
pub(super) fn closed_error(operation: &'static str, path: &Path) -> io::Error {
    let err = io::Error::other("the file was already closed (by poll_close or poll_shutdown)");
    with_path(operation, path, err)
}

/// Moves the position back over `back` kept bytes: `Ok(true)` if it did (or there
/// were none), `Ok(false)` if the file cannot seek.
fn rewind(file: &mut std::fs::File, back: usize) -> io::Result<bool> {
    if back == 0 {
        return Ok(true);
    }
    // `back` is at most one job's transfer, a buffer's length (`i64::MAX` if not).
    let offset = -i64::try_from(back).unwrap_or(i64::MAX);
    match file.seek(SeekFrom::Current(offset)) {
        Ok(_) => Ok(true),
        // Not seekable (a FIFO, a socket): reads and writes are separate streams, so
        // the kept bytes stay valid and the write goes ahead.
        Err(err) if crate::sys::is_not_seekable(file, &err) => Ok(false),
        Err(err) => Err(err),
    }
}

/// A write job of `poll_write`: back over `back` kept bytes, then one `write(2)`.
#[cfg(any(feature = "futures-io", feature = "tokio"))]
fn write_job(file: &mut std::fs::File, buf: Vec<u8>, back: usize) -> WriteDone {
    match rewind(file, back) {
        Ok(rewound) => {
            let result = retry_interrupted(|| file.write(&buf));
            WriteDone {
                buf,
                rewound,
                result,
            }
        }
        Err(err) => WriteDone {
            buf,
            rewound: false,
            result: Err(err),
        },
    }
}
