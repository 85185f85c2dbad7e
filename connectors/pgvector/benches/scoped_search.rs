//! What the pgvector connector adds to a scoped top-10 search, against the identical SQL issued
//! directly with sqlx.
//!
//! The store: 100,000 rows of 768 dimensions (fixed-seed synthetic vectors), four tenants holding
//! 50%, 30%, 15% and 5% of them, an HNSW cosine index, built once and reused by later runs (the
//! table `kyro_bench_scoped_search` is kept). Each iteration draws a fresh query vector and both
//! arms answer it, one after the other, alternating which goes first (evenly within each tenant);
//! each arm runs it once untimed and then once timed, so both timed runs are equally warm:
//! - `connector`: `PgvectorConnector::search` linked in-process (runtime hand-off, request checks,
//!   the transaction with `SET LOCAL`, decoding into validated documents);
//! - `direct sqlx`: the same statements on its own pool and runtime, decoding the same columns into
//!   plain tuples.
//!
//! It prints p50 and p99 of both, their ratio, and the median of the per-query differences.
//! Both pools use the connector's session settings (`plan_cache_mode = force_custom_plan`). It is a plain binary (`harness = false`), not a
//! timed test; the figures belong in `docs/benchmarks.md`.
//!
//! Run: `KYRO_TEST_DATABASE_URL=postgres://kyro:kyro@127.0.0.1:5432/kyro_test cargo bench -p kyro-connector-pgvector --bench scoped_search`.

#![expect(clippy::print_stdout, reason = "a benchmark reports its figures on stdout")]

use std::str::FromStr;
use std::time::{Duration, Instant};

use kyro_connector_pgvector::PgvectorConnector;
use kyro_connector_sdk::{
    Connector, ConnectorConfig, ConnectorPlugin, Embedding, HostContext, Scope, SearchRequest,
};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolCopyExt, PgPoolOptions};
use sqlx::{AssertSqlSafe, Row};

const TABLE: &str = "kyro_bench_scoped_search";
const DIMENSION: usize = 768;
const N_ROWS: usize = 100_000;
/// Rows per tenant: 50%, 30%, 15%, 5%.
const TENANT_ROWS: [usize; 4] = [50_000, 30_000, 15_000, 5_000];
const TOP_K: u32 = 10;
const N_WARMUP: usize = 200;
const N_QUERIES: usize = 3_000;
const EF_SEARCH: u32 = 40;
const ITERATIVE_SCAN: &str = "strict_order";
const POOL_SIZE: u32 = 4;
const SCHEMA_SQL: &str = include_str!("../../../examples/pgvector-live/schema.sql");

/// The connector's search transaction for this configuration, as `Statements` builds it.
const BEGIN_SEARCH: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; \
     SET LOCAL hnsw.ef_search = 40; SET LOCAL hnsw.iterative_scan = strict_order";
/// The connector's search statement for this table with content and without a filter.
const SEARCH_SQL: &str = "SELECT \"id\", \"metadata\"::text, \"content\"::text, \
     (extract(epoch FROM \"updated_at\") * 1000000)::bigint, \"embedding\" <=> $4 AS distance \
     FROM \"public\".\"kyro_bench_scoped_search\" WHERE \"tenant_id\" = $1 AND \"namespace\" = $2 \
     ORDER BY \"embedding\" <=> $4 LIMIT $3";
/// The connector's bounded count, run when a search comes back short.
const COUNT_SQL: &str = "SELECT count(*) FROM (SELECT 1 FROM \"public\".\"kyro_bench_scoped_search\" \
     WHERE \"tenant_id\" = $1 AND \"namespace\" = $2 LIMIT $3) AS bounded";

/// splitmix64: a fixed-seed generator, so every run loads the same vectors.
struct Random(u64);

impl Random {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    fn next_f32(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn vector(&mut self) -> Vec<f32> {
        (0..DIMENSION).map(|_| self.next_f32()).collect()
    }
}

fn tenant_of(row_idx: usize) -> usize {
    let mut end = 0;
    for (tenant_idx, n_rows) in TENANT_ROWS.iter().enumerate() {
        end += n_rows;
        if row_idx < end {
            return tenant_idx;
        }
    }
    TENANT_ROWS.len() - 1
}

fn main() {
    let url = std::env::var("KYRO_TEST_DATABASE_URL").expect(
        "KYRO_TEST_DATABASE_URL is not set; run scripts/setup-postgres.sh and export the URL it prints",
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    // The same session settings as the connector's connections.
    let connect_options = PgConnectOptions::from_str(&url)
        .expect("a valid database URL")
        .options([("plan_cache_mode", "force_custom_plan")]);
    let pool = runtime
        .block_on(PgPoolOptions::new().max_connections(POOL_SIZE).connect_with(connect_options))
        .expect("the benchmark database is reachable; run scripts/setup-postgres.sh");
    runtime.block_on(ensure_table(&pool));

    let config = ConnectorConfig::from_json(
        serde_json::json!({
            "dsn": { "env": "KYRO_TEST_DATABASE_URL" },
            "table": format!("public.{TABLE}"),
            "dimension": DIMENSION,
            "distance": "cosine",
            "ownership_mode": "event_feed",
            "filterable_keys": ["lang"],
            "pool_size": POOL_SIZE,
            "hnsw_ef_search": EF_SEARCH,
            "hnsw_iterative_scan": ITERATIVE_SCAN,
            "max_top_k": 100,
        })
        .to_string(),
    );
    let connector =
        PgvectorConnector::open(&config, HostContext::discard()).expect("the connector opens");
    let scopes: Vec<Scope> = (0..TENANT_ROWS.len())
        .map(|tenant_idx| Scope::new(format!("tenant-{tenant_idx}"), "docs").expect("valid scope"))
        .collect();

    // Fresh query vectors, from another seed than the data.
    let mut random = Random(0xC0FF_EE00_D15E_A5E5);
    for query_idx in 0..N_WARMUP {
        let scope = &scopes[query_idx % scopes.len()];
        let vector = random.vector();
        let connector_ids = connector_search(&connector, scope, &vector);
        let direct_ids = runtime.block_on(direct_search(&pool, scope, &vector));
        assert_eq!(connector_ids, direct_ids, "both arms must answer the same");
    }

    // (connector, direct) per query, by tenant.
    let mut pairs: Vec<Vec<(Duration, Duration)>> = vec![Vec::new(); TENANT_ROWS.len()];
    for query_idx in 0..N_QUERIES {
        let tenant_idx = query_idx % scopes.len();
        let scope = &scopes[tenant_idx];
        let vector = random.vector();
        // Each arm runs the query once untimed and then once timed, on the same pool, so both
        // timed runs find the query's pages (and their own connection) equally warm.
        let time_connector = || {
            connector_search(&connector, scope, &vector);
            let start = Instant::now();
            let ids = connector_search(&connector, scope, &vector);
            (start.elapsed(), ids)
        };
        let time_direct = || {
            runtime.block_on(direct_search(&pool, scope, &vector));
            let start = Instant::now();
            let ids = runtime.block_on(direct_search(&pool, scope, &vector));
            (start.elapsed(), ids)
        };
        // Alternate which arm goes first, evenly within each tenant.
        let connector_first = (query_idx / scopes.len()).is_multiple_of(2);
        let ((connector_time, connector_ids), (direct_time, direct_ids)) = if connector_first {
            let connector_result = time_connector();
            (connector_result, time_direct())
        } else {
            let direct_result = time_direct();
            (time_connector(), direct_result)
        };
        assert_eq!(connector_ids, direct_ids, "both arms must answer the same");
        pairs[tenant_idx].push((connector_time, direct_time));
    }

    let n_compared = N_WARMUP + N_QUERIES;
    println!(
        "pgvector scoped top-{TOP_K} search, {N_ROWS} rows x {DIMENSION} d, HNSW cosine, \
         ef_search {EF_SEARCH}, iterative_scan {ITERATIVE_SCAN}, {N_QUERIES} queries per arm \
         (after {N_WARMUP} warm-up queries; answers compared on all {n_compared}: identical)"
    );
    report("all tenants", &pairs.concat());
    for (tenant_idx, tenant_pairs) in pairs.iter().enumerate() {
        let share = TENANT_ROWS[tenant_idx] * 100 / N_ROWS;
        report(&format!("tenant-{tenant_idx} ({share}%)"), tenant_pairs);
    }
    drop(connector);
    runtime.block_on(pool.close());
}

fn report(label: &str, pairs: &[(Duration, Duration)]) {
    let mut connector_times: Vec<Duration> = pairs.iter().map(|pair| pair.0).collect();
    let mut direct_times: Vec<Duration> = pairs.iter().map(|pair| pair.1).collect();
    let mut differences: Vec<f64> =
        pairs.iter().map(|(connector, direct)| micros(*connector) - micros(*direct)).collect();
    differences.sort_by(f64::total_cmp);
    let (connector_p50, connector_p99) = percentiles(&mut connector_times);
    let (direct_p50, direct_p99) = percentiles(&mut direct_times);
    println!(
        "{label:>16}: connector p50 {:>8.1} us p99 {:>8.1} us | direct sqlx p50 {:>8.1} us p99 {:>8.1} us | \
         p50 ratio {:.3} | median paired difference {:+.1} us",
        micros(connector_p50),
        micros(connector_p99),
        micros(direct_p50),
        micros(direct_p99),
        micros(connector_p50) / micros(direct_p50),
        differences[differences.len() / 2],
    );
}

fn percentiles(times: &mut [Duration]) -> (Duration, Duration) {
    times.sort_unstable();
    (times[times.len() / 2], times[times.len() * 99 / 100])
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

fn connector_search(connector: &PgvectorConnector, scope: &Scope, vector: &[f32]) -> Vec<String> {
    let request = SearchRequest {
        embedding: Embedding::new(vector.to_vec()).expect("a finite vector"),
        top_k: TOP_K,
        filter: None,
        include_content: true,
    };
    let response = connector.search(scope, &request).expect("the connector answers");
    response.hits.into_iter().map(|hit| String::from(hit.document.id)).collect()
}

/// A hit as the direct arm decodes it: id, metadata, content, watermark, distance.
type DirectHit = (String, Option<String>, Option<String>, Option<i64>, f64);

/// What a hand-written client would do for the same guarantees: the same transaction and
/// settings, the same statement, the same bounded count when short, the same columns decoded.
async fn direct_search(pool: &PgPool, scope: &Scope, vector: &[f32]) -> Vec<String> {
    let mut transaction = pool.begin_with(BEGIN_SEARCH).await.expect("begin");
    let rows = sqlx::query(SEARCH_SQL)
        .bind(scope.tenant_id())
        .bind(scope.namespace())
        .bind(i64::from(TOP_K))
        .bind(pgvector::Vector::from(vector.to_vec()))
        .fetch_all(&mut *transaction)
        .await
        .expect("search");
    let mut hits: Vec<DirectHit> = Vec::with_capacity(rows.len());
    for row in &rows {
        hits.push((
            row.try_get(0).expect("id"),
            row.try_get(1).expect("metadata"),
            row.try_get(2).expect("content"),
            row.try_get(3).expect("watermark"),
            row.try_get(4).expect("distance"),
        ));
    }
    if rows.len() < TOP_K as usize {
        let _n_matching: i64 = sqlx::query_scalar(COUNT_SQL)
            .bind(scope.tenant_id())
            .bind(scope.namespace())
            .bind(i64::from(TOP_K))
            .fetch_one(&mut *transaction)
            .await
            .expect("count");
    }
    transaction.commit().await.expect("commit");
    hits.into_iter().map(|(id, ..)| id).collect()
}

/// Creates and loads the table unless a previous run left it complete.
async fn ensure_table(pool: &PgPool) {
    let n_rows: Option<i64> = sqlx::query_scalar(
        "SELECT CASE WHEN to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL \
         THEN (SELECT reltuples::int8 FROM pg_class WHERE oid = to_regclass($1)) END",
    )
    .bind(format!("public.{TABLE}"))
    .bind(format!("public.{TABLE}_embedding_idx"))
    .fetch_one(pool)
    .await
    .expect("catalog lookup");
    if n_rows == Some(N_ROWS as i64) {
        let exact: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {TABLE}")))
            .fetch_one(pool)
            .await
            .expect("count");
        if exact == N_ROWS as i64 {
            println!("reusing table {TABLE} ({N_ROWS} rows)");
            return;
        }
    }
    println!("building table {TABLE}: {N_ROWS} rows x {DIMENSION} d, then the HNSW index");
    let schema = SCHEMA_SQL
        .replace("kyro_documents", TABLE)
        .replace("vector(8)", &format!("vector({DIMENSION})"));
    let (table_sql, index_sql): (Vec<&str>, Vec<&str>) =
        schema.lines().partition(|line| !line.contains("USING hnsw"));
    sqlx::raw_sql(AssertSqlSafe(format!("DROP TABLE IF EXISTS {TABLE}; {}", table_sql.join("\n"))))
        .execute(pool)
        .await
        .expect("create table");

    let started = Instant::now();
    let mut random = Random(42);
    let copy_sql = format!(
        "COPY {TABLE} (tenant_id, namespace, id, embedding, metadata, content) FROM STDIN (FORMAT binary)"
    );
    let mut copy = pool.copy_in_raw(&copy_sql).await.expect("copy in");
    let mut buffer = Vec::with_capacity(8 << 20);
    buffer.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    buffer.extend_from_slice(&0_i32.to_be_bytes());
    buffer.extend_from_slice(&0_i32.to_be_bytes());
    for row_idx in 0..N_ROWS {
        let tenant = format!("tenant-{}", tenant_of(row_idx));
        let id = format!("doc-{row_idx}");
        let lang = ["en", "de", "fr"][row_idx % 3];
        let metadata = format!("{{\"lang\": \"{lang}\", \"year\": \"{}\"}}", 2000 + row_idx % 25);
        let content = format!("synthetic document {row_idx} of {tenant}");
        buffer.extend_from_slice(&6_i16.to_be_bytes());
        push_field(&mut buffer, tenant.as_bytes());
        push_field(&mut buffer, b"docs");
        push_field(&mut buffer, id.as_bytes());
        // pgvector's binary format: dimension, an unused int16, then big-endian float4s.
        let mut vector = Vec::with_capacity(4 + DIMENSION * 4);
        vector.extend_from_slice(&(DIMENSION as i16).to_be_bytes());
        vector.extend_from_slice(&0_i16.to_be_bytes());
        for value in random.vector() {
            vector.extend_from_slice(&value.to_be_bytes());
        }
        push_field(&mut buffer, &vector);
        // jsonb's binary format: a version byte, then the JSON text.
        let mut jsonb = vec![1_u8];
        jsonb.extend_from_slice(metadata.as_bytes());
        push_field(&mut buffer, &jsonb);
        push_field(&mut buffer, content.as_bytes());
        if buffer.len() > 4 << 20 {
            copy.send(std::mem::take(&mut buffer)).await.expect("copy data");
            buffer.reserve(8 << 20);
        }
    }
    buffer.extend_from_slice(&(-1_i16).to_be_bytes());
    copy.send(buffer).await.expect("copy data");
    copy.finish().await.expect("copy finish");
    println!("loaded {N_ROWS} rows in {:.1} s", started.elapsed().as_secs_f64());

    let started = Instant::now();
    let mut connection = pool.acquire().await.expect("a connection");
    sqlx::raw_sql(AssertSqlSafe(format!(
        "SET maintenance_work_mem = '2GB'; SET max_parallel_maintenance_workers = 1; {}; \
         RESET maintenance_work_mem; RESET max_parallel_maintenance_workers; ANALYZE {TABLE};",
        index_sql.join("\n").trim_end_matches(';')
    )))
    .execute(&mut *connection)
    .await
    .expect("create the HNSW index");
    println!("built the HNSW index in {:.1} s", started.elapsed().as_secs_f64());
}

fn push_field(buffer: &mut Vec<u8>, bytes: &[u8]) {
    buffer.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    buffer.extend_from_slice(bytes);
}
