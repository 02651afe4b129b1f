//! The job queues: `crossbeam-deque`, or a loom-visible look-alike.
//!
//! The pool uses the classic work-stealing layout: one global [`Injector`] that
//! callers outside the pool push to, and one [`Worker`] deque per pool thread (with a
//! [`Stealer`] handle the other threads take from when the injector is empty).
//!
//! loom cannot see inside `crossbeam-deque` (its atomics are not loom's), so under
//! `cfg(loom)` this module swaps in a small look-alike with the same interface, built
//! on `Mutex<VecDeque>` from [`crate::sync`]. It is slower and that does not matter:
//! the models check the pool's *protocol* (push, sleep, wake, retire), which sits
//! above the queues and is the same code in both builds.

#[cfg(not(loom))]
pub(crate) use crossbeam_deque::{Injector, Steal, Stealer, Worker};

#[cfg(loom)]
pub(crate) use self::look_alike::{Injector, Steal, Stealer, Worker};

#[cfg(loom)]
mod look_alike {
    use std::collections::VecDeque;

    use crate::sync::{lock, Arc, Mutex};

    /// The outcome of a steal, as in `crossbeam_deque::Steal` (this one never
    /// returns `Retry`, but callers handle it, so the variant stays).
    #[allow(dead_code)]
    pub(crate) enum Steal<T> {
        Empty,
        Success(T),
        Retry,
    }

    /// A FIFO queue shared by every thread.
    pub(crate) struct Injector<T> {
        queue: Mutex<VecDeque<T>>,
    }

    impl<T> Injector<T> {
        pub(crate) fn new() -> Self {
            Injector {
                queue: Mutex::new(VecDeque::new()),
            }
        }

        pub(crate) fn push(&self, item: T) {
            lock(&self.queue).push_back(item);
        }

        pub(crate) fn steal(&self) -> Steal<T> {
            match lock(&self.queue).pop_front() {
                Some(item) => Steal::Success(item),
                None => Steal::Empty,
            }
        }

        #[allow(dead_code)]
        pub(crate) fn is_empty(&self) -> bool {
            lock(&self.queue).is_empty()
        }
    }

    /// One thread's own FIFO deque.
    pub(crate) struct Worker<T> {
        queue: Arc<Mutex<VecDeque<T>>>,
    }

    impl<T> Worker<T> {
        pub(crate) fn new_fifo() -> Self {
            Worker {
                queue: Arc::new(Mutex::new(VecDeque::new())),
            }
        }

        #[allow(dead_code)]
        pub(crate) fn push(&self, item: T) {
            lock(&self.queue).push_back(item);
        }

        pub(crate) fn pop(&self) -> Option<T> {
            lock(&self.queue).pop_front()
        }

        pub(crate) fn stealer(&self) -> Stealer<T> {
            Stealer {
                queue: self.queue.clone(),
            }
        }
    }

    /// Another thread's handle on a [`Worker`].
    pub(crate) struct Stealer<T> {
        queue: Arc<Mutex<VecDeque<T>>>,
    }

    impl<T> Stealer<T> {
        pub(crate) fn steal(&self) -> Steal<T> {
            match lock(&self.queue).pop_front() {
                Some(item) => Steal::Success(item),
                None => Steal::Empty,
            }
        }
    }
}
