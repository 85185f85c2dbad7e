//! Change events, invalidations and their answers, and the answer to a write-through
//! mutation.

use kyro_core::change::{ChangeScope, ChangeTarget, ChangeType};
use kyro_core::limits::MAX_SCOPE_FIELD_BYTES;
use kyro_core::{Scope, validate_identifier};
use serde::{Deserialize, Serialize};

use super::error::{Checked, InvalidRequest};
use super::packet::FreshnessScopeDto;
use super::request::WriteScopeDto;
use super::strict::{object, present, tagged};

/// A change-event target, tagged on `type`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum TargetDto {
    Document { doc_id: String },
    Namespace { namespace: String },
    Connector { connector_id: String },
    Bundle { bundle_id: String },
    Policy { policy_key: String },
    Tenant { tenant_id: String },
    All {},
}

impl TargetDto {
    /// The core target, checked.
    ///
    /// # Errors
    ///
    /// The identifier breaks the contract's rules.
    pub(crate) fn to_target(&self) -> Checked<ChangeTarget> {
        let target = match self.clone() {
            Self::Document { doc_id } => ChangeTarget::Document { doc_id },
            Self::Namespace { namespace } => ChangeTarget::Namespace { namespace },
            Self::Connector { connector_id } => ChangeTarget::Connector { connector_id },
            Self::Bundle { bundle_id } => ChangeTarget::Bundle { bundle_id },
            Self::Policy { policy_key } => ChangeTarget::Policy { policy_key },
            Self::Tenant { tenant_id } => ChangeTarget::Tenant { tenant_id },
            Self::All {} => ChangeTarget::All,
        };
        target.validate()?;
        Ok(target)
    }
}

/// The scope a change event carries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangeScopeDto {
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) tenant_id: Option<String>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) namespace: Option<String>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) connector_id: Option<String>,
}

/// `POST /v1/events/change`. Unknown top-level fields are accepted (the contract allows it
/// here); `scope` is required.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub(crate) struct ChangeEvent {
    #[serde(deserialize_with = "tagged")]
    pub(crate) target: TargetDto,
    pub(crate) change_type: ChangeType,
    #[serde(deserialize_with = "object")]
    pub(crate) scope: ChangeScopeDto,
    pub(crate) source_event_id: String,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) revision: Option<String>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) timestamp: Option<String>,
}

/// A checked change event.
#[derive(Debug, Clone)]
pub(crate) struct ValidChange {
    pub(crate) target: ChangeTarget,
    pub(crate) scope: ChangeScope,
    pub(crate) change_type: ChangeType,
    pub(crate) source_event_id: String,
    pub(crate) revision: Option<String>,
    pub(crate) timestamp_ms: Option<i64>,
}

impl ChangeEvent {
    /// Checks the event.
    ///
    /// # Errors
    ///
    /// The first broken rule.
    pub(crate) fn validate(&self) -> Checked<ValidChange> {
        validate_identifier("source_event_id", &self.source_event_id, MAX_SCOPE_FIELD_BYTES)?;
        if let Some(revision) = &self.revision {
            validate_identifier("revision", revision, MAX_SCOPE_FIELD_BYTES)?;
        }
        let scope = ChangeScope {
            tenant_id: self.scope.tenant_id.clone(),
            namespace: self.scope.namespace.clone(),
            connector_id: self.scope.connector_id.clone(),
        };
        scope.validate()?;
        let target = self.target.to_target()?;
        let timestamp_ms = self.timestamp.as_deref().map(parse_timestamp).transpose()?;
        Ok(ValidChange {
            target,
            scope,
            change_type: self.change_type,
            source_event_id: self.source_event_id.clone(),
            revision: self.revision.clone(),
            timestamp_ms,
        })
    }
}

/// Parses an RFC 3339 timestamp to milliseconds since the epoch.
///
/// # Errors
///
/// Not RFC 3339.
pub(crate) fn parse_timestamp(text: &str) -> Checked<i64> {
    kyro_core::time::parse_rfc3339_millis(text).ok_or_else(|| {
        InvalidRequest(format!("timestamp {text:?} is not RFC 3339 (like 2026-01-02T03:04:05Z)"))
    })
}

/// `POST /v1/context/invalidate`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InvalidationRequest {
    #[serde(deserialize_with = "tagged")]
    pub(crate) target: TargetDto,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) tenant_id: Option<String>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
}

/// A checked invalidation.
#[derive(Debug, Clone)]
pub(crate) struct ValidInvalidation {
    pub(crate) target: ChangeTarget,
    pub(crate) scope: ChangeScope,
}

impl InvalidationRequest {
    /// Checks the request.
    ///
    /// # Errors
    ///
    /// The first broken rule.
    pub(crate) fn validate(&self) -> Checked<ValidInvalidation> {
        let target = self.target.to_target()?;
        let scope = ChangeScope { tenant_id: self.tenant_id.clone(), ..ChangeScope::default() };
        scope.validate()?;
        if let Some(reason) = &self.reason
            && reason.len() > super::request::MAX_QUERY_TEXT_BYTES
        {
            return Err(InvalidRequest::new("reason is over 8192 bytes"));
        }
        Ok(ValidInvalidation { target, scope })
    }
}

/// The answer to a change event or invalidation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChangeEventResult {
    pub(crate) accepted: bool,
    pub(crate) generation: u64,
    pub(crate) entries_invalidated: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) detail: Option<String>,
}

/// The ACK part of a mutation result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MutationAckDto {
    /// The backend's mutation id.
    pub(crate) id: String,
    /// The scope the backend named.
    pub(crate) scope: WriteScopeDto,
    /// Whether the host checked that the ACK names the requested tenant, namespace and id.
    pub(crate) verified: bool,
}

/// The answer to an upsert or delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DocumentMutationResult {
    pub(crate) id: String,
    pub(crate) outcome: kyro_core::MutationOutcome,
    pub(crate) generation: u64,
    pub(crate) entries_invalidated: usize,
    pub(crate) invalidated_scope: FreshnessScopeDto,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) revision: Option<String>,
    pub(crate) mutation_ack: MutationAckDto,
}

impl MutationAckDto {
    pub(crate) fn new(id: String, scope: &Scope, verified: bool) -> Self {
        Self { id, scope: WriteScopeDto::from(scope), verified }
    }
}
