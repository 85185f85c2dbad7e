//! The proof report (`GET /v1/proofs/context`): what the recent traces prove about freshness,
//! redacted for the caller; and KyroDB's own listing of those traces and their feedback
//! (`GET /v1/runtime/evidence`).

use std::collections::BTreeMap;

use kyro_core::diagnosis::{DiagnosisKind, FeedbackSignal};
use kyro_core::planner::{ExecutionPath, PacketStatus};

use super::facts::{Loaded, TraceView, load_traces, signals_of};
use super::recent_param;
use super::redaction::Redactor;
use super::summary::signal_counts;
use crate::runtime::error::RuntimeResult;
use crate::runtime::health::certification;
use crate::runtime::principal::Principal;
use crate::runtime::session::Session;
use crate::runtime::{Runtime, now_ms};
use crate::wire::evidence::{
    ContextProofReport, EvidenceListing, FeedbackLine, IncidentCount, ProofQuality,
    ProofStatusCount, TraceLine,
};
use crate::wire::packet::ProofStatus;
use kyro_state::FeedbackRow;

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
) -> RuntimeResult<ContextProofReport> {
    let recent = recent_param(recent, 100)?;
    let Loaded { traces, feedback, .. } = load_traces(runtime, session, recent).await?;
    let mut redactor = Redactor::new(principal);
    let mut report = proof_report(&traces, &feedback, &mut redactor);
    // The stores and their certification describe the whole deployment, not the caller's
    // tenants.
    if principal.is_unrestricted() {
        report.connector_certification = Some(certification(&runtime.stores));
    } else {
        report.deployment_evidence_redacted = Some(true);
    }
    Ok(report)
}

/// `GET /v1/runtime/evidence?recent=N` (ours): the traces and feedback a proof report counts,
/// one line each.
///
/// # Errors
///
/// An invalid `recent`, or unhealthy evidence.
pub(crate) async fn listing(
    runtime: &Runtime,
    session: &Session,
    principal: &Principal,
    recent: Option<usize>,
) -> RuntimeResult<EvidenceListing> {
    let recent = recent_param(recent, 100)?;
    let Loaded { traces, feedback, .. } = load_traces(runtime, session, recent).await?;
    let mut redactor = Redactor::new(principal);
    let mut listing = EvidenceListing {
        generated_at: kyro_core::time::rfc3339_millis(now_ms()),
        traces: Vec::with_capacity(traces.len()),
        feedback: Vec::new(),
        redactions: Vec::new(),
    };
    for trace in &traces {
        let signals = signals_of(&feedback, &trace.trace_id);
        let trace_key = redactor.trace_key(&trace.tenant_id, &trace.trace_id);
        let body = &trace.trace;
        listing.traces.push(TraceLine {
            trace_key: trace_key.clone(),
            tenant: redactor.tenant(&trace.tenant_id),
            timestamp: kyro_core::time::rfc3339_millis(trace.created_at_ms),
            status: trace.facts.status,
            execution_path: trace.facts.execution_path,
            freshness_mode: trace.facts.freshness_mode,
            served_freshness_mode: trace.facts.served_freshness_mode,
            freshness_generation: body.freshness_generation,
            items_returned: body.items_returned,
            items_omitted: body.items_omitted,
            stale_pruned_count: trace.facts.n_stale_pruned,
            diagnostic_codes: trace.facts.diagnostic_codes.clone(),
            connector_used: body.connector_used.clone(),
            total_latency_ms: body.total_latency_ms,
            proof_status: trace.proof_status(),
            diagnosis: trace.diagnosis(&signals).kind,
        });
        for row in feedback.get(&trace.trace_id).into_iter().flatten() {
            let Some(signal) = FeedbackSignal::parse(&row.signal) else { continue };
            listing.feedback.push(FeedbackLine {
                trace_key: trace_key.clone(),
                signal,
                received_at: kyro_core::time::rfc3339_millis(row.received_at_ms),
                item_count: serde_json::from_str::<Vec<String>>(&row.item_ids)
                    .map_or(0, |ids| ids.len()),
                comment_bytes: row.comment.as_ref().map_or(0, String::len),
            });
        }
    }
    listing.redactions = redactor.redactions();
    Ok(listing)
}

/// How well the traces were proven.
fn proof_quality(traces: &[TraceView]) -> ProofQuality {
    let statuses: Vec<ProofStatus> = traces.iter().map(TraceView::proof_status).collect();
    let proof_status_counts: Vec<ProofStatusCount> = [
        ProofStatus::SourceBacked,
        ProofStatus::RuntimeGeneration,
        ProofStatus::Unavailable,
        ProofStatus::Invalid,
    ]
    .into_iter()
    .map(|proof_status| ProofStatusCount {
        proof_status,
        count: statuses.iter().filter(|status| **status == proof_status).count(),
    })
    .collect();
    let proven = statuses
        .iter()
        .filter(|status| {
            matches!(status, ProofStatus::SourceBacked | ProofStatus::RuntimeGeneration)
        })
        .count();
    let proven_rate = (!traces.is_empty()).then(|| proven as f64 / traces.len() as f64);
    let grade = match proven_rate {
        None => "no_traces",
        Some(rate) if rate >= 0.95 => "strong",
        Some(rate) if rate >= 0.5 => "mixed",
        Some(_) => "weak",
    };
    ProofQuality {
        grade,
        proven_count: proven,
        proven_rate,
        proof_status_counts,
        partial_count: traces.iter().filter(|t| t.facts.status == PacketStatus::Partial).count(),
        stale_pruned_item_count: traces.iter().map(|trace| trace.facts.n_stale_pruned).sum(),
    }
}

/// The contract's `ContextProofReport` over the given traces, without the deployment-level
/// fields.
fn proof_report(
    traces: &[TraceView],
    feedback: &BTreeMap<String, Vec<FeedbackRow>>,
    redactor: &mut Redactor<'_>,
) -> ContextProofReport {
    let n = traces.len();
    let count =
        |predicate: &dyn Fn(&TraceView) -> bool| traces.iter().filter(|t| predicate(t)).count();
    let per_trace = |value: f64| if n == 0 { 0.0 } else { value / n as f64 };
    let reuse_hits = count(&|trace| trace.facts.execution_path == ExecutionPath::ContextReuseHit);
    let latency: f64 = traces.iter().map(|trace| trace.trace.total_latency_ms).sum();
    let mut incidents: BTreeMap<DiagnosisKind, usize> = BTreeMap::new();
    let mut incident_trace_keys = Vec::new();
    let mut negative_feedback_trace_keys = Vec::new();
    for trace in traces {
        let signals = signals_of(feedback, &trace.trace_id);
        let kind = trace.diagnosis(&signals).kind;
        if kind.is_incident() {
            *incidents.entry(kind).or_default() += 1;
            incident_trace_keys.push(redactor.trace_key(&trace.tenant_id, &trace.trace_id));
        }
        if signals.iter().any(|signal| *signal != FeedbackSignal::Useful) {
            negative_feedback_trace_keys
                .push(redactor.trace_key(&trace.tenant_id, &trace.trace_id));
        }
    }
    let (n_feedback, feedback_signal_counts) = signal_counts(feedback.values().flatten());
    ContextProofReport {
        generated_at: kyro_core::time::rfc3339_millis(now_ms()),
        traces_considered: n,
        feedback_entries_considered: n_feedback,
        reuse_hit_rate: per_trace(reuse_hits as f64),
        degraded_count: count(&|trace| trace.facts.status == PacketStatus::Degraded),
        stale_blocked_count: count(&|trace| trace.facts.status == PacketStatus::StaleBlocked),
        downgraded_count: count(&|trace| {
            trace.facts.freshness_mode != trace.facts.served_freshness_mode
        }),
        avg_latency_ms: per_trace(latency),
        proof_quality: proof_quality(traces),
        incident_counts: incidents
            .into_iter()
            .map(|(kind, count)| IncidentCount { kind, count })
            .collect(),
        feedback_signal_counts,
        incident_trace_keys,
        negative_feedback_trace_keys,
        redactions: redactor.redactions(),
        connector_certification: None,
        deployment_evidence_redacted: None,
    }
}
