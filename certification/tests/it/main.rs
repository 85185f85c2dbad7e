//! Certification as a plugin author runs it in their own `cargo test`: a connector type and its
//! configuration in, the report out, without a cdylib or the `kyro` binary.

#![expect(
    clippy::unwrap_used,
    reason = "a test that meets an unexpected error should fail at that line"
)]

mod harness;
mod library;
