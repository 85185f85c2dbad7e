//! Integration tests of the Qdrant connector: the embedded backend always (a fresh temporary
//! directory per test), a live Qdrant server when `KYRO_QDRANT_URL` is set, and the built cdylib
//! loaded through the SDK's loader.

#![expect(
    clippy::unwrap_used,
    reason = "a test helper that meets an unexpected error should fail the test at that line"
)]

mod capabilities;
mod common;
mod filters;
mod isolation;
mod limits;
mod live_server;
mod plugin;
mod redaction;
mod reopen;
mod writes;
