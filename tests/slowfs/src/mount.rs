//! Mounting and unmounting: the [`SlowFs`] handle and its [`Builder`].
//!
//! A mount's life: `Builder::mount` checks that FUSE can be had, detaches dead mounts
//! that earlier processes left behind, creates a fresh mount point, starts the timer
//! thread and fuser's session (which mounts with `mount(2)` and reads `/dev/fuse` on
//! [`READER_THREADS`] threads). Dropping the handle goes the other way, in an order that
//! cannot hang: answer everything (so no caller is stuck in the kernel), detach the
//! mount, wait for the kernel to end the connection (abort it if it does not), join the
//! threads, remove the mount point.
//!
//! A FUSE request that reached the server cannot be interrupted, not even by
//! `SIGKILL`: the caller waits until it is answered or the connection is aborted. The
//! server lives in the same process, so a process that dies without the drop (killed,
//! aborted, a leaked handle) while one of its threads waits on its own mount could
//! never finish dying: the stuck thread keeps the process's `/dev/fuse` descriptors
//! open, and only their closing would abort the connection. Each mount therefore has a
//! *watchdog*, a small `sh` process that checks every [`WATCHDOG_PERIOD_SECS`] whether
//! this process is dying (its main thread a zombie) and then aborts the connection
//! through [`FUSECTL`]. The drop stops it.

use std::fs;
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use fuser::{BackgroundSession, Config, MountOption, Session};
use nix::mount::{umount2, MntFlags, MsFlags};

use crate::sched::{Hold, Kind, Latency, Scheduler, Stats};
use crate::server::{Ended, Server};
use crate::tree::{Plant, Served, Tree, HUNG_DIR};

/// The file system's name: the mount's source and subtype (`fuse.aopen-slowfs` in
/// `/proc/self/mountinfo`), and the prefix of its mount points' names.
pub const FS_NAME: &str = "aopen-slowfs";
/// Threads reading requests from `/dev/fuse` (each with its own cloned descriptor).
/// They only hand requests to the timer, so a few serve thousands in flight.
pub const READER_THREADS: usize = 4;
/// Requests served at once unless [`Builder::concurrency`] says otherwise: like the
/// thread count of a generous NFS server.
pub const DEFAULT_CONCURRENCY: usize = 1024;
/// How long a drop waits for the kernel to end the connection, before aborting it and
/// again after.
pub const UNMOUNT_GRACE: Duration = Duration::from_secs(5);
/// Set to `1`, a test that cannot mount panics instead of skipping ([`SlowFs::announce`]).
pub const REQUIRE_ENV: &str = "AOPEN_SLOWFS_REQUIRE";
/// Where the kernel's FUSE control file system lives (each connection's `abort`).
const FUSECTL: &str = "/sys/fs/fuse/connections";
/// The device every FUSE mount is served through.
const DEV_FUSE: &str = "/dev/fuse";
/// How often the watchdog looks at this process (seconds, as `sleep(1)` takes them).
pub const WATCHDOG_PERIOD_SECS: &str = "0.2";
/// The watchdog (see the module doc): `$1` our pid, `$2` the connection, `$3` the
/// period. While the process exists and its main thread is not a zombie, sleep; if it
/// still exists (a thread is stuck), abort the connection. If it is gone, its
/// descriptors are closed and the kernel has aborted the connection already (the
/// number may even be another mount's by now), so do nothing.
const WATCHDOG: &str = r#"
while read -r _ _ state _ < /proc/$1/stat && [ "$state" != Z ]; do sleep "$3"; done
[ -e /proc/$1 ] || exit 0
[ -e /sys/fs/fuse/connections/$2 ] || mount -t fusectl fusectl /sys/fs/fuse/connections
echo 1 > /sys/fs/fuse/connections/$2/abort
"#;

/// Mount points made by this process so far, for unique names.
static MOUNTS: AtomicU64 = AtomicU64::new(0);

/// The knobs of a mount; [`SlowFs::builder`] starts with the defaults.
#[derive(Clone, Debug)]
pub struct Builder {
    tree: Tree,
    latency: Latency,
    concurrency: usize,
    hung_dir: bool,
    plants: Vec<Plant>,
}

impl Builder {
    /// The tree to serve (default: [`Tree::default`]).
    pub fn tree(mut self, tree: Tree) -> Self {
        self.tree = tree;
        self
    }

    /// The latency of each kind of request (default: none).
    pub fn latency(mut self, latency: Latency) -> Self {
        self.latency = latency;
        self
    }

    /// How many requests are served at once; more wait for a slot (default:
    /// [`DEFAULT_CONCURRENCY`]). At least 1.
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Whether the root holds [`HUNG_DIR`], whose requests are never answered until the
    /// mount is dropped (default: off).
    pub fn hung_dir(mut self, on: bool) -> Self {
        self.hung_dir = on;
        self
    }

    /// Plant a difference (see [`Plant`]); may be called many times.
    pub fn plant(mut self, plant: Plant) -> Self {
        self.plants.push(plant);
        self
    }

    /// Mount it in a new directory under the temp dir.
    ///
    /// Errors: `Unsupported` where FUSE cannot be had ([`SlowFs::available`] says
    /// why), `InvalidInput` for a bad tree, plant or concurrency, or the mount's error.
    pub fn mount(self) -> io::Result<SlowFs> {
        SlowFs::available().map_err(|why| io::Error::new(io::ErrorKind::Unsupported, why))?;
        if self.concurrency == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "slowfs: a concurrency of 0 serves nothing",
            ));
        }
        let served = Served::new(self.tree, self.hung_dir, &self.plants)
            .map_err(|why| io::Error::new(io::ErrorKind::InvalidInput, format!("slowfs: {why}")))?;
        detach_dead_mounts();

        let root = std::env::temp_dir().join(format!(
            "{FS_NAME}-{}-{}",
            std::process::id(),
            MOUNTS.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&root).map_err(|e| with_path(e, "create the mount point", &root))?;

        let sched = Arc::new(Scheduler::new(self.latency, self.concurrency));
        let timer = {
            let sched = Arc::clone(&sched);
            thread::Builder::new()
                .name("slowfs-timer".into())
                .spawn(move || sched.run_timer())
        };
        let timer = match timer {
            Ok(timer) => timer,
            Err(e) => {
                let _ = fs::remove_dir(&root);
                return Err(e);
            }
        };
        let served = Arc::new(served);
        let ended = Arc::new(Ended::default());
        let server = Server {
            served: Arc::clone(&served),
            sched: Arc::clone(&sched),
            ended: Arc::clone(&ended),
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
        };
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName(FS_NAME.into()),
            MountOption::Subtype(FS_NAME.into()),
            MountOption::RO,
            MountOption::NoAtime,
            MountOption::NoDev,
            MountOption::NoSuid,
            MountOption::NoExec,
        ];
        config.n_threads = Some(READER_THREADS);
        config.clone_fd = true;

        let session = Session::new(server, &root, &config).and_then(Session::spawn);
        let session = match session {
            Ok(session) => session,
            Err(e) => {
                sched.close();
                let _ = timer.join();
                let _ = fs::remove_dir(&root);
                return Err(with_path(e, "mount FUSE on", &root));
            }
        };
        let connection = connection_of(&root);
        let watchdog = connection.and_then(|c| start_watchdog(c).ok());
        if watchdog.is_none() {
            eprintln!(
                "slowfs: no watchdog for {} (connection {connection:?}): a process killed \
                 while a call waits on it may not exit",
                root.display()
            );
        }
        Ok(SlowFs {
            watchdog,
            root,
            served,
            sched,
            ended,
            session: Some(session),
            timer: Some(timer),
            connection,
        })
    }
}

/// A mounted slow file system; dropping it unmounts (see the crate doc).
pub struct SlowFs {
    root: PathBuf,
    served: Arc<Served>,
    sched: Arc<Scheduler>,
    ended: Arc<Ended>,
    session: Option<BackgroundSession>,
    timer: Option<JoinHandle<()>>,
    /// The kernel's number for the connection (its directory under [`FUSECTL`]).
    connection: Option<u64>,
    /// Aborts the connection if this process dies without the drop.
    watchdog: Option<Child>,
}

impl std::fmt::Debug for SlowFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlowFs")
            .field("root", &self.root)
            .field("tree", &self.served.tree)
            .finish()
    }
}

impl SlowFs {
    /// A [`Builder`] with the defaults: [`Tree::default`], no latency,
    /// [`DEFAULT_CONCURRENCY`], no hung directory, no plants.
    pub fn builder() -> Builder {
        Builder {
            tree: Tree::default(),
            latency: Latency::default(),
            concurrency: DEFAULT_CONCURRENCY,
            hung_dir: false,
            plants: Vec::new(),
        }
    }

    /// Whether this process can mount: Linux, root, and `/dev/fuse` opens. `Err` says
    /// what is missing.
    pub fn available() -> Result<(), String> {
        if !cfg!(target_os = "linux") {
            return Err("FUSE mounts without fusermount are made on Linux only".into());
        }
        if !nix::unistd::geteuid().is_root() {
            return Err("not root (the mount is made with mount(2), without fusermount)".into());
        }
        fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(DEV_FUSE)
            .map(drop)
            .map_err(|e| format!("{DEV_FUSE}: {e} (try `modprobe fuse`)"))
    }

    /// For a test called `test`: print one line saying whether it runs on a FUSE mount
    /// or is skipped and why, and return whether it can run. Panics instead of
    /// skipping when [`REQUIRE_ENV`] is `1`.
    pub fn announce(test: &str) -> bool {
        match SlowFs::available() {
            Ok(()) => {
                eprintln!("slowfs: {test}: runs on a FUSE mount");
                true
            }
            Err(why) if std::env::var_os(REQUIRE_ENV).is_some_and(|v| v == "1") => {
                panic!("slowfs: {test}: cannot mount FUSE ({why}) and {REQUIRE_ENV}=1")
            }
            Err(why) => {
                eprintln!("slowfs: {test}: SKIPPED: {why}");
                false
            }
        }
    }

    /// The mount's root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `relative` under the mount's root.
    pub fn path(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.root.join(relative)
    }

    /// Directory `dir` of the tree (0 is the root), on the mount.
    pub fn dir_path(&self, dir: u64) -> PathBuf {
        self.root.join(self.served.tree.dir_path(dir))
    }

    /// File `file` of directory `dir`, on the mount.
    pub fn file_path(&self, dir: u64, file: u64) -> PathBuf {
        self.root.join(self.served.tree.file_path(dir, file))
    }

    /// The hung directory on the mount (it exists only with [`Builder::hung_dir`]).
    pub fn hung_path(&self) -> PathBuf {
        self.root.join(HUNG_DIR)
    }

    /// The tree it serves.
    pub fn tree(&self) -> &Tree {
        &self.served.tree
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.sched.stats()
    }

    /// Zero the served counts and start `max_in_flight` again from the requests in
    /// flight now.
    pub fn reset_stats(&self) {
        self.sched.reset_stats()
    }

    /// Change the latency while mounted (requests holding a slot keep theirs).
    pub fn set_latency(&self, latency: Latency) {
        self.sched.set_latency(latency)
    }

    /// Hold requests of `kind` at a gate (taking no slot) until [`SlowFs::release`]:
    /// [`Stats::held`] then counts the callers waiting in such a request, so a test
    /// can wait for "N at the server at once" as a condition. The drop releases too.
    pub fn hold(&self, kind: Kind) {
        self.sched.hold(kind, Hold::All)
    }

    /// Like [`SlowFs::hold`], only for requests about the entries of directory `dir`
    /// (lookups in it, requests on the files and directories it holds): other work on
    /// the mount, a listing of another directory say, goes on. Replaces an earlier
    /// hold of `kind`.
    pub fn hold_in(&self, kind: Kind, dir: u64) {
        self.sched.hold(kind, Hold::In(dir))
    }

    /// Like [`SlowFs::hold`], only for requests about the root itself (its
    /// `GETATTR`, say): lookups in it and requests on its entries go on. Replaces
    /// an earlier hold of `kind`.
    pub fn hold_root(&self, kind: Kind) {
        self.sched.hold(kind, Hold::Root)
    }

    /// Let held requests of `kind` go on (each then takes a slot and its latency).
    pub fn release(&self, kind: Kind) {
        self.sched.release(kind)
    }

    /// Change how many requests are served at once while mounted (at least 1).
    pub fn set_concurrency(&self, concurrency: usize) {
        self.sched.set_concurrency(concurrency.max(1))
    }
}

impl Drop for SlowFs {
    fn drop(&mut self) {
        // 1. Nothing waits any more: callers stuck in the kernel (parked requests get
        //    ENOTCONN) return, and drop their hold on the mount.
        self.sched.close();
        // 2. Out of the namespace now; the kernel ends the connection when the last
        //    reference goes.
        if let Err(e) = umount2(&self.root, MntFlags::MNT_DETACH) {
            eprintln!("slowfs: detaching {}: {e}", self.root.display());
        }
        // 3. Wait for that; if something still holds the mount (an open file), abort.
        let mut ended = self.ended.wait(UNMOUNT_GRACE);
        if !ended {
            match self.connection.map(abort_connection) {
                Some(Ok(())) => {}
                Some(Err(e)) => eprintln!(
                    "slowfs: aborting the connection of {}: {e}",
                    self.root.display()
                ),
                None => eprintln!(
                    "slowfs: {} still in use and its connection unknown",
                    self.root.display()
                ),
            }
            ended = self.ended.wait(UNMOUNT_GRACE);
        }
        if let Some(session) = self.session.take() {
            if ended {
                let _ = session.join();
            } else {
                eprintln!(
                    "slowfs: {}: the session did not end; leaving its threads",
                    self.root.display()
                );
            }
        }
        if let Some(timer) = self.timer.take() {
            let _ = timer.join();
        }
        if ended {
            let _ = fs::remove_dir(&self.root);
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

fn start_watchdog(connection: u64) -> io::Result<Child> {
    Command::new("/bin/sh")
        .arg("-c")
        .arg(WATCHDOG)
        .arg("slowfs-watchdog")
        .arg(std::process::id().to_string())
        .arg(connection.to_string())
        .arg(WATCHDOG_PERIOD_SECS)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

fn with_path(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("slowfs: cannot {what} {}: {e}", path.display()),
    )
}

/// One line of `/proc/self/mountinfo` that is one of ours.
struct OurMount {
    mount_point: PathBuf,
    /// The kernel's device number, `MKDEV(major, minor)`: the connection's name.
    connection: u64,
}

/// Our mounts in this mount namespace: type `fuse` (or `fuse.aopen-slowfs` where the
/// subtype is kept), source [`FS_NAME`].
fn our_mounts() -> Vec<OurMount> {
    let Ok(file) = fs::File::open("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let subtyped = format!("fuse.{FS_NAME}");
    io::BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| {
            // "id parent major:minor root mount-point options [optional...] - type source super-options"
            let fields: Vec<&str> = line.split(' ').collect();
            let dash = fields.iter().position(|f| *f == "-")?;
            let fs_type = *fields.get(dash + 1)?;
            if !(fs_type == "fuse" || fs_type == subtyped) || fields.get(dash + 2) != Some(&FS_NAME)
            {
                return None;
            }
            let (major, minor) = fields.get(2)?.split_once(':')?;
            let (major, minor): (u64, u64) = (major.parse().ok()?, minor.parse().ok()?);
            // The kernel's MKDEV: 20 bits of minor.
            let connection = (major << 20) | minor;
            Some(OurMount {
                mount_point: PathBuf::from(unescape(fields.get(4)?)),
                connection,
            })
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u8::from_str_radix(d, 8).ok());
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn connection_of(root: &Path) -> Option<u64> {
    our_mounts()
        .into_iter()
        .find(|m| m.mount_point == root)
        .map(|m| m.connection)
}

/// Detach our mounts whose server is gone: a process that died without its drop (its
/// calls fail with `ENOTCONN`). The owner is the pid in the mount point's name; a live
/// owner's mount is left alone and not touched (a `stat` would reach its server and
/// count in its stats).
fn detach_dead_mounts() {
    let prefix = format!("{FS_NAME}-");
    for mount in our_mounts() {
        let owner = mount
            .mount_point
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_prefix(&prefix))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        let Some(owner) = owner else { continue };
        if Path::new("/proc").join(owner.to_string()).exists() {
            continue;
        }
        if umount2(&mount.mount_point, MntFlags::MNT_DETACH).is_ok() {
            let _ = fs::remove_dir(&mount.mount_point);
        }
    }
}

/// Abort connection `connection` through the FUSE control file system, mounting it
/// first if needed: every request on it then fails, and the session's reads end.
fn abort_connection(connection: u64) -> io::Result<()> {
    let abort = Path::new(FUSECTL)
        .join(connection.to_string())
        .join("abort");
    if !abort.exists() {
        nix::mount::mount(
            Some("fusectl"),
            FUSECTL,
            Some("fusectl"),
            MsFlags::empty(),
            None::<&str>,
        )?;
    }
    fs::write(&abort, "1").map_err(|e| with_path(e, "write", &abort))
}

#[cfg(test)]
mod tests {
    use super::unescape;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape(r"/tmp/a\040b\134c"), r"/tmp/a b\c");
        assert_eq!(unescape(r"/plain\0"), r"/plain\0");
    }
}
