//! Short results: fewer than `top_k` hits are reported with the right reason: `Exhausted` when
//! the scope and filter hold no more, `IndexScanLimit` when HNSW stopped before it found them;
//! and the scope is never widened to fill the list.

use kyro_connector_sdk::{Connector, ShortfallReason};

use crate::support::{DIMENSION, TestTable, direction, document, exact, scope, search};

/// 3000 documents in one scope, 30 of them (every 100th) with `product = rare`, and 3 with
/// `product = unique`; scattered directions so HNSW has real work to do.
fn table_with_a_rare_product() -> TestTable {
    let table = TestTable::create(DIMENSION);
    table.db.execute(&format!(
        "INSERT INTO {} (tenant_id, namespace, id, embedding, metadata) \
         SELECT 'tenant-a', 'docs', 'doc-' || g, \
                ARRAY[sin(g), cos(g), sin(2 * g), cos(3 * g), sin(5 * g), cos(7 * g), sin(11 * g), cos(13 * g)]::real[]::vector, \
                CASE WHEN g % 1000 = 7 THEN '{{\"product\": \"unique\"}}'::jsonb \
                     WHEN g % 100 = 0 THEN '{{\"product\": \"rare\"}}'::jsonb \
                     ELSE '{{\"product\": \"common\"}}'::jsonb END \
         FROM generate_series(1, 3000) AS g; ANALYZE {};",
        table.name, table.name
    ));
    table
}

#[test]
fn a_small_scope_is_reported_as_exhausted() {
    let table = TestTable::create(DIMENSION);
    let connector = table.open(serde_json::json!({})).unwrap();
    let mine = scope("tenant-a", "docs");
    for (doc_idx, doc_id) in ["a", "b", "c"].iter().enumerate() {
        connector.upsert(&mine, &document(doc_id, direction(doc_idx, 0.1), &[])).unwrap();
    }
    // Another tenant has plenty; it must not be used to fill my list.
    for doc_idx in 0..20 {
        let doc_id = format!("other-{doc_idx}");
        connector
            .upsert(&scope("tenant-b", "docs"), &document(&doc_id, direction(0, 0.0), &[]))
            .unwrap();
    }
    let response = connector.search(&mine, &search(direction(0, 0.0), 10, None)).unwrap();
    assert_eq!(response.hits.len(), 3);
    let shortfall = response.shortfall.unwrap();
    assert_eq!((shortfall.requested, shortfall.returned), (10, 3));
    assert_eq!(shortfall.reason, ShortfallReason::Exhausted);

    let full = connector.search(&mine, &search(direction(0, 0.0), 3, None)).unwrap();
    assert_eq!((full.hits.len(), full.shortfall), (3, None));
}

#[test]
fn a_selective_filter_that_hnsw_cannot_satisfy_is_reported_as_an_index_scan_limit() {
    let table = table_with_a_rare_product();
    let connector = table
        .open(serde_json::json!({ "hnsw_ef_search": 10, "hnsw_iterative_scan": "off" }))
        .unwrap();
    let mine = scope("tenant-a", "docs");
    let response = connector
        .search(&mine, &search(direction(0, 0.0), 10, Some(exact("product", "rare"))))
        .unwrap();
    assert!(
        response.hits.len() < 10,
        "the index found every rare document: {}",
        response.hits.len()
    );
    assert!(response.hits.iter().all(|hit| hit.document.metadata.get("product") == Some("rare")));
    let shortfall = response.shortfall.unwrap();
    assert_eq!(shortfall.requested, 10);
    assert_eq!(
        shortfall.reason,
        ShortfallReason::IndexScanLimit {
            detail: "hnsw.ef_search=10, hnsw.iterative_scan=off".to_owned()
        }
    );
}

#[test]
fn iterative_scans_fill_the_list_and_a_truly_short_filter_is_exhausted() {
    let table = table_with_a_rare_product();
    let connector = table
        .open(serde_json::json!({ "hnsw_ef_search": 10, "hnsw_iterative_scan": "strict_order" }))
        .unwrap();
    let mine = scope("tenant-a", "docs");
    let rare = connector
        .search(&mine, &search(direction(0, 0.0), 10, Some(exact("product", "rare"))))
        .unwrap();
    assert_eq!((rare.hits.len(), rare.shortfall), (10, None));
    assert!(rare.hits.windows(2).all(|pair| pair[0].score >= pair[1].score), "nearest first");

    let unique = connector
        .search(&mine, &search(direction(0, 0.0), 10, Some(exact("product", "unique"))))
        .unwrap();
    // Three documents match. HNSW is approximate and its graph depends on the build, so a scan
    // may still miss one; what must hold is that the reason agrees with the count.
    assert!(unique.hits.iter().all(|hit| hit.document.metadata.get("product") == Some("unique")));
    let reason = unique.shortfall.unwrap().reason;
    if unique.hits.len() == 3 {
        assert_eq!(reason, ShortfallReason::Exhausted);
    } else {
        assert!(
            matches!(reason, ShortfallReason::IndexScanLimit { .. }),
            "{} hits, {reason:?}",
            unique.hits.len()
        );
    }
}
