//! Shared helpers: temporary directories that remove themselves, connectors opened on them, and
//! small constructors for documents, scopes and filters.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use kyro_connector_qdrant::QdrantConnector;
use kyro_connector_sdk::{
    Connector, ConnectorConfig, ConnectorPlugin, Document, DocumentId, Embedding, FilterExpr,
    FilterKey, FilterValue, HostContext, Metadata, MutationAck, RuntimeFilter, Scope,
    SearchRequest, SearchResponse,
};

/// A directory under the system's temporary directory, removed when dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> Self {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let path =
            std::env::temp_dir().join(format!("kyro-qdrant-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) const DIMENSION: u32 = 4;

/// An embedded configuration in `dir`, with the keys the tests filter on.
pub(crate) fn embedded_config(dir: &Path) -> serde_json::Value {
    serde_json::json!({
        "backend": "embedded",
        "path": dir,
        "collection": "docs",
        "dimension": DIMENSION,
        "distance": "cosine",
        "filterable_keys": ["lang", "year", "tag", "tenant_id", "x"],
        "max_top_k": 50,
        "max_fetch_ids": 20,
        "create_collection": true,
    })
}

/// Opens a connector from a JSON configuration, the way the host opens it.
pub(crate) fn open_json(json: &serde_json::Value) -> kyro_connector_sdk::Result<QdrantConnector> {
    open_with_host(json, HostContext::discard())
}

pub(crate) fn open_with_host(
    json: &serde_json::Value,
    host: HostContext,
) -> kyro_connector_sdk::Result<QdrantConnector> {
    <QdrantConnector as ConnectorPlugin>::open(&ConnectorConfig::from_json(json.to_string()), host)
}

/// Opens the embedded connector in `dir`.
pub(crate) fn open_embedded(dir: &Path) -> QdrantConnector {
    open_json(&embedded_config(dir)).unwrap()
}

/// Log lines a connector wrote, for redaction checks.
#[derive(Clone, Default)]
pub(crate) struct Logs(Arc<Mutex<Vec<String>>>);

impl Logs {
    pub(crate) fn host(&self) -> HostContext {
        let lines = Arc::clone(&self.0);
        HostContext::new(move |level, line| {
            lines.lock().unwrap().push(format!("{level:?} {line}"));
        })
    }

    pub(crate) fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

pub(crate) fn scope(tenant: &str, namespace: &str) -> Scope {
    Scope::new(tenant, namespace).unwrap()
}

pub(crate) fn id(text: &str) -> DocumentId {
    DocumentId::new(text).unwrap()
}

pub(crate) fn metadata(entries: &[(&str, &str)]) -> Metadata {
    Metadata::new(
        entries.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<BTreeMap<_, _>>(),
    )
    .unwrap()
}

pub(crate) fn doc(
    doc_id: &str,
    embedding: [f32; 4],
    entries: &[(&str, &str)],
    content: &str,
) -> Document {
    Document::new(
        id(doc_id),
        Some(Embedding::new(embedding.to_vec()).unwrap()),
        Some(content.to_owned()),
        metadata(entries),
        None,
    )
    .unwrap()
}

pub(crate) fn upsert(connector: &dyn Connector, scope: &Scope, document: &Document) -> MutationAck {
    connector.upsert(scope, document).unwrap()
}

pub(crate) fn key(name: &str) -> FilterKey {
    FilterKey::new(name).unwrap()
}

pub(crate) fn value(text: &str) -> FilterValue {
    FilterValue::new(text).unwrap()
}

pub(crate) fn exact(name: &str, text: &str) -> FilterExpr {
    FilterExpr::Exact { key: key(name), value: value(text) }
}

pub(crate) fn request(
    embedding: [f32; 4],
    top_k: u32,
    filter: Option<FilterExpr>,
) -> SearchRequest {
    SearchRequest {
        embedding: Embedding::new(embedding.to_vec()).unwrap(),
        top_k,
        filter: filter.map(|expr| RuntimeFilter::new(expr).unwrap()),
        include_content: true,
    }
}

pub(crate) fn search(
    connector: &dyn Connector,
    scope: &Scope,
    embedding: [f32; 4],
    top_k: u32,
    filter: Option<FilterExpr>,
) -> SearchResponse {
    connector.search(scope, &request(embedding, top_k, filter)).unwrap()
}

pub(crate) fn hit_ids(response: &SearchResponse) -> Vec<String> {
    response.hits.iter().map(|hit| hit.document.id.as_str().to_owned()).collect()
}
