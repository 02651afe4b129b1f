//! Linux only: what the kernel tells about each thread of this process.
//!
//! The pool watcher reads a thread's scheduler state from
//! `/proc/self/task/<tid>/stat` (the sleep census). Other systems have none
//! (`sys/mod.rs`).

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

/// The state of thread `tid` of this process, from the third field of
/// `/proc/self/task/<tid>/stat`: `R` is [`ThreadState::Running`], any other state
/// (in practice `S`, interruptible, e.g. a futex or a slow `open`, or `D`,
/// uninterruptible, e.g. NFS or disk I/O) [`ThreadState::Asleep`]; a file that
/// cannot be read (no `/proc`, a thread that exited, `tid` 0) is
/// [`ThreadState::Unknown`].
///
/// Opens the file for a moment: one descriptor outside the budget, well inside the
/// headroom the default budget leaves.
pub(crate) fn thread_state(tid: usize) -> ThreadState {
    if tid == 0 {
        return ThreadState::Unknown;
    }
    let mut stat = [0u8; STAT_PREFIX];
    let read = std::fs::File::open(format!("/proc/self/task/{tid}/stat"))
        .and_then(|mut file| file.read(&mut stat));
    let Ok(len) = read else {
        return ThreadState::Unknown;
    };
    state_of(&stat[..len])
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
    fn this_thread_is_running_while_it_looks() {
        assert_eq!(thread_state(current_thread_id()), ThreadState::Running);
        assert_eq!(thread_state(0), ThreadState::Unknown);
        assert_eq!(thread_state(usize::MAX), ThreadState::Unknown);
    }
}
