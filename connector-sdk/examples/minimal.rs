//! A complete minimal connector that certifies: an in-memory store behind KyroDB.
//!
//! As a plugin, this file is a crate's `src/lib.rs` (without `main`) with
//! `crate-type = ["cdylib", "rlib"]`; `kyro certify` then certifies the built library with a store
//! configuration such as `dimension = 8` and `filterable_keys = ["lang"]`.
//!
//! What makes it certifiable: an opened connector declares its vector spec (from configuration),
//! at least one ownership mode and every operation it serves; it can write into the
//! certification's private space (`certification_seed`) and remove it again
//! (`certification_purge`); and every label it reports comes from its own rows.
//! Everything else (`upsert`, `delete`, `watermark`, `snapshot_version`) keeps the trait's default
//! body, which answers `Unsupported`.
//!
//! `event_feed` is the honest mode for a store that KyroDB does not write to: its documents are
//! written by the application's own pipeline, which reports each change to KyroDB as an event.
//! This store is in memory, so here that pipeline is only the certification's seed.

use std::collections::BTreeMap;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use kyro_connector_sdk::{
    CapabilityManifest, Connector, ConnectorConfig, ConnectorError, ConnectorHealth,
    ConnectorPlugin, Document, DocumentId, FilterableKeys, HostContext, Operation, OwnershipMode,
    PluginInfo, Result, Scope, SearchHit, SearchRequest, SearchResponse, SearchResults,
    ShortfallReason, StoredDocument, VectorStoreConfig, ensure_certification_scope, filter_matches,
};

/// What the store backs, whatever its configuration: scoped search and fetch, under event-feed
/// ownership.
fn declared() -> CapabilityManifest {
    CapabilityManifest::closed()
        .with_operation(Operation::Search)
        .with_operation(Operation::Fetch)
        .with_ownership_mode(OwnershipMode::EventFeed)
}

/// One stored document, with the scope and id it was written under.
struct Row {
    document: StoredDocument,
    embedding: Vec<f32>,
}

/// The store: each scope's rows, by id.
pub(crate) struct MinimalStore {
    manifest: CapabilityManifest,
    scopes: RwLock<BTreeMap<Scope, BTreeMap<DocumentId, Row>>>,
}

impl MinimalStore {
    fn read(&self) -> Result<RwLockReadGuard<'_, BTreeMap<Scope, BTreeMap<DocumentId, Row>>>> {
        self.scopes.read().map_err(|_| ConnectorError::internal("store lock poisoned"))
    }

    fn write(&self) -> Result<RwLockWriteGuard<'_, BTreeMap<Scope, BTreeMap<DocumentId, Row>>>> {
        self.scopes.write().map_err(|_| ConnectorError::internal("store lock poisoned"))
    }
}

impl Connector for MinimalStore {
    fn describe(&self) -> CapabilityManifest {
        self.manifest.clone()
    }

    fn search(&self, scope: &Scope, request: &SearchRequest) -> Result<SearchResponse> {
        self.manifest.check_search(request)?;
        let distance = self.manifest.vector_spec()?.distance;
        let mut results = SearchResults::new(request, &self.manifest);
        // The scope selects which rows are read at all: this lookup is the store's query.
        for row in self.read()?.get(scope).into_iter().flat_map(BTreeMap::values) {
            let metadata = &row.document.metadata;
            if request.filter.as_ref().is_none_or(|filter| filter_matches(filter.root(), metadata))
            {
                let score = distance.similarity(request.embedding.as_slice(), &row.embedding);
                // The hit's scope label is the row's own, never the request's.
                results.push(SearchHit { document: row.document.clone(), score });
            }
        }
        // Every row of the scope was looked at, so a short list is the complete answer.
        results.finish(ShortfallReason::Exhausted)
    }

    fn fetch(&self, scope: &Scope, ids: &[DocumentId]) -> Result<Vec<StoredDocument>> {
        self.manifest.check_fetch(ids)?;
        let scopes = self.read()?;
        let Some(rows) = scopes.get(scope) else { return Ok(Vec::new()) };
        Ok(ids.iter().filter_map(|id| rows.get(id)).map(|row| row.document.clone()).collect())
    }

    fn health(&self) -> Result<ConnectorHealth> {
        Ok(ConnectorHealth::healthy("minimal in-memory store 1.0"))
    }

    /// Writes the way the store's own writers would; the harness seeds its private space with it.
    fn certification_seed(&self, scope: &Scope, documents: &[Document]) -> Result<()> {
        ensure_certification_scope(scope)?;
        let mut scopes = self.write()?;
        let rows = scopes.entry(scope.clone()).or_default();
        for document in documents {
            let embedding = self.manifest.check_document(document)?.as_slice().to_vec();
            let stored = StoredDocument {
                scope: scope.clone(),
                id: document.id().clone(),
                content: document.content().map(str::to_owned),
                metadata: document.metadata().clone(),
                revision: document.revision().cloned(),
                watermark: None,
            };
            rows.insert(document.id().clone(), Row { document: stored, embedding });
        }
        Ok(())
    }

    /// Removes the harness's private space after a run.
    fn certification_purge(&self, scope: &Scope) -> Result<()> {
        ensure_certification_scope(scope)?;
        self.write()?.remove(scope);
        Ok(())
    }
}

impl ConnectorPlugin for MinimalStore {
    fn plugin_info() -> PluginInfo {
        let most = declared().with_filterable_keys(FilterableKeys::AnyValidKey);
        PluginInfo::new("minimal", "1.0.0", "an in-memory store, the SDK's minimal example", most)
    }

    /// The configuration is the shared vector-store keys only (`dimension`, `distance`,
    /// `filterable_keys`, caps); any other key is refused.
    fn open(config: &ConnectorConfig, _host: HostContext) -> Result<Self> {
        let config: VectorStoreConfig = config.parse()?;
        let manifest = config.manifest(declared())?;
        Ok(Self { manifest, scopes: RwLock::new(BTreeMap::new()) })
    }
}

kyro_connector_sdk::export_connector!(MinimalStore);

/// Only for building this file as an example; a plugin's `lib.rs` has no `main`.
fn main() {}
