//! The unauthenticated process endpoints, the fallback, and the request-id layer that gives
//! every answer an `x-request-id` and every error envelope that id.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kyro_core::limits::MAX_BODY_BYTES;

use super::error::ApiError;
use crate::runtime::Runtime;
use crate::wire::health::{Liveness, Readiness};

/// `GET /healthz`: the process is alive.
pub(crate) async fn healthz() -> Json<Liveness> {
    Json(Liveness { status: "ok" })
}

/// `GET /readyz`: ready or not, nothing more; the detail is on the authenticated health routes.
pub(crate) async fn readyz(State(runtime): State<Arc<Runtime>>) -> Response {
    let ready = runtime.is_ready().await;
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(Readiness { ready })).into_response()
}

/// Any other route.
pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route")
}

fn request_id_of(request: &Request) -> String {
    request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|value| {
            !value.is_empty()
                && value.len() <= 128
                && value.bytes().all(|byte| byte.is_ascii_graphic())
        })
        .map_or_else(|| format!("req_{}", uuid::Uuid::new_v4().simple()), str::to_owned)
}

/// Gives every answer an `x-request-id` (the caller's, when well-formed) and every error
/// envelope the same id. A body over the limit is answered with the envelope and the connection
/// is closed, since its unread remainder cannot be reused.
pub(crate) async fn request_id(request: Request, next: Next) -> Response {
    let id = request_id_of(&request);
    let mut response = next.run(request).await;
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        let error = ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "VALIDATION_FAILED",
            format!("request body is over the limit of {MAX_BODY_BYTES} bytes"),
        );
        response = error.render(Some(&id));
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    } else if response.status() == StatusCode::METHOD_NOT_ALLOWED {
        response = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "NOT_FOUND",
            "this route does not take that method",
        )
        .render(Some(&id));
    } else if let Some(error) = response.extensions().get::<ApiError>().cloned() {
        response = error.render(Some(&id));
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}
