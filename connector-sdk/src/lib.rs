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
//! # A minimal connector
//!
//! ```
//! use kyro_connector_sdk::{
//!     CapabilityManifest, Connector, ConnectorConfig, ConnectorHealth, ConnectorPlugin, HostContext,
//!     Operation, PluginInfo, Result, Scope, SearchRequest, SearchResponse,
//! };
//!
//! /// A store that never holds anything.
//! struct EmptyStore;
//!
//! impl Connector for EmptyStore {
//!     fn describe(&self) -> CapabilityManifest {
//!         CapabilityManifest::closed().with_operation(Operation::Search)
//!     }
//!
//!     fn search(&self, _scope: &Scope, _request: &SearchRequest) -> Result<SearchResponse> {
//!         Ok(SearchResponse { hits: Vec::new(), shortfall: None })
//!     }
//!
//!     fn health(&self) -> Result<ConnectorHealth> {
//!         Ok(ConnectorHealth::healthy("empty 1.0"))
//!     }
//! }
//!
//! impl ConnectorPlugin for EmptyStore {
//!     fn plugin_info() -> PluginInfo {
//!         PluginInfo::new("empty", "1.0.0", "a store that never holds anything", EmptyStore.describe())
//!     }
//!
//!     fn open(_config: &ConnectorConfig, _host: HostContext) -> Result<Self> {
//!         Ok(EmptyStore)
//!     }
//! }
//!
//! // In the connector's lib.rs (crate-type = ["cdylib", "rlib"]):
//! kyro_connector_sdk::export_connector!(EmptyStore);
//! # fn main() {}
//! ```

#![deny(missing_docs)]

pub mod abi;
mod config;
mod connector;
mod contract;
mod manifest;
pub mod runtime;
mod secret;
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
pub use store_config::VectorStoreConfig;

/// The version of this SDK, as reported by plugins built with it.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Result of a connector operation.
pub type Result<T, E = ConnectorError> = std::result::Result<T, E>;
