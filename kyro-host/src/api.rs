//! The HTTP wire format of the runtime contract (`runtime-contract.md` §§1–5): request DTOs that
//! validate into core types, response DTOs, and the one place errors become status codes.
//!
//! Field names and enum values here are the public contract: existing clients depend on them.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kyro_core::change::{ChangeScope, ChangeTarget, ChangeType};
use kyro_core::limits::{
    MAX_AUTH_SCOPE_ENTRIES, MAX_CONTENT_BYTES, MAX_EMBEDDING_DIMENSION, MAX_ID_BYTES,
    MAX_SCOPE_FIELD_BYTES,
};
use kyro_core::{
    DocumentId, Embedding, FilterExpr, FilterKey, FilterValue, FreshnessMode, Metadata, Revision,
    RuntimeFilter, Scope, ValidationError, validate_identifier,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An error answer: the contract's envelope with its status.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The contract's error code.
    pub code: &'static str,
    /// A public-safe message: no secrets, DSNs, tokens, SQL or internal paths.
    pub message: String,
    /// Present and true only when a side effect was committed before a later step failed.
    pub acknowledged: Option<bool>,
}

impl ApiError {
    /// 400 `VALIDATION_FAILED`.
    pub fn validation(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "VALIDATION_FAILED",
            message: message.into(),
            acknowledged: None,
        }
    }

    /// An error with any status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), acknowledged: None }
    }

    /// Marks that a side effect was committed before the failure.
    #[must_use]
    pub fn acknowledged(mut self) -> Self {
        self.acknowledged = Some(true);
        self
    }
}

impl From<ValidationError> for ApiError {
    fn from(err: ValidationError) -> Self {
        Self::validation(err.to_string())
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    acknowledged: Option<bool>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            ErrorBody { error: &self.message, code: self.code, acknowledged: self.acknowledged };
        (self.status, axum::Json(body)).into_response()
    }
}

/// Parses a JSON body into `T`, mapping every failure to a 400 with the contract's envelope.
///
/// # Errors
///
/// The body is not JSON, or not the expected shape (unknown fields included, where refused).
pub fn parse_body<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|err| ApiError::validation(format!("invalid request body: {err}")))
}

fn check_field(field: &'static str, value: &str) -> Result<(), ApiError> {
    validate_identifier(field, value, MAX_SCOPE_FIELD_BYTES).map_err(ApiError::from)
}

fn check_optional(field: &'static str, value: Option<&str>) -> Result<(), ApiError> {
    value.map_or(Ok(()), |value| check_field(field, value))
}

/// The contract's request scope.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeDto {
    /// Required.
    pub tenant_id: String,
    /// Required.
    pub namespace: String,
    /// Optional, part of the reuse boundary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// Optional, part of the reuse boundary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// Optional, part of the reuse boundary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_scope: Option<Vec<String>>,
    /// Optional, part of the reuse boundary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entitlement_boundary: Option<String>,
    /// Optional, part of the reuse boundary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding_model_id: Option<String>,
    /// Optional, part of the reuse boundary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reranker_version: Option<String>,
    /// Optional, part of the reuse boundary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_template_version: Option<String>,
}

impl ScopeDto {
    /// Checks every field and returns the store scope.
    ///
    /// # Errors
    ///
    /// A field breaks the identifier rules, or `auth_scope` has more than 32 entries.
    pub fn validate(&self) -> Result<Scope, ApiError> {
        let scope = Scope::new(self.tenant_id.clone(), self.namespace.clone())?;
        check_optional("scope.app_id", self.app_id.as_deref())?;
        check_optional("scope.locale", self.locale.as_deref())?;
        check_optional("scope.entitlement_boundary", self.entitlement_boundary.as_deref())?;
        check_optional("scope.embedding_model_id", self.embedding_model_id.as_deref())?;
        check_optional("scope.reranker_version", self.reranker_version.as_deref())?;
        check_optional("scope.prompt_template_version", self.prompt_template_version.as_deref())?;
        if let Some(auth_scope) = &self.auth_scope {
            if auth_scope.len() > MAX_AUTH_SCOPE_ENTRIES {
                return Err(ApiError::validation(format!(
                    "scope.auth_scope has {} entries, allowed is at most {MAX_AUTH_SCOPE_ENTRIES}",
                    auth_scope.len()
                )));
            }
            for entry in auth_scope {
                check_field("scope.auth_scope[]", entry)?;
            }
        }
        Ok(scope)
    }
}

/// A filter value as sent: text, number or boolean, compared as its canonical text.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ScalarDto {
    /// Text.
    Text(String),
    /// A number; integers print without a fraction.
    Number(serde_json::Number),
    /// A boolean.
    Bool(bool),
}

impl ScalarDto {
    fn to_value(&self) -> Result<FilterValue, ApiError> {
        let text = match self {
            Self::Text(text) => text.clone(),
            Self::Number(number) => number.to_string(),
            Self::Bool(flag) => flag.to_string(),
        };
        FilterValue::new(text).map_err(ApiError::from)
    }
}

/// The contract's `RuntimeFilter`, tagged on `type`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FilterDto {
    /// `exact {key, value}`.
    Exact {
        /// The key.
        key: String,
        /// The value.
        value: ScalarDto,
    },
    /// `in {key, values}`.
    In {
        /// The key.
        key: String,
        /// 1..=256 values.
        values: Vec<ScalarDto>,
    },
    /// `range {key, min?, max?}`.
    Range {
        /// The key.
        key: String,
        /// Inclusive lower bound.
        #[serde(default)]
        min: Option<f64>,
        /// Inclusive upper bound.
        #[serde(default)]
        max: Option<f64>,
    },
    /// `and {filters}`.
    And {
        /// At least one child.
        filters: Vec<FilterDto>,
    },
    /// `or {filters}`.
    Or {
        /// At least one child.
        filters: Vec<FilterDto>,
    },
    /// `not {filter}`.
    Not {
        /// The child.
        filter: Box<FilterDto>,
    },
}

impl FilterDto {
    fn to_expr(&self, depth: usize) -> Result<FilterExpr, ApiError> {
        // Deep trees are refused before recursing further, so a hostile body cannot exhaust the stack.
        if depth > kyro_core::limits::MAX_FILTER_DEPTH {
            return Err(ApiError::validation(format!(
                "filter depth is over the limit of {}",
                kyro_core::limits::MAX_FILTER_DEPTH
            )));
        }
        let key = |key: &str| FilterKey::new(key).map_err(ApiError::from);
        Ok(match self {
            Self::Exact { key: name, value } => {
                FilterExpr::Exact { key: key(name)?, value: value.to_value()? }
            }
            Self::In { key: name, values } => FilterExpr::In {
                key: key(name)?,
                values: values.iter().map(ScalarDto::to_value).collect::<Result<_, _>>()?,
            },
            Self::Range { key: name, min, max } => {
                FilterExpr::Range { key: key(name)?, min: *min, max: *max }
            }
            Self::And { filters } => FilterExpr::And(
                filters.iter().map(|child| child.to_expr(depth + 1)).collect::<Result<_, _>>()?,
            ),
            Self::Or { filters } => FilterExpr::Or(
                filters.iter().map(|child| child.to_expr(depth + 1)).collect::<Result<_, _>>()?,
            ),
            Self::Not { filter } => FilterExpr::Not(Box::new(filter.to_expr(depth + 1)?)),
        })
    }

    /// Checks the whole tree against the contract's limits.
    ///
    /// # Errors
    ///
    /// A key, value, count, depth or range rule is broken.
    pub fn validate(&self) -> Result<RuntimeFilter, ApiError> {
        RuntimeFilter::new(self.to_expr(1)?).map_err(ApiError::from)
    }
}

/// Converts JSON numbers to a validated embedding.
///
/// # Errors
///
/// Empty, longer than 16384, or a value that is not finite as a 32-bit float.
pub fn embedding(field: &'static str, values: &[f64]) -> Result<Embedding, ApiError> {
    if values.is_empty() || values.len() > MAX_EMBEDDING_DIMENSION {
        return Err(ApiError::validation(format!(
            "{field} has {} numbers, allowed is 1..={MAX_EMBEDDING_DIMENSION}",
            values.len()
        )));
    }
    let values: Vec<f32> = values.iter().map(|value| *value as f32).collect();
    Embedding::new(values)
        .map_err(|_| ApiError::validation(format!("{field} must hold finite numbers only")))
}

/// `POST /v1/context/retrieve`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetrieveRequest {
    /// The query vector.
    pub query_embedding: Vec<f64>,
    /// The query text, for traces and feedback (at most 8192 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_text: Option<String>,
    /// The scope.
    pub scope: ScopeDto,
    /// Metadata filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<FilterDto>,
    /// 1..=1000, default 6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<i64>,
    /// `strict`, `balanced` or `eventual`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freshness_mode: Option<String>,
    /// At least 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_generation: Option<i64>,
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_content: Option<bool>,
}

/// A checked retrieve.
#[derive(Debug, Clone)]
pub struct ValidRetrieve {
    /// The store scope.
    pub scope: Scope,
    /// The query vector.
    pub embedding: Embedding,
    /// The filter.
    pub filter: Option<RuntimeFilter>,
    /// How many items.
    pub top_k: u32,
    /// The requested mode.
    pub freshness_mode: FreshnessMode,
    /// The generation the caller needs.
    pub required_generation: Option<u64>,
    /// Whether items carry content.
    pub include_content: bool,
}

impl RetrieveRequest {
    /// Checks everything the contract limits.
    ///
    /// # Errors
    ///
    /// The first broken rule.
    pub fn validate(&self, default_mode: FreshnessMode) -> Result<ValidRetrieve, ApiError> {
        let scope = self.scope.validate()?;
        let embedding = embedding("query_embedding", &self.query_embedding)?;
        if let Some(text) = &self.query_text
            && text.len() > 8192
        {
            return Err(ApiError::validation(format!(
                "query_text is {} bytes, over the limit of 8192",
                text.len()
            )));
        }
        let filter = self.filters.as_ref().map(FilterDto::validate).transpose()?;
        let top_k = match self.top_k {
            None => kyro_core::limits::DEFAULT_TOP_K,
            Some(top_k) if (1..=i64::from(kyro_core::limits::MAX_TOP_K)).contains(&top_k) => {
                top_k as u32
            }
            Some(top_k) => {
                return Err(ApiError::validation(format!("top_k is {top_k}, allowed is 1..=1000")));
            }
        };
        let freshness_mode = match &self.freshness_mode {
            None => default_mode,
            Some(mode) => mode.parse().map_err(ApiError::from)?,
        };
        let required_generation = match self.required_generation {
            None => None,
            Some(generation) if generation >= 1 => Some(generation as u64),
            Some(generation) => {
                return Err(ApiError::validation(format!(
                    "required_generation is {generation}, it must be at least 1"
                )));
            }
        };
        Ok(ValidRetrieve {
            scope,
            embedding,
            filter,
            top_k,
            freshness_mode,
            required_generation,
            include_content: self.include_content.unwrap_or(true),
        })
    }
}

/// A change-event target, tagged on `type`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TargetDto {
    /// One document.
    Document {
        /// Its id.
        doc_id: String,
    },
    /// A namespace.
    Namespace {
        /// The namespace.
        namespace: String,
    },
    /// A connector (store).
    Connector {
        /// Its id.
        connector_id: String,
    },
    /// A bundle.
    Bundle {
        /// Its id.
        bundle_id: String,
    },
    /// A policy.
    Policy {
        /// Its key.
        policy_key: String,
    },
    /// A tenant.
    Tenant {
        /// The tenant.
        tenant_id: String,
    },
    /// Everything.
    All {},
}

impl TargetDto {
    /// The core target, checked.
    ///
    /// # Errors
    ///
    /// The identifier breaks the contract's rules.
    pub fn to_target(&self) -> Result<ChangeTarget, ApiError> {
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
pub struct ChangeScopeDto {
    /// The tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// The namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The connector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_id: Option<String>,
}

/// `POST /v1/events/change`. Unknown fields are accepted (the contract allows it here).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ChangeEvent {
    /// What changed.
    pub target: TargetDto,
    /// How it changed.
    pub change_type: String,
    /// Whose data changed.
    #[serde(default)]
    pub scope: ChangeScopeDto,
    /// The idempotency key.
    pub source_event_id: String,
    /// The new revision, for document changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// When the change happened at the source (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

/// A checked change.
#[derive(Debug, Clone)]
pub struct ValidChange {
    /// The target.
    pub target: ChangeTarget,
    /// The scope.
    pub scope: ChangeScope,
    /// The change type.
    pub change_type: ChangeType,
    /// The revision.
    pub revision: Option<String>,
    /// The source timestamp, in milliseconds.
    pub timestamp_ms: Option<i64>,
}

/// Parses a change type name.
///
/// # Errors
///
/// Not one of the contract's names.
pub fn change_type(name: &str) -> Result<ChangeType, ApiError> {
    ChangeType::NAMES
        .iter()
        .find(|(_, candidate)| *candidate == name)
        .map(|(kind, _)| *kind)
        .ok_or_else(|| {
            ApiError::validation(format!(
                "change_type {name:?} is not one of the contract's change types"
            ))
        })
}

impl ChangeEvent {
    /// Checks the event.
    ///
    /// # Errors
    ///
    /// The first broken rule.
    pub fn validate(&self) -> Result<ValidChange, ApiError> {
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
        target.scope_key(&scope)?;
        let timestamp_ms = self.timestamp.as_deref().map(parse_rfc3339_ms).transpose()?;
        Ok(ValidChange {
            target,
            scope,
            change_type: change_type(&self.change_type)?,
            revision: self.revision.clone(),
            timestamp_ms,
        })
    }
}

/// Parses an RFC 3339 timestamp (`2026-01-02T03:04:05Z`, optional fraction and offset) to
/// milliseconds since the epoch.
///
/// # Errors
///
/// Not RFC 3339.
pub fn parse_rfc3339_ms(text: &str) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::validation(format!(
            "timestamp {text:?} is not RFC 3339 (like 2026-01-02T03:04:05Z)"
        ))
    };
    let bytes = text.as_bytes();
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b'T' | b't' | b' ')
    {
        return Err(bad());
    }
    let number = |range: std::ops::Range<usize>| {
        text.get(range).and_then(|part| part.parse::<i64>().ok()).ok_or_else(bad)
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad());
    }
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let padded = format!("{:0<3}", &fraction[..digits.min(3)]);
        millis = padded.parse::<i64>().map_err(|_| bad())?;
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        offset if offset.len() == 6 && (offset.starts_with('+') || offset.starts_with('-')) => {
            let sign = if offset.starts_with('-') { -1 } else { 1 };
            sign * (number_of(&offset[1..3]).ok_or_else(bad)? * 60
                + number_of(&offset[4..6]).ok_or_else(bad)?)
        }
        _ => return Err(bad()),
    };
    // Days from civil (Howard Hinnant).
    let (y, m) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Ok(seconds * 1000 + millis)
}

fn number_of(text: &str) -> Option<i64> {
    text.parse().ok()
}

/// Formats milliseconds since the epoch as RFC 3339 UTC with millisecond precision.
pub fn rfc3339_ms(ms: i64) -> String {
    kyro_core::time::rfc3339_millis(ms)
}

/// `POST /v1/context/invalidate`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InvalidationRequest {
    /// What to invalidate.
    pub target: TargetDto,
    /// Whose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Why, for the trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The scope of a mutation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MutationScopeDto {
    /// The tenant.
    pub tenant_id: String,
    /// The namespace.
    pub namespace: String,
}

/// A document to upsert.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentDto {
    /// Its id.
    pub id: String,
    /// Its embedding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f64>>,
    /// Its content (at most 1 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Its metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Its source revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

/// `POST /v1/documents/upsert`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpsertDocumentRequest {
    /// Where.
    pub scope: MutationScopeDto,
    /// What.
    pub document: DocumentDto,
}

impl UpsertDocumentRequest {
    /// Checks the request.
    ///
    /// # Errors
    ///
    /// The first broken rule.
    pub fn validate(&self) -> Result<(Scope, kyro_core::Document), ApiError> {
        let scope = Scope::new(self.scope.tenant_id.clone(), self.scope.namespace.clone())?;
        let document = &self.document;
        let id = DocumentId::new(document.id.clone())?;
        let embedding = document
            .embedding
            .as_deref()
            .map(|values| embedding("document.embedding", values))
            .transpose()?;
        if let Some(content) = &document.content
            && content.len() > MAX_CONTENT_BYTES
        {
            return Err(ApiError::validation(format!(
                "document.content is {} bytes, over the limit of {MAX_CONTENT_BYTES}",
                content.len()
            )));
        }
        let metadata = Metadata::new(document.metadata.clone().unwrap_or_default())?;
        let revision = document.revision.clone().map(Revision::new).transpose()?;
        Ok((
            scope,
            kyro_core::Document::new(id, embedding, document.content.clone(), metadata, revision)?,
        ))
    }
}

/// `POST /v1/documents/delete`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteDocumentRequest {
    /// Where.
    pub scope: MutationScopeDto,
    /// Which document.
    pub id: String,
}

impl DeleteDocumentRequest {
    /// Checks the request.
    ///
    /// # Errors
    ///
    /// The first broken rule.
    pub fn validate(&self) -> Result<(Scope, DocumentId), ApiError> {
        let scope = Scope::new(self.scope.tenant_id.clone(), self.scope.namespace.clone())?;
        let id = DocumentId::new(self.id.clone())?;
        if self.id.len() > MAX_ID_BYTES {
            return Err(ApiError::validation("id is over 1024 bytes"));
        }
        Ok((scope, id))
    }
}

/// A freshness scope in a proof, tagged on `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FreshnessScopeDto {
    /// A namespace.
    Namespace {
        /// The namespace.
        namespace: String,
        /// Its tenant.
        #[serde(skip_serializing_if = "Option::is_none")]
        tenant_id: Option<String>,
    },
    /// A connector.
    Connector {
        /// Its id.
        connector_id: String,
    },
    /// A tenant.
    Tenant {
        /// The tenant.
        tenant_id: String,
    },
    /// A document.
    Document {
        /// Its id.
        doc_id: String,
    },
}

/// One watermark in a freshness proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatermarkDto {
    /// What it covers.
    pub scope: FreshnessScopeDto,
    /// `runtime_generation`, `connector_native` or `connector_bridged`.
    pub source: String,
    /// Opaque token.
    pub token: String,
    /// The generation it corresponds to.
    pub generation: u64,
    /// When it was observed (RFC 3339).
    pub observed_at: String,
}

/// The packet's freshness proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreshnessProof {
    /// The mode asked for.
    pub requested_mode: String,
    /// The mode served.
    pub served_mode: String,
    /// The store's ownership mode.
    pub ownership: String,
    /// The runtime generation the answer is proven against.
    pub generation: u64,
    /// The answer is safe as of this time (RFC 3339).
    pub safe_as_of: String,
    /// Watermarks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watermarks: Option<Vec<WatermarkDto>>,
}

/// Where an item came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProvenanceDto {
    /// The store id.
    pub connector: String,
    /// The namespace.
    pub namespace: String,
    /// The source revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc_revision: Option<String>,
    /// When it was retrieved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrieved_at: Option<String>,
    /// Its metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// Evidence about an item's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceDto {
    /// SHA-256 of the content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_sha256: Option<String>,
    /// Content length in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_bytes: Option<usize>,
}

/// One item of a packet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextItem {
    /// The document id.
    pub id: String,
    /// Relevance, at least 0.
    pub score: f32,
    /// `context_reuse` or `backend`.
    pub source: String,
    /// Provenance.
    pub provenance: ProvenanceDto,
    /// The content, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Content evidence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<EvidenceDto>,
}

/// An item left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextOmission {
    /// The document id (or the request, for counts).
    pub id: String,
    /// The contract's reason.
    pub reason: String,
    /// Detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The proof summary in packet metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofDiagnostics {
    /// `source_backed`, `runtime_generation`, `unavailable` or `invalid`.
    pub proof_status: String,
    /// Diagnostics that invalidate the proof.
    pub proof_invalidating_diagnostic_count: usize,
    /// Items the host's guards rejected.
    pub guard_rejection_count: usize,
    /// Watermarks in the proof.
    pub watermark_count: usize,
    /// Native watermarks.
    pub source_native_watermark_count: usize,
    /// Bridged watermarks.
    pub source_bridged_watermark_count: usize,
    /// Runtime-generation watermarks.
    pub runtime_generation_watermark_count: usize,
    /// Diagnostic codes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostic_codes: Option<Vec<String>>,
}

/// Packet metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PacketMeta {
    /// Host latency.
    pub latency_ms: f64,
    /// `context_reuse_hit` or `backend_fetch`.
    pub execution_path: String,
    /// Whether the reuse cache answered.
    pub cache_hit: bool,
    /// How many backend items were pruned as stale.
    pub stale_pruned: usize,
    /// Whether the packet is partial.
    pub partial: bool,
    /// The reuse key.
    pub scope_fingerprint: String,
    /// The runtime generation.
    pub freshness_generation: u64,
    /// The proof summary.
    pub proof_diagnostics: ProofDiagnostics,
}

/// The answer to a retrieve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextPacket {
    /// Unique per answer.
    pub packet_id: String,
    /// The durable trace's id.
    pub trace_id: String,
    /// `complete`, `partial`, `degraded` or `stale_blocked`.
    pub status: String,
    /// The freshness proof.
    pub freshness: FreshnessProof,
    /// The items.
    pub items: Vec<ContextItem>,
    /// Metadata.
    pub meta: PacketMeta,
    /// Items left out.
    pub omissions: Vec<ContextOmission>,
    /// Warnings for people.
    pub warnings: Vec<String>,
}

/// The answer to a change event or invalidation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEventResult {
    /// Whether the change was accepted.
    pub accepted: bool,
    /// The generation it was acknowledged at (the original one for a replay).
    pub generation: u64,
    /// How many reuse entries it invalidated.
    pub entries_invalidated: usize,
    /// Detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The ACK part of a mutation result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MutationAckDto {
    /// The backend's mutation id.
    pub id: String,
    /// The scope the backend named.
    pub scope: MutationScopeDto,
    /// Whether the host checked that the ACK names the requested tenant, namespace and id.
    pub verified: bool,
}

/// The answer to an upsert or delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentMutationResult {
    /// The document id.
    pub id: String,
    /// `inserted`, `updated`, `deleted` or `not_found`.
    pub outcome: String,
    /// The generation the mutation was acknowledged at.
    pub generation: u64,
    /// How many reuse entries it invalidated.
    pub entries_invalidated: usize,
    /// The scope it invalidated.
    pub invalidated_scope: FreshnessScopeDto,
    /// The document's revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The connector's ACK.
    pub mutation_ack: MutationAckDto,
}

/// Keeps unknown fields of a change event out of the fingerprint's way: the fingerprint covers
/// the whole body as sent, in canonical (sorted-key) JSON.
pub fn canonical_json(value: &Value) -> String {
    value.to_string()
}
