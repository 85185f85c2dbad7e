//! Idempotency keys are unique per tenant (issue 15): one tenant's ids never make another's
//! events replays or conflicts, and primers keep whose each event was.

use super::{event_change, open, scope_generation};
use crate::{ApplyOutcome, ChangeInput, EventTenant, Primer, ProcessedEvent, SourceEvent};

fn tenant(tenant_id: &str) -> EventTenant {
    EventTenant::Tenant(tenant_id.to_owned())
}

/// A change event `id` of `owner` with `fingerprint`.
fn event_of(owner: EventTenant, id: &str, fingerprint: &str) -> ChangeInput {
    ChangeInput {
        source_event: Some(SourceEvent::new(owner, id)),
        ..event_change(id, fingerprint, &["all"])
    }
}

pub async fn the_same_event_id_from_two_tenants_applies_twice(url: &str) {
    let store = open(url).await;
    let first = [
        event_of(tenant("a"), "e-1", "fp-a"),
        event_of(tenant("b"), "e-1", "fp-b"),
        event_of(EventTenant::Global, "e-1", "fp-g"),
        // A tenant named like the global key is still a tenant.
        event_of(tenant("global"), "e-1", "fp-g"),
    ];
    for (change_idx, change) in first.iter().enumerate() {
        let expected = ApplyOutcome::Applied { generation: change_idx as u64 + 1 };
        assert_eq!(store.apply_change(change).await.expect("apply"), expected, "{change:?}");
    }
    // Within one tenant, a replay is still recognized, and another body still conflicts.
    let again = [
        event_of(tenant("a"), "e-1", "fp-a"),
        event_of(tenant("b"), "e-1", "fp-a"),
        event_of(EventTenant::Global, "e-1", "fp-g"),
    ];
    let outcomes = store.apply_changes(&again).await.expect("replays commit");
    assert_eq!(
        outcomes,
        [
            ApplyOutcome::Replayed { generation: 1 },
            ApplyOutcome::Conflict { generation: 2 },
            ApplyOutcome::Replayed { generation: 3 },
        ]
    );
    // One batch with the same id from two tenants applies both and recognizes a repeat.
    let batch = [
        event_of(tenant("c"), "e-2", "fp"),
        event_of(tenant("d"), "e-2", "fp"),
        event_of(tenant("c"), "e-2", "fp"),
    ];
    let outcomes = store.apply_changes(&batch).await.expect("the batch commits");
    assert_eq!(
        outcomes,
        [
            ApplyOutcome::Applied { generation: 5 },
            ApplyOutcome::Applied { generation: 6 },
            ApplyOutcome::Replayed { generation: 5 },
        ]
    );
    let listed: Vec<(EventTenant, String, u64)> = store
        .processed_events_upto(6, 10)
        .await
        .expect("events")
        .into_iter()
        .map(|event| (event.tenant, event.source_event_id, event.generation))
        .collect();
    assert_eq!(
        listed,
        [
            (tenant("d"), "e-2".to_owned(), 6),
            (tenant("c"), "e-2".to_owned(), 5),
            (tenant("global"), "e-1".to_owned(), 4),
            (EventTenant::Global, "e-1".to_owned(), 3),
            (tenant("b"), "e-1".to_owned(), 2),
            (tenant("a"), "e-1".to_owned(), 1),
        ]
    );
    store.close().await;
}

pub async fn a_primer_keeps_whose_each_event_was(url: &str) {
    let store = open(url).await;
    let processed = |owner: EventTenant, generation: u64| ProcessedEvent {
        tenant: owner,
        source_event_id: "e-1".to_owned(),
        generation,
        fingerprint: "fp".to_owned(),
    };
    let primer = Primer {
        current_generation: 3,
        scope_generations: vec![scope_generation("all", 3, 1_000, "change_event")],
        processed_events: vec![
            processed(EventTenant::Global, 3),
            processed(tenant("b"), 2),
            processed(tenant("a"), 1),
        ],
    };
    store.seed(&primer).await.expect("seed");
    assert_eq!(store.primer(10).await.expect("primer"), primer, "the tenants round-trip");
    // The seeded ledger dedupes per tenant, as the one it was exported from did.
    let outcomes = store
        .apply_changes(&[
            event_of(tenant("a"), "e-1", "fp"),
            event_of(tenant("b"), "e-1", "other"),
            event_of(tenant("c"), "e-1", "fp"),
            event_of(EventTenant::Global, "e-1", "fp"),
        ])
        .await
        .expect("apply");
    assert_eq!(
        outcomes,
        [
            ApplyOutcome::Replayed { generation: 1 },
            ApplyOutcome::Conflict { generation: 2 },
            ApplyOutcome::Applied { generation: 4 },
            ApplyOutcome::Replayed { generation: 3 },
        ]
    );
    store.close().await;
}
