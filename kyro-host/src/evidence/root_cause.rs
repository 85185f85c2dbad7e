//! The root-cause report (`POST /v1/root-cause/report`): every incident among recent traces (or
//! one named trace), its diagnosis, and the captured changes that preceded it.

use std::collections::BTreeMap;

use kyro_core::diagnosis::{DiagnosisKind, diagnose};
use kyro_core::replay::StepType;
use serde_json::{Value, json};

use super::facts::{Loaded, TraceView, load_traces, signals_of};
use super::redaction::Redactor;
use super::{MAX_ENTRIES, MAX_RECENT, recent_param};
use crate::runtime::capture::CaptureBody;
use crate::runtime::error::{RuntimeError, RuntimeResult};
use crate::runtime::evidence::Evidence;
use crate::runtime::feedback::trace_for;
use crate::runtime::principal::Principal;
use crate::runtime::session::Session;
use crate::runtime::{Runtime, now_ms};
use crate::wire::evidence::RootCauseRequest;
use kyro_state::CapturedStep;

/// A capture step as reports show it: no request, and no label unless its tenant is visible.
pub(crate) fn step_summary(step: &CapturedStep, visible: bool) -> Value {
    let label = serde_json::from_str::<CaptureBody>(&step.row.body)
        .map(|body| body.label)
        .unwrap_or_default();
    json!({
        "sequence": step.sequence,
        "step_type": step.row.step_type,
        "status": step.row.status.as_str(),
        "generation": step.row.generation,
        "captured_at": kyro_core::time::rfc3339_millis(step.row.captured_at_ms),
        "label": if visible { label } else { "redacted".to_owned() },
    })
}

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

fn incident(
    trace: &TraceView,
    diagnosis: &kyro_core::diagnosis::Diagnosis,
    signals: &[kyro_core::diagnosis::FeedbackSignal],
    preceding: Vec<Value>,
    redactor: &mut Redactor<'_>,
) -> Value {
    json!({
        "trace_key": redactor.trace_key(&trace.tenant_id, &trace.trace_id),
        "tenant": redactor.tenant(&trace.tenant_id),
        "timestamp": kyro_core::time::rfc3339_millis(trace.created_at_ms),
        "status": trace.facts.status,
        "freshness_mode": trace.facts.freshness_mode,
        "served_freshness_mode": trace.facts.served_freshness_mode,
        "freshness_generation": trace.trace.freshness_generation,
        "kind": diagnosis.kind,
        "summary": diagnosis.summary,
        "recommended_actions": diagnosis.recommended_actions,
        "evidence": diagnosis.evidence,
        "feedback_signals": signals,
        "preceding_changes": preceding,
    })
}

/// `POST /v1/root-cause/report` (schema version 2).
///
/// # Errors
///
/// An invalid request, a tenant or trace the caller may not see, or unhealthy evidence.
pub(crate) async fn report(
    runtime: &Runtime,
    session: &Session,
    principal: &Principal,
    request: RootCauseRequest,
) -> RuntimeResult<Value> {
    let recent = recent_param(request.recent, 200)?;
    let max_incidents = request.max_incidents.unwrap_or(50);
    if !(1..=MAX_ENTRIES).contains(&max_incidents) {
        return Err(RuntimeError::invalid(format!("max_incidents must be 1..{MAX_ENTRIES}")));
    }
    super::confine_tenant_filter(principal, request.tenant_id.as_deref())?;
    let Loaded { mut traces, feedback, .. } =
        traces_of(runtime, session, principal, &request, recent).await?;
    if let Some(tenant_id) = &request.tenant_id {
        traces.retain(|trace| &trace.tenant_id == tenant_id);
    }
    let changes: Vec<CapturedStep> = if session.capture {
        session.require_healthy(&[Evidence::Capture])?;
        session
            .state
            .recent_capture(MAX_RECENT)
            .await
            .map_err(|err| session.read_failed(Evidence::Capture, &err))?
            .into_iter()
            .filter(|step| step.row.step_type != StepType::Retrieve.as_str())
            .collect()
    } else {
        Vec::new()
    };
    let mut redactor = Redactor::new(principal);
    let mut incidents = Vec::new();
    let mut by_kind: BTreeMap<DiagnosisKind, usize> = BTreeMap::new();
    for trace in traces.iter().rev() {
        let signals = signals_of(&feedback, &trace.trace_id);
        if !trace.is_incident(&signals) && request.trace_id.is_none() {
            continue;
        }
        let diagnosis = diagnose(&trace.facts, &signals);
        *by_kind.entry(diagnosis.kind).or_default() += 1;
        if incidents.len() >= max_incidents {
            continue;
        }
        let preceding: Vec<Value> = changes
            .iter()
            .filter(|step| step.row.captured_at_ms <= trace.created_at_ms)
            .filter(|step| {
                step.row.tenant_id.is_none()
                    || step.row.tenant_id.as_deref() == Some(trace.tenant_id.as_str())
            })
            .rev()
            .take(5)
            .map(|step| step_summary(step, redactor.visible(&trace.tenant_id)))
            .collect();
        incidents.push(incident(trace, &diagnosis, &signals, preceding, &mut redactor));
    }
    Ok(json!({
        "schema_version": 2,
        "generated_at": kyro_core::time::rfc3339_millis(now_ms()),
        "traces_considered": traces.len(),
        "incident_count": by_kind.values().sum::<usize>(),
        "incidents_by_kind": by_kind,
        "incidents": incidents,
        "redactions": redactor.redactions(),
    }))
}
