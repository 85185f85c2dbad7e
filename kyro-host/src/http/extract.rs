//! Extractors for what handlers share: the JSON body (parsed once, with the contract's
//! envelope on any failure, and kept as sent for the capture), the session a request names, and
//! the `Idempotency-Key` header.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::runtime::Runtime;
use crate::runtime::session::Session;

/// The longest `Idempotency-Key` the contract allows.
const MAX_IDEMPOTENCY_KEY_BYTES: usize = 512;
/// The longest shadow-session id the contract allows.
const MAX_SHADOW_SESSION_ID_BYTES: usize = 96;

/// A JSON request body of type `T`, and the body as sent.
pub(crate) struct JsonBody<T> {
    pub(crate) value: T,
    pub(crate) raw: Bytes,
}

impl<T> JsonBody<T> {
    /// The body as sent, as text (it parsed as JSON, which only accepts UTF-8).
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

/// Parses a JSON body into `T`: every failure is a 400 with the contract's envelope, and a body
/// that is not a JSON object is refused whatever `T` would accept.
///
/// # Errors
///
/// Not JSON, not an object, or not the expected shape.
pub(crate) fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = bytes.iter().find(|byte| !byte.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(ApiError::validation("request body must be a JSON object"));
    }
    serde_json::from_slice(bytes)
        .map_err(|err| ApiError::validation(format!("invalid request body: {err}")))
}

impl<T: DeserializeOwned> FromRequest<Arc<Runtime>> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, runtime: &Arc<Runtime>) -> Result<Self, ApiError> {
        let raw = Bytes::from_request(request, runtime).await.map_err(|rejection| {
            ApiError::new(rejection.status(), "VALIDATION_FAILED", rejection.body_text())
        })?;
        let value = parse_body(&raw)?;
        Ok(Self { value, raw })
    }
}

/// The session a request names with `kyro-shadow-session-id`, else the live one.
pub(crate) struct SessionOf(pub(crate) Arc<Session>);

impl FromRequestParts<Arc<Runtime>> for SessionOf {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        runtime: &Arc<Runtime>,
    ) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get("kyro-shadow-session-id") else {
            return Ok(Self(runtime.session(None)?));
        };
        let id = value.to_str().ok().filter(|id| {
            (1..=MAX_SHADOW_SESSION_ID_BYTES).contains(&id.len())
                && id
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
        });
        let id = id.ok_or_else(|| {
            ApiError::validation("kyro-shadow-session-id must be 1..96 characters of [A-Za-z0-9_-]")
        })?;
        Ok(Self(runtime.session(Some(id))?))
    }
}

/// The `Idempotency-Key` header, checked.
pub(crate) struct IdempotencyKey(pub(crate) Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get("idempotency-key") else { return Ok(Self(None)) };
        let text = value
            .to_str()
            .ok()
            .filter(|text| {
                (1..=MAX_IDEMPOTENCY_KEY_BYTES).contains(&text.len())
                    && text.bytes().all(|byte| byte.is_ascii_graphic())
            })
            .ok_or_else(|| {
                ApiError::validation(
                    "Idempotency-Key must be 1..512 printable non-space ASCII characters",
                )
            })?;
        Ok(Self(Some(text.to_owned())))
    }
}
