//! The `std::fs`-shaped API of `aopen::fs`, checked against `std::fs` on the same
//! inputs: results, error kinds and OS error codes.

#[path = "support/common.rs"]
mod common;

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
#[cfg(unix)]
use std::fmt::Debug;
use std::io::{self, SeekFrom};
#[cfg(unix)]
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
#[cfg(unix)]
use std::time::Duration;

#[cfg(unix)]
use aopen::fs::Fs;
use aopen::fs::{os_error, File, OpenOptions, MAX_TRANSFER};
use common::{fds_to, occupy, pool, tempdir, wait_for};
use futures::executor::block_on;
use futures::FutureExt;

/// Win32's `ERROR_FILE_EXISTS` (`EEXIST` on Unix).
#[cfg(windows)]
const ERROR_FILE_EXISTS: i32 = 80;
/// Win32's `ERROR_SHARING_VIOLATION`.
#[cfg(windows)]
const ERROR_SHARING_VIOLATION: i32 = 32;
/// `FILE_SHARE_READ` of `CreateFileW`'s share mode.
#[cfg(windows)]
const FILE_SHARE_READ: u32 = 1;

// ---------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------

/// The parts of a `Metadata` that two stats of an unchanged file agree on.
#[cfg(unix)]
type MetaKey = (u64, u64, u32, u64, u64, bool, bool, bool, i64, i64);

/// The parts of a `Metadata` that two stats of an unchanged file agree on (Windows
/// has no device, inode, mode or link count in std's `Metadata`).
#[cfg(windows)]
type MetaKey = (u64, bool, bool, bool, std::time::SystemTime);

#[cfg(windows)]
fn key(m: &std::fs::Metadata) -> MetaKey {
    let modified = m.modified().expect("mtime");
    (m.len(), m.is_dir(), m.is_file(), m.is_symlink(), modified)
}

#[cfg(unix)]
fn key(m: &std::fs::Metadata) -> MetaKey {
    (
        m.dev(),
        m.ino(),
        m.mode(),
        m.nlink(),
        m.len(),
        m.is_dir(),
        m.is_file(),
        m.is_symlink(),
        m.mtime(),
        m.mtime_nsec(),
    )
}

#[cfg(unix)]
/// Asserts that aopen's result agrees with std's: equal values, or errors of the
/// same kind and OS error code.
#[track_caller]
fn agree<T: PartialEq + Debug>(what: &str, ours: io::Result<T>, std: io::Result<T>) {
    match (ours, std) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{what}: values differ"),
        (Err(a), Err(b)) => {
            assert_eq!(a.kind(), b.kind(), "{what}: error kinds differ: {a} / {b}");
            assert_eq!(
                os_error(&a),
                b.raw_os_error(),
                "{what}: OS errors differ: {a} / {b}"
            );
        }
        (a, b) => panic!("{what}: aopen gave {a:?}, std gave {b:?}"),
    }
}

// ---------------------------------------------------------------------------------
// Free functions vs std::fs
// ---------------------------------------------------------------------------------

#[cfg(unix)]
/// Runs every path function of `fs` and of `std::fs` side by side.
fn compare_with_std(fs: &Fs) {
    let (_guard, d) = tempdir();
    let file = d.join("file");
    std::fs::write(&file, b"hello world").unwrap();
    let sub = d.join("sub");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("inner"), b"inner").unwrap();
    let link = d.join("link");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    let dangling = d.join("dangling");
    std::os::unix::fs::symlink(d.join("nowhere"), &dangling).unwrap();
    let missing = d.join("missing");
    let through_file = file.join("x");
    let bad_utf8 = d.join("bad-utf8");
    std::fs::write(&bad_utf8, [0x66, 0xff, 0xfe, 0x00]).unwrap();

    block_on(async {
        // metadata / symlink_metadata
        for p in [&file, &sub, &link, &dangling, &missing, &through_file] {
            agree(
                &format!("metadata {p:?}"),
                fs.metadata(p).await.map(|m| key(&m)),
                std::fs::metadata(p).map(|m| key(&m)),
            );
            agree(
                &format!("symlink_metadata {p:?}"),
                fs.symlink_metadata(p).await.map(|m| key(&m)),
                std::fs::symlink_metadata(p).map(|m| key(&m)),
            );
        }
        assert!(fs.symlink_metadata(&link).await.unwrap().is_symlink());
        assert!(!fs.metadata(&link).await.unwrap().is_symlink());

        // read / read_to_string
        for p in [&file, &sub, &link, &missing, &through_file, &bad_utf8] {
            agree(&format!("read {p:?}"), fs.read(p).await, std::fs::read(p));
            agree(
                &format!("read_to_string {p:?}"),
                fs.read_to_string(p).await,
                std::fs::read_to_string(p),
            );
        }
        assert_eq!(
            fs.read_to_string(&bad_utf8).await.unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );

        // write
        agree(
            "write new",
            fs.write(d.join("w-ours"), b"written").await,
            std::fs::write(d.join("w-std"), b"written"),
        );
        assert_eq!(std::fs::read(d.join("w-ours")).unwrap(), b"written");
        agree(
            "write replaces",
            fs.write(d.join("w-ours"), b"2").await,
            std::fs::write(d.join("w-std"), b"2"),
        );
        assert_eq!(std::fs::read(d.join("w-ours")).unwrap(), b"2");
        for p in [&sub, &missing.join("x"), &through_file] {
            agree(
                &format!("write {p:?}"),
                fs.write(p, b"x").await,
                std::fs::write(p, b"x"),
            );
        }

        // create_dir / create_dir_all
        agree(
            "create_dir new",
            fs.create_dir(d.join("cd-ours")).await,
            std::fs::create_dir(d.join("cd-std")),
        );
        assert!(d.join("cd-ours").is_dir());
        for p in [&sub, &file, &missing.join("x"), &through_file] {
            agree(
                &format!("create_dir {p:?}"),
                fs.create_dir(p).await,
                std::fs::create_dir(p),
            );
        }
        agree(
            "create_dir_all nested",
            fs.create_dir_all(d.join("cda-ours/a/b/c")).await,
            std::fs::create_dir_all(d.join("cda-std/a/b/c")),
        );
        assert!(d.join("cda-ours/a/b/c").is_dir());
        for p in [
            &sub,
            &d.join("cda-ours/a/b"),
            &file,
            &through_file.join("y"),
        ] {
            agree(
                &format!("create_dir_all {p:?}"),
                fs.create_dir_all(p).await,
                std::fs::create_dir_all(p),
            );
        }

        // remove_file / remove_dir / remove_dir_all
        std::fs::write(d.join("rf-ours"), b"").unwrap();
        std::fs::write(d.join("rf-std"), b"").unwrap();
        agree(
            "remove_file",
            fs.remove_file(d.join("rf-ours")).await,
            std::fs::remove_file(d.join("rf-std")),
        );
        assert!(!d.join("rf-ours").exists());
        for p in [&missing, &sub, &through_file] {
            agree(
                &format!("remove_file {p:?}"),
                fs.remove_file(p).await,
                std::fs::remove_file(p),
            );
        }
        agree(
            "remove_dir empty",
            fs.remove_dir(d.join("cd-ours")).await,
            std::fs::remove_dir(d.join("cd-std")),
        );
        assert!(!d.join("cd-ours").exists());
        for p in [&sub, &file, &missing] {
            agree(
                &format!("remove_dir {p:?}"),
                fs.remove_dir(p).await,
                std::fs::remove_dir(p),
            );
        }
        agree(
            "remove_dir_all tree",
            fs.remove_dir_all(d.join("cda-ours")).await,
            std::fs::remove_dir_all(d.join("cda-std")),
        );
        assert!(!d.join("cda-ours").exists());
        for p in [&missing, &file] {
            agree(
                &format!("remove_dir_all {p:?}"),
                fs.remove_dir_all(p).await,
                std::fs::remove_dir_all(p),
            );
        }

        // rename
        std::fs::write(d.join("mv-ours"), b"m").unwrap();
        std::fs::write(d.join("mv-std"), b"m").unwrap();
        agree(
            "rename",
            fs.rename(d.join("mv-ours"), d.join("mv-ours-2")).await,
            std::fs::rename(d.join("mv-std"), d.join("mv-std-2")),
        );
        assert_eq!(std::fs::read(d.join("mv-ours-2")).unwrap(), b"m");
        agree(
            "rename missing",
            fs.rename(&missing, d.join("m2")).await,
            std::fs::rename(&missing, d.join("m2")),
        );
        agree(
            "rename file over dir",
            fs.rename(&file, &sub).await,
            std::fs::rename(&file, &sub),
        );

        // copy
        agree(
            "copy",
            fs.copy(&file, d.join("cp-ours")).await,
            std::fs::copy(&file, d.join("cp-std")),
        );
        assert_eq!(std::fs::read(d.join("cp-ours")).unwrap(), b"hello world");
        for (from, to) in [
            (&missing, d.join("cp2")),
            (&sub, d.join("cp3")),
            (&file, missing.join("x")),
        ] {
            agree(
                &format!("copy {from:?} -> {to:?}"),
                fs.copy(from, &to).await,
                std::fs::copy(from, &to),
            );
        }

        // hard_link
        agree(
            "hard_link",
            fs.hard_link(&file, d.join("hl-ours")).await,
            std::fs::hard_link(&file, d.join("hl-std")),
        );
        assert_eq!(std::fs::metadata(&file).unwrap().nlink(), 3);
        agree(
            "hard_link existing",
            fs.hard_link(&file, d.join("hl-ours")).await,
            std::fs::hard_link(&file, d.join("hl-std")),
        );
        agree(
            "hard_link missing",
            fs.hard_link(&missing, d.join("hl2")).await,
            std::fs::hard_link(&missing, d.join("hl2")),
        );

        // canonicalize
        for p in [
            d.join("sub/../link"),
            d.join("./sub/inner"),
            link.clone(),
            missing.clone(),
            dangling.clone(),
            through_file.clone(),
        ] {
            agree(
                &format!("canonicalize {p:?}"),
                fs.canonicalize(&p).await,
                std::fs::canonicalize(&p),
            );
        }

        // try_exists
        for p in [&file, &sub, &link, &dangling, &missing, &through_file] {
            agree(
                &format!("try_exists {p:?}"),
                fs.try_exists(p).await,
                p.try_exists(),
            );
        }
        assert!(fs.try_exists(&file).await.unwrap());
        assert!(!fs.try_exists(&missing).await.unwrap());

        // set_permissions
        std::fs::write(d.join("perm"), b"").unwrap();
        fs.set_permissions(d.join("perm"), std::fs::Permissions::from_mode(0o640))
            .await
            .unwrap();
        assert_eq!(
            std::fs::metadata(d.join("perm")).unwrap().mode() & 0o777,
            0o640
        );
        agree(
            "set_permissions missing",
            fs.set_permissions(&missing, std::fs::Permissions::from_mode(0o600))
                .await,
            std::fs::set_permissions(&missing, std::fs::Permissions::from_mode(0o600)),
        );
    });
}

#[cfg(unix)]
#[test]
fn free_functions_agree_with_std() {
    // `Fs::default()` is the global pool: exactly what the free functions call.
    compare_with_std(&Fs::default());
}

#[cfg(unix)]
#[test]
fn pool_functions_agree_with_std() {
    let pool = pool(4, 8);
    compare_with_std(&pool.fs());
    pool.shutdown(Duration::from_secs(10)).unwrap();
}

#[test]
fn read_returns_whole_files_of_every_size_like_std() {
    // `fs::read` reads up to 8 KiB before it asks for the size: files just under, at
    // and over that, empty ones, large ones, and ones whose size `stat` does not
    // know (procfs says 0) must all come back whole, as std's `read` gives them.
    let (_guard, d) = tempdir();
    let mut paths = Vec::new();
    for size in [0, 1, 4096, 8191, 8192, 8193, 16384, 100_000] {
        let path = d.join(format!("size-{size}"));
        let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, bytes).unwrap();
        paths.push(path);
    }
    // A two-byte character across the 8 KiB mark, for `read_to_string`.
    let straddle = d.join("straddle");
    let mut text = "a".repeat(8191);
    text.push('\u{e9}');
    text.push_str("tail");
    std::fs::write(&straddle, &text).unwrap();
    paths.push(straddle);
    block_on(async {
        for path in &paths {
            let ours = aopen::fs::read(path).await.unwrap();
            let std = std::fs::read(path).unwrap();
            assert_eq!(ours.len(), std.len(), "{path:?}");
            assert!(ours == std, "{path:?}: contents differ");
            assert_eq!(
                aopen::fs::read_to_string(path).await.ok(),
                std::fs::read_to_string(path).ok(),
                "{path:?}"
            );
        }
        // procfs reports size 0 for files that are not empty; each read makes the
        // text anew, so compare shape, not bytes: whole lines, more than 8 KiB.
        let maps = "/proc/self/smaps";
        let ours = aopen::fs::read(maps).await.unwrap();
        assert!(ours.len() > 8192, "{maps}: {} bytes", ours.len());
        assert!(ours.ends_with(b"\n"), "{maps}: cut short");
    });
}

#[test]
fn free_functions_are_wired_to_the_global_pool() {
    use aopen::fs;
    let (_guard, d) = tempdir();
    let p = d.join("f");
    block_on(async {
        fs::write(&p, b"abc").await.unwrap();
        assert_eq!(fs::read(&p).await.unwrap(), b"abc");
        assert_eq!(fs::read_to_string(&p).await.unwrap(), "abc");
        assert_eq!(fs::metadata(&p).await.unwrap().len(), 3);
        assert_eq!(fs::symlink_metadata(&p).await.unwrap().len(), 3);
        assert_eq!(fs::copy(&p, d.join("g")).await.unwrap(), 3);
        fs::hard_link(&p, d.join("h")).await.unwrap();
        fs::rename(d.join("h"), d.join("i")).await.unwrap();
        fs::remove_file(d.join("i")).await.unwrap();
        fs::create_dir(d.join("a")).await.unwrap();
        fs::create_dir_all(d.join("a/b/c")).await.unwrap();
        fs::remove_dir(d.join("a/b/c")).await.unwrap();
        fs::remove_dir_all(d.join("a")).await.unwrap();
        assert_eq!(fs::canonicalize(d.join("./f")).await.unwrap(), p);
        assert!(fs::try_exists(&p).await.unwrap());
        assert!(!fs::try_exists(d.join("a")).await.unwrap());
        // The permissions it has: a portable `Permissions` (Unix modes are not).
        let perm = std::fs::metadata(&p).unwrap().permissions();
        fs::set_permissions(&p, perm).await.unwrap();
        let mut rd = fs::read_dir(&d).await.unwrap();
        let mut names = Vec::new();
        while let Some(e) = rd.next_entry().await.unwrap() {
            names.push(e.file_name());
        }
        names.sort();
        assert_eq!(names, vec![OsString::from("f"), OsString::from("g")]);
        let batch = fs::metadata_batch([&p, &d.join("zz")]).await.unwrap();
        assert_eq!(batch[0].as_ref().unwrap().len(), 3);
        assert_eq!(
            batch[1].as_ref().unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        let mut f = File::open(&p).await.unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).await.unwrap();
        assert_eq!(s, "abc");
        f.close().await.unwrap();
    });
}

// ---------------------------------------------------------------------------------
// File methods
// ---------------------------------------------------------------------------------

#[test]
fn file_reads() {
    let (_guard, d) = tempdir();
    let pool = pool(4, 8);
    let p = d.join("r");
    std::fs::write(&p, b"0123456789").unwrap();
    block_on(async {
        let mut f = pool.fs().open(&p).await?;
        let mut buf = [0u8; 4];
        assert_eq!(f.read(&mut buf).await?, 4);
        assert_eq!(&buf, b"0123");
        let mut exact = [0u8; 3];
        f.read_exact(&mut exact).await?;
        assert_eq!(&exact, b"456");
        let mut rest = b"pre:".to_vec();
        assert_eq!(f.read_to_end(&mut rest).await?, 3);
        assert_eq!(rest, b"pre:789");
        assert_eq!(f.read(&mut buf).await?, 0, "read at end of file");
        assert_eq!(f.read(&mut []).await?, 0);

        f.seek(SeekFrom::Start(8)).await?;
        let err = f.read_exact(&mut [0u8; 5]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);

        f.seek(SeekFrom::Start(0)).await?;
        let mut s = String::from(">");
        assert_eq!(f.read_to_string(&mut s).await?, 10);
        assert_eq!(s, ">0123456789");

        // Invalid UTF-8: InvalidData, and the String is left unchanged.
        std::fs::write(d.join("bad"), [b'a', 0xff]).unwrap();
        let mut bad = pool.fs().open(d.join("bad")).await?;
        let mut s = String::from("keep");
        let err = bad.read_to_string(&mut s).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(s, "keep");
        bad.close().await?;
        f.close().await
    })
    .unwrap();
}

#[test]
fn file_large_write_all_and_read_exact() {
    let (_guard, d) = tempdir();
    let pool = pool(4, 8);
    let p = d.join("big");
    let data: Vec<u8> = (0..5 * 1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    assert!(data.len() > MAX_TRANSFER);
    block_on(async {
        let mut f = pool
            .fs()
            .options()
            .read(true)
            .write(true)
            .create(true)
            .open(&p)
            .await?;
        f.write_all(&data).await?;
        assert_eq!(std::fs::read(&p)?, data);
        f.seek(SeekFrom::Start(0)).await?;
        let mut back = vec![0u8; data.len()];
        f.read_exact(&mut back).await?;
        assert!(back == data, "read_exact of 5 MiB differs");
        // A single write/read may be short (at most MAX_TRANSFER) but not empty.
        f.seek(SeekFrom::Start(0)).await?;
        let n = f.write(&data).await?;
        assert!(n > 0 && n <= MAX_TRANSFER, "write moved {n}");
        f.seek(SeekFrom::Start(0)).await?;
        let n = f.read(&mut back).await?;
        assert!(n > 0 && n <= MAX_TRANSFER, "read moved {n}");
        assert!(back[..n] == data[..n]);
        let mut all = Vec::new();
        f.seek(SeekFrom::Start(0)).await?;
        assert_eq!(f.read_to_end(&mut all).await?, data.len());
        assert!(all == data);
        f.close().await
    })
    .unwrap();
}

#[test]
fn file_seek_sync_len_metadata() {
    let (_guard, d) = tempdir();
    let pool = pool(4, 8);
    let p = d.join("s");
    block_on(async {
        let mut f = pool
            .fs()
            .options()
            .read(true)
            .write(true)
            .create(true)
            .open(&p)
            .await?;
        f.write_all(b"abcdefghij").await?;
        assert_eq!(f.seek(SeekFrom::Current(0)).await?, 10);
        assert_eq!(f.seek(SeekFrom::Start(2)).await?, 2);
        assert_eq!(f.seek(SeekFrom::Current(3)).await?, 5);
        assert_eq!(f.seek(SeekFrom::End(-1)).await?, 9);
        let mut one = [0u8; 1];
        f.read_exact(&mut one).await?;
        assert_eq!(&one, b"j");
        let err = f.seek(SeekFrom::Current(-100)).await.unwrap_err();
        #[cfg(unix)]
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        // Windows: ERROR_NEGATIVE_SEEK, which std leaves uncategorized.
        #[cfg(windows)]
        assert_eq!(os_error(&err), Some(131), "{err}");

        f.sync_all().await?;
        f.sync_data().await?;
        f.set_len(4).await?;
        assert_eq!(std::fs::read(&p)?, b"abcd");
        f.set_len(6).await?;
        assert_eq!(std::fs::read(&p)?, b"abcd\0\0");
        let m = f.metadata().await?;
        assert_eq!(key(&m), key(&std::fs::metadata(&p)?));
        assert_eq!(m.len(), 6);
        #[cfg(unix)]
        {
            f.set_permissions(std::fs::Permissions::from_mode(0o604))
                .await?;
            assert_eq!(std::fs::metadata(&p)?.mode() & 0o777, 0o604);
        }
        assert_eq!(f.path(), p.as_path());
        f.close().await
    })
    .unwrap();
}

/// An empty read answers at once, without a pool trip (tokio's `empty_read` test
/// polls it once), and does not look like the end of the file.
#[test]
fn an_empty_read_is_ready_at_once() {
    use futures::FutureExt;

    let (_guard, d) = tempdir();
    let pool = pool(1, 4);
    let p = d.join("e");
    std::fs::write(&p, b"abc").unwrap();
    let mut f = block_on(pool.fs().open(&p)).unwrap();
    // The only thread is busy: a read that needed it could not be ready.
    let (release, blocker) = common::occupy(&pool);
    assert!(matches!(f.read(&mut []).now_or_never(), Some(Ok(0))));
    release.send(()).unwrap();
    block_on(blocker);
    let mut buf = [0u8; 8];
    assert_eq!(block_on(f.read(&mut buf)).unwrap(), 3);
    block_on(f.close()).unwrap();
}

/// A clone moves as much per pool trip as the file it was cloned from.
#[test]
fn try_clone_keeps_max_buf_size() {
    let (_guard, d) = tempdir();
    let pool = pool(2, 4);
    let mut f = block_on(
        pool.fs()
            .options()
            .write(true)
            .create(true)
            .open(d.join("m")),
    )
    .unwrap();
    f.set_max_buf_size(128);
    let g = block_on(f.try_clone()).unwrap();
    assert_eq!(g.max_buf_size(), 128);
    block_on(async {
        f.close().await?;
        g.close().await
    })
    .unwrap();
}

#[test]
fn file_try_clone_shares_position_and_takes_a_permit() {
    let (_guard, d) = tempdir();
    let pool = pool(4, 8);
    let p = d.join("c");
    std::fs::write(&p, b"abcdefghij").unwrap();
    block_on(async {
        let mut f = pool.fs().open(&p).await?;
        let mut g = f.try_clone().await?;
        // Windows can only tell that the file is held open, not by how many.
        assert_eq!(fds_to(&p).len(), if cfg!(unix) { 2 } else { 1 });
        assert_eq!(pool.budget().available(), 6);
        let mut buf = [0u8; 3];
        f.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"abc");
        g.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"def", "the clone does not share the position");
        assert_eq!(f.seek(SeekFrom::Current(0)).await?, 6);
        f.close().await?;
        g.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"ghi");
        g.close().await?;
        assert!(fds_to(&p).is_empty());
        assert_eq!(pool.budget().available(), 8);
        Ok::<_, io::Error>(())
    })
    .unwrap();
}

/// A budget of one, held by the file: the clone's permit could never come, so it is
/// an error at once (it used to wait forever). `now_or_never` polls once: a wait
/// shows up as `None`, not as a hang.
#[test]
fn try_clone_on_a_full_budget_of_one_is_an_error_not_a_hang() {
    let (_guard, d) = tempdir();
    let pool = pool(2, 1);
    let p = d.join("one");
    std::fs::write(&p, b"x").unwrap();
    let f = block_on(pool.fs().open(&p)).unwrap();
    let err = f
        .try_clone()
        .now_or_never()
        .expect("try_clone waited for a permit its own file holds")
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("{:?}", p.display().to_string())),
        "{text}"
    );
    assert!(text.contains("budget is 1"), "{text}");
    assert_eq!(pool.budget().held(), 1, "the failed clone took nothing");
    block_on(f.close()).unwrap();
    assert_eq!(pool.budget().held(), 0);
}

#[test]
fn file_positional_io_keeps_the_position() {
    let (_guard, d) = tempdir();
    let pool = pool(4, 8);
    let p = d.join("p");
    std::fs::write(&p, b"0123456789").unwrap();
    block_on(async {
        let mut f = pool.fs().options().read(true).write(true).open(&p).await?;
        f.seek(SeekFrom::Start(2)).await?;
        let mut buf = [0u8; 4];
        assert_eq!(f.read_at(&mut buf, 5).await?, 4);
        assert_eq!(&buf, b"5678");
        assert_eq!(f.read_at(&mut buf, 8).await?, 2, "short read at the end");
        assert_eq!(&buf[..2], b"89");
        assert_eq!(f.read_at(&mut buf, 100).await?, 0);
        assert_eq!(f.write_at(b"XY", 0).await?, 2);
        assert_eq!(f.write_at(b"Z", 12).await?, 1);
        assert_eq!(
            f.seek(SeekFrom::Current(0)).await?,
            2,
            "positional I/O moved the position"
        );
        let mut next = [0u8; 2];
        f.read_exact(&mut next).await?;
        assert_eq!(&next, b"23");
        assert_eq!(std::fs::read(&p)?, b"XY23456789\0\0Z");
        f.close().await
    })
    .unwrap();
}

#[test]
fn open_options_modes() {
    let (_guard, d) = tempdir();
    let pool = pool(4, 8);
    let p = d.join("o");
    std::fs::write(&p, b"start").unwrap();
    block_on(async {
        // append
        let mut f = pool.fs().options().append(true).open(&p).await?;
        f.write_all(b"+1").await?;
        f.seek(SeekFrom::Start(0)).await?;
        f.write_all(b"+2").await?;
        f.close().await?;
        assert_eq!(std::fs::read(&p)?, b"start+1+2");

        // create_new on an existing file
        let err = pool
            .fs()
            .options()
            .write(true)
            .create_new(true)
            .open(&p)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        #[cfg(unix)]
        assert_eq!(os_error(&err), Some(libc::EEXIST));
        #[cfg(windows)]
        assert_eq!(os_error(&err), Some(ERROR_FILE_EXISTS));
        #[cfg(unix)]
        {
            let fresh = d.join("fresh");
            pool.fs()
                .options()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&fresh)
                .await?
                .close()
                .await?;
            assert_eq!(std::fs::metadata(&fresh)?.mode() & 0o777, 0o600);
        }

        // truncate
        let f = pool
            .fs()
            .options()
            .write(true)
            .truncate(true)
            .open(&p)
            .await?;
        assert_eq!(std::fs::metadata(&p)?.len(), 0);
        f.close().await?;

        // create vs no create
        let err = pool
            .fs()
            .options()
            .write(true)
            .open(d.join("nope"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        pool.fs()
            .options()
            .write(true)
            .create(true)
            .open(d.join("yes"))
            .await?
            .close()
            .await?;
        assert!(d.join("yes").exists());

        // File::create truncates; custom_flags reaches open(2).
        std::fs::write(&p, b"old contents")?;
        let mut c = OpenOptions::new()
            .pool(&pool)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p)
            .await?;
        c.write_all(b"new").await?;
        c.close().await?;
        assert_eq!(std::fs::read(&p)?, b"new");
        #[cfg(unix)]
        {
            let err = pool
                .fs()
                .options()
                .read(true)
                .custom_flags(libc::O_DIRECTORY)
                .open(&p)
                .await
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::NotADirectory);
        }
        // Windows: a share mode that refuses writers makes a second open for
        // writing fail with a sharing violation (32).
        #[cfg(windows)]
        {
            let reader = pool
                .fs()
                .options()
                .read(true)
                .share_mode(FILE_SHARE_READ)
                .open(&p)
                .await?;
            let err = pool.fs().options().write(true).open(&p).await.unwrap_err();
            assert_eq!(os_error(&err), Some(ERROR_SHARING_VIOLATION), "{err}");
            reader.close().await?;
        }

        // No access mode at all: std's InvalidInput.
        let err = pool.fs().options().open(&p).await.unwrap_err();
        assert_eq!(
            err.kind(),
            std::fs::OpenOptions::new().open(&p).unwrap_err().kind()
        );
        Ok::<_, io::Error>(())
    })
    .unwrap();
    wait_for("all closed", || {
        if pool.budget().available() == 8 {
            Ok(())
        } else {
            Err(format!("{:?}", pool.stats()))
        }
    });
}

#[test]
fn file_create_and_open_on_the_global_pool() {
    let (_guard, d) = tempdir();
    let p = d.join("g");
    block_on(async {
        let mut f = File::create(&p).await?;
        f.write_all(b"global").await?;
        f.close().await?;
        let mut f = File::open(&p).await?;
        let mut s = String::new();
        f.read_to_string(&mut s).await?;
        assert_eq!(s, "global");
        f.close().await
    })
    .unwrap();
}

// ---------------------------------------------------------------------------------
// read_dir
// ---------------------------------------------------------------------------------

#[test]
fn read_dir_lists_every_entry_once_like_std() {
    const N: usize = 10_000;
    let (_guard, d) = tempdir();
    for i in 0..N {
        std::fs::write(d.join(format!("entry-{i:05}")), b"").unwrap();
    }
    std::fs::create_dir(d.join("a-dir")).unwrap();
    // Windows: symlinks need a privilege, and listings give no inode.
    #[cfg(unix)]
    std::os::unix::fs::symlink(d.join("entry-00000"), d.join("a-link")).unwrap();

    let expected: HashMap<OsString, (PathBuf, u64, std::fs::FileType)> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            #[cfg(unix)]
            let ino = std::os::unix::fs::DirEntryExt::ino(&e);
            #[cfg(windows)]
            let ino = 0;
            (e.file_name(), (e.path(), ino, e.file_type().unwrap()))
        })
        .collect();
    assert_eq!(expected.len(), N + if cfg!(unix) { 2 } else { 1 });

    let pool = pool(1, 4);
    let entries = block_on(async {
        let mut rd = pool.fs().read_dir(&d).await?;
        let mut entries = Vec::new();
        while let Some(entry) = rd.next_entry().await? {
            entries.push(entry);
        }
        assert!(rd.next_entry().await?.is_none(), "entries after the end");
        Ok::<_, io::Error>(entries)
    })
    .unwrap();

    let mut seen = HashSet::new();
    for entry in &entries {
        let name = entry.file_name();
        assert!(seen.insert(name.clone()), "{name:?} listed twice");
        let (path, ino, _) = expected
            .get(&name)
            .unwrap_or_else(|| panic!("{name:?} is not in std's listing"));
        assert_eq!(&entry.path(), path);
        #[cfg(unix)]
        assert_eq!(entry.ino(), *ino, "{name:?}");
        let _ = ino;
    }
    assert_eq!(
        seen.len(),
        expected.len(),
        "entries missing from the listing"
    );

    // file_type: answered without a pool trip for what the listing typed. The only
    // pool thread is busy, so a pool trip could not complete now.
    let (release, blocker) = occupy(&pool);
    for entry in &entries {
        let (_, _, std_type) = &expected[&entry.file_name()];
        // Files, the directory and the link: each type the listing gave is answered
        // from it (std's `FileType` for it is learned once per type, `read_dir.rs`).
        if std_type.is_file() || std_type.is_dir() || std_type.is_symlink() {
            let ty = entry
                .file_type()
                .now_or_never()
                .unwrap_or_else(|| panic!("file_type of {:?} needed a pool trip", entry.path()))
                .unwrap();
            assert_eq!(
                (ty.is_file(), ty.is_dir(), ty.is_symlink()),
                (std_type.is_file(), std_type.is_dir(), std_type.is_symlink()),
                "{:?}",
                entry.path()
            );
        }
    }
    release.send(()).unwrap();
    block_on(blocker);
    block_on(async {
        for entry in &entries {
            let (_, _, std_type) = &expected[&entry.file_name()];
            let ty = entry.file_type().await.unwrap();
            assert_eq!(
                (ty.is_file(), ty.is_dir(), ty.is_symlink()),
                (std_type.is_file(), std_type.is_dir(), std_type.is_symlink()),
                "{:?}",
                entry.path()
            );
        }
        for entry in entries.iter().filter(|e| {
            let n = e.file_name();
            n == "a-dir" || n == "a-link" || n == "entry-00042"
        }) {
            let ours = entry.metadata().await.unwrap();
            let std = std::fs::symlink_metadata(entry.path()).unwrap();
            assert_eq!(key(&ours), key(&std), "{:?}", entry.path());
        }
    });
    wait_for("listing's permit back", || {
        if pool.budget().available() == 4 && fds_to(&d).is_empty() {
            Ok(())
        } else {
            Err(format!("{:?} fds {:?}", pool.stats(), fds_to(&d)))
        }
    });
}

#[test]
fn read_dir_releases_its_descriptor_when_dropped_or_exhausted() {
    let (_guard, d) = tempdir();
    for i in 0..1000 {
        std::fs::write(d.join(format!("e{i}")), b"").unwrap();
    }
    let pool = pool(2, 3);
    let released = |what: &str| {
        wait_for(what, || {
            let fds = fds_to(&d);
            if pool.budget().available() == 3 && fds.is_empty() {
                Ok(())
            } else {
                Err(format!("{:?} fds {fds:?}", pool.stats()))
            }
        })
    };

    // Dropped half-way.
    let mut rd = block_on(pool.fs().read_dir(&d)).unwrap();
    for _ in 0..500 {
        assert!(block_on(rd.next_entry()).unwrap().is_some());
    }
    assert_eq!(fds_to(&d).len(), 1, "the listing holds a descriptor");
    assert_eq!(pool.budget().available(), 2);
    drop(rd);
    released("dropped ReadDir releases");

    // Exhausted but still alive.
    let mut rd = block_on(pool.fs().read_dir(&d)).unwrap();
    let mut n = 0;
    while block_on(rd.next_entry()).unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 1000);
    released("exhausted ReadDir releases while alive");
    assert!(block_on(rd.next_entry()).unwrap().is_none());
    drop(rd);

    // Dropped before its first entry, and dropped mid-open.
    drop(block_on(pool.fs().read_dir(&d)).unwrap());
    for _ in 0..20 {
        let mut open = pool.fs().read_dir(&d);
        let _ = (&mut open).now_or_never();
        drop(open);
    }
    released("unused ReadDirs release");
}

// ---------------------------------------------------------------------------------
// metadata_batch
// ---------------------------------------------------------------------------------

#[test]
fn metadata_batch_matches_std_in_input_order() {
    const N: usize = 5_000;
    let (_guard, d) = tempdir();
    let blocker = d.join("plain");
    std::fs::write(&blocker, b"x").unwrap();
    let paths: Vec<PathBuf> = (0..N)
        .map(|i| match i % 7 {
            0 => d.join(format!("missing-{i}")),
            1 => blocker.join(format!("under-a-file-{i}")),
            _ => {
                let p = d.join(format!("f-{i}"));
                std::fs::write(&p, vec![b'.'; i % 97]).unwrap();
                p
            }
        })
        .collect();
    let pool = pool(8, 4);
    let results = block_on(pool.fs().metadata_batch(paths.clone())).unwrap();
    assert_eq!(results.len(), N);
    for (i, (path, ours)) in paths.iter().zip(&results).enumerate() {
        match (ours, std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => assert_eq!(key(a), key(&b), "#{i} {path:?}"),
            (Err(a), Err(b)) => {
                assert_eq!(a.kind(), b.kind(), "#{i} {path:?}");
                assert_eq!(os_error(a), b.raw_os_error(), "#{i} {path:?}");
                // Quoted with Rust's escapes (doubled backslashes on Windows).
                let quoted = format!("{:?}", path.display().to_string());
                assert!(a.to_string().contains(&quoted), "#{i}: {a}");
            }
            (a, b) => panic!("#{i} {path:?}: aopen {a:?}, std {b:?}"),
        }
    }
    // Free function, borrowed paths, and the empty batch.
    let refs: Vec<&Path> = paths.iter().take(10).map(|p| p.as_path()).collect();
    let results = block_on(aopen::fs::metadata_batch(refs)).unwrap();
    assert_eq!(results.len(), 10);
    assert_eq!(results[2].as_ref().unwrap().len(), 2);
    assert!(block_on(pool.fs().metadata_batch(Vec::<PathBuf>::new()))
        .unwrap()
        .is_empty());
}

// ---------------------------------------------------------------------------------
// Futures are Send + 'static
// ---------------------------------------------------------------------------------

fn assert_send_static<T: Send + 'static>(_: &T) {}
fn assert_send<T: Send>(_: &T) {}

#[test]
fn futures_are_send_and_static() {
    let (_guard, d) = tempdir();
    let p = d.join("s");
    std::fs::write(&p, b"send").unwrap();
    let pool = pool(2, 4);
    let some_string = p.to_str().unwrap().to_string();
    // Each future is dropped unpolled (or driven below).
    assert_send_static(&aopen::fs::metadata(String::from("x")));
    let open = File::open(&some_string); // borrowed argument, 'static future
    assert_send_static(&open);
    drop(open);
    assert_send_static(&aopen::fs::read_dir(&some_string));
    assert_send_static(&aopen::fs::metadata_batch(vec![some_string.clone()]));
    assert_send_static(&pool.fs().write(&some_string, b"x"));
    assert_send_static(&OpenOptions::new().pool(&pool).read(true).open(&some_string));
    assert_send_static(&pool.fs().copy(&some_string, &some_string));

    block_on(async {
        let mut f = pool.fs().open(&some_string).await.unwrap();
        let mut buf = [0u8; 4];
        {
            let read = f.read(&mut buf);
            assert_send(&read);
            assert_eq!(read.await.unwrap(), 4);
        }
        assert_send(&f.metadata());
        assert_send(&f.write_all(b""));
        let close = f.close();
        assert_send_static(&close);
        close.await.unwrap();
    });
    assert_eq!(std::fs::read(&p).unwrap(), b"send");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futures_run_on_tokio_spawn() {
    let (_guard, d) = tempdir();
    let p = d.join("t");
    std::fs::write(&p, b"tokio").unwrap();
    let name = p.to_str().unwrap().to_string();

    let meta = tokio::spawn(aopen::fs::metadata(name.clone()));
    let open = tokio::spawn(File::open(&name));
    let list = tokio::spawn(aopen::fs::read_dir(d.clone()));
    let batch = tokio::spawn(aopen::fs::metadata_batch(vec![
        name.clone(),
        name.clone() + "x",
    ]));
    assert_eq!(meta.await.unwrap().unwrap().len(), 5);
    let mut file = open.await.unwrap().unwrap();
    let read = tokio::spawn(async move {
        let mut s = String::new();
        file.read_to_string(&mut s).await?;
        file.close().await?;
        Ok::<_, io::Error>(s)
    });
    assert_eq!(read.await.unwrap().unwrap(), "tokio");
    let mut rd = list.await.unwrap().unwrap();
    let entry = rd.next_entry().await.unwrap().expect("one entry");
    assert_eq!(entry.file_name(), "t");
    assert!(rd.next_entry().await.unwrap().is_none());
    let batch = batch.await.unwrap().unwrap();
    assert!(batch[0].is_ok() && batch[1].is_err());
}
