//! Poisoned neighbours: documents of another tenant and of another namespace, placed exactly at
//! the probe, never come back from search or fetch and are never touched by delete or upsert.

use kyro_connector_sdk::{Connector, MutationOutcome};

use crate::support::{TestTable, direction, document, hit_ids, id, scope, search};

#[test]
fn another_tenants_and_another_namespaces_documents_never_cross_the_scope() {
    let table = TestTable::create(crate::support::DIMENSION);
    let connector = table.open(serde_json::json!({})).unwrap();
    let mine = scope("tenant-a", "docs");
    let other_tenant = scope("tenant-b", "docs");
    let other_namespace = scope("tenant-a", "private");
    let probe = direction(0, 0.0);

    // My documents are near the probe, but not on it.
    for (doc_idx, doc_id) in ["a1", "a2", "a3"].iter().enumerate() {
        connector
            .upsert(&mine, &document(doc_id, direction(0, 0.3 + doc_idx as f32 * 0.2), &[]))
            .unwrap();
    }
    // The poison sits exactly on the probe, reuses one of my ids, and has ids of its own.
    for poisoned in [&other_tenant, &other_namespace] {
        for doc_id in ["a1", "poison"] {
            connector.upsert(poisoned, &document(doc_id, probe, &[("lang", "en")])).unwrap();
        }
    }
    assert_eq!(table.n_rows(), 7);

    let response = connector.search(&mine, &search(probe, 10, None)).unwrap();
    assert_eq!(hit_ids(&response), ["a1", "a2", "a3"]);
    for hit in &response.hits {
        assert_eq!(hit.document.scope, mine);
        assert!(hit.score < 0.99, "a hit scored like the poison: {}", hit.score);
        assert_eq!(
            hit.document.content.as_deref(),
            Some(format!("content of {}", hit.document.id).as_str())
        );
        assert!(hit.document.metadata.is_empty(), "my documents have no metadata; the poison has");
    }
    // A filter that only the poison satisfies finds nothing in my scope.
    let filtered = connector
        .search(&mine, &search(probe, 10, Some(crate::support::exact("lang", "en"))))
        .unwrap();
    assert!(filtered.hits.is_empty(), "{:?}", hit_ids(&filtered));

    let fetched = connector.fetch(&mine, &[id("a1"), id("poison"), id("a2")]).unwrap();
    let fetched_ids: Vec<&str> = fetched.iter().map(|doc| doc.id.as_str()).collect();
    assert_eq!(fetched_ids, ["a1", "a2"]);
    assert!(fetched.iter().all(|doc| doc.scope == mine && doc.metadata.is_empty()));

    // Deleting the poison's own id from my scope finds nothing and removes nothing.
    let ack = connector.delete(&mine, &id("poison")).unwrap();
    assert_eq!(ack.outcome, MutationOutcome::NotFound);
    assert_eq!(table.n_rows(), 7);
    // Deleting a shared id removes only mine.
    let ack = connector.delete(&mine, &id("a1")).unwrap();
    assert_eq!((ack.scope.clone(), ack.outcome), (mine.clone(), MutationOutcome::Deleted));
    assert_eq!(table.n_rows(), 6);
    for poisoned in [&other_tenant, &other_namespace] {
        let survivors = connector.fetch(poisoned, &[id("a1"), id("poison")]).unwrap();
        assert_eq!(survivors.len(), 2, "delete in my scope removed a row of {poisoned}");
        assert!(survivors.iter().all(|doc| doc.metadata.get("lang") == Some("en")));
    }
    // And an upsert of a shared id in another scope leaves mine as it was.
    connector.upsert(&other_tenant, &document("a2", probe, &[("lang", "de")])).unwrap();
    let a2 = connector.fetch(&mine, &[id("a2")]).unwrap();
    assert!(a2[0].metadata.is_empty());
}
