//! The `Connector` trait a store implements once, and the request and response types of its
//! operations.

use serde::{Deserialize, Serialize};

use crate::config::{ConnectorConfig, HostContext};
use crate::manifest::CapabilityManifest;
use crate::{
    ConnectorError, Document, DocumentId, Embedding, MutationAck, Result, RuntimeFilter, Scope,
    SearchHit, SnapshotVersion, StoredDocument, Watermark,
};

/// A nearest-neighbour query within one scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchRequest {
    /// The query vector; the host has checked it against the store's dimension.
    #[serde(with = "crate::abi::embedding_bytes")]
    pub embedding: Embedding,
    /// How many hits to return at most, 1..=1000 and within the connector's declared cap.
    pub top_k: u32,
    /// Metadata filter, already checked against the contract's limits.
    pub filter: Option<RuntimeFilter>,
    /// Whether hits should carry their content.
    pub include_content: bool,
}

/// The answer to a [`SearchRequest`].
///
/// Fewer hits than `top_k` is a legitimate answer (a selective filter, a small scope, an index's
/// scan limit); the connector reports it in `shortfall` and the host turns it into an omission or
/// a warning. A connector never widens the scope or drops the filter to fill the list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResponse {
    /// Nearest first.
    pub hits: Vec<SearchHit>,
    /// Present exactly when fewer than `top_k` hits came back.
    pub shortfall: Option<Shortfall>,
}

impl SearchResponse {
    /// A response for `requested` hits, with `shortfall` filled in when `hits` is shorter, for the
    /// `reason` the connector knows.
    pub fn new(hits: Vec<SearchHit>, requested: u32, reason: ShortfallReason) -> Self {
        let returned = u32::try_from(hits.len()).unwrap_or(u32::MAX);
        let shortfall = (returned < requested).then_some(Shortfall { requested, returned, reason });
        Self { hits, shortfall }
    }
}

/// Why a search returned fewer hits than asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShortfallReason {
    /// Fewer documents in the scope match the filter than were asked for; the list is complete.
    Exhausted,
    /// The index stopped scanning before it found enough matches (for example HNSW with a
    /// selective filter); more matching documents may exist.
    IndexScanLimit {
        /// What limited the scan, for operators (`hnsw.ef_search=40, iterative_scan=off`).
        detail: String,
    },
}

/// A short search result, as the connector reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shortfall {
    /// The `top_k` that was asked for.
    pub requested: u32,
    /// How many hits came back.
    pub returned: u32,
    /// Why.
    pub reason: ShortfallReason,
}

/// Whether the store is serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HealthStatus {
    /// Serving normally.
    Healthy,
    /// Serving, with a problem worth attention.
    Degraded,
    /// Not serving.
    Unhealthy,
}

impl HealthStatus {
    /// The contract's snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Unhealthy => "unhealthy",
        }
    }
}

/// A connector's report on its store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorHealth {
    /// Whether the store is serving.
    pub status: HealthStatus,
    /// The store's version, for certification reports (for example `PostgreSQL 15.8, pgvector 0.8.0`).
    pub store_version: String,
    /// Free text for operators; never holds secrets.
    pub detail: Option<String>,
}

impl ConnectorHealth {
    /// A healthy store of the given version.
    pub fn healthy(store_version: impl Into<String>) -> Self {
        Self { status: HealthStatus::Healthy, store_version: store_version.into(), detail: None }
    }
}

/// What a plugin says about itself before any store is opened (`kyro plugin inspect`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// Short name, such as `pgvector`.
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// The SDK version it was built with.
    pub sdk_version: String,
    /// One line on what it connects to.
    pub description: String,
    /// The most the plugin can declare; an opened connector declares this or less.
    pub manifest: CapabilityManifest,
}

impl PluginInfo {
    /// Describes a plugin built with this SDK.
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        description: impl Into<String>,
        manifest: CapabilityManifest,
    ) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            sdk_version: crate::SDK_VERSION.to_owned(),
            description: description.into(),
            manifest,
        }
    }
}

/// One store, behind KyroDB.
///
/// Every operation takes the [`Scope`] as a required argument and must enforce it inside the
/// store's own query or mutation path (a bound SQL parameter, a payload `must` condition), never
/// by filtering afterwards.
///
/// Labels are honest: the `scope` (and `id`) of every hit, fetched document and mutation ACK is
/// read from the store's own row (its tenant and namespace columns, its payload fields), never
/// copied from the `scope` argument. The host re-checks every label against the request and
/// refuses a foreign one; a connector that stamps the request's scope on whatever its query
/// returned turns a leak in that query into another tenant's documents served as this tenant's.
///
/// Operations a connector does not declare in [`Connector::describe`]
/// keep their default body, which answers [`ErrorKind::Unsupported`](crate::ErrorKind) — never a
/// silent success.
///
/// Calls are synchronous and may block: the host calls them from its own worker threads, bounded
/// by a timeout. A connector that needs async IO owns its runtime (see [`crate::runtime`]).
pub trait Connector: Send + Sync {
    /// The capabilities this connector, as configured, can back honestly. Closed by default.
    fn describe(&self) -> CapabilityManifest;

    /// The `top_k` nearest documents to the query within `scope`, nearest first, each labelled
    /// with the scope read from its row. [`SearchResults`](crate::SearchResults) builds the
    /// answer.
    ///
    /// # Errors
    ///
    /// `Unsupported` unless declared; `InvalidRequest` for an undeclared filter key or a wrong
    /// dimension; `LimitExceeded` past a declared cap; `Unavailable`/`Timeout` from the store.
    fn search(&self, scope: &Scope, request: &SearchRequest) -> Result<SearchResponse> {
        let _ = (scope, request);
        Err(ConnectorError::unsupported("search"))
    }

    /// The documents with these ids within `scope`, each labelled with the scope read from its
    /// row; ids that are not there are left out.
    ///
    /// # Errors
    ///
    /// `Unsupported` unless declared; `LimitExceeded` past a declared cap.
    fn fetch(&self, scope: &Scope, ids: &[DocumentId]) -> Result<Vec<StoredDocument>> {
        let _ = (scope, ids);
        Err(ConnectorError::unsupported("fetch"))
    }

    /// Writes a document within `scope` and acknowledges it once it is applied and visible, the
    /// ACK naming the scope and id of the row the store wrote.
    ///
    /// # Errors
    ///
    /// `Unsupported` unless declared.
    fn upsert(&self, scope: &Scope, document: &Document) -> Result<MutationAck> {
        let _ = (scope, document);
        Err(ConnectorError::unsupported("upsert"))
    }

    /// Removes a document within `scope` and acknowledges it once the removal is visible.
    ///
    /// # Errors
    ///
    /// `Unsupported` unless declared.
    fn delete(&self, scope: &Scope, id: &DocumentId) -> Result<MutationAck> {
        let _ = (scope, id);
        Err(ConnectorError::unsupported("delete"))
    }

    /// The store's own change marker for `scope`, computed within that scope only.
    ///
    /// # Errors
    ///
    /// `Unsupported` unless declared.
    fn watermark(&self, scope: &Scope) -> Result<Watermark> {
        let _ = scope;
        Err(ConnectorError::unsupported("watermark"))
    }

    /// The immutable bundle version `scope` is served from.
    ///
    /// # Errors
    ///
    /// `Unsupported` unless declared.
    fn snapshot_version(&self, scope: &Scope) -> Result<SnapshotVersion> {
        let _ = scope;
        Err(ConnectorError::unsupported("snapshot_version"))
    }

    /// Whether the store is serving, and its version.
    ///
    /// # Errors
    ///
    /// `Unavailable` when the store cannot be reached.
    fn health(&self) -> Result<ConnectorHealth>;

    /// Writes documents into a certification scope the way the store's own writers would
    /// (bypassing KyroDB's ownership rules), so the certification harness can seed its private
    /// space on connectors that do not declare upsert, and can simulate an external change.
    ///
    /// Only called with scopes whose tenant starts with [`CERTIFICATION_TENANT_PREFIX`]; across
    /// the plugin boundary the SDK refuses any other scope before the connector sees it.
    ///
    /// # Errors
    ///
    /// `Unsupported` unless implemented; the harness then seeds through `upsert` if declared.
    fn certification_seed(&self, scope: &Scope, documents: &[Document]) -> Result<()> {
        let _ = (scope, documents);
        Err(ConnectorError::unsupported("certification_seed"))
    }

    /// Removes everything in a certification scope, after a certification run.
    ///
    /// Same scope rule as [`Connector::certification_seed`].
    ///
    /// # Errors
    ///
    /// `Unsupported` unless implemented; the harness then deletes what it seeded if delete is
    /// declared.
    fn certification_purge(&self, scope: &Scope) -> Result<()> {
        let _ = scope;
        Err(ConnectorError::unsupported("certification_purge"))
    }
}

/// The embedding a write needs, checked against the store's dimension.
///
/// # Errors
///
/// `InvalidRequest` when the document has no embedding or one of another dimension.
pub fn document_embedding(document: &Document, dimension: u32) -> Result<&Embedding> {
    let embedding = document
        .embedding()
        .ok_or_else(|| ConnectorError::invalid_request("writing a document needs an embedding"))?;
    if embedding.dimension() != dimension as usize {
        return Err(ConnectorError::invalid_request(format!(
            "document embedding has {} dimensions, the store has {dimension}",
            embedding.dimension()
        )));
    }
    Ok(embedding)
}

/// Every certification scope's tenant starts with this; nothing else may be seeded or purged.
pub const CERTIFICATION_TENANT_PREFIX: &str = "kyro-cert-";

/// Refuses a scope outside the certification space.
///
/// # Errors
///
/// `InvalidRequest` when the tenant does not start with [`CERTIFICATION_TENANT_PREFIX`].
pub fn ensure_certification_scope(scope: &Scope) -> Result<()> {
    if scope.tenant_id().starts_with(CERTIFICATION_TENANT_PREFIX) {
        Ok(())
    } else {
        Err(ConnectorError::invalid_request(format!(
            "certification writes are only allowed in tenants starting with {CERTIFICATION_TENANT_PREFIX}"
        )))
    }
}

/// How a connector type is described and opened; what [`export_connector!`](crate::export_connector)
/// needs.
pub trait ConnectorPlugin: Connector + Sized + 'static {
    /// Name, version and the most this plugin can declare, without opening a store.
    fn plugin_info() -> PluginInfo;

    /// Validates `config` (unknown keys refused) and then opens the store.
    ///
    /// # Errors
    ///
    /// `Configuration` for an invalid configuration or a store that does not match it;
    /// `Unavailable` when the store cannot be reached.
    fn open(config: &ConnectorConfig, host: HostContext) -> Result<Self>;
}
