//! The slow file system on a real mount: what std sees, what the server counts, and
//! that a drop releases a hung caller. Skipped (with one printed line) without FUSE.
#![cfg(target_os = "linux")]

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use aopen_slowfs::{
    content, Kind, Latency, Plant, SlowFs, Tree, PLANTED_MTIME_SHIFT, PLANTED_SIZE_DELTA,
};

/// Long enough to be sure a caller is in the hung directory's request, far beyond any
/// scheduling delay; the test never waits for it to pass.
const NEVER: Duration = Duration::from_secs(3600);

#[test]
fn std_sees_the_tree_and_the_server_counts_each_request() {
    if !SlowFs::announce("selftest::std_sees_the_tree") {
        return;
    }
    let tree = Tree {
        fanout: 3,
        depth: 2,
        files_per_dir: 20,
        size_min: 5000,
        size_spread: 3000,
    };
    let fs = SlowFs::builder()
        .tree(tree.clone())
        .latency(Latency::uniform(Duration::from_micros(200)))
        .mount()
        .unwrap();

    // A stat: a lookup per path component (entry timeout 0) and a getattr.
    let path = fs.file_path(5, 7);
    assert!(path.ends_with("d0/d1/f07"), "{}", path.display());
    fs.reset_stats();
    let meta = std::fs::metadata(&path).unwrap();
    let ino = tree.file_ino(5, 7);
    assert_eq!(meta.ino(), ino);
    assert_eq!(meta.len(), tree.file_size(ino));
    assert_eq!(meta.modified().unwrap(), Tree::mtime(ino));
    let stats = fs.stats();
    assert_eq!(stats.served_of(Kind::Lookup), 3, "{stats:?}");
    assert_eq!(stats.served_of(Kind::Getattr), 1, "{stats:?}");
    assert_eq!((stats.in_flight, stats.max_in_flight), (0, 1), "{stats:?}");

    // The same stat again reaches the server again: nothing is cached.
    std::fs::metadata(&path).unwrap();
    assert_eq!(fs.stats().served_of(Kind::Getattr), 2);

    // Reads: the whole file, the helper's bytes, every read at the server.
    fs.reset_stats();
    let mut bytes = Vec::new();
    std::fs::File::open(&path)
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    assert_eq!(bytes, content(ino, 0, meta.len() as usize));
    let mut again = Vec::new();
    std::fs::File::open(&path)
        .unwrap()
        .read_to_end(&mut again)
        .unwrap();
    let stats = fs.stats();
    assert_eq!(stats.served_of(Kind::Open), 2, "{stats:?}");
    assert!(
        stats.served_of(Kind::Read) >= 4,
        "two opens, each at least a read and the EOF read: {stats:?}"
    );

    // A listing: the tree's names in order, each stat-able.
    let mut names: Vec<String> = std::fs::read_dir(fs.dir_path(5))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let expected: Vec<String> = (0..20).map(|j| tree.file_name(j)).collect();
    assert_eq!(names, expected);
    let root: Vec<String> = std::fs::read_dir(fs.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(root, ["d0", "d1", "d2"]);
    assert!(fs.stats().served_of(Kind::Readdir) >= 2);

    // Not the tree's names.
    for bad in ["d0/d1/f7", "d0/d1/f20", "d3", "hung"] {
        let err = std::fs::metadata(fs.path(bad)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{bad}");
    }
}

#[test]
fn two_mounts_differ_by_exactly_the_plants() {
    if !SlowFs::announce("selftest::two_mounts_differ") {
        return;
    }
    let tree = Tree::flat(3, 4);
    let a = SlowFs::builder().tree(tree.clone()).mount().unwrap();
    let b = SlowFs::builder()
        .tree(tree.clone())
        .plant(Plant::Size { dir: 1, file: 0 })
        .plant(Plant::Mtime { dir: 2, file: 1 })
        .plant(Plant::Missing { dir: 3, file: 2 })
        .plant(Plant::Extra {
            dir: 3,
            name: "extra".into(),
        })
        .mount()
        .unwrap();
    let listing = |fs: &SlowFs| {
        let mut all = Vec::new();
        for dir in tree.file_dirs() {
            for entry in std::fs::read_dir(fs.dir_path(dir)).unwrap() {
                let entry = entry.unwrap();
                let meta = entry.metadata().unwrap();
                let rel = entry.path().strip_prefix(fs.root()).unwrap().to_owned();
                all.push((rel, meta.len(), meta.modified().unwrap()));
            }
        }
        all.sort();
        all
    };
    let (la, lb) = (listing(&a), listing(&b));
    let only_a: Vec<_> = la.iter().filter(|e| !lb.contains(e)).collect();
    let only_b: Vec<_> = lb.iter().filter(|e| !la.contains(e)).collect();
    let size_ino = tree.file_ino(1, 0);
    let mtime_ino = tree.file_ino(2, 1);
    let missing_ino = tree.file_ino(3, 2);
    assert_eq!(
        only_a,
        [
            &(
                tree.file_path(1, 0),
                tree.file_size(size_ino),
                Tree::mtime(size_ino)
            ),
            &(
                tree.file_path(2, 1),
                tree.file_size(mtime_ino),
                Tree::mtime(mtime_ino)
            ),
            &(
                tree.file_path(3, 2),
                tree.file_size(missing_ino),
                Tree::mtime(missing_ino)
            ),
        ]
    );
    assert_eq!(only_b.len(), 3, "{only_b:?}");
    assert_eq!(
        only_b[0],
        &(
            tree.file_path(1, 0),
            tree.file_size(size_ino) + PLANTED_SIZE_DELTA,
            Tree::mtime(size_ino)
        )
    );
    assert_eq!(
        only_b[1],
        &(
            tree.file_path(2, 1),
            tree.file_size(mtime_ino),
            Tree::mtime(mtime_ino) + PLANTED_MTIME_SHIFT
        )
    );
    assert_eq!(only_b[2].0, tree.dir_path(3).join("extra"));
}

#[test]
fn requests_beyond_the_concurrency_wait_and_all_are_counted() {
    if !SlowFs::announce("selftest::requests_beyond_the_concurrency") {
        return;
    }
    const CALLERS: usize = 16;
    const CONCURRENCY: usize = 4;
    let fs = SlowFs::builder()
        .tree(Tree::flat(1, CALLERS as u64))
        .latency(Latency::uniform(Duration::from_millis(20)))
        .concurrency(CONCURRENCY)
        .mount()
        .unwrap();
    fs.reset_stats();
    thread::scope(|s| {
        for j in 0..CALLERS as u64 {
            let path = fs.file_path(1, j);
            s.spawn(move || std::fs::metadata(path).unwrap());
        }
    });
    let stats = fs.stats();
    // Each stat: the lookup of d0 (revalidated), of its file, and a getattr.
    assert_eq!(stats.served_of(Kind::Getattr), CALLERS as u64, "{stats:?}");
    assert_eq!(stats.in_flight, 0);
    assert!(
        stats.max_in_flight > CONCURRENCY as u64,
        "16 callers at 4 slots: the rest wait in line: {stats:?}"
    );
}

#[test]
fn a_hung_caller_is_released_by_the_drop() {
    if !SlowFs::announce("selftest::a_hung_caller_is_released") {
        return;
    }
    let fs = SlowFs::builder()
        .hung_dir(true)
        .latency(Latency::uniform(Duration::ZERO))
        .mount()
        .unwrap();
    let hung = fs.hung_path().join("anything");
    let (tx, rx) = mpsc::channel();
    let caller = thread::spawn(move || tx.send(std::fs::metadata(hung)).unwrap());
    // Wait until the request is parked at the server (a condition, not a sleep).
    let deadline = Instant::now() + NEVER;
    while fs.stats().parked == 0 {
        assert!(Instant::now() < deadline);
        thread::yield_now();
    }
    // Other paths keep answering.
    std::fs::metadata(fs.file_path(1, 0)).unwrap();
    assert!(
        rx.try_recv().is_err(),
        "the hung stat returned before the drop"
    );
    let root = fs.root().to_owned();
    drop(fs);
    let err = rx.recv().unwrap().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOTCONN), "{err}");
    caller.join().unwrap();
    // Unmounted and removed.
    assert!(!root.exists(), "{} still exists", root.display());
}

#[test]
fn lookups_in_one_directory_reach_the_server_at_once() {
    if !SlowFs::announce("selftest::lookups_in_one_directory_reach_the_server_at_once") {
        return;
    }
    // Without FUSE_PARALLEL_DIROPS the kernel lets one lookup per directory through.
    const CALLERS: u64 = 16;
    let fs = SlowFs::builder()
        .tree(Tree::flat(1, CALLERS))
        .mount()
        .unwrap();
    // Resolve d0 first, so that the held lookups are all in d0.
    std::fs::metadata(fs.dir_path(1)).unwrap();
    fs.hold(Kind::Lookup);
    thread::scope(|s| {
        for j in 0..CALLERS {
            let path = fs.file_path(1, j);
            s.spawn(move || std::fs::metadata(path).unwrap());
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut stats = fs.stats();
        while stats.held < CALLERS && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
            stats = fs.stats();
        }
        fs.release(Kind::Lookup);
        assert!(
            stats.held >= CALLERS,
            "{CALLERS} stats in one directory: {stats:?}"
        );
    });
}

/// Set in the child process of [`a_process_killed_while_its_call_hangs_still_exits`].
const CHILD_ENV: &str = "AOPEN_SLOWFS_SELFTEST_CHILD";
/// What the child prints once its call hangs at the server.
const CHILD_READY: &str = "slowfs-child: hung";

#[test]
fn a_process_killed_while_its_call_hangs_still_exits() {
    if !SlowFs::announce("selftest::a_process_killed_while_its_call_hangs_still_exits") {
        return;
    }
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    // The child mounts, hangs a stat on its own mount, and is killed without its drop.
    // A FUSE request in the server's hands outlives SIGKILL; the connection must end
    // for the stuck thread, and so the process, to go (the kernel's closing of the
    // child's /dev/fuse, or the mount's watchdog).
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "hang_a_call_then_wait_to_be_killed",
            "--nocapture",
        ])
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let ready = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line == CHILD_READY);
    assert!(ready, "the child never hung its call");
    child.kill().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the killed child did not exit: its hung call keeps it"
        );
        thread::sleep(Duration::from_millis(10));
    };
    assert!(!status.success());
    // Its mount is dead, not hung: a new mount detaches it.
    drop(SlowFs::builder().mount().unwrap());
    let left = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let child_mount = format!("{}-{}-", aopen_slowfs::FS_NAME, child.id());
    assert!(!left.contains(&child_mount), "{left}");
}

#[test]
#[ignore = "run in a child process by a_process_killed_while_its_call_hangs_still_exits"]
fn hang_a_call_then_wait_to_be_killed() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let fs = SlowFs::builder().hung_dir(true).mount().unwrap();
    let hung = fs.hung_path().join("x");
    thread::spawn(move || std::fs::metadata(hung));
    while fs.stats().parked == 0 {
        thread::yield_now();
    }
    println!("{CHILD_READY}");
    loop {
        thread::park();
    }
}
