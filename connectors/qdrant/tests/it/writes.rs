//! Write-through on the embedded backend: an ACK names the scope and id, says whether the
//! document was inserted or updated, carries the engine's operation number, and the write is
//! visible to the very next search and fetch.

use kyro_connector_sdk::{Connector, MutationOutcome};

use crate::common::{TempDir, doc, hit_ids, id, open_embedded, scope, search, upsert};

fn operation_number(backend_mutation_id: &str) -> u64 {
    backend_mutation_id.strip_prefix("qdrant-edge-op-").unwrap().parse().unwrap()
}

#[test]
fn an_upsert_ack_is_visible_to_the_next_read() {
    let dir = TempDir::new("writes-upsert");
    let connector = open_embedded(dir.path());
    let target = scope("acme", "docs");
    let mut last_operation = 0;
    for n in 0..5 {
        let document = doc(&format!("d{n}"), [1.0, n as f32, 0.0, 0.0], &[("lang", "en")], "first");
        let ack = upsert(&connector, &target, &document);
        assert_eq!(ack.outcome, MutationOutcome::Inserted);
        assert_eq!((&ack.scope, ack.id.as_str()), (&target, format!("d{n}").as_str()));
        assert_eq!(ack.watermark, None);
        let operation = operation_number(&ack.backend_mutation_id);
        assert!(operation > last_operation, "{} after {last_operation}", ack.backend_mutation_id);
        last_operation = operation;
        // Visible immediately, without any flush or wait.
        let fetched = connector.fetch(&target, std::slice::from_ref(&ack.id)).unwrap();
        assert_eq!(fetched.len(), 1);
        assert!(
            hit_ids(&search(&connector, &target, [1.0, n as f32, 0.0, 0.0], 1, None))
                == [format!("d{n}")]
        );
    }
    let updated = doc("d2", [0.0, 0.0, 0.0, 1.0], &[("lang", "de")], "second");
    let ack = upsert(&connector, &target, &updated);
    assert_eq!(ack.outcome, MutationOutcome::Updated);
    assert!(operation_number(&ack.backend_mutation_id) > last_operation);
    let fetched = connector.fetch(&target, &[id("d2")]).unwrap();
    assert_eq!(fetched[0].content.as_deref(), Some("second"));
    assert_eq!(fetched[0].metadata.get("lang"), Some("de"));
    assert_eq!(hit_ids(&search(&connector, &target, [0.0, 0.0, 0.0, 1.0], 1, None)), ["d2"]);
    // The same id in another scope is another document.
    let ack = upsert(&connector, &scope("globex", "docs"), &updated);
    assert_eq!(ack.outcome, MutationOutcome::Inserted);
}

#[test]
fn a_delete_ack_is_visible_to_the_next_read() {
    let dir = TempDir::new("writes-delete");
    let connector = open_embedded(dir.path());
    let target = scope("acme", "docs");
    upsert(&connector, &target, &doc("d0", [1.0, 0.0, 0.0, 0.0], &[], "c"));
    upsert(&connector, &target, &doc("d1", [0.0, 1.0, 0.0, 0.0], &[], "c"));
    let ack = connector.delete(&target, &id("d0")).unwrap();
    assert_eq!(ack.outcome, MutationOutcome::Deleted);
    assert_eq!((&ack.scope, ack.id.as_str()), (&target, "d0"));
    assert!(
        ack.backend_mutation_id.starts_with("qdrant-edge-delete-"),
        "{}",
        ack.backend_mutation_id
    );
    assert!(connector.fetch(&target, &[id("d0")]).unwrap().is_empty());
    assert_eq!(hit_ids(&search(&connector, &target, [1.0, 0.0, 0.0, 0.0], 5, None)), ["d1"]);
    let again = connector.delete(&target, &id("d0")).unwrap();
    assert_eq!(again.outcome, MutationOutcome::NotFound);
    // Re-inserting after a delete is an insert again.
    let ack = upsert(&connector, &target, &doc("d0", [1.0, 0.0, 0.0, 0.0], &[], "back"));
    assert_eq!(ack.outcome, MutationOutcome::Inserted);
}

#[test]
fn acknowledged_writes_survive_reopening() {
    let dir = TempDir::new("writes-reopen");
    let target = scope("acme", "docs");
    {
        let connector = open_embedded(dir.path());
        upsert(&connector, &target, &doc("kept", [1.0, 0.0, 0.0, 0.0], &[("lang", "en")], "kept"));
        upsert(&connector, &target, &doc("gone", [0.0, 1.0, 0.0, 0.0], &[], "gone"));
        connector.delete(&target, &id("gone")).unwrap();
    }
    let connector = open_embedded(dir.path());
    let fetched = connector.fetch(&target, &[id("kept"), id("gone")]).unwrap();
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].content.as_deref(), Some("kept"));
}
