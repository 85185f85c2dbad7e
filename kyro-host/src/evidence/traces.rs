//! The observability reads of one trace: the trace itself, the feedback on it, and its
//! diagnosis.

use kyro_core::diagnosis::{FeedbackSignal, diagnose};

use super::facts::trace_facts;
use crate::runtime::Runtime;
use crate::runtime::error::{RuntimeError, RuntimeResult};
use crate::runtime::evidence::Evidence;
use crate::runtime::feedback::{stored_feedback, trace_for};
use crate::runtime::principal::Principal;
use crate::runtime::session::Session;
use crate::wire::feedback::{StoredContextFeedback, TraceDiagnosis};
use crate::wire::trace::ContextTrace;

/// `GET /v1/traces/{trace_id}`.
///
/// # Errors
///
/// No such trace, another tenant's, or unreadable evidence.
pub(crate) async fn trace(
    session: &Session,
    principal: &Principal,
    trace_id: &str,
) -> RuntimeResult<ContextTrace> {
    let row = trace_for(session, principal, trace_id)
        .await?
        .ok_or_else(|| RuntimeError::not_found("no trace with that id"))?;
    serde_json::from_str(&row.body).map_err(|err| {
        session.read_failed(Evidence::Trace, &format!("stored trace is unreadable: {err}"))
    })
}

/// `GET /v1/context/feedback/{trace_id}`.
///
/// # Errors
///
/// Another tenant's trace, or unreadable evidence.
pub(crate) async fn feedback(
    session: &Session,
    principal: &Principal,
    trace_id: &str,
) -> RuntimeResult<Vec<StoredContextFeedback>> {
    session.require_healthy(&[Evidence::Feedback])?;
    trace_for(session, principal, trace_id).await?;
    let rows = session
        .state
        .feedback_for(trace_id)
        .await
        .map_err(|err| session.read_failed(Evidence::Feedback, &err))?;
    Ok(rows.iter().map(stored_feedback).collect())
}

/// `GET /v1/traces/{trace_id}/diagnosis`.
///
/// # Errors
///
/// No such trace, another tenant's, or unreadable evidence.
pub(crate) async fn diagnosis(
    runtime: &Runtime,
    session: &Session,
    principal: &Principal,
    trace_id: &str,
) -> RuntimeResult<TraceDiagnosis> {
    session.require_healthy(&[Evidence::Trace, Evidence::Feedback])?;
    let trace = trace(session, principal, trace_id).await?;
    let rows = session
        .state
        .feedback_for(trace_id)
        .await
        .map_err(|err| session.read_failed(Evidence::Feedback, &err))?;
    let signals: Vec<FeedbackSignal> =
        rows.iter().filter_map(|row| FeedbackSignal::parse(&row.signal)).collect();
    let diagnosis = diagnose(&trace_facts(runtime, &trace), &signals);
    Ok(TraceDiagnosis {
        trace_id: trace_id.to_owned(),
        kind: diagnosis.kind,
        summary: diagnosis.summary,
        recommended_actions: diagnosis.recommended_actions,
        evidence: diagnosis.evidence,
        feedback_signals: signals,
    })
}
