//! Turning driver errors into [`ConnectorError`]s that are classified and safe to show.
//!
//! Every `sqlx` error goes through [`Redactor::store_error`]: it picks the [`ErrorKind`] callers
//! branch on, keeps the SQLSTATE and the server's message (never SQL text, never a bind value we
//! add), and removes the DSN and its password from whatever the driver said. Nothing else in the
//! crate formats a `sqlx::Error`.

use kyro_connector_sdk::{ConnectorError, ErrorKind, Secret};

/// Removes the DSN, and the password inside it, from messages.
#[derive(Clone)]
pub(crate) struct Redactor {
    dsn: Secret,
    /// The URL's password percent-decoded, as a driver may print it; `None` when it is the same
    /// as the raw password or too short to redact without mangling ordinary words.
    decoded_password: Option<Secret>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redactor(***)")
    }
}

impl Redactor {
    pub(crate) fn new(dsn: Secret) -> Self {
        let decoded_password = url_password(dsn.expose())
            .filter(|raw| raw.contains('%'))
            .and_then(percent_decode)
            .filter(|decoded| decoded.len() >= 4)
            .map(Secret::new);
        Self { dsn, decoded_password }
    }

    /// `text` without the DSN or its password.
    pub(crate) fn redact(&self, text: &str) -> String {
        let redacted = self.dsn.redact_from(text);
        match &self.decoded_password {
            Some(password) => password.redact_from(&redacted),
            None => redacted,
        }
    }

    /// Classifies a driver error for `operation` (a fixed name such as `search`) and redacts it.
    pub(crate) fn store_error(&self, operation: &'static str, err: &sqlx::Error) -> ConnectorError {
        let (kind, detail) = classify(err);
        ConnectorError::new(kind, self.redact(&format!("pgvector {operation} failed: {detail}")))
    }
}

impl Redactor {
    /// A failed first connection, classified and redacted like any driver error, with what to
    /// check in the DSN when the error's structure says which part is wrong.
    pub(crate) fn connect_error(&self, err: &sqlx::Error) -> ConnectorError {
        let error = self.store_error("connect", err);
        let hint = match err {
            sqlx::Error::Database(database) => match database.code().as_deref() {
                Some("3D000") => Some("check the database name in the DSN"),
                Some(code) if code.starts_with("28") => {
                    Some("check the user and password in the DSN")
                }
                _ => None,
            },
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => {
                Some("check that the server is running and that the DSN's host and port reach it")
            }
            _ => None,
        };
        match hint {
            Some(hint) => ConnectorError::new(error.kind(), format!("{}; {hint}", error.message())),
            None => error,
        }
    }
}

/// The kind and a message for people, from the error's structure rather than its text.
fn classify(err: &sqlx::Error) -> (ErrorKind, String) {
    match err {
        sqlx::Error::Database(database) => {
            let code = database.code().map(|code| code.into_owned()).unwrap_or_default();
            let kind = sqlstate_kind(&code);
            (kind, format!("database error {code}: {}", database.message()))
        }
        sqlx::Error::Io(io) => {
            (ErrorKind::Unavailable, format!("cannot reach the database: {}", io_reason(io)))
        }
        sqlx::Error::Tls(_) => (
            ErrorKind::Unavailable,
            "TLS negotiation with the database failed (this build has no TLS support)".to_owned(),
        ),
        sqlx::Error::PoolTimedOut => (
            ErrorKind::Unavailable,
            "timed out waiting for a database connection (connect_timeout_ms)".to_owned(),
        ),
        sqlx::Error::PoolClosed => {
            (ErrorKind::Unavailable, "the connection pool is closed".to_owned())
        }
        sqlx::Error::WorkerCrashed => {
            (ErrorKind::Unavailable, "the database connection worker stopped".to_owned())
        }
        sqlx::Error::Configuration(_) => (
            ErrorKind::Configuration,
            "the connection options were refused by the driver".to_owned(),
        ),
        sqlx::Error::Protocol(_) => {
            (ErrorKind::Unavailable, "the database broke the wire protocol".to_owned())
        }
        sqlx::Error::ColumnDecode { index, .. } => {
            (ErrorKind::Internal, format!("column {index} has an unexpected type"))
        }
        sqlx::Error::Decode(_) => (ErrorKind::Internal, "a value could not be decoded".to_owned()),
        sqlx::Error::Encode(_) => {
            (ErrorKind::InvalidRequest, "a value could not be encoded".to_owned())
        }
        sqlx::Error::TypeNotFound { type_name } => {
            (ErrorKind::Internal, format!("the database has no type {type_name}"))
        }
        _ => (ErrorKind::Internal, "unexpected driver error".to_owned()),
    }
}

/// Why a connection failed: the I/O error's kind, or the system's own words when the kind says
/// nothing (a host name that does not resolve is "uncategorized"). The caller redacts it.
fn io_reason(io: &std::io::Error) -> String {
    let kind = io.kind().to_string();
    if kind == "uncategorized error" || kind == "other error" { io.to_string() } else { kind }
}

/// The kind for a SQLSTATE, by class (the first two characters) where the class decides.
pub(crate) fn sqlstate_kind(code: &str) -> ErrorKind {
    match code {
        // query_canceled: statement_timeout fired.
        "57014" => ErrorKind::Timeout,
        // lock_not_available, deadlock_detected, serialization_failure: retry later.
        "55P03" | "40P01" | "40001" => ErrorKind::Unavailable,
        // Bad password, unknown role or database: the configuration is wrong.
        "3D000" => ErrorKind::Configuration,
        _ => match code.get(..2) {
            // connection_exception, operator_intervention (shutdown), insufficient_resources.
            Some("08" | "57" | "53") => ErrorKind::Unavailable,
            Some("28") => ErrorKind::Configuration,
            // data_exception, integrity_constraint_violation: what the caller sent.
            Some("22" | "23") => ErrorKind::InvalidRequest,
            _ => ErrorKind::Internal,
        },
    }
}

/// The raw password of a `scheme://user:password@host/...` URL.
fn url_password(dsn: &str) -> Option<&str> {
    let (_, rest) = dsn.split_once("://")?;
    let authority = rest.split(['/', '?']).next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    Some(password)
}

/// Percent-decodes `text`; `None` when it does not decode to UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut byte_idx = 0;
    while byte_idx < bytes.len() {
        let byte = bytes[byte_idx];
        let escaped = (byte == b'%')
            .then(|| bytes.get(byte_idx + 1..byte_idx + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(value) => {
                decoded.push(value);
                byte_idx += 3;
            }
            None => {
                decoded.push(byte);
                byte_idx += 1;
            }
        }
    }
    String::from_utf8(decoded).ok()
}
