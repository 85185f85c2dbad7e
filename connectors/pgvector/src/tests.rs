//! Unit tests of the pure parts: configuration validation, filter translation, statement text,
//! error classification, redaction and metadata decoding. Everything that needs the database is
//! in `tests/it`.

use kyro_connector_sdk::{
    ConnectorConfig, Distance, ErrorKind, FilterExpr, FilterKey, FilterValue, OwnershipMode, Secret,
};

use crate::config::{IterativeScan, PgvectorConfig, ValidatedPgvectorConfig};
use crate::error::{Redactor, sqlstate_kind};
use crate::filter::{FilterBind, translate};
use crate::sql::{StatementParts, Statements, WatermarkType, score};
use crate::store::metadata_from_json;

fn config(overrides: serde_json::Value) -> ConnectorConfig {
    let mut config = serde_json::json!({
        "dsn": { "env": "KYRO_UNIT_TEST_DSN_THAT_IS_NEVER_READ" },
        "table": "public.kyro_documents",
        "dimension": 8,
        "ownership_mode": "write_through",
        "filterable_keys": ["lang", "year"],
    });
    for (key, value) in overrides.as_object().unwrap() {
        config[key] = value.clone();
    }
    ConnectorConfig::from_json(config.to_string())
}

fn validate(overrides: serde_json::Value) -> Result<ValidatedPgvectorConfig, String> {
    let raw: PgvectorConfig = config(overrides).parse().map_err(|err| err.to_string())?;
    raw.validate().map_err(|err| err.to_string())
}

#[test]
fn a_minimal_config_gets_the_example_schemas_defaults() {
    let validated = validate(serde_json::json!({})).unwrap();
    assert_eq!(validated.table.quoted(), "\"public\".\"kyro_documents\"");
    let columns: Vec<&str> =
        validated.columns.roles().iter().map(|(_, column)| column.as_str()).collect();
    assert_eq!(
        columns,
        ["tenant_id", "namespace", "id", "embedding", "metadata", "content", "updated_at"]
    );
    assert_eq!(validated.distance, Distance::Cosine);
    assert_eq!(validated.dimension, Some(8));
    assert_eq!(validated.ownership_mode, OwnershipMode::WriteThrough);
    assert_eq!(validated.ef_search.value(), 40);
    assert_eq!(validated.iterative_scan, IterativeScan::StrictOrder);
    assert_eq!((validated.caps.max_top_k, validated.caps.max_fetch_ids), (100, 100));
    assert_eq!(validated.filterable_keys.len(), 2);
}

#[test]
fn each_bad_key_is_named_and_its_value_never_echoed() {
    let canary = "postgres://kyro:canary-password@db/kyro";
    let cases = [
        (serde_json::json!({ "table": canary }), "`table`"),
        (serde_json::json!({ "table": "a.b.c" }), "`table`"),
        (serde_json::json!({ "table": "1table" }), "`table`"),
        (serde_json::json!({ "columns": { "tenant": canary } }), "`columns.tenant`"),
        (serde_json::json!({ "columns": { "metadata": "x\"y" } }), "`columns.metadata`"),
        (serde_json::json!({ "columns": { "content": "id" } }), "`columns`"),
        (serde_json::json!({ "columns": { "watermark": "a".repeat(64) } }), "`columns.watermark`"),
        (serde_json::json!({ "dimension": 0 }), "`dimension`"),
        (serde_json::json!({ "dimension": 16_001 }), "`dimension`"),
        (serde_json::json!({ "distance": canary }), "`distance`"),
        (serde_json::json!({ "filterable_keys": ["lang", canary] }), "`filterable_keys[1]`"),
        (serde_json::json!({ "ownership_mode": canary }), "`ownership_mode`"),
        (serde_json::json!({ "ownership_mode": "snapshot_bundle" }), "`ownership_mode`"),
        (serde_json::json!({ "mutation_key_mode": canary }), "`mutation_key_mode`"),
        (serde_json::json!({ "mutation_key_mode": "tenant_id" }), "`mutation_key_mode`"),
        (serde_json::json!({ "pool_size": 0 }), "`pool_size`"),
        (serde_json::json!({ "connect_timeout_ms": 0 }), "`connect_timeout_ms`"),
        (serde_json::json!({ "statement_timeout_ms": 600_001 }), "`statement_timeout_ms`"),
        (serde_json::json!({ "hnsw_ef_search": 1001 }), "`hnsw_ef_search`"),
        (serde_json::json!({ "hnsw_iterative_scan": canary }), "`hnsw_iterative_scan`"),
        (serde_json::json!({ "max_top_k": 1001 }), "`max_top_k`"),
        (serde_json::json!({ "max_fetch_ids": 0 }), "`max_fetch_ids`"),
        (serde_json::json!({ "dsn": { "value": 5 } }), "`dsn"),
        (serde_json::json!({ "dsn": canary }), "`dsn`"),
        (serde_json::json!({ "password": canary }), "unknown field `password`"),
        (serde_json::json!({ "columns": { "vector": "embedding" } }), "unknown field `vector`"),
    ];
    for (overrides, expected) in cases {
        let err = validate(overrides.clone()).unwrap_err();
        assert!(err.contains(expected), "{overrides}: expected {expected} in {err}");
        assert!(!err.contains("canary"), "{overrides}: the value leaked into {err}");
    }
}

#[test]
fn non_write_through_modes_accept_any_mutation_key_mode() {
    for mode in ["event_feed", "best_effort"] {
        let validated =
            validate(serde_json::json!({ "ownership_mode": mode, "mutation_key_mode": "id" }))
                .unwrap();
        assert_ne!(validated.ownership_mode, OwnershipMode::WriteThrough);
    }
}

#[test]
fn validated_config_debug_shows_no_inline_dsn() {
    let validated =
        validate(serde_json::json!({ "dsn": { "value": "postgres://u:canary-pw@h/db" } })).unwrap();
    let debug = format!("{validated:?}");
    assert!(!debug.contains("canary"), "{debug}");
}

fn key(text: &str) -> FilterKey {
    FilterKey::new(text).unwrap()
}

fn value(text: &str) -> FilterValue {
    FilterValue::new(text).unwrap()
}

#[test]
fn filters_become_bound_sql_over_the_metadata_column() {
    let filter = FilterExpr::And(vec![
        FilterExpr::Exact { key: key("lang"), value: value("' OR 1=1 --") },
        FilterExpr::Not(Box::new(FilterExpr::In {
            key: key("year"),
            values: vec![value("$1"), value("2020")],
        })),
        FilterExpr::Or(vec![FilterExpr::Range { key: key("year"), min: Some(1.5), max: None }]),
    ]);
    let translated = translate(&filter, "\"metadata\"", 4);
    let pattern = "'^[[:space:]]*([+-]?(?:[0-9]+[.]?[0-9]*|[.][0-9]+)(?:[eE][+-]?0*[0-9]{1,3})?)[[:space:]]*$'";
    assert_eq!(
        translated.sql,
        format!(
            "(coalesce((\"metadata\" ->> $4) = $5, false) AND \
             (NOT coalesce((\"metadata\" ->> $6) = ANY($7), false)) AND \
             (coalesce(CASE WHEN octet_length(\"metadata\" ->> $8) <= 4096 \
             THEN substring(\"metadata\" ->> $8 FROM {pattern})::numeric END \
             BETWEEN $9::numeric AND $10::numeric, false)))"
        )
    );
    assert_eq!(
        translated.binds,
        [
            FilterBind::Text("lang".to_owned()),
            FilterBind::Text("' OR 1=1 --".to_owned()),
            FilterBind::Text("year".to_owned()),
            FilterBind::TextArray(vec!["$1".to_owned(), "2020".to_owned()]),
            FilterBind::Text("year".to_owned()),
            FilterBind::Text("1.5".to_owned()),
            FilterBind::Text(format!("{}", f64::MAX)),
        ]
    );
    // No key or value ever reaches the SQL text.
    for needle in ["lang", "OR 1=1", "2020", "1.5"] {
        assert!(!translated.sql.contains(needle), "{needle} in {}", translated.sql);
    }
}

#[test]
fn range_bounds_are_plain_decimals_numeric_reads_exactly() {
    let filter = FilterExpr::Range { key: key("year"), min: Some(-1e300), max: Some(2.5e-7) };
    let translated = translate(&filter, "\"metadata\"", 1);
    let [_, FilterBind::Text(min), FilterBind::Text(max)] = translated.binds.as_slice() else {
        panic!("{translated:?}")
    };
    assert_eq!(*min, format!("-1{}", "0".repeat(300)), "no exponent, shortest digits");
    assert_eq!(max, "0.00000025");
    assert_eq!(min.parse::<f64>().unwrap(), -1e300);
}

fn statements(watermark_type: WatermarkType, iterative_scan: Option<IterativeScan>) -> Statements {
    let validated = validate(serde_json::json!({ "hnsw_ef_search": 64 })).unwrap();
    Statements::new(&StatementParts {
        table: "\"public\".\"kyro_documents\"",
        columns: &validated.columns,
        distance: Distance::Cosine,
        watermark_type,
        ef_search: validated.ef_search,
        iterative_scan,
    })
}

#[test]
fn statements_bind_the_scope_and_write_only_identifiers_and_validated_numbers() {
    let statements = statements(WatermarkType::Timestamptz, Some(IterativeScan::RelaxedOrder));
    assert_eq!(
        statements.begin_search,
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET LOCAL hnsw.ef_search = 64; \
         SET LOCAL hnsw.iterative_scan = relaxed_order"
    );
    assert_eq!(
        statements.search(Some("<filter>"), 6, false),
        "SELECT \"id\", \"metadata\"::text, NULL::text, (extract(epoch FROM \"updated_at\") * 1000000)::bigint, \
         \"tenant_id\"::text, \"namespace\"::text, \
         \"embedding\" <=> $6 AS distance FROM \"public\".\"kyro_documents\" \
         WHERE \"tenant_id\" = $1 AND \"namespace\" = $2 AND <filter> \
         ORDER BY \"embedding\" <=> $6 LIMIT $3"
    );
    assert_eq!(
        statements.bounded_count(None),
        "SELECT count(*) FROM (SELECT 1 FROM \"public\".\"kyro_documents\" \
         WHERE \"tenant_id\" = $1 AND \"namespace\" = $2 LIMIT $3) AS bounded"
    );
    // tests/it/write_through.rs EXPLAINs exactly this text against the example schema.
    assert_eq!(
        statements.scope_watermark,
        "SELECT (extract(epoch FROM max(\"updated_at\")) * 1000000)::bigint \
         FROM \"public\".\"kyro_documents\" WHERE \"tenant_id\" = $1 AND \"namespace\" = $2"
    );
    assert!(
        statements.upsert.contains("ON CONFLICT (\"tenant_id\", \"namespace\", \"id\") DO UPDATE")
    );
    assert!(statements.upsert.contains(
        "greatest(clock_timestamp(), (SELECT max(\"updated_at\") FROM \"public\".\"kyro_documents\" \
         WHERE \"tenant_id\" = $1 AND \"namespace\" = $2) + interval '1 microsecond')"
    ));
    assert!(
        statements
            .delete
            .ends_with("WHERE \"tenant_id\" = $1 AND \"namespace\" = $2 AND \"id\" = $3")
    );
}

#[test]
fn integer_watermarks_count_and_old_pgvector_gets_no_iterative_scan() {
    let statements = statements(WatermarkType::Integer, None);
    assert!(!statements.begin_search.contains("iterative_scan"), "{}", statements.begin_search);
    assert!(
        statements.upsert.contains("coalesce((SELECT max(\"updated_at\")"),
        "{}",
        statements.upsert
    );
    assert!(statements.scope_watermark.starts_with("SELECT (max(\"updated_at\"))::bigint"));
}

#[test]
fn scores_are_higher_for_closer_vectors() {
    assert_eq!(score(Distance::Cosine, 0.25), 0.75);
    assert_eq!(score(Distance::Cosine, f64::NAN), 0.0);
    assert_eq!(score(Distance::L2, 2.0), -2.0);
    // `<#>` answers the negated inner product.
    assert_eq!(score(Distance::InnerProduct, -3.0), 3.0);
}

#[test]
fn sqlstates_are_classified_by_what_the_caller_can_do() {
    for (code, kind) in [
        ("57014", ErrorKind::Timeout),
        ("08006", ErrorKind::Unavailable),
        ("57P01", ErrorKind::Unavailable),
        ("53300", ErrorKind::Unavailable),
        ("40001", ErrorKind::Unavailable),
        ("28P01", ErrorKind::Configuration),
        ("3D000", ErrorKind::Configuration),
        ("22P02", ErrorKind::InvalidRequest),
        ("23505", ErrorKind::InvalidRequest),
        ("42P01", ErrorKind::Internal),
        ("", ErrorKind::Internal),
    ] {
        assert_eq!(sqlstate_kind(code), kind, "{code}");
    }
}

#[test]
fn driver_errors_are_classified_and_redacted() {
    let redactor = Redactor::new(Secret::new("postgres://kyro:s3cr%2Ft-pw@db.internal:5432/kyro"));
    let io = sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        "postgres://kyro:s3cr%2Ft-pw@db.internal:5432/kyro refused",
    ));
    let err = redactor.store_error("search", &io);
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(
        err.message(),
        "pgvector search failed: cannot reach the database: connection refused"
    );
    assert_eq!(
        redactor.store_error("fetch", &sqlx::Error::PoolTimedOut).kind(),
        ErrorKind::Unavailable
    );
    let text =
        "dsn postgres://kyro:s3cr%2Ft-pw@db.internal:5432/kyro, password s3cr%2Ft-pw or s3cr/t-pw";
    assert_eq!(redactor.redact(text), "dsn ***, password *** or ***");
    assert_eq!(format!("{redactor:?}"), "Redactor(***)");
}

#[test]
fn metadata_reads_like_the_jsonb_text_operator() {
    let (metadata, n_dropped) = metadata_from_json(
        r#"{"lang": "en", "year": 2020, "flag": true, "gone": null, "nested": {"a": [1]}, "bad key": "x"}"#,
    );
    assert_eq!(n_dropped, 1);
    let entries: Vec<(&str, &str)> =
        metadata.as_map().iter().map(|(key, value)| (key.as_str(), value.as_str())).collect();
    assert_eq!(
        entries,
        [("flag", "true"), ("lang", "en"), ("nested", "{\"a\":[1]}"), ("year", "2020")]
    );
    assert!(metadata_from_json("[1, 2]").0.is_empty());
    assert!(metadata_from_json("not json").0.is_empty());
}

#[test]
fn pgvector_versions_compare_by_major_and_minor() {
    use crate::catalog::version_at_least;
    assert!(version_at_least("0.8.0", (0, 8)));
    assert!(version_at_least("0.10.1", (0, 8)));
    assert!(version_at_least("1.0", (0, 8)));
    assert!(!version_at_least("0.7.4", (0, 8)));
    assert!(!version_at_least("garbage", (0, 8)));
}
