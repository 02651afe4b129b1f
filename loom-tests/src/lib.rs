//! Model checks of aopen's real code under loom.
//!
//! The models live in `tests/models.rs` and only compile with `--cfg loom`; in a
//! normal build this crate is empty. See the README's "Verification" section, or
//! run `loom-tests/run` from the workspace root.
