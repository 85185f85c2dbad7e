//! The connector's configuration: the raw `QdrantConfig` as the host hands it over, and the
//! pure `validate()` that turns it into a `ValidatedConfig`.
//!
//! Validation does no IO: it resolves no secret, touches no file and opens no connection. Secrets
//! are resolved and the store is opened later, in `QdrantConnector::open`. Errors name the key at
//! fault and never echo a value, because values may be secrets.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use kyro_connector_sdk::{
    Caps, ConnectorError, Distance, FilterKey, FilterableKeys, SecretSource, VectorSpec,
};
use serde::Deserialize;

/// The connector's configuration, as written in the host's store table.
///
/// ```toml
/// backend = "embedded"          # or "server"
/// path = "data/qdrant"          # embedded only
/// url = "http://127.0.0.1:6334" # server only (gRPC port)
/// api_key = { env = "QDRANT_API_KEY" } # server only, optional
/// timeout_ms = 5000             # server only
/// collection = "kyro_documents"
/// dimension = 768
/// distance = "cosine"
/// filterable_keys = ["lang", "year"]
/// create_collection = true
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QdrantConfig {
    /// `server` (a Qdrant server over gRPC) or `embedded` (the qdrant-edge engine in-process).
    pub backend: String,
    /// Server only: the gRPC URL, such as `http://127.0.0.1:6334`.
    pub url: Option<String>,
    /// Server only: the API key, if the server wants one.
    pub api_key: Option<SecretSource>,
    /// Server only: the bound on every call to the server, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Embedded only: the directory holding the engine's data; the collection is a subdirectory.
    pub path: Option<PathBuf>,
    /// The collection holding the documents.
    pub collection: String,
    /// Vector dimension.
    pub dimension: u32,
    /// `cosine`, `l2` or `inner_product`.
    #[serde(default = "default_distance")]
    pub distance: String,
    /// Payload field holding the tenant.
    #[serde(default = "default_tenant_field")]
    pub tenant_field: String,
    /// Payload field holding the namespace.
    #[serde(default = "default_namespace_field")]
    pub namespace_field: String,
    /// Payload field holding the document id.
    #[serde(default = "default_id_field")]
    pub id_field: String,
    /// Payload field holding the content.
    #[serde(default = "default_content_field")]
    pub content_field: String,
    /// Payload field holding the metadata, as a nested object of strings.
    #[serde(default = "default_metadata_field")]
    pub metadata_field: String,
    /// Payload field holding the revision.
    #[serde(default = "default_revision_field")]
    pub revision_field: String,
    /// Metadata keys that may appear in filters.
    #[serde(default)]
    pub filterable_keys: Vec<String>,
    /// Largest `top_k` a search may ask for.
    #[serde(default = "default_max_top_k")]
    pub max_top_k: u32,
    /// Most ids in one fetch.
    #[serde(default = "default_max_fetch_ids")]
    pub max_fetch_ids: u32,
    /// Whether to create the collection (and its payload indexes) when it does not exist.
    #[serde(default)]
    pub create_collection: bool,
}

fn default_distance() -> String {
    "cosine".to_owned()
}

fn default_tenant_field() -> String {
    "tenant_id".to_owned()
}

fn default_namespace_field() -> String {
    "namespace".to_owned()
}

fn default_id_field() -> String {
    "doc_id".to_owned()
}

fn default_content_field() -> String {
    "content".to_owned()
}

fn default_metadata_field() -> String {
    "metadata".to_owned()
}

fn default_revision_field() -> String {
    "revision".to_owned()
}

fn default_max_top_k() -> u32 {
    100
}

fn default_max_fetch_ids() -> u32 {
    100
}

/// The default bound on a server call.
const DEFAULT_TIMEOUT_MS: u64 = 5_000;
/// The longest bound a configuration may ask for.
const MAX_TIMEOUT_MS: u64 = 600_000;
/// Suffix of the payload field that mirrors numeric-looking metadata values as numbers.
const NUMERIC_SUFFIX: &str = "_numeric";

/// Where the documents live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A Qdrant server, reached over gRPC.
    Server(ServerSettings),
    /// The qdrant-edge engine, in this process, over a local directory.
    Embedded(EmbeddedSettings),
}

/// How to reach a Qdrant server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    url: String,
    api_key: Option<SecretSource>,
    timeout: Duration,
}

impl ServerSettings {
    /// The gRPC URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where the API key comes from, if any.
    pub fn api_key(&self) -> Option<&SecretSource> {
        self.api_key.as_ref()
    }

    /// The bound on every call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// Where the embedded engine keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedSettings {
    path: PathBuf,
}

impl EmbeddedSettings {
    /// The data directory; the collection is the subdirectory named after it.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

/// The payload field names of the document model, all checked identifiers and all distinct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadFields {
    pub(crate) tenant: String,
    pub(crate) namespace: String,
    pub(crate) id: String,
    pub(crate) content: String,
    pub(crate) metadata: String,
    pub(crate) metadata_numeric: String,
    pub(crate) revision: String,
}

impl PayloadFields {
    /// The field holding the tenant.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The field holding the namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The field holding the document id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The field holding the metadata object (string values).
    pub fn metadata(&self) -> &str {
        &self.metadata
    }

    /// The field mirroring numeric-looking metadata values as numbers, for range filters:
    /// `<metadata_field>_numeric`.
    pub fn metadata_numeric(&self) -> &str {
        &self.metadata_numeric
    }
}

/// A checked [`QdrantConfig`]: every value is in range and every field name is an identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedConfig {
    backend: Backend,
    collection: String,
    vector: VectorSpec,
    fields: PayloadFields,
    filterable_keys: BTreeSet<FilterKey>,
    caps: Caps,
    create_collection: bool,
}

impl ValidatedConfig {
    /// The backend and how to reach it.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The collection name.
    pub fn collection(&self) -> &str {
        &self.collection
    }

    /// Dimension and distance.
    pub fn vector(&self) -> VectorSpec {
        self.vector
    }

    /// The payload field names.
    pub fn fields(&self) -> &PayloadFields {
        &self.fields
    }

    /// The declared filterable keys.
    pub fn filterable_keys(&self) -> FilterableKeys {
        FilterableKeys::Listed(self.filterable_keys.clone())
    }

    /// The caps the connector enforces.
    pub fn caps(&self) -> Caps {
        self.caps
    }

    /// Whether a missing collection is created on open.
    pub fn create_collection(&self) -> bool {
        self.create_collection
    }
}

impl QdrantConfig {
    /// Checks the configuration without any IO.
    ///
    /// # Errors
    ///
    /// `Configuration`, naming the key at fault and never its value.
    pub fn validate(self) -> Result<ValidatedConfig, ConnectorError> {
        let backend = match self.backend.as_str() {
            "server" => {
                refuse_present("path", self.path.is_some(), "server")?;
                let url = self
                    .url
                    .ok_or_else(|| config_error("url is required with backend = \"server\""))?;
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(config_error("url must start with http:// or https://"));
                }
                let timeout_ms = self.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
                if timeout_ms == 0 || timeout_ms > MAX_TIMEOUT_MS {
                    return Err(config_error("timeout_ms must be in 1..=600000"));
                }
                Backend::Server(ServerSettings {
                    url,
                    api_key: self.api_key,
                    timeout: Duration::from_millis(timeout_ms),
                })
            }
            "embedded" => {
                refuse_present("url", self.url.is_some(), "embedded")?;
                refuse_present("api_key", self.api_key.is_some(), "embedded")?;
                refuse_present("timeout_ms", self.timeout_ms.is_some(), "embedded")?;
                let path = self
                    .path
                    .ok_or_else(|| config_error("path is required with backend = \"embedded\""))?;
                if path.as_os_str().is_empty() {
                    return Err(config_error("path must not be empty"));
                }
                Backend::Embedded(EmbeddedSettings { path })
            }
            _ => return Err(config_error("backend must be \"server\" or \"embedded\"")),
        };
        check_identifier("collection", &self.collection)?;
        let distance = match self.distance.as_str() {
            "cosine" => Distance::Cosine,
            "l2" => Distance::L2,
            "inner_product" => Distance::InnerProduct,
            _ => return Err(config_error("distance must be cosine, l2 or inner_product")),
        };
        if self.dimension == 0 || self.dimension > 16_384 {
            return Err(config_error("dimension must be in 1..=16384"));
        }
        let metadata_numeric = format!("{}{NUMERIC_SUFFIX}", self.metadata_field);
        let named_fields = [
            ("tenant_field", &self.tenant_field),
            ("namespace_field", &self.namespace_field),
            ("id_field", &self.id_field),
            ("content_field", &self.content_field),
            ("metadata_field", &self.metadata_field),
            ("revision_field", &self.revision_field),
        ];
        let mut seen = BTreeSet::new();
        for (key, field) in named_fields {
            check_identifier(key, field)?;
            if !seen.insert(field.as_str()) {
                return Err(config_error(format!("{key} names the same payload field as another")));
            }
        }
        if seen.contains(metadata_numeric.as_str()) {
            return Err(config_error(
                "a payload field name collides with metadata_field + \"_numeric\", which holds numeric metadata",
            ));
        }
        let mut filterable_keys = BTreeSet::new();
        for key in self.filterable_keys {
            let key = FilterKey::new(key).map_err(|_| {
                config_error("filterable_keys must hold keys of 1..=128 characters A-Z a-z 0-9 _")
            })?;
            filterable_keys.insert(key);
        }
        if self.max_top_k == 0 || self.max_top_k > Caps::CONTRACT.max_top_k {
            return Err(config_error("max_top_k must be in 1..=1000"));
        }
        if self.max_fetch_ids == 0 || self.max_fetch_ids > Caps::CONTRACT.max_fetch_ids {
            return Err(config_error("max_fetch_ids must be in 1..=1000"));
        }
        Ok(ValidatedConfig {
            backend,
            collection: self.collection,
            vector: VectorSpec { dimension: self.dimension, distance },
            fields: PayloadFields {
                tenant: self.tenant_field,
                namespace: self.namespace_field,
                id: self.id_field,
                content: self.content_field,
                metadata: self.metadata_field,
                metadata_numeric,
                revision: self.revision_field,
            },
            filterable_keys,
            caps: Caps {
                max_top_k: self.max_top_k,
                max_fetch_ids: self.max_fetch_ids,
                ..Caps::CONTRACT
            },
            create_collection: self.create_collection,
        })
    }
}

fn config_error(message: impl Into<String>) -> ConnectorError {
    ConnectorError::configuration(message)
}

fn refuse_present(key: &str, present: bool, backend: &str) -> Result<(), ConnectorError> {
    if present {
        Err(config_error(format!("{key} is not used with backend = \"{backend}\"; remove it")))
    } else {
        Ok(())
    }
}

/// Field and collection names are plain identifiers, so they can never be read as a JSON path,
/// an operator or a path outside the data directory.
fn check_identifier(key: &str, value: &str) -> Result<(), ConnectorError> {
    let valid = !value.is_empty()
        && value.len() <= 128
        && value.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
    if valid {
        Ok(())
    } else {
        Err(config_error(format!("{key} must be 1..=128 characters A-Z a-z 0-9 _")))
    }
}
