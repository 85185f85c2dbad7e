//! Errors from the two engines, and the one place they become `ConnectorError`s: classified by
//! kind and redacted.
//!
//! Errors from qdrant-client may quote the server URL or the API key (in transport errors and
//! in request metadata), so every server error goes through [`Redactor::to_connector_error`],
//! which removes every configured secret from the message before it leaves the connector.
//! Callers branch on the `ErrorKind`, never on the text.

use std::time::Duration;

use kyro_connector_sdk::{ConnectorError, ErrorKind, Secret};
use qdrant_client::QdrantError;
use qdrant_edge::OperationError;

/// A failed call into one of the engines.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// The Qdrant server, or the way to it, failed.
    #[error("qdrant server call {operation} failed: {source}")]
    Server {
        /// What the connector was doing (`search`, `count`, ...).
        operation: &'static str,
        /// What qdrant-client reported; may quote secrets until redacted.
        #[source]
        source: Box<QdrantError>,
    },
    /// A server call did not finish within the configured bound.
    #[error("qdrant server call {operation} did not finish within {} ms", timeout.as_millis())]
    Timeout {
        /// What the connector was doing.
        operation: &'static str,
        /// The bound.
        timeout: Duration,
    },
    /// The embedded engine failed.
    #[error("embedded qdrant call {operation} failed: {source}")]
    Embedded {
        /// What the connector was doing.
        operation: &'static str,
        /// What qdrant-edge reported.
        #[source]
        source: Box<OperationError>,
    },
}

impl StoreError {
    pub(crate) fn server(operation: &'static str, source: QdrantError) -> Self {
        Self::Server { operation, source: Box::new(source) }
    }

    pub(crate) fn embedded(operation: &'static str, source: OperationError) -> Self {
        Self::Embedded { operation, source: Box::new(source) }
    }

    /// Who is at fault, and whether a retry may help.
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            Self::Server { source, .. } => server_error_kind(source),
            Self::Timeout { .. } => ErrorKind::Timeout,
            Self::Embedded { source, .. } => embedded_error_kind(source),
        }
    }
}

fn server_error_kind(error: &QdrantError) -> ErrorKind {
    use tonic::Code;
    match error {
        // qdrant-client reports a failed connection as an `Internal` status of its own
        // ("Failed to connect to ..."); that is the store being unreachable, not a bug.
        QdrantError::ResponseError { status }
            if status.code() == Code::Internal
                && status.message().starts_with("Failed to connect") =>
        {
            ErrorKind::Unavailable
        }
        QdrantError::ResponseError { status } => match status.code() {
            Code::InvalidArgument | Code::OutOfRange => ErrorKind::InvalidRequest,
            Code::DeadlineExceeded | Code::Cancelled => ErrorKind::Timeout,
            // A missing collection, refused credentials or an overloaded server are the store's
            // state, not the caller's fault; tonic also reports transport failures as Unknown.
            Code::Unavailable
            | Code::Unknown
            | Code::NotFound
            | Code::Unauthenticated
            | Code::PermissionDenied
            | Code::ResourceExhausted
            | Code::Aborted
            | Code::FailedPrecondition => ErrorKind::Unavailable,
            Code::Ok
            | Code::AlreadyExists
            | Code::Unimplemented
            | Code::Internal
            | Code::DataLoss => ErrorKind::Internal,
        },
        QdrantError::ResourceExhaustedError { .. } | QdrantError::Io(_) => ErrorKind::Unavailable,
        QdrantError::InvalidUri(_) => ErrorKind::Configuration,
        _ => ErrorKind::Internal,
    }
}

fn embedded_error_kind(error: &OperationError) -> ErrorKind {
    match error {
        OperationError::WrongVectorDimension { .. } | OperationError::ValidationError { .. } => {
            ErrorKind::InvalidRequest
        }
        OperationError::Timeout { .. } | OperationError::Cancelled { .. } => ErrorKind::Timeout,
        OperationError::OutOfMemory { .. } => ErrorKind::Unavailable,
        _ => ErrorKind::Internal,
    }
}

/// The secrets a connector's error messages must never carry.
#[derive(Debug, Clone, Default)]
pub(crate) struct Redactor {
    secrets: Vec<Secret>,
}

impl Redactor {
    /// A redactor for these secrets (the API key, the URL).
    pub(crate) fn new(secrets: Vec<Secret>) -> Self {
        Self { secrets }
    }

    /// Removes every secret from `text`.
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut redacted = text.to_owned();
        for secret in &self.secrets {
            redacted = secret.redact_from(&redacted);
        }
        redacted
    }

    /// The one conversion from a store error to what the host sees: classified, then redacted.
    pub(crate) fn to_connector_error(&self, error: &StoreError) -> ConnectorError {
        ConnectorError::new(error.kind(), self.redact(&error.to_string()))
    }
}
