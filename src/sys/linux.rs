//! Linux only: what the kernel tells about each thread of this process.
//!
//! The pool watcher reads what a thread is doing from
//! `/proc/self/task/<tid>/syscall` (the sleep census): running, or asleep in which
//! system call, so a thread asleep in a futex (waiting for another thread: a lock,
//! a condition, a channel) is told from one asleep on I/O. Where that file cannot be
//! read (a kernel without it, a security module that refuses it) the state comes
//! from `/proc/self/task/<tid>/stat`, which cannot tell the two sleeps apart. Other
//! systems have neither (`sys/mod.rs`).

use std::io::Read;

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

/// The bytes of `/proc/self/task/<tid>/syscall` read at most: the call's number is
/// its first field (the whole line, with six arguments, the stack and the program
/// counter in hex, is under 200 bytes).
const SYSCALL_PREFIX: usize = 32;

/// The state of thread `tid` of this process. From `/proc/self/task/<tid>/syscall`:
/// `running` is [`ThreadState::Running`] (on a core or ready for one), a futex wait
/// [`ThreadState::Waiting`], any other call, or none (a page fault),
/// [`ThreadState::Asleep`]. Where that file cannot be read, from the third field of
/// `/proc/self/task/<tid>/stat`: `R` is running, any other state (`S`, `D`) asleep.
/// Neither readable (no `/proc`, a thread that exited, `tid` 0):
/// [`ThreadState::Unknown`].
///
/// Opens a file for a moment: one descriptor outside the budget, well inside the
/// headroom the default budget leaves.
pub(crate) fn thread_state(tid: usize) -> ThreadState {
    if tid == 0 {
        return ThreadState::Unknown;
    }
    if tid == current_thread_id() {
        // Its own `syscall` file would name the `read` that reads it.
        return ThreadState::Running;
    }
    let mut line = [0u8; SYSCALL_PREFIX];
    if let Ok(len) = read_prefix(&format!("/proc/self/task/{tid}/syscall"), &mut line) {
        if let Some(state) = state_of_syscall(&line[..len]) {
            return state;
        }
    }
    let mut stat = [0u8; STAT_PREFIX];
    match read_prefix(&format!("/proc/self/task/{tid}/stat"), &mut stat) {
        Ok(len) => state_of(&stat[..len]),
        Err(_) => ThreadState::Unknown,
    }
}

/// Reads the start of the file at `path` into `buf`.
fn read_prefix(path: &str, buf: &mut [u8]) -> std::io::Result<usize> {
    std::fs::File::open(path).and_then(|mut file| file.read(buf))
}

/// The state in a `syscall` line: `running`; or the number of the call the thread
/// sleeps in, then its arguments; or `-1` and two addresses when it sleeps outside
/// any call. `None` for anything else (the caller then asks `stat`).
fn state_of_syscall(line: &[u8]) -> Option<ThreadState> {
    if line.starts_with(b"running") {
        return Some(ThreadState::Running);
    }
    let first = line.split(|&byte| byte == b' ' || byte == b'\n').next()?;
    let number: libc::c_long = std::str::from_utf8(first).ok()?.parse().ok()?;
    Some(match number == libc::SYS_futex {
        true => ThreadState::Waiting,
        false => ThreadState::Asleep,
    })
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
    fn states_of_syscall_lines() {
        let futex = format!(
            "{} 0x7f12 0x80 0x2 0x0 0x0 0x0 0x7ffd 0x7f34",
            libc::SYS_futex
        );
        assert_eq!(
            state_of_syscall(futex.as_bytes()),
            Some(ThreadState::Waiting)
        );
        let read = format!(
            "{} 0x3 0x7f12 0x1000 0x0 0x0 0x0 0x7ffd 0x7f34",
            libc::SYS_read
        );
        assert_eq!(state_of_syscall(read.as_bytes()), Some(ThreadState::Asleep));
        assert_eq!(
            state_of_syscall(b"-1 0x7ffd 0x7f34\n"),
            Some(ThreadState::Asleep)
        );
        assert_eq!(state_of_syscall(b"running\n"), Some(ThreadState::Running));
        assert_eq!(state_of_syscall(b""), None);
        assert_eq!(state_of_syscall(b"what"), None);
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
