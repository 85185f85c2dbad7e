//! The HTTP layer: the router, authentication and sessions as extractors, the request id, and
//! the one mapping from runtime errors to statuses and contract codes (`error`).
//!
//! Handlers are thin: extract (plane and token first, then the session, then the body), call
//! the runtime or evidence layer, answer JSON. No request shape can produce a 5xx: bodies are
//! parsed and validated before anything else happens.

pub(crate) mod admin;
pub(crate) mod auth;
pub(crate) mod data;
pub(crate) mod error;
pub(crate) mod extract;
pub(crate) mod observability;
pub(crate) mod process;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use kyro_core::limits::MAX_BODY_BYTES;

use crate::runtime::Runtime;
use crate::wire::routes;

/// The router over a runtime.
pub(crate) fn router(runtime: Arc<Runtime>) -> Router {
    Router::new()
        .route(routes::RETRIEVE, post(data::retrieve))
        .route(routes::INVALIDATE, post(data::invalidate))
        .route(routes::CHANGE_EVENT, post(data::change_event))
        .route(routes::UPSERT, post(data::upsert))
        .route(routes::DELETE, post(data::delete))
        .route(routes::FEEDBACK, post(data::feedback))
        .route(routes::FEEDBACK_OF_TRACE, get(observability::feedback))
        .route(routes::TRACE, get(observability::trace))
        .route(routes::TRACE_DIAGNOSIS, get(observability::diagnosis))
        .route(routes::PROOF_REPORT, get(observability::proof_report))
        .route(routes::HEALTH, get(admin::health))
        .route(routes::RUNTIME_HEALTH, get(admin::runtime_health))
        .route(routes::RUNTIME_EVIDENCE, get(admin::runtime_evidence))
        .route(routes::PROOF_BUNDLE, post(admin::proof_bundle))
        .route(routes::ROOT_CAUSE, post(admin::root_cause))
        .route(routes::CAPTURE, get(admin::capture))
        .route(routes::REPLAY_DIFF, post(admin::diff))
        .route(routes::REPLAY_COUNTERFACTUAL, post(admin::counterfactual))
        .route(routes::SHADOW_SESSIONS, post(admin::shadow_session))
        .route(routes::HEALTHZ, get(process::healthz))
        .route(routes::READYZ, get(process::readyz))
        .fallback(process::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(process::request_id))
        .with_state(runtime)
}
