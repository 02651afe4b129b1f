//! [`set_time_slice`]: ask the kernel to give the executor's thread a core soon after
//! it wakes, for loops that must answer within a millisecond or two while the pool
//! keeps every core busy.
//!
//! Why a thread needs this: an executor's thread parks between turns and is woken by
//! a timer or a finished job. If every core runs a pool thread then (a cached walk
//! does: the pool keeps one thread per core computing), the woken thread waits for
//! one of them to give its core up. Under Linux's EEVDF scheduler that thread keeps
//! the core for its whole slice (up to a clock tick, 4 ms at 250 Hz) unless the
//! woken thread asks for shorter slices than it has; then the kernel switches at
//! once (Linux 6.12 and later). Lower priorities for the pool threads do not do this:
//! measured, nice 19 left the same lateness, and `SCHED_IDLE` (which would) lets any
//! busy thread of any program starve the pool.
//!
//! Invariants: only the calling thread is changed, and only its slice (its policy
//! and nice value stay); nothing is changed unless the caller asks; a slice the
//! kernel would clamp is refused, not silently changed.

use std::io;
use std::time::Duration;

/// The shortest slice Linux takes (it clamps shorter ones up to this).
pub const MIN_TIME_SLICE: Duration = Duration::from_micros(100);

/// The longest slice Linux takes (it clamps longer ones down to this).
pub const MAX_TIME_SLICE: Duration = Duration::from_millis(100);

/// Asks the kernel to run the calling thread in time slices of `slice`, or with the
/// kernel's default slice again for [`Duration::ZERO`].
///
/// Call it on the thread that runs [`block_on`](crate::block_on) or
/// [`LocalExecutor::run`](crate::LocalExecutor::run) when a task there must keep a
/// deadline (a heartbeat, a ticker, a request loop) while the pool keeps every core
/// busy. A thread whose slice is shorter than the running thread's is given the
/// core as soon as it wakes, instead of after that thread's slice. Measured on two
/// cores (`cargo run --release --example tree_compare -- --million`, a 1 ms ticker
/// beside two sorted walks of a million files, five runs each way): with 100 µs,
/// 2–5 % of the ticks were over 2 ms late instead of 15–25 %, p99 2.7–3.1 ms
/// instead of 4.4–14.4 ms, and the compare took no longer (median 2.46 s against
/// 2.62 s). Since the pool's threads yield their core between jobs every 250 µs
/// (see the pool's "Turns"), which helps a loop that was switched out while
/// computing, the slice is the smaller part: 0.09–0.24 % of the ticks late with
/// 100 µs against 0.40–1.12 % without, p99 1.24–1.42 ms against 1.76–2.02 ms.
///
/// The price: when other threads want its core, the thread is also switched out
/// after `slice` of computing, so a thread that computes for long stretches pays
/// more context switches. The setting stays with the thread until changed, and a
/// thread it spawns inherits it: the pool's threads too, if this thread is the one
/// that starts them (measured: the ticker above is the same whether they keep it or
/// are put back to the default).
///
/// Linux only, and only Linux 6.12 or later acts on it (older kernels accept the
/// call and keep scheduling as before). Needs no privilege.
///
/// # Errors
///
/// - [`ErrorKind::InvalidInput`](io::ErrorKind::InvalidInput) for a slice other
///   than zero outside [`MIN_TIME_SLICE`]..=[`MAX_TIME_SLICE`] (the kernel would
///   clamp it), and for a thread under a real-time, deadline or `SCHED_IDLE`
///   policy, which has no slice to set;
/// - [`ErrorKind::Unsupported`](io::ErrorKind::Unsupported) on systems other than
///   Linux;
/// - what `sched_setattr(2)` returns (`ENOSYS` before Linux 3.14).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// match aopen::executor::set_time_slice(Duration::from_micros(500)) {
///     Ok(()) => {}
///     Err(err) if err.kind() == std::io::ErrorKind::Unsupported => {}
///     Err(err) => return Err(err),
/// }
/// // ... run the executor ...
/// # #[cfg(target_os = "linux")]
/// aopen::executor::set_time_slice(Duration::ZERO)?; // the default again
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn set_time_slice(slice: Duration) -> io::Result<()> {
    if slice != Duration::ZERO && !(MIN_TIME_SLICE..=MAX_TIME_SLICE).contains(&slice) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "aopen::executor::set_time_slice: a slice of {slice:?} is outside {MIN_TIME_SLICE:?}..={MAX_TIME_SLICE:?}, the range Linux takes (Duration::ZERO for its default)"
            ),
        ));
    }
    set(slice)
}

#[cfg(target_os = "linux")]
fn set(slice: Duration) -> io::Result<()> {
    // At most 100 ms here: the nanoseconds fit.
    let nanos = u64::try_from(slice.as_nanos()).unwrap_or(u64::MAX);
    crate::sys::set_thread_slice(nanos).map_err(|err| {
        io::Error::new(
            err.kind(),
            format!("aopen::executor::set_time_slice({slice:?}): {err}"),
        )
    })
}

#[cfg(not(target_os = "linux"))]
fn set(slice: Duration) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!(
            "aopen::executor::set_time_slice({slice:?}): per-thread time slices are a Linux scheduler's, not this system's"
        ),
    ))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Runs `f` on a thread of its own, so that the test harness's threads keep
    /// their slices.
    #[cfg(target_os = "linux")]
    fn on_own_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::spawn(f).join().unwrap()
    }

    #[test]
    fn a_slice_the_kernel_would_clamp_is_refused_with_its_value() {
        for slice in [Duration::from_micros(99), Duration::from_millis(101)] {
            let err = set_time_slice(slice).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
            assert!(err.to_string().contains(&format!("{slice:?}")), "{err}");
        }
    }

    #[cfg(not(target_os = "linux"))]
    #[test]
    fn elsewhere_it_is_unsupported() {
        let err = set_time_slice(MIN_TIME_SLICE).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Unsupported, "{err}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_slice_is_set_and_reset_and_the_nice_value_kept() {
        use crate::sys::thread_slice;
        on_own_thread(|| {
            let tid = crate::sys::current_thread_id() as libc::id_t;
            // SAFETY: `setpriority(2)` on this thread's id reads no memory; a
            // higher nice value needs no privilege.
            let raised = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, 7) };
            assert_eq!(raised, 0, "{}", io::Error::last_os_error());
            let default = thread_slice().unwrap();
            set_time_slice(Duration::from_micros(250)).unwrap();
            let set = thread_slice().unwrap();
            set_time_slice(Duration::ZERO).unwrap();
            let reset = thread_slice().unwrap();
            // SAFETY: as above (7 is not -1, the value that may mean an error).
            let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, tid) };
            assert_eq!(nice, 7, "the nice value changed with the slice");
            // Kernels before 6.12 report no slice for a fair thread (0) and
            // ignore the setting; those after report the one in force.
            if default != 0 {
                assert_eq!(set, 250_000, "the slice set is not the one in force");
                assert_eq!(reset, default, "ZERO did not restore the default");
            }
        });
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_thread_without_slices_is_told_so_and_left_alone() {
        on_own_thread(|| {
            let param = libc::sched_param { sched_priority: 0 };
            // SAFETY: `param` is a live `sched_param`; pid 0 is this thread, and
            // moving to SCHED_IDLE needs no privilege.
            let moved = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
            assert_eq!(moved, 0, "{}", io::Error::last_os_error());
            let err = set_time_slice(MIN_TIME_SLICE).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
            assert!(err.to_string().contains("policy 5"), "{err}");
            // SAFETY: pid 0 is this thread; the call reads no memory.
            assert_eq!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_IDLE);
        });
    }
}
