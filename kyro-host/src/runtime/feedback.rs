//! Feedback on a trace (`POST /v1/context/feedback`), confined to the caller's tenants, and the
//! trace reads the observability routes share.

use kyro_core::limits::MAX_ID_BYTES;
use kyro_core::validate_identifier;

use super::error::{RuntimeError, RuntimeErrorKind, RuntimeResult};
use super::evidence::Evidence;
use super::now_ms;
use super::principal::Principal;
use super::session::Session;
use crate::wire::feedback::{ContextFeedback, StoredContextFeedback};
use kyro_state::{FeedbackRow, TraceRow};

/// The most item ids one feedback may name.
const MAX_FEEDBACK_ITEMS: usize = 256;
/// The most bytes a feedback comment may hold.
const MAX_COMMENT_BYTES: usize = 8192;

/// Reads a trace for a caller, refusing another tenant's: a restricted caller learns nothing
/// about a trace that is not its own, not even whether it exists.
///
/// # Errors
///
/// An invalid id, an unreadable trace store, or a tenant the caller may not see.
pub(crate) async fn trace_for(
    session: &Session,
    principal: &Principal,
    trace_id: &str,
) -> RuntimeResult<Option<TraceRow>> {
    validate_identifier("trace_id", trace_id, MAX_ID_BYTES)?;
    let row = session
        .state
        .get_trace(trace_id)
        .await
        .map_err(|err| session.read_failed(Evidence::Trace, &err))?;
    match &row {
        Some(row) => principal.confine(&row.tenant_id)?,
        None if !principal.is_unrestricted() => {
            return Err(RuntimeError::forbidden(
                "a tenant-restricted token can only read its tenant's traces",
            ));
        }
        None => {}
    }
    Ok(row)
}

/// A stored feedback row as the contract serves it.
pub(crate) fn stored_feedback(row: &FeedbackRow) -> StoredContextFeedback {
    StoredContextFeedback {
        trace_id: row.trace_id.clone(),
        signal: kyro_core::diagnosis::FeedbackSignal::parse(&row.signal)
            .unwrap_or(kyro_core::diagnosis::FeedbackSignal::Useful),
        item_ids: serde_json::from_str(&row.item_ids).unwrap_or_default(),
        comment: row.comment.clone(),
        received_at: kyro_core::time::rfc3339_millis(row.received_at_ms),
        trace_known: row.trace_known,
    }
}

/// `POST /v1/context/feedback`.
///
/// # Errors
///
/// Validation failures, a trace of another tenant, or feedback that could not be stored.
pub(crate) async fn record_feedback(
    session: &Session,
    principal: &Principal,
    feedback: ContextFeedback,
) -> RuntimeResult<StoredContextFeedback> {
    validate_identifier("trace_id", &feedback.trace_id, MAX_ID_BYTES)?;
    let item_ids = feedback.item_ids.unwrap_or_default();
    if item_ids.len() > MAX_FEEDBACK_ITEMS {
        return Err(RuntimeError::invalid(format!(
            "item_ids has {} entries, allowed is at most {MAX_FEEDBACK_ITEMS}",
            item_ids.len()
        )));
    }
    for id in &item_ids {
        validate_identifier("item_ids[]", id, MAX_ID_BYTES)?;
    }
    if let Some(comment) = &feedback.comment
        && comment.len() > MAX_COMMENT_BYTES
    {
        return Err(RuntimeError::invalid(format!(
            "comment is {} bytes, over the limit of {MAX_COMMENT_BYTES}",
            comment.len()
        )));
    }
    let trace =
        trace_for(session, principal, &feedback.trace_id).await.map_err(|err| match err.kind {
            RuntimeErrorKind::EvidenceUnhealthy(_) => {
                RuntimeError::evidence_unhealthy(Evidence::Feedback)
            }
            _ => err,
        })?;
    let row = FeedbackRow {
        trace_id: feedback.trace_id,
        tenant_id: trace.as_ref().map(|trace| trace.tenant_id.clone()),
        signal: feedback.signal.as_str().to_owned(),
        item_ids: serde_json::to_string(&item_ids).unwrap_or_else(|_| "[]".to_owned()),
        comment: feedback.comment,
        received_at_ms: now_ms(),
        trace_known: trace.is_some(),
    };
    session.state.put_feedback(&row).await.map_err(|err| {
        tracing::error!(error = %err, "feedback persistence failed");
        session.mark(&[Evidence::Feedback], false);
        RuntimeError::new(
            RuntimeErrorKind::PersistenceFailed(Evidence::Feedback),
            "the feedback could not be stored",
        )
    })?;
    session.mark(&[Evidence::Feedback], true);
    Ok(stored_feedback(&row))
}
