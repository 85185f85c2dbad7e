//! The observability-admin plane's handlers: health, proof bundles, root cause, the capture,
//! replay diff, counterfactual replay and shadow sessions.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::auth::{AdminPlane, Caller};
use super::error::{ApiError, ApiResult};
use super::extract::{JsonBody, SessionOf};
use super::observability::recent;
use crate::evidence::{bundle, capture, proofs, recent_param, replay, root_cause};
use crate::runtime::Runtime;
use crate::wire::capture::CaptureExport;
use crate::wire::evidence::{
    BundleRequest, EvidenceListing, ProofBundle, RecentQuery, RootCauseReport, RootCauseRequest,
};
use crate::wire::health::RuntimeHealth;
use crate::wire::replay::{
    CounterfactualRequest, CounterfactualResult, DiffRequest, ReplayDiffResult,
    ShadowSessionCreated, ShadowSessionRequest,
};

type Shared = State<Arc<Runtime>>;

pub(crate) async fn health(
    State(runtime): Shared,
    Caller(principal, ..): Caller<AdminPlane>,
) -> ApiResult<Response> {
    principal.require_unrestricted("read the runtime's health, which spans tenants")?;
    let (health, unhealthy) = runtime.context_health().await;
    let status = if unhealthy { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    Ok((status, Json(health)).into_response())
}

pub(crate) async fn runtime_health(
    State(runtime): Shared,
    Caller(principal, ..): Caller<AdminPlane>,
) -> ApiResult<Json<RuntimeHealth>> {
    principal.require_unrestricted("read the runtime's health, which spans tenants")?;
    Ok(Json(runtime.runtime_health().await))
}

pub(crate) async fn runtime_evidence(
    State(runtime): Shared,
    Caller(principal, ..): Caller<AdminPlane>,
    SessionOf(session): SessionOf,
    query: Result<Query<RecentQuery>, QueryRejection>,
) -> ApiResult<Json<EvidenceListing>> {
    let recent = recent(query)?;
    Ok(Json(proofs::listing(&runtime, &session, &principal, recent).await?))
}

pub(crate) async fn proof_bundle(
    State(runtime): Shared,
    Caller(principal, ..): Caller<AdminPlane>,
    SessionOf(session): SessionOf,
    body: JsonBody<BundleRequest>,
) -> ApiResult<Json<ProofBundle>> {
    Ok(Json(bundle::bundle(&runtime, &session, &principal, body.value).await?))
}

pub(crate) async fn root_cause(
    State(runtime): Shared,
    Caller(principal, ..): Caller<AdminPlane>,
    SessionOf(session): SessionOf,
    body: JsonBody<RootCauseRequest>,
) -> ApiResult<Json<RootCauseReport>> {
    Ok(Json(root_cause::report(&runtime, &session, &principal, body.value).await?))
}

pub(crate) async fn capture(
    Caller(principal, ..): Caller<AdminPlane>,
    SessionOf(session): SessionOf,
    query: Result<Query<RecentQuery>, QueryRejection>,
) -> ApiResult<Json<CaptureExport>> {
    let recent = recent_param(recent(query)?, 100)?;
    if !session.capture {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "VALIDATION_FAILED",
            "replay capture is turned off (capture_max_steps = 0)",
        ));
    }
    Ok(Json(capture::export(&session, &principal, recent).await?))
}

pub(crate) async fn diff(
    Caller(..): Caller<AdminPlane>,
    body: JsonBody<DiffRequest>,
) -> ApiResult<Json<ReplayDiffResult>> {
    Ok(Json(replay::replay_diff(&body.value)?))
}

pub(crate) async fn counterfactual(
    Caller(..): Caller<AdminPlane>,
    body: JsonBody<CounterfactualRequest>,
) -> ApiResult<Json<CounterfactualResult>> {
    Ok(Json(replay::counterfactual(&body.value)?))
}

pub(crate) async fn shadow_session(
    State(runtime): Shared,
    Caller(principal, ..): Caller<AdminPlane>,
    body: JsonBody<ShadowSessionRequest>,
) -> ApiResult<Json<ShadowSessionCreated>> {
    Ok(Json(replay::shadow_session(&runtime, &principal, body.value).await?))
}
