//! The trees the example compares when given none: two generated trees that differ
//! in four planted ways. Plain `std::fs` (and the slow FUSE file system of
//! `tests/slowfs`): setting up is not the lesson.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The four planted differences, relative to each tree's root (see [`make`]).
const PLANTED: [&str; 4] = ["d0003/f0042", "d0007/f0100", "d0011/extra", "d0015/f0250"];
/// Threads that write a tree (each takes every fourth directory).
const MAKERS: usize = 4;
/// The mtime of the first file; each next file is a second newer.
const BASE_MTIME_SECS: u64 = 1_700_000_000;

/// Makes `a` and `b` under `root` (`dirs` × `files`), equal but for the four
/// planted differences, which it returns.
pub fn make(root: &Path, dirs: usize, files: usize) -> io::Result<Vec<PathBuf>> {
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(BASE_MTIME_SECS);
    for side in ["a", "b"] {
        std::thread::scope(|scope| {
            let makers: Vec<_> = (0..MAKERS)
                .map(|first| {
                    scope.spawn(move || -> io::Result<()> {
                        for d in (first..dirs).step_by(MAKERS) {
                            let dir = root.join(format!("{side}/d{d:04}"));
                            std::fs::create_dir_all(&dir)?;
                            for f in 0..files {
                                let file = std::fs::File::create(dir.join(format!("f{f:04}")))?;
                                file.set_len(((d * 7919 + f * 104_729) % 8192) as u64)?; // sparse
                                file.set_modified(
                                    base + Duration::from_secs((d * files + f) as u64),
                                )?;
                            }
                        }
                        Ok(())
                    })
                })
                .collect();
            makers
                .into_iter()
                .try_for_each(|maker| maker.join().expect("a maker thread"))
        })?;
    }
    let b = root.join("b");
    let open = |path: &str| std::fs::OpenOptions::new().write(true).open(b.join(path));
    let grown = open(PLANTED[0])?; // 1. another size, the same mtime
    grown.set_len(grown.metadata()?.len() + 1)?;
    grown.set_modified(std::fs::metadata(root.join("a").join(PLANTED[0]))?.modified()?)?;
    std::fs::remove_file(b.join(PLANTED[1]))?; // 2. missing from B
    std::fs::File::create(b.join(PLANTED[2]))?; // 3. only in B
    open(PLANTED[3])?.set_modified(base)?; // 4. the same size, another mtime
    Ok(planted())
}

fn planted() -> Vec<PathBuf> {
    PLANTED.iter().map(PathBuf::from).collect()
}

/// The trees of [`make`] under `cache`, made once (a `complete` marker says so).
pub fn cached(cache: &Path, dirs: usize, files: usize) -> io::Result<Vec<PathBuf>> {
    let marker = cache.join(format!("complete-{dirs}x{files}"));
    if marker.exists() {
        return Ok(planted());
    }
    println!(
        "making 2 × {} files under {} (once)",
        dirs * files,
        cache.display()
    );
    let _ = std::fs::remove_dir_all(cache);
    let planted = make(cache, dirs, files)?;
    std::fs::write(&marker, "")?;
    Ok(planted)
}

/// Two mounts (A, then B with the plants), kept mounted while alive.
#[cfg(target_os = "linux")]
pub type Mounts = (aopen_slowfs::SlowFs, aopen_slowfs::SlowFs);

/// Two slow FUSE mounts of the same generated tree (1 ms a request, 256 served at
/// once), four plants in the second; and the planted paths.
#[cfg(target_os = "linux")]
pub fn slow_mounts(dirs: u64, files: u64) -> super::Result<(Mounts, Vec<PathBuf>)> {
    use aopen_slowfs::{Latency, Plant, SlowFs, Tree};
    SlowFs::available()?;
    let tree = Tree::flat(dirs, files);
    let plants = [
        Plant::Size { dir: 4, file: 42 },
        Plant::Mtime { dir: 16, file: 250 },
        Plant::Missing { dir: 8, file: 100 },
        Plant::Extra {
            dir: 12,
            name: "extra".into(),
        },
    ];
    let planted = plants.iter().map(|plant| plant.path(&tree)).collect();
    let builder = || {
        SlowFs::builder()
            .tree(tree.clone())
            .latency(Latency::uniform(Duration::from_millis(1)))
            .concurrency(256)
    };
    let a = builder().mount()?;
    let b = plants
        .into_iter()
        .fold(builder(), |b, plant| b.plant(plant))
        .mount()?;
    Ok(((a, b), planted))
}
