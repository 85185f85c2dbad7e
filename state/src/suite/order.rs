//! Document facts only move forward (issue 16): late events never roll them back, and are
//! recorded as out of order with their capture step.

use kyro_core::ledger::{EventOrder, Evidence};

use super::evidence::capture;
use super::{document_change, document_key, event_change, open};
use crate::{ChangeInput, DocumentChange, DocumentKey, DocumentState, StateStore};

/// A change event `id` carrying one document's facts, captured.
fn with_document(id: &str, document: DocumentChange) -> ChangeInput {
    ChangeInput {
        documents: vec![document],
        capture: Some(capture("change_event", "{}")),
        ..event_change(id, "fp", &["namespace:acme/support"])
    }
}

async fn facts_of(store: &StateStore, key: &DocumentKey) -> DocumentState {
    let view = store.read_freshness(&[], std::slice::from_ref(key)).await.expect("read");
    view.documents.into_iter().next().expect("the document has facts")
}

pub async fn document_facts_only_move_forward(url: &str) {
    let store = open(url).await;
    let deleted = document_key("acme", "support", "deleted");
    let revised = document_key("acme", "support", "revised");
    let changes = [
        with_document("e-1", document_change(&deleted, Some("4"), None, true)),
        // A late content update at revision 3 does not bring the deleted document back.
        with_document("e-2", document_change(&deleted, Some("3"), None, false)),
        with_document("e-3", document_change(&revised, Some("10"), Some(100), false)),
    ];
    store.apply_changes(&changes).await.expect("apply");
    // An upsert at revision 5 after 10, in a later transaction, keeps 10 and takes the larger
    // watermark, under its own generation since the facts moved.
    store
        .apply_change(&with_document("e-4", document_change(&revised, Some("5"), Some(120), false)))
        .await
        .expect("apply");
    let facts = facts_of(&store, &deleted).await;
    assert_eq!(
        (facts.revision.as_deref(), facts.tombstone, facts.generation),
        (Some("4"), true, 1)
    );
    let facts = facts_of(&store, &revised).await;
    assert_eq!(
        (facts.revision.as_deref(), facts.watermark, facts.generation),
        (Some("10"), Some(120), 4)
    );

    let late = store.out_of_order_documents(10).await.expect("out of order");
    let listed: Vec<(u64, &str, Option<&str>, EventOrder)> = late
        .iter()
        .map(|document| {
            let change = &document.change;
            (
                document.generation,
                change.key.doc_id.as_str(),
                change.revision.as_deref(),
                document.order,
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (4, "revised", Some("5"), EventOrder::OutOfOrder(Evidence::Revision)),
            (2, "deleted", Some("3"), EventOrder::OutOfOrder(Evidence::Revision)),
        ]
    );
    let counted: Vec<u64> = store
        .recent_capture(10)
        .await
        .expect("capture")
        .iter()
        .map(|step| step.documents_out_of_order)
        .collect();
    assert_eq!(counted, [0, 1, 0, 1], "each change's capture step counts its late documents");

    // Evidence strictly newer than the deletion brings the document back.
    store
        .apply_change(&with_document("e-5", document_change(&deleted, Some("5"), None, false)))
        .await
        .expect("apply");
    let facts = facts_of(&store, &deleted).await;
    assert_eq!(
        (facts.revision.as_deref(), facts.tombstone, facts.generation),
        (Some("5"), false, 5)
    );
    store.close().await;
}

/// Without revisions, watermarks or timestamps, only arrival order is left: it advances the
/// facts, but never undoes a deletion.
pub async fn arrival_order_never_undoes_a_deletion(url: &str) {
    let store = open(url).await;
    let doc = document_key("acme", "support", "doc-1");
    for (id, tombstone) in [("e-1", false), ("e-2", true), ("e-3", false)] {
        store
            .apply_change(&with_document(id, document_change(&doc, None, None, tombstone)))
            .await
            .expect("apply");
    }
    let facts = facts_of(&store, &doc).await;
    assert_eq!((facts.tombstone, facts.generation), (true, 2));
    let late = store.out_of_order_documents(10).await.expect("out of order");
    assert_eq!(late.len(), 1);
    assert_eq!((late[0].generation, late[0].order), (3, EventOrder::UnprovenAfterDeletion));
    store.close().await;
}
