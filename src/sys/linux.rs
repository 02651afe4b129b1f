//! Linux only: what the kernel tells about each thread of this process.
//!
//! The pool watcher reads what a thread is doing from `/proc/self/task/<tid>/wchan`
//! (the sleep census: where in the kernel it sleeps, if it does), so that a thread
//! asleep in a futex (waiting for another thread: a lock, a condition, a channel) is
//! told from one asleep on I/O; from `/proc/self/task/<tid>/stat` (running or
//! asleep) on a kernel that does not name sleeps. Other systems have neither
//! (`sys/mod.rs`).

use std::io::Read;

use crate::sync::{HintUsize, Ordering};

use super::ThreadState;

/// Whether [`thread_state`] can answer: the sleep census is on by default here.
pub(crate) const HAS_THREAD_STATES: bool = true;

/// The calling thread's kernel thread id (`gettid(2)`), for [`thread_state`]; 0 if
/// it does not fit.
pub(crate) fn current_thread_id() -> usize {
    // SAFETY: `gettid(2)` takes no arguments, touches no memory and cannot fail.
    let tid = unsafe { libc::gettid() };
    usize::try_from(tid).unwrap_or(0)
}

/// The bytes of `/proc/self/task/<tid>/stat` read at most: the state is the third
/// field, after the pid and the name (at most 16 bytes, in parentheses).
const STAT_PREFIX: usize = 128;

/// The bytes of `/proc/self/task/<tid>/wchan` read at most: the name of the kernel
/// function a thread sleeps in (`futex_wait_queue`, `futex_do_wait`, ...).
const WCHAN_PREFIX: usize = 64;

/// The state of thread `tid` of this process, from `/proc/self/task/<tid>/wchan`,
/// the kernel function it sleeps in: a futex wait (a function named `futex_*`) is
/// [`ThreadState::Waiting`], any other [`ThreadState::Asleep`], and `0`, not asleep,
/// [`ThreadState::Running`] (on a core or ready for one; also a thread that went to
/// sleep a moment ago and is still on its run queue, which EEVDF keeps there until
/// its turn: seen for 14 % of the looks at threads waiting for a contended lock,
/// 0.5 % of those at threads waiting on a slow FUSE mount).
///
/// A kernel without symbols says `0` for every thread, so until a `wchan` has given
/// a name the state comes from the third field of `/proc/self/task/<tid>/stat` (`R`
/// running, any other asleep), and `wchan` is read only for a thread asleep; the
/// same when `wchan` cannot be read. Neither readable (no `/proc`, a thread that
/// exited, `tid` 0): [`ThreadState::Unknown`].
///
/// Not `/proc/self/task/<tid>/syscall`, which names the call directly: reading it
/// waits until the thread is off its run queue, so the read slept a whole clock
/// tick (4 ms) now and then, in the watcher, and in a loop that calls
/// [`Pool::stats`](crate::Pool::stats). `wchan` and `stat` answer at once.
///
/// Opens a file (two while the kernel has not named a sleep yet) for a moment: one
/// descriptor outside the budget at a time, well inside the headroom the default
/// budget leaves.
pub(crate) fn thread_state(tid: usize) -> ThreadState {
    if tid == 0 {
        return ThreadState::Unknown;
    }
    if WCHAN_NAMES.load(Ordering::Relaxed) != 0 {
        if let Some(state) = wchan_state(tid) {
            return state;
        }
        // Unreadable: ask `stat`.
    }
    let mut stat = [0u8; STAT_PREFIX];
    let state = match read_prefix(&format!("/proc/self/task/{tid}/stat"), &mut stat) {
        Ok(len) => state_of(&stat[..len]),
        Err(_) => return ThreadState::Unknown,
    };
    if state != ThreadState::Asleep {
        return state;
    }
    // Asleep: `wchan` can only say where (its `0` here means "no symbols").
    match wchan_state(tid) {
        Some(ThreadState::Waiting) => ThreadState::Waiting,
        _ => ThreadState::Asleep,
    }
}

/// The state `wchan` of thread `tid` gives: a function's name is
/// [`ThreadState::Waiting`] for a futex wait, else [`ThreadState::Asleep`] (and the
/// kernel names sleeps, from now on); `0` is [`ThreadState::Running`]; `None` when
/// unreadable.
fn wchan_state(tid: usize) -> Option<ThreadState> {
    let mut wchan = [0u8; WCHAN_PREFIX];
    let len = read_prefix(&format!("/proc/self/task/{tid}/wchan"), &mut wchan).ok()?;
    let mut wchan = &wchan[..len];
    while let [rest @ .., b'\n' | b' '] = wchan {
        wchan = rest;
    }
    if wchan == b"0" || wchan.is_empty() {
        return Some(ThreadState::Running);
    }
    WCHAN_NAMES.store(1, Ordering::Relaxed);
    Some(match is_futex_wait(wchan) {
        true => ThreadState::Waiting,
        false => ThreadState::Asleep,
    })
}

/// 1 once a `wchan` read gave a function's name: this kernel names where threads
/// sleep, so its `0` means "not asleep" (else it means "no symbols").
static WCHAN_NAMES: HintUsize = HintUsize::new(0);

/// Reads the start of the file at `path` into `buf`.
fn read_prefix(path: &str, buf: &mut [u8]) -> std::io::Result<usize> {
    std::fs::File::open(path).and_then(|mut file| file.read(buf))
}

/// Whether a `wchan` is a futex wait: the kernel's futex functions are all named
/// `futex_*` (`futex_wait_queue_me` before Linux 5.16, `futex_wait_queue`, then
/// `futex_do_wait`).
fn is_futex_wait(wchan: &[u8]) -> bool {
    wchan.starts_with(b"futex")
}

/// The state in a `stat` line: `pid (comm) state ...`. The name may hold spaces
/// and parentheses, so the state is the first byte after the *last* `) `.
fn state_of(stat: &[u8]) -> ThreadState {
    let state = stat
        .iter()
        .rposition(|&byte| byte == b')')
        .and_then(|close| stat.get(close + 2));
    match state {
        Some(b'R') => ThreadState::Running,
        Some(_) => ThreadState::Asleep,
        None => ThreadState::Unknown,
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn states_of_stat_lines() {
        assert_eq!(state_of(b"12 (aopen-0) R 1 2"), ThreadState::Running);
        assert_eq!(state_of(b"12 (a) b) (c) D 1 2"), ThreadState::Asleep);
        assert_eq!(state_of(b"12 (no state"), ThreadState::Unknown);
        assert_eq!(state_of(b""), ThreadState::Unknown);
    }

    #[test]
    fn futex_waits_by_their_kernel_function() {
        assert!(is_futex_wait(b"futex_do_wait"));
        assert!(is_futex_wait(b"futex_wait_queue_me"));
        assert!(!is_futex_wait(b"hrtimer_nanosleep"));
        assert!(!is_futex_wait(b"pipe_read"));
        assert!(!is_futex_wait(b"0"));
        assert!(!is_futex_wait(b""));
    }

    /// Polls `tid` until it shows `want` (a thread takes a moment to reach its
    /// sleep), for at most ten seconds; returns the last state seen.
    fn settles_to(tid: usize, want: ThreadState) -> ThreadState {
        let start = std::time::Instant::now();
        loop {
            let state = thread_state(tid);
            if state == want || start.elapsed() > std::time::Duration::from_secs(10) {
                return state;
            }
            crate::sync::thread::yield_now();
        }
    }

    /// Starts `body` on a thread and returns it with the thread's id, once known.
    fn spawn_telling_tid(
        body: impl FnOnce() + Send + 'static,
    ) -> (crate::sync::thread::JoinHandle<()>, usize) {
        use crate::sync::{AtomicUsize, Ordering};
        let tid = crate::sync::Arc::new(AtomicUsize::new(0));
        let told = tid.clone();
        let thread = crate::sync::thread::spawn(move || {
            told.store(current_thread_id(), Ordering::SeqCst);
            body();
        });
        while tid.load(Ordering::SeqCst) == 0 {
            crate::sync::thread::yield_now();
        }
        (thread, tid.load(Ordering::SeqCst))
    }

    #[test]
    fn a_thread_blocked_on_a_lock_is_waiting_and_one_reading_a_pipe_is_asleep() {
        use crate::sync::{lock, Arc, Mutex};
        // A lock held here, and a thread that blocks on it.
        let mutex = Arc::new(Mutex::new(()));
        let held = lock(&mutex);
        let contender = mutex.clone();
        let (blocked, tid) = spawn_telling_tid(move || drop(lock(&contender)));
        assert_eq!(settles_to(tid, ThreadState::Waiting), ThreadState::Waiting);
        drop(held);
        blocked.join().unwrap();
        // A thread blocked reading an empty pipe: asleep in `read`, not a futex.
        let (reader, writer) = std::io::pipe().unwrap();
        let (reading, tid) = spawn_telling_tid(move || {
            let mut byte = [0u8; 1];
            assert_eq!((&reader).read(&mut byte).unwrap(), 0);
        });
        assert_eq!(settles_to(tid, ThreadState::Asleep), ThreadState::Asleep);
        drop(writer);
        reading.join().unwrap();
    }

    #[test]
    fn this_thread_is_running_while_it_looks() {
        assert_eq!(thread_state(current_thread_id()), ThreadState::Running);
        assert_eq!(thread_state(0), ThreadState::Unknown);
        assert_eq!(thread_state(usize::MAX), ThreadState::Unknown);
    }
}
