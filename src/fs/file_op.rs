//! How an operation of a [`File`] reaches its lane: one helper per kind of caller,
//! each told the operation's [`Effect`], which decides the bookkeeping around it.
//!
//! Every method of `File` that runs a system call goes through here, so the rules it
//! must keep are kept in one place:
//!
//! - **Open check.** An operation on a file that `poll_close` closed fails with an
//!   error naming the path and the operation, without queueing anything.
//! - **Settling.** An operation that uses the position first finishes whatever a
//!   trait poll method (or a dropped future) left in flight, and drops kept bytes a
//!   later `write_at`/`set_len` made stale; a write at the position also steps back
//!   over kept bytes, so it lands where the caller is.
//! - **Kept bytes.** A job that changes the file's bytes notes it on the pool, right
//!   after its system call succeeded, so bytes a trait read kept from before it are
//!   dropped instead of served.
//! - **Issue order.** The `&self` helper queues at the call, so `&self` operations run
//!   in the order of the calls (rule 2 of `fs`); the `&mut self` helper queues once
//!   it has settled, which nothing can come between (the file is borrowed mutably).
//! - **Errors name the path**: `with_path(operation, path, ..)`.

use std::future::{poll_fn, Future};
use std::io;

use super::error::with_path;
use super::file::File;
use super::in_flight::closed_error;

/// What an operation does to the file besides giving its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Effect {
    /// Leaves the position and the bytes alone (`fstat`, `fsync`, `pread`, `fchmod`,
    /// `dup`): queued at the call, behind whatever is in flight.
    Plain,
    /// Changes the bytes, not the position (`pwrite`, `ftruncate`): noted on success.
    ChangesContent,
    /// Reads at or moves the position (`read`, `seek`): settled first.
    MovesPosition,
    /// Writes at the position (`write`): settled first, then stepped back over kept
    /// bytes.
    WritesAtPosition,
}

impl File {
    /// Queues `op` in the file's lane *now*, at the call, and returns the future of
    /// its result (its error names the path): the `&self` methods' way in. Their
    /// order in the lane is the order of the calls, not of the first polls.
    ///
    /// `effect` is [`Plain`](Effect::Plain) or [`ChangesContent`](Effect::ChangesContent)
    /// (a `&self` method cannot settle). Dropping the future before `op` started skips
    /// `op`; once started, it runs to the end (and notes its change) and its result is
    /// dropped.
    pub(super) fn queue<T, F>(
        &self,
        effect: Effect,
        operation: &'static str,
        op: F,
    ) -> impl Future<Output = io::Result<T>> + Send + 'static
    where
        F: FnOnce(&mut std::fs::File) -> io::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        debug_assert!(
            matches!(effect, Effect::Plain | Effect::ChangesContent),
            "{operation}: a `&self` operation cannot settle the position"
        );
        let note = (effect == Effect::ChangesContent).then(|| self.poll.change_note());
        let queued = self.check_open(operation).map(|()| {
            self.lane.submit(move |file| {
                let result = op(file);
                if let (Ok(_), Some(note)) = (&result, &note) {
                    note.note();
                }
                result
            })
        });
        let path = self.path.clone();
        async move {
            queued?
                .await
                .map_err(|err| with_path(operation, &path, err))
        }
    }

    /// Prepares for `effect` (settles, steps back over kept bytes; see the module
    /// docs), then runs `op` in the lane: the `&mut self` methods' way in.
    pub(super) async fn op<T, F>(
        &mut self,
        effect: Effect,
        operation: &'static str,
        op: F,
    ) -> io::Result<T>
    where
        F: FnOnce(&mut std::fs::File) -> io::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.prepare(effect, operation).await?;
        let effect = match effect {
            Effect::ChangesContent => Effect::ChangesContent,
            _ => Effect::Plain,
        };
        self.queue(effect, operation, op).await
    }

    /// What an operation with `effect` needs done before its job is queued.
    pub(super) async fn prepare(
        &mut self,
        effect: Effect,
        operation: &'static str,
    ) -> io::Result<()> {
        match effect {
            Effect::Plain | Effect::ChangesContent => self.check_open(operation),
            Effect::MovesPosition => self.settle(operation).await,
            Effect::WritesAtPosition => {
                self.settle(operation).await?;
                if self.poll.has_leftover() {
                    self.poll.start_rewind(&self.lane);
                    self.settle(operation).await?;
                }
                Ok(())
            }
        }
    }

    /// Finishes what a poll method (or a dropped future) left in flight; the closed
    /// error if the file was closed. Kept bytes that a `write_at` or `set_len` made
    /// stale are dropped here, so the caller's read, write or seek sees the file as
    /// it is.
    pub(super) async fn settle(&mut self, operation: &'static str) -> io::Result<()> {
        let path = &self.path;
        poll_fn(|cx| self.poll.poll_settle(cx, operation, path)).await?;
        self.poll.drop_stale_leftover(&self.lane);
        Ok(())
    }

    /// Moves kept bytes into `buf`; returns how many.
    pub(super) fn read_leftover(&mut self, buf: &mut [u8]) -> usize {
        self.poll
            .take_leftover(buf.len(), |bytes| buf[..bytes.len()].copy_from_slice(bytes))
    }

    /// The closed error if `poll_close` closed the file.
    pub(super) fn check_open(&self, operation: &'static str) -> io::Result<()> {
        if self.poll.is_closed() {
            return Err(closed_error(operation, &self.path));
        }
        Ok(())
    }
}
