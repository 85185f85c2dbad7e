//! Replay scenarios: simulation against the planner, interventions, and the step diff.

use super::*;
use crate::diagnosis::DiagnosisKind;
use crate::planner::ItemSource;

fn change(step_index: u64, event: &str, doc: Option<(&str, &str)>) -> SimStep {
    SimStep {
        step_index,
        label: format!("change {event}"),
        step_type: StepType::ChangeEvent,
        plan: StepPlan::Change {
            source_event_id: Some(event.to_owned()),
            scope_keys: vec!["namespace:acme/support".to_owned()],
            documents: doc
                .map(|(doc_id, revision)| DocumentPlan {
                    tenant_id: "acme".to_owned(),
                    namespace: "support".to_owned(),
                    doc_id: doc_id.to_owned(),
                    revision: Some(revision.to_owned()),
                    watermark: None,
                    tombstone: false,
                    event_timestamp_ms: None,
                })
                .into_iter()
                .collect(),
            invalidation: Invalidation::Namespace {
                tenant_id: Some("acme".to_owned()),
                namespace: "support".to_owned(),
            },
        },
    }
}

fn retrieve(
    step_index: u64,
    mode: &str,
    required_generation: Option<u64>,
    candidates: &[(&str, &str)],
) -> SimStep {
    SimStep {
        step_index,
        label: "retrieve acme/support".to_owned(),
        step_type: StepType::Retrieve,
        plan: StepPlan::Retrieve {
            fingerprint: 7,
            requested_mode: mode.parse().unwrap(),
            production: false,
            store_id: "pg".to_owned(),
            ownership: OwnershipMode::EventFeed,
            required_generation,
            read_keys: vec!["namespace:acme/support".to_owned(), "all".to_owned()],
            tenant_id: "acme".to_owned(),
            namespace: "support".to_owned(),
            candidates: candidates
                .iter()
                .map(|(id, revision)| Candidate {
                    id: (*id).to_owned(),
                    revision: Some((*revision).to_owned()),
                    watermark: None,
                })
                .collect(),
            short: None,
        },
    }
}

fn statuses(records: &[ReplayRecord]) -> Vec<(u64, String, u64)> {
    records
        .iter()
        .map(|record| (record.step_index, record.status.as_str().to_owned(), record.generation))
        .collect()
}

#[test]
fn a_strict_retrieve_waiting_for_a_change_is_blocked_when_the_change_is_dropped() {
    let steps = vec![change(0, "ev-1", None), retrieve(1, "strict", Some(1), &[("doc-1", "1")])];
    let baseline = simulate(&PrimerState::default(), &steps);
    assert_eq!(
        statuses(&baseline),
        vec![(0, "accepted".to_owned(), 1), (1, "complete".to_owned(), 1)]
    );
    let dropped = intervene(steps, &[Intervention::DropStep { step_index: 0 }]).unwrap();
    let counterfactual = simulate(&PrimerState::default(), &dropped);
    assert_eq!(statuses(&counterfactual), vec![(1, "stale_blocked".to_owned(), 0)]);
    assert!(counterfactual[0].observed.items.is_empty());
    let delta = diff(&baseline, &counterfactual);
    assert!(!delta.is_identical());
    assert_eq!(delta.only_in_baseline, vec!["change_event:0".to_owned()]);
    assert_eq!(delta.diffs.len(), 1);
    assert_eq!(delta.diffs[0].step_key, "retrieve:1");
    assert!(delta.diffs[0].changed_fields.contains(&"status"));
    assert_eq!(baseline[1].diagnosis_kind(), Some(DiagnosisKind::FreshBackendFetch));
    assert_eq!(counterfactual[0].diagnosis_kind(), Some(DiagnosisKind::StrictFreshnessBlocked));
    assert_eq!(delta.diagnosis_changes, 1);
    let (before, after) = (RunCounts::of(&baseline), RunCounts::of(&counterfactual));
    assert_eq!((before.complete_count, after.stale_blocked_count), (1, 1));
    assert_eq!(after.stale_prevented(), 1);
}

#[test]
fn an_item_older_than_the_acknowledged_revision_is_pruned_only_after_the_change() {
    let steps = vec![
        retrieve(0, "strict", None, &[("doc-1", "1"), ("doc-2", "1")]),
        change(1, "ev-1", Some(("doc-1", "2"))),
        retrieve(2, "strict", None, &[("doc-1", "1"), ("doc-2", "1")]),
    ];
    let baseline = simulate(&PrimerState::default(), &steps);
    assert_eq!(baseline[0].status, StepStatus::Complete);
    assert_eq!(baseline[2].status, StepStatus::Partial);
    assert_eq!(baseline[2].observed.stale_pruned, vec!["doc-1".to_owned()]);
    // Moving the change after the last retrieve removes the pruning.
    let moved =
        intervene(steps, &[Intervention::MoveStepAfter { step_index: 1, after_step_index: 2 }])
            .unwrap();
    assert_eq!(moved.iter().map(|step| step.step_index).collect::<Vec<_>>(), vec![0, 2, 1]);
    let counterfactual = simulate(&PrimerState::default(), &moved);
    let delta = diff(&baseline, &counterfactual);
    assert_eq!(delta.completion_gains, 1);
    assert_eq!(delta.cache_hit_gains, 1, "the last retrieve reuses the first answer");
    assert_eq!(RunCounts::of(&baseline).stale_prevented(), 1, "one item pruned");
    // The retrieve now reuses the first answer.
    assert!(
        counterfactual[1].observed.items.iter().all(|item| item.source == ItemSource::ContextReuse)
    );
}

#[test]
fn eventual_serves_a_stale_entry_and_flags_it() {
    let steps = vec![
        retrieve(0, "eventual", None, &[("doc-1", "1")]),
        change(1, "ev-1", None),
        retrieve(2, "eventual", None, &[("doc-1", "1")]),
    ];
    let records = simulate(&PrimerState::default(), &steps);
    assert_eq!(records[2].status, StepStatus::Degraded);
    assert_eq!(records[2].observed.items[0].source, ItemSource::ContextReuse);
    assert_eq!(records[2].observed.warnings.len(), 1);
}

#[test]
fn a_replayed_event_id_changes_nothing() {
    let primer = PrimerState {
        current_generation: 5,
        processed_change_events: ["ev-1".to_owned()].into_iter().collect(),
        ..PrimerState::default()
    };
    let records = simulate(&primer, &[change(0, "ev-1", None), change(1, "ev-2", None)]);
    assert_eq!(
        statuses(&records),
        vec![(0, "accepted".to_owned(), 5), (1, "accepted".to_owned(), 6)]
    );
    assert!(records[0].observed.deduplicated);
    assert!(!records[1].observed.deduplicated);
}

#[test]
fn interventions_naming_unknown_or_dropped_steps_are_refused() {
    let steps = vec![change(0, "ev-1", None), change(1, "ev-2", None)];
    assert!(intervene(steps.clone(), &[Intervention::DropStep { step_index: 9 }]).is_err());
    assert!(
        intervene(
            steps.clone(),
            &[Intervention::DropStep { step_index: 0 }, Intervention::DropStep { step_index: 0 }]
        )
        .is_err()
    );
    assert!(
        intervene(
            steps.clone(),
            &[Intervention::MoveStepBefore { step_index: 1, before_step_index: 1 }]
        )
        .is_err()
    );
    let moved =
        intervene(steps, &[Intervention::MoveStepBefore { step_index: 1, before_step_index: 0 }])
            .unwrap();
    assert_eq!(moved.iter().map(|step| step.step_index).collect::<Vec<_>>(), vec![1, 0]);
}

#[test]
fn identical_runs_diff_empty_and_every_field_is_compared() {
    let steps = vec![change(0, "ev-1", None), retrieve(1, "strict", None, &[("doc-1", "1")])];
    let records = simulate(&PrimerState::default(), &steps);
    let same = diff(&records, &records);
    assert!(same.is_identical());
    assert_eq!(same.compared_steps, 2);
    let mut changed = records.clone();
    changed[1].observed.served_mode = Some(FreshnessMode::Eventual);
    changed[1].observed.items.clear();
    changed.push(ReplayRecord { step_index: 9, ..records[0].clone() });
    changed.push(ReplayRecord { label: "again".to_owned(), ..records[0].clone() });
    let delta = diff(&records, &changed);
    assert!(!delta.is_identical());
    assert_eq!(delta.diffs.len(), 1);
    assert_eq!(
        delta.diffs[0].changed_fields,
        vec!["served_freshness_mode", "diagnosis_kind", "items"]
    );
    assert_eq!(delta.only_in_candidate, vec!["change_event:9".to_owned()]);
    assert_eq!(delta.duplicate_key_count, 1, "the second change_event:0 is not compared");
}

#[test]
fn a_scenario_key_names_the_scenario_without_quoting_it() {
    let drop = [Intervention::DropStep { step_index: 3 }];
    let key = scenario_key("drop the refund event for acme", &drop);
    assert!(key.starts_with("counterfactual_scenario_"), "{key}");
    assert!(!key.contains("acme"));
    assert_eq!(key, scenario_key("drop the refund event for acme", &drop), "stable");
    assert_ne!(key, scenario_key("another name", &drop));
    let moves = [
        Intervention::MoveStepAfter { step_index: 1, after_step_index: 2 },
        Intervention::MoveStepBefore { step_index: 1, before_step_index: 0 },
        Intervention::DropStep { step_index: 4 },
    ];
    assert_ne!(scenario_key("x", &moves[..1]), scenario_key("x", &moves[1..2]));
    assert_eq!(transformed_steps(&moves), 2, "step 1 moved twice counts once");
}
