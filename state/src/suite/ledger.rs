//! Ledger semantics on one store: generations, replays and conflicts, scope generations,
//! document facts, limits of the columns.

use kyro_core::ErrorKind;

use super::{
    document_change, document_key, event_change, invalidation, keys, open, scope_generation,
};
use crate::{ApplyOutcome, DocumentKey, DocumentState, ScopeChange, StateError};

pub async fn fresh_store_is_empty(url: &str) {
    let store = open(url).await;
    store.ping().await.expect("ping a fresh store");
    assert_eq!(store.current_generation().await.expect("current generation"), 0);
    let view = store
        .read_freshness(&keys(&["all", "tenant:acme"]), &[document_key("acme", "support", "doc-1")])
        .await
        .expect("read freshness");
    assert_eq!(view.current_generation, 0);
    assert!(view.scope_generations.is_empty());
    assert!(view.documents.is_empty());
    let primer = store.primer(100).await.expect("primer");
    assert_eq!(primer.current_generation, 0);
    assert!(primer.scope_generations.is_empty());
    assert!(primer.processed_events.is_empty());
    assert!(store.recent_traces(10).await.expect("recent traces").is_empty());
    store.close().await;
}

pub async fn applied_changes_advance_by_one(url: &str) {
    let store = open(url).await;
    for expected in 1..=6_u64 {
        // Alternate change events with invalidations, which carry no event id.
        let change = if expected % 2 == 0 {
            event_change(&format!("event-{expected}"), "fp", &["all", "tenant:acme"])
        } else {
            invalidation(&["namespace:acme/support"])
        };
        let outcome = store.apply_change(&change).await.expect("apply");
        assert_eq!(outcome, ApplyOutcome::Applied { generation: expected });
        assert_eq!(store.current_generation().await.expect("current generation"), expected);
    }
    store.close().await;
}

pub async fn generation_survives_reopen(url: &str) {
    let store = open(url).await;
    for event_idx in 1..=3 {
        store
            .apply_change(&event_change(&format!("event-{event_idx}"), "fp", &["all"]))
            .await
            .expect("apply");
    }
    store.close().await;
    drop(store);

    let reopened = open(url).await;
    assert_eq!(reopened.current_generation().await.expect("current generation"), 3);
    for event_idx in 1..=3_u64 {
        let outcome = reopened
            .apply_change(&event_change(&format!("event-{event_idx}"), "fp", &["all"]))
            .await
            .expect("replay after reopen");
        assert_eq!(outcome, ApplyOutcome::Replayed { generation: event_idx });
    }
    let outcome = reopened.apply_change(&invalidation(&["all"])).await.expect("apply");
    assert_eq!(outcome, ApplyOutcome::Applied { generation: 4 });
    reopened.close().await;
}

pub async fn replay_with_same_fingerprint_changes_nothing(url: &str) {
    check_replay(url, "fp-1", ApplyOutcome::Replayed { generation: 1 }).await;
}

pub async fn replay_with_different_fingerprint_conflicts(url: &str) {
    check_replay(url, "fp-2", ApplyOutcome::Conflict { generation: 1 }).await;
}

/// Applies event `e-1` (fingerprint `fp-1`) and an unrelated change, then replays `e-1` with
/// `replay_fingerprint` and a different body: the outcome must be `expected` and the ledger
/// must be exactly as before the replay.
async fn check_replay(url: &str, replay_fingerprint: &str, expected: ApplyOutcome) {
    let store = open(url).await;
    let doc_1 = document_key("acme", "support", "doc-1");
    let mut original = event_change("e-1", "fp-1", &["all", "tenant:acme"]);
    original.documents.push(document_change(&doc_1, Some("r1"), Some(10), false));
    assert_eq!(
        store.apply_change(&original).await.expect("apply original"),
        ApplyOutcome::Applied { generation: 1 }
    );
    assert_eq!(
        store.apply_change(&invalidation(&["tenant:acme"])).await.expect("apply invalidation"),
        ApplyOutcome::Applied { generation: 2 }
    );
    let before = store.primer(100).await.expect("primer before");
    let requested_keys = keys(&["all", "tenant:acme", "tenant:other"]);
    let freshness_before =
        store.read_freshness(&requested_keys, std::slice::from_ref(&doc_1)).await.expect("read");

    let mut replay = event_change("e-1", replay_fingerprint, &["tenant:other"]);
    replay.documents.push(document_change(&doc_1, Some("r9"), Some(99), true));
    replay.now_ms = original.now_ms + 5_000;
    for _ in 0..2 {
        assert_eq!(store.apply_change(&replay).await.expect("replay"), expected);
    }

    assert_eq!(store.current_generation().await.expect("current generation"), 2);
    assert_eq!(store.primer(100).await.expect("primer after"), before);
    let freshness_after =
        store.read_freshness(&requested_keys, std::slice::from_ref(&doc_1)).await.expect("read");
    assert_eq!(freshness_after, freshness_before);
    assert_eq!(
        freshness_after.scope_generations,
        vec![("all".to_owned(), 1), ("tenant:acme".to_owned(), 2)]
    );
    assert_eq!(freshness_after.documents[0].revision.as_deref(), Some("r1"));

    // The next change still gets the next generation: the replays consumed none.
    assert_eq!(
        store.apply_change(&invalidation(&["all"])).await.expect("apply"),
        ApplyOutcome::Applied { generation: 3 }
    );
    store.close().await;
}

pub async fn scope_generations_track_latest_change(url: &str) {
    let store = open(url).await;
    let mut first = event_change("e-1", "fp", &["all", "tenant:acme", "namespace:acme/support"]);
    first.now_ms = 1_000;
    let mut second = event_change("e-2", "fp", &["all", "tenant:beta"]);
    second.now_ms = 2_000;
    let mut third = invalidation(&["namespace:acme/support"]);
    third.now_ms = 3_000;
    for change in [&first, &second, &third] {
        store.apply_change(change).await.expect("apply");
    }

    let requested = keys(&[
        "namespace:acme/support",
        "all",
        "tenant:acme",
        "tenant:never-changed",
        "tenant:beta",
        "all",
    ]);
    let view = store.read_freshness(&requested, &[]).await.expect("read");
    assert_eq!(view.current_generation, 3);
    assert_eq!(
        view.scope_generations,
        vec![
            ("namespace:acme/support".to_owned(), 3),
            ("all".to_owned(), 2),
            ("tenant:acme".to_owned(), 1),
            ("tenant:beta".to_owned(), 2),
        ],
        "request order, duplicates once, never-changed keys omitted"
    );

    let primer = store.primer(10).await.expect("primer");
    assert_eq!(primer.current_generation, 3);
    assert_eq!(
        primer.scope_generations,
        vec![
            scope_generation("all", 2, 2_000, "change_event"),
            scope_generation("namespace:acme/support", 3, 3_000, "manual_invalidation"),
            scope_generation("tenant:acme", 1, 1_000, "change_event"),
            scope_generation("tenant:beta", 2, 2_000, "change_event"),
        ]
    );
    store.close().await;
}

pub async fn document_state_tracks_latest_facts(url: &str) {
    let store = open(url).await;
    let doc_1 = document_key("acme", "support", "doc-1");
    let doc_2 = document_key("acme", "support", "doc-2");
    let other_tenant_doc_1 = document_key("beta", "support", "doc-1");

    let mut first = event_change("e-1", "fp", &["all"]);
    let mut doc_1_change = document_change(&doc_1, Some("r1"), Some(10), false);
    doc_1_change.event_timestamp_ms = Some(1_000);
    first.documents.push(doc_1_change);
    first.documents.push(document_change(&doc_2, Some("r1"), None, false));
    store.apply_change(&first).await.expect("apply first");

    let mut second = event_change("e-2", "fp", &["all"]);
    second.documents.push(document_change(&doc_1, None, Some(11), true));
    store.apply_change(&second).await.expect("apply second");

    let requested = [doc_1.clone(), other_tenant_doc_1, doc_2.clone(), doc_1.clone()];
    let view = store.read_freshness(&[], &requested).await.expect("read");
    assert_eq!(view.current_generation, 2);
    assert!(view.scope_generations.is_empty());
    assert_eq!(
        view.documents,
        vec![
            // The newer change (by watermark) moves the facts forward: its own revision,
            // watermark and tombstone; the older version's timestamp says nothing about it.
            DocumentState {
                key: doc_1,
                generation: 2,
                revision: None,
                watermark: Some(11),
                tombstone: true,
                event_timestamp_ms: None,
            },
            DocumentState {
                key: doc_2,
                generation: 1,
                revision: Some("r1".to_owned()),
                watermark: None,
                tombstone: false,
                event_timestamp_ms: None,
            },
        ],
        "request order, duplicates once, unknown documents omitted"
    );
    store.close().await;
}

pub async fn duplicates_within_one_change_are_recorded_once(url: &str) {
    let store = open(url).await;
    let doc_1 = document_key("acme", "support", "doc-1");
    let mut change = event_change("e-1", "fp", &[]);
    change.scope_keys = vec![
        ScopeChange { key: "all".to_owned(), trigger: "change_event".to_owned() },
        ScopeChange { key: "tenant:acme".to_owned(), trigger: "change_event".to_owned() },
        ScopeChange { key: "all".to_owned(), trigger: "write_through".to_owned() },
    ];
    change.documents = vec![
        document_change(&doc_1, Some("r1"), Some(1), false),
        document_change(&doc_1, Some("r2"), Some(2), false),
    ];
    assert_eq!(
        store.apply_change(&change).await.expect("apply"),
        ApplyOutcome::Applied { generation: 1 }
    );
    let primer = store.primer(10).await.expect("primer");
    assert_eq!(
        primer.scope_generations,
        vec![
            scope_generation("all", 1, change.now_ms, "write_through"),
            scope_generation("tenant:acme", 1, change.now_ms, "change_event"),
        ],
        "the last trigger wins"
    );
    let view = store.read_freshness(&[], std::slice::from_ref(&doc_1)).await.expect("read");
    assert_eq!(view.documents[0].revision.as_deref(), Some("r2"), "the last entry wins");
    store.close().await;
}

pub async fn large_changes_are_batched(url: &str) {
    let store = open(url).await;
    let n_scopes = 1_234;
    let n_documents = 321;
    let scope_keys: Vec<String> =
        (0..n_scopes).map(|scope_idx| format!("document:acme/s/{scope_idx}")).collect();
    let document_keys: Vec<DocumentKey> = (0..n_documents)
        .map(|doc_idx| document_key("acme", "s", &format!("doc-{doc_idx}")))
        .collect();
    let mut change = event_change("big", "fp", &[]);
    change.scope_keys = scope_keys
        .iter()
        .map(|key| ScopeChange { key: key.clone(), trigger: "change_event".to_owned() })
        .collect();
    change.documents =
        document_keys.iter().map(|key| document_change(key, Some("r1"), Some(7), false)).collect();
    assert_eq!(
        store.apply_change(&change).await.expect("apply"),
        ApplyOutcome::Applied { generation: 1 }
    );

    let mut requested_keys = scope_keys.clone();
    requested_keys.push("document:acme/s/never".to_owned());
    let mut requested_documents = document_keys.clone();
    requested_documents.push(document_key("acme", "s", "never"));
    let view = store.read_freshness(&requested_keys, &requested_documents).await.expect("read");
    assert_eq!(
        view.scope_generations,
        scope_keys.iter().map(|key| (key.clone(), 1)).collect::<Vec<_>>()
    );
    assert_eq!(
        view.documents.iter().map(|document| &document.key).collect::<Vec<_>>(),
        document_keys.iter().collect::<Vec<_>>()
    );
    assert!(view.documents.iter().all(|document| document.generation == 1));
    store.close().await;
}

pub async fn out_of_range_watermark_is_rejected_before_writing(url: &str) {
    let store = open(url).await;
    let doc_1 = document_key("acme", "support", "doc-1");
    let mut change = event_change("e-1", "fp", &["all"]);
    change.documents.push(document_change(&doc_1, None, Some(u64::MAX), false));
    let error = store.apply_change(&change).await.expect_err("u64::MAX does not fit");
    assert!(
        matches!(error, StateError::OutOfRange { field: "watermark", value: u64::MAX }),
        "{error:?}"
    );
    assert_eq!(error.kind(), ErrorKind::InvalidRequest);
    assert_eq!(store.current_generation().await.expect("current generation"), 0);

    // The event id was not recorded: the corrected event applies.
    let largest = u64::try_from(i64::MAX).expect("i64::MAX is positive");
    change.documents[0].watermark = Some(largest);
    assert_eq!(
        store.apply_change(&change).await.expect("apply"),
        ApplyOutcome::Applied { generation: 1 }
    );
    let view = store.read_freshness(&[], &[doc_1]).await.expect("read");
    assert_eq!(view.documents[0].watermark, Some(largest));
    store.close().await;
}
