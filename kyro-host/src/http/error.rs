//! The one mapping from runtime errors to HTTP statuses and the contract's codes, and the error
//! envelope every non-2xx answer carries (with the request id, added on the way out).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::runtime::error::{RuntimeError, RuntimeErrorKind};
use crate::runtime::evidence::Evidence;
use crate::wire::error::{ErrorBody, InvalidRequest};

/// How long an overloaded caller should wait before retrying, in seconds.
const RETRY_AFTER_SECS: u32 = 1;

/// An error answer: status, contract code, public-safe message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) acknowledged: bool,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), acknowledged: false }
    }

    /// 400 `VALIDATION_FAILED`.
    pub(crate) fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "VALIDATION_FAILED", message)
    }

    /// Renders the envelope, with the request id when known.
    pub(crate) fn render(&self, request_id: Option<&str>) -> Response {
        let body = ErrorBody {
            error: &self.message,
            code: self.code,
            acknowledged: self.acknowledged.then_some(true),
            request_id,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.code == "GATEWAY_OVERLOADED" || self.status == StatusCode::TOO_MANY_REQUESTS {
            response.headers_mut().insert("retry-after", HeaderValue::from(RETRY_AFTER_SECS));
        }
        response
    }
}

fn unhealthy_code(evidence: Evidence) -> &'static str {
    match evidence {
        Evidence::Trace => "TRACE_EVIDENCE_UNHEALTHY",
        Evidence::Feedback => "FEEDBACK_EVIDENCE_UNHEALTHY",
        Evidence::Capture => "REPLAY_CAPTURE_EVIDENCE_UNHEALTHY",
        Evidence::PlannerState => "PLANNER_STATE_EVIDENCE_UNHEALTHY",
    }
}

fn persistence_code(evidence: Evidence) -> &'static str {
    match evidence {
        Evidence::Trace => "TRACE_PERSISTENCE_FAILED",
        Evidence::Feedback => "FEEDBACK_PERSISTENCE_FAILED",
        Evidence::Capture => "CAPTURE_PERSISTENCE_FAILED",
        Evidence::PlannerState => "PLANNER_STATE_PERSISTENCE_FAILED",
    }
}

impl From<RuntimeError> for ApiError {
    fn from(err: RuntimeError) -> Self {
        use RuntimeErrorKind as Kind;
        let (status, code) = match err.kind {
            Kind::Invalid | Kind::StoreRejected => (StatusCode::BAD_REQUEST, "VALIDATION_FAILED"),
            Kind::Forbidden => (StatusCode::FORBIDDEN, "FORBIDDEN"),
            Kind::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            Kind::Conflict => (StatusCode::CONFLICT, "VALIDATION_FAILED"),
            Kind::StoreNotCertified => (StatusCode::SERVICE_UNAVAILABLE, "STORE_NOT_CERTIFIED"),
            Kind::Unsupported => (StatusCode::NOT_IMPLEMENTED, "CONNECTOR_UNAVAILABLE"),
            Kind::ConnectorUnavailable => {
                (StatusCode::SERVICE_UNAVAILABLE, "CONNECTOR_UNAVAILABLE")
            }
            Kind::AckMismatch => (StatusCode::BAD_GATEWAY, "CONNECTOR_UNAVAILABLE"),
            Kind::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "GATEWAY_OVERLOADED"),
            Kind::EvidenceUnhealthy(evidence) => {
                (StatusCode::SERVICE_UNAVAILABLE, unhealthy_code(evidence))
            }
            Kind::PersistenceFailed(evidence) => {
                (StatusCode::SERVICE_UNAVAILABLE, persistence_code(evidence))
            }
        };
        Self { status, code, message: err.message, acknowledged: err.acknowledged }
    }
}

impl From<InvalidRequest> for ApiError {
    fn from(err: InvalidRequest) -> Self {
        Self::validation(err.0)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.render(None);
        // The request-id layer re-renders the envelope with the request id.
        response.extensions_mut().insert(self);
        response
    }
}

/// What a handler answers.
pub(crate) type ApiResult<T> = Result<T, ApiError>;
