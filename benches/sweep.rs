//! The latency sweep: `aopen` and its peers on a slow FUSE mount (`tests/slowfs`).
//!
//! ```text
//! cargo bench --bench sweep                                  # the whole sweep, one repetition
//! cargo bench --bench sweep -- --reps 3                      # median of 3
//! cargo bench --bench sweep -- --latency 5 --inflight 256 --op stat   # one cell per column
//! cargo bench --bench sweep -- --latency 1,5 --op stat,list  # lists are comma-separated
//! ```
//!
//! One mount serves the whole sweep: 16 directories of 1,024 files, every request
//! delayed by the row's latency once it holds one of [`SERVER_CONCURRENCY`] slots (an
//! NFS server with that many threads), every kernel cache off. Rows are latency × calls
//! in flight (0.2, 1, 5, 20 ms × 16, 64, 256, 1,024); tables are the operations:
//!
//! - `stat`: `metadata` of a file (a `LOOKUP` of its directory, one of the file, a
//!   `GETATTR`: three round trips);
//! - `open`: open and close (two lookups and an `OPEN`; the kernel sends `RELEASE` in
//!   the background);
//! - `read`: open, read 4 KiB, close (one `READ` more);
//! - `list`: list a directory of 1,024 entries (its `READDIR`s, one after another),
//!   then `stat` each entry through its `DirEntry` with that many in flight (two round
//!   trips each: the entry's `LOOKUP` and `GETATTR`).
//!
//! Columns: `std` on one thread (fewer operations, scaled to the cell's count: it
//! would take minutes otherwise), `std` on 16 threads (whatever the row's in-flight
//! count), `blocking`, `async-fs`, `tokio` (`tokio::fs` on a multi-thread runtime),
//! `aopen`, and `aopen` `metadata_batch` in the `stat` table, twice: `aopen-batch`,
//! batches of the row's in-flight count one after another (each batch ends with its
//! slowest stat, so this shows what one batch of exactly that many paths costs), and
//! `batch-all`, one batch of all the cell's paths on a pool of the row's in-flight
//! count of threads (the issue's "a batch of N paths with room for C calls takes
//! N × L / C"; one pool per count, kept for the whole run so that it is warm like
//! the others); in the `list` table, `aopen-walk`: `fs::walk` with `max_depth(1)`
//! and metadata, aopen's list-and-stat call (each entry `fstatat`ed against the open
//! directory in the listing's own trips), at its own concurrency whatever the row's
//! in-flight count. Thread caps are otherwise each library's default
//! (`blocking` 500, tokio's blocking pool 512). Each cell shows its wall time and its
//! ratio to the ideal, `ops × round trips × latency / min(in flight, server
//! concurrency)`, with the round trips per operation counted by the server during the
//! sequential `std` run (for `list`, the `READDIR`s are added once, unshared).
//!
//! Everything runs in this one process, one cell after another, so pools are warm
//! (threads a library started for one cell serve the next): the steady state of a
//! program that stats a NAS all day. Each cell runs about [`CELL_TARGET`] of ideal
//! time. Needs root and `/dev/fuse`; prints one line and exits 0 where they are
//! missing. Run without `--bench` (as `cargo test --all-targets` does) it is a smoke
//! test: one small cell per column.

#[cfg(target_os = "linux")]
fn main() {
    linux::main()
}

#[cfg(not(target_os = "linux"))]
fn main() {
    println!("benches/sweep: the slow FUSE mount needs Linux; skipped");
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    use std::thread;
    use std::time::{Duration, Instant};

    use aopen_slowfs::{content, Kind, Latency, SlowFs, Stats, Tree};
    use futures::stream::{self, StreamExt};

    /// Requests the server serves at once.
    const SERVER_CONCURRENCY: usize = 1024;
    /// Directories of the tree.
    const DIRS: u64 = 16;
    /// Files per directory (and entries of a listed directory).
    const FILES_PER_DIR: u64 = 1024;
    /// The latencies of the full sweep, in milliseconds.
    const LATENCIES_MS: [f64; 4] = [0.2, 1.0, 5.0, 20.0];
    /// The calls in flight of the full sweep.
    const IN_FLIGHT: [usize; 4] = [16, 64, 256, 1024];
    /// Threads of the `std-16t` column.
    const STD_THREADS: usize = 16;
    /// Ideal time each cell aims at (the real time is longer by the cell's ratio).
    const CELL_TARGET: Duration = Duration::from_millis(300);
    /// Ideal time of a smoke test's cell.
    const SMOKE_TARGET: Duration = Duration::from_millis(5);
    /// The most operations in a cell: the tree's files, each stat-ed or opened once.
    const MAX_OPS: usize = (DIRS * FILES_PER_DIR) as usize;
    /// The fewest sequential operations a `std` cell runs before scaling.
    const MIN_SEQUENTIAL_OPS: usize = 8;
    /// Bytes the `read` operation reads.
    const READ_SIZE: usize = 4096;
    /// Round trips per operation assumed before the server counted them.
    const ASSUMED_TRIPS: f64 = 3.0;

    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Op {
        Stat,
        Open,
        Read,
        List,
    }

    impl Op {
        const ALL: [Op; 4] = [Op::Stat, Op::Open, Op::Read, Op::List];

        fn name(self) -> &'static str {
            match self {
                Op::Stat => "stat",
                Op::Open => "open",
                Op::Read => "read",
                Op::List => "list",
            }
        }

        fn title(self) -> &'static str {
            match self {
                Op::Stat => "stat",
                Op::Open => "open + close",
                Op::Read => "open + read 4 KiB + close",
                Op::List => "list 1,024 entries + stat each",
            }
        }
    }

    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Column {
        Std,
        Std16,
        Blocking,
        AsyncFs,
        Tokio,
        Aopen,
        AopenBatch,
        AopenBatchAll,
        AopenWalk,
    }

    impl Column {
        const ALL: [Column; 9] = [
            Column::Std,
            Column::Std16,
            Column::Blocking,
            Column::AsyncFs,
            Column::Tokio,
            Column::Aopen,
            Column::AopenBatch,
            Column::AopenBatchAll,
            Column::AopenWalk,
        ];

        fn name(self) -> &'static str {
            match self {
                Column::Std => "std",
                Column::Std16 => "std-16t",
                Column::Blocking => "blocking",
                Column::AsyncFs => "async-fs",
                Column::Tokio => "tokio",
                Column::Aopen => "aopen",
                Column::AopenBatch => "aopen-batch",
                Column::AopenBatchAll => "batch-all",
                Column::AopenWalk => "aopen-walk",
            }
        }

        fn runs(self, op: Op) -> bool {
            match self {
                Column::AopenBatch | Column::AopenBatchAll => op == Op::Stat,
                Column::AopenWalk => op == Op::List,
                _ => true,
            }
        }
    }

    /// What to run: the command line's choices.
    struct Plan {
        latencies_ms: Vec<f64>,
        in_flight: Vec<usize>,
        ops: Vec<Op>,
        reps: usize,
        /// Ideal time each cell aims at.
        target: Duration,
    }

    fn parse_list<T>(value: &str, what: &str, parse: impl Fn(&str) -> Option<T>) -> Vec<T> {
        value
            .split(',')
            .map(|v| {
                parse(v.trim())
                    .unwrap_or_else(|| panic!("bad {what}: {v:?} (see benches/sweep.rs)"))
            })
            .collect()
    }

    fn plan() -> Plan {
        let mut plan = Plan {
            latencies_ms: LATENCIES_MS.to_vec(),
            in_flight: IN_FLIGHT.to_vec(),
            ops: Op::ALL.to_vec(),
            reps: 1,
            target: CELL_TARGET,
        };
        let args: Vec<String> = std::env::args().skip(1).collect();
        if !args.iter().any(|a| a == "--bench") {
            // `cargo test --all-targets`: a smoke test.
            plan.latencies_ms = vec![0.2];
            plan.in_flight = vec![16];
            plan.target = SMOKE_TARGET;
            return plan;
        }
        let mut args = args.into_iter().filter(|a| a != "--bench");
        while let Some(arg) = args.next() {
            let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
            match arg.as_str() {
                "--latency" => {
                    plan.latencies_ms = parse_list(&value(), "latency (ms)", |v| v.parse().ok())
                }
                "--inflight" => {
                    plan.in_flight = parse_list(&value(), "in-flight count", |v| v.parse().ok())
                }
                "--op" => {
                    plan.ops = parse_list(&value(), "op (stat, open, read, list)", |v| {
                        Op::ALL.into_iter().find(|o| o.name() == v)
                    })
                }
                "--reps" => plan.reps = value().parse().expect("--reps takes a count"),
                other => panic!("unknown argument {other:?} (see benches/sweep.rs)"),
            }
        }
        plan
    }

    /// The paths of one cell, with the inode each should have.
    struct Targets {
        paths: Vec<PathBuf>,
        inos: Vec<u64>,
    }

    fn targets(fs: &SlowFs, n: usize) -> Targets {
        let tree = fs.tree();
        let (mut paths, mut inos) = (Vec::with_capacity(n), Vec::with_capacity(n));
        // Spread over the directories, so that one directory's lookups are not all.
        for i in 0..n as u64 {
            let (dir, file) = (1 + i % DIRS, (i / DIRS) % FILES_PER_DIR);
            paths.push(fs.file_path(dir, file));
            inos.push(tree.file_ino(dir, file));
        }
        Targets { paths, inos }
    }

    fn check_read(buf: &[u8], ino: u64) {
        assert!(
            buf == content(ino, 0, READ_SIZE).as_slice(),
            "wrong bytes read from inode {ino}"
        );
    }

    // ---------------------------------------------------------------------------------
    // One operation per library
    // ---------------------------------------------------------------------------------

    fn std_op(op: Op, path: &Path, ino: u64) {
        match op {
            Op::Stat => assert_eq!(std::fs::metadata(path).expect("stat").ino(), ino),
            Op::Open => drop(std::fs::File::open(path).expect("open")),
            Op::Read => {
                let mut buf = [0; READ_SIZE];
                std::fs::File::open(path)
                    .expect("open")
                    .read_exact(&mut buf)
                    .expect("read");
                check_read(&buf, ino);
            }
            Op::List => unreachable!("lists are run by run_list"),
        }
    }

    async fn async_fs_op(op: Op, path: PathBuf, ino: u64) {
        use futures::AsyncReadExt;
        match op {
            Op::Stat => assert_eq!(async_fs::metadata(&path).await.expect("stat").ino(), ino),
            Op::Open => drop(async_fs::File::open(&path).await.expect("open")),
            Op::Read => {
                let mut buf = [0; READ_SIZE];
                let mut file = async_fs::File::open(&path).await.expect("open");
                file.read_exact(&mut buf).await.expect("read");
                check_read(&buf, ino);
            }
            Op::List => unreachable!(),
        }
    }

    async fn tokio_op(op: Op, path: PathBuf, ino: u64) {
        use tokio::io::AsyncReadExt;
        match op {
            Op::Stat => assert_eq!(tokio::fs::metadata(&path).await.expect("stat").ino(), ino),
            Op::Open => drop(tokio::fs::File::open(&path).await.expect("open")),
            Op::Read => {
                let mut buf = [0; READ_SIZE];
                let mut file = tokio::fs::File::open(&path).await.expect("open");
                file.read_exact(&mut buf).await.expect("read");
                check_read(&buf, ino);
            }
            Op::List => unreachable!(),
        }
    }

    async fn aopen_op(op: Op, path: PathBuf, ino: u64) {
        match op {
            Op::Stat => assert_eq!(aopen::fs::metadata(&path).await.expect("stat").ino(), ino),
            Op::Open => aopen::fs::File::open(&path)
                .await
                .expect("open")
                .close()
                .await
                .expect("close"),
            Op::Read => {
                let mut buf = [0; READ_SIZE];
                let mut file = aopen::fs::File::open(&path).await.expect("open");
                file.read_exact(&mut buf).await.expect("read");
                file.close().await.expect("close");
                check_read(&buf, ino);
            }
            Op::List => unreachable!(),
        }
    }

    /// Run `op` on every target, `in_flight` at once, with `column`'s library.
    fn run_ops(
        column: Column,
        op: Op,
        t: &Targets,
        in_flight: usize,
        rt: &tokio::runtime::Runtime,
    ) {
        let jobs = || t.paths.iter().cloned().zip(t.inos.iter().copied());
        match column {
            Column::Std => {
                for (path, ino) in jobs() {
                    std_op(op, &path, ino);
                }
            }
            Column::Std16 => {
                let next = AtomicUsize::new(0);
                thread::scope(|s| {
                    for _ in 0..STD_THREADS {
                        s.spawn(|| loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i >= t.paths.len() {
                                break;
                            }
                            std_op(op, &t.paths[i], t.inos[i]);
                        });
                    }
                });
            }
            Column::Blocking => futures::executor::block_on(
                stream::iter(jobs())
                    .map(|(path, ino)| blocking::unblock(move || std_op(op, &path, ino)))
                    .buffer_unordered(in_flight)
                    .for_each(|()| async {}),
            ),
            Column::AsyncFs => futures::executor::block_on(
                stream::iter(jobs())
                    .map(|(path, ino)| async_fs_op(op, path, ino))
                    .buffer_unordered(in_flight)
                    .for_each(|()| async {}),
            ),
            Column::Tokio => rt.block_on(
                stream::iter(jobs())
                    .map(|(path, ino)| tokio_op(op, path, ino))
                    .buffer_unordered(in_flight)
                    .for_each(|()| async {}),
            ),
            Column::Aopen => aopen::block_on(
                stream::iter(jobs())
                    .map(|(path, ino)| aopen_op(op, path, ino))
                    .buffer_unordered(in_flight)
                    .for_each(|()| async {}),
            ),
            Column::AopenBatch => aopen::block_on(async {
                for (paths, inos) in t.paths.chunks(in_flight).zip(t.inos.chunks(in_flight)) {
                    let metas = aopen::fs::metadata_batch(paths).await.expect("a pool");
                    for (meta, ino) in metas.iter().zip(inos) {
                        assert_eq!(meta.as_ref().expect("stat").ino(), *ino);
                    }
                }
            }),
            Column::AopenBatchAll => {
                let pool = pool_of(in_flight);
                let metas = aopen::block_on(pool.fs().metadata_batch(&t.paths)).expect("a pool");
                for (meta, ino) in metas.iter().zip(&t.inos) {
                    assert_eq!(meta.as_ref().expect("stat").ino(), *ino);
                }
            }
            Column::AopenWalk => unreachable!("the walk has only a list row"),
        }
    }

    /// The pool of `threads` threads for the `batch-all` column: made at its first
    /// use and kept for the run, so its threads are warm like the other libraries'.
    fn pool_of(threads: usize) -> aopen::Pool {
        static POOLS: Mutex<Vec<(usize, aopen::Pool)>> = Mutex::new(Vec::new());
        let mut pools = POOLS.lock().expect("pools");
        if let Some((_, pool)) = pools.iter().find(|(n, _)| *n == threads) {
            return pool.clone();
        }
        let pool = aopen::Pool::builder()
            .max_threads(threads)
            .build()
            .expect("a pool for batch-all");
        pools.push((threads, pool.clone()));
        pool
    }

    /// The sequential `std` list: the whole listing, then a stat of the first `stats`
    /// entries. Returns the entries, the time with the stats scaled to all of them, and
    /// the round trips counted by the server.
    fn sequential_list(fs: &SlowFs, dir: &Path, stats: usize) -> (usize, f64, Trips) {
        let start = Instant::now();
        let entries: Vec<_> = std::fs::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry"))
            .collect();
        let listed = start.elapsed().as_secs_f64();
        let listing_trips = waited(&fs.stats());
        let stats = stats.min(entries.len());
        let start = Instant::now();
        for entry in &entries[..stats] {
            entry.metadata().expect("stat");
        }
        let stat_secs = start.elapsed().as_secs_f64();
        let stat_trips = waited(&fs.stats()) - listing_trips;
        let trips = Trips {
            per_op: stat_trips as f64 / stats as f64,
            serial: listing_trips as f64,
        };
        let secs = listed + stat_secs * entries.len() as f64 / stats as f64;
        (entries.len(), secs, trips)
    }

    /// List directory `dir` with `column`'s library, then stat each entry through its
    /// `DirEntry`, `in_flight` at once; returns the entries seen.
    fn run_list(
        column: Column,
        dir: &Path,
        in_flight: usize,
        rt: &tokio::runtime::Runtime,
    ) -> usize {
        match column {
            Column::Std => unreachable!("the sequential list is run by sequential_list"),
            Column::Std16 => {
                let entries: Vec<_> = std::fs::read_dir(dir)
                    .expect("list")
                    .map(|e| e.expect("entry"))
                    .collect();
                let next = AtomicUsize::new(0);
                thread::scope(|s| {
                    for _ in 0..STD_THREADS {
                        s.spawn(|| loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(entry) = entries.get(i) else { break };
                            entry.metadata().expect("stat");
                        });
                    }
                });
                entries.len()
            }
            Column::Blocking => futures::executor::block_on(async {
                let dir = dir.to_owned();
                let entries: Vec<_> = blocking::unblock(move || {
                    std::fs::read_dir(dir)
                        .expect("list")
                        .map(|e| e.expect("entry"))
                        .collect::<Vec<_>>()
                })
                .await;
                let n = entries.len();
                stream::iter(entries)
                    .map(|entry| {
                        blocking::unblock(move || {
                            assert!(entry.metadata().expect("stat").is_file())
                        })
                    })
                    .buffer_unordered(in_flight)
                    .for_each(|()| async {})
                    .await;
                n
            }),
            Column::AsyncFs => futures::executor::block_on(async {
                let mut listing = async_fs::read_dir(dir).await.expect("list");
                let mut entries = Vec::new();
                while let Some(entry) = listing.next().await {
                    entries.push(entry.expect("entry"));
                }
                let n = entries.len();
                stream::iter(entries)
                    .map(|entry| async move { assert!(entry.metadata().await.expect("stat").is_file()) })
                    .buffer_unordered(in_flight)
                    .for_each(|()| async {})
                    .await;
                n
            }),
            Column::Tokio => rt.block_on(async {
                let mut listing = tokio::fs::read_dir(dir).await.expect("list");
                let mut entries = Vec::new();
                while let Some(entry) = listing.next_entry().await.expect("entry") {
                    entries.push(entry);
                }
                let n = entries.len();
                stream::iter(entries)
                        .map(|entry| async move {
                            assert!(entry.metadata().await.expect("stat").is_file())
                        })
                        .buffer_unordered(in_flight)
                        .for_each(|()| async {})
                        .await;
                n
            }),
            Column::Aopen => aopen::block_on(async {
                let mut listing = aopen::fs::read_dir(dir).await.expect("list");
                let mut entries = Vec::new();
                while let Some(entry) = listing.next_entry().await.expect("entry") {
                    entries.push(entry);
                }
                let n = entries.len();
                stream::iter(entries)
                    .map(|entry| async move { assert!(entry.metadata().await.expect("stat").is_file()) })
                    .buffer_unordered(in_flight)
                    .for_each(|()| async {})
                    .await;
                n
            }),
            // The list-and-stat call aopen has: the names and each entry's `fstatat`
            // against the open directory come back together. The walk picks its own
            // concurrency, so the row's in-flight count does not bind it.
            Column::AopenWalk => aopen::block_on(async {
                let mut walk = aopen::fs::WalkOptions::new()
                    .max_depth(1)
                    .metadata(true)
                    .walk(dir);
                let mut n = 0;
                while let Some(entry) = walk.next_entry().await.expect("entry") {
                    if entry.depth() == 1 {
                        assert!(entry.metadata().expect("asked for").is_file());
                        n += 1;
                    }
                }
                n
            }),
            Column::AopenBatch | Column::AopenBatchAll => {
                unreachable!("metadata_batch has no list row")
            }
        }
    }

    // ---------------------------------------------------------------------------------
    // Cells
    // ---------------------------------------------------------------------------------

    /// Round trips of one operation, counted by the server.
    #[derive(Clone, Copy)]
    struct Trips {
        /// Per operation (per entry for `list`), sharing the server's slots.
        per_op: f64,
        /// Once per cell, one after another (the `READDIR`s of a listing).
        serial: f64,
    }

    /// Requests the caller waits for: all but the background `RELEASE`s.
    fn waited(stats: &Stats) -> u64 {
        stats.served_total() - stats.served_of(Kind::Release) - stats.served_of(Kind::Releasedir)
    }

    fn ideal(trips: Trips, ops: usize, latency: Duration, in_flight: usize) -> Duration {
        let parallel = in_flight.min(SERVER_CONCURRENCY) as f64;
        latency.mul_f64(trips.serial + ops as f64 * trips.per_op / parallel)
    }

    /// Operations of a cell: about [`CELL_TARGET`] of ideal time, at least two rounds of
    /// the in-flight count, at most [`MAX_OPS`].
    fn cell_ops(latency: Duration, in_flight: usize, target: Duration) -> usize {
        let per_op = latency.mul_f64(ASSUMED_TRIPS / in_flight.min(SERVER_CONCURRENCY) as f64);
        let ops = (target.as_secs_f64() / per_op.as_secs_f64().max(f64::MIN_POSITIVE)) as usize;
        ops.clamp(2 * in_flight, MAX_OPS).min(MAX_OPS)
    }

    /// One measured cell: wall time, scaled to `ops` for the sequential column.
    struct Measured {
        secs: f64,
    }

    /// One cell of a table: an operation at a latency and an in-flight count.
    #[derive(Clone, Copy)]
    struct Cell {
        op: Op,
        latency: Duration,
        in_flight: usize,
        /// Operations (entries, for `list`).
        ops: usize,
        /// Ideal time the cell aims at.
        target: Duration,
    }

    fn measure(
        fs: &SlowFs,
        column: Column,
        cell: &Cell,
        rt: &tokio::runtime::Runtime,
    ) -> (Measured, Option<Trips>) {
        let Cell {
            op,
            latency,
            in_flight,
            ops,
            target,
        } = *cell;
        // The sequential column runs fewer operations and is scaled.
        let sequential = column == Column::Std;
        let count = if sequential {
            let one = latency
                .mul_f64(ASSUMED_TRIPS)
                .as_secs_f64()
                .max(f64::MIN_POSITIVE);
            ((target.as_secs_f64() / one) as usize).clamp(MIN_SEQUENTIAL_OPS, ops)
        } else {
            ops
        };
        fs.reset_stats();
        let start = Instant::now();
        let (entries, scaled, list_trips) = match op {
            Op::List if sequential => {
                let (entries, secs, trips) = sequential_list(fs, &fs.dir_path(1), count);
                (entries, Some(secs), Some(trips))
            }
            Op::List => (run_list(column, &fs.dir_path(1), in_flight, rt), None, None),
            _ => {
                run_ops(column, op, &targets(fs, count), in_flight, rt);
                (count, None, None)
            }
        };
        let secs = start.elapsed().as_secs_f64();
        let stats = fs.stats();
        let trips = sequential.then(|| {
            list_trips.unwrap_or(Trips {
                per_op: waited(&stats) as f64 / entries as f64,
                serial: 0.0,
            })
        });
        let secs = match scaled {
            Some(secs) => secs,
            None => secs * ops as f64 / count as f64,
        };
        (Measured { secs }, trips)
    }

    fn median(mut xs: Vec<f64>) -> f64 {
        xs.sort_by(f64::total_cmp);
        xs[xs.len() / 2]
    }

    fn fmt_secs(secs: f64) -> String {
        if secs >= 10.0 {
            format!("{secs:.1} s")
        } else if secs >= 1.0 {
            format!("{secs:.2} s")
        } else {
            format!("{:.0} ms", secs * 1e3)
        }
    }

    pub fn main() {
        let plan = plan();
        if !SlowFs::announce("benches/sweep") {
            return;
        }
        let fs = SlowFs::builder()
            .tree(Tree {
                size_min: READ_SIZE as u64,
                ..Tree::flat(DIRS, FILES_PER_DIR)
            })
            .concurrency(SERVER_CONCURRENCY)
            .mount()
            .expect("mount the slow file system");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        println!(
            "Latency sweep on a FUSE mount: {DIRS} × {FILES_PER_DIR} files, server concurrency \
             {SERVER_CONCURRENCY}, kernel caches off; {} repetition(s), median. Each cell: wall time \
             (ratio to ideal). `std` runs fewer operations and is scaled to the cell's count.\n",
            plan.reps
        );
        for &op in &plan.ops {
            let columns: Vec<Column> = Column::ALL.into_iter().filter(|c| c.runs(op)).collect();
            println!("### {}\n", op.title());
            let header: Vec<&str> = columns.iter().map(|c| c.name()).collect();
            println!(
                "| latency | in flight | ops | trips/op | ideal | {} |",
                header.join(" | ")
            );
            println!("|--:|--:|--:|--:|--:|{}", "--:|".repeat(columns.len()));
            for &latency_ms in &plan.latencies_ms {
                let latency = Duration::from_secs_f64(latency_ms / 1e3);
                fs.set_latency(Latency::uniform(latency));
                for &in_flight in &plan.in_flight {
                    let ops = if op == Op::List {
                        FILES_PER_DIR as usize
                    } else {
                        cell_ops(latency, in_flight, plan.target)
                    };
                    let cell = Cell {
                        op,
                        latency,
                        in_flight,
                        ops,
                        target: plan.target,
                    };
                    let mut secs: Vec<Vec<f64>> = vec![Vec::new(); columns.len()];
                    let mut trips = None;
                    for _ in 0..plan.reps {
                        for (i, &column) in columns.iter().enumerate() {
                            let (m, t) = measure(&fs, column, &cell, &rt);
                            trips = trips.or(t);
                            secs[i].push(m.secs);
                            eprintln!(
                                "{} {latency_ms} ms × {in_flight}: {} {}",
                                op.name(),
                                column.name(),
                                fmt_secs(m.secs)
                            );
                        }
                    }
                    let trips = trips.expect("the std column counts the trips");
                    let ideal = ideal(trips, ops, latency, in_flight).as_secs_f64();
                    let cells: Vec<String> = secs
                        .into_iter()
                        .map(|s| {
                            let m = median(s);
                            format!("{} ({:.2}×)", fmt_secs(m), m / ideal)
                        })
                        .collect();
                    println!(
                        "| {latency_ms} ms | {in_flight} | {ops} | {:.2}{} | {} | {} |",
                        trips.per_op,
                        if trips.serial > 0.0 {
                            format!(" + {:.0}", trips.serial)
                        } else {
                            String::new()
                        },
                        fmt_secs(ideal),
                        cells.join(" | ")
                    );
                }
            }
            println!();
        }
        println!(
            "aopen pool after the sweep: {:?}",
            aopen::Pool::global().stats()
        );
    }
}
