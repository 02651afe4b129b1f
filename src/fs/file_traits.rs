//! The `futures-io` and `tokio` trait impls of [`File`]: thin adapters onto the
//! file's [`PollState`](super::in_flight::PollState), which owns every rule (one
//! operation in flight, owned buffers, no write-behind, kept bytes, close once). The
//! core of the crate (`File`'s own methods, its close) never runs through here; this
//! module only exists with the features on.

use std::io::{self, IoSlice, SeekFrom};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::file::File;

/// With the `futures-io` feature: `futures::io`'s traits, so `futures::io::copy`,
/// `BufReader`, `AsyncReadExt` and friends work on a `File`.
///
/// The inherent methods of the same names (`read`, `write`, `seek`, `close`, ...) win
/// method calls: call the traits' versions as `AsyncReadExt::read(&mut file, buf)`, or
/// hand the file to generic code. Both kinds share one state and may be mixed.
///
/// ```
/// # aopen::block_on(async {
/// use futures::io::{AsyncBufReadExt, AsyncSeekExt, AsyncWriteExt, BufReader};
/// use futures::StreamExt;
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("lines.txt");
/// let mut file = aopen::OpenOptions::new().read(true).write(true).create(true).open(&path).await?;
/// futures::io::copy(&b"one\ntwo\n"[..], &mut file).await?; // Ok: write(2) took them
/// AsyncSeekExt::seek(&mut file, std::io::SeekFrom::Start(0)).await?;
///
/// let mut reader = BufReader::new(file);
/// let lines: Vec<String> = (&mut reader).lines().map(|line| line.unwrap()).collect().await;
/// assert_eq!(lines, ["one", "two"]);
/// AsyncWriteExt::close(reader.get_mut()).await?; // close(2)'s error, if any
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
#[cfg(feature = "futures-io")]
#[cfg_attr(docsrs, doc(cfg(feature = "futures-io")))]
impl futures_io::AsyncRead for File {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        // `File` is `Unpin`: tasks, buffers and handles, nothing self-referential.
        let this = self.get_mut();
        let want = buf.len();
        let put = |bytes: &[u8]| buf[..bytes.len()].copy_from_slice(bytes);
        this.poll.poll_read(cx, &this.lane, &this.path, want, put)
    }
}

/// `poll_write` returns `Ok(n)` only once `write(2)` took the bytes (no write-behind);
/// `poll_flush` waits for the operation in flight; `poll_close` closes the file and
/// returns `close(2)`'s error (after it, operations fail and another close is `Ok`).
#[cfg(feature = "futures-io")]
#[cfg_attr(docsrs, doc(cfg(feature = "futures-io")))]
impl futures_io::AsyncWrite for File {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.poll
            .poll_write(cx, &this.lane, &this.path, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.poll.poll_write(cx, &this.lane, &this.path, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.poll.poll_settle(cx, "flush", &this.path)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.poll.poll_close(cx, &mut this.lane, &this.path)
    }
}

/// A seek from `Current` counts from the caller's position (bytes a read brought
/// back and nobody took yet are subtracted).
#[cfg(feature = "futures-io")]
#[cfg_attr(docsrs, doc(cfg(feature = "futures-io")))]
impl futures_io::AsyncSeek for File {
    fn poll_seek(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        pos: SeekFrom,
    ) -> Poll<io::Result<u64>> {
        let this = self.get_mut();
        this.poll.poll_seek(cx, &this.lane, &this.path, pos)
    }
}

/// With the `tokio` feature: `tokio::io`'s traits (no tokio runtime needed), so
/// `tokio::io::copy`, `BufReader` and `AsyncReadExt` work on a `File`.
///
/// As with futures-io, the inherent methods win method calls: use
/// `tokio::io::AsyncReadExt::read(&mut file, buf)` or generic code.
///
/// ```
/// # aopen::block_on(async {
/// use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("lines.txt");
/// let mut file = aopen::File::create(&path).await?;
/// tokio::io::copy(&mut &b"one\ntwo\n"[..], &mut file).await?;
/// AsyncWriteExt::shutdown(&mut file).await?; // close(2)'s error, if any
///
/// let mut lines = BufReader::new(aopen::File::open(&path).await?).lines();
/// assert_eq!(lines.next_line().await?.as_deref(), Some("one"));
/// assert_eq!(lines.next_line().await?.as_deref(), Some("two"));
/// assert_eq!(lines.next_line().await?, None);
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
impl tokio::io::AsyncRead for File {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let want = buf.remaining();
        let put = |bytes: &[u8]| buf.put_slice(bytes);
        std::task::ready!(this.poll.poll_read(cx, &this.lane, &this.path, want, put))?;
        Poll::Ready(Ok(()))
    }
}

/// `poll_write` returns `Ok(n)` only once `write(2)` took the bytes (no write-behind);
/// `poll_flush` waits for the operation in flight; `poll_shutdown` closes the file and
/// returns `close(2)`'s error (after it, operations fail and another shutdown is `Ok`).
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
impl tokio::io::AsyncWrite for File {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.poll
            .poll_write(cx, &this.lane, &this.path, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.poll.poll_write(cx, &this.lane, &this.path, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.poll.poll_settle(cx, "flush", &this.path)
    }

    /// `true`: the slices go to the pool in one job (gathered into one buffer).
    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.poll.poll_close(cx, &mut this.lane, &this.path)
    }
}

/// `start_seek` fails while another operation is in flight (call `poll_complete`
/// first, as tokio's `seek` does); with no seek in flight `poll_complete` returns the
/// last seek's position. A seek from `Current` counts from the caller's position.
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
impl tokio::io::AsyncSeek for File {
    fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        let this = self.get_mut();
        this.poll.start_seek(&this.lane, &this.path, position)
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        let this = self.get_mut();
        this.poll.poll_complete(cx, &this.path)
    }
}
