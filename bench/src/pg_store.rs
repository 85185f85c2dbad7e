//! The pgvector side: the benchmark table (created and loaded here when missing), the direct
//! arm's search transaction issued with sqlx, and the `[[stores]]` entry `kyro serve` gets.
//!
//! The table follows `examples/pgvector-live/schema.sql` (the schema the connector expects),
//! with the vector dimension substituted, the rows loaded with binary `COPY`, then the HNSW
//! cosine index built and the table analyzed, exactly as the pgvector connector bench does; an
//! existing table is reused when its row count, dimension, tenant split and HNSW cosine index
//! match. The default size shares the connector bench's table (`kyro_bench_scoped_search`);
//! other sizes get their own table, so a quick run never drops the 100,000-row one.

use std::time::Instant;

use anyhow::{Context, bail, ensure};
use sqlx::postgres::{PgPool, PgPoolCopyExt};
use sqlx::{AssertSqlSafe, Row as _};

use crate::dataset::{Dataset, NAMESPACE, Preparation};

/// The schema the connector's examples and tests use; table name and dimension are substituted.
const SCHEMA_SQL: &str = include_str!("../../examples/pgvector-live/schema.sql");
/// The table of the default dataset, shared with the pgvector connector bench.
const DEFAULT_TABLE: &str = "kyro_bench_scoped_search";
/// HNSW settings of the connector's search transaction, the same in both arms.
pub(crate) const EF_SEARCH: u32 = 40;
pub(crate) const ITERATIVE_SCAN: &str = "strict_order";
const TOP_K: usize = crate::TOP_K;

/// The table for `dataset`, unless `--table` names one.
pub(crate) fn table_name(dataset: Dataset, requested: Option<&str>) -> anyhow::Result<String> {
    let name = match requested {
        Some(name) => name.to_owned(),
        None if dataset == (Dataset { n_rows: 100_000, dimension: 768 }) => {
            DEFAULT_TABLE.to_owned()
        }
        None => format!("{DEFAULT_TABLE}_{}x{}", dataset.n_rows, dataset.dimension),
    };
    ensure!(
        !name.is_empty()
            && name.len() <= 50
            && name
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_'),
        "--table must be 1..=50 characters a-z 0-9 _"
    );
    Ok(name)
}

/// Creates and loads `public.<table>` unless it already holds `dataset`.
pub(crate) async fn ensure_table(
    pool: &PgPool,
    table: &str,
    dataset: Dataset,
) -> anyhow::Result<Preparation> {
    let detail = format!(
        "table public.{table}, HNSW (vector_cosine_ops, m 16, ef_construction 64), \
         ef_search {EF_SEARCH}, iterative_scan {ITERATIVE_SCAN}"
    );
    match matches_dataset(pool, table, dataset).await? {
        None => {
            println!(
                "reusing table public.{table} ({} rows x {} d)",
                dataset.n_rows, dataset.dimension
            );
            return Ok(Preparation { reused: true, load_secs: 0.0, index_secs: 0.0, detail });
        }
        Some(reason) => println!("building table public.{table}: {reason}"),
    }
    let schema = SCHEMA_SQL
        .replace("kyro_documents", table)
        .replace("vector(8)", &format!("vector({})", dataset.dimension));
    let (table_sql, index_sql): (Vec<&str>, Vec<&str>) =
        schema.lines().partition(|line| !line.contains("USING hnsw"));
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP TABLE IF EXISTS \"public\".\"{table}\"; {}",
        table_sql.join("\n")
    )))
    .execute(pool)
    .await
    .context("failed to create the table")?;

    let started = Instant::now();
    let copy_sql = format!(
        "COPY \"public\".\"{table}\" (tenant_id, namespace, id, embedding, metadata, content) \
         FROM STDIN (FORMAT binary)"
    );
    let mut copy = pool.copy_in_raw(&copy_sql).await.context("failed to start COPY")?;
    let mut buffer = Vec::with_capacity(8 << 20);
    buffer.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    buffer.extend_from_slice(&0_i32.to_be_bytes());
    buffer.extend_from_slice(&0_i32.to_be_bytes());
    let dimension = i16::try_from(dataset.dimension).context("dimension out of range")?;
    for row in dataset.rows() {
        let metadata = format!("{{\"lang\": \"{}\", \"year\": \"{}\"}}", row.lang, row.year);
        buffer.extend_from_slice(&6_i16.to_be_bytes());
        push_field(&mut buffer, row.tenant.as_bytes());
        push_field(&mut buffer, NAMESPACE.as_bytes());
        push_field(&mut buffer, row.id.as_bytes());
        // pgvector's binary format: dimension, an unused int16, then big-endian float4s.
        let mut vector = Vec::with_capacity(4 + row.embedding.len() * 4);
        vector.extend_from_slice(&dimension.to_be_bytes());
        vector.extend_from_slice(&0_i16.to_be_bytes());
        for value in &row.embedding {
            vector.extend_from_slice(&value.to_be_bytes());
        }
        push_field(&mut buffer, &vector);
        // jsonb's binary format: a version byte, then the JSON text.
        let mut jsonb = vec![1_u8];
        jsonb.extend_from_slice(metadata.as_bytes());
        push_field(&mut buffer, &jsonb);
        push_field(&mut buffer, row.content.as_bytes());
        if buffer.len() > 4 << 20 {
            copy.send(std::mem::take(&mut buffer)).await.context("failed to send COPY data")?;
            buffer.reserve(8 << 20);
        }
    }
    buffer.extend_from_slice(&(-1_i16).to_be_bytes());
    copy.send(buffer).await.context("failed to send COPY data")?;
    copy.finish().await.context("failed to finish COPY")?;
    let load_secs = started.elapsed().as_secs_f64();
    println!("loaded {} rows in {load_secs:.1} s", dataset.n_rows);

    let started = Instant::now();
    let mut connection = pool.acquire().await.context("failed to get a connection")?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "SET maintenance_work_mem = '2GB'; SET max_parallel_maintenance_workers = 1; {}; \
         RESET maintenance_work_mem; RESET max_parallel_maintenance_workers; ANALYZE \"public\".\"{table}\";",
        index_sql.join("\n").trim_end_matches(';')
    )))
    .execute(&mut *connection)
    .await
    .context("failed to build the HNSW index")?;
    let index_secs = started.elapsed().as_secs_f64();
    println!("built the HNSW index in {index_secs:.1} s");
    if let Some(reason) = matches_dataset(pool, table, dataset).await? {
        bail!("the table just built does not hold the dataset: {reason}");
    }
    Ok(Preparation { reused: false, load_secs, index_secs, detail })
}

/// `None` when the table holds exactly `dataset` with its HNSW cosine index, else why not.
async fn matches_dataset(
    pool: &PgPool,
    table: &str,
    dataset: Dataset,
) -> anyhow::Result<Option<String>> {
    let qualified = format!("public.{table}");
    let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
        .bind(&qualified)
        .fetch_one(pool)
        .await
        .context("failed to look up the table")?;
    if exists.is_none() {
        return Ok(Some("it does not exist".to_owned()));
    }
    // pgvector keeps a vector column's dimension as its type modifier.
    let dimension: Option<i32> = sqlx::query_scalar(
        "SELECT atttypmod FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = 'embedding'",
    )
    .bind(&qualified)
    .fetch_optional(pool)
    .await
    .context("failed to read the vector dimension")?;
    if dimension != i32::try_from(dataset.dimension).ok() {
        return Ok(Some(format!("its dimension is {dimension:?}, not {}", dataset.dimension)));
    }
    let n_hnsw_indexes: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' AND tablename = $1 \
         AND indexdef LIKE '%USING hnsw (embedding vector_cosine_ops)%'",
    )
    .bind(table)
    .fetch_one(pool)
    .await
    .context("failed to look up the HNSW index")?;
    if n_hnsw_indexes == 0 {
        return Ok(Some("it has no HNSW cosine index".to_owned()));
    }
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT tenant_id, count(*) FROM \"public\".\"{table}\" WHERE namespace = $1 \
         GROUP BY tenant_id ORDER BY tenant_id"
    )))
    .bind(NAMESPACE)
    .fetch_all(pool)
    .await
    .context("failed to count the table's rows per tenant")?;
    let mut found = Vec::with_capacity(rows.len());
    for row in &rows {
        let tenant: String = row.try_get(0).context("tenant_id")?;
        let n_rows: i64 = row.try_get(1).context("count")?;
        found.push((tenant, n_rows));
    }
    let expected: Vec<(String, i64)> = Dataset::tenant_names()
        .into_iter()
        .zip(dataset.tenant_rows())
        .map(|(tenant, n_rows)| (tenant, n_rows as i64))
        .collect();
    let n_total: i64 =
        sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM \"public\".\"{table}\"")))
            .fetch_one(pool)
            .await
            .context("failed to count the table's rows")?;
    if found != expected || n_total != dataset.n_rows as i64 {
        return Ok(Some(format!(
            "it holds {n_total} rows split {found:?}, not {} split {expected:?}",
            dataset.n_rows
        )));
    }
    Ok(None)
}

fn push_field(buffer: &mut Vec<u8>, bytes: &[u8]) {
    buffer.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    buffer.extend_from_slice(bytes);
}

/// The connector's search transaction, issued directly from the benchmark process.
pub(crate) struct DirectSearch {
    pub(crate) runtime: tokio::runtime::Runtime,
    pub(crate) pool: PgPool,
    search_sql: &'static str,
    count_sql: &'static str,
}

/// A hit as the direct arm decodes it: id, metadata, content, watermark, distance.
type DirectHit = (String, Option<String>, Option<String>, Option<i64>, f64);

impl DirectSearch {
    pub(crate) fn new(runtime: tokio::runtime::Runtime, pool: PgPool, table: &str) -> Self {
        // The connector's statements for this table, with content and without a filter.
        let search_sql: &'static str = Box::leak(
            format!(
                "SELECT \"id\", \"metadata\"::text, \"content\"::text, \
                 (extract(epoch FROM \"updated_at\") * 1000000)::bigint, \"embedding\" <=> $4 AS distance \
                 FROM \"public\".\"{table}\" WHERE \"tenant_id\" = $1 AND \"namespace\" = $2 \
                 ORDER BY \"embedding\" <=> $4 LIMIT $3"
            )
            .into_boxed_str(),
        );
        let count_sql: &'static str = Box::leak(
            format!(
                "SELECT count(*) FROM (SELECT 1 FROM \"public\".\"{table}\" \
                 WHERE \"tenant_id\" = $1 AND \"namespace\" = $2 LIMIT $3) AS bounded"
            )
            .into_boxed_str(),
        );
        Self { runtime, pool, search_sql, count_sql }
    }

    /// The same settings, statement, bounded count when short, and columns decoded as the
    /// connector. Returns the number of hits.
    pub(crate) fn search(&self, tenant: &str, vector: Vec<f32>) -> anyhow::Result<usize> {
        self.runtime.block_on(self.search_async(tenant, vector))
    }

    async fn search_async(&self, tenant: &str, vector: Vec<f32>) -> anyhow::Result<usize> {
        let begin: &'static str = if EF_SEARCH == 40 && ITERATIVE_SCAN == "strict_order" {
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; \
             SET LOCAL hnsw.ef_search = 40; SET LOCAL hnsw.iterative_scan = strict_order"
        } else {
            bail!("the direct arm's BEGIN is written for ef_search 40 and strict_order")
        };
        let mut transaction = self.pool.begin_with(begin).await.context("failed to begin")?;
        let rows = sqlx::query(self.search_sql)
            .bind(tenant)
            .bind(NAMESPACE)
            .bind(TOP_K as i64)
            .bind(pgvector::Vector::from(vector))
            .fetch_all(&mut *transaction)
            .await
            .context("failed to search")?;
        let mut hits: Vec<DirectHit> = Vec::with_capacity(rows.len());
        for row in &rows {
            hits.push((
                row.try_get(0).context("id")?,
                row.try_get(1).context("metadata")?,
                row.try_get(2).context("content")?,
                row.try_get(3).context("watermark")?,
                row.try_get(4).context("distance")?,
            ));
        }
        if rows.len() < TOP_K {
            let _n_matching: i64 = sqlx::query_scalar(self.count_sql)
                .bind(tenant)
                .bind(NAMESPACE)
                .bind(TOP_K as i64)
                .fetch_one(&mut *transaction)
                .await
                .context("failed to count")?;
        }
        transaction.commit().await.context("failed to commit")?;
        Ok(hits.len())
    }
}

/// The `[[stores]]` entry of `kyro.toml`: the same table and HNSW settings as the direct arm.
pub(crate) fn store_config(plugin: &str, table: &str, dimension: usize, pool_size: u32) -> String {
    format!(
        "[[stores]]\nid = \"pg\"\nplugin = \"{plugin}\"\nownership_mode = \"event_feed\"\nnamespaces = [\"*\"]\n\
         [stores.config]\ndsn = {{ env = \"KYRO_TEST_DATABASE_URL\" }}\ntable = \"public.{table}\"\n\
         dimension = {dimension}\ndistance = \"cosine\"\nfilterable_keys = [\"lang\"]\nownership_mode = \"event_feed\"\n\
         pool_size = {pool_size}\nhnsw_ef_search = {EF_SEARCH}\nhnsw_iterative_scan = \"{ITERATIVE_SCAN}\"\nmax_top_k = 100\n"
    )
}

/// The server's version and pgvector's, for the machine description.
pub(crate) async fn versions(pool: &PgPool) -> anyhow::Result<(String, String, String)> {
    let server: String = sqlx::query_scalar("SELECT current_setting('server_version')")
        .fetch_one(pool)
        .await
        .context("failed to read the server version")?;
    let pgvector: Option<String> =
        sqlx::query_scalar("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            .fetch_optional(pool)
            .await
            .context("failed to read the pgvector version")?;
    let shared_buffers: String = sqlx::query_scalar("SELECT current_setting('shared_buffers')")
        .fetch_one(pool)
        .await
        .context("failed to read shared_buffers")?;
    Ok((server, pgvector.unwrap_or_else(|| "none".to_owned()), shared_buffers))
}
