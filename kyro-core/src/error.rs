//! Errors shared across the workspace: validation failures and connector errors classified by kind.
//!
//! Messages are written for the person who sent the value: they name the field and the rule, and
//! never echo a value that could be a secret.

use serde::{Deserialize, Serialize};

/// A value that breaks one of the contract's rules, naming the field and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// A required identifier was empty.
    #[error("{field} must not be empty")]
    Empty {
        /// The field, as named in the contract.
        field: &'static str,
    },
    /// A value was longer than its limit.
    #[error("{field} is {actual_bytes} bytes, over the limit of {max_bytes}")]
    TooLong {
        /// The field, as named in the contract.
        field: &'static str,
        /// The limit.
        max_bytes: usize,
        /// The length that was sent.
        actual_bytes: usize,
    },
    /// An identifier started or ended with white space.
    #[error("{field} must not start or end with white space")]
    SurroundingWhitespace {
        /// The field, as named in the contract.
        field: &'static str,
    },
    /// An identifier held a control character.
    #[error("{field} must not contain control characters")]
    ControlCharacter {
        /// The field, as named in the contract.
        field: &'static str,
    },
    /// A key did not match `^[A-Za-z0-9_]+$`.
    #[error("{field} must match ^[A-Za-z0-9_]+$")]
    KeyCharacters {
        /// The field, as named in the contract.
        field: &'static str,
    },
    /// A number was not finite.
    #[error("{field} must hold finite numbers only (no NaN or infinity)")]
    NonFinite {
        /// The field, as named in the contract.
        field: &'static str,
    },
    /// A count was outside its allowed range.
    #[error("{field} has {actual}, allowed is {min}..={max}")]
    Count {
        /// The field, as named in the contract.
        field: &'static str,
        /// Smallest allowed count.
        min: usize,
        /// Largest allowed count.
        max: usize,
        /// The count that was sent.
        actual: usize,
    },
    /// A rule that is not a simple limit.
    #[error("{field} {rule}")]
    Rule {
        /// The field, as named in the contract.
        field: &'static str,
        /// What the rule says, as a sentence fragment (`"needs min or max"`).
        rule: &'static str,
    },
}

/// Result alias for validation.
pub type ValidationResult<T> = Result<T, ValidationError>;

/// What kind of failure a connector call met, so callers can decide without parsing text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller sent something the connector refuses (bad scope, bad filter, wrong dimension).
    InvalidRequest,
    /// The operation or capability is not declared by this connector.
    Unsupported,
    /// A declared cap (top_k, request or response size, filter nodes) would be exceeded.
    LimitExceeded,
    /// The store could not be reached or refused service; retryable.
    Unavailable,
    /// The call did not finish within its bound; retryable.
    Timeout,
    /// The connector's configuration is invalid or does not match the live store.
    Configuration,
    /// The connector panicked; the host quarantines it.
    Panicked,
    /// The connector was quarantined after an earlier panic or timeout and is not called again.
    Quarantined,
    /// A bug in the connector or in KyroDB.
    Internal,
}

impl ErrorKind {
    /// Whether retrying the same call later may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Unavailable | Self::Timeout)
    }

    /// The stable snake_case name used in reports and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::Unsupported => "unsupported",
            Self::LimitExceeded => "limit_exceeded",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::Configuration => "configuration",
            Self::Panicked => "panicked",
            Self::Quarantined => "quarantined",
            Self::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error returned by a connector operation: a kind to branch on and a message for people.
///
/// The message must be safe to show: connectors never put secrets, DSNs or query text in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ConnectorError {
    kind: ErrorKind,
    message: String,
}

impl ConnectorError {
    /// Builds an error of `kind` with a message for people.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    /// The operation is not declared by this connector.
    pub fn unsupported(operation: &str) -> Self {
        Self::new(
            ErrorKind::Unsupported,
            format!("operation {operation} is not supported by this connector"),
        )
    }

    /// The caller sent something invalid.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, message)
    }

    /// A declared cap would be exceeded.
    pub fn limit_exceeded(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::LimitExceeded, message)
    }

    /// The store is unavailable.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// The configuration is invalid or does not match the live store.
    pub fn configuration(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Configuration, message)
    }

    /// A bug.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message for people.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<ValidationError> for ConnectorError {
    fn from(err: ValidationError) -> Self {
        Self::invalid_request(err.to_string())
    }
}
