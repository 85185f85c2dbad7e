//! The KyroDB connector for PostgreSQL with pgvector.
//!
//! One table holds every tenant's documents; each operation is confined to one tenant and
//! namespace by bound parameters in its own `WHERE` clause (or `ON CONFLICT` key), never by
//! filtering afterwards. What it backs:
//! - scoped nearest-neighbour search with the filter algebra translated to bound SQL over the
//!   metadata `jsonb` column, `hnsw.ef_search` and `hnsw.iterative_scan` set per query
//!   (`SET LOCAL`), and an honest report of short results ([`ShortfallReason`]);
//! - scoped fetch by ids;
//! - write-through upsert and delete with a mutation ACK, only when `ownership_mode =
//!   write_through` and the table has a key on exactly (tenant, namespace, id);
//! - a per-scope native watermark, `max(watermark column)` within the scope.
//!
//! The configuration is checked without IO ([`PgvectorConfig::validate`]), then against the live
//! catalog when the connector opens ([`ValidatedPgvectorConfig::connect`]), which reports
//! everything the table lacks at once, each with the SQL that would fix it, as
//! [`kyro_connector_sdk::SetupFindings`].
//!
//! What it deliberately does not do: create or migrate tables and indexes, serve snapshot
//! bundles (a table changes in place), advance the watermark on deletes (`max()` cannot see a
//! removed row; write-through deletes are covered by their ACK, external ones by change events),
//! or speak TLS (this build has no TLS support; use it on loopback or a private network).
//!
//! The connector owns its tokio runtime and blocks on it in each call (see
//! `kyro_connector_sdk::runtime`); the DSN never appears in errors, logs, `Debug` output or
//! health.

mod catalog;
mod config;
mod error;
mod filter;
mod sql;
mod store;

#[cfg(test)]
mod tests;

use std::str::FromStr;
use std::sync::Arc;

use kyro_connector_sdk::{
    CapabilityManifest, Caps, Connector, ConnectorConfig, ConnectorError, ConnectorHealth,
    ConnectorPlugin, Distance, Document, DocumentId, FilterableKeys, HostContext, LogLevel,
    MutationAck, Operation, OwnershipMode, PluginInfo, Result, Scope, SearchRequest,
    SearchResponse, ShortfallReason, StoredDocument, VectorSpec, Watermark, WatermarkKind,
};
use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

pub use crate::config::{ColumnsConfig, ConfigError, PgvectorConfig, ValidatedPgvectorConfig};
use crate::error::Redactor;
use crate::sql::{StatementParts, Statements};

/// A pgvector table behind KyroDB.
pub struct PgvectorConnector {
    /// Declared before the runtime so it is dropped first, while the runtime still runs.
    pool: PgPool,
    runtime: tokio::runtime::Runtime,
    host: HostContext,
    redactor: Redactor,
    statements: Statements,
    /// The `BEGIN; SET LOCAL ...` of a search, shared so each call clones a pointer.
    begin_search: Arc<str>,
    manifest: CapabilityManifest,
    /// `"schema"."table"`, as resolved in the catalog.
    table: String,
    /// The quoted metadata column, for filter translation.
    metadata_column: String,
    ownership_mode: OwnershipMode,
    distance: Distance,
    dimension: u32,
    /// What bounds an HNSW scan, for short-result reports.
    scan_limit_detail: String,
}

impl std::fmt::Debug for PgvectorConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgvectorConnector")
            .field("table", &self.table)
            .field("ownership_mode", &self.ownership_mode)
            .field("manifest", &self.manifest)
            .finish_non_exhaustive()
    }
}

impl Drop for PgvectorConnector {
    fn drop(&mut self) {
        // Close connections politely while the runtime still runs; `block_on` would panic on a
        // thread that is itself inside a runtime, where dropping the pool is enough.
        if tokio::runtime::Handle::try_current().is_err() {
            self.runtime.block_on(self.pool.close());
        }
    }
}

impl ValidatedPgvectorConfig {
    /// Resolves the DSN, connects, and checks the live catalog against this configuration.
    ///
    /// # Errors
    ///
    /// `Configuration` when the DSN cannot be resolved or parsed, the credentials are refused, or
    /// the store cannot back the configuration (then the error carries every finding: read them
    /// with [`kyro_connector_sdk::SetupFindingsExt::setup_findings`]); `Unavailable` or `Timeout`
    /// when the database cannot be reached. No message contains the DSN.
    pub fn connect(self, host: HostContext) -> Result<PgvectorConnector> {
        let dsn = self.dsn.resolve()?;
        let redactor = Redactor::new(dsn.clone());
        if !(dsn.expose().starts_with("postgres://") || dsn.expose().starts_with("postgresql://")) {
            return Err(ConnectorError::configuration(
                "invalid pgvector connector config at `dsn`: must be a postgres:// or postgresql:// URL",
            ));
        }
        let statement_timeout_ms = self.statement_timeout.as_millis().to_string();
        let connect_options = PgConnectOptions::from_str(dsn.expose())
            .map_err(|_| {
                ConnectorError::configuration(
                    "invalid pgvector connector config at `dsn`: not a valid PostgreSQL connection URL",
                )
            })?
            .application_name("kyro-connector-pgvector")
            // Every statement is planned with its real tenant and LIMIT: a cached generic plan
            // cannot see either, and for vector search it flips between the HNSW index and an
            // exact scan depending on each connection's history (seen in the benchmark).
            .options([
                ("statement_timeout", statement_timeout_ms.as_str()),
                ("plan_cache_mode", "force_custom_plan"),
            ])
            .disable_statement_logging();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kyro-pgvector")
            .enable_all()
            .build()
            .map_err(|err| {
                ConnectorError::internal(format!(
                    "failed to start the pgvector connector's runtime: {}",
                    err.kind()
                ))
            })?;
        let pool_options = PgPoolOptions::new()
            .max_connections(self.pool_size)
            .acquire_timeout(self.connect_timeout)
            // A ping on every acquire costs a round trip per call; ping only connections that sat
            // idle long enough for a server or firewall to have dropped them.
            .test_before_acquire(false)
            .before_acquire(|connection, meta| {
                Box::pin(async move {
                    if meta.idle_for.as_secs() >= 30 {
                        sqlx::Connection::ping(connection).await?;
                    }
                    Ok(true)
                })
            });
        let pool = match runtime.block_on(pool_options.connect_with(connect_options.clone())) {
            Ok(pool) => pool,
            // The pool retries a refused or unresolvable connection until its timeout and then
            // hides why; one direct attempt says why.
            Err(sqlx::Error::PoolTimedOut) => {
                let attempt = runtime.block_on(async {
                    tokio::time::timeout(self.connect_timeout, connect_options.connect()).await
                });
                let cause = match attempt {
                    Ok(Err(err)) => err,
                    _ => sqlx::Error::PoolTimedOut,
                };
                return Err(redactor.connect_error(&cause));
            }
            Err(err) => return Err(redactor.connect_error(&err)),
        };
        let catalog = runtime.block_on(catalog::check(&pool, &self)).map_err(|err| match err {
            catalog::CheckError::Store(err) => redactor.store_error("catalog check", &err),
            catalog::CheckError::Findings(findings) => findings.into_error(),
        })?;
        let server_version = runtime
            .block_on(store::server_version(&pool))
            .map_err(|err| redactor.store_error("health", &err))?;

        let iterative_scan = catalog.has_iterative_scan.then_some(self.iterative_scan);
        let statements = Statements::new(&StatementParts {
            table: &catalog.table,
            columns: &self.columns,
            distance: self.distance,
            watermark_type: catalog.watermark_type,
            ef_search: self.ef_search,
            iterative_scan,
        });
        let scan_limit_detail = match iterative_scan {
            Some(iterative_scan) => format!(
                "hnsw.ef_search={}, hnsw.iterative_scan={}",
                self.ef_search.value(),
                iterative_scan.as_str()
            ),
            None => format!("hnsw.ef_search={}", self.ef_search.value()),
        };
        let vector = VectorSpec { dimension: catalog.dimension, distance: self.distance };
        let manifest = declared_manifest(&self, vector);
        host.log(
            LogLevel::Info,
            &format!(
                "opened pgvector store {} ({server_version}, pgvector {}), ownership_mode {}",
                catalog.table, catalog.pgvector_version, self.ownership_mode
            ),
        );
        for finding in &catalog.advisories {
            host.log(LogLevel::Warn, &finding.to_log_line());
        }
        Ok(PgvectorConnector {
            pool,
            runtime,
            host,
            redactor,
            begin_search: Arc::from(statements.begin_search.as_str()),
            statements,
            manifest,
            table: catalog.table,
            metadata_column: self.columns.metadata.quoted(),
            ownership_mode: self.ownership_mode,
            distance: self.distance,
            dimension: catalog.dimension,
            scan_limit_detail,
        })
    }
}

/// What an opened connector declares: search, fetch and the per-scope watermark always; upsert
/// and delete only for write-through; exactly the configured ownership mode.
fn declared_manifest(config: &ValidatedPgvectorConfig, vector: VectorSpec) -> CapabilityManifest {
    let mut manifest = CapabilityManifest::closed()
        .with_operation(Operation::Search)
        .with_operation(Operation::Fetch)
        .with_operation(Operation::Watermark)
        .with_ownership_mode(config.ownership_mode)
        .with_watermark_kind(WatermarkKind::PerScopeNative)
        .with_filterable_keys(FilterableKeys::Listed(config.filterable_keys.clone()))
        .with_vector(vector)
        .with_caps(config.caps);
    if config.ownership_mode == OwnershipMode::WriteThrough {
        manifest = manifest.with_operation(Operation::Upsert).with_operation(Operation::Delete);
    }
    manifest
}

impl Connector for PgvectorConnector {
    fn describe(&self) -> CapabilityManifest {
        self.manifest.clone()
    }

    fn search(&self, scope: &Scope, request: &SearchRequest) -> Result<SearchResponse> {
        self.check_search(request)?;
        self.runtime.block_on(self.search_in_store(scope, request))
    }

    fn fetch(&self, scope: &Scope, ids: &[DocumentId]) -> Result<Vec<StoredDocument>> {
        self.manifest.check_fetch(ids)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.runtime.block_on(self.fetch_from_store(scope, ids))
    }

    fn upsert(&self, scope: &Scope, document: &Document) -> Result<MutationAck> {
        if self.ownership_mode != OwnershipMode::WriteThrough {
            return Err(ConnectorError::unsupported("upsert"));
        }
        let embedding = kyro_connector_sdk::document_embedding(document, self.dimension)?;
        self.runtime.block_on(self.upsert_in_store(scope, document, embedding))
    }

    fn delete(&self, scope: &Scope, id: &DocumentId) -> Result<MutationAck> {
        if self.ownership_mode != OwnershipMode::WriteThrough {
            return Err(ConnectorError::unsupported("delete"));
        }
        self.runtime.block_on(self.delete_in_store(scope, id))
    }

    fn watermark(&self, scope: &Scope) -> Result<Watermark> {
        self.runtime.block_on(self.watermark_in_store(scope))
    }

    fn health(&self) -> Result<ConnectorHealth> {
        self.runtime.block_on(self.health_of_store())
    }

    /// Writes rows into a certification scope the way the application's own writers would: the
    /// same statement as a write-through upsert, whatever the configured ownership mode.
    fn certification_seed(&self, scope: &Scope, documents: &[Document]) -> Result<()> {
        kyro_connector_sdk::ensure_certification_scope(scope)?;
        for document in documents {
            let embedding = kyro_connector_sdk::document_embedding(document, self.dimension)?;
            self.runtime.block_on(self.upsert_in_store(scope, document, embedding))?;
        }
        Ok(())
    }

    /// Deletes every row of a certification scope.
    fn certification_purge(&self, scope: &Scope) -> Result<()> {
        kyro_connector_sdk::ensure_certification_scope(scope)?;
        self.runtime.block_on(self.purge_in_store(scope))
    }
}

impl ConnectorPlugin for PgvectorConnector {
    fn plugin_info() -> PluginInfo {
        let manifest = CapabilityManifest::closed()
            .with_operation(Operation::Search)
            .with_operation(Operation::Fetch)
            .with_operation(Operation::Upsert)
            .with_operation(Operation::Delete)
            .with_operation(Operation::Watermark)
            .with_ownership_mode(OwnershipMode::WriteThrough)
            .with_ownership_mode(OwnershipMode::EventFeed)
            .with_ownership_mode(OwnershipMode::BestEffort)
            .with_watermark_kind(WatermarkKind::PerScopeNative)
            .with_filterable_keys(FilterableKeys::AnyValidKey)
            .with_caps(Caps::CONTRACT);
        PluginInfo::new(
            "pgvector",
            env!("CARGO_PKG_VERSION"),
            "PostgreSQL with pgvector: scoped search and fetch, write-through upsert and delete, per-scope watermarks",
            manifest,
        )
    }

    fn open(config: &ConnectorConfig, host: HostContext) -> Result<Self> {
        config.parse::<PgvectorConfig>()?.validate()?.connect(host)
    }
}

kyro_connector_sdk::export_connector!(PgvectorConnector);

/// Why a short search was short, decided by `store` and reported through [`SearchResponse`].
fn shortfall_reason(
    n_rows_returned: usize,
    n_rows_matching: usize,
    scan_limit_detail: &str,
) -> ShortfallReason {
    if n_rows_matching > n_rows_returned {
        ShortfallReason::IndexScanLimit { detail: scan_limit_detail.to_owned() }
    } else {
        ShortfallReason::Exhausted
    }
}
