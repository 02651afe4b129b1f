//! Fuzz target: bytes → `aopen::pool::parse_env_value`, `metadata` of a path made of
//! arbitrary bytes (NUL included), and `Pool::builder()` with arbitrary settings.
//! None may panic; each must give the right value or an `io::Error` of the right kind
//! that names what was wrong (see `check_parse` in `tests/support/opseq.rs`).
//!
//! The checked-in corpus is replayed by `tests/fuzz_corpus.rs` on stable.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/opseq.rs"]
mod opseq;

fuzz_target!(|data: &[u8]| {
    opseq::check_parse(data);
});
