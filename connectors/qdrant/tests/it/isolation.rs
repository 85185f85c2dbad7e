//! Poisoned neighbours: another tenant's and another namespace's documents, with the same ids
//! and metadata, placed exactly at the probe, never come back from search or fetch and are never
//! deleted.

use kyro_connector_sdk::{Connector, MutationOutcome};

use crate::common::{TempDir, doc, exact, hit_ids, id, open_embedded, scope, search, upsert};

const PROBE: [f32; 4] = [1.0, 0.0, 0.0, 0.0];

fn seeded(dir: &TempDir) -> kyro_connector_qdrant::QdrantConnector {
    let connector = open_embedded(dir.path());
    let target = scope("acme", "docs");
    upsert(&connector, &target, &doc("a", [0.0, 1.0, 0.0, 0.0], &[("lang", "en")], "acme docs a"));
    upsert(&connector, &target, &doc("b", [0.0, 0.0, 1.0, 0.0], &[("lang", "en")], "acme docs b"));
    for (tenant, namespace) in [("globex", "docs"), ("acme", "other"), ("acme-docs", "x")] {
        let poison = scope(tenant, namespace);
        for doc_id in ["a", "b", "poison"] {
            upsert(
                &connector,
                &poison,
                &doc(doc_id, PROBE, &[("lang", "en")], &format!("{tenant} {namespace} {doc_id}")),
            );
        }
    }
    connector
}

#[test]
fn search_never_returns_another_scopes_nearest_neighbours() {
    let dir = TempDir::new("iso-search");
    let connector = seeded(&dir);
    let target = scope("acme", "docs");
    for filter in [None, Some(exact("lang", "en"))] {
        let response = search(&connector, &target, PROBE, 10, filter);
        let mut ids = hit_ids(&response);
        ids.sort();
        assert_eq!(ids, ["a", "b"]);
        for hit in &response.hits {
            assert_eq!(hit.document.scope, target);
            assert!(hit.document.content.as_deref().unwrap().starts_with("acme docs"));
        }
    }
}

#[test]
fn fetch_never_returns_another_scopes_documents() {
    let dir = TempDir::new("iso-fetch");
    let connector = seeded(&dir);
    let target = scope("acme", "docs");
    let fetched = connector.fetch(&target, &[id("a"), id("poison"), id("b"), id("a")]).unwrap();
    let summary: Vec<(&str, &str)> = fetched
        .iter()
        .map(|document| (document.id.as_str(), document.content.as_deref().unwrap()))
        .collect();
    assert_eq!(summary, [("a", "acme docs a"), ("b", "acme docs b"), ("a", "acme docs a")]);
    assert!(fetched.iter().all(|document| document.scope == target));
    assert!(connector.fetch(&target, &[id("poison")]).unwrap().is_empty());
}

#[test]
fn delete_never_removes_another_scopes_documents() {
    let dir = TempDir::new("iso-delete");
    let connector = seeded(&dir);
    let target = scope("acme", "docs");
    let ack = connector.delete(&target, &id("poison")).unwrap();
    assert_eq!(ack.outcome, MutationOutcome::NotFound);
    let ack = connector.delete(&target, &id("a")).unwrap();
    assert_eq!(ack.outcome, MutationOutcome::Deleted);
    assert_eq!((ack.scope.clone(), ack.id.as_str()), (target.clone(), "a"));
    for (tenant, namespace) in [("globex", "docs"), ("acme", "other"), ("acme-docs", "x")] {
        let poison = scope(tenant, namespace);
        let left = connector.fetch(&poison, &[id("a"), id("b"), id("poison")]).unwrap();
        assert_eq!(left.len(), 3, "{poison}: {left:?}");
    }
    assert_eq!(hit_ids(&search(&connector, &target, PROBE, 10, None)), ["b"]);
}
