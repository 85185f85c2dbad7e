//! Authentication: a bearer token of the route's plane becomes the runtime's [`Principal`], as
//! an extractor per plane. Tokens are compared in constant time, each against all.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::config::ValidatedToken;
use crate::runtime::Runtime;
use crate::runtime::principal::Principal;

/// Which tokens may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plane {
    /// Retrieve, change events, mutations, feedback.
    Data,
    /// Traces and proofs; admin tokens too.
    Observability,
    /// Health, evidence bundles, replay, capture.
    Admin,
}

fn matches(tokens: &[ValidatedToken], presented: &str) -> Option<Principal> {
    // Compare against every token, in constant time each, so timing does not reveal which matched.
    let mut found = None;
    for token in tokens {
        let equal: bool = token.token.as_bytes().ct_eq(presented.as_bytes()).into();
        if equal && found.is_none() {
            found = Some(Principal::new(token.tenants.clone()));
        }
    }
    found
}

/// Authenticates a request for `plane`.
///
/// # Errors
///
/// 401 without a valid token of any plane; 403 with a token of another plane.
pub(crate) fn authenticate(
    runtime: &Runtime,
    parts: &Parts,
    plane: Plane,
) -> Result<Principal, ApiError> {
    let presented = parts
        .headers
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
    if let Some(principal) = allowed {
        return Ok(principal);
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

/// A route's plane, as a type: [`Caller`] extracts a principal for it.
pub(crate) trait PlaneKind {
    const PLANE: Plane;
}

/// The data plane.
pub(crate) struct DataPlane;
/// The observability plane (admin tokens too).
pub(crate) struct ObservabilityPlane;
/// The observability-admin plane.
pub(crate) struct AdminPlane;

impl PlaneKind for DataPlane {
    const PLANE: Plane = Plane::Data;
}

impl PlaneKind for ObservabilityPlane {
    const PLANE: Plane = Plane::Observability;
}

impl PlaneKind for AdminPlane {
    const PLANE: Plane = Plane::Admin;
}

/// An authenticated caller of plane `P`.
pub(crate) struct Caller<P>(pub(crate) Principal, pub(crate) PhantomData<P>);

impl<P: PlaneKind + Send + Sync> FromRequestParts<Arc<Runtime>> for Caller<P> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        runtime: &Arc<Runtime>,
    ) -> Result<Self, Self::Rejection> {
        authenticate(runtime, parts, P::PLANE).map(|principal| Self(principal, PhantomData))
    }
}
