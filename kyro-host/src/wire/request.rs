//! The data plane's request bodies (retrieve, upsert, delete) and their scope and filter parts,
//! with the checks that turn them into `kyro_core` values.
//!
//! Every object refuses unknown fields and every optional field refuses an explicit `null`
//! (the contract types them, and `null` is none of those types).

use std::collections::BTreeMap;

use kyro_core::limits::{
    DEFAULT_TOP_K, MAX_AUTH_SCOPE_ENTRIES, MAX_CONTENT_BYTES, MAX_EMBEDDING_DIMENSION,
    MAX_FILTER_DEPTH, MAX_SCOPE_FIELD_BYTES, MAX_TOP_K,
};
use kyro_core::{
    Document, DocumentId, Embedding, FilterExpr, FilterKey, FilterValue, FreshnessMode, Metadata,
    Revision, RuntimeFilter, Scope, validate_identifier,
};
use serde::{Deserialize, Serialize};

use super::error::{Checked, InvalidRequest};
use super::strict::{object, present, present_tagged, tagged, tagged_each};

/// The most bytes of `query_text` a retrieve may carry.
pub(crate) const MAX_QUERY_TEXT_BYTES: usize = 8192;

fn check_field(field: &'static str, value: &str) -> Checked<()> {
    validate_identifier(field, value, MAX_SCOPE_FIELD_BYTES).map_err(InvalidRequest::from)
}

fn check_optional(field: &'static str, value: Option<&str>) -> Checked<()> {
    value.map_or(Ok(()), |value| check_field(field, value))
}

/// The contract's request `Scope`: every field is part of the reuse boundary.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScopeDto {
    pub(crate) tenant_id: String,
    pub(crate) namespace: String,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) app_id: Option<String>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) locale: Option<String>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) auth_scope: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) entitlement_boundary: Option<String>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) embedding_model_id: Option<String>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) reranker_version: Option<String>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) prompt_template_version: Option<String>,
}

impl ScopeDto {
    /// Checks every field and returns the store scope.
    ///
    /// # Errors
    ///
    /// A field breaks the identifier rules, or `auth_scope` has more than 32 entries.
    pub(crate) fn validate(&self) -> Checked<Scope> {
        let scope = Scope::new(self.tenant_id.clone(), self.namespace.clone())?;
        check_optional("scope.app_id", self.app_id.as_deref())?;
        check_optional("scope.locale", self.locale.as_deref())?;
        check_optional("scope.entitlement_boundary", self.entitlement_boundary.as_deref())?;
        check_optional("scope.embedding_model_id", self.embedding_model_id.as_deref())?;
        check_optional("scope.reranker_version", self.reranker_version.as_deref())?;
        check_optional("scope.prompt_template_version", self.prompt_template_version.as_deref())?;
        if let Some(auth_scope) = &self.auth_scope {
            if auth_scope.len() > MAX_AUTH_SCOPE_ENTRIES {
                return Err(InvalidRequest(format!(
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

/// The contract's `RuntimeFilter`, tagged on `type`. Values are strings, as the contract types
/// them; range bounds are numbers.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum FilterDto {
    Exact {
        key: String,
        value: String,
    },
    In {
        key: String,
        values: Vec<String>,
    },
    Range {
        key: String,
        #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
    },
    And {
        #[serde(deserialize_with = "tagged_each")]
        filters: Vec<FilterDto>,
    },
    Or {
        #[serde(deserialize_with = "tagged_each")]
        filters: Vec<FilterDto>,
    },
    Not {
        #[serde(deserialize_with = "tagged")]
        filter: Box<FilterDto>,
    },
}

impl FilterDto {
    fn to_expr(&self, depth: usize) -> Checked<FilterExpr> {
        // Deep trees are refused before recursing further, so a hostile body cannot exhaust the
        // stack (serde's own recursion limit guards the parse before this).
        if depth > MAX_FILTER_DEPTH {
            return Err(InvalidRequest(format!(
                "filter depth is over the limit of {MAX_FILTER_DEPTH}"
            )));
        }
        let key = |key: &str| FilterKey::new(key).map_err(InvalidRequest::from);
        let value = |value: &str| FilterValue::new(value).map_err(InvalidRequest::from);
        let children = |filters: &[FilterDto]| -> Checked<Vec<FilterExpr>> {
            filters.iter().map(|child| child.to_expr(depth + 1)).collect()
        };
        Ok(match self {
            Self::Exact { key: name, value: text } => {
                FilterExpr::Exact { key: key(name)?, value: value(text)? }
            }
            Self::In { key: name, values } => FilterExpr::In {
                key: key(name)?,
                values: values.iter().map(|text| value(text)).collect::<Checked<_>>()?,
            },
            Self::Range { key: name, min, max } => {
                FilterExpr::Range { key: key(name)?, min: *min, max: *max }
            }
            Self::And { filters } => FilterExpr::And(children(filters)?),
            Self::Or { filters } => FilterExpr::Or(children(filters)?),
            Self::Not { filter } => FilterExpr::Not(Box::new(filter.to_expr(depth + 1)?)),
        })
    }

    /// Checks the whole tree against the contract's limits.
    ///
    /// # Errors
    ///
    /// A key, value, count, depth or range rule is broken.
    pub(crate) fn validate(&self) -> Checked<RuntimeFilter> {
        RuntimeFilter::new(self.to_expr(1)?).map_err(InvalidRequest::from)
    }
}

/// Converts JSON numbers to a validated embedding.
///
/// # Errors
///
/// Empty, longer than 16384, or a value that is not finite as a 32-bit float.
pub(crate) fn embedding(field: &'static str, values: &[f64]) -> Checked<Embedding> {
    if values.is_empty() || values.len() > MAX_EMBEDDING_DIMENSION {
        return Err(InvalidRequest(format!(
            "{field} has {} numbers, allowed is 1..={MAX_EMBEDDING_DIMENSION}",
            values.len()
        )));
    }
    let values: Vec<f32> = values.iter().map(|value| *value as f32).collect();
    Embedding::new(values)
        .map_err(|_| InvalidRequest(format!("{field} must hold finite numbers only")))
}

/// `POST /v1/context/retrieve`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetrieveRequest {
    pub(crate) query_embedding: Vec<f64>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) query_text: Option<String>,
    #[serde(deserialize_with = "object")]
    pub(crate) scope: ScopeDto,
    #[serde(default, deserialize_with = "present_tagged", skip_serializing_if = "Option::is_none")]
    pub(crate) filters: Option<FilterDto>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) top_k: Option<i64>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) freshness_mode: Option<FreshnessMode>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) required_generation: Option<i64>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) include_content: Option<bool>,
}

/// A checked retrieve.
#[derive(Debug, Clone)]
pub(crate) struct ValidRetrieve {
    pub(crate) scope: Scope,
    pub(crate) embedding: Embedding,
    pub(crate) filter: Option<RuntimeFilter>,
    pub(crate) top_k: u32,
    pub(crate) freshness_mode: FreshnessMode,
    pub(crate) required_generation: Option<u64>,
    pub(crate) include_content: bool,
}

impl RetrieveRequest {
    /// Checks everything the contract limits.
    ///
    /// # Errors
    ///
    /// The first broken rule.
    pub(crate) fn validate(&self, default_mode: FreshnessMode) -> Checked<ValidRetrieve> {
        let scope = self.scope.validate()?;
        let embedding = embedding("query_embedding", &self.query_embedding)?;
        if let Some(text) = &self.query_text
            && text.len() > MAX_QUERY_TEXT_BYTES
        {
            return Err(InvalidRequest(format!(
                "query_text is {} bytes, over the limit of {MAX_QUERY_TEXT_BYTES}",
                text.len()
            )));
        }
        let filter = self.filters.as_ref().map(FilterDto::validate).transpose()?;
        let top_k = match self.top_k {
            None => DEFAULT_TOP_K,
            Some(top_k) => u32::try_from(top_k)
                .ok()
                .filter(|top_k| (1..=MAX_TOP_K).contains(top_k))
                .ok_or_else(|| {
                    InvalidRequest(format!("top_k is {top_k}, allowed is 1..={MAX_TOP_K}"))
                })?,
        };
        let required_generation = match self.required_generation {
            None => None,
            Some(generation) => {
                Some(u64::try_from(generation).ok().filter(|g| *g >= 1).ok_or_else(|| {
                    InvalidRequest(format!(
                        "required_generation is {generation}, it must be at least 1"
                    ))
                })?)
            }
        };
        Ok(ValidRetrieve {
            scope,
            embedding,
            filter,
            top_k,
            freshness_mode: self.freshness_mode.unwrap_or(default_mode),
            required_generation,
            include_content: self.include_content.unwrap_or(true),
        })
    }
}

/// The contract's `WriteScope`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WriteScopeDto {
    pub(crate) tenant_id: String,
    pub(crate) namespace: String,
}

impl WriteScopeDto {
    pub(crate) fn validate(&self) -> Checked<Scope> {
        Scope::new(self.tenant_id.clone(), self.namespace.clone()).map_err(InvalidRequest::from)
    }
}

impl From<&Scope> for WriteScopeDto {
    fn from(scope: &Scope) -> Self {
        Self { tenant_id: scope.tenant_id().to_owned(), namespace: scope.namespace().to_owned() }
    }
}

/// A document to upsert.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DocumentDto {
    pub(crate) id: String,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) embedding: Option<Vec<f64>>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) content: Option<String>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) metadata: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) revision: Option<String>,
}

/// `POST /v1/documents/upsert`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpsertDocumentRequest {
    #[serde(deserialize_with = "object")]
    pub(crate) scope: WriteScopeDto,
    #[serde(deserialize_with = "object")]
    pub(crate) document: DocumentDto,
}

impl UpsertDocumentRequest {
    /// Checks the request.
    ///
    /// # Errors
    ///
    /// The first broken rule.
    pub(crate) fn validate(&self) -> Checked<(Scope, Document)> {
        let scope = self.scope.validate()?;
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
            return Err(InvalidRequest(format!(
                "document.content is {} bytes, over the limit of {MAX_CONTENT_BYTES}",
                content.len()
            )));
        }
        let metadata = Metadata::new(document.metadata.clone().unwrap_or_default())?;
        let revision = document.revision.clone().map(Revision::new).transpose()?;
        Ok((scope, Document::new(id, embedding, document.content.clone(), metadata, revision)?))
    }
}

/// `POST /v1/documents/delete`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeleteDocumentRequest {
    #[serde(deserialize_with = "object")]
    pub(crate) scope: WriteScopeDto,
    pub(crate) id: String,
}

impl DeleteDocumentRequest {
    /// Checks the request.
    ///
    /// # Errors
    ///
    /// The first broken rule.
    pub(crate) fn validate(&self) -> Checked<(Scope, DocumentId)> {
        Ok((self.scope.validate()?, DocumentId::new(self.id.clone())?))
    }
}
