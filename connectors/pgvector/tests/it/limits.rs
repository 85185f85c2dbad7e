//! Caps and capabilities: `LimitExceeded` past `max_top_k` and `max_fetch_ids`, `Unsupported`
//! for every operation not declared (snapshot versions always, writes outside write-through),
//! the declared manifest per ownership mode, and health.

use kyro_connector_sdk::{
    Connector, Distance, ErrorKind, FilterableKeys, HealthStatus, Operation, OwnershipMode,
    VectorSpec, WatermarkKind,
};

use crate::support::{DIMENSION, TestTable, direction, document, id, scope, search};

#[test]
fn top_k_and_fetch_ids_past_their_caps_are_limit_exceeded() {
    let table = TestTable::create(DIMENSION);
    let connector = table.open(serde_json::json!({ "max_top_k": 5, "max_fetch_ids": 3 })).unwrap();
    let mine = scope("tenant-a", "docs");
    for doc_idx in 0..8 {
        connector
            .upsert(&mine, &document(&format!("doc-{doc_idx}"), direction(doc_idx, 0.2), &[]))
            .unwrap();
    }
    assert_eq!(connector.search(&mine, &search(direction(0, 0.0), 5, None)).unwrap().hits.len(), 5);
    let err = connector.search(&mine, &search(direction(0, 0.0), 6, None)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err}");

    let ids: Vec<_> = (0..4).map(|doc_idx| id(&format!("doc-{doc_idx}"))).collect();
    assert_eq!(connector.fetch(&mine, &ids[..3]).unwrap().len(), 3);
    let err = connector.fetch(&mine, &ids).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err}");
    assert_eq!(connector.describe().caps.max_top_k, 5);
    assert_eq!(connector.describe().caps.max_fetch_ids, 3);
}

#[test]
fn a_query_of_another_dimension_is_an_invalid_request() {
    let table = TestTable::create(DIMENSION);
    let connector = table.open(serde_json::json!({})).unwrap();
    let mut request = search(direction(0, 0.0), 5, None);
    request.embedding = kyro_connector_sdk::Embedding::new(vec![1.0; 4]).unwrap();
    let err = connector.search(&scope("tenant-a", "docs"), &request).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
}

#[test]
fn write_through_declares_writes_and_snapshots_stay_unsupported() {
    let table = TestTable::create(DIMENSION);
    let connector = table.open(serde_json::json!({})).unwrap();
    let manifest = connector.describe();
    assert_eq!(
        manifest.operations.iter().copied().collect::<Vec<_>>(),
        [
            Operation::Search,
            Operation::Fetch,
            Operation::Upsert,
            Operation::Delete,
            Operation::Watermark
        ]
    );
    assert_eq!(
        manifest.ownership_modes.iter().copied().collect::<Vec<_>>(),
        [OwnershipMode::WriteThrough]
    );
    assert_eq!(manifest.watermark_kind, WatermarkKind::PerScopeNative);
    assert_eq!(
        manifest.vector,
        Some(VectorSpec { dimension: DIMENSION, distance: Distance::Cosine })
    );
    let FilterableKeys::Listed(keys) = &manifest.filterable_keys else { panic!("{manifest:?}") };
    assert_eq!(
        keys.iter().map(|key| key.as_str()).collect::<Vec<_>>(),
        ["lang", "product", "year"]
    );

    let err = connector.snapshot_version(&scope("tenant-a", "docs")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
}

#[test]
fn event_feed_answers_writes_and_snapshots_with_unsupported() {
    let table = TestTable::create(DIMENSION);
    let connector = table.open(serde_json::json!({ "ownership_mode": "event_feed" })).unwrap();
    let manifest = connector.describe();
    assert!(!manifest.supports(Operation::Upsert) && !manifest.supports(Operation::Delete));
    assert!(manifest.supports(Operation::Search) && manifest.supports(Operation::Watermark));
    assert_eq!(
        manifest.ownership_modes.iter().copied().collect::<Vec<_>>(),
        [OwnershipMode::EventFeed]
    );

    let mine = scope("tenant-a", "docs");
    let upsert = connector.upsert(&mine, &document("doc", direction(0, 0.0), &[])).unwrap_err();
    let delete = connector.delete(&mine, &id("doc")).unwrap_err();
    let snapshot = connector.snapshot_version(&mine).unwrap_err();
    for err in [upsert, delete, snapshot] {
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    }
    assert_eq!(table.n_rows(), 0, "an unsupported upsert wrote anyway");
    // Reads and the watermark still work on rows other writers put there.
    table.db.execute(&format!(
        "INSERT INTO {} (tenant_id, namespace, id, embedding) VALUES ('tenant-a', 'docs', 'doc', '[1,0,0,0,0,0,0,0]')",
        table.name
    ));
    assert_eq!(connector.fetch(&mine, &[id("doc")]).unwrap().len(), 1);
    assert!(connector.watermark(&mine).unwrap().value() > 0);
}

#[test]
fn health_names_the_server_and_pgvector_versions() {
    let table = TestTable::create(DIMENSION);
    let connector = table.open(serde_json::json!({})).unwrap();
    let health = connector.health().unwrap();
    assert_eq!(health.status, HealthStatus::Healthy);
    let (postgres, pgvector) = health.store_version.split_once(", ").unwrap();
    assert!(
        postgres.starts_with("PostgreSQL ") && postgres.len() > "PostgreSQL ".len(),
        "{health:?}"
    );
    assert!(
        pgvector.starts_with("pgvector 0.") || pgvector.starts_with("pgvector 1."),
        "{health:?}"
    );
    let server_version = table.db.text("SHOW server_version").unwrap();
    assert!(server_version.starts_with(postgres.trim_start_matches("PostgreSQL ")), "{health:?}");
}
