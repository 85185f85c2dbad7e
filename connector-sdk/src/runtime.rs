//! A private async runtime for connectors whose driver is async (sqlx, gRPC clients).
//!
//! The host calls connectors synchronously from its own threads; nothing of the host's tokio
//! crosses the boundary. A connector that needs async IO builds its own runtime when it opens and
//! blocks on it in each call. This module only documents the pattern; it adds no dependency.
//!
//! ```text
//! struct MyConnector { runtime: tokio::runtime::Runtime, client: Client }
//!
//! impl Connector for MyConnector {
//!     fn search(&self, scope: &Scope, request: &SearchRequest) -> Result<SearchResponse> {
//!         self.runtime.block_on(self.client.search(scope, request))
//!     }
//! }
//! ```
//!
//! `block_on` panics when called from inside another tokio runtime of the same copy of tokio.
//! Loaded as a cdylib, a connector has its own copy, so the host's runtime is invisible to it; linked
//! in-process, the host calls it from plain worker threads (see `guard`), never from async tasks.
