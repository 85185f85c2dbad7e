//! The proof report (`GET /v1/proofs/context`) and the proof bundle (`POST /v1/proofs/bundle`):
//! what the recent traces prove about freshness, redacted for the caller.

use std::collections::BTreeMap;

use kyro_core::OwnershipMode;
use kyro_core::diagnosis::{FeedbackSignal, diagnose};
use kyro_core::planner::{DiagnosticCode, ExecutionPath, PacketStatus};
use serde_json::{Value, json};

use super::facts::{Loaded, TraceView, load_traces, signals_of};
use super::redaction::Redactor;
use super::{recent_param, root_cause::step_summary};
use crate::runtime::error::RuntimeResult;
use crate::runtime::evidence::Evidence;
use crate::runtime::principal::Principal;
use crate::runtime::session::Session;
use crate::runtime::{Runtime, now_ms};
use crate::wire::evidence::BundleRequest;
use kyro_state::FeedbackRow;

/// The serving stores' certification, for reports.
pub(crate) fn certification(runtime: &Runtime) -> Value {
    json!(
        runtime
            .stores
            .iter()
            .map(|store| json!({
                "store": store.config.id,
                "ownership": store.config.ownership.as_str(),
                "profile": store.report.profile,
                "verdict": store.report.verdict.as_str(),
                "suite_version": store.report.suite_version,
            }))
            .collect::<Vec<_>>()
    )
}

/// The contract's `ContextProofReport` over the given traces.
fn proof_report(
    runtime: &Runtime,
    traces: &[TraceView],
    feedback: &BTreeMap<String, Vec<FeedbackRow>>,
    redactor: &mut Redactor<'_>,
) -> Value {
    let n = traces.len();
    let count =
        |predicate: &dyn Fn(&TraceView) -> bool| traces.iter().filter(|t| predicate(t)).count();
    let reuse_hits = count(&|trace| trace.facts.execution_path == ExecutionPath::ContextReuseHit);
    let degraded = count(&|trace| trace.facts.status == PacketStatus::Degraded);
    let stale_blocked = count(&|trace| trace.facts.status == PacketStatus::StaleBlocked);
    let partial = count(&|trace| trace.facts.status == PacketStatus::Partial);
    let downgraded =
        count(&|trace| trace.facts.freshness_mode != trace.facts.served_freshness_mode);
    let stale_pruned_items: usize = traces.iter().map(|trace| trace.facts.n_stale_pruned).sum();
    let latency: f64 = traces.iter().map(|trace| trace.trace.total_latency_ms).sum();
    let proven = count(&|trace| {
        trace.facts.status != PacketStatus::StaleBlocked
            && trace.facts.ownership.is_some_and(|ownership| ownership != OwnershipMode::BestEffort)
            && !trace.facts.diagnostic_codes.contains(&DiagnosticCode::StaleReuseServed)
    });
    let rate = |part: usize| if n == 0 { 0.0 } else { part as f64 / n as f64 };
    let proof_quality = match n {
        0 => "no_traces",
        _ if rate(proven) >= 0.95 => "strong",
        _ if rate(proven) >= 0.5 => "mixed",
        _ => "weak",
    };
    let mut signal_counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut n_feedback = 0;
    for rows in feedback.values() {
        for row in rows {
            n_feedback += 1;
            *signal_counts
                .entry(FeedbackSignal::parse(&row.signal).map_or("unknown", FeedbackSignal::as_str))
                .or_default() += 1;
        }
    }
    let mut incidents = Vec::new();
    for trace in traces {
        let signals = signals_of(feedback, &trace.trace_id);
        if trace.is_incident(&signals) {
            let diagnosis = diagnose(&trace.facts, &signals);
            incidents.push(json!({
                "trace_key": redactor.trace_key(&trace.tenant_id, &trace.trace_id),
                "timestamp": kyro_core::time::rfc3339_millis(trace.created_at_ms),
                "status": trace.facts.status,
                "kind": diagnosis.kind,
            }));
        }
    }
    json!({
        "generated_at": kyro_core::time::rfc3339_millis(now_ms()),
        "traces_considered": n,
        "feedback_entries_considered": n_feedback,
        "reuse_hit_rate": rate(reuse_hits),
        "degraded_count": degraded,
        "stale_blocked_count": stale_blocked,
        "downgraded_count": downgraded,
        "partial_count": partial,
        "stale_pruned_item_count": stale_pruned_items,
        "avg_latency_ms": if n == 0 { 0.0 } else { latency / n as f64 },
        "proof_quality": proof_quality,
        "proven_rate": rate(proven),
        "incident_count": incidents.len(),
        "incidents": incidents,
        "feedback_signal_counts": signal_counts,
        "redacted_trace_keys": redactor.redacted_trace_keys(),
        "redactions": redactor.redactions(),
        "connector_certification": certification(runtime),
    })
}

/// The bundle's redacted trace and feedback entries.
fn entries(
    traces: &[TraceView],
    feedback: &BTreeMap<String, Vec<FeedbackRow>>,
    redactor: &mut Redactor<'_>,
) -> (Vec<Value>, Vec<Value>) {
    let mut trace_entries = Vec::new();
    let mut feedback_entries = Vec::new();
    for trace in traces {
        let signals = signals_of(feedback, &trace.trace_id);
        let key = redactor.trace_key(&trace.tenant_id, &trace.trace_id);
        let body = &trace.trace;
        trace_entries.push(json!({
            "trace_key": key,
            "tenant": redactor.tenant(&trace.tenant_id),
            "timestamp": kyro_core::time::rfc3339_millis(trace.created_at_ms),
            "status": trace.facts.status,
            "execution_path": trace.facts.execution_path,
            "freshness_mode": trace.facts.freshness_mode,
            "served_freshness_mode": trace.facts.served_freshness_mode,
            "freshness_generation": body.freshness_generation,
            "items_returned": body.items_returned,
            "items_omitted": body.items_omitted,
            "stale_pruned_count": trace.facts.n_stale_pruned,
            "diagnostic_codes": trace.facts.diagnostic_codes,
            "connector_used": body.connector_used,
            "total_latency_ms": body.total_latency_ms,
            "diagnosis": diagnose(&trace.facts, &signals).kind,
        }));
        for row in feedback.get(&trace.trace_id).into_iter().flatten() {
            feedback_entries.push(json!({
                "trace_key": key,
                "signal": row.signal,
                "received_at": kyro_core::time::rfc3339_millis(row.received_at_ms),
                "item_count": serde_json::from_str::<Vec<String>>(&row.item_ids).map_or(0, |ids| ids.len()),
                "comment_bytes": row.comment.as_ref().map_or(0, String::len),
            }));
        }
    }
    (trace_entries, feedback_entries)
}

/// `GET /v1/proofs/context?recent=N`.
///
/// # Errors
///
/// An invalid `recent`, or unhealthy evidence.
pub(crate) async fn report(
    runtime: &Runtime,
    session: &Session,
    principal: &Principal,
    recent: Option<usize>,
) -> RuntimeResult<Value> {
    let recent = recent_param(recent, 100)?;
    let Loaded { traces, feedback, .. } = load_traces(runtime, session, recent).await?;
    let mut redactor = Redactor::new(principal);
    Ok(proof_report(runtime, &traces, &feedback, &mut redactor))
}

/// `POST /v1/proofs/bundle`: the proof report with its redacted traces, feedback and capture
/// summary, in one shareable document (schema version 4).
///
/// # Errors
///
/// An invalid request, a tenant the caller may not see, or unhealthy evidence.
pub(crate) async fn bundle(
    runtime: &Runtime,
    session: &Session,
    principal: &Principal,
    request: BundleRequest,
) -> RuntimeResult<Value> {
    let recent = recent_param(request.recent, 100)?;
    super::confine_tenant_filter(principal, request.tenant_id.as_deref())?;
    let Loaded { mut traces, feedback, n_unreadable } =
        load_traces(runtime, session, recent).await?;
    if let Some(tenant_id) = &request.tenant_id {
        traces.retain(|trace| &trace.tenant_id == tenant_id);
    }
    let mut redactor = Redactor::new(principal);
    let report = proof_report(runtime, &traces, &feedback, &mut redactor);
    let (trace_entries, feedback_entries) = entries(&traces, &feedback, &mut redactor);
    let capture = if request.include_capture.unwrap_or(true) && session.capture {
        session.require_healthy(&[Evidence::Capture])?;
        let steps = session
            .state
            .recent_capture(recent)
            .await
            .map_err(|err| session.read_failed(Evidence::Capture, &err))?;
        let summary: Vec<Value> = steps
            .iter()
            .filter(|step| request.tenant_id.is_none() || step.row.tenant_id == request.tenant_id)
            .map(|step| {
                let visible =
                    step.row.tenant_id.as_deref().is_none_or(|tenant| redactor.visible(tenant));
                step_summary(step, visible)
            })
            .collect();
        json!({ "steps": summary })
    } else {
        Value::Null
    };
    Ok(json!({
        "schema_version": 4,
        "generated_at": kyro_core::time::rfc3339_millis(now_ms()),
        "report": report,
        "traces": trace_entries,
        "feedback": feedback_entries,
        "capture": capture,
        "connector_certification": certification(runtime),
        "missing_trace_evidence_count": n_unreadable,
        "redactions": redactor.redactions(),
    }))
}
