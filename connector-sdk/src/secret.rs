//! Secrets in connector configuration: where they come from, and a type that never shows them.

use serde::{Deserialize, Serialize, Serializer};

use crate::{ConnectorError, Result};

/// A secret value, such as a DSN or an API key.
///
/// `Debug`, `Display` and `Serialize` print `***`; the value is reachable only through
/// [`Secret::expose`], which makes every use greppable.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value. Call it only where the value is handed to the store's driver.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Replaces every occurrence of the secret (and, for URLs, its password part) in `text` with
    /// `***`, for messages that may have picked it up from a driver.
    pub fn redact_from(&self, text: &str) -> String {
        let mut redacted = text.to_owned();
        for fragment in self.fragments() {
            if !fragment.is_empty() {
                redacted = redacted.replace(fragment, "***");
            }
        }
        redacted
    }

    /// The whole value and, for `scheme://user:password@host` values, the password alone.
    fn fragments(&self) -> Vec<&str> {
        let mut fragments = vec![self.0.as_str()];
        if let Some((_, rest)) = self.0.split_once("://")
            && let Some((userinfo, _)) = rest.split_once('@')
            && let Some((_, password)) = userinfo.split_once(':')
            && password.len() >= 4
        {
            fragments.push(password);
        }
        fragments
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}

/// Where a secret comes from in configuration: `{ env = "VAR" }`, `{ file = "/path" }` or
/// `{ value = "literal" }` (accepted, always redacted; prefer the other two).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum SecretSource {
    /// Read from this environment variable when the connector opens.
    Env(String),
    /// Read from this file (trailing newline trimmed) when the connector opens.
    File(std::path::PathBuf),
    /// Given inline.
    Value(Secret),
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Env(name) => f.debug_tuple("Env").field(name).finish(),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Value(_) => f.write_str("Value(***)"),
        }
    }
}

impl Serialize for SecretSource {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(1))?;
        match self {
            Self::Env(name) => map.serialize_entry("env", name)?,
            Self::File(path) => map.serialize_entry("file", path)?,
            Self::Value(_) => map.serialize_entry("value", "***")?,
        }
        map.end()
    }
}

impl SecretSource {
    /// Reads the secret. Called by a connector when it opens, never before.
    ///
    /// # Errors
    ///
    /// `Configuration` when the variable is unset or the file cannot be read; the message names
    /// the variable or file, never a value.
    pub fn resolve(&self) -> Result<Secret> {
        match self {
            Self::Env(name) => std::env::var(name).map(Secret).map_err(|_| {
                ConnectorError::configuration(format!(
                    "environment variable {name} is not set or not unicode"
                ))
            }),
            Self::File(path) => std::fs::read_to_string(path)
                .map(|text| Secret(text.trim_end_matches(['\n', '\r']).to_owned()))
                .map_err(|err| {
                    ConnectorError::configuration(format!(
                        "failed to read secret file {}: {}",
                        path.display(),
                        err.kind()
                    ))
                }),
            Self::Value(secret) => Ok(secret.clone()),
        }
    }
}
