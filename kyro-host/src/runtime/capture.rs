//! The replay capture of serving steps: each step's request, the planner's inputs
//! ([`StepPlan`]) and what it answered, written in the same transaction as the step's trace or
//! ledger change, so a capture holds exactly the steps that took effect.

use kyro_core::planner::Invalidation;
use kyro_core::replay::{DocumentPlan, Observed, StepPlan, StepType};
use serde::{Deserialize, Serialize};

use kyro_state::{CaptureRow, CaptureStatus, ChangeInput};

/// What a step read of one scope key before it ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScopeSeen {
    pub(crate) key: String,
    pub(crate) generation: u64,
    /// When its latest change was acknowledged, in Unix milliseconds.
    pub(crate) acknowledged_at_ms: i64,
}

/// The JSON body of one capture step, as stored (versioned with the state's schema).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CaptureBody {
    /// For people.
    pub(crate) label: String,
    /// The route the step was served on.
    pub(crate) route: String,
    /// The `Idempotency-Key` the request carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) idempotency_key: Option<String>,
    /// The planner's inputs, for counterfactual replay.
    pub(crate) plan: StepPlan,
    /// What a retrieve answered beyond status and generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) observed: Option<Observed>,
    /// The trace a retrieve wrote, in the same transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) trace_id: Option<String>,
    /// How long a retrieve took to answer (its trace's `total_latency_ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) latency_ms: Option<f64>,
    /// The scope generations the step read before it ran.
    #[serde(default)]
    pub(crate) scopes_seen: Vec<(String, u64, i64)>,
}

/// The request side of a capture step.
pub(crate) struct StepRequest<'a> {
    pub(crate) step_type: StepType,
    pub(crate) tenant_id: Option<&'a str>,
    pub(crate) label: String,
    pub(crate) route: &'static str,
    /// The request body as the client sent it.
    pub(crate) body: String,
    pub(crate) idempotency_key: Option<String>,
}

/// What a retrieve answered, for its capture step.
pub(crate) struct RetrieveAnswer {
    pub(crate) observed: Observed,
    /// The trace it wrote.
    pub(crate) trace_id: String,
    /// Its trace's `total_latency_ms`.
    pub(crate) latency_ms: f64,
}

/// A retrieve's capture step, complete with what it answered.
pub(crate) fn retrieve_capture(
    step: StepRequest<'_>,
    plan: StepPlan,
    answer: RetrieveAnswer,
    seen: &[ScopeSeen],
    (generation, status): (u64, CaptureStatus),
    now_ms: i64,
) -> CaptureRow {
    capture_row(step, plan, Some(answer), seen, generation, (generation, status), now_ms)
}

fn capture_row(
    step: StepRequest<'_>,
    plan: StepPlan,
    answer: Option<RetrieveAnswer>,
    seen: &[ScopeSeen],
    pre_generation: u64,
    (generation, status): (u64, CaptureStatus),
    now_ms: i64,
) -> CaptureRow {
    let (observed, trace_id, latency_ms) = match answer {
        Some(RetrieveAnswer { observed, trace_id, latency_ms }) => {
            (Some(observed), Some(trace_id), Some(latency_ms))
        }
        None => (None, None, None),
    };
    let body = CaptureBody {
        label: step.label,
        route: step.route.to_owned(),
        idempotency_key: step.idempotency_key,
        plan,
        observed,
        trace_id,
        latency_ms,
        scopes_seen: seen
            .iter()
            .map(|scope| (scope.key.clone(), scope.generation, scope.acknowledged_at_ms))
            .collect(),
    };
    CaptureRow {
        step_type: step.step_type.as_str().to_owned(),
        tenant_id: step.tenant_id.map(str::to_owned),
        captured_at_ms: now_ms,
        pre_generation,
        generation,
        status,
        request: step.body,
        body: serde_json::to_string(&body).unwrap_or_default(),
    }
}

/// A change's capture step; the ledger fills in its generation and status.
pub(crate) fn change_capture(
    step: StepRequest<'_>,
    input: &ChangeInput,
    invalidation: Invalidation,
) -> CaptureRow {
    let plan = StepPlan::Change {
        source_event_id: input.source_event.as_ref().map(|event| event.id.clone()),
        scope_keys: input.scope_keys.iter().map(|change| change.key.clone()).collect(),
        documents: input
            .documents
            .iter()
            .map(|document| DocumentPlan {
                tenant_id: document.key.tenant_id.clone(),
                namespace: document.key.namespace.clone(),
                doc_id: document.key.doc_id.clone(),
                revision: document.revision.clone(),
                watermark: document.watermark,
                tombstone: document.tombstone,
                event_timestamp_ms: document.event_timestamp_ms,
            })
            .collect(),
        invalidation,
    };
    // The ledger decides a change's generations and status from its outcome.
    capture_row(step, plan, None, &[], 0, (0, CaptureStatus::Accepted), input.now_ms)
}
