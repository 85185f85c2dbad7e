//! The state store's semantic test suite, written once and run against every backend: the
//! SQLite unit tests (`state/tests.rs`) and the PostgreSQL integration tests
//! (`tests/it/state.rs`, which includes this file by path) call the same functions.
//!
//! Each function takes the URL of a fresh, empty database and owns everything it opens; the
//! callers create and remove the database. Nothing here knows which backend it runs on. The
//! includer's parent module must have the state store's public types in scope.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use kyro_core::ErrorKind;

use super::{
    ApplyOutcome, CaptureRow, ChangeInput, DocumentChange, DocumentKey, DocumentState, FeedbackRow,
    PRUNE_CHUNK_ROWS, Primer, ProcessedEvent, ScopeChange, ScopeGeneration, StateError, StateStore,
    TraceRow,
};

/// Set in the environment of a re-executed test binary: the URL the crash child writes to.
pub(super) const CRASH_CHILD_URL_VAR: &str = "KYRO_STATE_CRASH_CHILD_URL";
/// How many acknowledgements the crash test reads before it kills the child.
const CRASH_ACKS_BEFORE_KILL: usize = 200;
/// The prefix of the child's acknowledgement lines: `KYRO_ACK <event_idx> <generation>`.
const ACK_PREFIX: &str = "KYRO_ACK ";

pub(super) async fn fresh_store_is_empty(url: &str) {
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

pub(super) async fn applied_changes_advance_by_one(url: &str) {
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

pub(super) async fn generation_survives_reopen(url: &str) {
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

pub(super) async fn replay_with_same_fingerprint_changes_nothing(url: &str) {
    check_replay(url, "fp-1", ApplyOutcome::Replayed { generation: 1 }).await;
}

pub(super) async fn replay_with_different_fingerprint_conflicts(url: &str) {
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

pub(super) async fn concurrent_duplicates_apply_once(url: &str) {
    let stores = [Arc::new(open(url).await), Arc::new(open(url).await)];
    let n_events = 5_u64;
    let n_racers_per_store = 4;
    for event_idx in 1..=n_events {
        let mut racers = Vec::new();
        for store in &stores {
            for _ in 0..n_racers_per_store {
                let store = Arc::clone(store);
                let change = event_change(&format!("dup-{event_idx}"), "fp", &["all"]);
                racers.push(tokio::spawn(async move { store.apply_change(&change).await }));
            }
        }
        let mut outcomes = Vec::new();
        for racer in racers {
            outcomes.push(racer.await.expect("racer task").expect("apply"));
        }
        let n_applied = outcomes
            .iter()
            .filter(|outcome| matches!(outcome, ApplyOutcome::Applied { .. }))
            .count();
        assert_eq!(n_applied, 1, "exactly one racer applies event {event_idx}: {outcomes:?}");
        for outcome in &outcomes {
            assert!(
                matches!(outcome, ApplyOutcome::Applied { .. } | ApplyOutcome::Replayed { .. }),
                "{outcomes:?}"
            );
            assert_eq!(outcome.generation(), event_idx, "{outcomes:?}");
        }
    }
    assert_eq!(stores[0].current_generation().await.expect("current generation"), n_events);
    assert_eq!(stores[1].current_generation().await.expect("current generation"), n_events);
    for store in &stores {
        store.close().await;
    }
}

pub(super) async fn concurrent_instances_never_duplicate_generations(url: &str) {
    let stores = [Arc::new(open(url).await), Arc::new(open(url).await)];
    let n_tasks_per_store = 3;
    let n_changes_per_task = 40;
    let mut tasks = Vec::new();
    for (store_idx, store) in stores.iter().enumerate() {
        for task_idx in 0..n_tasks_per_store {
            let store = Arc::clone(store);
            tasks.push(tokio::spawn(async move {
                let mut generations = Vec::new();
                for change_idx in 0..n_changes_per_task {
                    let event_id = format!("store-{store_idx}-task-{task_idx}-change-{change_idx}");
                    let scope = format!("tenant:t{task_idx}");
                    let change = event_change(&event_id, "fp", &["all", &scope]);
                    match store.apply_change(&change).await.expect("apply") {
                        ApplyOutcome::Applied { generation } => generations.push(generation),
                        other => panic!("a new event must apply, got {other:?}"),
                    }
                }
                generations
            }));
        }
    }
    let mut all_generations = Vec::new();
    for task in tasks {
        let generations = task.await.expect("task");
        // Each caller sees its own generations strictly increase.
        assert!(generations.windows(2).all(|pair| pair[0] < pair[1]), "{generations:?}");
        all_generations.extend(generations);
    }
    let n_total = (stores.len() * n_tasks_per_store * n_changes_per_task) as u64;
    all_generations.sort_unstable();
    assert_eq!(all_generations, (1..=n_total).collect::<Vec<_>>(), "dense and unique");
    assert_eq!(stores[1].current_generation().await.expect("current generation"), n_total);
    let view = stores[0].read_freshness(&keys(&["all"]), &[]).await.expect("read");
    assert_eq!(view.scope_generations, vec![("all".to_owned(), n_total)], "no lost update");
    for store in &stores {
        store.close().await;
    }
}

pub(super) async fn concurrent_batches_apply_each_event_once(url: &str) {
    let stores = [Arc::new(open(url).await), Arc::new(open(url).await)];
    let n_rounds = 6_usize;
    let mut tasks = Vec::new();
    for (store_idx, store) in stores.iter().enumerate() {
        for task_idx in 0..2_usize {
            let store = Arc::clone(store);
            tasks.push(tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for round in 0..n_rounds {
                    // Every task sends the round's shared events, plus one of its own.
                    let batch = [
                        event_change(&format!("shared-{round}-a"), "fp", &["all"]),
                        event_change(
                            &format!("own-{store_idx}-{task_idx}-{round}"),
                            "fp",
                            &["all"],
                        ),
                        event_change(&format!("shared-{round}-b"), "fp", &["all"]),
                    ];
                    outcomes.extend(store.apply_changes(&batch).await.expect("apply"));
                }
                outcomes
            }));
        }
    }
    let mut applied = Vec::new();
    for task in tasks {
        for outcome in task.await.expect("task") {
            match outcome {
                ApplyOutcome::Applied { generation } => applied.push(generation),
                ApplyOutcome::Replayed { .. } => {}
                ApplyOutcome::Conflict { .. } => panic!("same bodies never conflict"),
            }
        }
    }
    // Two shared events per round applied once each, plus every task's own.
    let n_expected = (n_rounds * (2 + 4)) as u64;
    applied.sort_unstable();
    assert_eq!(applied, (1..=n_expected).collect::<Vec<_>>(), "dense, unique, each event once");
    assert_eq!(stores[0].current_generation().await.expect("current generation"), n_expected);
    for store in &stores {
        store.close().await;
    }
}

pub(super) async fn concurrent_opens_migrate_once(url: &str) {
    let (first, second) = tokio::join!(StateStore::open(url), StateStore::open(url));
    let (first, second) = (first.expect("first open"), second.expect("second open"));
    assert_eq!(
        first.apply_change(&invalidation(&["all"])).await.expect("apply"),
        ApplyOutcome::Applied { generation: 1 }
    );
    assert_eq!(second.current_generation().await.expect("current generation"), 1);
    first.close().await;
    second.close().await;
}

pub(super) async fn acknowledged_change_is_visible_to_another_instance(url: &str) {
    let writer = open(url).await;
    let reader = open(url).await;
    for expected in 1..=20_u64 {
        let outcome = writer
            .apply_change(&event_change(&format!("e-{expected}"), "fp", &["connector:pg"]))
            .await
            .expect("apply");
        assert_eq!(outcome, ApplyOutcome::Applied { generation: expected });
        // Acknowledged means committed: the other instance sees it at once.
        let view = reader.read_freshness(&keys(&["connector:pg"]), &[]).await.expect("read");
        assert_eq!(view.current_generation, expected);
        assert_eq!(view.scope_generations, vec![("connector:pg".to_owned(), expected)]);
    }
    writer.close().await;
    reader.close().await;
}

pub(super) async fn scope_generations_track_latest_change(url: &str) {
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

pub(super) async fn document_state_tracks_latest_facts(url: &str) {
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
            // The latest change replaces the facts as a whole.
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

pub(super) async fn duplicates_within_one_change_are_recorded_once(url: &str) {
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

pub(super) async fn large_changes_are_batched(url: &str) {
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

pub(super) async fn out_of_range_watermark_is_rejected_before_writing(url: &str) {
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

pub(super) async fn inputs_are_bound_not_spliced(url: &str) {
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
            body: serde_json::json!({ "note": text }).to_string(),
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

pub(super) async fn primer_lists_recent_events_newest_first(url: &str) {
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

pub(super) async fn traces_round_trip(url: &str) {
    let store = open(url).await;
    let traces: Vec<TraceRow> = (1..=3)
        .map(|trace_idx| TraceRow {
            trace_id: format!("t-{trace_idx}"),
            tenant_id: "acme".to_owned(),
            created_at_ms: trace_idx * 1_000,
            body: serde_json::json!({ "trace": trace_idx, "steps": ["plan", "fetch"] }).to_string(),
            capture: None,
        })
        .collect();
    for trace in &traces {
        store.put_trace(trace).await.expect("put trace");
    }
    assert_eq!(store.get_trace("t-2").await.expect("get"), Some(traces[1].clone()));
    assert_eq!(store.get_trace("t-missing").await.expect("get"), None);
    assert_eq!(
        store.recent_traces(2).await.expect("recent"),
        vec![traces[2].clone(), traces[1].clone()]
    );

    let mut overwrite = traces[0].clone();
    overwrite.body = "{}".to_owned();
    let error = store.put_trace(&overwrite).await.expect_err("trace ids are unique");
    assert!(
        matches!(&error, StateError::DuplicateTrace { trace_id } if trace_id == "t-1"),
        "{error:?}"
    );
    assert_eq!(error.kind(), ErrorKind::InvalidRequest);
    assert_eq!(
        store.get_trace("t-1").await.expect("get"),
        Some(traces[0].clone()),
        "not overwritten"
    );

    // Strictly older than the cutoff: t-1 (1000) goes, t-2 (2000) stays.
    assert_eq!(store.prune_traces(2_000).await.expect("prune"), 1);
    assert_eq!(store.prune_traces(2_000).await.expect("prune again"), 0);
    assert_eq!(
        store.recent_traces(usize::MAX).await.expect("recent"),
        vec![traces[2].clone(), traces[1].clone()]
    );
    assert_eq!(store.get_trace("t-1").await.expect("get"), None);
    store.close().await;
}

/// Measures sequential `apply_change` calls from one task and returns a line stating the rate
/// for the caller to print; asserts only that every call applied, never a time.
pub(super) async fn measure_apply_rate(url: &str, label: &str) -> String {
    let store = open(url).await;
    let n_changes = 1_000_u64;
    let started = Instant::now();
    for change_idx in 0..n_changes {
        let mut change = event_change(
            &format!("rate-{change_idx}"),
            "fp",
            &["all", "tenant:acme", "namespace:acme/support"],
        );
        change.documents.push(document_change(
            &document_key("acme", "support", &format!("doc-{}", change_idx % 50)),
            Some("r1"),
            Some(change_idx),
            false,
        ));
        let outcome = store.apply_change(&change).await.expect("apply");
        assert_eq!(outcome, ApplyOutcome::Applied { generation: change_idx + 1 });
    }
    let elapsed = started.elapsed();
    store.close().await;
    format!(
        "state store apply rate ({label}): {n_changes} changes from one task in {elapsed:.2?} \
         = {:.0} per second",
        n_changes as f64 / elapsed.as_secs_f64()
    )
}

/// The child half of [`acknowledged_changes_survive_kill`]: when the crash variable is set,
/// applies events until it is killed, printing each acknowledgement. Otherwise (a normal test
/// run) it does nothing.
pub(super) async fn crash_child_main() {
    let Ok(url) = std::env::var(CRASH_CHILD_URL_VAR) else {
        return;
    };
    let store = open(&url).await;
    let mut stdout = std::io::stdout().lock();
    for event_idx in 0..1_000_000_u64 {
        let change = event_change(&format!("crash-{event_idx}"), "fp", &["all", "tenant:acme"]);
        let outcome = store.apply_change(&change).await.expect("child apply");
        // Flushed per line, so the parent reads every acknowledgement that `apply_change`
        // returned before the kill.
        writeln!(stdout, "{ACK_PREFIX}{event_idx} {}", outcome.generation()).expect("write ack");
        stdout.flush().expect("flush ack");
    }
}

/// Re-executes this test binary running only `child_test` (which must call
/// [`crash_child_main`]), reads its acknowledgements, SIGKILLs it mid-stream, and checks that
/// the reopened store kept every acknowledged change.
pub(super) async fn acknowledged_changes_survive_kill(url: &str, child_test: &str) {
    let url_for_child = url.to_owned();
    let child_test = child_test.to_owned();
    let acks = tokio::task::spawn_blocking(move || {
        let current_exe = std::env::current_exe().expect("the test binary's path");
        let mut child = Command::new(current_exe)
            .args([child_test.as_str(), "--exact", "--nocapture", "--test-threads=1"])
            .env(CRASH_CHILD_URL_VAR, url_for_child)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the crash child");
        let stdout = child.stdout.take().expect("the child's stdout is piped");
        let mut acks: Vec<(u64, u64)> = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("read the child's stdout");
            let Some(ack) = line.strip_prefix(ACK_PREFIX) else {
                continue;
            };
            let (event_idx, generation) = ack.split_once(' ').expect("ack has two fields");
            acks.push((
                event_idx.parse().expect("event index"),
                generation.parse().expect("generation"),
            ));
            if acks.len() == CRASH_ACKS_BEFORE_KILL {
                break;
            }
        }
        // SIGKILL on unix: no destructors, no pool shutdown, possibly mid-transaction.
        child.kill().expect("kill the crash child");
        child.wait().expect("reap the crash child");
        acks
    })
    .await
    .expect("crash child driver");
    assert_eq!(
        acks.len(),
        CRASH_ACKS_BEFORE_KILL,
        "the crash child stopped before acknowledging {CRASH_ACKS_BEFORE_KILL} changes (see its stderr above)"
    );

    let store = open(url).await;
    let &(_, last_acknowledged) = acks.last().expect("at least one ack");
    let current_generation = store.current_generation().await.expect("current generation");
    assert!(
        current_generation >= last_acknowledged,
        "generation went backwards: {current_generation} < acknowledged {last_acknowledged}"
    );
    for (event_idx, generation) in acks {
        let change = event_change(&format!("crash-{event_idx}"), "fp", &["all", "tenant:acme"]);
        assert_eq!(
            store.apply_change(&change).await.expect("replay"),
            ApplyOutcome::Replayed { generation },
            "acknowledged event crash-{event_idx} was lost"
        );
    }
    assert_eq!(store.current_generation().await.expect("current generation"), current_generation);
    store.close().await;
}

async fn open(url: &str) -> StateStore {
    match StateStore::open(url).await {
        Ok(store) => store,
        Err(error) => panic!("failed to open the state store: {}", error_chain(&error)),
    }
}

/// The error and all its sources, one per line, as an operator would see them.
pub(super) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str("\n  caused by: ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    chain
}

fn keys(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|&key| key.to_owned()).collect()
}

fn event_change(source_event_id: &str, fingerprint: &str, scope_keys: &[&str]) -> ChangeInput {
    ChangeInput {
        source_event_id: Some(source_event_id.to_owned()),
        fingerprint: fingerprint.to_owned(),
        scope_keys: scope_keys
            .iter()
            .map(|&key| ScopeChange { key: key.to_owned(), trigger: "change_event".to_owned() })
            .collect(),
        documents: Vec::new(),
        now_ms: 1_700_000_000_000,
        capture: None,
    }
}

fn invalidation(scope_keys: &[&str]) -> ChangeInput {
    ChangeInput {
        source_event_id: None,
        fingerprint: String::new(),
        scope_keys: scope_keys
            .iter()
            .map(|&key| ScopeChange {
                key: key.to_owned(),
                trigger: "manual_invalidation".to_owned(),
            })
            .collect(),
        documents: Vec::new(),
        now_ms: 1_700_000_000_000,
        capture: None,
    }
}

fn document_key(tenant_id: &str, namespace: &str, doc_id: &str) -> DocumentKey {
    DocumentKey {
        tenant_id: tenant_id.to_owned(),
        namespace: namespace.to_owned(),
        doc_id: doc_id.to_owned(),
    }
}

fn document_change(
    key: &DocumentKey,
    revision: Option<&str>,
    watermark: Option<u64>,
    tombstone: bool,
) -> DocumentChange {
    DocumentChange {
        key: key.clone(),
        revision: revision.map(str::to_owned),
        watermark,
        tombstone,
        event_timestamp_ms: None,
    }
}

fn scope_generation(
    key: &str,
    generation: u64,
    acknowledged_at_ms: i64,
    trigger: &str,
) -> ScopeGeneration {
    ScopeGeneration {
        key: key.to_owned(),
        generation,
        acknowledged_at_ms,
        trigger: trigger.to_owned(),
    }
}

pub(super) async fn feedback_round_trips_in_arrival_order(url: &str) {
    let store = open(url).await;
    let entry = |signal: &str, received_at_ms: i64, comment: Option<&str>| FeedbackRow {
        trace_id: "t-1".to_owned(),
        tenant_id: Some("acme".to_owned()),
        signal: signal.to_owned(),
        item_ids: r#"["doc-1"]"#.to_owned(),
        comment: comment.map(str::to_owned),
        received_at_ms,
        trace_known: true,
    };
    let first = entry("stale", 2_000, Some("it's out of date; O'Brien said so"));
    let second = entry("useful", 3_000, None);
    store.put_feedback(&second).await.expect("put feedback");
    store.put_feedback(&first).await.expect("put feedback");
    assert_eq!(store.feedback_for("t-1").await.expect("read feedback"), vec![first, second]);
    assert!(store.feedback_for("t-2").await.expect("read feedback").is_empty());
}

pub(super) async fn traces_are_stored_in_batches(url: &str) {
    let store = open(url).await;
    let trace = |trace_idx: i64| trace_at(format!("batch-{trace_idx}"), trace_idx, false);
    store.put_trace(&trace(2)).await.expect("put trace");
    let outcomes =
        store.put_traces(&[trace(1), trace(2), trace(3)]).await.expect("the batch commits");
    assert!(outcomes[0].is_ok() && outcomes[2].is_ok());
    assert!(matches!(outcomes[1], Err(StateError::DuplicateTrace { .. })), "{outcomes:?}");
    assert_eq!(store.recent_traces(10).await.expect("recent").len(), 3);
    assert_eq!(store.get_trace("batch-3").await.expect("get"), Some(trace(3)));
    // A repeated id inside one batch stores the first; a batch spans several statements.
    let mut big: Vec<TraceRow> = (10..460).map(trace).collect();
    big.insert(1, TraceRow { body: "{\"second\":true}".to_owned(), ..trace(10) });
    let outcomes = store.put_traces(&big).await.expect("the batch commits");
    assert_eq!(outcomes.iter().filter(|outcome| outcome.is_err()).count(), 1);
    assert!(outcomes[1].is_err() && outcomes[0].is_ok() && outcomes[450].is_ok());
    assert_eq!(store.get_trace("batch-10").await.expect("get"), Some(trace(10)));
    assert_eq!(store.evidence_counts().await.expect("counts").traces, 453);
}

pub(super) async fn batches_apply_in_order_and_recognize_replays_inside_the_batch(url: &str) {
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
    // A batch recognizes events stored by earlier transactions, records the last facts of a
    // document it changes twice, and captures every change with what it answered.
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
        .map(|step| (step.row.status, step.row.pre_generation, step.row.generation))
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
}

/// An `acme` trace with an empty body created at `at_ms`, with a retrieve's capture step taken
/// at the same time when `captured`.
fn trace_at(trace_id: String, at_ms: i64, captured: bool) -> TraceRow {
    TraceRow {
        trace_id,
        tenant_id: "acme".to_owned(),
        created_at_ms: at_ms,
        body: "{}".to_owned(),
        capture: captured
            .then(|| CaptureRow { captured_at_ms: at_ms, ..capture("retrieve", "{}") }),
    }
}

/// When the stored capture steps were taken, oldest first (at most 100).
async fn captured_times(store: &StateStore) -> Vec<i64> {
    let steps = store.recent_capture(100).await.expect("capture");
    steps.iter().map(|step| step.row.captured_at_ms).collect()
}

fn capture(step_type: &str, body: &str) -> CaptureRow {
    CaptureRow {
        step_type: step_type.to_owned(),
        tenant_id: Some("acme".to_owned()),
        captured_at_ms: 1_000,
        pre_generation: 0,
        generation: 0,
        status: String::new(),
        request: format!("{{\"request\":{body}}}"),
        body: body.to_owned(),
    }
}

pub(super) async fn capture_steps_are_written_with_their_trace_or_change(url: &str) {
    let store = open(url).await;
    let mut trace = TraceRow {
        trace_id: "tr-capture".to_owned(),
        tenant_id: "acme".to_owned(),
        created_at_ms: 1_000,
        body: "{}".to_owned(),
        capture: Some(CaptureRow {
            status: "complete".to_owned(),
            ..capture("retrieve", "{\"step\":0}")
        }),
    };
    store.put_traces(std::slice::from_ref(&trace)).await.expect("put").remove(0).expect("stored");
    let mut change = event_change("ev-1", "fp", &["tenant:acme"]);
    change.capture = Some(capture("change_event", "{\"step\":1}"));
    store.apply_changes(std::slice::from_ref(&change)).await.expect("apply");
    // A replay of the same event is captured as such, at its original generation.
    store.apply_changes(std::slice::from_ref(&change)).await.expect("replay");
    // A duplicate trace id stores neither the trace nor its capture step.
    trace.capture = Some(capture("retrieve", "{\"step\":\"dup\"}"));
    assert!(store.put_traces(&[trace]).await.expect("put").remove(0).is_err());

    let steps = store.recent_capture(10).await.expect("capture");
    assert_eq!(steps[0].row.request, "{\"request\":{\"step\":0}}");
    let summary: Vec<(&str, &str, u64, u64, &str)> = steps
        .iter()
        .map(|step| {
            (
                step.row.step_type.as_str(),
                step.row.status.as_str(),
                step.row.pre_generation,
                step.row.generation,
                step.row.body.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("retrieve", "complete", 0, 0, "{\"step\":0}"),
            ("change_event", "accepted", 0, 1, "{\"step\":1}"),
            ("change_event", "replayed", 1, 1, "{\"step\":1}"),
        ]
    );
    assert!(steps.windows(2).all(|pair| pair[0].sequence < pair[1].sequence));
    assert_eq!(store.recent_capture(1).await.expect("capture")[0].row.status, "replayed");
    // A reopened store continues the sequence.
    store.close().await;
    let store = open(url).await;
    store
        .apply_changes(&[ChangeInput {
            capture: Some(capture("invalidate", "{}")),
            ..invalidation(&["all"])
        }])
        .await
        .expect("apply");
    let steps = store.recent_capture(10).await.expect("capture");
    assert_eq!(steps.len(), 4);
    assert!(steps[3].sequence > steps[2].sequence);
    let counts = store.evidence_counts().await.expect("counts");
    assert_eq!((counts.traces, counts.feedback, counts.capture_steps), (1, 0, 4));
    store.close().await;
}

pub(super) async fn a_fresh_store_is_seeded_from_a_primer_once(url: &str) {
    let store = open(url).await;
    let primer = Primer {
        current_generation: 7,
        scope_generations: vec![scope_generation("tenant:acme", 6, 5_000, "change_event")],
        processed_events: vec![ProcessedEvent {
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

pub(super) async fn retention_prunes_old_evidence_and_caps_the_capture(url: &str) {
    let store = open(url).await;
    let traces: Vec<TraceRow> =
        (0..6_i64).map(|idx| trace_at(format!("tr-{idx}"), idx * 100, true)).collect();
    store.put_traces(&traces).await.expect("put");
    for idx in 0..3_i64 {
        store
            .put_feedback(&FeedbackRow {
                trace_id: format!("tr-{idx}"),
                tenant_id: Some("acme".to_owned()),
                signal: "useful".to_owned(),
                item_ids: "[]".to_owned(),
                comment: None,
                received_at_ms: idx * 100,
                trace_known: true,
            })
            .await
            .expect("feedback");
    }
    // Traces before 200, feedback before 100, capture before 100, and at most 3 steps.
    let pruned = store.prune_evidence(200, 100, 100, 3).await.expect("prune");
    assert_eq!((pruned.traces, pruned.feedback, pruned.capture_steps), (2, 1, 3));
    assert_eq!(captured_times(&store).await, [300, 400, 500]);
    let counts = store.evidence_counts().await.expect("counts");
    assert_eq!((counts.traces, counts.feedback, counts.capture_steps), (4, 2, 3));
    assert_eq!(store.feedback_since(150, 10).await.expect("feedback").len(), 1);
    store.close().await;
}

/// More evidence than several retention chunks hold goes, chunk by chunk, and exactly down to
/// the bounds.
pub(super) async fn retention_deletes_across_chunks(url: &str) {
    let store = open(url).await;
    let n_rows = 2 * PRUNE_CHUNK_ROWS as i64 + 207;
    let rows: Vec<TraceRow> =
        (0..n_rows).map(|idx| trace_at(format!("tr-{idx}"), idx, true)).collect();
    for batch in rows.chunks(200) {
        store.put_traces(batch).await.expect("put");
    }
    // Every trace but the newest 100, the capture before 50, and at most 20 steps.
    let pruned = store.prune_evidence(n_rows - 100, 0, 50, 20).await.expect("prune");
    assert_eq!(
        (pruned.traces, pruned.capture_steps),
        ((n_rows - 100) as u64, (n_rows - 20) as u64)
    );
    let counts = store.evidence_counts().await.expect("counts");
    assert_eq!((counts.traces, counts.capture_steps), (100, 20));
    assert_eq!(captured_times(&store).await, ((n_rows - 20)..n_rows).collect::<Vec<_>>());
    let again = store.prune_evidence(n_rows - 100, 0, 50, 20).await.expect("prune again");
    assert_eq!((again.traces, again.feedback, again.capture_steps), (0, 0, 0));
    store.close().await;
}

/// With a bound, each write of capture steps trims the oldest beyond it in the same
/// transaction, at most twice as many as it wrote, so a backlog shrinks batch by batch.
pub(super) async fn a_bounded_capture_is_trimmed_as_it_is_written(url: &str) {
    let store = open(url).await;
    let trace = |idx: i64| trace_at(format!("tr-{idx}"), idx, true);
    let stored = async || store.evidence_counts().await.expect("counts").capture_steps;
    let unbounded: Vec<TraceRow> = (0..20).map(trace).collect();
    store.put_traces(&unbounded).await.expect("put");
    assert_eq!(stored().await, 20, "no bound, nothing trimmed");
    store.bound_capture(5);
    store.put_traces(&[trace(20)]).await.expect("put one");
    assert_eq!(stored().await, 19, "one step added, two trimmed");
    store.put_traces(&(21..29).map(trace).collect::<Vec<_>>()).await.expect("put eight");
    assert_eq!(stored().await, 11, "eight added, sixteen trimmed");
    store.put_traces(&(29..35).map(trace).collect::<Vec<_>>()).await.expect("put six");
    assert_eq!(stored().await, 5, "down to the bound");
    assert_eq!(captured_times(&store).await, [30, 31, 32, 33, 34], "the newest are kept");
    store.close().await;
}
