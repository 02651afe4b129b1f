//! loom models (see tests/)
