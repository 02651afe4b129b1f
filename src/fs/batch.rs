//! `metadata_batch`: stat many paths in few pool trips.
//!
//! The tree-compare workload of the first seed stats millions of files; one pool
//! trip per `stat` costs more than the `stat` itself on a local disk. So the paths
//! are packed into one buffer (one allocation for the whole batch, not one per
//! path), cut into chunks, and each chunk is one pool job; the chunks run in
//! parallel on the pool and their results are put back in input order.

use std::ffi::OsStr;
use std::fs::Metadata;
use std::io;
use std::ops::Range;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::error::with_path;
use crate::pool::Pool;
use crate::sync::DynArc as Arc;

/// The smallest chunk [`metadata_batch`](super::Fs::metadata_batch) sends in one pool
/// trip.
pub const MIN_BATCH_CHUNK: usize = 64;

/// The largest chunk [`metadata_batch`](super::Fs::metadata_batch) sends in one pool
/// trip, so that slow paths in one chunk do not hold back too many others.
pub const MAX_BATCH_CHUNK: usize = 1024;

/// Chunks per core that a batch aims for, so threads that finish early find more.
const CHUNKS_PER_CORE: usize = 8;

/// Many paths in one buffer: path `i` is `bytes[ends[i - 1]..ends[i]]`.
struct PackedPaths {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl PackedPaths {
    fn new<I>(paths: I) -> PackedPaths
    where
        I: IntoIterator,
        I::Item: AsRef<Path>,
    {
        let paths = paths.into_iter();
        let mut packed = PackedPaths {
            bytes: Vec::new(),
            ends: Vec::with_capacity(paths.size_hint().0),
        };
        for path in paths {
            packed
                .bytes
                .extend_from_slice(path.as_ref().as_os_str().as_bytes());
            packed.ends.push(packed.bytes.len());
        }
        packed
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn get(&self, i: usize) -> &Path {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Path::new(OsStr::from_bytes(&self.bytes[start..self.ends[i]]))
    }
}

/// How many paths go in one pool trip.
fn chunk_size(paths: usize, max_threads: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let parallel = max_threads.min(cores).max(1);
    (paths / (parallel * CHUNKS_PER_CORE)).clamp(MIN_BATCH_CHUNK, MAX_BATCH_CHUNK)
}

/// Stats `paths` on `pool`; results in input order.
pub(crate) fn metadata_batch<I>(
    pool: Pool,
    paths: I,
) -> impl std::future::Future<Output = Vec<io::Result<Metadata>>> + Send + 'static
where
    I: IntoIterator,
    I::Item: AsRef<Path>,
{
    let packed = Arc::new(PackedPaths::new(paths));
    async move {
        let total = packed.len();
        let chunk = chunk_size(total, pool.max_threads());
        let tasks: Vec<_> = (0..total)
            .step_by(chunk.max(1))
            .map(|start| {
                let range: Range<usize> = start..(start + chunk).min(total);
                let packed = packed.clone();
                pool.unblock(move || {
                    range
                        .map(|i| {
                            let path = packed.get(i);
                            std::fs::metadata(path).map_err(|err| with_path("stat", path, err))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut results = Vec::with_capacity(total);
        for task in tasks {
            results.extend(task.await);
        }
        results
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn packed_paths_round_trip() {
        let paths = ["a", "", "/b/c", "d\u{e9}"];
        let packed = PackedPaths::new(paths);
        assert_eq!(packed.len(), 4);
        for (i, path) in paths.iter().enumerate() {
            assert_eq!(packed.get(i), Path::new(path));
        }
    }

    #[test]
    fn chunks_stay_in_bounds() {
        assert_eq!(chunk_size(10, 64), MIN_BATCH_CHUNK);
        assert_eq!(chunk_size(10_000_000, 64), MAX_BATCH_CHUNK);
        assert!(chunk_size(100_000, 1) >= MIN_BATCH_CHUNK);
    }
}
