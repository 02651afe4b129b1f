//! `remove_dir_all` that holds at most one directory descriptor at a time.
//!
//! std's `remove_dir_all` walks the tree with a chain of `openat` descriptors, one per
//! level it is inside, so a 40-deep tree holds 41 descriptors: more than a small
//! budget allows (rule 3). This walk opens every directory by its full path instead
//! and closes it before it opens the next one.
//!
//! # Symlink races (the CVE-2022-21658 class)
//!
//! Paths are weaker than `openat` chains: between listing a directory and opening a
//! subdirectory by path, an attacker with write access inside the tree may swap a
//! directory on that path for a symlink (or for another directory). Two independent
//! guards make sure such a swap ends in an error or in removing the link itself,
//! never in deleting anything outside the tree:
//!
//! 1. Directories below the root are opened as `<canonical root>/<relative path>`
//!    with `openat2(RESOLVE_NO_SYMLINKS)` and `O_NOFOLLOW`: the root's canonical
//!    path has no symlinks, so any symlink met on the way is a swap and the kernel
//!    refuses it (`ELOOP`). Kernels without `openat2` (before 5.6, `ENOSYS`; old
//!    seccomp profiles, `EPERM`) fall back to `open(O_NOFOLLOW)`, which still follows
//!    symlinks in intermediate components.
//! 2. Every descriptor the walk acts through is checked (`fstat`: device and inode)
//!    to be the very directory that was listed as that entry, by `fstatat` on its
//!    parent's already-checked descriptor; the root's identity comes from opening
//!    the path as given with `O_NOFOLLOW`, as std does. A mismatch is an error. This
//!    guard alone keeps the fallback safe: whatever path resolution found, the walk
//!    only unlinks inside directories it listed as part of the tree.
//!
//! Entries that vanish while the walk runs are skipped (as std does). A
//! subdirectory found replaced by a non-directory (a symlink, say) is unlinked
//! through its checked parent: the link goes, its target stays.
//!
//! Limit: a directory whose canonical path is longer than `PATH_MAX` (4096 bytes)
//! cannot be opened by path; the walk then fails with `ENAMETOOLONG`.

use std::io;
use std::path::Path;

/// Removes `path` and everything below it, like [`std::fs::remove_dir_all`], but never
/// holds more than one directory descriptor at a time. Blocking; runs on the pool.
///
/// Errors are the system's (`ENOENT` for a missing root, `ENOTDIR` for a root that is
/// a file, as std); a directory found replaced during the walk is an
/// [`io::ErrorKind::Other`] error.
#[cfg(target_os = "linux")]
pub(crate) fn remove_dir_all_bounded(path: &Path) -> io::Result<()> {
    linux::remove_tree(path, true, &mut |_| {})
}

/// Outside Linux this is std's `remove_dir_all`, which holds one descriptor per
/// directory level it is inside.
#[cfg(not(target_os = "linux"))]
pub(crate) fn remove_dir_all_bounded(path: &Path) -> io::Result<()> {
    std::fs::remove_dir_all(path)
}

#[cfg(target_os = "linux")]
mod linux {
    use std::ffi::{CStr, CString};
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Path, PathBuf};

    use crate::fs::close::close_fd;
    use crate::fs::dir::{fstatat_nofollow, Dir};
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Which directory a descriptor is: device and inode.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    struct Identity {
        dev: libc::dev_t,
        ino: libc::ino_t,
    }

    impl Identity {
        fn of(stat: &libc::stat) -> Identity {
            Identity {
                dev: stat.st_dev,
                ino: stat.st_ino,
            }
        }
    }

    /// One step of the depth-first walk.
    enum Task {
        /// Unlink the non-directories in `dir` (listed as `id`) and queue its
        /// subdirectories.
        Empty { dir: PathBuf, id: Identity },
        /// Remove the subdirectories `names` of `dir` (listed as `id`), which have
        /// been emptied by now.
        RemoveSubdirs {
            dir: PathBuf,
            id: Identity,
            names: Vec<CString>,
        },
    }

    /// The walk. `try_openat2: false` forces the `open(O_NOFOLLOW)` fallback (for
    /// tests); `after_emptying` runs after each directory was emptied of its
    /// non-directories and its descriptor closed (a no-op outside tests).
    pub(super) fn remove_tree(
        path: &Path,
        try_openat2: bool,
        after_emptying: &mut dyn FnMut(&Path),
    ) -> io::Result<()> {
        if std::fs::symlink_metadata(path)?.file_type().is_symlink() {
            // std's semantics: the link goes, its target stays.
            return std::fs::remove_file(path);
        }
        // The root as given (its parents are trusted, as in std), never following
        // a symlink swapped in since the lstat: `ENOTDIR` for a file, like std.
        let root_fd = open_dir(&c_path(path)?, false)?;
        let root_id = fstat(root_fd.as_raw_fd())?;
        // Symlink-free, so that `RESOLVE_NO_SYMLINKS` holds for every path below.
        let root = std::fs::canonicalize(path)?;

        let mut tasks = Vec::new();
        empty_dir(root_fd, &root, root_id, &mut tasks)?;
        after_emptying(&root);
        while let Some(task) = tasks.pop() {
            match task {
                Task::Empty { dir, id } => {
                    let fd = match open_checked(&dir, id, try_openat2) {
                        Ok(fd) => fd,
                        // Gone, or no longer a directory on a symlink-free path:
                        // nothing to empty; the parent's `RemoveSubdirs` unlinks
                        // what is there now (or fails if an ancestor was swapped).
                        Err(err)
                            if matches!(
                                err.raw_os_error(),
                                Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)
                            ) =>
                        {
                            continue
                        }
                        Err(err) => return Err(err),
                    };
                    empty_dir(fd, &dir, id, &mut tasks)?;
                    after_emptying(&dir);
                }
                Task::RemoveSubdirs { dir, id, names } => {
                    let fd = match open_checked(&dir, id, try_openat2) {
                        Ok(fd) => fd,
                        Err(err) if err.raw_os_error() == Some(libc::ENOENT) => continue,
                        Err(err) => return Err(err),
                    };
                    for name in &names {
                        remove_subdir(fd.as_raw_fd(), name)?;
                    }
                    close_fd(fd)?;
                }
            }
        }
        // As std: the root by the path given; gone already is fine.
        match std::fs::remove_dir(path) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// Lists the directory open as `fd` (the directory `dir`, identity `id`):
    /// unlinks its non-directories, closes it, and queues the removal of its
    /// subdirectories after (LIFO: below) the walks into them.
    fn empty_dir(fd: OwnedFd, dir: &Path, id: Identity, tasks: &mut Vec<Task>) -> io::Result<()> {
        let mut subdirs = Vec::new();
        {
            let mut stream = Dir::new(fd)?;
            let dirfd = stream.fd();
            while let Some((name, is_dir)) = stream.next_entry()? {
                if is_dir != Some(false) {
                    // A directory (or unknown): its identity, from the checked
                    // parent, for the check when it is opened by path.
                    match fstatat_nofollow(dirfd, &name) {
                        Ok(stat) if is_dir_mode(stat.st_mode) => {
                            subdirs.push((name, Identity::of(&stat)));
                            continue;
                        }
                        Ok(_) => {}
                        Err(err) if err.raw_os_error() == Some(libc::ENOENT) => continue,
                        Err(err) => return Err(err),
                    }
                }
                unlink_at(dirfd, &name, 0)?;
            }
            // closedir: the only descriptor is gone before the next open.
            stream.close()?;
        }
        if subdirs.is_empty() {
            return Ok(());
        }
        tasks.push(Task::RemoveSubdirs {
            dir: dir.to_path_buf(),
            id,
            names: subdirs.iter().map(|(name, _)| name.clone()).collect(),
        });
        for (name, child_id) in subdirs {
            tasks.push(Task::Empty {
                dir: dir.join(std::ffi::OsStr::from_bytes(name.as_bytes())),
                id: child_id,
            });
        }
        Ok(())
    }

    /// Removes the emptied subdirectory `name` of `dirfd`; if it was replaced by a
    /// non-directory (a symlink, say), unlinks that instead, as std does.
    fn remove_subdir(dirfd: RawFd, name: &CStr) -> io::Result<()> {
        match unlink_at(dirfd, name, libc::AT_REMOVEDIR) {
            Err(err) if err.raw_os_error() == Some(libc::ENOTDIR) => unlink_at(dirfd, name, 0),
            other => other,
        }
    }

    /// `unlinkat`; an entry already gone is fine.
    fn unlink_at(dirfd: RawFd, name: &CStr, flags: libc::c_int) -> io::Result<()> {
        // SAFETY: `dirfd` is an open directory descriptor owned by the caller for
        // the call; `name` is a NUL-terminated string that outlives the call.
        let rc = unsafe { libc::unlinkat(dirfd, name.as_ptr(), flags) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ENOENT) {
            Ok(())
        } else {
            Err(err)
        }
    }

    fn is_dir_mode(mode: libc::mode_t) -> bool {
        mode & libc::S_IFMT == libc::S_IFDIR
    }

    fn c_path(path: &Path) -> io::Result<CString> {
        CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
    }

    /// Opens the directory `dir` by path and checks that it is the one listed as `id`.
    fn open_checked(dir: &Path, id: Identity, try_openat2: bool) -> io::Result<OwnedFd> {
        let fd = open_dir(&c_path(dir)?, try_openat2)?;
        if fstat(fd.as_raw_fd())? != id {
            return Err(io::Error::other(format!(
                "directory {:?} was replaced while it was being removed; stopped",
                dir.display().to_string()
            )));
        }
        Ok(fd)
    }

    /// Set once `openat2` turned out to be missing (or filtered); then `open` only.
    static OPENAT2_MISSING: AtomicBool = AtomicBool::new(false);

    /// `struct open_how` of `linux/openat2.h` (libc's is `non_exhaustive`).
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }

    /// `RESOLVE_NO_SYMLINKS` of `linux/openat2.h`.
    const RESOLVE_NO_SYMLINKS: u64 = 0x04;

    const DIR_FLAGS: libc::c_int =
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;

    /// Opens a directory, never following a symlink in the last component; with
    /// `resolve_no_symlinks`, in no component (`openat2`, when the kernel has it).
    fn open_dir(path: &CStr, resolve_no_symlinks: bool) -> io::Result<OwnedFd> {
        loop {
            let rc = if resolve_no_symlinks && !OPENAT2_MISSING.load(Ordering::Relaxed) {
                let how = OpenHow {
                    flags: DIR_FLAGS as u64,
                    mode: 0,
                    resolve: RESOLVE_NO_SYMLINKS,
                };
                // SAFETY: `path` is NUL-terminated and `how` a valid `open_how` of
                // the size passed; both outlive the call. The result is a new
                // descriptor (owned below) or -1.
                let rc = unsafe {
                    libc::syscall(
                        libc::SYS_openat2,
                        libc::AT_FDCWD,
                        path.as_ptr(),
                        &how as *const OpenHow,
                        std::mem::size_of::<OpenHow>(),
                    )
                };
                if rc < 0 {
                    let err = io::Error::last_os_error();
                    if matches!(err.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) {
                        // No openat2 (or a seccomp filter refusing it): use `open`
                        // (if EPERM was real, `open` reports it again).
                        OPENAT2_MISSING.store(true, Ordering::Relaxed);
                        continue;
                    }
                    if err.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    return Err(err);
                }
                rc as RawFd
            } else {
                // SAFETY: `path` is NUL-terminated and outlives the call. The result
                // is a new descriptor (owned below) or -1.
                let rc = unsafe { libc::open(path.as_ptr(), DIR_FLAGS) };
                if rc < 0 {
                    let err = io::Error::last_os_error();
                    if err.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    return Err(err);
                }
                rc
            };
            // SAFETY: `rc` is a descriptor just opened and owned by nobody else.
            return Ok(unsafe { OwnedFd::from_raw_fd(rc) });
        }
    }

    fn fstat(fd: RawFd) -> io::Result<Identity> {
        let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: `fd` is open for the call; `stat` is writable memory of the right
        // type, initialized by `fstat` when it returns 0.
        if unsafe { libc::fstat(fd, stat.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fstat` returned 0, so it filled `stat`.
        Ok(Identity::of(unsafe { stat.assume_init_ref() }))
    }

    #[cfg(all(test, not(loom)))]
    mod tests {
        use super::remove_tree;
        use std::io;
        use std::os::unix::fs::symlink;
        use std::path::{Path, PathBuf};
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::Arc;

        fn tempdir() -> (tempfile::TempDir, PathBuf) {
            let guard = tempfile::tempdir().unwrap();
            let path = std::fs::canonicalize(guard.path()).unwrap();
            (guard, path)
        }

        fn remove(path: &Path) -> io::Result<()> {
            super::super::remove_dir_all_bounded(path)
        }

        /// Both modes: `openat2` and the `open(O_NOFOLLOW)` fallback.
        const MODES: [bool; 2] = [true, false];

        fn deep_tree(root: &Path, depth: usize) {
            let mut dir = root.to_path_buf();
            for level in 0..depth {
                dir = dir.join(format!("d{level}"));
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(dir.join("f"), b"x").unwrap();
                symlink("f", dir.join("l")).unwrap();
            }
        }

        fn wide_tree(root: &Path) {
            for d in 0..10 {
                let dir = root.join(format!("d{d}"));
                std::fs::create_dir_all(&dir).unwrap();
                for f in 0..100 {
                    std::fs::write(dir.join(format!("f{f}")), b"").unwrap();
                }
            }
        }

        /// Descriptors of this process open on paths under `dir`.
        fn fds_under(dir: &Path) -> usize {
            std::fs::read_dir("/proc/self/fd")
                .map(|entries| {
                    entries
                        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                        .filter(|target| target.starts_with(dir))
                        .count()
                })
                .unwrap_or(0)
        }

        #[test]
        fn deep_and_wide_trees_go_like_std() {
            for (build, name) in [
                (&(|p: &Path| deep_tree(p, 40)) as &dyn Fn(&Path), "deep"),
                (&wide_tree, "wide"),
            ] {
                for openat2 in MODES {
                    let (_guard, dir) = tempdir();
                    let (ours, theirs) = (dir.join("ours"), dir.join("std"));
                    build(&ours);
                    build(&theirs);
                    remove_tree(&ours, openat2, &mut |_| {}).unwrap();
                    std::fs::remove_dir_all(&theirs).unwrap();
                    assert!(!ours.exists(), "{name} openat2={openat2}");
                    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
                }
            }
            let (_guard, dir) = tempdir();
            deep_tree(&dir.join("t"), 40);
            remove(&dir.join("t")).unwrap();
            assert!(!dir.join("t").exists());
        }

        #[test]
        fn deep_removal_holds_at_most_one_descriptor() {
            let (_guard, dir) = tempdir();
            let tree = dir.join("t");
            deep_tree(&tree, 40);
            // Checked at every step (fd closed by then) and by a sampler meanwhile.
            let mut steps = 0;
            let stop = Arc::new(AtomicBool::new(false));
            let max = Arc::new(AtomicUsize::new(0));
            let sampler = {
                let (stop, max, dir) = (stop.clone(), max.clone(), dir.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        max.fetch_max(fds_under(&dir), Ordering::SeqCst);
                    }
                })
            };
            remove_tree(&tree, true, &mut |_| {
                steps += 1;
                assert_eq!(fds_under(&dir), 0);
            })
            .unwrap();
            stop.store(true, Ordering::SeqCst);
            sampler.join().unwrap();
            assert_eq!(steps, 41);
            assert!(max.load(Ordering::SeqCst) <= 1, "held {max:?} at once");
            assert!(!tree.exists());
        }

        #[test]
        fn symlink_inside_points_outside_and_only_the_link_goes() {
            let (_guard, dir) = tempdir();
            let outside = dir.join("outside");
            std::fs::create_dir(&outside).unwrap();
            std::fs::write(outside.join("keep"), b"keep").unwrap();
            let tree = dir.join("t");
            std::fs::create_dir_all(tree.join("a")).unwrap();
            symlink(&outside, tree.join("link")).unwrap();
            symlink(&outside, tree.join("a/link")).unwrap();
            remove(&tree).unwrap();
            assert!(!tree.exists());
            assert_eq!(std::fs::read(outside.join("keep")).unwrap(), b"keep");
        }

        #[test]
        fn symlink_root_removes_only_the_link() {
            let (_guard, dir) = tempdir();
            let target = dir.join("target");
            std::fs::create_dir(&target).unwrap();
            std::fs::write(target.join("keep"), b"").unwrap();
            let link = dir.join("link");
            symlink(&target, &link).unwrap();
            remove(&link).unwrap();
            assert!(std::fs::symlink_metadata(&link).is_err());
            assert!(target.join("keep").exists());
        }

        #[test]
        fn missing_and_file_roots_fail_like_std() {
            let (_guard, dir) = tempdir();
            let missing = dir.join("missing");
            let file = dir.join("file");
            std::fs::write(&file, b"").unwrap();
            let ours = remove(&missing).unwrap_err();
            assert_eq!(ours.kind(), io::ErrorKind::NotFound);
            assert_eq!(ours.raw_os_error(), Some(libc::ENOENT));
            let ours = remove(&file).unwrap_err();
            let std = std::fs::remove_dir_all(&file).unwrap_err();
            assert_eq!(ours.raw_os_error(), Some(libc::ENOTDIR));
            assert_eq!(ours.kind(), std.kind());
            assert_eq!(ours.raw_os_error(), std.raw_os_error());
            assert!(file.exists());
        }

        /// `openat2(RESOLVE_NO_SYMLINKS)` refuses a symlink in the middle of a path
        /// (where the kernel has it); the fallback follows it.
        #[test]
        fn openat2_refuses_intermediate_symlinks() {
            let (_guard, dir) = tempdir();
            std::fs::create_dir_all(dir.join("real/sub")).unwrap();
            symlink(dir.join("real"), dir.join("link")).unwrap();
            let through = super::c_path(&dir.join("link/sub")).unwrap();
            assert!(super::open_dir(&through, false).is_ok());
            let result = super::open_dir(&through, true);
            if super::OPENAT2_MISSING.load(Ordering::Relaxed) {
                eprintln!("no openat2 here: only the identity checks were tested");
            } else {
                let err = result.unwrap_err();
                assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{err}");
            }
            let direct = super::c_path(&dir.join("real/sub")).unwrap();
            assert!(super::open_dir(&direct, true).is_ok());
        }

        /// A subdirectory swapped for a symlink to outside after its parent was
        /// listed: the link is removed, its target is not touched.
        #[test]
        fn race_subdir_swapped_for_symlink() {
            for openat2 in MODES {
                let (_guard, dir) = tempdir();
                let victim = dir.join("victim");
                std::fs::create_dir(&victim).unwrap();
                std::fs::write(victim.join("keep"), b"").unwrap();
                let tree = dir.join("t");
                std::fs::create_dir_all(tree.join("a")).unwrap();
                std::fs::write(tree.join("a/f"), b"").unwrap();
                let mut swapped = false;
                let result = remove_tree(&tree, openat2, &mut |emptied| {
                    if emptied == tree && !swapped {
                        swapped = true;
                        std::fs::rename(tree.join("a"), dir.join("moved")).unwrap();
                        symlink(&victim, tree.join("a")).unwrap();
                    }
                });
                assert!(swapped);
                result.unwrap();
                assert!(!tree.exists());
                assert!(victim.join("keep").exists(), "openat2={openat2}");
                assert!(dir.join("moved/f").exists());
            }
        }

        /// An ancestor swapped for a symlink to a look-alike tree outside, while a
        /// subdirectory below it waits: an error, and nothing outside is deleted.
        #[test]
        fn race_ancestor_swapped_for_symlink() {
            for openat2 in MODES {
                let (_guard, dir) = tempdir();
                let victim = dir.join("victim");
                std::fs::create_dir_all(victim.join("b/c")).unwrap();
                std::fs::write(victim.join("b/c/keep"), b"").unwrap();
                std::fs::write(victim.join("b/keep"), b"").unwrap();
                let tree = dir.join("t");
                std::fs::create_dir_all(tree.join("a/b/c")).unwrap();
                std::fs::write(tree.join("a/b/c/f"), b"").unwrap();
                let mut swapped = false;
                let result = remove_tree(&tree, openat2, &mut |emptied| {
                    if emptied.ends_with("a/b") && !swapped {
                        swapped = true;
                        std::fs::rename(tree.join("a"), dir.join("moved")).unwrap();
                        symlink(&victim, tree.join("a")).unwrap();
                    }
                });
                assert!(swapped);
                assert!(result.is_err(), "openat2={openat2}: {result:?}");
                assert!(victim.join("b/c/keep").exists(), "openat2={openat2}");
                assert!(victim.join("b/keep").exists(), "openat2={openat2}");
            }
        }

        /// A subdirectory swapped for another real directory: refused.
        #[test]
        fn race_subdir_swapped_for_other_directory() {
            for openat2 in MODES {
                let (_guard, dir) = tempdir();
                let other = dir.join("other");
                std::fs::create_dir(&other).unwrap();
                std::fs::write(other.join("keep"), b"").unwrap();
                let tree = dir.join("t");
                std::fs::create_dir_all(tree.join("a")).unwrap();
                let mut swapped = false;
                let result = remove_tree(&tree, openat2, &mut |emptied| {
                    if emptied == tree && !swapped {
                        swapped = true;
                        std::fs::rename(tree.join("a"), dir.join("moved")).unwrap();
                        std::fs::rename(&other, tree.join("a")).unwrap();
                    }
                });
                let err = result.unwrap_err();
                assert_eq!(err.kind(), io::ErrorKind::Other, "{err}");
                assert!(tree.join("a/keep").exists());
            }
        }
    }
}
