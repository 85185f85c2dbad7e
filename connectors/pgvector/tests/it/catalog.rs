//! Refusals at open: each way a live table can fail to match its configuration is a
//! `Configuration` error that says what is wrong, and a matching table opens.

use kyro_connector_sdk::{ConnectorError, ErrorKind};

use crate::support::{DIMENSION, Db, TestTable, database_url, unique_name};

/// Opening fails with `Configuration` and a message containing `expected`.
fn assert_refused(
    result: kyro_connector_sdk::Result<impl std::fmt::Debug>,
    expected: &str,
) -> ConnectorError {
    let err = result.expect_err("the store does not match its configuration and must be refused");
    assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
    assert!(err.message().contains(expected), "expected {expected:?} in: {err}");
    err
}

#[test]
fn a_table_that_matches_the_example_schema_opens() {
    let table = TestTable::create(DIMENSION);
    table.open(serde_json::json!({})).unwrap();
    // Unqualified names resolve through the search path, to the same table.
    table.open(serde_json::json!({ "table": table.name })).unwrap();
}

#[test]
fn a_missing_table_is_refused() {
    let table = TestTable::create(DIMENSION);
    let missing = unique_name("kyro_it_missing");
    assert_refused(
        table.open(serde_json::json!({ "table": format!("public.{missing}") })),
        &format!("table \"public\".\"{missing}\" does not exist"),
    );
}

#[test]
fn a_missing_column_is_refused() {
    let table = TestTable::create(DIMENSION);
    assert_refused(
        table.open(serde_json::json!({ "columns": { "content": "body" } })),
        "column \"body\" (columns.content) does not exist",
    );
}

#[test]
fn an_embedding_of_another_dimension_is_refused() {
    let table = TestTable::create(DIMENSION);
    assert_refused(
        table.open(serde_json::json!({ "dimension": 16 })),
        "is vector(8), but dimension is 16",
    );
}

#[test]
fn an_embedding_without_a_dimension_is_refused() {
    let table = TestTable::create_with(DIMENSION, |sql| {
        let sql = sql.replace("vector(8)", "vector");
        // HNSW needs a dimension, so the example's vector index cannot exist on this column.
        sql.lines().filter(|line| !line.contains("USING hnsw")).collect::<Vec<_>>().join("\n")
    });
    assert_refused(table.open(serde_json::json!({})), "is vector, but dimension is 8");
}

#[test]
fn an_embedding_column_that_is_not_a_vector_is_refused() {
    let table = TestTable::create(DIMENSION);
    table.db.execute(&format!("ALTER TABLE {} ADD COLUMN summary text", table.name));
    assert_refused(
        table.open(serde_json::json!({ "columns": { "embedding": "summary" } })),
        "has type text, but must be vector(dimension)",
    );
}

#[test]
fn metadata_that_is_not_jsonb_is_refused() {
    let table = TestTable::create_with(DIMENSION, |sql| {
        sql.replace(
            "metadata   jsonb       NOT NULL DEFAULT '{}'::jsonb",
            "metadata json NOT NULL DEFAULT '{}'::json",
        )
    });
    assert_refused(
        table.open(serde_json::json!({})),
        "column \"metadata\" (columns.metadata) has type json, but must be jsonb",
    );
}

#[test]
fn a_watermark_that_is_neither_a_timestamp_nor_an_integer_is_refused() {
    let table = TestTable::create_with(DIMENSION, |sql| {
        sql.replace(
            "updated_at timestamptz NOT NULL DEFAULT clock_timestamp()",
            "updated_at text NOT NULL DEFAULT ''",
        )
    });
    assert_refused(
        table.open(serde_json::json!({})),
        "column \"updated_at\" (columns.watermark) has type text, but must be timestamptz, bigint or integer",
    );
}

#[test]
fn write_through_without_a_scope_key_is_refused_and_event_feed_opens() {
    let table = TestTable::create_with(DIMENSION, |sql| {
        sql.replace("PRIMARY KEY (tenant_id, namespace, id)", "UNIQUE (id)")
    });
    assert_refused(
        table.open(serde_json::json!({})),
        "write_through needs a primary key or unique constraint on exactly (\"tenant_id\", \"namespace\", \"id\") in that order",
    );
    // Without write-through, nothing is written through that key, so the table is fine.
    table.open(serde_json::json!({ "ownership_mode": "event_feed" })).unwrap();
}

#[test]
fn write_through_with_the_key_in_another_order_is_refused() {
    let table = TestTable::create_with(DIMENSION, |sql| {
        sql.replace(
            "PRIMARY KEY (tenant_id, namespace, id)",
            "PRIMARY KEY (namespace, tenant_id, id)",
        )
    });
    assert_refused(table.open(serde_json::json!({})), "in that order");
}

#[test]
fn write_through_with_a_partial_unique_index_is_refused_and_a_unique_constraint_opens() {
    let partial = TestTable::create_with(DIMENSION, |sql| {
        sql.replace("  PRIMARY KEY (tenant_id, namespace, id)\n", "  UNIQUE (id)\n")
    });
    partial.db.execute(&format!(
        "CREATE UNIQUE INDEX {0}_partial ON {0} (tenant_id, namespace, id) WHERE tenant_id <> ''",
        partial.name
    ));
    assert_refused(partial.open(serde_json::json!({})), "in that order");

    let unique = TestTable::create_with(DIMENSION, |sql| {
        sql.replace("PRIMARY KEY (tenant_id, namespace, id)", "UNIQUE (tenant_id, namespace, id)")
    });
    unique.open(serde_json::json!({})).unwrap();
}

#[test]
fn write_through_needs_the_tenant_namespace_id_mutation_key() {
    let table = TestTable::create(DIMENSION);
    assert_refused(
        table.open(serde_json::json!({ "mutation_key_mode": "id" })),
        "invalid pgvector connector config at `mutation_key_mode`",
    );
    table
        .open(serde_json::json!({ "mutation_key_mode": "id", "ownership_mode": "event_feed" }))
        .unwrap();
}

#[test]
fn snapshot_bundles_are_refused() {
    let table = TestTable::create(DIMENSION);
    assert_refused(
        table.open(serde_json::json!({ "ownership_mode": "snapshot_bundle" })),
        "snapshot bundles are not supported",
    );
}

#[test]
fn a_database_without_the_vector_extension_is_refused() {
    let admin = Db::connect(&database_url());
    let database = unique_name("kyro_it_noext");
    admin.execute(&format!("CREATE DATABASE {database}"));
    let url = database_url();
    let (server, _) = url.rsplit_once('/').unwrap();
    let config = kyro_connector_sdk::ConnectorConfig::from_json(
        serde_json::json!({
            "dsn": { "value": format!("{server}/{database}") },
            "table": "kyro_documents",
            "dimension": DIMENSION,
            "ownership_mode": "event_feed",
        })
        .to_string(),
    );
    let result =
        <kyro_connector_pgvector::PgvectorConnector as kyro_connector_sdk::ConnectorPlugin>::open(
            &config,
            kyro_connector_sdk::HostContext::discard(),
        );
    admin.execute(&format!("DROP DATABASE {database} WITH (FORCE)"));
    assert_refused(result, "the vector extension is not installed in this database");
}

/// A case-insensitive ICU collation, dropped on drop (after the tables that use it).
struct CaseInsensitiveCollation {
    db: Db,
    name: String,
}

impl CaseInsensitiveCollation {
    fn create() -> Self {
        let db = Db::connect(&database_url());
        let name = unique_name("kyro_it_ci");
        db.execute(&format!(
            "CREATE COLLATION {name} (provider = icu, locale = 'und-u-ks-level2', deterministic = false)"
        ));
        Self { db, name }
    }
}

impl Drop for CaseInsensitiveCollation {
    fn drop(&mut self) {
        self.db.execute(&format!("DROP COLLATION IF EXISTS {}", self.name));
    }
}

#[test]
fn scope_and_id_columns_with_a_nondeterministic_collation_are_refused() {
    let collation = CaseInsensitiveCollation::create();
    // What the refusal prevents: under this collation two tenants are one.
    assert_eq!(
        collation.db.text(&format!("SELECT ('Acme' = 'acme' COLLATE {})::text", collation.name)),
        Some("true".to_owned())
    );
    for (column, key) in
        [("tenant_id", "columns.tenant"), ("namespace", "columns.namespace"), ("id", "columns.id")]
    {
        let table = TestTable::create_with(DIMENSION, |sql| {
            sql.replace(
                &format!("{column:<10} text        NOT NULL"),
                &format!("{column} text COLLATE {} NOT NULL", collation.name),
            )
        });
        for ownership_mode in ["write_through", "event_feed"] {
            assert_refused(
                table.open(serde_json::json!({ "ownership_mode": ownership_mode })),
                &format!(
                    "column \"{column}\" ({key}) uses the nondeterministic collation \"{}\"",
                    collation.name
                ),
            );
        }
    }
    // Content is never compared, so its collation does not matter.
    let table = TestTable::create_with(DIMENSION, |sql| {
        sql.replace("content    text", &format!("content text COLLATE {}", collation.name))
    });
    table.open(serde_json::json!({})).unwrap();
}
