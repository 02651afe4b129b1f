//! An `LD_PRELOAD` shim that makes file system calls slow, fail or come up short, for
//! `aopen`'s fault tests (`tests/faults.rs`), in the spirit of the seed's `open64.so`.
//!
//! # Use
//!
//! ```text
//! cargo build -p aopen-fault-shim
//! LD_PRELOAD=target/debug/libaopen_fault_shim.so \
//! AOPEN_FAULTS='open:delay=20ms:path=*slow*;close:errno=EIO:path=*aopen-fault-*' prog
//! ```
//!
//! # `AOPEN_FAULTS`
//!
//! Rules separated by `;`, each `syscall:item[:item]*`, each item `key=value`:
//!
//! | syscall   | C functions it covers                                                       |
//! |-----------|-----------------------------------------------------------------------------|
//! | `open`    | `open`, `open64`, `openat`, `openat64`, `__open*_2`, `opendir`              |
//! | `close`   | `close`, `closedir`                                                         |
//! | `read`    | `read`, `pread`, `pread64`                                                  |
//! | `write`   | `write`, `pwrite`, `pwrite64`                                               |
//! | `stat`    | `statx`, `stat`, `stat64`, `lstat`, `lstat64`, `fstat`, `fstat64`, `fstatat`, `fstatat64` |
//! | `readdir` | `readdir`, `readdir64`, `getdents64`                                        |
//! | `fsync`   | `fsync`, `fdatasync`                                                        |
//!
//! Actions (at least one per rule, each at most once; they combine: a delay runs
//! first, then the error or the shortened call):
//! - `delay=<N>ms` / `delay=<N>us`: sleep before the call.
//! - `errno=<NAME>`: fail with that errno (`EINTR`, `EIO`, `ENOSPC`, `EMFILE`,
//!   `ENFILE`, `EACCES`, `EPERM`, `ENOENT`, `EAGAIN`, `ENOMEM`, `ESTALE`, `EROFS`,
//!   `EDQUOT`): return `-1` (`NULL` for `opendir`/`readdir`) without calling the real
//!   function; except `close`/`closedir`, which run the real close first (Linux
//!   releases the descriptor even when `close(2)` reports an error) and then report
//!   the errno.
//! - `short=<N>`: `read`/`write` only: move at most `N` bytes in this call.
//! - `dtype=unknown`: `readdir` only: the entry comes back with `d_type` set to
//!   `DT_UNKNOWN`, as from a file system whose listings have no types (its reader
//!   must stat each entry to learn it). `readdir`/`readdir64` only; `getdents64`
//!   passes through.
//!
//! Selectors (all given must hold; counters count the calls that match the syscall
//! and the `path` selector, per rule, from 1):
//! - `path=<glob>`: `*` is the only wildcard and matches any run of bytes, `/`
//!   included; the glob must match the whole path. Path calls match the path as
//!   passed; for a relative path with a directory descriptor (`openat`, `fstatat`,
//!   `statx`) the rule also matches if that directory's path did. Descriptor calls
//!   match the path the descriptor was opened with (see "Descriptor table").
//! - `every=<k>`: every k-th matching call; `nth=<k>`: only the k-th;
//!   `count=<k>`: the first k.
//!
//! A glob cannot contain `:` or `;`. A spec that does not parse (unknown syscall,
//! key, errno or unit, a duplicate key, no action, `short` on a call that moves no
//! bytes, more than 63 rules) prints one message to stderr and aborts the process at
//! load time: a typo is never silently ignored. An unset or empty `AOPEN_FAULTS`
//! makes the shim a pass-through.
//!
//! # Descriptor table
//!
//! Descriptor calls (`close`, `read`, `write`, `fstat`, `readdir`, `fsync`) only ever
//! fault on descriptors this shim saw opened (by an `open` or `opendir` hook, or
//! duplicated from one by `dup`, `dup2`, `dup3` or `fcntl(F_DUPFD*)`): never on
//! stdin, stdout, stderr or inherited descriptors, so the test harness's own output is
//! safe even from a rule without `path=`. For each descriptor below 65,536 the shim
//! keeps one `AtomicU64`: bit 63 says "opened under the shim", bit `i` says "its path
//! matched rule `i`'s glob" (computed once, at open). That is the fd-to-path table,
//! precomputed: hooks take no lock and allocate nothing. A close clears the entry
//! before the real close, so a reused number never inherits a stale entry.
//!
//! # ABI note (variadic `open`)
//!
//! `open`, `open64`, `openat`, `openat64` and `fcntl` are C-variadic, and Rust cannot
//! define C-variadic functions on stable. The hooks take the optional argument as a
//! fixed parameter (`mode: c_uint`, `arg: c_ulong`). That is the common practical
//! approach and is correct on x86_64 SysV and on aarch64 Linux (AAPCS64 passes
//! variadic integers like named ones, in registers); it is not correct on every ABI
//! (Apple's aarch64 passes variadic arguments on the stack). When the flags do not ask
//! for a mode the value is garbage, and the real function ignores it. The real
//! functions are called through variadic pointer types, which is fine on all ABIs.
//!
//! # Re-entrancy
//!
//! The real functions are found with `dlsym(RTLD_NEXT, ..)` once and cached in an
//! `AtomicPtr`. Hooks call only real functions, `nanosleep`, `dirfd` and atomics; the
//! rules are parsed once (the shim's load-time constructor, or the first hook) and a
//! hook re-entered while they are parsed passes straight through.
//!
//! # Introspection
//!
//! `aopen_fault_rule_count()`, `aopen_fault_matched(i)` and `aopen_fault_fired(i)`
//! are exported (`u64::MAX` for a bad index), so a test can look them up with
//! `dlsym(RTLD_DEFAULT, ..)` to prove the shim is loaded and its rules fired.

#![warn(clippy::undocumented_unsafe_blocks)]

use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void, CStr};
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicU8, Ordering};
use std::sync::OnceLock;

// ---------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------

/// The environment variable holding the rules.
const ENV: &CStr = c"AOPEN_FAULTS";

/// The syntax, for error messages.
const SYNTAX: &str = "syntax: rule[;rule]*, rule = syscall:key=value[:key=value]*; \
syscalls: open close read write stat readdir fsync; actions: delay=<N>ms|<N>us, \
errno=<EINTR|EIO|ENOSPC|EMFILE|ENFILE|EACCES|EPERM|ENOENT|EAGAIN|ENOMEM|ESTALE|EROFS|EDQUOT>, \
short=<N> (read/write), dtype=unknown (readdir); selectors: path=<glob with *>, every=<k>, nth=<k>, count=<k>";

/// Bit 63 of a descriptor's entry: opened under the shim.
const TRACKED: u64 = 1 << 63;

/// At most this many rules (one bit each in a descriptor's entry).
const MAX_RULES: usize = 63;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Call {
    Open,
    Close,
    Read,
    Write,
    Stat,
    Readdir,
    Fsync,
}

#[derive(Debug, Default)]
struct Rule {
    call: Option<Call>,
    delay_ns: Option<u64>,
    errno: Option<c_int>,
    short: Option<usize>,
    /// `dtype=unknown`.
    untyped: bool,
    path: Option<Vec<u8>>,
    every: Option<u64>,
    nth: Option<u64>,
    count: Option<u64>,
    /// Calls that matched the syscall and the path selector.
    matched: AtomicU64,
    /// Calls the rule acted on.
    fired: AtomicU64,
}

const ERRNOS: &[(&str, c_int)] = &[
    ("EINTR", libc::EINTR),
    ("EIO", libc::EIO),
    ("ENOSPC", libc::ENOSPC),
    ("EMFILE", libc::EMFILE),
    ("ENFILE", libc::ENFILE),
    ("EACCES", libc::EACCES),
    ("EPERM", libc::EPERM),
    ("ENOENT", libc::ENOENT),
    ("EAGAIN", libc::EAGAIN),
    ("ENOMEM", libc::ENOMEM),
    ("ESTALE", libc::ESTALE),
    ("EROFS", libc::EROFS),
    ("EDQUOT", libc::EDQUOT),
];

fn parse_count(key: &str, value: &str) -> Result<u64, String> {
    match value.parse::<u64>() {
        Ok(k) if k >= 1 => Ok(k),
        _ => Err(format!("{key}={value:?}: expected a whole number >= 1")),
    }
}

fn parse_delay(value: &str) -> Result<u64, String> {
    let (number, scale) = if let Some(n) = value.strip_suffix("ms") {
        (n, 1_000_000)
    } else if let Some(n) = value.strip_suffix("us") {
        (n, 1_000)
    } else {
        return Err(format!("delay={value:?}: expected <N>ms or <N>us"));
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("delay={value:?}: expected <N>ms or <N>us"))
}

fn parse_rule(text: &str) -> Result<Rule, String> {
    let mut items = text.split(':');
    let call = match items.next().unwrap_or("").trim() {
        "open" => Call::Open,
        "close" => Call::Close,
        "read" => Call::Read,
        "write" => Call::Write,
        "stat" => Call::Stat,
        "readdir" => Call::Readdir,
        "fsync" => Call::Fsync,
        other => return Err(format!("unknown syscall {other:?}")),
    };
    let mut rule = Rule {
        call: Some(call),
        ..Rule::default()
    };
    for item in items {
        let (key, value) = item
            .split_once('=')
            .ok_or_else(|| format!("item {item:?} is not key=value"))?;
        let duplicate = match key {
            "delay" => rule.delay_ns.replace(parse_delay(value)?).is_some(),
            "errno" => {
                let errno = ERRNOS
                    .iter()
                    .find(|(name, _)| *name == value)
                    .map(|&(_, errno)| errno)
                    .ok_or_else(|| format!("unknown errno {value:?}"))?;
                rule.errno.replace(errno).is_some()
            }
            "short" => {
                if !matches!(call, Call::Read | Call::Write) {
                    return Err("short= only applies to read and write".to_string());
                }
                let n = value
                    .parse::<usize>()
                    .map_err(|_| format!("short={value:?}: expected a whole number"))?;
                rule.short.replace(n).is_some()
            }
            "dtype" => {
                if call != Call::Readdir || value != "unknown" {
                    return Err("dtype= only applies to readdir, as dtype=unknown".to_string());
                }
                std::mem::replace(&mut rule.untyped, true)
            }
            "path" => {
                if value.is_empty() {
                    return Err("path= needs a glob".to_string());
                }
                rule.path.replace(value.as_bytes().to_vec()).is_some()
            }
            "every" => rule.every.replace(parse_count(key, value)?).is_some(),
            "nth" => rule.nth.replace(parse_count(key, value)?).is_some(),
            "count" => rule.count.replace(parse_count(key, value)?).is_some(),
            _ => return Err(format!("unknown key {key:?}")),
        };
        if duplicate {
            return Err(format!("{key}= given twice"));
        }
    }
    if rule.delay_ns.is_none() && rule.errno.is_none() && rule.short.is_none() && !rule.untyped {
        return Err("no action (delay=, errno=, short= or dtype=)".to_string());
    }
    Ok(rule)
}

fn parse(spec: &str) -> Result<Vec<Rule>, String> {
    let mut rules = Vec::new();
    for text in spec.split(';') {
        if text.trim().is_empty() {
            continue;
        }
        let rule = parse_rule(text).map_err(|why| format!("rule {text:?}: {why}"))?;
        rules.push(rule);
        if rules.len() > MAX_RULES {
            return Err(format!("more than {MAX_RULES} rules"));
        }
    }
    Ok(rules)
}

static RULES: OnceLock<Box<[Rule]>> = OnceLock::new();

const UNINIT: u8 = 0;
const BUSY: u8 = 1;
static INIT: AtomicU8 = AtomicU8::new(UNINIT);

/// The rules; `None` while they are being parsed (a re-entered hook passes through).
fn rules() -> Option<&'static [Rule]> {
    if let Some(rules) = RULES.get() {
        return Some(rules);
    }
    if INIT
        .compare_exchange(UNINIT, BUSY, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return None;
    }
    // SAFETY: `getenv` with a NUL-terminated name; the environment is not modified
    // concurrently while the shim loads (this runs in its constructor).
    let raw = unsafe { libc::getenv(ENV.as_ptr()) };
    let spec = if raw.is_null() {
        String::new()
    } else {
        // SAFETY: `getenv` returned a NUL-terminated string that lives in environ.
        let bytes = unsafe { CStr::from_ptr(raw) }.to_bytes();
        match std::str::from_utf8(bytes) {
            Ok(text) => text.to_string(),
            Err(_) => die("AOPEN_FAULTS is not UTF-8"),
        }
    };
    let parsed = match parse(&spec) {
        Ok(rules) => rules,
        Err(why) => die(&format!("bad AOPEN_FAULTS={spec:?}: {why}")),
    };
    let _ = RULES.set(parsed.into_boxed_slice());
    RULES.get().map(|rules| &rules[..])
}

/// Prints one message to stderr (through the real `write`) and aborts.
fn die(message: &str) -> ! {
    let text = format!("aopen-fault-shim: {message}\n  {SYNTAX}\n");
    if let Some(write) = real_write() {
        let mut rest = text.as_bytes();
        while !rest.is_empty() {
            // SAFETY: writes `rest.len()` initialised bytes from a live slice to fd 2.
            let n = unsafe { write(2, rest.as_ptr().cast(), rest.len()) };
            if n <= 0 {
                break;
            }
            rest = &rest[n as usize..];
        }
    }
    // SAFETY: `abort` never returns and has no preconditions.
    unsafe { libc::abort() }
}

/// Parses the rules when the shim is loaded, so a bad spec aborts at start-up even
/// if no hooked call ever happens.
extern "C" fn load() {
    let _ = rules();
}

#[used]
#[link_section = ".init_array"]
static LOAD: extern "C" fn() = load;

// ---------------------------------------------------------------------------------
// Matching
// ---------------------------------------------------------------------------------

/// Whether `glob` (with `*` as the only wildcard) matches all of `text`.
fn glob(glob: &[u8], text: &[u8]) -> bool {
    let (mut g, mut t) = (0, 0);
    // The last `*` seen, and where in `text` it started matching.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if g < glob.len() && glob[g] == b'*' {
            star = Some((g, t));
            g += 1;
        } else if g < glob.len() && glob[g] == text[t] {
            g += 1;
            t += 1;
        } else if let Some((star_g, star_t)) = star {
            // Let the last `*` take one more byte and retry after it.
            g = star_g + 1;
            t = star_t + 1;
            star = Some((star_g, star_t + 1));
        } else {
            return false;
        }
    }
    glob[g..].iter().all(|&b| b == b'*')
}

const FD_SLOTS: usize = 1 << 16;

/// Per descriptor: [`TRACKED`] plus one bit per rule whose glob its path matched.
static FD_TABLE: [AtomicU64; FD_SLOTS] = [const { AtomicU64::new(0) }; FD_SLOTS];

fn fd_slot(fd: c_int) -> Option<&'static AtomicU64> {
    usize::try_from(fd).ok().and_then(|i| FD_TABLE.get(i))
}

fn fd_entry(fd: c_int) -> u64 {
    fd_slot(fd).map_or(0, |slot| slot.load(Ordering::Acquire))
}

/// Clears a descriptor's entry (it is about to be closed), returning what it was.
fn fd_forget(fd: c_int) -> u64 {
    fd_slot(fd).map_or(0, |slot| slot.swap(0, Ordering::AcqRel))
}

fn fd_set(fd: c_int, entry: u64) {
    if let Some(slot) = fd_slot(fd) {
        slot.store(entry, Ordering::Release);
    }
}

/// What a call is about, for the `path=` selector.
#[derive(Clone, Copy)]
enum Target<'a> {
    /// A path, and the entry of the directory descriptor it is relative to (0 if
    /// it is absolute or relative to the working directory).
    Path(&'a [u8], u64),
    /// A descriptor's entry.
    Fd(u64),
    /// Nothing to match (a NULL path, as in std's `statx` probe): no rule applies.
    None,
}

/// # Safety
/// `path` is NULL or a NUL-terminated string.
unsafe fn path_target<'a>(dirfd: c_int, path: *const c_char) -> Target<'a> {
    if path.is_null() {
        return Target::None;
    }
    // SAFETY: the caller passes a NUL-terminated string, as the C call requires.
    let bytes = unsafe { CStr::from_ptr(path) }.to_bytes();
    let dir = if bytes.first() != Some(&b'/') && dirfd != libc::AT_FDCWD {
        fd_entry(dirfd)
    } else {
        0
    };
    Target::Path(bytes, dir)
}

/// The entry of a descriptor just opened (or duplicated) at `target`'s path.
fn entry_for(target: Target<'_>) -> u64 {
    let mut entry = TRACKED;
    if let (Some(rules), Target::Path(path, dir)) = (rules(), target) {
        for (i, rule) in rules.iter().enumerate() {
            if let Some(g) = &rule.path {
                if glob(g, path) || dir & (1 << i) != 0 {
                    entry |= 1 << i;
                }
            }
        }
    }
    entry
}

/// What to do to one call.
#[derive(Default)]
struct Fault {
    delay_ns: u64,
    errno: Option<c_int>,
    short: Option<usize>,
    untyped: bool,
}

fn decide(call: Call, target: Target<'_>) -> Fault {
    let mut fault = Fault::default();
    let Some(rules) = rules() else {
        return fault;
    };
    for (i, rule) in rules.iter().enumerate() {
        if rule.call != Some(call) {
            continue;
        }
        let selected = match (target, &rule.path) {
            (Target::Path(path, dir), Some(g)) => glob(g, path) || dir & (1 << i) != 0,
            (Target::Path(..), None) => true,
            (Target::Fd(entry), Some(_)) => entry & (1 << i) != 0,
            (Target::Fd(entry), None) => entry & TRACKED != 0,
            (Target::None, _) => false,
        };
        if !selected {
            continue;
        }
        let n = rule.matched.fetch_add(1, Ordering::AcqRel) + 1;
        let fire = rule.every.is_none_or(|k| n % k == 0)
            && rule.nth.is_none_or(|k| n == k)
            && rule.count.is_none_or(|k| n <= k);
        if !fire {
            continue;
        }
        rule.fired.fetch_add(1, Ordering::AcqRel);
        fault.delay_ns = fault.delay_ns.saturating_add(rule.delay_ns.unwrap_or(0));
        if fault.errno.is_none() {
            fault.errno = rule.errno;
        }
        if let Some(short) = rule.short {
            fault.short = Some(fault.short.map_or(short, |s| s.min(short)));
        }
        fault.untyped |= rule.untyped;
    }
    fault
}

impl Fault {
    /// Sleeps the delay, if any.
    fn wait(&self) {
        if self.delay_ns == 0 {
            return;
        }
        let mut request = libc::timespec {
            tv_sec: (self.delay_ns / 1_000_000_000) as libc::time_t,
            tv_nsec: (self.delay_ns % 1_000_000_000) as libc::c_long,
        };
        loop {
            let mut left = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: both pointers are to live, initialised `timespec`s.
            let rc = unsafe { libc::nanosleep(&request, &mut left) };
            if rc == 0 || errno() != libc::EINTR {
                return;
            }
            request = left;
        }
    }

    fn len(&self, len: usize) -> usize {
        self.short.map_or(len, |short| len.min(short))
    }
}

fn errno() -> c_int {
    // SAFETY: `__errno_location` returns this thread's errno slot, always valid.
    unsafe { *libc::__errno_location() }
}

fn set_errno(value: c_int) {
    // SAFETY: `__errno_location` returns this thread's errno slot, always valid.
    unsafe { *libc::__errno_location() = value }
}

// ---------------------------------------------------------------------------------
// The real functions
// ---------------------------------------------------------------------------------

macro_rules! real {
    ($($getter:ident: $name:literal as $ty:ty;)*) => {$(
        fn $getter() -> Option<$ty> {
            static CACHE: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());
            let mut found = CACHE.load(Ordering::Acquire);
            if found.is_null() {
                // SAFETY: `dlsym` with `RTLD_NEXT` and a NUL-terminated name.
                found = unsafe { libc::dlsym(libc::RTLD_NEXT, $name.as_ptr()) };
                if found.is_null() {
                    return None;
                }
                CACHE.store(found, Ordering::Release);
            }
            // SAFETY: `found` is the address of the next definition of the C function
            // named `$name`, whose C signature `$ty` spells out.
            Some(unsafe { std::mem::transmute::<*mut c_void, $ty>(found) })
        }
    )*};
}

type OpenFn = unsafe extern "C" fn(*const c_char, c_int, ...) -> c_int;
type OpenatFn = unsafe extern "C" fn(c_int, *const c_char, c_int, ...) -> c_int;
type Open2Fn = unsafe extern "C" fn(*const c_char, c_int) -> c_int;
type Openat2Fn = unsafe extern "C" fn(c_int, *const c_char, c_int) -> c_int;
type OpendirFn = unsafe extern "C" fn(*const c_char) -> *mut libc::DIR;
type FdFn = unsafe extern "C" fn(c_int) -> c_int;
type Dup2Fn = unsafe extern "C" fn(c_int, c_int) -> c_int;
type Dup3Fn = unsafe extern "C" fn(c_int, c_int, c_int) -> c_int;
type FcntlFn = unsafe extern "C" fn(c_int, c_int, ...) -> c_int;
type ClosedirFn = unsafe extern "C" fn(*mut libc::DIR) -> c_int;
type ReadFn = unsafe extern "C" fn(c_int, *mut c_void, usize) -> isize;
type WriteFn = unsafe extern "C" fn(c_int, *const c_void, usize) -> isize;
type PreadFn = unsafe extern "C" fn(c_int, *mut c_void, usize, libc::off_t) -> isize;
type Pread64Fn = unsafe extern "C" fn(c_int, *mut c_void, usize, libc::off64_t) -> isize;
type PwriteFn = unsafe extern "C" fn(c_int, *const c_void, usize, libc::off_t) -> isize;
type Pwrite64Fn = unsafe extern "C" fn(c_int, *const c_void, usize, libc::off64_t) -> isize;
type StatxFn = unsafe extern "C" fn(c_int, *const c_char, c_int, c_uint, *mut c_void) -> c_int;
type StatFn = unsafe extern "C" fn(*const c_char, *mut c_void) -> c_int;
type FstatFn = unsafe extern "C" fn(c_int, *mut c_void) -> c_int;
type FstatatFn = unsafe extern "C" fn(c_int, *const c_char, *mut c_void, c_int) -> c_int;
type ReaddirFn = unsafe extern "C" fn(*mut libc::DIR) -> *mut c_void;
type GetdentsFn = unsafe extern "C" fn(c_int, *mut c_void, usize) -> isize;

real! {
    real_open: c"open" as OpenFn;
    real_open64: c"open64" as OpenFn;
    real_openat: c"openat" as OpenatFn;
    real_openat64: c"openat64" as OpenatFn;
    real_open_2: c"__open_2" as Open2Fn;
    real_open64_2: c"__open64_2" as Open2Fn;
    real_openat_2: c"__openat_2" as Openat2Fn;
    real_openat64_2: c"__openat64_2" as Openat2Fn;
    real_opendir: c"opendir" as OpendirFn;
    real_close: c"close" as FdFn;
    real_closedir: c"closedir" as ClosedirFn;
    real_dup: c"dup" as FdFn;
    real_dup2: c"dup2" as Dup2Fn;
    real_dup3: c"dup3" as Dup3Fn;
    real_fcntl: c"fcntl" as FcntlFn;
    real_fcntl64: c"fcntl64" as FcntlFn;
    real_read: c"read" as ReadFn;
    real_pread: c"pread" as PreadFn;
    real_pread64: c"pread64" as Pread64Fn;
    real_write: c"write" as WriteFn;
    real_pwrite: c"pwrite" as PwriteFn;
    real_pwrite64: c"pwrite64" as Pwrite64Fn;
    real_statx: c"statx" as StatxFn;
    real_stat: c"stat" as StatFn;
    real_stat64: c"stat64" as StatFn;
    real_lstat: c"lstat" as StatFn;
    real_lstat64: c"lstat64" as StatFn;
    real_fstat: c"fstat" as FstatFn;
    real_fstat64: c"fstat64" as FstatFn;
    real_fstatat: c"fstatat" as FstatatFn;
    real_fstatat64: c"fstatat64" as FstatatFn;
    real_readdir: c"readdir" as ReaddirFn;
    real_readdir64: c"readdir64" as ReaddirFn;
    real_getdents64: c"getdents64" as GetdentsFn;
    real_fsync: c"fsync" as FdFn;
    real_fdatasync: c"fdatasync" as FdFn;
}

/// The result of a call whose real function is missing.
fn missing<T>(fail: T) -> T {
    set_errno(libc::ENOSYS);
    fail
}

// ---------------------------------------------------------------------------------
// Hooks
// ---------------------------------------------------------------------------------

/// The common part of the `open` hooks: fault, then open, then record the entry.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
unsafe fn hook_open(dirfd: c_int, path: *const c_char, open: impl FnOnce() -> c_int) -> c_int {
    // SAFETY: passed on from our caller.
    let target = unsafe { path_target(dirfd, path) };
    let fault = decide(Call::Open, target);
    fault.wait();
    if let Some(errno) = fault.errno {
        set_errno(errno);
        return -1;
    }
    let fd = open();
    if fd >= 0 {
        fd_set(fd, entry_for(target));
    }
    fd
}

/// `open(2)`; `mode` stands in for the variadic argument (see the ABI note).
///
/// # Safety
/// As `open(2)`: `path` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn open(path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    // SAFETY: our caller's contract is `open`'s; the real `open` gets the same args.
    unsafe {
        hook_open(libc::AT_FDCWD, path, || match real_open() {
            Some(real) => real(path, flags, mode),
            None => missing(-1),
        })
    }
}

/// `open64(2)`; see [`open`].
///
/// # Safety
/// As `open64(2)`.
#[no_mangle]
pub unsafe extern "C" fn open64(path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    // SAFETY: our caller's contract is `open64`'s; the real one gets the same args.
    unsafe {
        hook_open(libc::AT_FDCWD, path, || match real_open64() {
            Some(real) => real(path, flags, mode),
            None => missing(-1),
        })
    }
}

/// `openat(2)`; see [`open`].
///
/// # Safety
/// As `openat(2)`.
#[no_mangle]
pub unsafe extern "C" fn openat(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: c_uint,
) -> c_int {
    // SAFETY: our caller's contract is `openat`'s; the real one gets the same args.
    unsafe {
        hook_open(dirfd, path, || match real_openat() {
            Some(real) => real(dirfd, path, flags, mode),
            None => missing(-1),
        })
    }
}

/// `openat64(2)`; see [`open`].
///
/// # Safety
/// As `openat64(2)`.
#[no_mangle]
pub unsafe extern "C" fn openat64(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: c_uint,
) -> c_int {
    // SAFETY: our caller's contract is `openat64`'s; the real one gets the same args.
    unsafe {
        hook_open(dirfd, path, || match real_openat64() {
            Some(real) => real(dirfd, path, flags, mode),
            None => missing(-1),
        })
    }
}

/// The `_FORTIFY_SOURCE` form of `open` (no mode).
///
/// # Safety
/// As `open(2)` without `O_CREAT`.
#[no_mangle]
pub unsafe extern "C" fn __open_2(path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: our caller's contract is `__open_2`'s; the real one gets the same args.
    unsafe {
        hook_open(libc::AT_FDCWD, path, || match real_open_2() {
            Some(real) => real(path, flags),
            None => missing(-1),
        })
    }
}

/// The `_FORTIFY_SOURCE` form of `open64`.
///
/// # Safety
/// As `open64(2)` without `O_CREAT`.
#[no_mangle]
pub unsafe extern "C" fn __open64_2(path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: our caller's contract is `__open64_2`'s; the real one gets the same args.
    unsafe {
        hook_open(libc::AT_FDCWD, path, || match real_open64_2() {
            Some(real) => real(path, flags),
            None => missing(-1),
        })
    }
}

/// The `_FORTIFY_SOURCE` form of `openat`.
///
/// # Safety
/// As `openat(2)` without `O_CREAT`.
#[no_mangle]
pub unsafe extern "C" fn __openat_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: our caller's contract is `__openat_2`'s; the real one gets the same args.
    unsafe {
        hook_open(dirfd, path, || match real_openat_2() {
            Some(real) => real(dirfd, path, flags),
            None => missing(-1),
        })
    }
}

/// The `_FORTIFY_SOURCE` form of `openat64`.
///
/// # Safety
/// As `openat64(2)` without `O_CREAT`.
#[no_mangle]
pub unsafe extern "C" fn __openat64_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: our caller's contract is `__openat64_2`'s; the real one gets the same args.
    unsafe {
        hook_open(dirfd, path, || match real_openat64_2() {
            Some(real) => real(dirfd, path, flags),
            None => missing(-1),
        })
    }
}

/// `opendir(3)`: an `open` of a directory (glibc's own `openat` inside it cannot be
/// interposed).
///
/// # Safety
/// As `opendir(3)`.
#[no_mangle]
pub unsafe extern "C" fn opendir(path: *const c_char) -> *mut libc::DIR {
    // SAFETY: our caller passes a NUL-terminated string, as `opendir` requires.
    let target = unsafe { path_target(libc::AT_FDCWD, path) };
    let fault = decide(Call::Open, target);
    fault.wait();
    if let Some(errno) = fault.errno {
        set_errno(errno);
        return ptr::null_mut();
    }
    let Some(real) = real_opendir() else {
        return missing(ptr::null_mut());
    };
    // SAFETY: the real `opendir` with our caller's argument.
    let dir = unsafe { real(path) };
    if !dir.is_null() {
        // SAFETY: `dir` is a live stream `opendir` just returned.
        let fd = unsafe { libc::dirfd(dir) };
        fd_set(fd, entry_for(target));
    }
    dir
}

/// The common part of the close hooks: the real close always runs (Linux releases
/// the descriptor even when `close(2)` fails), then an injected errno is reported.
fn hook_close(entry: u64, close: impl FnOnce() -> c_int) -> c_int {
    let fault = decide(Call::Close, Target::Fd(entry));
    fault.wait();
    let rc = close();
    match fault.errno {
        Some(errno) if rc == 0 => {
            set_errno(errno);
            -1
        }
        _ => rc,
    }
}

/// `close(2)`.
///
/// # Safety
/// As `close(2)`.
#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    // Forget the entry before the number is free for reuse.
    let entry = fd_forget(fd);
    hook_close(entry, || match real_close() {
        // SAFETY: the real `close` with our caller's descriptor.
        Some(real) => unsafe { real(fd) },
        None => missing(-1),
    })
}

/// `closedir(3)`: a `close`.
///
/// # Safety
/// As `closedir(3)`: `dir` is a live stream.
#[no_mangle]
pub unsafe extern "C" fn closedir(dir: *mut libc::DIR) -> c_int {
    let entry = if dir.is_null() {
        0
    } else {
        // SAFETY: `dir` is a live stream (our caller's contract).
        fd_forget(unsafe { libc::dirfd(dir) })
    };
    hook_close(entry, || match real_closedir() {
        // SAFETY: the real `closedir` with our caller's stream.
        Some(real) => unsafe { real(dir) },
        None => missing(-1),
    })
}

/// `dup(2)`: the copy inherits the original's entry.
///
/// # Safety
/// As `dup(2)`.
#[no_mangle]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    let Some(real) = real_dup() else {
        return missing(-1);
    };
    // SAFETY: the real `dup` with our caller's descriptor.
    let copy = unsafe { real(fd) };
    if copy >= 0 {
        fd_set(copy, fd_entry(fd));
    }
    copy
}

/// `dup2(2)`: `new` is closed (its entry forgotten) and inherits `old`'s entry.
///
/// # Safety
/// As `dup2(2)`.
#[no_mangle]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    let Some(real) = real_dup2() else {
        return missing(-1);
    };
    // SAFETY: the real `dup2` with our caller's descriptors.
    let rc = unsafe { real(old, new) };
    if rc >= 0 && old != new {
        fd_set(new, fd_entry(old));
    }
    rc
}

/// `dup3(2)`: as [`dup2`].
///
/// # Safety
/// As `dup3(2)`.
#[no_mangle]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    let Some(real) = real_dup3() else {
        return missing(-1);
    };
    // SAFETY: the real `dup3` with our caller's arguments.
    let rc = unsafe { real(old, new, flags) };
    if rc >= 0 {
        fd_set(new, fd_entry(old));
    }
    rc
}

fn after_fcntl(fd: c_int, cmd: c_int, rc: c_int) -> c_int {
    if rc >= 0 && (cmd == libc::F_DUPFD || cmd == libc::F_DUPFD_CLOEXEC) {
        fd_set(rc, fd_entry(fd));
    }
    rc
}

/// `fcntl(2)`: `F_DUPFD`/`F_DUPFD_CLOEXEC` copies inherit the entry (std's
/// `try_clone`). `arg` stands in for the variadic argument (see the ABI note).
///
/// # Safety
/// As `fcntl(2)`.
#[no_mangle]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    let Some(real) = real_fcntl() else {
        return missing(-1);
    };
    // SAFETY: the real `fcntl` with our caller's arguments.
    after_fcntl(fd, cmd, unsafe { real(fd, cmd, arg) })
}

/// `fcntl64`: as [`fcntl`].
///
/// # Safety
/// As `fcntl(2)`.
#[no_mangle]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    let Some(real) = real_fcntl64() else {
        return missing(-1);
    };
    // SAFETY: the real `fcntl64` with our caller's arguments.
    after_fcntl(fd, cmd, unsafe { real(fd, cmd, arg) })
}

/// The common part of the read and write hooks: delay, fail, or shorten `len`.
fn hook_transfer(call: Call, fd: c_int, len: usize, run: impl FnOnce(usize) -> isize) -> isize {
    let fault = decide(call, Target::Fd(fd_entry(fd)));
    fault.wait();
    if let Some(errno) = fault.errno {
        set_errno(errno);
        return -1;
    }
    run(fault.len(len))
}

/// `read(2)`.
///
/// # Safety
/// As `read(2)`: `buf` is valid for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, len: usize) -> isize {
    hook_transfer(Call::Read, fd, len, |len| match real_read() {
        // SAFETY: the real `read` with our caller's buffer, for at most its length.
        Some(real) => unsafe { real(fd, buf, len) },
        None => missing(-1),
    })
}

/// `pread(2)`.
///
/// # Safety
/// As `pread(2)`.
#[no_mangle]
pub unsafe extern "C" fn pread(fd: c_int, buf: *mut c_void, len: usize, off: libc::off_t) -> isize {
    hook_transfer(Call::Read, fd, len, |len| match real_pread() {
        // SAFETY: the real `pread` with our caller's buffer, for at most its length.
        Some(real) => unsafe { real(fd, buf, len, off) },
        None => missing(-1),
    })
}

/// `pread64(2)`.
///
/// # Safety
/// As `pread64(2)`.
#[no_mangle]
pub unsafe extern "C" fn pread64(
    fd: c_int,
    buf: *mut c_void,
    len: usize,
    off: libc::off64_t,
) -> isize {
    hook_transfer(Call::Read, fd, len, |len| match real_pread64() {
        // SAFETY: the real `pread64` with our caller's buffer, for at most its length.
        Some(real) => unsafe { real(fd, buf, len, off) },
        None => missing(-1),
    })
}

/// `write(2)`.
///
/// # Safety
/// As `write(2)`: `buf` is valid for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, len: usize) -> isize {
    hook_transfer(Call::Write, fd, len, |len| match real_write() {
        // SAFETY: the real `write` with our caller's buffer, for at most its length.
        Some(real) => unsafe { real(fd, buf, len) },
        None => missing(-1),
    })
}

/// `pwrite(2)`.
///
/// # Safety
/// As `pwrite(2)`.
#[no_mangle]
pub unsafe extern "C" fn pwrite(
    fd: c_int,
    buf: *const c_void,
    len: usize,
    off: libc::off_t,
) -> isize {
    hook_transfer(Call::Write, fd, len, |len| match real_pwrite() {
        // SAFETY: the real `pwrite` with our caller's buffer, for at most its length.
        Some(real) => unsafe { real(fd, buf, len, off) },
        None => missing(-1),
    })
}

/// `pwrite64(2)`.
///
/// # Safety
/// As `pwrite64(2)`.
#[no_mangle]
pub unsafe extern "C" fn pwrite64(
    fd: c_int,
    buf: *const c_void,
    len: usize,
    off: libc::off64_t,
) -> isize {
    hook_transfer(Call::Write, fd, len, |len| match real_pwrite64() {
        // SAFETY: the real `pwrite64` with our caller's buffer, for at most its length.
        Some(real) => unsafe { real(fd, buf, len, off) },
        None => missing(-1),
    })
}

/// The common part of the stat hooks.
fn hook_stat(target: Target<'_>, stat: impl FnOnce() -> c_int) -> c_int {
    let fault = decide(Call::Stat, target);
    fault.wait();
    if let Some(errno) = fault.errno {
        set_errno(errno);
        return -1;
    }
    stat()
}

/// The target of an `*at` stat call: the descriptor itself for an empty path with
/// `AT_EMPTY_PATH`, else the path.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
unsafe fn at_target<'a>(dirfd: c_int, path: *const c_char, flags: c_int) -> Target<'a> {
    // SAFETY: `path` is non-NULL and NUL-terminated (our caller's contract).
    if flags & libc::AT_EMPTY_PATH != 0 && !path.is_null() && unsafe { *path } == 0 {
        Target::Fd(fd_entry(dirfd))
    } else {
        // SAFETY: passed on from our caller.
        unsafe { path_target(dirfd, path) }
    }
}

/// `statx(2)` (std's first choice for every stat on Linux; it looks `statx` up with
/// `dlsym`, so this hook sees those calls).
///
/// # Safety
/// As `statx(2)`.
#[no_mangle]
pub unsafe extern "C" fn statx(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mask: c_uint,
    buf: *mut c_void,
) -> c_int {
    // SAFETY: our caller's `path` is NULL or NUL-terminated.
    let target = unsafe { at_target(dirfd, path, flags) };
    hook_stat(target, || match real_statx() {
        // SAFETY: the real `statx` with our caller's arguments.
        Some(real) => unsafe { real(dirfd, path, flags, mask, buf) },
        None => missing(-1),
    })
}

macro_rules! path_stat_hook {
    ($($name:ident => $real:ident;)*) => {$(
        #[doc = concat!("`", stringify!($name), "(2)`.")]
        ///
        /// # Safety
        /// As the C function: `path` is NUL-terminated, `buf` points to a stat buffer.
        #[no_mangle]
        pub unsafe extern "C" fn $name(path: *const c_char, buf: *mut c_void) -> c_int {
            // SAFETY: our caller's `path` is NUL-terminated.
            let target = unsafe { path_target(libc::AT_FDCWD, path) };
            hook_stat(target, || match $real() {
                // SAFETY: the real function with our caller's arguments.
                Some(real) => unsafe { real(path, buf) },
                None => missing(-1),
            })
        }
    )*};
}

path_stat_hook! {
    stat => real_stat;
    stat64 => real_stat64;
    lstat => real_lstat;
    lstat64 => real_lstat64;
}

macro_rules! fd_stat_hook {
    ($($name:ident => $real:ident;)*) => {$(
        #[doc = concat!("`", stringify!($name), "(2)`.")]
        ///
        /// # Safety
        /// As the C function: `buf` points to a stat buffer.
        #[no_mangle]
        pub unsafe extern "C" fn $name(fd: c_int, buf: *mut c_void) -> c_int {
            hook_stat(Target::Fd(fd_entry(fd)), || match $real() {
                // SAFETY: the real function with our caller's arguments.
                Some(real) => unsafe { real(fd, buf) },
                None => missing(-1),
            })
        }
    )*};
}

fd_stat_hook! {
    fstat => real_fstat;
    fstat64 => real_fstat64;
}

macro_rules! at_stat_hook {
    ($($name:ident => $real:ident;)*) => {$(
        #[doc = concat!("`", stringify!($name), "(2)`.")]
        ///
        /// # Safety
        /// As the C function.
        #[no_mangle]
        pub unsafe extern "C" fn $name(
            dirfd: c_int,
            path: *const c_char,
            buf: *mut c_void,
            flags: c_int,
        ) -> c_int {
            // SAFETY: our caller's `path` is NULL or NUL-terminated.
            let target = unsafe { at_target(dirfd, path, flags) };
            hook_stat(target, || match $real() {
                // SAFETY: the real function with our caller's arguments.
                Some(real) => unsafe { real(dirfd, path, buf, flags) },
                None => missing(-1),
            })
        }
    )*};
}

at_stat_hook! {
    fstatat => real_fstatat;
    fstatat64 => real_fstatat64;
}

/// The common part of the `readdir` hooks: an error is `NULL` with errno set.
///
/// # Safety
/// `dir` is a live stream.
unsafe fn hook_readdir(dir: *mut libc::DIR, next: impl FnOnce() -> *mut c_void) -> *mut c_void {
    if dir.is_null() {
        return next();
    }
    // SAFETY: `dir` is a live stream (our caller's contract).
    let fd = unsafe { libc::dirfd(dir) };
    let fault = decide(Call::Readdir, Target::Fd(fd_entry(fd)));
    fault.wait();
    if let Some(errno) = fault.errno {
        set_errno(errno);
        return ptr::null_mut();
    }
    let entry = next();
    if fault.untyped && !entry.is_null() {
        // SAFETY: a non-NULL result of `readdir`/`readdir64` points to the stream's
        // current entry, writable and live until the next call on the stream, and
        // `dirent` and `dirent64` lay out `d_type` alike on 64-bit Linux.
        unsafe { (*entry.cast::<libc::dirent64>()).d_type = libc::DT_UNKNOWN };
    }
    entry
}

/// `readdir(3)`.
///
/// # Safety
/// As `readdir(3)`.
#[no_mangle]
pub unsafe extern "C" fn readdir(dir: *mut libc::DIR) -> *mut c_void {
    // SAFETY: our caller's `dir` is a live stream.
    unsafe {
        hook_readdir(dir, || match real_readdir() {
            Some(real) => real(dir),
            None => missing(ptr::null_mut()),
        })
    }
}

/// `readdir64(3)` (what std's `ReadDir` calls).
///
/// # Safety
/// As `readdir64(3)`.
#[no_mangle]
pub unsafe extern "C" fn readdir64(dir: *mut libc::DIR) -> *mut c_void {
    // SAFETY: our caller's `dir` is a live stream.
    unsafe {
        hook_readdir(dir, || match real_readdir64() {
            Some(real) => real(dir),
            None => missing(ptr::null_mut()),
        })
    }
}

/// `getdents64(2)` (glibc's `readdir` calls its internal copy, not this one).
///
/// # Safety
/// As `getdents64(2)`.
#[no_mangle]
pub unsafe extern "C" fn getdents64(fd: c_int, buf: *mut c_void, len: usize) -> isize {
    hook_transfer(Call::Readdir, fd, len, |len| match real_getdents64() {
        // SAFETY: the real `getdents64` with our caller's buffer.
        Some(real) => unsafe { real(fd, buf, len) },
        None => missing(-1),
    })
}

/// The common part of the sync hooks.
fn hook_sync(fd: c_int, sync: impl FnOnce() -> c_int) -> c_int {
    let fault = decide(Call::Fsync, Target::Fd(fd_entry(fd)));
    fault.wait();
    if let Some(errno) = fault.errno {
        set_errno(errno);
        return -1;
    }
    sync()
}

/// `fsync(2)`.
///
/// # Safety
/// As `fsync(2)`.
#[no_mangle]
pub unsafe extern "C" fn fsync(fd: c_int) -> c_int {
    hook_sync(fd, || match real_fsync() {
        // SAFETY: the real `fsync` with our caller's descriptor.
        Some(real) => unsafe { real(fd) },
        None => missing(-1),
    })
}

/// `fdatasync(2)`.
///
/// # Safety
/// As `fdatasync(2)`.
#[no_mangle]
pub unsafe extern "C" fn fdatasync(fd: c_int) -> c_int {
    hook_sync(fd, || match real_fdatasync() {
        // SAFETY: the real `fdatasync` with our caller's descriptor.
        Some(real) => unsafe { real(fd) },
        None => missing(-1),
    })
}

// ---------------------------------------------------------------------------------
// Introspection
// ---------------------------------------------------------------------------------

/// How many rules `AOPEN_FAULTS` holds.
#[no_mangle]
pub extern "C" fn aopen_fault_rule_count() -> u64 {
    rules().map_or(0, |rules| rules.len() as u64)
}

/// How many calls matched rule `i` (its syscall and `path=`); `u64::MAX` if no such
/// rule.
#[no_mangle]
pub extern "C" fn aopen_fault_matched(i: u64) -> u64 {
    rules()
        .and_then(|rules| rules.get(usize::try_from(i).ok()?))
        .map_or(u64::MAX, |rule| rule.matched.load(Ordering::Acquire))
}

/// How many calls rule `i` acted on; `u64::MAX` if no such rule.
#[no_mangle]
pub extern "C" fn aopen_fault_fired(i: u64) -> u64 {
    rules()
        .and_then(|rules| rules.get(usize::try_from(i).ok()?))
        .map_or(u64::MAX, |rule| rule.fired.load(Ordering::Acquire))
}
