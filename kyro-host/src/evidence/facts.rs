//! Stored traces read back as typed values, and the diagnosis facts derived from them.

use std::collections::{BTreeMap, BTreeSet};

use kyro_core::diagnosis::{FeedbackSignal, TraceFacts};

use super::MAX_RECENT;
use crate::runtime::Runtime;
use crate::runtime::error::RuntimeResult;
use crate::runtime::evidence::Evidence;
use crate::runtime::session::Session;
use crate::wire::trace::ContextTrace;
use kyro_state::{FeedbackRow, TraceRow};

/// One stored trace, read back.
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

    /// Whether the trace is an incident: not complete, pruned, downgraded, or reported stale
    /// or from the wrong scope.
    pub(crate) fn is_incident(&self, signals: &[FeedbackSignal]) -> bool {
        self.facts.status != kyro_core::planner::PacketStatus::Complete
            || self.facts.n_stale_pruned > 0
            || self.facts.freshness_mode != self.facts.served_freshness_mode
            || signals
                .iter()
                .any(|signal| matches!(signal, FeedbackSignal::Stale | FeedbackSignal::WrongScope))
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
