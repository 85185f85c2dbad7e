//! Stored traces read back as typed values, and the diagnosis facts derived from them.

use std::collections::{BTreeMap, BTreeSet};

use kyro_core::diagnosis::{Diagnosis, DiagnosisKind, FeedbackSignal, TraceFacts, diagnose};
use kyro_core::planner::DiagnosticCode;

use super::MAX_RECENT;
use crate::runtime::Runtime;
use crate::runtime::error::RuntimeResult;
use crate::runtime::evidence::Evidence;
use crate::runtime::packet::proof_status;
use crate::runtime::session::Session;
use crate::wire::packet::ProofStatus;
use crate::wire::trace::ContextTrace;
use kyro_state::{FeedbackRow, TraceRow};

/// One stored trace, read back.
#[derive(Debug, Clone)]
pub(crate) struct TraceView {
    pub(crate) trace_id: String,
    pub(crate) tenant_id: String,
    pub(crate) created_at_ms: i64,
    pub(crate) trace: ContextTrace,
    pub(crate) facts: TraceFacts,
}

impl TraceView {
    /// Decodes a stored trace; `None` when it is unreadable.
    pub(crate) fn new(runtime: &Runtime, row: TraceRow) -> Option<Self> {
        let trace: ContextTrace = serde_json::from_str(&row.body).ok()?;
        let facts = trace_facts(runtime, &trace);
        Some(Self {
            trace_id: row.trace_id,
            tenant_id: row.tenant_id,
            created_at_ms: row.created_at_ms,
            trace,
            facts,
        })
    }

    /// The standing of the packet's proof, by the rule the packet was answered with.
    pub(crate) fn proof_status(&self) -> ProofStatus {
        let n_invalidating =
            self.facts.diagnostic_codes.iter().filter(|code| code.invalidates_proof()).count();
        proof_status(self.facts.status, self.facts.ownership, n_invalidating)
    }

    /// The trace's diagnosis with the feedback given on it.
    pub(crate) fn diagnosis(&self, signals: &[FeedbackSignal]) -> Diagnosis {
        diagnose(&self.facts, signals)
    }

    /// Whether the trace is a safety incident: context reported from the wrong scope, or a
    /// connector answer the host caught outside the request's scope or refused.
    pub(crate) fn is_safety_incident(&self, kind: DiagnosisKind) -> bool {
        kind == DiagnosisKind::FeedbackReportedWrongScope
            || self.facts.diagnostic_codes.iter().any(|code| {
                matches!(
                    code,
                    DiagnosticCode::ConnectorScopeViolation | DiagnosticCode::ContextGuardRejected
                )
            })
    }

    /// `safety`, `stale` or `other`, for a trace diagnosed as `kind`.
    pub(crate) fn category(&self, kind: DiagnosisKind) -> &'static str {
        if self.is_safety_incident(kind) {
            "safety"
        } else if kind.is_stale() {
            "stale"
        } else {
            "other"
        }
    }
}

/// The classifier's facts from a trace.
pub(crate) fn trace_facts(runtime: &Runtime, trace: &ContextTrace) -> TraceFacts {
    let ownership = trace.connector_used.as_deref().and_then(|connector| {
        runtime
            .config
            .stores
            .iter()
            .find(|store| store.id == connector)
            .map(|store| store.ownership)
    });
    TraceFacts {
        freshness_mode: trace.freshness_mode,
        served_freshness_mode: trace.served_freshness_mode,
        status: trace.status,
        execution_path: trace.execution_path,
        diagnostic_codes: trace.diagnostic_notes.iter().map(|note| note.code).collect(),
        n_stale_pruned: trace.stale_pruned.len(),
        n_items: trace.items_returned,
        backend_failed: trace
            .stages
            .iter()
            .any(|stage| stage.stage == "backend_fetch" && !stage.hit),
        degradation_reason: trace.degradation_reason.clone(),
        ownership,
    }
}

/// The signals of the feedback given on one trace.
pub(crate) fn signals_of(
    feedback: &BTreeMap<String, Vec<FeedbackRow>>,
    trace_id: &str,
) -> Vec<FeedbackSignal> {
    feedback
        .get(trace_id)
        .map(|rows| rows.iter().filter_map(|row| FeedbackSignal::parse(&row.signal)).collect())
        .unwrap_or_default()
}

/// The traces and feedback a report reads.
pub(crate) struct Loaded {
    pub(crate) traces: Vec<TraceView>,
    pub(crate) feedback: BTreeMap<String, Vec<FeedbackRow>>,
    /// Stored traces that could not be decoded.
    pub(crate) n_unreadable: usize,
}

/// Reads the `recent` newest traces and the feedback given on them.
///
/// # Errors
///
/// Trace or feedback evidence is unhealthy or unreadable.
pub(crate) async fn load_traces(
    runtime: &Runtime,
    session: &Session,
    recent: usize,
) -> RuntimeResult<Loaded> {
    session.require_healthy(&[Evidence::Trace, Evidence::Feedback])?;
    let rows = session
        .state
        .recent_traces(recent)
        .await
        .map_err(|err| session.read_failed(Evidence::Trace, &err))?;
    let n_rows = rows.len();
    let traces: Vec<TraceView> =
        rows.into_iter().filter_map(|row| TraceView::new(runtime, row)).collect();
    let oldest = traces.iter().map(|trace| trace.created_at_ms).min().unwrap_or(0);
    let known: BTreeSet<&str> = traces.iter().map(|trace| trace.trace_id.as_str()).collect();
    let mut feedback: BTreeMap<String, Vec<FeedbackRow>> = BTreeMap::new();
    for row in session
        .state
        .feedback_since(oldest, MAX_RECENT * 8)
        .await
        .map_err(|err| session.read_failed(Evidence::Feedback, &err))?
    {
        if known.contains(row.trace_id.as_str()) {
            feedback.entry(row.trace_id.clone()).or_default().push(row);
        }
    }
    Ok(Loaded { n_unreadable: n_rows - traces.len(), traces, feedback })
}
