//! Fuzz target: bytes → a sequence of file operations (see
//! `tests/support/opseq.rs`), run on fake descriptors in the crate's lanes (always)
//! and on real files (when the config byte's top bit is set). Panics on any broken
//! rule: a descriptor not closed exactly once, a close before an operation, ops out
//! of order or overlapping, the budget exceeded, a permit or descriptor leaked, a
//! read that disagrees with the model, a shutdown that times out.
//!
//! The checked-in corpus is replayed by `tests/fuzz_corpus.rs` on stable.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/opseq.rs"]
mod opseq;

fuzz_target!(|data: &[u8]| {
    opseq::run_bytes(data, false);
});
