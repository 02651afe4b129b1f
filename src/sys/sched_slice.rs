//! Linux only: the calling thread's time slice, `sched_attr.sched_runtime` of a
//! thread under a fair policy (`SCHED_OTHER` or `SCHED_BATCH`), which
//! EEVDF (Linux 6.6 and later) honours per thread. Used by
//! [`executor::set_time_slice`](crate::executor::set_time_slice).
//!
//! Invariants: a change of slice keeps the thread's policy, nice value and flags as
//! they were (the attributes are read first and written back with only the runtime
//! changed); a thread under another policy (real-time, deadline, `SCHED_IDLE`,
//! whose slices the kernel does not take) is left alone and told so.

use std::io;

/// `struct sched_attr` of `<linux/sched/types.h>` as the kernel first defined it
/// (`SCHED_ATTR_SIZE_VER0`, 48 bytes); the utilisation-clamp fields after it are
/// not needed, and the kernel reads and writes only `size` bytes.
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    sched_policy: u32,
    sched_flags: u64,
    sched_nice: i32,
    sched_priority: u32,
    sched_runtime: u64,
    sched_deadline: u64,
    sched_period: u64,
}

/// `SCHED_ATTR_SIZE_VER0`.
const SCHED_ATTR_SIZE: u32 = 48;
const _: () = assert!(std::mem::size_of::<SchedAttr>() == SCHED_ATTR_SIZE as usize);

/// `SCHED_FLAG_RESET_ON_FORK`: the one flag `sched_getattr` may report that a
/// write of this size takes back.
const RESET_ON_FORK: u64 = 0x01;

/// The policies the kernel takes a slice for (its `fair_policy`).
fn is_fair(policy: u32) -> bool {
    [libc::SCHED_OTHER, libc::SCHED_BATCH]
        .iter()
        .any(|&fair| u32::try_from(fair) == Ok(policy))
}

/// The calling thread's attributes (`sched_getattr(2)`).
fn current_attributes() -> io::Result<SchedAttr> {
    let mut attr = SchedAttr::default();
    // SAFETY: `attr` is a live, writable `sched_attr` of `SCHED_ATTR_SIZE` bytes,
    // which is the size passed; pid 0 is the calling thread and flags must be 0.
    // The kernel writes at most `size` bytes and keeps no pointer.
    let done = unsafe {
        libc::syscall(
            libc::SYS_sched_getattr,
            0,
            &mut attr as *mut SchedAttr,
            SCHED_ATTR_SIZE,
            0,
        )
    };
    match done {
        0 => Ok(attr),
        _ => Err(io::Error::last_os_error()),
    }
}

/// The calling thread's time slice in nanoseconds, as the kernel reports it (the
/// default slice for a thread that never chose one; 0 on kernels before EEVDF).
#[cfg(test)]
pub(crate) fn thread_slice() -> io::Result<u64> {
    Ok(current_attributes()?.sched_runtime)
}

/// Sets the calling thread's time slice to `nanos` (0: the kernel's default),
/// keeping its policy and nice value.
pub(crate) fn set_thread_slice(nanos: u64) -> io::Result<()> {
    let mut attr = current_attributes()?;
    if !is_fair(attr.sched_policy) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "this thread runs under scheduling policy {}, not SCHED_OTHER or SCHED_BATCH: the kernel takes no time slice for it",
                attr.sched_policy
            ),
        ));
    }
    attr.size = SCHED_ATTR_SIZE;
    attr.sched_runtime = nanos;
    // Only reset-on-fork is kept: other reported flags (utilisation clamps) need a
    // larger `sched_attr`. The deadline fields are ignored for a fair policy.
    attr.sched_flags &= RESET_ON_FORK;
    // SAFETY: `attr` is a live `sched_attr` of `SCHED_ATTR_SIZE` bytes (its `size`
    // field says so), filled in by `sched_getattr` above; pid 0 is the calling
    // thread and flags must be 0. The kernel only reads it and keeps no pointer.
    let done = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    match done {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}
