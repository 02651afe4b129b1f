//! [`LocalExecutor`]: many `!Send` futures on one thread, and their [`Task`] handles.
//!
//! Spawned futures live in a slab owned by the executor (a `RefCell`: the executor
//! is `!Send`, so only its thread touches it). Each task has a waker, an `Arc` of
//! `{ key, scheduled, shared }` where `shared` holds the run queue (a mutex around a
//! `VecDeque` of keys) and the executor's [`Parker`]. Waking a task, from any thread:
//!
//! 1. sets `scheduled`; if it was already set, the task is already queued: done;
//! 2. otherwise pushes the task's key on the run queue and unparks the executor.
//!
//! [`LocalExecutor::run`] pops keys on its own thread and polls those tasks, so every
//! poll of a task happens on the thread that runs the executor, whichever thread woke
//! it. A key carries a generation; a key whose task has finished or been cancelled
//! (its slot empty or reused) is skipped.
//!
//! Invariants:
//! - a task's `scheduled` flag is cleared *before* it is polled, so a wake during the
//!   poll queues it again and no wake is lost;
//! - a task is in the run queue at most once;
//! - no borrow of the slab is held while user code runs: a task's future is taken
//!   out of its slot for the poll and put back after, and futures are dropped only
//!   after the borrow that removed them ended. So a task may spawn tasks, and drop
//!   other tasks' handles (or its own), while it is being polled;
//! - `run` polls at most [`TASKS_PER_TURN`] queued tasks before it looks at its main
//!   future again, so a flood of ready tasks cannot starve the main future, and a
//!   main future that is always ready cannot starve the tasks;
//! - `run` parks only when the run queue is empty and the main future is not woken;
//!   a wake after that check unparks the parker (or leaves it notified), so the park
//!   returns.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::{pin, Pin};
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use super::parker::Parker;
use super::{arc_waker, ArcWake};
use crate::sync::{self, Arc, AtomicBool, Mutex, Ordering};

/// How many queued tasks [`LocalExecutor::run`] polls in one turn before it checks
/// its main future again. Bounds how long a flood of ready tasks can delay the main
/// future (and how long the main future can delay the tasks: one poll per turn).
pub(crate) const TASKS_PER_TURN: usize = 64;

/// Names a task: its slot in the slab and the slot's generation when it was spawned.
/// A key whose generation no longer matches its slot names a task that is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    /// Index into [`Slab::slots`].
    index: usize,
    /// [`Slot::generation`] at spawn time.
    generation: u64,
}

/// What wakers, on any thread, share with the executor's thread.
struct Shared {
    /// Keys of tasks that were woken and not yet polled, oldest first. Each live task
    /// appears at most once (see [`TaskWaker::scheduled`]).
    queue: Mutex<VecDeque<Key>>,
    /// Where [`LocalExecutor::run`] sleeps when nothing is ready.
    parker: Parker,
}

/// The shared part of a task's waker.
struct TaskWaker {
    /// The task this waker wakes.
    key: Key,
    /// Set when the task's key is in (or being pushed onto) the run queue; cleared by
    /// the executor just before it polls the task.
    scheduled: AtomicBool,
    /// The run queue and parker of the task's executor.
    shared: Arc<Shared>,
}

impl ArcWake for TaskWaker {
    fn wake_by_ref(this: &Arc<Self>) {
        // false -> true: this wake is the one that queues the task. Already true: the
        // task is queued and not yet polled; that poll will see whatever this waker's
        // caller did before waking (AcqRel pairs with the executor's clearing swap).
        if !this.scheduled.swap(true, Ordering::AcqRel) {
            sync::lock(&this.shared.queue).push_back(this.key);
            this.shared.parker.unpark();
        }
    }
}

/// The shared part of the waker of the future passed to [`LocalExecutor::run`].
struct MainWaker {
    /// Set by a wake, cleared by `run` just before it polls the main future.
    woken: AtomicBool,
    /// The executor's run queue and parker (only the parker is used here).
    shared: Arc<Shared>,
}

impl ArcWake for MainWaker {
    fn wake_by_ref(this: &Arc<Self>) {
        this.woken.store(true, Ordering::Release);
        this.shared.parker.unpark();
    }
}

/// A spawned future with its output sent to its [`Task`], type-erased.
type BoxFuture = Pin<Box<dyn Future<Output = ()>>>;

/// A live task in the slab.
struct Entry {
    /// The future; `None` while `run` is polling it (it is then on `run`'s stack).
    future: Option<BoxFuture>,
    /// A waker over `flag`, handed to every poll of this task.
    waker: Waker,
    /// The task's waker state, for clearing `scheduled` before a poll.
    flag: Arc<TaskWaker>,
    /// Set when the task's [`Task`] was dropped while the task was being polled:
    /// `run` drops the future as soon as that poll returns.
    cancelled: bool,
}

/// One place in the slab.
struct Slot {
    /// Bumped every time the slot is emptied, so old keys stop matching.
    generation: u64,
    /// The task living here, if any.
    entry: Option<Entry>,
}

/// The executor's tasks, addressed by [`Key`].
#[derive(Default)]
struct Slab {
    /// Every slot ever used; empty ones are listed in `free`.
    slots: Vec<Slot>,
    /// Indices of empty slots, reused last-in first-out.
    free: Vec<usize>,
    /// Number of occupied slots (live tasks).
    len: usize,
}

impl Slab {
    /// The key the next [`insert`](Self::insert) will use.
    fn vacant_key(&self) -> Key {
        match self.free.last() {
            Some(&index) => Key {
                index,
                generation: self.slots[index].generation,
            },
            None => Key {
                index: self.slots.len(),
                generation: 0,
            },
        }
    }

    /// Puts `entry` in the slot named by `key`, which must be [`vacant_key`](Self::vacant_key).
    fn insert(&mut self, key: Key, entry: Entry) {
        debug_assert_eq!(key, self.vacant_key());
        if key.index == self.slots.len() {
            self.slots.push(Slot {
                generation: key.generation,
                entry: Some(entry),
            });
        } else {
            self.free.pop();
            self.slots[key.index].entry = Some(entry);
        }
        self.len += 1;
    }

    /// The live task named by `key`, if it is still there.
    fn get_mut(&mut self, key: Key) -> Option<&mut Entry> {
        let slot = self.slots.get_mut(key.index)?;
        if slot.generation != key.generation {
            return None;
        }
        slot.entry.as_mut()
    }

    /// Removes the task named by `key`. The caller drops the entry (and with it any
    /// future still inside) after its borrow of the slab ends.
    fn remove(&mut self, key: Key) -> Option<Entry> {
        let slot = self.slots.get_mut(key.index)?;
        if slot.generation != key.generation {
            return None;
        }
        let entry = slot.entry.take()?;
        slot.generation += 1;
        self.free.push(key.index);
        self.len -= 1;
        Some(entry)
    }

    /// Removes every task; the caller drops them after its borrow ends.
    fn drain(&mut self) -> Vec<Entry> {
        let mut entries = Vec::with_capacity(self.len);
        for (index, slot) in self.slots.iter_mut().enumerate() {
            if let Some(entry) = slot.entry.take() {
                slot.generation += 1;
                self.free.push(index);
                entries.push(entry);
            }
        }
        self.len = 0;
        entries
    }
}

/// The executor's state, shared (weakly) with its [`Task`]s.
struct Inner {
    /// The tasks. Borrowed only briefly, never across a poll or a drop of user code.
    slab: RefCell<Slab>,
    /// The run queue and parker, shared with wakers on any thread.
    shared: Arc<Shared>,
    /// True while [`LocalExecutor::run`] is on the stack, to refuse nested runs.
    running: Cell<bool>,
}

impl Inner {
    /// Polls up to `budget` queued tasks; returns how many keys it popped. Fewer
    /// than `budget` means the queue was empty at the last look.
    fn run_queued(&self, budget: usize) -> usize {
        for popped in 0..budget {
            let next = sync::lock(&self.shared.queue).pop_front();
            match next {
                Some(key) => self.poll_task(key),
                None => return popped,
            }
        }
        budget
    }

    /// Polls the task named by `key` once, if it still exists.
    fn poll_task(&self, key: Key) {
        let (mut future, flag, waker) = {
            let mut slab = self.slab.borrow_mut();
            // Finished or cancelled since it was queued: a stale key.
            let Some(entry) = slab.get_mut(key) else {
                return;
            };
            // Its future is not in the slab: a poll of it panicked earlier (its
            // remains are reclaimed when the executor is dropped).
            let Some(future) = entry.future.take() else {
                return;
            };
            (future, Arc::clone(&entry.flag), entry.waker.clone())
        };

        // Clear before polling, so a wake during the poll queues the task again. A
        // swap (not a store) acquires what a waker that found the flag set released.
        #[cfg(not(aopen_mutant = "local_clear_scheduled_after_poll"))]
        flag.scheduled.swap(false, Ordering::AcqRel);
        let poll = future.as_mut().poll(&mut Context::from_waker(&waker));
        // Seeded bug for the loom model: clearing after the poll swallows a wake that
        // came in during it (the waker saw the flag set and queued nothing).
        #[cfg(aopen_mutant = "local_clear_scheduled_after_poll")]
        flag.scheduled.swap(false, Ordering::AcqRel);

        let finished = {
            let mut slab = self.slab.borrow_mut();
            match slab.get_mut(key) {
                // Its handle was dropped during the poll: cancel it now.
                Some(entry) if entry.cancelled => slab.remove(key),
                // Still wanted and not done: back into its slot.
                Some(entry) if poll.is_pending() => {
                    entry.future = Some(future);
                    return;
                }
                // Done: its output went to its `Task` inside the poll.
                Some(_) => slab.remove(key),
                // Nothing but `run` (which is busy here) or the executor's drop (which
                // cannot run while `run` borrows the executor) removes a task that
                // is being polled.
                None => unreachable!("aopen LocalExecutor: a task vanished while polled"),
            }
        };
        // Drop the future (user code) and the entry only now, with no borrow held.
        drop(future);
        drop(finished);
    }

    /// Cancels the task named by `key` (its [`Task`] was dropped).
    fn cancel(&self, key: Key) {
        let removed = {
            let mut slab = self.slab.borrow_mut();
            // Already finished, or already cancelled.
            let Some(entry) = slab.get_mut(key) else {
                return;
            };
            if entry.future.is_none() {
                // Being polled right now (it drops its own handle): `poll_task` drops
                // the future when the poll returns.
                entry.cancelled = true;
                None
            } else {
                // Idle: take it out; its future is dropped below.
                slab.remove(key)
            }
        };
        drop(removed);
    }
}

/// An executor for `!Send` futures that runs them all on the thread that calls
/// [`run`](Self::run).
///
/// [`spawn`](Self::spawn) adds a task and returns its [`Task`] handle; nothing runs
/// until [`run`](Self::run) is called, which drives the spawned tasks (including
/// tasks they spawn) until the future given to `run` completes. Tasks left
/// unfinished when `run` returns stay in the executor and continue at the next
/// `run`.
///
/// To spawn from inside a task, give the task a way to reach the executor, e.g. an
/// `Rc<LocalExecutor>` (or a `&'static LocalExecutor`). Note that a task holding an
/// `Rc` of its own executor keeps the executor alive until that task finishes.
///
/// # Dropping the executor
///
/// Dropping a `LocalExecutor` drops the futures of all its remaining tasks (on the
/// dropping thread). Awaiting the [`Task`] of such a task afterwards **panics** with
/// "task was cancelled because its LocalExecutor was dropped", rather than staying
/// pending forever; a [`Task`] that is merely dropped is fine.
///
/// # Panics in tasks
///
/// A panic in a task propagates out of `run` (the executor stays usable). That task
/// is gone: awaiting its [`Task`] panics too.
///
/// # Examples
///
/// ```
/// use aopen::LocalExecutor;
/// use std::rc::Rc;
///
/// let ex = LocalExecutor::new();
/// let shared = Rc::new(5); // not `Send`: fine here
/// let task = ex.spawn({
///     let shared = Rc::clone(&shared);
///     async move { *shared * 2 }
/// });
/// assert_eq!(ex.run(task), 10);
/// ```
///
/// Many file system calls at once, on one thread, with no runtime:
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("aopen-doc-local-executor-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let ex = aopen::LocalExecutor::new();
/// let tasks: Vec<_> = (0..8)
///     .map(|i| ex.spawn(aopen::fs::write(dir.join(format!("{i}.txt")), i.to_string())))
///     .collect();
/// ex.run(async {
///     for task in tasks {
///         task.await?; // all eight writes were in flight on the pool together
///     }
///     Ok::<(), std::io::Error>(())
/// })?;
/// assert_eq!(std::fs::read_dir(&dir)?.count(), 8);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// The executor is `!Send` (its tasks need not be `Send`, so they must stay on its
/// thread):
///
/// ```compile_fail,E0277
/// fn assert_send<T: Send>(_: &T) {}
/// let ex = aopen::LocalExecutor::new();
/// assert_send(&ex); // error: `Rc<...>` cannot be sent between threads safely
/// ```
pub struct LocalExecutor {
    /// The state; [`Task`]s hold it weakly.
    inner: Rc<Inner>,
}

impl LocalExecutor {
    /// An executor with no tasks.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = aopen::LocalExecutor::new();
    /// assert_eq!(ex.run(async { 1 + 1 }), 2);
    /// ```
    pub fn new() -> LocalExecutor {
        LocalExecutor {
            inner: Rc::new(Inner {
                slab: RefCell::new(Slab::default()),
                shared: Arc::new(Shared {
                    queue: Mutex::new(VecDeque::new()),
                    parker: Parker::new(),
                }),
                running: Cell::new(false),
            }),
        }
    }

    /// Adds `fut` as a task and returns its handle. The future need not be `Send`.
    ///
    /// The task first runs during a [`run`](Self::run) call on this executor. Await
    /// the [`Task`] for its output, drop it to cancel the task, or
    /// [`detach`](Task::detach) it to let the task run on by itself.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    ///
    /// let ex = aopen::LocalExecutor::new();
    /// let count = Rc::new(Cell::new(0));
    /// for _ in 0..3 {
    ///     let count = Rc::clone(&count);
    ///     ex.spawn(async move { count.set(count.get() + 1) }).detach();
    /// }
    /// assert_eq!(count.get(), 0); // nothing runs before `run`
    /// ex.run(aopen::sleep(std::time::Duration::from_millis(1)));
    /// assert_eq!(count.get(), 3);
    /// ```
    pub fn spawn<F>(&self, fut: F) -> Task<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let join = Rc::new(RefCell::new(Join {
            status: Status::Running,
            waker: None,
        }));
        let completion = Completion(Rc::clone(&join));
        // If this future is dropped before it finishes (cancelled, executor dropped,
        // panicked), `completion` is dropped with it and marks the task cancelled.
        let future: BoxFuture = Box::pin(async move {
            let completion = completion;
            let output = fut.await;
            completion.finish(Status::Done(output));
        });

        let flag = {
            let mut slab = self.inner.slab.borrow_mut();
            let key = slab.vacant_key();
            let flag = Arc::new(TaskWaker {
                key,
                scheduled: AtomicBool::new(false),
                shared: Arc::clone(&self.inner.shared),
            });
            let entry = Entry {
                future: Some(future),
                waker: arc_waker(Arc::clone(&flag)),
                flag: Arc::clone(&flag),
                cancelled: false,
            };
            slab.insert(key, entry);
            flag
        };
        // A new task is ready to run: queue it like any woken task.
        TaskWaker::wake_by_ref(&flag);

        Task {
            join,
            handle: Some((Rc::downgrade(&self.inner), flag.key)),
        }
    }

    /// Drives this executor's tasks on the current thread until `fut` completes, and
    /// returns its output.
    ///
    /// The thread sleeps when neither `fut` nor any task is ready. `fut` is polled
    /// only when woken; tasks are polled in the order they were woken, at most 64
    /// between two looks at `fut`, so neither side can starve the other.
    ///
    /// Like [`block_on`](super::block_on), this blocks the thread: do not call it on
    /// an async runtime's worker thread.
    ///
    /// # Panics
    ///
    /// If called while this executor is already running (from inside one of its own
    /// tasks or its main future); and, passing it on, if `fut` or a task panics.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = aopen::LocalExecutor::new();
    /// let doubled = ex.spawn(async { 21 * 2 });
    /// let text = ex.run(async {
    ///     let n = doubled.await; // the main future awaits a spawned task
    ///     format!("{n}")
    /// });
    /// assert_eq!(text, "42");
    /// ```
    pub fn run<F: Future>(&self, fut: F) -> F::Output {
        let _running = RunningGuard::enter(&self.inner.running);
        let mut fut = pin!(fut);
        let main = Arc::new(MainWaker {
            // The first turn polls `fut` once without a wake.
            woken: AtomicBool::new(true),
            shared: Arc::clone(&self.inner.shared),
        });
        let waker = arc_waker(Arc::clone(&main));
        let mut cx = Context::from_waker(&waker);

        loop {
            super::fire_due_timers();
            if main.woken.swap(false, Ordering::AcqRel) {
                if let Poll::Ready(output) = fut.as_mut().poll(&mut cx) {
                    return output;
                }
            }
            let popped = self.inner.run_queued(TASKS_PER_TURN);
            // A full turn may have left work queued; a woken main future wants a poll.
            if popped == TASKS_PER_TURN || main.woken.load(Ordering::Acquire) {
                continue;
            }
            // The queue was empty and main not woken when we looked; any wake since
            // then has notified the parker, so this park returns at once for it.
            // A sleep that comes due ends the park: the next turn fires it.
            super::park(&self.inner.shared.parker);
        }
    }
}

impl Default for LocalExecutor {
    fn default() -> LocalExecutor {
        LocalExecutor::new()
    }
}

impl fmt::Debug for LocalExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("LocalExecutor");
        match self.inner.slab.try_borrow() {
            Ok(slab) => d.field("tasks", &slab.len),
            Err(_) => d.field("tasks", &"<busy>"),
        };
        d.field("running", &self.inner.running.get()).finish()
    }
}

impl Drop for LocalExecutor {
    fn drop(&mut self) {
        // Dropping a future may drop `Task`s of other tasks (already drained: a no-op)
        // or, through an `Rc` it holds, spawn more: loop until nothing is left.
        loop {
            let entries = self.inner.slab.borrow_mut().drain();
            if entries.is_empty() {
                break;
            }
            drop(entries);
        }
        // Wakers on other threads may still push keys; they name nothing now.
        sync::lock(&self.inner.shared.queue).clear();
    }
}

/// Marks the executor as running for the life of one `run` call.
struct RunningGuard<'a>(&'a Cell<bool>);

impl<'a> RunningGuard<'a> {
    /// Sets the flag, panicking if it was already set.
    fn enter(running: &'a Cell<bool>) -> RunningGuard<'a> {
        assert!(
            !running.replace(true),
            "aopen: LocalExecutor::run called while that executor is already running \
             (from inside one of its tasks or its main future)"
        );
        RunningGuard(running)
    }
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

/// Where a task's output waits for its [`Task`].
enum Status<T> {
    /// The future has not finished (and was not dropped).
    Running,
    /// The future finished with this output; the `Task` has not taken it.
    Done(T),
    /// The `Task` took the output.
    Taken,
    /// The future was dropped before it finished: its executor was dropped, or it
    /// panicked. (A cancel through the `Task` drops the `Task` first, so no `Task`
    /// ever sees that.)
    Cancelled,
}

/// The state a task's future and its [`Task`] share.
struct Join<T> {
    /// The task's progress.
    status: Status<T>,
    /// The waker of whoever last polled the `Task` while the task was running.
    waker: Option<Waker>,
}

/// Held by a task's future; reports its end to the [`Task`]: `finish` on success,
/// or `Cancelled` when dropped before that.
struct Completion<T>(Rc<RefCell<Join<T>>>);

impl<T> Completion<T> {
    /// Moves `Running` to `status` and wakes the `Task`'s waker. A no-op once the
    /// status is no longer `Running`.
    fn finish(&self, status: Status<T>) {
        let waker = {
            let mut join = self.0.borrow_mut();
            if !matches!(join.status, Status::Running) {
                return;
            }
            join.status = status;
            join.waker.take()
        };
        // Woken with no borrow held: the waker may be anything.
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Drop for Completion<T> {
    fn drop(&mut self) {
        self.finish(Status::Cancelled);
    }
}

/// A handle to a task spawned on a [`LocalExecutor`]; a future of its output.
///
/// - Awaiting it yields the task's output. Poll it on the executor's thread (it is
///   `!Send`), typically from the executor's main future or another of its tasks.
/// - Dropping it cancels the task: the task's future is dropped right away, inside
///   `drop`, unless that future is being polled at that moment (the task dropped its
///   own handle), in which case it is dropped as soon as that poll returns. Either
///   way the future is never polled again.
/// - [`detach`](Self::detach) lets the task run to completion on its own; its output
///   is then dropped.
///
/// # Panics
///
/// Polling panics if the task's future was dropped before it finished because its
/// [`LocalExecutor`] was dropped ("task was cancelled because its LocalExecutor was
/// dropped") or because it panicked; and if polled again after it returned the output.
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
///
/// let ex = aopen::LocalExecutor::new();
/// let ran = Rc::new(Cell::new(false));
/// let cancelled = ex.spawn({
///     let ran = Rc::clone(&ran);
///     async move { ran.set(true) }
/// });
/// drop(cancelled); // dropping the handle cancels the task before it ran
/// let answer = ex.spawn(async { 42 });
/// assert_eq!(ex.run(answer), 42);
/// assert!(!ran.get());
/// ```
///
/// A `Task` is `!Send`: it belongs to its executor's thread.
///
/// ```compile_fail,E0277
/// let ex = aopen::LocalExecutor::new();
/// let task = ex.spawn(async { 1 });
/// // error: `Rc<RefCell<...>>` cannot be sent between threads safely
/// std::thread::spawn(move || drop(task));
/// ```
#[must_use = "dropping a Task cancels it; use `.detach()` to let it run"]
pub struct Task<T> {
    /// The output slot shared with the task's future.
    join: Rc<RefCell<Join<T>>>,
    /// The executor and the task's key, to cancel on drop; `None` once detached.
    handle: Option<(Weak<Inner>, Key)>,
}

impl<T> Task<T> {
    /// Lets the task run to completion without this handle; its output is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = aopen::LocalExecutor::new();
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// ex.spawn(async move { tx.send("done").unwrap() }).detach();
    /// // Tasks run in the order they were woken: the detached one before `last`.
    /// let last = ex.spawn(async {});
    /// ex.run(last);
    /// assert_eq!(rx.try_recv().unwrap(), "done");
    /// ```
    pub fn detach(mut self) {
        self.handle = None;
    }
}

impl<T> Future for Task<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut join = self.join.borrow_mut();
        match mem::replace(&mut join.status, Status::Taken) {
            Status::Done(output) => Poll::Ready(output),
            Status::Running => {
                join.status = Status::Running;
                match &mut join.waker {
                    Some(waker) if waker.will_wake(cx.waker()) => {}
                    slot => *slot = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            Status::Cancelled => {
                join.status = Status::Cancelled;
                drop(join);
                let executor_alive = self
                    .handle
                    .as_ref()
                    .is_some_and(|(executor, _)| executor.strong_count() > 0);
                if executor_alive {
                    panic!("aopen: task was cancelled because it panicked");
                }
                panic!("aopen: task was cancelled because its LocalExecutor was dropped");
            }
            Status::Taken => panic!("aopen: Task polled after it returned its output"),
        }
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        let Some((executor, key)) = self.handle.take() else {
            return; // detached
        };
        let running = matches!(self.join.borrow().status, Status::Running);
        if running {
            if let Some(executor) = executor.upgrade() {
                executor.cancel(key);
            }
        }
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match self.join.try_borrow().as_deref().map(|j| &j.status) {
            Ok(Status::Running) => "running",
            Ok(Status::Done(_)) => "finished",
            Ok(Status::Taken) => "output taken",
            Ok(Status::Cancelled) => "cancelled",
            Err(_) => "<busy>",
        };
        f.debug_struct("Task").field("status", &status).finish()
    }
}
