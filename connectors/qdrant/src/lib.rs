//! KyroDB's Qdrant connector: one connector, two backends, one scope and filter translation.
//!
//! - `backend = "server"`: a Qdrant server over gRPC (qdrant-client). KyroDB does not own the
//!   collection's writes, so it declares scoped search, fetch and delete, event-feed ownership
//!   and no native watermark; upsert answers `Unsupported`.
//! - `backend = "embedded"`: Qdrant's qdrant-edge engine in this process over a local
//!   directory. The connector owns every write, so it also declares upsert and write-through
//!   ownership, and acknowledges a write only after a scoped read shows it.
//!
//! Every operation carries the scope into the store's own query or mutation: tenant and
//! namespace are payload `must` conditions built in one place (`filter::scoped`), around the caller's
//! filter, never checked afterwards only. Points read back are still checked against the scope.
//! Point ids are derived from (tenant, namespace, document id), so two scopes never share one.
//!
//! What it deliberately does not do: keep a per-scope watermark (none is declared), widen a
//! scope or drop a filter to fill a short result, or log anything that could hold a secret.

mod config;
mod embedded;
mod error;
mod filter;
mod payload;
mod server;
mod store;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use kyro_connector_sdk::{
    CapabilityManifest, Connector, ConnectorConfig, ConnectorError, ConnectorHealth,
    ConnectorPlugin, Distance, Document, DocumentId, FilterableKeys, HostContext, LogLevel,
    MutationAck, MutationOutcome, Operation, OwnershipMode, PluginInfo, Result, Scope, SearchHit,
    SearchRequest, SearchResponse, SearchResults, ShortfallReason, StoredDocument, WatermarkKind,
};

pub use config::{
    Backend, EmbeddedSettings, PayloadFields, QdrantConfig, ServerSettings, ValidatedConfig,
};
pub use embedded::ENGINE_VERSION;
pub use payload::PointKey;

use crate::embedded::{EmbeddedStore, UpsertError};
use crate::error::Redactor;
use crate::server::ServerStore;
use crate::store::Store;

/// The Qdrant connector, opened on one collection of one backend.
#[derive(Debug)]
pub struct QdrantConnector {
    config: ValidatedConfig,
    manifest: CapabilityManifest,
    store: Store,
    host: HostContext,
}

impl QdrantConnector {
    /// Opens the configured collection: connects (server) or opens the directory (embedded),
    /// creates the collection if it is missing and allowed to, checks its dimension and
    /// distance, and creates the keyword payload indexes on tenant and namespace.
    ///
    /// # Errors
    ///
    /// `Configuration` when the collection is missing or does not match the configuration;
    /// `Unavailable`/`Timeout` when the store cannot be reached. Messages never hold secrets.
    pub fn open(config: ValidatedConfig, host: HostContext) -> Result<Self> {
        let store = match config.backend() {
            Backend::Server(settings) => {
                let (store, redactor) = ServerStore::open(
                    settings,
                    config.collection(),
                    config.vector(),
                    config.fields(),
                    config.create_collection(),
                )?;
                Store::Server { store, redactor }
            }
            Backend::Embedded(settings) => Store::Embedded(EmbeddedStore::open(
                settings,
                config.collection(),
                config.vector(),
                config.fields(),
                config.create_collection(),
            )?),
        };
        let manifest = manifest(&config);
        host.log(
            LogLevel::Info,
            &format!(
                "opened qdrant collection \"{}\" ({} backend)",
                config.collection(),
                backend_name(config.backend())
            ),
        );
        Ok(Self { config, manifest, store, host })
    }

    /// Runs the embedded engine's optimizers now (merging segments and building the HNSW index
    /// of large ones); they also run each time the collection is opened. A no-op on a server,
    /// which optimizes on its own.
    ///
    /// # Errors
    ///
    /// `Internal` when the engine fails.
    pub fn optimize(&self) -> Result<()> {
        match &self.store {
            Store::Server { .. } => Ok(()),
            Store::Embedded(store) => store.optimize().map_err(|err| {
                ConnectorError::internal(format!(
                    "failed to optimize the embedded collection: {err}"
                ))
            }),
        }
    }

    /// A query vector for reads that only need a point's existence and version: any vector
    /// works with a filter that selects one point, and ones are valid under every distance.
    fn probe(&self) -> Vec<f32> {
        vec![1.0; self.config.vector().dimension as usize]
    }

    fn embedded_store(&self, operation: &str) -> Result<&EmbeddedStore> {
        match &self.store {
            Store::Embedded(store) => Ok(store),
            Store::Server { .. } => Err(ConnectorError::unsupported(operation)),
        }
    }
}

fn backend_name(backend: &Backend) -> &'static str {
    match backend {
        Backend::Server(_) => "server",
        Backend::Embedded(_) => "embedded",
    }
}

/// What an opened connector declares; the two backends differ in who owns the writes.
fn manifest(config: &ValidatedConfig) -> CapabilityManifest {
    let base = CapabilityManifest::closed()
        .with_operation(Operation::Search)
        .with_operation(Operation::Fetch)
        .with_operation(Operation::Delete)
        .with_watermark_kind(WatermarkKind::None)
        .with_filterable_keys(config.filterable_keys())
        .with_vector(config.vector())
        .with_caps(config.caps());
    match config.backend() {
        // Documents are written by the application's own pipeline; KyroDB learns of changes
        // from change events.
        Backend::Server(_) => base.with_ownership_mode(OwnershipMode::EventFeed),
        // The connector is the only writer of its directory.
        Backend::Embedded(_) => {
            base.with_operation(Operation::Upsert).with_ownership_mode(OwnershipMode::WriteThrough)
        }
    }
}

/// KyroDB's score for a Qdrant score: higher is closer. Qdrant reports Euclidean distance
/// itself, so it is negated, as the SDK's `Distance::L2` says.
fn kyro_score(distance: Distance, score: f32) -> f32 {
    match distance {
        Distance::L2 => -score,
        Distance::Cosine | Distance::InnerProduct => score,
    }
}

impl Connector for QdrantConnector {
    fn describe(&self) -> CapabilityManifest {
        self.manifest.clone()
    }

    fn search(&self, scope: &Scope, request: &SearchRequest) -> Result<SearchResponse> {
        self.manifest.check_search(request)?;
        let fields = self.config.fields();
        let inner = request.filter.as_ref().map(|filter| filter::translate(filter, fields));
        let condition = filter::scoped(scope, fields, inner);
        let found = self.store.search(&condition, request.embedding.as_slice(), request.top_k)?;
        if found.len() > request.top_k as usize {
            return Err(ConnectorError::internal(format!(
                "the store returned {} hits for top_k {}",
                found.len(),
                request.top_k
            )));
        }
        let distance = self.config.vector().distance;
        let mut results = SearchResults::new(request, &self.manifest);
        for point in found {
            let document =
                payload::from_payload(scope, &point.payload, fields, request.include_content)?;
            results.push(SearchHit { document, score: kyro_score(distance, point.score) });
        }
        let reason = if results.is_short() {
            // A filtered HNSW search may stop early; an exact count of the same scope and
            // filter tells whether the short list is complete.
            let n_matching = self.store.count(&condition)?;
            if n_matching <= results.len() as u64 {
                ShortfallReason::Exhausted
            } else {
                ShortfallReason::IndexScanLimit {
                    detail: format!(
                        "qdrant hnsw search returned {} of {n_matching} matching points",
                        results.len()
                    ),
                }
            }
        } else {
            ShortfallReason::Exhausted
        };
        results.finish(reason)
    }

    fn fetch(&self, scope: &Scope, ids: &[DocumentId]) -> Result<Vec<StoredDocument>> {
        self.manifest.check_fetch(ids)?;
        let unique: Vec<DocumentId> =
            ids.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect();
        if unique.is_empty() {
            return Ok(Vec::new());
        }
        let fields = self.config.fields();
        let condition = filter::scoped_ids(scope, fields, &unique);
        let n_unique = u32::try_from(unique.len()).unwrap_or(u32::MAX);
        let payloads = self.store.scroll(&condition, n_unique)?;
        let mut by_id = BTreeMap::new();
        for payload in &payloads {
            let document = payload::from_payload(scope, payload, fields, true)?;
            by_id.insert(document.id.clone(), document);
        }
        Ok(ids.iter().filter_map(|id| by_id.get(id).cloned()).collect())
    }

    fn upsert(&self, scope: &Scope, document: &Document) -> Result<MutationAck> {
        let store = self.embedded_store("upsert")?;
        let embedding = self.manifest.check_document(document)?;
        let fields = self.config.fields();
        let point = PointKey::derive(scope, document.id());
        let owner = filter::scoped_ids(scope, fields, std::slice::from_ref(document.id()));
        let (existed, version) = store
            .upsert(
                point,
                embedding.as_slice(),
                payload::to_payload(scope, document, fields),
                &owner,
                &self.probe(),
            )
            .map_err(|err| upsert_error("upsert", &err))?;
        self.host.log(LogLevel::Debug, &format!("upserted one document in {scope}"));
        Ok(MutationAck {
            scope: scope.clone(),
            id: document.id().clone(),
            outcome: if existed { MutationOutcome::Updated } else { MutationOutcome::Inserted },
            backend_mutation_id: format!("qdrant-edge-op-{version}"),
            watermark: None,
        })
    }

    fn delete(&self, scope: &Scope, id: &DocumentId) -> Result<MutationAck> {
        let fields = self.config.fields();
        let target = filter::scoped_ids(scope, fields, std::slice::from_ref(id));
        let (outcome, backend_mutation_id) = match &self.store {
            Store::Embedded(store) => {
                match store
                    .delete(&target, &self.probe())
                    .map_err(|err| upsert_error("delete", &err))?
                {
                    Some(version) => (
                        MutationOutcome::Deleted,
                        format!(
                            "qdrant-edge-delete-{}-v{version}",
                            PointKey::derive(scope, id).to_uuid_string()
                        ),
                    ),
                    None => (MutationOutcome::NotFound, "qdrant-edge-noop".to_owned()),
                }
            }
            Store::Server { store, redactor } => {
                // The outcome comes from a count just before the delete; a concurrent writer of
                // the server collection could change it in between, which only mislabels
                // deleted/not_found, never the scope.
                let existed = self.store.count(&target)? > 0;
                if existed {
                    let operation_id =
                        store.delete(&target).map_err(|err| redactor.to_connector_error(&err))?;
                    let operation_id =
                        operation_id.map_or_else(|| "unknown".to_owned(), |id| id.to_string());
                    (MutationOutcome::Deleted, format!("qdrant-op-{operation_id}"))
                } else {
                    (MutationOutcome::NotFound, "qdrant-noop".to_owned())
                }
            }
        };
        self.host.log(LogLevel::Debug, &format!("deleted one document in {scope}"));
        Ok(MutationAck {
            scope: scope.clone(),
            id: id.clone(),
            outcome,
            backend_mutation_id,
            watermark: None,
        })
    }

    fn health(&self) -> Result<ConnectorHealth> {
        Ok(ConnectorHealth::healthy(self.store.version()?))
    }

    /// Seeds the certification space the way the application's own pipeline writes: the
    /// embedded backend through its acknowledged upsert, the server backend with a direct write.
    fn certification_seed(&self, scope: &Scope, documents: &[Document]) -> Result<()> {
        kyro_connector_sdk::ensure_certification_scope(scope)?;
        match &self.store {
            Store::Embedded(_) => {
                for document in documents {
                    self.upsert(scope, document)?;
                }
                Ok(())
            }
            Store::Server { store, redactor } => {
                let fields = self.config.fields();
                let mut points = Vec::with_capacity(documents.len());
                for document in documents {
                    let embedding = self.manifest.check_document(document)?;
                    let id = PointKey::derive(scope, document.id()).to_uuid_string();
                    points.push((
                        id,
                        embedding.as_slice().to_vec(),
                        payload::to_payload(scope, document, fields),
                    ));
                }
                store.upsert(points).map_err(|err| redactor.to_connector_error(&err))
            }
        }
    }

    /// Removes everything in a certification scope with one scoped delete.
    fn certification_purge(&self, scope: &Scope) -> Result<()> {
        kyro_connector_sdk::ensure_certification_scope(scope)?;
        let target = filter::scoped(scope, self.config.fields(), None);
        match &self.store {
            Store::Embedded(store) => store
                .delete(&target, &self.probe())
                .map(|_| ())
                .map_err(|err| upsert_error("purge", &err)),
            Store::Server { store, redactor } => {
                store.delete(&target).map(|_| ()).map_err(|err| redactor.to_connector_error(&err))
            }
        }
    }
}

fn upsert_error(operation: &str, error: &UpsertError) -> ConnectorError {
    match error {
        UpsertError::Store(store_error) => Redactor::default().to_connector_error(store_error),
        UpsertError::ForeignPoint | UpsertError::NotVisible => {
            ConnectorError::internal(format!("{operation}: {error}"))
        }
    }
}

impl ConnectorPlugin for QdrantConnector {
    fn plugin_info() -> PluginInfo {
        let manifest = CapabilityManifest::closed()
            .with_operation(Operation::Search)
            .with_operation(Operation::Fetch)
            .with_operation(Operation::Upsert)
            .with_operation(Operation::Delete)
            .with_ownership_mode(OwnershipMode::WriteThrough)
            .with_ownership_mode(OwnershipMode::EventFeed)
            .with_watermark_kind(WatermarkKind::None)
            .with_filterable_keys(FilterableKeys::AnyValidKey);
        PluginInfo::new(
            "qdrant",
            env!("CARGO_PKG_VERSION"),
            "Qdrant: a server over gRPC (search, fetch, delete; event feed) or the embedded qdrant-edge engine (also write-through upsert)",
            manifest,
        )
    }

    fn open(config: &ConnectorConfig, host: HostContext) -> Result<Self> {
        let config = config.parse::<QdrantConfig>()?.validate()?;
        Self::open(config, host)
    }
}

kyro_connector_sdk::export_connector!(QdrantConnector);
