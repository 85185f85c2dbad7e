//! An in-memory reference connector, for testing the host and the certification harness
//! themselves. It is honest about everything it declares, so it certifies; fixtures with one
//! defect each wrap it.
//!
//! It is not a store for production: nothing is persisted and search is a linear scan.

use std::collections::BTreeMap;
use std::sync::RwLock;

use serde::{Deserialize, Deserializer};

use crate::connector::{
    Connector, ConnectorHealth, ConnectorPlugin, PluginInfo, SearchRequest, SearchResponse,
    ShortfallReason,
};
use crate::contract::{SearchResults, filter_matches};
use crate::manifest::{CapabilityManifest, Caps, FilterableKeys, Operation, WatermarkKind};
use crate::{
    ConnectorConfig, ConnectorError, Document, DocumentId, HostContext, LogLevel, Metadata,
    MutationAck, MutationOutcome, OwnershipMode, Result, Revision, Scope, SearchHit, Secret,
    SecretSource, StoredDocument, VectorStoreConfig, Watermark,
};

/// The contract's filter semantics, under the name the connectors' own tests use.
pub use crate::contract::filter_matches as matches;

/// Configuration of [`MemoryConnector`]: the shared vector-store keys (see
/// [`VectorStoreConfig`]; caps default to 100 hits, 100 ids and 1 MiB of content) and `dsn`.
#[derive(Debug)]
pub struct MemoryConfig {
    /// A pretend connection string, so redaction can be tested; it is never used.
    pub dsn: Option<SecretSource>,
    /// Everything else; its `dsn` was moved to the field above.
    vector_store: VectorStoreConfig<MemoryKeys>,
}

/// The memory store's own keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemoryKeys {
    dsn: Option<SecretSource>,
}

impl<'de> Deserialize<'de> for MemoryConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let mut vector_store = VectorStoreConfig::<MemoryKeys>::deserialize(deserializer)?;
        Ok(Self { dsn: vector_store.store.dsn.take(), vector_store })
    }
}

/// Checked [`MemoryConfig`].
#[derive(Debug)]
pub struct ValidatedMemoryConfig {
    manifest: CapabilityManifest,
    dsn: Option<Secret>,
}

impl MemoryConfig {
    /// Checks the configuration and resolves the secret.
    ///
    /// # Errors
    ///
    /// `Configuration` naming the key at fault.
    pub fn validate(self) -> Result<ValidatedMemoryConfig> {
        let manifest = self.vector_store.manifest(declared_capabilities().with_caps(Caps {
            max_top_k: 100,
            max_fetch_ids: 100,
            max_response_bytes: 1024 * 1024,
            ..Caps::CONTRACT
        }))?;
        let dsn = self.dsn.as_ref().map(SecretSource::resolve).transpose()?;
        Ok(ValidatedMemoryConfig { manifest, dsn })
    }
}

/// What the reference store backs honestly: every write goes through it, so write-through and
/// event-feed ownership, and a per-scope watermark it maintains itself.
fn declared_capabilities() -> CapabilityManifest {
    CapabilityManifest::closed()
        .with_operation(Operation::Search)
        .with_operation(Operation::Fetch)
        .with_operation(Operation::Upsert)
        .with_operation(Operation::Delete)
        .with_operation(Operation::Watermark)
        .with_ownership_mode(OwnershipMode::WriteThrough)
        .with_ownership_mode(OwnershipMode::EventFeed)
        .with_watermark_kind(WatermarkKind::PerScopeNative)
}

/// A stored document. It carries its own scope and id, and everything the store reports about a
/// document (a hit, a fetched document, an ACK) is read from here, never from the request: that is
/// what makes a leak in the lookup visible to the host's scope check as a foreign label.
#[derive(Debug, Clone)]
struct Row {
    scope: Scope,
    id: DocumentId,
    embedding: Vec<f32>,
    content: Option<String>,
    metadata: Metadata,
    revision: Option<Revision>,
    watermark: u64,
}

#[derive(Debug, Default)]
struct State {
    rows: BTreeMap<Scope, BTreeMap<DocumentId, Row>>,
    scope_watermarks: BTreeMap<Scope, u64>,
    sequence: u64,
}

/// The in-memory reference connector.
#[derive(Debug)]
pub struct MemoryConnector {
    manifest: CapabilityManifest,
    dsn: Option<Secret>,
    host: HostContext,
    state: RwLock<State>,
}

impl MemoryConnector {
    /// Builds a connector from a checked configuration.
    pub fn new(config: ValidatedMemoryConfig, host: HostContext) -> Self {
        Self {
            manifest: config.manifest,
            dsn: config.dsn,
            host,
            state: RwLock::new(State::default()),
        }
    }

    /// The configured pretend DSN, for fixtures that must misbehave with it.
    pub fn dsn(&self) -> Option<&Secret> {
        self.dsn.as_ref()
    }

    fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, State>> {
        self.state.read().map_err(|_| ConnectorError::internal("memory store lock poisoned"))
    }

    fn write(&self) -> Result<std::sync::RwLockWriteGuard<'_, State>> {
        self.state.write().map_err(|_| ConnectorError::internal("memory store lock poisoned"))
    }
}

fn stored(row: &Row) -> StoredDocument {
    StoredDocument {
        scope: row.scope.clone(),
        id: row.id.clone(),
        content: row.content.clone(),
        metadata: row.metadata.clone(),
        revision: row.revision.clone(),
        watermark: Some(Watermark(row.watermark)),
    }
}

impl Connector for MemoryConnector {
    fn describe(&self) -> CapabilityManifest {
        self.manifest.clone()
    }

    fn search(&self, scope: &Scope, request: &SearchRequest) -> Result<SearchResponse> {
        self.manifest.check_search(request)?;
        let distance = self.manifest.vector_spec()?.distance;
        let state = self.read()?;
        let mut results = SearchResults::new(request, &self.manifest);
        for row in state.rows.get(scope).into_iter().flat_map(BTreeMap::values) {
            if request
                .filter
                .as_ref()
                .is_none_or(|filter| filter_matches(filter.root(), &row.metadata))
            {
                let score = distance.similarity(request.embedding.as_slice(), &row.embedding);
                results.push(SearchHit { document: stored(row), score });
            }
        }
        // A linear scan sees every row, so a short list is always the complete answer.
        results.finish(ShortfallReason::Exhausted)
    }

    fn fetch(&self, scope: &Scope, ids: &[DocumentId]) -> Result<Vec<StoredDocument>> {
        self.manifest.check_fetch(ids)?;
        let state = self.read()?;
        let Some(rows) = state.rows.get(scope) else { return Ok(Vec::new()) };
        Ok(ids.iter().filter_map(|id| rows.get(id).map(stored)).collect())
    }

    fn upsert(&self, scope: &Scope, document: &Document) -> Result<MutationAck> {
        let embedding = self.manifest.check_document(document)?;
        let mut state = self.write()?;
        state.sequence += 1;
        let sequence = state.sequence;
        let row = Row {
            scope: scope.clone(),
            id: document.id().clone(),
            embedding: embedding.as_slice().to_vec(),
            content: document.content().map(str::to_owned),
            metadata: document.metadata().clone(),
            revision: document.revision().cloned(),
            watermark: sequence,
        };
        let (ack_scope, ack_id) = (row.scope.clone(), row.id.clone());
        let previous = state.rows.entry(scope.clone()).or_default().insert(row.id.clone(), row);
        state.scope_watermarks.insert(scope.clone(), sequence);
        self.host.log(LogLevel::Debug, &format!("upserted one document in {scope}"));
        Ok(MutationAck {
            scope: ack_scope,
            id: ack_id,
            outcome: if previous.is_some() {
                MutationOutcome::Updated
            } else {
                MutationOutcome::Inserted
            },
            backend_mutation_id: format!("mem-{sequence}"),
            watermark: Some(Watermark(sequence)),
        })
    }

    fn delete(&self, scope: &Scope, id: &DocumentId) -> Result<MutationAck> {
        let mut state = self.write()?;
        let removed = state.rows.get_mut(scope).and_then(|rows| rows.remove(id));
        let (outcome, sequence) = if removed.is_some() {
            state.sequence += 1;
            let sequence = state.sequence;
            state.scope_watermarks.insert(scope.clone(), sequence);
            (MutationOutcome::Deleted, sequence)
        } else {
            (MutationOutcome::NotFound, state.scope_watermarks.get(scope).copied().unwrap_or(0))
        };
        Ok(MutationAck {
            scope: scope.clone(),
            id: id.clone(),
            outcome,
            backend_mutation_id: format!("mem-{sequence}"),
            watermark: Some(Watermark(sequence)),
        })
    }

    fn watermark(&self, scope: &Scope) -> Result<Watermark> {
        Ok(Watermark(self.read()?.scope_watermarks.get(scope).copied().unwrap_or(0)))
    }

    fn health(&self) -> Result<ConnectorHealth> {
        Ok(ConnectorHealth::healthy(format!("kyro-memory {}", crate::SDK_VERSION)))
    }

    fn certification_seed(&self, scope: &Scope, documents: &[Document]) -> Result<()> {
        crate::ensure_certification_scope(scope)?;
        for document in documents {
            self.upsert(scope, document)?;
        }
        Ok(())
    }

    fn certification_purge(&self, scope: &Scope) -> Result<()> {
        crate::ensure_certification_scope(scope)?;
        let mut state = self.write()?;
        state.rows.remove(scope);
        state.scope_watermarks.remove(scope);
        Ok(())
    }
}

impl ConnectorPlugin for MemoryConnector {
    fn plugin_info() -> PluginInfo {
        let manifest = declared_capabilities().with_filterable_keys(FilterableKeys::AnyValidKey);
        PluginInfo::new(
            "memory",
            crate::SDK_VERSION,
            "in-memory reference store for tests",
            manifest,
        )
    }

    fn open(config: &ConnectorConfig, host: HostContext) -> Result<Self> {
        let config = config.parse::<MemoryConfig>()?.validate()?;
        Ok(Self::new(config, host))
    }
}
