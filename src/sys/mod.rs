//! The per-OS seam: what this crate does differently on Linux, on the other Unixes
//! (macOS, FreeBSD, ...) and on Windows.
//!
//! Everything outside `sys/` is portable: it names neither `libc` nor `std::os`,
//! except the Linux fast paths that live in Linux-only modules of their own
//! (`fs/dir.rs`, the bounded `remove_dir_all` in `fs/remove.rs`). A new system
//! gets its answers here, in one place, and the rest of the crate does not change.
//!
//! | what | Linux | macOS, FreeBSD, other Unix | Windows |
//! |---|---|---|---|
//! | a pool thread's state, for the watcher | `/proc/self/task/<tid>/wchan` (`stat` where it names no sleeps) | unknown | unknown |
//! | a thread's CPU time (the watcher's census without `/proc`) | `pthread_getcpuclockid` | FreeBSD the same; macOS `thread_info` | `GetThreadTimes` (in 15.6 ms steps) |
//! | the limit the default budget is sized from | soft `RLIMIT_NOFILE` | the same; macOS at most `OPEN_MAX` | `WINDOWS_HANDLE_LIMIT` (8192) |
//! | close | `close(2)`; `EINTR` means closed | the same (see [`close_file`]) | `CloseHandle` |
//! | positional I/O | `pread`/`pwrite` | the same | `seek_read`/`seek_write`, position put back |
//! | a thread's time slice ([`executor::set_time_slice`](crate::executor::set_time_slice)) | `sched_setattr`'s `sched_runtime` (6.12+) | unsupported | unsupported |
//! | open flags | `mode`, `custom_flags` | the same | `access_mode`, `share_mode`, `custom_flags`, `attributes`, `security_qos_flags` |
//!
//! Invariants every system keeps:
//! - "unknown" is never guessed into an answer: [`ThreadState::Unknown`] is neither
//!   running nor asleep and a `None` CPU time is not zero; the callers say
//!   what they do without the answer;
//! - [`close_file`] releases the descriptor or handle exactly once, whatever it
//!   returns, and never retries (a retry could close a number another thread was
//!   just given);
//! - positional reads and writes leave the file position where it was.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
mod sched_slice;
#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;

#[cfg(target_os = "linux")]
pub(crate) use linux::{current_thread_id, thread_state, HAS_THREAD_STATES};
#[cfg(target_os = "linux")]
pub(crate) use sched_slice::set_thread_slice;
#[cfg(all(target_os = "linux", test))]
pub(crate) use sched_slice::thread_slice;
#[cfg(target_os = "linux")]
pub(crate) use unix::close_fd;
#[cfg(unix)]
pub(crate) use unix::{
    close_file, closed_anyway, current_thread_clock, d_type_of, descriptor_limit, exhaustion_hint,
    into_owned_fd, is_not_seekable, mode_of, os_str_from_bytes, process_cpu_time, read_at,
    release_thread_clock, set_custom_flags, set_mode, thread_cpu_time, write_at, DT_UNKNOWN,
    OPEN_DIR_FLAGS, THREAD_CLOCK_RESOLUTION,
};
#[cfg(not(target_os = "linux"))]
pub(crate) use unknown_threads::{current_thread_id, thread_state, HAS_THREAD_STATES};
#[cfg(windows)]
pub(crate) use windows::{
    close_file, current_thread_clock, descriptor_limit, exhaustion_hint, is_not_seekable,
    process_cpu_time, read_at, release_thread_clock, set_access_mode, set_attributes,
    set_custom_flags, set_security_qos_flags, set_share_mode, thread_cpu_time, write_at,
    THREAD_CLOCK_RESOLUTION,
};

/// What the pool watcher can learn of one pool thread's state at one look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) enum ThreadState {
    /// On a core, or waiting for one (Linux state `R`): computing.
    Running,
    /// Asleep in the kernel: on I/O (`D`), or interruptibly (`S`: a slow `open`, a
    /// pipe), in any call but a futex wait.
    Asleep,
    /// Asleep in a futex wait: for another thread of this process (a lock, a
    /// condition variable, a channel), not for a device or a server. Linux only;
    /// elsewhere such a thread is [`Asleep`](ThreadState::Asleep) or unknown.
    Waiting,
    /// The system would not say (no `/proc`, no thread id, a read that failed).
    /// Neither running nor asleep.
    Unknown,
}

/// Where the system has no `/proc` to read a thread's state from: every answer is
/// "unknown". (The pool watcher then judges threads
/// by their CPU clocks, where the system has them: [`thread_cpu_time`].)
#[cfg(not(target_os = "linux"))]
mod unknown_threads {
    use super::ThreadState;

    /// The sleep census (`/proc`) is not there: off by default.
    pub(crate) const HAS_THREAD_STATES: bool = false;

    /// The calling thread's id for [`thread_state`]: none (0) here.
    pub(crate) fn current_thread_id() -> usize {
        0
    }

    /// Always [`ThreadState::Unknown`].
    pub(crate) fn thread_state(_tid: usize) -> ThreadState {
        ThreadState::Unknown
    }
}
