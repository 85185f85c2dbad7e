//! The SQL text of every statement the connector runs, built once at open from checked,
//! quoted identifiers.
//!
//! Only identifiers (validated in `config`, resolved against the live catalog, always quoted),
//! operators chosen from an enum, and numbers validated at config time are written into SQL
//! text. Tenant, namespace, ids, filter keys and values, vectors and limits are always bound
//! parameters. No statement here is built from anything a request carries, except the filter's
//! shape (see `filter`).

use kyro_connector_sdk::Distance;

use crate::config::{Columns, EfSearch, IterativeScan};

/// The SQL type of the watermark column, which decides how a change marker is computed and
/// mapped to a `u64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WatermarkType {
    /// `timestamptz`: microseconds since the Unix epoch.
    Timestamptz,
    /// `bigint` or `integer`: the value itself.
    Integer,
}

/// Every statement, for one table.
#[derive(Debug, Clone)]
pub(crate) struct Statements {
    /// `BEGIN ...; SET LOCAL ...` for a search transaction, sent as one simple query.
    pub(crate) begin_search: String,
    /// `SELECT <id, metadata, content, watermark, tenant, namespace>`, without content. The
    /// tenant and namespace come back so each document is labelled from its own row.
    select_without_content: String,
    /// The same, with content.
    select_with_content: String,
    /// `FROM <table> WHERE <tenant> = $1 AND <namespace> = $2`.
    from_scope: String,
    /// `<embedding> <op>`, followed by the query vector's placeholder.
    distance_prefix: String,
    pub(crate) fetch: String,
    pub(crate) lock_scope: String,
    pub(crate) upsert: String,
    pub(crate) delete: String,
    pub(crate) delete_ack: String,
    pub(crate) scope_watermark: String,
    /// `DELETE ... WHERE <tenant> = $1 AND <namespace> = $2`: certification cleanup only.
    pub(crate) purge_scope: String,
}

/// What the statements are built from.
pub(crate) struct StatementParts<'a> {
    /// `"schema"."table"`, as resolved in the catalog.
    pub(crate) table: &'a str,
    pub(crate) columns: &'a Columns,
    pub(crate) distance: Distance,
    pub(crate) watermark_type: WatermarkType,
    pub(crate) ef_search: EfSearch,
    /// `None` when the server's pgvector has no `hnsw.iterative_scan` (before 0.8).
    pub(crate) iterative_scan: Option<IterativeScan>,
}

/// pgvector's distance operator for `distance`.
pub(crate) fn operator(distance: Distance) -> &'static str {
    match distance {
        Distance::Cosine => "<=>",
        Distance::L2 => "<->",
        Distance::InnerProduct => "<#>",
    }
}

/// The similarity score (higher is closer) for a distance the operator returned.
pub(crate) fn score(distance: Distance, value: f64) -> f32 {
    match distance {
        // Cosine distance is 1 - cosine similarity; pgvector answers NaN for a zero vector,
        // which the reference store scores 0.
        Distance::Cosine if value.is_nan() => 0.0,
        Distance::Cosine => (1.0 - value) as f32,
        Distance::L2 => (-value) as f32,
        // `<#>` is the negated inner product.
        Distance::InnerProduct => (-value) as f32,
    }
}

impl Statements {
    pub(crate) fn new(parts: &StatementParts<'_>) -> Self {
        let table = parts.table;
        let tenant = parts.columns.tenant.quoted();
        let namespace = parts.columns.namespace.quoted();
        let id = parts.columns.id.quoted();
        let embedding = parts.columns.embedding.quoted();
        let metadata = parts.columns.metadata.quoted();
        let content = parts.columns.content.quoted();
        let watermark = parts.columns.watermark.quoted();
        let watermark_value = as_u64_source(parts.watermark_type, &watermark);
        let scope_max = format!(
            "(SELECT max({watermark}) FROM {table} WHERE {tenant} = $1 AND {namespace} = $2)"
        );
        let next_watermark = match parts.watermark_type {
            // Strictly after everything in the scope, even if the clock stepped back.
            WatermarkType::Timestamptz => {
                format!("greatest(clock_timestamp(), {scope_max} + interval '1 microsecond')")
            }
            WatermarkType::Integer => format!("coalesce({scope_max}, 0) + 1"),
        };
        let mut begin_search = format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET LOCAL hnsw.ef_search = {}",
            parts.ef_search.value()
        );
        if let Some(iterative_scan) = parts.iterative_scan {
            begin_search.push_str("; SET LOCAL hnsw.iterative_scan = ");
            begin_search.push_str(iterative_scan.as_str());
        }
        Self {
            begin_search,
            select_without_content: format!(
                "SELECT {id}, {metadata}::text, NULL::text, {watermark_value}, {tenant}::text, {namespace}::text"
            ),
            select_with_content: format!(
                "SELECT {id}, {metadata}::text, {content}::text, {watermark_value}, {tenant}::text, {namespace}::text"
            ),
            from_scope: format!("FROM {table} WHERE {tenant} = $1 AND {namespace} = $2"),
            distance_prefix: format!("{embedding} {}", operator(parts.distance)),
            fetch: format!(
                "SELECT {id}, {metadata}::text, {content}::text, {watermark_value}, {tenant}::text, {namespace}::text \
                 FROM {table} WHERE {tenant} = $1 AND {namespace} = $2 AND {id} = ANY($3)"
            ),
            // One writer at a time per scope, so the scope's watermark is taken and committed in
            // the same order; scope fields hold no control characters, so chr(31) separates them.
            lock_scope: "SELECT pg_advisory_xact_lock(hashtextextended(\
                         concat_ws(chr(31), 'kyro-pgvector', $3::text, $1::text, $2::text), 0))"
                .to_owned(),
            upsert: format!(
                "INSERT INTO {table} ({tenant}, {namespace}, {id}, {embedding}, {metadata}, {content}, {watermark}) \
                 VALUES ($1, $2, $3, $4, $5::jsonb, $6, {next_watermark}) \
                 ON CONFLICT ({tenant}, {namespace}, {id}) DO UPDATE SET \
                 {embedding} = EXCLUDED.{embedding}, {metadata} = EXCLUDED.{metadata}, \
                 {content} = EXCLUDED.{content}, {watermark} = EXCLUDED.{watermark} \
                 RETURNING xmin::text, (xmax = 0), {watermark_value}"
            ),
            delete: format!(
                "DELETE FROM {table} WHERE {tenant} = $1 AND {namespace} = $2 AND {id} = $3"
            ),
            purge_scope: format!("DELETE FROM {table} WHERE {tenant} = $1 AND {namespace} = $2"),
            delete_ack: format!(
                "SELECT pg_current_xact_id_if_assigned()::text, {} \
                 FROM {table} WHERE {tenant} = $1 AND {namespace} = $2",
                as_u64_source(parts.watermark_type, &format!("max({watermark})"))
            ),
            scope_watermark: format!(
                "SELECT {} FROM {table} WHERE {tenant} = $1 AND {namespace} = $2",
                as_u64_source(parts.watermark_type, &format!("max({watermark})"))
            ),
        }
    }

    /// The search: `$1` tenant, `$2` namespace, `$3` limit, then the filter's placeholders, and
    /// the query vector last at `$embedding_param`.
    pub(crate) fn search(
        &self,
        filter_sql: Option<&str>,
        embedding_param: usize,
        include_content: bool,
    ) -> String {
        let select =
            if include_content { &self.select_with_content } else { &self.select_without_content };
        let distance = format!("{} ${embedding_param}", self.distance_prefix);
        let filter = filter_sql.map(|sql| format!(" AND {sql}")).unwrap_or_default();
        format!(
            "{select}, {distance} AS distance {}{filter} ORDER BY {distance} LIMIT $3",
            self.from_scope
        )
    }

    /// How many rows, up to `$3`, the scope and filter hold: whether a short search was
    /// complete. Same placeholders as [`Statements::search`], without the vector.
    pub(crate) fn bounded_count(&self, filter_sql: Option<&str>) -> String {
        let filter = filter_sql.map(|sql| format!(" AND {sql}")).unwrap_or_default();
        format!("SELECT count(*) FROM (SELECT 1 {}{filter} LIMIT $3) AS bounded", self.from_scope)
    }
}

/// `expression` (of the watermark column's type) as a `bigint`.
fn as_u64_source(watermark_type: WatermarkType, expression: &str) -> String {
    match watermark_type {
        // `extract` returns `numeric` on PostgreSQL 14 and later, so this is exact.
        WatermarkType::Timestamptz => {
            format!("(extract(epoch FROM {expression}) * 1000000)::bigint")
        }
        WatermarkType::Integer => format!("({expression})::bigint"),
    }
}
