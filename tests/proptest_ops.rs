//! Property tests: random sequences of file operations (open, read, write, seek,
//! set_len, try_clone, close, drop, cancellation at any await point, partial
//! directory listings) against a model, on real files and on the crate's lanes with a
//! counting fake descriptor. The driver and the invariants it checks are in
//! `tests/support/opseq.rs` (shared with the fuzz targets and the corpus replay).
//!
//! Each backend runs `PROPTEST_CASES` cases (default 2,048 each, sized so this file
//! takes well under a minute in debug on two cores). For 100× more, locally:
//!
//! ```text
//! PROPTEST_CASES=200000 cargo test --release --test proptest_ops
//! ```

#[path = "support/opseq.rs"]
mod opseq;

use opseq::{Config, Op, Seek, MAX_POLLS, MAX_POS, MAX_READ, MAX_SPIN, MAX_TAKE, MAX_WRITE};
use proptest::collection::vec;
use proptest::prelude::*;

/// `PROPTEST_CASES` cases, else `default`; failures are printed (minimal input
/// included), not persisted.
fn config_with(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Slot 0 most, so most ops find a live file.
fn slot() -> impl Strategy<Value = u8> {
    prop_oneof![5 => Just(0u8), 3 => Just(1u8), 2 => Just(2u8)]
}

fn seek() -> impl Strategy<Value = Seek> {
    prop_oneof![
        4 => (0..=64u16).prop_map(Seek::Start),
        1 => (0..=MAX_POS).prop_map(Seek::Start),
        2 => any::<i8>().prop_map(Seek::End),
        2 => any::<i8>().prop_map(Seek::Current),
    ]
}

/// Every op but `DropFile` and `PollThenDrop`: what a `PollThenDrop` may wrap.
fn droppable_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (slot(), 0..opseq::PATHS as u8, any::<bool>())
            .prop_map(|(slot, path, truncate)| Op::Open { slot, path, truncate }),
        5 => (slot(), 0..=MAX_READ).prop_map(|(slot, len)| Op::Read { slot, len }),
        5 => (slot(), vec(any::<u8>(), 1..=MAX_WRITE))
            .prop_map(|(slot, data)| Op::Write { slot, data }),
        4 => (slot(), seek()).prop_map(|(slot, to)| Op::Seek { slot, to }),
        1 => (slot(), 0..=MAX_POS).prop_map(|(slot, len)| Op::SetLen { slot, len }),
        1 => (slot(), slot()).prop_map(|(slot, dst)| Op::TryClone { slot, dst }),
        1 => slot().prop_map(|slot| Op::Close { slot }),
        1 => (0..=MAX_TAKE).prop_map(|take| Op::ReadDirPartial { take }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => droppable_op(),
        1 => slot().prop_map(|slot| Op::DropFile { slot }),
        3 => (droppable_op(), 0..=MAX_POLLS, 0..=MAX_SPIN).prop_map(|(op, polls, spin)| {
            Op::PollThenDrop { op: Box::new(op), polls, spin }
        }),
    ]
}

fn config() -> impl Strategy<Value = Config> {
    (2..=4usize, any::<bool>()).prop_map(|(threads, real)| Config { threads, real })
}

/// A single op, or a rewind-and-read (so reads see what was written).
fn chunk() -> impl Strategy<Value = Vec<Op>> {
    prop_oneof![
        8 => op().prop_map(|op| vec![op]),
        2 => (slot(), 0..=MAX_READ).prop_map(|(slot, len)| {
            vec![Op::Seek { slot, to: Seek::Start(0) }, Op::Read { slot, len }]
        }),
    ]
}

/// Sequences start by opening slots 0 and 1 (mostly on one path, so one slot's
/// writes are read through the other), so most ops have a file to work on.
fn ops() -> impl Strategy<Value = Vec<Op>> {
    let second_path = prop_oneof![2 => Just(None), 1 => (0..opseq::PATHS as u8).prop_map(Some)];
    (0..opseq::PATHS as u8, second_path, vec(chunk(), 0..32)).prop_map(|(first, second, chunks)| {
        let open = |slot, path| Op::Open {
            slot,
            path,
            truncate: false,
        };
        let mut ops = vec![open(0, first), open(1, second.unwrap_or(first))];
        ops.extend(chunks.into_iter().flatten());
        ops
    })
}

proptest! {
    #![proptest_config(config_with(2048))]

    /// Real files: contents and cursors match the model where it is certain; no
    /// descriptor into the test directory outlives the run; every permit comes back.
    #[test]
    fn real_files_follow_the_model(config in config(), ops in ops()) {
        opseq::run_real(&config, &ops);
    }

    /// Fake descriptors in the crate's lanes: each is closed exactly once, after its
    /// open and its operations, which never overlap and run in issue order; the
    /// budget is never exceeded and every permit comes back.
    #[test]
    fn fake_descriptors_keep_the_lifecycle(config in config(), ops in ops()) {
        opseq::run_fake(&config, &ops);
    }
}

proptest! {
    #![proptest_config(config_with(256))]

    /// The fuzz encoding is faithful, so corpus seeds mean what they were built as.
    #[test]
    fn encode_then_decode_is_identity(config in config(), ops in vec(op(), 0..40)) {
        let bytes = opseq::encode(&config, &ops);
        let (decoded_config, decoded_ops) = opseq::decode(&bytes);
        prop_assert_eq!(decoded_config, config);
        prop_assert_eq!(decoded_ops, ops);
    }

    /// `parse_env_value` agrees with a hand-written oracle on number-like text.
    #[test]
    fn env_values_parse_like_the_oracle(text in "[ \\t+\\-]{0,2}[0-9a-z]{0,22}[ \\n]{0,2}") {
        opseq::check_env_value("AOPEN_MAX_THREADS", &text);
    }
}
