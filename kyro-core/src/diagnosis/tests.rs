//! Diagnosis as a table: traces and feedback in, exactly one kind out.

use super::{DiagnosisKind, FeedbackSignal, TraceFacts, diagnose};
use crate::freshness::{FreshnessMode, OwnershipMode};
use crate::planner::{DiagnosticCode, ExecutionPath, PacketStatus};

fn facts(status: PacketStatus, path: ExecutionPath, codes: &[DiagnosticCode]) -> TraceFacts {
    TraceFacts {
        freshness_mode: FreshnessMode::Strict,
        served_freshness_mode: FreshnessMode::Strict,
        status,
        execution_path: path,
        diagnostic_codes: codes.to_vec(),
        n_stale_pruned: 0,
        n_items: 3,
        backend_failed: false,
        degradation_reason: None,
        ownership: Some(OwnershipMode::EventFeed),
    }
}

fn check(trace: TraceFacts, feedback: &[FeedbackSignal], expect: DiagnosisKind) {
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
    use DiagnosisKind as Kind;
    use DiagnosticCode as Code;
    use ExecutionPath::{BackendFetch as Fetch, ContextReuseHit as Reuse};
    use FeedbackSignal::{Irrelevant, Stale, Useful, WrongScope};
    use PacketStatus::{Complete, Degraded, Partial, StaleBlocked};
    check(facts(Complete, Fetch, &[]), &[], Kind::FreshBackendFetch);
    check(facts(Complete, Fetch, &[]), &[Useful], Kind::FreshBackendFetch);
    check(facts(Complete, Reuse, &[]), &[], Kind::CacheReuseHit);
    check(facts(Complete, Fetch, &[]), &[Stale], Kind::FeedbackReportedStale);
    check(facts(StaleBlocked, Fetch, &[]), &[Stale, WrongScope], Kind::FeedbackReportedStale);
    check(facts(Complete, Fetch, &[]), &[WrongScope], Kind::FeedbackReportedWrongScope);
    check(facts(Complete, Fetch, &[]), &[Irrelevant], Kind::FreshButIrrelevant);
    check(
        facts(StaleBlocked, Fetch, &[Code::StrictEvidenceUnavailable]),
        &[],
        Kind::StrictFreshnessBlocked,
    );
    check(facts(StaleBlocked, Fetch, &[]), &[Irrelevant], Kind::StrictFreshnessBlocked);
    let downgraded = TraceFacts {
        served_freshness_mode: FreshnessMode::Balanced,
        ..facts(Degraded, Fetch, &[Code::ConnectorCapabilityMismatch])
    };
    check(downgraded, &[], Kind::FreshnessDowngrade);
    check(
        facts(Partial, Fetch, &[Code::WatermarkGenerationLag]),
        &[],
        Kind::WatermarkGenerationLag,
    );
    check(
        facts(Complete, Fetch, &[Code::WatermarkGenerationAhead]),
        &[],
        Kind::WatermarkGenerationAhead,
    );
    check(facts(Degraded, Reuse, &[Code::StaleReuseServed]), &[], Kind::StaleFallback);
    let unavailable = TraceFacts { backend_failed: true, ..facts(Degraded, Fetch, &[]) };
    check(unavailable, &[], Kind::BackendUnavailable);
    check(facts(Partial, Fetch, &[Code::WatermarkLookupFailed]), &[], Kind::BackendUnavailable);
    let best_effort =
        TraceFacts { ownership: Some(OwnershipMode::BestEffort), ..facts(Complete, Fetch, &[]) };
    check(best_effort, &[], Kind::WeakWatermarkEvidence);
}

#[test]
fn diagnoses_are_stable() {
    let stale = TraceFacts {
        n_stale_pruned: 1,
        ..facts(
            PacketStatus::Partial,
            ExecutionPath::BackendFetch,
            &[DiagnosticCode::TombstonePruned],
        )
    };
    insta::assert_yaml_snapshot!(diagnose(&stale, &[FeedbackSignal::Stale]));
}

#[test]
fn stale_kinds_are_incidents_and_the_ordinary_paths_are_neither() {
    use DiagnosisKind as Kind;
    for (kind, stale, incident) in [
        (Kind::StrictFreshnessBlocked, true, true),
        (Kind::StaleFallback, true, true),
        (Kind::FeedbackReportedStale, true, true),
        (Kind::FreshnessDowngrade, true, true),
        (Kind::WatermarkGenerationLag, true, true),
        (Kind::WatermarkGenerationAhead, true, true),
        (Kind::FeedbackReportedWrongScope, false, true),
        (Kind::BackendUnavailable, false, true),
        (Kind::WeakWatermarkEvidence, false, true),
        (Kind::FreshButIrrelevant, false, false),
        (Kind::CacheReuseHit, false, false),
        (Kind::FreshBackendFetch, false, false),
    ] {
        assert_eq!((kind.is_stale(), kind.is_incident()), (stale, incident), "{kind:?}");
    }
}
