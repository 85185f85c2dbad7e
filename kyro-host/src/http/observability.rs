//! The observability plane's handlers: one trace, its feedback and diagnosis, and the proof
//! report.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};

use super::auth::{Caller, ObservabilityPlane};
use super::error::{ApiError, ApiResult};
use super::extract::SessionOf;
use crate::evidence::{proofs, traces};
use crate::runtime::Runtime;
use crate::wire::evidence::{ContextProofReport, RecentQuery};
use crate::wire::feedback::{StoredContextFeedback, TraceDiagnosis};
use crate::wire::trace::ContextTrace;

type Shared = State<Arc<Runtime>>;

/// The `?recent=N` query, with the envelope on a malformed one.
pub(crate) fn recent(
    query: Result<Query<RecentQuery>, QueryRejection>,
) -> ApiResult<Option<usize>> {
    query.map(|Query(query)| query.recent).map_err(|_| {
        ApiError::validation(format!(
            "recent must be an integer 1..{}",
            crate::evidence::MAX_RECENT
        ))
    })
}

pub(crate) async fn trace(
    Caller(principal, ..): Caller<ObservabilityPlane>,
    SessionOf(session): SessionOf,
    Path(trace_id): Path<String>,
) -> ApiResult<Json<ContextTrace>> {
    Ok(Json(traces::trace(&session, &principal, &trace_id).await?))
}

pub(crate) async fn feedback(
    Caller(principal, ..): Caller<ObservabilityPlane>,
    SessionOf(session): SessionOf,
    Path(trace_id): Path<String>,
) -> ApiResult<Json<Vec<StoredContextFeedback>>> {
    Ok(Json(traces::feedback(&session, &principal, &trace_id).await?))
}

pub(crate) async fn diagnosis(
    State(runtime): Shared,
    Caller(principal, ..): Caller<ObservabilityPlane>,
    SessionOf(session): SessionOf,
    Path(trace_id): Path<String>,
) -> ApiResult<Json<TraceDiagnosis>> {
    Ok(Json(traces::diagnosis(&runtime, &session, &principal, &trace_id).await?))
}

pub(crate) async fn proof_report(
    State(runtime): Shared,
    Caller(principal, ..): Caller<ObservabilityPlane>,
    SessionOf(session): SessionOf,
    query: Result<Query<RecentQuery>, QueryRejection>,
) -> ApiResult<Json<ContextProofReport>> {
    let recent = recent(query)?;
    Ok(Json(proofs::report(&runtime, &session, &principal, recent).await?))
}
