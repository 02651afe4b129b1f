//! One unit of pool work and the future that waits for its result.
//!
//! A job is a single allocation, an `Arc<JobCell>`, shared by the queue (as an
//! [`ErasedJob`]) and by the caller's [`BlockingTask`]. Its life is a small state
//! machine, guarded by one lock:
//!
//! ```text
//! Queued(f) ──run──▶ Running ──f returned──▶ Done(result) ──polled──▶ Over
//!     │                 │                          │
//!     │ task dropped    │ task dropped: result     │ task dropped:
//!     ▼ (skippable job) ▼ dropped on the pool      ▼ result dropped
//!    Over              Over                       Over
//! ```
//!
//! Invariants:
//! - `f` runs at most once, on a pool thread, never under the lock.
//! - A job whose task was dropped while still `Queued` is skipped: `f` is dropped
//!   (on the pool, for `unblock`'s jobs; by the dropping caller for the crate's own,
//!   whose closures own nothing that blocks to drop) and never runs, unless the job was made with
//!   `create_must_run` (closes), which runs anyway. One dropped while `Running`
//!   finishes, and its result is dropped on the pool thread.
//! - A panic in `f` is caught on the pool thread (which survives) and resumed at the
//!   caller's `.await`. A panic while dropping an unwanted result, or in the task's
//!   waker, is caught too: no user code can unwind out of a job.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use super::sched::Inner;
use crate::sync::{lock, Arc as PoolArc, DynArc as Arc, Mutex};

/// A job as the queues see it: something that runs once.
pub(crate) type ErasedJob = Arc<dyn Runnable>;

/// What a pool thread does with a job it took from a queue.
pub(crate) trait Runnable: Send + Sync {
    /// Runs the job (or skips it, if it was cancelled), and returns the waker of the
    /// task waiting for its result, if any. The caller wakes it (with [`wake`]) once
    /// it is itself ready for more work: a pool thread counts itself as searching
    /// first, so the woken task's next push finds it instead of starting a thread.
    fn run(self: Arc<Self>) -> Option<Waker>;
}

/// Wakes `waker`; a panic in the waker (user code) is caught, so it cannot unwind
/// through a pool thread.
pub(crate) fn wake(waker: Waker) {
    let _ = panic::catch_unwind(AssertUnwindSafe(move || waker.wake()));
}

/// Where a job is in its life (see the module docs for the diagram).
enum Stage<F, T> {
    /// In a queue, not yet started; holds the closure.
    Queued(F),
    /// A pool thread is running the closure.
    Running,
    /// Finished; holds the result (or the panic) until the task takes it.
    Done(Result<T, Box<dyn Any + Send>>),
    /// Over: the task took the result, or the job was skipped or abandoned.
    Over,
}

struct State<F, T> {
    stage: Stage<F, T>,
    /// The waker of the task's last pending poll.
    waker: Option<Waker>,
    /// The task was dropped: nobody will take a result.
    abandoned: bool,
}

/// A job with a result slot: the allocation shared by queue and task.
pub(crate) struct JobCell<F, T> {
    state: Mutex<State<F, T>>,
    /// Run the closure even if the task is dropped before it starts (closes).
    must_run: bool,
    /// Where a dropped task sends what it must drop (an unstarted closure, an
    /// untaken result): the pool, so that dropping a task never runs the closure's
    /// or the result's `Drop` (a `std::fs::File`'s close, say) on the caller's
    /// thread. `None` for the crate's own jobs, whose closures and results drop
    /// nothing that blocks (a `Lane` queues its close).
    dropper: Option<PoolArc<Inner>>,
}

impl<F, T> JobCell<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    /// Wraps `f`; returns the queue's handle and the caller's task. Dropping the
    /// task before the job starts skips the job.
    pub(crate) fn create(f: F) -> (ErasedJob, BlockingTask<T>) {
        Self::with_policy(f, false, None)
    }

    /// Like [`create`](JobCell::create), but the job runs even if the task is dropped
    /// before it starts: for work that must happen once asked for, like a close.
    pub(crate) fn create_must_run(f: F) -> (ErasedJob, BlockingTask<T>) {
        Self::with_policy(f, true, None)
    }

    /// Like [`create`](JobCell::create), for a caller's closure: what a dropped task
    /// leaves behind is dropped on `pool` (see `dropper`).
    pub(super) fn create_on(pool: &PoolArc<Inner>, f: F) -> (ErasedJob, BlockingTask<T>) {
        Self::with_policy(f, false, Some(pool.clone()))
    }

    fn with_policy(
        f: F,
        must_run: bool,
        dropper: Option<PoolArc<Inner>>,
    ) -> (ErasedJob, BlockingTask<T>) {
        let cell = Arc::new(JobCell {
            state: Mutex::new(State {
                stage: Stage::Queued(f),
                waker: None,
                abandoned: false,
            }),
            must_run,
            dropper,
        });
        let task = BlockingTask {
            cell: Some(cell.clone() as Arc<dyn Slot<T>>),
        };
        (cell, task)
    }
}

impl<F, T> Runnable for JobCell<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn run(self: Arc<Self>) -> Option<Waker> {
        let f = {
            let mut state = lock(&self.state);
            match std::mem::replace(&mut state.stage, Stage::Running) {
                // The normal case: we own the closure now.
                Stage::Queued(f) => f,
                // The task was dropped while we sat in the queue: skip the job.
                Stage::Over => {
                    state.stage = Stage::Over;
                    return None;
                }
                Stage::Running | Stage::Done(_) => {
                    unreachable!("aopen: a pool job was run twice")
                }
            }
        };
        let result = panic::catch_unwind(AssertUnwindSafe(f));
        let (waker, unwanted) = {
            let mut state = lock(&self.state);
            if state.abandoned {
                // The task was dropped while we ran: nobody wants the result. Drop
                // it here, on the pool thread, after the lock is released.
                state.stage = Stage::Over;
                (None, Some(result))
            } else {
                // The task still waits: hand the result over.
                state.stage = Stage::Done(result);
                (state.waker.take(), None)
            }
        };
        // Dropping the unwanted result runs code we do not own (a `Drop`); a panic
        // there must not kill the pool thread.
        #[cfg(not(aopen_mutant = "abandoned_result_leaked"))]
        let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(unwanted)));
        // Seeded bug for the loom model: the naive pool's hole 1. A result nobody
        // waits for (a descriptor from an open whose future was dropped) is never
        // cleaned up.
        #[cfg(aopen_mutant = "abandoned_result_leaked")]
        std::mem::forget(unwanted);
        waker
    }
}

/// The task side of a [`JobCell`], with the closure type erased.
trait Slot<T>: Send + Sync {
    fn poll_result(&self, cx: &mut Context<'_>) -> Poll<Result<T, Box<dyn Any + Send>>>;
    fn cancel(&self);
}

impl<F, T> Slot<T> for JobCell<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn poll_result(&self, cx: &mut Context<'_>) -> Poll<Result<T, Box<dyn Any + Send>>> {
        let mut state = lock(&self.state);
        match std::mem::replace(&mut state.stage, Stage::Over) {
            // Finished: take the result.
            Stage::Done(result) => Poll::Ready(result),
            // Not finished: put the stage back and leave our waker.
            stage @ (Stage::Queued(_) | Stage::Running) => {
                state.stage = stage;
                match &state.waker {
                    Some(waker) if waker.will_wake(cx.waker()) => {}
                    _ => state.waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            Stage::Over => panic!("aopen: BlockingTask polled after it completed"),
        }
    }

    fn cancel(&self) {
        // Whatever we take out is dropped after the lock is released: on the pool,
        // if this job has a dropper, else here.
        let unwanted = {
            let mut state = lock(&self.state);
            state.waker = None;
            state.abandoned = true;
            match std::mem::replace(&mut state.stage, Stage::Over) {
                // Not started and skippable: the closure (and whatever it owns) is
                // dropped here; the pool thread that pops the job skips it.
                Stage::Queued(f) if !self.must_run => (Some(f), None),
                // Not started but must run, or running: the pool thread runs it to
                // the end and drops the result (it sees `abandoned`).
                stage @ (Stage::Queued(_) | Stage::Running) => {
                    state.stage = stage;
                    (None, None)
                }
                // Finished but never taken: drop the result here.
                Stage::Done(result) => (None, Some(result)),
                // Already taken: nothing is owed to anyone.
                Stage::Over => (None, None),
            }
        };
        if let (Some(pool), (Some(_), _) | (_, Some(_))) = (&self.dropper, &unwanted) {
            let job = Detached::create(move || drop(unwanted));
            Inner::push_to_injector(pool, job);
        }
    }
}

/// The result of a closure run on the pool, as a future.
///
/// Returned by [`unblock`](crate::unblock) and [`Pool::unblock`](crate::Pool::unblock).
/// It is `Send` and `'static`, so it can be spawned on any runtime.
///
/// Dropping it cancels the job: a job that has not started is skipped (its closure is
/// dropped without running); a job that is running finishes on the pool thread and
/// its result is dropped there. Whatever the drop leaves behind (the unstarted
/// closure, a result nobody took) is dropped on the pool, never on the dropping
/// thread: a dropped `unblock(|| std::fs::File::open(..))` closes its file there.
///
/// # Panics
///
/// Polling it resumes the panic of the closure, if it panicked.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// // Spawned on a multi-threaded runtime: it is `Send + 'static`.
/// let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build()?;
/// let len = runtime.block_on(async {
///     let task: aopen::BlockingTask<usize> = aopen::unblock(|| "blocking work".len());
///     tokio::spawn(task).await.unwrap()
/// });
/// assert_eq!(len, 13);
///
/// // Dropped before it started: the closure never runs.
/// let pool = aopen::Pool::builder().max_threads(1).build()?;
/// let (tx, rx) = std::sync::mpsc::channel();
/// let busy = pool.unblock(|| std::thread::sleep(Duration::from_millis(50)));
/// drop(pool.unblock(move || tx.send(()).unwrap()));
/// aopen::block_on(busy);
/// assert!(rx.recv().is_err()); // the sender was dropped unused
/// # Ok::<(), std::io::Error>(())
/// ```
#[must_use = "futures do nothing unless polled; dropping this cancels the job"]
pub struct BlockingTask<T> {
    /// `None` once the result was taken.
    cell: Option<Arc<dyn Slot<T>>>,
}

impl<T> Future for BlockingTask<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let cell = self
            .cell
            .as_ref()
            .expect("aopen: BlockingTask polled after it completed");
        match cell.poll_result(cx) {
            Poll::Ready(result) => {
                self.cell = None;
                match result {
                    Ok(value) => Poll::Ready(value),
                    Err(payload) => panic::resume_unwind(payload),
                }
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T> Drop for BlockingTask<T> {
    fn drop(&mut self) {
        if let Some(cell) = self.cell.take() {
            cell.cancel();
        }
    }
}

impl<T> fmt::Debug for BlockingTask<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingTask")
            .field("completed", &self.cell.is_none())
            .finish()
    }
}

/// A fire-and-forget job: no result, nobody to cancel it.
pub(crate) struct Detached<F> {
    f: Mutex<Option<F>>,
}

impl<F: FnOnce() + Send + 'static> Detached<F> {
    pub(crate) fn create(f: F) -> ErasedJob {
        Arc::new(Detached {
            f: Mutex::new(Some(f)),
        })
    }
}

impl<F: FnOnce() + Send + 'static> Runnable for Detached<F> {
    fn run(self: Arc<Self>) -> Option<Waker> {
        let f = lock(&self.f).take();
        if let Some(f) = f {
            // A panic in detached work has nobody to go to; keep the thread alive.
            let _ = panic::catch_unwind(AssertUnwindSafe(f));
        }
        None
    }
}
