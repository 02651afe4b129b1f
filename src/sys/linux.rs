//! Linux only: what the kernel tells about each thread of this process.
//!
//! `metadata_batch` reads a thread's voluntary context switches from
//! `getrusage(RUSAGE_THREAD)`. Other systems answer "unknown" (`sys/mod.rs`).

/// How often the calling thread has slept in the kernel so far (`ru_nvcsw` of
/// `getrusage(RUSAGE_THREAD)`), or `None` if the kernel would not say.
pub(crate) fn voluntary_switches() -> Option<u64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a valid, writable `rusage`; `getrusage` only writes into it.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: `getrusage` returned 0, so it filled `usage` (and it was zeroed anyway).
    let usage = unsafe { usage.assume_init() };
    u64::try_from(usage.ru_nvcsw).ok()
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn voluntary_switches_count_sleeps() {
        let before = voluntary_switches().expect("RUSAGE_THREAD");
        std::thread::sleep(std::time::Duration::from_millis(1));
        assert!(voluntary_switches().expect("RUSAGE_THREAD") > before);
    }
}
