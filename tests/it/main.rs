//! KyroDB's end-to-end tests. Each module drives real built artifacts: plugin cdylibs loaded from
//! disk, and the `kyro` binary as a process.

#![expect(
    clippy::unwrap_used,
    reason = "a test helper that meets an unexpected error should fail the test at that line"
)]

mod attestation;
mod authoring;
mod certification;
mod cli;
mod contract;
mod evidence;
mod examples;
mod init;
mod output;
mod pgvector;
mod plugin_boundary;
mod qdrant;
mod quickstart;
mod replay;
mod runtime;
mod scaffold;
mod sdk;
mod tidy;
