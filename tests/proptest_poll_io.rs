//! Property test of the poll state machine (`src/fs/poll_io.rs`): random sequences of
//! futures-io and tokio trait calls, `File`'s inherent methods and given-up trait
//! futures on one read-write `File` over a real temporary file, each result checked
//! against a model, and the file on disk checked against the model's content.
//!
//! # The model
//!
//! What the documented semantics let a caller know: the file's content (a `Vec<u8>`),
//! the caller's position, and what the state machine and the methods promise:
//!
//! - **Kept bytes.** A read job asks for as many bytes as the buffer it was started
//!   for. When a smaller buffer collects it, that buffer gets the first bytes and the
//!   rest are kept, served first by the next read of any form. They are what the file
//!   held when the job ran; a later `write_at` or `set_len` makes them (and a read in
//!   flight) stale, and the next read reads the file afresh at the caller's position
//!   (see [`Model::forget_kept`]). A seek counts
//!   from the caller's position and drops them; a write lands at the caller's position
//!   (and drops them).
//! - **The job in flight.** A trait future given up after a `Pending` poll leaves its
//!   job in the `File`, and the job runs before anything issued later. The next
//!   operation finishes it: a read's bytes go to the next trait read, or become kept
//!   bytes; a write happened, and a trait `write` polled while it is in flight reports
//!   its count instead of writing again; a seek moved the position, a futures-io seek
//!   polled while it is in flight reports its result, and a failed seek's error goes
//!   to the next operation that finishes it. A future dropped before its first poll
//!   did nothing.
//! - **Given-up inherent calls** (only with the pool blocked, where it is certain that
//!   their lane job had not started): the lane job is skipped, kept bytes a read took
//!   are gone, and what they queued through the poll state (the step back over kept
//!   bytes before a write, a seek over kept bytes) stays in the `File` and runs.
//!
//! # Knowing what a given-up future did
//!
//! Each case runs on a private pool of one thread. `Block` occupies that thread, so no
//! job runs while it is held: the model predicts every poll exactly (`Ready` with
//! what, or `Pending`, and whether the op's own job was queued or it waits on the job
//! in flight). Without `Block`, the first poll queues the op's job; a second poll
//! comes after the waker was woken, so it is `Ready` and checked like an awaited call;
//! after the last `Pending` a busy wait of `spin` units lets the job finish before the
//! drop, or not: the model is the same either way (the job is in flight, and the next
//! operation collects it), while the code takes different paths. Before a `Block` or a
//! give-up with the pool free, a job the model cannot know has run is made to run by a
//! `metadata` call (a lane job that does not take the job's result), so the path of
//! the next first poll is known. Any other op releases the pool first. Only the rare
//! job that finishes within its first poll makes a case's path depend on timing.
//!
//! After every op whose jobs have all run, and after the final close, the file on disk
//! must hold the model's content (no write-behind, given-up writes happened). A case
//! that hangs (a lost wake-up) fails after [`CASE_DEADLINE`].
//!
//! `PROPTEST_CASES` cases (default [`DEFAULT_CASES`], about 4 s in debug on two cores),
//! most under `futures::executor::block_on` or `aopen::block_on`, a quarter on
//! a tokio current-thread runtime. For more:
//!
//! ```text
//! PROPTEST_CASES=20000 cargo test --release --all-features --test proptest_poll_io
//! ```
#![cfg(all(feature = "futures-io", feature = "tokio"))]

#[path = "support/common.rs"]
mod common;

use std::fmt;
use std::future::Future;
use std::io::{self, ErrorKind, SeekFrom};
use std::path::Path;
use std::pin::pin;
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use aopen::fs::OpenOptions;
use aopen::{BlockingTask, File, Pool};
use common::CountingWaker;
use futures::io::{AsyncReadExt as FRead, AsyncSeekExt as FSeek, AsyncWriteExt as FWrite};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tokio::io::{AsyncReadExt as TRead, AsyncSeekExt as TSeek, AsyncWriteExt as TWrite};

/// Cases when `PROPTEST_CASES` is not set.
const DEFAULT_CASES: u32 = 512;
/// Most chunks (one op, or a few) in a case.
const MAX_CHUNKS: usize = 64;
/// Longest initial file content.
const MAX_INITIAL: usize = 300;
/// Most bytes of a usual read buffer or write; an occasional one is up to
/// [`MAX_BIG`].
const MAX_SMALL: usize = 64;
/// Largest occasional read buffer (bigger than the file, so a read job can bring
/// back more than a following small buffer takes).
const MAX_BIG: usize = 5_000;
/// Largest occasional write.
const MAX_BIG_WRITE: usize = 1_000;
/// Largest seek target, `set_len` and positional offset.
const MAX_POS: u64 = 600;
/// Largest relative seek (either way, from `Current` or `End`).
const MAX_DELTA: i64 = 100;
/// Most polls of a given-up future (0: dropped before its first poll).
const MAX_POLLS: u8 = 2;
/// Most busy-wait units after the last poll of a given-up future.
const MAX_SPIN: u8 = 25;
/// One busy-wait unit (a pool job on a file takes some tens of microseconds).
const SPIN_UNIT: Duration = Duration::from_micros(2);
/// How long a given-up future's waker may take to be woken once its job can run.
const WAKE_DEADLINE: Duration = Duration::from_secs(10);
/// How often that wait looks.
const WAKE_CHECK: Duration = Duration::from_micros(20);
/// How long the pool may take to shut down after a case.
const SHUTDOWN: Duration = Duration::from_secs(10);
/// How long one case may take (it takes milliseconds).
const CASE_DEADLINE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------

/// A call through the futures-io (`F*`) or tokio (`T*`) traits.
#[derive(Clone, Debug)]
enum TraitOp {
    /// `futures::io::AsyncReadExt::read` with a buffer of this many bytes.
    FRead(usize),
    /// `tokio::io::AsyncReadExt::read`.
    TRead(usize),
    /// `futures::io::AsyncWriteExt::write`.
    FWrite(Data),
    /// `tokio::io::AsyncWriteExt::write`.
    TWrite(Data),
    /// `futures::io::AsyncSeekExt::seek`.
    FSeek(SeekFrom),
    /// `tokio::io::AsyncSeekExt::seek`.
    TSeek(SeekFrom),
    FFlush,
    TFlush,
}

/// One step of a case.
#[derive(Clone, Debug)]
enum Op {
    /// A trait call, awaited.
    Await(TraitOp),
    /// A trait call's future polled up to `polls` times, then dropped (0: never
    /// polled). With the pool free, a second poll comes after the waker was woken, and
    /// `spin` units of busy waiting come after the last (see [`poll_then_drop`]).
    GiveUp {
        op: TraitOp,
        polls: u8,
        spin: u8,
    },
    /// An inherent call's future (`op` is one of the inherent ops below) polled up to
    /// `polls` times, then dropped, with the pool blocked (`Block` first, if it is not):
    /// only then is it known how far it got.
    GiveUpInherent {
        op: Box<Op>,
        polls: u8,
    },
    /// Occupy the pool's only thread until `Release` or any op that awaits.
    Block,
    Release,
    /// `File::read` with a buffer of this many bytes.
    Read(usize),
    /// `File::read_exact`.
    ReadExact(usize),
    /// `File::read_to_end`.
    ReadToEnd,
    /// `File::write`.
    Write(Data),
    /// `File::write_all`.
    WriteAll(Data),
    /// `File::seek`.
    Seek(SeekFrom),
    /// `File::set_len`.
    SetLen(u64),
    /// `File::read_at`.
    ReadAt {
        len: usize,
        offset: u64,
    },
    /// `File::write_at`.
    WriteAt {
        data: Data,
        offset: u64,
    },
    /// `File::metadata().len()`.
    Len,
}

/// How the case ends.
#[derive(Clone, Copy, Debug)]
enum Close {
    /// `futures::io::AsyncWriteExt::close`.
    Futures,
    /// `tokio::io::AsyncWriteExt::shutdown`.
    Tokio,
    /// `File::close`.
    Inherent,
}

/// What runs the case's future.
#[derive(Clone, Copy, Debug)]
enum Executor {
    Futures,
    Aopen,
    TokioCurrentThread,
}

#[derive(Clone)]
struct Case {
    executor: Executor,
    /// Length of the file's initial content ([`initial`]).
    initial: usize,
    ops: Vec<Op>,
    close: Close,
}

/// One op a line, so a shrunk case reads as a short program. (A `GiveUp` with
/// `polls: 0` and a trait read of 0 bytes, left by the shrinker inside a chunk, do
/// nothing.)
impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Case {{ executor: {:?}, initial: {} bytes, close: {:?}, ops: [",
            self.executor, self.initial, self.close
        )?;
        for (i, op) in self.ops.iter().enumerate() {
            writeln!(f, "    {i:3} {op:?}")?;
        }
        write!(f, "] }}")
    }
}

/// Bytes to write; shown as their length and the first few.
#[derive(Clone)]
struct Data(Vec<u8>);

impl std::ops::Deref for Data {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Data({})", Shown(&self.0))
    }
}

/// The file's initial content: no zero bytes (zero-filled holes stand out), and no
/// repeat within 251 bytes.
fn initial(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 + 1).collect()
}

// ---------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------

/// What an op returned, as the file and the model both give it.
#[derive(Clone, PartialEq, Eq)]
enum Out {
    /// The bytes a read put in the buffer.
    Bytes(Vec<u8>),
    /// A write's count.
    Count(usize),
    /// A seek's new position.
    Pos(u64),
    /// The file's length (`metadata`).
    Len(u64),
    /// `Ok(())`.
    Done,
    Err(ErrorKind),
}

impl fmt::Debug for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Out::Bytes(bytes) => write!(f, "Bytes({})", Shown(bytes)),
            Out::Count(n) => write!(f, "Count({n})"),
            Out::Pos(pos) => write!(f, "Pos({pos})"),
            Out::Len(len) => write!(f, "Len({len})"),
            Out::Done => write!(f, "Done"),
            Out::Err(kind) => write!(f, "Err({kind:?})"),
        }
    }
}

/// Bytes in a message: the length, and the first few.
struct Shown<'a>(&'a [u8]);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HEAD: usize = 24;
        let bytes = self.0;
        write!(
            f,
            "{} bytes {:?}",
            bytes.len(),
            &bytes[..bytes.len().min(HEAD)]
        )?;
        if bytes.len() > HEAD {
            write!(f, "..")?;
        }
        Ok(())
    }
}

/// The kind the model expects for `err`. A seek before the start is `EINVAL`
/// (`InvalidInput`) on Unix; Windows says `ERROR_NEGATIVE_SEEK` (131), which std
/// leaves uncategorized: the same refusal, so the model's kind.
fn kind_of(err: &io::Error) -> ErrorKind {
    /// Win32's `ERROR_NEGATIVE_SEEK`.
    const ERROR_NEGATIVE_SEEK: i32 = 131;
    if cfg!(windows) && aopen::fs::os_error(err) == Some(ERROR_NEGATIVE_SEEK) {
        return ErrorKind::InvalidInput;
    }
    err.kind()
}

fn read_out(result: io::Result<usize>, mut buf: Vec<u8>) -> Out {
    match result {
        Ok(n) => {
            buf.truncate(n);
            Out::Bytes(buf)
        }
        Err(err) => Out::Err(kind_of(&err)),
    }
}

fn out<T>(result: io::Result<T>, ok: impl FnOnce(T) -> Out) -> Out {
    match result {
        Ok(value) => ok(value),
        Err(err) => Out::Err(kind_of(&err)),
    }
}

// ---------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------

/// The job a given-up trait future left in the `File`, as its effect: applied to the
/// model when it was queued (it runs before anything issued later), with what it
/// brings back for the operation that finishes it.
#[derive(Debug)]
enum Job {
    /// A read: the bytes it brings (what the file held at the caller's position).
    Read(Vec<u8>),
    /// A write of this many bytes (all of them: a regular file takes them).
    Write(usize),
    /// A seek to this position, or `None`: it fails (a negative position).
    Seek(Option<u64>),
    /// The step back over the kept bytes that an inherent write queues before its own
    /// job (the model dropped the kept bytes when it was queued).
    Rewind,
}

/// Whether the job in flight has run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum JobState {
    /// Queued while the pool was blocked, which it still is: it cannot have run.
    Queued,
    /// It may or may not have run yet.
    Unknown,
    /// A lane job queued after it has finished, so it has run (its result is not
    /// taken yet).
    Done,
}

/// How the first poll of a trait future goes.
#[derive(Debug)]
enum Begin {
    /// `Ready` with this.
    Ready(Out),
    /// `Pending`: the op's own job is queued (the model applied its effect).
    Queued,
    /// `Pending`: it waits for the job in flight, which cannot run; nothing of this op
    /// happened.
    Waits,
}

struct Model {
    content: Vec<u8>,
    /// The caller's position.
    pos: u64,
    /// Bytes a read job brought that no caller took yet, owed from `pos` (the OS
    /// position is `pos + kept.len()`).
    kept: Vec<u8>,
    /// The job a given-up trait future left in flight.
    job: Option<Job>,
    state: JobState,
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Model {{ content: {}, pos: {}, kept: {}, job: {:?}, state: {:?} }}",
            Shown(&self.content),
            self.pos,
            Shown(&self.kept),
            self.job,
            self.state
        )
    }
}

impl Model {
    fn new(content: Vec<u8>) -> Model {
        Model {
            content,
            pos: 0,
            kept: Vec::new(),
            job: None,
            state: JobState::Done,
        }
    }

    /// Up to `len` bytes of the content at `offset`.
    fn at(&self, offset: u64, len: usize) -> Vec<u8> {
        let start = usize::try_from(offset).unwrap().min(self.content.len());
        let end = start.saturating_add(len).min(self.content.len());
        self.content[start..end].to_vec()
    }

    /// `pwrite(2)`: zero-fills up to `offset`; an empty write changes nothing.
    fn write_at(&mut self, offset: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let start = usize::try_from(offset).unwrap();
        let end = start + data.len();
        if self.content.len() < end {
            self.content.resize(end, 0);
        }
        self.content[start..end].copy_from_slice(data);
    }

    /// A write at the caller's position (the kept bytes are stepped back over).
    fn write(&mut self, data: &[u8]) {
        self.kept.clear();
        self.write_at(self.pos, data);
        self.pos += data.len() as u64;
    }

    /// Where a seek goes, from the caller's position for `Current`; `None` if
    /// negative.
    fn target(&self, to: SeekFrom) -> Option<u64> {
        let (base, delta) = match to {
            SeekFrom::Start(pos) => return Some(pos),
            SeekFrom::End(delta) => (self.content.len() as u64, delta),
            SeekFrom::Current(delta) => (self.pos, delta),
        };
        base.checked_add_signed(delta)
    }

    /// A seek's effect (a failed one changes nothing: the kept bytes stay).
    fn seek(&mut self, to: SeekFrom) -> Option<u64> {
        let target = self.target(to);
        if let Some(pos) = target {
            self.pos = pos;
            self.kept.clear();
        }
        target
    }

    /// Hands out up to `want` kept bytes.
    fn take_kept(&mut self, want: usize) -> Vec<u8> {
        let n = want.min(self.kept.len());
        let taken: Vec<u8> = self.kept.drain(..n).collect();
        self.pos += n as u64;
        taken
    }

    /// A read job's bytes collected by a buffer of `want`: the rest is kept.
    fn take_chunk(&mut self, chunk: Vec<u8>, want: usize) -> Vec<u8> {
        assert!(self.kept.is_empty(), "model: a read job over kept bytes");
        self.kept = chunk;
        self.take_kept(want)
    }

    /// Finishes the job in flight, for an op that needs it out of the way: a read's
    /// bytes are kept; a failed seek's error is this op's.
    fn settle(&mut self) -> Result<(), ErrorKind> {
        match self.job.take() {
            None | Some(Job::Write(_) | Job::Seek(Some(_)) | Job::Rewind) => Ok(()),
            Some(Job::Read(chunk)) => {
                assert!(self.kept.is_empty(), "model: a read job over kept bytes");
                self.kept = chunk;
                Ok(())
            }
            Some(Job::Seek(None)) => Err(ErrorKind::InvalidInput),
        }
    }

    /// A `write_at` or `set_len` made the kept bytes, and those of a read in flight,
    /// stale: they are never served, and the position the caller sees stays.
    fn forget_kept(&mut self) {
        self.kept.clear();
        if matches!(self.job, Some(Job::Read(_))) {
            self.job = None;
        }
    }

    /// A lane job ran after the job in flight (which the op did not take).
    fn lane_job_ran(&mut self) {
        self.state = JobState::Done;
    }

    /// Whether every job issued so far has run (the disk then holds `content`).
    fn all_ran(&self) -> bool {
        self.job.is_none() || self.state == JobState::Done
    }

    /// The first poll of a trait op's future. With `blocked`, a job in flight that was
    /// queued behind the blocker cannot finish, and a job this op queues is `Queued`.
    fn begin(&mut self, op: &TraitOp, blocked: bool) -> Begin {
        let in_flight_finishes = !blocked || self.state == JobState::Done;
        let begin = match (op, &self.job) {
            // An empty buffer asks for nothing, whatever is in flight.
            (TraitOp::FRead(0) | TraitOp::TRead(0), _) => Begin::Ready(Out::Bytes(Vec::new())),
            (_, Some(_)) if !in_flight_finishes => Begin::Waits,
            // A job of this op's own kind is collected by this call: its bytes, its
            // count (not this call's bytes), its position (futures-io only; tokio
            // finishes it and starts its own seek).
            (TraitOp::FRead(_) | TraitOp::TRead(_), Some(Job::Read(_)))
            | (TraitOp::FWrite(_) | TraitOp::TWrite(_), Some(Job::Write(_)))
            | (TraitOp::FSeek(_), Some(Job::Seek(_))) => Begin::Ready(self.resume(op)),
            // Another kind: finished first (a failed seek's error is this call's).
            (_, Some(_)) => match self.settle() {
                Err(kind) => Begin::Ready(Out::Err(kind)),
                Ok(()) => return self.begin(op, blocked),
            },
            (TraitOp::FFlush | TraitOp::TFlush, None) => Begin::Ready(Out::Done),
            (TraitOp::FRead(len) | TraitOp::TRead(len), None) => {
                if self.kept.is_empty() {
                    self.job = Some(Job::Read(self.at(self.pos, *len)));
                    Begin::Queued
                } else {
                    Begin::Ready(Out::Bytes(self.take_kept(*len)))
                }
            }
            (TraitOp::FWrite(data) | TraitOp::TWrite(data), None) => {
                if data.is_empty() {
                    // Nothing to write: no job, and the kept bytes stay.
                    Begin::Ready(Out::Count(0))
                } else {
                    self.write(data);
                    self.job = Some(Job::Write(data.len()));
                    Begin::Queued
                }
            }
            (TraitOp::FSeek(to) | TraitOp::TSeek(to), None) => {
                let target = self.seek(*to);
                self.job = Some(Job::Seek(target));
                Begin::Queued
            }
        };
        if matches!(begin, Begin::Queued) {
            self.state = if blocked {
                JobState::Queued
            } else {
                JobState::Unknown
            };
        }
        begin
    }

    /// A later poll of the future that queued the job in flight, after the job ran.
    fn resume(&mut self, op: &TraitOp) -> Out {
        match (op, self.job.take()) {
            (TraitOp::FRead(len) | TraitOp::TRead(len), Some(Job::Read(chunk))) => {
                Out::Bytes(self.take_chunk(chunk, *len))
            }
            (TraitOp::FWrite(data) | TraitOp::TWrite(data), Some(Job::Write(n))) => {
                Out::Count(n.min(data.len()))
            }
            (TraitOp::FSeek(_) | TraitOp::TSeek(_), Some(Job::Seek(target))) => match target {
                Some(pos) => Out::Pos(pos),
                None => Out::Err(ErrorKind::InvalidInput),
            },
            (op, job) => panic!("model: {op:?} resumed with {job:?} in flight"),
        }
    }

    /// Whether an inherent op finishes the job in flight first (those that take
    /// `&mut self`); the others queue their own job behind it.
    fn settles(op: &Op) -> bool {
        matches!(
            op,
            Op::Read(_)
                | Op::ReadExact(_)
                | Op::ReadToEnd
                | Op::Write(_)
                | Op::WriteAll(_)
                | Op::Seek(_)
        )
    }

    /// The first poll of an inherent op's future while the pool is blocked: `Some` if
    /// it is `Ready`. `None` if it is `Pending`, with what it did so far applied: kept
    /// bytes it took are gone; a rewind or a seek over kept bytes it queued stays in
    /// the `File` and runs; its own lane job, not started, is skipped when the future
    /// is dropped.
    fn begin_inherent(&mut self, op: &Op) -> Option<Out> {
        if !Self::settles(op) {
            return None;
        }
        if self.job.is_some() && self.state != JobState::Done {
            // Waits for the job in flight, which cannot run.
            return None;
        }
        if let Err(kind) = self.settle() {
            return Some(Out::Err(kind));
        }
        let kept = !self.kept.is_empty();
        match op {
            // An empty buffer answers at once, without a job (and takes no kept byte).
            Op::Read(0) => Some(Out::Bytes(self.take_kept(0))),
            // Kept bytes answer without a job.
            Op::Read(len) if kept => Some(Out::Bytes(self.take_kept(*len))),
            Op::Read(_) => None,
            Op::ReadExact(len) => {
                let bytes = self.take_kept(*len);
                (bytes.len() == *len).then_some(Out::Bytes(bytes))
            }
            Op::ReadToEnd => {
                self.take_kept(usize::MAX);
                None
            }
            Op::Write(_) | Op::WriteAll(_) if kept => {
                self.kept.clear();
                self.job = Some(Job::Rewind);
                self.state = JobState::Queued;
                None
            }
            // No bytes, no job.
            Op::WriteAll(data) if data.is_empty() => Some(Out::Done),
            Op::Write(_) | Op::WriteAll(_) => None,
            Op::Seek(to) if kept => {
                let target = self.seek(*to);
                self.job = Some(Job::Seek(target));
                self.state = JobState::Queued;
                None
            }
            Op::Seek(_) => None,
            _ => unreachable!("not an inherent op that settles: {op:?}"),
        }
    }

    /// An awaited op (not `Block`, `Release`, `GiveUp`, `GiveUpInherent`).
    fn apply(&mut self, op: &Op) -> Out {
        if Self::settles(op) {
            if let Err(kind) = self.settle() {
                return Out::Err(kind);
            }
        }
        match op {
            Op::Await(op) => match self.begin(op, false) {
                Begin::Ready(out) => out,
                Begin::Queued => self.resume(op),
                Begin::Waits => unreachable!("nothing waits when the pool is free"),
            },
            Op::Read(len) => {
                if self.kept.is_empty() {
                    let bytes = self.at(self.pos, *len);
                    self.pos += bytes.len() as u64;
                    Out::Bytes(bytes)
                } else {
                    Out::Bytes(self.take_kept(*len))
                }
            }
            Op::ReadExact(len) => {
                let mut bytes = self.take_kept(*len);
                let rest = *len - bytes.len();
                if rest > 0 {
                    let more = self.at(self.pos, rest);
                    self.pos += more.len() as u64;
                    if more.len() < rest {
                        return Out::Err(ErrorKind::UnexpectedEof);
                    }
                    bytes.extend_from_slice(&more);
                }
                Out::Bytes(bytes)
            }
            Op::ReadToEnd => {
                let mut bytes = self.take_kept(usize::MAX);
                let more = self.at(self.pos, usize::MAX);
                self.pos += more.len() as u64;
                bytes.extend_from_slice(&more);
                Out::Bytes(bytes)
            }
            Op::Write(data) => {
                self.write(data);
                Out::Count(data.len())
            }
            Op::WriteAll(data) => {
                self.write(data);
                Out::Done
            }
            Op::Seek(to) => match self.seek(*to) {
                Some(pos) => Out::Pos(pos),
                None => Out::Err(ErrorKind::InvalidInput),
            },
            // The `&self` methods queue their job behind the one in flight. The two
            // that change bytes make kept bytes, and a read in flight, stale: the
            // next read drops them (stepping back, with no extra trip anyone waits
            // for) and reads the file afresh at the caller's position.
            Op::SetLen(len) => {
                self.lane_job_ran();
                self.content.resize(usize::try_from(*len).unwrap(), 0);
                self.forget_kept();
                Out::Done
            }
            Op::ReadAt { len, offset } => {
                self.lane_job_ran();
                Out::Bytes(self.at(*offset, *len))
            }
            Op::WriteAt { data, offset } => {
                self.lane_job_ran();
                self.write_at(*offset, data);
                self.forget_kept();
                Out::Count(data.len())
            }
            Op::Len => {
                self.lane_job_ran();
                Out::Len(self.content.len() as u64)
            }
            Op::Block | Op::Release | Op::GiveUp { .. } | Op::GiveUpInherent { .. } => {
                unreachable!("not awaited: {op:?}")
            }
        }
    }

    /// The close finishes the job in flight; a given-up read's or seek's error is
    /// not the close's (and a regular file's writes do not fail).
    fn close(&mut self) -> Out {
        let _ = self.settle();
        Out::Done
    }
}

// ---------------------------------------------------------------------------------
// Running the calls
// ---------------------------------------------------------------------------------

/// A trait call on `file`: one await, so polling this future polls the trait's.
async fn trait_call(file: &mut File, op: &TraitOp) -> Out {
    match op {
        TraitOp::FRead(len) => {
            let mut buf = vec![0; *len];
            let result = FRead::read(file, &mut buf).await;
            read_out(result, buf)
        }
        TraitOp::TRead(len) => {
            let mut buf = vec![0; *len];
            let result = TRead::read(file, &mut buf).await;
            read_out(result, buf)
        }
        TraitOp::FWrite(data) => out(FWrite::write(file, data).await, Out::Count),
        TraitOp::TWrite(data) => out(TWrite::write(file, data).await, Out::Count),
        TraitOp::FSeek(to) => out(FSeek::seek(file, *to).await, Out::Pos),
        TraitOp::TSeek(to) => out(TSeek::seek(file, *to).await, Out::Pos),
        TraitOp::FFlush => out(FWrite::flush(file).await, |()| Out::Done),
        TraitOp::TFlush => out(TWrite::flush(file).await, |()| Out::Done),
    }
}

/// An awaited op on `file`.
async fn call(file: &mut File, op: &Op) -> Out {
    match op {
        Op::Await(op) => trait_call(file, op).await,
        Op::Read(len) => {
            let mut buf = vec![0; *len];
            let result = file.read(&mut buf).await;
            read_out(result, buf)
        }
        Op::ReadExact(len) => {
            let mut buf = vec![0; *len];
            out(file.read_exact(&mut buf).await, |()| Out::Bytes(buf))
        }
        Op::ReadToEnd => {
            let mut buf = Vec::new();
            out(file.read_to_end(&mut buf).await, |_| Out::Bytes(buf))
        }
        Op::Write(data) => out(file.write(data).await, Out::Count),
        Op::WriteAll(data) => out(file.write_all(data).await, |()| Out::Done),
        Op::Seek(to) => out(file.seek(*to).await, Out::Pos),
        Op::SetLen(len) => out(file.set_len(*len).await, |()| Out::Done),
        Op::ReadAt { len, offset } => {
            let mut buf = vec![0; *len];
            let result = file.read_at(&mut buf, *offset).await;
            read_out(result, buf)
        }
        Op::WriteAt { data, offset } => out(file.write_at(data, *offset).await, Out::Count),
        Op::Len => out(file.metadata().await, |meta| Out::Len(meta.len())),
        Op::Block | Op::Release | Op::GiveUp { .. } | Op::GiveUpInherent { .. } => {
            unreachable!("not awaited: {op:?}")
        }
    }
}

/// Polls `future` up to `polls` times, then drops it; `Some((output, poll number))`
/// if it was `Ready`. With `free` (the pool is not blocked), between two polls it waits
/// until the future's waker was woken (its job finished: so a second poll is `Ready`),
/// and after the last `Pending` it busy-waits `spin` units, so the job may or may not
/// have run when the future is dropped (the model does not care which). A waker that
/// is never woken fails after [`WAKE_DEADLINE`].
fn poll_then_drop<F: Future>(
    future: F,
    polls: u8,
    spin: u8,
    free: bool,
) -> Result<Option<(F::Output, u8)>, String> {
    let mut future = pin!(future);
    let wakes = Arc::new(CountingWaker::default());
    let waker = Waker::from(Arc::clone(&wakes));
    let mut cx = Context::from_waker(&waker);
    for poll in 1..=polls {
        let woken = wakes.wakes();
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return Ok(Some((output, poll)));
        }
        if !free {
            continue;
        }
        if poll < polls {
            let deadline = Instant::now() + WAKE_DEADLINE;
            while wakes.wakes() == woken {
                if Instant::now() > deadline {
                    return Err(format!(
                        "Pending at poll {poll}, and its waker was not woken within \
                         {WAKE_DEADLINE:?}: a lost wake-up"
                    ));
                }
                std::thread::sleep(WAKE_CHECK);
            }
        } else {
            let until = Instant::now() + SPIN_UNIT * u32::from(spin);
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        }
    }
    Ok(None)
}

// ---------------------------------------------------------------------------------
// The driver
// ---------------------------------------------------------------------------------

struct Driver<'a> {
    pool: &'a Pool,
    path: &'a Path,
    file: File,
    model: Model,
    /// The job occupying the pool's only thread, and what ends it.
    blocker: Option<(mpsc::Sender<()>, BlockingTask<()>)>,
}

impl Driver<'_> {
    /// Runs `op` and checks it against the model.
    async fn step(&mut self, op: &Op) -> Result<(), String> {
        match op {
            Op::Block => self.block().await?,
            Op::Release => self.release().await,
            Op::GiveUp { op, polls, spin } => self.give_up(op, *polls, *spin).await?,
            Op::GiveUpInherent { op, polls } => self.give_up_inherent(op, *polls).await?,
            _ => {
                self.release().await;
                let want = self.model.apply(op);
                let got = call(&mut self.file, op).await;
                self.expect(got, want, "")?;
            }
        }
        self.check_disk()
    }

    fn expect(&self, got: Out, want: Out, note: &str) -> Result<(), String> {
        if got == want {
            return Ok(());
        }
        Err(format!(
            "the file returned {got:?}, the model says {want:?}{note}"
        ))
    }

    /// The file on disk holds the model's content, once every job issued has run.
    fn check_disk(&self) -> Result<(), String> {
        if !self.model.all_ran() {
            return Ok(());
        }
        let disk = std::fs::read(self.path).map_err(|err| format!("read the file: {err}"))?;
        if disk != self.model.content {
            return Err(format!(
                "the file on disk holds {}, the model {}",
                Shown(&disk),
                Shown(&self.model.content)
            ));
        }
        Ok(())
    }

    /// A job in flight that may or may not have run is made to run (a `metadata`
    /// call, checked like a `Len`), so the next first poll's path is known.
    async fn make_job_run(&mut self) -> Result<(), String> {
        if self.model.job.is_some() && self.model.state == JobState::Unknown {
            let want = self.model.apply(&Op::Len);
            let got = call(&mut self.file, &Op::Len).await;
            self.expect(
                got,
                want,
                " (the metadata call that lets the job in flight run)",
            )?;
        }
        Ok(())
    }

    async fn block(&mut self) -> Result<(), String> {
        if self.blocker.is_none() {
            self.make_job_run().await?;
            self.blocker = Some(common::occupy(self.pool));
        }
        Ok(())
    }

    async fn release(&mut self) {
        if let Some((release, blocker)) = self.blocker.take() {
            let _ = release.send(());
            blocker.await;
            if self.model.state == JobState::Queued {
                self.model.state = JobState::Unknown;
            }
        }
    }

    async fn give_up(&mut self, op: &TraitOp, polls: u8, spin: u8) -> Result<(), String> {
        if polls == 0 {
            // Never polled: nothing may happen.
            let unpolled = poll_then_drop(trait_call(&mut self.file, op), 0, 0, false)?;
            assert!(unpolled.is_none());
            return Ok(());
        }
        let blocked = self.blocker.is_some();
        if !blocked {
            self.make_job_run().await?;
        }
        let begin = self.model.begin(op, blocked);
        let polled = poll_then_drop(trait_call(&mut self.file, op), polls, spin, !blocked)?;
        match (begin, polled) {
            (Begin::Ready(want), Some((got, 1))) => self.expect(got, want, ""),
            (Begin::Ready(want), Some((got, poll))) => Err(format!(
                "Ready({got:?}) at poll {poll}; the model says the first poll is Ready({want:?})"
            )),
            (Begin::Ready(want), None) => Err(format!(
                "Pending after {polls} polls; the model says the first poll is Ready({want:?})"
            )),
            (Begin::Queued | Begin::Waits, None) => Ok(()),
            (begin, Some((got, poll))) if blocked => Err(format!(
                "Ready({got:?}) at poll {poll} while the pool is blocked; the model says \
                 {begin:?}"
            )),
            (Begin::Queued, Some((got, _))) => {
                let want = self.model.resume(op);
                self.expect(got, want, " (when its job finished)")
            }
            (Begin::Waits, Some(_)) => unreachable!("only a blocked pool makes an op wait"),
        }
    }

    async fn give_up_inherent(&mut self, op: &Op, polls: u8) -> Result<(), String> {
        if polls == 0 {
            let unpolled = poll_then_drop(call(&mut self.file, op), 0, 0, false)?;
            assert!(unpolled.is_none());
            return Ok(());
        }
        self.block().await?;
        let begin = self.model.begin_inherent(op);
        let polled = poll_then_drop(call(&mut self.file, op), polls, 0, false)?;
        match (begin, polled) {
            (Some(want), Some((got, 1))) => self.expect(got, want, ""),
            (None, None) => Ok(()),
            (begin, polled) => Err(format!(
                "the first {polls} polls with the pool blocked gave {polled:?}; the model \
                 says the first is {}",
                match begin {
                    Some(want) => format!("Ready({want:?})"),
                    None => "Pending".to_string(),
                }
            )),
        }
    }

    /// Closes the file as `close` says; then the disk must hold the model's content.
    async fn finish(mut self, close: Close) -> Result<(), String> {
        self.release().await;
        let want = self.model.close();
        let Driver {
            mut file,
            path,
            model,
            ..
        } = self;
        let got = match close {
            Close::Futures => out(FWrite::close(&mut file).await, |()| Out::Done),
            Close::Tokio => out(TWrite::shutdown(&mut file).await, |()| Out::Done),
            Close::Inherent => out(file.close().await, |()| Out::Done),
        };
        if got != want {
            return Err(format!("close returned {got:?}, the model says {want:?}"));
        }
        let disk = std::fs::read(path).map_err(|err| format!("read the file: {err}"))?;
        if disk != model.content {
            return Err(format!(
                "after the close the file holds {}, the model {}",
                Shown(&disk),
                Shown(&model.content)
            ));
        }
        Ok(())
    }
}

/// Runs `case` on `pool`; `Err` names the op that went wrong and the model's state.
async fn drive(pool: &Pool, path: &Path, case: &Case) -> Result<(), String> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .pool(pool)
        .open(path)
        .await
        .map_err(|err| format!("open: {err}"))?;
    let mut driver = Driver {
        pool,
        path,
        file,
        model: Model::new(initial(case.initial)),
        blocker: None,
    };
    for (i, op) in case.ops.iter().enumerate() {
        let before = format!("{:?}", driver.model);
        if let Err(err) = driver.step(op).await {
            return Err(format!(
                "op {i} {op:?}: {err}\n  model before: {before}\n  model after:  {:?}",
                driver.model
            ));
        }
    }
    driver
        .finish(case.close)
        .await
        .map_err(|err| format!("end: {err}"))
}

fn run(case: &Case) -> Result<(), TestCaseError> {
    let (_guard, dir) = common::tempdir();
    let path = dir.join("data.bin");
    std::fs::write(&path, initial(case.initial)).expect("write the initial content");
    let pool = common::pool(1, 2);
    let result = match case.executor {
        Executor::Futures => futures::executor::block_on(drive(&pool, &path, case)),
        Executor::Aopen => aopen::block_on(drive(&pool, &path, case)),
        Executor::TokioCurrentThread => tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
            .block_on(drive(&pool, &path, case)),
    };
    // Also after a failure: the blocker and the file were dropped, so it ends.
    let shutdown = pool.shutdown(SHUTDOWN);
    result.map_err(TestCaseError::fail)?;
    shutdown.map_err(|err| TestCaseError::fail(format!("pool shutdown: {err}")))
}

// ---------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------

/// `PROPTEST_CASES` cases, else [`DEFAULT_CASES`]; failures are printed (the shrunk
/// case included), not persisted.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn read_len() -> impl Strategy<Value = usize> {
    prop_oneof![6 => 0..=MAX_SMALL, 2 => MAX_SMALL..=MAX_BIG]
}

fn data() -> impl Strategy<Value = Data> {
    prop_oneof![
        8 => vec(any::<u8>(), 0..=MAX_SMALL),
        1 => vec(any::<u8>(), MAX_SMALL..=MAX_BIG_WRITE),
    ]
    .prop_map(Data)
}

fn seek_from() -> impl Strategy<Value = SeekFrom> {
    prop_oneof![
        3 => (0..=MAX_INITIAL as u64).prop_map(SeekFrom::Start),
        1 => (0..=MAX_POS).prop_map(SeekFrom::Start),
        3 => (-MAX_DELTA..=MAX_DELTA).prop_map(SeekFrom::Current),
        // Mostly before the start: a failed seek.
        1 => (-2 * MAX_POS as i64..=0).prop_map(SeekFrom::Current),
        1 => (-MAX_DELTA..=MAX_DELTA).prop_map(SeekFrom::End),
    ]
}

fn trait_op() -> impl Strategy<Value = TraitOp> {
    prop_oneof![
        4 => read_len().prop_map(TraitOp::FRead),
        3 => read_len().prop_map(TraitOp::TRead),
        3 => data().prop_map(TraitOp::FWrite),
        2 => data().prop_map(TraitOp::TWrite),
        2 => seek_from().prop_map(TraitOp::FSeek),
        2 => seek_from().prop_map(TraitOp::TSeek),
        1 => Just(TraitOp::FFlush),
        1 => Just(TraitOp::TFlush),
    ]
}

fn give_up(op: impl Strategy<Value = TraitOp>) -> impl Strategy<Value = Op> {
    (op, 0..=MAX_POLLS, 0..=MAX_SPIN).prop_map(|(op, polls, spin)| Op::GiveUp { op, polls, spin })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => trait_op().prop_map(Op::Await),
        6 => give_up(trait_op()),
        3 => give_up_inherent(),
        3 => Just(Op::Block),
        1 => Just(Op::Release),
        2 => read_len().prop_map(Op::Read),
        1 => read_len().prop_map(Op::ReadExact),
        1 => Just(Op::ReadToEnd),
        2 => data().prop_map(Op::Write),
        1 => data().prop_map(Op::WriteAll),
        2 => seek_from().prop_map(Op::Seek),
        1 => (0..=MAX_POS).prop_map(Op::SetLen),
        1 => (read_len(), 0..=MAX_POS).prop_map(|(len, offset)| Op::ReadAt { len, offset }),
        1 => (data(), 0..=MAX_POS).prop_map(|(data, offset)| Op::WriteAt { data, offset }),
        1 => Just(Op::Len),
    ]
}

/// An inherent call given up with the pool blocked.
fn give_up_inherent() -> impl Strategy<Value = Op> {
    let op = prop_oneof![
        3 => read_len().prop_map(Op::Read),
        2 => read_len().prop_map(Op::ReadExact),
        1 => Just(Op::ReadToEnd),
        3 => data().prop_map(Op::Write),
        2 => data().prop_map(Op::WriteAll),
        3 => seek_from().prop_map(Op::Seek),
        1 => (0..=MAX_POS).prop_map(Op::SetLen),
        1 => (read_len(), 0..=MAX_POS).prop_map(|(len, offset)| Op::ReadAt { len, offset }),
        1 => (data(), 0..=MAX_POS).prop_map(|(data, offset)| Op::WriteAt { data, offset }),
        1 => Just(Op::Len),
    ];
    (op, 0..=MAX_POLLS).prop_map(|(op, polls)| Op::GiveUpInherent {
        op: Box::new(op),
        polls,
    })
}

/// A read of any form with a small buffer.
fn small_read() -> impl Strategy<Value = Op> {
    let len = 0..=MAX_SMALL;
    prop_oneof![
        len.clone().prop_map(|len| Op::Await(TraitOp::FRead(len))),
        len.clone().prop_map(|len| Op::Await(TraitOp::TRead(len))),
        len.clone().prop_map(Op::Read),
        len.prop_map(Op::ReadExact),
    ]
}

/// One op; or a give-up (mostly of a trait read with a big buffer; maybe with the pool
/// blocked, released by what follows unless that is a give-up too) and the next ops,
/// mostly starting with a small read: kept bytes, and give-ups that wait on others.
fn chunk() -> impl Strategy<Value = Vec<Op>> {
    let big_read = prop_oneof![
        (MAX_SMALL..=MAX_BIG).prop_map(TraitOp::FRead),
        (MAX_SMALL..=MAX_BIG).prop_map(TraitOp::TRead),
    ];
    let first = prop_oneof![3 => big_read, 2 => trait_op()];
    let next = prop_oneof![
        4 => small_read(),
        2 => give_up(trait_op()),
        2 => give_up_inherent(),
        1 => op(),
    ];
    prop_oneof![
        8 => op().prop_map(|op| vec![op]),
        3 => (any::<bool>(), give_up(first), next, vec(op(), 0..=2)).prop_map(
            |(blocked, give_up, next, then)| {
                let mut ops = Vec::new();
                if blocked {
                    ops.push(Op::Block);
                }
                ops.push(give_up);
                ops.push(next);
                ops.extend(then);
                ops
            }
        ),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let executor = prop_oneof![
        2 => Just(Executor::Futures),
        1 => Just(Executor::Aopen),
        1 => Just(Executor::TokioCurrentThread),
    ];
    let initial = prop_oneof![1 => 0..=MAX_SMALL, 4 => MAX_SMALL..=MAX_INITIAL];
    let close = prop_oneof![
        Just(Close::Futures),
        Just(Close::Tokio),
        Just(Close::Inherent)
    ];
    (executor, initial, vec(chunk(), 0..=MAX_CHUNKS), close).prop_map(
        |(executor, initial, chunks, close)| Case {
            executor,
            initial,
            ops: chunks.into_iter().flatten().collect(),
            close,
        },
    )
}

proptest! {
    #![proptest_config(config())]

    /// Every result, every position and the file's content follow the model.
    #[test]
    fn poll_io_follows_the_model(case in case()) {
        common::within(CASE_DEADLINE, move || run(&case))?;
    }
}
