//! Every Unix (Linux, macOS, FreeBSD, ...): descriptors, their limit, `close(2)`,
//! `errno`, positional I/O and `open(2)` flags.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{IntoRawFd, OwnedFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::time::Duration;

/// `OPEN_MAX` of macOS's `<sys/syslimits.h>` (the libc crate does not have it): the
/// most descriptors a process gets, whatever `RLIMIT_NOFILE` says.
#[cfg(target_vendor = "apple")]
const OPEN_MAX: u64 = 10240;

/// The soft `RLIMIT_NOFILE` of this process (`u64::MAX` when unlimited): what the
/// default descriptor budget is sized from.
///
/// On macOS the kernel refuses descriptors past `OPEN_MAX` (10,240) even when the
/// limit says unlimited (or more), so the limit reported there is at most that.
pub(crate) fn descriptor_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable `rlimit`; getrlimit only writes into it.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let soft = if limit.rlim_cur == libc::RLIM_INFINITY {
        u64::MAX
    } else {
        // `rlim_t` is `u64` on Linux and macOS, `i64` on FreeBSD (where only
        // RLIM_INFINITY, handled above, is out of `u64`'s range).
        #[allow(clippy::useless_conversion)]
        u64::try_from(limit.rlim_cur).unwrap_or(u64::MAX)
    };
    #[cfg(target_vendor = "apple")]
    let soft = soft.min(OPEN_MAX);
    Ok(soft)
}

/// Closes `fd` and reports what `close(2)` said.
///
/// `EINTR` counts as closed: Linux, macOS and FreeBSD release the descriptor before
/// anything that can be interrupted (an NFS flush, say), so on them the number is
/// already free, and retrying could close a descriptor another thread was just
/// given. (POSIX leaves the state unspecified; the systems that keep the descriptor
/// open on `EINTR`, such as HP-UX, are not ones this crate builds for.) What is lost
/// is only the flush's own verdict, as on Linux.
pub(crate) fn close_fd(fd: OwnedFd) -> io::Result<()> {
    let raw = fd.into_raw_fd();
    // SAFETY: `into_raw_fd` gave us sole ownership of `raw`; nothing else closes it
    // or uses it after this call.
    let rc = unsafe { libc::close(raw) };
    if rc == 0 {
        return Ok(());
    }
    closed_anyway(io::Error::last_os_error())
}

/// The result of a `close(2)` (or `closedir(3)`) that failed with `err`: `EINTR`
/// means the descriptor is gone all the same (see [`close_fd`]).
pub(crate) fn closed_anyway(err: io::Error) -> io::Result<()> {
    if err.kind() == io::ErrorKind::Interrupted {
        Ok(())
    } else {
        Err(err)
    }
}

/// Closes `file` and reports what `close(2)` said (see [`close_fd`]).
pub(crate) fn close_file(file: File) -> io::Result<()> {
    close_fd(OwnedFd::from(file))
}

/// Whether `err`, from a seek on `file`, says the file cannot seek (`ESPIPE`: a
/// FIFO, a socket, a terminal).
pub(crate) fn is_not_seekable(_file: &File, err: &io::Error) -> bool {
    err.raw_os_error() == Some(libc::ESPIPE)
}

/// What to add to the message of an error with OS code `code` when it says the
/// process (`EMFILE`) or the system (`ENFILE`) is out of descriptors.
pub(crate) fn exhaustion_hint(code: i32) -> Option<&'static str> {
    match code {
        libc::EMFILE => Some(
            " (this process is out of file descriptors: lower the pool's descriptor \
             budget or raise RLIMIT_NOFILE)",
        ),
        libc::ENFILE => Some(" (the system is out of file descriptors)"),
        _ => None,
    }
}

/// Reads up to `buf.len()` bytes at `offset` (`pread(2)`); the position stays.
pub(crate) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    file.read_at(buf, offset)
}

/// Writes up to `buf.len()` bytes at `offset` (`pwrite(2)`); the position stays.
pub(crate) fn write_at(file: &File, buf: &[u8], offset: u64) -> io::Result<usize> {
    file.write_at(buf, offset)
}

/// The permission bits of a file `open(2)` creates (`OpenOptionsExt::mode`).
pub(crate) fn set_mode(options: &mut OpenOptions, mode: u32) {
    options.mode(mode);
}

/// Extra `open(2)` flags (`OpenOptionsExt::custom_flags`).
pub(crate) fn set_custom_flags(options: &mut OpenOptions, flags: i32) {
    options.custom_flags(flags);
}

/// The flags `opendir(3)` opens a directory with, besides read and close-on-exec:
/// `O_DIRECTORY`, and `O_NONBLOCK` so that a FIFO swapped in cannot block the open.
pub(crate) const OPEN_DIR_FLAGS: i32 = libc::O_DIRECTORY | libc::O_NONBLOCK;

/// `d_type` of an entry whose type the file system did not give.
pub(crate) const DT_UNKNOWN: u8 = libc::DT_UNKNOWN;

/// `file`'s descriptor, owned (for `fdopendir`).
pub(crate) fn into_owned_fd(file: File) -> OwnedFd {
    OwnedFd::from(file)
}

/// The bytes of a name, as an `OsStr` (on Unix any bytes are one).
pub(crate) fn os_str_from_bytes(bytes: &[u8]) -> &std::ffi::OsStr {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(bytes)
}

/// The `d_type` (`DT_*`) that `file_type` stands for.
pub(crate) fn d_type_of(file_type: std::fs::FileType) -> u8 {
    use std::os::unix::fs::FileTypeExt;
    match () {
        _ if file_type.is_dir() => libc::DT_DIR,
        _ if file_type.is_file() => libc::DT_REG,
        _ if file_type.is_symlink() => libc::DT_LNK,
        _ if file_type.is_fifo() => libc::DT_FIFO,
        _ if file_type.is_socket() => libc::DT_SOCK,
        _ if file_type.is_block_device() => libc::DT_BLK,
        _ if file_type.is_char_device() => libc::DT_CHR,
        _ => libc::DT_UNKNOWN,
    }
}

/// The permission bits of `permissions`, for the `mode` of a file created to match
/// (`fs::copy`).
pub(crate) fn mode_of(permissions: &std::fs::Permissions) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    permissions.mode()
}

/// How finely [`thread_cpu_time`] counts: to the nanosecond, as far as the watcher
/// is concerned.
pub(crate) const THREAD_CLOCK_RESOLUTION: Duration = Duration::ZERO;

/// Gives back what [`current_thread_clock`] took: nothing, a `pthread_t` is no
/// resource.
pub(crate) fn release_thread_clock(_token: usize) {}

/// A number naming the calling thread for [`thread_cpu_time`]: its `pthread_t`
/// (an integer or a pointer, depending on the libc), kept opaque and only ever given
/// back to [`thread_cpu_time`]. 0 names no thread.
pub(crate) fn current_thread_clock() -> usize {
    // SAFETY: `pthread_self` takes no arguments and cannot fail.
    let pthread = unsafe { libc::pthread_self() };
    #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
    let token = pthread as usize;
    token
}

/// The CPU time the thread named by `token` ([`current_thread_clock`]) has used,
/// if the system will say. The thread must not have exited (the caller keeps it
/// alive, as the pool does under its stealers lock).
///
/// Linux and FreeBSD: its `pthread_getcpuclockid` clock. macOS: `thread_info` of
/// its Mach thread (user plus system time).
pub(crate) fn thread_cpu_time(token: usize) -> Option<Duration> {
    if token == 0 {
        return None;
    }
    #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
    let pthread = token as libc::pthread_t;
    thread_cpu_time_of(pthread)
}

#[cfg(not(target_vendor = "apple"))]
fn thread_cpu_time_of(pthread: libc::pthread_t) -> Option<Duration> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: `pthread` is the `pthread_t` of a thread that has not exited (see
    // `thread_cpu_time`); `clock` is writable.
    let rc = unsafe { libc::pthread_getcpuclockid(pthread, &mut clock) };
    if rc != 0 {
        return None;
    }
    clock_time(clock)
}

#[cfg(target_vendor = "apple")]
fn thread_cpu_time_of(pthread: libc::pthread_t) -> Option<Duration> {
    // SAFETY: `pthread` is a live thread (see `thread_cpu_time`); the port comes
    // without a new reference, so there is none to give back.
    let port = unsafe { libc::pthread_mach_thread_np(pthread) };
    // SAFETY: all-zero is a valid `thread_basic_info` (plain integers).
    let mut info: libc::thread_basic_info = unsafe { std::mem::zeroed() };
    let mut count = (std::mem::size_of::<libc::thread_basic_info>()
        / std::mem::size_of::<libc::integer_t>())
        as libc::mach_msg_type_number_t;
    // SAFETY: `info` is writable and `count` says how many `integer_t` it holds;
    // `thread_info` writes at most that many.
    let rc = unsafe {
        libc::thread_info(
            port,
            libc::THREAD_BASIC_INFO as libc::thread_flavor_t,
            std::ptr::addr_of_mut!(info).cast(),
            &mut count,
        )
    };
    if rc != libc::KERN_SUCCESS {
        return None;
    }
    let micros = |time: libc::time_value_t| {
        u64::try_from(time.seconds).unwrap_or(0) * 1_000_000
            + u64::try_from(time.microseconds).unwrap_or(0)
    };
    Some(Duration::from_micros(
        micros(info.user_time) + micros(info.system_time),
    ))
}

/// The CPU time this whole process has used (`CLOCK_PROCESS_CPUTIME_ID`), if the
/// system will say.
pub(crate) fn process_cpu_time() -> Option<Duration> {
    clock_time(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// `clock_gettime(clock)` as a duration.
fn clock_time(clock: libc::clockid_t) -> Option<Duration> {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `time` is writable; an invalid `clock` is an error, not UB.
    if unsafe { libc::clock_gettime(clock, &mut time) } != 0 {
        return None;
    }
    let secs = u64::try_from(time.tv_sec).ok()?;
    let nanos = u32::try_from(time.tv_nsec).ok()?;
    Some(Duration::new(secs, nanos))
}
