//! The FUSE request handlers: each one works out its answer from the tree at once and
//! hands it to the scheduler, which sends it after the kind's latency.
//!
//! Every cache the kernel keeps is off: entries and attributes are answered with a
//! timeout of 0 (each path component is looked up and each `stat` asks again), files are
//! opened with `FOPEN_DIRECT_IO` (no page cache: each `read` reaches the server) and
//! directories without `FOPEN_CACHE_DIR`. Requests on the hung directory are parked.

use std::ffi::OsStr;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, UNIX_EPOCH};

use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, InitFlags, KernelConfig, LockOwner, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, Request,
};

use crate::sched::{Kind, Scheduler};
use crate::tree::{fill_content, Attr, Node, Served, BLOCK_SIZE};

/// Entry and attribute timeout: 0, so that the kernel caches neither.
const NO_CACHE: Duration = Duration::ZERO;
/// Background requests (releases, for one) the kernel keeps in flight at most; the
/// kernel's default of 12 would cap them below the server's concurrency.
const MAX_BACKGROUND: u16 = 4096;
/// The error a parked request gets when the mount is dropped: what a caller of a dead
/// FUSE connection sees.
const PARKED_ERROR: Errno = Errno::ENOTCONN;
/// The longest name `statfs` reports.
const NAME_MAX: u32 = 255;
/// Bytes per 512-byte block of `st_blocks`.
const SECTOR: u64 = 512;

/// Set when the session's threads have all stopped (fuser calls `destroy` then).
#[derive(Default)]
pub(crate) struct Ended {
    ended: Mutex<bool>,
    cond: Condvar,
}

impl Ended {
    fn set(&self) {
        *self.ended.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.cond.notify_all();
    }

    /// Wait up to `timeout`; true if the session ended.
    pub(crate) fn wait(&self, timeout: Duration) -> bool {
        let guard = self.ended.lock().unwrap_or_else(PoisonError::into_inner);
        let (guard, _) = self
            .cond
            .wait_timeout_while(guard, timeout, |ended| !*ended)
            .unwrap_or_else(PoisonError::into_inner);
        *guard
    }
}

pub(crate) struct Server {
    pub(crate) served: Arc<Served>,
    pub(crate) sched: Arc<Scheduler>,
    pub(crate) ended: Arc<Ended>,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

impl Server {
    fn file_attr(&self, attr: &Attr) -> FileAttr {
        FileAttr {
            ino: INodeNo(attr.ino),
            size: attr.size,
            blocks: attr.size.div_ceil(SECTOR),
            atime: attr.mtime,
            mtime: attr.mtime,
            ctime: attr.mtime,
            crtime: UNIX_EPOCH,
            kind: if attr.is_dir {
                FileType::Directory
            } else {
                FileType::RegularFile
            },
            perm: if attr.is_dir { 0o555 } else { 0o444 },
            nlink: if attr.is_dir { 2 } else { 1 },
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: BLOCK_SIZE,
            flags: 0,
        }
    }
}

/// Hand a request's answer to the scheduler, or park it if `ino` is hung (its reply then
/// gets [`PARKED_ERROR`] when the mount is dropped). Only one branch runs, so both can
/// take the reply.
macro_rules! answer {
    ($server:expr, $kind:expr, $ino:expr, $reply:ident => $body:expr) => {
        answer!($server, $kind, $ino, $server.served.dir_of($ino), $reply => $body)
    };
    ($server:expr, $kind:expr, $ino:expr, $scope:expr, $reply:ident => $body:expr) => {{
        if $server.served.is_hung($ino) {
            $server
                .sched
                .park($kind, Box::new(move || $reply.error(PARKED_ERROR)));
        } else {
            $server.sched.submit($kind, $scope, Box::new(move || $body));
        }
    }};
}

impl Filesystem for Server {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // Without it the kernel serialises lookups and readdirs in one directory, and a
        // thousand stats in one directory would reach the server one at a time.
        let _ = config.add_capabilities(InitFlags::FUSE_PARALLEL_DIROPS);
        let _ = config.set_max_background(MAX_BACKGROUND);
        let _ = config.set_congestion_threshold(MAX_BACKGROUND);
        Ok(())
    }

    fn destroy(&mut self) {
        self.ended.set();
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let attr = self
            .served
            .lookup(parent.0, name)
            .and_then(|ino| self.served.attr(ino));
        let attr = attr.map(|a| self.file_attr(&a));
        // A lookup is about an entry of its parent.
        let scope = match self.served.node(parent.0) {
            Some(Node::Dir(dir)) => Some(dir),
            _ => None,
        };
        answer!(self, Kind::Lookup, parent.0, scope, reply => match attr {
            Some(attr) => reply.entry_with_ttls(&NO_CACHE, &NO_CACHE, &attr, Generation(0)),
            None => reply.error(Errno::ENOENT),
        });
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let attr = self.served.attr(ino.0).map(|a| self.file_attr(&a));
        answer!(self, Kind::Getattr, ino.0, reply => match attr {
            Some(attr) => reply.attr(&NO_CACHE, &attr),
            None => reply.error(Errno::ENOENT),
        });
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let ok = self.served.attr(ino.0).map(|a| !a.is_dir);
        answer!(self, Kind::Open, ino.0, reply => match ok {
            Some(true) => reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO),
            Some(false) => reply.error(Errno::EISDIR),
            None => reply.error(Errno::ENOENT),
        });
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let file_size = self.served.attr(ino.0).map(|a| a.size);
        let ino = ino.0;
        answer!(self, Kind::Read, ino, reply => match file_size {
            Some(file_size) => {
                let end = file_size.min(offset.saturating_add(u64::from(size)));
                let mut buf = vec![0; end.saturating_sub(offset) as usize];
                fill_content(ino, offset, &mut buf);
                reply.data(&buf);
            }
            None => reply.error(Errno::ENOENT),
        });
    }

    fn flush(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // ENOSYS: nothing to flush, and the kernel sends no more flushes.
        answer!(self, Kind::Flush, ino.0, reply => reply.error(Errno::ENOSYS));
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        answer!(self, Kind::Release, ino.0, reply => reply.ok());
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let ok = self.served.attr(ino.0).map(|a| a.is_dir);
        answer!(self, Kind::Opendir, ino.0, reply => match ok {
            Some(true) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Some(false) => reply.error(Errno::ENOTDIR),
            None => reply.error(Errno::ENOENT),
        });
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        reply: ReplyDirectory,
    ) {
        let served = Arc::clone(&self.served);
        let ino = ino.0;
        // Filled when answered: the buffer is the reply's own, sized by the kernel.
        answer!(self, Kind::Readdir, ino, reply => {
            let mut reply = reply;
            match served.list(ino, offset) {
                Some(entries) => {
                    for (next, entry) in entries {
                        let kind = if entry.is_dir { FileType::Directory } else { FileType::RegularFile };
                        if reply.add(INodeNo(entry.ino), next, kind, &entry.name) {
                            break;
                        }
                    }
                    reply.ok();
                }
                None => reply.error(Errno::ENOTDIR),
            }
        });
    }

    fn releasedir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        answer!(self, Kind::Releasedir, ino.0, reply => reply.ok());
    }

    fn statfs(&self, _req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        let files = self.served.tree.file_count() + self.served.tree.dir_count();
        answer!(self, Kind::Statfs, ino.0, reply => reply.statfs(0, 0, 0, files, 0, BLOCK_SIZE, NAME_MAX, BLOCK_SIZE));
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        let exists = self.served.attr(ino.0).is_some();
        answer!(self, Kind::Access, ino.0, reply => if exists { reply.ok() } else { reply.error(Errno::ENOENT) });
    }
}
