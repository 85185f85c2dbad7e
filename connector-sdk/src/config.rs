//! What the host hands a connector when it opens one: its configuration and a way to log.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::{ConnectorError, Result};

/// A connector's configuration as the host received it (a TOML table or JSON object), carried
/// as JSON text so it crosses the plugin boundary unchanged.
#[derive(Clone)]
pub struct ConnectorConfig {
    json: String,
}

impl ConnectorConfig {
    /// Wraps JSON text. The host builds this from its own configuration file.
    pub fn from_json(json: impl Into<String>) -> Self {
        Self { json: json.into() }
    }

    /// The JSON text.
    pub fn as_json(&self) -> &str {
        &self.json
    }

    /// Deserializes the configuration into the connector's own `*Config` type, which should use
    /// `#[serde(deny_unknown_fields)]`.
    ///
    /// # Errors
    ///
    /// `Configuration`, naming the key path that failed and why, but never the value that was
    /// there: configuration values may be secrets.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        let mut deserializer = serde_json::Deserializer::from_str(&self.json);
        serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
            let path = err.path().to_string();
            let reason = redacted_reason(&err.inner().to_string());
            ConnectorError::configuration(format!("invalid connector config at `{path}`: {reason}"))
        })
    }
}

impl std::fmt::Debug for ConnectorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectorConfig(<redacted>)")
    }
}

/// Keeps serde's reason when it names only keys (unknown or missing fields) and drops it when it
/// may quote a value (`invalid type: string "postgres://..."`).
fn redacted_reason(message: &str) -> String {
    let reason = message.split(" at line ").next().unwrap_or(message);
    if reason.starts_with("unknown field")
        || reason.starts_with("missing field")
        || reason.starts_with("duplicate field")
    {
        reason.to_owned()
    } else if let Some((_, expected)) =
        reason.strip_prefix("unknown variant").and_then(|rest| rest.rsplit_once(", expected "))
    {
        // The variant quotes the value; the names serde expected, after the last separator, do not.
        format!("unknown variant, expected {expected}")
    } else if reason.starts_with("invalid type") {
        "a value has the wrong type".to_owned()
    } else {
        "a value is invalid".to_owned()
    }
}

/// Severity of a connector's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum LogLevel {
    /// Detail for debugging.
    Debug = 1,
    /// Normal operation.
    Info = 2,
    /// Something an operator should look at.
    Warn = 3,
    /// A failure.
    Error = 4,
}

impl LogLevel {
    #[cfg(feature = "loader")]
    pub(crate) fn from_u8(level: u8) -> Self {
        match level {
            1 => Self::Debug,
            2 => Self::Info,
            3 => Self::Warn,
            _ => Self::Error,
        }
    }
}

type LogSink = dyn Fn(LogLevel, &str) + Send + Sync;

/// The host's services to a connector: for now, a log sink.
///
/// Connectors log through this rather than a global logger: a cdylib's globals are its own, so a
/// `tracing` subscriber in the host would never see them. The host routes these lines into its
/// logs and the certification harness scans them for leaked secrets.
#[derive(Clone)]
pub struct HostContext {
    sink: Arc<LogSink>,
}

impl HostContext {
    /// A context whose log lines go to `sink`.
    pub fn new(sink: impl Fn(LogLevel, &str) + Send + Sync + 'static) -> Self {
        Self { sink: Arc::new(sink) }
    }

    /// A context that drops every log line.
    pub fn discard() -> Self {
        Self::new(|_, _| {})
    }

    /// Logs a line. Never put secrets, DSNs or query text in it.
    pub fn log(&self, level: LogLevel, message: &str) {
        (self.sink)(level, message);
    }
}

impl std::fmt::Debug for HostContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostContext")
    }
}
