//! Several hosts on one state (issue 16, item 6): stores opened on one database write at once;
//! capture sequences stay unique and follow commit order, generations stay dense, and one
//! pruner runs at a time.

use std::sync::Arc;

use super::evidence::{capture, trace_at};
use super::{invalidation, open};
use crate::{CaptureStatus, ChangeInput, StateStore};

/// Three stores, two writers each, interleaving captured change batches and captured trace
/// batches: every capture step gets its own sequence, and the change steps' generations, read
/// in sequence order, are exactly 1, 2, 3, ...: sequences follow commit order.
pub async fn capture_sequences_follow_commit_order_across_stores(url: &str) {
    let stores = [Arc::new(open(url).await), Arc::new(open(url).await), Arc::new(open(url).await)];
    let n_rounds = 12_usize;
    let mut writers = Vec::new();
    for (store_idx, store) in stores.iter().enumerate() {
        for writer_idx in 0..2 {
            let store = Arc::clone(store);
            writers.push(tokio::spawn(async move {
                for round in 0..n_rounds {
                    let changes: Vec<ChangeInput> = (0..2)
                        .map(|_| ChangeInput {
                            capture: Some(capture("invalidate", "{}")),
                            ..invalidation(&["all"])
                        })
                        .collect();
                    store.apply_changes(&changes).await.expect("apply");
                    let traces: Vec<_> = (0..2)
                        .map(|trace_idx| {
                            let id = format!("s{store_idx}-w{writer_idx}-r{round}-t{trace_idx}");
                            trace_at(id, 1_000, true)
                        })
                        .collect();
                    for outcome in store.put_traces(&traces).await.expect("put") {
                        outcome.expect("a new trace id");
                    }
                }
            }));
        }
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    let n_writers = stores.len() * 2;
    let n_changes = (n_writers * n_rounds * 2) as u64;
    let steps = stores[0].recent_capture(10_000).await.expect("capture");
    assert_eq!(steps.len(), n_writers * n_rounds * 4, "every step was captured");
    assert!(
        steps.windows(2).all(|pair| pair[0].sequence < pair[1].sequence),
        "sequences are unique: {:?}",
        steps.iter().map(|step| step.sequence).collect::<Vec<_>>()
    );
    let generations: Vec<u64> = steps
        .iter()
        .filter(|step| step.row.status == CaptureStatus::Accepted)
        .map(|step| step.row.generation)
        .collect();
    assert_eq!(generations, (1..=n_changes).collect::<Vec<_>>(), "dense, in commit order");
    assert_eq!(stores[1].current_generation().await.expect("generation"), n_changes);
    for store in &stores {
        store.close().await;
    }
}

/// While one store holds the pruner's lock, another skips its pass and deletes nothing; once
/// released, the other prunes. Concurrent passes delete each row once.
pub async fn one_pruner_at_a_time(url: &str) {
    let (first, second) = (open(url).await, open(url).await);
    let old: Vec<_> = (0..10).map(|idx| trace_at(format!("old-{idx}"), idx, false)).collect();
    first.put_traces(&old).await.expect("put");
    let lease = first.try_lock_pruner().await.expect("lock").expect("nobody holds the lock");
    assert!(second.try_lock_pruner().await.expect("lock").is_none(), "the lock is taken");
    assert_eq!(second.prune_evidence(1_000, 0, 0, 0).await.expect("prune"), None, "skipped");
    assert_eq!(second.evidence_counts().await.expect("counts").traces, 10, "nothing deleted");
    lease.release().await;
    let pruned = second.prune_evidence(1_000, 0, 0, 0).await.expect("prune");
    assert_eq!(pruned.map(|pruned| pruned.traces), Some(10), "the lock was released");

    let stores = [Arc::new(first), Arc::new(second), Arc::new(open(url).await)];
    let backlog: Vec<_> =
        (0..350).map(|idx| trace_at(format!("backlog-{idx}"), idx, false)).collect();
    stores[2].put_traces(&backlog).await.expect("put");
    let passes: Vec<_> = stores
        .iter()
        .map(|store| {
            let store = Arc::clone(store);
            tokio::spawn(async move { store.prune_evidence(1_000, 0, 0, 0).await })
        })
        .collect();
    let mut n_deleted = 0;
    for pass in passes {
        if let Some(pruned) = pass.await.expect("pass").expect("prune") {
            n_deleted += pruned.traces;
        }
    }
    assert_eq!(n_deleted, 350, "each row deleted once");
    assert_eq!(stores[0].evidence_counts().await.expect("counts").traces, 0);
    for store in &stores {
        store.close().await;
    }
}

/// The lock a store holds, not the store itself: after a store that took it is gone, another
/// takes it.
pub async fn a_closed_pruner_releases_its_lock(url: &str) {
    let holder = open(url).await;
    let lease = holder.try_lock_pruner().await.expect("lock").expect("free");
    drop(lease);
    holder.close().await;
    let other: StateStore = open(url).await;
    let mut taken = other.try_lock_pruner().await.expect("lock");
    // A dropped PostgreSQL lease closes its connection, which the server notices on its own
    // time: wait for it, a bounded number of times.
    for _ in 0..100 {
        if taken.is_some() {
            break;
        }
        tokio::task::yield_now().await;
        taken = other.try_lock_pruner().await.expect("lock");
    }
    assert!(taken.is_some(), "a dropped lease releases the lock");
    // A held lease holds a pooled connection, which closing the store waits for.
    drop(taken);
    other.close().await;
}
