//! Several stores on one database at once: racing duplicates, dense generations, concurrent
//! opens, and what one instance acknowledges being visible to another.

use std::sync::Arc;
use std::time::Instant;

use super::{document_change, document_key, event_change, invalidation, keys, open};
use crate::{ApplyOutcome, StateStore};

pub async fn concurrent_duplicates_apply_once(url: &str) {
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

pub async fn concurrent_instances_never_duplicate_generations(url: &str) {
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

pub async fn concurrent_batches_apply_each_event_once(url: &str) {
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

pub async fn concurrent_opens_migrate_once(url: &str) {
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

pub async fn acknowledged_change_is_visible_to_another_instance(url: &str) {
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

/// Measures sequential `apply_change` calls from one task and returns a line stating the rate
/// for the caller to print; asserts only that every call applied, never a time.
pub async fn measure_apply_rate(url: &str, label: &str) -> String {
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
