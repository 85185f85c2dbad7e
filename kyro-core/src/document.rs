//! Documents, search hits and mutation acknowledgements, as connectors send and receive them.
//!
//! Everything a connector returns carries the [`Scope`] the store says it belongs to, so the host
//! can re-check it: connector output is untrusted input.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{ValidationError, ValidationResult};
use crate::filter::validate_key;
use crate::freshness::Watermark;
use crate::limits::{
    MAX_CONTENT_BYTES, MAX_EMBEDDING_DIMENSION, MAX_ID_BYTES, MAX_METADATA_ENTRIES,
    MAX_SCOPE_FIELD_BYTES, MAX_VALUE_BYTES,
};
use crate::scope::{Scope, validate_identifier};

/// A document id within a scope: an identifier of at most 1024 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DocumentId(String);

impl DocumentId {
    /// Checks and wraps an id.
    ///
    /// # Errors
    ///
    /// The id breaks the identifier rules or is longer than 1024 bytes.
    pub fn new(id: impl Into<String>) -> ValidationResult<Self> {
        let id = id.into();
        validate_identifier("document id", &id, MAX_ID_BYTES)?;
        Ok(Self(id))
    }

    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DocumentId {
    type Error = ValidationError;

    fn try_from(id: String) -> ValidationResult<Self> {
        Self::new(id)
    }
}

impl From<DocumentId> for String {
    fn from(id: DocumentId) -> Self {
        id.0
    }
}

impl std::fmt::Display for DocumentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A document revision as the source system names it, at most 256 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Revision(String);

impl Revision {
    /// Checks and wraps a revision.
    ///
    /// # Errors
    ///
    /// The revision breaks the identifier rules or is longer than 256 bytes.
    pub fn new(revision: impl Into<String>) -> ValidationResult<Self> {
        let revision = revision.into();
        validate_identifier("revision", &revision, MAX_SCOPE_FIELD_BYTES)?;
        Ok(Self(revision))
    }

    /// The revision text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Revision {
    type Error = ValidationError;

    fn try_from(revision: String) -> ValidationResult<Self> {
        Self::new(revision)
    }
}

impl From<Revision> for String {
    fn from(revision: Revision) -> Self {
        revision.0
    }
}

/// A query or document embedding: 1..=16384 finite numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<f32>", into = "Vec<f32>")]
pub struct Embedding(Vec<f32>);

impl Embedding {
    /// Checks and wraps a vector.
    ///
    /// # Errors
    ///
    /// The vector is empty, longer than 16384, or holds NaN or infinity.
    pub fn new(values: Vec<f32>) -> ValidationResult<Self> {
        if values.is_empty() || values.len() > MAX_EMBEDDING_DIMENSION {
            return Err(ValidationError::Count {
                field: "embedding",
                min: 1,
                max: MAX_EMBEDDING_DIMENSION,
                actual: values.len(),
            });
        }
        if values.iter().any(|value| !value.is_finite()) {
            return Err(ValidationError::NonFinite { field: "embedding" });
        }
        Ok(Self(values))
    }

    /// The numbers.
    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }

    /// The dimension.
    pub fn dimension(&self) -> usize {
        self.0.len()
    }
}

impl TryFrom<Vec<f32>> for Embedding {
    type Error = ValidationError;

    fn try_from(values: Vec<f32>) -> ValidationResult<Self> {
        Self::new(values)
    }
}

impl From<Embedding> for Vec<f32> {
    fn from(embedding: Embedding) -> Self {
        embedding.0
    }
}

/// Document metadata: at most 256 string entries, keys `^[A-Za-z0-9_]+$` of at most 128 bytes,
/// values of at most 4096 bytes. Ordered, so it serializes the same way every time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "BTreeMap<String, String>", into = "BTreeMap<String, String>")]
pub struct Metadata(BTreeMap<String, String>);

impl Metadata {
    /// Checks and wraps a map.
    ///
    /// # Errors
    ///
    /// Too many entries, a bad key, or a value over 4096 bytes.
    pub fn new(entries: BTreeMap<String, String>) -> ValidationResult<Self> {
        if entries.len() > MAX_METADATA_ENTRIES {
            return Err(ValidationError::Count {
                field: "metadata",
                min: 0,
                max: MAX_METADATA_ENTRIES,
                actual: entries.len(),
            });
        }
        for (key, value) in &entries {
            validate_key("metadata key", key)?;
            if value.len() > MAX_VALUE_BYTES {
                return Err(ValidationError::TooLong {
                    field: "metadata value",
                    max_bytes: MAX_VALUE_BYTES,
                    actual_bytes: value.len(),
                });
            }
        }
        Ok(Self(entries))
    }

    /// The entries.
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<BTreeMap<String, String>> for Metadata {
    type Error = ValidationError;

    fn try_from(entries: BTreeMap<String, String>) -> ValidationResult<Self> {
        Self::new(entries)
    }
}

impl From<Metadata> for BTreeMap<String, String> {
    fn from(metadata: Metadata) -> Self {
        metadata.0
    }
}

/// Checks document content against the 1 MiB limit.
fn validate_content(content: Option<&str>) -> ValidationResult<()> {
    if let Some(content) = content
        && content.len() > MAX_CONTENT_BYTES
    {
        return Err(ValidationError::TooLong {
            field: "content",
            max_bytes: MAX_CONTENT_BYTES,
            actual_bytes: content.len(),
        });
    }
    Ok(())
}

/// A document to write: what an upsert sends to a connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawDocument")]
pub struct Document {
    id: DocumentId,
    embedding: Option<Embedding>,
    content: Option<String>,
    metadata: Metadata,
    revision: Option<Revision>,
}

#[derive(Deserialize)]
struct RawDocument {
    id: DocumentId,
    embedding: Option<Embedding>,
    content: Option<String>,
    metadata: Metadata,
    revision: Option<Revision>,
}

impl TryFrom<RawDocument> for Document {
    type Error = ValidationError;

    fn try_from(raw: RawDocument) -> ValidationResult<Self> {
        Self::new(raw.id, raw.embedding, raw.content, raw.metadata, raw.revision)
    }
}

impl Document {
    /// Builds a document, checking the content size (the other parts are checked by their types).
    ///
    /// # Errors
    ///
    /// The content is over 1 MiB.
    pub fn new(
        id: DocumentId,
        embedding: Option<Embedding>,
        content: Option<String>,
        metadata: Metadata,
        revision: Option<Revision>,
    ) -> ValidationResult<Self> {
        validate_content(content.as_deref())?;
        Ok(Self { id, embedding, content, metadata, revision })
    }

    /// The id.
    pub fn id(&self) -> &DocumentId {
        &self.id
    }

    /// The embedding, when the caller sent one.
    pub fn embedding(&self) -> Option<&Embedding> {
        self.embedding.as_ref()
    }

    /// The content.
    pub fn content(&self) -> Option<&str> {
        self.content.as_deref()
    }

    /// The metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The source revision.
    pub fn revision(&self) -> Option<&Revision> {
        self.revision.as_ref()
    }
}

/// A document as a store holds it: what fetch returns and what a search hit points at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredDocument {
    /// The scope the store says the document belongs to; the host re-checks it.
    pub scope: Scope,
    /// The id within the scope.
    pub id: DocumentId,
    /// The content, unless the caller asked to leave it out.
    pub content: Option<String>,
    /// The metadata.
    pub metadata: Metadata,
    /// The source revision, when the store keeps one.
    pub revision: Option<Revision>,
    /// The store's own change marker for this row (for example its `updated_at`), when it has one.
    pub watermark: Option<Watermark>,
}

/// One nearest neighbour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    /// The document.
    pub document: StoredDocument,
    /// Similarity, higher is closer. Its scale depends on the store's distance.
    pub score: f32,
}

/// What a mutation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MutationOutcome {
    /// A new document was written.
    Inserted,
    /// An existing document was replaced.
    Updated,
    /// The document was removed.
    Deleted,
    /// There was nothing to delete.
    NotFound,
}

impl MutationOutcome {
    /// The contract's snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inserted => "inserted",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
            Self::NotFound => "not_found",
        }
    }
}

/// A connector's acknowledgement that a write-through mutation is applied and visible.
///
/// The host verifies that `scope` and `id` are exactly what it asked for before it treats the ACK
/// as freshness evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MutationAck {
    /// The scope the store applied the mutation in.
    pub scope: Scope,
    /// The document id the store applied the mutation to.
    pub id: DocumentId,
    /// What happened.
    pub outcome: MutationOutcome,
    /// The store's own name for this mutation (a row version, an operation id), for audit.
    pub backend_mutation_id: String,
    /// The row's change marker after the mutation, when the store has one.
    pub watermark: Option<Watermark>,
}
