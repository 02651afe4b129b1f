//! The main job, end to end: make a tree of real files, open, read, write, list,
//! stat and close them, all asynchronously, with no runtime but `aopen::block_on`.
//!
//! Run it with `cargo run --release --example tour`. It works in a fresh temporary
//! directory (removed at the end), prints one line per step and a summary, and exits
//! non-zero if anything read back is not what was written.
//!
//! Every call below is a future whose system calls run on the global pool; the thread
//! that polls it only parks and wakes. The `PoolStats` lines before and after show the
//! pool starting threads on demand and ending with no descriptor held.

use std::error::Error;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aopen::fs::{self, File, OpenOptions, PathError};
use aopen::Pool;
use futures::future::try_join_all;

/// Directories in the tree, and files in each.
const DIRS: usize = 3;
/// Files in each directory.
const FILES_PER_DIR: usize = 200;
/// Files per directory read back with `File::open` + `read_to_string`.
const READ_BACK: usize = 10;
/// How long `Pool::shutdown` may wait for the last closes.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// Varied contents (1 to 7 copies of a line), so the size sum below means something.
fn contents(dir: usize, file: usize) -> String {
    format!("dir {dir}, file {file}\n").repeat(file % 7 + 1)
}

fn file_path(root: &Path, dir: usize, file: usize) -> PathBuf {
    root.join(format!("dir{dir}/file{file:03}.txt"))
}

fn main() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let pool = Pool::global();
    println!("pool before: {:?}", pool.stats());
    let start = Instant::now();
    let done = aopen::block_on(tour(tmp.path()))?;
    let elapsed = start.elapsed();
    // A snapshot: a thread that just handed back the last result may count as busy
    // for a moment more, and a `ReadDir`'s close (queued once it was exhausted) may
    // still hold its descriptor. `shutdown` waits for both.
    println!("pool after:  {:?}", pool.stats());
    pool.shutdown(SHUTDOWN_TIMEOUT)?;
    println!("pool after shutdown: {:?}", pool.stats());
    let [wrote, read, listed, stated] = done;
    println!(
        "summary: wrote {wrote} files, read {read}, listed {listed}, stat'ed {stated}, \
         1 clear error, in {elapsed:.1?}"
    );
    Ok(())
}

/// Returns how many files it wrote, read, listed and stat'ed, for the summary.
async fn tour(root: &Path) -> Result<[usize; 4]> {
    // 1. A tree. The 200 writes of a directory are in flight together: each is a pool
    //    job, and `try_join_all` polls them all from this one thread.
    let mut written_bytes = 0u64;
    for dir in 0..DIRS {
        fs::create_dir_all(root.join(format!("dir{dir}"))).await?;
        let writes = (0..FILES_PER_DIR).map(|file| {
            let body = contents(dir, file);
            written_bytes += body.len() as u64;
            fs::write(file_path(root, dir, file), body)
        });
        try_join_all(writes).await?;
    }
    let tree = DIRS * FILES_PER_DIR;
    println!("wrote {tree} files, {written_bytes} bytes");

    // 2. Read some back, the std way: open, read_to_string, close.
    for dir in 0..DIRS {
        for file in 0..READ_BACK {
            let mut f = File::open(file_path(root, dir, file)).await?;
            let mut text = String::new();
            f.read_to_string(&mut text).await?;
            f.close().await?;
            ensure(text == contents(dir, file), "a file read back differs")?;
        }
    }
    println!("read back {} files, contents match", DIRS * READ_BACK);

    // 3. OpenOptions + write_all + close. Dropping a `File` closes it too (on the
    //    pool, never on this thread), but throws away what close(2) said; on NFS that
    //    is where deferred write errors arrive. `close()` returns it.
    let notes = root.join("notes.txt");
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&notes)
        .await?;
    f.write_all(b"first line\n").await?;
    f.sync_all().await?;
    let len = f.metadata().await?.len();
    f.close().await?;
    println!("wrote {len} bytes to notes.txt; close(2) reported no error");

    // 4. List a directory. Entries come from the pool in batches, not one trip each.
    let mut entries = fs::read_dir(root.join("dir1")).await?;
    let mut listed = 0;
    while let Some(entry) = entries.next_entry().await? {
        if entry.file_type().await?.is_file() {
            listed += 1;
        }
    }
    println!("read_dir(dir1): {listed} files");
    ensure(listed == FILES_PER_DIR, "read_dir missed files")?;

    // 5. Stat everything in few pool trips: one result per path, in input order.
    let paths: Vec<PathBuf> = (0..DIRS)
        .flat_map(|dir| (0..FILES_PER_DIR).map(move |file| file_path(root, dir, file)))
        .collect();
    let mut stat_bytes = 0;
    for meta in fs::metadata_batch(&paths).await? {
        stat_bytes += meta?.len();
    }
    println!("metadata_batch: {} files, {stat_bytes} bytes", paths.len());
    ensure(stat_bytes == written_bytes, "sizes do not add up")?;

    // 6. The scoped form (Python's `async with aopen(...)`): open, run the body, close,
    //    and hand back the body's error or else the close's. The body borrows the file,
    //    so it cannot leak it past the close.
    OpenOptions::new()
        .append(true)
        .scoped(&notes, |f| {
            Box::pin(async move { f.write_all(b"second line\n").await })
        })
        .await?;
    let lines = fs::with_file(&notes, |f| {
        Box::pin(async move {
            let mut text = String::new();
            f.read_to_string(&mut text).await?;
            Ok(text.lines().count())
        })
    })
    .await?;
    println!("scoped append, then with_file read: notes.txt has {lines} lines");

    // 7. Errors name the operation and the path, keep the system's kind and errno.
    let missing = root.join("dir1").join("no-such-file.txt");
    let Err(err) = File::open(&missing).await else {
        return Err("opened a file that does not exist".into());
    };
    println!("expected error: {err}");
    println!("  kind {:?}, errno {:?}", err.kind(), fs::os_error(&err));
    // The typed payload, for programs that want the path back rather than a message.
    let detail = err.get_ref().and_then(|e| e.downcast_ref::<PathError>());
    let named = detail.is_some_and(|d| d.path() == missing && d.operation() == "open");
    ensure(
        named && err.kind() == io::ErrorKind::NotFound,
        "unclear error",
    )?;
    Ok([tree + 1, DIRS * READ_BACK + 1, listed, paths.len()])
}

/// Turns a failed check into an error, so `main` exits non-zero.
fn ensure(ok: bool, what: &str) -> Result<()> {
    ok.then_some(()).ok_or_else(|| what.into())
}
