//! Diagnosis as a table: traces and feedback in, exactly one kind out.

use super::{FeedbackSignal, TraceFacts, diagnose};

fn facts(status: &str, path: &str, codes: &[&str]) -> TraceFacts {
    TraceFacts {
        freshness_mode: "strict".to_owned(),
        served_freshness_mode: "strict".to_owned(),
        status: status.to_owned(),
        execution_path: path.to_owned(),
        diagnostic_codes: codes.iter().map(|code| (*code).to_owned()).collect(),
        n_stale_pruned: 0,
        n_items: 3,
        degradation_reason: None,
        ownership: Some("event_feed".to_owned()),
    }
}

fn check(trace: TraceFacts, feedback: &[FeedbackSignal], expect: &str) {
    let diagnosis = diagnose(&trace, feedback);
    assert_eq!(diagnosis.kind, expect, "{trace:?} with {feedback:?}");
    assert!(
        !diagnosis.summary.is_empty()
            && !diagnosis.recommended_actions.is_empty()
            && !diagnosis.evidence.is_empty()
    );
}

#[test]
fn each_kind_is_reached_by_its_trace() {
    use FeedbackSignal::{Irrelevant, Stale, Useful, WrongScope};
    check(facts("complete", "backend_fetch", &[]), &[], "fresh_backend_fetch");
    check(facts("complete", "backend_fetch", &[]), &[Useful], "fresh_backend_fetch");
    check(facts("complete", "context_reuse_hit", &[]), &[], "cache_reuse_hit");
    check(facts("complete", "backend_fetch", &[]), &[Stale], "feedback_reported_stale");
    check(
        facts("stale_blocked", "backend_fetch", &[]),
        &[Stale, WrongScope],
        "feedback_reported_stale",
    );
    check(facts("complete", "backend_fetch", &[]), &[WrongScope], "feedback_reported_wrong_scope");
    check(facts("complete", "backend_fetch", &[]), &[Irrelevant], "fresh_but_irrelevant");
    check(
        facts("stale_blocked", "backend_fetch", &["strict_evidence_unavailable"]),
        &[],
        "strict_freshness_blocked",
    );
    check(facts("stale_blocked", "backend_fetch", &[]), &[Irrelevant], "strict_freshness_blocked");
    let downgraded = TraceFacts {
        served_freshness_mode: "balanced".to_owned(),
        ..facts("degraded", "backend_fetch", &["connector_capability_mismatch"])
    };
    check(downgraded, &[], "freshness_downgrade");
    check(
        facts("partial", "backend_fetch", &["watermark_generation_lag"]),
        &[],
        "watermark_generation_lag",
    );
    check(
        facts("complete", "backend_fetch", &["watermark_generation_ahead"]),
        &[],
        "watermark_generation_ahead",
    );
    check(facts("degraded", "context_reuse_hit", &["stale_reuse_served"]), &[], "stale_fallback");
    let unavailable = TraceFacts {
        degradation_reason: Some("backend unavailable: timeout".to_owned()),
        ..facts("degraded", "backend_fetch", &[])
    };
    check(unavailable, &[], "backend_unavailable");
    let best_effort = TraceFacts {
        ownership: Some("best_effort".to_owned()),
        ..facts("complete", "backend_fetch", &[])
    };
    check(best_effort, &[], "weak_watermark_evidence");
}

#[test]
fn diagnoses_are_stable() {
    let stale = TraceFacts {
        n_stale_pruned: 1,
        ..facts("partial", "backend_fetch", &["tombstone_pruned"])
    };
    insta::assert_yaml_snapshot!(diagnose(&stale, &[FeedbackSignal::Stale]));
}
