//! An in-memory reference connector, for testing the host and the certification harness
//! themselves. It is honest about everything it declares, so it certifies; fixtures with one
//! defect each wrap it.
//!
//! It is not a store for production: nothing is persisted and search is a linear scan.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::RwLock;

use serde::Deserialize;

use crate::connector::{
    Connector, ConnectorHealth, ConnectorPlugin, PluginInfo, SearchRequest, SearchResponse,
    ShortfallReason,
};
use crate::manifest::{
    CapabilityManifest, Caps, Distance, FilterableKeys, Operation, VectorSpec, WatermarkKind,
};
use crate::{
    ConnectorConfig, ConnectorError, Document, DocumentId, FilterExpr, FilterKey, HostContext,
    LogLevel, Metadata, MutationAck, MutationOutcome, OwnershipMode, Result, Revision, Scope,
    SearchHit, Secret, SecretSource, StoredDocument, Watermark,
};

/// Configuration of [`MemoryConnector`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryConfig {
    /// Vector dimension.
    pub dimension: u32,
    /// Distance: `cosine`, `l2` or `inner_product`.
    #[serde(default = "default_distance")]
    pub distance: String,
    /// Metadata keys that may be filtered on.
    #[serde(default)]
    pub filterable_keys: Vec<String>,
    /// Largest `top_k`.
    #[serde(default = "default_max_top_k")]
    pub max_top_k: u32,
    /// Most ids in one fetch.
    #[serde(default = "default_max_fetch_ids")]
    pub max_fetch_ids: u32,
    /// Largest total content in one response, in bytes.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u64,
    /// A pretend connection string, so redaction can be tested; it is never used.
    pub dsn: Option<SecretSource>,
}

fn default_distance() -> String {
    "cosine".to_owned()
}

fn default_max_top_k() -> u32 {
    100
}

fn default_max_fetch_ids() -> u32 {
    100
}

fn default_max_response_bytes() -> u64 {
    1024 * 1024
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
        let distance = match self.distance.as_str() {
            "cosine" => Distance::Cosine,
            "l2" => Distance::L2,
            "inner_product" => Distance::InnerProduct,
            _ => {
                return Err(ConnectorError::configuration(
                    "distance must be cosine, l2 or inner_product",
                ));
            }
        };
        if self.dimension == 0 || self.dimension > 16_384 {
            return Err(ConnectorError::configuration("dimension must be in 1..=16384"));
        }
        if self.max_top_k == 0 || self.max_top_k > Caps::CONTRACT.max_top_k {
            return Err(ConnectorError::configuration("max_top_k must be in 1..=1000"));
        }
        let mut keys = BTreeSet::new();
        for key in self.filterable_keys {
            keys.insert(
                FilterKey::new(key).map_err(|err| {
                    ConnectorError::configuration(format!("filterable_keys: {err}"))
                })?,
            );
        }
        let manifest = declared_capabilities()
            .with_filterable_keys(FilterableKeys::Listed(keys))
            .with_vector(VectorSpec { dimension: self.dimension, distance })
            .with_caps(Caps {
                max_top_k: self.max_top_k,
                max_fetch_ids: self.max_fetch_ids,
                max_response_bytes: self.max_response_bytes,
                ..Caps::CONTRACT
            });
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

#[derive(Debug, Clone)]
struct Row {
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

    fn vector(&self) -> Result<VectorSpec> {
        self.manifest
            .vector
            .ok_or_else(|| ConnectorError::internal("memory connector has no vector spec"))
    }

    fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, State>> {
        self.state.read().map_err(|_| ConnectorError::internal("memory store lock poisoned"))
    }

    fn write(&self) -> Result<std::sync::RwLockWriteGuard<'_, State>> {
        self.state.write().map_err(|_| ConnectorError::internal("memory store lock poisoned"))
    }

    fn check_filter_keys(&self, filter: &crate::RuntimeFilter) -> Result<()> {
        if filter.n_nodes() > self.manifest.caps.max_filter_nodes as usize {
            return Err(ConnectorError::limit_exceeded(format!(
                "filter has {} nodes, over the cap of {}",
                filter.n_nodes(),
                self.manifest.caps.max_filter_nodes
            )));
        }
        for key in filter.keys() {
            if !self.manifest.filterable_keys.allows(key) {
                return Err(ConnectorError::invalid_request(format!(
                    "filter key {key} is not declared filterable"
                )));
            }
        }
        Ok(())
    }
}

fn stored(scope: &Scope, id: &DocumentId, row: &Row, include_content: bool) -> StoredDocument {
    StoredDocument {
        scope: scope.clone(),
        id: id.clone(),
        content: if include_content { row.content.clone() } else { None },
        metadata: row.metadata.clone(),
        revision: row.revision.clone(),
        watermark: Some(Watermark(row.watermark)),
    }
}

/// Evaluates a filter against metadata, the way a store's query would.
pub fn matches(filter: &FilterExpr, metadata: &Metadata) -> bool {
    match filter {
        FilterExpr::Exact { key, value } => metadata.get(key.as_str()) == Some(value.as_str()),
        FilterExpr::In { key, values } => metadata
            .get(key.as_str())
            .is_some_and(|actual| values.iter().any(|value| value.as_str() == actual)),
        FilterExpr::Range { key, min, max } => metadata
            .get(key.as_str())
            .and_then(|text| text.trim().parse::<f64>().ok())
            .is_some_and(|number| {
                number.is_finite()
                    && min.is_none_or(|min| number >= min)
                    && max.is_none_or(|max| number <= max)
            }),
        FilterExpr::And(children) => children.iter().all(|child| matches(child, metadata)),
        FilterExpr::Or(children) => children.iter().any(|child| matches(child, metadata)),
        FilterExpr::Not(child) => !matches(child, metadata),
    }
}

/// Similarity of two vectors under `distance`; higher is closer.
pub fn similarity(distance: Distance, left: &[f32], right: &[f32]) -> f32 {
    let dot: f32 = left.iter().zip(right).map(|(a, b)| a * b).sum();
    match distance {
        Distance::InnerProduct => dot,
        Distance::Cosine => {
            let norms = left.iter().map(|a| a * a).sum::<f32>().sqrt()
                * right.iter().map(|b| b * b).sum::<f32>().sqrt();
            if norms == 0.0 { 0.0 } else { dot / norms }
        }
        Distance::L2 => -left.iter().zip(right).map(|(a, b)| (a - b) * (a - b)).sum::<f32>().sqrt(),
    }
}

impl Connector for MemoryConnector {
    fn describe(&self) -> CapabilityManifest {
        self.manifest.clone()
    }

    fn search(&self, scope: &Scope, request: &SearchRequest) -> Result<SearchResponse> {
        let vector = self.vector()?;
        if request.embedding.dimension() != vector.dimension as usize {
            return Err(ConnectorError::invalid_request(format!(
                "query embedding has {} dimensions, the store has {}",
                request.embedding.dimension(),
                vector.dimension
            )));
        }
        if request.top_k == 0 || request.top_k > self.manifest.caps.max_top_k {
            return Err(ConnectorError::limit_exceeded(format!(
                "top_k {} is over the cap of {}",
                request.top_k, self.manifest.caps.max_top_k
            )));
        }
        if let Some(filter) = &request.filter {
            self.check_filter_keys(filter)?;
        }
        let state = self.read()?;
        let mut hits: Vec<SearchHit> = Vec::new();
        if let Some(rows) = state.rows.get(scope) {
            for (id, row) in rows {
                if request
                    .filter
                    .as_ref()
                    .is_some_and(|filter| !matches(filter.root(), &row.metadata))
                {
                    continue;
                }
                let score =
                    similarity(vector.distance, request.embedding.as_slice(), &row.embedding);
                hits.push(SearchHit {
                    document: stored(scope, id, row, request.include_content),
                    score,
                });
            }
        }
        hits.sort_by(|left, right| {
            right
                .score
                .total_cmp(&left.score)
                .then_with(|| left.document.id.cmp(&right.document.id))
        });
        hits.truncate(request.top_k as usize);
        let response_bytes: usize =
            hits.iter().filter_map(|hit| hit.document.content.as_ref()).map(String::len).sum();
        if response_bytes as u64 > self.manifest.caps.max_response_bytes {
            return Err(ConnectorError::limit_exceeded(format!(
                "response would hold {response_bytes} bytes of content, over the cap of {}",
                self.manifest.caps.max_response_bytes
            )));
        }
        // A linear scan sees every row, so a short list is always the complete answer.
        Ok(SearchResponse::new(hits, request.top_k, ShortfallReason::Exhausted))
    }

    fn fetch(&self, scope: &Scope, ids: &[DocumentId]) -> Result<Vec<StoredDocument>> {
        if ids.len() > self.manifest.caps.max_fetch_ids as usize {
            return Err(ConnectorError::limit_exceeded(format!(
                "fetch of {} ids is over the cap of {}",
                ids.len(),
                self.manifest.caps.max_fetch_ids
            )));
        }
        let state = self.read()?;
        let Some(rows) = state.rows.get(scope) else { return Ok(Vec::new()) };
        Ok(ids
            .iter()
            .filter_map(|id| rows.get(id).map(|row| stored(scope, id, row, true)))
            .collect())
    }

    fn upsert(&self, scope: &Scope, document: &Document) -> Result<MutationAck> {
        let embedding = crate::document_embedding(document, self.vector()?.dimension)?;
        let mut state = self.write()?;
        state.sequence += 1;
        let sequence = state.sequence;
        let row = Row {
            embedding: embedding.as_slice().to_vec(),
            content: document.content().map(str::to_owned),
            metadata: document.metadata().clone(),
            revision: document.revision().cloned(),
            watermark: sequence,
        };
        let previous =
            state.rows.entry(scope.clone()).or_default().insert(document.id().clone(), row);
        state.scope_watermarks.insert(scope.clone(), sequence);
        self.host.log(LogLevel::Debug, &format!("upserted one document in {scope}"));
        Ok(MutationAck {
            scope: scope.clone(),
            id: document.id().clone(),
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
