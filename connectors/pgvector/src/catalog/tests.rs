//! The catalog judgement on snapshots the test database cannot produce: an older pgvector, a view,
//! dimensions past what an index covers. Everything the live database can show is tested against
//! it in `tests/it/catalog.rs`.

use kyro_connector_sdk::{ConnectorConfig, SetupFinding, SetupFindings};

use super::{ColumnSnapshot, IndexSnapshot, Privileges, Snapshot, TableSnapshot, assess};
use crate::config::{PgvectorConfig, ValidatedPgvectorConfig};
use crate::sql::WatermarkType;

fn config(overrides: serde_json::Value) -> ValidatedPgvectorConfig {
    let mut config = serde_json::json!({
        "dsn": { "env": "KYRO_UNIT_TEST_DSN_THAT_IS_NEVER_READ" },
        "table": "public.docs",
        "dimension": 8,
        "ownership_mode": "write_through",
    });
    for (key, value) in overrides.as_object().unwrap() {
        config[key] = value.clone();
    }
    let raw: PgvectorConfig = ConnectorConfig::from_json(config.to_string()).parse().unwrap();
    raw.validate().unwrap()
}

fn column(name: &str, type_name: &str, typmod: i32) -> ColumnSnapshot {
    ColumnSnapshot {
        name: name.to_owned(),
        type_name: type_name.to_owned(),
        formatted_type: if typmod > 0 {
            format!("{type_name}({typmod})")
        } else {
            type_name.to_owned()
        },
        typmod,
        from_vector_extension: type_name == "vector",
        collation: None,
        deterministic: true,
    }
}

fn index(name: &str, method: &str, columns: &[&str], opclass: &str) -> IndexSnapshot {
    IndexSnapshot {
        name: name.to_owned(),
        constraint: None,
        method: method.to_owned(),
        unique: false,
        primary: false,
        partial: false,
        key_columns: columns.iter().map(|column| Some((*column).to_owned())).collect(),
        first_opclass: opclass.to_owned(),
        deterministic: true,
    }
}

/// The example schema with a `vector(dimension)` embedding, pgvector `version`.
fn example(version: &str, dimension: i32) -> Snapshot {
    let primary_key = IndexSnapshot {
        constraint: Some("docs_pkey".to_owned()),
        unique: true,
        primary: true,
        ..index("docs_pkey", "btree", &["tenant_id", "namespace", "id"], "text_ops")
    };
    Snapshot {
        pgvector_version: Some(version.to_owned()),
        role: "kyro".to_owned(),
        table: Some(TableSnapshot {
            name: "\"public\".\"docs\"".to_owned(),
            relkind: "r".to_owned(),
            columns: vec![
                column("tenant_id", "text", -1),
                column("namespace", "text", -1),
                column("id", "text", -1),
                column("embedding", "vector", dimension),
                column("metadata", "jsonb", -1),
                column("content", "text", -1),
                column("updated_at", "int8", -1),
            ],
            indexes: vec![
                primary_key,
                index(
                    "docs_scope_idx",
                    "btree",
                    &["tenant_id", "namespace", "updated_at"],
                    "text_ops",
                ),
                index("docs_embedding_idx", "hnsw", &["embedding"], "vector_cosine_ops"),
            ],
            privileges: Privileges { select: true, insert: true, update: true, delete: true },
        }),
    }
}

fn requirements(findings: &SetupFindings) -> Vec<&str> {
    findings.findings().iter().map(SetupFinding::requirement).collect()
}

#[test]
fn a_ready_table_yields_what_the_statements_need() {
    let catalog = assess(&example("0.8.0", 8), &config(serde_json::json!({}))).unwrap();
    assert_eq!(catalog.table, "\"public\".\"docs\"");
    assert_eq!(catalog.watermark_type, WatermarkType::Integer);
    assert_eq!(catalog.dimension, 8);
    assert!(catalog.has_iterative_scan);
    assert!(catalog.advisories.is_empty());
}

#[test]
fn iterative_scans_need_pgvector_0_8_unless_turned_off() {
    let findings = assess(&example("0.7.4", 8), &config(serde_json::json!({}))).unwrap_err();
    assert_eq!(
        requirements(&findings),
        ["pgvector 0.8 or later, for hnsw_iterative_scan = \"strict_order\""]
    );
    let finding = &findings.findings()[0];
    assert!(finding.problem().starts_with("the database has pgvector 0.7.4"), "{finding}");
    assert_eq!(finding.fix_sql(), Some("ALTER EXTENSION vector UPDATE;"));

    let catalog =
        assess(&example("0.7.4", 8), &config(serde_json::json!({ "hnsw_iterative_scan": "off" })))
            .unwrap();
    assert!(!catalog.has_iterative_scan);
}

#[test]
fn a_view_is_not_a_table() {
    let mut snapshot = example("0.8.0", 8);
    if let Some(table) = &mut snapshot.table {
        table.relkind = "v".to_owned();
    }
    let findings = assess(&snapshot, &config(serde_json::json!({}))).unwrap_err();
    assert_eq!(requirements(&findings), ["\"public\".\"docs\" to be a table"]);
    assert!(findings.findings()[0].problem().starts_with("it is a view"));
}

#[test]
fn past_2000_dimensions_no_index_statement_is_offered() {
    let mut snapshot = example("0.8.0", 3072);
    if let Some(table) = &mut snapshot.table {
        table.indexes.retain(|index| index.method != "hnsw");
    }
    let catalog = assess(&snapshot, &config(serde_json::json!({ "dimension": 3072 }))).unwrap();
    assert_eq!(catalog.advisories.len(), 1);
    assert_eq!(catalog.advisories[0].fix_sql(), None);
    assert!(catalog.advisories[0].problem().contains("halfvec"), "{}", catalog.advisories[0]);

    let missing = Snapshot { table: None, ..snapshot };
    let findings = assess(&missing, &config(serde_json::json!({ "dimension": 3072 }))).unwrap_err();
    let create = findings.findings()[0].fix_sql().unwrap();
    assert!(create.contains("vector(3072)") && !create.contains("hnsw"), "{create}");
}
