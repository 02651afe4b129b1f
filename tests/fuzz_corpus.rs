//! Replays the checked-in fuzz corpus (`fuzz/corpus/<target>/*`) on stable, through
//! the same code the cargo-fuzz targets run (`tests/support/opseq.rs`), so the
//! corpus keeps guarding against regressions without nightly or cargo-fuzz.
//!
//! The `seed-*` files are written by the ignored test `regenerate_seed_corpus`
//! (`cargo test --test fuzz_corpus -- --ignored`); other files are inputs the fuzzer
//! found and someone copied over from a `fuzz/run-smoke` scratch directory.

#[path = "support/opseq.rs"]
mod opseq;

use std::path::{Path, PathBuf};

use opseq::{Config, Op, Seek};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// Every file of a target's corpus, sorted by name.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("read {}: {err}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "{}: only {} corpus files",
        dir.display(),
        files.len()
    );
    files
}

/// Runs `check` on every corpus file, naming the file if it fails.
fn replay(target: &str, check: impl Fn(&[u8])) {
    let files = corpus(target);
    for (name, data) in &files {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(data)));
        if let Err(panic) = result {
            eprintln!("fuzz/corpus/{target}/{name} failed ({} bytes)", data.len());
            std::panic::resume_unwind(panic);
        }
    }
    eprintln!("{target}: {} corpus files replayed", files.len());
}

/// Every `op_sequence` input, on fake descriptors and on real files.
#[test]
fn op_sequence_corpus_replays_clean() {
    replay("op_sequence", |data| opseq::run_bytes(data, true));
}

#[test]
fn parse_corpus_replays_clean() {
    replay("parse", opseq::check_parse);
}

/// Replays one file on stable, printing the ops it decodes to:
/// `AOPEN_REPLAY=fuzz/artifacts/op_sequence/crash-... cargo test --test fuzz_corpus
/// replay_one -- --nocapture` (a `parse` input: put `parse` in the path). Does
/// nothing without the variable.
#[test]
fn replay_one() {
    let Some(path) = std::env::var_os("AOPEN_REPLAY") else {
        return;
    };
    let path = PathBuf::from(path);
    let data = std::fs::read(&path).unwrap();
    if path.to_string_lossy().contains("parse") {
        eprintln!("{data:?}");
        opseq::check_parse(&data);
    } else {
        let (config, ops) = opseq::decode(&data);
        eprintln!("{config:?}");
        for op in &ops {
            eprintln!("  {op:?}");
        }
        opseq::run_bytes(&data, true);
    }
}

// ---------------------------------------------------------------------------------
// Seed corpus
// ---------------------------------------------------------------------------------

fn open(slot: u8, path: u8, truncate: bool) -> Op {
    Op::Open {
        slot,
        path,
        truncate,
    }
}

fn write(slot: u8, data: &[u8]) -> Op {
    Op::Write {
        slot,
        data: data.to_vec(),
    }
}

fn read(slot: u8, len: u16) -> Op {
    Op::Read { slot, len }
}

fn seek(slot: u8, to: Seek) -> Op {
    Op::Seek { slot, to }
}

fn dropped(op: Op, polls: u8, spin: u8) -> Op {
    Op::PollThenDrop {
        op: Box::new(op),
        polls,
        spin,
    }
}

/// A deterministic pseudo-random sequence (xorshift), for the seed corpus.
fn random_ops(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    let mut bytes = vec![0x80 | (seed % 3) as u8];
    for _ in 0..len * 6 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.push((state >> 24) as u8);
    }
    bytes
}

fn op_sequence_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let real = |threads| Config {
        threads,
        real: true,
    };
    let fake = |threads| Config {
        threads,
        real: false,
    };
    let mut seeds = vec![
        ("empty", Vec::new()),
        (
            "write-seek-read-close",
            opseq::encode(
                &real(2),
                &[
                    open(0, 0, true),
                    write(0, b"hello world"),
                    seek(0, Seek::Start(6)),
                    read(0, 16),
                    seek(0, Seek::End(-5)),
                    read(0, 3),
                    Op::Close { slot: 0 },
                ],
            ),
        ),
        (
            "clone-shares-cursor",
            opseq::encode(
                &real(3),
                &[
                    open(0, 1, true),
                    write(0, b"abcdef"),
                    Op::TryClone { slot: 0, dst: 1 },
                    seek(1, Seek::Start(2)),
                    read(0, 2),
                    write(1, b"XY"),
                    seek(0, Seek::Current(-4)),
                    read(1, 10),
                    Op::DropFile { slot: 0 },
                    read(1, 4),
                    Op::Close { slot: 1 },
                ],
            ),
        ),
        (
            "dropped-write-then-truncate",
            opseq::encode(
                &real(4),
                &[
                    open(0, 2, true),
                    write(0, &[7; 40]),
                    dropped(write(0, &[9; 64]), 1, 3),
                    dropped(seek(0, Seek::Start(3)), 2, 0),
                    read(0, 100),
                    Op::DropFile { slot: 0 },
                    open(1, 2, true),
                    write(1, b"fresh"),
                    seek(1, Seek::Start(0)),
                    read(1, 5),
                ],
            ),
        ),
        (
            "dropped-opens",
            opseq::encode(
                &real(2),
                &[
                    dropped(open(0, 0, false), 0, 0),
                    dropped(open(0, 1, true), 1, 0),
                    dropped(open(0, 2, false), 2, 5),
                    dropped(open(0, 0, true), 3, 15),
                    open(1, 0, false),
                    Op::ReadDirPartial { take: 4 },
                ],
            ),
        ),
        (
            "dropped-close-and-clone",
            opseq::encode(
                &real(3),
                &[
                    open(0, 0, false),
                    open(1, 1, false),
                    open(2, 2, false),
                    dropped(Op::TryClone { slot: 0, dst: 1 }, 1, 2),
                    dropped(Op::Close { slot: 1 }, 0, 0),
                    dropped(Op::Close { slot: 2 }, 2, 1),
                    Op::TryClone { slot: 0, dst: 0 },
                    Op::Close { slot: 0 },
                ],
            ),
        ),
        (
            "set-len-and-seek-end",
            opseq::encode(
                &real(2),
                &[
                    open(0, 0, true),
                    Op::SetLen { slot: 0, len: 300 },
                    seek(0, Seek::End(-10)),
                    read(0, 20),
                    Op::SetLen { slot: 0, len: 5 },
                    read(0, 20),
                    seek(0, Seek::Current(-128)),
                    dropped(Op::SetLen { slot: 0, len: 1 }, 1, 1),
                ],
            ),
        ),
        (
            "negative-seek",
            opseq::encode(
                &real(2),
                &[
                    open(0, 1, true),
                    seek(0, Seek::End(-1)),
                    seek(0, Seek::Current(-1)),
                    write(0, b"x"),
                ],
            ),
        ),
        (
            "read-dir-pressure",
            opseq::encode(
                &real(2),
                &[
                    open(0, 0, false),
                    open(1, 1, false),
                    open(2, 2, false),
                    Op::ReadDirPartial { take: 1 },
                    dropped(Op::ReadDirPartial { take: 3 }, 1, 0),
                    dropped(Op::ReadDirPartial { take: 2 }, 3, 3),
                    Op::TryClone { slot: 1, dst: 2 },
                    Op::ReadDirPartial { take: 0 },
                ],
            ),
        ),
        (
            "fake-cancel-everything",
            opseq::encode(
                &fake(4),
                &[
                    open(0, 0, false),
                    dropped(read(0, 1), 0, 0),
                    dropped(read(0, 2), 1, 0),
                    dropped(write(0, b"w"), 2, 1),
                    dropped(seek(0, Seek::Start(1)), 3, 2),
                    read(0, 3),
                    dropped(Op::Close { slot: 0 }, 1, 0),
                    open(1, 2, true),
                    open(2, 2, false),
                    dropped(Op::TryClone { slot: 2, dst: 0 }, 2, 4),
                ],
            ),
        ),
    ];
    for seed in 1..=10u64 {
        let name: &'static str = Box::leak(format!("random-{seed}").into_boxed_str());
        seeds.push((name, random_ops(seed * 0x9e37_79b9, 12 + seed as usize * 3)));
    }
    seeds
}

fn parse_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let with = |head: u8, rest: &[u8]| {
        let mut bytes = vec![head];
        bytes.extend_from_slice(rest);
        bytes
    };
    vec![
        ("empty", Vec::new()),
        ("threads-12", with(0, b" 12 ")),
        ("budget-zero", with(2, b"0")),
        ("plus-seven", with(0, b"+7")),
        ("minus-three", with(2, b"-3")),
        ("overflow", with(0, b"18446744073709551616")),
        ("usize-max", with(0, b"18446744073709551615")),
        ("custom-name", with(1, b"AOPEN_X=abc")),
        ("name-with-nul", with(1, b"NA\0ME=5")),
        ("path-with-nul", with(0, b"a\0b")),
        ("root", with(0, b"/")),
        ("dot", with(0, b".")),
        ("not-utf8", with(0, &[0xff, 0xfe, b'1'])),
        ("long-path", with(0, &[b'a'; 5000])),
        ("deep-missing", with(0, b"/nonexistent/aopen/fuzz")),
        (
            "builder-zero-threads",
            with(0x10, &[0, 4, 0, 0, 0, 0, 0, 0, 0, 10, 0, b'n']),
        ),
        (
            "builder-ok",
            with(0x10, &[3, 4, 0, 0, 0, 0, 0, 0, 0, 10, 0, b'n']),
        ),
        (
            "builder-nul-name",
            with(0x10, &[5, 9, 0, 0, 0, 0, 0, 0, 0, 1, 0, b'a', 0]),
        ),
        (
            "builder-huge-budget",
            with(0x08, &[7, 255, 255, 255, 255, 255, 255, 255, 255]),
        ),
        (
            "builder-budget-one",
            with(0x04, &[1, 1, 0, 0, 0, 0, 0, 0, 0]),
        ),
        ("whitespace", with(2, b"\t 8\n")),
        ("unicode-space", with(0, "\u{a0}9\u{3000}".as_bytes())),
    ]
}

/// Rewrites the `seed-*` files of both corpora. Run by hand after changing the
/// encoding: `cargo test --test fuzz_corpus -- --ignored`.
#[test]
#[ignore]
fn regenerate_seed_corpus() {
    for (target, seeds) in [
        ("op_sequence", op_sequence_seeds()),
        ("parse", parse_seeds()),
    ] {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("seed-")
            {
                std::fs::remove_file(path).unwrap();
            }
        }
        for (name, bytes) in seeds {
            std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
        }
    }
}

/// The seeds decode to what they were built from (the encoding did not drift).
#[test]
fn seed_encoding_round_trips() {
    for (name, bytes) in op_sequence_seeds() {
        if name == "empty" || name.starts_with("random-") {
            continue;
        }
        let (config, ops) = opseq::decode(&bytes);
        assert_eq!(opseq::encode(&config, &ops), bytes, "seed {name}");
    }
}
