//! The root-cause report (`POST /v1/root-cause/report`, schema version 2): the stale and safety
//! incidents among recent traces (or one named trace), grouped by cause, each with its
//! diagnosis and the captured changes that preceded it; with `include_non_stale`, every other
//! trace too.

use std::collections::BTreeMap;

use kyro_core::diagnosis::{Diagnosis, DiagnosisKind};
use kyro_core::replay::StepType;

use super::facts::{Loaded, TraceView, load_traces, signals_of};
use super::redaction::Redactor;
use super::summary::{Baseline, evidence_quality, trace_evidence};
use super::{MAX_ENTRIES, recent_param};
use crate::runtime::error::{RuntimeError, RuntimeResult};
use crate::runtime::evidence::Evidence;
use crate::runtime::feedback::trace_for;
use crate::runtime::principal::Principal;
use crate::runtime::session::Session;
use crate::runtime::{Runtime, now_ms};
use crate::wire::capture::{CaptureExport, InvalidationDto, StepPlanDto};
use crate::wire::evidence::{
    Incident, PrecedingChange, RootCause, RootCauseReport, RootCauseRequest,
};

/// The most captured changes an incident lists before it.
const MAX_PRECEDING: usize = 5;
/// The most trace keys a root cause lists.
const MAX_TRACE_KEYS: usize = 10;

async fn traces_of(
    runtime: &Runtime,
    session: &Session,
    principal: &Principal,
    request: &RootCauseRequest,
    recent: usize,
) -> RuntimeResult<Loaded> {
    let Some(trace_id) = &request.trace_id else {
        return load_traces(runtime, session, recent).await;
    };
    session.require_healthy(&[Evidence::Trace, Evidence::Feedback])?;
    let row = trace_for(session, principal, trace_id)
        .await?
        .ok_or_else(|| RuntimeError::not_found("no trace with that id"))?;
    let rows = session
        .state
        .feedback_for(trace_id)
        .await
        .map_err(|err| session.read_failed(Evidence::Feedback, &err))?;
    let traces: Vec<TraceView> = TraceView::new(runtime, row).into_iter().collect();
    Ok(Loaded {
        n_unreadable: 1 - traces.len(),
        traces,
        feedback: BTreeMap::from([(trace_id.clone(), rows)]),
    })
}

/// The tenant a captured change belongs to; `None` for a change of every tenant.
fn change_tenant(plan: Option<&StepPlanDto>) -> Option<&str> {
    match plan? {
        StepPlanDto::Change { invalidation, .. } => match invalidation {
            InvalidationDto::Tenant { tenant_id }
            | InvalidationDto::Namespace { tenant_id: Some(tenant_id), .. }
            | InvalidationDto::Document { tenant_id, .. } => Some(tenant_id),
            InvalidationDto::All
            | InvalidationDto::Namespace { tenant_id: None, .. }
            | InvalidationDto::Store { .. } => None,
        },
        StepPlanDto::Retrieve { .. } => None,
    }
}

/// The newest captured changes of `trace`'s tenant (or of every tenant) up to its time.
fn preceding(capture: &CaptureExport, trace: &TraceView) -> Vec<PrecedingChange> {
    let mut changes: Vec<PrecedingChange> = Vec::new();
    for step in capture.steps.iter().rev() {
        let Some(record) = &step.observed_record else { continue };
        let captured_ms =
            step.captured_at.as_deref().and_then(kyro_core::time::parse_rfc3339_millis);
        if record.step_type == StepType::Retrieve
            || captured_ms.is_none_or(|ms| ms > trace.created_at_ms)
        {
            continue;
        }
        if change_tenant(step.plan.as_ref()).is_some_and(|tenant| tenant != trace.tenant_id) {
            continue;
        }
        changes.push(PrecedingChange {
            sequence: step.sequence,
            step_type: record.step_type,
            status: record.status,
            deduplicated: record.deduplicated,
            generation: record.generation,
            captured_at: step.captured_at.clone().unwrap_or_default(),
            label: record.label.clone(),
        });
        if changes.len() >= MAX_PRECEDING {
            break;
        }
    }
    changes
}

fn incident(
    trace: &TraceView,
    diagnosis: Diagnosis,
    signals: Vec<kyro_core::diagnosis::FeedbackSignal>,
    preceding_changes: Vec<PrecedingChange>,
    redactor: &mut Redactor<'_>,
) -> Incident {
    Incident {
        trace_key: redactor.trace_key(&trace.tenant_id, &trace.trace_id),
        tenant: redactor.tenant(&trace.tenant_id),
        timestamp: kyro_core::time::rfc3339_millis(trace.created_at_ms),
        status: trace.facts.status,
        freshness_mode: trace.facts.freshness_mode,
        served_freshness_mode: trace.facts.served_freshness_mode,
        freshness_generation: trace.trace.freshness_generation,
        kind: diagnosis.kind,
        category: trace.category(diagnosis.kind),
        summary: diagnosis.summary,
        recommended_actions: diagnosis.recommended_actions,
        evidence: diagnosis.evidence,
        feedback_signals: signals,
        preceding_changes,
    }
}

/// `POST /v1/root-cause/report`.
///
/// # Errors
///
/// An invalid request, a trace the caller may not see, or unhealthy evidence.
pub(crate) async fn report(
    runtime: &Runtime,
    session: &Session,
    principal: &Principal,
    request: RootCauseRequest,
) -> RuntimeResult<RootCauseReport> {
    let recent = recent_param(request.recent, 200)?;
    let max_incidents = request.max_incidents.unwrap_or(50);
    if !(1..=MAX_ENTRIES).contains(&max_incidents) {
        return Err(RuntimeError::invalid(format!("max_incidents must be 1..{MAX_ENTRIES}")));
    }
    let loaded = traces_of(runtime, session, principal, &request, recent).await?;
    let baseline = Baseline::live(runtime, session, principal, recent).await?;
    let evidence = trace_evidence(runtime, session, &loaded, &baseline.capture).await?;
    let mut redactor = Redactor::new(principal);
    let (mut stale_count, mut safety_count) = (0, 0);
    let mut causes: BTreeMap<DiagnosisKind, RootCause> = BTreeMap::new();
    let mut incidents = Vec::new();
    for trace in loaded.traces.iter().rev() {
        let signals = signals_of(&loaded.feedback, &trace.trace_id);
        let diagnosis = trace.diagnosis(&signals);
        let (stale, safety) = (diagnosis.kind.is_stale(), trace.is_safety_incident(diagnosis.kind));
        stale_count += usize::from(stale);
        safety_count += usize::from(safety);
        if !(stale || safety || request.include_non_stale) {
            continue;
        }
        let trace_key = redactor.trace_key(&trace.tenant_id, &trace.trace_id);
        let cause = causes.entry(diagnosis.kind).or_insert_with(|| RootCause {
            kind: diagnosis.kind,
            category: trace.category(diagnosis.kind),
            count: 0,
            summary: diagnosis.summary.clone(),
            recommended_actions: diagnosis.recommended_actions.clone(),
            trace_keys: Vec::new(),
        });
        cause.count += 1;
        if cause.trace_keys.len() < MAX_TRACE_KEYS {
            cause.trace_keys.push(trace_key);
        }
        if incidents.len() < max_incidents {
            let changes = preceding(&baseline.capture, trace);
            incidents.push(incident(trace, diagnosis, signals, changes, &mut redactor));
        }
    }
    let mut warnings = Vec::new();
    if !session.capture {
        warnings.push("replay capture is turned off: no preceding changes are known".to_owned());
    }
    if loaded.n_unreadable > 0 {
        warnings.push(format!("{} stored traces could not be read", loaded.n_unreadable));
    }
    Ok(RootCauseReport {
        schema_version: 2,
        generated_at: kyro_core::time::rfc3339_millis(now_ms()),
        capture_summary: baseline.summary(session),
        traces_considered: loaded.traces.len(),
        stale_incident_count: stale_count,
        safety_incident_count: safety_count,
        missing_trace_evidence_count: evidence.coverage.traces_missing,
        root_causes: causes.into_values().collect(),
        incidents,
        evidence_quality: evidence_quality(
            runtime,
            session,
            evidence.coverage,
            loaded.n_unreadable,
        ),
        redactions: redactor.redactions(),
        warnings,
    })
}
