//! The pgvector connector's configuration: the raw, deserialized [`PgvectorConfig`], its pure
//! [`PgvectorConfig::validate`] into a [`ValidatedPgvectorConfig`], and the checked values
//! (identifiers, enums, bounded numbers) the rest of the crate relies on.
//!
//! Nothing here does IO: the DSN stays an unresolved [`SecretSource`] until `connect`, and the
//! live catalog is checked there too. Errors name the key at fault and never echo a value, because
//! any value may be a secret pasted into the wrong key.

use std::collections::BTreeSet;
use std::time::Duration;

use kyro_connector_sdk::{Caps, ConnectorError, Distance, FilterKey, OwnershipMode, SecretSource};
use serde::Deserialize;

/// A pgvector store, as written in the host's configuration.
///
/// ```toml
/// dsn = { env = "KYRO_PG_DSN" }
/// table = "public.kyro_documents"
/// dimension = 768
/// distance = "cosine"
/// ownership_mode = "write_through"
/// filterable_keys = ["lang", "year"]
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgvectorConfig {
    /// Where the `postgres://` connection URL comes from; always redacted.
    pub dsn: SecretSource,
    /// The table, optionally schema-qualified (`schema.table`); names are used exactly as given.
    pub table: String,
    /// Which column plays which role.
    #[serde(default)]
    pub columns: ColumnsConfig,
    /// Number of dimensions of the embedding column, `vector(dimension)`. When left out, the
    /// column's own `vector(N)` is used (and declared); `kyro init` writes it out.
    #[serde(default)]
    pub dimension: Option<u32>,
    /// `cosine` (default), `l2` or `inner_product`.
    #[serde(default = "default_distance")]
    pub distance: String,
    /// Metadata keys that may appear in filters.
    #[serde(default)]
    pub filterable_keys: Vec<String>,
    /// `write_through`, `event_feed` or `best_effort`.
    pub ownership_mode: String,
    /// How rows are keyed by their writers: `tenant_namespace_id` (default), `tenant_id` or `id`.
    #[serde(default = "default_mutation_key_mode")]
    pub mutation_key_mode: String,
    /// Most connections in the pool, 1..=64.
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// Longest a new connection may take to open, in milliseconds, 1..=600000.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Server-side `statement_timeout` of every statement, in milliseconds, 1..=600000.
    #[serde(default = "default_statement_timeout_ms")]
    pub statement_timeout_ms: u64,
    /// `hnsw.ef_search` for each search, 1..=1000.
    #[serde(default = "default_hnsw_ef_search")]
    pub hnsw_ef_search: u32,
    /// `hnsw.iterative_scan` for each search: `off`, `strict_order` (default) or `relaxed_order`.
    #[serde(default = "default_hnsw_iterative_scan")]
    pub hnsw_iterative_scan: String,
    /// Largest `top_k` a search may ask for, 1..=1000.
    #[serde(default = "default_max_top_k")]
    pub max_top_k: u32,
    /// Most ids in one fetch, 1..=1000.
    #[serde(default = "default_max_fetch_ids")]
    pub max_fetch_ids: u32,
}

/// pgvector's `vector` type holds at most 16000 dimensions.
pub(crate) const MAX_DIMENSION: u32 = 16_000;

/// Column names by role; each defaults to the name in `examples/pgvector-live/schema.sql`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ColumnsConfig {
    /// Tenant column, `text` or `varchar`.
    pub tenant: String,
    /// Namespace column, `text` or `varchar`.
    pub namespace: String,
    /// Document id column, `text` or `varchar`.
    pub id: String,
    /// Embedding column, `vector(dimension)`.
    pub embedding: String,
    /// Metadata column, `jsonb`.
    pub metadata: String,
    /// Content column, `text` or `varchar`.
    pub content: String,
    /// Change marker column, `timestamptz`, `bigint` or `integer`.
    pub watermark: String,
}

impl Default for ColumnsConfig {
    fn default() -> Self {
        Self {
            tenant: "tenant_id".to_owned(),
            namespace: "namespace".to_owned(),
            id: "id".to_owned(),
            embedding: "embedding".to_owned(),
            metadata: "metadata".to_owned(),
            content: "content".to_owned(),
            watermark: "updated_at".to_owned(),
        }
    }
}

fn default_distance() -> String {
    "cosine".to_owned()
}

fn default_mutation_key_mode() -> String {
    "tenant_namespace_id".to_owned()
}

fn default_pool_size() -> u32 {
    4
}

fn default_connect_timeout_ms() -> u64 {
    5_000
}

fn default_statement_timeout_ms() -> u64 {
    5_000
}

fn default_hnsw_ef_search() -> u32 {
    40
}

fn default_hnsw_iterative_scan() -> String {
    "strict_order".to_owned()
}

fn default_max_top_k() -> u32 {
    100
}

fn default_max_fetch_ids() -> u32 {
    100
}

/// Why a configuration was refused, before any IO.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value breaks a rule; the message names the key and the rule, never the value.
    #[error("invalid pgvector connector config at `{key}`: {rule}")]
    Invalid {
        /// The key path, such as `columns.tenant`.
        key: String,
        /// The rule the value breaks.
        rule: &'static str,
    },
}

impl ConfigError {
    fn invalid(key: impl Into<String>, rule: &'static str) -> Self {
        Self::Invalid { key: key.into(), rule }
    }
}

impl From<ConfigError> for ConnectorError {
    fn from(err: ConfigError) -> Self {
        ConnectorError::configuration(err.to_string())
    }
}

/// A PostgreSQL identifier that passed the connector's rules; always quoted in SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identifier(String);

impl Identifier {
    /// Longest identifier PostgreSQL keeps without truncating (`NAMEDATALEN - 1`).
    const MAX_BYTES: usize = 63;

    /// Checks `text`: 1..=63 bytes, a letter or `_` first, then letters, digits, `_` or `$`.
    fn new(key: &str, text: &str) -> Result<Self, ConfigError> {
        let mut chars = text.chars();
        let first_ok = chars.next().is_some_and(|first| first.is_alphabetic() || first == '_');
        let rest_ok = chars.all(|next| next.is_alphanumeric() || next == '_' || next == '$');
        if !first_ok || !rest_ok || text.len() > Self::MAX_BYTES {
            return Err(ConfigError::invalid(
                key,
                "must be an identifier of 1..=63 bytes: a letter or _ first, then letters, digits, _ or $",
            ));
        }
        Ok(Self(text.to_owned()))
    }

    /// The name as the catalog stores it.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as a quoted SQL identifier. The rules above exclude `"`, but it is doubled anyway
    /// so quoting is correct on its own.
    pub(crate) fn quoted(&self) -> String {
        format!("\"{}\"", self.0.replace('"', "\"\""))
    }
}

/// A table name, optionally schema-qualified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableName {
    /// `None` resolves through the connection's `search_path` once, at open.
    pub(crate) schema: Option<Identifier>,
    pub(crate) name: Identifier,
}

impl TableName {
    fn parse(text: &str) -> Result<Self, ConfigError> {
        match text.split('.').collect::<Vec<_>>().as_slice() {
            [name] => Ok(Self { schema: None, name: Identifier::new("table", name)? }),
            [schema, name] => Ok(Self {
                schema: Some(Identifier::new("table", schema)?),
                name: Identifier::new("table", name)?,
            }),
            _ => Err(ConfigError::invalid("table", "must be `table` or `schema.table`")),
        }
    }

    /// `"schema"."table"` or `"table"`, for catalog lookups with `to_regclass`.
    pub(crate) fn quoted(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{}.{}", schema.quoted(), self.name.quoted()),
            None => self.name.quoted(),
        }
    }
}

/// The checked column names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Columns {
    pub(crate) tenant: Identifier,
    pub(crate) namespace: Identifier,
    pub(crate) id: Identifier,
    pub(crate) embedding: Identifier,
    pub(crate) metadata: Identifier,
    pub(crate) content: Identifier,
    pub(crate) watermark: Identifier,
}

impl Columns {
    fn validate(raw: &ColumnsConfig) -> Result<Self, ConfigError> {
        let columns = Self {
            tenant: Identifier::new("columns.tenant", &raw.tenant)?,
            namespace: Identifier::new("columns.namespace", &raw.namespace)?,
            id: Identifier::new("columns.id", &raw.id)?,
            embedding: Identifier::new("columns.embedding", &raw.embedding)?,
            metadata: Identifier::new("columns.metadata", &raw.metadata)?,
            content: Identifier::new("columns.content", &raw.content)?,
            watermark: Identifier::new("columns.watermark", &raw.watermark)?,
        };
        let names = columns.roles().map(|(_, column)| column.as_str());
        if names.iter().collect::<BTreeSet<_>>().len() != names.len() {
            return Err(ConfigError::invalid("columns", "each role needs its own column"));
        }
        Ok(columns)
    }

    /// Every role with its config key, in declaration order.
    pub(crate) fn roles(&self) -> [(&'static str, &Identifier); 7] {
        [
            ("columns.tenant", &self.tenant),
            ("columns.namespace", &self.namespace),
            ("columns.id", &self.id),
            ("columns.embedding", &self.embedding),
            ("columns.metadata", &self.metadata),
            ("columns.content", &self.content),
            ("columns.watermark", &self.watermark),
        ]
    }
}

/// How writers key rows. Only `TenantNamespaceId` can back write-through mutations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MutationKeyMode {
    TenantNamespaceId,
    TenantId,
    Id,
}

/// pgvector's `hnsw.iterative_scan` (pgvector 0.8 and later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IterativeScan {
    Off,
    StrictOrder,
    RelaxedOrder,
}

impl IterativeScan {
    /// The GUC value; a fixed string, so it may be written into `SET LOCAL`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::StrictOrder => "strict_order",
            Self::RelaxedOrder => "relaxed_order",
        }
    }
}

/// `hnsw.ef_search`, 1..=1000 (pgvector's own range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EfSearch(u32);

impl EfSearch {
    pub(crate) fn value(self) -> u32 {
        self.0
    }
}

/// A configuration that passed every check that needs no IO.
#[derive(Debug)]
pub struct ValidatedPgvectorConfig {
    pub(crate) dsn: SecretSource,
    pub(crate) table: TableName,
    pub(crate) columns: Columns,
    /// `None` reads the dimension from the embedding column when the connector opens.
    pub(crate) dimension: Option<u32>,
    pub(crate) distance: Distance,
    pub(crate) filterable_keys: BTreeSet<FilterKey>,
    pub(crate) ownership_mode: OwnershipMode,
    pub(crate) pool_size: u32,
    pub(crate) connect_timeout: Duration,
    pub(crate) statement_timeout: Duration,
    pub(crate) ef_search: EfSearch,
    pub(crate) iterative_scan: IterativeScan,
    pub(crate) caps: Caps,
}

impl PgvectorConfig {
    /// Checks every key that needs no IO. The DSN is not resolved here.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the first key at fault.
    pub fn validate(self) -> Result<ValidatedPgvectorConfig, ConfigError> {
        let table = TableName::parse(&self.table)?;
        let columns = Columns::validate(&self.columns)?;
        if let Some(dimension) = self.dimension
            && (dimension == 0 || dimension > MAX_DIMENSION)
        {
            return Err(ConfigError::invalid("dimension", "must be in 1..=16000"));
        }
        let distance = match self.distance.as_str() {
            "cosine" => Distance::Cosine,
            "l2" => Distance::L2,
            "inner_product" => Distance::InnerProduct,
            _ => {
                return Err(ConfigError::invalid(
                    "distance",
                    "must be cosine, l2 or inner_product",
                ));
            }
        };
        let mut filterable_keys = BTreeSet::new();
        for (key_idx, key) in self.filterable_keys.into_iter().enumerate() {
            let key = FilterKey::new(key).map_err(|_| {
                ConfigError::invalid(
                    format!("filterable_keys[{key_idx}]"),
                    "must be a metadata key: 1..=128 bytes of A-Z, a-z, 0-9 and _",
                )
            })?;
            filterable_keys.insert(key);
        }
        let ownership_mode = match self.ownership_mode.as_str() {
            "write_through" => OwnershipMode::WriteThrough,
            "event_feed" => OwnershipMode::EventFeed,
            "best_effort" => OwnershipMode::BestEffort,
            "snapshot_bundle" => {
                return Err(ConfigError::invalid(
                    "ownership_mode",
                    "snapshot bundles are not supported: a pgvector table changes in place and has no immutable version; use write_through, event_feed or best_effort",
                ));
            }
            _ => {
                return Err(ConfigError::invalid(
                    "ownership_mode",
                    "must be write_through, event_feed or best_effort",
                ));
            }
        };
        let mutation_key_mode = match self.mutation_key_mode.as_str() {
            "tenant_namespace_id" => MutationKeyMode::TenantNamespaceId,
            "tenant_id" => MutationKeyMode::TenantId,
            "id" => MutationKeyMode::Id,
            _ => {
                return Err(ConfigError::invalid(
                    "mutation_key_mode",
                    "must be tenant_namespace_id, tenant_id or id",
                ));
            }
        };
        if ownership_mode == OwnershipMode::WriteThrough
            && mutation_key_mode != MutationKeyMode::TenantNamespaceId
        {
            return Err(ConfigError::invalid(
                "mutation_key_mode",
                "write_through needs mutation_key_mode = tenant_namespace_id: a write must be keyed by tenant, namespace and id so it can never touch another scope",
            ));
        }
        if !(1..=64).contains(&self.pool_size) {
            return Err(ConfigError::invalid("pool_size", "must be in 1..=64"));
        }
        let connect_timeout = bounded_millis("connect_timeout_ms", self.connect_timeout_ms)?;
        let statement_timeout = bounded_millis("statement_timeout_ms", self.statement_timeout_ms)?;
        if !(1..=1000).contains(&self.hnsw_ef_search) {
            return Err(ConfigError::invalid("hnsw_ef_search", "must be in 1..=1000"));
        }
        let iterative_scan = match self.hnsw_iterative_scan.as_str() {
            "off" => IterativeScan::Off,
            "strict_order" => IterativeScan::StrictOrder,
            "relaxed_order" => IterativeScan::RelaxedOrder,
            _ => {
                return Err(ConfigError::invalid(
                    "hnsw_iterative_scan",
                    "must be off, strict_order or relaxed_order",
                ));
            }
        };
        if self.max_top_k == 0 || self.max_top_k > Caps::CONTRACT.max_top_k {
            return Err(ConfigError::invalid("max_top_k", "must be in 1..=1000"));
        }
        if self.max_fetch_ids == 0 || self.max_fetch_ids > Caps::CONTRACT.max_fetch_ids {
            return Err(ConfigError::invalid("max_fetch_ids", "must be in 1..=1000"));
        }
        Ok(ValidatedPgvectorConfig {
            dsn: self.dsn,
            table,
            columns,
            dimension: self.dimension,
            distance,
            filterable_keys,
            ownership_mode,
            pool_size: self.pool_size,
            connect_timeout,
            statement_timeout,
            ef_search: EfSearch(self.hnsw_ef_search),
            iterative_scan,
            caps: Caps {
                max_top_k: self.max_top_k,
                max_fetch_ids: self.max_fetch_ids,
                ..Caps::CONTRACT
            },
        })
    }
}

fn bounded_millis(key: &'static str, millis: u64) -> Result<Duration, ConfigError> {
    if !(1..=600_000).contains(&millis) {
        return Err(ConfigError::invalid(key, "must be in 1..=600000 milliseconds"));
    }
    Ok(Duration::from_millis(millis))
}
