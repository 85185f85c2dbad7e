//! Batches of changes, primers and seeding, and inputs that must stay data.

use std::collections::BTreeSet;

use super::evidence::capture;
use super::{
    document_change, document_key, event_change, invalidation, keys, open, scope_generation,
};
use crate::{ApplyOutcome, ChangeInput, EventTenant, Primer, ProcessedEvent, StateError, TraceRow};

pub async fn inputs_are_bound_not_spliced(url: &str) {
    let store = open(url).await;
    let hostile = [
        "it's",
        "\"quoted\"",
        "$1",
        "?",
        "'); DROP TABLE kyro_trace; --",
        "tenant:ünïcødé/名前",
        "",
    ];
    for (hostile_idx, text) in hostile.iter().enumerate() {
        let doc = document_key(text, text, text);
        let mut change = event_change(text, text, &[text]);
        change.scope_keys[0].trigger = (*text).to_owned();
        change.documents.push(document_change(&doc, Some(text), None, false));
        let expected = hostile_idx as u64 + 1;
        assert_eq!(
            store.apply_change(&change).await.expect("apply"),
            ApplyOutcome::Applied { generation: expected }
        );
        assert_eq!(
            store.apply_change(&change).await.expect("replay"),
            ApplyOutcome::Replayed { generation: expected }
        );
        let view =
            store.read_freshness(&keys(&[text]), std::slice::from_ref(&doc)).await.expect("read");
        assert_eq!(view.scope_generations, vec![((*text).to_owned(), expected)]);
        assert_eq!(view.documents[0].key, doc);
        assert_eq!(view.documents[0].revision.as_deref(), Some(*text));

        let trace = TraceRow {
            trace_id: format!("{text}-{hostile_idx}"),
            tenant_id: (*text).to_owned(),
            created_at_ms: 1,
            body: format!("{{\"note\":{text:?}}}"),
            capture: None,
        };
        store.put_trace(&trace).await.expect("put trace");
        assert_eq!(store.get_trace(&trace.trace_id).await.expect("get trace"), Some(trace));
    }
    let primer = store.primer(100).await.expect("primer");
    let event_ids: BTreeSet<&str> =
        primer.processed_events.iter().map(|event| event.source_event_id.as_str()).collect();
    assert_eq!(event_ids, hostile.into_iter().collect());
    store.close().await;
}

pub async fn primer_lists_recent_events_newest_first(url: &str) {
    let store = open(url).await;
    // Events at generations 1, 2, 4, 5, 7; invalidations at 3 and 6.
    for event_idx in 1..=5 {
        store
            .apply_change(&event_change(
                &format!("e-{event_idx}"),
                &format!("fp-{event_idx}"),
                &["all"],
            ))
            .await
            .expect("apply event");
        if event_idx == 2 || event_idx == 4 {
            store.apply_change(&invalidation(&["all"])).await.expect("apply invalidation");
        }
    }
    let primer = store.primer(3).await.expect("primer");
    assert_eq!(primer.current_generation, 7);
    let newest: Vec<(&str, u64, &str)> = primer
        .processed_events
        .iter()
        .map(|event| (event.source_event_id.as_str(), event.generation, event.fingerprint.as_str()))
        .collect();
    assert_eq!(newest, vec![("e-5", 7, "fp-5"), ("e-4", 5, "fp-4"), ("e-3", 4, "fp-3")]);
    assert_eq!(store.primer(100).await.expect("primer").processed_events.len(), 5);
    assert!(store.primer(0).await.expect("primer").processed_events.is_empty());
    assert_eq!(store.primer(usize::MAX).await.expect("primer").processed_events.len(), 5);
    store.close().await;
}

pub async fn batches_apply_in_order_and_recognize_replays_inside_the_batch(url: &str) {
    let store = open(url).await;
    let batch = [
        event_change("e-1", "fp-1", &["tenant:acme"]),
        event_change("e-2", "fp-2", &["tenant:acme"]),
        event_change("e-1", "fp-1", &["tenant:other"]),
        event_change("e-1", "fp-changed", &["tenant:other"]),
        invalidation(&["all"]),
    ];
    let outcomes = store.apply_changes(&batch).await.expect("the batch commits");
    assert_eq!(
        outcomes,
        [
            ApplyOutcome::Applied { generation: 1 },
            ApplyOutcome::Applied { generation: 2 },
            ApplyOutcome::Replayed { generation: 1 },
            ApplyOutcome::Conflict { generation: 1 },
            ApplyOutcome::Applied { generation: 3 },
        ]
    );
    assert_eq!(store.current_generation().await.expect("current generation"), 3);
    let view = store
        .read_freshness(&keys(&["tenant:acme", "tenant:other", "all"]), &[])
        .await
        .expect("read");
    assert_eq!(view.scope_generations, [("tenant:acme".to_owned(), 2), ("all".to_owned(), 3)]);
    // A single change after the batch continues the sequence.
    assert_eq!(
        store.apply_change(&invalidation(&["all"])).await.expect("apply"),
        ApplyOutcome::Applied { generation: 4 }
    );
    store.close().await;
}

/// A batch recognizes events stored by earlier transactions, records the last facts of a
/// document it changes twice, and captures every change with what it answered.
pub async fn batches_recognize_earlier_events_and_capture_every_change(url: &str) {
    let store = open(url).await;
    let earlier = [
        event_change("e-1", "fp-1", &["tenant:acme"]),
        event_change("e-2", "fp-2", &["tenant:acme"]),
        invalidation(&["all"]),
        invalidation(&["all"]),
    ];
    store.apply_changes(&earlier).await.expect("the earlier batch commits");
    let doc = document_key("acme", "support", "doc-1");
    let with_doc = |id: &str, revision: &str| ChangeInput {
        documents: vec![document_change(&doc, Some(revision), None, false)],
        capture: Some(capture("change_event", "{}")),
        ..event_change(id, "fp", &["namespace:acme/support"])
    };
    let replay = ChangeInput {
        capture: Some(capture("change_event", "{}")),
        ..event_change("e-2", "fp-2", &["tenant:acme"])
    };
    let outcomes = store
        .apply_changes(&[replay, with_doc("e-5", "5"), with_doc("e-6", "6")])
        .await
        .expect("the batch commits");
    assert_eq!(
        outcomes,
        [
            ApplyOutcome::Replayed { generation: 2 },
            ApplyOutcome::Applied { generation: 5 },
            ApplyOutcome::Applied { generation: 6 },
        ]
    );
    let view = store
        .read_freshness(
            &keys(&["namespace:acme/support", "tenant:acme"]),
            std::slice::from_ref(&doc),
        )
        .await
        .expect("read");
    assert_eq!(
        view.scope_generations,
        [("namespace:acme/support".to_owned(), 6), ("tenant:acme".to_owned(), 2)]
    );
    assert_eq!(
        (view.documents[0].generation, view.documents[0].revision.as_deref()),
        (6, Some("6"))
    );
    let captured: Vec<(String, u64, u64)> = store
        .recent_capture(10)
        .await
        .expect("capture")
        .into_iter()
        .map(|step| {
            (step.row.status.as_str().to_owned(), step.row.pre_generation, step.row.generation)
        })
        .collect();
    assert_eq!(
        captured,
        [
            ("replayed".to_owned(), 4, 2),
            ("accepted".to_owned(), 4, 5),
            ("accepted".to_owned(), 5, 6)
        ]
    );
    assert_eq!(store.processed_events_upto(6, 10).await.expect("events")[0].source_event_id, "e-6");
    store.close().await;
}

pub async fn a_fresh_store_is_seeded_from_a_primer_once(url: &str) {
    let store = open(url).await;
    let primer = Primer {
        current_generation: 7,
        scope_generations: vec![scope_generation("tenant:acme", 6, 5_000, "change_event")],
        processed_events: vec![ProcessedEvent {
            tenant: EventTenant::Tenant("acme".to_owned()),
            source_event_id: "ev-6".to_owned(),
            generation: 6,
            fingerprint: "fp".to_owned(),
        }],
    };
    store.seed(&primer).await.expect("seed");
    assert_eq!(
        store.primer(10).await.expect("primer"),
        Primer { processed_events: primer.processed_events.clone(), ..primer.clone() }
    );
    // The seeded dedupe ledger recognizes the event; new changes continue the generation.
    let replayed = store.apply_change(&event_change("ev-6", "fp", &["all"])).await.expect("replay");
    assert_eq!(replayed, ApplyOutcome::Replayed { generation: 6 });
    let applied = store.apply_change(&event_change("ev-8", "fp", &["all"])).await.expect("apply");
    assert_eq!(applied, ApplyOutcome::Applied { generation: 8 });
    assert_eq!(
        store.processed_events_upto(7, 10).await.expect("events")[0].source_event_id,
        "ev-6"
    );
    let again = store.seed(&primer).await.expect_err("a used store cannot be seeded");
    assert!(matches!(again, StateError::NotFresh { generation: 8 }), "{again:?}");
    store.close().await;
}
