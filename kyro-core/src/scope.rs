//! The scope a connector enforces: a tenant and a namespace, both always present.
//!
//! The runtime contract's request scope has more fields (app, locale, auth scope, ...); those are
//! part of the host's reuse key, not of what a store enforces, and live with the host.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{ValidationError, ValidationResult};
use crate::limits::MAX_SCOPE_FIELD_BYTES;

/// Checks the contract's identifier rules: non-empty, at most `max_bytes`, no leading or trailing
/// white space, no control characters.
///
/// # Errors
///
/// Returns the first rule the value breaks, naming `field`.
pub fn validate_identifier(
    field: &'static str,
    value: &str,
    max_bytes: usize,
) -> ValidationResult<()> {
    if value.is_empty() {
        return Err(ValidationError::Empty { field });
    }
    if value.len() > max_bytes {
        return Err(ValidationError::TooLong { field, max_bytes, actual_bytes: value.len() });
    }
    if value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace) {
        return Err(ValidationError::SurroundingWhitespace { field });
    }
    if value.chars().any(char::is_control) {
        return Err(ValidationError::ControlCharacter { field });
    }
    Ok(())
}

/// A tenant and a namespace: the boundary every connector operation is confined to.
///
/// Shared behind an `Arc`: every document and hit a store returns carries its scope, and a clone
/// is a reference count rather than two string copies.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "RawScope")]
pub struct Scope(Arc<ScopeParts>);

#[derive(PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
struct ScopeParts {
    tenant_id: String,
    namespace: String,
}

#[derive(Deserialize)]
struct RawScope {
    tenant_id: String,
    namespace: String,
}

impl TryFrom<RawScope> for Scope {
    type Error = ValidationError;

    fn try_from(raw: RawScope) -> ValidationResult<Self> {
        Self::new(raw.tenant_id, raw.namespace)
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl std::fmt::Debug for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope")
            .field("tenant_id", &self.0.tenant_id)
            .field("namespace", &self.0.namespace)
            .finish()
    }
}

impl Scope {
    /// Builds a scope after checking both fields against the identifier rules.
    ///
    /// # Errors
    ///
    /// `tenant_id` or `namespace` is empty, too long, padded with white space or holds control
    /// characters.
    pub fn new(
        tenant_id: impl Into<String>,
        namespace: impl Into<String>,
    ) -> ValidationResult<Self> {
        let tenant_id = tenant_id.into();
        let namespace = namespace.into();
        validate_identifier("tenant_id", &tenant_id, MAX_SCOPE_FIELD_BYTES)?;
        validate_identifier("namespace", &namespace, MAX_SCOPE_FIELD_BYTES)?;
        Ok(Self(Arc::new(ScopeParts { tenant_id, namespace })))
    }

    /// The tenant.
    pub fn tenant_id(&self) -> &str {
        &self.0.tenant_id
    }

    /// The namespace within the tenant.
    pub fn namespace(&self) -> &str {
        &self.0.namespace
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.0.tenant_id, self.0.namespace)
    }
}
