//! Test support: the live database, uniquely named tables built from the example schema, and
//! connectors opened on them.
//!
//! Every test gets its own table (or database), named from the process id, a counter and the
//! clock, and drops it when the guard goes out of scope, even when the test fails. A database that
//! is not configured or not reachable fails the test with the command that sets it up.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use kyro_connector_pgvector::PgvectorConnector;
use kyro_connector_sdk::{
    ConnectorConfig, ConnectorPlugin, Document, DocumentId, Embedding, FilterExpr, FilterKey,
    FilterValue, HostContext, LogLevel, Metadata, RuntimeFilter, Scope, SearchRequest,
};
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, PgPool};

/// The example schema the tests must use, with `kyro_documents` and `vector(8)` substituted.
const SCHEMA_SQL: &str = include_str!("../../../../examples/pgvector-live/schema.sql");

/// Dimension of the test vectors.
pub(crate) const DIMENSION: u32 = 8;

/// The environment variable holding the test database URL.
pub(crate) const DATABASE_URL_VAR: &str = "KYRO_TEST_DATABASE_URL";

/// The test database URL.
///
/// # Panics
///
/// When the variable is unset: the tests need the database and never skip.
pub(crate) fn database_url() -> String {
    std::env::var(DATABASE_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{DATABASE_URL_VAR} is not set: these tests need PostgreSQL with pgvector; run \
             `scripts/setup-postgres.sh` (as root) and export \
             {DATABASE_URL_VAR}=postgres://kyro:kyro@127.0.0.1:5432/kyro_test"
        )
    })
}

/// A name no other test, run or process uses.
pub(crate) fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{prefix}_{}_{n}_{nanos}", std::process::id())
}

/// A private client of the test database, for setting up and inspecting tables.
pub(crate) struct Db {
    pool: PgPool,
    runtime: tokio::runtime::Runtime,
}

impl Db {
    /// Connects to `url`.
    ///
    /// # Panics
    ///
    /// When the database cannot be reached, naming the setup script.
    pub(crate) fn connect(url: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let pool = runtime
            .block_on(PgPoolOptions::new().max_connections(2).connect(url))
            .unwrap_or_else(|err| {
                panic!(
                    "cannot reach the test database at {DATABASE_URL_VAR} ({err}); run \
                     `scripts/setup-postgres.sh` (as root) to install and start PostgreSQL with pgvector"
                )
            });
        Self { pool, runtime }
    }

    /// Runs one or more statements without parameters.
    pub(crate) fn execute(&self, sql: &str) {
        self.runtime
            .block_on(sqlx::raw_sql(AssertSqlSafe(sql.to_owned())).execute(&self.pool))
            .unwrap_or_else(|err| panic!("test setup statement failed: {err}\n{sql}"));
    }

    /// The first column of the first row, as text (`NULL` as `None`).
    pub(crate) fn text(&self, sql: &str) -> Option<String> {
        self.runtime
            .block_on(
                sqlx::query_scalar::<_, Option<String>>(AssertSqlSafe(sql.to_owned()))
                    .fetch_one(&self.pool),
            )
            .unwrap_or_else(|err| panic!("test query failed: {err}\n{sql}"))
    }

    /// The plan of `sql` with its text parameters bound.
    pub(crate) fn explain(&self, sql: &str, params: &[&str]) -> String {
        let mut query = sqlx::query_scalar::<_, String>(AssertSqlSafe(format!("EXPLAIN {sql}")));
        for param in params {
            query = query.bind(*param);
        }
        self.runtime
            .block_on(query.fetch_all(&self.pool))
            .unwrap_or_else(|err| panic!("test query failed: {err}\n{sql}"))
            .join("\n")
    }

    /// A count.
    pub(crate) fn count(&self, sql: &str) -> i64 {
        self.runtime
            .block_on(
                sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql.to_owned())).fetch_one(&self.pool),
            )
            .unwrap_or_else(|err| panic!("test query failed: {err}\n{sql}"))
    }

    /// Inserts a row directly, as a writer outside KyroDB would, with metadata as JSON.
    pub(crate) fn insert(&self, table: &str, row: &Row<'_>) {
        let sql = format!(
            "INSERT INTO {table} (tenant_id, namespace, id, embedding, metadata, content) \
             VALUES ($1, $2, $3, $4::real[]::vector, $5::jsonb, $6)"
        );
        self.runtime
            .block_on(
                sqlx::query(AssertSqlSafe(sql))
                    .bind(row.tenant)
                    .bind(row.namespace)
                    .bind(row.id)
                    .bind(row.embedding.to_vec())
                    .bind(row.metadata.to_string())
                    .bind(format!("content of {}", row.id))
                    .execute(&self.pool),
            )
            .unwrap();
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        self.runtime.block_on(self.pool.close());
    }
}

/// A row for [`Db::insert`].
pub(crate) struct Row<'a> {
    pub(crate) tenant: &'a str,
    pub(crate) namespace: &'a str,
    pub(crate) id: &'a str,
    pub(crate) embedding: [f32; DIMENSION as usize],
    pub(crate) metadata: serde_json::Value,
}

/// A uniquely named table from `examples/pgvector-live/schema.sql`, dropped on drop.
pub(crate) struct TestTable {
    pub(crate) db: Db,
    pub(crate) name: String,
}

impl TestTable {
    /// The example schema with `vector(dimension)`.
    pub(crate) fn create(dimension: u32) -> Self {
        Self::create_with(dimension, |sql| sql)
    }

    /// The example schema, rewritten by `edit` after the name and dimension are substituted
    /// (for tables that break one catalog rule).
    pub(crate) fn create_with(dimension: u32, edit: impl FnOnce(String) -> String) -> Self {
        let db = Db::connect(&database_url());
        let name = unique_name("kyro_it");
        let sql = SCHEMA_SQL
            .replace("kyro_documents", &name)
            .replace("vector(8)", &format!("vector({dimension})"));
        db.execute(&edit(sql));
        Self { db, name }
    }

    /// A connector on this table: write-through, the test database, filterable `lang`, `year`
    /// and `product`, with `extra` keys merged over that.
    pub(crate) fn open(
        &self,
        extra: serde_json::Value,
    ) -> kyro_connector_sdk::Result<PgvectorConnector> {
        PgvectorConnector::open(&self.config(extra), HostContext::discard())
    }

    /// The configuration [`TestTable::open`] uses.
    pub(crate) fn config(&self, extra: serde_json::Value) -> ConnectorConfig {
        let mut config = serde_json::json!({
            "dsn": { "env": DATABASE_URL_VAR },
            "table": format!("public.{}", self.name),
            "dimension": DIMENSION,
            "distance": "cosine",
            "ownership_mode": "write_through",
            "filterable_keys": ["lang", "year", "product"],
            "max_top_k": 50,
            "max_fetch_ids": 20,
        });
        for (key, value) in extra.as_object().unwrap() {
            config[key] = value.clone();
        }
        ConnectorConfig::from_json(config.to_string())
    }

    /// Rows in the whole table.
    pub(crate) fn n_rows(&self) -> i64 {
        self.db.count(&format!("SELECT count(*) FROM {}", self.name))
    }

    /// Whether the table still exists.
    pub(crate) fn exists(&self) -> bool {
        self.db.text(&format!("SELECT to_regclass('public.{}')::text", self.name)).is_some()
    }
}

impl Drop for TestTable {
    fn drop(&mut self) {
        self.db.execute(&format!("DROP TABLE IF EXISTS {}", self.name));
    }
}

/// Log lines a connector wrote through its [`HostContext`].
#[derive(Clone, Default)]
pub(crate) struct CapturedLog(Arc<Mutex<Vec<(LogLevel, String)>>>);

impl CapturedLog {
    pub(crate) fn host(&self) -> HostContext {
        let lines = Arc::clone(&self.0);
        HostContext::new(move |level, message| {
            lines.lock().unwrap().push((level, message.to_owned()))
        })
    }

    pub(crate) fn lines(&self) -> Vec<(LogLevel, String)> {
        self.0.lock().unwrap().clone()
    }
}

pub(crate) fn scope(tenant: &str, namespace: &str) -> Scope {
    Scope::new(tenant, namespace).unwrap()
}

pub(crate) fn id(text: &str) -> DocumentId {
    DocumentId::new(text).unwrap()
}

pub(crate) fn embedding(values: [f32; DIMENSION as usize]) -> Embedding {
    Embedding::new(values.to_vec()).unwrap()
}

/// A unit vector along axis `axis` with a small tilt `tilt` towards the next axis.
pub(crate) fn direction(axis: usize, tilt: f32) -> [f32; DIMENSION as usize] {
    let mut values = [0.0; DIMENSION as usize];
    values[axis % DIMENSION as usize] = 1.0;
    values[(axis + 1) % DIMENSION as usize] = tilt;
    values
}

pub(crate) fn document(
    id_text: &str,
    values: [f32; DIMENSION as usize],
    metadata: &[(&str, &str)],
) -> Document {
    let metadata = Metadata::new(
        metadata.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect(),
    )
    .unwrap();
    Document::new(
        id(id_text),
        Some(embedding(values)),
        Some(format!("content of {id_text}")),
        metadata,
        None,
    )
    .unwrap()
}

pub(crate) fn search(
    values: [f32; DIMENSION as usize],
    top_k: u32,
    filter: Option<FilterExpr>,
) -> SearchRequest {
    SearchRequest {
        embedding: embedding(values),
        top_k,
        filter: filter.map(|filter| RuntimeFilter::new(filter).unwrap()),
        include_content: true,
    }
}

pub(crate) fn exact(key: &str, value: &str) -> FilterExpr {
    FilterExpr::Exact { key: FilterKey::new(key).unwrap(), value: FilterValue::new(value).unwrap() }
}

pub(crate) fn one_of(key: &str, values: &[&str]) -> FilterExpr {
    FilterExpr::In {
        key: FilterKey::new(key).unwrap(),
        values: values.iter().map(|value| FilterValue::new(*value).unwrap()).collect(),
    }
}

pub(crate) fn range(key: &str, min: Option<f64>, max: Option<f64>) -> FilterExpr {
    FilterExpr::Range { key: FilterKey::new(key).unwrap(), min, max }
}

/// The ids of a list of hits or documents, in order.
pub(crate) fn hit_ids(response: &kyro_connector_sdk::SearchResponse) -> Vec<String> {
    response.hits.iter().map(|hit| hit.document.id.as_str().to_owned()).collect()
}
