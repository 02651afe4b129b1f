//! [`File`] and [`OpenOptions`]: std's shapes, with an asynchronous close.
//!
//! A `File` is a [`Lane`] around a `std::fs::File`: every method queues one job in
//! the lane (so they run in the order they were called, one at a time) and awaits it,
//! through the one operation helper of `file_op.rs`, told the operation's effect
//! (plain, changes the content, moves the position, writes at it), which does the open
//! check, the settling and the bookkeeping of kept bytes. The state of a trait
//! operation in flight and the close live in `in_flight.rs`, the trait impls in
//! `file_traits.rs`, the OS descriptor traits in `file_os.rs`.
//! The `&self` methods ([`read_at`](File::read_at), [`write_at`](File::write_at),
//! [`metadata`](File::metadata), [`sync_all`](File::sync_all), ...) are plain
//! functions that queue their job *at the call* and return a future of its result,
//! so `let w = f.write_at(..); let s = f.sync_data(); s.await; w.await;` runs the
//! write first: the order of the calls, not of the first polls. (The `&mut self`
//! methods hold the file borrowed until they finish, so nothing can be called
//! between their call and their first poll.) [`try_clone`](File::try_clone) is the
//! one exception: it joins the lane once it has the permit of its new descriptor,
//! which it may have to wait for.
//! Buffers never cross to the pool: a read fills an owned buffer on the pool thread
//! and copies it into the caller's slice after the job finished; a write copies the
//! caller's bytes into an owned buffer first. A dropped future therefore never leaves
//! a pool thread writing into freed memory.
//!
//! Cancellation: dropping an operation's future before its job started skips the job
//! (a `write_at` never awaited may so never happen; one whose job had started did,
//! and nobody is told); after it started, it runs to the end on the pool and its
//! result is dropped. Bytes a dropped
//! `read` took from the file are lost (the file position moved), as with any reader
//! that is cancelled; a dropped `write` may or may not have happened, but a write that
//! returned `Ok(n)` did hand `n` bytes to `write(2)`. (The poll-based reads and writes
//! of the `futures-io` and `tokio` traits keep their job in the `File` instead, so
//! they lose nothing: see `in_flight.rs`; these methods serve the bytes such a read
//! left first, and correct seeks and writes for them.)

use std::fmt;
use std::fs::Metadata;
use std::future::{poll_fn, Future};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::error::{retry_interrupted, with_path};
use super::file_op::Effect;
use super::file_os::{raw_descriptor, RawDescriptor};
use super::in_flight::PollState;
use super::lane::{open_in_lane, Lane, Resource};
use super::FsFuture;
use crate::pool::Pool;
use crate::sync::DynArc as Arc;
use crate::sys;

/// The most bytes one `read` or `write` moves in one pool trip; longer buffers are
/// done in pieces of this size (`read_exact`, `write_all`) or shortened (`read`,
/// `write`, as std allows).
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("aopen-doc-max-transfer-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// use aopen::fs::MAX_TRANSFER;
///
/// aopen::block_on(async {
///     let mut file = aopen::File::create(dir.join("big")).await?;
///     let big = vec![7u8; MAX_TRANSFER + 1];
///     assert_eq!(file.write(&big).await?, MAX_TRANSFER); // one pool trip, shortened
///     file.write_all(&big).await?; // in pieces of MAX_TRANSFER, every byte
///     assert_eq!(file.metadata().await?.len(), 2 * MAX_TRANSFER as u64 + 1);
///     file.close().await
/// })?;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub const MAX_TRANSFER: usize = 2 * 1024 * 1024;

impl Resource for std::fs::File {
    /// `close(2)` (`CloseHandle` on Windows); `EINTR` counts as closed and is never
    /// retried (`sys::close_file`).
    fn close(self) -> io::Result<()> {
        super::close::close_file(self)
    }
}

/// An open file on a [`Pool`]: `std::fs::File`'s methods, as futures.
///
/// Dropping a `File` queues its close on the pool and returns at once; the close runs
/// after every operation issued before it, and any error it reports is lost. To see
/// that error (NFS reports deferred write errors there), call [`File::close`].
///
/// `File` is `Send + Sync`: a task holding one may move between a runtime's threads,
/// and its `&self` methods ([`read_at`](File::read_at), [`metadata`](File::metadata),
/// ...) may run from several tasks at once; they still run one at a time, in the
/// order they were issued, in the file's lane.
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("aopen-doc-file-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// use aopen::File;
///
/// aopen::block_on(async {
///     let path = dir.join("notes.txt");
///     let mut file = File::create(&path).await?;
///     file.write_all(b"first line\n").await?; // write(2) took every byte
///     file.close().await?; // and close(2) said nothing went wrong
///
///     let mut file = File::open(&path).await?;
///     let mut text = String::new();
///     file.read_to_string(&mut text).await?;
///     assert_eq!(text, "first line\n");
///     file.close().await
/// })?;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct File {
    pub(super) lane: Lane<std::fs::File>,
    pub(super) path: Arc<Path>,
    /// The read, write or seek in flight, bytes read and not yet taken, and whether
    /// `poll_close` closed the file (`in_flight.rs`).
    pub(super) poll: PollState,
    /// The descriptor's number, read when the file was made, for the OS traits
    /// (`file_os.rs`).
    pub(super) raw: RawDescriptor,
}

/// Reads exactly `len` bytes of `file` into `owned` (empty on entry), continuing
/// after short reads and `EINTR`, as `read_exact` does; `UnexpectedEof` if the file
/// ends first. Reads into the vector's spare capacity, so the buffer is not zeroed
/// first (`vec![0; len]` cost a 4 KiB `memset` per read).
fn read_exact_into(file: &mut std::fs::File, owned: &mut Vec<u8>, len: usize) -> io::Result<()> {
    owned.reserve_exact(len);
    let limit = u64::try_from(len).unwrap_or(u64::MAX);
    Read::by_ref(file).take(limit).read_to_end(owned)?;
    if owned.len() < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "failed to fill whole buffer",
        ));
    }
    Ok(())
}

impl File {
    /// The `File` of a lane just made around a descriptor the crate now holds.
    pub(super) fn from_lane(lane: Lane<std::fs::File>, path: Arc<Path>) -> File {
        let raw = lane.inspect_new(raw_descriptor);
        File {
            lane,
            path,
            poll: PollState::new(MAX_TRANSFER),
            raw,
        }
    }

    /// Opens a file for reading, like `std::fs::File::open`.
    ///
    /// # Examples
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-file-open-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("config.toml"), "answer = 42\n")?;
    /// aopen::block_on(async {
    ///     let mut file = aopen::File::open(dir.join("config.toml")).await?;
    ///     let mut text = String::new();
    ///     file.read_to_string(&mut text).await?;
    ///     assert_eq!(text, "answer = 42\n");
    ///     file.close().await?;
    ///
    ///     // A missing file is `NotFound`, and the message names the path.
    ///     let err = aopen::File::open(dir.join("missing.toml")).await.unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    ///     assert!(err.to_string().contains("missing.toml"));
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> FsFuture<File> {
        OpenOptions::new().read(true).open(path)
    }

    /// Creates or truncates a file for writing, like `std::fs::File::create`.
    ///
    /// # Examples
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-file-create-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("old.log"), "old content")?;
    /// aopen::block_on(async {
    ///     let path = dir.join("old.log");
    ///     let mut file = aopen::File::create(&path).await?; // truncated: was 11 bytes
    ///     file.write_all(b"new").await?;
    ///     file.close().await?;
    ///     assert_eq!(std::fs::read(&path)?, b"new");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create(path: impl AsRef<Path>) -> FsFuture<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
    }

    /// The path this file was opened with.
    ///
    /// # Examples
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-file-path-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// aopen::block_on(async {
    ///     let path = dir.join("a.txt");
    ///     let file = aopen::File::create(&path).await?;
    ///     assert_eq!(file.path(), path);
    ///     file.close().await
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pool this file's operations run on.
    ///
    /// # Examples
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-file-pool-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let pool = aopen::Pool::builder().max_threads(2).descriptor_budget(4).build()?;
    /// aopen::block_on(async {
    ///     let file = aopen::OpenOptions::new()
    ///         .write(true)
    ///         .create(true)
    ///         .pool(&pool)
    ///         .open(dir.join("a.txt"))
    ///         .await?;
    ///     // The open file holds one permit of its pool's budget until it is closed.
    ///     assert_eq!(file.pool().budget().held(), 1);
    ///     file.close().await?;
    ///     assert_eq!(pool.budget().held(), 0);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pool(&self) -> &Pool {
        self.lane.pool()
    }

    /// Reads up to `buf.len()` bytes (at most [`MAX_TRANSFER`]); `Ok(0)` at end of
    /// file. Retries on `EINTR`.
    ///
    /// # Examples
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-file-read-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("digits"), "0123456789")?;
    /// aopen::block_on(async {
    ///     let mut file = aopen::File::open(dir.join("digits")).await?;
    ///     let mut buf = [0u8; 4];
    ///     let mut seen = Vec::new();
    ///     loop {
    ///         match file.read(&mut buf).await? {
    ///             0 => break, // end of file
    ///             n => seen.extend_from_slice(&buf[..n]),
    ///         }
    ///     }
    ///     assert_eq!(seen, b"0123456789");
    ///     file.close().await
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.prepare(Effect::MovesPosition, "read").await?;
        let kept = self.read_leftover(buf);
        if kept > 0 || buf.is_empty() {
            // An empty buffer reads nothing, at once (std would make a `read(2)` of
            // zero bytes; tokio answers without one too).
            return Ok(kept);
        }
        let len = buf.len().min(self.poll.max_transfer());
        let mut owned = self.poll.take_spare();
        owned.resize(len, 0);
        let owned = self
            .queue(Effect::Plain, "read", move |file| {
                let n = retry_interrupted(|| file.read(&mut owned))?;
                owned.truncate(n);
                Ok(owned)
            })
            .await?;
        buf[..owned.len()].copy_from_slice(&owned);
        let n = owned.len();
        self.poll.put_spare(owned);
        Ok(n)
    }

    /// Reads exactly `buf.len()` bytes; `UnexpectedEof` if the file ends first.
    /// Short reads are continued on the pool thread.
    ///
    /// # Examples
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-file-read-exact-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("data.bin"), "AOPN\x01\x02")?;
    /// aopen::block_on(async {
    ///     let mut file = aopen::File::open(dir.join("data.bin")).await?;
    ///     let mut magic = [0u8; 4];
    ///     file.read_exact(&mut magic).await?;
    ///     assert_eq!(&magic, b"AOPN");
    ///     let mut too_long = [0u8; 16];
    ///     let err = file.read_exact(&mut too_long).await.unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    ///     file.close().await
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.prepare(Effect::MovesPosition, "read").await?;
        let kept = self.read_leftover(buf);
        let max = self.poll.max_transfer();
        for chunk in buf[kept..].chunks_mut(max) {
            let len = chunk.len();
            let mut owned = self.poll.take_spare();
            owned.clear();
            let owned = self
                .queue(Effect::Plain, "read", move |file| {
                    read_exact_into(file, &mut owned, len)?;
                    Ok(owned)
                })
                .await?;
            chunk.copy_from_slice(&owned[..len]);
            self.poll.put_spare(owned);
        }
        Ok(())
    }

    /// Reads to the end of the file, appending to `buf`; returns the bytes read.
    ///
    /// # Examples
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-file-read-to-end-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("a.bin"), "abc")?;
    /// aopen::block_on(async {
    ///     let mut file = aopen::File::open(dir.join("a.bin")).await?;
    ///     let mut buf = b"prefix:".to_vec();
    ///     let n = file.read_to_end(&mut buf).await?;
    ///     assert_eq!(n, 3);
    ///     assert_eq!(buf, b"prefix:abc");
    ///     file.close().await
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        self.prepare(Effect::MovesPosition, "read").await?;
        let kept = self.poll.take_all_leftover();
        buf.extend_from_slice(&kept);
        let data = self
            .queue(Effect::Plain, "read", |file| {
                let mut owned = Vec::new();
                file.read_to_end(&mut owned)?;
                Ok(owned)
            })
            .await?;
        buf.extend_from_slice(&data);
        Ok(kept.len() + data.len())
    }

    /// Reads to the end of the file, appending to `buf`; `InvalidData` (and `buf`
    /// unchanged) if the bytes are not UTF-8.
    ///
    /// # Examples
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-file-read-to-string-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("poem.txt"), "roses are red\n")?;
    /// # std::fs::write(dir.join("binary"), [0xff, 0xfe])?;
    /// aopen::block_on(async {
    ///     let mut file = aopen::File::open(dir.join("poem.txt")).await?;
    ///     let mut text = String::new();
    ///     file.read_to_string(&mut text).await?;
    ///     assert_eq!(text, "roses are red\n");
    ///     file.close().await?;
    ///
    ///     let mut file = aopen::File::open(dir.join("binary")).await?;
    ///     let err = file.read_to_string(&mut text).await.unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    ///     assert_eq!(text, "roses are red\n"); // unchanged
    ///     file.close().await
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn read_to_string(&mut self, buf: &mut String) -> io::Result<usize> {
        self.prepare(Effect::MovesPosition, "read").await?;
        // Kept bytes go first, validated with the rest (a character may span both).
        let kept = self.poll.take_all_leftover();
        let data = self
            .queue(Effect::Plain, "read", move |file| {
                let mut owned = kept;
                file.read_to_end(&mut owned)?;
                String::from_utf8(owned).map_err(|err| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("not UTF-8: {err}"))
                })
            })
            .await?;
        buf.push_str(&data);
        Ok(data.len())
    }

    /// Writes up to `buf.len()` bytes (at most [`MAX_TRANSFER`]) with one `write(2)`.
    /// `Ok(n)` means the system took those `n` bytes. Retries on `EINTR`.
    ///
    /// # Examples
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-file-write-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// aopen::block_on(async {
    ///     let path = dir.join("out.txt");
    ///     let mut file = aopen::File::create(&path).await?;
    ///     let n = file.write(b"hello").await?;
    ///     assert_eq!(n, 5); // a regular file takes it all; a pipe may take less
    ///     // No write-behind: the bytes are in the file already, before any close.
    ///     assert_eq!(std::fs::read(&path)?, b"hello");
    ///     file.close().await
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let owned = buf[..buf.len().min(self.poll.max_transfer())].to_vec();
        self.op(Effect::WritesAtPosition, "write", move |file| {
            retry_interrupted(|| file.write(&owned))
        })
        .await
    }

    /// Writes all of `buf`, continuing short writes on the pool thread. When it
    /// returns `Ok(())`, `write(2)` took every byte.
    ///
    /// # Examples
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-file-write-all-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// aopen::block_on(async {
    ///     let path = dir.join("out.csv");
    ///     let mut file = aopen::File::create(&path).await?;
    ///     for row in ["a,b\n", "1,2\n"] {
    ///         file.write_all(row.as_bytes()).await?;
    ///     }
    ///     file.close().await?;
    ///     assert_eq!(std::fs::read_to_string(&path)?, "a,b\n1,2\n");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.prepare(Effect::WritesAtPosition, "write").await?;
        let max = self.poll.max_transfer();
        for chunk in buf.chunks(max) {
            let owned = chunk.to_vec();
            self.queue(Effect::Plain, "write", move |file| file.write_all(&owned))
                .await?;
        }
        Ok(())
    }

    /// Moves the file position, like `std::io::Seek::seek`.
    ///
    /// # Examples
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-file-seek-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("abc"), "abc")?;
    /// use std::io::SeekFrom;
    ///
    /// aopen::block_on(async {
    ///     let mut file = aopen::File::open(dir.join("abc")).await?;
    ///     assert_eq!(file.seek(SeekFrom::End(-1)).await?, 2);
    ///     let mut last = [0u8; 1];
    ///     file.read_exact(&mut last).await?;
    ///     assert_eq!(&last, b"c");
    ///     file.close().await
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.prepare(Effect::MovesPosition, "seek").await?;
        if self.poll.has_leftover() {
            // Bytes a poll-based read left are dropped by the seek (and counted by a
            // seek from `Current`): the file's poll state runs it, so a dropped
            // future cannot leave the two out of step.
            self.poll.start_seek(&self.lane, &self.path, pos)?;
            return poll_fn(|cx| self.poll.poll_complete(cx, &self.path)).await;
        }
        self.queue(Effect::Plain, "seek", move |file| file.seek(pos))
            .await
    }

    /// Flushes data and metadata to the device (`fsync(2)`).
    ///
    /// # Examples
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-file-sync-all-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// aopen::block_on(async {
    ///     let mut file = aopen::File::create(dir.join("journal")).await?;
    ///     file.write_all(b"committed").await?;
    ///     file.sync_all().await?; // on stable storage now, size and times included
    ///     file.close().await
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn sync_all(&self) -> impl Future<Output = io::Result<()>> + Send + 'static {
        self.queue(Effect::Plain, "fsync", |file| file.sync_all())
    }

    /// Flushes data to the device (`fdatasync(2)`).
    ///
    /// # Examples
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-file-sync-data-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// aopen::block_on(async {
    ///     let mut file = aopen::File::create(dir.join("journal")).await?;
    ///     file.write_all(b"committed").await?;
    ///     file.sync_data().await?; // the data is on stable storage
    ///     file.close().await
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn sync_data(&self) -> impl Future<Output = io::Result<()>> + Send + 'static {
        self.queue(Effect::Plain, "fdatasync", |file| file.sync_data())
    }

    /// Truncates or extends the file to `size` bytes.
    ///
    /// Bytes a trait read kept for later (see the `futures-io` and `tokio` features)
    /// are dropped by the next read, which reads the file as it is now.
    ///
    /// # Examples
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-file-set-len-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("big"), "0123456789abcdef")?;
    /// aopen::block_on(async {
    ///     let file = aopen::OpenOptions::new().write(true).open(dir.join("big")).await?;
    ///     file.set_len(4).await?;
    ///     assert_eq!(file.metadata().await?.len(), 4);
    ///     file.set_len(10).await?; // extended with zeros
    ///     assert_eq!(file.metadata().await?.len(), 10);
    ///     file.close().await
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_len(&self, size: u64) -> impl Future<Output = io::Result<()>> + Send + 'static {
        self.queue(Effect::ChangesContent, "truncate", move |file| {
            file.set_len(size)
        })
    }

    /// The file's metadata (`fstat(2)`).
    ///
    /// # Examples
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-file-metadata-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("five"), "12345")?;
    /// aopen::block_on(async {
    ///     let file = aopen::File::open(dir.join("five")).await?;
    ///     let meta = file.metadata().await?;
    ///     assert!(meta.is_file());
    ///     assert_eq!(meta.len(), 5);
    ///     file.close().await
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn metadata(&self) -> impl Future<Output = io::Result<Metadata>> + Send + 'static {
        self.queue(Effect::Plain, "stat", |file| file.metadata())
    }

    /// Changes the file's permissions (`fchmod(2)`).
    ///
    /// # Examples
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-file-set-permissions-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// use std::os::unix::fs::PermissionsExt;
    ///
    /// aopen::block_on(async {
    ///     let file = aopen::File::create(dir.join("secret")).await?;
    ///     file.set_permissions(std::fs::Permissions::from_mode(0o600)).await?;
    ///     assert_eq!(file.metadata().await?.permissions().mode() & 0o777, 0o600);
    ///     file.close().await
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_permissions(
        &self,
        perm: std::fs::Permissions,
    ) -> impl Future<Output = io::Result<()>> + Send + 'static {
        self.queue(Effect::Plain, "chmod", move |file| {
            file.set_permissions(perm)
        })
    }

    /// A second `File` for the same open file description (`dup(2)`), with its own
    /// permit of the pool's budget (this waits for one). On a budget of one, which
    /// this file holds, that wait could never end: `InvalidInput` at once instead.
    ///
    /// Unlike the other `&self` methods, the `dup` joins the file's lane once the
    /// permit is there, not at the call (waiting for a permit inside the lane would
    /// hold a pool thread and the lane behind it).
    ///
    /// # Examples
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-file-try-clone-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("abcd"), "abcd")?;
    /// let pool = aopen::Pool::builder().max_threads(2).descriptor_budget(2).build()?;
    /// aopen::block_on(async {
    ///     let mut file = pool.fs().open(dir.join("abcd")).await?;
    ///     let mut clone = file.try_clone().await?;
    ///     assert_eq!(pool.budget().held(), 2); // two descriptors, two permits
    ///     let mut two = [0u8; 2];
    ///     file.read_exact(&mut two).await?;
    ///     clone.read_exact(&mut two).await?; // the position is shared
    ///     assert_eq!(&two, b"cd");
    ///     clone.close().await?;
    ///     file.close().await
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn try_clone(&self) -> io::Result<File> {
        let pool = self.pool().clone();
        // This file holds one permit already: a budget of one can never give a second.
        let permit = pool
            .budget()
            .acquire_beside(1, 1)
            .map_err(|err| with_path("dup", &self.path, err))?
            .await;
        let path = self.path.clone();
        let lane_pool = pool.clone();
        let clone_path = path.clone();
        let max_transfer = self.poll.max_transfer();
        self.queue(Effect::Plain, "dup", move |file| {
            let copy = file.try_clone()?;
            Ok(File::from_lane(
                Lane::new(lane_pool, copy, permit),
                clone_path,
            ))
        })
        .await
        .map(|mut clone| {
            // The clone moves as much per pool trip as this file (tokio's too).
            clone.poll.set_max_transfer(max_transfer);
            clone
        })
    }

    /// Reads up to `buf.len()` bytes at `offset` (`pread(2)`), without moving the
    /// file position.
    ///
    /// On Windows this is `seek_read`, which moves the position; the position is put
    /// back before the next operation of this `File` runs (a clone made with
    /// [`try_clone`](File::try_clone) shares the position and may see it moved).
    ///
    /// # Examples
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-file-read-at-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("table"), "one two three")?;
    /// aopen::block_on(async {
    ///     let file = aopen::File::open(dir.join("table")).await?;
    ///     let mut field = [0u8; 3];
    ///     let n = file.read_at(&mut field, 4).await?;
    ///     assert_eq!(&field[..n], b"two");
    ///     file.close().await
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_at<'a>(
        &self,
        buf: &'a mut [u8],
        offset: u64,
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        let len = buf.len().min(self.poll.max_transfer());
        let queued = self.queue(Effect::Plain, "read", move |file| {
            let mut owned = vec![0; len];
            let n = retry_interrupted(|| sys::read_at(file, &mut owned, offset))?;
            owned.truncate(n);
            Ok(owned)
        });
        async move {
            let data = queued.await?;
            buf[..data.len()].copy_from_slice(&data);
            Ok(data.len())
        }
    }

    /// Writes up to `buf.len()` bytes at `offset` (`pwrite(2)`), without moving the
    /// file position. Bytes a trait read kept for later are dropped by the next read
    /// (see [`set_len`](File::set_len)).
    ///
    /// On Windows this is `seek_write`, with the position put back as in
    /// [`read_at`](File::read_at).
    ///
    /// # Examples
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-file-write-at-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("table"), "one two three")?;
    /// aopen::block_on(async {
    ///     let path = dir.join("table");
    ///     let file = aopen::OpenOptions::new().write(true).open(&path).await?;
    ///     assert_eq!(file.write_at(b"TWO", 4).await?, 3);
    ///     file.close().await?;
    ///     assert_eq!(std::fs::read(&path)?, b"one TWO three");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write_at(
        &self,
        buf: &[u8],
        offset: u64,
    ) -> impl Future<Output = io::Result<usize>> + Send + 'static {
        let owned = buf[..buf.len().min(self.poll.max_transfer())].to_vec();
        self.queue(Effect::ChangesContent, "write", move |file| {
            retry_interrupted(|| sys::write_at(file, &owned, offset))
        })
    }

    /// Closes the file after every operation issued before, and reports what
    /// `close(2)` said (on NFS, deferred write errors show up here).
    ///
    /// If this future is dropped, the close still happens (on the pool); only its
    /// result is lost.
    ///
    /// # Examples
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-file-close-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// aopen::block_on(async {
    ///     let mut file = aopen::File::create(dir.join("out")).await?;
    ///     file.write_all(b"data").await?;
    ///     // Queued behind the write; Err here would be close(2)'s own error (on NFS,
    ///     // a deferred EIO or ENOSPC from the writes).
    ///     file.close().await?;
    ///     assert_eq!(aopen::Pool::global().budget().held(), 0); // its permit is back
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn close(mut self) -> io::Result<()> {
        // Waits for an operation a dropped future or a poll method left in flight,
        // then queues the close (once: after `poll_close` this is `Ok(())`).
        let File {
            lane, path, poll, ..
        } = &mut self;
        poll_fn(|cx| poll.poll_close(cx, lane, path)).await
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File").field("path", &self.path).finish()
    }
}

/// Options for opening a file, like `std::fs::OpenOptions`, plus the [`Pool`] to open
/// it on.
///
/// The setters take and return `&mut Self`, as std's do, so they chain; each is one
/// `open(2)` flag (see std's documentation for their meaning and combinations).
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("aopen-doc-open-options-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// use aopen::fs::OpenOptions;
/// use std::os::unix::fs::PermissionsExt;
///
/// aopen::block_on(async {
///     let log = dir.join("app.log");
///     // Append-only, created with mode 0o640 if missing.
///     let mut options = OpenOptions::new();
///     options.append(true).create(true).mode(0o640);
///     for line in ["started\n", "stopped\n"] {
///         let mut file = options.open(&log).await?;
///         file.write_all(line.as_bytes()).await?;
///         file.close().await?;
///     }
///     assert_eq!(std::fs::read_to_string(&log)?, "started\nstopped\n");
///     let mode = std::fs::metadata(&log)?.permissions().mode();
///     assert_eq!(mode & 0o777 & !0o640, 0); // no more than asked (the umask may take some)
///
///     // Read and write, truncating; refuse to follow a symlink.
///     let file = OpenOptions::new()
///         .read(true)
///         .write(true)
///         .truncate(true)
///         .custom_flags(libc::O_NOFOLLOW)
///         .open(&log)
///         .await?;
///     assert_eq!(file.metadata().await?.len(), 0);
///     file.close().await?;
///
///     // `create_new` fails if the file exists.
///     let err = OpenOptions::new().write(true).create_new(true).open(&log).await.unwrap_err();
///     assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
///     Ok::<(), std::io::Error>(())
/// })?;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct OpenOptions {
    std: std::fs::OpenOptions,
    pool: Option<Pool>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions::new()
    }
}

/// Options built with std's `OpenOptions` (and its `unix`/`windows` extension
/// traits), opening on the global pool: tokio's `From<std::fs::OpenOptions>`.
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("aopen-doc-open-options-from-std-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let mut std_options = std::fs::OpenOptions::new();
/// std_options.write(true).create_new(true);
/// let options = aopen::fs::OpenOptions::from(std_options);
/// aopen::block_on(async {
///     options.open(dir.join("new")).await?.close().await?;
///     let again = options.open(dir.join("new")).await.unwrap_err();
///     assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists);
///     Ok::<(), std::io::Error>(())
/// })?;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
impl From<std::fs::OpenOptions> for OpenOptions {
    fn from(std: std::fs::OpenOptions) -> OpenOptions {
        OpenOptions { std, pool: None }
    }
}

impl OpenOptions {
    /// Options with every flag off, on the global pool.
    ///
    /// # Examples
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-open-options-new-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("a.txt"), "x")?;
    /// use aopen::OpenOptions;
    ///
    /// aopen::block_on(async {
    ///     // Every flag off: an open must be told to read, write or append first.
    ///     let err = OpenOptions::new().open(dir.join("a.txt")).await.unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    ///     OpenOptions::new().read(true).open(dir.join("a.txt")).await?.close().await
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> OpenOptions {
        OpenOptions {
            std: std::fs::OpenOptions::new(),
            pool: None,
        }
    }

    /// Open for reading.
    ///
    /// # Examples
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-open-options-read-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("a.txt"), "hello")?;
    /// aopen::block_on(async {
    ///     let mut file = aopen::OpenOptions::new().read(true).open(dir.join("a.txt")).await?;
    ///     let mut text = String::new();
    ///     file.read_to_string(&mut text).await?;
    ///     assert_eq!(text, "hello");
    ///     assert!(file.write(b"!").await.is_err()); // opened for reading only
    ///     file.close().await
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read(&mut self, read: bool) -> &mut Self {
        self.std.read(read);
        self
    }

    /// Open for writing.
    ///
    /// # Examples
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-open-options-write-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("a.txt"), "hello")?;
    /// aopen::block_on(async {
    ///     // `write` alone neither creates nor truncates: it writes over the start.
    ///     let mut file = aopen::OpenOptions::new().write(true).open(dir.join("a.txt")).await?;
    ///     file.write_all(b"J").await?;
    ///     file.close().await?;
    ///     assert_eq!(std::fs::read_to_string(dir.join("a.txt"))?, "Jello");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write(&mut self, write: bool) -> &mut Self {
        self.std.write(write);
        self
    }

    /// Open for appending (`O_APPEND`).
    ///
    /// # Examples
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-open-options-append-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("log.txt"), "one\n")?;
    /// aopen::block_on(async {
    ///     let mut file = aopen::OpenOptions::new().append(true).open(dir.join("log.txt")).await?;
    ///     file.write_all(b"two\n").await?; // lands at the end, not over "one"
    ///     file.close().await?;
    ///     assert_eq!(std::fs::read_to_string(dir.join("log.txt"))?, "one\ntwo\n");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn append(&mut self, append: bool) -> &mut Self {
        self.std.append(append);
        self
    }

    /// Truncate the file to zero length on open.
    ///
    /// # Examples
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-open-options-truncate-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("a.txt"), "old contents")?;
    /// aopen::block_on(async {
    ///     let mut options = aopen::OpenOptions::new();
    ///     let file = options.write(true).truncate(true).open(dir.join("a.txt")).await?;
    ///     assert_eq!(file.metadata().await?.len(), 0); // emptied by the open itself
    ///     file.close().await
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn truncate(&mut self, truncate: bool) -> &mut Self {
        self.std.truncate(truncate);
        self
    }

    /// Create the file if it does not exist.
    ///
    /// # Examples
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-open-options-create-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// aopen::block_on(async {
    ///     let path = dir.join("new.txt");
    ///     let err = aopen::OpenOptions::new().write(true).open(&path).await.unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::NotFound); // without `create`
    ///     let file = aopen::OpenOptions::new().write(true).create(true).open(&path).await?;
    ///     file.close().await?;
    ///     assert!(path.exists());
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create(&mut self, create: bool) -> &mut Self {
        self.std.create(create);
        self
    }

    /// Create the file, failing with `AlreadyExists` if it exists (`O_EXCL`).
    ///
    /// # Examples
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-open-options-create-new-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// aopen::block_on(async {
    ///     let mut options = aopen::OpenOptions::new();
    ///     options.write(true).create_new(true);
    ///     options.open(dir.join("lock")).await?.close().await?; // created
    ///     let err = options.open(dir.join("lock")).await.unwrap_err(); // there already
    ///     assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create_new(&mut self, create_new: bool) -> &mut Self {
        self.std.create_new(create_new);
        self
    }

    /// The permission bits of a file this call creates (default `0o666`, less the
    /// umask). Unix only.
    ///
    /// # Examples
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-open-options-mode-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// use std::os::unix::fs::PermissionsExt;
    ///
    /// aopen::block_on(async {
    ///     let mut options = aopen::OpenOptions::new();
    ///     let file = options.write(true).create(true).mode(0o600).open(dir.join("key")).await?;
    ///     let mode = file.metadata().await?.permissions().mode();
    ///     assert_eq!(mode & 0o077, 0); // no access for group or others
    ///     file.close().await
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(unix)]
    #[cfg_attr(docsrs, doc(cfg(unix)))]
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        sys::set_mode(&mut self.std, mode);
        self
    }

    /// Extra `open(2)` flags, such as `libc::O_NOFOLLOW` or `libc::O_NONBLOCK`. Unix
    /// only (Windows has a `custom_flags` of its own, for `CreateFileW`).
    ///
    /// # Examples
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-open-options-custom-flags-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// std::os::unix::fs::symlink(dir.join("target"), dir.join("link"))?;
    /// let mut options = aopen::OpenOptions::new();
    /// options.read(true).custom_flags(libc::O_NOFOLLOW);
    /// let err = aopen::block_on(options.open(dir.join("link"))).unwrap_err();
    /// assert_eq!(aopen::fs::os_error(&err), Some(libc::ELOOP)); // a symlink: refused
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(unix)]
    #[cfg_attr(docsrs, doc(cfg(unix)))]
    pub fn custom_flags(&mut self, flags: i32) -> &mut Self {
        sys::set_custom_flags(&mut self.std, flags);
        self
    }

    /// `dwDesiredAccess` of `CreateFileW`, replacing what `read`, `write` and
    /// `append` ask for (std's `OpenOptionsExt::access_mode`). Windows only.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(windows)] {
    /// const GENERIC_READ: u32 = 0x8000_0000;
    /// let mut options = aopen::OpenOptions::new();
    /// options.access_mode(GENERIC_READ);
    /// # }
    /// ```
    #[cfg(windows)]
    #[cfg_attr(docsrs, doc(cfg(windows)))]
    pub fn access_mode(&mut self, access: u32) -> &mut Self {
        sys::set_access_mode(&mut self.std, access);
        self
    }

    /// `dwShareMode` of `CreateFileW`: what other handles may do to the file while
    /// this one is open (default: read, write and delete). Windows only.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(windows)] {
    /// // No other handle may open the file while this one is open.
    /// let mut options = aopen::OpenOptions::new();
    /// options.read(true).share_mode(0);
    /// # }
    /// ```
    #[cfg(windows)]
    #[cfg_attr(docsrs, doc(cfg(windows)))]
    pub fn share_mode(&mut self, share: u32) -> &mut Self {
        sys::set_share_mode(&mut self.std, share);
        self
    }

    /// Extra flags of `CreateFileW`'s `dwFlagsAndAttributes`, such as
    /// `FILE_FLAG_DELETE_ON_CLOSE` (std's `OpenOptionsExt::custom_flags`). Windows
    /// only; on Unix `custom_flags` takes `open(2)` flags.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(windows)] {
    /// const FILE_FLAG_DELETE_ON_CLOSE: u32 = 0x0400_0000;
    /// let mut options = aopen::OpenOptions::new();
    /// options.write(true).create(true).custom_flags(FILE_FLAG_DELETE_ON_CLOSE);
    /// # }
    /// ```
    #[cfg(windows)]
    #[cfg_attr(docsrs, doc(cfg(windows)))]
    pub fn custom_flags(&mut self, flags: u32) -> &mut Self {
        sys::set_custom_flags(&mut self.std, flags);
        self
    }

    /// File attributes (`FILE_ATTRIBUTE_*`) of a file this call creates. Windows
    /// only.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(windows)] {
    /// const FILE_ATTRIBUTE_HIDDEN: u32 = 0x2;
    /// let mut options = aopen::OpenOptions::new();
    /// options.write(true).create(true).attributes(FILE_ATTRIBUTE_HIDDEN);
    /// # }
    /// ```
    #[cfg(windows)]
    #[cfg_attr(docsrs, doc(cfg(windows)))]
    pub fn attributes(&mut self, attributes: u32) -> &mut Self {
        sys::set_attributes(&mut self.std, attributes);
        self
    }

    /// `SECURITY_SQOS_PRESENT` flags of `CreateFileW`, for opening named pipes as a
    /// client (std's `OpenOptionsExt::security_qos_flags`). Windows only.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(windows)] {
    /// const SECURITY_IDENTIFICATION: u32 = 1 << 16;
    /// let mut options = aopen::OpenOptions::new();
    /// options.read(true).security_qos_flags(SECURITY_IDENTIFICATION);
    /// # }
    /// ```
    #[cfg(windows)]
    #[cfg_attr(docsrs, doc(cfg(windows)))]
    pub fn security_qos_flags(&mut self, flags: u32) -> &mut Self {
        sys::set_security_qos_flags(&mut self.std, flags);
        self
    }

    /// Open on `pool` (and count against its budget) instead of the global pool.
    ///
    /// # Examples
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-open-options-pool-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// // A pool of its own for one slow mount: its own threads and descriptor budget.
    /// let nfs = aopen::Pool::builder().max_threads(4).descriptor_budget(8).build()?;
    /// aopen::block_on(async {
    ///     let file = aopen::OpenOptions::new()
    ///         .write(true)
    ///         .create(true)
    ///         .pool(&nfs)
    ///         .open(dir.join("a"))
    ///         .await?;
    ///     assert_eq!(nfs.stats().descriptors_held, 1);
    ///     file.close().await
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pool(&mut self, pool: &Pool) -> &mut Self {
        self.pool = Some(pool.clone());
        self
    }

    /// Opens `path` with these options.
    ///
    /// Waits for a permit of the pool's budget first, then runs `open(2)` on the pool.
    /// If this future is dropped while the open runs, the descriptor it returns is
    /// closed on the pool.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-open-options-open-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// aopen::block_on(async {
    ///     let mut file = aopen::OpenOptions::new()
    ///         .write(true)
    ///         .create_new(true)
    ///         .open(dir.join("fresh"))
    ///         .await?;
    ///     file.write_all(b"new").await?;
    ///     file.close().await
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open(&self, path: impl AsRef<Path>) -> FsFuture<File> {
        let options = self.std.clone();
        let pool = self.pool.clone();
        let path: Arc<Path> = Arc::from(path.as_ref());
        FsFuture::new(async move {
            let pool = super::resolve_pool(pool)?;
            let permit = pool.budget().acquire().await;
            let open_path = path.clone();
            let lane = open_in_lane(&pool, permit, move || {
                options
                    .open(&open_path)
                    .map_err(|err| with_path("open", &open_path, err))
            })
            .await?;
            Ok(File::from_lane(lane, path))
        })
    }

    /// Opens `path`, runs `body` on the file, then closes it asynchronously: the
    /// scoped form of Python's `async with aopen(path) as f:`.
    ///
    /// Returns `body`'s error if it failed, else `close(2)`'s. The file is closed
    /// either way (if this future is dropped midway, the close still happens on the
    /// pool, and only its error is lost).
    ///
    /// ```
    /// # aopen::block_on(async {
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-scoped-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("hello.txt");
    /// aopen::fs::OpenOptions::new()
    ///     .write(true)
    ///     .create(true)
    ///     .scoped(&path, |file| Box::pin(async move { file.write_all(b"hello").await }))
    ///     .await?;
    /// assert_eq!(std::fs::read(&path)?, b"hello");
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn scoped<T, F>(&self, path: impl AsRef<Path>, body: F) -> FsFuture<T>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a mut File) -> super::ScopedFuture<'a, T> + Send + 'static,
    {
        let open = self.open(path);
        FsFuture::new(async move {
            let mut file = open.await?;
            let result = body(&mut file).await;
            let closed = file.close().await;
            let value = result?;
            closed?;
            Ok(value)
        })
    }
}

impl fmt::Debug for OpenOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenOptions")
            .field("options", &self.std)
            .field("pool", &self.pool)
            .finish()
    }
}
