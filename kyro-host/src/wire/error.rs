//! The contract's error envelope, and the validation error request types raise.

use kyro_core::ValidationError;
use serde::Serialize;

/// The body of every non-2xx answer: `{"error", "code", "acknowledged"?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ErrorBody<'a> {
    /// A public-safe message: no secrets, DSNs, tokens, SQL, store messages or internal paths.
    pub(crate) error: &'a str,
    /// The contract's code.
    pub(crate) code: &'a str,
    /// Present and true only when a side effect was committed before a later step failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) acknowledged: Option<bool>,
    /// The request id, so a caller can quote it to an operator (the envelope allows more
    /// fields).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) request_id: Option<&'a str>,
}

/// A request that breaks the contract's rules; the message names the field and the rule, and
/// quotes nothing but what the caller sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct InvalidRequest(pub(crate) String);

impl InvalidRequest {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl From<ValidationError> for InvalidRequest {
    fn from(err: ValidationError) -> Self {
        Self(err.to_string())
    }
}

/// A checked request, or why not.
pub(crate) type Checked<T> = Result<T, InvalidRequest>;
