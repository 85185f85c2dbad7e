//! The data plane's handlers: authenticate, extract, call the runtime, answer JSON.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::Value;

use super::auth::{Caller, DataPlane};
use super::error::ApiResult;
use super::extract::{IdempotencyKey, JsonBody, SessionOf};
use crate::runtime::Runtime;
use crate::runtime::feedback::record_feedback;
use crate::runtime::mutations::Mutation;
use crate::wire::change::{
    ChangeEvent, ChangeEventResult, DocumentMutationResult, InvalidationRequest,
};
use crate::wire::feedback::{ContextFeedback, StoredContextFeedback};
use crate::wire::packet::ContextPacket;
use crate::wire::request::{DeleteDocumentRequest, RetrieveRequest, UpsertDocumentRequest};

type Shared = State<Arc<Runtime>>;

pub(crate) async fn retrieve(
    State(runtime): Shared,
    Caller(principal, ..): Caller<DataPlane>,
    _: IdempotencyKey,
    SessionOf(session): SessionOf,
    body: JsonBody<RetrieveRequest>,
) -> ApiResult<Json<ContextPacket>> {
    let raw = body.text();
    Ok(Json(runtime.retrieve(&session, &principal, body.value, Some(raw)).await?))
}

pub(crate) async fn change_event(
    State(runtime): Shared,
    Caller(principal, ..): Caller<DataPlane>,
    SessionOf(session): SessionOf,
    body: JsonBody<Value>,
) -> ApiResult<Json<ChangeEventResult>> {
    let event: ChangeEvent = serde_json::from_value(body.value.clone()).map_err(|err| {
        super::error::ApiError::validation(format!("invalid change event: {err}"))
    })?;
    let change = event.validate()?;
    Ok(Json(runtime.change_event(&session, &principal, change, &body.value).await?))
}

pub(crate) async fn invalidate(
    State(runtime): Shared,
    Caller(principal, ..): Caller<DataPlane>,
    IdempotencyKey(key): IdempotencyKey,
    SessionOf(session): SessionOf,
    body: JsonBody<Value>,
) -> ApiResult<Json<ChangeEventResult>> {
    let request: InvalidationRequest =
        serde_json::from_value(body.value.clone()).map_err(|err| {
            super::error::ApiError::validation(format!("invalid request body: {err}"))
        })?;
    let invalidation = request.validate()?;
    Ok(Json(runtime.invalidate(&session, &principal, invalidation, key, &body.value).await?))
}

pub(crate) async fn upsert(
    State(runtime): Shared,
    Caller(principal, ..): Caller<DataPlane>,
    _: IdempotencyKey,
    SessionOf(session): SessionOf,
    body: JsonBody<UpsertDocumentRequest>,
) -> ApiResult<Json<DocumentMutationResult>> {
    let (scope, document) = body.value.validate()?;
    let id = document.id().clone();
    let mutation = Mutation { scope, id, document: Some(document), raw_body: body.text() };
    Ok(Json(runtime.mutate(&session, &principal, mutation).await?))
}

pub(crate) async fn delete(
    State(runtime): Shared,
    Caller(principal, ..): Caller<DataPlane>,
    _: IdempotencyKey,
    SessionOf(session): SessionOf,
    body: JsonBody<DeleteDocumentRequest>,
) -> ApiResult<Json<DocumentMutationResult>> {
    let (scope, id) = body.value.validate()?;
    let mutation = Mutation { scope, id, document: None, raw_body: body.text() };
    Ok(Json(runtime.mutate(&session, &principal, mutation).await?))
}

pub(crate) async fn feedback(
    Caller(principal, ..): Caller<DataPlane>,
    SessionOf(session): SessionOf,
    body: JsonBody<ContextFeedback>,
) -> ApiResult<Json<StoredContextFeedback>> {
    Ok(Json(record_feedback(&session, &principal, body.value).await?))
}
