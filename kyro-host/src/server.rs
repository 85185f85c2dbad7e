//! The HTTP gateway: routes, planes and tokens, request ids, body limits, health and readiness,
//! and `kyro serve`'s startup and graceful shutdown.
//!
//! Every response carries `x-request-id`; every error uses the contract's envelope; no request
//! shape can produce a 5xx (bodies are parsed and validated before anything else happens).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kyro_core::limits::MAX_BODY_BYTES;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::api::{
    ApiError, ChangeEvent, DeleteDocumentRequest, InvalidationRequest, RetrieveRequest,
    UpsertDocumentRequest, parse_body,
};
use crate::config::ValidatedToken;
use crate::runtime::{Evidence, Runtime, Session};

/// Which tokens may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plane {
    /// Retrieve, change events, mutations, feedback.
    Data,
    /// Traces and proofs; admin tokens too.
    Observability,
    /// Health and operations.
    Admin,
}

/// Who is calling: the plane matched and the tenants the token may act for.
#[derive(Debug, Clone)]
pub struct Caller {
    /// `None` for every tenant.
    pub tenants: Option<std::collections::BTreeSet<String>>,
}

impl Caller {
    /// Refuses a tenant the token is not restricted to.
    ///
    /// # Errors
    ///
    /// 403 `FORBIDDEN`.
    pub fn allow(&self, tenant_id: &str) -> Result<(), ApiError> {
        match &self.tenants {
            Some(tenants) if !tenants.contains(tenant_id) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                "this token may not act for that tenant",
            )),
            _ => Ok(()),
        }
    }

    /// Whether the token may see every tenant.
    pub fn is_unrestricted(&self) -> bool {
        self.tenants.is_none()
    }
}

fn matches(tokens: &[ValidatedToken], presented: &str) -> Option<Caller> {
    // Compare against every token, in constant time each, so timing does not reveal which matched.
    let mut found = None;
    for token in tokens {
        let equal: bool = token.token.as_bytes().ct_eq(presented.as_bytes()).into();
        if equal && found.is_none() {
            found = Some(Caller { tenants: token.tenants.clone() });
        }
    }
    found
}

/// Authenticates a request for `plane`.
///
/// # Errors
///
/// 401 without a valid token of any plane; 403 with a token of another plane.
pub fn authenticate(
    runtime: &Runtime,
    headers: &HeaderMap,
    plane: Plane,
) -> Result<Caller, ApiError> {
    let presented = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "missing bearer token")
        })?;
    let config = &runtime.config;
    let allowed = match plane {
        Plane::Data => matches(&config.data_tokens, presented),
        Plane::Observability => matches(&config.observability_tokens, presented)
            .or_else(|| matches(&config.admin_tokens, presented)),
        Plane::Admin => matches(&config.admin_tokens, presented),
    };
    if let Some(caller) = allowed {
        return Ok(caller);
    }
    let any_plane = matches(&config.data_tokens, presented)
        .or_else(|| matches(&config.observability_tokens, presented))
        .or_else(|| matches(&config.admin_tokens, presented));
    Err(match any_plane {
        Some(_) => ApiError::new(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "this token is not valid for this route's plane",
        ),
        None => ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "invalid bearer token"),
    })
}

type Shared = State<Arc<Runtime>>;

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let text = value
        .to_str()
        .map_err(|_| ApiError::validation("Idempotency-Key must be printable ASCII"))?;
    if text.is_empty() || text.len() > 512 || !text.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(ApiError::validation(
            "Idempotency-Key must be 1..512 printable non-space ASCII characters",
        ));
    }
    Ok(Some(text.to_owned()))
}

/// The session a request names with `kyro-shadow-session-id`, else the live one.
///
/// # Errors
///
/// 400 for a malformed id, 404 for an unknown or expired session.
pub fn session_of(runtime: &Runtime, headers: &HeaderMap) -> Result<Arc<Session>, ApiError> {
    let Some(value) = headers.get("kyro-shadow-session-id") else {
        return runtime.session(None);
    };
    let id = value.to_str().ok().filter(|id| {
        (1..=96).contains(&id.len())
            && id.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
    });
    let id = id.ok_or_else(|| {
        ApiError::validation("kyro-shadow-session-id must be 1..96 characters of [A-Za-z0-9_-]")
    })?;
    runtime.session(Some(id))
}

/// A request body as text, for the replay capture: the bytes already parsed as JSON, which
/// only accepts UTF-8.
fn body_text(body: &Bytes) -> String {
    String::from_utf8_lossy(body).into_owned()
}

async fn retrieve(
    State(runtime): Shared,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = authenticate(&runtime, &headers, Plane::Data)?;
    idempotency_key(&headers)?;
    let request: RetrieveRequest = parse_body(&body)?;
    caller.allow(&request.scope.tenant_id)?;
    let session = session_of(&runtime, &headers)?;
    let packet = runtime.retrieve(&session, request, Some(body_text(&body))).await?;
    Ok(axum::Json(packet).into_response())
}

async fn change_event(
    State(runtime): Shared,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = authenticate(&runtime, &headers, Plane::Data)?;
    let value: Value = parse_body(&body)?;
    let event: ChangeEvent = serde_json::from_value(value.clone())
        .map_err(|err| ApiError::validation(format!("invalid change event: {err}")))?;
    let change = event.validate()?;
    match (&change.scope.tenant_id, &change.target) {
        (Some(tenant_id), _) | (None, kyro_core::change::ChangeTarget::Tenant { tenant_id }) => {
            caller.allow(tenant_id)?
        }
        _ if !caller.is_unrestricted() => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                "a tenant-restricted token must name the tenant in the event's scope",
            ));
        }
        _ => {}
    }
    let session = session_of(&runtime, &headers)?;
    let result =
        runtime.change_event(&session, change, event.source_event_id.clone(), &value).await?;
    Ok(axum::Json(result).into_response())
}

async fn invalidate(
    State(runtime): Shared,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = authenticate(&runtime, &headers, Plane::Data)?;
    let key = idempotency_key(&headers)?;
    let value: Value = parse_body(&body)?;
    let request: InvalidationRequest = parse_body(&body)?;
    let target = request.target.to_target()?;
    let tenant = request.tenant_id.clone().or(match &target {
        kyro_core::change::ChangeTarget::Tenant { tenant_id } => Some(tenant_id.clone()),
        _ => None,
    });
    match &tenant {
        Some(tenant_id) => caller.allow(tenant_id)?,
        None if !caller.is_unrestricted() => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                "a tenant-restricted token must name tenant_id",
            ));
        }
        None => {}
    }
    let session = session_of(&runtime, &headers)?;
    let result = runtime.invalidate(&session, target, request.tenant_id, key, &value).await?;
    Ok(axum::Json(result).into_response())
}

async fn upsert(
    State(runtime): Shared,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = authenticate(&runtime, &headers, Plane::Data)?;
    idempotency_key(&headers)?;
    let request: UpsertDocumentRequest = parse_body(&body)?;
    caller.allow(&request.scope.tenant_id)?;
    let (scope, document) = request.validate()?;
    let id = document.id().clone();
    let session = session_of(&runtime, &headers)?;
    let result = runtime.mutate(&session, scope, Some(document), id, body_text(&body)).await?;
    Ok(axum::Json(result).into_response())
}

async fn delete(
    State(runtime): Shared,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = authenticate(&runtime, &headers, Plane::Data)?;
    idempotency_key(&headers)?;
    let request: DeleteDocumentRequest = parse_body(&body)?;
    caller.allow(&request.scope.tenant_id)?;
    let (scope, id) = request.validate()?;
    let session = session_of(&runtime, &headers)?;
    let result = runtime.mutate(&session, scope, None, id, body_text(&body)).await?;
    Ok(axum::Json(result).into_response())
}

async fn get_trace(
    State(runtime): Shared,
    headers: HeaderMap,
    Path(trace_id): Path<String>,
) -> Result<Response, ApiError> {
    let caller = authenticate(&runtime, &headers, Plane::Observability)?;
    let session = session_of(&runtime, &headers)?;
    let row = trace_tenant_allowed(&session, &caller, &trace_id).await?.ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no trace with that id")
    })?;
    let trace: Value = serde_json::from_str(&row.body).map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "TRACE_EVIDENCE_UNHEALTHY",
            "stored trace is unreadable",
        )
    })?;
    Ok(axum::Json(trace).into_response())
}

#[derive(serde::Deserialize)]
struct ContextFeedback {
    trace_id: String,
    signal: String,
    #[serde(default)]
    item_ids: Option<Vec<String>>,
    #[serde(default)]
    comment: Option<String>,
}

fn stored_feedback(row: &kyro_state::FeedbackRow) -> Value {
    let item_ids: Vec<String> = serde_json::from_str(&row.item_ids).unwrap_or_default();
    let mut body = json!({
        "trace_id": row.trace_id,
        "signal": row.signal,
        "received_at": crate::api::rfc3339_ms(row.received_at_ms),
        "trace_known": row.trace_known,
    });
    if !item_ids.is_empty() {
        body["item_ids"] = json!(item_ids);
    }
    if let Some(comment) = &row.comment {
        body["comment"] = json!(comment);
    }
    body
}

fn evidence_unhealthy(code: &'static str, what: &str) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, format!("{what} cannot be read right now"))
}

async fn post_feedback(
    State(runtime): Shared,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = authenticate(&runtime, &headers, Plane::Data)?;
    let feedback: ContextFeedback = parse_body(&body)?;
    kyro_core::validate_identifier("trace_id", &feedback.trace_id, 1024)?;
    let signal =
        kyro_core::diagnosis::FeedbackSignal::parse(&feedback.signal).ok_or_else(|| {
            ApiError::validation("signal must be useful, irrelevant, stale or wrong_scope")
        })?;
    let item_ids = feedback.item_ids.unwrap_or_default();
    if item_ids.len() > 256 {
        return Err(ApiError::validation(format!(
            "item_ids has {} entries, allowed is at most 256",
            item_ids.len()
        )));
    }
    for id in &item_ids {
        kyro_core::validate_identifier("item_ids[]", id, 1024)?;
    }
    if let Some(comment) = &feedback.comment
        && comment.len() > 8192
    {
        return Err(ApiError::validation(format!(
            "comment is {} bytes, over the limit of 8192",
            comment.len()
        )));
    }
    let session = session_of(&runtime, &headers)?;
    let trace = session.state.get_trace(&feedback.trace_id).await.map_err(|err| {
        tracing::error!(error = %err, "trace read failed");
        session.mark(&[Evidence::Trace], false);
        evidence_unhealthy("FEEDBACK_EVIDENCE_UNHEALTHY", "traces")
    })?;
    match &trace {
        Some(trace) => caller.allow(&trace.tenant_id)?,
        None if !caller.is_unrestricted() => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                "a tenant-restricted token can only give feedback on its tenant's traces",
            ));
        }
        None => {}
    }
    let row = kyro_state::FeedbackRow {
        trace_id: feedback.trace_id,
        tenant_id: trace.as_ref().map(|trace| trace.tenant_id.clone()),
        signal: signal.as_str().to_owned(),
        item_ids: serde_json::to_string(&item_ids).unwrap_or_else(|_| "[]".to_owned()),
        comment: feedback.comment,
        received_at_ms: crate::runtime::now_ms(),
        trace_known: trace.is_some(),
    };
    session.state.put_feedback(&row).await.map_err(|err| {
        tracing::error!(error = %err, "feedback persistence failed");
        session.mark(&[Evidence::Feedback], false);
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "FEEDBACK_PERSISTENCE_FAILED",
            "the feedback could not be stored",
        )
    })?;
    session.mark(&[Evidence::Feedback], true);
    Ok(axum::Json(stored_feedback(&row)).into_response())
}

/// Loads a trace's tenant for an observability read, refusing other tenants.
async fn trace_tenant_allowed(
    session: &Session,
    caller: &Caller,
    trace_id: &str,
) -> Result<Option<kyro_state::TraceRow>, ApiError> {
    kyro_core::validate_identifier("trace_id", trace_id, 1024)?;
    let row = session.state.get_trace(trace_id).await.map_err(|err| {
        tracing::error!(error = %err, "trace read failed");
        session.mark(&[Evidence::Trace], false);
        evidence_unhealthy("TRACE_EVIDENCE_UNHEALTHY", "traces")
    })?;
    match &row {
        Some(row) => caller.allow(&row.tenant_id)?,
        None if !caller.is_unrestricted() => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                "a tenant-restricted token can only read its tenant's traces",
            ));
        }
        None => {}
    }
    Ok(row)
}

async fn get_feedback(
    State(runtime): Shared,
    headers: HeaderMap,
    Path(trace_id): Path<String>,
) -> Result<Response, ApiError> {
    let caller = authenticate(&runtime, &headers, Plane::Observability)?;
    let session = session_of(&runtime, &headers)?;
    session.require_healthy(&[Evidence::Feedback])?;
    trace_tenant_allowed(&session, &caller, &trace_id).await?;
    let rows = session.state.feedback_for(&trace_id).await.map_err(|err| {
        tracing::error!(error = %err, "feedback read failed");
        session.mark(&[Evidence::Feedback], false);
        evidence_unhealthy("FEEDBACK_EVIDENCE_UNHEALTHY", "feedback")
    })?;
    Ok(axum::Json(rows.iter().map(stored_feedback).collect::<Vec<_>>()).into_response())
}

async fn get_diagnosis(
    State(runtime): Shared,
    headers: HeaderMap,
    Path(trace_id): Path<String>,
) -> Result<Response, ApiError> {
    let caller = authenticate(&runtime, &headers, Plane::Observability)?;
    let session = session_of(&runtime, &headers)?;
    session.require_healthy(&[Evidence::Trace, Evidence::Feedback])?;
    let row = trace_tenant_allowed(&session, &caller, &trace_id).await?.ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no trace with that id")
    })?;
    let trace: Value = serde_json::from_str(&row.body).map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "TRACE_EVIDENCE_UNHEALTHY",
            "stored trace is unreadable",
        )
    })?;
    let feedback = session.state.feedback_for(&trace_id).await.map_err(|err| {
        tracing::error!(error = %err, "feedback read failed");
        evidence_unhealthy("FEEDBACK_EVIDENCE_UNHEALTHY", "feedback")
    })?;
    let signals: Vec<kyro_core::diagnosis::FeedbackSignal> = feedback
        .iter()
        .filter_map(|row| kyro_core::diagnosis::FeedbackSignal::parse(&row.signal))
        .collect();
    let facts = crate::evidence::trace_facts(&runtime, &trace);
    let diagnosis = kyro_core::diagnosis::diagnose(&facts, &signals);
    let mut body = json!({
        "trace_id": trace_id,
        "kind": diagnosis.kind,
        "summary": diagnosis.summary,
        "recommended_actions": diagnosis.recommended_actions,
        "evidence": diagnosis.evidence,
    });
    if !signals.is_empty() {
        body["feedback_signals"] =
            json!(signals.iter().map(|signal| signal.as_str()).collect::<Vec<_>>());
    }
    Ok(axum::Json(body).into_response())
}

/// The readiness answer: ready only when every configured store serves and the ledger answers.
pub async fn readiness(runtime: &Runtime) -> (bool, Value) {
    let ledger_ok = runtime.live.state.ping().await.is_ok()
        && !runtime.live.is_unhealthy(Evidence::PlannerState);
    let refused: Vec<Value> = runtime
        .refused
        .iter()
        .map(|store| json!({ "store": store.id, "reason": store.reason }))
        .collect();
    let ready = ledger_ok && refused.is_empty();
    let body = json!({
        "ready": ready,
        "ledger_healthy": ledger_ok,
        "stores": runtime.stores.iter().map(|store| json!({
            "id": store.config.id,
            "certified": true,
            "profile": store.report.profile,
            "ownership": store.config.ownership.as_str(),
        })).collect::<Vec<_>>(),
        "refused_stores": refused,
    });
    (ready, body)
}

async fn readyz(State(runtime): Shared) -> Response {
    let (ready, body) = readiness(&runtime).await;
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(body)).into_response()
}

async fn healthz() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

async fn health_context(State(runtime): Shared, headers: HeaderMap) -> Result<Response, ApiError> {
    authenticate(&runtime, &headers, Plane::Admin)?;
    let (ready, _) = readiness(&runtime).await;
    let live = &runtime.live;
    let generation = live.state.current_generation().await.ok();
    if generation.is_none() {
        live.mark(&[Evidence::PlannerState], false);
    }
    let counts = live.state.evidence_counts().await.ok();
    let ledger_ok = generation.is_some() && !live.is_unhealthy(Evidence::PlannerState);
    let store = runtime.stores.first();
    let mut connector_health = "unavailable".to_owned();
    if let Some(store) = store {
        let connector = Arc::clone(&store.connector);
        let health = tokio::task::spawn_blocking(move || {
            kyro_connector_sdk::Connector::health(connector.as_ref())
        })
        .await;
        connector_health = match health {
            Ok(Ok(health)) => health.status.as_str().to_owned(),
            _ => "unhealthy".to_owned(),
        };
    }
    let status = if ready && ledger_ok && connector_health == "healthy" {
        "healthy"
    } else if ledger_ok && store.is_some() {
        "degraded"
    } else {
        "unhealthy"
    };
    let evidence_failures = live.failures();
    let healthy = |kind: Evidence| generation.is_some() && !live.is_unhealthy(kind);
    let status =
        if evidence_failures.is_empty() || status == "unhealthy" { status } else { "degraded" };
    let config = &runtime.config;
    let hours = |duration: std::time::Duration| duration.as_secs() / 3600;
    let body = json!({
        "status": status,
        "connector": store.map(|store| store.config.id.clone()),
        "connector_health": connector_health,
        "freshness_generation": generation.unwrap_or(0),
        "trace_evidence_healthy": healthy(Evidence::Trace),
        "feedback_evidence_healthy": healthy(Evidence::Feedback),
        "capture_evidence_healthy": healthy(Evidence::Capture),
        "planner_state_healthy": ledger_ok,
        "connector_capabilities": store.map(|store| json!({
            "supports_write_through": store.allows_write_through(),
            "scoped_upsert": store.manifest.supports(kyro_connector_sdk::Operation::Upsert),
            "scoped_delete": store.manifest.supports(kyro_connector_sdk::Operation::Delete),
            "native_watermarks": store.manifest.watermark_kind == kyro_connector_sdk::WatermarkKind::PerScopeNative,
        })),
        "connector_certification": store.map(|store| json!({
            "ownership": store.config.ownership.as_str(),
            "profile": store.report.profile,
            "verdict": store.report.verdict.as_str(),
            "suite_version": store.report.suite_version,
            "plugin_sha256": store.report.plugin.sha256,
        })),
        "refused_stores": runtime.refused.iter().map(|store| json!({ "store": store.id, "reason": store.reason })).collect::<Vec<_>>(),
        "retentions": {
            "trace_retention_hours": hours(config.trace_retention),
            "feedback_retention_hours": hours(config.feedback_retention),
            "capture_retention_hours": hours(config.capture_retention),
            "capture_max_steps": config.capture_max_steps,
            "capture_enabled": live.capture,
            "shadow_session_ttl_secs": config.shadow_session_ttl.as_secs(),
            "stored_traces": counts.map(|counts| counts.traces),
            "stored_feedback": counts.map(|counts| counts.feedback),
            "stored_capture_steps": counts.map(|counts| counts.capture_steps),
        },
        "shadow_sessions": runtime.shadows.lock().map(|shadows| shadows.len()).unwrap_or(0),
        "evidence_failures": evidence_failures,
    });
    let code = if status == "unhealthy" { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    Ok((code, axum::Json(body)).into_response())
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route")
}

async fn request_id(request: Request, next: Next) -> Response {
    let incoming = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|value| {
            !value.is_empty()
                && value.len() <= 128
                && value.bytes().all(|byte| byte.is_ascii_graphic())
        })
        .map(str::to_owned);
    let id = incoming.unwrap_or_else(|| format!("req_{}", uuid::Uuid::new_v4().simple()));
    let mut response = next.run(request).await;
    // Body-limit rejections come from axum itself; give them the contract's envelope.
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response = ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "VALIDATION_FAILED",
            format!("request body is over the limit of {MAX_BODY_BYTES} bytes"),
        )
        .into_response();
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// The router over a runtime.
pub fn router(runtime: Arc<Runtime>) -> Router {
    Router::new()
        .route("/v1/context/retrieve", post(retrieve))
        .route("/v1/context/invalidate", post(invalidate))
        .route("/v1/events/change", post(change_event))
        .route("/v1/documents/upsert", post(upsert))
        .route("/v1/documents/delete", post(delete))
        .route("/v1/traces/{trace_id}", get(get_trace))
        .route("/v1/traces/{trace_id}/diagnosis", get(get_diagnosis))
        .route("/v1/context/feedback", post(post_feedback))
        .route("/v1/context/feedback/{trace_id}", get(get_feedback))
        .route("/v1/health/context", get(health_context))
        .route("/v1/proofs/context", get(crate::evidence::proof_context))
        .route("/v1/proofs/bundle", post(crate::evidence::proof_bundle))
        .route("/v1/root-cause/report", post(crate::evidence::root_cause))
        .route("/v1/replay/capture", get(crate::evidence::replay_capture))
        .route("/v1/replay/diff", post(crate::evidence::replay_diff))
        .route("/v1/replay/counterfactual", post(crate::evidence::replay_counterfactual))
        .route("/v1/replay/shadow-sessions", post(crate::evidence::shadow_session))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(request_id))
        .with_state(runtime)
}
