//! Porting from `tokio::fs` is a change of import.
//!
//! One sample program, written once inside `sample!`, is compiled twice: against
//! `tokio::fs` (with tokio's `AsyncReadExt`/`AsyncWriteExt`/`AsyncSeekExt` in scope,
//! which its `File` needs) and against `aopen::fs` (whose `File` has the same methods
//! as inherent `async fn`s). Both run on fresh temporary directories and must report
//! the same thing. The sample uses only the calls whose names, arguments and use
//! match; the README's "Coming from tokio::fs / async-fs / std::fs" section lists the
//! ones that do not (`flush`, ...).

use std::io;
use std::path::{Path, PathBuf};

/// Writes the sample program as a module `$name` that uses `$fs` as `fs`.
macro_rules! sample {
    ($name:ident, $($fs:ident)::+, { $($prelude:item)* }) => {
        mod $name {
            $($prelude)*
            use std::io::{self, SeekFrom};
            #[cfg(unix)]
            use std::os::unix::fs::PermissionsExt;
            use std::path::PathBuf;

            use $($fs)::+ as fs;
            use self::fs::{File, OpenOptions};

            /// Creates, writes, reads, lists, copies, renames and removes files under
            /// `root`, and returns one line per observation.
            pub async fn run(root: PathBuf) -> io::Result<Vec<String>> {
                let mut log = Vec::new();
                let dir = root.join("a").join("b");
                fs::create_dir_all(&dir).await?;
                fs::create_dir(root.join("empty")).await?;

                // Whole-file helpers.
                let one = dir.join("one.txt");
                fs::write(&one, b"hello world\n").await?;
                log.push(format!("read: {:?}", fs::read(&one).await?));
                log.push(format!("read_to_string: {:?}", fs::read_to_string(&one).await?));
                log.push(format!("metadata.len: {}", fs::metadata(&one).await?.len()));
                log.push(format!(
                    "symlink_metadata.is_file: {}",
                    fs::symlink_metadata(&one).await?.is_file()
                ));

                // A file written through a handle. `sync_all` waits for the data in
                // both crates (tokio first completes its buffered write).
                let two = dir.join("two.txt");
                let mut file = File::create(&two).await?;
                file.write_all(b"0123456789").await?;
                file.sync_all().await?;
                file.set_len(8).await?;
                log.push(format!("file.metadata.len: {}", file.metadata().await?.len()));
                drop(file);

                // Appending through OpenOptions.
                let mut file = OpenOptions::new().append(true).open(&one).await?;
                file.write_all(b"more\n").await?;
                file.sync_data().await?;
                drop(file);
                log.push(format!("appended: {:?}", fs::read_to_string(&one).await?));

                // Reading through a handle: read_exact, seek, read, read_to_end.
                let mut file = File::open(&two).await?;
                let mut head = [0u8; 3];
                file.read_exact(&mut head).await?;
                log.push(format!("read_exact: {head:?}"));
                log.push(format!("seek: {}", file.seek(SeekFrom::Start(5)).await?));
                let mut buf = [0u8; 2];
                let n = file.read(&mut buf).await?;
                log.push(format!("read: {:?}", &buf[..n]));
                let mut rest = Vec::new();
                file.read_to_end(&mut rest).await?;
                log.push(format!("read_to_end: {rest:?}"));
                let mut clone = file.try_clone().await?;
                let mut text = String::new();
                clone.seek(SeekFrom::Start(0)).await?;
                clone.read_to_string(&mut text).await?;
                log.push(format!("try_clone + read_to_string: {text:?}"));
                drop(clone);
                drop(file);

                // Copy, link, rename, permissions, existence.
                let three = dir.join("three.txt");
                let copied = fs::copy(&one, &three).await?;
                // std's copy on Windows counts bytes in CopyFileExW's progress
                // callback, which Wine never calls (0): log the copy's length there.
                #[cfg(windows)]
                let copied = fs::metadata(&three).await?.len().max(copied);
                log.push(format!("copy: {copied}"));
                fs::hard_link(&three, dir.join("three-link.txt")).await?;
                fs::rename(&three, dir.join("renamed.txt")).await?;
                // Unix: a mode; Windows: the read-only flag (set, then cleared so
                // the directory can be removed).
                #[cfg(unix)]
                {
                    fs::set_permissions(
                        dir.join("renamed.txt"),
                        std::fs::Permissions::from_mode(0o600),
                    )
                    .await?;
                    let mode = fs::metadata(dir.join("renamed.txt")).await?.permissions().mode();
                    log.push(format!("mode: {:o}", mode & 0o777));
                }
                #[cfg(windows)]
                {
                    let mut perm = fs::metadata(dir.join("renamed.txt")).await?.permissions();
                    perm.set_readonly(true);
                    fs::set_permissions(dir.join("renamed.txt"), perm.clone()).await?;
                    let readonly = fs::metadata(dir.join("renamed.txt")).await?.permissions().readonly();
                    log.push(format!("readonly: {readonly}"));
                    #[allow(clippy::permissions_set_readonly_false)]
                    perm.set_readonly(false);
                    fs::set_permissions(dir.join("renamed.txt"), perm).await?;
                }
                log.push(format!("try_exists(three): {}", fs::try_exists(&three).await?));
                let canonical = fs::canonicalize(root.join("a").join(".").join("b")).await?;
                log.push(format!("canonicalize ends with a/b: {}", canonical.ends_with("a/b")));

                // The tokio::fs items beyond std's free functions: File::options,
                // File::create_new, DirBuilder, symlink and read_link.
                let mut file = File::options().append(true).open(&one).await?;
                file.write_all(b"options\n").await?;
                file.sync_all().await?;
                drop(file);
                log.push(format!("File::options: {:?}", fs::read_to_string(&one).await?));
                let fresh = dir.join("fresh.txt");
                let mut file = File::create_new(&fresh).await?;
                file.write_all(b"new").await?;
                file.seek(SeekFrom::Start(0)).await?;
                let mut back = String::new();
                file.read_to_string(&mut back).await?; // create_new opens read-write
                log.push(format!("File::create_new reads back: {back:?}"));
                drop(file);
                let again = File::create_new(&fresh).await.unwrap_err();
                log.push(format!("File::create_new again: {:?}", again.kind()));
                fs::remove_file(&fresh).await?;
                // A cap of 4 bytes per transfer: tokio's buffer, aopen's pool trip.
                let capped = dir.join("capped.txt");
                let mut file = OpenOptions::new().read(true).write(true).create(true).open(&capped).await?;
                log.push(format!("max_buf_size default: {}", file.max_buf_size()));
                file.set_max_buf_size(4);
                log.push(format!("capped write: {}", file.write(b"0123456789").await?));
                file.write_all(b"456789").await?;
                file.seek(SeekFrom::Start(0)).await?;
                let mut buf = [0u8; 10];
                let n = file.read(&mut buf).await?;
                log.push(format!("capped read: {:?}", &buf[..n]));
                drop(file);
                log.push(format!("capped file: {:?}", fs::read(&capped).await?));
                fs::remove_file(&capped).await?;
                // Out to std and back in, the same calls on both.
                let handed = dir.join("handed.txt");
                let mut file = File::create(&handed).await?;
                file.write_all(b"async").await?;
                file.sync_all().await?;
                let mut std_file = match file.try_into_std() {
                    Ok(std_file) => std_file,
                    Err(_) => panic!("nothing is in flight after sync_all"),
                };
                std::io::Write::write_all(&mut std_file, b" std")?;
                let mut file = File::from_std(std_file);
                file.write_all(b" async").await?;
                let std_file = file.into_std().await;
                log.push(format!("into_std len: {}", std_file.metadata()?.len()));
                #[cfg(unix)]
                let std_file = {
                    use std::os::fd::AsRawFd;
                    let fd = std_file.as_raw_fd();
                    let file = File::from(std_file);
                    log.push(format!("From<std::fs::File> keeps the descriptor: {}", file.as_raw_fd() == fd));
                    let file = File::from(std::os::fd::OwnedFd::from(file.into_std().await));
                    log.push(format!("From<OwnedFd> keeps the descriptor: {}", file.as_raw_fd() == fd));
                    file.into_std().await
                };
                let mut std_options = std::fs::OpenOptions::new();
                std_options.write(true).create_new(true);
                let from_std_options = OpenOptions::from(std_options);
                drop(from_std_options.open(dir.join("from-std-options")).await?);
                let again = from_std_options.open(dir.join("from-std-options")).await.unwrap_err();
                log.push(format!("From<std::fs::OpenOptions> create_new twice: {:?}", again.kind()));
                fs::remove_file(dir.join("from-std-options")).await?;
                drop(std_file);
                log.push(format!("handed over and back: {:?}", fs::read_to_string(&handed).await?));
                fs::remove_file(&handed).await?;
                let nested = root.join("built").join("x").join("y");
                let flat = fs::DirBuilder::new().create(&nested).await.unwrap_err();
                log.push(format!("DirBuilder not recursive: {:?}", flat.kind()));
                fs::DirBuilder::new().recursive(true).create(&nested).await?;
                log.push(format!("DirBuilder recursive: {}", fs::metadata(&nested).await?.is_dir()));
                #[cfg(unix)]
                {
                    let mut builder = fs::DirBuilder::new();
                    builder.mode(0o700);
                    builder.create(root.join("built").join("private")).await?;
                    let mode = fs::metadata(root.join("built").join("private")).await?.permissions().mode();
                    log.push(format!("DirBuilder mode: {:o}", mode & 0o777));

                    fs::symlink("renamed.txt", dir.join("sym")).await?;
                    log.push(format!("read_link: {:?}", fs::read_link(dir.join("sym")).await?));
                    log.push(format!(
                        "symlink_metadata.is_symlink: {}",
                        fs::symlink_metadata(dir.join("sym")).await?.file_type().is_symlink()
                    ));
                    log.push(format!("through the link: {:?}", fs::read_to_string(dir.join("sym")).await?));
                    let not_link = fs::read_link(&one).await.unwrap_err();
                    log.push(format!("read_link of a file: {:?}", not_link.kind()));
                    fs::remove_file(dir.join("sym")).await?;
                }
                fs::remove_dir_all(root.join("built")).await?;

                // Listing, sorted (directory order is the file system's).
                let mut listing = Vec::new();
                let mut entries = fs::read_dir(&dir).await?;
                while let Some(entry) = entries.next_entry().await? {
                    let kind = entry.file_type().await?;
                    let len = entry.metadata().await?.len();
                    assert_eq!(entry.path(), dir.join(entry.file_name()));
                    #[cfg(unix)]
                    assert_ne!(entry.ino(), 0);
                    listing.push(format!(
                        "{} file={} dir={} len={len}",
                        entry.file_name().to_string_lossy(),
                        kind.is_file(),
                        kind.is_dir()
                    ));
                }
                listing.sort();
                log.extend(listing);

                // Removal, and what a missing file looks like.
                fs::remove_file(dir.join("three-link.txt")).await?;
                fs::remove_dir(root.join("empty")).await?;
                let missing = fs::metadata(dir.join("three-link.txt")).await.unwrap_err();
                log.push(format!("missing kind: {:?}", missing.kind()));
                fs::remove_dir_all(root.join("a")).await?;
                log.push(format!("removed: {}", !fs::try_exists(root.join("a")).await?));
                Ok(log)
            }
        }
    };
}

sample!(with_tokio, tokio::fs, {
    use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
});
sample!(with_aopen, aopen::fs, {});

/// A fresh, empty directory for one run.
fn scratch(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "aopen-migration-{label}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn cleanup(dir: &Path) {
    std::fs::remove_dir_all(dir).expect("remove scratch dir");
}

fn run_tokio() -> io::Result<Vec<String>> {
    let dir = scratch("tokio");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let log = runtime.block_on(with_tokio::run(dir.clone()));
    cleanup(&dir);
    log
}

#[test]
fn the_same_program_gives_the_same_result_on_tokio_fs_and_aopen_fs() -> io::Result<()> {
    let tokio_log = run_tokio()?;

    let dir = scratch("aopen");
    let aopen_log = aopen::block_on(with_aopen::run(dir.clone()))?;
    cleanup(&dir);

    assert_eq!(tokio_log, aopen_log);
    // The sample did observe something (a guard against both sides returning early).
    assert!(aopen_log.len() > 20, "{aopen_log:#?}");
    assert!(aopen_log.contains(&"missing kind: NotFound".to_string()));
    assert!(aopen_log.contains(&"File::create_new again: AlreadyExists".to_string()));
    #[cfg(unix)]
    assert!(aopen_log.contains(&"read_link: \"renamed.txt\"".to_string()));
    Ok(())
}

/// The ported program also runs *under* tokio, spawned on its multi-threaded runtime
/// (aopen's futures are `Send + 'static` and need no runtime of their own).
#[test]
fn the_ported_program_runs_spawned_on_tokio() -> io::Result<()> {
    let tokio_log = run_tokio()?;

    let dir = scratch("aopen-on-tokio");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()?;
    let task = runtime.spawn(with_aopen::run(dir.clone()));
    let aopen_log = runtime.block_on(task).expect("the task does not panic")?;
    cleanup(&dir);

    assert_eq!(tokio_log, aopen_log);
    Ok(())
}

/// The one argument difference, pinned (README, "What differs"): tokio's future
/// keeps an owned path argument alive until the call returns; aopen's future is
/// `'static` even for a borrowed path, so it copies the path at the call and drops
/// the argument there. A `NamedTempFile` passed by value is therefore deleted before
/// aopen's open runs (`NotFound`); passed by reference it works on both, which is
/// the port.
#[test]
fn an_owned_argument_lives_through_tokios_call_and_is_dropped_at_aopens() -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let by_value = runtime.block_on(
        tokio::fs::OpenOptions::new()
            .read(true)
            .open(tempfile::NamedTempFile::new()?),
    );
    assert!(by_value.is_ok(), "{by_value:?}");

    let by_value = aopen::block_on(
        aopen::fs::OpenOptions::new()
            .read(true)
            .open(tempfile::NamedTempFile::new()?),
    );
    let err = by_value.expect_err("the temporary file was deleted at the call");
    assert_eq!(err.kind(), io::ErrorKind::NotFound);

    // The port: lend the path and keep the owner alive across the `.await`.
    let temp = tempfile::NamedTempFile::new()?;
    let file = runtime.block_on(tokio::fs::OpenOptions::new().read(true).open(&temp))?;
    drop(file);
    let file = aopen::block_on(aopen::fs::OpenOptions::new().read(true).open(&temp))?;
    aopen::block_on(file.close())?;
    Ok(())
}
