//! The KyroDB connector SDK: everything a plugin author needs to put a store behind KyroDB.
//!
//! A connector implements [`Connector`] once (and [`ConnectorPlugin`] to be opened from a
//! configuration), then turns itself into a loadable cdylib with [`export_connector!`]. The host
//! loads that file, checks its ABI version before calling anything, and drives it through the same
//! [`Connector`] trait it uses for a connector linked in-process.
//!
//! What the SDK guarantees at the boundary:
//! - every exported call catches panics and returns them as [`ErrorKind::Panicked`] errors;
//! - only plain `#[repr(C)]` values and versioned byte payloads cross it, never a Rust trait
//!   object, an allocator-owned type from either side, or an async runtime handle;
//! - a connector owns its own async runtime, if it needs one (see [`runtime`]).
//!
//! What it deliberately does not do: decide freshness, merge results across stores, or trust what
//! a connector returns. Those are the host's jobs.
//!
//! # Building on the contract
//!
//! The rules certification holds every connector to are also functions to build on:
//! [`VectorStoreConfig`] parses the keys every vector store shares (unknown keys refused) and
//! turns them into the [`CapabilityManifest`]; [`CapabilityManifest::check_search`],
//! [`check_fetch`](CapabilityManifest::check_fetch) and
//! [`check_document`](CapabilityManifest::check_document) refuse what the manifest does not allow;
//! [`filter_matches`] and [`Distance::similarity`] are the filter and score semantics; and
//! [`SearchResults`] sorts, caps and reports the shortfall of a search answer.
//!
//! The authoring guide (`docs/connectors.md` in the KyroDB repository) says what a store must
//! guarantee for each ownership mode, how secrets must be typed for the redaction checks to
//! apply, what host startup does to the live store, and how to certify in CI.
//!
//! # A complete minimal connector
//!
//! This is `examples/minimal.rs`, which the KyroDB repository's tests certify; as a plugin it is a
//! crate's `src/lib.rs` with `crate-type = ["cdylib", "rlib"]`.
//!
#![doc = concat!("```rust\n", include_str!("../examples/minimal.rs"), "```")]
#![deny(missing_docs)]

pub mod abi;
mod config;
mod connector;
mod contract;
mod manifest;
pub mod runtime;
mod secret;
mod setup;
mod store_config;

#[cfg(feature = "loader")]
pub mod guard;
#[cfg(feature = "loader")]
pub mod loader;
#[cfg(feature = "testing")]
pub mod testing;

#[cfg(test)]
mod tests;

pub use config::{ConnectorConfig, HostContext, LogLevel};
pub use connector::{
    CERTIFICATION_TENANT_PREFIX, Connector, ConnectorHealth, ConnectorPlugin, HealthStatus,
    PluginInfo, SearchRequest, SearchResponse, Shortfall, ShortfallReason, document_embedding,
    ensure_certification_scope,
};
pub use contract::{SearchResults, filter_matches};
pub use kyro_core::{
    ConnectorError, Document, DocumentId, Embedding, ErrorKind, FilterExpr, FilterKey, FilterValue,
    Metadata, MutationAck, MutationOutcome, OwnershipMode, Revision, RuntimeFilter, Scope,
    SearchHit, SnapshotVersion, StoredDocument, ValidationError, Watermark,
};
pub use manifest::{
    CapabilityManifest, Caps, Distance, FilterableKeys, Operation, VectorSpec, WatermarkKind,
};
pub use secret::{Secret, SecretSource};
pub use setup::{SetupFinding, SetupFindings, SetupFindingsExt};
pub use store_config::VectorStoreConfig;

/// The version of this SDK, as reported by plugins built with it.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Result of a connector operation.
pub type Result<T, E = ConnectorError> = std::result::Result<T, E>;
