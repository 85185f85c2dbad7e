//! The connector's operations against the database: each one a short transaction or a single
//! statement, with tenant and namespace bound in its `WHERE` clause.
//!
//! Request checks that need no IO (caps, dimensions, filter keys) happen before these run, in
//! `lib.rs` and [`PgvectorConnector::check_search`]. Driver errors leave through the connector's
//! `Redactor` only.

use std::collections::{BTreeMap, HashMap};

use kyro_connector_sdk::{
    ConnectorError, ConnectorHealth, Document, DocumentId, Embedding, FilterExpr, HealthStatus,
    LogLevel, Metadata, MutationAck, MutationOutcome, Result, Scope, SearchHit, SearchRequest,
    SearchResponse, StoredDocument, Watermark,
};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{AssertSqlSafe, Postgres, Row};

use crate::PgvectorConnector;
use crate::filter::{self, FilterBind};

#[cfg(test)]
mod tests;

/// The contract's most metadata entries on one document (`kyro_core::limits`, which the SDK does
/// not re-export).
const MAX_METADATA_ENTRIES: usize = 256;

/// Placeholder of a search's first filter parameter: `$1` tenant, `$2` namespace, `$3` limit.
const FIRST_FILTER_PARAM: usize = 4;

type Query<'q> = sqlx::query::Query<'q, Postgres, PgArguments>;

/// Column of a search's distance, after the document columns.
const DISTANCE_COLUMN: usize = 6;

/// A row of the `fetch` and `search` statements: id, metadata, content, watermark, and the
/// tenant and namespace the row itself holds.
pub(crate) struct DocumentRow {
    pub(crate) id: String,
    pub(crate) metadata: Option<String>,
    pub(crate) content: Option<String>,
    pub(crate) watermark: Option<i64>,
    pub(crate) tenant: String,
    pub(crate) namespace: String,
}

impl DocumentRow {
    fn decode(row: &PgRow) -> std::result::Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get(0)?,
            metadata: row.try_get(1)?,
            content: row.try_get(2)?,
            watermark: row.try_get(3)?,
            tenant: row.try_get(4)?,
            namespace: row.try_get(5)?,
        })
    }
}

/// The scope a row belongs to, from its own tenant and namespace columns: the request's scope
/// when the row holds exactly it (one more reference to the same value), otherwise the row's
/// own, so a row the query should never have matched reaches the host with its true label and
/// is refused there. `None` when the row's values are no valid scope.
pub(crate) fn row_scope(request: &Scope, tenant: String, namespace: String) -> Option<Scope> {
    if tenant == request.tenant_id() && namespace == request.namespace() {
        Some(request.clone())
    } else {
        Scope::new(tenant, namespace).ok()
    }
}

impl PgvectorConnector {
    /// Checks a search request against the declared dimension, caps and filterable keys.
    pub(crate) fn check_search(&self, request: &SearchRequest) -> Result<()> {
        if request.embedding.dimension() != self.dimension as usize {
            return Err(ConnectorError::invalid_request(format!(
                "query embedding has {} dimensions, the store has {}",
                request.embedding.dimension(),
                self.dimension
            )));
        }
        if request.top_k == 0 {
            return Err(ConnectorError::invalid_request("top_k must be at least 1"));
        }
        if request.top_k > self.manifest.caps.max_top_k {
            return Err(ConnectorError::limit_exceeded(format!(
                "top_k {} is over the cap of {}",
                request.top_k, self.manifest.caps.max_top_k
            )));
        }
        if let Some(filter) = &request.filter {
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
            if has_nul_value(filter.root()) {
                // PostgreSQL text cannot hold NUL, so the value could never be bound.
                return Err(ConnectorError::invalid_request(
                    "filter values cannot contain NUL characters",
                ));
            }
        }
        Ok(())
    }

    /// Logs a driver error (redacted) and returns it classified.
    fn store_failure(&self, operation: &'static str, err: &sqlx::Error) -> ConnectorError {
        let error = self.redactor.store_error(operation, err);
        self.host.log(LogLevel::Warn, error.message());
        error
    }

    pub(crate) async fn search_in_store(
        &self,
        scope: &Scope,
        request: &SearchRequest,
    ) -> Result<SearchResponse> {
        let filter = request.filter.as_ref().map(|filter| {
            filter::translate(filter.root(), &self.metadata_column, FIRST_FILTER_PARAM)
        });
        let filter_sql = filter.as_ref().map(|filter| filter.sql.as_str());
        let filter_binds = filter.as_ref().map_or(&[][..], |filter| filter.binds.as_slice());
        let embedding_param = FIRST_FILTER_PARAM + filter_binds.len();
        let search_sql =
            self.statements.search(filter_sql, embedding_param, request.include_content);
        let top_k = i64::from(request.top_k);
        let fail = |err: sqlx::Error| self.store_failure("search", &err);

        let mut transaction = self
            .pool
            .begin_with(AssertSqlSafe(std::sync::Arc::clone(&self.begin_search)))
            .await
            .map_err(fail)?;
        let query = scoped(sqlx::query(AssertSqlSafe(search_sql)), scope, top_k);
        let query = bind_filter(query, filter_binds).bind(vector(&request.embedding));
        let rows = query.fetch_all(&mut *transaction).await.map_err(fail)?;

        let mut hits = Vec::with_capacity(rows.len());
        let mut response_bytes = 0_usize;
        for row in &rows {
            let document = DocumentRow::decode(row).map_err(fail)?;
            let distance: Option<f64> = row.try_get(DISTANCE_COLUMN).map_err(fail)?;
            // A row without an embedding has no distance and is no neighbour.
            let Some(distance) = distance else { continue };
            let Some(stored) = self.stored_document(scope, document)? else { continue };
            response_bytes += stored.content.as_ref().map_or(0, String::len);
            hits.push(SearchHit {
                document: stored,
                score: crate::sql::score(self.distance, distance),
            });
        }
        self.check_response_bytes(response_bytes)?;
        // Relaxed iterative scans may return neighbours slightly out of order.
        hits.sort_by(|left, right| {
            right
                .score
                .total_cmp(&left.score)
                .then_with(|| left.document.id.cmp(&right.document.id))
        });

        let mut reason = kyro_connector_sdk::ShortfallReason::Exhausted;
        if rows.len() < request.top_k as usize {
            // Was the list complete, or did the index stop early? Count, up to top_k, the rows
            // the scope and filter really hold, in the same snapshot, through the scope index.
            let count_sql = self.statements.bounded_count(filter_sql);
            let query = scoped(sqlx::query(AssertSqlSafe(count_sql)), scope, top_k);
            let n_matching: i64 = bind_filter(query, filter_binds)
                .fetch_one(&mut *transaction)
                .await
                .and_then(|row| row.try_get(0))
                .map_err(fail)?;
            reason = crate::shortfall_reason(
                rows.len(),
                usize::try_from(n_matching).unwrap_or(0),
                &self.scan_limit_detail,
            );
        }
        transaction.commit().await.map_err(fail)?;
        Ok(SearchResponse::new(hits, request.top_k, reason))
    }

    pub(crate) async fn fetch_from_store(
        &self,
        scope: &Scope,
        ids: &[DocumentId],
    ) -> Result<Vec<StoredDocument>> {
        let fail = |err: sqlx::Error| self.store_failure("fetch", &err);
        let id_texts: Vec<&str> = ids.iter().map(DocumentId::as_str).collect();
        let rows = sqlx::query(AssertSqlSafe(self.statements.fetch.as_str()))
            .bind(scope.tenant_id())
            .bind(scope.namespace())
            .bind(&id_texts)
            .fetch_all(&self.pool)
            .await
            .map_err(fail)?;
        let mut by_id = HashMap::with_capacity(rows.len());
        let mut response_bytes = 0_usize;
        for row in &rows {
            let document = DocumentRow::decode(row).map_err(fail)?;
            if let Some(stored) = self.stored_document(scope, document)? {
                response_bytes += stored.content.as_ref().map_or(0, String::len);
                by_id.insert(stored.id.clone(), stored);
            }
        }
        self.check_response_bytes(response_bytes)?;
        // In the order asked for, as the reference store answers.
        Ok(ids.iter().filter_map(|id| by_id.get(id).cloned()).collect())
    }

    pub(crate) async fn upsert_in_store(
        &self,
        scope: &Scope,
        document: &Document,
        embedding: &Embedding,
    ) -> Result<MutationAck> {
        let fail = |err: sqlx::Error| self.store_failure("upsert", &err);
        let metadata = serde_json::to_string(document.metadata().as_map())
            .map_err(|_| ConnectorError::internal("failed to encode document metadata as JSON"))?;
        let mut transaction = self.pool.begin().await.map_err(fail)?;
        self.lock_scope(&mut transaction, scope).await.map_err(fail)?;
        let row = sqlx::query(AssertSqlSafe(self.statements.upsert.as_str()))
            .bind(scope.tenant_id())
            .bind(scope.namespace())
            .bind(document.id().as_str())
            .bind(vector(embedding))
            .bind(metadata)
            .bind(document.content())
            .fetch_one(&mut *transaction)
            .await
            .map_err(fail)?;
        let xmin: String = row.try_get(0).map_err(fail)?;
        let inserted: bool = row.try_get(1).map_err(fail)?;
        let watermark = to_watermark(row.try_get(2).map_err(fail)?)?;
        transaction.commit().await.map_err(fail)?;
        self.host.log(LogLevel::Debug, &format!("upserted one document in {scope}"));
        Ok(MutationAck {
            scope: scope.clone(),
            id: document.id().clone(),
            outcome: if inserted { MutationOutcome::Inserted } else { MutationOutcome::Updated },
            backend_mutation_id: format!("{xmin}@{}", watermark.value()),
            watermark: Some(watermark),
        })
    }

    pub(crate) async fn delete_in_store(
        &self,
        scope: &Scope,
        id: &DocumentId,
    ) -> Result<MutationAck> {
        let fail = |err: sqlx::Error| self.store_failure("delete", &err);
        let mut transaction = self.pool.begin().await.map_err(fail)?;
        self.lock_scope(&mut transaction, scope).await.map_err(fail)?;
        let n_deleted = sqlx::query(AssertSqlSafe(self.statements.delete.as_str()))
            .bind(scope.tenant_id())
            .bind(scope.namespace())
            .bind(id.as_str())
            .execute(&mut *transaction)
            .await
            .map_err(fail)?
            .rows_affected();
        let row = sqlx::query(AssertSqlSafe(self.statements.delete_ack.as_str()))
            .bind(scope.tenant_id())
            .bind(scope.namespace())
            .fetch_one(&mut *transaction)
            .await
            .map_err(fail)?;
        let transaction_id: Option<String> = row.try_get(0).map_err(fail)?;
        let watermark = to_watermark(row.try_get(1).map_err(fail)?)?;
        transaction.commit().await.map_err(fail)?;
        let outcome =
            if n_deleted > 0 { MutationOutcome::Deleted } else { MutationOutcome::NotFound };
        if n_deleted > 0 {
            self.host.log(LogLevel::Debug, &format!("deleted one document in {scope}"));
        }
        Ok(MutationAck {
            scope: scope.clone(),
            id: id.clone(),
            outcome,
            backend_mutation_id: format!(
                "{}@{}",
                transaction_id.as_deref().unwrap_or("none"),
                watermark.value()
            ),
            watermark: Some(watermark),
        })
    }

    /// Removes every row of a certification scope.
    pub(crate) async fn purge_in_store(&self, scope: &Scope) -> Result<()> {
        let fail = |err: sqlx::Error| self.store_failure("purge", &err);
        sqlx::query(AssertSqlSafe(self.statements.purge_scope.as_str()))
            .bind(scope.tenant_id())
            .bind(scope.namespace())
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        Ok(())
    }

    pub(crate) async fn watermark_in_store(&self, scope: &Scope) -> Result<Watermark> {
        let value: Option<i64> =
            sqlx::query_scalar(AssertSqlSafe(self.statements.scope_watermark.as_str()))
                .bind(scope.tenant_id())
                .bind(scope.namespace())
                .fetch_one(&self.pool)
                .await
                .map_err(|err| self.store_failure("watermark", &err))?;
        to_watermark(value)
    }

    pub(crate) async fn health_of_store(&self) -> Result<ConnectorHealth> {
        let fail = |err: sqlx::Error| self.store_failure("health", &err);
        let server_version = server_version(&self.pool).await.map_err(fail)?;
        let extension: Option<String> = sqlx::query_scalar(
            "SELECT extversion::text FROM pg_extension WHERE extname = 'vector'",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(fail)?;
        Ok(match extension {
            Some(pgvector_version) => {
                ConnectorHealth::healthy(format!("{server_version}, pgvector {pgvector_version}"))
            }
            None => ConnectorHealth {
                status: HealthStatus::Unhealthy,
                store_version: server_version,
                detail: Some("the vector extension is no longer installed".to_owned()),
            },
        })
    }

    /// Serializes writers of one scope until the transaction ends, so watermarks are taken in
    /// commit order within the scope.
    async fn lock_scope(
        &self,
        transaction: &mut sqlx::PgTransaction<'_>,
        scope: &Scope,
    ) -> std::result::Result<(), sqlx::Error> {
        sqlx::query(AssertSqlSafe(self.statements.lock_scope.as_str()))
            .bind(scope.tenant_id())
            .bind(scope.namespace())
            .bind(self.table.as_str())
            .execute(&mut **transaction)
            .await
            .map(|_| ())
    }

    /// A row as a stored document labelled with the row's own scope, or `None` when its id or
    /// scope does not satisfy the contract (written by another writer); that is logged, not
    /// fatal. `scope` is the request's, used for the log line and to share its value.
    fn stored_document(&self, scope: &Scope, row: DocumentRow) -> Result<Option<StoredDocument>> {
        let Some(label) = row_scope(scope, row.tenant, row.namespace) else {
            self.host.log(
                LogLevel::Warn,
                &format!(
                    "skipped a row read for {scope} whose tenant or namespace is not a valid scope"
                ),
            );
            return Ok(None);
        };
        let Ok(id) = DocumentId::new(row.id) else {
            self.host.log(
                LogLevel::Warn,
                &format!("skipped a row in {scope} whose id does not satisfy the contract"),
            );
            return Ok(None);
        };
        let metadata = match row.metadata.as_deref() {
            Some(text) => {
                let (metadata, n_dropped) = metadata_from_json(text);
                if n_dropped > 0 {
                    self.host.log(
                        LogLevel::Warn,
                        &format!(
                            "dropped {n_dropped} metadata entries of document {id} in {scope} that do not satisfy the contract"
                        ),
                    );
                }
                metadata
            }
            None => Metadata::default(),
        };
        Ok(Some(StoredDocument {
            scope: label,
            id,
            content: row.content,
            metadata,
            revision: None,
            watermark: Some(to_watermark(row.watermark)?),
        }))
    }

    fn check_response_bytes(&self, response_bytes: usize) -> Result<()> {
        if response_bytes as u64 > self.manifest.caps.max_response_bytes {
            return Err(ConnectorError::limit_exceeded(format!(
                "response would hold {response_bytes} bytes of content, over the cap of {}",
                self.manifest.caps.max_response_bytes
            )));
        }
        Ok(())
    }
}

/// `SELECT version()` shortened to `PostgreSQL 15.8`.
pub(crate) async fn server_version(
    pool: &sqlx::PgPool,
) -> std::result::Result<String, sqlx::Error> {
    let version: String = sqlx::query_scalar("SELECT version()").fetch_one(pool).await?;
    Ok(version.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
}

fn has_nul_value(node: &FilterExpr) -> bool {
    match node {
        FilterExpr::Exact { value, .. } => value.as_str().contains('\0'),
        FilterExpr::In { values, .. } => values.iter().any(|value| value.as_str().contains('\0')),
        FilterExpr::Range { .. } => false,
        FilterExpr::And(children) | FilterExpr::Or(children) => children.iter().any(has_nul_value),
        FilterExpr::Not(child) => has_nul_value(child),
    }
}

/// Binds `$1` tenant, `$2` namespace and `$3` limit.
fn scoped<'q>(query: Query<'q>, scope: &'q Scope, limit: i64) -> Query<'q> {
    query.bind(scope.tenant_id()).bind(scope.namespace()).bind(limit)
}

fn bind_filter<'q>(mut query: Query<'q>, binds: &'q [FilterBind]) -> Query<'q> {
    for value in binds {
        query = match value {
            FilterBind::Text(text) => query.bind(text.as_str()),
            FilterBind::TextArray(texts) => query.bind(texts.as_slice()),
        };
    }
    query
}

fn vector(embedding: &Embedding) -> pgvector::Vector {
    pgvector::Vector::from(embedding.as_slice().to_vec())
}

/// A watermark column value as a [`Watermark`]; an empty scope is 0.
fn to_watermark(value: Option<i64>) -> Result<Watermark> {
    match value {
        None => Ok(Watermark(0)),
        Some(value) => u64::try_from(value).map(Watermark).map_err(|_| {
            ConnectorError::internal(
                "the watermark column holds a value below zero (or before 1970)",
            )
        }),
    }
}

/// Reads a metadata `jsonb` object the way `->>` does: strings as they are, numbers and booleans
/// as their JSON text, nested values as JSON, nulls and non-objects as missing. Entries the
/// contract does not allow (bad keys, oversized values, past 256 entries) are dropped and
/// counted.
pub(crate) fn metadata_from_json(text: &str) -> (Metadata, usize) {
    let Ok(serde_json::Value::Object(object)) = serde_json::from_str::<serde_json::Value>(text)
    else {
        return (Metadata::default(), 0);
    };
    let mut entries = BTreeMap::new();
    for (key, value) in object {
        let value = match value {
            serde_json::Value::Null => continue,
            serde_json::Value::String(text) => text,
            other => other.to_string(),
        };
        entries.insert(key, value);
    }
    let n_entries = entries.len();
    if let Ok(metadata) = Metadata::new(entries.clone()) {
        return (metadata, 0);
    }
    let mut kept = BTreeMap::new();
    for (key, value) in entries {
        if kept.len() == MAX_METADATA_ENTRIES {
            break;
        }
        if Metadata::new(BTreeMap::from([(key.clone(), value.clone())])).is_ok() {
            kept.insert(key, value);
        }
    }
    let n_kept = kept.len();
    (Metadata::new(kept).unwrap_or_default(), n_entries - n_kept)
}
