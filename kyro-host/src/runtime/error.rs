//! The runtime's structured error: what went wrong, in the contract's terms, without any HTTP.
//! The HTTP layer maps each kind to one status and one contract code, in one place.
//!
//! Messages are public-safe by construction: they are fixed text, or quote only what the caller
//! itself sent. What a store, plugin or database said never becomes a message; it goes to the
//! log where it happened.

use kyro_core::ValidationError;

use super::evidence::Evidence;
use crate::wire::error::InvalidRequest;

/// What kind of refusal or failure an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RuntimeErrorKind {
    /// The request breaks the contract's rules.
    Invalid,
    /// The caller's token may not do this.
    Forbidden,
    /// Nothing with that id (trace, shadow session, route, store for a namespace).
    NotFound,
    /// The request conflicts with what was already acknowledged (an idempotency key reused
    /// with another body, a store that does not take writes, capture turned off).
    Conflict,
    /// No certified store serves the namespace.
    StoreNotCertified,
    /// The store refused the request's shape (its caps or its validation).
    StoreRejected,
    /// The store does not support the operation.
    Unsupported,
    /// The store failed, timed out or is quarantined.
    ConnectorUnavailable,
    /// The store acknowledged a different tenant, namespace or id than it was asked to write.
    AckMismatch,
    /// The host or the store is at its bound; retry later.
    Overloaded,
    /// Reports built from this evidence are refused until its writes succeed again.
    EvidenceUnhealthy(Evidence),
    /// This evidence could not be made durable, so the answer is not given.
    PersistenceFailed(Evidence),
}

/// A runtime error: its kind, a public-safe message, and whether a side effect was committed
/// before it happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct RuntimeError {
    pub(crate) kind: RuntimeErrorKind,
    pub(crate) message: String,
    pub(crate) acknowledged: bool,
}

impl RuntimeError {
    pub(crate) fn new(kind: RuntimeErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), acknowledged: false }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(RuntimeErrorKind::Invalid, message)
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(RuntimeErrorKind::Forbidden, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(RuntimeErrorKind::NotFound, message)
    }

    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self::new(RuntimeErrorKind::Conflict, message)
    }

    pub(crate) fn evidence_unhealthy(evidence: Evidence) -> Self {
        Self::new(
            RuntimeErrorKind::EvidenceUnhealthy(evidence),
            "evidence persistence failed recently; reports are refused until it recovers",
        )
    }

    /// Marks that a side effect was committed before the failure.
    #[must_use]
    pub(crate) fn acknowledged(mut self) -> Self {
        self.acknowledged = true;
        self
    }
}

impl From<InvalidRequest> for RuntimeError {
    fn from(err: InvalidRequest) -> Self {
        Self::invalid(err.0)
    }
}

impl From<ValidationError> for RuntimeError {
    fn from(err: ValidationError) -> Self {
        Self::invalid(err.to_string())
    }
}

/// A runtime result.
pub(crate) type RuntimeResult<T> = Result<T, RuntimeError>;
