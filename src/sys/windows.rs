//! Windows: handles, their default count, `CloseHandle`, Win32 error codes,
//! positional I/O and `CreateFileW` options.
//!
//! A `File` here is a `std::fs::File` handle on the pool, as on Unix, and every rule
//! holds as there: the budget counts handles, the close runs last in the file's lane,
//! and [`close_file`] returns what `CloseHandle` said.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::windows::fs::{FileExt, OpenOptionsExt};
use std::os::windows::io::{AsRawHandle, IntoRawHandle, RawHandle};
use std::time::Duration;

/// The handle count the default descriptor budget is sized from on Windows, which
/// has no `RLIMIT_NOFILE`: a process may hold about 16 million handles, bounded by
/// memory, not by a limit a program can read. This stands in for a soft limit,
/// so the default budget is `8192 - 8192 / 4 = 6144` handles; set
/// `descriptor_budget` (or `AOPEN_DESCRIPTOR_BUDGET`) for another.
pub(crate) const WINDOWS_HANDLE_LIMIT: u64 = 8192;

/// `ERROR_TOO_MANY_OPEN_FILES`: the Win32 code for "out of handles" (`EMFILE`'s
/// number, 24, is `ERROR_BAD_LENGTH` here).
const ERROR_TOO_MANY_OPEN_FILES: i32 = 4;

/// `FILE_TYPE_DISK` of `GetFileType`: a file that can seek.
const FILE_TYPE_DISK: u32 = 1;

#[link(name = "kernel32")]
extern "system" {
    fn CloseHandle(handle: RawHandle) -> i32;
    fn GetFileType(handle: RawHandle) -> u32;
}

/// The limit the default descriptor budget is sized from: [`WINDOWS_HANDLE_LIMIT`].
pub(crate) fn descriptor_limit() -> io::Result<u64> {
    Ok(WINDOWS_HANDLE_LIMIT)
}

/// Closes `file` with `CloseHandle` and returns its error. The handle is released
/// either way: `CloseHandle` fails only for a handle that was not valid, and is
/// never retried.
pub(crate) fn close_file(file: File) -> io::Result<()> {
    let handle = file.into_raw_handle();
    // SAFETY: `into_raw_handle` gave us sole ownership of `handle`; nothing else
    // closes it or uses it after this call.
    if unsafe { CloseHandle(handle) } != 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether a seek on `file` that failed with `err` failed because the file cannot
/// seek (a pipe, a console): Win32 has no one code for that (`ESPIPE`'s number, 29,
/// is `ERROR_WRITE_FAULT` here), so ask the handle what it is.
pub(crate) fn is_not_seekable(file: &File, _err: &io::Error) -> bool {
    // SAFETY: the handle is `file`'s and stays open for this call; GetFileType only
    // reads what kind of object it is.
    unsafe { GetFileType(file.as_raw_handle()) != FILE_TYPE_DISK }
}

/// What to add to the message of an error with Win32 code `code` when it says the
/// process is out of handles.
pub(crate) fn exhaustion_hint(code: i32) -> Option<&'static str> {
    (code == ERROR_TOO_MANY_OPEN_FILES)
        .then_some(" (this process is out of file handles: lower the pool's descriptor budget)")
}

/// Runs a `seek_read` / `seek_write`, which on Windows move the file position, and
/// puts the position back, so that these behave like `pread`/`pwrite` on Unix.
///
/// A `File`'s operations run one at a time in its lane, so nothing of that `File`
/// sees the moved position. A [`try_clone`](crate::File::try_clone) shares the
/// position (one kernel file object, as a `dup` on Unix) and runs in a lane of its
/// own: a read on the clone that runs between the two seeks reads at the moved
/// position. Don't mix positional and cursor I/O across clones.
fn position_kept<T>(file: &File, op: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    let mut cursor = file;
    let position = cursor.stream_position()?;
    let result = op();
    let restored = cursor.seek(SeekFrom::Start(position));
    match (result, restored) {
        (Err(err), _) => Err(err),
        (Ok(_), Err(err)) => Err(err),
        (Ok(value), Ok(_)) => Ok(value),
    }
}

/// Reads up to `buf.len()` bytes at `offset` (`seek_read`); the position stays.
pub(crate) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    position_kept(file, || file.seek_read(buf, offset))
}

/// Writes up to `buf.len()` bytes at `offset` (`seek_write`); the position stays.
pub(crate) fn write_at(file: &File, buf: &[u8], offset: u64) -> io::Result<usize> {
    position_kept(file, || file.seek_write(buf, offset))
}

/// `dwDesiredAccess` of `CreateFileW` (`OpenOptionsExt::access_mode`).
pub(crate) fn set_access_mode(options: &mut OpenOptions, access: u32) {
    options.access_mode(access);
}

/// `dwShareMode` of `CreateFileW` (`OpenOptionsExt::share_mode`).
pub(crate) fn set_share_mode(options: &mut OpenOptions, share: u32) {
    options.share_mode(share);
}

/// Extra `dwFlagsAndAttributes` flags (`OpenOptionsExt::custom_flags`).
pub(crate) fn set_custom_flags(options: &mut OpenOptions, flags: u32) {
    options.custom_flags(flags);
}

/// File attributes of a file `CreateFileW` creates (`OpenOptionsExt::attributes`).
pub(crate) fn set_attributes(options: &mut OpenOptions, attributes: u32) {
    options.attributes(attributes);
}

/// `SECURITY_SQOS_PRESENT` flags (`OpenOptionsExt::security_qos_flags`).
pub(crate) fn set_security_qos_flags(options: &mut OpenOptions, flags: u32) {
    options.security_qos_flags(flags);
}

/// How finely `GetThreadTimes` and `GetProcessTimes` count: they advance at the
/// clock interrupt, 64 times a second by default (Wine: at Linux's 100 Hz ticks).
/// The watcher judges CPU clocks over windows several times this long.
pub(crate) const THREAD_CLOCK_RESOLUTION: Duration = Duration::from_micros(15_625);

/// `FILETIME`: a count of 100-nanosecond units, in two halves.
#[repr(C)]
#[derive(Default)]
struct FileTime {
    low: u32,
    high: u32,
}

impl FileTime {
    fn duration(&self) -> Duration {
        /// `FILETIME` counts in units of this many nanoseconds.
        const NANOS_PER_UNIT: u64 = 100;
        let units = (u64::from(self.high) << 32) | u64::from(self.low);
        Duration::from_nanos(units.saturating_mul(NANOS_PER_UNIT))
    }
}

/// `DUPLICATE_SAME_ACCESS` of `DuplicateHandle`.
const DUPLICATE_SAME_ACCESS: u32 = 2;

#[link(name = "kernel32")]
extern "system" {
    fn GetCurrentThread() -> RawHandle;
    fn GetCurrentProcess() -> RawHandle;
    fn DuplicateHandle(
        source_process: RawHandle,
        source: RawHandle,
        target_process: RawHandle,
        target: *mut RawHandle,
        access: u32,
        inherit: i32,
        options: u32,
    ) -> i32;
    fn GetThreadTimes(
        thread: RawHandle,
        creation: *mut FileTime,
        exit: *mut FileTime,
        kernel: *mut FileTime,
        user: *mut FileTime,
    ) -> i32;
    fn GetProcessTimes(
        process: RawHandle,
        creation: *mut FileTime,
        exit: *mut FileTime,
        kernel: *mut FileTime,
        user: *mut FileTime,
    ) -> i32;
}

/// A number naming the calling thread for [`thread_cpu_time`]: a real handle to it
/// (`GetCurrentThread` gives only a pseudo-handle that means "the caller"), or 0 if
/// Windows refused one. Give it back with [`release_thread_clock`]; it stays valid
/// after the thread exits (its times can still be read) until then. One handle
/// per pool thread, outside the budget.
pub(crate) fn current_thread_clock() -> usize {
    let mut handle: RawHandle = std::ptr::null_mut();
    // SAFETY: both pseudo-handles need no closing; `handle` is writable and, on
    // success, a new handle this function hands to its caller to close.
    let ok = unsafe {
        DuplicateHandle(
            GetCurrentProcess(),
            GetCurrentThread(),
            GetCurrentProcess(),
            &mut handle,
            0,
            0,
            DUPLICATE_SAME_ACCESS,
        )
    };
    if ok == 0 {
        return 0;
    }
    handle as usize
}

/// Closes the handle [`current_thread_clock`] gave (nothing for 0).
pub(crate) fn release_thread_clock(token: usize) {
    if token != 0 {
        // SAFETY: `token` is a handle from `current_thread_clock`, closed only here,
        // once (its owner calls this from its `Drop`).
        unsafe { CloseHandle(token as RawHandle) };
    }
}

/// The CPU time (kernel plus user) the thread named by `token` has used, if
/// Windows will say; counted at [`THREAD_CLOCK_RESOLUTION`].
pub(crate) fn thread_cpu_time(token: usize) -> Option<Duration> {
    if token == 0 {
        return None;
    }
    let (mut creation, mut exit, mut kernel, mut user) = Default::default();
    // SAFETY: `token` is a live thread handle (see `current_thread_clock`); the four
    // out-parameters are writable FILETIMEs.
    let ok = unsafe {
        GetThreadTimes(
            token as RawHandle,
            &mut creation,
            &mut exit,
            &mut kernel,
            &mut user,
        )
    };
    (ok != 0).then(|| kernel.duration() + user.duration())
}

/// The CPU time (kernel plus user) this whole process has used.
pub(crate) fn process_cpu_time() -> Option<Duration> {
    let (mut creation, mut exit, mut kernel, mut user) = Default::default();
    // SAFETY: the process pseudo-handle needs no closing; the four out-parameters
    // are writable FILETIMEs.
    let ok = unsafe {
        GetProcessTimes(
            GetCurrentProcess(),
            &mut creation,
            &mut exit,
            &mut kernel,
            &mut user,
        )
    };
    (ok != 0).then(|| kernel.duration() + user.duration())
}
