//! A lane: the ordered life of one open resource (a file or a directory stream).
//!
//! # The problem
//!
//! With a pool, two operations on one descriptor can run on two threads at once, and
//! a close can run while a read is still in a system call; the descriptor number is
//! then reused by the next `open`, and the late read or write lands in another file.
//!
//! # The answer
//!
//! Every open resource gets a lane: a FIFO of jobs that a single drainer runs on the
//! pool, one at a time, in the order they were issued. The close is the lane's last
//! job. So, for each resource:
//!
//! - **Close after open.** A lane is only made on the pool thread, after `open(2)`
//!   returned, from its result; if nobody takes the result (the open future was
//!   dropped), dropping the lane queues its close like any other drop.
//! - **Close after every operation.** Operations and the close share one queue with
//!   one drainer, so the close starts after every operation queued before it
//!   finished, and none can be queued after it (the close consumes the handle, or
//!   marks it closed).
//!   An operation whose future was dropped before it started is skipped; one that
//!   had started finishes first.
//! - **Issue order.** The queue is FIFO and has one drainer at a time (`draining`).
//! - **Permit after close.** The resource's [`Permit`] is dropped only after
//!   `close` returned.
//! - **Never block the caller.** Dropping a [`Lane`] only pushes a job.
//!
//! The drainer runs at most [`LANE_BATCH`] jobs per turn, then queues itself again
//! behind other work, so one busy file cannot hog a pool thread.

use std::collections::VecDeque;
use std::io;
use std::task::Waker;

use crate::budget::Permit;
use crate::pool::job::{wake, Detached, ErasedJob, JobCell, Runnable};
use crate::pool::{BlockingTask, Pool};
use crate::sync::{lock, DynArc, Mutex};

/// How many queued jobs a lane's drainer runs before it yields its pool thread.
pub(crate) const LANE_BATCH: usize = 16;

/// Something the pool opened and must close exactly once.
pub trait Resource: Send + 'static {
    /// Closes it, reporting what `close(2)` said.
    fn close(self) -> io::Result<()>;
}

/// The owner's handle on a lane. Dropping it queues the close.
pub struct Lane<R: Resource> {
    inner: DynArc<LaneInner<R>>,
    /// The close is queued: nothing more may be, and dropping queues nothing.
    closed: bool,
}

struct LaneInner<R> {
    pool: Pool,
    /// The resource and its permit while open; `None` after the close.
    held: Mutex<Option<Held<R>>>,
    queue: Mutex<Queue>,
}

struct Held<R> {
    resource: R,
    permit: Permit,
}

struct Queue {
    /// Jobs issued and not yet started, in issue order.
    jobs: VecDeque<ErasedJob>,
    /// A drainer is queued on the pool or running: it will take `jobs` in order.
    /// Whoever sets this pushes the drainer; the drainer clears it when it finds
    /// `jobs` empty, under the same lock.
    draining: bool,
}

impl<R: Resource> Lane<R> {
    /// Makes a lane for a resource that was just opened, owning its permit.
    /// Called on the pool thread that opened it.
    pub fn new(pool: Pool, resource: R, permit: Permit) -> Lane<R> {
        Lane {
            inner: DynArc::new(LaneInner {
                pool,
                held: Mutex::new(Some(Held { resource, permit })),
                queue: Mutex::new(Queue {
                    jobs: VecDeque::new(),
                    draining: false,
                }),
            }),
            closed: false,
        }
    }

    /// The pool this lane runs on.
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// Reads something off the resource of a lane that was just made, before any job
    /// was queued on it. Only a running job holds the resource's lock, and a new lane
    /// has none, so this never waits for a system call.
    pub fn inspect_new<T>(&self, look: impl FnOnce(&R) -> T) -> T {
        debug_assert!({
            let queue = lock(&self.inner.queue);
            !queue.draining && queue.jobs.is_empty()
        });
        let held = lock(&self.inner.held);
        let held = held.as_ref().expect("a new lane holds its resource");
        look(&held.resource)
    }

    /// `op` as a job body that runs on the open resource.
    fn on_resource<F, T>(&self, op: F) -> impl FnOnce() -> T + Send + 'static
    where
        F: FnOnce(&mut R) -> T + Send + 'static,
    {
        assert!(
            !self.closed,
            "aopen: lane used after close (a bug in aopen)"
        );
        let inner = self.inner.clone();
        move || {
            let mut held = lock(&inner.held);
            let held = held
                .as_mut()
                .expect("aopen: an operation ran after its close (a bug in aopen)");
            op(&mut held.resource)
        }
    }

    /// Queues `op` behind every job issued before it. Dropping the returned task
    /// before `op` started skips it.
    ///
    /// The job's place is taken by this call, not when the task is first polled: the
    /// `&self` methods of `File` call it when they are called, so their order in the
    /// lane is the order of the calls.
    pub fn submit<F, T>(&self, op: F) -> BlockingTask<T>
    where
        F: FnOnce(&mut R) -> T + Send + 'static,
        T: Send + 'static,
    {
        let (job, task) = JobCell::create(self.on_resource(op));
        self.inner.enqueue(job);
        task
    }

    /// Queues `op` behind every job issued before it, with nobody waiting for it: it
    /// runs even so (unlike [`submit`](Lane::submit)'s, which a dropped task skips).
    pub fn submit_detached<F>(&self, op: F)
    where
        F: FnOnce(&mut R) + Send + 'static,
    {
        self.inner.enqueue(Detached::create(self.on_resource(op)));
    }

    /// Queues the close behind every job issued before it; the task reports what
    /// `close(2)` said. The close runs even if the task is dropped.
    pub fn close(mut self) -> BlockingTask<io::Result<()>> {
        // `self` is dropped after this, and a closed lane's drop queues nothing.
        self.close_in_place()
    }

    /// [`close`](Lane::close) for an owner that holds the lane by `&mut` (a poll-based
    /// close): queues the close and leaves the handle closed. After it,
    /// [`pool`](Lane::pool) still answers, [`submit`](Lane::submit) panics (callers
    /// check first), and dropping the handle queues nothing: the close runs once.
    pub fn close_in_place(&mut self) -> BlockingTask<io::Result<()>> {
        assert!(!self.closed, "aopen: lane closed twice");
        self.closed = true;
        let closer = self.inner.clone();
        let (job, task) = JobCell::create_must_run(move || closer.close_now());
        self.inner.enqueue(job);
        task
    }
}

/// A resource a lane handed out with [`Lane::release`], with its permit: the crate
/// still holds it until [`take`](Released::take). Dropped untaken (the future that
/// asked for it was dropped), it queues its close on the pool, permit after close,
/// so no descriptor is lost or closed on the dropping thread.
pub struct Released<R: Resource> {
    held: Option<Held<R>>,
    pool: Pool,
}

impl<R: Resource> Released<R> {
    /// The resource, now the caller's; its permit goes back to the budget here,
    /// since the crate no longer holds the descriptor and will never close it.
    pub fn take(mut self) -> R {
        let Held { resource, permit } = self.held.take().expect("taken once, by value");
        drop(permit);
        resource
    }
}

impl<R: Resource> Drop for Released<R> {
    fn drop(&mut self) {
        if let Some(Held { resource, permit }) = self.held.take() {
            self.pool.push_job(Detached::create(move || {
                // Nobody took it: close it as the lane would have, permit after close.
                let _ = resource.close();
                drop(permit);
            }));
        }
    }
}

impl<R: Resource> Lane<R> {
    /// Queues the hand-over of the resource behind every job issued before it, in
    /// place of a close: the task gives it back with its permit. It runs even if the
    /// task is dropped (then [`Released`]'s drop closes it on the pool).
    pub fn release(mut self) -> BlockingTask<Released<R>> {
        assert!(!self.closed, "aopen: lane released after close");
        // No close: dropping `self` after this queues nothing.
        self.closed = true;
        let inner = self.inner.clone();
        let (job, task) = JobCell::create_must_run(move || Released {
            held: lock(&inner.held).take(),
            pool: inner.pool.clone(),
        });
        self.inner.enqueue(job);
        task
    }

    /// The resource now, if no job of this lane is queued or running; else `None`
    /// and nothing changes. Its permit goes back to the budget (the crate no longer
    /// holds the descriptor), and the lane is closed without a close.
    ///
    /// No job can start in between: only this handle queues jobs, and `&mut self`
    /// is the only one; an idle lane has no drainer that could still run one.
    pub fn try_release(&mut self) -> Option<R> {
        if self.closed {
            return None;
        }
        {
            let queue = lock(&self.inner.queue);
            if queue.draining || !queue.jobs.is_empty() {
                return None;
            }
        }
        let Held { resource, permit } = lock(&self.inner.held).take()?;
        self.closed = true;
        drop(permit);
        Some(resource)
    }
}

/// Runs `open` on the pool and gives what it opened a lane that owns `permit`.
///
/// The lane is made on the pool thread, right after `open` returned. If the caller
/// drops the returned task meanwhile, the lane is dropped wherever the result ends up
/// (on the pool thread, or in the task's drop) and that queues the close: the
/// resource is closed exactly once, after its open.
pub fn open_in_lane<R, F>(pool: &Pool, permit: Permit, open: F) -> BlockingTask<io::Result<Lane<R>>>
where
    R: Resource,
    F: FnOnce() -> io::Result<R> + Send + 'static,
{
    let lane_pool = pool.clone();
    pool.unblock(move || open().map(|resource| Lane::new(lane_pool, resource, permit)))
}

impl<R: Resource> Drop for Lane<R> {
    fn drop(&mut self) {
        if self.closed {
            // `close` or `close_in_place` queued the close already.
            return;
        }
        let closer = self.inner.clone();
        let job = Detached::create(move || {
            // Nobody asked for this close's result; the error is lost, as the docs of
            // `File` say (use `File::close` to see it).
            let _ = closer.close_now();
        });
        #[cfg(not(aopen_mutant = "lane_close_bypasses_queue"))]
        self.inner.enqueue(job);
        // Seeded bug for the loom model: the close goes straight to the pool, where
        // it can run before (or during) operations still in the lane.
        #[cfg(aopen_mutant = "lane_close_bypasses_queue")]
        self.inner.pool.push_job(job);
    }
}

impl<R: Resource> LaneInner<R> {
    fn enqueue(self: &DynArc<Self>, job: ErasedJob) {
        let start_drainer = {
            let mut queue = lock(&self.queue);
            queue.jobs.push_back(job);
            !std::mem::replace(&mut queue.draining, true)
        };
        if start_drainer {
            self.pool.push_job(self.clone());
        }
    }

    /// Closes the resource, then gives its permit back. Runs as the lane's last job.
    fn close_now(&self) -> io::Result<()> {
        let held = lock(&self.held).take();
        match held {
            Some(Held { resource, permit }) => {
                #[cfg(aopen_mutant = "permit_before_close")]
                drop(permit);
                let result = resource.close();
                // Only now may another open take this unit: the descriptor is gone.
                #[cfg(not(aopen_mutant = "permit_before_close"))]
                drop(permit);
                result
            }
            // Unreachable by construction: the close is queued once, last.
            None => Ok(()),
        }
    }
}

impl<R: Resource> Runnable for LaneInner<R> {
    fn run(self: DynArc<Self>) -> Option<Waker> {
        // The waiter of the job that ran last. It is woken as soon as we know another
        // job follows (that one may take long); if the lane runs dry instead, it goes
        // back to the pool thread, which wakes it once it counts itself searching, so
        // the waiter's next operation finds a thread instead of starting one.
        let mut waiter: Option<Waker> = None;
        for _ in 0..LANE_BATCH {
            let job = {
                let mut queue = lock(&self.queue);
                match queue.jobs.pop_front() {
                    Some(job) => job,
                    None => {
                        // Empty: the next enqueue starts a new drainer.
                        queue.draining = false;
                        return waiter;
                    }
                }
            };
            if let Some(earlier) = waiter.take() {
                wake(earlier);
            }
            waiter = job.run();
        }
        if let Some(earlier) = waiter.take() {
            wake(earlier);
        }
        // More may be left: go to the back of the pool's shared queue, still
        // draining, behind the work other callers queued meanwhile. (Not this
        // thread's own deque: a thread takes from it first, so the lane would keep
        // its thread however much other work waits.)
        let again = self.clone();
        #[cfg(not(aopen_mutant = "lane_requeue_local"))]
        self.pool.push_job_to_back(again);
        #[cfg(aopen_mutant = "lane_requeue_local")]
        self.pool.push_job(again);
        None
    }
}
